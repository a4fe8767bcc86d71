//! What the collector remembers between cycles, and how each outcome is
//! taken into the snapshot: fresh data replaces the old; a failed region,
//! sweep or side walk keeps its last good series for at most
//! `--collect.max-stale`; a region list that shrinks is believed only when
//! three cycles in a row agree.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::discovery::Discovery;
use super::side_walks::{InvocationWalk, SideData, SideResult, SideWalk};
use super::task::RegionWalk;
use crate::api::PluginStatus;
use crate::api::invocations::Filter;
use crate::error::ApiError;
use crate::render::{INSTANCE_STATES, PLUGIN_STATES};
use crate::snapshot::{
    FailureKey, FleetSnapshot, InvocationData, RegionData, RegionKey, SweepState,
};

/// Cycles in a row a region must be missing from DescribeRegions (or the
/// answer empty) before its series go.
pub(super) const UNLISTED_CYCLES: u32 = 3;

/// When a side walk of a region is next due, and whether it is left out.
#[derive(Debug, Default, Clone)]
pub(super) struct SideSchedule {
    pub(super) next_due: i64,
    /// `RegionId.ApiNotSupported`: not asked again before this time.
    pub(super) unsupported_until: i64,
    pub(super) last_success: Option<i64>,
}

/// What taking in a side walk's result needs to know besides the result.
#[derive(Clone, Copy, Debug)]
pub(super) struct SideTiming {
    /// When the walk is next due (clock seconds).
    pub(super) next_due: i64,
    /// How long a region without the action is left alone (seconds).
    pub(super) recheck: i64,
    /// How long the last good data outlives failed walks (seconds).
    pub(super) max_stale: i64,
    /// `--collect.max-command-names`.
    pub(super) max_command_names: usize,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) snapshot: FleetSnapshot,
    /// Account → the regions it has, as last believed.
    pub(super) known_regions: HashMap<String, Vec<String>>,
    /// Regions DescribeRegions no longer lists, for how many cycles in a row.
    pub(super) unlisted: HashMap<RegionKey, u32>,
    /// Region → clock time to look at it again.
    pub(super) unsupported: HashMap<RegionKey, i64>,
    /// Per account.
    pub(super) discovery: HashMap<String, Discovery>,
    /// Instance → clock time first seen (newest are asked first).
    pub(super) first_seen: HashMap<Arc<str>, i64>,
    /// States outside the documented ones already warned about.
    pub(super) warned_states: HashSet<String>,
    pub(super) side_walks: HashMap<(RegionKey, SideWalk), SideSchedule>,
    /// (account, action) already warned about a missing permission.
    pub(super) denied_warned: HashSet<(String, &'static str)>,
    /// Slower walks that finished before their region was on the page.
    pub(super) pending_side: Vec<SideResult>,
    /// The (account, region) pairs walked now, each on its own clock.
    pub(super) active: BTreeSet<RegionKey>,
    /// Walked regions whose first walk has not ended yet.
    pub(super) first_walks: HashSet<RegionKey>,
    /// Accounts whose regions have been listed (or failed to be) once.
    pub(super) listed: HashSet<String>,
    /// The round under way: it ends once every active region has ended a
    /// walk since its start (`cycles_total`).
    pub(super) round: Option<Round>,
    /// Counts reads of region states for rendering: a render of a newer
    /// read is never replaced by one of an older.
    pub(super) reads: u64,
    /// Seconds spent rendering pieces in the round under way.
    pub(super) round_render: f64,
    /// Per region: the failed runs already counted, by invocation id.
    pub(super) ledgers: HashMap<RegionKey, Ledger>,
    /// Per account: the command names that have a label value of their own.
    pub(super) command_names: HashMap<String, HashSet<Arc<str>>>,
    /// (region, filter) walks of invocations already warned about as cut
    /// short.
    pub(super) truncated_warned: HashSet<(RegionKey, Filter)>,
}

/// The (invocation, instance) pairs of a region already counted as failed.
/// Only invocations the API still returns are remembered (the API keeps at
/// most 10 000 records a region), so it stays bounded.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    counted: HashMap<Arc<str>, HashSet<Arc<str>>>,
}

