//! The whole exporter against the simulator over loopback: flags → cycle →
//! page → HTTP, checked series by series against the simulated fleet.

mod common;

use std::collections::BTreeMap;

use cloud_assistant_exporter::app::Running;
use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::simulator::fleet::{
    Agent, PLUGIN_STATES, QUIRK_MINUTE_TIMES, QUIRK_NUMBERS_AS_STRINGS, QUIRK_OMIT_OPTIONAL,
};
use cloud_assistant_exporter::simulator::{Fleet, FleetConfig, RegionFault, RegionSpec, Simulator};
use common::*;

const NOW: i64 = 1_700_003_600;

fn five_regions() -> FleetConfig {
    FleetConfig {
        seed: 11,
        regions: vec![
            RegionSpec::new("r-0", 0),
            RegionSpec::new("r-1", 1),
            RegionSpec::new("r-50", 50),
            RegionSpec::new("r-51", 51).quirky(),
            RegionSpec::new("r-137", 137).quirky(),
        ],
        plugins: vec![
            "ecs-tool-monitor".into(),
            "aliyun-service-ops".into(),
            "oos-cloudmonitor".into(),
        ],
        start: NOW - 3600,
    }
}

fn l<'a>(region: &'a str, id: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("region_id", region), ("instance_id", id)]
}

