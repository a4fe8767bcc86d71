//! The page from synthetic snapshots: series, state sets, aggregates,
//! accounts, and the inventory families (info, managed, activations).

use super::*;
use crate::api::{AgentStatus, InstanceStatus, PluginStatus};
use crate::snapshot::{RegionData, RegionKey, RegionState};
use std::sync::Arc;

fn snap() -> FleetSnapshot {
    let data = RegionData {
        agents: vec![
            AgentStatus {
                instance_id: "i-1".into(),
                up: true,
                version: Some("2.2.4".into()),
                os_type: Some("Linux".into()),
                session_manager: Some(true),
                active_tasks: Some(2),
                invocations: Some(9),
                last_invoked: None,
                last_heartbeat: Some(940),
            },
            AgentStatus {
                instance_id: "i-2".into(),
                ..Default::default()
            },
        ],
        instances: vec![
            InstanceStatus {
                instance_id: "i-1".into(),
                status: "Running".into(),
            },
            InstanceStatus {
                instance_id: "i-2".into(),
                status: "Hibernated".into(),
            },
        ],
        plugins: vec![PluginStatus {
            instance_id: "i-1".into(),
            name: "p\"q".into(),
            version: None,
            status: "Crashed".into(),
            first_heartbeat: None,
            last_heartbeat: Some(900),
        }],
        collected_at: 1000,
    };
    let mut s = FleetSnapshot::default();
    s.regions.insert(
        RegionKey::new("", "r"),
        RegionState {
            data: Some(Arc::new(data)),
            up: true,
            last_success: Some(1000),
            duration: 0.5,
            ..RegionState::default()
        },
    );
    s.regions.insert(
        RegionKey::new("", "dead"),
        RegionState {
            data: None,
            up: false,
            last_success: None,
            duration: 1.0,
            ..RegionState::default()
        },
    );
    s
}

fn text(mode: StateSets) -> String {
    let page = render(&snap(), mode).expect("render");
    let plain = page.plain().expect("gunzip");
    assert_eq!(plain.len(), page.plain_len);
    String::from_utf8(plain).expect("utf8")
}

