//! The Grafana dashboard and the alert rules against a live Prometheus.
//!
//! The simulator and the exporter run in-process on a pinned clock; a real
//! `prometheus` (Debian's package) scrapes the exporter every second with
//! `dashboards/alerts.yml` loaded. Every panel query and every rule expression
//! must run, panels must have data wherever the simulated fleet has some, and
//! the per-instance alerts must name exactly the instances the fleet says.
//! Without `prometheus` on PATH the test is skipped, except under CI.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::simulator::fleet::{Agent, QUIRK_MINUTE_TIMES};
use cloud_assistant_exporter::simulator::{Fleet, FleetConfig, Simulator};
use serde_json::Value;

/// Panels that legitimately show no data for the simulated fleet, and why.
const EMPTY_PANELS: &[(&str, &str)] = &[
    (
        "API errors by code",
        "the simulator injects no faults here, so every request answers OK",
    ),
    (
        "API retries by action",
        "no request fails, so none is retried and the retry counter has no series yet",
    ),
];

/// Exporter-wide metrics: they have no region_id label to filter on.
const GLOBAL_METRICS: &[&str] = &[
    "aliyun_cloud_assistant_exporter_api_requests_total",
    "aliyun_cloud_assistant_exporter_api_retries_total",
    "aliyun_cloud_assistant_exporter_api_request_duration_seconds",
    "aliyun_cloud_assistant_exporter_plugin_names",
    "aliyun_cloud_assistant_exporter_last_collection_timestamp_seconds",
    "aliyun_cloud_assistant_exporter_build_info",
];

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A Prometheus child process, killed (and its data removed) on drop, so a
/// failing assertion does not leave it running.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    base: String,
}