/// Checks every series of every simulated instance.
fn check_page(samples: &[Sample], fleet: &Fleet, now: i64, plugins_expected: bool) {
    for (region, r) in &fleet.regions {
        let mut agg: BTreeMap<&str, f64> = BTreeMap::new();
        for inst in &r.instances {
            let id = inst.id.as_str();
            let up = inst.agent_up(now);
            assert_eq!(
                value(samples, "aliyun_cloud_assistant_agent_up", &l(region, id)),
                Some(up as u8 as f64),
                "{id} up"
            );
            let installed = inst.agent != Agent::NotInstalled;
            let omit = inst.quirks & QUIRK_OMIT_OPTIONAL != 0;
            let hb = inst.last_heartbeat(now).map(|h| {
                if inst.quirks & QUIRK_MINUTE_TIMES != 0 {
                    h - h.rem_euclid(60)
                } else {
                    h
                }
            });
            assert_eq!(
                value(
                    samples,
                    "aliyun_cloud_assistant_agent_last_heartbeat_timestamp_seconds",
                    &l(region, id)
                ),
                hb.map(|h| h as f64),
                "{id} heartbeat"
            );
            assert_eq!(
                value(
                    samples,
                    "aliyun_cloud_assistant_agent_heartbeat_age_seconds",
                    &l(region, id)
                ),
                hb.map(|h| (now - h) as f64),
                "{id} age"
            );
            let counts_given = installed || !omit;
            assert_eq!(
                value(
                    samples,
                    "aliyun_cloud_assistant_agent_invocations_total",
                    &l(region, id)
                ),
                counts_given.then_some(inst.invocations as f64),
                "{id} invocations"
            );
            assert_eq!(
                value(
                    samples,
                    "aliyun_cloud_assistant_agent_active_tasks",
                    &l(region, id)
                ),
                counts_given.then_some(inst.active_tasks as f64)
            );
            let os = if installed || !omit {
                inst.os_type.as_str()
            } else {
                ""
            };
            let version = if installed { inst.version.as_str() } else { "" };
            let sm = installed && !omit && inst.session_manager();
            let mut info = l(region, id);
            info.extend([
                ("version", version),
                ("os_type", os),
                ("session_manager", if sm { "true" } else { "false" }),
            ]);
            assert_eq!(
                value(samples, "aliyun_cloud_assistant_agent_info", &info),
                Some(1.0),
                "{id} info {info:?}"
            );
            let last_invoked = inst.last_invoked.filter(|_| installed && !omit).map(|t| {
                if inst.quirks & QUIRK_MINUTE_TIMES != 0 {
                    t - t.rem_euclid(60)
                } else {
                    t
                }
            });
            assert_eq!(
                value(
                    samples,
                    "aliyun_cloud_assistant_agent_last_invocation_timestamp_seconds",
                    &l(region, id)
                ),
                last_invoked.map(|t| t as f64)
            );
            let _ = QUIRK_NUMBERS_AS_STRINGS;
            // Instance state set: the five states, one of them 1.
            for s in ["Pending", "Running", "Starting", "Stopping", "Stopped"] {
                let mut labels = l(region, id);
                labels.push(("status", s));
                assert_eq!(
                    value(samples, "aliyun_cloud_assistant_instance_status", &labels),
                    Some((s == inst.status) as u8 as f64),
                    "{id} {s}"
                );
            }
            let state = if up {
                "up"
            } else if installed {
                "down"
            } else {
                "not_installed"
            };
            *agg.entry(state).or_default() += 1.0;
            // Plugins: every (instance, plugin) with its full state set.
            for p in &inst.plugins {
                for s in PLUGIN_STATES {
                    let mut labels = l(region, id);
                    labels.extend([("plugin", p.name.as_str()), ("status", s)]);
                    let want = plugins_expected.then_some((*s == p.status) as u8 as f64);
                    assert_eq!(
                        value(samples, "aliyun_cloud_assistant_plugin_status", &labels),
                        want,
                        "{id} {} {s}",
                        p.name
                    );
                }
                if plugins_expected {
                    let mut labels = l(region, id);
                    labels.extend([("plugin", p.name.as_str()), ("version", p.version.as_str())]);
                    assert_eq!(
                        value(samples, "aliyun_cloud_assistant_plugin_info", &labels),
                        Some(1.0)
                    );
                    let mut labels = l(region, id);
                    labels.push(("plugin", p.name.as_str()));
                    let h = inst.plugin_heartbeat(p, now).max(p.first_heartbeat);
                    assert_eq!(
                        value(
                            samples,
                            "aliyun_cloud_assistant_plugin_last_heartbeat_timestamp_seconds",
                            &labels
                        ),
                        Some(h as f64)
                    );
                    assert_eq!(
                        value(
                            samples,
                            "aliyun_cloud_assistant_plugin_heartbeat_age_seconds",
                            &labels
                        ),
                        Some((now - h) as f64)
                    );
                }
            }
        }
        for s in ["up", "down", "not_installed"] {
            assert_eq!(
                value(
                    samples,
                    "aliyun_cloud_assistant_agents",
                    &[("region_id", region), ("status", s)]
                ),
                Some(agg.get(s).copied().unwrap_or(0.0)),
                "{region} agents {s}"
            );
        }
        for s in ["Pending", "Running", "Starting", "Stopping", "Stopped"] {
            let n = r.instances.iter().filter(|i| i.status == s).count() as f64;
            assert_eq!(
                value(
                    samples,
                    "aliyun_cloud_assistant_instances",
                    &[("region_id", region), ("status", s)]
                ),
                Some(n)
            );
        }
        assert_eq!(region_up(samples, region), Some(1.0), "{region} up");
        assert!(
            value(
                samples,
                "aliyun_cloud_assistant_exporter_region_last_success_timestamp_seconds",
                &[("region_id", region)]
            )
            .is_some()
        );
    }
    // Exactly the fleet: no series for instances it does not hold.
    let n = fleet.instance_count();
    assert_eq!(count(samples, "aliyun_cloud_assistant_agent_up"), n);
    assert_eq!(count(samples, "aliyun_cloud_assistant_agent_info"), n);
    assert_eq!(
        count(samples, "aliyun_cloud_assistant_instance_status"),
        5 * n
    );
    let plugin_rows: usize = fleet
        .regions
        .values()
        .flat_map(|r| &r.instances)
        .map(|i| i.plugins.len())
        .sum();
    assert_eq!(
        count(samples, "aliyun_cloud_assistant_plugin_status"),
        if plugins_expected { 7 * plugin_rows } else { 0 }
    );
}

/// Every plugin of the simulated fleet named by flag, and no discovery.
const PLUGINS_BY_FLAG: [&str; 4] = [
    "--collect.plugins",
    "ecs-tool-monitor,aliyun-service-ops,oos-cloudmonitor",
    "--collect.plugin-discovery-interval",
    "0",
];

/// The exporter on `sim` at NOW, an hour between cycles, with `extra`
/// flags, ready (its first cycle done).
async fn serve(sim: &Simulator, extra: &[&str]) -> Running {
    let running = start_exporter(
        sim,
        &[&["--collect.interval", "1h"], extra].concat(),
        Clock::fixed(NOW),
    )
    .await;
    wait_ready(running.addr).await;
    running
}

/// How many plugin names came from `source`.
fn plugin_names(samples: &[Sample], source: &str) -> Option<f64> {
    value(
        samples,
        "aliyun_cloud_assistant_exporter_plugin_names",
        &[("source", source)],
    )
}

