//! The API side under hostile or odd answers: redirects are never followed,
//! API messages are redacted before they reach a log, a label or an HTTP
//! body, and odd but valid answers (a page without its list, HTTP 429) are
//! read as the SDKs read them. Values from the API never break a log line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::*;
use cloud_assistant_exporter::api::{self, cloud_assistant};
use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::collector::CollectorOptions;
use cloud_assistant_exporter::credentials::{
    Context, ContextOptions, CredentialProvider, CredentialSpec, Env, OidcSpec, RoleSpec,
};
use cloud_assistant_exporter::error::looks_like_code;
use cloud_assistant_exporter::secret::Secret;
use cloud_assistant_exporter::simulator::{
    self, IdentityConfig, IdentityServer, RegionFault, SimKey, Simulator,
};

// ---- 3xx: never followed ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_fails_its_region_naming_the_status_and_is_never_followed() {
    let trap = Trap::start().await;
    let sim = Simulator::start(fleet(&[("r-ok", 3), ("r-moved", 3)]))
        .await
        .expect("sim");
    let to = format!("{}/", trap.url);
    sim.update_faults(|f| {
        f.regions
            .insert("r-moved".into(), RegionFault::Redirect(to));
    });
    let url = sim.url();
    let exporter = ExporterProcess::every_second(&url, &[], &[]);
    wait_ready(exporter.socket()).await;
    let page = scrape_until(exporter.socket(), "r-moved down, r-ok up", |p| {
        region_up(p, "r-moved") == Some(0.0) && region_up(p, "r-ok") == Some(1.0)
    })
    .await;
    let redirected = find_value(
        &page,
        API_REQUESTS,
        &[("action", cloud_assistant::ACTION), ("code", "HTTP3xx")],
    );
    assert!(redirected.is_some_and(|n| n >= 1.0), "{redirected:?}");
    let cycles = find_value(&page, CYCLES, &[]).unwrap_or(0.0);
    let asked = sim.requests_by_region()[&(cloud_assistant::ACTION.to_string(), "r-moved".into())];
    let stderr = exporter.stop();
    assert_eq!(trap.hits(), 0, "nothing reached the redirect's target");
    // An error, not a retryable one: one request per cycle (plus the cycles
    // in flight around the scrape), not one per try.
    assert!(
        asked as f64 <= cycles + 2.0,
        "{asked} requests in {cycles} cycles"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("region collection failed") && l.contains("region=r-moved"))
        .unwrap_or_else(|| panic!("no failure logged for r-moved: {stderr}"));
    assert!(
        line.contains("HTTP 307") && line.contains("never followed"),
        "{line}"
    );
}

#[tokio::test]
async fn sts_and_metadata_redirects_fail_the_fetch_naming_the_status() {
    let trap = Trap::start().await;
    let sim = Simulator::start(fleet(&[("r", 1)])).await.expect("sim");
    let dir = TempDir::new("redirect-oidc");
    let token_file = PathBuf::from(dir.write("token", "eyJ.oidc-token"));
    let id = IdentityServer::start(
        &sim,
        IdentityConfig {
            redirect_to: Some(trap.url.clone()),
            oidc_token_file: Some(token_file.clone()),
            ..IdentityConfig::default()
        },
    )
    .await
    .expect("identity server");
    let ctx = Context::new(
        Env::default(),
        ContextOptions {
            sts_endpoint: id.url(),
            metadata_endpoint: id.url(),
            timeout: Duration::from_secs(5),
            ..ContextOptions::default()
        },
    )
    .expect("context");
    let source = CredentialSpec::AccessKey {
        origin: "env",
        access_key_id: simulator::DEFAULT_KEY_ID.into(),
        access_key_secret: Secret::new(simulator::DEFAULT_KEY_SECRET),
        security_token: None,
    };
    let specs = [
        (
            "AssumeRole",
            CredentialSpec::AssumeRole {
                role: RoleSpec::new(ROLE),
                source: Box::new(source),
            },
        ),
        (
            "AssumeRoleWithOIDC",
            CredentialSpec::Oidc {
                origin: "oidc",
                spec: OidcSpec {
                    role_arn: ROLE.into(),
                    oidc_provider_arn: IdentityConfig::default().oidc_provider_arn,
                    oidc_token_file: token_file,
                    role_session_name: None,
                    duration_seconds: None,
                },
            },
        ),
        (
            "metadata",
            CredentialSpec::EcsRamRole {
                origin: "ecs_ram_role",
                role_name: None,
            },
        ),
    ];
    for (what, spec) in specs {
        let e = CredentialProvider::from_spec(&spec, &ctx)
            .await
            .expect_err(what)
            .to_string();
        assert!(
            e.contains("HTTP 307") && e.contains("never followed"),
            "{what}: {e}"
        );
    }
    assert_eq!(id.issued_total(), 0);
    assert_eq!(trap.hits(), 0, "nothing reached the redirect's target");
}

