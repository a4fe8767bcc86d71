//! The collection: every (account, region) walked on its own clock
//! (`clocks`): agents, instances, plugin sweeps by name, a bounded number of
//! plugin discovery calls; the last good data of each region kept; and when
//! a region's walk ends, its pieces of the page rendered and the page
//! swapped in. It never touches HTTP serving.

mod clocks;
mod discovery;
mod labels;
mod outcome;
mod plan;
mod publish;
mod region;
mod shard;
mod side_walks;
mod state;
mod task;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus::{IntCounter, Registry};
use tokio::sync::{Mutex, Notify, watch};
use tokio::task::JoinSet;

use crate::accounts::Account;
use crate::client::Client;
use crate::clock::Clock;
use crate::render::{Page, StateSets, assemble};
use crate::snapshot::{FleetSnapshot, PluginNameCounts, RegionKey};
pub use discovery::pick_discovery_targets;
use publish::PieceStore;
pub use shard::Shard;
use side_walks::{InvocationWalk, SideData, SideResult, SideWalk, SideWalks};
use state::State;

#[derive(Clone, Debug)]
pub struct CollectorOptions {
    /// Regions to walk; empty = all that DescribeRegions returns.
    pub regions: Vec<String>,
    /// Plugin names swept in every cycle.
    pub plugins: Vec<String>,
    pub interval: Duration,
    /// Zero turns discovery off.
    pub discovery_interval: Duration,
    /// A region that takes longer is abandoned for this cycle.
    pub region_timeout: Duration,
    pub shard: Shard,
    pub state_sets: StateSets,
    /// How long a region (or action) that answered
    /// `RegionId.ApiNotSupported` is left alone.
    pub unsupported_recheck: Duration,
    /// How long a region or sweep that keeps failing serves its last good
    /// series.
    pub max_stale: Duration,
    /// Plugin names swept per account at most.
    pub max_plugin_names: usize,
    /// How often instance names, zones, types and tags (and activation
    /// codes) are walked; zero turns it off.
    pub instance_info_interval: Duration,
    /// Tag keys written as `tag_<key>` labels on the info series.
    pub tags: Vec<String>,
    /// Walk hybrid managed instances and activation codes.
    pub managed_instances: bool,
    /// How often failed invocations and scheduled tasks are read; zero
    /// turns it off.
    pub invocations_interval: Duration,
    /// Pages per invocations walk (per filter) at most.
    pub invocations_max_pages: usize,
    /// Distinct `command_name` values per account at most.
    pub max_command_names: usize,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions {
            regions: Vec::new(),
            plugins: Vec::new(),
            interval: Duration::from_secs(60),
            discovery_interval: Duration::from_secs(3600),
            region_timeout: Duration::from_secs(600),
            shard: Shard::default(),
            state_sets: StateSets::All,
            unsupported_recheck: Duration::from_secs(3600),
            max_stale: Duration::from_secs(3600),
            max_plugin_names: 64,
            instance_info_interval: Duration::ZERO,
            tags: Vec::new(),
            managed_instances: false,
            invocations_interval: Duration::ZERO,
            invocations_max_pages: 20,
            max_command_names: 100,
        }
    }
}

/// What one [`Collector::run_cycle`] did, for tests.
#[derive(Debug, Default, Clone)]
pub struct CycleReport {
    pub regions_ok: usize,
    pub regions_failed: usize,
    pub discovery_calls: usize,
}

pub struct Collector {
    accounts: std::sync::RwLock<Vec<Account>>,
    opts: CollectorOptions,
    clock: Clock,
    /// The exporter's own series (API counters, process), which a scrape
    /// appends to the page as of that moment.
    registry: Registry,
    page: Arc<ArcSwap<Page>>,
    ready: Arc<AtomicBool>,
    state: Mutex<State>,
    side_walks: Arc<SideWalks>,
    names_dropped: IntCounter,
    /// Rows whose labels cannot be served.
    dropped: labels::Dropped,
    /// Invocation walks cut short at `--collect.invocations-max-pages`.
    invocations_truncated: IntCounter,
    /// Every region's pieces of the page.
    pieces: std::sync::Mutex<PieceStore>,
    /// `--collect.tags`, for the renders.
    tags: Arc<[String]>,
    /// Woken when the accounts change (a reload, a down account up).
    accounts_changed: Notify,
}

