//! Credentials the way Alibaba Cloud users run: every source of the chain
//! against the simulator's ECS API, STS and metadata service, end to end
//! through the exporter (and through the binary where it matters).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloud_assistant_exporter::app::{Running, StartError};
use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::simulator::{
    self, IdentityConfig, IdentityServer, SimKey, Simulator,
};
use common::*;

const REGIONS: [&str; 2] = ["cn-hangzhou", "cn-shanghai"];

async fn sim() -> Simulator {
    Simulator::start(fleet(&[(REGIONS[0], 3), (REGIONS[1], 2)]))
        .await
        .expect("simulator")
}

async fn identity(sim: &Simulator, tune: impl FnOnce(&mut IdentityConfig)) -> IdentityServer {
    let mut cfg = IdentityConfig::default();
    tune(&mut cfg);
    IdentityServer::start(sim, cfg)
        .await
        .expect("identity server")
}

/// `text` with `{KEY_ID}` and `{KEY_SECRET}` the simulator's key, and
/// `{ROLE}` the role the tests assume.
fn with_key(text: &str) -> String {
    text.replace("{KEY_ID}", simulator::DEFAULT_KEY_ID)
        .replace("{KEY_SECRET}", simulator::DEFAULT_KEY_SECRET)
        .replace("{ROLE}", ROLE)
}

/// The flags that point the exporter at the simulator's ECS API and at its
/// identity server for STS and the metadata service.
fn endpoints<'a>(sim_url: &'a str, id_url: &'a str) -> [&'a str; 6] {
    [
        "--aliyun.endpoint",
        sim_url,
        "--aliyun.sts-endpoint",
        id_url,
        "--aliyun.metadata-endpoint",
        id_url,
    ]
}

/// Starts the exporter in process with exactly `env` as its environment.
async fn start(
    sim: &Simulator,
    id: &IdentityServer,
    env: &[(&str, String)],
    extra: &[&str],
) -> Result<Running, StartError> {
    let (sim_url, id_url) = (sim.url(), id.url());
    let mut args = endpoints(&sim_url, &id_url).to_vec();
    args.extend_from_slice(&["--aliyun.rate-limit", "0"]);
    args.extend_from_slice(extra);
    start_app(&args, env, Clock::System).await
}

/// Every region of the fleet is up on `page`, taken at `when`.
fn all_regions_up(page: &[Sample], when: &str) {
    for region in REGIONS {
        assert_eq!(region_up(page, region), Some(1.0), "{region} at {when}");
    }
}

/// Waits for the first cycle and checks that every region was collected.
async fn assert_collected(r: &Running) -> Vec<Sample> {
    wait_ready(r.addr).await;
    let page = scrape_samples(r.addr).await;
    all_regions_up(&page, "the first cycle");
    page
}

/// With only `home` in its environment, the exporter collects every region
/// on a long-term key found by `source`.
async fn collects_from(home: &TempDir, source: &str) {
    let sim = sim().await;
    let id = identity(&sim, |_| {}).await;
    let r = start(&sim, &id, &[("HOME", home.str())], &[])
        .await
        .expect("starts");
    let page = assert_collected(&r).await;
    assert_eq!(refreshes(&page, source, "success"), 1.0);
    r.shutdown().await;
}

/// With only `env`, and long-term keys refused by ECS, the exporter
/// collects every region on a role it assumed with the simulator's key.
async fn collects_by_role(env: &[(&str, String)]) -> (Simulator, IdentityServer, Vec<Sample>) {
    let sim = sim().await;
    let id = identity(&sim, |_| {}).await;
    sim.refuse_long_term_keys(true);
    let r = start(&sim, &id, env, &[]).await.expect("starts");
    let page = assert_collected(&r).await;
    assert_eq!(id.assume_role_signers(), vec![simulator::DEFAULT_KEY_ID]);
    assert_eq!(refreshes(&page, "assume_role", "success"), 1.0);
    r.shutdown().await;
    (sim, id, page)
}

