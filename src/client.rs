//! The one place that talks HTTP to the ECS API: endpoint choice, signing,
//! the global concurrency and rate limits, retries, body-size cap, error
//! decoding and the API self-metrics. Walkers in `api` only page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::clock::format_iso8601;
use crate::credentials::CredentialProvider;
use crate::error::ApiError;
use crate::rng::Rng;
use crate::signer::{CommonParams, sign_request};

pub const ECS_API_VERSION: &str = "2014-05-26";
pub const DEFAULT_ENDPOINT: &str = "https://ecs.aliyuncs.com";

/// Default cap of pages per walk (see `ClientOptions::max_pages`): 50 000
/// pages is 2.5 million instances in one region.
pub const MAX_PAGES: usize = 50_000;

/// When and how often a failed call is tried again.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_tries: u32,
    pub base: Duration,
    pub throttle_base: Duration,
    pub cap: Duration,
    /// A call never takes longer than this in all, sleeps included.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_tries: 5,
            base: Duration::from_millis(100),
            throttle_base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
            max_total: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Delay before try `attempt + 1` ("equal jitter": half fixed, half random,
    /// so retries spread out but never come back at once).
    pub fn backoff(&self, attempt: u32, throttled: bool, rng: &mut Rng) -> Duration {
        let base = if throttled {
            self.throttle_base
        } else {
            self.base
        };
        let exp = base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.cap);
        let half = exp / 2;
        half + Duration::from_nanos(rng.below(half.as_nanos() as u64 + 1))
    }
}

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `--aliyun.endpoint`: a URL template, `{region}` replaced by the region id.
    pub endpoint_template: Option<String>,
    pub timeout: Duration,
    pub max_concurrency: usize,
    /// Requests per second, all together; 0 = no limit.
    pub rate_limit: f64,
    pub retry: RetryPolicy,
    /// Larger answers are refused rather than buffered.
    pub max_body_bytes: usize,
    /// Pages one walk may take before it stops with an error.
    pub max_pages: usize,
    /// Limits shared with other clients (one per account of `--config.file`,
    /// all under one `--aliyun.max-concurrency` and `--aliyun.rate-limit`);
    /// `None`: limits of its own from `max_concurrency` and `rate_limit`.
    pub limits: Option<Arc<Limits>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            endpoint_template: None,
            timeout: Duration::from_secs(10),
            max_concurrency: 8,
            rate_limit: 20.0,
            retry: RetryPolicy::default(),
            max_body_bytes: 16 << 20,
            max_pages: MAX_PAGES,
            limits: None,
        }
    }
}

/// Self-metrics of the API calls, so users see what the exporter costs.
#[derive(Clone)]
pub struct ApiMetrics {
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub retries: IntCounterVec,
}

impl ApiMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        Self::for_account(registry, None)
    }

    /// The metrics of one account of `--config.file`: every series carries
    /// `account` as a constant label, so several accounts' metrics of one
    /// name live side by side in the registry.
    pub fn for_account(registry: &Registry, account: Option<&str>) -> prometheus::Result<Self> {
        let opts = |name: &str, help: &str| {
            let o = Opts::new(name, help);
            match account {
                Some(a) => o.const_label("account", a),
                None => o,
            }
        };
        let requests = IntCounterVec::new(
            opts(
                "aliyun_cloud_assistant_exporter_api_requests_total",
                "API requests sent, by action and result code (OK or the API error code).",
            ),
            &["action", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts {
                common_opts: opts(
                    "aliyun_cloud_assistant_exporter_api_request_duration_seconds",
                    "Duration of single API requests (each try), by action.",
                ),
                buckets: vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            },
            &["action"],
        )?;
        let retries = IntCounterVec::new(
            opts(
                "aliyun_cloud_assistant_exporter_api_retries_total",
                "API requests tried again after a retryable failure, by action.",
            ),
            &["action"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        Ok(ApiMetrics {
            requests,
            duration,
            retries,
        })
    }

    /// Takes these metrics off the registry (an account removed by a reload).
    pub fn unregister(&self, registry: &Registry) {
        let _ = registry.unregister(Box::new(self.requests.clone()));
        let _ = registry.unregister(Box::new(self.duration.clone()));
        let _ = registry.unregister(Box::new(self.retries.clone()));
    }

    /// Requests answered so far for `action` with `code`.
    pub fn count(&self, action: &str, code: &str) -> u64 {
        self.requests
            .get_metric_with_label_values(&[action, code])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Requests answered so far for `action`, any code.
    pub fn count_action(&self, action: &str) -> u64 {
        use prometheus::core::Collector;
        self.requests
            .collect()
            .iter()
            .flat_map(|mf| mf.get_metric().iter())
            .filter(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "action" && l.value() == action)
            })
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }
}

/// Spaces requests out to at most `rate` per second, and slows down by itself
/// when the API says it is throttling us.
#[derive(Debug)]
struct RateLimiter {
    state: Mutex<RateState>,
}

#[derive(Debug)]
struct RateState {
    interval: Option<Duration>,
    factor: f64,
    next: Instant,
}

impl RateLimiter {
    fn new(rate: f64) -> Self {
        let interval = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
        RateLimiter {
            state: Mutex::new(RateState {
                interval,
                factor: 1.0,
                next: Instant::now(),
            }),
        }
    }

    /// Books the next free slot at or after `now`; `None` when unlimited.
    fn reserve(&self, now: Instant) -> Option<Instant> {
        let mut s = self.state.lock().ok()?;
        let interval = s.interval?;
        let at = s.next.max(now);
        s.next = at + interval.div_f64(s.factor);
        Some(at)
    }

    async fn wait(&self) {
        if let Some(at) = self.reserve(Instant::now()) {
            tokio::time::sleep_until(at.into()).await;
        }
    }

    fn on_throttle(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.factor = (s.factor * 0.5).max(0.05);
        }
    }

    fn on_success(&self) {
        if let Ok(mut s) = self.state.lock()
            && s.factor < 1.0
        {
            s.factor = (s.factor + 0.02).min(1.0);
        }
    }
}

