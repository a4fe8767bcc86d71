//! The writers of the agent, instance and plugin families: the series a
//! region's walk yields, per row and counted per region.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use super::ctx::{Ctx, opt};
use super::text::Out;
use crate::api::{AgentStatus, INSTANCE_STATES, PLUGIN_STATES};
use crate::snapshot::StateSets;

pub const AGENT_STATES: &[&str] = &["down", "not_installed", "up"];

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

pub(super) fn agent_info(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn agents(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn instance_status(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn instances(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn plugin_status(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn plugin_info(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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

pub(super) fn plugins(c: &Ctx<'_>, o: &mut Out<'_>) -> io::Result<()> {
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
