//! What the ECS simulator knows and counts: its keys, nonces, fleet and
//! faults, and the requests it has in hand. Its connections and the tests
//! that change the fleet or the faults while it runs share it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::faults::{Faults, RegionFault};
use super::fleet::{Fleet, FleetConfig};
use super::latency::LatencyClock;
use crate::clock::Clock;
use crate::rng::Rng;

/// The key pair the simulator accepts unless told otherwise.
pub const DEFAULT_KEY_ID: &str = "LTAI-simulator";
pub const DEFAULT_KEY_SECRET: &str = "simulator-secret";

/// An AccessKey the simulator accepts.
#[derive(Clone, Debug)]
pub struct SimKey {
    pub secret: String,
    pub security_token: Option<String>,
    /// Temporary credentials: refused as `InvalidSecurityToken.Expired` from
    /// then on (Unix seconds).
    pub expires_at: Option<i64>,
}

impl SimKey {
    /// A long-term AccessKey.
    pub fn long_term(secret: impl Into<String>) -> Self {
        SimKey {
            secret: secret.into(),
            security_token: None,
            expires_at: None,
        }
    }
}

/// Everything the simulator knows; shared by its connections and by tests
/// that change the fleet or the faults while it runs.
pub struct SimState {
    pub fleet: RwLock<Fleet>,
    pub clock: Clock,
    pub(super) keys: RwLock<HashMap<String, SimKey>>,
    pub(super) nonces: Mutex<HashMap<String, i64>>,
    pub(super) faults: RwLock<Faults>,
    pub(super) requests: Mutex<BTreeMap<(String, String), u64>>,
    pub(super) instance_queries: Mutex<HashMap<String, u64>>,
    /// DescribeInvocations requests by what they asked for (see
    /// [`crate::simulator::invocations::query_kind`]).
    pub(super) invocation_queries: Mutex<BTreeMap<String, u64>>,
    pub(super) rng: Mutex<Rng>,
    pub(super) base_url: RwLock<String>,
    pub(super) token_salt: u64,
    pub(super) request_seq: AtomicU64,
    pub(super) in_flight: AtomicUsize,
    pub(super) max_in_flight: AtomicUsize,
    /// Counts requests in hand across several simulators that share it.
    pub(super) shared_in_flight: RwLock<Option<Arc<InFlightGauge>>>,
    pub(super) nonce_prune_at: AtomicUsize,
    /// ECS calls signed with a long-term key are refused (`Forbidden.RAM`),
    /// as for a RAM user that may only assume a role.
    pub(super) long_term_refused: AtomicBool,
    pub(super) expired_refusals: AtomicU64,
    /// Time spent answering requests, the injected latency left out
    /// (nanoseconds), so a benchmark can tell the simulator's own cost.
    pub(super) busy_nanos: AtomicU64,
    /// The injected latency's sleeps past their length (nanoseconds).
    pub(super) overslept_nanos: AtomicU64,
    /// Wakes the injected latency's sleeps on time.
    pub(super) latency_clock: LatencyClock,
}

impl SimState {
    /// A fresh state for `cfg`'s fleet, served at `addr`, accepting the
    /// default key.
    pub(super) fn new(cfg: &FleetConfig, clock: Clock, addr: std::net::SocketAddr) -> Self {
        let mut keys = HashMap::new();
        keys.insert(
            DEFAULT_KEY_ID.to_string(),
            SimKey::long_term(DEFAULT_KEY_SECRET),
        );
        SimState {
            fleet: RwLock::new(Fleet::generate(cfg)),
            clock,
            keys: RwLock::new(keys),
            nonces: Mutex::new(HashMap::new()),
            faults: RwLock::new(Faults::default()),
            requests: Mutex::new(BTreeMap::new()),
            instance_queries: Mutex::new(HashMap::new()),
            invocation_queries: Mutex::new(BTreeMap::new()),
            rng: Mutex::new(Rng::new(cfg.seed ^ 0x5eed)),
            base_url: RwLock::new(format!("http://{addr}")),
            token_salt: cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16,
            request_seq: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            shared_in_flight: RwLock::new(None),
            nonce_prune_at: AtomicUsize::new(50_000),
            long_term_refused: AtomicBool::new(false),
            expired_refusals: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
            overslept_nanos: AtomicU64::new(0),
            latency_clock: LatencyClock::default(),
        }
    }

