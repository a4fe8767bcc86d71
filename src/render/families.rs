//! The metric families of the page, as one table: each family's name, help,
//! type and writer appear once, in its entry (the way kube-state-metrics
//! declares its family generators). Writers read the snapshot through
//! [`Ctx`] and write series through [`Out`], which takes the family's name
//! from the entry being written.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use super::ctx::{Ctx, opt, per_activation, per_agent, per_managed, per_plugin, per_region};
use super::text::{Fixed6, Out};
use crate::api::invocations::InvokeInstance;
use crate::api::{Activation, AgentStatus, INSTANCE_STATES, PLUGIN_STATES};
use crate::snapshot::StateSets;

pub const AGENT_STATES: &[&str] = &["down", "not_installed", "up"];

/// The results a region's walk is counted under, in the order of
/// [`crate::snapshot::RegionState::walks`].
pub const WALK_RESULTS: [&str; 3] = ["ok", "failed", "timeout"];

/// A family's TYPE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// What a family without series leaves on the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Empty {
    /// Its HELP and TYPE: the core families are always declared.
    Header,
    /// Nothing: the inventory families come from optional actions (a
    /// permission or a flag may leave them out), and appear with their data.
    Nothing,
}

/// One family of the table.
pub struct FamilyDef {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub empty: Empty,
    pub write: fn(&Ctx<'_>, &mut Out<'_>) -> io::Result<()>,
}

/// Agent status as the aggregate counts it.
pub fn agent_state(a: &AgentStatus) -> &'static str {
    if a.up {
        "up"
    } else if a.version.is_none() && a.last_heartbeat.is_none() {
        "not_installed"
    } else {
        "down"
    }
}

/// Counts items by key in one pass (sorted keys, for stable output).
fn count_by<K: Ord>(keys: impl Iterator<Item = K>) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// The states to write for a state set whose current state is `current`.
fn states<'s>(
    known: &'s [&'s str],
    current: &'s str,
    mode: StateSets,
) -> impl Iterator<Item = &'s str> {
    let extra = (!known.contains(&current)).then_some(current);
    let all = mode == StateSets::All;
    known
        .iter()
        .copied()
        .filter(move |s| all || *s == current)
        .chain(extra)
}

use Empty::{Header, Nothing};
use Kind::{Counter, Gauge};

