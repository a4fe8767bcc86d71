//! Instance info (DescribeInstances), hybrid managed instances
//! (DescribeManagedInstances) and activation codes (DescribeActivations) as
//! the user sees them on `/metrics`: exactly the simulator's fleet, walked
//! as often as the flags say and no more, and a missing permission that
//! leaves out its own series with one warning and moves nothing else.

mod api;
#[path = "../common/mod.rs"]
mod common;
mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cloud_assistant_exporter::api::{activations, instances, managed_instances, tag_label_name};
use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::collector::{Collector, CollectorOptions};
use cloud_assistant_exporter::simulator::fleet::QUIRK_OMIT_OPTIONAL;
use cloud_assistant_exporter::simulator::{Fleet, FleetConfig, RegionFault, RegionSpec, Simulator};
use cloud_assistant_exporter::snapshot::Source;
use common::*;

const T0: i64 = 1_767_225_600;
const INFO_INTERVAL: Duration = Duration::from_secs(600);

/// Tag keys chosen with `--collect.tags`: odd characters, non-ASCII, one
/// whose value is always empty, one no resource has. The fleet's other
/// keys (`team`, `extra-NN`) are not chosen.
const TAGS: &[&str] = &[
    "env",
    "Cost Center",
    "app.kubernetes.io/name",
    "owner",
    "部门",
    "nobody-has-this",
];

/// The families of the hybrid walks.
const MANAGED: &[&str] = &[
    "aliyun_cloud_assistant_managed_instance_connected",
    "aliyun_cloud_assistant_managed_instance_info",
    "aliyun_cloud_assistant_managed_instance_invocations_total",
    "aliyun_cloud_assistant_managed_instance_last_invocation_timestamp_seconds",
    "aliyun_cloud_assistant_managed_instance_registration_timestamp_seconds",
    "aliyun_cloud_assistant_managed_instances",
];
const ACTIVATIONS: &[&str] = &[
    "aliyun_cloud_assistant_activation_instances",
    "aliyun_cloud_assistant_activation_expiry_timestamp_seconds",
    "aliyun_cloud_assistant_activation_disabled",
];

fn config(regions: Vec<RegionSpec>) -> FleetConfig {
    FleetConfig {
        regions,
        start: T0 - 1800,
        ..fleet(&[])
    }
}

/// Collection with instance info every ten minutes, the chosen tags and the
/// hybrid walks on; plugins swept by name only (no discovery calls).
fn options() -> CollectorOptions {
    CollectorOptions {
        plugins: vec!["ecs-tool-monitor".into()],
        discovery_interval: Duration::ZERO,
        instance_info_interval: INFO_INTERVAL,
        tags: TAGS.iter().map(|t| t.to_string()).collect(),
        managed_instances: true,
        ..CollectorOptions::default()
    }
}

