//! Plugin sweeps by name and discovery: what is seen, and what it costs.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::collector::CollectorOptions;
use cloud_assistant_exporter::simulator::fleet::agent_supports_plugins;
use cloud_assistant_exporter::simulator::{FleetConfig, RegionSpec};
use common::*;

const START: i64 = 1_750_000_000;

fn cfg(n: usize) -> FleetConfig {
    FleetConfig {
        seed: 99,
        regions: vec![RegionSpec::new("cn-a", n), RegionSpec::new("cn-b", n / 3)],
        plugins: vec!["p-one".into(), "p-two".into(), "p-three".into()],
        start: START - 600,
    }
}

#[tokio::test]
async fn discovery_is_bounded_per_cycle_and_covers_every_eligible_agent_once_per_round() {
    let clock = Clock::fixed(START);
    let sim = sim_at(cfg(400), clock.clone()).await;
    let interval = Duration::from_secs(60);
    let round = Duration::from_secs(600); // 10 cycles a round
    let c = collector(
        &sim,
        CollectorOptions {
            interval,
            discovery_interval: round,
            ..CollectorOptions::default()
        },
        clock.clone(),
    );
    let total: usize = sim.fleet().instance_count();
    let mut asked_ever: HashSet<String> = HashSet::new();
    for cycle in 0..10 {
        sim.reset_counts();
        let eligible: usize = sim
            .fleet()
            .regions
            .values()
            .map(|r| {
                r.instances
                    .iter()
                    .filter(|i| {
                        i.agent_up(clock.now()) && agent_supports_plugins(&i.os_type, &i.version)
                    })
                    .count()
            })
            .sum();
        c.run_cycle().await;
        let queries = sim.instance_queries();
        let calls: u64 = queries.values().sum();
        // At most a tenth of the eligible agents per region (rounded up), plus one for rounding per region.
        assert!(
            calls as usize <= eligible / 10 + 2,
            "cycle {cycle}: {calls} discovery calls for {eligible} eligible agents"
        );
        assert!(calls > 0, "cycle {cycle}: discovery makes progress");
        for (id, n) in &queries {
            assert_eq!(*n, 1, "{id} asked twice in a cycle");
            assert!(
                asked_ever.insert(id.clone()),
                "cycle {cycle}: {id} asked twice in a round"
            );
        }
        // Sweeps: exactly one call per page of each (region, name) once
        // the three names are known (discovered in the first cycle).
        let by_name = sim.requests("ListPluginStatus") - calls;
        let minimum: u64 = sim
            .fleet()
            .regions
            .values()
            .flat_map(|r| {
                ["p-one", "p-two", "p-three"].map(|n| {
                    (r.instances
                        .iter()
                        .filter(|i| i.plugins.iter().any(|p| p.name == n))
                        .count() as u64)
                        .div_ceil(50)
                        .max(1)
                })
            })
            .sum();
        if cycle == 0 {
            // Names found by the first discovery calls are swept in that
            // same walk, where they were found.
            assert!(
                by_name > 0 && by_name <= minimum,
                "cycle 0: {by_name} sweep calls"
            );
        } else {
            assert_eq!(by_name, minimum, "cycle {cycle}: sweep calls");
        }
        clock.advance(60);
    }
    // Only agents that were up and new enough were asked, and by the end of
    // the round nearly all of them (stale-later agents drop out meanwhile).
    let fleet = sim.fleet();
    let eligible_now: HashSet<String> = fleet
        .regions
        .values()
        .flat_map(|r| r.instances.iter())
        .filter(|i| i.agent_up(clock.now()) && agent_supports_plugins(&i.os_type, &i.version))
        .map(|i| i.id.clone())
        .collect();
    let never_ok: Vec<&String> = asked_ever
        .iter()
        .filter(|id| {
            fleet
                .regions
                .values()
                .flat_map(|r| r.instances.iter())
                .any(|i| &i.id == *id && !agent_supports_plugins(&i.os_type, &i.version))
        })
        .collect();
    assert!(
        never_ok.is_empty(),
        "agents too old were asked: {never_ok:?}"
    );
    let missed = eligible_now.difference(&asked_ever).count();
    assert_eq!(
        missed, 0,
        "every agent eligible throughout is asked within a round ({total} instances)"
    );
}

#[tokio::test]
async fn old_and_down_agents_show_plugins_through_sweeps_only() {
    let clock = Clock::fixed(START);
    let sim = sim_at(cfg(120), clock.clone()).await;
    let c = collector(
        &sim,
        CollectorOptions {
            interval: Duration::from_secs(60),
            discovery_interval: Duration::from_secs(60),
            plugins: vec!["p-one".into()],
            ..CollectorOptions::default()
        },
        clock.clone(),
    );
    c.run_cycle().await;
    c.run_cycle().await;
    let fleet = sim.fleet();
    let queries = sim.instance_queries();
    let samples = page_samples(&c);
    let mut seen_via_sweep = 0;
    for inst in fleet.regions.values().flat_map(|r| r.instances.iter()) {
        let ok = inst.agent_up(START) && agent_supports_plugins(&inst.os_type, &inst.version);
        assert_eq!(
            queries.contains_key(&inst.id),
            ok,
            "{}: asked one by one only if up and new enough",
            inst.id
        );
        for p in &inst.plugins {
            let region = if fleet.regions["cn-a"]
                .instances
                .iter()
                .any(|i| i.id == inst.id)
            {
                "cn-a"
            } else {
                "cn-b"
            };
            let v = value(
                &samples,
                "aliyun_cloud_assistant_plugin_status",
                &[
                    ("region_id", region),
                    ("instance_id", &inst.id),
                    ("plugin", &p.name),
                    ("status", &p.status),
                ],
            );
            assert_eq!(v, Some(1.0), "{} {} visible", inst.id, p.name);
            if !ok {
                seen_via_sweep += 1;
            }
        }
    }
    assert!(
        seen_via_sweep > 0,
        "the fleet has plugins on old or silent agents"
    );
}

