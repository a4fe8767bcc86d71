//! The writers of the inventory and invocation families: instance info,
//! hybrid servers, activation codes, failed invocations and scheduled
//! tasks, from the side walks beside a region's.

use std::io;

use super::ctx::{Ctx, opt};
use super::text::{Out, SampleValue};
use crate::api::invocations::InvokeInstance;

pub(super) fn instance_info(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn managed_instance_info(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn managed_instances(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn activation_instances(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn invocation_failures(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn scheduled_info(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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
pub(super) fn per_task_run<V: SampleValue>(
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
