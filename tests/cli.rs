//! The binary as a user runs it: flags, exit codes, demo mode, signals, logs.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn help_lists_every_flag() {
    let out = run_exporter(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--web.listen-address",
        "--web.telemetry-path",
        "--aliyun.endpoint",
        "--aliyun.regions",
        "--collect.interval",
        "--collect.plugins",
        "--collect.plugin-discovery-interval",
        "--aliyun.max-concurrency",
        "--aliyun.rate-limit",
        "--collect.state-sets",
        "--shard.count",
        "--shard.index",
        "--web.max-requests",
        "--web.enable-lifecycle",
        "--demo",
        "--log.level",
        "--log.format",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn version_names_revision_and_compiler() {
    let out = run_exporter(&["--version"], &[]);
    assert!(out.status.success());
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        v.contains(env!("CARGO_PKG_VERSION")) && v.contains("revision") && v.contains("rustc"),
        "{v}"
    );
}

#[test]
fn bad_flags_are_one_line_and_exit_2() {
    for args in [
        &["--web.listen-address", "nowhere"][..],
        &["--collect.interval", "soon"],
        &["--aliyun.endpoint", "ftp://x"],
        &["--log.format", "xml"],
        &["--bogus"],
        &["--shard.count", "2", "--shard.index", "5", "--demo"],
        // Rates whose spacing overflows a duration (a panic once), or
        // rounds to none. Only the first with --demo: the others were
        // taken once, and the demo would run on.
        &["--aliyun.rate-limit", "1e-300", "--demo"],
        &["--aliyun.rate-limit", "1e308"],
        &["--aliyun.rate-limit", "0.0000001"],
        // Durations and numbers past any sane setting: refused, never
        // wrapped or overflowed.
        &["--collect.max-stale", "300000000000y"],
        &["--aliyun.request-timeout", "300000000000y"],
        &["--collect.interval", "11y"],
        &["--collect.timeout", "300000000000y"],
        &["--collect.invocations-interval", "300000000000y"],
        &["--collect.instance-info-interval", "99999999999999999999s"],
        &["--web.max-requests", "18446744073709551615"],
        &["--collect.invocations-max-pages", "70000"],
        &["--collect.max-command-names", "0"],
        &["--shard.count", "0"],
    ] {
        let err = refused(args, &[]);
        assert!(!err.contains("panicked"), "{err}");
        if args[0] == "--aliyun.rate-limit" {
            assert!(err.contains("--aliyun.rate-limit"), "{err}");
        }
    }
}

#[test]
fn missing_credentials_exit_2_quickly_with_a_clear_error() {
    let started = Instant::now();
    let addr = format!("127.0.0.1:{}", free_port());
    let out = run_exporter(
        &["--web.listen-address", &addr],
        &[("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-only-id".into())],
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET") && err.contains("--demo"),
        "{err}"
    );
}

#[tokio::test]
async fn demo_serves_metrics_and_stops_on_sigterm() {
    let e = ExporterProcess::spawn(&["--demo", "--log.format", "json"], &[]);
    wait_ready(e.socket()).await;
    let body = reqwest::get(e.url("/ready")).await.expect("ready");
    assert!(body.text().await.expect("body").contains("ready"));
    let page = scrape(e.socket()).await;
    for family in [
        "aliyun_cloud_assistant_agent_up{",
        "aliyun_cloud_assistant_instance_status{",
        "aliyun_cloud_assistant_agents{",
        "aliyun_cloud_assistant_exporter_region_up{",
    ] {
        assert!(page.contains(family), "demo page lacks {family}");
    }
    // The first page a newcomer sees already has plugin states, crashed
    // ones among them: names found in a walk are swept in the same walk.
    let samples = parse_metrics(&page);
    let crashed = samples.iter().any(|s| {
        s.name == "aliyun_cloud_assistant_plugin_status"
            && s.labels.get("status").map(String::as_str) == Some("Crashed")
            && s.value == 1.0
    });
    assert!(crashed, "no crashed plugin on the demo's first page");
    // The demo's command history: failures, and a scheduled task failing
    // on one host, from the walks beside the first.
    scrape_until(e.socket(), "the demo's failed commands", |p| {
        p.iter()
            .any(|s| s.name == "aliyun_cloud_assistant_invocation_failures_total")
            && p.iter().any(|s| {
                s.name == "aliyun_cloud_assistant_scheduled_invocation_last_run_failed"
                    && s.value == 1.0
            })
    })
    .await;
    let (status, stderr) = e.stop_with_status();
    assert!(status.success(), "graceful exit: {stderr}");
    // JSON logs: every line is an object; one line per region per cycle.
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).expect("json log line"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "region collected" && l["region"] == "cn-hangzhou"),
        "{stderr}"
    );
    assert!(!stderr.contains(cloud_assistant_exporter::simulator::DEFAULT_KEY_SECRET));
}

#[tokio::test]
async fn secrets_never_reach_logs_even_at_debug() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let secret = "TOPSECRET-9f8e7d";
    let token = "TOKEN-SECRET-1a2b3c";
    let e = ExporterProcess::spawn(
        &[
            "--aliyun.endpoint",
            &dead,
            "--aliyun.regions",
            "cn-hangzhou",
            "--log.level",
            "debug",
            "--aliyun.request-timeout",
            "1s",
        ],
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-test".into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret.into()),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", token.into()),
        ],
    );
    wait_ready(e.socket()).await;
    let metrics = scrape(e.socket()).await;
    assert!(
        metrics.contains("aliyun_cloud_assistant_exporter_region_up{region_id=\"cn-hangzhou\"} 0")
    );
    let stderr = e.stop();
    assert!(stderr.contains("region collection failed"), "{stderr}");
    assert!(
        stderr.contains("retrying API call"),
        "debug logs shown: {stderr}"
    );
    for s in [secret, token] {
        assert!(!stderr.contains(s), "secret in logs");
        assert!(!metrics.contains(s), "secret in metrics");
    }
}
