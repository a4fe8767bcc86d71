//! An ECS API simulator: a real HTTP server on loopback that answers the
//! exporter's actions for a seeded fleet, verifies every signature, pages with
//! opaque tokens and enforces the documented limits. The tests, the
//! benchmark and `--demo` run against it.

pub mod faults;
pub mod fleet;
pub mod handlers;
pub mod identity;
pub mod inventory;
pub mod invocations;
pub mod metadata;
pub mod reference;
pub mod sts;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::rng::Rng;
pub use faults::{Faults, RegionFault};
pub use fleet::{Fleet, FleetConfig, HybridPaging, RegionSpec, SimActivation, SimManagedInstance};
pub use identity::{IdentityConfig, IdentityServer, StsFault};

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
    keys: RwLock<HashMap<String, SimKey>>,
    nonces: Mutex<HashMap<String, i64>>,
    faults: RwLock<Faults>,
    requests: Mutex<BTreeMap<(String, String), u64>>,
    instance_queries: Mutex<HashMap<String, u64>>,
    /// DescribeInvocations requests by what they asked for (see
    /// [`invocations::query_kind`]).
    invocation_queries: Mutex<BTreeMap<String, u64>>,
    rng: Mutex<Rng>,
    base_url: RwLock<String>,
    token_salt: u64,
    request_seq: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Counts requests in hand across several simulators that share it.
    shared_in_flight: RwLock<Option<Arc<InFlightGauge>>>,
    nonce_prune_at: AtomicUsize,
    /// ECS calls signed with a long-term key are refused (`Forbidden.RAM`),
    /// as for a RAM user that may only assume a role.
    long_term_refused: AtomicBool,
    expired_refusals: AtomicU64,
}

impl SimState {
    fn key(&self, id: &str) -> Option<SimKey> {
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
    fn use_nonce(&self, nonce: &str, now: i64) -> bool {
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

    fn request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("SIM-{:08X}-{:04X}", self.token_salt as u32, n)
    }

    fn base_url(&self) -> String {
        self.base_url.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The fault injected for this action, else for this region.
    fn fault(&self, action: &str, region: &str) -> Option<RegionFault> {
        let f = self.faults.read().ok()?;
        f.actions
            .get(action)
            .or_else(|| f.regions.get(region))
            .cloned()
    }

    /// The caller's RAM policy lacks `action` (see [`Faults::denied`]).
    fn denied(&self, action: &str) -> bool {
        self.faults.read().is_ok_and(|f| f.denied.contains(action))
    }

    fn count(&self, action: &str, region: &str) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((action.to_string(), region.to_string()))
                .or_default() += 1;
        }
    }

    fn count_invocation_query(&self, kind: String) {
        if let Ok(mut q) = self.invocation_queries.lock() {
            *q.entry(kind).or_default() += 1;
        }
    }

    fn count_instance_query(&self, instance: &str) {
        if let Ok(mut q) = self.instance_queries.lock() {
            *q.entry(instance.to_string()).or_default() += 1;
        }
    }
}

/// A running simulator. Dropping the handle stops it.
pub struct Simulator {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    shutdown: watch::Sender<bool>,
}

/// The key pair the simulator accepts unless told otherwise.
pub const DEFAULT_KEY_ID: &str = "LTAI-simulator";
pub const DEFAULT_KEY_SECRET: &str = "simulator-secret";

impl Simulator {
    /// Starts on `127.0.0.1:0` with the default key and the wall clock.
    pub async fn start(cfg: FleetConfig) -> std::io::Result<Self> {
        Self::start_with(
            cfg,
            Clock::System,
            "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
        )
        .await
    }

    pub async fn start_with(
        cfg: FleetConfig,
        clock: Clock,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mut keys = HashMap::new();
        keys.insert(
            DEFAULT_KEY_ID.to_string(),
            SimKey::long_term(DEFAULT_KEY_SECRET),
        );
        let state = Arc::new(SimState {
            fleet: RwLock::new(Fleet::generate(&cfg)),
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
        });
        let (tx, rx) = watch::channel(false);
        tokio::spawn(serve_with(listener, Arc::clone(&state), rx, handle));
        Ok(Simulator {
            addr,
            state,
            shutdown: tx,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_key(&self, id: &str, key: SimKey) {
        self.state.insert_key(id, key);
    }

    /// Refuses ECS calls signed with long-term keys (STS still takes them),
    /// so a test proves that role credentials are really used.
    pub fn refuse_long_term_keys(&self, refuse: bool) {
        self.state
            .long_term_refused
            .store(refuse, Ordering::Relaxed);
    }

    /// Calls refused because their security token had expired.
    pub fn expired_refusals(&self) -> u64 {
        self.state.expired_refusals.load(Ordering::Relaxed)
    }

    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut f) = self.state.faults.write() {
            *f = faults;
        }
    }

    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) {
        if let Ok(mut f) = self.state.faults.write() {
            change(&mut f);
        }
    }

    /// Changes the fleet while the simulator runs (instances come and go).
    pub fn update_fleet(&self, change: impl FnOnce(&mut Fleet)) {
        if let Ok(mut f) = self.state.fleet.write() {
            change(&mut f);
            for r in f.regions.values_mut() {
                r.by_plugin = std::sync::OnceLock::new();
            }
        }
    }

