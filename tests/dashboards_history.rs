//! The dashboard on a 100 000-instance fleet: a synthetic six-hour history at
//! the default 60s interval, written as OpenMetrics and turned into TSDB
//! blocks by `promtool tsdb create-blocks-from openmetrics`, served by a real
//! Prometheus at its default query limits (50M samples, 2 minutes). Every
//! panel query runs as Grafana runs it: range panels over the six hours,
//! instant panels at the end. None may fail, every panel must have data,
//! and the slowest query's time is printed.
//!
//! The history holds what the panels read: the per-region aggregates, the
//! exporter's own series and Prometheus' scrape series, command failures
//! and scheduled tasks, and the recording rules of alerts.yml as they would
//! be recorded (problem sets of a few hundred instances each, the top-20
//! sets). It also holds the raw per-instance series the two top-20
//! recording rules read, for all 100 000 instances, and runs those rules'
//! expressions as Prometheus would: at the end of the range, reading at
//! most the last hour. So by default the per-instance series cover the
//! last 65 minutes: 15 million samples, a 2.8 GB OpenMetrics file, about a
//! minute of promtool on two cores. `CLOUD_ASSISTANT_HISTORY_FULL=1` writes
//! them over the whole six hours: 74 million samples, 13.5 GB, five minutes
//! of promtool, too slow for CI (the queries take the same time: they read
//! the same hour).
//!
//! Without promtool and prometheus on PATH the test is skipped, except
//! under CI.

mod common;

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{PromApi, TempDir, grafana_substitute, has_data, repo_file};
use serde_json::Value;

const INSTANCES: usize = 100_000;
const ACCOUNTS: [&str; 2] = ["prod", "staging"];
const REGIONS: &[&str] = common::REGION_IDS.split_at(10).0;
const PLUGINS: [&str; 3] = ["ecs-tool-monitor", "aliyun-service-ops", "oos-cloudmonitor"];
const HOURS: i64 = 6;
const STEP: i64 = 60;
const JOB: &str = "cloud-assistant-exporter";
/// Grafana's `$__rate_interval` with the data source's scrape interval at
/// 60s: four intervals.
const RATE_INTERVAL: &str = "4m";
/// The step Grafana picks for six hours on a wide panel.
const QUERY_STEP: &str = "15";
/// Grafana's default data source timeout: a slower panel shows an error.
const GRAFANA_TIMEOUT: Duration = Duration::from_secs(30);

/// The problem tables show at most this many rows (`topk` in the panels).
const TABLE_ROWS: usize = 200;
/// Scheduled tasks per region, and the instances each runs on.
const TASKS: [(&str, &str, &str); 4] = [
    ("backup", "rate(5m)", "Period"),
    ("rotate", "rate(1h)", "Period"),
    ("report", "0 0 * * * ?", "Period"),
    ("bootstrap", "", "EveryReboot"),
];
const TASK_INSTANCES: usize = 10;
/// Command names failing in each region, with their error codes.
const FAILING: [(&str, &str, &str); 4] = [
    ("deploy-app", "Failed", "ExitCodeNonzero"),
    ("deploy-app", "Timeout", "ExecutionTimeout"),
    ("patch-os", "Failed", "ClientNotRunning"),
    ("_other", "Error", ""),
];

/// One in `N` instances has each problem.
const DOWN_EVERY: usize = 199;
const NOT_INSTALLED_EVERY: usize = 499;
const CRASHED_EVERY: usize = 311;
const STOPPED_EVERY: usize = 257;
const MANAGED_PER_REGION: usize = 50;

/// Writes OpenMetrics: each metric's lines together, each series' samples
/// in time order, as promtool requires.
struct Writer {
    out: std::io::BufWriter<std::fs::File>,
    samples: u64,
    line: String,
}

impl Writer {
    /// `name{labels}` at every step from `from` to `to`, with `value(k)` for
    /// the k-th sample from `from`.
    fn series(&mut self, name: &str, labels: &str, from: i64, to: i64, value: impl Fn(i64) -> f64) {
        let mut t = from;
        let mut k = 0;
        while t <= to {
            self.line.clear();
            let _ = writeln!(self.line, "{name}{{{labels}}} {} {t}", value(k));
            self.out.write_all(self.line.as_bytes()).expect("write");
            self.samples += 1;
            t += STEP;
            k += 1;
        }
    }
}