/// Every family the exporter renders from the snapshot (the page sorts them
/// by name, together with the registry's).
pub static FAMILIES: &[FamilyDef] = &[
    // The agents (DescribeCloudAssistantStatus).
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_up",
        help: "1 if the Cloud Assistant agent sent a heartbeat within the last 2 minutes (CloudAssistantStatus), else 0.",
        kind: Gauge,
        empty: Header,
        write: |c, o| per_agent(c, o, |a, _| Some(a.up as u8)),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_info",
        help: "Cloud Assistant agent version, OS type and Session Manager support; always 1.",
        kind: Gauge,
        empty: Header,
        write: agent_info,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_active_tasks",
        help: "Cloud Assistant tasks running on the instance (ActiveTaskCount).",
        kind: Gauge,
        empty: Header,
        write: |c, o| per_agent(c, o, |a, _| a.active_tasks),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_invocations_total",
        help: "Cloud Assistant tasks the instance has completed (InvocationCount).",
        kind: Counter,
        empty: Header,
        write: |c, o| per_agent(c, o, |a, _| a.invocations),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_last_invocation_timestamp_seconds",
        help: "When a command last ran on the instance (LastInvokedTime), Unix seconds.",
        kind: Gauge,
        empty: Header,
        write: |c, o| per_agent(c, o, |a, _| a.last_invoked),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_last_heartbeat_timestamp_seconds",
        help: "Last heartbeat of the Cloud Assistant agent (LastHeartbeatTime), Unix seconds.",
        kind: Gauge,
        empty: Header,
        write: |c, o| per_agent(c, o, |a, _| a.last_heartbeat),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_heartbeat_age_seconds",
        help: "Seconds between the collection and the agent's last heartbeat.",
        kind: Gauge,
        empty: Header,
        write: |c, o| {
            per_agent(c, o, |a, d| {
                a.last_heartbeat.map(|h| (d.collected_at - h).max(0))
            })
        },
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agents",
        help: "Cloud Assistant agents per region by status (up, down, not_installed).",
        kind: Gauge,
        empty: Header,
        write: agents,
    },
    // The instances (DescribeInstanceStatus).
    FamilyDef {
        name: "aliyun_cloud_assistant_instance_status",
        help: "ECS instance state (state set: 1 for the current state).",
        kind: Gauge,
        empty: Header,
        write: instance_status,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_instances",
        help: "ECS instances per region by state.",
        kind: Gauge,
        empty: Header,
        write: instances,
    },
    // The plugins (ListPluginStatus).
    FamilyDef {
        name: "aliyun_cloud_assistant_plugin_status",
        help: "Cloud Assistant plugin state on the instance (state set: 1 for the current state).",
        kind: Gauge,
        empty: Header,
        write: plugin_status,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_plugin_info",
        help: "Cloud Assistant plugin version on the instance; always 1.",
        kind: Gauge,
        empty: Header,
        write: plugin_info,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_plugin_last_heartbeat_timestamp_seconds",
        help: "Last heartbeat of the plugin, Unix seconds.",
        kind: Gauge,
        empty: Header,
        write: |c, o| per_plugin(c, o, |p, _| p.last_heartbeat),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_plugin_heartbeat_age_seconds",
        help: "Seconds between the collection and the plugin's last heartbeat.",
        kind: Gauge,
        empty: Header,
        write: |c, o| {
            per_plugin(c, o, |p, d| {
                p.last_heartbeat.map(|h| (d.collected_at - h).max(0))
            })
        },
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_plugins",
        help: "Cloud Assistant plugins per region, plugin and state.",
        kind: Gauge,
        empty: Header,
        write: plugins,
    },
    // Names, zones, types and tags (DescribeInstances).
    FamilyDef {
        name: "aliyun_cloud_assistant_instance_info",
        help: "ECS instance name, zone, type and the chosen tags (DescribeInstances); always 1.",
        kind: Gauge,
        empty: Nothing,
        write: instance_info,
    },
    // Hybrid managed instances (DescribeManagedInstances).
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instance_connected",
        help: "1 if the managed instance's agent is connected (Connected), else 0.",
        kind: Gauge,
        empty: Nothing,
        write: |c, o| per_managed(c, o, |m| Some(m.connected as u8)),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instance_info",
        help: "Managed instance name, hostname, agent version, OS type and the chosen tags; always 1.",
        kind: Gauge,
        empty: Nothing,
        write: managed_instance_info,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instance_invocations_total",
        help: "Cloud Assistant tasks the managed instance has run (InvocationCount).",
        kind: Counter,
        empty: Nothing,
        write: |c, o| per_managed(c, o, |m| m.invocations),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instance_last_invocation_timestamp_seconds",
        help: "When a command last ran on the managed instance (LastInvokedTime), Unix seconds.",
        kind: Gauge,
        empty: Nothing,
        write: |c, o| per_managed(c, o, |m| m.last_invoked),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instance_registration_timestamp_seconds",
        help: "When the managed instance was registered (RegistrationTime), Unix seconds.",
        kind: Gauge,
        empty: Nothing,
        write: |c, o| per_managed(c, o, |m| m.registered),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instances",
        help: "Managed instances per region by status (connected, disconnected).",
        kind: Gauge,
        empty: Nothing,
        write: managed_instances,
    },
    // Activation codes (DescribeActivations).
    FamilyDef {
        name: "aliyun_cloud_assistant_activation_instances",
        help: "Instances an activation code may register (limit), has registered and has deregistered.",
        kind: Gauge,
        empty: Nothing,
        write: activation_instances,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_activation_expiry_timestamp_seconds",
        help: "When the activation code expires (CreationTime + TimeToLiveInHours), Unix seconds.",
        kind: Gauge,
        empty: Nothing,
        write: |c, o| per_activation(c, o, Activation::expires_at),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_activation_disabled",
        help: "1 if the activation code is disabled, else 0.",
        kind: Gauge,
        empty: Nothing,
        write: |c, o| per_activation(c, o, |a| a.disabled.map(u8::from)),
    },
    // Command invocations (DescribeInvocations).
    FamilyDef {
        name: "aliyun_cloud_assistant_invocation_failures_total",
        help: "Failed runs of one-off command invocations (each invocation and instance once), by command name, per-instance status and error code.",
        kind: Counter,
        empty: Nothing,
        write: invocation_failures,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_scheduled_invocation_info",
        help: "A scheduled task (a timed invocation): its command, schedule (Frequency) and repeat mode; always 1.",
        kind: Gauge,
        empty: Nothing,
        write: scheduled_info,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_scheduled_invocation_runs_total",
        help: "Runs of the scheduled task on the instance (Repeats).",
        kind: Counter,
        empty: Nothing,
        write: |c, o| per_task_run(c, o, |r| r.repeats),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_scheduled_invocation_last_run_timestamp_seconds",
        help: "When the scheduled task's last run on the instance ended (FinishTime, else UpdateTime), Unix seconds.",
        kind: Gauge,
        empty: Nothing,
        write: |c, o| per_task_run(c, o, |r| r.finish.or(r.update)),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_scheduled_invocation_last_run_failed",
        help: "1 if the scheduled task's last run on the instance failed (Failed, Error, Timeout, Aborted, Invalid), else 0.",
        kind: Gauge,
        empty: Nothing,
        write: |c, o| per_task_run(c, o, |r| Some(u8::from(r.failed()))),
    },
    // The exporter's own series.
    FamilyDef {
        name: "aliyun_cloud_assistant_exporter_region_up",
        help: "1 if the region's last walk succeeded, else 0.",
        kind: Gauge,
        empty: Header,
        write: |c, o| per_region(c, o, |r| Some(r.up as u8)),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_exporter_plugin_sweep_up",
        help: "1 if the last sweep of the plugin (ListPluginStatus by name) in the region succeeded, else 0; a failed sweep keeps its last good series for a while.",
        kind: Gauge,
        empty: Nothing,
        write: |c, o| {
            for ((acct, region), r) in c.regions() {
                for (plugin, s) in &r.sweeps {
                    o.series(
                        acct,
                        [("region_id", region), ("plugin", plugin.as_str())],
                        s.up as u8,
                    )?;
                }
            }
            Ok(())
        },
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_exporter_region_last_success_timestamp_seconds",
        help: "When the region was last collected successfully, Unix seconds.",
        kind: Gauge,
        empty: Header,
        write: |c, o| per_region(c, o, |r| r.last_success),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_exporter_collection_duration_seconds",
        help: "Seconds the region's last walk took.",
        kind: Gauge,
        empty: Header,
        write: |c, o| per_region(c, o, |r| Some(Fixed6(r.duration))),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_exporter_region_walks_total",
        help: "Walks of the region since the exporter started, by result (ok, failed, timeout).",
        kind: Counter,
        empty: Header,
        write: |c, o| {
            for ((acct, region), r) in c.regions() {
                for (result, n) in WALK_RESULTS.iter().zip(r.walks) {
                    o.series(acct, [("region_id", region), ("result", result)], n)?;
                }
            }
            Ok(())
        },
    },
];

