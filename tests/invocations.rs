//! Failed command invocations and scheduled tasks, against the binary: a
//! history counted exactly once, new failures as they come (one that was
//! still running counted when it ends), nothing counted twice however many
//! walks see it, scheduled tasks as the API has them, only filtered calls
//! without output, and a missing permission or the walk turned off.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use cloud_assistant_exporter::simulator::invocations::{SimInvocation, SimRun};
use cloud_assistant_exporter::simulator::{FleetConfig, RegionSpec, Simulator};
use common::*;

const NOW: i64 = 1_780_000_000;

type Key = (String, String, String, String);

fn config() -> FleetConfig {
    FleetConfig {
        seed: 11,
        regions: vec![
            RegionSpec::new("r1", 30).invocations(40),
            RegionSpec::new("r2", 12).quirky().invocations(15),
            RegionSpec::new("r3", 5),
        ],
        plugins: vec!["ecs-tool-monitor".into()],
        start: NOW - 7200,
    }
}

/// What the counters must say, from the simulator's own history: every
/// failed run of an ended one-off invocation once.
fn expected(sim: &Simulator) -> BTreeMap<Key, f64> {
    let mut want = BTreeMap::new();
    for (region, r) in &sim.fleet().regions {
        for inv in &r.invocations {
            if inv.timed() || !matches!(inv.status(), "Failed" | "PartialFailed") {
                continue;
            }
            for run in &inv.runs {
                if matches!(
                    run.status.as_str(),
                    "Failed" | "Error" | "Timeout" | "Aborted" | "Invalid"
                ) {
                    let k = (
                        region.clone(),
                        inv.command_name.clone(),
                        run.status.clone(),
                        run.error_code.clone(),
                    );
                    *want.entry(k).or_insert(0.0) += 1.0;
                }
            }
        }
    }
    want
}

fn served(page: &[Sample]) -> BTreeMap<Key, f64> {
    page.iter()
        .filter(|s| s.name == INVOCATION_FAILURES)
        .map(|s| {
            let l = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
            (
                (
                    l("region_id"),
                    l("command_name"),
                    l("status"),
                    l("error_code"),
                ),
                s.value,
            )
        })
        .collect()
}

fn exporter(sim: &Simulator, extra: &[&str]) -> ExporterProcess {
    let url = sim.url();
    let mut args = vec![
        "--collect.interval",
        "1s",
        "--collect.plugin-discovery-interval",
        "0",
        "--collect.instance-info-interval",
        "0",
    ];
    if !extra.contains(&"--collect.invocations-interval") {
        args.extend(["--collect.invocations-interval", "1s"]);
    }
    args.extend_from_slice(extra);
    ExporterProcess::on_api(&url, &args, &sim_key_env())
}