/// The concurrency and rate limits of API requests. Clients that share one
/// (`Arc`) stay under them all together.
#[derive(Debug)]
pub struct Limits {
    semaphore: Semaphore,
    rate: RateLimiter,
}

impl Limits {
    /// At most `max_concurrency` requests in flight and `rate_limit` per
    /// second (0 = no rate limit).
    pub fn new(max_concurrency: usize, rate_limit: f64) -> Arc<Self> {
        Arc::new(Limits {
            semaphore: Semaphore::new(max_concurrency.max(1)),
            rate: RateLimiter::new(rate_limit),
        })
    }
}

/// A signed, rate-limited, retrying ECS API client. Cheap to share (`Arc`).
pub struct Client {
    http: reqwest::Client,
    credentials: Arc<CredentialProvider>,
    opts: ClientOptions,
    region_endpoints: RwLock<HashMap<String, String>>,
    limits: Arc<Limits>,
    metrics: ApiMetrics,
    /// Requests sent per region (for the per-region log line).
    region_calls: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint_template", &self.opts.endpoint_template)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(
        credentials: Arc<CredentialProvider>,
        opts: ClientOptions,
        metrics: ApiMetrics,
    ) -> Result<Self, String> {
        if let Some(t) = &opts.endpoint_template {
            crate::validate::endpoint_template(t)?;
        }
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(opts.max_concurrency.max(1))
            .user_agent(concat!(
                "cloud-assistant-exporter/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let limits = opts
            .limits
            .clone()
            .unwrap_or_else(|| Limits::new(opts.max_concurrency, opts.rate_limit));
        Ok(Client {
            http,
            credentials,
            limits,
            opts,
            region_endpoints: RwLock::new(HashMap::new()),
            metrics,
            region_calls: Mutex::new(HashMap::new()),
        })
    }

    pub fn metrics(&self) -> &ApiMetrics {
        &self.metrics
    }

    /// Requests sent so far for `region`, every action and try.
    pub fn calls_in(&self, region: &str) -> u64 {
        self.region_calls
            .lock()
            .ok()
            .and_then(|m| m.get(region).copied())
            .unwrap_or(0)
    }

    pub fn max_pages(&self) -> usize {
        self.opts.max_pages.max(1)
    }

    pub fn has_endpoint_template(&self) -> bool {
        self.opts.endpoint_template.is_some()
    }

    /// Remembers the `RegionEndpoint`s DescribeRegions returned.
    pub fn set_region_endpoints(&self, endpoints: impl IntoIterator<Item = (String, String)>) {
        if let Ok(mut m) = self.region_endpoints.write() {
            m.extend(endpoints);
        }
    }

    /// The URL a call for `region` goes to (`None` = DescribeRegions).
    pub fn endpoint_for(&self, region: Option<&str>) -> String {
        if let Some(t) = &self.opts.endpoint_template {
            // A `{region}` template (a VPC endpoint) serves only its own
            // region: DescribeRegions goes to the public endpoint instead.
            return match region {
                Some(r) => t.replace("{region}", r),
                None if t.contains("{region}") => DEFAULT_ENDPOINT.to_string(),
                None => t.clone(),
            };
        }
        let Some(region) = region else {
            return DEFAULT_ENDPOINT.to_string();
        };
        let known = self
            .region_endpoints
            .read()
            .ok()
            .and_then(|m| m.get(region).cloned());
        match known {
            Some(e) if e.starts_with("http://") || e.starts_with("https://") => e,
            Some(e) => format!("https://{e}"),
            None => format!("https://ecs.{region}.aliyuncs.com"),
        }
    }

    /// Calls `action` in `region` (`None`: a call without region, DescribeRegions),
    /// with retries. Returns the JSON object of a successful answer.
    pub async fn call(
        &self,
        action: &str,
        region: Option<&str>,
        params: &[(String, String)],
    ) -> Result<Value, ApiError> {
        let started = Instant::now();
        let mut rng = Rng::from_time();
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let t0 = Instant::now();
            let generation = self.credentials.generation();
            let res = self.try_once(action, region, params).await;
            self.metrics
                .duration
                .with_label_values(&[action])
                .observe(t0.elapsed().as_secs_f64());
            let code = match &res {
                Ok(_) => "OK",
                Err(e) => e.code(),
            };
            self.metrics
                .requests
                .with_label_values(&[action, code])
                .inc();
            if let (Some(r), Ok(mut m)) = (region, self.region_calls.lock()) {
                *m.entry(r.to_string()).or_default() += 1;
            }
            match res {
                Ok(v) => {
                    self.limits.rate.on_success();
                    return Ok(v);
                }
                Err(e) if e.code() == "InvalidSecurityToken.Expired" && !refreshed => {
                    // Our clock or the refresh lagged the API's: refresh now
                    // and try this call once more, outside the retry budget.
                    refreshed = true;
                    attempt -= 1;
                    tracing::debug!(
                        action,
                        region = region.unwrap_or(""),
                        "security token refused as expired; refreshing credentials"
                    );
                    self.metrics.retries.with_label_values(&[action]).inc();
                    self.credentials
                        .force_refresh(generation, self.opts.timeout)
                        .await;
                }
                Err(e) => {
                    let throttled = e.is_throttling();
                    if throttled {
                        self.limits.rate.on_throttle();
                    }
                    if !e.is_retryable() || attempt >= self.opts.retry.max_tries {
                        return Err(e);
                    }
                    let delay = self.opts.retry.backoff(attempt, throttled, &mut rng);
                    if started.elapsed() + delay > self.opts.retry.max_total {
                        return Err(e);
                    }
                    tracing::debug!(action, region = region.unwrap_or(""), attempt, delay_ms = delay.as_millis() as u64, error = %e, "retrying API call");
                    self.metrics.retries.with_label_values(&[action]).inc();
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn try_once(
        &self,
        action: &str,
        region: Option<&str>,
        params: &[(String, String)],
    ) -> Result<Value, ApiError> {
        let region_label = region.unwrap_or("-");
        let transport = |message: String, timeout: bool| ApiError::Transport {
            action: action.to_string(),
            region: region_label.to_string(),
            message,
            timeout,
        };
        self.limits.rate.wait().await;
        let _permit = self
            .limits
            .semaphore
            .acquire()
            .await
            .map_err(|_| transport("client is shut down".into(), false))?;
        // Read just before signing; if they have expired, wait (bounded)
        // for the refresh rather than sign with them.
        let creds = self
            .credentials
            .valid(self.opts.timeout)
            .await
            .map_err(|e| transport(e.to_string(), false))?;
        // A fresh nonce and timestamp for every try.
        let nonce = uuid::Uuid::new_v4().to_string();
        let timestamp = format_iso8601(crate::clock::Clock::System.now());
        let common = CommonParams {
            access_key_id: &creds.access_key_id,
            security_token: creds.security_token.as_ref(),
            action,
            version: ECS_API_VERSION,
            region_id: region,
            timestamp: &timestamp,
            nonce: &nonce,
        };
        let signed = sign_request("POST", params.to_vec(), &common, &creds.access_key_secret);
        // POST with a form body keeps the signature and token out of URLs
        // (and so out of proxy logs and error messages).
        let body = crate::signer::canonical_query(&signed);
        let url = self.endpoint_for(region);
        let fut = async {
            let mut resp = self
                .http
                .post(&url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .send()
                .await
                .map_err(|e| transport(crate::error::describe_transport(&e), e.is_timeout()))?;
            let status = resp.status().as_u16();
            let mut buf = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| transport(crate::error::describe_transport(&e), e.is_timeout()))?
            {
                if buf.len() + chunk.len() > self.opts.max_body_bytes {
                    return Err(ApiError::decode(
                        action,
                        region_label,
                        format!("body larger than {} bytes", self.opts.max_body_bytes),
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok((status, buf))
        };
        let (status, buf) = tokio::time::timeout(self.opts.timeout, fut)
            .await
            .map_err(|_| transport(format!("no answer within {:?}", self.opts.timeout), true))??;
        decode_response(action, region_label, status, &buf)
    }
}

/// A reqwest error in words, without the URL.
fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(160)]);
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Turns status and body into the JSON answer or a typed error.
pub fn decode_response(
    action: &str,
    region: &str,
    status: u16,
    body: &[u8],
) -> Result<Value, ApiError> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    if !(200..300).contains(&status) {
        if let Ok(Value::Object(o)) = &parsed
            && let Some(code) = o.get("Code").and_then(Value::as_str)
        {
            let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            return Err(ApiError::Api {
                action: action.to_string(),
                region: region.to_string(),
                status,
                code: code.to_string(),
                message: s("Message"),
                request_id: s("RequestId"),
            });
        }
        return Err(ApiError::Http {
            action: action.to_string(),
            region: region.to_string(),
            status,
            snippet: snippet(body),
        });
    }
    match parsed {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::decode(
            action,
            region,
            "the answer is JSON but not an object",
        )),
        Err(e) if e.is_eof() => Err(ApiError::decode(
            action,
            region,
            format!("truncated JSON ({} bytes)", body.len()),
        )),
        Err(e) => Err(ApiError::decode(
            action,
            region,
            format!("not JSON ({e}): {}", snippet(body)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_error_bodies() {
        let body = br#"{"RequestId":"R-1","Code":"Throttling.User","Message":"Request was denied","HostId":"ecs"}"#;
        let e = decode_response("DescribeRegions", "-", 400, body).unwrap_err();
        match &e {
            ApiError::Api {
                status,
                code,
                request_id,
                ..
            } => {
                assert_eq!(
                    (*status, code.as_str(), request_id.as_str()),
                    (400, "Throttling.User", "R-1")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_throttling());
        let e = decode_response("A", "r", 502, b"<html>Bad Gateway</html>").unwrap_err();
        assert!(matches!(e, ApiError::Http { status: 502, .. }));
        assert!(e.is_retryable());
    }

    #[test]
    fn rejects_bad_success_bodies() {
        let e = decode_response(
            "DescribeInstanceStatus",
            "cn-x",
            200,
            b"{\"TotalCount\": 5, \"Inst",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("DescribeInstanceStatus in cn-x: malformed response: truncated"),
            "{e}"
        );
        let e = decode_response("A", "r", 200, b"<xml/>").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        let e = decode_response("A", "r", 200, b"[1,2]").unwrap_err();
        assert!(e.to_string().contains("not an object"), "{e}");
        assert!(decode_response("A", "r", 200, b"{}").is_ok());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let mut rng = Rng::new(1);
        for attempt in 1..10 {
            let d = p.backoff(attempt, false, &mut rng);
            let exp = Duration::from_millis(100)
                .saturating_mul(1 << (attempt - 1))
                .min(p.cap);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?}");
        }
        let d = p.backoff(1, true, &mut rng);
        assert!(d >= Duration::from_millis(250) && d <= Duration::from_millis(500));
        assert!(p.backoff(40, true, &mut rng) <= p.cap);
    }

    #[test]
    fn rate_limiter_spaces_requests_and_backs_off_when_throttled() {
        let r = RateLimiter::new(10.0);
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..3)
            .filter_map(|_| r.reserve(t0))
            .map(|t| t - t0)
            .collect();
        assert_eq!(
            slots,
            vec![
                Duration::ZERO,
                Duration::from_millis(100),
                Duration::from_millis(200)
            ]
        );
        r.on_throttle();
        let a = r.reserve(t0).expect("slot");
        let b = r.reserve(t0).expect("slot");
        assert_eq!(
            b - a,
            Duration::from_millis(200),
            "half the rate after throttling"
        );
        for _ in 0..100 {
            r.on_success();
        }
        let c = r.reserve(t0).expect("slot");
        let d = r.reserve(t0).expect("slot");
        assert_eq!(
            d - c,
            Duration::from_millis(100),
            "recovers to the configured rate"
        );
        assert!(RateLimiter::new(0.0).reserve(t0).is_none(), "0 = no limit");
    }
}
