//! Plugin-name discovery: single-instance ListPluginStatus calls (which
//! return every plugin of the instance) spread over the discovery interval,
//! newest instances first. Names found are swept by name from then on; a
//! name no instance reports for a whole round is dropped.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::api::{self, PluginStatus, plugins::agent_supports_plugins};
use crate::client::Client;

/// Plugin names found by single-instance calls, and the round that
/// spreads those calls over the discovery interval.
#[derive(Debug, Default)]
pub(super) struct Discovery {
    pub(super) names: BTreeSet<String>,
    round_start: i64,
    /// Names some instance reported in this round (by discovery or sweep).
    reported: BTreeSet<String>,
    /// Instances asked in this round.
    pub(super) asked: HashSet<Arc<str>>,
    /// Names past `--collect.max-plugin-names`, logged and counted once.
    dropped: BTreeSet<String>,
}

/// Names past the cap that are remembered (to log and count each once).
const MAX_DROPPED_REMEMBERED: usize = 4096;

impl Discovery {
    pub(super) fn new(now: i64) -> Self {
        Discovery {
            round_start: now,
            ..Discovery::default()
        }
    }

    /// Share of the eligible instances asked per cycle (0 = discovery off):
    /// a round spreads over the discovery interval.
    pub(super) fn share(interval: Duration, cycle: Duration) -> f64 {
        if interval.is_zero() {
            return 0.0;
        }
        let cycles = interval.as_secs_f64() / cycle.as_secs_f64().max(1.0);
        1.0 / cycles.max(1.0)
    }

    /// Takes in what a region's walk reported: the instances asked, and every
    /// plugin name seen (by sweep or discovery); a name neither a flag nor
    /// discovery knew is swept from the next cycle on.
    /// `max` names per account at most (flag names first): past it a name is
    /// logged once and counted in `dropped`, never swept.
    pub(super) fn record<'a>(
        &mut self,
        asked: Vec<Arc<str>>,
        reported: impl Iterator<Item = &'a str>,
        (flag_names, max, dropped): (&[String], usize, &prometheus::IntCounter),
        (account, region): (&str, &str),
    ) {
        self.asked.extend(asked);
        let reported: BTreeSet<&str> = reported.collect();
        for name in reported {
            if !self.reported.contains(name) {
                self.reported.insert(name.to_string());
            }
            if flag_names.iter().any(|p| p == name) || self.names.contains(name) {
                continue;
            }
            if flag_names.len() + self.names.len() >= max {
                if self.dropped.len() < MAX_DROPPED_REMEMBERED
                    && self.dropped.insert(name.to_string())
                {
                    tracing::warn!(account, region, plugin = %name, max, "more plugin names than --collect.max-plugin-names; this one is not swept");
                    dropped.inc();
                }
                continue;
            }
            tracing::info!(account, region, plugin = %name, "discovered a plugin name; sweeping it from now on");
            self.names.insert(name.to_string());
        }
    }

    /// The names to sweep: the flag's (at most `max`), then the discovered
    /// ones, sorted.
    pub(super) fn sweep_names(&self, flag_names: &[String], max: usize) -> Vec<String> {
        let mut n: BTreeSet<String> = flag_names.iter().take(max).cloned().collect();
        n.extend(self.names.iter().take(max.saturating_sub(n.len())).cloned());
        n.into_iter().collect()
    }

    /// At the end of a round (`interval` after its start), drops discovered
    /// names that no instance reported during it and starts the next round.
    pub(super) fn end_round(&mut self, interval: Duration, now: i64) {
        if interval.is_zero() || now - self.round_start < interval.as_secs() as i64 {
            return;
        }
        let gone: Vec<String> = self
            .names
            .iter()
            .filter(|n| !self.reported.contains(*n))
            .cloned()
            .collect();
        for n in &gone {
            tracing::info!(plugin = %n, "no instance reported this plugin for a whole discovery round; no longer sweeping it");
            self.names.remove(n);
        }
        self.round_start = now;
        self.reported.clear();
        self.asked.clear();
    }
}

/// Picks the instances to ask for all their plugins in this cycle: agent up
/// and new enough, not yet asked in this round, newest first, at most
/// `share` of the eligible ones (so a round spreads evenly over the
/// discovery interval).
pub fn pick_discovery_targets(
    agents: &[api::AgentStatus],
    asked: &HashSet<Arc<str>>,
    first_seen: &HashMap<Arc<str>, i64>,
    share: f64,
) -> Vec<Arc<str>> {
    let mut eligible: Vec<&api::AgentStatus> = agents
        .iter()
        // ListPluginStatus takes ECS instances only, not managed (`mi-`) ones.
        .filter(|a| a.up && !a.instance_id.starts_with("mi-"))
        .filter(|a| agent_supports_plugins(a.os_type.as_deref(), a.version.as_deref()))
        .collect();
    let budget = (eligible.len() as f64 * share).ceil() as usize;
    eligible.retain(|a| !asked.contains(&a.instance_id));
    eligible.sort_by(|a, b| {
        let fa = first_seen.get(&a.instance_id).copied().unwrap_or(i64::MAX);
        let fb = first_seen.get(&b.instance_id).copied().unwrap_or(i64::MAX);
        fb.cmp(&fa).then_with(|| a.instance_id.cmp(&b.instance_id))
    });
    eligible
        .into_iter()
        .take(budget)
        .map(|a| a.instance_id.clone())
        .collect()
}

/// Asks each target for its plugins, in `lanes`; a failed call is left out
/// (discovery is best effort), the rest count as asked.
pub(super) async fn discover(
    client: &Arc<Client>,
    region: &str,
    targets: Vec<Arc<str>>,
    lanes: usize,
) -> (Vec<PluginStatus>, Vec<Arc<str>>) {
    let answers = crate::call_lanes::in_lanes(
        targets,
        lanes,
        |id| {
            let (client, region) = (Arc::clone(client), region.to_string());
            async move {
                let res = api::list_plugins_of_instance(&client, &region, &id).await;
                Ok((id, res))
            }
        },
        |e| e,
    )
    .await;
    let answers = match answers {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(region, error = %e, "plugin discovery stopped");
            Vec::new()
        }
    };
    let mut rows = Vec::new();
    let mut asked = Vec::new();
    for (id, res) in answers {
        match res {
            Ok(r) => {
                rows.extend(r);
                asked.push(id);
            }
            Err(e) => {
                tracing::debug!(region, instance_id = %id, error = %e, "plugin discovery call failed")
            }
        }
    }
    (rows, asked)
}
