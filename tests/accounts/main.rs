//! `--config.file`: several accounts in one process, each against a
//! simulator of its own that accepts only that account's key. Series carry
//! `account`; accounts share the limits, fail alone, reload without a
//! restart, and split over shards by (account, region).

#[path = "../common/mod.rs"]
mod common;
mod down;
mod file;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cloud_assistant_exporter::app::Running;
use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::simulator::{
    FleetConfig, IdentityConfig, IdentityServer, InFlightGauge, RegionFault,
};
use common::*;

const NOW: i64 = 1_700_003_600;

/// Series that describe the whole process, not one account.
const PROCESS_WIDE: &[&str] = &[
    "aliyun_cloud_assistant_exporter_build_info",
    "aliyun_cloud_assistant_exporter_shard_info",
    "aliyun_cloud_assistant_exporter_collection_interval_seconds",
    CYCLES,
    CYCLE_SECONDS,
    "aliyun_cloud_assistant_exporter_last_collection_timestamp_seconds",
    PLUGIN_NAMES,
    PLUGIN_NAMES_DROPPED,
    "aliyun_cloud_assistant_exporter_invocation_walks_truncated_total",
    "aliyun_cloud_assistant_exporter_rows_dropped_total",
    RELOAD_OK,
    "aliyun_cloud_assistant_exporter_config_last_reload_success_timestamp_seconds",
    "aliyun_cloud_assistant_exporter_http_connections",
    "aliyun_cloud_assistant_exporter_http_connections_dropped_total",
    "aliyun_cloud_assistant_exporter_http_requests_refused_total",
    "aliyun_cloud_assistant_exporter_http_auth_failures_total",
];

/// A simulated account at `NOW` whose fleet is `regions`, seeded `seed`.
async fn account(name: &'static str, seed: u64, regions: &[(&str, usize)]) -> Acct {
    let cfg = FleetConfig {
        seed,
        start: NOW - 3600,
        ..fleet(regions)
    };
    Acct::on(name, sim_at(cfg, Clock::fixed(NOW)).await)
}

/// The exporter in process with no credentials in its environment: only
/// the accounts file can make it work.
async fn start(config: &str, extra: &[&str]) -> Running {
    start_with_env(config, extra, &[]).await
}

async fn start_with_env(config: &str, extra: &[&str], env: &[(&str, String)]) -> Running {
    let mut args = vec![
        "--config.file",
        config,
        "--aliyun.rate-limit",
        "0",
        "--collect.plugin-discovery-interval",
        "0",
    ];
    args.extend_from_slice(extra);
    start_app(&args, env, Clock::fixed(NOW))
        .await
        .expect("exporter starts")
}

fn of<'a>(page: &'a [Sample], name: &str, account: &str) -> Vec<&'a Sample> {
    page.iter()
        .filter(|s| s.name == name && s.labels.get("account").map(String::as_str) == Some(account))
        .collect()
}

/// (account, region) → region_up.
fn regions_up(page: &[Sample]) -> BTreeMap<(String, String), f64> {
    page.iter()
        .filter(|s| s.name == REGION_UP)
        .map(|s| {
            (
                (
                    s.labels.get("account").cloned().unwrap_or_default(),
                    s.labels["region_id"].clone(),
                ),
                s.value,
            )
        })
        .collect()
}

/// Every instance of `a`'s fleet once, under its own account label.
fn check_fleet(page: &[Sample], a: &Acct) {
    let fleet = a.sim.fleet();
    let mut want = 0;
    for (region, r) in &fleet.regions {
        for inst in &r.instances {
            want += 1;
            assert_eq!(
                value(
                    page,
                    AGENT_UP,
                    &[
                        ("account", a.name),
                        ("region_id", region),
                        ("instance_id", &inst.id)
                    ]
                ),
                Some(inst.agent_up(NOW) as u8 as f64),
                "{} {region} {}",
                a.name,
                inst.id
            );
        }
        assert_eq!(
            value(
                page,
                REGION_UP,
                &[("account", a.name), ("region_id", region)]
            ),
            Some(1.0),
            "{} {region} up",
            a.name
        );
    }
    assert_eq!(
        of(page, AGENT_UP, a.name).len(),
        want,
        "{}: each instance once",
        a.name
    );
    let instances = of(page, INSTANCE_STATUS, a.name);
    assert!(!instances.is_empty(), "{}: instance states", a.name);
}

