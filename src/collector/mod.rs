//! The collection cycle: list regions, walk every region concurrently (agents,
//! instances, plugin sweeps by name, a bounded number of plugin discovery
//! calls), keep the last good data of each region, and swap in a freshly
//! rendered page. It never touches HTTP serving.

mod discovery;
mod inventory;
mod labels;
mod outcome;
mod plan;
mod publish;
mod region;
mod shard;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use prometheus::{IntCounter, Registry};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

use crate::accounts::Account;
use crate::client::Client;
use crate::clock::Clock;
use crate::render::{Page, StateSets, render};
use crate::snapshot::{FleetSnapshot, RegionKey};
pub use discovery::pick_discovery_targets;
use inventory::{Background, Extra, ExtraData, ExtraResult};
use region::RegionResult;
pub use shard::Shard;
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
        }
    }
}

/// What one cycle did, for tests and logs.
#[derive(Debug, Default, Clone)]
pub struct CycleReport {
    pub regions_ok: usize,
    pub regions_failed: usize,
    pub discovery_calls: usize,
    /// Pages rendered while regions were still being walked.
    pub early_publishes: usize,
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
    background: Arc<Background>,
    names_dropped: IntCounter,
    /// Rows whose labels cannot be served.
    dropped: labels::Dropped,
    /// Wall time of the last render, which paces the renders of a cycle.
    last_render: std::sync::Mutex<Duration>,
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
        let names_dropped = IntCounter::new(
            "aliyun_cloud_assistant_exporter_plugin_names_dropped_total",
            "Plugin names not swept because an account has more than --collect.max-plugin-names.",
        )
        .and_then(|c| registry.register(Box::new(c.clone())).map(|()| c))
        .map_err(std::io::Error::other)?;
        let dropped = labels::Dropped::new(&registry).map_err(std::io::Error::other)?;
        let empty = FleetSnapshot {
            tags: opts.tags.clone().into(),
            ..FleetSnapshot::default()
        };
        let page = render(&empty, opts.state_sets, 0)?;
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
            background: Arc::default(),
            names_dropped,
            dropped,
            last_render: std::sync::Mutex::new(Duration::ZERO),
        })
    }

    /// The page the server serves; swapped whole after every cycle.
    pub fn page(&self) -> Arc<ArcSwap<Page>> {
        Arc::clone(&self.page)
    }

    /// The page as a scrape sees it now: the fleet's page and the exporter's
    /// own series, as plain text.
    pub fn scrape_text(&self) -> std::io::Result<Vec<u8>> {
        let own = crate::render::registry_text(&self.registry);
        self.page.load().plain_with(&own)
    }

    /// True once the first cycle has finished.
    pub fn ready(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ready)
    }

    /// Replaces the accounts (a reloaded `--config.file`); the next cycle
    /// walks the new set, and regions of removed accounts leave the page.
    pub fn set_accounts(&self, accounts: Vec<Account>) {
        if let Ok(mut a) = self.accounts.write() {
            *a = accounts;
        }
    }

    pub fn accounts(&self) -> Vec<Account> {
        self.accounts.read().map(|a| a.clone()).unwrap_or_default()
    }

    /// A copy of the current snapshot.
    pub async fn snapshot(&self) -> FleetSnapshot {
        self.state.lock().await.snapshot.clone()
    }

    /// Runs a cycle every interval until `shutdown` turns true. A cycle that
    /// overruns delays the next; cycles never overlap.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.opts.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                // A slower walk finished between cycles: its series now.
                _ = self.background.finished.notified() => {
                    let mut st = self.state.lock().await;
                    self.take_slow_walks(&mut st, self.clock.now(), false);
                    self.publish(&st.snapshot, None).await;
                    continue;
                }
                _ = shutdown.changed() => return,
            }
            tokio::select! {
                _ = self.run_cycle() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One full cycle: the regions to walk, a plan from the last cycle's
    /// walks, every region at once (their fresh series published as they
    /// finish), and the final page. Returns what it did.
    pub async fn run_cycle(&self) -> CycleReport {
        let cycle_start = Instant::now();
        let now = self.clock.now();
        let lists = self.list_regions().await;
        let mut st = self.state.lock().await;
        let active = self.regions_to_walk(&mut st, lists, now);
        let mut tasks = JoinSet::new();
        for task in self.plan(&st, &active, now) {
            tasks.spawn(task.run());
        }
        // A walk that finished since the last cycle is taken in first, so
        // it is not started again as if still due.
        self.take_slow_walks(&mut st, now, true);
        self.start_slow_walks(&st, &active, now);
        let mut report = CycleReport::default();
        self.collect(&mut st, tasks, now, &mut report).await;
        self.take_slow_walks(&mut st, now, false);
        st.forget_gone_instances();
        st.forget_gone_regions();
        for d in st.discovery.values_mut() {
            d.end_round(self.opts.discovery_interval, now);
        }
        let shared = crate::intern::sweep();
        tracing::debug!(shared_strings = shared, "intern pool swept");
        st.snapshot.last_collection = Some(self.clock.now());
        st.snapshot.cycles += 1;
        st.snapshot.cycle_duration = cycle_start.elapsed().as_secs_f64();
        st.snapshot.plugin_names = BTreeMap::from([
            ("flag", self.opts.plugins.len()),
            (
                "discovered",
                st.discovery.values().map(|d| d.names.len()).sum(),
            ),
        ]);
        self.publish(&st.snapshot, Some((&report, cycle_start)))
            .await;
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

    /// The (account, region) pairs this replica walks now: each account's
    /// regions (configured, else as DescribeRegions is believed), its shard,
    /// less the ones left alone for a while. Regions not walked leave the page.
    fn regions_to_walk(
        &self,
        st: &mut State,
        lists: Vec<(Account, Option<region::RegionList>)>,
        now: i64,
    ) -> Vec<(RegionKey, Arc<Client>)> {
        let mut keys: Vec<(RegionKey, Arc<Client>)> = Vec::new();
        for (account, list) in &lists {
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
            for r in regions {
                if self.opts.shard.owns(&account.name, &r) {
                    let key = RegionKey::new(&account.name, &r);
                    keys.push((key, Arc::clone(&account.client)));
                }
            }
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        st.known_regions
            .retain(|name, _| lists.iter().any(|(a, _)| &a.name == name));
        st.snapshot
            .regions
            .retain(|k, _| keys.iter().any(|(key, _)| key == k));
        st.unsupported.retain(|_, until| *until > now);
        keys.retain(|(k, _)| !st.unsupported.contains_key(k));
        keys
    }

    /// Starts the slower walks that are due (each region's instance info and
    /// activation codes), beside the cycle.
    fn start_slow_walks(&self, st: &State, active: &[(RegionKey, Arc<Client>)], now: i64) {
        if self.opts.instance_info_interval.is_zero() {
            return;
        }
        for (key, client) in active {
            let mut extras = vec![Extra::Info];
            if self.opts.managed_instances {
                extras.push(Extra::Activations);
            }
            for extra in extras {
                if st.due(key, extra, now) {
                    self.background
                        .start(key.clone(), Arc::clone(client), extra);
                }
            }
        }
    }

    /// Takes in the slower walks finished since the last look; those of a
    /// region not on the page yet wait (`keep`), or are dropped at the end
    /// of a cycle.
    fn take_slow_walks(&self, st: &mut State, now: i64, keep: bool) {
        let interval = self.opts.instance_info_interval.as_secs() as i64;
        let mut finished = std::mem::take(&mut st.pending_extras);
        finished.extend(self.background.take());
        for mut r in finished {
            if let Ok(data) = &mut r.result {
                self.drop_odd_rows(data);
            }
            let timing = self.extra_timing(now + interval);
            if let Some(result) = st.take_extra(&r.key, r.extra, r.result, now, timing)
                && keep
            {
                st.pending_extras.push(ExtraResult { result, ..r });
            }
        }
    }

    /// Leaves out rows of a slower walk whose labels cannot be served.
    fn drop_odd_rows(&self, data: &mut ExtraData) {
        match data {
            ExtraData::Info(v) => self.dropped.info(v),
            ExtraData::Managed(v) => self.dropped.managed(v),
            ExtraData::Activations(v) => self.dropped.activations(v),
        }
    }

    fn extra_timing(&self, next_due: i64) -> (i64, i64, i64) {
        (
            next_due,
            self.opts.unsupported_recheck.as_secs() as i64,
            self.opts.max_stale.as_secs() as i64,
        )
    }

    /// Takes in the regions' outcomes as they finish, and publishes the
    /// fresh series of finished regions while others still walk: at most
    /// one render per gap (see [`Self::publish_gap`]).
    async fn collect(
        &self,
        st: &mut State,
        mut tasks: JoinSet<RegionResult>,
        now: i64,
        report: &mut CycleReport,
    ) {
        let mut dirty = false;
        let mut next_publish = tokio::time::Instant::now() + self.publish_gap();
        loop {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    None => return,
                    Some(Ok(result)) => {
                        self.apply(st, result, now, report);
                        dirty = true;
                    }
                    Some(Err(_)) => report.regions_failed += 1,
                },
                _ = self.background.finished.notified() => {
                    self.take_slow_walks(st, now, true);
                    dirty = true;
                }
                _ = tokio::time::sleep_until(next_publish), if dirty && !tasks.is_empty() => {
                    self.publish(&st.snapshot, None).await;
                    report.early_publishes += 1;
                    dirty = false;
                    next_publish = tokio::time::Instant::now() + self.publish_gap();
                }
            }
        }
    }
}
