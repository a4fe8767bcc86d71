//! The HTTP side: `/metrics` serves the last rendered page as bytes (never
//! waiting on the cloud), plus `/healthz`, `/ready`, `/` and `/-/reload`;
//! TLS, basic auth and extra headers from `--web.config.file`.

pub mod web_config;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::{Semaphore, watch};

use crate::render::Page;
use web_config::WebConfigSource;

pub const CONTENT_TYPE_METRICS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a reload hook returns.
pub type ReloadFuture =
    Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'static>>;

/// Reloads what the server does not own (the accounts of `--config.file`)
/// on `POST /-/reload`; the error is the reason, one line.
#[derive(Clone)]
pub struct ReloadHook(pub Arc<dyn Fn() -> ReloadFuture + Send + Sync>);

impl std::fmt::Debug for ReloadHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReloadHook")
    }
}

#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub telemetry_path: String,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A client must send its request headers (and finish a TLS handshake)
    /// within this time.
    pub header_timeout: Duration,
    /// `--web.config.file`: TLS, basic auth and extra headers.
    pub web: Option<Arc<WebConfigSource>>,
    /// How often the web config files are checked for changes besides at
    /// each new connection (scrapers keep their connections open).
    pub web_config_check_interval: Duration,
    /// Run by `POST /-/reload` besides re-reading the web config.
    pub reload_hook: Option<ReloadHook>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            telemetry_path: "/metrics".into(),
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            web: None,
            web_config_check_interval: Duration::from_secs(3),
            reload_hook: None,
        }
    }
}

/// What a request handler can see.
#[derive(Clone)]
pub struct AppState {
    pub page: Arc<ArcSwap<Page>>,
    pub ready: Arc<AtomicBool>,
    pub opts: Arc<ServerOptions>,
}

