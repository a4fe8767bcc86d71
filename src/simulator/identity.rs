//! The simulator's identity services, on a port of their own: STS
//! (AssumeRole, AssumeRoleWithOIDC) and the ECS instance metadata service.
//! The temporary credentials they hand out are registered with the ECS
//! simulator with their expiry, so it refuses them once they have expired.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::auth::error;
use super::http::{form_params, redirect, serve_with};
use super::identity_state::{IdentityConfig, IdentityState, StsFault};
use super::server::Simulator;
use super::state::copy_of;
use super::{metadata, sts};

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
        let state = Arc::new(IdentityState::new(Arc::clone(&sim.state), cfg));
        let (tx, rx) = watch::channel(false);
        tokio::spawn(serve_with(listener, Arc::clone(&state), rx, handle));
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

/// Answers one request: a metadata path, else an STS call.
async fn handle(
    state: Arc<IdentityState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    if let Some(to) = state.config().redirect_to {
        return Ok(redirect(&to));
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
        let params = form_params(req).await;
        state.sts_requests.fetch_add(1, Ordering::Relaxed);
        // A hang lasts while the fault does (looked at every 50 ms).
        while state.config().sts_fault == Some(StsFault::Hang) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, v) = match state.config().sts_fault {
            Some(StsFault::Error { status, code }) => error(
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