/// Waits until `n` more DescribeInvocations walks (3 calls each, one per
/// filter) have run in every region since `from` calls.
async fn walks_after(sim: &Simulator, from: u64, n: u64) {
    let regions = sim.fleet().regions.len() as u64;
    eventually("more invocation walks", Duration::from_secs(20), || async {
        sim.requests("DescribeInvocations") >= from + n * 3 * regions
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_once_and_tasks_are_as_the_api_has_them() {
    let sim = Simulator::start(config()).await.expect("sim");
    let e = exporter(&sim, &[]);
    e.wait_for("/ready").await;
    let page = the_seeded_history_is_counted(&sim, &e).await;
    scheduled_tasks_have_one_series_each(&sim, &page);
    new_failures_are_counted_and_a_running_one_not_yet(&sim, &e).await;
    let want = an_ended_invocation_is_counted_once(&sim, &e).await;
    walks_with_nothing_new_change_nothing(&sim, &e, &want).await;
    a_gone_task_leaves_the_page_but_not_the_counters(&sim, &e, &want).await;
    only_filtered_calls_are_made(&sim);
    e.stop();
}

/// A failure counter's key.
fn failure(region: &str, cmd: &str, st: &str, code: &str) -> Key {
    (
        region.to_string(),
        cmd.to_string(),
        st.to_string(),
        code.to_string(),
    )
}

/// The ids of the instances of r3, where the new invocations run.
fn r3_hosts(sim: &Simulator) -> Vec<String> {
    sim.fleet().regions["r3"]
        .instances
        .iter()
        .map(|i| i.id.clone())
        .collect()
}

async fn the_seeded_history_is_counted(sim: &Simulator, e: &ExporterProcess) -> Vec<Sample> {
    let want = expected(sim);
    assert!(want.len() > 3, "the seeded history has failures: {want:?}");
    let page = scrape_until(e.socket(), "the history counted", |p| served(p) == want).await;
    assert!(
        want.keys().any(|k| k.0 == "r2"),
        "the quirky region counts too"
    );
    page
}

/// Scheduled tasks: one info series per task, one per (task, instance).
fn scheduled_tasks_have_one_series_each(sim: &Simulator, page: &[Sample]) {
    for (region, r) in &sim.fleet().regions {
        for task in r.invocations.iter().filter(|i| i.timed()) {
            let info = value(
                page,
                SCHEDULED_INFO,
                &[
                    ("region_id", region),
                    ("invoke_id", &task.invoke_id),
                    ("command_name", &task.command_name),
                    ("frequency", &task.frequency),
                    ("repeat_mode", &task.repeat_mode),
                ],
            );
            assert_eq!(info, Some(1.0), "{region} {}", task.invoke_id);
            for run in &task.runs {
                let l = [
                    ("region_id", region.as_str()),
                    ("invoke_id", task.invoke_id.as_str()),
                    ("instance_id", run.instance_id.as_str()),
                ];
                assert_eq!(value(page, SCHEDULED_RUNS, &l), Some(run.repeats as f64));
                let failed = run.status == "Failed";
                assert_eq!(
                    value(page, SCHEDULED_LAST_FAILED, &l),
                    Some(f64::from(u8::from(failed)))
                );
            }
        }
    }
    assert!(
        page.iter()
            .any(|s| s.name == SCHEDULED_LAST_FAILED && s.value == 1.0),
        "the seeded backup task fails on one host"
    );
}

/// New invocations while it runs: a failed one (2 runs), a partially
/// failed one (1 of 3) and one still running (one run failed already).
async fn new_failures_are_counted_and_a_running_one_not_yet(sim: &Simulator, e: &ExporterProcess) {
    let hosts = r3_hosts(sim);
    let h = |i: usize| hosts[i].as_str();
    sim.update_fleet(|f| {
        let r3 = &mut f.regions.get_mut("r3").expect("r3").invocations;
        r3.push(SimInvocation::once(
            "t-new-failed",
            "deploy-app",
            NOW,
            &[
                (h(0), "Failed", "ExitCodeNonzero"),
                (h(1), "Error", "ClientNeedUpgrade"),
            ],
        ));
        r3.push(SimInvocation::once(
            "t-new-partial",
            "deploy-app",
            NOW,
            &[
                (h(0), "Success", ""),
                (h(1), "Success", ""),
                (h(2), "Timeout", "ExecutionTimeout"),
            ],
        ));
        r3.push(SimInvocation::once(
            "t-new-running",
            "patch-os",
            NOW,
            &[(h(3), "Failed", "ExitCodeNonzero"), (h(4), "Running", "")],
        ));
    });
    let want = expected(sim);
    assert_eq!(
        want.get(&failure("r3", "deploy-app", "Failed", "ExitCodeNonzero")),
        Some(&1.0)
    );
    assert_eq!(
        want.get(&failure("r3", "patch-os", "Failed", "ExitCodeNonzero")),
        None,
        "still running"
    );
    let page = scrape_until(e.socket(), "the new failures", |p| served(p) == want).await;
    assert_eq!(served(&page).len(), want.len());
}

/// The running one ends: its two failed runs are counted now, once.
async fn an_ended_invocation_is_counted_once(
    sim: &Simulator,
    e: &ExporterProcess,
) -> BTreeMap<Key, f64> {
    let hosts = r3_hosts(sim);
    sim.update_fleet(|f| {
        let r3 = &mut f.regions.get_mut("r3").expect("r3").invocations;
        if let Some(inv) = r3.iter_mut().find(|i| i.invoke_id == "t-new-running") {
            inv.runs[1] = SimRun::new(&hosts[4], "Error", "ClientNotRunning", NOW + 30);
        }
    });
    let want = expected(sim);
    assert_eq!(
        want.get(&failure("r3", "patch-os", "Failed", "ExitCodeNonzero")),
        Some(&1.0)
    );
    scrape_until(e.socket(), "the ended invocation counted", |p| {
        served(p) == want
    })
    .await;
    want
}

/// Three more walks with nothing new change nothing.
async fn walks_with_nothing_new_change_nothing(
    sim: &Simulator,
    e: &ExporterProcess,
    want: &BTreeMap<Key, f64>,
) {
    let calls = sim.requests("DescribeInvocations");
    walks_after(sim, calls, 3).await;
    let page = scrape_samples(e.socket()).await;
    assert_eq!(&served(&page), want, "counted twice");
}

/// A task gone from the API leaves the page.
async fn a_gone_task_leaves_the_page_but_not_the_counters(
    sim: &Simulator,
    e: &ExporterProcess,
    want: &BTreeMap<Key, f64>,
) {
    sim.update_fleet(|f| {
        for r in f.regions.values_mut() {
            r.invocations.retain(|i| i.invoke_id != "t-sched-backup");
        }
    });
    let page = scrape_until(e.socket(), "the task gone", |p| {
        !p.iter()
            .any(|s| s.labels.get("invoke_id").map(String::as_str) == Some("t-sched-backup"))
    })
    .await;
    // The counters are not touched by it.
    assert_eq!(&served(&page), want);
}

/// Only filtered calls, never with output.
fn only_filtered_calls_are_made(sim: &Simulator) {
    let kinds = sim.invocation_queries();
    for k in kinds.keys() {
        assert!(
            ["Failed", "PartialFailed", "Timed"].contains(&k.as_str()),
            "{kinds:?}"
        );
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_or_off_leaves_only_these_series_out() {
    // Denied: no invocation series, one warning, every region up.
    let sim = Simulator::start(config()).await.expect("sim");
    sim.update_faults(|f| {
        f.deny("DescribeInvocations");
    });
    let e = exporter(&sim, &[]);
    e.wait_for("/ready").await;
    walks_after(&sim, 0, 2).await;
    let page = scrape_samples(e.socket()).await;
    assert!(
        !page
            .iter()
            .any(|s| s.name.contains("invocation_failures")
                || s.name.contains("scheduled_invocation"))
    );
    for region in ["r1", "r2", "r3"] {
        assert_eq!(region_up(&page, region), Some(1.0), "{region}");
    }
    assert_eq!(count(&page, AGENT_UP), 47, "every agent still there");
    let log = e.stop();
    let warnings = log
        .lines()
        .filter(|l| l.contains("ecs:DescribeInvocations"))
        .count();
    assert_eq!(warnings, 1, "one warning for the account:\n{log}");

    // Off: not one call.
    let sim = Simulator::start(config()).await.expect("sim");
    let e = exporter(&sim, &["--collect.invocations-interval", "0"]);
    e.wait_for("/ready").await;
    let before = scrape_samples(e.socket()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sim.requests("DescribeInvocations"), 0);
    assert!(!before.iter().any(|s| s.name == INVOCATION_FAILURES));
    e.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_histories_stop_at_the_page_cap_and_command_names_at_theirs() {
    let cfg = FleetConfig {
        regions: vec![RegionSpec::new("big", 40).invocations(400)],
        ..config()
    };
    let sim = Simulator::start(cfg).await.expect("sim");
    let e = exporter(
        &sim,
        &[
            "--collect.invocations-max-pages",
            "1",
            "--collect.max-command-names",
            "2",
        ],
    );
    e.wait_for("/ready").await;
    walks_after(&sim, 0, 2).await;
    let page = scrape_samples(e.socket()).await;
    let truncated = value(
        &page,
        "aliyun_cloud_assistant_exporter_invocation_walks_truncated_total",
        &[],
    )
    .unwrap_or(0.0);
    assert!(truncated >= 2.0, "counted: {truncated}");
    let names: std::collections::BTreeSet<String> =
        served(&page).keys().map(|k| k.1.clone()).collect();
    assert!(names.contains("_other"), "{names:?}");
    assert_eq!(names.len(), 3, "two names and _other: {names:?}");
    // One page of 50 per filter and walk, never more.
    let pages = sim.requests("DescribeInvocations");
    let walks = pages / 3;
    assert_eq!(pages, walks * 3, "{pages}");
    let log = e.stop();
    let warned = log
        .lines()
        .filter(|l| l.contains("--collect.invocations-max-pages"))
        .count();
    assert!(
        (1..=2).contains(&warned),
        "once per filter cut short:\n{warned}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_without_the_action_are_left_alone_and_nothing_else_changes() {
    let sim = Simulator::start(config()).await.expect("sim");
    sim.update_faults(|f| {
        f.actions.insert(
            "DescribeInvocations".into(),
            cloud_assistant_exporter::simulator::RegionFault::Error {
                status: 400,
                code: "RegionId.ApiNotSupported".into(),
            },
        );
    });
    let e = exporter(&sim, &[]);
    e.wait_for("/ready").await;
    // Walks every second, for a few seconds: each region was asked once
    // (the first filter's answer says the action is not there), and not
    // again before an hour has passed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let page = scrape_samples(e.socket()).await;
    assert_eq!(served(&page), BTreeMap::new());
    for region in ["r1", "r2", "r3"] {
        assert_eq!(region_up(&page, region), Some(1.0), "{region}");
    }
    assert!(count(&page, AGENT_UP) > 0);
    assert_eq!(sim.requests("DescribeInvocations"), 3, "once per region");
    let log = e.stop();
    assert!(!log.contains("level=warn msg=\"walk failed"), "{log}");
}
