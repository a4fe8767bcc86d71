//! The accounts the exporter walks, live: each with its credential provider
//! and client, under the limits all accounts share.
//!
//! Every mode is a list of accounts. Without `--config.file` the flags make
//! one unnamed account (the credential chain, `--aliyun.role-arn`,
//! `--aliyun.endpoint`); `--demo` is one account pointed at the in-process
//! simulator; `--config.file` names several. [`AccountSet`] builds them at
//! start and again at every reload, keeping an account's client when its
//! entry did not change. An empty name means series carry no `account`.
//!
//! An account whose credentials cannot be had is down, never fatal: it is
//! left out of the walk (`account_up` 0, one log line), tried again with
//! backoff, and joins the walk by itself when its credentials come.

mod spec;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus::{IntGauge, Registry};

use crate::client::{ApiMetrics, Client, ClientOptions};
use crate::config::accounts_file::{self, AccountConfig, ConfigError, CredentialConfig};
use crate::credentials::{
    self as creds, CredentialProvider, CredentialSpec, CredentialsError, RefreshMetrics,
};
use crate::secret::Secret;
pub use spec::{SpecError, credential_spec, pinned};

/// One account the collector walks.
#[derive(Clone, Debug)]
pub struct Account {
    /// The `account` label value; empty without `--config.file`.
    pub name: String,
    pub client: Arc<Client>,
    /// Regions to walk; empty = the collector's default (`--aliyun.regions`,
    /// else all that DescribeRegions returns).
    pub regions: Vec<String>,
}

/// Where the list of accounts comes from.
#[derive(Clone, Debug)]
pub enum AccountsSource {
    /// Fixed at start: the flags' one account.
    Fixed(Vec<AccountConfig>),
    /// `--demo`: one unnamed account at the simulator's URL, signing with
    /// its throwaway keys. The keys are held in memory and are no credential
    /// type of the accounts file.
    Demo {
        endpoint: String,
        access_key_id: String,
        access_key_secret: Secret,
    },
    /// `--config.file`, read at start and at every reload.
    File(PathBuf),
}

/// Why the accounts could not be (re)built at all. The running ones stay.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The flags' account has no credential source, or one set up wrongly
    /// (a key id without its secret): nothing a retry can mend, so the
    /// exporter does not start.
    #[error("{0}")]
    NoCredentials(CredentialsError),
    #[error("{0}")]
    Metrics(#[from] prometheus::Error),
}

/// What a load did: the accounts up now, and those down.
#[derive(Debug, Default)]
pub struct Loaded {
    pub accounts: Vec<Account>,
    pub down: Vec<DownAccount>,
}

/// An account of a load that is not built (yet), and why.
#[derive(Debug)]
pub struct DownAccount {
    pub name: String,
    pub why: AccountFailure,
}

