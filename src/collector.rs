//! The collection cycle: list regions, walk every region concurrently (agents,
//! instances, plugin sweeps by name, a bounded number of plugin discovery
//! calls), keep the last good data of each region, and swap in a freshly
//! rendered page. It never touches HTTP serving.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use prometheus::Registry;
use tokio::sync::{Mutex, watch};

use crate::accounts::Account;
use crate::api::{self, PluginStatus, plugins::agent_supports_plugins};
use crate::client::Client;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::render::{INSTANCE_STATES, PLUGIN_STATES, Page, StateSets, render};
use crate::snapshot::{FleetSnapshot, RegionData, RegionKey};

/// Which (account, region) pairs this replica walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub count: u64,
    pub index: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { count: 1, index: 0 }
    }
}

impl Shard {
    /// FNV-1a 64 of `account/region_id`, mod count == index.
    pub fn owns(&self, account: &str, region: &str) -> bool {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in account
            .bytes()
            .chain(std::iter::once(b'/'))
            .chain(region.bytes())
        {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.count <= 1 || h % self.count == self.index
    }
}

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

/// Plugin names found by single-instance calls, and the round that
/// spreads those calls over the discovery interval.
#[derive(Debug, Default)]
struct Discovery {
    names: BTreeSet<String>,
    round_start: i64,
    /// Names some instance reported in this round (by discovery or sweep).
    reported: BTreeSet<String>,
    /// Instances asked in this round.
    asked: HashSet<Arc<str>>,
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

/// The outcome of one region's walk.
enum RegionOutcome {
    Ok {
        data: RegionData,
        discovery: Vec<PluginStatus>,
        asked: Vec<Arc<str>>,
    },
    Unsupported(ApiError),
    Failed(String, String),
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
        let discovery = Discovery {
            round_start: clock.now(),
            ..Discovery::default()
        };
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

    /// The regions of an account this cycle: its configured list, else
    /// DescribeRegions (the last known list when that fails).
    async fn region_list(
        &self,
        account: &Account,
        known: Option<&Vec<String>>,
    ) -> (Vec<String>, Option<Vec<String>>) {
        let configured = if account.regions.is_empty() {
            &self.opts.regions
        } else {
            &account.regions
        };
        let client = &account.client;
        if !configured.is_empty() && (client.has_endpoint_template() || known.is_some()) {
            return (configured.clone(), None);
        }
        match api::describe_regions(client).await {
            Ok(regions) => {
                client.set_region_endpoints(
                    regions
                        .iter()
                        .filter_map(|r| Some((r.id.clone(), r.endpoint.clone()?))),
                );
                let ids: Vec<String> = regions.into_iter().map(|r| r.id).collect();
                let walk = if configured.is_empty() {
                    ids.clone()
                } else {
                    configured.clone()
                };
                (walk, Some(ids))
            }
            Err(e) if configured.is_empty() => {
                let known = known.cloned().unwrap_or_default();
                tracing::warn!(account = %account.name, error = %e, code = e.code(), known = known.len(), "DescribeRegions failed; using the last known region list");
                (known, None)
            }
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, code = e.code(), "DescribeRegions failed; regions use their default endpoints");
                (configured.clone(), None)
            }
        }
    }

    /// Share of the eligible instances asked per cycle (0 = discovery off).
    fn discovery_share(&self) -> f64 {
        if self.opts.discovery_interval.is_zero() {
            return 0.0;
        }
        let cycles =
            self.opts.discovery_interval.as_secs_f64() / self.opts.interval.as_secs_f64().max(1.0);
        1.0 / cycles.max(1.0)
    }

