//! The metric families of the page, as one table: each family's name, help,
//! type and writer appear once, in its entry (the way kube-state-metrics
//! declares its family generators). Writers read the snapshot through
//! [`Ctx`] and write series through [`Out`], which takes the family's name
//! from the entry being written; the longer ones live by subject in
//! `status` (agents, instances, plugins) and `inventory` (instance info,
//! hybrid servers, activation codes, invocations).

use std::io;

use super::ctx::{Ctx, per_activation, per_agent, per_managed, per_plugin, per_region};
use super::inventory::{
    activation_instances, instance_info, invocation_failures, managed_instance_info,
    managed_instances, per_task_run, scheduled_info,
};
use super::status::{
    agent_info, agents, instance_status, instances, plugin_info, plugin_status, plugins,
};
use super::text::{Fixed6, Out};
use crate::api::Activation;
use crate::snapshot::Source::{self, Activations, Info, Kept, Managed};

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
    /// What its series are read from: the pieces of a side walk whose rows
    /// were let go are reused, not rendered again.
    pub source: Source,
    pub write: fn(&Ctx<'_>, &mut Out<'_>) -> io::Result<()>,
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
        source: Kept,
        write: |c, o| per_agent(c, o, |a, _| Some(a.up as u8)),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_info",
        help: "Cloud Assistant agent version, OS type and Session Manager support; always 1.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: agent_info,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_active_tasks",
        help: "Cloud Assistant tasks running on the instance (ActiveTaskCount).",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| per_agent(c, o, |a, _| a.active_tasks),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_invocations_total",
        help: "Cloud Assistant tasks the instance has completed (InvocationCount).",
        kind: Counter,
        empty: Header,
        source: Kept,
        write: |c, o| per_agent(c, o, |a, _| a.invocations),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_last_invocation_timestamp_seconds",
        help: "When a command last ran on the instance (LastInvokedTime), Unix seconds.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| per_agent(c, o, |a, _| a.last_invoked),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_last_heartbeat_timestamp_seconds",
        help: "Last heartbeat of the Cloud Assistant agent (LastHeartbeatTime), Unix seconds.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| per_agent(c, o, |a, _| a.last_heartbeat),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_agent_heartbeat_age_seconds",
        help: "Seconds between the collection and the agent's last heartbeat.",
        kind: Gauge,
        empty: Header,
        source: Kept,
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
        source: Kept,
        write: agents,
    },
    // The instances (DescribeInstanceStatus).
    FamilyDef {
        name: "aliyun_cloud_assistant_instance_status",
        help: "ECS instance state (state set: 1 for the current state).",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: instance_status,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_instances",
        help: "ECS instances per region by state.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: instances,
    },
    // The plugins (ListPluginStatus).
    FamilyDef {
        name: "aliyun_cloud_assistant_plugin_status",
        help: "Cloud Assistant plugin state on the instance (state set: 1 for the current state).",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: plugin_status,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_plugin_info",
        help: "Cloud Assistant plugin version on the instance; always 1.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: plugin_info,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_plugin_last_heartbeat_timestamp_seconds",
        help: "Last heartbeat of the plugin, Unix seconds.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| per_plugin(c, o, |p, _| p.last_heartbeat),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_plugin_heartbeat_age_seconds",
        help: "Seconds between the collection and the plugin's last heartbeat.",
        kind: Gauge,
        empty: Header,
        source: Kept,
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
        source: Kept,
        write: plugins,
    },
    // Names, zones, types and tags (DescribeInstances).
    FamilyDef {
        name: "aliyun_cloud_assistant_instance_info",
        help: "ECS instance name, zone, type and the chosen tags (DescribeInstances); always 1.",
        kind: Gauge,
        empty: Nothing,
        source: Info,
        write: instance_info,
    },
    // Hybrid managed instances (DescribeManagedInstances).
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instance_connected",
        help: "1 if the managed instance's agent is connected (Connected), else 0.",
        kind: Gauge,
        empty: Nothing,
        source: Managed,
        write: |c, o| per_managed(c, o, |m| Some(m.connected as u8)),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instance_info",
        help: "Managed instance name, hostname, agent version, OS type and the chosen tags; always 1.",
        kind: Gauge,
        empty: Nothing,
        source: Managed,
        write: managed_instance_info,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instance_invocations_total",
        help: "Cloud Assistant tasks the managed instance has run (InvocationCount).",
        kind: Counter,
        empty: Nothing,
        source: Managed,
        write: |c, o| per_managed(c, o, |m| m.invocations),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instance_last_invocation_timestamp_seconds",
        help: "When a command last ran on the managed instance (LastInvokedTime), Unix seconds.",
        kind: Gauge,
        empty: Nothing,
        source: Managed,
        write: |c, o| per_managed(c, o, |m| m.last_invoked),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instance_registration_timestamp_seconds",
        help: "When the managed instance was registered (RegistrationTime), Unix seconds.",
        kind: Gauge,
        empty: Nothing,
        source: Managed,
        write: |c, o| per_managed(c, o, |m| m.registered),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_managed_instances",
        help: "Managed instances per region by status (connected, disconnected).",
        kind: Gauge,
        empty: Nothing,
        source: Managed,
        write: managed_instances,
    },
    // Activation codes (DescribeActivations).
    FamilyDef {
        name: "aliyun_cloud_assistant_activation_instances",
        help: "Instances an activation code may register (limit), has registered and has deregistered.",
        kind: Gauge,
        empty: Nothing,
        source: Activations,
        write: activation_instances,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_activation_expiry_timestamp_seconds",
        help: "When the activation code expires (CreationTime + TimeToLiveInHours), Unix seconds.",
        kind: Gauge,
        empty: Nothing,
        source: Activations,
        write: |c, o| per_activation(c, o, Activation::expires_at),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_activation_disabled",
        help: "1 if the activation code is disabled, else 0.",
        kind: Gauge,
        empty: Nothing,
        source: Activations,
        write: |c, o| per_activation(c, o, |a| a.disabled.map(u8::from)),
    },
    // Command invocations (DescribeInvocations).
    FamilyDef {
        name: "aliyun_cloud_assistant_invocation_failures_total",
        help: "Failed runs of one-off command invocations (each invocation and instance once), by command name, per-instance status and error code.",
        kind: Counter,
        empty: Nothing,
        source: Kept,
        write: invocation_failures,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_scheduled_invocation_info",
        help: "A scheduled task (a timed invocation): its command, schedule (Frequency) and repeat mode; always 1.",
        kind: Gauge,
        empty: Nothing,
        source: Kept,
        write: scheduled_info,
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_scheduled_invocation_runs_total",
        help: "Runs of the scheduled task on the instance (Repeats).",
        kind: Counter,
        empty: Nothing,
        source: Kept,
        write: |c, o| per_task_run(c, o, |r| r.repeats),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_scheduled_invocation_last_run_timestamp_seconds",
        help: "When the scheduled task's last run on the instance ended (FinishTime, else UpdateTime), Unix seconds.",
        kind: Gauge,
        empty: Nothing,
        source: Kept,
        write: |c, o| per_task_run(c, o, |r| r.finish.or(r.update)),
    },
    FamilyDef {
        name: "aliyun_cloud_assistant_scheduled_invocation_last_run_failed",
        help: "1 if the scheduled task's last run on the instance failed (Failed, Error, Timeout, Aborted, Invalid), else 0.",
        kind: Gauge,
        empty: Nothing,
        source: Kept,
        write: |c, o| per_task_run(c, o, |r| Some(u8::from(r.failed()))),
    },
    // The exporter's own series.
    FamilyDef {
        name: own_name!("region_up"),
        help: "1 if the region's last walk succeeded, else 0.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| per_region(c, o, |r| Some(r.up as u8)),
    },
    FamilyDef {
        name: own_name!("plugin_sweep_up"),
        help: "1 if the last sweep of the plugin (ListPluginStatus by name) in the region succeeded, else 0; a failed sweep keeps its last good series for a while.",
        kind: Gauge,
        empty: Nothing,
        source: Kept,
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
        name: own_name!("region_last_success_timestamp_seconds"),
        help: "When the region was last collected successfully, Unix seconds.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| per_region(c, o, |r| r.last_success),
    },
    FamilyDef {
        name: own_name!("collection_duration_seconds"),
        help: "Seconds the region's last walk took.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| per_region(c, o, |r| Some(Fixed6(r.duration))),
    },
    FamilyDef {
        name: own_name!("region_walks_total"),
        help: "Walks of the region since the exporter started, by result (ok, failed, timeout).",
        kind: Counter,
        empty: Header,
        source: Kept,
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
        name: own_name!("collection_interval_seconds"),
        help: "The configured --collect.interval: how often each (account, region) is walked.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| o.series(None, [], Fixed6(c.snap.interval)),
    },
    FamilyDef {
        name: own_name!("cycles_total"),
        help: "Rounds finished since the exporter started: a round ends once every region has ended a walk (ok or failed) since it began.",
        kind: Counter,
        empty: Header,
        source: Kept,
        write: |c, o| o.series(None, [], c.snap.cycles),
    },
    FamilyDef {
        name: own_name!("cycle_duration_seconds"),
        help: "Seconds the last round took: from its start until every region had ended a walk since (about the slowest region's walk).",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| match c.snap.cycles {
            0 => Ok(()),
            _ => o.series(None, [], Fixed6(c.snap.cycle_duration)),
        },
    },
    FamilyDef {
        name: own_name!("last_collection_timestamp_seconds"),
        help: "When the last walk of a region ended, Unix seconds.",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| match c.snap.last_collection {
            Some(t) => o.series(None, [], t),
            None => Ok(()),
        },
    },
    FamilyDef {
        name: own_name!("plugin_names"),
        help: "Plugin names swept by name in every walk, by source (flag, discovered).",
        kind: Gauge,
        empty: Header,
        source: Kept,
        write: |c, o| {
            let n = c.snap.plugin_names;
            o.series(None, [("source", "discovered")], n.discovered)?;
            o.series(None, [("source", "flag")], n.flag)
        },
    },
];
