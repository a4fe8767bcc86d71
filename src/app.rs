//! Wiring: flags → credentials, client, collector, server. `main` and the
//! end-to-end tests both start the exporter through [`start`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accounts::{AccountSet, BuildOptions};
use crate::client::{ApiMetrics, Client, ClientOptions, Limits};
use crate::clock::Clock;
use crate::collector::{Collector, CollectorOptions, Shard};
use crate::config::Flags;
use crate::credentials::{self as creds, CredentialProvider, Credentials};
use crate::secret::Secret;
use crate::server::web_config::WebConfigSource;
use crate::server::{AppState, HttpMetrics, ReloadFuture, ReloadHook, Server, ServerOptions};
use crate::simulator::{self, FleetConfig, Simulator};

/// A startup failure: one line for the user, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

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
    /// does (`SIGHUP`): what each part did, `Err` when one failed.
    pub async fn reload(&self) -> Result<String, String> {
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
    flags.validate().map_err(StartError)?;
    let shard_index = flags.resolve_shard_index(&env).map_err(StartError)?;
    // Read before anything starts, so a bad file fails fast.
    let web = match &flags.web_config_file {
        Some(path) => Some(
            WebConfigSource::load(path)
                .map_err(|e| StartError(format!("--web.config.file {e}")))?,
        ),
        None => None,
    };
    let registry = crate::metrics::base_registry().map_err(registry_error)?;
    register_shard_info(&registry, flags.shard_count, shard_index).map_err(registry_error)?;
    let http_metrics = HttpMetrics::new(&registry).map_err(registry_error)?;
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
        ..CollectorOptions::default()
    };
    let (collector, demo, reload_hook) = match &flags.config_file {
        Some(path) => {
            let (collector, hook) =
                start_accounts(flags, path, &env, clock, registry, opts).await?;
            (collector, None, Some(hook))
        }
        None => {
            let (collector, demo) = start_single(flags, &env, clock, registry, opts).await?;
            (collector, demo, None)
        }
    };
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
        ready: collector.ready(),
        opts: Arc::clone(&server_opts),
    };
    let server = Server::bind(flags.listen_address, state)
        .await
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", flags.listen_address)))?;
    let addr = server.local_addr().map_err(|e| StartError(e.to_string()))?;
    tracing::info!(address = %addr, path = %flags.telemetry_path, tls = web.as_ref().is_some_and(|w| w.tls()), version = %crate::metrics::long_version(), "serving metrics");
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

fn registry_error(e: prometheus::Error) -> StartError {
    StartError(format!("metrics registry: {e}"))
}

/// One account without a name: the credential chain (or the demo's fleet)
/// and `--aliyun.endpoint`; no series carries `account`.
async fn start_single(
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
    clock: Clock,
    registry: prometheus::Registry,
    opts: CollectorOptions,
) -> Result<(Arc<Collector>, Option<Simulator>), StartError> {
    let api_metrics = ApiMetrics::new(&registry).map_err(registry_error)?;
    let refresh_metrics = creds::RefreshMetrics::new(&registry).map_err(registry_error)?;
    let (credentials, endpoint, demo) = if flags.demo {
        let sim = Simulator::start_with(
            FleetConfig::demo(clock.now()),
            clock.clone(),
            ([127, 0, 0, 1], 0).into(),
        )
        .await
        .map_err(|e| StartError(format!("cannot start the demo simulator: {e}")))?;
        tracing::info!(url = %sim.url(), instances = sim.fleet().instance_count(), "demo mode: serving a simulated fleet");
        let creds = CredentialProvider::fixed(
            "demo",
            Credentials {
                access_key_id: simulator::DEFAULT_KEY_ID.into(),
                access_key_secret: Secret::new(simulator::DEFAULT_KEY_SECRET),
                security_token: None,
                expiration: None,
            },
        );
        (creds, Some(sim.url()), Some(sim))
    } else {
        let ctx = creds::Context::new(
            creds::Env::capture(env),
            creds::ContextOptions {
                sts_endpoint: flags.sts_endpoint.clone(),
                metadata_endpoint: flags.metadata_endpoint.clone(),
                timeout: flags.request_timeout,
                metrics: Some(refresh_metrics),
                ..Default::default()
            },
        )
        .map_err(|e| StartError(e.to_string()))?;
        let creds = CredentialProvider::default_chain(&ctx, flags.role_arn.as_deref())
            .await
            .map_err(|e| StartError(e.to_string()))?;
        tracing::info!(source = creds.source(), via = %creds.describe(), "credentials found");
        (creds, flags.endpoint.clone(), None)
    };
    let client = Client::new(
        credentials,
        ClientOptions {
            endpoint_template: endpoint,
            timeout: flags.request_timeout,
            max_concurrency: flags.max_concurrency as usize,
            rate_limit: flags.rate_limit,
            ..ClientOptions::default()
        },
        api_metrics,
    )
    .map_err(StartError)?;
    let collector = Collector::new(Arc::new(client), opts, clock, registry)
        .map_err(|e| StartError(format!("cannot render the first page: {e}")))?;
    Ok((Arc::new(collector), demo))
}