    /// One full cycle. Returns what it did.
    pub async fn run_cycle(&self) -> CycleReport {
        let mut st = self.state.lock().await;
        let cycle_start = Instant::now();
        let now = self.clock.now();
        let accounts = self.accounts();
        let mut keys: Vec<(RegionKey, Arc<Client>)> = Vec::new();
        for account in &accounts {
            let (regions, listed) = self
                .region_list(account, st.known_regions.get(&account.name))
                .await;
            if let Some(listed) = listed {
                st.known_regions.insert(account.name.clone(), listed);
            }
            for r in regions {
                if self.opts.shard.owns(&account.name, &r) {
                    keys.push((
                        RegionKey::new(&account.name, &r),
                        Arc::clone(&account.client),
                    ));
                }
            }
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        st.known_regions
            .retain(|name, _| accounts.iter().any(|a| &a.name == name));
        // Regions the API no longer lists (or accounts gone) leave the page.
        st.snapshot
            .regions
            .retain(|k, _| keys.iter().any(|(key, _)| key == k));
        st.unsupported.retain(|_, until| *until > now);
        let active: Vec<(RegionKey, Arc<Client>)> = keys
            .into_iter()
            .filter(|(k, _)| !st.unsupported.contains_key(k))
            .collect();

        let names: Vec<String> = {
            let mut n: BTreeSet<String> = self.opts.plugins.iter().cloned().collect();
            n.extend(st.discovery.names.iter().cloned());
            n.into_iter().collect()
        };
        // Page estimates from the last cycle: the longest walk of the fleet
        // sets the cycle's length; shorter sweeps can share lanes within it.
        let estimates: HashMap<RegionKey, WalkEstimate> = active
            .iter()
            .filter_map(|(k, _)| {
                let d = st.snapshot.regions.get(k)?.data.as_ref()?;
                Some((k.clone(), WalkEstimate::of(d, &names)))
            })
            .collect();
        let longest = estimates
            .values()
            .map(WalkEstimate::longest)
            .max()
            .unwrap_or(0);
        let mut tasks = tokio::task::JoinSet::new();
        for (key, client) in &active {
            let prev = st.snapshot.regions.get(key).and_then(|r| r.data.clone());
            let estimate = estimates.get(key);
            let sweeps = match estimate {
                Some(e) => e.sweep_plan(longest),
                None => SweepPlan {
                    names: names.clone(),
                    lanes: names.len(),
                },
            };
            let share = self.discovery_share();
            // A region seen before picks its targets now; a new one picks
            // them once its agents are known, so day one shows plugins.
            let targets = match &prev {
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
            let client = Arc::clone(client);
            let key = key.clone();
            let deadline = self.opts.region_timeout;
            tasks.spawn(async move {
                let t0 = Instant::now();
                let region = key.region.as_str();
                let calls0 = client.calls_in(region);
                let outcome = match tokio::time::timeout(
                    deadline,
                    collect_region(&client, region, sweeps, targets, now),
                )
                .await
                {
                    Ok(o) => o,
                    Err(_) => RegionOutcome::Failed(
                        format!("not finished within the deadline of {deadline:?}"),
                        "Deadline".into(),
                    ),
                };
                let calls = client.calls_in(region) - calls0;
                (key, outcome, t0.elapsed().as_secs_f64(), calls)
            });
        }
        let mut report = CycleReport::default();
        while let Some(joined) = tasks.join_next().await {
            let Ok((key, outcome, secs, calls)) = joined else {
                report.regions_failed += 1;
                continue;
            };
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
                    st.discovery.asked.extend(asked);
                    let reported: BTreeSet<&str> = data
                        .plugins
                        .iter()
                        .chain(&discovery)
                        .map(|p| &*p.name)
                        .collect();
                    for name in reported {
                        if !st.discovery.reported.contains(name) {
                            st.discovery.reported.insert(name.to_string());
                        }
                        if !self.opts.plugins.iter().any(|p| p == name)
                            && !st.discovery.names.contains(name)
                        {
                            tracing::info!(account, region, plugin = %name, "discovered a plugin name; sweeping it from now on");
                            st.discovery.names.insert(name.to_string());
                        }
                    }
                    let unknown: Vec<String> = data
                        .instances
                        .iter()
                        .filter(|i| !INSTANCE_STATES.contains(&&*i.status))
                        .map(|i| format!("instance state {}", i.status))
                        .chain(
                            data.plugins
                                .iter()
                                .filter(|p| !PLUGIN_STATES.contains(&&*p.status))
                                .map(|p| format!("plugin state {}", p.status)),
                        )
                        .collect();
                    for u in unknown {
                        if st.warned_states.insert(u.clone()) {
                            tracing::warn!(account, region, state = %u, "the API reports a state this exporter does not document; it gets its own series");
                        }
                    }
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
        // Forget instances no region reports any more.
        {
            let State {
                snapshot,
                first_seen,
                ..
            } = &mut *st;
            let live: HashSet<&str> = snapshot
                .regions
                .values()
                .filter_map(|r| r.data.as_ref())
                .flat_map(|d| d.agents.iter().map(|a| &*a.instance_id))
                .collect();
            first_seen.retain(|k, _| live.contains(&**k));
        }
        self.end_discovery_round(&mut st, now);
        let shared = crate::intern::sweep();
        tracing::debug!(shared_strings = shared, "intern pool swept");

        st.snapshot.last_collection = Some(self.clock.now());
        st.snapshot.cycles += 1;
        st.snapshot.cycle_duration = cycle_start.elapsed().as_secs_f64();
        st.snapshot.plugin_names = BTreeMap::from([
            ("flag", self.opts.plugins.len()),
            ("discovered", st.discovery.names.len()),
        ]);
        let hint = self.page.load().gzip.len();
        // Rendering a large fleet takes a while: off the async workers and
        // at a lower priority, so scrapes keep being answered at once
        // meanwhile. The snapshot is cheap to clone (region data sits behind
        // `Arc`s).
        let (snap, registry, mode) = (
            st.snapshot.clone(),
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
                    cycle = st.snapshot.cycles,
                    regions_ok = report.regions_ok,
                    regions_failed = report.regions_failed,
                    duration_seconds = format!("{:.3}", st.snapshot.cycle_duration),
                    render_seconds = format!(
                        "{:.3}",
                        cycle_start.elapsed().as_secs_f64() - st.snapshot.cycle_duration
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
        report
    }

    /// At the end of a discovery round, drops discovered names that no
    /// instance reported during it and starts the next round.
    fn end_discovery_round(&self, st: &mut State, now: i64) {
        let d = &mut st.discovery;
        if self.opts.discovery_interval.is_zero()
            || now - d.round_start < self.opts.discovery_interval.as_secs() as i64
        {
            return;
        }
        let gone: Vec<String> = d
            .names
            .iter()
            .filter(|n| !d.reported.contains(*n))
            .cloned()
            .collect();
        for n in &gone {
            tracing::info!(plugin = %n, "no instance reported this plugin for a whole discovery round; no longer sweeping it");
            d.names.remove(n);
        }
        d.round_start = now;
        d.reported.clear();
        d.asked.clear();
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
        .filter(|a| a.up && agent_supports_plugins(a.os_type.as_deref(), a.version.as_deref()))
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

/// A region's walk lengths in pages, as the last cycle saw them.
struct WalkEstimate {
    agents: usize,
    /// Per plugin name to sweep; a name the region did not report is taken
    /// to be as long as the agent walk.
    sweeps: Vec<(String, usize)>,
}

impl WalkEstimate {
    fn of(d: &RegionData, names: &[String]) -> Self {
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

    fn longest(&self) -> usize {
        self.sweeps
            .iter()
            .map(|(_, p)| *p)
            .max()
            .unwrap_or(0)
            .max(self.agents)
    }

    /// Sweeps longest first, in as few lanes as fit within `longest`.
    fn sweep_plan(&self, longest: usize) -> SweepPlan {
        let mut sweeps = self.sweeps.clone();
        sweeps.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let pages: Vec<usize> = sweeps.iter().map(|(_, p)| *p).collect();
        SweepPlan {
            lanes: api::paging::lanes_for_walks(&pages, longest),
            names: sweeps.into_iter().map(|(n, _)| n).collect(),
        }
    }
}

/// The plugin sweeps of a region's cycle: names in the order they start,
/// and how many run at once.
struct SweepPlan {
    names: Vec<String>,
    lanes: usize,
}

/// The discovery calls of a region's cycle.
enum Targets {
    /// Picked from the last cycle's agents; they run beside this cycle's
    /// agent walk (of about `walk_pages` pages).
    Chosen {
        ids: Vec<Arc<str>>,
        walk_pages: usize,
    },
    /// Pick from this cycle's agents, with this share.
    AfterAgents(f64),
}

/// Asks each target for its plugins, in `lanes`; a failed call is left out
/// (discovery is best effort), the rest count as asked.
async fn discover(
    client: &Arc<Client>,
    region: &str,
    targets: Vec<Arc<str>>,
    lanes: usize,
) -> (Vec<PluginStatus>, Vec<Arc<str>>) {
    let answers = api::paging::in_lanes(
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

/// Walks one region: agents, instances, a sweep per plugin name and the
/// discovery calls, all at once (the client's limits pace them). Sweeps
/// short enough share lanes, and the independent single calls run in a few
/// lanes, beside the NextToken walks: the same cycle length, without a burst
/// of every walk of every region at its start.
async fn collect_region(
    client: &Arc<Client>,
    region: &str,
    sweeps: SweepPlan,
    targets: Targets,
    now: i64,
) -> RegionOutcome {
    let sweeps = async {
        // Every sweep runs; the first error (after all) fails the region.
        let results = api::paging::in_lanes(
            sweeps.names,
            sweeps.lanes,
            |name| {
                let (client, region) = (Arc::clone(client), region.to_string());
                async move {
                    Ok::<_, ApiError>(
                        api::walk_plugin_status_by_name(&client, &region, &name).await,
                    )
                }
            },
            |e| ApiError::decode(api::plugins::ACTION, region, e),
        )
        .await?;
        let mut rows = Vec::new();
        let mut first_err = None;
        for r in results {
            match r {
                Ok(r) => rows.extend(r),
                // A name no instance of this region has.
                Err(ApiError::Api { code, .. }) if code == "InvalidPluginName.NotFound" => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            None => Ok(rows),
            Some(e) => Err(e),
        }
    };
    let agents_and_discovery = async {
        match targets {
            Targets::Chosen { ids, walk_pages } => {
                let lanes = api::paging::lanes_for(ids.len(), walk_pages);
                let (agents, (discovered, asked)) = tokio::join!(
                    api::walk_cloud_assistant_status(client, region),
                    discover(client, region, ids, lanes)
                );
                (agents, discovered, asked)
            }
            Targets::AfterAgents(share) => {
                let agents = api::walk_cloud_assistant_status(client, region).await;
                let (discovered, asked) = match &agents {
                    // Nothing else of the region is left to overlap with.
                    Ok(a) => {
                        let ids =
                            pick_discovery_targets(a, &HashSet::new(), &HashMap::new(), share);
                        discover(client, region, ids, api::paging::MAX_LANES).await
                    }
                    Err(_) => (Vec::new(), Vec::new()),
                };
                (agents, discovered, asked)
            }
        }
    };
    let ((agents, discovered, asked), instances, sweeps) = tokio::join!(
        agents_and_discovery,
        api::walk_instance_status(client, region),
        sweeps
    );
    let fail = |e: ApiError| {
        if e.is_api_not_supported() {
            RegionOutcome::Unsupported(e)
        } else {
            RegionOutcome::Failed(e.to_string(), e.code().to_string())
        }
    };
    let agents = match agents {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let instances = match instances {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let mut plugins = match sweeps {
        Ok(p) => p,
        // Plugins are not offered in this region: the rest still counts.
        Err(e) if e.is_api_not_supported() => Vec::new(),
        Err(e) => return RegionOutcome::Failed(e.to_string(), e.code().to_string()),
    };
    // Discovery rows fill in names not swept yet; sweep rows win.
    plugins.extend(discovered.iter().cloned());
    let live: HashSet<&str> = agents
        .iter()
        .map(|a| &*a.instance_id)
        .chain(instances.iter().map(|i| &*i.instance_id))
        .collect();
    plugins.retain(|p| live.contains(&*p.instance_id));
    plugins.sort_by(|a, b| (&a.instance_id, &a.name).cmp(&(&b.instance_id, &b.name)));
    plugins.dedup_by(|a, b| a.instance_id == b.instance_id && a.name == b.name);
    RegionOutcome::Ok {
        data: RegionData {
            agents,
            instances,
            plugins,
            collected_at: now,
        },
        discovery: discovered,
        asked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AgentStatus;

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
    fn shards_cover_every_pair_once() {
        let regions: Vec<String> = (0..200).map(|i| format!("region-{i}")).collect();
        for count in 1..6 {
            let mut owners = vec![0; regions.len()];
            for index in 0..count {
                let s = Shard { count, index };
                for (i, r) in regions.iter().enumerate() {
                    if s.owns("", r) {
                        owners[i] += 1;
                    }
                }
            }
            assert!(owners.iter().all(|n| *n == 1), "count {count}");
        }
    }
}