    pub fn fleet(&self) -> Fleet {
        self.state
            .fleet
            .read()
            .map(|f| f.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Requests answered (any result) per action, all regions.
    pub fn requests(&self, action: &str) -> u64 {
        self.state
            .requests
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|((a, _), _)| a == action)
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Requests per (action, region).
    pub fn requests_by_region(&self) -> BTreeMap<(String, String), u64> {
        copy_of(&self.state.requests)
    }

    /// How often one instance was asked for all its plugins.
    pub fn instance_queries(&self) -> HashMap<String, u64> {
        copy_of(&self.state.instance_queries)
    }

    /// DescribeInvocations requests by what they asked for: the
    /// `InvokeStatus` value, `Timed`, `NotTimed` or `unfiltered`, with
    /// `+output` when `IncludeOutput=true`.
    pub fn invocation_queries(&self) -> BTreeMap<String, u64> {
        copy_of(&self.state.invocation_queries)
    }

    /// Most requests it has had in hand at once since the last reset.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::Relaxed)
    }

    /// Requests it has in hand now.
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// Also counts its requests in `gauge`, which other simulators may share
    /// (one simulator per account, limits that hold for all together).
    pub fn share_in_flight(&self, gauge: Arc<InFlightGauge>) {
        if let Ok(mut g) = self.state.shared_in_flight.write() {
            *g = Some(gauge);
        }
    }

    pub fn reset_counts(&self) {
        self.state.max_in_flight.store(0, Ordering::Relaxed);
        if let Ok(mut r) = self.state.requests.lock() {
            r.clear();
        }
        if let Ok(mut q) = self.state.instance_queries.lock() {
            q.clear();
        }
        if let Ok(mut q) = self.state.invocation_queries.lock() {
            q.clear();
        }
    }
}

/// A copy of what `m` holds (empty if a panic poisoned it): counters the
/// tests read while the server runs.
pub(crate) fn copy_of<T: Clone + Default>(m: &Mutex<T>) -> T {
    m.lock().map(|v| v.clone()).unwrap_or_default()
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Serves HTTP/1 on `listener` with `handler` until `stop` turns true (the
/// ECS simulator and the identity server share it).
pub(crate) async fn serve_with<S, H, F>(
    listener: TcpListener,
    state: Arc<S>,
    mut stop: watch::Receiver<bool>,
    handler: H,
) where
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
    F: std::future::Future<Output = Result<Response<Full<Bytes>>, std::convert::Infallible>>
        + Send
        + 'static,
{
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = conn else { continue };
        let state = Arc::clone(&state);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handler(Arc::clone(&state), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
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
struct InFlight<'a>(&'a SimState, Option<Arc<InFlightGauge>>);

impl<'a> InFlight<'a> {
    fn enter(state: &'a SimState) -> Self {
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

/// `307 Temporary Redirect` to `to`, with an empty body.
pub(crate) fn redirect(to: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(307)
        .header("location", to)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// The parameters of an RPC request: its query, then its form body (at
/// most 1 MiB read).
pub(crate) async fn form_params(req: Request<Incoming>) -> Vec<(String, String)> {
    let mut params = handlers::parse_form(req.uri().query().unwrap_or(""));
    let body = Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    params.extend(handlers::parse_form(&String::from_utf8_lossy(&body)));
    params
}

async fn handle(
    state: Arc<SimState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let method = req.method().as_str().to_string();
    let params = form_params(req).await;
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (action, region) = (get("Action"), get("RegionId"));
    state.count(&action, &region);
    let _in_flight = InFlight::enter(&state);

    let faults = state.faults.read().map(|f| f.clone()).unwrap_or_default();
    let latency = faults.latency
        + faults
            .region_latency
            .get(&region)
            .copied()
            .unwrap_or_default()
        + faults
            .action_latency
            .get(&action)
            .copied()
            .unwrap_or_default();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = state.fault(&action, &region);
    if let Some(RegionFault::Redirect(to)) = &fault {
        return Ok(redirect(to));
    }
    let checked = match fault {
        Some(RegionFault::SignatureMismatch) => {
            Err(handlers::signature_mismatch(&state, &method, &params))
        }
        _ => handlers::authenticate(&state, &method, &params),
    };
    let (status, body) = match checked {
        Err(answer) => answer,
        Ok(()) => {
            let (throttle, unavailable) = {
                let mut rng = state.rng.lock().unwrap_or_else(|e| e.into_inner());
                (
                    rng.chance(faults.throttle_rate),
                    rng.chance(faults.unavailable_rate),
                )
            };
            if throttle {
                handlers::error(
                    &state,
                    400,
                    "Throttling.User",
                    "Request was denied due to user flow control.",
                )
            } else if unavailable {
                handlers::error(
                    &state,
                    503,
                    "ServiceUnavailable",
                    "The request has failed due to a temporary failure of the server.",
                )
            } else {
                if fault == Some(RegionFault::Hang) {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                handlers::dispatch(&state, &params)
            }
        }
    };
    let bytes = match body {
        // An injected raw body goes out as it is.
        Value::String(raw) => Bytes::from(raw),
        v => Bytes::from(v.to_string()),
    };
    let resp = Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=utf-8")
        .body(Full::new(bytes))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(resp)
}
