//! Prometheus and its tools for the tests: `promtool`, the HTTP API, and
//! the dashboard's queries as Grafana would send them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{ServerProcess, TempDir, tool};

/// Runs `promtool check metrics` on `text`. Without promtool the check fails
/// under CI (which installs it) and is reported, not run, elsewhere.
pub fn promtool_check(text: &str) {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Prometheus (`binary`) in `dir` with `config` and its TSDB in `tsdb`,
/// ready to answer.
pub async fn launch_prometheus(
    binary: &Path,
    dir: TempDir,
    config: &str,
    tsdb: &Path,
) -> ServerProcess {
    ServerProcess::launch(
        binary,
        dir,
        &[
            format!("--config.file={config}"),
            format!("--storage.tsdb.path={}", tsdb.display()),
        ],
        "/-/ready",
    )
    .await
}

/// `application/x-www-form-urlencoded` value (reqwest's `form` feature is off).
pub fn form_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Prometheus' HTTP API.
pub struct PromApi {
    pub http: reqwest::Client,
    pub base: String,
}

impl PromApi {
    pub fn new(base: &str, timeout: Duration) -> PromApi {
        PromApi {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("http client"),
            base: base.to_string(),
        }
    }

    fn data(body: &str) -> Result<serde_json::Value, String> {
        let v: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"].clone())
    }

    pub async fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Self::data(&r.text().await.map_err(|e| e.to_string())?)
    }

    /// POSTs a form to `path` (`/api/v1/query`, `/api/v1/query_range`).
    pub async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, String> {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect();
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Self::data(&r.text().await.map_err(|e| e.to_string())?)
    }

    /// The samples or series of a query answer (a scalar counts as one).
    pub fn results(data: &serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                Ok(data["result"].as_array().cloned().unwrap_or_default())
            }
            Some("scalar") => Ok(vec![serde_json::json!({ "value": data["result"] })]),
            other => Err(format!("unexpected result type {other:?}")),
        }
    }

    /// An instant query now.
    pub async fn query(&self, expr: &str) -> Result<Vec<serde_json::Value>, String> {
        Self::results(&self.post("/api/v1/query", &[("query", expr)]).await?)
    }

    /// Polls `expr` until it has a sample that is a number, up to `secs`.
    pub async fn wait_for_data(&self, expr: &str, secs: u64) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match self.query(expr).await {
                Ok(r) if has_data(&r) => return r,
                Err(e) => panic!("query {expr:?} failed: {e}"),
                Ok(_) if std::time::Instant::now() > deadline => {
                    panic!("no data for {expr:?} within {secs}s")
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

/// True if some sample (instant) or point (range) is a number; NaN (a
/// histogram_quantile over no traffic) is not.
pub fn has_data(results: &[serde_json::Value]) -> bool {
    let number = |p: &serde_json::Value| {
        p[1].as_str()
            .is_some_and(|v| v.parse::<f64>().is_ok_and(|x| !x.is_nan()))
    };
    results.iter().any(|s| {
        number(&s["value"])
            || s["values"]
                .as_array()
                .is_some_and(|vs| vs.iter().any(number))
    })
}

/// One query of a dashboard panel.
#[derive(Clone, Debug)]
pub struct PanelQuery {
    pub expr: String,
    /// Grafana runs it once at the end of the range, not over the range.
    pub instant: bool,
}

/// A dashboard panel's title and its queries (panels of collapsed rows too).
pub fn dashboard_panels(panels: &[serde_json::Value]) -> Vec<(String, Vec<PanelQuery>)> {
    let mut out = Vec::new();
    for p in panels {
        if let Some(nested) = p["panels"].as_array() {
            out.extend(dashboard_panels(nested));
        }
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("").to_string();
        let queries = p["targets"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .filter_map(|t| {
                        Some(PanelQuery {
                            expr: t["expr"].as_str()?.to_string(),
                            instant: t["instant"] == true && t["range"] != true,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push((title, queries));
    }
    out
}

/// A query as Grafana sends it with every variable on "All" and the given
/// `$__rate_interval` and `$__interval`.
pub fn grafana_substitute(expr: &str, rate_interval: &str, interval: &str) -> String {
    let mut s = expr.to_string();
    for var in ["job", "account", "region_id", "instance_id"] {
        s = s.replace(&format!("${{{var}}}"), ".*");
        s = s.replace(&format!("${var}"), ".*");
    }
    for (var, value) in [("__rate_interval", rate_interval), ("__interval", interval)] {
        s = s.replace(&format!("${{{var}}}"), value);
        s = s.replace(&format!("${var}"), value);
    }
    assert!(
        !s.contains("${")
            && !s
                .split('$')
                .skip(1)
                .any(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')),
        "unknown variable left in {s}"
    );
    s
}
