//! Keeping temporary credentials fresh: when a refresh is due, the state the
//! refresh task shares with the provider, the task itself, its backoff and
//! its metric.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus::{IntCounterVec, Registry};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::{Context, Credentials, CredentialsError, Source, now_ms};
use crate::rng::Rng;

/// `credential_refreshes_total{source,result}` (see `own_metrics`).
#[derive(Clone, Debug)]
pub struct RefreshMetrics {
    refreshes: IntCounterVec,
}

impl RefreshMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        Self::for_account(registry, None)
    }

    /// The metric of one account of `--config.file` (`account` as a
    /// constant label, so several accounts share the name in one registry).
    pub fn for_account(registry: &Registry, account: Option<&str>) -> prometheus::Result<Self> {
        let refreshes = IntCounterVec::new(
            crate::own_metrics::CREDENTIAL_REFRESHES.opts_for(account),
            &["source", "result"],
        )?;
        registry.register(Box::new(refreshes.clone()))?;
        Ok(RefreshMetrics { refreshes })
    }

    /// Takes the metric off the registry (an account removed by a reload).
    pub fn unregister(&self, registry: &Registry) {
        let _ = registry.unregister(Box::new(self.refreshes.clone()));
    }

    /// Both series of a source exist from the start, so alerts on failures
    /// see a 0 before the first one.
    pub(super) fn init(&self, source: &str) {
        for result in ["success", "failure"] {
            self.refreshes.with_label_values(&[source, result]);
        }
    }

    pub(super) fn inc(&self, source: &str, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.refreshes.with_label_values(&[source, result]).inc();
    }

    /// Refreshes so far of `source` with `result` (`success`, `failure`).
    pub fn count(&self, source: &str, result: &str) -> u64 {
        self.refreshes
            .get_metric_with_label_values(&[source, result])
            .map(|c| c.get())
            .unwrap_or(0)
    }
}

/// When temporary credentials are refreshed and how failures are retried.
#[derive(Clone, Debug)]
pub struct RefreshPolicy {
    /// Refresh when less than this remains, or half the lifetime the
    /// credentials were issued with, whichever is less.
    pub max_lead: Duration,
    /// First retry after a failed refresh; doubles up to `retry_cap`. Also the
    /// least time between two fetches that callers ask for.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Credentials this close to their expiry (at most a tenth of their
    /// lifetime) are not used any more: a request signed now must still be
    /// valid when it arrives.
    pub expiry_margin: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            max_lead: Duration::from_secs(15 * 60),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
            expiry_margin: Duration::from_secs(5),
        }
    }
}

impl RefreshPolicy {
    fn backoff(&self, failures: u32, rng: &mut Rng) -> Duration {
        let exp = self
            .retry_base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(self.retry_cap);
        let half = exp / 2;
        half + Duration::from_nanos(rng.below(half.as_nanos() as u64 + 1))
    }
}

/// When credentials obtained at `obtained_ms` that expire at `expiration`
/// (Unix seconds) are due for a refresh, in Unix ms.
pub(crate) fn refresh_due_ms(obtained_ms: i64, expiration: i64, max_lead: Duration) -> i64 {
    let exp_ms = expiration.saturating_mul(1000);
    let lifetime = (exp_ms - obtained_ms).max(0);
    exp_ms - (lifetime / 2).min(max_lead.as_millis() as i64)
}

pub(super) struct Shared {
    pub(super) label: &'static str,
    pub(super) description: String,
    pub(super) current: ArcSwap<Credentials>,
    /// When the current set was obtained: its lifetime counts from then.
    pub(super) obtained_ms: AtomicI64,
    /// Bumped at every new set, so a caller that saw a refusal can tell
    /// whether someone refreshed since.
    pub(super) generation: AtomicU64,
    /// Bumped after every fetch, whatever its result: waiters wake on it.
    pub(super) attempts: watch::Sender<u64>,
    pub(super) wanted: AtomicBool,
    pub(super) wake: Notify,
    pub(super) policy: RefreshPolicy,
    /// Why the last fetch brought no new set; `None` once one did.
    pub(super) last_failure: std::sync::Mutex<Option<Arc<CredentialsError>>>,
}

impl Shared {
    pub(super) fn new(
        label: &'static str,
        description: String,
        creds: Credentials,
        policy: RefreshPolicy,
    ) -> Self {
        // The key id is no secret to the API, but it is one to a log reader.
        crate::secret::remember(&creds.access_key_id);
        Shared {
            label,
            description,
            current: ArcSwap::from_pointee(creds),
            obtained_ms: AtomicI64::new(now_ms()),
            generation: AtomicU64::new(0),
            attempts: watch::Sender::new(0),
            wanted: AtomicBool::new(false),
            wake: Notify::new(),
            policy,
            last_failure: std::sync::Mutex::new(None),
        }
    }

