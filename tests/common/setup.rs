//! In-process set-up against the simulator: fleets, clients, collectors,
//! the whole exporter, the HTTP server alone, and simulated accounts with
//! their accounts file.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use cloud_assistant_exporter::accounts::Account;
use cloud_assistant_exporter::api;
use cloud_assistant_exporter::app::{self, Running, StartError};
use cloud_assistant_exporter::client::{ApiMetrics, Client, ClientOptions, RetryPolicy};
use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::collector::{Collector, CollectorOptions};
use cloud_assistant_exporter::config::Flags;
use cloud_assistant_exporter::credentials::{CredentialProvider, Credentials};
use cloud_assistant_exporter::render::Page;
use cloud_assistant_exporter::secret::Secret;
use cloud_assistant_exporter::server::{AppState, Server, ServerOptions};
use cloud_assistant_exporter::simulator::{
    self, FleetConfig, IdentityConfig, IdentityServer, RegionSpec, SimKey, Simulator,
};

use super::TempDir;

/// Every action the exporter calls: the RAM policy in `deploy/` grants
/// `ecs:` + each of them, and nothing else.
pub const API_ACTIONS: &[&str] = &[
    api::regions::ACTION,
    api::cloud_assistant::ACTION,
    api::instance_status::ACTION,
    api::plugins::ACTION,
    api::instances::ACTION,
    api::managed_instances::ACTION,
    api::activations::ACTION,
    api::invocations::ACTION,
];

/// The actions whose permission may be missing: without it their series
/// are absent (one warning), and nothing else fails.
pub const OPTIONAL_API_ACTIONS: &[&str] = &[
    api::instances::ACTION,
    api::managed_instances::ACTION,
    api::activations::ACTION,
    api::invocations::ACTION,
];

/// Real region ids, for fleets that span many regions.
pub const REGION_IDS: [&str; 12] = [
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "cn-zhangjiakou",
    "cn-hongkong",
    "ap-southeast-1",
    "ap-northeast-1",
    "eu-central-1",
    "us-west-1",
    "cn-qingdao",
    "us-east-1",
];

/// The role the tests' accounts assume through the simulated STS.
pub const ROLE: &str = "acs:ram::1234567890123456:role/cloud-assistant-reader";

/// A key and its value: a request parameter, a tag.
pub fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// A simulated account: a simulator that takes only this account's key
/// (`LTAI-<name>` with the secret `secret-of-<name>`) and, for a role
/// account, an STS of its own whose credentials are then the only ones
/// that simulator takes.
pub struct Acct {
    pub name: &'static str,
    pub key_id: String,
    /// The fleet's regions.
    pub regions: Vec<String>,
    pub sim: Simulator,
    pub sts: Option<IdentityServer>,
}

impl Acct {
    /// `sim` as the account `name`, signed with its AccessKey.
    pub fn on(name: &'static str, sim: Simulator) -> Acct {
        let key_id = format!("LTAI-{name}");
        sim.add_key(&key_id, SimKey::long_term(format!("secret-of-{name}")));
        let regions = sim.fleet().regions.keys().cloned().collect();
        Acct {
            name,
            key_id,
            regions,
            sim,
            sts: None,
        }
    }

    /// The account reached through a role (`ram_role_arn`) instead: an
    /// STS that hands out credentials living `lifetime`, and a simulator
    /// that no longer takes the AccessKey itself.
    pub async fn through_role(mut self, lifetime: Duration) -> Acct {
        let cfg = IdentityConfig {
            lifetime,
            ..IdentityConfig::default()
        };
        self.sts = Some(
            IdentityServer::start(&self.sim, cfg)
                .await
                .expect("identity server"),
        );
        self.sim.refuse_long_term_keys(true);
        self
    }

    pub fn sts(&self) -> &IdentityServer {
        self.sts.as_ref().expect("a role account")
    }

    /// The API calls its simulator has answered, every action and region.
    pub fn calls(&self) -> u64 {
        self.sim.requests_by_region().values().sum()
    }