// ---- redaction ----

/// A key pair with a token the simulator accepts; letters and digits only,
/// so the percent-encoded string to sign holds them as they are.
const KEY_ID: &str = "LTAIredactTestKey0001";
const KEY_SECRET: &str = "redactTestSecret0001xyz";
const TOKEN: &str = "CAISredactTestToken0001xyz";

fn sts_token_credentials(indent: &str) -> String {
    format!(
        "{indent}type: sts_token\n{indent}access_key_id: {KEY_ID}\n{indent}access_key_secret_file: key.secret\n{indent}security_token_file: key.token\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_refusal_leaks_no_key_id_token_or_secret() {
    let sim = Simulator::start(fleet(&[("r-ok", 2), ("r-sig", 2)]))
        .await
        .expect("sim");
    sim.add_key(
        KEY_ID,
        SimKey {
            secret: KEY_SECRET.into(),
            security_token: Some(TOKEN.into()),
            expires_at: None,
        },
    );
    sim.update_faults(|f| {
        f.regions
            .insert("r-sig".into(), RegionFault::SignatureMismatch);
    });
    let id = IdentityServer::start(&sim, IdentityConfig::default())
        .await
        .expect("identity server");
    let dir = TempDir::new("redact");
    dir.write("key.secret", &format!("{KEY_SECRET}\n"));
    dir.write("key.token", &format!("{TOKEN}\n"));
    let main = format!(
        "accounts:\n  - name: main\n    endpoint: \"{}\"\n    credentials:\n{}",
        sim.url(),
        sts_token_credentials("      ")
    );
    let config = dir.write("accounts.yml", &main);
    let id_url = id.url();
    let home = dir.str();
    let exporter = ExporterProcess::spawn(
        &[
            &["--config.file", &config, "--aliyun.sts-endpoint", &id_url][..],
            &["--web.enable-lifecycle"],
            &WATCHED,
        ]
        .concat(),
        &[("HOME", home)],
    );
    wait_ready(exporter.socket()).await;
    let page = scrape_until(exporter.socket(), "r-sig refused, r-ok up", |p| {
        region_up(p, "r-sig") == Some(0.0) && region_up(p, "r-ok") == Some(1.0)
    })
    .await;
    assert!(
        find_value(&page, API_REQUESTS, &[("code", "SignatureDoesNotMatch")]).is_some(),
        "the code stays a label"
    );

    // A new account whose role STS refuses the same way: the reload answer.
    id.update_config(|c| c.sts_signature_mismatch = true);
    dir.write(
        "accounts.yml",
        &format!(
            "{main}  - name: role\n    endpoint: \"{}\"\n    credentials:\n      type: ram_role_arn\n      role_arn: \"{ROLE}\"\n      source:\n{}",
            sim.url(),
            sts_token_credentials("        ")
        ),
    );
    let (status, answer) = post_reload(&exporter.addr).await;
    assert_eq!(status, 500, "{answer}");
    assert!(
        answer.contains("SignatureDoesNotMatch") && answer.contains("[redacted]"),
        "{answer}"
    );

    let metrics = scrape(exporter.socket()).await;
    let stderr = exporter.stop();
    assert!(
        stderr.contains("SignatureDoesNotMatch") && stderr.contains("string to sign: [redacted]"),
        "the refusal is logged, redacted: {stderr}"
    );
    for secret in [KEY_ID, TOKEN, KEY_SECRET] {
        assert!(!stderr.contains(secret), "{secret} in the logs");
        assert!(!metrics.contains(secret), "{secret} on /metrics");
        assert!(!answer.contains(secret), "{secret} in the reload answer");
    }
}

#[tokio::test]
async fn the_code_label_carries_only_codes() {
    let sim = Simulator::start(fleet(&[("a", 2), ("b", 2), ("c", 2), ("d", 2)]))
        .await
        .expect("sim");
    let long = "X".repeat(65);
    let longest = "Y".repeat(64);
    sim.update_faults(|f| {
        for (region, code) in [
            ("b", "Denied: <script>alert(1)</script>"),
            ("c", long.as_str()),
            ("d", longest.as_str()),
        ] {
            f.regions.insert(
                region.into(),
                RegionFault::Error {
                    status: 400,
                    code: code.into(),
                },
            );
        }
    });
    let c = tuned_collector(&sim, CollectorOptions::default(), Clock::System, |_| {});
    let report = c.run_cycle().await;
    assert_eq!((report.regions_ok, report.regions_failed), (1, 3));
    let page = page_samples(&c);
    let codes: Vec<&str> = page
        .iter()
        .filter(|s| s.name == API_REQUESTS)
        .map(|s| s.labels["code"].as_str())
        .collect();
    assert!(codes.iter().all(|c| looks_like_code(c)), "{codes:?}");
    assert!(codes.contains(&"other"), "{codes:?}");
    assert!(
        codes.contains(&longest.as_str()),
        "64 characters are a code"
    );
    assert!(!codes.contains(&long.as_str()));
    assert_eq!(region_up(&page, "a"), Some(1.0));
}

// ---- odd but valid answers ----

#[tokio::test]
async fn a_page_without_its_list_and_without_a_next_token_is_empty() {
    let sim = Simulator::start(fleet(&[("r", 3)])).await.expect("sim");
    let client = client(&sim);
    let answer = |body: &str| {
        let body = body.to_string();
        sim.update_faults(move |f| {
            for a in API_ACTIONS {
                f.actions
                    .insert(a.to_string(), RegionFault::Body(body.clone()));
            }
        });
    };
    answer(r#"{"RequestId": "R-1"}"#);
    assert_eq!(
        api::describe_regions(&client).await.expect("regions"),
        vec![]
    );
    assert!(
        api::walk_cloud_assistant_status(&client, "r")
            .await
            .expect("agents")
            .is_empty()
    );
    assert!(
        api::walk_instance_status(&client, "r")
            .await
            .expect("states")
            .is_empty()
    );
    assert!(
        api::walk_plugin_status_by_name(&client, "r", "p")
            .await
            .expect("sweep")
            .is_empty()
    );
    assert!(
        api::list_plugins_of_instance(&client, "r", "i-1")
            .await
            .expect("one")
            .is_empty()
    );
    assert!(
        api::walk_instance_info(&client, "r")
            .await
            .expect("info")
            .is_empty()
    );
    assert!(
        api::walk_managed_instances(&client, "r")
            .await
            .expect("managed")
            .is_empty()
    );
    assert!(
        api::walk_activations(&client, "r")
            .await
            .expect("codes")
            .is_empty()
    );

    // A NextToken says more rows follow: an error, so none is lost silently.
    answer(r#"{"RequestId": "R-2", "NextToken": "AAAA"}"#);
    let e = api::walk_cloud_assistant_status(&client, "r")
        .await
        .expect_err("agents");
    assert!(e.to_string().contains("is missing, yet a NextToken"), "{e}");
    let e = api::walk_plugin_status_by_name(&client, "r", "p")
        .await
        .expect_err("sweep");
    assert!(e.to_string().contains("is missing, yet a NextToken"), "{e}");
    answer(r#"{"RequestId": "R-3", "TotalCount": 7}"#);
    let e = api::walk_instance_status(&client, "r")
        .await
        .expect_err("states");
    assert!(e.to_string().contains("yet TotalCount is 7"), "{e}");

    // In a whole cycle: such a region is up, with no agents; others unharmed.
    let sim = Simulator::start(fleet(&[("a", 3), ("c", 3)]))
        .await
        .expect("sim");
    sim.update_faults(|f| {
        f.regions.insert(
            "c".into(),
            RegionFault::Body(r#"{"RequestId": "R-4"}"#.into()),
        );
    });
    let c = tuned_collector(&sim, CollectorOptions::default(), Clock::System, |_| {});
    let report = c.run_cycle().await;
    assert_eq!((report.regions_ok, report.regions_failed), (2, 0));
    let page = page_samples(&c);
    assert_eq!(
        (region_up(&page, "a"), region_up(&page, "c")),
        (Some(1.0), Some(1.0))
    );
    let agents = |r: &str| {
        page.iter()
            .filter(|s| s.name == AGENT_UP && s.labels["region_id"] == r)
            .count()
    };
    assert_eq!((agents("a"), agents("c")), (3, 0));
}

#[tokio::test]
async fn http_429_is_throttling_whatever_its_body() {
    let sim = Simulator::start(fleet(&[("r", 2)])).await.expect("sim");
    // Plain retries would wait about a millisecond; throttling half a second.
    let client = client_with(&sim, simulator::DEFAULT_KEY_SECRET, |o| {
        o.retry.max_tries = 2;
        o.retry.base = Duration::from_millis(1);
        o.retry.throttle_base = Duration::from_millis(400);
        o.retry.cap = Duration::from_secs(1);
    });
    let action = cloud_assistant::ACTION;
    for body in [
        "<html><body>429 Too Many Requests</body></html>",
        "",
        r#"{"RequestId": "R-1", "Code": "TooManyRequests", "Message": "slow down"}"#,
    ] {
        sim.update_faults(|f| {
            f.regions.insert(
                "r".into(),
                RegionFault::Raw {
                    status: 429,
                    body: body.into(),
                },
            );
        });
        sim.reset_counts();
        let started = Instant::now();
        let e = client.call(action, Some("r"), &[]).await.expect_err(body);
        assert!(e.is_throttling(), "{body}: {e}");
        assert_eq!(sim.requests(action), 2, "{body}: tried again");
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{body}: the throttling backoff"
        );
    }
    let m = client.metrics();
    assert_eq!(m.count(action, "Throttling"), 4, "bodies without a code");
    assert_eq!(m.count(action, "TooManyRequests"), 2);
    // Once it passes, the call succeeds.
    sim.set_faults(Default::default());
    assert!(client.call(action, Some("r"), &[]).await.is_ok());
}

// ---- log lines ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_from_the_api_never_break_a_log_line() {
    let sim = Simulator::start(fleet(&[("r", 2)])).await.expect("sim");
    let hostile = "Run\r\x1b[2J\x1b]0;owned\x07ning\0\u{9b}31m";
    sim.update_fleet(|f| {
        if let Some(i) = f.regions.get_mut("r").and_then(|r| r.instances.first_mut()) {
            i.status = hostile.into();
        }
    });
    let url = sim.url();
    for format in ["logfmt", "json"] {
        let exporter = ExporterProcess::spawn(
            &[
                "--aliyun.endpoint",
                &url,
                "--aliyun.rate-limit",
                "0",
                "--log.format",
                format,
            ],
            &sim_key_env(),
        );
        wait_ready(exporter.socket()).await;
        let stderr = exporter.stop();
        assert!(
            stderr.contains("the API reports a state this exporter does not document"),
            "{format}: {stderr}"
        );
        assert!(
            !stderr.chars().any(|c| c.is_control() && c != '\n'),
            "{format}: a raw control character: {stderr:?}"
        );
        for line in stderr.lines() {
            match format {
                "json" => assert!(
                    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object()),
                    "{line:?}"
                ),
                _ => assert!(line.starts_with("ts="), "{line:?}"),
            }
        }
    }
}