#[test]
fn renders_series_state_sets_and_aggregates() {
    let t = text(StateSets::All);
    for line in [
        "aliyun_cloud_assistant_agent_up{region_id=\"r\",instance_id=\"i-1\"} 1",
        "aliyun_cloud_assistant_agent_up{region_id=\"r\",instance_id=\"i-2\"} 0",
        "aliyun_cloud_assistant_agent_info{region_id=\"r\",instance_id=\"i-1\",version=\"2.2.4\",os_type=\"Linux\",session_manager=\"true\"} 1",
        "aliyun_cloud_assistant_agent_heartbeat_age_seconds{region_id=\"r\",instance_id=\"i-1\"} 60",
        "aliyun_cloud_assistant_instance_status{region_id=\"r\",instance_id=\"i-1\",status=\"Stopped\"} 0",
        "aliyun_cloud_assistant_instance_status{region_id=\"r\",instance_id=\"i-2\",status=\"Hibernated\"} 1",
        "aliyun_cloud_assistant_instances{region_id=\"r\",status=\"Hibernated\"} 1",
        "aliyun_cloud_assistant_agents{region_id=\"r\",status=\"not_installed\"} 1",
        "aliyun_cloud_assistant_plugin_status{region_id=\"r\",instance_id=\"i-1\",plugin=\"p\\\"q\",status=\"Crashed\"} 1",
        "aliyun_cloud_assistant_plugins{region_id=\"r\",plugin=\"p\\\"q\",status=\"Running\"} 0",
        "aliyun_cloud_assistant_exporter_region_up{region_id=\"dead\"} 0",
        "# TYPE aliyun_cloud_assistant_agent_invocations_total counter",
    ] {
        assert!(t.lines().any(|l| l == line), "missing {line}\n{t}");
    }
    // Absent fields are absent series, not zeros.
    assert!(
        !t.contains("agent_last_heartbeat_timestamp_seconds{region_id=\"r\",instance_id=\"i-2\"}")
    );
    assert!(!t.contains("last_invocation_timestamp_seconds{region_id=\"r\",instance_id=\"i-1\"}"));
    assert_eq!(
        t.matches("instance_status{region_id=\"r\",instance_id=\"i-1\"")
            .count(),
        5
    );
    // Families are sorted by name.
    let names: Vec<&str> = t
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn accounts_label_every_series_when_configured() {
    let mut s = snap();
    let plain = String::from_utf8(
        render(&s, StateSets::All)
            .expect("render")
            .plain()
            .expect("gunzip"),
    )
    .expect("utf8");
    assert!(!plain.contains("account="));
    let state = s.regions.remove(&RegionKey::new("", "r")).expect("region");
    s.regions.insert(RegionKey::new("prod", "r"), state);

    let t = String::from_utf8(
        render(&s, StateSets::All)
            .expect("render")
            .plain()
            .expect("gunzip"),
    )
    .expect("utf8");
    assert!(t.contains("aliyun_cloud_assistant_agent_up{account=\"prod\",region_id=\"r\",instance_id=\"i-1\"} 1"), "{t}");
    assert!(
        t.contains("aliyun_cloud_assistant_exporter_region_up{account=\"prod\",region_id=\"r\"} 1")
    );
    assert!(t.contains(
        "aliyun_cloud_assistant_agents{account=\"prod\",region_id=\"r\",status=\"up\"} 1"
    ));
    // Series that are not per account have none.
    assert!(t.contains("aliyun_cloud_assistant_exporter_cycles_total 0"));
}

#[test]
fn current_mode_writes_only_the_current_state() {
    let t = text(StateSets::Current);
    assert_eq!(
        t.matches("instance_status{region_id=\"r\",instance_id=\"i-1\"")
            .count(),
        1
    );
    assert!(
        t.contains("instance_status{region_id=\"r\",instance_id=\"i-1\",status=\"Running\"} 1")
    );
    assert_eq!(t.matches("plugin_status{").count(), 1);
}

fn page_of(s: &FleetSnapshot) -> String {
    let page = render(s, StateSets::All).expect("render");
    String::from_utf8(page.plain().expect("gunzip")).expect("utf8")
}

/// The lines of family `name`: its HELP and TYPE and its series, in order.
fn family<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
    text.lines()
        .filter(|l| {
            let l = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            l.split(['{', ' ']).next() == Some(name)
        })
        .collect()
}

const NASTY: &str = "web \"01\" \\ 云\nnext";
const NASTY_ESCAPED: &str = "web \\\"01\\\" \\\\ 云\\nnext";

fn inventory_snap(account: &str, tags: &[&str]) -> FleetSnapshot {
    use crate::api::{Activation, InstanceInfo, ManagedInstance, Tags};
    let info = vec![
        InstanceInfo {
            instance_id: "i-1".into(),
            name: Some(NASTY.into()),
            zone_id: Some("cn-hangzhou-g".into()),
            instance_type: Some("ecs.g7.large".into()),
            os_type: Some("linux".into()),
            tags: Tags::from_pairs([
                ("env", "prod"),
                ("Cost Center", ""),
                ("owner", "ops \"a\""),
                ("部门", "研发"),
            ]),
        },
        InstanceInfo {
            instance_id: "i-2".into(),
            ..InstanceInfo::default()
        },
    ];
    let managed = vec![
        ManagedInstance {
            instance_id: "mi-1".into(),
            connected: true,
            name: Some("db 1".into()),
            hostname: Some("db1.local".into()),
            agent_version: Some("2.1.0.37".into()),
            os_type: Some("Linux".into()),
            invocations: Some(100),
            last_invoked: Some(1_611_133_240),
            registered: Some(1_611_133_076),
            tags: Tags::from_pairs([("env", "lab\\1")]),
            ..ManagedInstance::default()
        },
        ManagedInstance {
            instance_id: "mi-2".into(),
            ..ManagedInstance::default()
        },
        ManagedInstance {
            instance_id: "mi-3".into(),
            ..ManagedInstance::default()
        },
    ];
    let activations = vec![
        Activation {
            activation_id: "A-1".into(),
            limit: Some(10),
            registered: Some(9),
            deregistered: Some(1),
            disabled: Some(false),
            created: Some(1_611_122_400),
            ttl_hours: Some(4),
            ..Activation::default()
        },
        Activation {
            activation_id: "A-2".into(),
            registered: Some(0),
            disabled: Some(true),
            ..Activation::default()
        },
        Activation {
            activation_id: "A-3".into(),
            ..Activation::default()
        },
    ];
    let mut s = FleetSnapshot {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..FleetSnapshot::default()
    };
    s.regions.insert(
        RegionKey::new(account, "r"),
        RegionState {
            up: true,
            info: Some(Arc::new(info)),
            managed: Some(Arc::new(managed)),
            activations: Some(Arc::new(activations)),
            ..RegionState::default()
        },
    );
    // A region whose walks gave nothing yet: no inventory series of its own.
    s.regions
        .insert(RegionKey::new(account, "quiet"), RegionState::default());
    s
}

