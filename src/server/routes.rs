//! What each path answers: `/metrics` (the last rendered page, held
//! compressed), `/healthz`, `/ready`, `/` and `POST /-/reload`, behind the
//! web config's basic auth and with its extra headers.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::auth::Verdict;
use super::conn::{Conn, TrackedBody};
use super::{Refusal, Shared};
use crate::render::Page;

pub const CONTENT_TYPE_METRICS: &str = "text/plain; version=0.0.4; charset=utf-8";

type Body = BoxBody<Bytes, std::io::Error>;
type Resp = Response<Body>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
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

/// One request on a connection: its clock knows when the handler runs and
/// when the answer is being sent.
pub(super) async fn serve(
    shared: &Shared,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<TrackedBody<Body>>, Infallible> {
    conn.request_started();
    let resp = handle(shared, &conn, req).await;
    conn.response_started();
    Ok(resp.map(|b| TrackedBody::new(b, conn)))
}

async fn handle(shared: &Shared, conn: &Conn, req: Request<Incoming>) -> Resp {
    let Some(web) = shared.opts().web.clone() else {
        return route(shared, conn, req).await;
    };
    // One config for the whole request, even if a reload lands meanwhile.
    let cfg = web.current();
    let mut resp = if cfg.requires_auth() && req.uri().path() != "/healthz" {
        match web
            .authorize(&cfg, req.headers().get(header::AUTHORIZATION))
            .await
        {
            Verdict::Accepted => route(shared, conn, req).await,
            Verdict::Refused => {
                shared.opts().metrics.auth_failures.inc();
                unauthorized()
            }
            Verdict::Busy => refuse(shared, Refusal::PasswordChecks),
        }
    } else {
        route(shared, conn, req).await
    };
    for (name, value) in &cfg.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

async fn route(shared: &Shared, conn: &Conn, req: Request<Incoming>) -> Resp {
    let opts = shared.opts();
    let path = req.uri().path();
    let method = req.method();
    let read = method == Method::GET || method == Method::HEAD;
    if path == opts.telemetry_path {
        return if read {
            metrics(shared, conn, &req).await
        } else {
            method_not_allowed("GET, HEAD")
        };
    }
    match path {
        "/healthz" if read => text(StatusCode::OK, "OK\n"),
        "/ready" if read => {
            if shared.app.ready.load(Ordering::Acquire) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: the first collection has not finished\n",
                )
            }
        }
        "/" if read => {
            let mut r = text(StatusCode::OK, landing(&opts.telemetry_path));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        "/-/reload" if method == Method::POST => {
            if !opts.enable_lifecycle {
                return text(
                    StatusCode::FORBIDDEN,
                    "reload is off: start the exporter with --web.enable-lifecycle to use POST /-/reload (SIGHUP always reloads)\n",
                );
            }
            let report = super::reload(opts).await;
            let status = match report.ok() {
                true => StatusCode::OK,
                false => StatusCode::INTERNAL_SERVER_ERROR,
            };
            // Whatever a reload reports, no secret the process holds.
            text(
                status,
                crate::secret::scrub(&report.to_string()).into_owned(),
            )
        }
        "/healthz" | "/ready" | "/" => method_not_allowed("GET, HEAD"),
        "/-/reload" => method_not_allowed("POST"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
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
        crate::own_metrics::long_version()
    )
}

fn refuse(shared: &Shared, why: Refusal) -> Resp {
    shared.opts().metrics.refused(why);
    let msg = match why {
        Refusal::MaxRequests => format!(
            "too many scrapes at once (--web.max-requests {}); try again\n",
            shared.opts().max_requests
        ),
        Refusal::PlainScrapes => {
            "too many scrapes without gzip at once; ask with Accept-Encoding: gzip, or try again\n"
                .to_string()
        }
        Refusal::PasswordChecks => "too many password checks at once; try again\n".to_string(),
    };
    let mut r = text(StatusCode::SERVICE_UNAVAILABLE, msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// `/metrics`. A scrape takes one of `--web.max-requests` slots for as
/// long as its page is being sent; a scrape without gzip first waits (a
/// bounded time) for one of the few inflation slots.
async fn metrics(shared: &Shared, conn: &Conn, req: &Request<Incoming>) -> Resp {
    let head = req.method() == Method::HEAD;
    let gzip = accepts_gzip(req.headers().get(header::ACCEPT_ENCODING));
    let opts = shared.opts();
    let inflating = if gzip || head {
        None
    } else {
        let slot = Arc::clone(&shared.plain).acquire_owned();
        match tokio::time::timeout(opts.plain_wait, slot).await {
            Ok(Ok(p)) => Some(p),
            _ => return refuse(shared, Refusal::PlainScrapes),
        }
    };
    if let Some(limit) = &shared.scrapes {
        match Arc::clone(limit).try_acquire_owned() {
            Ok(p) => conn.hold_scrape(p),
            Err(_) => return refuse(shared, Refusal::MaxRequests),
        }
    }
    let page = shared.app.page.load_full();
    // The exporter's own series as of now, after the pre-rendered page.
    let (tail, own_len) = match own_tail(shared, &page) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot compress the exporter's own series");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot build the page\n");
        }
    };
    let len = if gzip {
        page.gzip_len() + tail.len()
    } else {
        page.plain_len + own_len
    };
    let body = match inflating {
        _ if head => full(Bytes::new()),
        None => BodyExt::boxed(PageBody::new(page, tail)),
        Some(slot) => match inflate(page, tail, slot) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot inflate the page");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot inflate the page; ask with Accept-Encoding: gzip\n",
                );
            }
        },
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

/// The exporter's own series gathered for one page, reused by the scrapes
/// of the same moment: gathering reads `/proc` and encodes every counter,
/// which a handful of back-to-back scrapers would otherwise pay each time.
pub(super) struct OwnTail {
    at: std::time::Instant,
    /// Which page the tail continues (weak: a cached tail keeps no page).
    page: std::sync::Weak<Page>,
    tail: Bytes,
    own_len: usize,
}

/// How long gathered own series stay "as of now".
const OWN_FRESH: std::time::Duration = std::time::Duration::from_millis(250);

/// The tail of `page` with the exporter's own series (gathered at most
/// every [`OWN_FRESH`]), and the plain size of those series.
fn own_tail(shared: &Shared, page: &Arc<Page>) -> std::io::Result<(Bytes, usize)> {
    let mut cache = shared.own.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = &*cache
        && std::ptr::eq(c.page.as_ptr(), Arc::as_ptr(page))
        && c.at.elapsed() < OWN_FRESH
    {
        return Ok((c.tail.clone(), c.own_len));
    }
    let own = crate::render::registry_text(&shared.app.registry);
    let tail = page.tail(&own)?;
    *cache = Some(OwnTail {
        at: std::time::Instant::now(),
        page: Arc::downgrade(page),
        tail: tail.clone(),
        own_len: own.len(),
    });
    Ok((tail, own.len()))
}

/// The compressed page part by part (the regions' chunks, shared with the
/// page, not copied): hyper takes the next one only as the client reads, so
/// the body (and the scrape's slot) lasts as long as the sending does, and
/// the page is let go when it ends.
struct PageBody {
    page: Arc<Page>,
    /// The exporter's own series and the gzip trailer.
    tail: Bytes,
    /// The next part to send (`parts.len()`: the tail), and how far into it.
    part: usize,
    at: usize,
    left: usize,
}

/// A part larger than this goes out in slices of it.
const PAGE_SLICE: usize = 1 << 20;

impl PageBody {
    fn new(page: Arc<Page>, tail: Bytes) -> Self {
        let left = page.gzip_len() + tail.len();
        PageBody {
            page,
            tail,
            part: 0,
            at: 0,
            left,
        }
    }
}

impl hyper::body::Body for PageBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<std::io::Result<Frame<Bytes>>>> {
        let me = &mut *self;
        loop {
            let current = match me.page.parts.get(me.part) {
                Some(p) => p,
                None if me.part == me.page.parts.len() => &me.tail,
                None => return Poll::Ready(None),
            };
            if me.at >= current.len() {
                me.part += 1;
                me.at = 0;
                continue;
            }
            let end = (me.at + PAGE_SLICE).min(current.len());
            let slice = current.slice(me.at..end);
            me.at = end;
            me.left -= slice.len();
            return Poll::Ready(Some(Ok(Frame::data(slice))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left as u64)
    }
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

/// The page inflated on the fly in 64 KiB chunks by a thread of its own at
/// the lower priority (`low_priority`), so a client without gzip never makes the whole
/// plain page sit in memory, and the collection wins the CPU over it. The
/// thread holds `slot` and ends when the page is done or the client gone.
fn inflate(page: Arc<Page>, tail: Bytes, slot: OwnedSemaphorePermit) -> std::io::Result<Body> {
    let (tx, rx) = mpsc::channel(2);
    std::thread::Builder::new()
        .name("inflate".into())
        .spawn(move || {
            use std::io::Read;
            let _slot = slot;
            if let Err(e) = crate::low_priority::lower_priority() {
                tracing::debug!(error = %e, "inflating at the normal priority");
            }
            let mut dec = flate2::read::GzDecoder::new(page.reader(&tail));
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
        })?;
    Ok(BodyExt::boxed(ChannelBody(rx)))
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
        HeaderValue::from_static(super::auth::WWW_AUTHENTICATE),
    );
    r
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

    #[tokio::test]
    async fn the_page_body_is_the_page_in_slices_then_the_tail() {
        let data: Vec<u8> = (0..(PAGE_SLICE * 2 + 17)).map(|i| i as u8).collect();
        let page = Arc::new(Page::from_raw(Bytes::from(data.clone())));
        let tail = Bytes::from_static(b"tail");
        let body = PageBody::new(Arc::clone(&page), tail.clone());
        let want = [&data[..], &tail[..]].concat();
        assert_eq!(
            hyper::body::Body::size_hint(&body).exact(),
            Some(want.len() as u64)
        );
        let got = body.collect().await.expect("body").to_bytes();
        assert_eq!(got, want);
        assert_eq!(Arc::strong_count(&page), 1, "the body let the page go");
    }
}