/// Invocations remembered per region at most, whatever the API returns.
const MAX_LEDGER: usize = 20_000;

/// States outside the documented ones warned about at most.
const MAX_WARNED_STATES: usize = 1000;

/// The label value of failures of a command past `--collect.max-command-names`.
pub const OTHER_COMMANDS: &str = "_other";

/// Counts the failed runs of one-off invocations in `w` not counted yet
/// into `previous`, and takes the scheduled tasks as they are now.
fn count_invocations(
    previous: Option<&InvocationData>,
    w: InvocationWalk,
    ledger: &mut Ledger,
    names: &mut HashSet<Arc<str>>,
    max_names: usize,
) -> InvocationData {
    let mut failures = previous.map(|p| p.failures.clone()).unwrap_or_default();
    let complete =
        !w.truncated.contains(&Filter::Failed) && !w.truncated.contains(&Filter::PartialFailed);
    let mut seen: HashSet<Arc<str>> = HashSet::new();
    let empty: Arc<str> = Arc::from("");
    for inv in w.failed.iter().chain(&w.partial) {
        seen.insert(inv.invoke_id.clone());
        // Scheduled tasks are watched by their own series, not counted.
        if inv.timed == Some(true) {
            continue;
        }
        let counted = ledger.counted.entry(inv.invoke_id.clone()).or_default();
        for run in inv.instances.iter().filter(|r| r.failed()) {
            if !counted.insert(run.instance_id.clone()) {
                continue;
            }
            let name = inv.command_name.clone().unwrap_or_else(|| empty.clone());
            let name = if names.contains(&name) {
                name
            } else if names.len() < max_names {
                names.insert(name.clone());
                name
            } else {
                Arc::from(OTHER_COMMANDS)
            };
            let status = run.status.clone().unwrap_or_else(|| empty.clone());
            let code = run.error_code.clone().unwrap_or_else(|| empty.clone());
            let key = FailureKey {
                command_name: name,
                status,
                error_code: code,
            };
            *failures.entry(key).or_insert(0) += 1;
        }
    }
    // What the API no longer returns will not come back: forget it.
    if complete {
        ledger.counted.retain(|id, _| seen.contains(id));
    }
    if ledger.counted.len() > MAX_LEDGER {
        let over = ledger.counted.len() - MAX_LEDGER;
        let drop: Vec<Arc<str>> = ledger
            .counted
            .keys()
            .filter(|id| !seen.contains(*id))
            .take(over)
            .cloned()
            .collect();
        for id in drop {
            ledger.counted.remove(&id);
        }
    }
    let mut tasks = w.timed;
    tasks.sort_by(|a, b| a.invoke_id.cmp(&b.invoke_id));
    InvocationData { failures, tasks }
}

/// A round of walks: every active region once.
#[derive(Debug)]
pub(super) struct Round {
    started: Instant,
    waiting: HashSet<RegionKey>,
}

impl State {
    /// The regions of `account` walked from now on (all accounts' when
    /// `account` is `None`): new ones join the round under way, and /ready
    /// waits for their first walk; gone ones leave it, and the page.
    pub(super) fn set_active(&mut self, account: Option<&str>, keys: Vec<RegionKey>) {
        if let Some(a) = account {
            self.listed.insert(a.to_string());
        }
        let mine = |k: &RegionKey| account.is_none_or(|a| k.account == a);
        let gone: Vec<RegionKey> = self
            .active
            .iter()
            .filter(|k| mine(k) && !keys.contains(k))
            .cloned()
            .collect();
        for k in &gone {
            self.active.remove(k);
            self.first_walks.remove(k);
            self.snapshot.regions.remove(k);
            if let Some(r) = &mut self.round {
                r.waiting.remove(k);
            }
        }
        for k in keys {
            if self.active.insert(k.clone()) {
                self.first_walks.insert(k.clone());
                if let Some(r) = &mut self.round {
                    r.waiting.insert(k);
                }
            }
        }
        if self.round.is_none() {
            self.round = Some(Round {
                started: Instant::now(),
                waiting: self.active.iter().cloned().collect(),
            });
        }
    }