/// The families that describe the whole exporter rather than a region:
/// rendered at every publish (a few lines), not with a region's walk.
pub static FLEET_FAMILIES: &[FamilyDef] = &[
    FamilyDef {
        name: "aliyun_cloud_assistant_exporter_collection_interval_seconds",
        help: "The configured --collect.interval: how often each (account, region) is walked.",
        kind: Gauge,
        empty: Header,
        write: |c, o| o.series(None, [], Fixed6(c.snap.interval)),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_exporter_cycles_total",
        help: "Rounds finished since the exporter started: a round ends once every region has ended a walk (ok or failed) since it began.",
        kind: Counter,
        empty: Header,
        write: |c, o| o.series(None, [], c.snap.cycles),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_exporter_cycle_duration_seconds",
        help: "Seconds the last round took: from its start until every region had ended a walk since (about the slowest region's walk).",
        kind: Gauge,
        empty: Header,
        write: |c, o| match c.snap.cycles {
            0 => Ok(()),
            _ => o.series(None, [], Fixed6(c.snap.cycle_duration)),
        },
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_exporter_last_collection_timestamp_seconds",
        help: "When the last walk of a region ended, Unix seconds.",
        kind: Gauge,
        empty: Header,
        write: |c, o| match c.snap.last_collection {
            Some(t) => o.series(None, [], t),
            None => Ok(()),
        },
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_exporter_plugin_names",
        help: "Plugin names swept by name in every walk, by source (flag, discovered).",
        kind: Gauge,
        empty: Header,
        write: |c, o| {
            for source in ["discovered", "flag"] {
                let n = c.snap.plugin_names.get(source).copied().unwrap_or(0);
                o.series(None, [("source", source)], n)?;
            }
            Ok(())
        },
    },
];

