//! ListPluginStatus: Cloud Assistant plugins and their states.
//! `Name` is required unless exactly one InstanceId is given.

use std::sync::Arc;

use serde::Deserialize;

use super::fields::{FieldError, Raw, Repeated, opt_time, req_shared};
use super::page::{Meta, Names, Rows, Set, nested};
use super::paging::walk_next_token;
use crate::client::Client;
use crate::error::ApiError;
use crate::intern::intern;

pub const ACTION: &str = "ListPluginStatus";

/// Compares dotted versions numerically (`2.2.10` > `2.2.9`); a part that is
/// not a number compares as 0.
pub fn version_at_least(version: &str, min: &[u64]) -> bool {
    let parts: Vec<u64> = version
        .trim()
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    for (i, m) in min.iter().enumerate() {
        let v = parts.get(i).copied().unwrap_or(0);
        if v != *m {
            return v > *m;
        }
    }
    true
}

/// Agents that answer ListPluginStatus: Linux >= 2.2.3.344, Windows >= 2.1.3.344.
/// An unknown OS or version is taken as too old (not asked one by one).
pub fn agent_supports_plugins(os_type: Option<&str>, version: Option<&str>) -> bool {
    match (os_type.map(str::to_ascii_lowercase).as_deref(), version) {
        (Some("linux"), Some(v)) => version_at_least(v, &[2, 2, 3, 344]),
        (Some("windows"), Some(v)) => version_at_least(v, &[2, 1, 3, 344]),
        _ => false,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginStatus {
    pub instance_id: Arc<str>,
    pub name: Arc<str>,
    pub version: Option<Arc<str>>,
    /// NotInstalled, Installed, Running, Stopped, Crashed, Removed, Unknown, or later ones.
    pub status: Arc<str>,
    pub first_heartbeat: Option<i64>,
    pub last_heartbeat: Option<i64>,
}

/// The answer's rows: an instance each, with its plugins.
struct Instances;

impl Names for Instances {
    const OUTER: &'static [&'static str] = &["InstancePluginStatusSet"];
    const INNER: &'static [&'static str] = &["InstancePluginStatus"];
}

impl Rows for Instances {
    type Item<'a> = Instance<'a>;
}

#[derive(Deserialize)]
struct Instance<'a> {
    #[serde(borrow, rename = "InstanceId")]
    instance_id: Option<Raw<'a>>,
    #[serde(borrow, rename = "PluginStatusSet")]
    plugins: Option<Set<Plugin<'a>, Plugins>>,
}

/// An instance's plugins.
struct Plugins;

impl Names for Plugins {
    const OUTER: &'static [&'static str] = &["PluginStatusSet"];
    const INNER: &'static [&'static str] = &["PluginStatus"];
}

#[derive(Deserialize)]
struct Plugin<'a> {
    #[serde(borrow, rename = "PluginName")]
    name: Option<Raw<'a>>,
    #[serde(borrow, rename = "PluginVersion")]
    version: Option<Raw<'a>>,
    #[serde(borrow, rename = "PluginStatus")]
    status: Option<Raw<'a>>,
    #[serde(borrow, rename = "FirstHeartbeatTime")]
    first_heartbeat: Option<Raw<'a>>,
    #[serde(borrow, rename = "LastHeartbeatTime")]
    last_heartbeat: Option<Raw<'a>>,
}

