//! What the identity services share: their configuration and the
//! credentials they hand out, registered with the ECS simulator with their
//! expiry. STS and the metadata service both issue through it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::state::{SimKey, SimState};
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
    /// [`crate::simulator::faults::RegionFault::SignatureMismatch`]).
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
    pub(super) cfg: RwLock<IdentityConfig>,
    pub(super) issued: Mutex<BTreeMap<String, u64>>,
    pub(super) secrets: Mutex<Vec<String>>,
    pub(super) signers: Mutex<Vec<String>>,
    pub(crate) metadata_tokens: Mutex<HashMap<String, i64>>,
    pub(crate) role_credentials: Mutex<Option<Issued>>,
    pub(crate) plain_gets: AtomicU64,
    pub(super) sts_requests: AtomicU64,
    pub(super) rng: Mutex<Rng>,
    pub(super) seq: AtomicU64,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl IdentityState {
    pub(super) fn new(sim: Arc<SimState>, cfg: IdentityConfig) -> Self {
        IdentityState {
            sim,
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
        }
    }

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