#[test]
fn info_series_carry_names_zones_types_and_the_chosen_tags() {
    let t = page_of(&inventory_snap("", &["env", "Cost Center", "team", "部门"]));
    assert_eq!(
        family(&t, "aliyun_cloud_assistant_instance_info"),
        [
            "# HELP aliyun_cloud_assistant_instance_info ECS instance name, zone, type and the chosen tags (DescribeInstances); always 1.",
            "# TYPE aliyun_cloud_assistant_instance_info gauge",
            &format!(
                "aliyun_cloud_assistant_instance_info{{region_id=\"r\",instance_id=\"i-1\",instance_name=\"{NASTY_ESCAPED}\",zone_id=\"cn-hangzhou-g\",instance_type=\"ecs.g7.large\",tag_env=\"prod\",tag_cost_center=\"\",tag_team=\"\",tag___=\"研发\"}} 1"
            ),
            "aliyun_cloud_assistant_instance_info{region_id=\"r\",instance_id=\"i-2\",instance_name=\"\",zone_id=\"\",instance_type=\"\",tag_env=\"\",tag_cost_center=\"\",tag_team=\"\",tag___=\"\"} 1",
        ]
    );
    // Tags not chosen are not labels.
    assert!(!t.contains("tag_owner"), "{t}");

    let t = page_of(&inventory_snap("", &[]));
    assert_eq!(
        family(&t, "aliyun_cloud_assistant_instance_info")[2..],
        [
            format!(
                "aliyun_cloud_assistant_instance_info{{region_id=\"r\",instance_id=\"i-1\",instance_name=\"{NASTY_ESCAPED}\",zone_id=\"cn-hangzhou-g\",instance_type=\"ecs.g7.large\"}} 1"
            ),
            "aliyun_cloud_assistant_instance_info{region_id=\"r\",instance_id=\"i-2\",instance_name=\"\",zone_id=\"\",instance_type=\"\"} 1".to_string(),
        ]
    );
    assert!(!t.contains("tag_"), "{t}");
}

#[test]
fn tag_keys_that_become_one_label_name_write_it_once() {
    // `cost-center` and `Cost Center` are both `tag_cost_center`: the first wins.
    let t = page_of(&inventory_snap("", &["Cost Center", "cost-center"]));
    let info = family(&t, "aliyun_cloud_assistant_instance_info");
    assert_eq!(
        info[2].matches("tag_cost_center=").count(),
        1,
        "{}",
        info[2]
    );
}

