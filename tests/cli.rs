//! The binary as a user runs it: flags, exit codes, demo mode, signals, logs.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cloud-assistant-exporter");

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("binary runs")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Child {
    let mut c = Command::new(BIN);
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.spawn().expect("spawn")
}

fn get(url: &str) -> Option<(u16, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let r = reqwest::get(url).await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    })
}

fn wait_for(url: &str, status: u16) -> String {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if let Some((s, body)) = get(url)
            && s == status
        {
            return body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} never answered {status}");
}

fn terminate(child: &mut Child) -> (bool, String) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status.success(), err);
        }
        assert!(Instant::now() < until, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn help_lists_every_flag() {
    let out = run(&["--help"], &[]);
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
    let out = run(&["--version"], &[]);
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
    ] {
        let out = run(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        if args[0] == "--aliyun.rate-limit" {
            assert!(err.contains("--aliyun.rate-limit"), "{err}");
        }
    }
}

#[test]
fn missing_credentials_exit_2_quickly_with_a_clear_error() {
    let started = Instant::now();
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let out = run(
        &["--web.listen-address", &addr],
        &[("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-only-id")],
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET") && err.contains("--demo"),
        "{err}"
    );
}

#[test]
fn demo_serves_metrics_and_stops_on_sigterm() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = spawn(
        &[
            "--demo",
            "--web.listen-address",
            &addr,
            "--log.format",
            "json",
        ],
        &[],
    );
    let body = wait_for(&format!("http://{addr}/ready"), 200);
    assert!(body.contains("ready"));
    let (status, page) = get(&format!("http://{addr}/metrics")).expect("metrics");
    assert_eq!(status, 200);
    for family in [
        "aliyun_cloud_assistant_agent_up{",
        "aliyun_cloud_assistant_instance_status{",
        "aliyun_cloud_assistant_agents{",
        "aliyun_cloud_assistant_exporter_region_up{",
    ] {
        assert!(page.contains(family), "demo page lacks {family}");
    }
    let (clean, stderr) = terminate(&mut child);
    assert!(clean, "graceful exit: {stderr}");
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

#[test]
fn secrets_never_reach_logs_even_at_debug() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let addr = format!("127.0.0.1:{}", free_port());
    let secret = "TOPSECRET-9f8e7d";
    let token = "TOKEN-SECRET-1a2b3c";
    let mut child = spawn(
        &[
            "--web.listen-address",
            &addr,
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
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-test"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", token),
        ],
    );
    let page = wait_for(&format!("http://{addr}/ready"), 200);
    let _ = page;
    let (_, metrics) = get(&format!("http://{addr}/metrics")).expect("metrics");
    assert!(
        metrics.contains("aliyun_cloud_assistant_exporter_region_up{region_id=\"cn-hangzhou\"} 0")
    );
    let (_, stderr) = terminate(&mut child);
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
