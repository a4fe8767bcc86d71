//! The HTTP side: the accept loop, the limits every connection lives under
//! (timeouts, the connection cap) and the TLS handshake. What each path
//! answers is in `routes`; TLS, basic auth and headers come from
//! `--web.config.file` (`web_config`, `auth`).

pub mod auth;
mod conn;
mod reload;
mod routes;
mod tls;
pub mod web_config;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::render::Page;
use conn::{Conn, DropReason, Timeouts, Tracked};
pub use reload::{
    PartFailure, ReloadFuture, ReloadGate, ReloadHook, ReloadPart, ReloadReport, ReloadStopped,
    reload,
};
pub use routes::{CONTENT_TYPE_METRICS, accepts_gzip};
use web_config::WebConfigSource;

#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub telemetry_path: String,
    /// `--web.max-requests`: scrapes sent at once; past it 503 at once.
    /// 0 = no limit.
    pub max_requests: usize,
    /// Scrapes without gzip inflated at once (each costs a core while it
    /// runs); more wait up to `plain_wait`, then get 503.
    pub max_plain: usize,
    pub plain_wait: Duration,
    /// Connections open at once. A new one past it closes the one that
    /// waited longest for a request (or whose client stopped reading), so
    /// idle and half-open connections can never lock out a scraper.
    pub max_connections: usize,
    /// A new connection must finish its TLS handshake and request head, and
    /// a kept-alive one a started head, within this time.
    pub header_timeout: Duration,
    /// A kept-alive connection with no new request is closed after this.
    pub idle_timeout: Duration,
    /// An answer must be sent within this time.
    pub send_timeout: Duration,
    /// A client that reads nothing of an answer for this long is dropped
    /// (and its scrape stops counting after a tenth of it).
    pub stall_timeout: Duration,
    /// `--web.enable-lifecycle`: `POST /-/reload` works (403 without).
    pub enable_lifecycle: bool,
    /// `--web.config.file`: TLS, basic auth and extra headers.
    pub web: Option<Arc<WebConfigSource>>,
    /// How often the web config files are checked for changes besides at
    /// each new connection (scrapers keep their connections open).
    pub web_config_check_interval: Duration,
    /// The reload of `POST /-/reload` and `SIGHUP` (`app` re-reads the web
    /// config and the accounts); `None`: nothing to reload.
    pub reload_hook: Option<ReloadHook>,
    /// One reload at a time for `POST /-/reload` and `SIGHUP` together.
    pub reloads: Arc<ReloadGate>,
    pub metrics: HttpMetrics,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            telemetry_path: "/metrics".into(),
            max_requests: 40,
            max_plain: 2,
            plain_wait: Duration::from_secs(5),
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(45),
            send_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(10),
            enable_lifecycle: false,
            web: None,
            web_config_check_interval: Duration::from_secs(3),
            reload_hook: None,
            reloads: Arc::default(),
            metrics: HttpMetrics::default(),
        }
    }
}

impl ServerOptions {
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            header: self.header_timeout,
            idle: self.idle_timeout,
            send: self.send_timeout,
            stall: self.stall_timeout,
        }
    }
}

/// What a request handler can see.
#[derive(Clone)]
pub struct AppState {
    pub page: Arc<ArcSwap<Page>>,
    /// The exporter's own series, appended to the page as of each scrape.
    pub registry: prometheus::Registry,
    pub ready: Arc<AtomicBool>,
    pub opts: Arc<ServerOptions>,
}

/// Why a request got 503 (the `reason` label of `http_requests_refused_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `--web.max-requests` scrapes were being sent.
    MaxRequests,
    /// The scrapes without gzip in flight stayed busy past the wait.
    PlainScrapes,
    /// The password check queue stayed busy past the wait.
    PasswordChecks,
}

impl Refusal {
    const ALL: [Refusal; 3] = [
        Refusal::MaxRequests,
        Refusal::PlainScrapes,
        Refusal::PasswordChecks,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::MaxRequests => "max_requests",
            Refusal::PlainScrapes => "plain_scrapes",
            Refusal::PasswordChecks => "password_checks",
        }
    }
}

/// The server's own series, in the exporter's registry.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    pub connections: IntGauge,
    pub dropped: IntCounterVec,
    pub refused: IntCounterVec,
    pub auth_failures: IntCounter,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        // Fixed names and labels: creating them cannot fail.
        use crate::own_metrics as own;
        let by_reason =
            |def: own::Def| IntCounterVec::new(def.opts(), &["reason"]).expect("a fixed name");
        let m = HttpMetrics {
            connections: IntGauge::with_opts(own::HTTP_CONNECTIONS.opts()).expect("a fixed name"),
            dropped: by_reason(own::HTTP_CONNECTIONS_DROPPED),
            refused: by_reason(own::HTTP_REQUESTS_REFUSED),
            auth_failures: IntCounter::with_opts(own::HTTP_AUTH_FAILURES.opts())
                .expect("a fixed name"),
        };
        // Every reason shows from the start, at 0, so rate() works at once.
        for r in DropReason::ALL {
            m.dropped.with_label_values(&[r.label()]);
        }
        for r in Refusal::ALL {
            m.refused.with_label_values(&[r.label()]);
        }
        m
    }
}

impl HttpMetrics {
    /// Series in `registry`, rendered with the exporter's other metrics.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = HttpMetrics::default();
        registry.register(Box::new(m.connections.clone()))?;
        registry.register(Box::new(m.dropped.clone()))?;
        registry.register(Box::new(m.refused.clone()))?;
        registry.register(Box::new(m.auth_failures.clone()))?;
        Ok(m)
    }

    pub fn refused(&self, why: Refusal) {
        self.refused.with_label_values(&[why.label()]).inc();
    }
}