/// The plugins of one answer body, and its paging fields.
fn read_page(body: &[u8]) -> Result<(Vec<PluginStatus>, Meta), FieldError> {
    let page = super::page::Page::<Instances>::read(body)?;
    let meta = page.meta()?;
    let mut out = Vec::new();
    let (mut names, mut versions, mut states) = (
        Repeated::default(),
        Repeated::default(),
        Repeated::default(),
    );
    for inst in page.rows()? {
        let instance_id = req_shared(&inst.instance_id, "InstanceId")?;
        let ctx = |e: FieldError| e.within(format!("instance {instance_id}"));
        for p in nested(inst.plugins).map_err(ctx)? {
            let name = names.req(&p.name, "PluginName").map_err(ctx)?;
            let pctx = |e: FieldError| e.within(format!("instance {instance_id} plugin {name}"));
            out.push(PluginStatus {
                version: versions.opt(&p.version, "PluginVersion").map_err(pctx)?,
                status: states
                    .opt(&p.status, "PluginStatus")
                    .map_err(pctx)?
                    .unwrap_or_else(|| intern("Unknown")),
                first_heartbeat: opt_time(&p.first_heartbeat, "FirstHeartbeatTime")
                    .map_err(pctx)?,
                last_heartbeat: opt_time(&p.last_heartbeat, "LastHeartbeatTime").map_err(pctx)?,
                instance_id: instance_id.clone(),
                name,
            });
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(out.len());
    if let Some(p) = out
        .iter()
        .find(|p| !seen.insert((&*p.instance_id, &*p.name)))
    {
        return Err(FieldError::Twice {
            what: "instance/plugin",
            key: format!("{}/{}", p.instance_id, p.name),
        });
    }
    Ok((out, meta))
}

/// The plugins of one answer body.
pub fn parse_page(body: &[u8]) -> Result<Vec<PluginStatus>, FieldError> {
    read_page(body).map(|(rows, _)| rows)
}

fn sort_dedup(v: &mut Vec<PluginStatus>, region: &str) {
    let before = v.len();
    v.reverse();
    v.sort_by(|a, b| (&a.instance_id, &a.name).cmp(&(&b.instance_id, &b.name)));
    v.dedup_by(|a, b| a.instance_id == b.instance_id && a.name == b.name);
    if v.len() != before {
        tracing::warn!(
            action = ACTION,
            region,
            duplicates = before - v.len(),
            "the API listed some plugins more than once; kept one row each"
        );
    }
}

/// One plugin name over the whole region, every instance that reports it.
pub async fn walk_plugin_status_by_name(
    client: &Client,
    region: &str,
    name: &str,
) -> Result<Vec<PluginStatus>, ApiError> {
    let params = [("Name".to_string(), name.to_string())];
    let mut all = walk_next_token(client, ACTION, region, &params, read_page).await?;
    sort_dedup(&mut all, region);
    Ok(all)
}

/// Every plugin of one instance (the call that needs no Name).
pub async fn list_plugins_of_instance(
    client: &Client,
    region: &str,
    instance_id: &str,
) -> Result<Vec<PluginStatus>, ApiError> {
    let params = [("InstanceId.1".to_string(), instance_id.to_string())];
    let mut all = walk_next_token(client, ACTION, region, &params, read_page).await?;
    sort_dedup(&mut all, region);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse_page(v: &Value) -> Result<Vec<PluginStatus>, String> {
        super::parse_page(&crate::api::body_of(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn version_rule() {
        assert!(agent_supports_plugins(Some("Linux"), Some("2.2.3.344")));
        assert!(agent_supports_plugins(Some("linux"), Some("2.2.4.1")));
        assert!(agent_supports_plugins(Some("Linux"), Some("2.10.0.0")));
        assert!(!agent_supports_plugins(Some("Linux"), Some("2.2.3.343")));
        assert!(!agent_supports_plugins(Some("Linux"), Some("2.1.3.344")));
        assert!(agent_supports_plugins(Some("Windows"), Some("2.1.3.344")));
        assert!(!agent_supports_plugins(Some("Windows"), Some("2.1.3.256")));
        assert!(!agent_supports_plugins(None, Some("9.9")));
        assert!(!agent_supports_plugins(Some("Linux"), None));
        assert!(!agent_supports_plugins(Some("FreeBSD"), Some("9.9")));
    }

    #[test]
    fn parses_the_documented_answer() {
        let v = json!({"NextToken": "AAAAAdDWBF2", "InstancePluginStatusSet": {"InstancePluginStatus": [{
            "InstanceId": "i-xxxxx",
            "PluginStatusSet": {"PluginStatus": [{"PluginVersion": "1.1", "PluginName": "testName",
              "FirstHeartbeatTime": "2020-01-19T09:15:46Z", "LastHeartbeatTime": "2020-01-19T09:15:46Z", "PluginStatus": "Running"}]}
        }, {"InstanceId": "i-empty", "PluginStatusSet": {}}]}});
        let p = parse_page(&v).expect("parses");
        assert_eq!(p.len(), 1);
        assert_eq!(
            (&*p[0].name, &*p[0].status, p[0].version.as_deref()),
            ("testName", "Running", Some("1.1"))
        );
        assert_eq!(p[0].last_heartbeat, Some(1_579_425_346));
        let bad = json!({"InstancePluginStatusSet": {"InstancePluginStatus": [{"InstanceId": "i-1", "PluginStatusSet": {"PluginStatus": [{"PluginStatus": "Running"}]}}]}});
        assert!(
            parse_page(&bad)
                .unwrap_err()
                .contains("i-1: PluginName is missing")
        );
    }
}