#[test]
fn managed_instance_families_are_exact() {
    let t = page_of(&inventory_snap("", &["env"]));
    let series = |name: &str| -> Vec<String> {
        family(&t, name)
            .iter()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.to_string())
            .collect()
    };
    let p = "aliyun_cloud_assistant_managed_instance";
    assert_eq!(
        series(&format!("{p}_connected")),
        [
            format!("{p}_connected{{region_id=\"r\",instance_id=\"mi-1\"}} 1"),
            format!("{p}_connected{{region_id=\"r\",instance_id=\"mi-2\"}} 0"),
            format!("{p}_connected{{region_id=\"r\",instance_id=\"mi-3\"}} 0"),
        ]
    );
    assert_eq!(
        series(&format!("{p}_info")),
        [
            format!(
                "{p}_info{{region_id=\"r\",instance_id=\"mi-1\",instance_name=\"db 1\",hostname=\"db1.local\",version=\"2.1.0.37\",os_type=\"Linux\",tag_env=\"lab\\\\1\"}} 1"
            ),
            format!(
                "{p}_info{{region_id=\"r\",instance_id=\"mi-2\",instance_name=\"\",hostname=\"\",version=\"\",os_type=\"\",tag_env=\"\"}} 1"
            ),
            format!(
                "{p}_info{{region_id=\"r\",instance_id=\"mi-3\",instance_name=\"\",hostname=\"\",version=\"\",os_type=\"\",tag_env=\"\"}} 1"
            ),
        ]
    );
    // Fields the API left out are absent series, not zeros.
    assert_eq!(
        series(&format!("{p}_invocations_total")),
        [format!(
            "{p}_invocations_total{{region_id=\"r\",instance_id=\"mi-1\"}} 100"
        )]
    );
    assert_eq!(
        series(&format!("{p}_last_invocation_timestamp_seconds")),
        [format!(
            "{p}_last_invocation_timestamp_seconds{{region_id=\"r\",instance_id=\"mi-1\"}} 1611133240"
        )]
    );
    assert_eq!(
        series(&format!("{p}_registration_timestamp_seconds")),
        [format!(
            "{p}_registration_timestamp_seconds{{region_id=\"r\",instance_id=\"mi-1\"}} 1611133076"
        )]
    );
    assert_eq!(
        series("aliyun_cloud_assistant_managed_instances"),
        [
            "aliyun_cloud_assistant_managed_instances{region_id=\"r\",status=\"connected\"} 1",
            "aliyun_cloud_assistant_managed_instances{region_id=\"r\",status=\"disconnected\"} 2",
        ]
    );
    assert!(t.contains(&format!("# TYPE {p}_invocations_total counter\n")));
}

#[test]
fn activation_families_are_exact() {
    let t = page_of(&inventory_snap("", &[]));
    let a = "aliyun_cloud_assistant_activation";
    assert_eq!(
        family(&t, &format!("{a}_instances")),
        [
            &format!(
                "# HELP {a}_instances Instances an activation code may register (limit), has registered and has deregistered."
            ),
            &format!("# TYPE {a}_instances gauge"),
            &format!("{a}_instances{{region_id=\"r\",activation_id=\"A-1\",state=\"limit\"}} 10"),
            &format!(
                "{a}_instances{{region_id=\"r\",activation_id=\"A-1\",state=\"registered\"}} 9"
            ),
            &format!(
                "{a}_instances{{region_id=\"r\",activation_id=\"A-1\",state=\"deregistered\"}} 1"
            ),
            &format!(
                "{a}_instances{{region_id=\"r\",activation_id=\"A-2\",state=\"registered\"}} 0"
            ),
        ]
    );
    assert_eq!(
        family(&t, &format!("{a}_expiry_timestamp_seconds"))[2..],
        [format!(
            "{a}_expiry_timestamp_seconds{{region_id=\"r\",activation_id=\"A-1\"}} {}",
            1_611_122_400 + 4 * 3600
        )]
    );
    assert_eq!(
        family(&t, &format!("{a}_disabled"))[2..],
        [
            format!("{a}_disabled{{region_id=\"r\",activation_id=\"A-1\"}} 0"),
            format!("{a}_disabled{{region_id=\"r\",activation_id=\"A-2\"}} 1"),
        ]
    );
}

#[test]
fn inventory_series_carry_the_account_first() {
    let t = page_of(&inventory_snap("prod", &["env"]));
    for line in [
        "aliyun_cloud_assistant_instance_info{account=\"prod\",region_id=\"r\",instance_id=\"i-2\",instance_name=\"\",zone_id=\"\",instance_type=\"\",tag_env=\"\"} 1",
        "aliyun_cloud_assistant_managed_instance_connected{account=\"prod\",region_id=\"r\",instance_id=\"mi-1\"} 1",
        "aliyun_cloud_assistant_managed_instances{account=\"prod\",region_id=\"r\",status=\"disconnected\"} 2",
        "aliyun_cloud_assistant_activation_disabled{account=\"prod\",region_id=\"r\",activation_id=\"A-2\"} 1",
        "aliyun_cloud_assistant_activation_instances{account=\"prod\",region_id=\"r\",activation_id=\"A-1\",state=\"limit\"} 10",
    ] {
        assert!(t.lines().any(|l| l == line), "missing {line}\n{t}");
    }
    let inventory = ["instance_info", "managed_instance", "activation_"];
    for l in t.lines().filter(|l| !l.starts_with('#')) {
        if inventory.iter().any(|f| l.contains(f)) {
            assert!(l.contains("{account=\"prod\",region_id="), "{l}");
        }
    }
}