impl Collector {
    /// The collector of `accounts`; series carry `account` for the named
    /// ones. The first page (empty) is rendered at once.
    pub fn new(
        accounts: Vec<Account>,
        opts: CollectorOptions,
        clock: Clock,
        registry: Registry,
    ) -> std::io::Result<Self> {
        let names_dropped =
            registered_counter(&registry, crate::own_metrics::PLUGIN_NAMES_DROPPED)?;
        let dropped = labels::Dropped::new(&registry).map_err(std::io::Error::other)?;
        let invocations_truncated =
            registered_counter(&registry, crate::own_metrics::INVOCATION_WALKS_TRUNCATED)?;
        let tags: Arc<[String]> = opts.tags.clone().into();
        let empty = FleetSnapshot {
            tags: Arc::clone(&tags),
            interval: opts.interval.as_secs_f64(),
            ..FleetSnapshot::default()
        };
        let page = assemble(std::iter::empty(), &empty, opts.state_sets)?;
        Ok(Collector {
            accounts: std::sync::RwLock::new(accounts),
            opts,
            clock,
            registry,
            page: Arc::new(ArcSwap::from_pointee(page)),
            ready: Arc::new(AtomicBool::new(false)),
            state: Mutex::new(State {
                snapshot: empty,
                ..State::default()
            }),
            side_walks: Arc::default(),
            names_dropped,
            dropped,
            invocations_truncated,
            pieces: std::sync::Mutex::default(),
            tags,
            accounts_changed: Notify::new(),
        })
    }

    /// The page the server serves; swapped whole after every walk.
    pub fn page(&self) -> Arc<ArcSwap<Page>> {
        Arc::clone(&self.page)
    }

    /// The page as a scrape sees it now: the fleet's page and the exporter's
    /// own series, as plain text.
    pub fn scrape_text(&self) -> std::io::Result<Vec<u8>> {
        let own = crate::render::registry_text(&self.registry);
        self.page.load().plain_with(&own)
    }