impl Prometheus {
    fn start(binary: &Path, target: std::net::SocketAddr) -> Prometheus {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "cloud-assistant-dashboards-{}-{stamp}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("data")).expect("create the Prometheus temp dir");
        // A free loopback port: bind, read it, release it for Prometheus.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let rules = repo_file("dashboards/alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules:?}\n\
             scrape_configs:\n  - job_name: cloud-assistant\n    static_configs:\n      - targets: [\"{target}\"]\n"
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            dir,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Starts Prometheus and waits for `/-/ready`. A port taken by someone
    /// else between choosing it and Prometheus binding it is retried.
    async fn launch(
        binary: &Path,
        target: std::net::SocketAddr,
        http: &reqwest::Client,
    ) -> Prometheus {
        for _ in 0..3 {
            let mut p = Prometheus::start(binary, target);
            match p.wait_ready(http).await {
                Ok(()) => return p,
                Err(_) if p.log().contains("address already in use") => continue,
                // Dropping `p` while panicking prints its log.
                Err(why) => panic!("prometheus did not start: {why}"),
            }
        }
        panic!("prometheus found no free port in 3 tries");
    }

    /// Waits for `/-/ready`; gives up early if the process exits.
    async fn wait_ready(&mut self, http: &reqwest::Client) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited ({status})"));
            }
            if let Ok(r) = http.get(format!("{}/-/ready", self.base)).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err("not ready within 30s".into())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- prometheus log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `application/x-www-form-urlencoded` value (reqwest's `form` feature is off).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// The Prometheus HTTP API.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> Result<Value, String> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body = r.text().await.map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"].clone())
    }

    /// An instant query now; the samples (a scalar counts as one).
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let r = self
            .http
            .post(format!("{}/api/v1/query", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("query={}", form_encode(expr)))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body = r.text().await.map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        let data = &v["data"];
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                Ok(data["result"].as_array().cloned().unwrap_or_default())
            }
            Some("scalar") => Ok(vec![serde_json::json!({ "value": data["result"] })]),
            other => Err(format!("unexpected result type {other:?}")),
        }
    }

    /// Polls `expr` until it has a sample that is a number, up to `secs`.
    async fn wait_for_data(&self, expr: &str, secs: u64) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            match self.query(expr).await {
                Ok(r) if has_data(&r) => return r,
                Err(e) => panic!("query {expr:?} failed: {e}"),
                Ok(_) if Instant::now() > deadline => {
                    panic!("no data for {expr:?} within {secs}s")
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

/// True if some sample is a number (histogram_quantile over no traffic is NaN).
fn has_data(samples: &[Value]) -> bool {
    samples.iter().any(|s| {
        s["value"][1]
            .as_str()
            .is_some_and(|v| v.parse::<f64>().is_ok_and(|x| !x.is_nan()))
    })
}

/// A rule read from alerts.yml.
#[derive(Debug)]
struct Rule {
    alert: bool,
    name: String,
    expr: String,
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// Reads the rules of a Prometheus rule file: `- alert:`/`- record:` start a
/// rule, `expr:` is either one line or a `|`/`>` block scalar (every deeper
/// indented line after it). Enough YAML for alerts.yml, with no new dependency.
fn read_rules(text: &str) -> Vec<Rule> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut rules: Vec<Rule> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_start();
        if let Some(name) = t.strip_prefix("- alert:") {
            rules.push(Rule {
                alert: true,
                name: unquote(name),
                expr: String::new(),
            });
        } else if let Some(name) = t.strip_prefix("- record:") {
            rules.push(Rule {
                alert: false,
                name: unquote(name),
                expr: String::new(),
            });
        } else if let Some(rest) = t.strip_prefix("expr:") {
            let rest = rest.trim();
            let expr = if rest.starts_with('|') || rest.starts_with('>') {
                let own = indent(line);
                let mut body = Vec::new();
                while let Some(next) = lines.get(i + 1) {
                    if !next.trim().is_empty() && indent(next) <= own {
                        break;
                    }
                    body.push(next.trim());
                    i += 1;
                }
                body.join("\n").trim().to_string()
            } else {
                unquote(rest)
            };
            let rule = rules
                .last_mut()
                .expect("every expr: follows a - alert: or - record:");
            assert!(rule.expr.is_empty(), "{}: two exprs", rule.name);
            rule.expr = expr;
        }
        i += 1;
    }
    rules
}

/// A dashboard panel's title and its queries (panels of collapsed rows too).
fn panel_queries(panels: &[Value], out: &mut Vec<(String, Vec<String>)>) {
    for p in panels {
        if let Some(nested) = p["panels"].as_array() {
            panel_queries(nested, out);
        }
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("").to_string();
        let exprs: Vec<String> = p["targets"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .filter_map(|t| t["expr"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.push((title, exprs));
    }
}

/// Grafana's variables, as the dashboard would send them with "All" selected.
fn substitute(expr: &str) -> String {
    let mut s = expr.to_string();
    for (from, to) in [
        ("${region_id}", ".*"),
        ("$region_id", ".*"),
        ("${instance_id}", ".*"),
        ("$instance_id", ".*"),
        ("${__rate_interval}", "1m"),
        ("$__rate_interval", "1m"),
        ("${__interval}", "15s"),
        ("$__interval", "15s"),
    ] {
        s = s.replace(from, to);
    }
    s
}

/// Every selector of a region-scoped metric filters on `$region_id`, and of a
/// per-instance metric on `$instance_id` too. Returns the offending selectors.
fn unfiltered_selectors(expr: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let bytes = expr.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = 0;
    while i < bytes.len() {
        let starts = (expr[i..].starts_with("aliyun_cloud_assistant_")
            || expr[i..].starts_with("cloud_assistant:"))
            && (i == 0 || !is_ident(bytes[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        let name = &expr[i..end];
        let matchers = if bytes.get(end) == Some(&b'{') {
            let close = expr[end..].find('}').map_or(expr.len(), |c| end + c + 1);
            let m = &expr[end..close];
            end = close;
            m.replace(' ', "")
        } else {
            String::new()
        };
        i = end;
        if GLOBAL_METRICS.iter().any(|g| name.starts_with(g)) {
            continue;
        }
        let per_instance = ["agent_", "plugin_", "instance_status"]
            .iter()
            .any(|p| name.starts_with(&format!("aliyun_cloud_assistant_{p}")));
        let region_ok = matchers.contains("region_id=~\"$region_id\"");
        let instance_ok = !per_instance || matchers.contains("instance_id=~\"$instance_id\"");
        if !region_ok || !instance_ok {
            bad.push(format!("{name}{matchers}"));
        }
    }
    bad
}

/// GitHub's anchor of a Markdown heading.
/// The heartbeat as the exporter serves it: minute precision where the region
/// answers in the old format.
fn served_heartbeat(quirks: u8, h: i64) -> i64 {
    if quirks & QUIRK_MINUTE_TIMES != 0 {
        h - h.rem_euclid(60)
    } else {
        h
    }
}

type Key = Vec<String>;

/// What each per-instance alert must name, from the simulated fleet.
fn expected_alerts(fleet: &Fleet, now: i64) -> Vec<(&'static str, BTreeSet<Key>)> {
    let mut stale = BTreeSet::new();
    let mut down = BTreeSet::new();
    let mut not_installed = BTreeSet::new();
    let mut crashed = BTreeSet::new();
    for (region, r) in &fleet.regions {
        for inst in r.instances.iter().filter(|i| i.status == "Running") {
            let key = vec![region.clone(), inst.id.clone()];
            if let Some(h) = inst.last_heartbeat(now)
                && now - served_heartbeat(inst.quirks, h) > 300
            {
                stale.insert(key.clone());
            }
            if inst.agent == Agent::NotInstalled {
                not_installed.insert(key.clone());
            } else if !inst.agent_up(now) {
                down.insert(key.clone());
            }
            for p in inst.plugins.iter().filter(|p| p.status == "Crashed") {
                crashed.insert(vec![region.clone(), inst.id.clone(), p.name.clone()]);
            }
        }
    }
    vec![
        ("CloudAssistantHeartbeatStale", stale),
        ("CloudAssistantAgentDown", down),
        ("CloudAssistantAgentNotInstalled", not_installed),
        ("CloudAssistantPluginCrashed", crashed),
    ]
}

/// Active (pending or firing) alerts named `alertname`, keyed by region,
/// instance and plugin (where the alert has one).
fn active(alerts: &[Value], alertname: &str) -> BTreeSet<Key> {
    alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == alertname)
        .filter(|a| matches!(a["state"].as_str(), Some("pending" | "firing")))
        .map(|a| {
            let l = &a["labels"];
            ["region_id", "instance_id", "plugin"]
                .iter()
                .filter_map(|k| l[*k].as_str().map(str::to_string))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_against_live_prometheus() {
    let Some(prometheus) = find_on_path("prometheus") else {
        if std::env::var_os("CI").is_some() {
            panic!("prometheus is not on PATH (apt-get install prometheus)");
        }
        eprintln!("NOTICE: prometheus is not on PATH; skipping the live dashboard and alert test");
        return;
    };

    // The files under test, read first so a broken file fails fast.
    let rules_text =
        std::fs::read_to_string(repo_file("dashboards/alerts.yml")).expect("alerts.yml");
    let rules = read_rules(&rules_text);
    let alert_lines = rules_text
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert_eq!(
        rules.iter().filter(|r| r.alert).count(),
        alert_lines,
        "every - alert: line read"
    );
    assert!(alert_lines >= 9 && rules.iter().any(|r| !r.alert));
    for r in &rules {
        assert!(!r.expr.is_empty(), "{} has no expr", r.name);
    }
    let readme = std::fs::read_to_string(repo_file("dashboards/README.md")).expect("README");
    let anchors: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(common::github_anchor)
        .collect();

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("dashboards/cloud-assistant.json"))
            .expect("cloud-assistant.json"),
    )
    .expect("the dashboard is JSON");
    assert_eq!(dashboard["title"], "Cloud Assistant");
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let vars: Vec<&Value> = dashboard["templating"]["list"]
        .as_array()
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    for (name, kind) in [
        ("datasource", "datasource"),
        ("region_id", "query"),
        ("instance_id", "query"),
    ] {
        let v = vars
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("variable {name}"));
        assert_eq!(v["type"], kind, "variable {name}");
        if kind == "query" {
            assert_eq!(v["multi"], true, "{name} multi");
            assert_eq!(v["includeAll"], true, "{name} includeAll");
            assert_eq!(v["allValue"], ".*", "{name} allValue");
        }
    }
    let mut panels = Vec::new();
    panel_queries(dashboard["panels"].as_array().expect("panels"), &mut panels);
    assert!(panels.len() >= 20, "{} panels", panels.len());
    for (title, exprs) in &panels {
        assert!(!exprs.is_empty(), "panel {title:?} has no query");
        for e in exprs {
            let bad = unfiltered_selectors(e);
            assert!(
                bad.is_empty(),
                "panel {title:?}: selectors without the $region_id/$instance_id filters: {bad:?}"
            );
        }
    }
    for (title, _) in EMPTY_PANELS {
        assert!(
            panels.iter().any(|(t, _)| t == title),
            "EMPTY_PANELS names {title:?}, which the dashboard does not have"
        );
    }

    // The fleet at a pinned "now" near the wall clock (Prometheus stamps
    // samples with its own time); started an hour ago, so agents that stop
    // beating after the start have every heartbeat age from 0 to an hour.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let clock = Clock::fixed(now);
    let sim = Simulator::start_with(
        FleetConfig::demo(now - 3600),
        clock.clone(),
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .expect("simulator");
    // Three Running instances with heartbeats exactly 299, 300 and 301 seconds
    // old, so the "older than 5 minutes" edge is exercised on every run.
    let edge_ages = [299, 300, 301];
    let mut edge = Vec::new();
    sim.update_fleet(|fleet| {
        let region = fleet.regions.get_mut("cn-hangzhou").expect("cn-hangzhou");
        assert!(
            !region.quirky,
            "edge instances need full-precision heartbeats"
        );
        for (inst, age) in region
            .instances
            .iter_mut()
            .filter(|i| i.status == "Running" && i.agent != Agent::NotInstalled)
            .zip(edge_ages)
        {
            inst.agent = Agent::Down {
                last_heartbeat: now - age,
            };
            edge.push((inst.id.clone(), age));
        }
    });
    assert_eq!(
        edge.len(),
        edge_ages.len(),
        "Running instances for the edge"
    );
    let running = common::start_exporter(
        &sim,
        &[
            "--collect.interval",
            "1h",
            "--collect.plugins",
            "ecs-tool-monitor,aliyun-service-ops,oos-cloudmonitor",
            "--collect.plugin-discovery-interval",
            "0",
        ],
        clock,
    )
    .await;
    common::wait_ready(running.addr).await;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let prom = Prometheus::launch(&prometheus, running.addr, &http).await;
    let api = Api {
        http,
        base: prom.base.clone(),
    };

    api.wait_for_data("aliyun_cloud_assistant_agent_up", 30)
        .await;
    // A second cycle while Prometheus scrapes, so the API counters move and
    // the rate and latency panels have traffic to show.
    running.collector.run_cycle().await;
    api.wait_for_data(
        "sum(rate(aliyun_cloud_assistant_exporter_api_requests_total[1m])) > 0",
        15,
    )
    .await;
    for r in rules.iter().filter(|r| !r.alert) {
        api.wait_for_data(&r.name, 15).await;
    }

    // Prometheus loaded the same rules the reader found.
    let loaded = api.get("/api/v1/rules").await.expect("/api/v1/rules");
    let mut loaded_names = BTreeSet::new();
    for g in loaded["groups"].as_array().expect("rule groups") {
        for r in g["rules"].as_array().expect("rules") {
            let name = r["name"].as_str().expect("rule name").to_string();
            if r["type"] == "alerting" {
                assert!(r["labels"]["severity"].is_string(), "{name}: severity");
                for a in ["summary", "description", "runbook"] {
                    assert!(r["annotations"][a].is_string(), "{name}: annotation {a}");
                }
                let runbook = r["annotations"]["runbook"].as_str().unwrap_or("");
                let anchor = runbook.rsplit_once('#').map(|(_, a)| a).unwrap_or("");
                assert!(
                    runbook.contains("dashboards/README.md#") && anchors.contains(anchor),
                    "{name}: runbook {runbook:?} is not a heading of dashboards/README.md"
                );
            }
            loaded_names.insert(name);
        }
    }
    let read_names: BTreeSet<String> = rules.iter().map(|r| r.name.clone()).collect();
    assert_eq!(loaded_names, read_names, "rules Prometheus loaded");

    // Every rule expression runs.
    for r in &rules {
        if let Err(e) = api.query(&r.expr).await {
            panic!("rule {}: {e}\n{}", r.name, r.expr);
        }
    }

    // Every panel query runs, and has data unless listed in EMPTY_PANELS.
    let mut failures = Vec::new();
    for (title, exprs) in &panels {
        let allowed_empty = EMPTY_PANELS.iter().any(|(t, _)| t == title);
        for e in exprs {
            let q = substitute(e);
            assert!(
                !q.contains("${") && !q.split('$').skip(1).any(|rest| rest
                    .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')),
                "panel {title:?}: unknown variable left in {q}"
            );
            match api.query(&q).await {
                Err(err) => failures.push(format!("{title}: {err}\n  {q}")),
                Ok(r) if !has_data(&r) && !allowed_empty => {
                    failures.push(format!("{title}: no data\n  {q}"))
                }
                Ok(r) if has_data(&r) && allowed_empty => eprintln!(
                    "NOTICE: panel {title:?} has data now; EMPTY_PANELS may be out of date"
                ),
                Ok(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "panels:\n{}", failures.join("\n"));

    // The variables' own queries list the regions and instances.
    for (label, matcher) in [
        ("region_id", "aliyun_cloud_assistant_agent_up"),
        (
            "instance_id",
            "aliyun_cloud_assistant_agent_up{region_id=~\".*\"}",
        ),
    ] {
        let values = api
            .get(&format!(
                "/api/v1/label/{label}/values?match[]={}",
                form_encode(matcher)
            ))
            .await
            .expect("label values");
        assert!(
            values.as_array().is_some_and(|v| !v.is_empty()),
            "no {label} values"
        );
    }

    // The per-instance alerts name exactly the instances the fleet says.
    let expected = expected_alerts(&sim.fleet(), now);
    for (name, want) in &expected {
        assert!(!want.is_empty(), "the demo fleet has no case for {name}");
        eprintln!("{name}: {} expected", want.len());
    }
    let stale = &expected[0].1;
    for (id, age) in &edge {
        let key = vec!["cn-hangzhou".to_string(), id.clone()];
        assert_eq!(
            stale.contains(&key),
            *age > 300,
            "{id}: heartbeat {age}s old"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let alerts = loop {
        let data = api.get("/api/v1/alerts").await.expect("/api/v1/alerts");
        let alerts = data["alerts"].as_array().cloned().unwrap_or_default();
        let done = expected
            .iter()
            .all(|(name, want)| active(&alerts, name) == *want);
        if done || Instant::now() > deadline {
            break alerts;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for (name, want) in &expected {
        let got = active(&alerts, name);
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name}: {} expected, {} active; missing {missing:?}; unexpected {extra:?}",
            want.len(),
            got.len()
        );
    }
    for a in alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == "CloudAssistantHeartbeatStale")
    {
        let id = a["labels"]["instance_id"].as_str().unwrap_or("?");
        let region = a["labels"]["region_id"].as_str().unwrap_or("?");
        assert_eq!(a["labels"]["severity"], "warning");
        let description = a["annotations"]["description"].as_str().unwrap_or("");
        assert!(
            description.contains(id) && description.contains(region),
            "{description}"
        );
    }

    drop(prom);
    running.shutdown().await;
}
