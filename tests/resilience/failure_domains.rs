//! One failure, one place: DescribeRegions of every account at once and
//! within the cycle's deadline, a slow region that holds nobody's fresh
//! series back, a plugin sweep that fails alone, last good series with an
//! age limit, a shrinking region list believed only when three cycles agree,
//! and a bounded number of plugin names. Each test injects its fault into
//! the simulator and checks what the user sees, and that nothing else moved.
//! A soak of rotating faults and reloads against the binary is ignored by
//! default (`cargo test --release --test resilience -- --ignored soak`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use cloud_assistant_exporter::accounts::Account;
use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::collector::{Collector, CollectorOptions};
use cloud_assistant_exporter::simulator::fleet::{Fleet, agent_supports_plugins};
use cloud_assistant_exporter::simulator::{
    self, FleetConfig, RegionFault, RegionSpec, SimKey, Simulator,
};

const NOW: i64 = 1_760_000_000;

fn fleet_of(regions: &[(&str, usize)], plugins: &[&str]) -> FleetConfig {
    FleetConfig {
        seed: 11,
        regions: regions
            .iter()
            .map(|(id, n)| RegionSpec::new(id, *n))
            .collect(),
        plugins: plugins.iter().map(|p| p.to_string()).collect(),
        start: NOW - 600,
    }
}

async fn simulator_at(cfg: FleetConfig, clock: &Clock) -> Simulator {
    Simulator::start_with(cfg, clock.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .expect("simulator")
}

/// Sweeps `plugins` by name every cycle; no discovery.
fn sweeping(plugins: &[&str]) -> CollectorOptions {
    CollectorOptions {
        plugins: plugins.iter().map(|p| p.to_string()).collect(),
        discovery_interval: Duration::ZERO,
        ..CollectorOptions::default()
    }
}

fn internal_error() -> RegionFault {
    RegionFault::Error {
        status: 500,
        code: "InternalError".into(),
    }
}

fn in_region(s: &Sample, account: Option<&str>, region: &str) -> bool {
    s.labels.get("region_id").map(String::as_str) == Some(region)
        && s.labels.get("account").map(String::as_str) == account
}

/// Every series of one region (of the unnamed account unless `account`),
/// sorted, less its collection duration (wall time) and its count of walks
/// (one more with every walk).
fn region_series(page: &[Sample], account: Option<&str>, region: &str) -> Vec<Sample> {
    let mut s: Vec<Sample> = page
        .iter()
        .filter(|s| s.name != REGION_SECONDS && s.name != WALKS && in_region(s, account, region))
        .cloned()
        .collect();
    s.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    s
}

/// The series a region's walk gave (the exporter's own left out).
fn region_data(page: &[Sample], account: Option<&str>, region: &str) -> Vec<Sample> {
    region_series(page, account, region)
        .into_iter()
        .filter(|s| !s.name.starts_with("aliyun_cloud_assistant_exporter_"))
        .collect()
}

/// The series of one plugin in one region (unnamed account).
fn plugin_rows(page: &[Sample], region: &str, plugin: &str) -> Vec<Sample> {
    region_data(page, None, region)
        .into_iter()
        .filter(|s| s.labels.get("plugin").map(String::as_str) == Some(plugin))
        .collect()
}

/// Names and labels, without values.
fn keys(samples: &[Sample]) -> Vec<(String, BTreeMap<String, String>)> {
    samples
        .iter()
        .map(|s| (s.name.clone(), s.labels.clone()))
        .collect()
}

fn region_labels<'a>(account: Option<&'a str>, region: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut l = vec![("region_id", region)];
    if let Some(a) = account {
        l.insert(0, ("account", a));
    }
    l
}

fn region_up(page: &[Sample], account: Option<&str>, region: &str) -> Option<f64> {
    value(page, REGION_UP, &region_labels(account, region))
}

fn last_success(page: &[Sample], region: &str) -> Option<f64> {
    value(page, LAST_SUCCESS, &[("region_id", region)])
}

fn sweep_up(page: &[Sample], region: &str, plugin: &str) -> Option<f64> {
    value(page, SWEEP_UP, &[("region_id", region), ("plugin", plugin)])
}

/// Agent-status calls made in `region` since the last reset: it was walked.
fn walked(sim: &Simulator, region: &str) -> bool {
    sim.requests_by_region()
        .get(&(
            "DescribeCloudAssistantStatus".to_string(),
            region.to_string(),
        ))
        .is_some_and(|n| *n > 0)
}