fn refreshes(page: &[Sample], source: &str, result: &str) -> f64 {
    value(
        page,
        CREDENTIAL_REFRESHES,
        &[("source", source), ("result", result)],
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn environment_keys_with_a_security_token() {
    let sim = sim().await;
    let id = identity(&sim, |_| {}).await;
    sim.add_key(
        "STS.from-env",
        SimKey {
            secret: "env-sts-secret".into(),
            security_token: Some("env-sts-token".into()),
            expires_at: None,
        },
    );
    sim.refuse_long_term_keys(true);
    let r = start(
        &sim,
        &id,
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.from-env".into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-sts-secret".into()),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", "env-sts-token".into()),
        ],
        &[],
    )
    .await
    .expect("starts");
    let page = assert_collected(&r).await;
    assert_eq!(refreshes(&page, "env", "success"), 1.0);
    assert_eq!(id.issued_total(), 0, "no STS involved");
    r.shutdown().await;
}

#[tokio::test]
async fn oidc_token_file_is_read_afresh_at_every_refresh() {
    let dir = TempDir::new("oidc");
    let token_file = dir.write("token", "oidc-token-one");
    let sim = sim().await;
    let id = identity(&sim, |c| {
        c.lifetime = Duration::from_secs(4);
        c.oidc_token_file = Some(PathBuf::from(&token_file));
    })
    .await;
    let provider = IdentityConfig::default().oidc_provider_arn;
    sim.refuse_long_term_keys(true);
    let r = start(
        &sim,
        &id,
        &[
            ("ALIBABA_CLOUD_ROLE_ARN", ROLE.into()),
            ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", provider),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token_file.clone()),
            ("HOME", dir.str()),
        ],
        &["--collect.interval", "1s"],
    )
    .await
    .expect("starts");
    assert_collected(&r).await;
    let before = id.issued("AssumeRoleWithOIDC");
    assert!(before >= 1);
    // The kubelet rotates the token; STS takes only the new one from now on.
    dir.write("token", "oidc-token-two");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let page = assert_collected(&r).await;
    assert!(
        id.issued("AssumeRoleWithOIDC") > before,
        "refreshed with the rotated token"
    );
    assert_eq!(
        refreshes(&page, "oidc", "failure"),
        0.0,
        "the new token was read"
    );
    assert!(refreshes(&page, "oidc", "success") >= 2.0);
    assert_eq!(sim.expired_refusals(), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn cli_profile_ak() {
    let home = TempDir::new("cli-ak");
    home.write(
        ".aliyun/config.json",
        &with_key(r#"{"current": "default", "profiles": [{"name": "default", "mode": "AK",
                "access_key_id": "{KEY_ID}", "access_key_secret": "{KEY_SECRET}", "region_id": "cn-hangzhou"}], "meta_path": ""}"#),
    );
    collects_from(&home, "cli_profile").await;
}

#[tokio::test]
async fn cli_profile_ram_role_arn_named_by_alibaba_cloud_profile() {
    let home = TempDir::new("cli-role");
    home.write(
        ".aliyun/config.json",
        &with_key(r#"{"current": "default", "profiles": [
                {"name": "default", "mode": "AK", "access_key_id": "LTAI-other", "access_key_secret": "other"},
                {"name": "reader", "mode": "RamRoleArn", "access_key_id": "{KEY_ID}", "access_key_secret": "{KEY_SECRET}",
                  "ram_role_arn": "{ROLE}", "ram_session_name": "exporter-test", "expired_seconds": 900}]}"#),
    );
    let (_sim, id, page) = collects_by_role(&[
        ("HOME", home.str()),
        ("ALIBABA_CLOUD_PROFILE", "reader".into()),
    ])
    .await;
    assert_eq!(id.issued("AssumeRole"), 1);
    assert_eq!(refreshes(&page, "cli_profile", "success"), 1.0);
}