    pub(super) fn key(&self, id: &str) -> Option<SimKey> {
        self.keys.read().ok()?.get(id).cloned()
    }

    /// Adds a key; drops temporary ones expired for an hour, so a long
    /// run with short-lived credentials does not grow without bound.
    pub(crate) fn insert_key(&self, id: &str, key: SimKey) {
        if let Ok(mut k) = self.keys.write() {
            let now = Clock::System.now();
            k.retain(|_, v| v.expires_at.is_none_or(|e| now - e < 3600));
            k.insert(id.to_string(), key);
        }
    }

    /// Records a nonce; false if it was seen in the last 15 minutes.
    pub(super) fn use_nonce(&self, nonce: &str, now: i64) -> bool {
        let Ok(mut n) = self.nonces.lock() else {
            return false;
        };
        // Prune what is past the Timestamp window, but only when the map
        // has doubled since the last prune, so a busy simulator stays O(1).
        if n.len() >= 2 * self.nonce_prune_at.load(Ordering::Relaxed) {
            n.retain(|_, t| now - *t < 900);
            self.nonce_prune_at
                .store(n.len().max(50_000), Ordering::Relaxed);
        }
        n.insert(nonce.to_string(), now).is_none()
    }

    pub(super) fn request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("SIM-{:08X}-{:04X}", self.token_salt as u32, n)
    }

    pub(super) fn base_url(&self) -> String {
        self.base_url.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The fault injected for this action, else for this region.
    pub(super) fn fault(&self, action: &str, region: &str) -> Option<RegionFault> {
        let f = self.faults.read().ok()?;
        f.actions
            .get(action)
            .or_else(|| f.regions.get(region))
            .cloned()
    }

    /// The caller's RAM policy lacks `action` (see [`Faults::denied`]).
    pub(super) fn denied(&self, action: &str) -> bool {
        self.faults.read().is_ok_and(|f| f.denied.contains(action))
    }

    pub(super) fn count(&self, action: &str, region: &str) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((action.to_string(), region.to_string()))
                .or_default() += 1;
        }
    }

    pub(super) fn count_invocation_query(&self, kind: String) {
        if let Ok(mut q) = self.invocation_queries.lock() {
            *q.entry(kind).or_default() += 1;
        }
    }

    pub(super) fn count_instance_query(&self, instance: &str) {
        if let Ok(mut q) = self.instance_queries.lock() {
            *q.entry(instance.to_string()).or_default() += 1;
        }
    }
}

/// A copy of what `m` holds (empty if a panic poisoned it): counters the
/// tests read while the server runs.
pub(crate) fn copy_of<T: Clone + Default>(m: &Mutex<T>) -> T {
    m.lock().map(|v| v.clone()).unwrap_or_default()
}

/// Requests in hand now and at most, across the simulators sharing it.
#[derive(Debug, Default)]
pub struct InFlightGauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlightGauge {
    /// Most requests in hand at once, all sharing simulators together.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a request as in hand until dropped.
pub(super) struct InFlight<'a>(&'a SimState, Option<Arc<InFlightGauge>>);

impl<'a> InFlight<'a> {
    pub(super) fn enter(state: &'a SimState) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let shared = state.shared_in_flight.read().ok().and_then(|g| g.clone());
        if let Some(g) = &shared {
            g.enter();
        }
        InFlight(state, shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(g) = &self.1 {
            g.exit();
        }
    }
}
