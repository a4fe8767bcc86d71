//! One connection's clock: what it is doing (waiting for a request head,
//! handling a request, sending the answer), since when, and whether its
//! client still reads. A watchdog drops the connection when it overstays,
//! which also drops the answer it was sending and the page that answer held.

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit};

/// How long a connection may stay in each state (see `ServerOptions`).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
    pub send: Duration,
    pub stall: Duration,
}

impl Timeouts {
    /// A scrape whose client has read nothing for this long stops counting
    /// against `--web.max-requests` (it is dropped later, at `stall`): a
    /// client that stopped reading is not a scrape that runs.
    pub fn stall_release(&self) -> Duration {
        self.stall / 10
    }

    /// How often the watchdog looks: a fraction of the shortest timeout.
    fn tick(&self) -> Duration {
        let shortest = [self.header, self.idle, self.send, self.stall_release()]
            .into_iter()
            .min()
            .unwrap_or(Duration::from_secs(1));
        (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// Why the exporter closed a connection on its own (the `reason` label of
/// `http_connections_dropped_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// No complete request head (or TLS handshake) in time.
    HeaderTimeout,
    /// Kept alive with no new request for too long.
    IdleTimeout,
    /// The client read nothing of the answer for too long.
    Stalled,
    /// The answer was not sent within the send timeout.
    SendTimeout,
    /// Closed to make room for a new connection at the connection cap.
    Evicted,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::HeaderTimeout,
        DropReason::IdleTimeout,
        DropReason::Stalled,
        DropReason::SendTimeout,
        DropReason::Evicted,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::HeaderTimeout => "header_timeout",
            DropReason::IdleTimeout => "idle_timeout",
            DropReason::Stalled => "stalled",
            DropReason::SendTimeout => "send_timeout",
            DropReason::Evicted => "evicted",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head; `fresh` on a new connection (the TLS
    /// handshake counts here too), else between requests of a kept-alive one.
    Head { fresh: bool },
    /// The handler runs; its own waits are bounded where they happen.
    Handling,
    /// The answer is being sent.
    Sending,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    since: Instant,
    /// First byte of the next request, while waiting for its head.
    first_byte: Option<Instant>,
    /// Since when a write has been waiting for the client to read.
    write_blocked: Option<Instant>,
    /// The answer's body is done (or gone): what is left is in the buffers.
    body_done: bool,
    /// The `--web.max-requests` slot of the scrape being sent.
    scrape: Option<OwnedSemaphorePermit>,
}

/// The shared clock of one connection: the I/O wrapper, the service and the
/// watchdog all see it.
#[derive(Debug)]
pub struct Conn {
    pub id: u64,
    state: Mutex<State>,
    evict: Notify,
    evicted: AtomicBool,
}

impl Conn {
    pub fn new(id: u64) -> Self {
        Conn {
            id,
            state: Mutex::new(State {
                phase: Phase::Head { fresh: true },
                since: Instant::now(),
                first_byte: None,
                write_blocked: None,
                body_done: true,
                scrape: None,
            }),
            evict: Notify::new(),
            evicted: AtomicBool::new(false),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request head arrived.
    pub fn request_started(&self) {
        let mut s = self.state();
        s.phase = Phase::Handling;
        s.since = Instant::now();
        s.first_byte = None;
        s.body_done = false;
    }

    /// The handler answered: the body is about to be sent.
    pub fn response_started(&self) {
        let mut s = self.state();
        s.phase = Phase::Sending;
        s.since = Instant::now();
    }

    /// Holds `permit` until the answer is sent, the client stalls or the
    /// connection ends.
    pub fn hold_scrape(&self, permit: OwnedSemaphorePermit) {
        self.state().scrape = Some(permit);
    }

    fn body_finished(&self) {
        let permit = {
            let mut s = self.state();
            s.body_done = true;
            s.scrape.take()
        };
        drop(permit);
    }

    fn on_read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut s = self.state();
        let now = Instant::now();
        if s.phase == Phase::Sending && s.body_done && s.write_blocked.is_none() {
            // The next request came before the last flush was seen.
            s.phase = Phase::Head { fresh: false };
            s.since = now;
        }
        if matches!(s.phase, Phase::Head { .. }) && s.first_byte.is_none() {
            s.first_byte = Some(now);
        }
    }

    fn on_write(&self, ready: bool) {
        let mut s = self.state();
        if ready {
            s.write_blocked = None;
        } else if s.write_blocked.is_none() {
            s.write_blocked = Some(Instant::now());
        }
    }

    fn on_flushed(&self) {
        let mut s = self.state();
        s.write_blocked = None;
        if s.phase == Phase::Sending && s.body_done {
            s.phase = Phase::Head { fresh: false };
            s.since = Instant::now();
            s.first_byte = None;
        }
    }

    /// What the watchdog decides now: a reason to drop the connection, or
    /// none (after letting go of a stalled scrape's slot).
    fn check(&self, now: Instant, t: &Timeouts) -> Option<DropReason> {
        let mut s = self.state();
        let since = |d: Option<Instant>| d.map(|d| now.saturating_duration_since(d));
        match s.phase {
            Phase::Head { fresh } => {
                let waited = now.saturating_duration_since(s.since);
                let reading = since(s.first_byte);
                let late = if fresh {
                    waited >= t.header
                } else {
                    match reading {
                        Some(r) => r >= t.header,
                        None => waited >= t.idle,
                    }
                };
                if !late {
                    None
                } else if fresh || reading.is_some() {
                    Some(DropReason::HeaderTimeout)
                } else {
                    Some(DropReason::IdleTimeout)
                }
            }
            Phase::Handling => None,
            Phase::Sending => {
                let blocked = since(s.write_blocked);
                if blocked.is_some_and(|b| b >= t.stall) {
                    return Some(DropReason::Stalled);
                }
                if now.saturating_duration_since(s.since) >= t.send {
                    return Some(DropReason::SendTimeout);
                }
                if blocked.is_some_and(|b| b >= t.stall_release()) {
                    s.scrape = None;
                }
                None
            }
        }
    }

    /// Which connection to close first at the cap: those waiting for a
    /// request (idle, or a head that trickles in), then those whose client
    /// stopped reading, then the rest; the longest waiting first.
    pub fn eviction_rank(&self) -> (u8, Instant) {
        let s = self.state();
        match (s.phase, s.write_blocked) {
            (Phase::Head { .. }, _) => (0, s.first_byte.unwrap_or(s.since)),
            (Phase::Sending, Some(b)) => (1, b),
            _ => (2, s.since),
        }
    }

    /// Asks the watchdog to close the connection now.
    pub fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.evict.notify_one();
    }
}

/// Resolves when the connection must be dropped, with the reason.
pub async fn watchdog(conn: &Conn, t: Timeouts) -> DropReason {
    let tick = t.tick();
    loop {
        tokio::select! {
            _ = conn.evict.notified() => return DropReason::Evicted,
            _ = tokio::time::sleep(tick) => {}
        }
        if conn.evicted.load(Ordering::Acquire) {
            return DropReason::Evicted;
        }
        if let Some(reason) = conn.check(Instant::now(), &t) {
            return reason;
        }
    }
}

/// The connection's stream, reporting reads, blocked writes and flushes to
/// its clock.
pub struct Tracked<I> {
    io: I,
    conn: std::sync::Arc<Conn>,
}

impl<I> Tracked<I> {
    pub fn new(io: I, conn: std::sync::Arc<Conn>) -> Self {
        Tracked { io, conn }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.conn.on_read(buf.filled().len() - before);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.conn.on_write(r.is_ready());
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.conn.on_write(r.is_ready());
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        match r {
            Poll::Ready(Ok(())) => self.conn.on_flushed(),
            Poll::Pending => self.conn.on_write(false),
            Poll::Ready(Err(_)) => {}
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// An answer's body that tells the connection's clock when it is done (or
/// dropped, when the connection goes first).
pub struct TrackedBody<B> {
    inner: B,
    conn: std::sync::Arc<Conn>,
}

impl<B> TrackedBody<B> {
    pub fn new(inner: B, conn: std::sync::Arc<Conn>) -> Self {
        TrackedBody { inner, conn }
    }
}

impl<B> Drop for TrackedBody<B> {
    fn drop(&mut self) {
        self.conn.body_finished();
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Timeouts {
        Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(45),
            send: Duration::from_secs(60),
            stall: Duration::from_secs(10),
        }
    }

    fn at(c: &Conn, after: Duration) -> Option<DropReason> {
        let since = c.state().since;
        c.check(since + after, &t())
    }

    #[test]
    fn a_new_connection_must_send_its_head_within_the_header_timeout() {
        let c = Conn::new(1);
        assert_eq!(at(&c, Duration::from_secs(9)), None);
        assert_eq!(
            at(&c, Duration::from_secs(10)),
            Some(DropReason::HeaderTimeout)
        );
    }

    #[test]
    fn a_kept_alive_connection_idles_then_must_finish_a_started_head() {
        let c = Conn::new(1);
        c.request_started();
        c.response_started();
        c.body_finished();
        c.on_flushed();
        assert_eq!(c.state().phase, Phase::Head { fresh: false });
        assert_eq!(at(&c, Duration::from_secs(44)), None);
        assert_eq!(
            at(&c, Duration::from_secs(45)),
            Some(DropReason::IdleTimeout)
        );
        c.on_read(3);
        let first = c.state().first_byte.expect("first byte");
        assert_eq!(c.check(first + Duration::from_secs(9), &t()), None);
        assert_eq!(
            c.check(first + Duration::from_secs(10), &t()),
            Some(DropReason::HeaderTimeout)
        );
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_loses_its_slot_then_its_connection() {
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let c = Conn::new(1);
        c.request_started();
        c.hold_scrape(
            std::sync::Arc::clone(&sem)
                .try_acquire_owned()
                .expect("slot"),
        );
        c.response_started();
        assert_eq!(sem.available_permits(), 0);
        c.on_write(false);
        let blocked = c.state().write_blocked.expect("blocked");
        assert_eq!(c.check(blocked + Duration::from_millis(500), &t()), None);
        assert_eq!(sem.available_permits(), 0, "a short stall keeps the slot");
        assert_eq!(c.check(blocked + Duration::from_secs(1), &t()), None);
        assert_eq!(sem.available_permits(), 1, "a longer one frees it");
        assert_eq!(
            c.check(blocked + Duration::from_secs(10), &t()),
            Some(DropReason::Stalled)
        );
    }

    #[test]
    fn a_slow_reader_is_cut_at_the_send_timeout() {
        let c = Conn::new(1);
        c.request_started();
        c.response_started();
        c.on_write(true);
        assert_eq!(at(&c, Duration::from_secs(59)), None);
        assert_eq!(
            at(&c, Duration::from_secs(60)),
            Some(DropReason::SendTimeout)
        );
    }

    #[test]
    fn idle_connections_are_evicted_before_busy_ones() {
        let idle = Conn::new(1);
        let stalled = Conn::new(2);
        stalled.request_started();
        stalled.response_started();
        stalled.on_write(false);
        let busy = Conn::new(3);
        busy.request_started();
        let mut all = [&busy, &stalled, &idle];
        all.sort_by_key(|c| c.eviction_rank());
        assert_eq!(all.map(|c| c.id), [1, 2, 3]);
    }

    #[test]
    fn the_defaults_drop_a_client_that_stops_reading_within_two_minutes() {
        // Worst case: a slow reader sends until the send timeout, then idles.
        let d = crate::server::ServerOptions::default().timeouts();
        assert!(d.send + d.idle < Duration::from_secs(120), "{d:?}");
        assert!(d.stall + d.idle < Duration::from_secs(120), "{d:?}");
        assert!(d.header < Duration::from_secs(120), "{d:?}");
    }
}