    /// Forgets an account's regions (it was removed).
    pub(super) fn remove_account(&mut self, account: &str) {
        self.set_active(Some(account), Vec::new());
        self.listed.remove(account);
        self.known_regions.remove(account);
        self.discovery.remove(account);
        self.unlisted.retain(|k, _| k.account != account);
        self.unsupported.retain(|k, _| k.account != account);
        self.side_walks.retain(|(k, _), _| k.account != account);
        self.ledgers.retain(|k, _| k.account != account);
        self.command_names.remove(account);
        self.pending_side.retain(|r| r.key.account != account);
    }

    /// True once every account has listed its regions and every region
    /// known then has ended its first walk (ok or failed).
    pub(super) fn ready(&self, accounts: &[String]) -> bool {
        self.first_walks.is_empty() && accounts.iter().all(|a| self.listed.contains(a))
    }

    /// A region's walk ended at clock time `now` (its
    /// first walk counts as ended for /ready once its pieces are on the
    /// page). When
    /// that ends the round, the next begins; returns whether it did.
    pub(super) fn walk_ended(&mut self, key: &RegionKey, now: i64) -> bool {
        self.snapshot.last_collection = Some(now);
        let Some(round) = &mut self.round else {
            return false;
        };
        // Any walk that ends within the round counts: a round is then about
        // as long as the slowest region's walk, as a cycle was.
        round.waiting.remove(key);
        if !round.waiting.is_empty() {
            return false;
        }
        self.snapshot.cycles += 1;
        self.snapshot.cycle_duration = round.started.elapsed().as_secs_f64();
        tracing::info!(
            round = self.snapshot.cycles,
            regions = self.active.len(),
            duration_seconds = format!("{:.3}", self.snapshot.cycle_duration),
            render_seconds = format!("{:.3}", self.round_render),
            "round finished: every region walked once more"
        );
        self.round_render = 0.0;
        self.round = Some(Round {
            started: Instant::now(),
            waiting: self.active.iter().cloned().collect(),
        });
        self.forget_gone_instances();
        self.forget_gone_regions();
        true
    }

    /// The regions to walk for an account whose DescribeRegions answered
    /// `listed`: a region it no longer names stays while it has instances
    /// (or the answer is empty) until three cycles in a row agree.
    pub(super) fn believe(&mut self, account: &str, listed: Vec<String>) -> Vec<String> {
        let previous = self.known_regions.get(account).cloned().unwrap_or_default();
        let mut walk = listed.clone();
        for r in previous.iter().filter(|r| !listed.contains(r)) {
            let key = RegionKey::new(account, r);
            let has_instances = self
                .snapshot
                .regions
                .get(&key)
                .and_then(|s| s.data.as_ref())
                .is_some_and(|d| !d.agents.is_empty() || !d.instances.is_empty());
            if !(listed.is_empty() || has_instances) {
                continue;
            }
            let n = self.unlisted.entry(key.clone()).or_insert(0);
            *n += 1;
            if *n < UNLISTED_CYCLES {
                tracing::warn!(account, region = %r, cycles = *n, "DescribeRegions no longer lists a region that has instances; walking it until {UNLISTED_CYCLES} cycles in a row agree");
                walk.push(r.clone());
            } else {
                tracing::warn!(account, region = %r, "DescribeRegions has not listed the region for {UNLISTED_CYCLES} cycles in a row; its series go");
                self.unlisted.remove(&key);
            }
        }
        for r in &listed {
            self.unlisted.remove(&RegionKey::new(account, r));
        }
        walk.sort();
        walk.dedup();
        self.known_regions.insert(account.to_string(), walk.clone());
        walk
    }