type Body = BoxBody<Bytes, std::io::Error>;
type Resp = Response<Body>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A body fed chunk by chunk from a channel.
struct ChannelBody(mpsc::Receiver<std::io::Result<Bytes>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::io::Result<Frame<Bytes>>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// The page inflated on the fly in 64 KiB chunks, so a client without gzip
/// never makes the whole plain page sit in memory.
fn inflate_stream(page: Arc<Page>) -> Body {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut dec = flate2::read::GzDecoder::new(&page.gzip[..]);
        loop {
            let mut buf = vec![0u8; 64 << 10];
            match dec.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return; // the client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    BodyExt::boxed(ChannelBody(rx))
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// True if `Accept-Encoding` takes gzip (and not with `q=0`).
pub fn accepts_gzip(value: Option<&HeaderValue>) -> bool {
    let Some(v) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    v.split(',').any(|part| {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim();
        let q_zero = it.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
    })
}

fn landing(path: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><title>Cloud Assistant Exporter</title></head><body>\n\
         <h1>Cloud Assistant Exporter</h1>\n<p>Prometheus exporter for Alibaba Cloud ECS Cloud Assistant, version {}.</p>\n<ul>\n\
         <li><a href=\"{path}\">{path}</a> &mdash; metrics</li>\n<li><a href=\"/healthz\">/healthz</a> &mdash; liveness</li>\n\
         <li><a href=\"/ready\">/ready</a> &mdash; readiness (first collection finished)</li>\n</ul>\n</body></html>\n",
        crate::metrics::long_version()
    )
}

async fn metrics(state: &AppState, req: &Request<Incoming>, head: bool) -> Resp {
    let page = state.page.load_full();
    let gzip = accepts_gzip(req.headers().get(header::ACCEPT_ENCODING));
    let len = if gzip {
        page.gzip.len()
    } else {
        page.plain_len
    };
    let body = if head {
        full(Bytes::new())
    } else if gzip {
        full(page.gzip.clone())
    } else {
        // Rare: a client without gzip gets the page inflated for it.
        inflate_stream(page)
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_METRICS),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn unauthorized() -> Resp {
    let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(web_config::WWW_AUTHENTICATE),
    );
    r
}

pub async fn handle(
    state: AppState,
    req: Request<Incoming>,
) -> Result<Resp, std::convert::Infallible> {
    let Some(web) = state.opts.web.clone() else {
        return route(state, req).await;
    };
    // One config for the whole request, even if a reload lands meanwhile.
    let cfg = web.current();
    let mut resp = if cfg.requires_auth()
        && req.uri().path() != "/healthz"
        && !web
            .authorize(&cfg, req.headers().get(header::AUTHORIZATION))
            .await
    {
        unauthorized()
    } else {
        route(state, req).await?
    };
    for (name, value) in &cfg.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    Ok(resp)
}

async fn route(state: AppState, req: Request<Incoming>) -> Result<Resp, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let read = method == Method::GET || method == Method::HEAD;
    let head = method == Method::HEAD;
    let resp = if path == state.opts.telemetry_path {
        if read {
            metrics(&state, &req, head).await
        } else {
            method_not_allowed("GET, HEAD")
        }
    } else {
        match path.as_str() {
            "/healthz" if read => text(StatusCode::OK, "OK\n"),
            "/ready" if read => {
                if state.ready.load(Ordering::Acquire) {
                    text(StatusCode::OK, "ready\n")
                } else {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: the first collection has not finished\n",
                    )
                }
            }
            "/" if read => {
                let mut r = text(StatusCode::OK, landing(&state.opts.telemetry_path));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r
            }
            "/-/reload" if method == Method::POST => match reload(&state.opts).await {
                Ok(msg) => text(StatusCode::OK, msg),
                Err(msg) => text(StatusCode::INTERNAL_SERVER_ERROR, msg),
            },
            "/healthz" | "/ready" | "/" => method_not_allowed("GET, HEAD"),
            "/-/reload" => method_not_allowed("POST"),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    };
    Ok(resp)
}

/// Re-reads the web config and runs the reload hook (`POST /-/reload`,
/// `SIGHUP`), each even when the other fails: a line per part, `Err` when
/// any part failed (what failed keeps its last good version).
pub async fn reload(opts: &ServerOptions) -> Result<String, String> {
    let mut out = String::new();
    let mut ok = true;
    if let Some(web) = &opts.web {
        match web.reload() {
            Ok(()) => out.push_str("web config reloaded\n"),
            Err(e) => {
                ok = false;
                out.push_str(&format!(
                    "web config not reloaded, the last good one stays: {e}\n"
                ));
            }
        }
    }
    if let Some(hook) = &opts.reload_hook {
        match (hook.0)().await {
            Ok(()) => out.push_str("accounts reloaded\n"),
            Err(e) => {
                ok = false;
                out.push_str(&format!(
                    "accounts not reloaded, the running ones stay: {e}\n"
                ));
            }
        }
    }
    if out.is_empty() {
        out.push_str("nothing to reload: no configuration file is in use\n");
    }
    if ok { Ok(out) } else { Err(out) }
}

/// A bound server; `run` serves until `shutdown` turns true, then lets the
/// requests in flight finish.
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    pub async fn bind(addr: SocketAddr, state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let limit = Arc::new(Semaphore::new(self.state.opts.max_connections.max(1)));
        let watcher_task = self.state.opts.web.clone().map(|web| {
            let every = self.state.opts.web_config_check_interval;
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
        loop {
            // Take a slot before accepting: past the limit, connections wait in the backlog.
            let permit = tokio::select! {
                p = Arc::clone(&limit).acquire_owned() => p,
                _ = shutdown.changed() => break,
            };
            let Ok(permit) = permit else { break };
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = shutdown.changed() => break,
            };
            let (stream, _) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Taken here, so shutdown also waits for connections still in
            // their TLS handshake.
            let watcher = graceful.watcher();
            let state = self.state.clone();
            tokio::spawn(async move {
                connection(stream, state, watcher).await;
                drop(permit);
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
/// then HTTP/1.1.
async fn connection(stream: TcpStream, state: AppState, watcher: Watcher) {
    let Some(web) = state.opts.web.clone() else {
        return serve(stream, state, watcher).await;
    };
    web.reload_if_changed();
    if !web.tls() {
        return serve(stream, state, watcher).await;
    }
    let Some(tls) = web.current().tls.clone() else {
        return;
    };
    let timeout = state.opts.header_timeout;
    match tokio::time::timeout(timeout, handshake(stream, tls)).await {
        Ok(Ok(Some(s))) => serve(s, state, watcher).await,
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
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

async fn serve<I>(io: I, state: AppState, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = state.opts.header_timeout;
    let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), svc);
    let _ = watcher.watch(conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        let h = |s: &'static str| Some(HeaderValue::from_static(s));
        assert!(accepts_gzip(h("gzip").as_ref()));
        assert!(accepts_gzip(h("deflate, gzip;q=1.0, *;q=0.5").as_ref()));
        assert!(accepts_gzip(h("*").as_ref()));
        assert!(!accepts_gzip(h("gzip;q=0").as_ref()));
        assert!(!accepts_gzip(h("identity").as_ref()));
        assert!(!accepts_gzip(None));
    }
}