#[tokio::test]
async fn undocumented_states_get_their_own_series_and_gone_names_are_dropped() {
    let clock = Clock::fixed(START);
    let sim = sim_at(cfg(60), clock.clone()).await;
    let (mut target, mut name) = (String::new(), String::new());
    sim.update_fleet(|f| {
        let inst = f
            .regions
            .get_mut("cn-a")
            .and_then(|r| r.instances.iter_mut().find(|i| !i.plugins.is_empty()))
            .expect("plugins");
        inst.plugins[0].status = "Upgrading".into();
        target = inst.id.clone();
        name = inst.plugins[0].name.clone();
    });
    let c = collector(
        &sim,
        CollectorOptions {
            interval: Duration::from_secs(60),
            discovery_interval: Duration::from_secs(120),
            ..CollectorOptions::default()
        },
        clock.clone(),
    );
    for _ in 0..3 {
        c.run_cycle().await;
        clock.advance(60);
    }
    let samples = page_samples(&c);
    let base = [
        ("region_id", "cn-a"),
        ("instance_id", target.as_str()),
        ("plugin", name.as_str()),
    ];
    let with = |s: &'static str| {
        let mut l = base.to_vec();
        l.push(("status", s));
        l
    };
    assert_eq!(
        value(
            &samples,
            "aliyun_cloud_assistant_plugin_status",
            &with("Upgrading")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "aliyun_cloud_assistant_plugin_status",
            &with("Running")
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &samples,
            "aliyun_cloud_assistant_plugins",
            &[
                ("region_id", "cn-a"),
                ("plugin", name.as_str()),
                ("status", "Upgrading")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "aliyun_cloud_assistant_exporter_plugin_names",
            &[("source", "discovered")]
        ),
        Some(3.0)
    );

    // "p-three" is uninstalled everywhere: after a whole round without a report it is no longer swept.
    sim.update_fleet(|f| {
        for r in f.regions.values_mut() {
            for i in &mut r.instances {
                i.plugins.retain(|p| p.name != "p-three");
            }
        }
    });
    for _ in 0..5 {
        c.run_cycle().await;
        clock.advance(60);
    }
    let samples = page_samples(&c);
    assert_eq!(
        value(
            &samples,
            "aliyun_cloud_assistant_exporter_plugin_names",
            &[("source", "discovered")]
        ),
        Some(2.0)
    );
    assert!(
        samples
            .iter()
            .all(|s| s.labels.get("plugin").map(String::as_str) != Some("p-three")),
        "its rows are gone"
    );
}

#[tokio::test]
async fn plugin_names_and_values_that_cannot_be_labels_are_dropped_and_counted() {
    let clock = Clock::fixed(START);
    let sim = sim_at(cfg(30), clock.clone()).await;
    // One instance reports a plugin whose name cannot be a label, another a
    // version of 300 bytes.
    let (mut odd, mut long) = (String::new(), String::new());
    sim.update_fleet(|f| {
        let region = f.regions.get_mut("cn-a").expect("cn-a");
        let mut with_plugins = region.instances.iter_mut().filter(|i| i.plugins.len() > 1);
        let a = with_plugins.next().expect("an instance with plugins");
        let a_plugin = a.plugins.iter_mut().next().expect("a plugin");
        a_plugin.name = "odd name/\"x\"".into();
        odd = a.id.clone();
        let b = with_plugins.next().expect("another");
        b.plugins[0].version = "v".repeat(300);
        long = b.id.clone();
    });
    // Swept by name, as a name from --collect.plugins or discovery would be.
    let c = collector(
        &sim,
        CollectorOptions {
            plugins: vec!["odd name/\"x\"".into(), "p-one".into(), "p-two".into()],
            discovery_interval: Duration::ZERO,
            ..CollectorOptions::default()
        },
        clock.clone(),
    );
    for _ in 0..2 {
        c.run_cycle().await;
        clock.advance(60);
    }
    let text = String::from_utf8(c.scrape_text().expect("page")).expect("utf8");
    promtool_check(&text);
    assert!(
        !text
            .lines()
            .any(|l| l.contains("odd name") && l.contains("instance_id=")),
        "no instance's series of the odd name"
    );
    assert!(!text.contains(&"v".repeat(300)), "nor the long version");
    let page = parse_metrics(&text);
    let dropped = |reason: &str| {
        value(
            &page,
            "aliyun_cloud_assistant_exporter_rows_dropped_total",
            &[("reason", reason)],
        )
        .unwrap_or(0.0)
    };
    assert!(dropped("plugin_name") >= 1.0, "{text}");
    assert!(dropped("label_too_long") >= 1.0, "{text}");
    // The rest of those instances is served.
    for id in [&odd, &long] {
        assert!(
            page.iter()
                .any(|s| s.name == "aliyun_cloud_assistant_agent_up"
                    && s.labels.get("instance_id") == Some(id)),
            "{id}"
        );
    }
}