#[tokio::test]
async fn metrics_hold_exactly_the_fleet() {
    let sim = sim_at(five_regions(), Clock::fixed(NOW)).await;
    let running = serve(&sim, &PLUGINS_BY_FLAG).await;
    let text = scrape(running.addr).await;
    let samples = parse_metrics(&text);
    check_page(&samples, &sim.fleet(), NOW, true);
    assert_eq!(plugin_names(&samples, "flag"), Some(3.0));
    assert!(
        value(
            &samples,
            "aliyun_cloud_assistant_exporter_api_requests_total",
            &[("action", "DescribeCloudAssistantStatus"), ("code", "OK")]
        )
        .is_some_and(|v| v >= 7.0)
    );
    assert!(count(&samples, "aliyun_cloud_assistant_exporter_build_info") == 1);
    assert!(
        text.contains(
            "# TYPE aliyun_cloud_assistant_exporter_api_request_duration_seconds histogram"
        )
    );
    running.shutdown().await;
}

#[tokio::test]
async fn plugins_without_the_flag_come_from_discovery() {
    let sim = sim_at(five_regions(), Clock::fixed(NOW)).await;
    // A discovery interval as short as the cycle asks every eligible instance at once.
    let running = serve(&sim, &["--collect.plugin-discovery-interval", "1h"]).await;
    // Cycle 1 discovered the names; cycle 2 sweeps them by name.
    running.collector.run_cycle().await;
    let samples = scrape_samples(running.addr).await;
    check_page(&samples, &sim.fleet(), NOW, true);
    assert_eq!(plugin_names(&samples, "discovered"), Some(3.0));
    running.shutdown().await;
}

#[tokio::test]
async fn vanished_instances_vanish_and_failed_regions_keep_their_series() {
    let sim = sim_at(five_regions(), Clock::fixed(NOW)).await;
    // Info series of a vanished instance go at the next info walk, which
    // this test does not wait for (see tests/inventory/main.rs).
    let running = serve(
        &sim,
        &[
            "--collect.plugins",
            "ecs-tool-monitor",
            "--collect.instance-info-interval",
            "0",
        ],
    )
    .await;
    let before = scrape_samples(running.addr).await;

    // One instance goes away; r-50 starts failing.
    let gone = sim.fleet().regions["r-137"].instances[0].id.clone();
    sim.update_fleet(|f| {
        if let Some(r) = f.regions.get_mut("r-137") {
            r.instances.remove(0);
        }
    });
    sim.update_faults(|f| {
        f.regions.insert(
            "r-50".into(),
            RegionFault::Error {
                status: 403,
                code: "Forbidden.RAM".into(),
            },
        );
    });
    let report = running.collector.run_cycle().await;
    assert_eq!((report.regions_ok, report.regions_failed), (4, 1));
    let after = scrape_samples(running.addr).await;
    assert!(
        after
            .iter()
            .all(|s| s.labels.get("instance_id") != Some(&gone)),
        "vanished instance is gone"
    );
    assert!(
        before
            .iter()
            .any(|s| s.labels.get("instance_id") == Some(&gone))
    );
    assert_eq!(region_up(&after, "r-50"), Some(0.0));
    assert_eq!(region_up(&after, "r-51"), Some(1.0));
    // r-50's series are exactly as before the failure.
    let of = |s: &[Sample]| region_series(s, "r-50");
    assert_eq!(of(&before), of(&after));
    assert_eq!(
        of(&after)
            .iter()
            .filter(|s| s.name == "aliyun_cloud_assistant_agent_up")
            .count(),
        50
    );
    assert!(
        value(
            &after,
            "aliyun_cloud_assistant_exporter_api_requests_total",
            &[
                ("action", "DescribeCloudAssistantStatus"),
                ("code", "Forbidden.RAM")
            ]
        )
        .is_some()
    );

    // Recovery brings it back up.
    sim.update_faults(|f| f.regions.clear());
    running.collector.run_cycle().await;
    let again = scrape_samples(running.addr).await;
    assert_eq!(region_up(&again, "r-50"), Some(1.0));
    running.shutdown().await;
}

