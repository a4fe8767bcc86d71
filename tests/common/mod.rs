#![allow(dead_code)]
//! Shared set-up for the tests that run against the simulator.

use std::sync::Arc;
use std::time::Duration;

use cloud_assistant_exporter::client::{ApiMetrics, Client, ClientOptions, RetryPolicy};
use cloud_assistant_exporter::credentials::{CredentialProvider, Credentials};
use cloud_assistant_exporter::secret::Secret;
use cloud_assistant_exporter::simulator::{self, FleetConfig, RegionSpec, Simulator};

pub fn fleet(regions: &[(&str, usize)]) -> FleetConfig {
    FleetConfig {
        seed: 7,
        regions: regions.iter().map(|(id, n)| RegionSpec::new(id, *n)).collect(),
        plugins: vec!["ecs-tool-monitor".into(), "aliyun-service-ops".into()],
        start: 1_700_000_000,
    }
}

pub fn creds(id: &str, secret: &str) -> Arc<CredentialProvider> {
    CredentialProvider::fixed("test", Credentials { access_key_id: id.into(), access_key_secret: Secret::new(secret), security_token: None })
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

pub fn client_with(sim: &Simulator, secret: &str, tune: impl FnOnce(&mut ClientOptions)) -> Arc<Client> {
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