    /// Its entry in the accounts file (every region, a role's session
    /// `exporter`), its secret file written in `dir`.
    pub fn entry(&self, dir: &TempDir) -> String {
        self.entry_with(dir, None, "exporter")
    }

    /// Its entry limited to `regions`.
    pub fn entry_in(&self, dir: &TempDir, regions: &[&str]) -> String {
        self.entry_with(dir, Some(regions), "exporter")
    }

    /// Its entry with the role session `session` (for a role account, a
    /// change of entry).
    pub fn entry_as(&self, dir: &TempDir, session: &str) -> String {
        self.entry_with(dir, None, session)
    }

    fn entry_with(&self, dir: &TempDir, regions: Option<&[&str]>, session: &str) -> String {
        dir.write(
            &format!("{}.secret", self.name),
            &format!("secret-of-{}\n", self.name),
        );
        let regions = regions
            .map(|r| format!("    regions: [{}]\n", r.join(", ")))
            .unwrap_or_default();
        let key = |indent: &str| {
            format!(
                "{indent}type: access_key\n{indent}access_key_id: {}\n{indent}access_key_secret_file: {}.secret\n",
                self.key_id, self.name
            )
        };
        let credentials = match &self.sts {
            None => key("      "),
            Some(_) => format!(
                "      type: ram_role_arn\n      role_arn: \"{ROLE}\"\n      role_session_name: {session}\n      source:\n{}",
                key("        ")
            ),
        };
        format!(
            "  - name: {}\n    endpoint: \"{}\"\n{regions}    credentials:\n{credentials}",
            self.name,
            self.sim.url()
        )
    }
}

/// An accounts file of `entries` (each from [`Acct::entry`] or written
/// alike).
pub fn accounts_file(entries: &[String]) -> String {
    format!("# accounts for the test\naccounts:\n{}", entries.concat())
}

pub fn fleet(regions: &[(&str, usize)]) -> FleetConfig {
    FleetConfig {
        seed: 7,
        regions: regions
            .iter()
            .map(|(id, n)| RegionSpec::new(id, *n))
            .collect(),
        plugins: vec!["ecs-tool-monitor".into(), "aliyun-service-ops".into()],
        start: 1_700_000_000,
    }
}

/// The simulator of `cfg` on a loopback port, at `clock`'s time.
pub async fn sim_at(cfg: FleetConfig, clock: Clock) -> Simulator {
    Simulator::start_with(cfg, clock, ([127, 0, 0, 1], 0).into())
        .await
        .expect("simulator")
}

pub fn creds(id: &str, secret: &str) -> Arc<CredentialProvider> {
    CredentialProvider::fixed(
        "test",
        Credentials {
            access_key_id: id.into(),
            access_key_secret: Secret::new(secret),
            security_token: None,
            expiration: None,
        },
    )
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_tries: 6,
        base: Duration::from_millis(5),
        throttle_base: Duration::from_millis(10),
        cap: Duration::from_millis(100),
        max_total: Duration::from_secs(10),
    }
}

pub fn client_with(
    sim: &Simulator,
    secret: &str,
    tune: impl FnOnce(&mut ClientOptions),
) -> Arc<Client> {
    let registry = prometheus::Registry::new();
    let metrics = ApiMetrics::new(&registry).expect("metrics");
    let mut opts = ClientOptions {
        endpoint_template: Some(sim.url()),
        timeout: Duration::from_secs(5),
        max_concurrency: 8,
        rate_limit: 0.0,
        retry: fast_retry(),
        ..ClientOptions::default()
    };
    tune(&mut opts);
    Arc::new(Client::new(creds(simulator::DEFAULT_KEY_ID, secret), opts, metrics).expect("client"))
}

pub fn client(sim: &Simulator) -> Arc<Client> {
    client_with(sim, simulator::DEFAULT_KEY_SECRET, |_| {})
}

