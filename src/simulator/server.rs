//! The ECS simulator's server: its handle for the tests, the benchmark and
//! `--demo`, and the way each request goes, from faults and latency through
//! the signature check to the action that answers it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::actions;
use super::auth::{self, error};
use super::faults::{Faults, RegionFault};
use super::fleet::{Fleet, FleetConfig};
use super::http::{form_params, redirect, serve_with};
use super::state::{InFlight, InFlightGauge, SimKey, SimState, copy_of};
use crate::clock::Clock;

/// A running simulator. Dropping the handle stops it.
pub struct Simulator {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    shutdown: watch::Sender<bool>,
}

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
        let state = Arc::new(SimState::new(&cfg, clock, addr));
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

    /// Time spent answering requests since the last reset, the injected
    /// latency left out.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.state.busy_nanos.load(Ordering::Relaxed))
    }

    /// How far the injected latency's sleeps ran past their length in
    /// total since the last reset (the timer's granularity and a busy
    /// runtime).
    pub fn overslept(&self) -> Duration {
        Duration::from_nanos(self.state.overslept_nanos.load(Ordering::Relaxed))
    }

    pub fn reset_counts(&self) {
        self.state.max_in_flight.store(0, Ordering::Relaxed);
        self.state.busy_nanos.store(0, Ordering::Relaxed);
        self.state.overslept_nanos.store(0, Ordering::Relaxed);
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

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Answers one ECS request: latency and faults first, then the signature
/// check, then throttling and outages, then the action.
async fn handle(
    state: Arc<SimState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let t0 = std::time::Instant::now();
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
    let mut slept = Duration::ZERO;
    if !latency.is_zero() {
        let t = std::time::Instant::now();
        state.latency_clock.sleep(latency).await;
        slept = t.elapsed();
        state.overslept_nanos.fetch_add(
            slept.saturating_sub(latency).as_nanos() as u64,
            Ordering::Relaxed,
        );
    }
    let fault = state.fault(&action, &region);
    if let Some(RegionFault::Redirect(to)) = &fault {
        return Ok(redirect(to));
    }
    let checked = match fault {
        Some(RegionFault::SignatureMismatch) => {
            Err(auth::signature_mismatch(&state, &method, &params))
        }
        _ => auth::authenticate(&state, &method, &params),
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
                error(
                    &state,
                    400,
                    "Throttling.User",
                    "Request was denied due to user flow control.",
                )
            } else if unavailable {
                error(
                    &state,
                    503,
                    "ServiceUnavailable",
                    "The request has failed due to a temporary failure of the server.",
                )
            } else {
                if fault == Some(RegionFault::Hang) {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                actions::dispatch(&state, &params)
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
    let busy = t0.elapsed().saturating_sub(slept);
    state
        .busy_nanos
        .fetch_add(busy.as_nanos() as u64, Ordering::Relaxed);
    Ok(resp)
}
