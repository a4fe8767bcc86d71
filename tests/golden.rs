//! The golden `/metrics` page: a seeded fleet at a pinned time, rendered and
//! compared byte for byte, so any change of output shows up in review.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test --release --test golden`.

mod common;

use std::path::Path;
use std::sync::Arc;

use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::collector::{Collector, CollectorOptions};
use cloud_assistant_exporter::simulator::{FleetConfig, RegionSpec, Simulator};
use cloud_assistant_exporter::snapshot::{RegionState, Source};
use common::*;

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn golden_fleet() -> FleetConfig {
    FleetConfig {
        seed: 2026,
        regions: vec![
            RegionSpec::new("cn-hangzhou", 7)
                .hybrid(3, 4)
                .invocations(6),
            RegionSpec::new("eu-central-1", 4).quirky().invocations(3),
            RegionSpec::new("us-west-1", 0),
        ],
        plugins: vec!["ecs-tool-monitor".into(), "oos-cloudmonitor".into()],
        start: NOW - 1800,
    }
}

async fn golden_page() -> String {
    let clock = Clock::fixed(NOW);
    let sim = sim_at(golden_fleet(), clock.clone()).await;
    let client = client(&sim);
    let opts = CollectorOptions {
        plugins: vec!["ecs-tool-monitor".into(), "oos-cloudmonitor".into()],
        discovery_interval: std::time::Duration::ZERO,
        instance_info_interval: std::time::Duration::from_secs(600),
        tags: vec!["env".into(), "Cost Center".into(), "owner".into()],
        managed_instances: true,
        invocations_interval: std::time::Duration::from_secs(300),
        ..CollectorOptions::default()
    };
    let collector = Collector::new(
        one_account(Arc::clone(&client)),
        opts,
        clock,
        prometheus::Registry::new(),
    )
    .expect("collector");
    // Names, tags, activation codes and invocations come from walks beside the cycle:
    // cycles run (on the pinned clock) until every region has them.
    let mut cycles = 0;
    loop {
        let report = collector.run_cycle().await;
        assert_eq!(report.regions_ok, 3);
        cycles += 1;
        let snap = collector.snapshot().await;
        // Rows already on the page may have been let go (their mark stays).
        let has = |rows: bool, r: &RegionState, s: Source| rows || r.rendered.contains(s);
        let done = snap.regions.values().all(|r| {
            has(r.info.is_some(), r, Source::Info)
                && has(r.activations.is_some(), r, Source::Activations)
                && r.invocations.is_some()
        });
        if done || cycles > 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The page as `/metrics` serves it (without the exporter's own registry
    // series, which count requests). Durations and the number of walks it
    // took vary between runs: they are pinned here.
    let page = collector.page().load_full();
    let text = String::from_utf8(page.plain().expect("gunzip")).expect("utf8");
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let pinned = match line.rsplit_once(' ') {
            Some((series, _)) if !line.starts_with('#') => {
                let name = series.split('{').next().unwrap_or(series);
                match name.strip_prefix("aliyun_cloud_assistant_exporter_") {
                    Some("collection_duration_seconds" | "cycle_duration_seconds") => {
                        Some(format!("{series} 0.000000"))
                    }
                    Some("cycles_total") => Some(format!("{series} 1")),
                    Some("region_walks_total") if series.contains("result=\"ok\"") => {
                        Some(format!("{series} 1"))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        out.push_str(pinned.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn golden_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/metrics.txt")
}

#[tokio::test]
async fn page_matches_the_golden_file() {
    let page = golden_page().await;
    let path = golden_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &page).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 creates it)");
    if page != want {
        let diff: Vec<String> = page
            .lines()
            .zip(want.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  got  {a}\n  want {b}", i + 1))
            .collect();
        panic!(
            "/metrics differs from {} ({} vs {} lines); UPDATE_GOLDEN=1 regenerates it.\n{}",
            path.display(),
            page.lines().count(),
            want.lines().count(),
            diff.join("\n")
        );
    }
}

#[tokio::test]
async fn promtool_accepts_the_golden_page() {
    promtool_check(&golden_page().await);
}

#[tokio::test]
async fn promtool_accepts_a_live_page() {
    // The whole page as served: fleet, exporter and process metrics.
    let sim = Simulator::start(golden_fleet()).await.expect("sim");
    let running = start_exporter(
        &sim,
        &[
            "--collect.interval",
            "1h",
            "--collect.plugins",
            "ecs-tool-monitor",
        ],
        Clock::System,
    )
    .await;
    wait_ready(running.addr).await;
    let text = scrape(running.addr).await;
    assert!(text.contains("process_resident_memory_bytes"));
    promtool_check(&text);
    running.shutdown().await;
}