/// The value of tag `key` of a resource, empty without it (as the label).
fn tag(tags: &[(String, String)], key: &str) -> String {
    tags.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn with_tags(
    mut l: BTreeMap<String, String>,
    tags: &[(String, String)],
) -> BTreeMap<String, String> {
    for key in TAGS {
        l.insert(tag_label_name(key), tag(tags, key));
    }
    l
}

/// The info series the simulator's fleet should give, all of value 1.
fn want_info(fleet: &Fleet) -> BTreeMap<BTreeMap<String, String>, f64> {
    let mut want = BTreeMap::new();
    for (region, r) in &fleet.regions {
        for i in &r.instances {
            // A quirky answer may leave the name out: the label is empty.
            let name = match i.quirks & QUIRK_OMIT_OPTIONAL {
                0 => i.name.as_str(),
                _ => "",
            };
            let l = labels(&[
                ("region_id", region),
                ("instance_id", &i.id),
                ("instance_name", name),
                ("zone_id", &i.zone_id),
                ("instance_type", &i.instance_type),
            ]);
            want.insert(with_tags(l, &i.tags), 1.0);
        }
    }
    want
}

fn has_info_of_every_region(page: &[Sample], fleet: &Fleet) -> bool {
    series(page, INSTANCE_INFO).len() == fleet.instance_count()
}

/// The instances that have a series of `name`.
fn ids(page: &[Sample], name: &str) -> BTreeSet<String> {
    series(page, name)
        .keys()
        .map(|l| l["instance_id"].clone())
        .collect()
}

#[tokio::test]
async fn info_series_are_exactly_the_seeded_fleet_with_the_chosen_tags() {
    let clock = Clock::fixed(T0);
    let sim = sim_on(
        config(vec![
            RegionSpec::new("cn-hangzhou", 40),
            RegionSpec::new("eu-central-1", 25).quirky(),
            RegionSpec::new("us-west-1", 0),
        ]),
        &clock,
    )
    .await;
    let fleet = sim.fleet();
    // What the test claims to cover is in the fleet.
    let names: Vec<&str> = fleet
        .regions
        .values()
        .flat_map(|r| r.instances.iter().map(|i| i.name.as_str()))
        .collect();
    for odd in [" ", "\"", "'", "\\", "应", "é"] {
        assert!(names.iter().any(|n| n.contains(odd)), "a name with {odd:?}");
    }
    let tag_keys: BTreeSet<&str> = fleet
        .regions
        .values()
        .flat_map(|r| r.instances.iter())
        .flat_map(|i| i.tags.iter().map(|(k, _)| k.as_str()))
        .collect();
    assert!(tag_keys.contains("team") && tag_keys.contains("extra-19"));
    assert!(!tag_keys.contains("nobody-has-this"));

    let c = collector(&sim, options(), clock);
    let page = cycle_until(&c, "info of every instance", |p| {
        has_info_of_every_region(p, &fleet)
    })
    .await;
    let (got, want) = (series(&page, INSTANCE_INFO), want_info(&fleet));
    let listed =
        |m: &BTreeMap<BTreeMap<String, String>, f64>| m.clone().into_iter().collect::<Vec<_>>();
    assert_same("instance_info", &listed(&got), &listed(&want));
    // Tags not chosen are no label; the chosen ones are on every series.
    let label_names: BTreeSet<&str> = got
        .keys()
        .flat_map(|l| l.keys())
        .map(|k| k.as_str())
        .collect();
    let mut expected: BTreeSet<String> = [
        "region_id",
        "instance_id",
        "instance_name",
        "zone_id",
        "instance_type",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    expected.extend(TAGS.iter().map(|k| tag_label_name(k)));
    assert_eq!(
        label_names,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    promtool_check(
        &String::from_utf8(c.page().load_full().plain().expect("gunzip")).expect("utf8"),
    );
}

#[tokio::test]
async fn the_info_walk_runs_once_per_interval_in_each_region() {
    let clock = Clock::fixed(T0);
    let regions = ["cn-hangzhou", "cn-shanghai", "us-west-1"];
    // 250 instances: three pages of 100 per walk.
    let sim = sim_on(
        config(vec![
            RegionSpec::new(regions[0], 250),
            RegionSpec::new(regions[1], 7),
            RegionSpec::new(regions[2], 0),
        ]),
        &clock,
    )
    .await;
    let pages = [3, 1, 1];
    let calls = || regions.map(|r| requests_in(&sim, instances::ACTION, r));
    let c = collector(&sim, options(), clock.clone());
    let fleet = sim.fleet();
    cycle_until(&c, "info of every instance", |p| {
        has_info_of_every_region(p, &fleet)
    })
    .await;
    run_cycles(&c, 5).await;
    assert_eq!(calls(), pages, "one walk per region in the first interval");

    // Just before the interval ends: still none.
    clock.advance(INFO_INTERVAL.as_secs() as i64 - 1);
    run_cycles(&c, 3).await;
    assert_eq!(calls(), pages);

    clock.advance(1);
    run_cycles(&c, 5).await;
    assert_eq!(calls(), pages.map(|n| 2 * n), "exactly one more walk");

    // The next interval counts from the walk just taken in.
    clock.advance(INFO_INTERVAL.as_secs() as i64 / 2);
    run_cycles(&c, 3).await;
    assert_eq!(calls(), pages.map(|n| 2 * n));
    clock.advance(INFO_INTERVAL.as_secs() as i64 / 2);
    run_cycles(&c, 3).await;
    assert_eq!(calls(), pages.map(|n| 3 * n));
    // The status walks ran in every cycle meanwhile.
    assert!(requests_in(&sim, "DescribeCloudAssistantStatus", regions[1]) >= 19);
}

#[tokio::test]
async fn vanished_instances_keep_their_info_until_the_next_info_walk() {
    let clock = Clock::fixed(T0);
    let sim = sim_on(
        config(vec![
            RegionSpec::new("cn-hangzhou", 6),
            RegionSpec::new("cn-shanghai", 4),
        ]),
        &clock,
    )
    .await;
    let c = collector(&sim, options(), clock.clone());
    let before = sim.fleet();
    let page = cycle_until(&c, "info of every instance", |p| {
        has_info_of_every_region(p, &before)
    })
    .await;
    assert_eq!(series(&page, INSTANCE_INFO), want_info(&before));

    // One instance goes, another comes (a copy under a new id and name).
    let region = "cn-hangzhou";
    let gone = before.regions[region].instances[2].id.clone();
    let new_id = "i-zzzzzznewcomer000".to_string();
    sim.update_fleet(|f| {
        let r = f.regions.get_mut(region).expect("region");
        let mut newcomer = r.instances[0].clone();
        r.instances.retain(|i| i.id != gone);
        newcomer.id = new_id.clone();
        newcomer.name = "new box \"β\"".into();
        r.instances.push(newcomer);
    });
    let after = sim.fleet();
    let agents = |p: &[Sample]| ids(p, AGENT_UP);

    // The status walks see the change at once; the info series do not.
    let page = run_cycles(&c, 3).await;
    assert!(!agents(&page).contains(&gone) && agents(&page).contains(&new_id));
    assert_eq!(
        series(&page, INSTANCE_INFO),
        want_info(&before),
        "not before the next info walk"
    );

    clock.advance(INFO_INTERVAL.as_secs() as i64);
    let page = cycle_until(&c, "the next info walk taken in", |p| {
        !ids(p, INSTANCE_INFO).contains(&gone)
    })
    .await;
    assert_eq!(series(&page, INSTANCE_INFO), want_info(&after));
    assert!(ids(&page, INSTANCE_INFO).contains(&new_id));
    assert_eq!(
        requests_in(&sim, instances::ACTION, "cn-shanghai"),
        2,
        "one walk in each interval"
    );
}

/// The hybrid series the simulator's fleet should give, per family.
fn want_hybrid(fleet: &Fleet) -> BTreeMap<&'static str, BTreeMap<BTreeMap<String, String>, f64>> {
    let mut want: BTreeMap<&str, BTreeMap<_, _>> = MANAGED
        .iter()
        .chain(ACTIVATIONS)
        .map(|f| (*f, BTreeMap::new()))
        .collect();
    let mut put = |family: &'static str, l: BTreeMap<String, String>, v: f64| {
        want.get_mut(family).expect("family").insert(l, v);
    };
    for (region, r) in fleet.regions.iter().filter(|(_, r)| r.hybrid_supported) {
        let connected = r.managed.iter().filter(|m| m.connected).count();
        for (status, n) in [
            ("connected", connected),
            ("disconnected", r.managed.len() - connected),
        ] {
            put(
                MANAGED[5],
                labels(&[("region_id", region), ("status", status)]),
                n as f64,
            );
        }
        for m in &r.managed {
            let id = labels(&[("region_id", region), ("instance_id", &m.id)]);
            put(MANAGED[0], id.clone(), f64::from(u8::from(m.connected)));
            let mut info = id.clone();
            for (k, v) in [
                ("instance_name", &m.name),
                ("hostname", &m.hostname),
                ("version", &m.agent_version),
                ("os_type", &m.os_type),
            ] {
                info.insert(k.into(), v.clone());
            }
            put(MANAGED[1], with_tags(info, &m.tags), 1.0);
            put(MANAGED[2], id.clone(), m.invocations as f64);
            if let Some(t) = m.last_invoked {
                put(MANAGED[3], id.clone(), t as f64);
            }
            put(MANAGED[4], id, m.registered_at as f64);
        }
        for a in &r.activations {
            let id = labels(&[("region_id", region), ("activation_id", &a.id)]);
            for (state, n) in [
                ("limit", a.limit),
                ("registered", a.registered),
                ("deregistered", a.deregistered),
            ] {
                let mut l = id.clone();
                l.insert("state".into(), state.into());
                put(ACTIVATIONS[0], l, n as f64);
            }
            put(ACTIVATIONS[1], id.clone(), a.expires_at() as f64);
            put(ACTIVATIONS[2], id, f64::from(u8::from(a.disabled)));
        }
    }
    want
}

fn hybrid_regions() -> Vec<RegionSpec> {
    vec![
        RegionSpec::new("cn-hangzhou", 5).hybrid(60, 6),
        RegionSpec::new("cn-shanghai", 3).hybrid(0, 0),
        RegionSpec::new("eu-central-1", 4).hybrid_not_supported(),
    ]
}

fn has_activations_of(page: &[Sample], region: &str) -> bool {
    series(page, ACTIVATIONS[2])
        .keys()
        .any(|l| l["region_id"] == region)
}

#[tokio::test]
async fn hybrid_series_are_exactly_the_seeded_fleet() {
    let clock = Clock::fixed(T0);
    let sim = sim_on(config(hybrid_regions()), &clock).await;
    // A server never invoked has no last-invocation series.
    sim.update_fleet(|f| {
        let m = &mut f.regions.get_mut("cn-hangzhou").expect("region").managed[0];
        m.invocations = 0;
        m.last_invoked = None;
    });
    let fleet = sim.fleet();
    let r = &fleet.regions["cn-hangzhou"];
    // Every kind of server and code is in the fleet.
    assert!(r.managed.iter().any(|m| m.connected) && r.managed.iter().any(|m| !m.connected));
    assert!(
        r.managed
            .iter()
            .any(|m| m.name.contains('"') || m.name.contains('应'))
    );
    assert!(
        r.activations.iter().any(|a| a.disabled)
            && r.activations.iter().any(|a| a.expires_at() < T0)
    );
    let c = collector(&sim, options(), clock);
    let page = cycle_until(&c, "activation codes", |p| {
        has_activations_of(p, "cn-hangzhou")
    })
    .await;
    for (family, want) in want_hybrid(&fleet) {
        assert_eq!(series(&page, family), want, "{family}");
    }
    // A region with none: zero of each status, one call per cycle.
    assert_eq!(
        value(
            &page,
            MANAGED[5],
            &[("region_id", "cn-shanghai"), ("status", "connected")]
        ),
        Some(0.0)
    );
    // 60 servers: two pages of 50.
    let cycles = requests_in(&sim, "DescribeCloudAssistantStatus", "cn-shanghai");
    assert_eq!(
        requests_in(&sim, managed_instances::ACTION, "cn-shanghai"),
        cycles
    );
    assert_eq!(
        requests_in(&sim, managed_instances::ACTION, "cn-hangzhou"),
        2 * cycles
    );
}

#[tokio::test]
async fn regions_without_the_hybrid_actions_are_skipped_and_asked_again_later() {
    let clock = Clock::fixed(T0);
    let sim = sim_on(config(hybrid_regions()), &clock).await;
    let recheck = 3600;
    let opts = CollectorOptions {
        instance_info_interval: Duration::from_secs(120),
        unsupported_recheck: Duration::from_secs(recheck),
        ..options()
    };
    let c = collector(&sim, opts, clock.clone());
    let (yes, no) = ("cn-hangzhou", "eu-central-1");
    let calls = |action: &str| [yes, no].map(|r| requests_in(&sim, action, r));
    let cycles = || requests_in(&sim, "DescribeCloudAssistantStatus", yes);
    cycle_until(&c, "activation codes", |p| has_activations_of(p, yes)).await;
    let page = run_cycles(&c, 3).await;
    let n = cycles();
    // Managed instances: every cycle where served (two pages), once where not.
    assert_eq!(calls(managed_instances::ACTION), [2 * n, 1]);
    assert_eq!(calls(activations::ACTION), [1, 1]);
    // The region itself is collected; it has no hybrid series.
    assert_eq!(value(&page, REGION_UP, &[("region_id", no)]), Some(1.0));
    assert!(series(&page, AGENT_UP).keys().any(|l| l["region_id"] == no));
    for family in MANAGED.iter().chain(ACTIVATIONS) {
        assert!(
            series(&page, family).keys().all(|l| l["region_id"] != no),
            "{family}"
        );
    }

    // Past the info interval: codes again where served, not where not.
    clock.advance(121);
    run_cycles(&c, 3).await;
    let n = cycles();
    assert_eq!(calls(managed_instances::ACTION), [2 * n, 1]);
    assert_eq!(calls(activations::ACTION), [2, 1]);

    // Past the recheck: each action asked again once.
    clock.advance(recheck as i64);
    run_cycles(&c, 3).await;
    let n = cycles();
    assert_eq!(calls(managed_instances::ACTION), [2 * n, 2]);
    assert_eq!(calls(activations::ACTION), [3, 2]);
    run_cycles(&c, 2).await;
    assert_eq!(calls(managed_instances::ACTION)[1], 2);
    assert_eq!(calls(activations::ACTION)[1], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_instances_off_makes_no_hybrid_calls_and_no_hybrid_series() {
    let sim = Simulator::start(config(hybrid_regions()))
        .await
        .expect("sim");
    let running = start_exporter(
        &sim,
        &[
            "--collect.interval",
            "1s",
            "--collect.instance-info-interval",
            "1s",
            "--collect.managed-instances=false",
        ],
        Clock::System,
    )
    .await;
    let fleet = sim.fleet();
    // Several cycles and info walks, with their series on the page.
    let page = scrape_until(running.addr, "three cycles and two info walks", |p| {
        value(p, CYCLES, &[]).is_some_and(|n| n >= 3.0)
            && requests_in(&sim, instances::ACTION, "cn-shanghai") >= 2
            && has_info_of_every_region(p, &fleet)
    })
    .await;
    running.shutdown().await;
    assert_eq!(sim.requests(managed_instances::ACTION), 0);
    assert_eq!(sim.requests(activations::ACTION), 0);
    for family in MANAGED.iter().chain(ACTIVATIONS) {
        assert_eq!(count(&page, family), 0, "{family}");
    }
}

/// The actions whose permission a test takes away, with the families they
/// feed.
fn walks() -> [(&'static str, Vec<&'static str>); 3] {
    [
        (instances::ACTION, vec![INSTANCE_INFO]),
        (managed_instances::ACTION, MANAGED.to_vec()),
        (activations::ACTION, ACTIVATIONS.to_vec()),
    ]
}

/// Runs `c` until every walk that is allowed has been taken in, and as many
/// cycles in all as the other run (`CYCLES`), so call counts compare.
async fn settle(c: &Collector, fleet: &Fleet, denied: Option<&str>) -> Vec<Sample> {
    const CYCLES: usize = 8;
    let page = run_cycles(c, CYCLES).await;
    if denied != Some(instances::ACTION) {
        assert!(has_info_of_every_region(&page, fleet), "info walks done");
    }
    if denied != Some(activations::ACTION) {
        assert!(
            has_activations_of(&page, "cn-hangzhou"),
            "activation walks done"
        );
    }
    page
}

#[tokio::test]
async fn a_missing_permission_leaves_out_its_own_series_and_moves_nothing_else() {
    let clock = Clock::fixed(T0);
    let sim = sim_on(config(hybrid_regions()), &clock).await;
    let fleet = sim.fleet();
    let all = settle(&collector(&sim, options(), clock.clone()), &fleet, None).await;
    for (_, families) in walks() {
        for f in families {
            assert!(
                count(&all, f) > 0,
                "{f} is on the page with every permission"
            );
        }
    }
    for (action, families) in walks() {
        sim.update_faults(|f| {
            f.denied.clear();
            f.deny(action);
        });
        sim.reset_counts();
        let c = collector(&sim, options(), clock.clone());
        let page = settle(&c, &fleet, Some(action)).await;
        assert!(sim.requests(action) >= 1, "{action} was tried");
        let refused = value(
            &page,
            API_REQUESTS,
            &[("action", action), ("code", "Forbidden.RAM")],
        );
        assert!(refused.is_some_and(|n| n >= 1.0), "{action}: {refused:?}");
        for f in &families {
            assert_eq!(count(&page, f), 0, "{action} denied: no {f}");
        }
        let without_them: Vec<Sample> = all
            .iter()
            .filter(|s| !families.contains(&s.name.as_str()))
            .cloned()
            .collect();
        assert_same(
            &format!("{action} denied: the rest of the page"),
            &steady(&page, &[action]),
            &steady(&without_them, &[action]),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_warns_once_per_missing_permission_and_keeps_every_region_up() {
    let sim = Simulator::start(config(hybrid_regions()))
        .await
        .expect("sim");
    sim.update_faults(|f| {
        for (action, _) in walks() {
            f.deny(action);
        }
    });
    let url = sim.url();
    let exporter = ExporterProcess::every_second(
        &url,
        &[
            "--collect.instance-info-interval",
            "1s",
            "--collect.tags",
            "env",
        ],
        &[],
    );
    wait_ready(exporter.socket()).await;
    let fleet = sim.fleet();
    let served: Vec<&str> = fleet
        .regions
        .iter()
        .filter(|(_, r)| r.hybrid_supported)
        .map(|(id, _)| id.as_str())
        .collect();
    // Each walk tried again and again (three times in each region).
    let page = scrape_until(exporter.socket(), "three tries of each walk", |p| {
        served.iter().all(|r| {
            walks()
                .iter()
                .all(|(action, _)| requests_in(&sim, action, r) >= 3)
        }) && count(p, AGENT_UP) == fleet.instance_count()
    })
    .await;
    let stderr = exporter.stop();
    for (action, families) in walks() {
        for f in families {
            assert_eq!(count(&page, f), 0, "{f}");
        }
        let permission = format!("ecs:{action}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(&permission)).collect();
        assert_eq!(
            lines.len(),
            1,
            "one warning naming {permission}: {lines:#?}"
        );
        assert!(lines[0].contains("level=warn"), "{}", lines[0]);
    }
    for region in fleet.regions.keys() {
        assert_eq!(
            value(&page, REGION_UP, &[("region_id", region)]),
            Some(1.0),
            "{region}"
        );
    }
    let bad: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("level=error") || l.contains("region collection failed"))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

#[tokio::test]
async fn an_info_walk_slower_than_the_cycle_is_not_started_twice() {
    let clock = Clock::fixed(T0);
    let sim = sim_on(
        config(vec![
            RegionSpec::new("cn-hangzhou", 5),
            RegionSpec::new("cn-shanghai", 5),
        ]),
        &clock,
    )
    .await;
    // Each walk ends while later cycles run, or between two of them.
    sim.update_faults(|f| {
        f.action_latency
            .insert(instances::ACTION.into(), Duration::from_millis(150));
    });
    let c = collector(&sim, options(), clock.clone());
    let fleet = sim.fleet();
    cycle_until(&c, "info of every instance", |p| {
        has_info_of_every_region(p, &fleet)
    })
    .await;
    run_cycles(&c, 20).await;
    assert_eq!(sim.requests(instances::ACTION), 2, "one walk per region");
    clock.advance(INFO_INTERVAL.as_secs() as i64);
    run_cycles(&c, 30).await;
    assert_eq!(sim.requests(instances::ACTION), 4, "one more per region");
}

/// The rows of instance info, hybrid servers and activation codes are let
/// go once their series are rendered: the page keeps those series through
/// the status walks and through failed info walks within
/// `--collect.max-stale`, loses the info series past it, and has them again
/// once the info walk answers.
#[tokio::test]
async fn released_side_walk_rows_keep_their_series_until_max_stale() {
    let clock = Clock::fixed(T0);
    let sim = sim_on(config(hybrid_regions()), &clock).await;
    let fleet = sim.fleet();
    let opts = CollectorOptions {
        max_stale: Duration::from_secs(900),
        ..options()
    };
    let c = collector(&sim, opts, clock.clone());
    let page = settle(&c, &fleet, None).await;
    let info = series(&page, INSTANCE_INFO);
    assert_eq!(info, want_info(&fleet));
    let hybrid: Vec<_> = MANAGED
        .iter()
        .chain(ACTIVATIONS)
        .map(|f| series(&page, f))
        .collect();
    assert!(
        hybrid.iter().all(|s| !s.is_empty()),
        "hybrid series on the page"
    );
    let snap = c.snapshot().await;
    for (key, r) in &snap.regions {
        assert!(
            r.info.is_none() && r.rendered.contains(Source::Info),
            "{key:?}: the info rows are let go"
        );
        assert!(
            r.managed.is_none() && r.activations.is_none(),
            "{key:?}: so are the hybrid rows"
        );
    }

    // The info walk fails from now on; the status walks go on.
    sim.update_faults(|f| {
        f.actions.insert(
            instances::ACTION.into(),
            RegionFault::Error {
                status: 503,
                code: "ServiceUnavailable".into(),
            },
        );
    });
    sim.reset_counts();
    clock.advance(INFO_INTERVAL.as_secs() as i64);
    let page = run_cycles(&c, 4).await;
    assert!(sim.requests(instances::ACTION) >= 2, "the info walks ran");
    assert_eq!(series(&page, INSTANCE_INFO), info, "kept within max_stale");
    let now: Vec<_> = MANAGED
        .iter()
        .chain(ACTIVATIONS)
        .map(|f| series(&page, f))
        .collect();
    assert_eq!(now, hybrid, "the hybrid series stay as they were");

    // Failing past max_stale: the info series go, nothing else does.
    clock.advance(INFO_INTERVAL.as_secs() as i64);
    let page = cycle_until(&c, "the info series gone", |p| count(p, INSTANCE_INFO) == 0).await;
    assert!(count(&page, MANAGED[0]) > 0 && count(&page, AGENT_UP) > 0);

    // The info walk answers again: the series are back, exactly.
    sim.update_faults(|f| {
        f.actions.clear();
    });
    clock.advance(INFO_INTERVAL.as_secs() as i64);
    let page = cycle_until(&c, "the info series back", |p| {
        has_info_of_every_region(p, &fleet)
    })
    .await;
    assert_eq!(series(&page, INSTANCE_INFO), info);
}