    /// True once every known region has ended its first walk.
    pub fn ready(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ready)
    }

    /// Replaces the accounts (a reloaded `--config.file`, a down account
    /// up): new ones start walking at once, and regions of removed accounts
    /// leave the page.
    pub fn set_accounts(&self, accounts: Vec<Account>) {
        if let Ok(mut a) = self.accounts.write() {
            *a = accounts;
        }
        self.accounts_changed.notify_one();
    }

    pub fn accounts(&self) -> Vec<Account> {
        self.accounts.read().map(|a| a.clone()).unwrap_or_default()
    }

    /// A copy of the current snapshot.
    pub async fn snapshot(&self) -> FleetSnapshot {
        self.state.lock().await.snapshot.clone()
    }

    /// Walks every (account, region) on its own clock until `shutdown`
    /// turns true (see `clocks`): no cycle, no barrier across regions or
    /// accounts.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        clocks::supervise(self, shutdown).await
    }

    /// Walks every region of every account once, all at once, now, and
    /// returns what it did: the whole fleet in one go, for tests (the
    /// exporter itself runs [`Collector::run`]). Each region
    /// is on the page as soon as its walk ends.
    pub async fn run_cycle(&self) -> CycleReport {
        let now = self.clock.now();
        let lists = self.list_regions().await;
        let active = {
            let mut st = self.state.lock().await;
            let active = self.regions_to_walk(&mut st, lists, now);
            // A walk that finished since the last cycle is taken in first,
            // so it is not started again as if still due.
            self.take_side_walks(&mut st, now, true);
            active
        };
        let gone = self.prune_pieces().await;
        let walks = active
            .iter()
            .map(|(key, client)| self.walk_region(key, client, now));
        let mut report = CycleReport::default();
        for w in futures_join_all(walks).await {
            match w {
                Some(w) if w.ok => report.regions_ok += 1,
                Some(w) if !w.unsupported => report.regions_failed += 1,
                _ => {}
            }
            report.discovery_calls += w.map_or(0, |w| w.discovery_calls);
        }
        let finished: Vec<RegionKey> = {
            let mut st = self.state.lock().await;
            self.take_side_walks(&mut st, now, false)
        };
        if !finished.is_empty() || gone {
            self.publish(finished).await;
        }
        self.ready.store(true, std::sync::atomic::Ordering::Release);
        report
    }

    /// Each account's regions, asked of all accounts at once (DescribeRegions)
    /// within the cycle's deadline, with no lock held.
    async fn list_regions(&self) -> Vec<(Account, Option<region::RegionList>)> {
        let accounts = self.accounts();
        let known: Vec<bool> = {
            let st = self.state.lock().await;
            accounts
                .iter()
                .map(|a| st.known_regions.contains_key(&a.name))
                .collect()
        };
        let deadline = self.opts.region_timeout;
        let mut set = JoinSet::new();
        for (i, (account, known)) in accounts.iter().zip(known).enumerate() {
            let (account, default) = (account.clone(), self.opts.regions.clone());
            set.spawn(async move {
                let list = region::list_regions(&account, &default, known);
                (i, tokio::time::timeout(deadline, list).await.ok())
            });
        }
        let mut lists: Vec<Option<region::RegionList>> = accounts.iter().map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, list)) = joined
                && let Some(slot) = lists.get_mut(i)
            {
                *slot = list;
            }
        }
        accounts.into_iter().zip(lists).collect()
    }

    /// The (account, region) pairs this replica walks now, over all
    /// accounts (see [`Self::account_regions`]); regions of accounts no
    /// longer there, or not walked, leave the page.
    fn regions_to_walk(
        &self,
        st: &mut State,
        lists: Vec<(Account, Option<region::RegionList>)>,
        now: i64,
    ) -> Vec<(RegionKey, Arc<Client>)> {
        let mut keys: Vec<(RegionKey, Arc<Client>)> = Vec::new();
        for (account, list) in &lists {
            for key in self.account_regions(st, account, list.as_ref(), now) {
                keys.push((key, Arc::clone(&account.client)));
            }
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        st.known_regions
            .retain(|name, _| lists.iter().any(|(a, _)| &a.name == name));
        let active: Vec<RegionKey> = keys.iter().map(|(k, _)| k.clone()).collect();
        st.set_active(None, active);
        keys.retain(|(k, _)| !st.unsupported.contains_key(k));
        keys
    }

    /// The regions of one account this replica walks now: its regions
    /// (configured, else as DescribeRegions is believed; the last known list
    /// when `list` is `None`), its shard. The account's other regions leave
    /// the page.
    fn account_regions(
        &self,
        st: &mut State,
        account: &Account,
        list: Option<&region::RegionList>,
        now: i64,
    ) -> Vec<RegionKey> {
        let regions = match list {
            Some(l) if !l.configured.is_empty() => {
                if l.listed.is_some() {
                    st.known_regions.insert(account.name.clone(), Vec::new());
                }
                l.configured.clone()
            }
            Some(region::RegionList {
                listed: Some(ids), ..
            }) => st.believe(&account.name, ids.clone()),
            // DescribeRegions failed or timed out: the last known list.
            _ => st
                .known_regions
                .get(&account.name)
                .cloned()
                .unwrap_or_default(),
        };
        let mut keys: Vec<RegionKey> = regions
            .iter()
            .filter(|r| self.opts.shard.owns(&account.name, r))
            .map(|r| RegionKey::new(&account.name, r))
            .collect();
        keys.sort();
        keys.dedup();
        st.snapshot
            .regions
            .retain(|k, _| k.account != account.name || keys.contains(k));
        st.unsupported.retain(|_, until| *until > now);
        keys
    }

    /// One walk of one region: its plan from its last walk, the walk within
    /// `--collect.timeout`, the outcome taken in, the side walks that are
    /// due started beside it, and the region's pieces of the page rendered
    /// and swapped in. `None` when the region is left alone for now (the
    /// API is not offered there).
    async fn walk_region(
        &self,
        key: &RegionKey,
        client: &Arc<Client>,
        now: i64,
    ) -> Option<WalkSummary> {
        let task = {
            let mut st = self.state.lock().await;
            st.unsupported.retain(|_, until| *until > now);
            if st.unsupported.contains_key(key) {
                st.walk_ended(key, self.clock.now());
                st.first_walks.remove(key);
                return None;
            }
            self.plan(&st, key, client, now)
        };
        let result = task.run().await;
        let end = self.clock.now();
        let summary = {
            let mut st = self.state.lock().await;
            let summary = self.apply(&mut st, result, end);
            if let Some(d) = st.discovery.get_mut(&key.account) {
                d.end_round(self.opts.discovery_interval, end);
            }
            st.snapshot.plugin_names = plugin_name_counts(&self.opts, &st);
            self.start_side_walks(&st, key, client, end);
            if st.walk_ended(key, end) {
                let shared = crate::intern::sweep();
                tracing::debug!(shared_strings = shared, "intern pool swept");
            }
            summary
        };
        self.publish(vec![key.clone()]).await;
        Some(summary)
    }

    /// Starts the side walks of a region that are due (instance info and
    /// activation codes), beside its own walks.
    fn start_side_walks(&self, st: &State, key: &RegionKey, client: &Arc<Client>, now: i64) {
        let mut side_walks = Vec::new();
        if !self.opts.instance_info_interval.is_zero() {
            side_walks.push(SideWalk::Info);
            if self.opts.managed_instances {
                side_walks.push(SideWalk::Activations);
            }
        }
        if !self.opts.invocations_interval.is_zero() {
            side_walks.push(SideWalk::Invocations);
        }
        for walk in side_walks {
            if st.snapshot.regions.contains_key(key) && st.due(key, walk, now) {
                self.side_walks.start(
                    key.clone(),
                    Arc::clone(client),
                    walk,
                    self.opts.invocations_max_pages,
                );
            }
        }
    }

    /// How often a side walk runs.
    fn side_interval(&self, walk: SideWalk) -> i64 {
        let d = match walk {
            SideWalk::Invocations => self.opts.invocations_interval,
            SideWalk::Info | SideWalk::Activations | SideWalk::Managed => {
                self.opts.instance_info_interval
            }
        };
        d.as_secs() as i64
    }

    /// Takes in the side walks finished since the last look; those of a
    /// region not on the page yet wait (`keep`), or are dropped. Returns the
    /// regions whose page changed.
    fn take_side_walks(&self, st: &mut State, now: i64, keep: bool) -> Vec<RegionKey> {
        let mut finished = std::mem::take(&mut st.pending_side);
        finished.extend(self.side_walks.take());
        let mut changed = Vec::new();
        for mut r in finished {
            if let Ok(data) = &mut r.result {
                self.drop_odd_rows(data);
                if let SideData::Invocations(w) = data {
                    self.count_truncated(st, &r.key, w);
                }
            }
            let timing = self.side_timing(now + self.side_interval(r.walk));
            match st.take_side(&r.key, r.walk, r.result, now, timing) {
                Some(result) if keep => st.pending_side.push(SideResult { result, ..r }),
                Some(_) => {}
                None => changed.push(r.key),
            }
        }
        changed.sort();
        changed.dedup();
        changed
    }

    /// Leaves out rows of a side walk whose labels cannot be served.
    fn drop_odd_rows(&self, data: &mut SideData) {
        match data {
            SideData::Info(v) => self.dropped.info(v),
            SideData::Managed(v) => self.dropped.managed(v),
            SideData::Activations(v) => self.dropped.activations(v),
            SideData::Invocations(w) => {
                for list in [&mut w.failed, &mut w.partial, &mut w.timed] {
                    self.dropped.invocations(list);
                }
            }
        }
    }

    /// A walk of invocations that stopped at `--collect.invocations-max-pages`:
    /// counted each time, logged once per region and filter.
    fn count_truncated(&self, st: &mut State, key: &RegionKey, w: &InvocationWalk) {
        for f in &w.truncated {
            self.invocations_truncated.inc();
            if st.truncated_warned.len() < 4096 && st.truncated_warned.insert((key.clone(), *f)) {
                tracing::warn!(account = %key.account, region = %key.region, filter = f.as_str(), max_pages = self.opts.invocations_max_pages, "more invocations than --collect.invocations-max-pages pages; the walk stopped there and older ones are not counted");
            }
        }
    }

    fn side_timing(&self, next_due: i64) -> state::SideTiming {
        state::SideTiming {
            next_due,
            recheck: self.opts.unsupported_recheck.as_secs() as i64,
            max_stale: self.opts.max_stale.as_secs() as i64,
            max_command_names: self.opts.max_command_names,
        }
    }
}

/// What one region's walk came to, for [`CycleReport`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct WalkSummary {
    pub(crate) ok: bool,
    /// The API is not offered in the region: neither ok nor failed.
    pub(crate) unsupported: bool,
    pub(crate) discovery_calls: usize,
}

/// A counter of the exporter's own, registered in `registry`.
fn registered_counter(
    registry: &Registry,
    def: crate::own_metrics::Def,
) -> std::io::Result<IntCounter> {
    IntCounter::with_opts(def.opts())
        .and_then(|c| registry.register(Box::new(c.clone())).map(|()| c))
        .map_err(std::io::Error::other)
}

/// Plugin names swept, by source.
fn plugin_name_counts(opts: &CollectorOptions, st: &State) -> PluginNameCounts {
    PluginNameCounts {
        flag: opts.plugins.len(),
        discovered: st.discovery.values().map(|d| d.names.len()).sum(),
    }
}

/// Runs futures side by side on the calling task and returns their outputs
/// in order.
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
