//! Wiring: flags → accounts, collector, server; one path for every mode. `main` and the
//! end-to-end tests both start the exporter through [`start`].

use std::net::SocketAddr;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accounts::{AccountSet, AccountsError, AccountsSource, BuildOptions};
use crate::client::{ClientOptions, Limits};
use crate::clock::Clock;
use crate::collector::{Collector, CollectorOptions, Shard};
use crate::config::accounts_file::{AccountConfig, CredentialConfig};
use crate::config::{Flags, FlagsError};
use crate::credentials::{self as creds, RoleSpec};
use crate::secret::Secret;
use crate::server::web_config::{WebConfigError, WebConfigSource};
use crate::server::{
    AppState, HttpMetrics, ReloadFuture, ReloadHook, ReloadPart, ReloadReport, Server,
    ServerOptions,
};
use crate::simulator::{self, FleetConfig, Simulator};

/// At start, how long the accounts of `--config.file` wait for one
/// another's credentials (an STS call may take the whole request timeout):
/// a healthy source answers well within it, and a slow one's account joins
/// when its credentials come.
const ACCOUNTS_START_WAIT: Duration = Duration::from_secs(3);

/// Why the exporter did not start: `main` prints it as one line and exits 2.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Flags(#[from] FlagsError),
    #[error("--web.config.file {0}")]
    WebConfig(WebConfigError),
    #[error("metrics registry: {0}")]
    Registry(#[from] prometheus::Error),
    #[error("cannot start the demo simulator: {0}")]
    Demo(std::io::Error),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error("cannot render the first page: {0}")]
    Render(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Where a change of the accounts (a down one came up) goes: kept until the
/// collector exists, then to it.
enum ChangeTarget {
    Pending(Option<Vec<crate::accounts::Account>>),
    Collector(std::sync::Weak<Collector>),
}

/// A running exporter. `shutdown` stops it gracefully.
pub struct Running {
    pub addr: SocketAddr,
    pub collector: Arc<Collector>,
    /// The in-process simulator of `--demo`.
    pub demo: Option<Simulator>,
    /// What `reload` re-reads.
    server_opts: Arc<ServerOptions>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Re-reads `--web.config.file` and `--config.file`, as `POST /-/reload`
    /// does (`SIGHUP`): what each part did.
    pub async fn reload(&self) -> ReloadReport {
        crate::server::reload(&self.server_opts).await
    }

    /// What a reload needs, for a task of its own (`SIGHUP`).
    pub fn server_options(&self) -> Arc<ServerOptions> {
        Arc::clone(&self.server_opts)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the exporter. `env` reads environment variables (tests pass their own).
pub async fn start(
    flags: &Flags,
    env: impl Fn(&str) -> Option<String>,
    clock: Clock,
) -> Result<Running, StartError> {
    flags.validate()?;
    let shard_index = flags.resolve_shard_index(&env)?;
    // Read before anything starts, so a bad file fails fast.
    let web = match &flags.web_config_file {
        Some(path) => Some(WebConfigSource::load(path).map_err(StartError::WebConfig)?),
        None => None,
    };
    let registry = crate::own_metrics::base_registry()?;
    register_shard_info(&registry, flags.shard_count, shard_index)?;
    let http_metrics = HttpMetrics::new(&registry)?;
    let opts = CollectorOptions {
        regions: flags.regions.clone(),
        plugins: flags.plugins.clone(),
        interval: flags.interval,
        discovery_interval: flags.plugin_discovery_interval,
        region_timeout: flags.region_timeout,
        shard: Shard {
            count: flags.shard_count,
            index: shard_index,
        },
        state_sets: flags.state_sets.into(),
        max_stale: flags.max_stale,
        max_plugin_names: usize::from(flags.max_plugin_names),
        instance_info_interval: flags.instance_info_interval,
        tags: flags.tags.clone(),
        managed_instances: flags.managed_instances,
        invocations_interval: flags.invocations_interval,
        invocations_max_pages: usize::from(flags.invocations_max_pages),
        max_command_names: usize::from(flags.max_command_names),
        ..CollectorOptions::default()
    };
    let demo = match flags.demo {
        true => Some(start_demo(&clock).await?),
        false => None,
    };
    let set = AccountSet::new(BuildOptions {
        source: accounts_source(flags, demo.as_ref()),
        default_endpoint: flags.endpoint.clone(),
        client: ClientOptions {
            timeout: flags.request_timeout,
            max_concurrency: flags.max_concurrency as usize,
            rate_limit: flags.rate_limit,
            limits: Some(Limits::new(
                flags.max_concurrency as usize,
                flags.rate_limit,
            )),
            ..ClientOptions::default()
        },
        env: creds::Env::capture(&env),
        credentials: creds::ContextOptions {
            sts_endpoint: flags.sts_endpoint.clone(),
            metadata_endpoint: flags.metadata_endpoint.clone(),
            timeout: flags.request_timeout,
            ..Default::default()
        },
        registry: registry.clone(),
        retry_base: Duration::from_secs(1),
        retry_cap: Duration::from_secs(300),
        start_wait: ACCOUNTS_START_WAIT,
    });
    // Told about a down account that comes up from the very start: one
    // whose credentials arrive between the load and the collector's birth
    // is handed over as soon as the collector exists.
    let change: Arc<std::sync::Mutex<ChangeTarget>> =
        Arc::new(std::sync::Mutex::new(ChangeTarget::Pending(None)));
    let target = Arc::clone(&change);
    set.on_change(Box::new(move |accounts| {
        let mut t = target.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *t {
            ChangeTarget::Pending(p) => *p = Some(accounts),
            ChangeTarget::Collector(w) => {
                if let Some(c) = w.upgrade() {
                    c.set_accounts(accounts);
                }
            }
        }
    }));
    let loaded = set.load().await?;
    let names: Vec<&str> = loaded.accounts.iter().map(|a| a.name.as_str()).collect();
    tracing::info!(accounts = %names.join(","), down = loaded.down.len(), file = ?set.file(), "accounts loaded");
    let accounts = loaded.accounts;
    // Only a file can fail to reload: the metrics exist with one.
    let reloads = match set.file() {
        Some(_) => Some(ReloadMetrics::new(&registry)?),
        None => None,
    };
    if let Some(m) = &reloads {
        m.record(true, clock.now());
    }
    let collector = Arc::new(
        Collector::new(accounts, opts, clock.clone(), registry.clone())
            .map_err(StartError::Render)?,
    );
    // A down account that comes up joins the walk at once.
    {
        let mut t = change.lock().unwrap_or_else(|e| e.into_inner());
        if let ChangeTarget::Pending(Some(accounts)) = &mut *t {
            collector.set_accounts(std::mem::take(accounts));
        }
        *t = ChangeTarget::Collector(Arc::downgrade(&collector));
    }
    let reloader = Arc::new(Reloader {
        web: web.clone(),
        set: Arc::clone(&set),
        collector: Arc::clone(&collector),
        metrics: reloads,
        clock,
    });
    let reload_hook = Some(ReloadHook(Arc::new(move || -> ReloadFuture {
        let r = Arc::clone(&reloader);
        Box::pin(async move { r.reload().await })
    })));
    let server_opts = Arc::new(ServerOptions {
        telemetry_path: flags.telemetry_path.clone(),
        web: web.clone(),
        reload_hook,
        max_requests: flags.max_requests,
        enable_lifecycle: flags.enable_lifecycle,
        metrics: http_metrics,
        ..ServerOptions::default()
    });
    let state = AppState {
        page: collector.page(),
        registry,
        ready: collector.ready(),
        opts: Arc::clone(&server_opts),
    };
    let server = Server::bind(flags.listen_address, state)
        .await
        .map_err(|source| StartError::Listen {
            addr: flags.listen_address,
            source,
        })?;
    let addr = server.local_addr().map_err(|source| StartError::Listen {
        addr: flags.listen_address,
        source,
    })?;
    tracing::info!(address = %addr, path = %flags.telemetry_path, tls = web.as_ref().is_some_and(|w| w.tls()), version = %crate::own_metrics::long_version(), "serving metrics");
    let (stop, rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(server.run(rx.clone())),
        tokio::spawn(Arc::clone(&collector).run(rx)),
    ];
    Ok(Running {
        addr,
        collector,
        demo,
        server_opts,
        stop,
        tasks,
    })
}

/// The in-process simulator of `--demo`, on a loopback port.
async fn start_demo(clock: &Clock) -> Result<Simulator, StartError> {
    let sim = Simulator::start_with(
        FleetConfig::demo(clock.now()),
        clock.clone(),
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .map_err(StartError::Demo)?;
    tracing::info!(url = %sim.url(), instances = sim.fleet().instance_count(), "demo mode: serving a simulated fleet");
    Ok(sim)
}

/// The accounts to walk: the file's, else one unnamed account made of the
/// flags (or pointed at the demo's simulator with its throwaway keys).
fn accounts_source(flags: &Flags, demo: Option<&Simulator>) -> AccountsSource {
    if let Some(path) = &flags.config_file {
        return AccountsSource::File(path.clone());
    }
    if let Some(sim) = demo {
        return AccountsSource::Demo {
            endpoint: sim.url(),
            access_key_id: simulator::DEFAULT_KEY_ID.into(),
            access_key_secret: Secret::new(simulator::DEFAULT_KEY_SECRET),
        };
    }
    let credentials = match &flags.role_arn {
        Some(arn) => CredentialConfig::RamRoleArn {
            role: RoleSpec::new(arn),
            source: Box::new(CredentialConfig::Chain),
        },
        None => CredentialConfig::Chain,
    };
    AccountsSource::Fixed(vec![AccountConfig {
        name: String::new(),
        endpoint: flags.endpoint.clone(),
        regions: Vec::new(),
        credentials,
    }])
}

/// `config_last_reload_successful` and `config_last_reload_success_timestamp_seconds`.
struct ReloadMetrics {
    successful: prometheus::IntGauge,
    success_time: prometheus::Gauge,
}

impl ReloadMetrics {
    fn new(registry: &prometheus::Registry) -> prometheus::Result<Self> {
        use crate::own_metrics as own;
        let successful =
            prometheus::IntGauge::with_opts(own::CONFIG_LAST_RELOAD_SUCCESSFUL.opts())?;
        let success_time =
            prometheus::Gauge::with_opts(own::CONFIG_LAST_RELOAD_SUCCESS_TIME.opts())?;
        registry.register(Box::new(successful.clone()))?;
        registry.register(Box::new(success_time.clone()))?;
        Ok(ReloadMetrics {
            successful,
            success_time,
        })
    }

    fn record(&self, ok: bool, now: i64) {
        self.successful.set(i64::from(ok));
        if ok {
            self.success_time.set(now as f64);
        }
    }
}

/// Re-reads the configuration files (`SIGHUP`, `POST /-/reload`).
struct Reloader {
    web: Option<Arc<WebConfigSource>>,
    set: Arc<AccountSet>,
    collector: Arc<Collector>,
    metrics: Option<ReloadMetrics>,
    clock: Clock,
}

impl Reloader {
    /// Re-reads the web config and the accounts file, each even when the
    /// other fails (what fails keeps its last good version). Only a file
    /// can change: without one, that part is left out.
    async fn reload(&self) -> ReloadReport {
        let mut report = ReloadReport::default();
        if let Some(web) = &self.web {
            report.part(ReloadPart::WebConfig, web.reload());
        }
        if self.set.file().is_some() {
            report.part(ReloadPart::Accounts, self.reload_accounts().await);
        }
        report
    }

    /// Applies every good entry of the file; the accounts that could not be
    /// built are named in the error (each keeps its running account, or is
    /// down and tried again).
    async fn reload_accounts(&self) -> Result<(), ReloadError> {
        match self.set.load().await {
            Ok(loaded) => {
                let names: Vec<String> = loaded.accounts.iter().map(|a| a.name.clone()).collect();
                self.collector.set_accounts(loaded.accounts.clone());
                let ok = loaded.down.is_empty();
                if let Some(m) = &self.metrics {
                    m.record(ok, self.clock.now());
                }
                tracing::info!(file = ?self.set.file(), accounts = %names.join(","), down = loaded.down.len(), "accounts reloaded; new ones walk at once");
                match ok {
                    true => Ok(()),
                    false => Err(ReloadError::AccountsDown(loaded.down)),
                }
            }
            Err(e) => {
                if let Some(m) = &self.metrics {
                    m.record(false, 0);
                }
                tracing::error!(file = ?self.set.file(), error = %e, "accounts not reloaded; the running ones stay");
                Err(ReloadError::File(e))
            }
        }
    }
}

/// Why a reload of `--config.file` did not fully apply.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    File(AccountsError),
    #[error("the other accounts are applied; not built: {}", crate::accounts::describe_down(.0))]
    AccountsDown(Vec<crate::accounts::DownAccount>),
}

/// `shard_info{index,count}` 1 (see `own_metrics`), on every
/// replica, so dashboards can tell the shards apart and check none is missing.
fn register_shard_info(
    registry: &prometheus::Registry,
    count: u64,
    index: u64,
) -> prometheus::Result<()> {
    let info =
        prometheus::IntGaugeVec::new(crate::own_metrics::SHARD_INFO.opts(), &["index", "count"])?;
    info.with_label_values(&[index.to_string(), count.to_string()])
        .set(1);
    registry.register(Box::new(info))
}