#[tokio::test]
async fn endpoints_and_content_negotiation() {
    let sim = Simulator::start(five_regions()).await.expect("sim");
    let running = start_exporter(
        &sim,
        &["--collect.interval", "1h", "--web.telemetry-path", "/m"],
        Clock::System,
    )
    .await;
    wait_ready(running.addr).await;
    let base = format!("http://{}", running.addr);
    let c = reqwest::Client::new();
    let get = |p: &str| c.get(format!("{base}{p}")).send();
    assert_eq!(get("/healthz").await.expect("h").status(), 200);
    assert_eq!(get("/ready").await.expect("r").status(), 200);
    let landing = get("/").await.expect("landing");
    assert_eq!(landing.status(), 200);
    assert!(landing.text().await.expect("html").contains("href=\"/m\""));
    assert_eq!(get("/metrics").await.expect("404").status(), 404);
    assert_eq!(get("/nope").await.expect("404").status(), 404);
    let post = c.post(format!("{base}/m")).send().await.expect("405");
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    assert_eq!(
        c.delete(format!("{base}/healthz"))
            .send()
            .await
            .expect("405")
            .status(),
        405
    );
    // Without --web.enable-lifecycle, reloading over HTTP is off.
    let (status, why) = post_reload(running.addr).await;
    assert_eq!(status, 403);
    assert_eq!(why.lines().count(), 1, "{why}");
    assert!(why.contains("--web.enable-lifecycle"), "{why}");

    // gzip when asked, identical content either way. The side walks land
    // a moment after /ready and change the page: compare a gzip scrape and
    // a plain one taken while the page stood still.
    let raw = reqwest::Client::builder().build().expect("client");
    let mut tries = 0;
    loop {
        tries += 1;
        let gz = raw
            .get(format!("{base}/m"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("gzip");
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        assert_eq!(
            gz.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let bytes = gz.bytes().await.expect("bytes");
        let mut plain_from_gz = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&bytes[..]),
            &mut plain_from_gz,
        )
        .expect("gunzip");
        let plain = raw.get(format!("{base}/m")).send().await.expect("plain");
        assert!(plain.headers().get("content-encoding").is_none());
        // The exporter's own series are as of each scrape.
        let plain = plain.text().await.expect("text");
        let (a, b) = (idle_lines(&plain), idle_lines(&plain_from_gz));
        if a == b || tries == 20 {
            assert_eq!(a, b);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let head = raw.head(format!("{base}/m")).send().await.expect("head");
    assert_eq!(head.status(), 200);
    running.shutdown().await;
}

#[tokio::test]
async fn ready_is_503_until_the_first_cycle_finishes() {
    let sim = Simulator::start(five_regions()).await.expect("sim");
    sim.update_faults(|f| f.latency = std::time::Duration::from_millis(400));
    let running = start_exporter(&sim, &["--collect.interval", "1h"], Clock::System).await;
    let base = format!("http://{}", running.addr);
    let r = reqwest::get(format!("{base}/ready")).await.expect("ready");
    assert_eq!(r.status(), 503);
    // Metrics answer at once even before, with the exporter's own series.
    let m = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics");
    assert_eq!(m.status(), 200);
    assert!(
        m.text()
            .await
            .expect("text")
            .contains("aliyun_cloud_assistant_exporter_build_info")
    );
    wait_ready(running.addr).await;
    running.shutdown().await;
}

#[tokio::test]
async fn throttling_and_503s_still_give_the_complete_fleet_and_outages_recover() {
    let sim = sim_at(five_regions(), Clock::fixed(NOW)).await;
    sim.update_faults(|f| {
        f.throttle_rate = 0.10;
        f.unavailable_rate = 0.05;
    });
    let running = serve(&sim, &PLUGINS_BY_FLAG).await;
    let samples = scrape_samples(running.addr).await;
    check_page(&samples, &sim.fleet(), NOW, true);
    let retries: f64 = samples
        .iter()
        .filter(|s| s.name == "aliyun_cloud_assistant_exporter_api_retries_total")
        .map(|s| s.value)
        .sum();
    assert!(retries > 0.0, "faults were retried");

    // One region's endpoint goes down: the others are fresh, it keeps its last good copy.
    sim.update_faults(|f| {
        f.throttle_rate = 0.0;
        f.unavailable_rate = 0.0;
        f.regions.insert(
            "r-137".into(),
            RegionFault::Error {
                status: 503,
                code: "ServiceUnavailable".into(),
            },
        );
    });
    running.collector.run_cycle().await;
    let down = scrape_samples(running.addr).await;
    assert_eq!(region_up(&down, "r-137"), Some(0.0));
    assert_eq!(region_up(&down, "r-51"), Some(1.0));
    assert_eq!(
        down.iter()
            .filter(
                |s| s.name == "aliyun_cloud_assistant_agent_up" && s.labels["region_id"] == "r-137"
            )
            .count(),
        137
    );

    sim.update_faults(|f| f.regions.clear());
    running.collector.run_cycle().await;
    let back = scrape_samples(running.addr).await;
    check_page(&back, &sim.fleet(), NOW, true);
    running.shutdown().await;
}