impl Writer {
    /// A constant series of `name` for each status in `counts`, with
    /// `labels` and the status.
    fn statuses(&mut self, name: &str, labels: &str, from: i64, to: i64, counts: &[(&str, usize)]) {
        for (status, v) in counts {
            self.series(
                name,
                &format!(r#"{labels},status="{status}""#),
                from,
                to,
                |_| *v as f64,
            );
        }
    }
}

/// A sample's value from its step number and the range's start.
type SampleFn = fn(i64, i64) -> f64;

/// Where an (account, region) is collected: two shards of one job.
fn target(a: usize, r: usize) -> String {
    format!(r#"job="{JOB}",instance="shard-{}:9791""#, (a + r) % 2)
}

fn instance_id(a: usize, r: usize, n: usize) -> String {
    format!("i-{a}{r:02}{n:014}")
}

/// Counts of what the history holds, to check the panels against.
#[derive(Default, Debug)]
struct Fleet {
    per_region: usize,
    down: usize,
    agents_up: usize,
}

fn write_history(path: &std::path::Path, start: i64, end: i64, full: bool) -> (Fleet, u64) {
    let mut w = Writer {
        out: std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("file")),
        samples: 0,
        line: String::with_capacity(256),
    };
    let per_region = INSTANCES / (ACCOUNTS.len() * REGIONS.len());
    let raw_from = if full { start } else { end - 65 * 60 };
    let mut fleet = Fleet {
        per_region,
        ..Fleet::default()
    };
    let pairs: Vec<(usize, usize)> = (0..ACCOUNTS.len())
        .flat_map(|a| (0..REGIONS.len()).map(move |r| (a, r)))
        .collect();
    let region_labels = |a: usize, r: usize| {
        format!(
            r#"{},account="{}",region_id="{}""#,
            target(a, r),
            ACCOUNTS[a],
            REGIONS[r]
        )
    };
    let inst_labels = |a: usize, r: usize, n: usize| {
        format!(
            r#"{},instance_id="{}""#,
            region_labels(a, r),
            instance_id(a, r, n)
        )
    };
    // What the problem-set rules record: the exporter's labels and `job`,
    // no target label.
    let set_labels = |a: usize, r: usize, n: usize| {
        format!(
            r#"job="{JOB}",account="{}",region_id="{}",instance_id="{}""#,
            ACCOUNTS[a],
            REGIONS[r],
            instance_id(a, r, n)
        )
    };
    let down = |n: usize| n % DOWN_EVERY == 7;
    let not_installed = |n: usize| n % NOT_INSTALLED_EVERY == 3;
    let crashed = |n: usize| n % CRASHED_EVERY == 5;
    let stopped = |n: usize| n % STOPPED_EVERY == 11;

    // Raw per-instance series, 100 000 of each.
    for (a, r) in &pairs {
        for n in 0..per_region {
            let busy = (n % 5 == 0) as u64 as f64 * ((n % 7) as f64 + 1.0);
            w.series(
                "aliyun_cloud_assistant_agent_active_tasks",
                &inst_labels(*a, *r, n),
                raw_from,
                end,
                |_| busy,
            );
        }
    }
    for (a, r) in &pairs {
        for n in 0..per_region {
            let per_step = (n % 4) as f64;
            w.series(
                "aliyun_cloud_assistant_agent_invocations_total",
                &inst_labels(*a, *r, n),
                raw_from,
                end,
                |k| 1000.0 + per_step * k as f64,
            );
        }
    }

    // Per-region aggregates.
    for (a, r) in &pairs {
        let l = region_labels(*a, *r);
        let n_down = (0..per_region).filter(|n| down(*n)).count();
        let n_none = (0..per_region).filter(|n| not_installed(*n)).count();
        fleet.down += n_down;
        fleet.agents_up += per_region - n_down - n_none;
        w.statuses(
            "aliyun_cloud_assistant_agents",
            &l,
            start,
            end,
            &[
                ("up", per_region - n_down - n_none),
                ("down", n_down),
                ("not_installed", n_none),
            ],
        );
    }
    for (a, r) in &pairs {
        let l = region_labels(*a, *r);
        w.statuses(
            "aliyun_cloud_assistant_instances",
            &l,
            start,
            end,
            &[
                ("Running", per_region - 100),
                ("Stopped", 90),
                ("Pending", 5),
                ("Starting", 3),
                ("Stopping", 2),
            ],
        );
    }
    for (a, r) in &pairs {
        let l = region_labels(*a, *r);
        for plugin in PLUGINS {
            w.statuses(
                "aliyun_cloud_assistant_plugins",
                &format!(r#"{l},plugin="{plugin}""#),
                start,
                end,
                &[
                    ("Running", per_region - 60),
                    ("Crashed", per_region / CRASHED_EVERY),
                    ("Stopped", per_region / STOPPED_EVERY),
                    ("Installed", 10),
                    ("NotInstalled", 20),
                    ("Removed", 1),
                    ("Unknown", 0),
                ],
            );
        }
    }
    for (a, r) in &pairs {
        let l = region_labels(*a, *r);
        w.statuses(
            "aliyun_cloud_assistant_managed_instances",
            &l,
            start,
            end,
            &[("connected", MANAGED_PER_REGION - 2), ("disconnected", 2)],
        );
    }

    // The exporter's own series.
    for (a, r) in &pairs {
        w.series(
            "aliyun_cloud_assistant_exporter_region_up",
            &region_labels(*a, *r),
            start,
            end,
            |_| 1.0,
        );
    }
    for (a, r) in &pairs {
        let first = start;
        w.series(
            "aliyun_cloud_assistant_exporter_region_last_success_timestamp_seconds",
            &region_labels(*a, *r),
            start,
            end,
            |k| (first + k * STEP - 20) as f64,
        );
    }
    for (a, r) in &pairs {
        w.series(
            "aliyun_cloud_assistant_exporter_collection_duration_seconds",
            &region_labels(*a, *r),
            start,
            end,
            |k| 10.0 + (k % 7) as f64,
        );
    }
    for (a, r) in &pairs {
        for (result, every) in [("ok", 1), ("failed", 97), ("timeout", 0)] {
            w.series(
                "aliyun_cloud_assistant_exporter_region_walks_total",
                &format!(r#"{},result="{result}""#, region_labels(*a, *r)),
                start,
                end,
                |k| if every == 0 { 0.0 } else { (k / every) as f64 },
            );
        }
    }
    for (a, r) in &pairs {
        for plugin in PLUGINS {
            w.series(
                "aliyun_cloud_assistant_exporter_plugin_sweep_up",
                &format!(r#"{},plugin="{plugin}""#, region_labels(*a, *r)),
                start,
                end,
                |k| if k % 50 == 0 && *r == 0 { 0.0 } else { 1.0 },
            );
        }
    }
    let shard = |s: usize| format!(r#"job="{JOB}",instance="shard-{s}:9791""#);
    let actions = [
        "DescribeCloudAssistantStatus",
        "DescribeInstanceStatus",
        "ListPluginStatus",
        "DescribeInstances",
    ];
    for (a, account) in ACCOUNTS.iter().enumerate() {
        // A counter of every action that grows by `per_step` a step.
        let per_action = |w: &mut Writer, name: &str, per_step: f64| {
            for action in actions {
                w.series(
                    name,
                    &format!(r#"{},account="{account}",action="{action}""#, shard(a)),
                    start,
                    end,
                    |k| per_step * k as f64,
                );
            }
        };
        for action in actions {
            for (code, per_step) in [
                ("OK", 120.0),
                ("Throttling.User", 6.0),
                ("ServiceUnavailable", 1.0),
            ] {
                w.series(
                    "aliyun_cloud_assistant_exporter_api_requests_total",
                    &format!(
                        r#"{},account="{account}",action="{action}",code="{code}""#,
                        shard(a)
                    ),
                    start,
                    end,
                    |k| per_step * k as f64,
                );
            }
        }
        per_action(
            &mut w,
            "aliyun_cloud_assistant_exporter_api_retries_total",
            7.0,
        );
        for action in actions {
            let buckets = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            for (i, le) in buckets.iter().enumerate() {
                w.series(
                    "aliyun_cloud_assistant_exporter_api_request_duration_seconds_bucket",
                    &format!(
                        r#"{},account="{account}",action="{action}",le="{le}""#,
                        shard(a)
                    ),
                    start,
                    end,
                    |k| (127.0 * (i as f64 + 1.0) / buckets.len() as f64).floor() * k as f64,
                );
            }
            w.series(
                "aliyun_cloud_assistant_exporter_api_request_duration_seconds_bucket",
                &format!(
                    r#"{},account="{account}",action="{action}",le="+Inf""#,
                    shard(a)
                ),
                start,
                end,
                |k| 127.0 * k as f64,
            );
        }
        per_action(
            &mut w,
            "aliyun_cloud_assistant_exporter_api_request_duration_seconds_sum",
            30.0,
        );
        per_action(
            &mut w,
            "aliyun_cloud_assistant_exporter_api_request_duration_seconds_count",
            127.0,
        );
        for result in ["success", "failure"] {
            w.series(
                "aliyun_cloud_assistant_exporter_credential_refreshes_total",
                &format!(
                    r#"{},account="{account}",source="assume_role",result="{result}""#,
                    shard(a)
                ),
                start,
                end,
                |k| {
                    if result == "success" {
                        (k / 45) as f64
                    } else {
                        0.0
                    }
                },
            );
        }
        w.series(
            "aliyun_cloud_assistant_exporter_account_up",
            &format!(r#"{},account="{account}""#, shard(a)),
            start,
            end,
            |_| 1.0,
        );
    }
    // The process-wide series of each shard.
    let process: [(&str, &str, SampleFn); 15] = [
        (
            "aliyun_cloud_assistant_exporter_build_info",
            r#",version="0.1.0",revision="abc",rustc="1.90""#,
            |_, _| 1.0,
        ),
        (
            "aliyun_cloud_assistant_exporter_cycle_duration_seconds",
            "",
            |k, _| 25.0 + (k % 9) as f64,
        ),
        (
            "aliyun_cloud_assistant_exporter_cycles_total",
            "",
            |k, _| k as f64,
        ),
        (
            "aliyun_cloud_assistant_exporter_last_collection_timestamp_seconds",
            "",
            |k, s| (s + k * STEP - 5) as f64,
        ),
        (
            "aliyun_cloud_assistant_exporter_config_last_reload_successful",
            "",
            |_, _| 1.0,
        ),
        (
            "aliyun_cloud_assistant_exporter_config_last_reload_success_timestamp_seconds",
            "",
            |_, s| s as f64,
        ),
        ("process_resident_memory_bytes", "", |k, _| {
            2.0e8 + (k % 13) as f64 * 1.0e6
        }),
        ("aliyun_cloud_assistant_exporter_shard_info", "", |_, _| 1.0),
        (
            "aliyun_cloud_assistant_exporter_collection_interval_seconds",
            "",
            |_, _| 60.0,
        ),
        (
            "aliyun_cloud_assistant_exporter_plugin_names_dropped_total",
            "",
            |_, _| 0.0,
        ),
        (
            "aliyun_cloud_assistant_exporter_invocation_walks_truncated_total",
            "",
            |k, _| (k / 120) as f64,
        ),
        // Prometheus' own series of each scrape: a page of 50 000
        // instances is a few hundred thousand samples.
        ("up", "", |k, _| if k % 97 == 50 { 0.0 } else { 1.0 }),
        ("scrape_duration_seconds", "", |k, _| {
            4.0 + (k % 11) as f64 * 0.3
        }),
        ("scrape_samples_scraped", "", |k, _| {
            650_000.0 + (k % 5) as f64
        }),
        ("scrape_timeout_seconds", "", |_, _| 10.0),
    ];
    for (name, extra, value) in process {
        for s in 0..2 {
            let extra = if name.ends_with("shard_info") {
                format!(r#",index="{s}",count="2""#)
            } else {
                extra.to_string()
            };
            w.series(name, &format!("{}{extra}", shard(s)), start, end, |k| {
                value(k, start)
            });
        }
    }
    for reason in ["label_too_long", "plugin_name"] {
        for s in 0..2 {
            w.series(
                "aliyun_cloud_assistant_exporter_rows_dropped_total",
                &format!(r#"{},reason="{reason}""#, shard(s)),
                start,
                end,
                |k| {
                    if reason == "plugin_name" {
                        (k / 60) as f64
                    } else {
                        0.0
                    }
                },
            );
        }
    }
    for source in ["discovered", "flag"] {
        for s in 0..2 {
            w.series(
                "aliyun_cloud_assistant_exporter_plugin_names",
                &format!(r#"{},source="{source}""#, shard(s)),
                start,
                end,
                |_| 3.0,
            );
        }
    }
    // Activation codes: two per account and region.
    for (suffix, values) in [
        (
            "activation_instances",
            vec![
                ("limit", 100.0),
                ("registered", 95.0),
                ("deregistered", 3.0),
            ],
        ),
        (
            "activation_expiry_timestamp_seconds",
            vec![("", (end + 3600 * 20) as f64)],
        ),
        ("activation_disabled", vec![("", 0.0)]),
    ] {
        for (a, r) in &pairs {
            for c in 0..2 {
                for (state, v) in &values {
                    let state = if state.is_empty() {
                        String::new()
                    } else {
                        format!(r#",state="{state}""#)
                    };
                    w.series(
                        &format!("aliyun_cloud_assistant_{suffix}"),
                        &format!(
                            r#"{},activation_id="act-{a}{r}{c}"{state}"#,
                            region_labels(*a, *r)
                        ),
                        start,
                        end,
                        |_| *v,
                    );
                }
            }
        }
    }

    // The recording rules as alerts.yml records them: problem sets first.
    let problems = |pick: &dyn Fn(usize) -> bool| -> Vec<(usize, usize, usize)> {
        pairs
            .iter()
            .flat_map(|(a, r)| {
                (0..per_region)
                    .filter(|n| pick(*n))
                    .map(move |n| (*a, *r, n))
            })
            .collect()
    };
    let down_set = problems(&down);
    for (a, r, n) in &down_set {
        w.series(
            "cloud_assistant:agent_heartbeat_stale:age_seconds",
            &set_labels(*a, *r, *n),
            start,
            end,
            |k| 3600.0 + (k * STEP) as f64,
        );
    }
    for (a, r, n) in &down_set {
        w.series(
            "cloud_assistant:agent_down:info",
            &format!(
                r#"{},version="2.2.4.{}",os_type="Linux",session_manager="true""#,
                set_labels(*a, *r, *n),
                n % 3
            ),
            start,
            end,
            |_| 1.0,
        );
    }
    let none_set = problems(&not_installed);
    for (a, r, n) in &none_set {
        w.series(
            "cloud_assistant:agent_not_installed:info",
            &format!(r#"{},session_manager="false""#, set_labels(*a, *r, *n)),
            start,
            end,
            |_| 1.0,
        );
    }
    for (name, pick) in [
        (
            "cloud_assistant:plugin_crashed:info",
            &crashed as &dyn Fn(usize) -> bool,
        ),
        ("cloud_assistant:plugin_stopped:info", &stopped),
    ] {
        for (a, r, n) in problems(pick) {
            w.series(
                name,
                &format!(
                    r#"{},plugin="{}",version="1.{}""#,
                    set_labels(a, r, n),
                    PLUGINS[n % 3],
                    n % 4
                ),
                start,
                end,
                |_| 1.0,
            );
        }
    }
    let managed = |a: usize, r: usize, m: usize| {
        format!(
            r#"{},instance_id="mi-{a}{r:02}{m:010}""#,
            region_labels(a, r)
        )
    };
    for (a, r) in &pairs {
        for m in 0..2 {
            w.series(
                "cloud_assistant:managed_instance_disconnected:info",
                &format!(
                    r#"job="{JOB}",account="{}",region_id="{}",instance_id="mi-{a}{r:02}{m:010}""#,
                    ACCOUNTS[*a], REGIONS[*r]
                ),
                start,
                end,
                |_| 1.0,
            );
        }
    }
    let mut named: Vec<(usize, usize, usize)> = down_set
        .iter()
        .chain(&none_set)
        .copied()
        .chain(problems(&crashed))
        .chain(problems(&stopped))
        .collect();
    named.sort_unstable();
    named.dedup();
    for (a, r, n) in &named {
        w.series(
            "cloud_assistant:problem_instance:info",
            &format!(
                r#"{},instance_name="web-{n}",zone_id="{}-a",instance_type="ecs.g7.large",tag_team="team-{}",tag_env="prod""#,
                inst_labels(*a, *r, *n),
                REGIONS[*r],
                n % 5
            ),
            start,
            end,
            |_| 1.0,
        );
    }
    for (a, r) in &pairs {
        for m in 0..2 {
            w.series(
                "cloud_assistant:problem_instance:info",
                &format!(
                    r#"{},instance_name="idc-{m}",hostname="idc-{m}.corp",version="2.4.3",os_type="linux""#,
                    managed(*a, *r, m)
                ),
                start,
                end,
                |_| 1.0,
            );
        }
    }
    // Then the per-region ones.
    let by_region = |a: usize, r: usize| {
        format!(
            r#"job="{JOB}",account="{}",region_id="{}""#,
            ACCOUNTS[a], REGIONS[r]
        )
    };
    let n_down = (0..per_region).filter(|n| down(*n)).count() as f64;
    let n_none = (0..per_region).filter(|n| not_installed(*n)).count() as f64;
    let installed = per_region as f64 - n_none;
    let running = (per_region - 100) as f64;
    let recorded: [(&str, f64); 5] = [
        (
            "cloud_assistant:agents_up:ratio",
            (installed - n_down) / installed,
        ),
        ("cloud_assistant:agents_heartbeat_stale:count", n_down),
        ("cloud_assistant:agents_down_running:count", n_down),
        (
            "cloud_assistant:agents_down_running:ratio",
            n_down / running,
        ),
        (
            "cloud_assistant:managed_instances_disconnected:ratio",
            2.0 / MANAGED_PER_REGION as f64,
        ),
    ];
    for (name, v) in recorded {
        for (a, r) in &pairs {
            w.series(name, &by_region(*a, *r), start, end, |_| v);
        }
    }
    for (a, r) in &pairs {
        for (i, version) in ["2.2.4.0", "2.2.4.1", "2.1.3.857"].iter().enumerate() {
            w.series(
                "cloud_assistant:agent_versions:count",
                &format!(r#"{},version="{version}""#, by_region(*a, *r)),
                start,
                end,
                |_| installed / (i as f64 + 2.0),
            );
        }
    }
    for (a, r) in &pairs {
        for plugin in PLUGINS {
            w.series(
                "cloud_assistant:plugins_crashed_running:count",
                &format!(r#"{},plugin="{plugin}""#, by_region(*a, *r)),
                start,
                end,
                |_| (per_region / CRASHED_EVERY / 3) as f64,
            );
        }
    }
    // The top-20 sets of each region, as alerts.yml records them from the
    // raw series above (the panels read these).
    for (a, r) in &pairs {
        let busiest: Vec<usize> = (0..per_region).filter(|n| n % 5 == 0).take(20).collect();
        for n in busiest {
            let busy = (n % 7) as f64 + 1.0;
            w.series(
                "cloud_assistant:agent_active_tasks:top20",
                &set_labels(*a, *r, n),
                start,
                end,
                |_| busy,
            );
        }
        for n in (0..per_region).filter(|n| n % 4 == 3).take(20) {
            w.series(
                "cloud_assistant:agent_invocations:increase1h_top20",
                &set_labels(*a, *r, n),
                start,
                end,
                |_| 180.0,
            );
        }
    }
    // Command failures, per command and error code of each region.
    for (a, r) in &pairs {
        for (i, (command, status, code)) in FAILING.iter().enumerate() {
            w.series(
                "aliyun_cloud_assistant_invocation_failures_total",
                &format!(
                    r#"{},command_name="{command}",status="{status}",error_code="{code}""#,
                    region_labels(*a, *r)
                ),
                start,
                end,
                // A step every five minutes, as the invocation walk counts.
                |k| ((k / 5) * (i as i64 + 1)) as f64,
            );
        }
    }
    // Scheduled tasks: the task, and its runs on each of its instances.
    for (a, r) in &pairs {
        for (t, (command, frequency, mode)) in TASKS.iter().enumerate() {
            let task = format!(r#"{},invoke_id="t-{a}{r:02}{t}""#, region_labels(*a, *r));
            w.series(
                "aliyun_cloud_assistant_scheduled_invocation_info",
                &format!(r#"{task},command_name="{command}",frequency="{frequency}",repeat_mode="{mode}""#),
                start,
                end,
                |_| 1.0,
            );
            if let Some(period) = [Some(300.0), Some(3600.0), None, None][t] {
                w.series(
                    "cloud_assistant:scheduled_invocation_period:seconds",
                    &format!(
                        r#"job="{JOB}",account="{}",region_id="{}",invoke_id="t-{a}{r:02}{t}",command_name="{command}",frequency="{frequency}""#,
                        ACCOUNTS[*a], REGIONS[*r]
                    ),
                    start,
                    end,
                    |_| period,
                );
            }
            for n in 0..TASK_INSTANCES {
                let labels = format!(r#"{task},instance_id="{}""#, instance_id(*a, *r, n));
                let failing = (n + t) % 7 == 0;
                w.series(
                    "aliyun_cloud_assistant_scheduled_invocation_runs_total",
                    &labels,
                    start,
                    end,
                    |k| (k / 5) as f64,
                );
                w.series(
                    "aliyun_cloud_assistant_scheduled_invocation_last_run_timestamp_seconds",
                    &labels,
                    start,
                    end,
                    |k| (start + (k / 5) * 5 * STEP) as f64,
                );
                w.series(
                    "aliyun_cloud_assistant_scheduled_invocation_last_run_failed",
                    &labels,
                    start,
                    end,
                    |_| if failing { 1.0 } else { 0.0 },
                );
            }
        }
    }
    // The alerts firing on the problem sets, as Prometheus records them.
    for (a, r, n) in &down_set {
        w.series(
            "ALERTS",
            &format!(
                r#"alertname="CloudAssistantAgentDown",alertstate="firing",severity="warning",{}"#,
                set_labels(*a, *r, *n)
            ),
            raw_from,
            end,
            |_| 1.0,
        );
    }
    w.out.write_all(b"# EOF\n").expect("write");
    w.out.flush().expect("flush");
    (fleet, w.samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_on_six_hours_of_100k_instances() {
    let (Some(promtool), Some(prometheus)) = (
        common::tool("promtool", "prometheus"),
        common::tool("prometheus", "prometheus"),
    ) else {
        return;
    };
    let full = std::env::var_os("CLOUD_ASSISTANT_HISTORY_FULL").is_some();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("dashboards/cloud-assistant.json")).expect("dashboard"),
    )
    .expect("JSON");
    let panels = common::dashboard_panels(dashboard["panels"].as_array().expect("panels"));

    // Minutes, so every series has a sample at the end of the range.
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        / 60
        * 60;
    let start = end - HOURS * 3600;
    let dir = TempDir::new("history");
    let (fleet, blocks) = history_in_blocks(&promtool, &dir, (start, end), full);
    // Prometheus with no scrape and no rule, at its default query limits.
    let config = dir.write("prometheus.yml", "global:\n  scrape_interval: 60s\n");
    let prom = common::launch_prometheus(&prometheus, dir, &config, &blocks).await;
    let api = PromApi::new(&prom.base, Duration::from_secs(150));
    the_whole_range_answers(&api, start).await;
    let mut timings: Vec<(Duration, String)> = Vec::new();
    let answers = every_panel_has_data_in_time(&api, &panels, (start, end), &mut timings).await;
    the_answers_are_the_historys_at_full_size(&answers, &fleet);
    the_instance_rules_take_little_and_keep_20_a_region(&api, end, &mut timings).await;
    timings.sort_by_key(|t| std::cmp::Reverse(t.0));
    let total: Duration = timings.iter().map(|(d, _)| *d).sum();
    eprintln!(
        "{} queries over {HOURS}h of {INSTANCES} instances ({}) in {total:.1?}; slowest {:.1?}: {}",
        timings.len(),
        if full {
            "per-instance series over the whole range"
        } else {
            "per-instance series over the last 65 minutes"
        },
        timings[0].0,
        timings[0].1
    );
    for (d, q) in timings.iter().take(5).skip(1) {
        eprintln!("  {d:.1?}: {}", q.lines().next().unwrap_or(""));
    }
    drop(prom);
}

/// The history written as OpenMetrics and made into TSDB blocks (under
/// `dir`) with promtool; the fleet it holds, and the blocks' directory.
fn history_in_blocks(
    promtool: &std::path::Path,
    dir: &TempDir,
    (start, end): (i64, i64),
    full: bool,
) -> (Fleet, std::path::PathBuf) {
    let input = dir.path().join("history.om");
    let began = Instant::now();
    let (fleet, samples) = write_history(&input, start, end, full);
    eprintln!(
        "history: {samples} samples ({} MB) written in {:.1?}",
        std::fs::metadata(&input)
            .map(|m| m.len() >> 20)
            .unwrap_or(0),
        began.elapsed()
    );
    let blocks = dir.path().join("data");
    let began = Instant::now();
    common::run_ok(
        std::process::Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&blocks),
    );
    eprintln!("history: blocks created in {:.1?}", began.elapsed());
    std::fs::remove_file(&input).expect("remove the OpenMetrics file");

    (fleet, blocks)
}

/// The blocks are loaded: the history's first hour answers.
async fn the_whole_range_answers(api: &PromApi, start: i64) {
    let first = api
        .post(
            "/api/v1/query",
            &[
                ("query", "count(aliyun_cloud_assistant_exporter_region_up)"),
                ("time", &(start + 60).to_string()),
            ],
        )
        .await
        .expect("query");
    assert_eq!(
        PromApi::results(&first).expect("vector")[0]["value"][1],
        (ACCOUNTS.len() * REGIONS.len()).to_string(),
        "the history's first hour"
    );
}

/// Every query of every panel, as Grafana sends it, answers within
/// Grafana's timeout, and every panel shows data. Each panel's answers.
async fn every_panel_has_data_in_time(
    api: &PromApi,
    panels: &[(String, Vec<common::PanelQuery>)],
    (start, end): (i64, i64),
    timings: &mut Vec<(Duration, String)>,
) -> Vec<(String, Vec<Value>)> {
    let mut failures = Vec::new();
    let mut answers: Vec<(String, Vec<Value>)> = Vec::new();
    for (title, queries) in panels {
        let mut any = false;
        for q in queries {
            let expr = grafana_substitute(&q.expr, RATE_INTERVAL, "60s");
            let began = Instant::now();
            let data = if q.instant {
                api.post(
                    "/api/v1/query",
                    &[("query", &expr), ("time", &end.to_string())],
                )
                .await
            } else {
                api.post(
                    "/api/v1/query_range",
                    &[
                        ("query", &expr),
                        ("start", &start.to_string()),
                        ("end", &end.to_string()),
                        ("step", QUERY_STEP),
                    ],
                )
                .await
            };
            let took = began.elapsed();
            timings.push((took, format!("{title}: {expr}")));
            match data.and_then(|d| PromApi::results(&d)) {
                Err(e) => failures.push(format!("{title}: {e}\n  {expr}")),
                Ok(r) => {
                    any |= has_data(&r);
                    if took > GRAFANA_TIMEOUT {
                        failures.push(format!("{title}: {took:.1?}, past Grafana's timeout"));
                    }
                    answers.push((title.clone(), r));
                }
            }
        }
        if !any {
            failures.push(format!("{title}: no data"));
        }
    }
    assert!(failures.is_empty(), "panels:\n{}", failures.join("\n"));

    answers
}

/// The answers are the history's, at full size.
fn the_answers_are_the_historys_at_full_size(answers: &[(String, Vec<Value>)], fleet: &Fleet) {
    let answer = |title: &str| -> &Vec<Value> {
        &answers
            .iter()
            .find(|(t, _)| t == title)
            .unwrap_or_else(|| panic!("panel {title}"))
            .1
    };
    assert_eq!(
        answer("Busiest instances now (active tasks, top 20)").len(),
        20
    );
    assert_eq!(answer("Most commands in the last hour (top 20)").len(), 20);
    let down = answer("Agents down on Running instances (first 200)");
    assert!(
        fleet.down > TABLE_ROWS,
        "more agents down than a table shows"
    );
    assert_eq!(
        down.len(),
        TABLE_ROWS,
        "one row per agent down, at most {TABLE_ROWS}"
    );
    assert!(
        down.iter()
            .all(|s| s["metric"]["instance_name"].is_string()),
        "every row named"
    );
    let up = answer("Agents up");
    let last = up[0]["values"]
        .as_array()
        .and_then(|v| v.last())
        .expect("points");
    assert_eq!(last[1], fleet.agents_up.to_string());
    assert_eq!(fleet.per_region * ACCOUNTS.len() * REGIONS.len(), INSTANCES);
}

/// The two recording rules that read raw per-instance series, as
/// Prometheus evaluates them every interval: at the end of the range,
/// over all 100 000 instances. They must take a small part of an
/// interval and keep 20 instances a region.
async fn the_instance_rules_take_little_and_keep_20_a_region(
    api: &PromApi,
    end: i64,
    timings: &mut Vec<(Duration, String)>,
) {
    let alerts: yaml_serde::Value = yaml_serde::from_str(
        &std::fs::read_to_string(repo_file("dashboards/alerts.yml")).expect("alerts.yml"),
    )
    .expect("alerts.yml is YAML");
    let rule_expr = |name: &str| -> String {
        alerts["groups"]
            .as_sequence()
            .expect("groups")
            .iter()
            .flat_map(|g| g["rules"].as_sequence().expect("rules").iter())
            .find(|r| r["record"].as_str() == Some(name))
            .and_then(|r| r["expr"].as_str())
            .unwrap_or_else(|| panic!("no rule {name}"))
            .to_string()
    };
    for (name, top) in [
        ("cloud_assistant:agent_active_tasks:top20", "7"),
        ("cloud_assistant:agent_invocations:increase1h_top20", "180"),
    ] {
        let expr = rule_expr(name);
        let began = Instant::now();
        let data = api
            .post(
                "/api/v1/query",
                &[("query", &expr), ("time", &end.to_string())],
            )
            .await
            .and_then(|d| PromApi::results(&d))
            .unwrap_or_else(|e| panic!("rule {name}: {e}"));
        let took = began.elapsed();
        eprintln!("rule {name}: {} series in {took:.1?}", data.len());
        assert!(
            took < Duration::from_secs(STEP as u64 / 2),
            "rule {name} takes {took:.1?}, half an interval or more"
        );
        assert_eq!(
            data.len(),
            20 * ACCOUNTS.len() * REGIONS.len(),
            "{name}: 20 instances a region"
        );
        assert!(
            data.iter().any(|s| s["value"][1] == top),
            "{name}: the busiest instance has {top}"
        );
        assert!(
            data.iter().all(|s| s["metric"]["instance"].is_null()),
            "{name}: no target label"
        );
        timings.push((took, format!("rule {name}")));
    }
}
