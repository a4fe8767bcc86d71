//! The provider: holds the credentials in use, refreshes temporary ones in
//! the background, and makes callers wait rather than sign with expired ones.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::assume_role::AssumeRoleSource;
use super::ecs_metadata::EcsMetadataSource;
use super::oidc::OidcSource;
use super::refresh::{RefreshPolicy, Shared, refresh_loop};
use super::{
    BoxFuture, Context, CredentialSpec, Credentials, CredentialsError, Source, chain, cli_profile,
    ini, now_ms,
};

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
                            CredentialsError::Profile {
                                name: name.clone(),
                                source: Box::new(e),
                            }
                        })?
                    };
                    Self::from_spec(&spec, ctx).await
                }
            }
        })
    }

    /// The set in use now, expired or not (see [`Self::valid`]).
    pub fn current(&self) -> Arc<Credentials> {
        self.shared.current.load_full()
    }

    /// The set in use, once it is valid: when it has expired (or is about
    /// to), waits up to `max_wait` for the refresh it asks for. When the
    /// last fetch failed, or the one waited for does, fails at once: waiting
    /// on a failing source again would hold the caller for nothing (the
    /// refresh task goes on trying, with backoff).
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
            if let Some(why) = self.shared.last_failure() {
                return Err(CredentialsError::RefreshFailing(why));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{Env, RefreshMetrics};
    use prometheus::Registry;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64};

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
                    return Err(CredentialsError::fetch(
                        "fake",
                        super::super::FetchError::Down,
                    ));
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
            matches!(&e, CredentialsError::RefreshFailing(why) if why.to_string().contains("down")),
            "{e}"
        );
        fail.store(false, Ordering::SeqCst);
        // A caller after a failed refresh is told at once, and asks for
        // another: that one brings fresh credentials.
        let deadline = Instant::now() + Duration::from_secs(3);
        let c = loop {
            match p.valid(Duration::from_secs(3)).await {
                Ok(c) => break c,
                Err(e) => assert!(Instant::now() < deadline, "{e}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
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
