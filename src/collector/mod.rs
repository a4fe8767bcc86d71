//! The collection cycle: list regions, walk every region concurrently (agents,
//! instances, plugin sweeps by name, a bounded number of plugin discovery
//! calls), keep the last good data of each region, and swap in a freshly
//! rendered page. It never touches HTTP serving.

mod discovery;
mod plan;
mod region;
mod shard;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use prometheus::Registry;
use tokio::sync::{Mutex, watch};

use crate::accounts::Account;
use crate::client::Client;
use crate::clock::Clock;
use crate::render::{INSTANCE_STATES, PLUGIN_STATES, Page, StateSets, render};
use crate::snapshot::{FleetSnapshot, RegionData, RegionKey};
use discovery::Discovery;
pub use discovery::pick_discovery_targets;
use plan::{SweepPlan, Targets, WalkEstimate};
use region::{RegionOutcome, RegionResult, RegionTask};
pub use shard::Shard;

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
    /// How long a region that answered `RegionId.ApiNotSupported` is left alone.
    pub unsupported_recheck: Duration,
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
        }
    }
}

#[derive(Debug, Default)]
struct State {
    snapshot: FleetSnapshot,
    /// Account → the regions DescribeRegions last returned.
    known_regions: HashMap<String, Vec<String>>,
    /// Region → clock time to look at it again.
    unsupported: HashMap<RegionKey, i64>,
    discovery: Discovery,
    /// Instance → clock time first seen (newest are asked first).
    first_seen: HashMap<Arc<str>, i64>,
    /// States outside the documented ones already warned about.
    warned_states: HashSet<String>,
}