/// In `region`, every instance flips between Running and Stopped and every
/// plugin gets version `version`.
fn change_region(sim: &Simulator, region: &str, version: &str) {
    sim.update_fleet(|f| {
        let r = f.regions.get_mut(region).expect("region");
        for i in &mut r.instances {
            i.status = if i.status == "Running" {
                "Stopped"
            } else {
                "Running"
            }
            .into();
            for p in &mut i.plugins {
                p.version = version.into();
            }
        }
    });
}

/// Item 3: DescribeRegions runs for every account at once, with no lock
/// held, and the cycle's deadline bounds it (the last known list is walked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_regions_runs_for_every_account_at_once_within_the_deadline() {
    const DELAY: Duration = Duration::from_millis(1500);
    let clock = Clock::fixed(NOW);
    let sim = simulator_at(fleet_of(&[("a", 8), ("b", 8)], &["p"]), &clock).await;
    let accounts: Vec<Account> = ["one", "two"]
        .iter()
        .map(|name| Account {
            name: name.to_string(),
            // The client would wait far longer than the deadline.
            client: client_with(&sim, simulator::DEFAULT_KEY_SECRET, |o| {
                o.timeout = Duration::from_secs(120)
            }),
            regions: Vec::new(),
        })
        .collect();
    let registry = cloud_assistant_exporter::own_metrics::base_registry().expect("registry");
    let opts = CollectorOptions {
        region_timeout: Duration::from_secs(3),
        ..sweeping(&["p"])
    };
    let c = Arc::new(Collector::new(accounts, opts, clock.clone(), registry).expect("collector"));
    let r = c.run_cycle().await;
    assert_eq!((r.regions_ok, r.regions_failed), (4, 0));
    let before = page_samples(&c);
    let pairs = [("one", "a"), ("one", "b"), ("two", "a"), ("two", "b")];
    for (account, region) in pairs {
        assert!(!region_data(&before, Some(account), region).is_empty());
    }
    let unchanged = |page: &[Sample]| {
        for (account, region) in pairs {
            assert_eq!(
                region_series(page, Some(account), region),
                region_series(&before, Some(account), region),
                "{account}/{region}"
            );
        }
    };

    // Both accounts' DescribeRegions take DELAY: the cycle waits one DELAY.
    sim.update_faults(|f| {
        f.action_latency.insert("DescribeRegions".into(), DELAY);
    });
    sim.reset_counts();
    let t0 = Instant::now();
    let cycle = tokio::spawn({
        let c = Arc::clone(&c);
        async move { c.run_cycle().await }
    });
    tokio::time::sleep(DELAY / 2).await;
    assert_eq!(sim.in_flight(), 2, "both DescribeRegions in hand at once");
    tokio::time::timeout(Duration::from_millis(300), c.snapshot())
        .await
        .expect("the collector's state is not locked while regions are listed");
    let r = cycle.await.expect("cycle");
    let took = t0.elapsed();
    assert_eq!((r.regions_ok, r.regions_failed), (4, 0));
    assert_eq!(sim.requests("DescribeRegions"), 2);
    assert!(
        took >= DELAY && took < DELAY * 5 / 3,
        "two slow DescribeRegions took {took:?}: about one delay of {DELAY:?}, not two"
    );
    unchanged(&page_samples(&c));

    // DescribeRegions hangs: at the deadline (3 s) the cycle walks the last
    // known regions of both accounts.
    sim.update_faults(|f| {
        f.action_latency
            .insert("DescribeRegions".into(), Duration::from_secs(600));
    });
    let t0 = Instant::now();
    let r = c.run_cycle().await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_millis(4500),
        "a hung DescribeRegions held the cycle {took:?} with a deadline of 3 s"
    );
    assert_eq!((r.regions_ok, r.regions_failed), (4, 0));
    unchanged(&page_samples(&c));
}