/// The accounts of `--config.file`, each with its own credentials and
/// client under the limits they share; every series carries `account`.
async fn start_accounts(
    flags: &Flags,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    clock: Clock,
    registry: prometheus::Registry,
    opts: CollectorOptions,
) -> Result<(Arc<Collector>, ReloadHook), StartError> {
    let set = Arc::new(AccountSet::new(BuildOptions {
        path: path.to_path_buf(),
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
        env: creds::Env::capture(env),
        credentials: creds::ContextOptions {
            sts_endpoint: flags.sts_endpoint.clone(),
            metadata_endpoint: flags.metadata_endpoint.clone(),
            timeout: flags.request_timeout,
            ..Default::default()
        },
        registry: registry.clone(),
    }));
    let accounts = set.load().await.map_err(StartError)?;
    let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
    tracing::info!(file = %path.display(), accounts = %names.join(","), "accounts loaded");
    let reloads = ReloadMetrics::new(&registry).map_err(registry_error)?;
    reloads.record(true, clock.now());
    let collector = Arc::new(
        Collector::with_accounts(accounts, opts, clock.clone(), registry)
            .map_err(|e| StartError(format!("cannot render the first page: {e}")))?,
    );
    let reloader = Arc::new(Reloader {
        set,
        collector: Arc::clone(&collector),
        metrics: reloads,
        clock,
    });
    let hook = ReloadHook(Arc::new(move || -> ReloadFuture {
        let r = Arc::clone(&reloader);
        Box::pin(async move { r.reload().await })
    }));
    Ok((collector, hook))
}

/// `config_last_reload_successful` and `config_last_reload_success_timestamp_seconds`.
struct ReloadMetrics {
    successful: prometheus::IntGauge,
    success_time: prometheus::Gauge,
}

impl ReloadMetrics {
    fn new(registry: &prometheus::Registry) -> prometheus::Result<Self> {
        let successful = prometheus::IntGauge::new(
            "aliyun_cloud_assistant_exporter_config_last_reload_successful",
            "Whether the last load of --config.file succeeded (1) or failed (0).",
        )?;
        let success_time = prometheus::Gauge::new(
            "aliyun_cloud_assistant_exporter_config_last_reload_success_timestamp_seconds",
            "When --config.file was last loaded successfully, Unix seconds.",
        )?;
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

/// Re-reads `--config.file` (`SIGHUP`, `POST /-/reload`).
struct Reloader {
    set: Arc<AccountSet>,
    collector: Arc<Collector>,
    metrics: ReloadMetrics,
    clock: Clock,
}

impl Reloader {
    async fn reload(&self) -> Result<(), String> {
        let file = self.set.path().display().to_string();
        match self.set.load().await {
            Ok(accounts) => {
                let names: Vec<String> = accounts.iter().map(|a| a.name.clone()).collect();
                self.collector.set_accounts(accounts);
                self.metrics.record(true, self.clock.now());
                tracing::info!(file = %file, accounts = %names.join(","), "accounts reloaded; the next cycle walks them");
                Ok(())
            }
            Err(e) => {
                self.metrics.record(false, 0);
                tracing::error!(file = %file, error = %e, "accounts not reloaded; the running ones stay");
                Err(e)
            }
        }
    }
}

/// `aliyun_cloud_assistant_exporter_shard_info{index,count}` 1, on every
/// replica, so dashboards can tell the shards apart and check none is missing.
fn register_shard_info(
    registry: &prometheus::Registry,
    count: u64,
    index: u64,
) -> prometheus::Result<()> {
    let info = prometheus::IntGaugeVec::new(
        prometheus::Opts::new(
            "aliyun_cloud_assistant_exporter_shard_info",
            "The shard this replica collects (index) out of count; always 1.",
        ),
        &["index", "count"],
    )?;
    info.with_label_values(&[index.to_string(), count.to_string()])
        .set(1);
    registry.register(Box::new(info))
}
