//! The concurrency and rate limits of API requests, shared by the clients
//! of all accounts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Spaces requests out to at most `rate` per second, and slows down by itself
/// when the API says it is throttling us.
#[derive(Debug)]
pub(super) struct RateLimiter {
    state: Mutex<RateState>,
}

#[derive(Debug)]
struct RateState {
    interval: Option<Duration>,
    factor: f64,
    next: Instant,
}

impl RateLimiter {
    pub(super) fn new(rate: f64) -> Self {
        // A rate whose spacing does not fit a duration (the flag refuses
        // those; a library caller may not) is taken as no limit, not a panic.
        let interval = (rate > 0.0)
            .then(|| Duration::try_from_secs_f64(1.0 / rate).ok())
            .flatten()
            .filter(|d| !d.is_zero());
        RateLimiter {
            state: Mutex::new(RateState {
                interval,
                factor: 1.0,
                next: Instant::now(),
            }),
        }
    }

    /// Books the next free slot at or after `now`; `None` when unlimited.
    pub(super) fn reserve(&self, now: Instant) -> Option<Instant> {
        let mut s = self.state.lock().ok()?;
        let interval = s.interval?;
        let at = s.next.max(now);
        let spacing =
            Duration::try_from_secs_f64(interval.as_secs_f64() / s.factor).unwrap_or(interval);
        s.next = at.checked_add(spacing).unwrap_or(at);
        Some(at)
    }

    pub(super) async fn wait(&self) {
        if let Some(at) = self.reserve(Instant::now()) {
            tokio::time::sleep_until(at.into()).await;
        }
    }

    pub(super) fn on_throttle(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.factor = (s.factor * 0.5).max(0.05);
        }
    }

    pub(super) fn on_success(&self) {
        if let Ok(mut s) = self.state.lock()
            && s.factor < 1.0
        {
            s.factor = (s.factor + 0.02).min(1.0);
        }
    }
}

/// The concurrency and rate limits of API requests. Clients that share one
/// (`Arc`) stay under them all together.
#[derive(Debug)]
pub struct Limits {
    pub(super) semaphore: Semaphore,
    pub(super) rate: RateLimiter,
}

impl Limits {
    /// At most `max_concurrency` requests in flight and `rate_limit` per
    /// second (0 = no rate limit).
    pub fn new(max_concurrency: usize, rate_limit: f64) -> Arc<Self> {
        Arc::new(Limits {
            semaphore: Semaphore::new(max_concurrency.max(1)),
            rate: RateLimiter::new(rate_limit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_spaces_requests_and_backs_off_when_throttled() {
        let r = RateLimiter::new(10.0);
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..3)
            .filter_map(|_| r.reserve(t0))
            .map(|t| t - t0)
            .collect();
        assert_eq!(
            slots,
            vec![
                Duration::ZERO,
                Duration::from_millis(100),
                Duration::from_millis(200)
            ]
        );
        r.on_throttle();
        let a = r.reserve(t0).expect("slot");
        let b = r.reserve(t0).expect("slot");
        assert_eq!(
            b - a,
            Duration::from_millis(200),
            "half the rate after throttling"
        );
        for _ in 0..100 {
            r.on_success();
        }
        let c = r.reserve(t0).expect("slot");
        let d = r.reserve(t0).expect("slot");
        assert_eq!(
            d - c,
            Duration::from_millis(100),
            "recovers to the configured rate"
        );
        assert!(RateLimiter::new(0.0).reserve(t0).is_none(), "0 = no limit");
        for odd in [1e-300, 5e-324, 1e308, f64::INFINITY, f64::NAN, -1.0] {
            let r = RateLimiter::new(odd);
            r.on_throttle();
            let _ = r.reserve(t0);
            let _ = r.reserve(t0);
        }
    }
}