    pub(super) fn store(&self, creds: Credentials) {
        crate::secret::remember(&creds.access_key_id);
        self.obtained_ms.store(now_ms(), Ordering::SeqCst);
        self.current.store(Arc::new(creds));
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn refresh_due_ms(&self) -> Option<i64> {
        let exp = self.current.load().expiration?;
        Some(refresh_due_ms(
            self.obtained_ms.load(Ordering::SeqCst),
            exp,
            self.policy.max_lead,
        ))
    }

    pub(super) fn usable(&self, c: &Credentials, now: i64) -> bool {
        let Some(exp) = c.expiration else {
            return true;
        };
        let exp_ms = exp.saturating_mul(1000);
        let lifetime = (exp_ms - self.obtained_ms.load(Ordering::SeqCst)).max(0);
        let margin = (self.policy.expiry_margin.as_millis() as i64).min(lifetime / 10);
        now < exp_ms - margin
    }

    /// Why the last fetch brought no new set, if it did not.
    pub(super) fn last_failure(&self) -> Option<Arc<CredentialsError>> {
        self.last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_last_failure(&self, why: Option<CredentialsError>) {
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = why.map(Arc::new);
    }

    pub(super) fn want_refresh(&self) {
        self.wanted.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

pub(super) async fn refresh_loop(shared: Arc<Shared>, source: Box<dyn Source>, ctx: Context) {
    let label = shared.label;
    let mut failures = 0u32;
    let mut rng = Rng::from_time();
    let mut last_attempt = Instant::now();
    loop {
        let wait = if failures > 0 {
            shared.policy.backoff(failures, &mut rng)
        } else {
            match shared.refresh_due_ms() {
                Some(due) => Duration::from_millis((due - now_ms()).max(0) as u64),
                None => return,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.wake.notified() => {
                if !shared.wanted.load(Ordering::SeqCst) {
                    continue;
                }
                // Callers ask when they find the credentials expired or
                // refused; at most one fetch per retry_base however many ask.
                tokio::time::sleep_until(last_attempt + shared.policy.retry_base).await;
            }
        }
        last_attempt = Instant::now();
        let result = source.fetch(&ctx).await;
        if let Some(m) = &ctx.metrics {
            m.inc(label, result.is_ok());
        }
        match result {
            Ok(fresh) => {
                let old = shared.current.load_full();
                if fresh.access_key_id == old.access_key_id && fresh.expiration == old.expiration {
                    // The metadata service hands out the same set until it
                    // rotates it: ask again later, not in a tight loop.
                    failures += 1;
                    shared.set_last_failure(Some(CredentialsError::SameAgain));
                    tracing::debug!(
                        source = label,
                        "credential source returned the same credentials; asking again later"
                    );
                } else {
                    let expires_in = fresh.expiration.map(|e| e - now_ms() / 1000);
                    shared.store(fresh);
                    shared.set_last_failure(None);
                    failures = 0;
                    tracing::debug!(
                        source = label,
                        expires_in_s = expires_in,
                        "credentials refreshed"
                    );
                }
            }
            Err(e) => {
                failures += 1;
                let valid = shared.usable(&shared.current.load(), now_ms());
                tracing::warn!(source = label, error = %e, current_still_valid = valid, "credential refresh failed; retrying with backoff");
                shared.set_last_failure(Some(e));
            }
        }
        shared.wanted.store(false, Ordering::SeqCst);
        shared.attempts.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_is_due_at_half_life_or_fifteen_minutes_before() {
        let lead = Duration::from_secs(900);
        // 6 s credentials: due after 3 s.
        assert_eq!(refresh_due_ms(1_000_000, 1_006, lead), 1_003_000);
        // 1 h credentials: due 15 minutes before expiry, not at half-life.
        assert_eq!(refresh_due_ms(0, 3600, lead), 2700 * 1000);
        // 20 min credentials: half-life (10 min) is less than 15 min.
        assert_eq!(refresh_due_ms(0, 1200, lead), 600 * 1000);
        // Already expired: due now.
        assert_eq!(refresh_due_ms(10_000_000, 9_000, lead), 9_000_000);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RefreshPolicy::default();
        let mut rng = Rng::new(3);
        for failures in 1..12 {
            let d = p.backoff(failures, &mut rng);
            let exp = Duration::from_secs(1)
                .saturating_mul(1 << (failures - 1))
                .min(p.retry_cap);
            assert!(d >= exp / 2 && d <= exp, "{failures}: {d:?}");
        }
    }
}