/// Item 4: one region with 5 s per call; the fresh series of the others are
/// on /metrics long before it finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_region_never_holds_back_the_fresh_series_of_the_others() {
    let clock = Clock::fixed(NOW);
    let sim = simulator_at(
        fleet_of(&[("a", 12), ("b", 12), ("slow", 12)], &["p"]),
        &clock,
    )
    .await;
    let running = start_exporter(
        &sim,
        &[
            "--collect.interval",
            "1h",
            "--collect.plugins",
            "p",
            "--collect.plugin-discovery-interval",
            "0",
            "--collect.instance-info-interval",
            "0",
        ],
        clock.clone(),
    )
    .await;
    wait_ready(running.addr).await;
    let before = parse_metrics(&scrape(running.addr).await);
    for region in ["a", "b", "slow"] {
        assert_eq!(region_up(&before, None, region), Some(1.0));
    }

    // From now on every call in "slow" takes 5 s; region a loses an instance.
    sim.update_faults(|f| {
        f.region_latency
            .insert("slow".into(), Duration::from_secs(5));
    });
    let gone = sim.fleet().regions["a"].instances[0].id.clone();
    let is_gone = |s: &Sample| s.labels.get("instance_id") == Some(&gone);
    let has_gone = |page: &[Sample]| page.iter().any(is_gone);
    assert!(has_gone(&before));
    sim.update_fleet(|f| {
        f.regions.get_mut("a").expect("a").instances.remove(0);
    });
    let t0 = Instant::now();
    let cycle = tokio::spawn({
        let c = Arc::clone(&running.collector);
        async move { c.run_cycle().await }
    });
    let page = loop {
        let page = parse_metrics(&scrape(running.addr).await);
        if !has_gone(&page) {
            break page;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "region a's fresh series not on /metrics within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seen = t0.elapsed();
    assert!(
        !cycle.is_finished(),
        "served only after the slow region ended ({seen:?})"
    );
    assert_eq!(
        value(&page, CYCLES, &[]),
        value(&before, CYCLES, &[]),
        "the cycle is still running"
    );
    // Region a is fresh; the rest of its instances as they were.
    let per_instance = |p: &[Sample]| -> Vec<Sample> {
        region_data(p, None, "a")
            .into_iter()
            .filter(|s| s.labels.contains_key("instance_id") && !is_gone(s))
            .collect()
    };
    assert!(!per_instance(&page).is_empty());
    assert_eq!(per_instance(&page), per_instance(&before));
    // Nothing else moved: b fresh and the same, the slow region's last series.
    assert_eq!(
        region_series(&page, None, "b"),
        region_series(&before, None, "b")
    );
    assert_eq!(
        region_series(&page, None, "slow"),
        region_series(&before, None, "slow")
    );

    let r = cycle.await.expect("cycle");
    assert!(
        t0.elapsed() >= Duration::from_secs(5),
        "the slow region took its 5 s"
    );
    assert_eq!((r.regions_ok, r.regions_failed), (3, 0));
    let after = parse_metrics(&scrape(running.addr).await);
    assert!(!has_gone(&after));
    for region in ["a", "b", "slow"] {
        assert_eq!(region_up(&after, None, region), Some(1.0), "{region}");
    }
    assert_eq!(
        region_series(&after, None, "slow"),
        region_series(&before, None, "slow")
    );
    assert_eq!(
        value(&after, CYCLES, &[]),
        value(&before, CYCLES, &[]).map(|n| n + 1.0)
    );
    running.shutdown().await;
}

/// Item 5: a failing sweep keeps its last good rows with `plugin_sweep_up`
/// 0; the region's agents, instances and other sweeps are fresh.
#[tokio::test]
async fn a_failing_plugin_sweep_fails_only_itself() {
    let clock = Clock::fixed(NOW);
    let sim = simulator_at(fleet_of(&[("a", 30), ("b", 30)], &["p", "q"]), &clock).await;
    let c = collector(&sim, sweeping(&["p", "q"]), clock.clone());
    c.run_cycle().await;
    let before = page_samples(&c);
    assert!(!plugin_rows(&before, "a", "p").is_empty());
    assert!(!plugin_rows(&before, "a", "q").is_empty());

    sim.update_faults(|f| {
        f.region_plugin_sweeps
            .insert(("a".into(), "p".into()), internal_error());
    });
    change_region(&sim, "a", "9.9.9");
    let r = c.run_cycle().await;
    assert_eq!((r.regions_ok, r.regions_failed), (2, 0));
    let page = page_samples(&c);
    for (region, plugin, up) in [
        ("a", "p", 0.0),
        ("a", "q", 1.0),
        ("b", "p", 1.0),
        ("b", "q", 1.0),
    ] {
        assert_eq!(
            sweep_up(&page, region, plugin),
            Some(up),
            "{region}/{plugin}"
        );
    }
    assert_eq!(region_up(&page, None, "a"), Some(1.0));
    assert_eq!(region_up(&page, None, "b"), Some(1.0));
    // p's last good rows, as they were.
    assert_eq!(plugin_rows(&page, "a", "p"), plugin_rows(&before, "a", "p"));
    // q's rows and the instances are fresh.
    let versions = |rows: &[Sample]| -> BTreeSet<String> {
        rows.iter()
            .filter(|s| s.name == PLUGIN_INFO)
            .map(|s| s.labels["version"].clone())
            .collect()
    };
    assert_eq!(
        versions(&plugin_rows(&page, "a", "q")),
        BTreeSet::from(["9.9.9".to_string()])
    );
    let fleet = sim.fleet();
    for i in &fleet.regions["a"].instances {
        let status = [
            ("region_id", "a"),
            ("instance_id", i.id.as_str()),
            ("status", i.status.as_str()),
        ];
        assert_eq!(
            value(&page, INSTANCE_STATUS, &status),
            Some(1.0),
            "{}",
            i.id
        );
    }
    // Nothing else moved.
    assert_eq!(
        region_series(&page, None, "b"),
        region_series(&before, None, "b")
    );

    // The sweep answers again: fresh rows, up again.
    sim.update_faults(|f| f.region_plugin_sweeps.clear());
    c.run_cycle().await;
    let page = page_samples(&c);
    assert_eq!(sweep_up(&page, "a", "p"), Some(1.0));
    assert_eq!(
        versions(&plugin_rows(&page, "a", "p")),
        BTreeSet::from(["9.9.9".to_string()])
    );
    assert_eq!(
        region_series(&page, None, "b"),
        region_series(&before, None, "b")
    );
}

/// Item 6, a region: it serves its last good series for `max_stale`, then
/// they go; `region_up` stays 0 and the last success keeps telling since when.
#[tokio::test]
async fn a_failing_region_serves_its_last_good_series_for_max_stale() {
    let clock = Clock::fixed(NOW);
    let sim = simulator_at(fleet_of(&[("a", 10), ("b", 10), ("c", 10)], &["p"]), &clock).await;
    let opts = CollectorOptions {
        max_stale: Duration::from_secs(600),
        ..sweeping(&["p"])
    };
    let c = collector(&sim, opts, clock.clone());
    c.run_cycle().await;
    let before = page_samples(&c);
    let good = region_data(&before, None, "c");
    assert!(!good.is_empty());
    sim.update_faults(|f| {
        f.regions.insert(
            "c".into(),
            RegionFault::Error {
                status: 503,
                code: "ServiceUnavailable".into(),
            },
        );
    });
    let healthy = |page: &[Sample], now: i64| {
        for region in ["a", "b"] {
            assert_eq!(region_up(page, None, region), Some(1.0), "{region}");
            assert_eq!(last_success(page, region), Some(now as f64), "{region}");
            assert_eq!(
                keys(&region_data(page, None, region)),
                keys(&region_data(&before, None, region)),
                "{region}"
            );
        }
    };
    // Failing for 300 s, then exactly max_stale: the last good series stay.
    for step in [300, 300] {
        clock.advance(step);
        let r = c.run_cycle().await;
        assert_eq!((r.regions_ok, r.regions_failed), (2, 1));
        let page = page_samples(&c);
        assert_eq!(region_up(&page, None, "c"), Some(0.0));
        assert_eq!(last_success(&page, "c"), Some(NOW as f64));
        assert_eq!(region_data(&page, None, "c"), good);
        assert_eq!(sweep_up(&page, "c", "p"), Some(1.0), "the last good sweep");
        healthy(&page, clock.now());
    }
    // Past max_stale: they go.
    clock.advance(1);
    c.run_cycle().await;
    let page = page_samples(&c);
    assert_eq!(region_up(&page, None, "c"), Some(0.0));
    assert_eq!(last_success(&page, "c"), Some(NOW as f64));
    assert_eq!(region_data(&page, None, "c"), Vec::<Sample>::new());
    assert_eq!(sweep_up(&page, "c", "p"), None);
    healthy(&page, clock.now());
    // And they stay gone while it keeps failing.
    clock.advance(60);
    c.run_cycle().await;
    let page = page_samples(&c);
    assert_eq!(region_up(&page, None, "c"), Some(0.0));
    assert_eq!(last_success(&page, "c"), Some(NOW as f64));
    assert!(region_data(&page, None, "c").is_empty());
    healthy(&page, clock.now());
}

/// Item 6, a sweep: its last good rows stay for `max_stale`, then go; the
/// region and its other sweeps stay fresh.
#[tokio::test]
async fn a_failing_sweep_serves_its_last_good_rows_for_max_stale() {
    let clock = Clock::fixed(NOW);
    let sim = simulator_at(fleet_of(&[("a", 30), ("b", 30)], &["p", "q"]), &clock).await;
    let opts = CollectorOptions {
        max_stale: Duration::from_secs(600),
        ..sweeping(&["p", "q"])
    };
    let c = collector(&sim, opts, clock.clone());
    c.run_cycle().await;
    let before = page_samples(&c);
    let good = plugin_rows(&before, "a", "p");
    assert!(!good.is_empty());
    sim.update_faults(|f| {
        f.region_plugin_sweeps
            .insert(("a".into(), "p".into()), internal_error());
    });
    let fresh = |page: &[Sample], now: i64| {
        for region in ["a", "b"] {
            assert_eq!(region_up(page, None, region), Some(1.0), "{region}");
            assert_eq!(last_success(page, region), Some(now as f64), "{region}");
        }
        for (region, plugin) in [("a", "q"), ("b", "p"), ("b", "q")] {
            assert_eq!(sweep_up(page, region, plugin), Some(1.0));
            assert_eq!(
                keys(&plugin_rows(page, region, plugin)),
                keys(&plugin_rows(&before, region, plugin)),
                "{region}/{plugin}"
            );
        }
        assert_eq!(sweep_up(page, "a", "p"), Some(0.0));
        // Agents and instances of a: all there.
        let agents_and_instances = |p: &[Sample]| {
            keys(&region_data(p, None, "a"))
                .into_iter()
                .filter(|(_, l)| !l.contains_key("plugin"))
                .collect::<Vec<_>>()
        };
        assert_eq!(agents_and_instances(page), agents_and_instances(&before));
    };
    let p_keys = |page: &[Sample]| keys(&plugin_rows(page, "a", "p"));
    for step in [300, 300] {
        clock.advance(step);
        c.run_cycle().await;
        let page = page_samples(&c);
        fresh(&page, clock.now());
        assert_eq!(p_keys(&page), keys(&good), "kept within max_stale");
    }
    clock.advance(1);
    c.run_cycle().await;
    let page = page_samples(&c);
    fresh(&page, clock.now());
    assert_eq!(
        plugin_rows(&page, "a", "p"),
        Vec::<Sample>::new(),
        "past max_stale the sweep's rows go"
    );
}

/// Item 7: a region DescribeRegions stops listing (or an empty answer) is
/// walked until three cycles in a row agree; a dropped region without
/// instances goes at once.
#[tokio::test]
async fn a_shrinking_region_list_is_believed_after_three_cycles() {
    let clock = Clock::fixed(NOW);
    let sim = simulator_at(fleet_of(&[("a", 6), ("b", 6), ("e", 0)], &["p"]), &clock).await;
    let c = collector(&sim, sweeping(&["p"]), clock.clone());
    assert_eq!(c.run_cycle().await.regions_ok, 3);
    let before = page_samples(&c);
    for region in ["a", "b", "e"] {
        assert_eq!(region_up(&before, None, region), Some(1.0), "{region}");
    }
    let same = |page: &[Sample], region: &str| {
        assert_eq!(
            region_series(page, None, region),
            region_series(&before, None, region),
            "{region}"
        );
    };
    let absent = |page: &[Sample], region: &str| {
        assert!(region_series(page, None, region).is_empty(), "{region}");
    };

    // An empty answer: everything walked as before for two cycles.
    sim.update_faults(|f| f.region_list = Some(Vec::new()));
    for _ in 0..2 {
        sim.reset_counts();
        assert_eq!(c.run_cycle().await.regions_ok, 3);
        let page = page_samples(&c);
        for region in ["a", "b", "e"] {
            assert!(walked(&sim, region), "{region}");
            same(&page, region);
        }
    }
    // The third empty answer in a row is believed.
    c.run_cycle().await;
    let page = page_samples(&c);
    for region in ["a", "b", "e"] {
        absent(&page, region);
    }
    // The list is back: so are the regions, at once.
    sim.update_faults(|f| f.region_list = None);
    assert_eq!(c.run_cycle().await.regions_ok, 3);
    let page = page_samples(&c);
    for region in ["a", "b", "e"] {
        same(&page, region);
    }

    // The list drops b (which has instances) and e (which has none): e goes
    // at once, b is walked for two more cycles.
    sim.update_faults(|f| f.region_list = Some(vec![("a".into(), String::new())]));
    for _ in 0..2 {
        sim.reset_counts();
        assert_eq!(c.run_cycle().await.regions_ok, 2);
        let page = page_samples(&c);
        assert!(walked(&sim, "b"));
        assert!(!walked(&sim, "e"));
        same(&page, "a");
        same(&page, "b");
        absent(&page, "e");
    }
    sim.reset_counts();
    assert_eq!(c.run_cycle().await.regions_ok, 1);
    let page = page_samples(&c);
    assert!(!walked(&sim, "b"));
    same(&page, "a");
    absent(&page, "b");
    absent(&page, "e");
}

/// Item 8: a fleet with 200 plugin names, discovery on: at most
/// `max_plugin_names` are swept, each name past it counted and logged once.
#[tokio::test]
async fn a_flood_of_plugin_names_is_capped_and_counted_once() {
    const MAX: usize = 10;
    let names: Vec<String> = (0..200).map(|i| format!("plug-{i:03}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let clock = Clock::fixed(NOW);
    let sim = simulator_at(fleet_of(&[("x", 25), ("y", 25)], &name_refs), &clock).await;
    let flag = ["plug-000", "plug-001"];
    let opts = CollectorOptions {
        max_plugin_names: MAX,
        // A round is one cycle: every eligible instance is asked at once.
        discovery_interval: Duration::from_secs(60),
        interval: Duration::from_secs(60),
        ..sweeping(&flag)
    };
    // What discovery can see: every plugin of an instance whose agent is up
    // and new enough.
    let reported: BTreeSet<String> = {
        let fleet: Fleet = sim.fleet();
        fleet
            .regions
            .values()
            .flat_map(|r| &r.instances)
            .filter(|i| i.agent_up(NOW) && agent_supports_plugins(&i.os_type, &i.version))
            .flat_map(|i| i.plugins.iter().map(|p| p.name.clone()))
            .collect()
    };
    assert_eq!(reported.len(), 200, "the fleet reports every name");
    let over = reported.len() - MAX;

    let (logs, _guard) = LogCapture::start();
    let c = collector(&sim, opts, clock.clone());
    let r = c.run_cycle().await;
    assert_eq!((r.regions_ok, r.regions_failed), (2, 0));
    assert!(r.discovery_calls > 0);
    let swept_names = |page: &[Sample]| -> BTreeSet<String> {
        page.iter()
            .filter(|s| s.name == SWEEP_UP)
            .map(|s| s.labels["plugin"].clone())
            .collect()
    };
    let check = |page: &[Sample]| {
        assert_eq!(value(page, PLUGIN_NAMES_DROPPED, &[]), Some(over as f64));
        assert_eq!(value(page, PLUGIN_NAMES, &[("source", "flag")]), Some(2.0));
        assert_eq!(
            value(page, PLUGIN_NAMES, &[("source", "discovered")]),
            Some((MAX - 2) as f64)
        );
        for region in ["x", "y"] {
            assert_eq!(region_up(page, None, region), Some(1.0));
            assert!(!region_data(page, None, region).is_empty());
            for f in flag {
                assert_eq!(sweep_up(page, region, f), Some(1.0), "{region}/{f}");
            }
        }
        // No series of a name past the cap.
        let on_page: BTreeSet<String> = page
            .iter()
            .filter_map(|s| s.labels.get("plugin").cloned())
            .collect();
        assert!(on_page.len() <= MAX, "{} names on the page", on_page.len());
    };
    let page = page_samples(&c);
    check(&page);

    // The next cycle sweeps exactly the names kept: MAX per region, one
    // page each, and asks nobody again within the round.
    sim.reset_counts();
    let r = c.run_cycle().await;
    assert_eq!(r.discovery_calls, 0);
    let page = page_samples(&c);
    let swept = swept_names(&page);
    assert_eq!(swept.len(), MAX);
    assert!(flag.iter().all(|f| swept.contains(*f)));
    assert_eq!(sim.requests("ListPluginStatus"), 2 * MAX as u64);
    check(&page);

    // A new round asks every instance again: the same names past the cap
    // are neither counted nor logged again.
    clock.advance(60);
    c.run_cycle().await;
    clock.advance(60);
    let r = c.run_cycle().await;
    assert!(r.discovery_calls > 0);
    let page = page_samples(&c);
    check(&page);
    assert_eq!(swept_names(&page), swept);
    let text = logs.text();
    let warned: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("more plugin names than --collect.max-plugin-names"))
        .collect();
    assert_eq!(warned.len(), over, "one line per name past the cap");
    for name in reported.iter().filter(|n| !swept.contains(*n)) {
        let mentions = warned
            .iter()
            .filter(|l| {
                l.contains(&format!("plugin={name} ")) || l.ends_with(&format!("plugin={name}"))
            })
            .count();
        assert_eq!(mentions, 1, "{name}");
    }
}

/// What the soak watches of the exporter process.
#[derive(Clone, Copy, Debug)]
struct Resources {
    rss_kib: u64,
    open_files: usize,
    threads: u64,
}

impl Resources {
    fn of(pid: u32) -> Resources {
        let pid = pid.to_string();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let threads = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("Threads");
        let open_files = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("fd")
            .count();
        Resources {
            rss_kib: rss_kib(&pid),
            open_files,
            threads,
        }
    }
}

/// The faults of one phase of the soak, on the victim region c (and 503s
/// everywhere in one of them).
fn soak_phase(phase: usize) -> (&'static str, simulator::Faults) {
    let mut f = simulator::Faults::default();
    let name = match phase % 5 {
        0 => {
            f.region_latency.insert("c".into(), Duration::from_secs(5));
            "slow region"
        }
        1 => {
            f.region_plugin_sweeps
                .insert(("c".into(), "p".into()), internal_error());
            "failing sweep"
        }
        2 => {
            f.unavailable_rate = 0.2;
            "503s"
        }
        3 => {
            f.region_list = Some(vec![
                ("a".into(), String::new()),
                ("b".into(), String::new()),
            ]);
            "shrunken region list"
        }
        _ => "calm",
    };
    (name, f)
}

/// The accounts file: `main` always, `spare` when asked.
fn soak_accounts(url: &str, spare: bool) -> String {
    let names: &[&str] = if spare { &["main", "spare"] } else { &["main"] };
    let entries: Vec<String> = names
        .iter()
        .map(|n| {
            format!(
                "  - name: {n}\n    endpoint: \"{url}\"\n    credentials:\n      type: access_key\n      access_key_id: LTAI-{n}\n      access_key_secret_file: {n}.secret\n"
            )
        })
        .collect();
    format!("accounts:\n{}", entries.concat())
}

/// Short cycles under rotating faults (a slow region, a failing sweep,
/// 503s, a shrunken region list) and reloads (SIGHUP and POST /-/reload,
/// adding and removing an account) for SOAK_MINUTES (30): memory, open
/// files and threads stay flat, and no series of a healthy region is ever
/// missing from a scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of 30 minutes: cargo test --release --test resilience -- --ignored soak"]
async fn soak_rotating_faults_and_reloads() {
    let minutes: f64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(30.0);
    let total = Duration::from_secs_f64(minutes * 60.0);
    let cfg = FleetConfig {
        start: Clock::System.now() - 600,
        ..fleet_of(&[("a", 120), ("b", 120), ("c", 120)], &["p", "q"])
    };
    let sim = Simulator::start(cfg).await.expect("simulator");
    let dir = TempDir::new("soak");
    let exporter = start_soak_exporter(&sim, &dir);
    let addr = exporter.socket();
    let pid = exporter.child.id();
    wait_ready(addr).await;
    let page = scrape_until(addr, "instance names of a and b", has_names_of_a_and_b).await;
    let baseline = healthy_series(&page);
    assert!(baseline.len() > 1000, "{} series", baseline.len());

    let started = Instant::now();
    let (mut scrapes, mut phase) = (0u64, 0usize);
    let mut samples: Vec<(f64, Resources)> = vec![(0.0, Resources::of(pid))];
    while started.elapsed() < total {
        let (name, faults) = soak_phase(phase);
        sim.set_faults(faults);
        let spare =
            reload_with_the_spare_account_every_other_phase(&sim, &dir, &exporter, phase).await;
        let page = no_healthy_series_is_lost_in_a_phase(
            addr,
            &baseline,
            (phase, name),
            started,
            &mut scrapes,
        )
        .await;
        the_reload_and_the_fault_took_effect(&page, (phase, name), spare);
        samples.push((started.elapsed().as_secs_f64(), Resources::of(pid)));
        phase += 1;
    }
    let log = exporter.stop();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "soak: {minutes} min, {phase} phases, {scrapes} scrapes, {} healthy series",
        baseline.len()
    );
    resources_stay_flat(&samples);
}

/// The soak's exporter: a cycle every 2 s on the accounts file with
/// `main` only, reloads on.
fn start_soak_exporter(sim: &Simulator, dir: &TempDir) -> ExporterProcess {
    for name in ["main", "spare"] {
        sim.add_key(
            &format!("LTAI-{name}"),
            SimKey::long_term(format!("s-{name}")),
        );
        dir.write(&format!("{name}.secret"), &format!("s-{name}\n"));
    }
    let config = dir.write("accounts.yml", &soak_accounts(&sim.url(), false));
    ExporterProcess::spawn(
        &[
            "--config.file",
            &config,
            "--web.enable-lifecycle",
            "--collect.interval",
            "2s",
            "--collect.timeout",
            "3s",
            "--collect.plugins",
            "p,q",
            "--collect.plugin-discovery-interval",
            "0",
            "--collect.instance-info-interval",
            "20s",
            "--collect.max-stale",
            "1m",
            "--aliyun.rate-limit",
            "0",
            "--aliyun.request-timeout",
            "2s",
        ],
        &[],
    )
}

/// The healthy regions' series (a and b of `main`).
fn healthy_series(page: &[Sample]) -> BTreeSet<(String, BTreeMap<String, String>)> {
    ["a", "b"]
        .iter()
        .flat_map(|r| keys(&region_data(page, Some("main"), r)))
        .collect()
}

/// The instance names of the healthy regions are in.
fn has_names_of_a_and_b(page: &[Sample]) -> bool {
    ["a", "b"].iter().all(|r| {
        page.iter()
            .any(|s| s.name == INSTANCE_INFO && in_region(s, Some("main"), r))
    })
}

/// A reload at every phase, by SIGHUP or by POST /-/reload: the spare
/// account comes (even phases) and goes. Whether it is in now.
async fn reload_with_the_spare_account_every_other_phase(
    sim: &Simulator,
    dir: &TempDir,
    exporter: &ExporterProcess,
    phase: usize,
) -> bool {
    let spare = phase.is_multiple_of(2);
    dir.write("accounts.yml", &soak_accounts(&sim.url(), spare));
    if phase % 4 < 2 {
        exporter.signal("-HUP");
    } else {
        let (status, _) = post_reload(exporter.socket()).await;
        assert_eq!(status, 200, "POST /-/reload");
    }
    spare
}

/// Scrapes through one phase: every scrape has every series of the
/// healthy regions. The last page.
async fn no_healthy_series_is_lost_in_a_phase(
    addr: std::net::SocketAddr,
    baseline: &BTreeSet<(String, BTreeMap<String, String>)>,
    (phase, name): (usize, &str),
    started: Instant,
    scrapes: &mut u64,
) -> Vec<Sample> {
    const PHASE: Duration = Duration::from_secs(15);
    let until = Instant::now() + PHASE;
    let mut page = Vec::new();
    while Instant::now() < until {
        page = parse_metrics(&scrape(addr).await);
        *scrapes += 1;
        let now = healthy_series(&page);
        let missing: Vec<_> = baseline.difference(&now).take(5).collect();
        assert!(
            missing.is_empty(),
            "phase {phase} ({name}) at {:?}: series of a healthy region lost: {missing:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    page
}

/// The phase's reload took effect, and its fault really bit (or, when
/// calm, the victim is back).
fn the_reload_and_the_fault_took_effect(
    page: &[Sample],
    (phase, name): (usize, &str),
    spare: bool,
) {
    assert_eq!(value(page, RELOAD_OK, &[]), Some(1.0), "phase {phase}");
    let spare_on_page = page.iter().any(|s| {
        s.name == REGION_UP && s.labels.get("account").map(String::as_str) == Some("spare")
    });
    assert_eq!(
        spare_on_page, spare,
        "phase {phase}: the reload took effect"
    );
    let c_up = region_up(page, Some("main"), "c");
    let c_p = value(
        page,
        SWEEP_UP,
        &[("account", "main"), ("region_id", "c"), ("plugin", "p")],
    );
    match name {
        "slow region" => assert_eq!(c_up, Some(0.0), "phase {phase} ({name})"),
        "failing sweep" => assert_eq!((c_up, c_p), (Some(1.0), Some(0.0)), "phase {phase}"),
        "shrunken region list" => assert_eq!(c_up, None, "phase {phase} ({name})"),
        "calm" => assert_eq!((c_up, c_p), (Some(1.0), Some(1.0)), "phase {phase}"),
        _ => {}
    }
}

/// Flat: after the first rotation of faults (every path taken once),
/// nothing grows beyond a small margin.
fn resources_stay_flat(samples: &[(f64, Resources)]) {
    let warm_at = samples.len().min(6) - 1;
    let (_, warm) = samples[warm_at];
    let peak = |f: fn(&Resources) -> u64| {
        samples[warm_at..]
            .iter()
            .map(|(_, r)| f(r))
            .max()
            .unwrap_or(0)
    };
    let (rss, files, threads) = (
        peak(|r| r.rss_kib),
        peak(|r| r.open_files as u64),
        peak(|r| r.threads),
    );
    eprintln!(
        "soak: at {:.0} s: RSS {} KiB, {} open files, {} threads; after: peak RSS {rss} KiB, \
         {files} open files, {threads} threads",
        samples[warm_at].0, warm.rss_kib, warm.open_files, warm.threads
    );
    for (t, r) in samples {
        eprintln!("soak: {t:>7.1} s {r:?}");
    }
    assert!(
        rss <= warm.rss_kib + warm.rss_kib / 4 + 16 * 1024,
        "RSS grew from {} KiB to {rss} KiB",
        warm.rss_kib
    );
    assert!(
        files <= warm.open_files as u64 + 16,
        "open files grew from {} to {files}",
        warm.open_files
    );
    assert!(
        threads <= warm.threads + 4,
        "threads grew from {} to {threads}",
        warm.threads
    );
}
