//! The page as a test reads it: the families' names, scraping `/metrics`,
//! parsing the text format, finding series; and `/-/reload`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cloud_assistant_exporter::collector::Collector;

use super::{eventually, eventually_some};

/// The names of the families the tests look for on the page.
pub const REGION_UP: &str = "aliyun_cloud_assistant_exporter_region_up";
pub const AGENT_UP: &str = "aliyun_cloud_assistant_agent_up";
pub const ACCOUNT_UP: &str = "aliyun_cloud_assistant_exporter_account_up";
pub const API_REQUESTS: &str = "aliyun_cloud_assistant_exporter_api_requests_total";
pub const API_RETRIES: &str = "aliyun_cloud_assistant_exporter_api_retries_total";
pub const CYCLES: &str = "aliyun_cloud_assistant_exporter_cycles_total";
pub const CYCLE_SECONDS: &str = "aliyun_cloud_assistant_exporter_cycle_duration_seconds";
pub const REGION_SECONDS: &str = "aliyun_cloud_assistant_exporter_collection_duration_seconds";
pub const WALKS: &str = "aliyun_cloud_assistant_exporter_region_walks_total";
pub const LAST_SUCCESS: &str =
    "aliyun_cloud_assistant_exporter_region_last_success_timestamp_seconds";
pub const RELOAD_OK: &str = "aliyun_cloud_assistant_exporter_config_last_reload_successful";
pub const CREDENTIAL_REFRESHES: &str = "aliyun_cloud_assistant_exporter_credential_refreshes_total";
pub const SWEEP_UP: &str = "aliyun_cloud_assistant_exporter_plugin_sweep_up";
pub const PLUGIN_NAMES: &str = "aliyun_cloud_assistant_exporter_plugin_names";
pub const PLUGIN_NAMES_DROPPED: &str = "aliyun_cloud_assistant_exporter_plugin_names_dropped_total";
pub const INSTANCE_STATUS: &str = "aliyun_cloud_assistant_instance_status";
pub const INSTANCE_INFO: &str = "aliyun_cloud_assistant_instance_info";
pub const PLUGIN_INFO: &str = "aliyun_cloud_assistant_plugin_info";
pub const INVOCATION_FAILURES: &str = "aliyun_cloud_assistant_invocation_failures_total";
pub const SCHEDULED_RUNS: &str = "aliyun_cloud_assistant_scheduled_invocation_runs_total";
pub const SCHEDULED_LAST_FAILED: &str =
    "aliyun_cloud_assistant_scheduled_invocation_last_run_failed";
pub const SCHEDULED_INFO: &str = "aliyun_cloud_assistant_scheduled_invocation_info";

/// Waits until `/ready` answers 200.
pub async fn wait_ready(addr: SocketAddr) {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/ready");
    eventually("the exporter is ready", Duration::from_secs(20), || async {
        matches!(client.get(&url).send().await, Ok(r) if r.status() == 200)
    })
    .await;
}

/// `/metrics` as plain text (the client asks for no gzip).
pub async fn scrape(addr: SocketAddr) -> String {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.expect("body")
}

/// `/metrics`, parsed.
/// `POST /-/reload` at `addr`: the status and the body of the answer.
pub async fn post_reload(addr: impl std::fmt::Display) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .expect("reload");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

pub async fn scrape_samples(addr: SocketAddr) -> Vec<Sample> {
    parse_metrics(&scrape(addr).await)
}

/// Scrapes `addr` until `check` holds on the page (15 s at most, else
/// panics naming `what`) and returns that page.
pub async fn scrape_until(
    addr: SocketAddr,
    what: &str,
    check: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    eventually_some(what, Duration::from_secs(15), || async {
        let page = scrape_samples(addr).await;
        check(&page).then_some(page)
    })
    .await
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the text exposition format (enough of it for the tests).
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("value");
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'));
                    let mut val = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => match chars.next() {
                                Some('n') => val.push('\n'),
                                Some(o) => val.push(o),
                                None => {}
                            },
                            '"' => break,
                            c => val.push(c),
                        }
                    }
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                    labels.insert(key, val);
                }
                (n.to_string(), labels)
            }
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().expect("number"),
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// The value of the one series with `name` and exactly these `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
}

/// The value of the first series of `name` that carries `labels` (and
/// maybe others).
pub fn find_value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// `region_up` of `region` (of the first account that has it).
pub fn region_up(samples: &[Sample], region: &str) -> Option<f64> {
    find_value(samples, REGION_UP, &[("region_id", region)])
}

pub fn count(samples: &[Sample], name: &str) -> usize {
    samples.iter().filter(|s| s.name == name).count()
}

/// The fleet series of `region` (the exporter's own series left out).
pub fn region_series(samples: &[Sample], region: &str) -> Vec<Sample> {
    samples
        .iter()
        .filter(|s| {
            s.labels.get("region_id").map(String::as_str) == Some(region)
                && !s.name.contains("exporter")
        })
        .cloned()
        .collect()
}

/// The page the collector serves now, parsed.
pub fn page_samples(c: &Collector) -> Vec<Sample> {
    let text = c.scrape_text().expect("gunzip");
    parse_metrics(&String::from_utf8(text).expect("utf8"))
}

/// The lines of a page less those that move between two scrapes of an
/// idle exporter (its own series are as of each scrape): the process'
/// figures and the connections open.
pub fn idle_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            !l.contains("process_")
                && !l.starts_with("aliyun_cloud_assistant_exporter_http_connections ")
        })
        .collect()
}