    /// Takes a region's fresh walk in: agents and instances replace the old;
    /// each plugin sweep's rows replace that plugin's, and a failed sweep
    /// keeps its last good rows (for at most `max_stale`).
    pub(super) fn take_walk(
        &mut self,
        key: &RegionKey,
        walk: RegionWalk,
        now: i64,
        max_stale: i64,
    ) -> RegionData {
        let RegionWalk {
            agents,
            instances,
            sweeps,
            discovered,
            ..
        } = walk;
        let entry = self.snapshot.regions.entry(key.clone()).or_default();
        let previous = entry.data.clone();
        let mut states: BTreeMap<String, SweepState> = BTreeMap::new();
        // Exactly the rows of the sweeps that answered (a failed sweep's kept
        // rows and the discovery rows may add a few): the largest vector a
        // region keeps, grown by doubling it would be up to twice its size.
        let swept: usize = sweeps
            .iter()
            .map(|(_, r)| r.as_ref().map_or(0, Vec::len))
            .sum();
        let mut plugins = Vec::with_capacity(swept);
        for (name, result) in sweeps {
            let mut state = entry.sweeps.get(&name).cloned().unwrap_or_default();
            match result {
                Ok(rows) => {
                    plugins.extend(rows);
                    state = SweepState {
                        up: true,
                        last_success: Some(now),
                    };
                }
                // Plugins are not offered in this region: nothing to sweep.
                Err(e) if e.is_api_not_supported() => continue,
                Err(e) => {
                    tracing::warn!(account = %key.account, region = %key.region, plugin = %name, code = e.code(), error = %e, "plugin sweep failed; keeping its last good series");
                    state.up = false;
                    let fresh = state.last_success.is_some_and(|t| now - t <= max_stale);
                    if let (true, Some(prev)) = (fresh, &previous) {
                        plugins.extend(prev.plugins.iter().filter(|p| *p.name == *name).cloned());
                    }
                }
            }
            states.insert(name, state);
        }
        entry.sweeps = states;
        let live: HashSet<&str> = agents
            .iter()
            .map(|a| &*a.instance_id)
            .chain(instances.iter().map(|i| &*i.instance_id))
            .collect();
        plugins.retain(|p| live.contains(&*p.instance_id));
        // Unstable sorts (no scratch copy of the rows): a sweep's rows are
        // one per instance and name, and discovery rows only fill in the
        // (instance, name) pairs no sweep has.
        let order = |a: &PluginStatus, b: &PluginStatus| {
            (&a.instance_id, &a.name).cmp(&(&b.instance_id, &b.name))
        };
        let same = |a: &mut PluginStatus, b: &mut PluginStatus| order(a, b).is_eq();
        plugins.sort_unstable_by(order);
        plugins.dedup_by(same);
        let swept_rows = plugins.len();
        for d in discovered {
            let known = plugins[..swept_rows]
                .binary_search_by(|p| order(p, &d))
                .is_ok();
            if !known && live.contains(&*d.instance_id) {
                plugins.push(d);
            }
        }
        if plugins.len() > swept_rows {
            plugins.sort_unstable_by(order);
            plugins.dedup_by(same);
        }
        plugins.shrink_to_fit();
        RegionData {
            agents,
            instances,
            plugins,
            collected_at: now,
        }
    }

    /// A region that failed: `region_up` 0, its last good series kept for at
    /// most `max_stale`, then dropped.
    pub(super) fn region_failed(&mut self, key: &RegionKey, now: i64, max_stale: i64) {
        let entry = self.snapshot.regions.entry(key.clone()).or_default();
        entry.up = false;
        if entry.data.is_some() && entry.last_success.is_none_or(|t| now - t > max_stale) {
            tracing::warn!(account = %key.account, region = %key.region, "the region has failed for longer than --collect.max-stale; its last good series go");
            entry.data = None;
            entry.sweeps.clear();
        }
    }