/// The environment that holds the simulator's default key.
pub fn sim_key_env() -> Vec<(&'static str, String)> {
    vec![
        (
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            simulator::DEFAULT_KEY_ID.to_string(),
        ),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            simulator::DEFAULT_KEY_SECRET.to_string(),
        ),
    ]
}

/// Starts the whole exporter in process on 127.0.0.1:0 with `args` and
/// exactly `env` as its environment.
pub async fn start_app(
    args: &[&str],
    env: &[(&str, String)],
    clock: Clock,
) -> Result<Running, StartError> {
    let flags = Flags::try_parse_from(
        [
            "cloud-assistant-exporter",
            "--web.listen-address",
            "127.0.0.1:0",
        ]
        .iter()
        .chain(args),
    )
    .expect("flags");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    app::start(
        &flags,
        move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
        clock,
    )
    .await
}

/// Starts the whole exporter against `sim` with its default key and
/// `extra` flags.
pub async fn start_exporter(sim: &Simulator, extra: &[&str], clock: Clock) -> Running {
    let url = sim.url();
    let mut args = vec![
        "--aliyun.endpoint",
        url.as_str(),
        "--aliyun.rate-limit",
        "0",
    ];
    args.extend_from_slice(extra);
    start_app(&args, &sim_key_env(), clock)
        .await
        .expect("exporter starts")
}

/// The one unnamed account of a single-account exporter, on `client`.
pub fn one_account(client: Arc<Client>) -> Vec<Account> {
    vec![Account {
        name: String::new(),
        client,
        regions: Vec::new(),
    }]
}

/// A collector on `sim` driven by hand (`run_cycle`), with its own registry.
pub fn collector(sim: &Simulator, opts: CollectorOptions, clock: Clock) -> Collector {
    tuned_collector(sim, opts, clock, |o| o.max_concurrency = 16)
}

/// As [`collector`], with the client's options changed by `tune`.
pub fn tuned_collector(
    sim: &Simulator,
    opts: CollectorOptions,
    clock: Clock,
    tune: impl FnOnce(&mut ClientOptions),
) -> Collector {
    let registry = cloud_assistant_exporter::own_metrics::base_registry().expect("registry");
    let api = ApiMetrics::new(&registry).expect("API metrics");
    let mut o = ClientOptions {
        endpoint_template: Some(sim.url()),
        timeout: Duration::from_secs(5),
        rate_limit: 0.0,
        retry: fast_retry(),
        ..ClientOptions::default()
    };
    tune(&mut o);
    let client = Client::new(
        creds(simulator::DEFAULT_KEY_ID, simulator::DEFAULT_KEY_SECRET),
        o,
        api,
    )
    .expect("client");
    Collector::new(one_account(Arc::new(client)), opts, clock, registry).expect("collector")
}

/// The HTTP server alone on 127.0.0.1:0, serving an empty page with
/// `opts`: its address, the sender that stops it, and its task.
pub async fn tiny_server(
    opts: ServerOptions,
) -> (
    std::net::SocketAddr,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let page = cloud_assistant_exporter::render::render(
        &Default::default(),
        cloud_assistant_exporter::render::StateSets::All,
    )
    .expect("page");
    let s = page_server(opts, page).await;
    (s.addr, s.stop, s.task)
}

/// The HTTP server alone, serving `page` (which the test may swap).
pub struct PageServer {
    pub addr: std::net::SocketAddr,
    pub page: Arc<arc_swap::ArcSwap<Page>>,
    pub stop: tokio::sync::watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
}

pub async fn page_server(opts: ServerOptions, page: Page) -> PageServer {
    let page = Arc::new(arc_swap::ArcSwap::from_pointee(page));
    let state = AppState {
        page: Arc::clone(&page),
        registry: prometheus::Registry::new(),
        ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        opts: Arc::new(opts),
    };
    let server = Server::bind(([127, 0, 0, 1], 0).into(), state)
        .await
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(server.run(rx));
    PageServer {
        addr,
        page,
        stop,
        task,
    }
}
