//! The simulator's identity services, on a port of their own: STS
//! (AssumeRole, AssumeRoleWithOIDC) and the ECS instance metadata service.
//! The temporary credentials they hand out are registered with the ECS
//! simulator with their expiry, so it refuses them once they have expired.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{SimKey, SimState, Simulator, copy_of, metadata, sts};
use crate::clock::Clock;
use crate::rng::Rng;

/// How the identity services behave.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// Lifetime of the credentials handed out, whatever DurationSeconds
    /// asks for, so tests can watch many refreshes in a few seconds.
    pub lifetime: Duration,
    /// The instance's RAM role; empty: none is attached.
    pub role_name: String,
    /// Metadata GETs without an IMDSv2 token are refused (403).
    pub imdsv2_required: bool,
    /// `PUT /latest/api/token` answers 404, as a service without IMDSv2.
    pub imdsv2_unsupported: bool,
    /// The OIDC provider AssumeRoleWithOIDC accepts.
    pub oidc_provider_arn: String,
    /// AssumeRoleWithOIDC accepts the token this file holds, read at every call.
    pub oidc_token_file: Option<PathBuf>,
    /// Every STS and metadata request is answered `307` to this URL.
    pub redirect_to: Option<String>,
    /// AssumeRole refuses the signature, echoing the string to sign (see
    /// [`super::RegionFault::SignatureMismatch`]).
    pub sts_signature_mismatch: bool,
    /// Every STS call (AssumeRole, AssumeRoleWithOIDC) fails this way while
    /// it is set; the metadata service is not affected.
    pub sts_fault: Option<StsFault>,
}

/// How STS fails (see [`IdentityConfig::sts_fault`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StsFault {
    /// No answer while the fault stays: the caller's timeout ends the call.
    Hang,
    /// Answer with this API error (`NoPermission`, a role whose trust
    /// policy no longer names the caller, is HTTP 403).
    Error { status: u16, code: String },
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            lifetime: Duration::from_secs(3600),
            role_name: "cloud-assistant-exporter-role".into(),
            imdsv2_required: false,
            imdsv2_unsupported: false,
            oidc_provider_arn: "acs:ram::1234567890123456:oidc-provider/ack-rrsa-sim".into(),
            oidc_token_file: None,
            redirect_to: None,
            sts_signature_mismatch: false,
            sts_fault: None,
        }
    }
}

/// One set of temporary credentials handed out.
#[derive(Clone, Debug)]
pub(crate) struct Issued {
    pub id: String,
    pub secret: String,
    pub token: String,
    pub issued_ms: i64,
    pub expires_at: i64,
}

