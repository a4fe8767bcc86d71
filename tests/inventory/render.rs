//! The inventory families (instance info, managed instances, activation
//! codes) on a whole rendered page: promtool accepts it, and every label
//! value the API gave comes back unchanged through the escaping, however odd
//! or long.

use std::sync::Arc;

use crate::common::*;
use cloud_assistant_exporter::api::{Activation, InstanceInfo, ManagedInstance, Tags};
use cloud_assistant_exporter::render::{StateSets, render};
use cloud_assistant_exporter::snapshot::{FleetSnapshot, RegionKey, RegionState};

/// Names the API may well return: spaces, quotes, backslashes, newlines,
/// non-ASCII, and one far over 256 bytes.
fn odd_names() -> Vec<String> {
    vec![
        "web 01".into(),
        "say \"hi\"".into(),
        "C:\\srv\\app".into(),
        "two\nlines".into(),
        "数据库-主".into(),
        String::new(),
        format!("{}\\\"\n", "long-名".repeat(60)),
    ]
}

fn fleet_snapshot() -> FleetSnapshot {
    let names = odd_names();
    let pick = |i: usize| Arc::<str>::from(names[i % names.len()].as_str());
    let tags = |i: usize| {
        let mut t = vec![("env", names[(i + 1) % names.len()].clone())];
        if i.is_multiple_of(2) {
            t.push(("Cost Center", format!("cc-{i}")));
        }
        Tags::from_pairs(t)
    };
    let mut snap = FleetSnapshot {
        tags: Arc::from(vec![
            "env".to_string(),
            "Cost Center".to_string(),
            "團隊".to_string(),
        ]),
        ..FleetSnapshot::default()
    };
    for (account, region) in [("", "cn-hangzhou"), ("", "us-west-1")] {
        let n = 3 * names.len();
        let info = (0..n).map(|i| InstanceInfo {
            instance_id: format!("i-{region}-{i}").into(),
            name: (i % 5 != 4).then(|| pick(i)),
            zone_id: Some(format!("{region}-{}", i % 3).into()),
            instance_type: Some("ecs.g7.large".into()),
            os_type: None,
            tags: tags(i),
        });
        let managed = (0..n).map(|i| ManagedInstance {
            instance_id: format!("mi-{region}-{i}").into(),
            connected: !i.is_multiple_of(3),
            name: Some(pick(i + 2)),
            hostname: Some(pick(i + 3)),
            agent_version: i.is_multiple_of(2).then(|| "2.1.0.37".into()),
            invocations: (!i.is_multiple_of(4)).then_some(i as u64),
            last_invoked: (i % 3 == 1).then_some(1_700_000_000 + i as i64),
            registered: Some(1_690_000_000),
            tags: tags(i + 1),
            ..ManagedInstance::default()
        });
        let activations = (0..names.len()).map(|i| Activation {
            activation_id: format!("act-{i}").into(),
            limit: Some(10),
            registered: i.is_multiple_of(2).then_some(i as u64),
            deregistered: Some(0),
            disabled: (i != 3).then_some(i % 2 == 1),
            created: Some(1_690_000_000),
            ttl_hours: (i != 5).then_some(24),
            ..Activation::default()
        });
        snap.regions.insert(
            RegionKey::new(account, region),
            RegionState {
                up: true,
                info: Some(Arc::new(info.collect())),
                managed: Some(Arc::new(managed.collect())),
                activations: Some(Arc::new(activations.collect())),
                ..RegionState::default()
            },
        );
    }
    snap
}

fn page(snap: &FleetSnapshot) -> String {
    let page = render(snap, StateSets::All).expect("render");
    String::from_utf8(page.plain().expect("gunzip")).expect("utf8")
}

#[test]
fn promtool_accepts_a_page_with_every_inventory_family() {
    let text = page(&fleet_snapshot());
    for family in [
        "instance_info",
        "managed_instance_connected",
        "managed_instance_info",
        "managed_instance_invocations_total",
        "managed_instance_last_invocation_timestamp_seconds",
        "managed_instance_registration_timestamp_seconds",
        "managed_instances",
        "activation_instances",
        "activation_expiry_timestamp_seconds",
        "activation_disabled",
    ] {
        assert!(
            text.contains(&format!("\naliyun_cloud_assistant_{family}{{")),
            "no {family} series"
        );
    }
    promtool_check(&text);
}

#[test]
fn label_values_come_back_as_the_api_gave_them() {
    let snap = fleet_snapshot();
    let samples = parse_metrics(&page(&snap));
    let r = &snap.regions[&RegionKey::new("", "cn-hangzhou")];
    for i in r.info.as_deref().expect("info") {
        let s = samples
            .iter()
            .find(|s| {
                s.name == "aliyun_cloud_assistant_instance_info"
                    && s.labels["instance_id"] == *i.instance_id
            })
            .expect("an info series per instance");
        assert_eq!(s.labels["instance_name"], i.name.as_deref().unwrap_or(""));
        assert_eq!(s.labels["tag_env"], i.tags.get("env").unwrap_or(""));
        assert_eq!(
            s.labels["tag_cost_center"],
            i.tags.get("Cost Center").unwrap_or("")
        );
        assert_eq!(s.labels["tag___"], "", "a chosen key no instance has");
    }
    for m in r.managed.as_deref().expect("managed") {
        let s = samples
            .iter()
            .find(|s| {
                s.name == "aliyun_cloud_assistant_managed_instance_info"
                    && s.labels["instance_id"] == *m.instance_id
            })
            .expect("an info series per managed instance");
        assert_eq!(s.labels["instance_name"], m.name.as_deref().unwrap_or(""));
        assert_eq!(s.labels["hostname"], m.hostname.as_deref().unwrap_or(""));
        assert_eq!(s.labels["tag_env"], m.tags.get("env").unwrap_or(""));
    }
    // Every odd name made it onto the page, the long one whole.
    let values: Vec<&str> = samples
        .iter()
        .flat_map(|s| s.labels.values().map(String::as_str))
        .collect();
    for name in odd_names() {
        assert!(
            values.contains(&name.as_str()),
            "{name:?} is not on the page"
        );
    }
}