/// What every connection shares: the app, the limits and the open
/// connections (for the cap).
struct Shared {
    app: AppState,
    /// `--web.max-requests`; `None` = no limit.
    scrapes: Option<Arc<Semaphore>>,
    plain: Arc<Semaphore>,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// The exporter's own series as last gathered, for scrapes within the
    /// same moment (see `routes::own_tail`).
    own: Mutex<Option<routes::OwnTail>>,
}

impl Shared {
    fn opts(&self) -> &ServerOptions {
        &self.app.opts
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// At the cap, closes the connection that matters least (see
    /// `Conn::eviction_rank`); with `idle_only` (accepting failed, for want
    /// of file descriptors most likely) one that waits for a request, if
    /// any. It leaves the table at once, so the next accept does not pick
    /// it again.
    fn make_room(&self, idle_only: bool) {
        let mut conns = self.conns();
        if !idle_only && conns.len() < self.opts().max_connections.max(1) {
            return;
        }
        let victim = conns
            .values()
            .map(|c| (c.eviction_rank(), c.id))
            .min()
            .filter(|((class, _), _)| !idle_only || *class == 0)
            .map(|(_, id)| id);
        if let Some(c) = victim.and_then(|id| conns.remove(&id)) {
            c.evict();
        }
    }
}

/// A bound server; `run` serves until `shutdown` turns true, then lets the
/// requests in flight finish.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    pub async fn bind(addr: SocketAddr, state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let opts = &state.opts;
        let shared = Arc::new(Shared {
            scrapes: (opts.max_requests > 0).then(|| Arc::new(Semaphore::new(opts.max_requests))),
            plain: Arc::new(Semaphore::new(opts.max_plain.max(1))),
            conns: Mutex::new(HashMap::new()),
            own: Mutex::new(None),
            app: state,
        });
        Ok(Server { listener, shared })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let opts = Arc::clone(&self.shared.app.opts);
        let watcher_task = opts.web.clone().map(|web| {
            let every = opts.web_config_check_interval;
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => web.reload_if_changed(),
                        _ = stop.changed() => return,
                    }
                }
            })
        });
        let next_id = AtomicU64::new(0);
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = shutdown.changed() => break,
            };
            let (stream, _) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: free one.
                    tracing::warn!(error = %e, "accept failed");
                    self.shared.make_room(true);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            self.shared.make_room(false);
            // A page goes out as many parts: without this, a small write
            // behind an unacknowledged one waits for the client's delayed
            // ACK (tens of milliseconds a scrape).
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            let conn = Arc::new(Conn::new(next_id.fetch_add(1, Ordering::Relaxed)));
            self.shared.conns().insert(conn.id, Arc::clone(&conn));
            // Taken here, so shutdown also waits for connections still in
            // their TLS handshake.
            let watcher = graceful.watcher();
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move {
                let metrics = &shared.opts().metrics;
                metrics.connections.inc();
                tokio::select! {
                    _ = connection(stream, Arc::clone(&shared), watcher, Arc::clone(&conn)) => {}
                    reason = conn::watchdog(&conn, shared.opts().timeouts()) => {
                        tracing::debug!(reason = reason.label(), "connection dropped");
                        metrics.dropped.with_label_values(&[reason.label()]).inc();
                    }
                }
                metrics.connections.dec();
                shared.conns().remove(&conn.id);
            });
        }
        if let Some(t) = watcher_task {
            t.abort();
        }
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("connections still open after 10s; closing them"),
        }
    }
}

/// One accepted connection: the TLS handshake if the web config has TLS,
/// then HTTP/1.1. The watchdog bounds both.
async fn connection(stream: TcpStream, shared: Arc<Shared>, watcher: Watcher, conn: Arc<Conn>) {
    let Some(web) = shared.opts().web.clone() else {
        return serve(stream, shared, watcher, conn).await;
    };
    web.reload_if_changed();
    if !web.tls() {
        return serve(stream, shared, watcher, conn).await;
    }
    let Some(tls) = web.current().tls.clone() else {
        return;
    };
    match handshake(stream, tls).await {
        Ok(Some(s)) => serve(s, shared, watcher, conn).await,
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
    }
}

/// The TLS handshake; `None` when the client spoke plain HTTP (it gets a 400
/// that says so, as Go's servers do) or went away first.
async fn handshake(
    mut stream: TcpStream,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
) -> std::io::Result<Option<tokio_rustls::server::TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    // 0x16: a TLS handshake record. Anything else is not TLS.
    if first[0] != 0x16 {
        // Read the request first, so closing does not reset the connection
        // before the client reads the answer.
        let mut buf = vec![0u8; 8 << 10];
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
        let _ = stream
            .write_all(
                b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                  Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
            )
            .await;
        let _ = stream.shutdown().await;
        return Ok(None);
    }
    tokio_rustls::TlsAcceptor::from(tls)
        .accept(stream)
        .await
        .map(Some)
}

async fn serve<I>(io: I, shared: Arc<Shared>, watcher: Watcher, conn: Arc<Conn>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Tracked::new(io, Arc::clone(&conn)));
    let svc = hyper::service::service_fn(move |req| {
        let (shared, conn) = (Arc::clone(&shared), Arc::clone(&conn));
        async move { routes::serve(&shared, conn, req).await }
    });
    // The watchdog keeps time (header, idle, send); hyper's own header
    // timer would also cut idle kept-alive connections at the header
    // timeout.
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .serve_connection(io, svc);
    let _ = watcher.watch(conn).await;
}