fn invocation_failures(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), r) in c.regions() {
        let Some(inv) = r.invocations.as_deref() else {
            continue;
        };
        for (k, n) in &inv.failures {
            let labels = [
                ("region_id", region),
                ("command_name", &*k.command_name),
                ("status", &*k.status),
                ("error_code", &*k.error_code),
            ];
            o.series(acct, labels, *n)?;
        }
    }
    Ok(())
}

fn scheduled_info(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), r) in c.regions() {
        for t in r.invocations.iter().flat_map(|i| &i.tasks) {
            let labels = [
                ("region_id", region),
                ("invoke_id", &*t.invoke_id),
                ("command_name", opt(&t.command_name)),
                ("frequency", opt(&t.frequency)),
                ("repeat_mode", opt(&t.repeat_mode)),
            ];
            o.series(acct, labels, 1u8)?;
        }
    }
    Ok(())
}

/// Per (scheduled task, instance): a value from each run, absent where the
/// API gave none.
fn per_task_run<V: super::text::SampleValue>(
    c: &Ctx<'_>,
    o: &mut Out<'_>,
    value: impl Fn(&InvokeInstance) -> Option<V>,
) -> io::Result<()> {
    for ((acct, region), r) in c.regions() {
        for t in r.invocations.iter().flat_map(|i| &i.tasks) {
            for run in &t.instances {
                if let Some(v) = value(run) {
                    let labels = [
                        ("region_id", region),
                        ("invoke_id", &*t.invoke_id),
                        ("instance_id", &*run.instance_id),
                    ];
                    o.series(acct, labels, v)?;
                }
            }
        }
    }
    Ok(())
}

fn agent_info(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), d) in c.data() {
        for a in &d.agents {
            let sm = if a.session_manager == Some(true) {
                "true"
            } else {
                "false"
            };
            let labels = [
                ("region_id", region),
                ("instance_id", &*a.instance_id),
                ("version", opt(&a.version)),
                ("os_type", opt(&a.os_type)),
                ("session_manager", sm),
            ];
            o.series(acct, labels, 1u8)?;
        }
    }
    Ok(())
}

fn agents(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), d) in c.data() {
        let mut counts = [0usize; 3];
        for a in &d.agents {
            let s = agent_state(a);
            if let Some(i) = AGENT_STATES.iter().position(|x| *x == s) {
                counts[i] += 1;
            }
        }
        for (s, n) in AGENT_STATES.iter().zip(counts) {
            o.series(acct, [("region_id", region), ("status", s)], n)?;
        }
    }
    Ok(())
}

fn instance_status(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), d) in c.data() {
        for i in &d.instances {
            for s in states(INSTANCE_STATES, &i.status, c.mode) {
                let labels = [
                    ("region_id", region),
                    ("instance_id", &*i.instance_id),
                    ("status", s),
                ];
                o.series(acct, labels, (s == &*i.status) as u8)?;
            }
        }
    }
    Ok(())
}