/// What one cycle did, for tests and logs.
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
    registry: Registry,
    page: Arc<ArcSwap<Page>>,
    ready: Arc<AtomicBool>,
    state: Mutex<State>,
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
        let empty = FleetSnapshot::default();
        let page = render(&empty, &registry, opts.state_sets, 0)?;
        let discovery = Discovery::new(clock.now());
        Ok(Collector {
            accounts: std::sync::RwLock::new(accounts),
            opts,
            clock,
            registry,
            page: Arc::new(ArcSwap::from_pointee(page)),
            ready: Arc::new(AtomicBool::new(false)),
            state: Mutex::new(State {
                discovery,
                snapshot: empty,
                ..State::default()
            }),
        })
    }

    /// The page the server serves; swapped whole after every cycle.
    pub fn page(&self) -> Arc<ArcSwap<Page>> {
        Arc::clone(&self.page)
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
                _ = shutdown.changed() => return,
            }
            tokio::select! {
                _ = self.run_cycle() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One full cycle: the regions to walk, a plan from the last cycle's
    /// walks, every region at once, their outcomes into the snapshot, and a
    /// freshly rendered page. Returns what it did.
    pub async fn run_cycle(&self) -> CycleReport {
        let mut st = self.state.lock().await;
        let cycle_start = Instant::now();
        let now = self.clock.now();
        let active = self.regions_to_walk(&mut st, now).await;
        let names: Vec<String> = {
            let mut n: BTreeSet<String> = self.opts.plugins.iter().cloned().collect();
            n.extend(st.discovery.names.iter().cloned());
            n.into_iter().collect()
        };
        let mut tasks = tokio::task::JoinSet::new();
        for task in self.plan(&st, active, &names, now) {
            tasks.spawn(task.run());
        }
        let mut report = CycleReport::default();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(result) => self.apply(&mut st, result, now, &mut report),
                Err(_) => report.regions_failed += 1,
            }
        }
        st.forget_gone_instances();
        st.discovery.end_round(self.opts.discovery_interval, now);
        let shared = crate::intern::sweep();
        tracing::debug!(shared_strings = shared, "intern pool swept");
        st.snapshot.last_collection = Some(self.clock.now());
        st.snapshot.cycles += 1;
        st.snapshot.cycle_duration = cycle_start.elapsed().as_secs_f64();
        st.snapshot.plugin_names = BTreeMap::from([
            ("flag", self.opts.plugins.len()),
            ("discovered", st.discovery.names.len()),
        ]);
        self.publish(&st.snapshot, &report, cycle_start).await;
        report
    }

    /// The (account, region) pairs this replica walks now: each account's
    /// regions (configured, else DescribeRegions), its shard, less the ones
    /// left alone for a while. Regions no longer listed leave the page.
    async fn regions_to_walk(&self, st: &mut State, now: i64) -> Vec<(RegionKey, Arc<Client>)> {
        let accounts = self.accounts();
        let mut keys: Vec<(RegionKey, Arc<Client>)> = Vec::new();
        for account in &accounts {
            let known = st.known_regions.get(&account.name);
            let (regions, listed) = region::list_regions(account, &self.opts.regions, known).await;
            if let Some(listed) = listed {
                st.known_regions.insert(account.name.clone(), listed);
            }
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
            .retain(|name, _| accounts.iter().any(|a| &a.name == name));
        st.snapshot
            .regions
            .retain(|k, _| keys.iter().any(|(key, _)| key == k));
        st.unsupported.retain(|_, until| *until > now);
        keys.retain(|(k, _)| !st.unsupported.contains_key(k));
        keys
    }

    /// Each region's task: its sweeps in lanes that fit within the fleet's
    /// longest walk (as the last cycle saw it), and its discovery calls.
    fn plan(
        &self,
        st: &State,
        active: Vec<(RegionKey, Arc<Client>)>,
        names: &[String],
        now: i64,
    ) -> Vec<RegionTask> {
        let estimates: HashMap<&RegionKey, WalkEstimate> = active
            .iter()
            .filter_map(|(k, _)| {
                let d = st.snapshot.regions.get(k)?.data.as_ref()?;
                Some((k, WalkEstimate::of(d, names)))
            })
            .collect();
        let longest = estimates
            .values()
            .map(WalkEstimate::longest)
            .max()
            .unwrap_or(0);
        let share = Discovery::share(self.opts.discovery_interval, self.opts.interval);
        active
            .iter()
            .map(|(key, client)| {
                let prev = st.snapshot.regions.get(key).and_then(|r| r.data.as_ref());
                let estimate = estimates.get(key);
                let sweeps = match estimate {
                    Some(e) => e.sweep_plan(longest),
                    None => SweepPlan {
                        names: names.to_vec(),
                        lanes: names.len(),
                    },
                };
                // A region seen before picks its targets now; a new one picks
                // them once its agents are known, so day one shows plugins.
                let targets = match prev {
                    Some(d) => Targets::Chosen {
                        ids: pick_discovery_targets(
                            &d.agents,
                            &st.discovery.asked,
                            &st.first_seen,
                            share,
                        ),
                        walk_pages: estimate.map_or(0, |e| e.agents),
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
                    now,
                    deadline: self.opts.region_timeout,
                }
            })
            .collect()
    }

    /// Takes a region's outcome into the state: fresh data, a region left
    /// alone (the API is not offered there), or a failure that keeps the
    /// last good series.
    fn apply(&self, st: &mut State, r: RegionResult, now: i64, report: &mut CycleReport) {
        let RegionResult {
            key,
            outcome,
            secs,
            calls,
        } = r;
        let (account, region) = (key.account.as_str(), key.region.as_str());
        match outcome {
            RegionOutcome::Ok {
                data,
                discovery,
                asked,
            } => {
                report.regions_ok += 1;
                report.discovery_calls += asked.len();
                for a in &data.agents {
                    if !st.first_seen.contains_key(&a.instance_id) {
                        st.first_seen.insert(a.instance_id.clone(), now);
                    }
                }
                let reported = data.plugins.iter().chain(&discovery).map(|p| &*p.name);
                st.discovery
                    .record(asked, reported, &self.opts.plugins, (account, region));
                st.warn_unknown_states(&data, (account, region));
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
            }
            RegionOutcome::Unsupported(e) => {
                let recheck = self.opts.unsupported_recheck;
                tracing::warn!(account, region, error = %e, recheck_after = ?recheck, "Cloud Assistant is not available in this region; leaving it out");
                st.unsupported
                    .insert(key.clone(), now + recheck.as_secs() as i64);
                st.snapshot.regions.remove(&key);
            }
            RegionOutcome::Failed(error, code) => {
                report.regions_failed += 1;
                tracing::warn!(account, region, calls, duration_seconds = format!("{secs:.3}"), code = %code, error = %error, "region collection failed; keeping its last good series");
                let entry = st.snapshot.regions.entry(key.clone()).or_default();
                entry.up = false;
                entry.duration = secs;
            }
        }
    }

    /// Renders the snapshot and swaps the page in. Rendering a large fleet
    /// takes a while: off the async workers and at a lower priority, so
    /// scrapes keep being answered at once meanwhile. The snapshot is cheap
    /// to clone (region data sits behind `Arc`s).
    async fn publish(&self, snapshot: &FleetSnapshot, report: &CycleReport, cycle_start: Instant) {
        let hint = self.page.load().gzip.len();
        let (snap, registry, mode) = (
            snapshot.clone(),
            self.registry.clone(),
            self.opts.state_sets,
        );
        let rendered =
            crate::background::run("render", move || render(&snap, &registry, mode, hint))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match rendered {
            Ok(page) => {
                tracing::info!(
                    cycle = snapshot.cycles,
                    regions_ok = report.regions_ok,
                    regions_failed = report.regions_failed,
                    duration_seconds = format!("{:.3}", snapshot.cycle_duration),
                    render_seconds = format!(
                        "{:.3}",
                        cycle_start.elapsed().as_secs_f64() - snapshot.cycle_duration
                    ),
                    page_bytes = page.plain_len,
                    gzip_bytes = page.gzip.len(),
                    "cycle finished"
                );
                self.page.store(Arc::new(page));
                self.ready.store(true, Ordering::Release);
            }
            Err(e) => {
                tracing::error!(error = %e, "rendering the page failed; serving the previous one")
            }
        }
    }
}

impl State {
    /// Forgets when instances no region reports any more were first seen.
    fn forget_gone_instances(&mut self) {
        let live: HashSet<&str> = self
            .snapshot
            .regions
            .values()
            .filter_map(|r| r.data.as_ref())
            .flat_map(|d| d.agents.iter().map(|a| &*a.instance_id))
            .collect();
        self.first_seen.retain(|k, _| live.contains(&**k));
    }

    /// One warning per state outside the documented ones: it gets a series
    /// of its own, and the operator should know why.
    fn warn_unknown_states(&mut self, data: &RegionData, (account, region): (&str, &str)) {
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
            if !self.warned_states.contains(&u) {
                tracing::warn!(account, region, state = %u, "the API reports a state this exporter does not document; it gets its own series");
                self.warned_states.insert(u);
            }
        }
    }
}
