//! What the family writers read: the snapshot region by region, and the
//! loops over its rows (agents, plugins, managed instances, codes, regions)
//! that most families share, each writing one series per row.

use std::io;

use super::text::{Out, SampleValue};
use crate::api::{Activation, AgentStatus, ManagedInstance, PluginStatus, Tags, tag_label_name};
use crate::snapshot::{FleetSnapshot, RegionData, RegionState, StateSets};

/// The `account` label (named accounts only) and the region id.
pub type Labels<'a> = (Option<&'a str>, &'a str);

/// What the writers read: the snapshot, and what one render derives from it
/// once rather than per series.
pub struct Ctx<'a> {
    pub snap: &'a FleetSnapshot,
    pub mode: StateSets,
    /// `(label name, tag key)` of each `--collect.tags` key, in order. A key
    /// whose label name an earlier key already took is left out: a page
    /// with a label twice in a series is refused whole.
    tags: Vec<(String, &'a str)>,
}

impl<'a> Ctx<'a> {
    pub fn new(snap: &'a FleetSnapshot, mode: StateSets) -> Self {
        let mut tags: Vec<(String, &'a str)> = Vec::with_capacity(snap.tags.len());
        for key in snap.tags.iter() {
            let name = tag_label_name(key);
            if !tags.iter().any(|(n, _)| *n == name) {
                tags.push((name, key));
            }
        }
        Ctx { snap, mode, tags }
    }

    pub fn regions(&self) -> impl Iterator<Item = (Labels<'a>, &'a RegionState)> + use<'a> {
        let snap = self.snap;
        snap.regions.iter().map(move |(k, r)| (snap.labels(k), r))
    }

    /// Regions with status data (a region never collected has none).
    pub fn data(&self) -> impl Iterator<Item = (Labels<'a>, &'a RegionData)> + use<'a> {
        self.regions()
            .filter_map(|(l, r)| Some((l, r.data.as_deref()?)))
    }

    /// Regions with a list of the inventory walks (`list` picks which).
    pub fn lists<T: 'a>(
        &self,
        list: fn(&RegionState) -> Option<&Vec<T>>,
    ) -> impl Iterator<Item = (Labels<'a>, &'a [T])> + use<'a, T> {
        self.regions()
            .filter_map(move |(l, r)| Some((l, list(r)?.as_slice())))
    }

    /// The `tag_<key>` labels of a resource: its value of each chosen key,
    /// empty where it has no such tag.
    pub fn tag_labels<'t>(&'t self, tags: &'t Tags) -> impl Iterator<Item = (&'t str, &'t str)> {
        self.tags
            .iter()
            .map(|(name, key)| (name.as_str(), tags.get(key).unwrap_or("")))
    }
}

/// An optional text field as a label value: empty when absent.
pub fn opt(v: &Option<std::sync::Arc<str>>) -> &str {
    v.as_deref().unwrap_or("")
}

/// Per agent: a value from each row, absent where the API gave none.
pub fn per_agent<V: SampleValue>(
    c: &Ctx<'_>,
    o: &mut Out<'_>,
    value: impl Fn(&AgentStatus, &RegionData) -> Option<V>,
) -> io::Result<()> {
    for ((acct, region), d) in c.data() {
        for a in &d.agents {
            if let Some(v) = value(a, d) {
                o.series(
                    acct,
                    [("region_id", region), ("instance_id", &a.instance_id)],
                    v,
                )?;
            }
        }
    }
    Ok(())
}

/// Per plugin row: a value from each, absent where the API gave none.
pub fn per_plugin<V: SampleValue>(
    c: &Ctx<'_>,
    o: &mut Out<'_>,
    value: impl Fn(&PluginStatus, &RegionData) -> Option<V>,
) -> io::Result<()> {
    for ((acct, region), d) in c.data() {
        for p in &d.plugins {
            if let Some(v) = value(p, d) {
                let labels = [
                    ("region_id", region),
                    ("instance_id", &*p.instance_id),
                    ("plugin", &p.name),
                ];
                o.series(acct, labels, v)?;
            }
        }
    }
    Ok(())
}

/// Per managed instance: a value from each, absent where the API gave none.
pub fn per_managed<V: SampleValue>(
    c: &Ctx<'_>,
    o: &mut Out<'_>,
    value: impl Fn(&ManagedInstance) -> Option<V>,
) -> io::Result<()> {
    for ((acct, region), list) in c.lists(|r| r.managed.as_deref()) {
        for m in list {
            if let Some(v) = value(m) {
                o.series(
                    acct,
                    [("region_id", region), ("instance_id", &m.instance_id)],
                    v,
                )?;
            }
        }
    }
    Ok(())
}

/// Per activation code: a value from each, absent where the API gave none.
pub fn per_activation<V: SampleValue>(
    c: &Ctx<'_>,
    o: &mut Out<'_>,
    value: impl Fn(&Activation) -> Option<V>,
) -> io::Result<()> {
    for ((acct, region), list) in c.lists(|r| r.activations.as_deref()) {
        for a in list {
            if let Some(v) = value(a) {
                let labels = [("region_id", region), ("activation_id", &*a.activation_id)];
                o.series(acct, labels, v)?;
            }
        }
    }
    Ok(())
}

/// Per region, every region the exporter knows (collected or not).
pub fn per_region<V: SampleValue>(
    c: &Ctx<'_>,
    o: &mut Out<'_>,
    value: impl Fn(&RegionState) -> Option<V>,
) -> io::Result<()> {
    for ((acct, region), r) in c.regions() {
        if let Some(v) = value(r) {
            o.series(acct, [("region_id", region)], v)?;
        }
    }
    Ok(())
}
