//! The plan of a region's walk: how long its walks were last time, and
//! from that how many lanes its plugin sweeps and single calls get, so its
//! own longest walk sets the walk's length and nothing arrives as one
//! burst.

use std::collections::HashMap;
use std::sync::Arc;

use super::Collector;
use super::discovery::{Discovery, pick_discovery_targets};
use super::side_walks::SideWalk;
use super::state::State;
use super::task::{RegionTask, SweepPlan, Targets};
use crate::api;
use crate::client::Client;
use crate::snapshot::{RegionData, RegionKey};

/// A region's walk lengths in pages, as its last walk saw them.
pub(super) struct WalkEstimate {
    pub(super) agents: usize,
    /// Per plugin name to sweep; a name the region did not report is taken
    /// to be as long as the agent walk.
    sweeps: Vec<(String, usize)>,
}

impl WalkEstimate {
    pub(super) fn of(d: &RegionData, names: &[String]) -> Self {
        let agents = d.agents.len().div_ceil(api::PAGE_SIZE).max(1);
        let mut rows: HashMap<&str, usize> = HashMap::new();
        for p in &d.plugins {
            *rows.entry(&*p.name).or_default() += 1;
        }
        let sweeps = names
            .iter()
            .map(|n| {
                let pages = rows
                    .get(n.as_str())
                    .map_or(agents, |r| r.div_ceil(api::PAGE_SIZE).max(1));
                (n.clone(), pages)
            })
            .collect();
        WalkEstimate { agents, sweeps }
    }

    pub(super) fn longest(&self) -> usize {
        self.sweeps
            .iter()
            .map(|(_, p)| *p)
            .max()
            .unwrap_or(0)
            .max(self.agents)
    }

    /// Sweeps longest first, in as few lanes as fit within `longest`.
    pub(super) fn sweep_plan(&self, longest: usize) -> SweepPlan {
        let mut sweeps = self.sweeps.clone();
        sweeps.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let pages: Vec<usize> = sweeps.iter().map(|(_, p)| *p).collect();
        SweepPlan {
            lanes: lanes_for_walks(&pages, longest),
            names: sweeps.into_iter().map(|(n, _)| n).collect(),
        }
    }
}

/// The fewest lanes that hold NextToken walks of about `pages` pages each,
/// no lane longer than `longest` pages (the longest walk of the cycle, which
/// sets its length anyway), longest walks placed first, each on the lane
/// that frees first; one lane per walk when they do not fit otherwise.
pub fn lanes_for_walks(pages: &[usize], longest: usize) -> usize {
    let mut sorted = pages.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    for lanes in 1..sorted.len() {
        let mut load = vec![0usize; lanes];
        for p in &sorted {
            if let Some(lightest) = load.iter_mut().min() {
                *lightest += p;
            }
        }
        if load.iter().all(|l| *l <= longest) {
            return lanes;
        }
    }
    sorted.len().max(1)
}

impl Collector {
    /// A region's walk: its sweeps in lanes that fit within its own longest
    /// walk (as its last walk saw it), and its discovery calls.
    pub(super) fn plan(
        &self,
        st: &State,
        key: &RegionKey,
        client: &Arc<Client>,
        now: i64,
    ) -> RegionTask {
        let names = match st.discovery.get(&key.account) {
            Some(d) => d.sweep_names(&self.opts.plugins, self.opts.max_plugin_names),
            None => {
                Discovery::default().sweep_names(&self.opts.plugins, self.opts.max_plugin_names)
            }
        };
        let new_name_room = self.opts.max_plugin_names.saturating_sub(names.len());
        let prev = st.snapshot.regions.get(key).and_then(|r| r.data.as_ref());
        let estimate = prev.map(|d| WalkEstimate::of(d, &names));
        let sweeps = match &estimate {
            Some(e) => e.sweep_plan(e.longest()),
            None => SweepPlan {
                lanes: names.len(),
                names,
            },
        };
        let share = Discovery::share(self.opts.discovery_interval, self.opts.interval);
        let no_asked = Default::default();
        let asked = st
            .discovery
            .get(&key.account)
            .map_or(&no_asked, |d| &d.asked);
        // A region seen before picks its targets now; a new one picks them
        // once its agents are known, so day one shows plugins.
        let targets = match prev {
            Some(d) => Targets::Chosen {
                ids: pick_discovery_targets(&d.agents, asked, &st.first_seen, share),
                walk_pages: estimate.as_ref().map_or(0, |e| e.agents),
            },
            None if share > 0.0 => Targets::AfterAgents(share),
            None => Targets::Chosen {
                ids: Vec::new(),
                walk_pages: 0,
            },
        };
        RegionTask {
            key: key.clone(),
            client: Arc::clone(client),
            sweeps,
            targets,
            managed: self.opts.managed_instances && st.due(key, SideWalk::Managed, now),
            deadline: self.opts.region_timeout,
            new_name_room,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AgentStatus, PluginStatus};

    fn region_with(agents: usize, plugins: &[(&str, usize)]) -> RegionData {
        let mut d = RegionData {
            agents: vec![AgentStatus::default(); agents],
            instances: Vec::new(),
            plugins: Vec::new(),
            collected_at: 0,
        };
        for (name, rows) in plugins {
            for _ in 0..*rows {
                d.plugins.push(PluginStatus {
                    instance_id: "i".into(),
                    name: (*name).into(),
                    version: None,
                    status: "Running".into(),
                    first_heartbeat: None,
                    last_heartbeat: None,
                });
            }
        }
        d
    }

    #[test]
    fn sweeps_share_lanes_within_the_longest_walk() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let large = WalkEstimate::of(
            &region_with(40_000, &[("a", 24_000), ("b", 24_000), ("c", 24_000)]),
            &names,
        );
        let small = WalkEstimate::of(&region_with(6_000, &[("a", 4_000), ("b", 3_000)]), &names);
        assert_eq!(large.longest(), 800);
        // The large region's sweeps are each 480 pages: all at once.
        assert_eq!(large.sweep_plan(800).lanes, 3);
        // The small one's: 80, 60 and "c" (not reported: as long as its
        // 120-page agent walk), 260 pages one after another, longest first.
        let plan = small.sweep_plan(800);
        assert_eq!(plan.lanes, 1);
        assert_eq!(plan.names, ["c", "a", "b"]);
        // Alone, the small region's longest walk is its own 120 pages.
        assert_eq!(small.sweep_plan(small.longest()).lanes, 3);
    }

    #[test]
    fn walks_share_lanes_only_where_they_fit_in_the_longest() {
        // A small region's three sweeps fit one after another in the
        // largest region's 800-page walk.
        assert_eq!(lanes_for_walks(&[80, 80, 80], 800), 1);
        // The largest region's own: 3 × 480 do not fit in 2 lanes of 800.
        assert_eq!(lanes_for_walks(&[480, 480, 480], 800), 3);
        assert_eq!(lanes_for_walks(&[500, 300, 200, 400], 800), 2);
        assert_eq!(lanes_for_walks(&[900], 800), 1);
        assert_eq!(lanes_for_walks(&[], 800), 1);
    }
}
