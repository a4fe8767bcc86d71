//! Wiring: flags → credentials, client, collector, server. `main` and the
//! end-to-end tests both start the exporter through [`start`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{Client, ClientOptions};
use crate::clock::Clock;
use crate::collector::{Collector, CollectorOptions, Shard};
use crate::config::Flags;
use crate::credentials::{self as creds, CredentialProvider, Credentials};
use crate::secret::Secret;
use crate::server::web_config::WebConfigSource;
use crate::server::{AppState, Server, ServerOptions};
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
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
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
    let (registry, api_metrics) =
        crate::metrics::new_registry().map_err(|e| StartError(format!("metrics registry: {e}")))?;
    register_shard_info(&registry, flags.shard_count, shard_index)
        .map_err(|e| StartError(format!("metrics registry: {e}")))?;
    let refresh_metrics = creds::RefreshMetrics::new(&registry)
        .map_err(|e| StartError(format!("metrics registry: {e}")))?;
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
            creds::Env::capture(&env),
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
    let collector = Arc::new(
        Collector::new(
            Arc::new(client),
            CollectorOptions {
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
            },
            clock,
            registry,
        )
        .map_err(|e| StartError(format!("cannot render the first page: {e}")))?,
    );
    let state = AppState {
        page: collector.page(),
        ready: collector.ready(),
        opts: Arc::new(ServerOptions {
            telemetry_path: flags.telemetry_path.clone(),
            web: web.clone(),
            ..ServerOptions::default()
        }),
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
        stop,
        tasks,
    })
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
