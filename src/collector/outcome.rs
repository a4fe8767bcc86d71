//! A region's outcome taken into the state: fresh data (and what it tells
//! discovery), a region left alone because the API is not offered there,
//! or a failure that keeps the last good series.

use std::sync::Arc;

use super::discovery::Discovery;
use super::side_walks::{SideData, SideWalk};
use super::state::State;
use super::task::{RegionOutcome, RegionResult, WalkFailure};
use super::{Collector, WalkSummary};

impl Collector {
    /// Takes a region's outcome into the state: fresh data, a region left
    /// alone (the API is not offered there), or a failure that keeps the
    /// last good series.
    pub(super) fn apply(&self, st: &mut State, r: RegionResult, now: i64) -> WalkSummary {
        let RegionResult {
            key,
            outcome,
            secs,
            calls,
        } = r;
        let (account, region) = (key.account.as_str(), key.region.as_str());
        let max_stale = self.opts.max_stale.as_secs() as i64;
        let mut summary = WalkSummary {
            ok: false,
            unsupported: false,
            discovery_calls: 0,
        };
        match outcome {
            RegionOutcome::Ok(mut walk) => {
                summary.ok = true;
                summary.discovery_calls = walk.asked.len();
                for a in &walk.agents {
                    if !st.first_seen.contains_key(&a.instance_id) {
                        st.first_seen.insert(a.instance_id.clone(), now);
                    }
                }
                // An agent that is down may come back without its version:
                // it keeps the last one known, so its `agent_info` series
                // does not change identity while it is down.
                if let Some(prev) = st.snapshot.regions.get(&key).and_then(|r| r.data.clone()) {
                    for a in walk
                        .agents
                        .iter_mut()
                        .filter(|a| !a.up && a.version.as_deref().is_none_or(str::is_empty))
                    {
                        if let Ok(i) = prev
                            .agents
                            .binary_search_by(|p| p.instance_id.cmp(&a.instance_id))
                        {
                            a.version = prev.agents[i].version.clone();
                        }
                    }
                }
                // Rows whose labels cannot be served stay off the page.
                self.dropped.agents(&mut walk.agents);
                self.dropped.instances(&mut walk.instances);
                self.dropped.plugins(&mut walk.discovered);
                for (_, rows) in walk.sweeps.iter_mut() {
                    if let Ok(rows) = rows {
                        self.dropped.plugins(rows);
                    }
                }
                let mut managed = walk.managed.take();
                if let Some(Ok(m)) = &mut managed {
                    self.dropped.managed(m);
                }
                let asked = std::mem::take(&mut walk.asked);
                let discovered: Vec<_> = walk.discovered.iter().map(|p| p.name.clone()).collect();
                let mut data = st.take_walk(&key, *walk, now, max_stale);
                let reported = data
                    .plugins
                    .iter()
                    .map(|p| &*p.name)
                    .chain(discovered.iter().map(|n| &**n));
                let discovery = st.discovery.entry(key.account.clone());
                let discovery = discovery.or_insert_with(|| Discovery::new(now));
                discovery.record(
                    asked,
                    reported,
                    (
                        &self.opts.plugins,
                        self.opts.max_plugin_names,
                        &self.names_dropped,
                    ),
                    (account, region),
                );
                // Names past --collect.max-plugin-names are never swept: their
                // rows from discovery calls stay off the page too, or they
                // would come and go with the discovery rounds.
                let kept: std::collections::HashSet<String> = discovery
                    .sweep_names(&self.opts.plugins, self.opts.max_plugin_names)
                    .into_iter()
                    .collect();
                data.plugins.retain(|p| kept.contains(&*p.name));
                st.warn_unknown_states(&data, &key);
                tracing::info!(
                    account,
                    region,
                    instances = data.instances.len(),
                    agents = data.agents.len(),
                    plugins = data.plugins.len(),
                    calls,
                    duration_seconds = format!("{secs:.3}"),
                    "region collected"
                );
                let entry = st.snapshot.regions.entry(key.clone()).or_default();
                entry.data = Some(Arc::new(data));
                entry.up = true;
                entry.last_success = Some(now);
                entry.duration = secs;
                entry.walks[0] += 1;
                if let Some(m) = managed {
                    let timing = self.side_timing(now);
                    st.take_side(
                        &key,
                        SideWalk::Managed,
                        m.map(SideData::Managed),
                        now,
                        timing,
                    );
                }
            }
            RegionOutcome::Unsupported(e) => {
                summary.unsupported = true;
                let recheck = self.opts.unsupported_recheck;
                tracing::warn!(account, region, error = %e, recheck_after = ?recheck, "Cloud Assistant is not available in this region; leaving it out");
                st.unsupported
                    .insert(key.clone(), now + recheck.as_secs() as i64);
                st.snapshot.regions.remove(&key);
            }
            RegionOutcome::Failed(error) => {
                let code = error.code();
                tracing::warn!(account, region, calls, duration_seconds = format!("{secs:.3}"), code = %code, error = %error, "region collection failed; keeping its last good series");
                st.region_failed(&key, now, max_stale);
                if let Some(entry) = st.snapshot.regions.get_mut(&key) {
                    entry.duration = secs;
                    let timed_out = matches!(error, WalkFailure::Deadline(_));
                    entry.walks[if timed_out { 2 } else { 1 }] += 1;
                }
            }
        }
        summary
    }
}