/// Fleet and per-region series of `account`, without the exporter's own
/// (whose durations change from cycle to cycle).
fn fleet_series(page: &[Sample], account: &str) -> Vec<Sample> {
    page.iter()
        .filter(|s| {
            !s.name.starts_with("aliyun_cloud_assistant_exporter_")
                && s.name.starts_with("aliyun_cloud_assistant_")
                && s.labels.get("account").map(String::as_str) == Some(account)
                && !s.name.ends_with("heartbeat_age_seconds")
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_account_is_collected_once_under_its_label_and_fails_alone() {
    let alpha = account("alpha", 7, &[("cn-hangzhou", 3), ("cn-shanghai", 2)]).await;
    // beta shares a region id with alpha: the pair (account, region) tells them apart.
    let beta = account("beta", 8, &[("cn-beijing", 4), ("cn-hangzhou", 2)]).await;
    let dir = TempDir::new("accounts");
    let config = dir.write(
        "accounts.yml",
        &accounts_file(&[
            alpha.entry_in(&dir, &["cn-hangzhou", "cn-shanghai"]),
            // No regions: DescribeRegions of its own endpoint.
            beta.entry(&dir),
        ]),
    );
    // The slower instance-info walk would land between the cycles compared.
    let r = start(
        &config,
        &[
            "--collect.interval",
            "1h",
            "--collect.instance-info-interval",
            "0",
        ],
    )
    .await;
    wait_ready(r.addr).await;
    let text = scrape(r.addr).await;
    // Families of several accounts merge into one HELP/TYPE each.
    promtool_check(&text);
    let page = parse_metrics(&text);
    check_fleet(&page, &alpha);
    check_fleet(&page, &beta);
    assert_eq!(regions_up(&page).len(), 4, "{:?}", regions_up(&page));

    // Every series that belongs to an account says which.
    for s in &page {
        if s.name.starts_with("aliyun_cloud_assistant_") && !PROCESS_WIDE.contains(&s.name.as_str())
        {
            let a = s.labels.get("account").map(String::as_str);
            assert!(
                a == Some("alpha") || a == Some("beta"),
                "{} {:?} has no account label",
                s.name,
                s.labels
            );
        }
    }
    for name in ["alpha", "beta"] {
        let ok: f64 = of(&page, API_REQUESTS, name)
            .iter()
            .filter(|s| s.labels["code"] == "OK")
            .map(|s| s.value)
            .sum();
        assert!(ok > 0.0, "{name}: api_requests_total with account");
        assert!(
            !of(
                &page,
                "aliyun_cloud_assistant_exporter_api_request_duration_seconds_count",
                name
            )
            .is_empty()
        );
        assert_eq!(
            value(
                &page,
                CREDENTIAL_REFRESHES,
                &[
                    ("account", name),
                    ("source", "config_file"),
                    ("result", "success")
                ]
            ),
            Some(1.0)
        );
    }
    assert_eq!(value(&page, RELOAD_OK, &[]), Some(1.0));

    // beta's API refuses everything from now on: only its regions go down,
    // keeping their last good series; alpha's are untouched.
    let alpha_before = fleet_series(&page, "alpha");
    let beta_agents = of(&page, AGENT_UP, "beta").len();
    beta.sim.update_faults(|f| {
        for action in [
            "DescribeRegions",
            "DescribeCloudAssistantStatus",
            "DescribeInstanceStatus",
            "ListPluginStatus",
        ] {
            f.actions.insert(
                action.into(),
                RegionFault::Error {
                    status: 403,
                    code: "Forbidden.RAM".into(),
                },
            );
        }
    });
    let report = r.collector.run_cycle().await;
    assert_eq!(
        (report.regions_ok, report.regions_failed),
        (2, 2),
        "{report:?}"
    );
    let page = page_samples(&r.collector);
    let up = regions_up(&page);
    for region in ["cn-hangzhou", "cn-shanghai"] {
        assert_eq!(up[&("alpha".to_string(), region.to_string())], 1.0);
    }
    for region in ["cn-beijing", "cn-hangzhou"] {
        assert_eq!(up[&("beta".to_string(), region.to_string())], 0.0);
    }
    assert_eq!(
        fleet_series(&page, "alpha"),
        alpha_before,
        "alpha untouched"
    );
    assert_eq!(
        of(&page, AGENT_UP, "beta").len(),
        beta_agents,
        "last good kept"
    );
    let refused: f64 = of(&page, API_REQUESTS, "beta")
        .iter()
        .filter(|s| s.labels["code"] == "Forbidden.RAM")
        .map(|s| s.value)
        .sum();
    assert!(refused > 0.0, "beta's failures are counted under beta");
    assert!(
        of(&page, API_REQUESTS, "alpha")
            .iter()
            .all(|s| s.labels["code"] == "OK"),
        "alpha saw no failure"
    );
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_collected_at_once_under_the_shared_limits() {
    // Fleets and latencies that differ, so the two accounts' requests do
    // not move through the shared limit in lockstep pairs of one account.
    let alpha = account(
        "alpha",
        7,
        &[
            ("cn-hangzhou", 120),
            ("cn-shanghai", 120),
            ("cn-beijing", 120),
        ],
    )
    .await;
    let beta = account(
        "beta",
        8,
        &[("cn-hangzhou", 60), ("cn-shanghai", 60), ("cn-beijing", 60)],
    )
    .await;
    // One gauge over both simulators: requests in hand at once, all accounts.
    let gauge = Arc::new(InFlightGauge::default());
    for (a, ms) in [(&alpha, 50), (&beta, 70)] {
        a.sim.share_in_flight(Arc::clone(&gauge));
        a.sim
            .update_faults(|f| f.latency = Duration::from_millis(ms));
    }
    let dir = TempDir::new("limits");
    let config = dir.write(
        "accounts.yml",
        &accounts_file(&[
            alpha.entry_in(&dir, &["cn-hangzhou", "cn-shanghai", "cn-beijing"]),
            beta.entry_in(&dir, &["cn-hangzhou", "cn-shanghai", "cn-beijing"]),
        ]),
    );
    // Sample both simulators while the first cycle runs: were both
    // accounts' requests ever in hand at the same moment?
    let overlap = AtomicBool::new(false);
    let sample = async {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if alpha.sim.in_flight() > 0 && beta.sim.in_flight() > 0 {
                overlap.store(true, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let started = Instant::now();
    let run = async {
        let r = start(
            &config,
            &["--collect.interval", "1h", "--aliyun.max-concurrency", "2"],
        )
        .await;
        wait_ready(r.addr).await;
        r
    };
    let r = tokio::select! {
        r = run => r,
        _ = sample => panic!("the first cycle took more than 30s"),
    };
    let took = started.elapsed();
    let page = scrape_samples(r.addr).await;
    assert_eq!(
        regions_up(&page).values().sum::<f64>(),
        6.0,
        "all collected"
    );
    assert!(
        gauge.max() <= 2,
        "{} requests in flight at once over both accounts, the limit is 2",
        gauge.max()
    );
    assert_eq!(gauge.max(), 2, "the limit is used");
    assert!(
        alpha.sim.max_in_flight() <= 2 && beta.sim.max_in_flight() <= 2,
        "{} {}",
        alpha.sim.max_in_flight(),
        beta.sim.max_in_flight()
    );
    assert!(
        overlap.load(Ordering::SeqCst),
        "both accounts had requests in flight at once (collected concurrently); cycle took {took:?}"
    );
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_accounts_and_keeps_them_on_a_bad_file() {
    let alpha = account("alpha", 7, &[("cn-hangzhou", 3)]).await;
    let beta = account("beta", 8, &[("cn-beijing", 2)]).await;
    let gamma = account("gamma", 9, &[("cn-shenzhen", 2)]).await;
    let dir = TempDir::new("reload");
    let config = dir.write(
        "accounts.yml",
        &accounts_file(&[alpha.entry(&dir), beta.entry(&dir)]),
    );
    let r = start(
        &config,
        &["--collect.interval", "1s", "--web.enable-lifecycle"],
    )
    .await;
    wait_ready(r.addr).await;
    let page = scrape_samples(r.addr).await;
    let accounts = |page: &[Sample]| -> BTreeSet<String> {
        regions_up(page).keys().map(|(a, _)| a.clone()).collect()
    };
    assert_eq!(
        accounts(&page),
        BTreeSet::from(["alpha".into(), "beta".into()])
    );
    let alpha_calls = |page: &[Sample]| -> f64 {
        of(page, API_REQUESTS, "alpha")
            .iter()
            .map(|s| s.value)
            .sum()
    };
    let before = alpha_calls(&page);
    let reload = || post_reload(r.addr);

    // beta leaves, gamma comes.
    dir.write(
        "accounts.yml",
        &accounts_file(&[alpha.entry(&dir), gamma.entry(&dir)]),
    );
    let (status, body) = reload().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("accounts reloaded"), "{body}");
    // alpha walks on its own clock: its next walk counts on from before.
    let page = scrape_until(r.addr, "alpha and gamma", |p| {
        accounts(p) == BTreeSet::from(["alpha".into(), "gamma".into()]) && alpha_calls(p) > before
    })
    .await;
    check_fleet(&page, &alpha);
    check_fleet(&page, &gamma);
    assert!(
        of(&page, AGENT_UP, "beta").is_empty(),
        "beta's series are gone"
    );
    assert!(
        of(&page, API_REQUESTS, "beta").is_empty(),
        "and its API counters"
    );
    // alpha did not change: same client, its counters go on.
    assert!(
        alpha_calls(&page) > before,
        "{} > {before}",
        alpha_calls(&page)
    );

    // A bad file: 500 naming the line; the running accounts stay.
    dir.write(
        "accounts.yml",
        &format!(
            "{}    extra_key: 1\n",
            accounts_file(&[alpha.entry(&dir), gamma.entry(&dir)])
        ),
    );
    let (status, body) = reload().await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("line 15") && body.contains("unknown field `extra_key`"),
        "{body}"
    );
    let cycles = |p: &[Sample]| value(p, CYCLES, &[]).unwrap_or(0.0);
    let now = cycles(&scrape_samples(r.addr).await);
    let page = scrape_until(r.addr, "two more cycles", |p| cycles(p) >= now + 2.0).await;
    assert_eq!(value(&page, RELOAD_OK, &[]), Some(0.0));
    assert_eq!(
        accounts(&page),
        BTreeSet::from(["alpha".into(), "gamma".into()])
    );
    assert!(regions_up(&page).values().all(|v| *v == 1.0));

    // Fixed again.
    dir.write("accounts.yml", &accounts_file(&[gamma.entry(&dir)]));
    let (status, body) = reload().await;
    assert_eq!(status, 200, "{body}");
    let page = scrape_until(r.addr, "gamma alone, reloaded", |p| {
        accounts(p) == BTreeSet::from(["gamma".into()]) && value(p, RELOAD_OK, &[]) == Some(1.0)
    })
    .await;
    check_fleet(&page, &gamma);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_and_profile_accounts() {
    const ROLE: &str = "acs:ram::1234567890123456:role/cloud-assistant-reader";
    let alpha = account("alpha", 7, &[("cn-hangzhou", 2)]).await;
    let beta = account("beta", 8, &[("cn-beijing", 2)]).await;
    let gamma = account("gamma", 9, &[("cn-shenzhen", 2)]).await;
    // alpha's API takes only the role's temporary credentials.
    let id = IdentityServer::start(&alpha.sim, IdentityConfig::default())
        .await
        .expect("identity server");
    alpha.sim.refuse_long_term_keys(true);
    let home = TempDir::new("profiles");
    home.write(
        ".aliyun/config.json",
        r#"{"current": "default", "profiles": [
            {"name": "default", "mode": "AK", "access_key_id": "LTAI-nobody", "access_key_secret": "x"},
            {"name": "ops", "mode": "AK", "access_key_id": "LTAI-beta", "access_key_secret": "secret-of-beta"}]}"#,
    );
    home.write(
        ".alibabacloud/credentials.ini",
        "[batch]\ntype = access_key\naccess_key_id = LTAI-gamma\naccess_key_secret = secret-of-gamma\n",
    );
    home.write("alpha.secret", "secret-of-alpha\n");
    let config = home.write(
        "accounts.yml",
        &format!(
            r#"accounts:
  - name: alpha
    endpoint: "{}"
    credentials:
      type: ram_role_arn
      role_arn: "{ROLE}"
      role_session_name: exporter-alpha
      source: {{type: access_key, access_key_id: LTAI-alpha, access_key_secret_file: alpha.secret}}
  - name: beta
    endpoint: "{}"
    credentials: {{type: profile, profile: ops}}
  - name: gamma
    endpoint: "{}"
    credentials: {{type: profile, profile: batch}}
"#,
            alpha.sim.url(),
            beta.sim.url(),
            gamma.sim.url()
        ),
    );
    let id_url = id.url();
    let r = start_with_env(
        &config,
        &["--collect.interval", "1h", "--aliyun.sts-endpoint", &id_url],
        &[("HOME", home.path().to_string_lossy().into_owned())],
    )
    .await;
    wait_ready(r.addr).await;
    let page = scrape_samples(r.addr).await;
    for a in [&alpha, &beta, &gamma] {
        check_fleet(&page, a);
    }
    assert_eq!(id.issued("AssumeRole"), 1);
    assert_eq!(id.assume_role_signers(), vec!["LTAI-alpha".to_string()]);
    for (account, source) in [
        ("alpha", "assume_role"),
        ("alpha", "config_file"),
        ("beta", "cli_profile"),
        ("gamma", "credentials_file"),
    ] {
        assert_eq!(
            value(
                &page,
                CREDENTIAL_REFRESHES,
                &[
                    ("account", account),
                    ("source", source),
                    ("result", "success")
                ]
            ),
            Some(1.0),
            "{account} {source}"
        );
    }
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_account_region_pairs() {
    let regions: Vec<(&str, usize)> = REGION_IDS[..6].iter().map(|r| (*r, 1)).collect();
    let alpha = account("alpha", 7, &regions).await;
    let beta = account("beta", 8, &regions).await;
    let dir = TempDir::new("shards");
    let config = dir.write(
        "accounts.yml",
        &accounts_file(&[alpha.entry(&dir), beta.entry(&dir)]),
    );
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut replicas = Vec::new();
    for index in ["0", "1"] {
        let r = start(
            &config,
            &[
                "--collect.interval",
                "1h",
                "--shard.count",
                "2",
                "--shard.index",
                index,
            ],
        )
        .await;
        wait_ready(r.addr).await;
        let page = scrape_samples(r.addr).await;
        for (pair, up) in regions_up(&page) {
            assert_eq!(up, 1.0, "{pair:?}");
            *seen.entry(pair).or_default() += 1;
        }
        replicas.push(r);
    }
    let want: BTreeSet<(String, String)> = ["alpha", "beta"]
        .iter()
        .flat_map(|a| regions.iter().map(|(r, _)| (a.to_string(), r.to_string())))
        .collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(seen.values().all(|n| *n == 1), "each pair once: {seen:?}");
    for r in replicas {
        r.shutdown().await;
    }
}

// ---- through the binary ----

#[tokio::test]
async fn a_bad_accounts_file_exits_2_with_one_line_naming_the_line() {
    let dir = TempDir::new("bad");
    dir.write("s", "secret\n");
    for (text, line, want) in [
        (
            "accounts:\n  - name: a\n    credentials:\n      type: access_key\n      access_key_id: x\n      access_key_secret_file: s\n      acces_key_id: y\n",
            7,
            "unknown field `acces_key_id`",
        ),
        (
            "accounts:\n  - name: prod\n  - name: staging\n  - name: prod\n",
            4,
            "duplicate account name \"prod\"",
        ),
        (
            "accounts:\n  - name: a\n    credentials:\n      type: access_key\n      access_key_id: x\n      access_key_secret: hunter2\n",
            6,
            "access_key_secret_file",
        ),
    ] {
        let path = dir.write("accounts.yml", text);
        let started = Instant::now();
        let err = refused(&["--config.file", &path], &[]);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(
            err.starts_with(&format!("error: config file {path} line {line}: ")),
            "{err}"
        );
        assert!(err.contains(want), "{want}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    // A file that is not there, and --demo with a file: one line, exit 2.
    let missing = dir.path().join("missing.yml");
    let missing = missing.to_string_lossy();
    let err = refused(&["--config.file", &missing], &[]);
    assert!(err.contains("cannot read it"), "{err}");
    refused(&["--config.file", &missing, "--demo"], &[]);
    // A secret file that cannot be read is not fatal: that account is down
    // (account_up 0, one log line naming it and the key), tried again.
    let path = dir.write(
        "accounts.yml",
        "accounts:\n  - name: a\n    credentials: {type: access_key, access_key_id: x, access_key_secret_file: nope}\n",
    );
    let exporter = ExporterProcess::spawn(&["--config.file", &path], &[]);
    wait_ready(exporter.socket()).await;
    let page = parse_metrics(&scrape(exporter.socket()).await);
    assert_eq!(value(&page, ACCOUNT_UP, &[("account", "a")]), Some(0.0));
    let err = exporter.stderr_so_far();
    assert!(
        err.contains("account down")
            && err.contains("account=a")
            && err.contains("access_key_secret_file"),
        "{err}"
    );
}

/// The binary, its stderr drained in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_accounts_file() {
    let alpha = account("alpha", 7, &[("cn-hangzhou", 2)]).await;
    let beta = account("beta", 8, &[("cn-beijing", 3)]).await;
    let dir = TempDir::new("sighup");
    let config = dir.write("accounts.yml", &accounts_file(&[alpha.entry(&dir)]));
    let exporter = ExporterProcess::spawn(
        &[
            "--config.file",
            &config,
            "--aliyun.rate-limit",
            "0",
            "--collect.interval",
            "1s",
            "--collect.plugin-discovery-interval",
            "0",
        ],
        &[],
    );
    wait_ready(exporter.socket()).await;
    let page = scrape_samples(exporter.socket()).await;
    assert_eq!(
        regions_up(&page).keys().cloned().collect::<Vec<_>>(),
        vec![("alpha".to_string(), "cn-hangzhou".to_string())]
    );

    dir.write(
        "accounts.yml",
        &accounts_file(&[alpha.entry(&dir), beta.entry(&dir)]),
    );
    exporter.signal("-HUP");
    let page = scrape_until(exporter.socket(), "beta collected", |p| {
        regions_up(p).get(&("beta".to_string(), "cn-beijing".to_string())) == Some(&1.0)
    })
    .await;
    assert_eq!(value(&page, RELOAD_OK, &[]), Some(1.0));

    // A bad file on SIGHUP: still serving, the accounts stay, logged once.
    dir.write("accounts.yml", "accounts:\n  - name: alpha\n    bogus: 1\n");
    exporter.signal("-HUP");
    let page = scrape_until(exporter.socket(), "a failed reload", |p| {
        value(p, RELOAD_OK, &[]) == Some(0.0)
    })
    .await;
    assert_eq!(regions_up(&page).len(), 2, "{:?}", regions_up(&page));
    let stderr = exporter.stop();
    assert!(stderr.contains("accounts reloaded"), "{stderr}");
    assert!(
        stderr.contains("accounts not reloaded") && stderr.contains("line 3"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-of-"), "no secret in the logs");
}
