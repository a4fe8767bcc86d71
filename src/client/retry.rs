//! When a failed call is tried again, and how long to wait before it.

use std::time::Duration;

use crate::rng::Rng;

/// When and how often a failed call is tried again.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_tries: u32,
    pub base: Duration,
    pub throttle_base: Duration,
    pub cap: Duration,
    /// A call never takes longer than this in all, sleeps included.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_tries: 5,
            base: Duration::from_millis(100),
            throttle_base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
            max_total: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Delay before try `attempt + 1` ("equal jitter": half fixed, half random,
    /// so retries spread out but never come back at once).
    pub fn backoff(&self, attempt: u32, throttled: bool, rng: &mut Rng) -> Duration {
        let base = if throttled {
            self.throttle_base
        } else {
            self.base
        };
        let exp = base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.cap);
        let half = exp / 2;
        half + Duration::from_nanos(rng.below(half.as_nanos() as u64 + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let mut rng = Rng::new(1);
        for attempt in 1..10 {
            let d = p.backoff(attempt, false, &mut rng);
            let exp = Duration::from_millis(100)
                .saturating_mul(1 << (attempt - 1))
                .min(p.cap);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?}");
        }
        let d = p.backoff(1, true, &mut rng);
        assert!(d >= Duration::from_millis(250) && d <= Duration::from_millis(500));
        assert!(p.backoff(40, true, &mut rng) <= p.cap);
    }
}