#[test]
fn families_without_series_leave_no_trace_but_the_core_ones_are_declared() {
    // No inventory data at all (the walks are off, or not allowed).
    let t = text(StateSets::All);
    for f in families::FAMILIES.iter().chain(families::FLEET_FAMILIES) {
        let declared = t.contains(&format!("# TYPE {} ", f.name));
        match f.empty {
            families::Empty::Header => assert!(declared, "{} is not declared", f.name),
            families::Empty::Nothing => assert!(!declared, "{} is declared", f.name),
        }
    }
    // Walks that found nothing: no series, and so no family; the per-region
    // aggregate still says there are none.
    let mut s = snap();
    for r in s.regions.values_mut() {
        r.info = Some(Arc::default());
        r.managed = Some(Arc::default());
        r.activations = Some(Arc::default());
    }
    let t = page_of(&s);
    assert!(!t.contains("instance_info"), "{t}");
    assert!(!t.contains("managed_instance_"), "{t}");
    assert!(!t.contains("activation_"), "{t}");
    assert_eq!(
        family(&t, "aliyun_cloud_assistant_managed_instances")[2..],
        [
            "aliyun_cloud_assistant_managed_instances{region_id=\"dead\",status=\"connected\"} 0",
            "aliyun_cloud_assistant_managed_instances{region_id=\"dead\",status=\"disconnected\"} 0",
            "aliyun_cloud_assistant_managed_instances{region_id=\"r\",status=\"connected\"} 0",
            "aliyun_cloud_assistant_managed_instances{region_id=\"r\",status=\"disconnected\"} 0",
        ]
    );
}

#[test]
fn the_table_names_each_family_once() {
    let all = || families::FAMILIES.iter().chain(families::FLEET_FAMILIES);
    let mut names: Vec<&str> = all().map(|f| f.name).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "a family is in the table twice");
    for f in all() {
        assert!(f.name.starts_with("aliyun_cloud_assistant_"), "{}", f.name);
        assert!(!f.help.is_empty() && !f.help.contains('\n'), "{}", f.name);
        assert_eq!(
            f.name.ends_with("_total"),
            f.kind == families::Kind::Counter,
            "{}",
            f.name
        );
    }
}

#[test]
fn over_long_label_values_are_escaped_whole() {
    let long = format!("{}\"\\\n", "名".repeat(200));
    let mut s = inventory_snap("", &["env"]);
    let r = s.regions.get_mut(&RegionKey::new("", "r")).expect("region");
    let mut info = (**r.info.as_ref().expect("info")).clone();
    info[1].name = Some(long.as_str().into());
    r.info = Some(Arc::new(info));
    let t = page_of(&s);
    let want = format!("instance_name=\"{}\\\"\\\\\\n\"", "名".repeat(200));
    assert!(t.contains(&want), "{t}");
}

#[test]
fn a_page_and_its_tail_are_one_gzip_member() {
    use std::io::Read;
    let snap = snap();
    for page in [
        Page::from_text(b"a 1\n").expect("page"),
        render(&snap, StateSets::All).expect("page"),
    ] {
        let own = b"# TYPE own_total counter\nown_total 7\n";
        let want = [&page.plain().expect("plain")[..], own].concat();
        let gz = page.member(own).expect("member");
        // A decoder of single members reads all of it, checksum and size.
        let mut dec = flate2::bufread::GzDecoder::new(&gz[..]);
        let mut got = Vec::new();
        dec.read_to_end(&mut got).expect("one valid member");
        assert!(dec.into_inner().is_empty(), "nothing after the member");
        assert_eq!(got, want);
        assert_eq!(page.plain_with(own).expect("plain"), want);
    }
}