pub struct IdentityState {
    pub(crate) sim: Arc<SimState>,
    cfg: RwLock<IdentityConfig>,
    issued: Mutex<BTreeMap<String, u64>>,
    secrets: Mutex<Vec<String>>,
    signers: Mutex<Vec<String>>,
    pub(crate) metadata_tokens: Mutex<HashMap<String, i64>>,
    pub(crate) role_credentials: Mutex<Option<Issued>>,
    pub(crate) plain_gets: AtomicU64,
    sts_requests: AtomicU64,
    rng: Mutex<Rng>,
    seq: AtomicU64,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl IdentityState {
    pub(crate) fn config(&self) -> IdentityConfig {
        self.cfg
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// `n` random hex digits.
    pub(crate) fn random(&self, n: usize) -> String {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        (0..n)
            .map(|_| char::from_digit(rng.below(16) as u32, 16).unwrap_or('0'))
            .collect()
    }

    /// New temporary credentials, accepted by the ECS simulator until they expire.
    pub(crate) fn issue(&self, how: &str) -> Issued {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let lifetime = self.config().lifetime.as_secs().max(1) as i64;
        let issued = Issued {
            id: format!("STS.SIM{n:06}{}", self.random(8)),
            secret: format!("simsecret{}", self.random(24)),
            token: format!("CAIS+sim/{}=", self.random(40)),
            issued_ms: now_ms(),
            expires_at: Clock::System.now() + lifetime,
        };
        self.sim.insert_key(
            &issued.id,
            SimKey {
                secret: issued.secret.clone(),
                security_token: Some(issued.token.clone()),
                expires_at: Some(issued.expires_at),
            },
        );
        if let Ok(mut m) = self.issued.lock() {
            *m.entry(how.to_string()).or_default() += 1;
        }
        if let Ok(mut s) = self.secrets.lock() {
            s.push(issued.secret.clone());
            s.push(issued.token.clone());
        }
        issued
    }

    pub(crate) fn record_signer(&self, key_id: &str) {
        if let Ok(mut s) = self.signers.lock() {
            s.push(key_id.to_string());
        }
    }
}

/// A running identity server. Dropping the handle stops it.
pub struct IdentityServer {
    pub addr: SocketAddr,
    pub state: Arc<IdentityState>,
    shutdown: watch::Sender<bool>,
}

impl IdentityServer {
    /// Starts on `127.0.0.1:0`, issuing credentials that `sim` accepts.
    pub async fn start(sim: &Simulator, cfg: IdentityConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(IdentityState {
            sim: Arc::clone(&sim.state),
            cfg: RwLock::new(cfg),
            issued: Mutex::new(BTreeMap::new()),
            secrets: Mutex::new(Vec::new()),
            signers: Mutex::new(Vec::new()),
            metadata_tokens: Mutex::new(HashMap::new()),
            role_credentials: Mutex::new(None),
            plain_gets: AtomicU64::new(0),
            sts_requests: AtomicU64::new(0),
            rng: Mutex::new(Rng::from_time()),
            seq: AtomicU64::new(0),
        });
        let (tx, rx) = watch::channel(false);
        tokio::spawn(super::serve_with(listener, Arc::clone(&state), rx, handle));
        Ok(IdentityServer {
            addr,
            state,
            shutdown: tx,
        })
    }

    /// The URL for both `--aliyun.sts-endpoint` and `--aliyun.metadata-endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn update_config(&self, change: impl FnOnce(&mut IdentityConfig)) {
        if let Ok(mut c) = self.state.cfg.write() {
            change(&mut c);
        }
    }

    /// Credentials handed out by `how`: `AssumeRole`, `AssumeRoleWithOIDC`, `metadata`.
    pub fn issued(&self, how: &str) -> u64 {
        self.state
            .issued
            .lock()
            .map(|m| m.get(how).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn issued_total(&self) -> u64 {
        self.state
            .issued
            .lock()
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }

    /// Every secret and security token handed out (for leak checks).
    pub fn issued_secrets(&self) -> Vec<String> {
        copy_of(&self.state.secrets)
    }

    /// The AccessKeyIds that signed AssumeRole calls, in order.
    pub fn assume_role_signers(&self) -> Vec<String> {
        copy_of(&self.state.signers)
    }

    /// Metadata GETs that came without an IMDSv2 token.
    pub fn plain_metadata_gets(&self) -> u64 {
        self.state.plain_gets.load(Ordering::Relaxed)
    }

    /// STS requests received so far, answered or not.
    pub fn sts_requests(&self) -> u64 {
        self.state.sts_requests.load(Ordering::Relaxed)
    }
}

impl Drop for IdentityServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn handle(
    state: Arc<IdentityState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    if let Some(to) = state.config().redirect_to {
        return Ok(super::redirect(&to));
    }
    let (status, content_type, body) = if path.starts_with("/latest/") {
        let headers = req.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (status, body) = metadata::handle(&state, &method, &path, header);
        (status, "text/plain", body)
    } else {
        let params = super::form_params(req).await;
        state.sts_requests.fetch_add(1, Ordering::Relaxed);
        // A hang lasts while the fault does (looked at every 50 ms).
        while state.config().sts_fault == Some(StsFault::Hang) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, v) = match state.config().sts_fault {
            Some(StsFault::Error { status, code }) => super::handlers::error(
                &state.sim,
                status,
                &code,
                "The STS simulator was told to refuse this call.",
            ),
            _ => sts::handle(&state, &method, &params),
        };
        (status, "application/json;charset=utf-8", v.to_string())
    };
    let resp = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(resp)
}