    /// Takes in the result of a side walk (or the managed instances of
    /// a region's walk). A missing permission leaves its series out with one
    /// warning per account; a region without the action is left alone for
    /// `recheck`; any other failure keeps the last good data for at most
    /// `max_stale`. Only regions on the page take results.
    ///
    /// A result for a region not on the page yet (its first walk is still
    /// running) is handed back, to be taken in later.
    pub(super) fn take_side(
        &mut self,
        key: &RegionKey,
        walk: SideWalk,
        result: Result<SideData, ApiError>,
        now: i64,
        timing: SideTiming,
    ) -> Option<Result<SideData, ApiError>> {
        let SideTiming {
            next_due,
            recheck,
            max_stale,
            max_command_names: max_names,
        } = timing;
        let Some(entry) = self.snapshot.regions.get_mut(key) else {
            return Some(result);
        };
        let schedule = self.side_walks.entry((key.clone(), walk)).or_default();
        schedule.next_due = next_due;
        let (account, region) = (key.account.as_str(), key.region.as_str());
        match result {
            Ok(data) => {
                schedule.last_success = Some(now);
                match data {
                    SideData::Info(v) => entry.info = Some(Arc::new(v)),
                    SideData::Managed(v) => entry.managed = Some(Arc::new(v)),
                    SideData::Activations(v) => entry.activations = Some(Arc::new(v)),
                    SideData::Invocations(w) => {
                        let data = count_invocations(
                            entry.invocations.as_deref(),
                            w,
                            self.ledgers.entry(key.clone()).or_default(),
                            self.command_names.entry(key.account.clone()).or_default(),
                            max_names,
                        );
                        entry.invocations = Some(Arc::new(data));
                    }
                }
                // Fresh rows: the pieces kept from released ones no longer hold.
                entry.rendered.remove(walk.source());
                return None;
            }
            Err(e) if e.is_permission_denied() => {
                if self
                    .denied_warned
                    .insert((account.to_string(), walk.action()))
                {
                    tracing::warn!(account, region, permission = %format!("ecs:{}", walk.action()), "the credentials may not call this action; its series ({}) are left out, nothing else is affected", walk.what());
                }
                schedule.last_success = None;
            }
            Err(e) if e.is_api_not_supported() => {
                tracing::info!(
                    account,
                    region,
                    action = walk.action(),
                    "the region does not offer this action; asking again later"
                );
                schedule.unsupported_until = now + recheck;
                schedule.last_success = None;
            }
            Err(e) => {
                tracing::warn!(account, region, action = walk.action(), code = e.code(), error = %e, "walk failed; keeping its last good series");
                // Asked again at its own interval (`next_due`), not at the
                // region's next walk.
                if schedule.last_success.is_some_and(|t| now - t <= max_stale) {
                    return None;
                }
            }
        }
        match walk {
            SideWalk::Info => entry.info = None,
            SideWalk::Managed => entry.managed = None,
            SideWalk::Activations => entry.activations = None,
            SideWalk::Invocations => entry.invocations = None,
        }
        // The series go: pieces kept from released rows go with them.
        entry.rendered.remove(walk.source());
        None
    }

    /// Forgets when instances no region reports any more were first seen.
    pub(super) fn forget_gone_instances(&mut self) {
        let live: HashSet<&str> = self
            .snapshot
            .regions
            .values()
            .filter_map(|r| r.data.as_ref())
            .flat_map(|d| d.agents.iter().map(|a| &*a.instance_id))
            .collect();
        self.first_seen.retain(|k, _| live.contains(&**k));
    }

    /// Forgets the schedules of regions no longer on the page.
    pub(super) fn forget_gone_regions(&mut self) {
        let regions = &self.snapshot.regions;
        self.side_walks.retain(|(k, _), _| regions.contains_key(k));
        self.ledgers.retain(|k, _| regions.contains_key(k));
        self.truncated_warned
            .retain(|(k, _)| regions.contains_key(k));
    }

    /// One warning per state outside the documented ones: it gets a series
    /// of its own, and the operator should know why.
    pub(super) fn warn_unknown_states(&mut self, data: &RegionData, key: &RegionKey) {
        let unknown = data
            .instances
            .iter()
            .filter(|i| !INSTANCE_STATES.contains(&&*i.status))
            .map(|i| format!("instance state {}", i.status))
            .chain(
                data.plugins
                    .iter()
                    .filter(|p| !PLUGIN_STATES.contains(&&*p.status))
                    .map(|p| format!("plugin state {}", p.status)),
            );
        for u in unknown {
            // Bounded: an API that makes up a state per row is warned
            // about a thousand times at most.
            if self.warned_states.len() < MAX_WARNED_STATES && !self.warned_states.contains(&u) {
                tracing::warn!(account = %key.account, region = %key.region, state = %u, "the API reports a state this exporter does not document; it gets its own series");
                self.warned_states.insert(u);
            }
        }
    }

    /// Whether a side walk of the region is due now.
    pub(super) fn due(&self, key: &RegionKey, walk: SideWalk, now: i64) -> bool {
        match self.side_walks.get(&(key.clone(), walk)) {
            None => true,
            Some(s) => now >= s.next_due && now >= s.unsupported_until,
        }
    }
}