#[tokio::test]
async fn credentials_file_access_key_in_home() {
    let home = TempDir::new("ini-ak");
    home.write(
        ".alibabacloud/credentials.ini",
        &with_key("[default]\nenable = true\ntype = access_key\naccess_key_id = {KEY_ID}\naccess_key_secret = {KEY_SECRET}\n"),
    );
    collects_from(&home, "credentials_file").await;
}

#[tokio::test]
async fn credentials_file_ram_role_arn_named_by_environment() {
    let dir = TempDir::new("ini-role");
    let file = dir.write(
        "creds.ini",
        &with_key("[default]\ntype = access_key\naccess_key_id = LTAI-other\naccess_key_secret = other\n\n\
             [cross]\ntype = ram_role_arn\naccess_key_id = {KEY_ID}\naccess_key_secret = {KEY_SECRET}\nrole_arn = {ROLE}\nrole_session_name = ini-test\n"),
    );
    collects_by_role(&[
        ("HOME", dir.str()),
        ("ALIBABA_CLOUD_CREDENTIALS_FILE", file),
        ("ALIBABA_CLOUD_PROFILE", "cross".into()),
    ])
    .await;
}

#[tokio::test]
async fn ecs_instance_role_with_imdsv2_required() {
    let home = TempDir::new("ecs");
    let sim = sim().await;
    let id = identity(&sim, |c| {
        c.imdsv2_required = true;
        c.lifetime = Duration::from_secs(4);
    })
    .await;
    sim.refuse_long_term_keys(true);
    let r = start(
        &sim,
        &id,
        &[("HOME", home.str())],
        &["--collect.interval", "1s"],
    )
    .await
    .expect("starts");
    assert_collected(&r).await;
    // Past the first set's half-life the service hands out the next one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let page = assert_collected(&r).await;
    assert!(
        id.issued("metadata") >= 2,
        "rotated: {}",
        id.issued("metadata")
    );
    assert_eq!(id.plain_metadata_gets(), 0, "every GET carried the token");
    assert!(refreshes(&page, "ecs_ram_role", "success") >= 2.0);
    assert_eq!(sim.expired_refusals(), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn ecs_instance_role_falls_back_to_imdsv1_unless_disabled() {
    let home = TempDir::new("ecs-v1");
    let sim = sim().await;
    let id = identity(&sim, |c| c.imdsv2_unsupported = true).await;
    let env = [
        ("HOME", home.str()),
        (
            "ALIBABA_CLOUD_ECS_METADATA",
            "cloud-assistant-exporter-role".into(),
        ),
    ];
    let r = start(&sim, &id, &env, &[]).await.expect("starts");
    assert_collected(&r).await;
    assert!(id.plain_metadata_gets() >= 1);
    r.shutdown().await;
    let mut env = env.to_vec();
    env.push(("ALIBABA_CLOUD_IMDSV1_DISABLED", "true".into()));
    let e = start(&sim, &id, &env, &[]).await.err().expect("refused");
    assert!(
        e.to_string().contains("ALIBABA_CLOUD_IMDSV1_DISABLED"),
        "{e}"
    );
}

#[tokio::test]
async fn role_arn_flag_assumes_the_role_with_environment_keys() {
    let sim = sim().await;
    let id = identity(&sim, |_| {}).await;
    sim.refuse_long_term_keys(true);
    // The simulator's mode is real: the long-term key alone gets nowhere.
    let r = start(&sim, &id, &sim_key_env(), &[]).await.expect("starts");
    wait_ready(r.addr).await;
    let page = scrape_samples(r.addr).await;
    let requests = API_REQUESTS;
    assert!(sum(&page, requests, "code", |c| c == "Forbidden.RAM") >= 1.0);
    assert_eq!(sum(&page, requests, "code", |c| c == "OK"), 0.0);
    r.shutdown().await;
    let r = start(&sim, &id, &sim_key_env(), &["--aliyun.role-arn", ROLE])
        .await
        .expect("starts");
    let page = assert_collected(&r).await;
    assert_eq!(id.assume_role_signers(), vec![simulator::DEFAULT_KEY_ID]);
    assert_eq!(refreshes(&page, "assume_role", "success"), 1.0);
    assert_eq!(refreshes(&page, "env", "success"), 1.0);
    r.shutdown().await;
}

#[tokio::test]
async fn a_failing_sts_at_start_leaves_the_account_down_not_the_exporter() {
    let sim = sim().await;
    let id = identity(&sim, |_| {}).await;
    let mut env = sim_key_env();
    env[1].1 = "wrong-secret".into();
    let r = start(&sim, &id, &env, &["--aliyun.role-arn", ROLE])
        .await
        .expect("starts, with the account down");
    wait_ready(r.addr).await;
    let text = scrape(r.addr).await;
    let page = parse_metrics(&text);
    assert_eq!(value(&page, ACCOUNT_UP, &[]), Some(0.0), "{text}");
    assert!(refreshes(&page, "assume_role", "failure") >= 1.0);
    assert!(!text.contains("wrong-secret"));
    // Nothing is walked without credentials.
    assert_eq!(sum(&page, API_REQUESTS, "code", |_| true), 0.0);
    r.shutdown().await;
}

// ---- through the binary ----

fn sum(page: &[Sample], name: &str, label: &str, want: impl Fn(&str) -> bool) -> f64 {
    page.iter()
        .filter(|s| s.name == name && s.labels.get(label).is_some_and(|v| want(v)))
        .map(|s| s.value)
        .sum()
}

/// Credentials that live 6 s, cycles every second, for 20 s: the same
/// property as 30 s credentials over two minutes of 5 s cycles, faster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_credentials_refresh_once_per_half_life_and_never_expire_in_use() {
    let home = TempDir::new("refresh");
    let sim = sim().await;
    let id = identity(&sim, |c| c.lifetime = Duration::from_secs(6)).await;
    sim.refuse_long_term_keys(true);
    let (sim_url, id_url) = (sim.url(), id.url());
    let mut env = sim_key_env();
    env.push(("HOME", home.str()));
    let exporter = ExporterProcess::spawn(
        &[
            &endpoints(&sim_url, &id_url)[..],
            &["--aliyun.role-arn", ROLE],
            &WATCHED,
        ]
        .concat(),
        &env,
    );
    wait_ready(exporter.socket()).await;
    let started = Instant::now();
    let mut scrapes = Vec::new();
    while started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let page = scrape_samples(exporter.socket()).await;
        all_regions_up(&page, &format!("{:?}", started.elapsed()));
        scrapes.push(page);
    }
    let raw = scrape(exporter.socket()).await;
    // Read right after the scrape: a refresh may land before the stop.
    let issued = id.issued("AssumeRole") as f64;
    let page = parse_metrics(&raw);
    let stderr = exporter.stop();

    let requests = API_REQUESTS;
    assert_eq!(
        sum(&page, requests, "code", |c| c
            .starts_with("InvalidSecurityToken")),
        0.0,
        "{raw}"
    );
    assert_eq!(
        sim.expired_refusals(),
        0,
        "no call went out with expired credentials"
    );
    let ok_calls = sum(&page, requests, "code", |c| c == "OK");
    let success = refreshes(&page, "assume_role", "success");
    eprintln!(
        "{success} refreshes, {ok_calls} API calls, {} scrapes",
        scrapes.len()
    );
    assert_eq!(refreshes(&page, "assume_role", "failure"), 0.0);
    // ~22 s of 5..6 s credentials refreshed at half-life: about 8 sets.
    assert!((5.0..=12.0).contains(&success), "{success} refreshes");
    // One issue per refresh (give or take the one in flight at the scrape).
    assert!(
        (issued - success).abs() <= 1.0,
        "{issued} issued, {success} refreshes"
    );
    assert!(
        ok_calls >= 4.0 * success,
        "{ok_calls} calls for {success} refreshes: not one per call"
    );
    assert_eq!(
        refreshes(&page, "env", "success"),
        1.0,
        "the source keys are read once"
    );
    assert!(stderr.contains("credentials refreshed"), "{stderr}");
    for s in id
        .issued_secrets()
        .iter()
        .map(String::as_str)
        .chain([simulator::DEFAULT_KEY_SECRET])
    {
        assert!(!stderr.contains(s), "a secret in the logs");
        assert!(!raw.contains(s), "a secret on /metrics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_in_debug_logs_or_metrics() {
    let dir = TempDir::new("leak");
    let oidc_token = "OIDC-TOKEN-eyJhbGciOiJSUzI1NiJ9.c2VjcmV0";
    let token_file = dir.write("token", oidc_token);
    let sim = sim().await;
    let id = identity(&sim, |c| {
        c.lifetime = Duration::from_secs(3);
        c.oidc_token_file = Some(PathBuf::from(&token_file));
    })
    .await;
    sim.refuse_long_term_keys(true);
    let (sim_url, id_url) = (sim.url(), id.url());
    let exporter = ExporterProcess::spawn(
        &[
            &endpoints(&sim_url, &id_url)[..],
            &["--aliyun.role-arn", ROLE],
            &WATCHED,
        ]
        .concat(),
        &[
            ("HOME", dir.str()),
            ("ALIBABA_CLOUD_ROLE_ARN", ROLE.into()),
            (
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                IdentityConfig::default().oidc_provider_arn,
            ),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token_file),
        ],
    );
    wait_ready(exporter.socket()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let metrics = scrape(exporter.socket()).await;
    let stderr = exporter.stop();
    assert!(
        stderr.contains("credentials found") && stderr.contains("source=assume_role"),
        "{stderr}"
    );
    assert!(id.issued("AssumeRoleWithOIDC") >= 2 && id.issued("AssumeRole") >= 2);
    let secrets = id.issued_secrets();
    assert!(secrets.len() >= 8);
    for s in secrets.iter().map(String::as_str).chain([oidc_token]) {
        assert!(!stderr.contains(s), "secret or token in the logs");
        assert!(!metrics.contains(s), "secret or token on /metrics");
    }
}

#[test]
fn no_source_at_all_exits_2_quickly_naming_the_sources_tried() {
    let home = TempDir::new("empty-home");
    let closed = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = run_exporter(
        &[
            "--web.listen-address",
            "127.0.0.1:0",
            "--aliyun.metadata-endpoint",
            &closed,
        ],
        &[("HOME", home.str())],
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim_end().lines().last().unwrap_or("");
    assert!(last.starts_with("error: no credentials found"), "{err}");
    for source in [
        "environment (ALIBABA_CLOUD_ACCESS_KEY_ID",
        "OIDC (ALIBABA_CLOUD_ROLE_ARN",
        "CLI profile (",
        "credentials file (",
        "ECS instance RAM role (metadata service at http://127.0.0.1:",
        "--demo",
    ] {
        assert!(last.contains(source), "names {source}: {last}");
    }
}

#[test]
fn credential_flags_are_listed_and_validated() {
    let help = run_exporter(&["--help"], &[]);
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--aliyun.role-arn",
        "--aliyun.sts-endpoint",
        "--aliyun.metadata-endpoint",
        "https://sts.aliyuncs.com",
        "http://100.100.100.200",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    for args in [
        &["--aliyun.sts-endpoint", "ftp://sts.aliyuncs.com"][..],
        &["--aliyun.sts-endpoint", "sts.aliyuncs.com"],
        &["--aliyun.metadata-endpoint", "100.100.100.200"],
        &["--aliyun.metadata-endpoint", "http://127.0.0.1:99999"],
        &["--aliyun.role-arn", "reader"],
    ] {
        refused(args, &[]);
    }
}

mod expired_token {
    use super::*;
    use cloud_assistant_exporter::client::{ApiMetrics, Client, ClientOptions};
    use cloud_assistant_exporter::credentials::{
        BoxFuture, Context, ContextOptions, CredentialProvider, Credentials, CredentialsError, Env,
        RefreshMetrics, RefreshPolicy, Source,
    };
    use cloud_assistant_exporter::secret::Secret;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Hands out credentials it says last an hour, but the simulator takes
    /// the first set (or every set) as expired already: a skewed clock.
    struct Skewed {
        sim: Arc<Simulator>,
        n: AtomicU64,
        refuse_all: bool,
    }

    impl Source for Skewed {
        fn label(&self) -> &'static str {
            "skewed"
        }
        fn describe(&self) -> String {
            "skewed".into()
        }
        fn fetch<'a>(
            &'a self,
            _ctx: &'a Context,
        ) -> BoxFuture<'a, Result<Credentials, CredentialsError>> {
            Box::pin(async move {
                let n = self.n.fetch_add(1, Ordering::SeqCst);
                let now = Clock::System.now();
                let id = format!("STS.skew{n}");
                let dead = n == 0 || self.refuse_all;
                self.sim.add_key(
                    &id,
                    SimKey {
                        secret: format!("skew-secret-{n}"),
                        security_token: Some(format!("skew-token-{n}")),
                        expires_at: Some(if dead { now - 1 } else { now + 3600 }),
                    },
                );
                Ok(Credentials {
                    access_key_id: id,
                    access_key_secret: Secret::new(format!("skew-secret-{n}")),
                    security_token: Some(Secret::new(format!("skew-token-{n}"))),
                    expiration: Some(now + 3600),
                })
            })
        }
    }

    async fn client(sim: &Arc<Simulator>, refuse_all: bool) -> (Client, RefreshMetrics) {
        let registry = prometheus::Registry::new();
        let refreshes = RefreshMetrics::new(&registry).expect("metric");
        let ctx = Context::new(
            Env::default(),
            ContextOptions {
                metrics: Some(refreshes.clone()),
                policy: RefreshPolicy {
                    retry_base: Duration::from_millis(50),
                    ..RefreshPolicy::default()
                },
                ..ContextOptions::default()
            },
        )
        .expect("context");
        let source = Skewed {
            sim: Arc::clone(sim),
            n: AtomicU64::new(0),
            refuse_all,
        };
        let provider = CredentialProvider::start(Box::new(source), &ctx)
            .await
            .expect("provider");
        let opts = ClientOptions {
            endpoint_template: Some(sim.url()),
            timeout: Duration::from_secs(5),
            rate_limit: 0.0,
            retry: fast_retry(),
            ..ClientOptions::default()
        };
        let api = ApiMetrics::new(&registry).expect("metrics");
        (Client::new(provider, opts, api).expect("client"), refreshes)
    }

    #[tokio::test]
    async fn a_refused_token_forces_one_refresh_and_one_retry() {
        let sim = Arc::new(super::sim().await);
        let (c, refreshes) = client(&sim, false).await;
        c.call("DescribeRegions", None, &[])
            .await
            .expect("ok after a refresh");
        assert_eq!(sim.expired_refusals(), 1);
        assert_eq!(
            c.metrics()
                .count("DescribeRegions", "InvalidSecurityToken.Expired"),
            1
        );
        assert_eq!(c.metrics().count("DescribeRegions", "OK"), 1);
        assert_eq!(
            refreshes.count("skewed", "success"),
            2,
            "start + the forced one"
        );
        // The fresh set is used from then on.
        c.call("DescribeRegions", None, &[]).await.expect("ok");
        assert_eq!(sim.expired_refusals(), 1);
    }

    #[tokio::test]
    async fn only_one_retry_when_the_fresh_token_is_refused_too() {
        let sim = Arc::new(super::sim().await);
        let (c, _) = client(&sim, true).await;
        let e = c
            .call("DescribeRegions", None, &[])
            .await
            .expect_err("refused");
        assert_eq!(e.code(), "InvalidSecurityToken.Expired");
        assert_eq!(
            sim.requests("DescribeRegions"),
            2,
            "one retry, not the retry budget"
        );
    }
}