fn instances(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), d) in c.data() {
        let counts = count_by(d.instances.iter().map(|i| &*i.status));
        let seen = counts
            .keys()
            .copied()
            .filter(|s| !INSTANCE_STATES.contains(s));
        for s in INSTANCE_STATES.iter().copied().chain(seen) {
            let n = counts.get(s).copied().unwrap_or(0);
            o.series(acct, [("region_id", region), ("status", s)], n)?;
        }
    }
    Ok(())
}

fn plugin_status(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), d) in c.data() {
        for p in &d.plugins {
            for s in states(PLUGIN_STATES, &p.status, c.mode) {
                let labels = [
                    ("region_id", region),
                    ("instance_id", &*p.instance_id),
                    ("plugin", &p.name),
                    ("status", s),
                ];
                o.series(acct, labels, (s == &*p.status) as u8)?;
            }
        }
    }
    Ok(())
}

fn plugin_info(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), d) in c.data() {
        for p in &d.plugins {
            let labels = [
                ("region_id", region),
                ("instance_id", &*p.instance_id),
                ("plugin", &p.name),
                ("version", opt(&p.version)),
            ];
            o.series(acct, labels, 1u8)?;
        }
    }
    Ok(())
}

fn plugins(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), d) in c.data() {
        let counts = count_by(d.plugins.iter().map(|p| (&*p.name, &*p.status)));
        let names: BTreeSet<&str> = counts.keys().map(|k| k.0).collect();
        for name in names {
            let extra = counts
                .keys()
                .filter(|k| k.0 == name && !PLUGIN_STATES.contains(&k.1))
                .map(|k| k.1);
            for s in PLUGIN_STATES.iter().copied().chain(extra) {
                let n = counts.get(&(name, s)).copied().unwrap_or(0);
                let labels = [("region_id", region), ("plugin", name), ("status", s)];
                o.series(acct, labels, n)?;
            }
        }
    }
    Ok(())
}

fn instance_info(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), list) in c.lists(|r| r.info.as_deref()) {
        for i in list {
            let labels = [
                ("region_id", region),
                ("instance_id", &*i.instance_id),
                ("instance_name", opt(&i.name)),
                ("zone_id", opt(&i.zone_id)),
                ("instance_type", opt(&i.instance_type)),
            ];
            o.series(acct, labels.into_iter().chain(c.tag_labels(&i.tags)), 1u8)?;
        }
    }
    Ok(())
}

fn managed_instance_info(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), list) in c.lists(|r| r.managed.as_deref()) {
        for m in list {
            let labels = [
                ("region_id", region),
                ("instance_id", &*m.instance_id),
                ("instance_name", opt(&m.name)),
                ("hostname", opt(&m.hostname)),
                ("version", opt(&m.agent_version)),
                ("os_type", opt(&m.os_type)),
            ];
            o.series(acct, labels.into_iter().chain(c.tag_labels(&m.tags)), 1u8)?;
        }
    }
    Ok(())
}

fn managed_instances(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), list) in c.lists(|r| r.managed.as_deref()) {
        let connected = list.iter().filter(|m| m.connected).count();
        for (status, n) in [
            ("connected", connected),
            ("disconnected", list.len() - connected),
        ] {
            o.series(acct, [("region_id", region), ("status", status)], n)?;
        }
    }
    Ok(())
}

fn activation_instances(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
    for ((acct, region), list) in c.lists(|r| r.activations.as_deref()) {
        for a in list {
            for (state, n) in [
                ("limit", a.limit),
                ("registered", a.registered),
                ("deregistered", a.deregistered),
            ] {
                if let Some(n) = n {
                    let labels = [
                        ("region_id", region),
                        ("activation_id", &*a.activation_id),
                        ("state", state),
                    ];
                    o.series(acct, labels, n)?;
                }
            }
        }
    }
    Ok(())
}
