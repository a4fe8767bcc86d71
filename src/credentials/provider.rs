//! The provider: holds the credentials in use, refreshes temporary ones in
//! the background, and makes callers wait rather than sign with expired ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::assume_role::AssumeRoleSource;
use super::ecs_metadata::EcsMetadataSource;
use super::oidc::OidcSource;
use super::{
    BoxFuture, Context, CredentialSpec, Credentials, CredentialsError, Env, RoleSpec, Source,
    chain, cli_profile, env, ini, now_ms,
};
use crate::rng::Rng;

/// `aliyun_cloud_assistant_exporter_credential_refreshes_total{source,result}`.
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
        let mut opts = Opts::new(
            "aliyun_cloud_assistant_exporter_credential_refreshes_total",
            "Credentials fetched from their source (the first at start included), by source and result.",
        );
        if let Some(a) = account {
            opts = opts.const_label("account", a);
        }
        let refreshes = IntCounterVec::new(opts, &["source", "result"])?;
        registry.register(Box::new(refreshes.clone()))?;
        Ok(RefreshMetrics { refreshes })
    }

    /// Takes the metric off the registry (an account removed by a reload).
    pub fn unregister(&self, registry: &Registry) {
        let _ = registry.unregister(Box::new(self.refreshes.clone()));
    }

    /// Both series of a source exist from the start, so alerts on failures
    /// see a 0 before the first one.
    fn init(&self, source: &str) {
        for result in ["success", "failure"] {
            self.refreshes.with_label_values(&[source, result]);
        }
    }

    fn inc(&self, source: &str, ok: bool) {
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

struct Shared {
    label: &'static str,
    description: String,
    current: ArcSwap<Credentials>,
    /// When the current set was obtained: its lifetime counts from then.
    obtained_ms: AtomicI64,
    /// Bumped at every new set, so a caller that saw a refusal can tell
    /// whether someone refreshed since.
    generation: AtomicU64,
    /// Bumped after every fetch, whatever its result: waiters wake on it.
    attempts: watch::Sender<u64>,
    wanted: AtomicBool,
    wake: Notify,
    policy: RefreshPolicy,
}

impl Shared {
    fn new(
        label: &'static str,
        description: String,
        creds: Credentials,
        policy: RefreshPolicy,
    ) -> Self {
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
        }
    }

    fn store(&self, creds: Credentials) {
        self.obtained_ms.store(now_ms(), Ordering::SeqCst);
        self.current.store(Arc::new(creds));
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn refresh_due_ms(&self) -> Option<i64> {
        let exp = self.current.load().expiration?;
        Some(refresh_due_ms(
            self.obtained_ms.load(Ordering::SeqCst),
            exp,
            self.policy.max_lead,
        ))
    }

    fn usable(&self, c: &Credentials, now: i64) -> bool {
        let Some(exp) = c.expiration else {
            return true;
        };
        let exp_ms = exp.saturating_mul(1000);
        let lifetime = (exp_ms - self.obtained_ms.load(Ordering::SeqCst)).max(0);
        let margin = (self.policy.expiry_margin.as_millis() as i64).min(lifetime / 10);
        now < exp_ms - margin
    }

    fn want_refresh(&self) {
        self.wanted.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// Holds the credentials in use; `current` is cheap and lock-free.
/// Dropping the provider stops its refresh task.
pub struct CredentialProvider {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for CredentialProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialProvider")
            .field("source", &self.shared.label)
            .field("refreshing", &self.task.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for CredentialProvider {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl CredentialProvider {
    /// Credentials that never change (the demo, tests, long-term keys).
    pub fn fixed(source: &'static str, creds: Credentials) -> Arc<Self> {
        Self::fixed_described(source, source.to_string(), creds)
    }

    fn fixed_described(source: &'static str, description: String, creds: Credentials) -> Arc<Self> {
        Arc::new(CredentialProvider {
            shared: Arc::new(Shared::new(
                source,
                description,
                creds,
                RefreshPolicy::default(),
            )),
            task: None,
        })
    }

    /// The environment's AccessKey alone, read through `get`.
    pub fn from_env_with(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Arc<Self>, CredentialsError> {
        match env::detect(&Env::capture(get))? {
            Some(CredentialSpec::AccessKey {
                origin,
                access_key_id,
                access_key_secret,
                security_token,
            }) => Ok(Self::fixed(
                origin,
                Credentials {
                    access_key_id,
                    access_key_secret,
                    security_token,
                    expiration: None,
                },
            )),
            _ => Err(CredentialsError::NotConfigured {
                tried: vec![env::NOT_SET.to_string()],
            }),
        }
    }

    pub fn from_env() -> Result<Arc<Self>, CredentialsError> {
        Self::from_env_with(|k| std::env::var(k).ok())
    }

    /// Fetches the first set from `source` (an error if that fails), then
    /// refreshes in the background when they are temporary. Needs a Tokio
    /// runtime.
    pub async fn start(
        source: Box<dyn Source>,
        ctx: &Context,
    ) -> Result<Arc<Self>, CredentialsError> {
        let label = source.label();
        if let Some(m) = &ctx.metrics {
            m.init(label);
        }
        let first = source.fetch(ctx).await;
        if let Some(m) = &ctx.metrics {
            m.inc(label, first.is_ok());
        }
        let first = first?;
        let temporary = first.expiration.is_some();
        let shared = Arc::new(Shared::new(
            label,
            source.describe(),
            first,
            ctx.policy.clone(),
        ));
        let task =
            temporary.then(|| tokio::spawn(refresh_loop(Arc::clone(&shared), source, ctx.clone())));
        Ok(Arc::new(CredentialProvider { shared, task }))
    }

    /// Builds the provider a spec describes (for the chain, the first
    /// configured source) and fetches its first credentials.
    pub fn from_spec<'a>(
        spec: &'a CredentialSpec,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<Arc<Self>, CredentialsError>> {
        Box::pin(async move {
            match spec {
                CredentialSpec::Chain => {
                    let (picked, what) = chain::resolve(ctx).await?;
                    tracing::info!(picked = %what, "credential chain");
                    Self::from_spec(&picked, ctx).await
                }
                CredentialSpec::AccessKey {
                    origin,
                    access_key_id,
                    access_key_secret,
                    security_token,
                } => {
                    if let Some(m) = &ctx.metrics {
                        m.init(origin);
                        m.inc(origin, true);
                    }
                    let kind = if security_token.is_some() {
                        "STS token"
                    } else {
                        "AccessKey"
                    };
                    Ok(Self::fixed_described(
                        origin,
                        format!("{kind} from {origin}"),
                        Credentials {
                            access_key_id: access_key_id.clone(),
                            access_key_secret: access_key_secret.clone(),
                            security_token: security_token.clone(),
                            expiration: None,
                        },
                    ))
                }
                CredentialSpec::Oidc { origin, spec } => {
                    Self::start(Box::new(OidcSource::new(origin, spec.clone())), ctx).await
                }
                CredentialSpec::EcsRamRole { origin, role_name } => {
                    let source = EcsMetadataSource::new(origin, role_name.clone(), &ctx.env);
                    Self::start(Box::new(source), ctx).await
                }
                CredentialSpec::AssumeRole { role, source } => {
                    let inner = Self::from_spec(source, ctx).await?;
                    Self::start(Box::new(AssumeRoleSource::new(role.clone(), inner)), ctx).await
                }
                CredentialSpec::CliProfile { profile } => {
                    let spec = cli_profile::load(&ctx.env, profile.as_deref())?;
                    Self::from_spec(&spec, ctx).await
                }
                CredentialSpec::CredentialsFile { path, profile } => {
                    let spec = ini::load(&ctx.env, path.as_deref(), profile.as_deref())?;
                    Self::from_spec(&spec, ctx).await
                }
                CredentialSpec::Profile { name } => {
                    let spec = if cli_profile::has_profile(&ctx.env, name)? {
                        cli_profile::load(&ctx.env, Some(name))?
                    } else {
                        ini::load(&ctx.env, None, Some(name)).map_err(|e| {
                            CredentialsError::Config(format!(
                                "profile {name:?}: no CLI profile of that name, and {e}"
                            ))
                        })?
                    };
                    Self::from_spec(&spec, ctx).await
                }
            }
        })
    }

    /// The default chain; with `role_arn` (`--aliyun.role-arn`), that role
    /// assumed with whatever the chain yields.
    pub async fn default_chain(
        ctx: &Context,
        role_arn: Option<&str>,
    ) -> Result<Arc<Self>, CredentialsError> {
        let spec = match role_arn {
            None => CredentialSpec::Chain,
            Some(arn) => CredentialSpec::AssumeRole {
                role: RoleSpec::new(arn),
                source: Box::new(CredentialSpec::Chain),
            },
        };
        Self::from_spec(&spec, ctx).await
    }

    /// The set in use now, expired or not (see [`Self::valid`]).
    pub fn current(&self) -> Arc<Credentials> {
        self.shared.current.load_full()
    }

    /// The set in use, once it is valid: when it has expired (or is about
    /// to), waits up to `max_wait` for the refresh it asks for.
    pub async fn valid(&self, max_wait: Duration) -> Result<Arc<Credentials>, CredentialsError> {
        let c = self.current();
        if self.shared.usable(&c, now_ms()) {
            return Ok(c);
        }
        let expired = || CredentialsError::Expired {
            from: self.shared.label,
            waited: max_wait,
        };
        if self.task.is_none() {
            return Err(expired());
        }
        let deadline = Instant::now() + max_wait;
        let mut attempts = self.shared.attempts.subscribe();
        loop {
            attempts.borrow_and_update();
            let c = self.current();
            if self.shared.usable(&c, now_ms()) {
                return Ok(c);
            }
            self.shared.want_refresh();
            match tokio::time::timeout_at(deadline, attempts.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(expired()),
            }
        }
    }

    /// Counts new sets of credentials; pass what it was before a call to
    /// [`Self::force_refresh`].
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }

    /// The API refused the credentials of `seen_generation` as expired:
    /// refreshes now (unless someone already did) and waits up to
    /// `max_wait` for that attempt. No effect on fixed credentials.
    pub async fn force_refresh(&self, seen_generation: u64, max_wait: Duration) {
        if self.task.is_none() || self.generation() != seen_generation {
            return;
        }
        let mut attempts = self.shared.attempts.subscribe();
        attempts.borrow_and_update();
        if self.generation() != seen_generation {
            return;
        }
        self.shared.want_refresh();
        let _ = tokio::time::timeout(max_wait, attempts.changed()).await;
    }

    /// Which source the credentials come from (the metric's `source`
    /// label; for logs, never a value).
    pub fn source(&self) -> &'static str {
        self.shared.label
    }

    /// The source in words, for the log line at start (never a value).
    pub fn describe(&self) -> &str {
        &self.shared.description
    }
}

async fn refresh_loop(shared: Arc<Shared>, source: Box<dyn Source>, ctx: Context) {
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
                    tracing::debug!(
                        source = label,
                        "credential source returned the same credentials; asking again later"
                    );
                } else {
                    let expires_in = fresh.expiration.map(|e| e - now_ms() / 1000);
                    shared.store(fresh);
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
            }
        }
        shared.wanted.store(false, Ordering::SeqCst);
        shared.attempts.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

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

    /// A source that issues credentials living `life_ms`, or fails when told.
    struct Fake {
        life_ms: i64,
        fail: Arc<AtomicBool>,
        same: Arc<AtomicBool>,
        issued: Arc<AtomicU64>,
        last: Mutex<Option<Credentials>>,
    }

    impl Source for Fake {
        fn label(&self) -> &'static str {
            "fake"
        }
        fn describe(&self) -> String {
            "fake".into()
        }
        fn fetch<'a>(
            &'a self,
            _ctx: &'a Context,
        ) -> BoxFuture<'a, Result<Credentials, CredentialsError>> {
            Box::pin(async move {
                if self.fail.load(Ordering::SeqCst) {
                    return Err(CredentialsError::fetch("fake", "down"));
                }
                let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                if self.same.load(Ordering::SeqCst)
                    && let Some(c) = last.as_ref()
                {
                    return Ok(c.clone());
                }
                let n = self.issued.fetch_add(1, Ordering::SeqCst);
                // Expiration in whole seconds, as the APIs give it.
                let exp = (now_ms() + self.life_ms + 999) / 1000;
                let c = Credentials {
                    access_key_id: format!("STS.{n}"),
                    access_key_secret: crate::secret::Secret::new("s"),
                    security_token: Some(crate::secret::Secret::new("t")),
                    expiration: Some(exp),
                };
                *last = Some(c.clone());
                Ok(c)
            })
        }
    }

    fn ctx(registry: &Registry) -> Context {
        Context::new(
            Env::default(),
            super::super::ContextOptions {
                metrics: Some(RefreshMetrics::new(registry).expect("metric")),
                policy: RefreshPolicy {
                    retry_base: Duration::from_millis(100),
                    retry_cap: Duration::from_millis(400),
                    ..RefreshPolicy::default()
                },
                ..Default::default()
            },
        )
        .expect("context")
    }

    fn fake(life_ms: i64) -> (Fake, Arc<AtomicBool>, Arc<AtomicBool>, Arc<AtomicU64>) {
        let (fail, same, issued) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let f = Fake {
            life_ms,
            fail: Arc::clone(&fail),
            same: Arc::clone(&same),
            issued: Arc::clone(&issued),
            last: Mutex::new(None),
        };
        (f, fail, same, issued)
    }

    #[tokio::test]
    async fn refreshes_before_expiry_and_keeps_valid_ones_on_failure() {
        let registry = Registry::new();
        let ctx = ctx(&registry);
        let (f, fail, _, issued) = fake(3_000);
        let p = CredentialProvider::start(Box::new(f), &ctx)
            .await
            .expect("start");
        let first = p.current().access_key_id.clone();
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        assert_ne!(p.current().access_key_id, first, "refreshed by half-life");
        let n = issued.load(Ordering::SeqCst);
        assert!((2..=3).contains(&n), "{n} issued");
        // While the source is down the valid set stays in use.
        fail.store(true, Ordering::SeqCst);
        let held = p.current().access_key_id.clone();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(p.current().access_key_id, held);
        let metrics = ctx.metrics.clone().expect("metrics");
        assert!(metrics.count("fake", "failure") >= 1);
        // Once it is back, a caller with expired credentials gets fresh ones.
        fail.store(false, Ordering::SeqCst);
        let c = p.valid(Duration::from_secs(5)).await.expect("valid");
        assert!(p.shared.usable(&c, now_ms()));
        assert!(metrics.count("fake", "success") >= 2);
    }

    #[tokio::test]
    async fn never_hands_out_expired_credentials() {
        let registry = Registry::new();
        let ctx = ctx(&registry);
        let (f, fail, _, _) = fake(1_200);
        let p = CredentialProvider::start(Box::new(f), &ctx)
            .await
            .expect("start");
        fail.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2_200)).await;
        let e = p
            .valid(Duration::from_millis(300))
            .await
            .expect_err("expired");
        assert!(
            matches!(e, CredentialsError::Expired { from: "fake", .. }),
            "{e}"
        );
        fail.store(false, Ordering::SeqCst);
        let c = p.valid(Duration::from_secs(3)).await.expect("fresh");
        assert!(c.expiration.is_some_and(|e| e * 1000 > now_ms()));
    }

    #[tokio::test]
    async fn same_credentials_again_do_not_spin() {
        let registry = Registry::new();
        let ctx = ctx(&registry);
        let (f, _, same, _) = fake(2_000);
        same.store(true, Ordering::SeqCst);
        let p = CredentialProvider::start(Box::new(f), &ctx)
            .await
            .expect("start");
        tokio::time::sleep(Duration::from_millis(1_900)).await;
        let fetched = ctx
            .metrics
            .as_ref()
            .map(|m| m.count("fake", "success"))
            .unwrap_or(0);
        // Due after ~1 s, then backoff 50..400 ms: a handful, not thousands.
        assert!(fetched <= 10, "{fetched} fetches");
        drop(p);
    }

    #[tokio::test]
    async fn forced_refresh_happens_once_for_many_callers() {
        let registry = Registry::new();
        let ctx = ctx(&registry);
        let (f, _, _, issued) = fake(600_000);
        let p = CredentialProvider::start(Box::new(f), &ctx)
            .await
            .expect("start");
        let seen = p.generation();
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let p = Arc::clone(&p);
                tokio::spawn(async move { p.force_refresh(seen, Duration::from_secs(2)).await })
            })
            .collect();
        for c in calls {
            c.await.expect("join");
        }
        assert_eq!(issued.load(Ordering::SeqCst), 2, "one forced refresh");
        assert_eq!(p.generation(), seen + 1);
        // A stale generation does nothing.
        p.force_refresh(seen, Duration::from_secs(1)).await;
        assert_eq!(issued.load(Ordering::SeqCst), 2);
        // Fixed credentials ignore it.
        let fixed = CredentialProvider::fixed(
            "test",
            Credentials::access_key("id", crate::secret::Secret::new("s")),
        );
        fixed.force_refresh(0, Duration::from_secs(1)).await;
        assert!(fixed.valid(Duration::ZERO).await.is_ok());
    }
}