/// The accounts that could not be built, for a reload's answer.
pub fn describe_down(down: &[DownAccount]) -> String {
    down.iter()
        .map(|d| format!("account {:?}: {}", d.name, d.why))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What every account is built with; fixed at start.
pub struct BuildOptions {
    pub source: AccountsSource,
    /// `--aliyun.endpoint`, for accounts without an endpoint of their own.
    pub default_endpoint: Option<String>,
    /// Client settings of every account; `limits` shared by all of them.
    pub client: ClientOptions,
    /// The environment the credential sources read (captured at start).
    pub env: creds::Env,
    /// STS and metadata endpoints, timeout and refresh policy; the refresh
    /// metric is each account's own.
    pub credentials: creds::ContextOptions,
    pub registry: Registry,
    /// First wait before a down account is tried again; doubles up to
    /// `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// At start, how long the accounts of a file wait for one another's
    /// credentials: an account whose credentials have not come by then is
    /// down, and joins the walk when they do.
    pub start_wait: Duration,
}

/// An account in use, with what it was built from.
#[derive(Clone)]
struct Live {
    config: AccountConfig,
    spec: CredentialSpec,
    account: Account,
    /// What its credentials read outside the accounts file (see
    /// [`creds::Env::inputs_fingerprint`]) when they were built.
    inputs: u64,
}

/// An account whose credentials could not be had, tried again in the
/// background until they come.
struct Down {
    config: AccountConfig,
    retry: tokio::task::JoinHandle<()>,
    /// The first fetch of its credentials, still running at start.
    first: Option<tokio::task::AbortHandle>,
}

impl Drop for Down {
    fn drop(&mut self) {
        self.retry.abort();
        if let Some(f) = &self.first {
            f.abort();
        }
    }
}

/// One account's build: done, or (at start) still waiting for its
/// credentials.
type BuildTask = tokio::task::JoinHandle<Result<Live, AccountFailure>>;

enum Slot {
    Up(Live),
    Down(Down),
}

impl Slot {
    fn name(&self) -> &str {
        match self {
            Slot::Up(l) => &l.config.name,
            Slot::Down(d) => &d.config.name,
        }
    }
}

/// The per-account series, kept while the account exists so a reload goes
/// on counting where it was.
#[derive(Clone)]
struct AccountMetrics {
    api: ApiMetrics,
    refresh: RefreshMetrics,
    up: IntGauge,
}

/// Called with the accounts up whenever that set changes outside a load (a
/// down account came up).
pub type OnChange = Box<dyn Fn(Vec<Account>) + Send + Sync>;

/// The accounts in use, built at start and at every reload.
pub struct AccountSet {
    opts: BuildOptions,
    /// Also keeps two loads from running at once.
    slots: tokio::sync::Mutex<Vec<Slot>>,
    metrics: Mutex<HashMap<String, AccountMetrics>>,
    on_change: OnceLock<OnChange>,
    /// The first load has begun (later ones are reloads).
    started: AtomicBool,
    /// Accounts in the last file read: each client's share of the slots.
    count: std::sync::atomic::AtomicUsize,
}

/// Why one account could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AccountFailure {
    /// At start, its credentials did not come in time; they are still
    /// being fetched.
    #[error("no credentials within {0:?}; still trying")]
    Waiting(Duration),
    #[error("credentials: {0}")]
    Credentials(CredentialsError),
    #[error(transparent)]
    Secret(#[from] SpecError),
    #[error("metrics registry: {0}")]
    Metrics(prometheus::Error),
    #[error(transparent)]
    Client(#[from] crate::client::ClientBuildError),
    /// The build task panicked or was cancelled.
    #[error("build: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl AccountSet {
    pub fn new(opts: BuildOptions) -> Arc<Self> {
        Arc::new(AccountSet {
            opts,
            slots: tokio::sync::Mutex::new(Vec::new()),
            metrics: Mutex::new(HashMap::new()),
            on_change: OnceLock::new(),
            started: AtomicBool::new(false),
            count: std::sync::atomic::AtomicUsize::new(1),
        })
    }

    /// Where to say that a down account came up (the collector).
    pub fn on_change(&self, f: OnChange) {
        let _ = self.on_change.set(f);
    }

    /// The file accounts are read from (`None`: fixed at start).
    pub fn file(&self) -> Option<&std::path::Path> {
        match &self.opts.source {
            AccountsSource::File(p) => Some(p),
            AccountsSource::Fixed(_) | AccountsSource::Demo { .. } => None,
        }
    }

    /// The credential source of `config`: the entry's, or the demo's keys.
    fn spec_for(&self, config: &AccountConfig) -> Result<CredentialSpec, SpecError> {
        match &self.opts.source {
            AccountsSource::Demo {
                access_key_id,
                access_key_secret,
                ..
            } => Ok(CredentialSpec::AccessKey {
                origin: "demo",
                access_key_id: access_key_id.clone(),
                access_key_secret: access_key_secret.clone(),
                security_token: None,
            }),
            _ => credential_spec(&config.credentials),
        }
    }

    fn configs(&self) -> Result<Vec<AccountConfig>, AccountsError> {
        match &self.opts.source {
            AccountsSource::Fixed(list) => Ok(list.clone()),
            AccountsSource::Demo { endpoint, .. } => Ok(vec![AccountConfig {
                name: String::new(),
                endpoint: Some(endpoint.clone()),
                regions: Vec::new(),
                // Not read: `spec_for` hands out the demo's keys.
                credentials: CredentialConfig::Chain,
            }]),
            AccountsSource::File(path) => Ok(accounts_file::load(path)?.accounts),
        }
    }

    /// Builds the accounts (credentials fetched, a client each), at start and
    /// at every reload. A file that does not parse keeps everything running
    /// (`Err`). Otherwise every good entry is applied; an entry whose
    /// credentials cannot be had keeps its running account if it has one,
    /// else it is down and tried again in the background; both are reported
    /// in [`Loaded::down`].
    pub async fn load(self: &Arc<Self>) -> Result<Loaded, AccountsError> {
        let configs = self.configs()?;
        let mut slots = self.slots.lock().await;
        self.count.store(configs.len().max(1), Ordering::SeqCst);
        // At start, a file's accounts wait only so long for each other; a
        // reload waits for all, to report the bad ones.
        let first = !self.started.swap(true, Ordering::SeqCst);
        let deadline = matches!(self.opts.source, AccountsSource::File(_))
            .then(|| tokio::time::Instant::now() + self.opts.start_wait)
            .filter(|_| first);
        // Credentials of all accounts are fetched at once.
        let mut tasks = Vec::with_capacity(configs.len());
        for config in configs {
            let running = slots.iter().find_map(|s| match s {
                Slot::Up(l) if l.config.name == config.name => Some(l.clone()),
                _ => None,
            });
            let (me, c, r) = (Arc::clone(self), config.clone(), running.clone());
            let task: BuildTask = tokio::spawn(async move { me.build_one(&c, r.as_ref()).await });
            tasks.push((config, running, task));
        }
        let mut built = Vec::with_capacity(tasks.len());
        for (config, running, mut task) in tasks {
            let done = match deadline {
                None => Some((&mut task).await),
                Some(d) => tokio::time::timeout_at(d, &mut task).await.ok(),
            };
            let result = match done {
                Some(r) => Ok(r.unwrap_or_else(|e| Err(AccountFailure::Task(e)))),
                None => Err(task),
            };
            built.push((config, running, result));
        }
        let mut loaded = Loaded::default();
        let mut next = Vec::with_capacity(built.len());
        for (config, running, result) in built {
            let result = match result {
                Ok(r) => r,
                Err(still_fetching) => {
                    // Logged when the fetch ends: with its reason if it fails.
                    tracing::debug!(account = %config.name, waited = ?self.opts.start_wait, "starting without the account: its credentials have not come yet");
                    loaded.down.push(DownAccount {
                        name: config.name.clone(),
                        why: AccountFailure::Waiting(self.opts.start_wait),
                    });
                    self.set_up(&config.name, false);
                    next.push(Slot::Down(self.retry_later(config, Some(still_fetching))));
                    continue;
                }
            };
            match result {
                Ok(live) => {
                    self.set_up(&live.config.name, true);
                    loaded.accounts.push(live.account.clone());
                    next.push(Slot::Up(live));
                }
                Err(AccountFailure::Credentials(e))
                    if matches!(
                        self.opts.source,
                        AccountsSource::Fixed(_) | AccountsSource::Demo { .. }
                    ) && e.is_config() =>
                {
                    return Err(AccountsError::NoCredentials(e));
                }
                Err(why) => {
                    let name = config.name.clone();
                    match running {
                        Some(live) => {
                            tracing::error!(account = %name, error = %why, "account not rebuilt; the running one stays");
                            loaded.accounts.push(live.account.clone());
                            next.push(Slot::Up(live));
                        }
                        None => {
                            tracing::error!(account = %name, error = %why, "account down: its credentials cannot be had; trying again in the background");
                            self.set_up(&name, false);
                            next.push(Slot::Down(self.retry_later(config, None)));
                        }
                    }
                    loaded.down.push(DownAccount { name, why });
                }
            }
        }
        *slots = next;
        let keep: Vec<String> = slots.iter().map(|s| s.name().to_string()).collect();
        self.prune_metrics(&keep);
        Ok(loaded)
    }

    /// One account's share of `--aliyun.max-concurrency` when there are
    /// several: max(1, N / accounts), so one whose endpoint never answers
    /// leaves the others their slots.
    fn share(&self) -> Option<usize> {
        let n = self.count.load(Ordering::SeqCst);
        (n > 1).then(|| (self.opts.client.max_concurrency / n).max(1))
    }

    /// Builds one account, or keeps `running` when its entry did not change
    /// and its credentials do not depend on files outside the entry.
    async fn build_one(
        &self,
        config: &AccountConfig,
        running: Option<&Live>,
    ) -> Result<Live, AccountFailure> {
        let name = config.name.clone();
        let spec = self.spec_for(config)?;
        let inputs = self.opts.env.inputs_fingerprint();
        if let Some(old) = running.filter(|l| {
            l.config.endpoint == config.endpoint
                && l.config.credentials == config.credentials
                && l.spec == spec
                && (pinned(&spec) || l.inputs == inputs)
        }) {
            tracing::debug!(account = %name, "account unchanged; keeping its client and credentials");
            return Ok(Live {
                account: Account {
                    regions: config.regions.clone(),
                    ..old.account.clone()
                },
                config: config.clone(),
                spec,
                inputs,
            });
        }
        let m = self.metrics_for(&name).map_err(AccountFailure::Metrics)?;
        let ctx = creds::Context::new(
            self.opts.env.clone(),
            creds::ContextOptions {
                metrics: Some(m.refresh.clone()),
                ..self.opts.credentials.clone()
            },
        )
        .map_err(AccountFailure::Credentials)?;
        let provider = CredentialProvider::from_spec(&spec, &ctx)
            .await
            .map_err(AccountFailure::Credentials)?;
        tracing::info!(account = %name, source = provider.source(), via = %provider.describe(), "credentials found");
        let endpoint = config
            .endpoint
            .clone()
            .or_else(|| self.opts.default_endpoint.clone());
        let client = Client::new(
            provider,
            ClientOptions {
                endpoint_template: endpoint,
                share: self.share(),
                ..self.opts.client.clone()
            },
            m.api,
        )?;
        client.report_account_up(m.up.clone());
        Ok(Live {
            account: Account {
                name,
                client: Arc::new(client),
                regions: config.regions.clone(),
            },
            config: config.clone(),
            spec,
            inputs,
        })
    }

    /// A down account, tried again with backoff until it comes up; then it
    /// joins the walk (through `on_change`). `first`: its first build, still
    /// waiting for credentials; the account is logged down if it fails.
    fn retry_later(self: &Arc<Self>, config: AccountConfig, first: Option<BuildTask>) -> Down {
        let me = Arc::downgrade(self);
        let c = config.clone();
        let (base, cap) = (self.opts.retry_base, self.opts.retry_cap);
        let first_abort = first.as_ref().map(|t| t.abort_handle());
        let retry = tokio::spawn(async move {
            let mut wait = base;
            let mut first = first;
            // One line says the account is down; the retries are debug.
            let mut told = first.is_none();
            loop {
                let attempt = match first.take() {
                    Some(task) => task.await.unwrap_or_else(|e| Err(AccountFailure::Task(e))),
                    None => {
                        // Jittered (half to the whole wait), so accounts
                        // that went down together do not retry in step.
                        let jitter = 0.5 + 0.5 * crate::rng::Rng::from_time().unit();
                        tokio::time::sleep(wait.mul_f64(jitter)).await;
                        wait = (wait * 2).min(cap);
                        let Some(set) = me.upgrade() else { return };
                        set.build_one(&c, None).await
                    }
                };
                let Some(set) = me.upgrade() else { return };
                let live = match attempt {
                    Ok(live) => live,
                    Err(why) if !told => {
                        told = true;
                        tracing::error!(account = %c.name, error = %why, "account down: its credentials cannot be had; trying again in the background");
                        continue;
                    }
                    Err(why) => {
                        tracing::debug!(account = %c.name, error = %why, retry_in = ?wait, "account still down");
                        continue;
                    }
                };
                let mut slots = set.slots.lock().await;
                // A reload may have replaced the entry meanwhile.
                let Some(i) = slots
                    .iter()
                    .position(|s| matches!(s, Slot::Down(d) if d.config == c))
                else {
                    return;
                };
                tracing::info!(account = %c.name, "account up: its credentials came");
                set.set_up(&c.name, true);
                let accounts = slots
                    .iter()
                    .filter_map(|s| match s {
                        Slot::Up(l) => Some(l.account.clone()),
                        Slot::Down(_) => None,
                    })
                    .chain(std::iter::once(live.account.clone()))
                    .collect();
                if let Some(f) = set.on_change.get() {
                    f(accounts);
                }
                // Replacing the slot drops the Down, which aborts this task:
                // nothing after this point awaits.
                slots[i] = Slot::Up(live);
                return;
            }
        });
        Down {
            config,
            retry,
            first: first_abort,
        }
    }

    fn set_up(&self, name: &str, up: bool) {
        if let Ok(m) = self.metrics_for(name) {
            m.up.set(i64::from(up));
        }
    }

    /// The per-account series: without an `account` label for the unnamed
    /// account.
    fn metrics_for(&self, name: &str) -> prometheus::Result<AccountMetrics> {
        let mut cache = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.get(name) {
            return Ok(m.clone());
        }
        let registry = &self.opts.registry;
        let label = (!name.is_empty()).then_some(name);
        let api = ApiMetrics::for_account(registry, label)?;
        let opts = crate::own_metrics::ACCOUNT_UP.opts_for(label);
        let registered = RefreshMetrics::for_account(registry, label).and_then(|refresh| {
            let up = IntGauge::with_opts(opts)?;
            match registry.register(Box::new(up.clone())) {
                Ok(()) => Ok((refresh, up)),
                Err(e) => {
                    refresh.unregister(registry);
                    Err(e)
                }
            }
        });
        let (refresh, up) = match registered {
            Ok(r) => r,
            Err(e) => {
                api.unregister(registry);
                return Err(e);
            }
        };
        let m = AccountMetrics { api, refresh, up };
        cache.insert(name.to_string(), m.clone());
        Ok(m)
    }

    /// Takes the series of accounts no longer in the file off the page.
    fn prune_metrics(&self, keep: &[String]) {
        let mut cache = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        let registry = &self.opts.registry;
        cache.retain(|name, m| {
            let kept = keep.contains(name);
            if !kept {
                m.api.unregister(registry);
                m.refresh.unregister(registry);
                let _ = registry.unregister(Box::new(m.up.clone()));
            }
            kept
        });
    }
}
