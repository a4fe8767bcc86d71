//! The one place that talks HTTP to the ECS API: endpoint choice, signing,
//! the global concurrency and rate limits, retries, body-size cap, error
//! decoding and the API self-metrics. Walkers in `api` only page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::clock::format_iso8601;
use crate::credentials::CredentialProvider;
use crate::error::ApiError;
use crate::rng::Rng;
use crate::signer::{CommonParams, sign_request};

mod decode;
mod limits;
mod metrics;
mod retry;

pub use decode::{Answer, decode_response};
pub use limits::Limits;
pub use metrics::ApiMetrics;
pub use retry::RetryPolicy;

pub const ECS_API_VERSION: &str = "2014-05-26";
pub const DEFAULT_ENDPOINT: &str = "https://ecs.aliyuncs.com";

/// Default cap of pages per walk (see `ClientOptions::max_pages`): 50 000
/// pages is 2.5 million instances in one region.
pub const MAX_PAGES: usize = 50_000;

/// Connecting takes a few seconds at most, whatever `--aliyun.request-timeout`:
/// an endpoint that does not accept connections fails its calls fast.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

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
    /// This client's share of the shared slots at most (`None`: all of
    /// them): an account whose endpoint never answers then holds only its
    /// share, never every slot the other accounts need.
    pub share: Option<usize>,
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
            share: None,
        }
    }
}

/// The last time the account's credentials could not be had: for the
/// request timeout, calls of the same credential generation fail at once
/// with this message instead of each waiting for the provider again.
#[derive(Debug)]
struct CredentialFailure {
    at: Instant,
    /// The provider's generation that failed; a newer one is tried.
    generation: u64,
    message: String,
}

/// A signed, rate-limited, retrying ECS API client. Cheap to share (`Arc`).
pub struct Client {
    http: reqwest::Client,
    credentials: Arc<CredentialProvider>,
    opts: ClientOptions,
    region_endpoints: RwLock<HashMap<String, String>>,
    limits: Arc<Limits>,
    /// This account's share of the shared slots.
    share: Option<tokio::sync::Semaphore>,
    metrics: ApiMetrics,
    /// Requests sent per region (for the per-region log line).
    region_calls: Mutex<HashMap<String, u64>>,
    /// The last failure to get credentials: when, at which generation of the
    /// provider, and why.
    credential_failure: Mutex<Option<CredentialFailure>>,
    /// `account_up`: 0 while no valid credentials can be had.
    account_up: std::sync::OnceLock<prometheus::IntGauge>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint_template", &self.opts.endpoint_template)
            .finish_non_exhaustive()
    }
}

/// A client that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error(transparent)]
    Endpoint(#[from] crate::validate::Invalid),
    #[error("cannot build the HTTP client: {0}")]
    Http(reqwest::Error),
}

impl Client {
    pub fn new(
        credentials: Arc<CredentialProvider>,
        opts: ClientOptions,
        metrics: ApiMetrics,
    ) -> Result<Self, ClientBuildError> {
        if let Some(t) = &opts.endpoint_template {
            crate::validate::endpoint_template(t)?;
        }
        let http = reqwest::Client::builder()
            // A signed request goes to the endpoint it was signed for and
            // nowhere else: a 3xx is an error (see `decode_response`).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(CONNECT_TIMEOUT))
            .pool_max_idle_per_host(opts.max_concurrency.max(1))
            .user_agent(concat!(
                "cloud-assistant-exporter/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(ClientBuildError::Http)?;
        let limits = opts
            .limits
            .clone()
            .unwrap_or_else(|| Limits::new(opts.max_concurrency, opts.rate_limit));
        let share = opts.share.map(|n| tokio::sync::Semaphore::new(n.max(1)));
        Ok(Client {
            http,
            credentials,
            limits,
            share,
            opts,
            region_endpoints: RwLock::new(HashMap::new()),
            metrics,
            region_calls: Mutex::new(HashMap::new()),
            credential_failure: Mutex::new(None),
            account_up: std::sync::OnceLock::new(),
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
        // The newest answer replaces the map: regions that left it go.
        if let Ok(mut m) = self.region_endpoints.write() {
            *m = endpoints.into_iter().collect();
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
    /// with retries. Returns the body of a successful answer, a JSON object.
    pub async fn call(
        &self,
        action: &str,
        region: Option<&str>,
        params: &[(String, String)],
    ) -> Result<Answer, ApiError> {
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

    /// The gauge to keep at 1 while valid credentials can be had, 0 while
    /// not (`account_up`, see `own_metrics`).
    pub fn report_account_up(&self, gauge: prometheus::IntGauge) {
        let _ = self.account_up.set(gauge);
    }

    /// Valid credentials to sign with, waiting at most the request timeout
    /// for a refresh. After a failure, the account's calls fail at once
    /// until the provider has a new set (or a timeout has passed).
    async fn credentials_for(
        &self,
        action: &str,
        region: &str,
    ) -> Result<Arc<crate::credentials::Credentials>, ApiError> {
        let generation = self.credentials.generation();
        if let Ok(last) = self.credential_failure.lock()
            && let Some(failure) = &*last
            && failure.generation == generation
            && failure.at.elapsed() < self.opts.timeout
        {
            return Err(self.credential_error(action, region, failure.message.clone()));
        }
        let valid = self.credentials.valid(self.opts.timeout).await;
        if let Some(up) = self.account_up.get() {
            up.set(i64::from(valid.is_ok()));
        }
        match valid {
            Ok(c) => Ok(c),
            Err(e) => {
                let message = e.to_string();
                if let Ok(mut last) = self.credential_failure.lock() {
                    *last = Some(CredentialFailure {
                        at: Instant::now(),
                        generation,
                        message: message.clone(),
                    });
                }
                Err(self.credential_error(action, region, message))
            }
        }
    }

    fn credential_error(&self, action: &str, region: &str, message: String) -> ApiError {
        ApiError::Credentials {
            action: action.to_string(),
            region: region.to_string(),
            message: crate::error::redact(&message),
        }
    }

    async fn try_once(
        &self,
        action: &str,
        region: Option<&str>,
        params: &[(String, String)],
    ) -> Result<Answer, ApiError> {
        let region_label = region.unwrap_or("-");
        let transport = |message: String, timeout: bool| ApiError::Transport {
            action: action.to_string(),
            region: region_label.to_string(),
            message,
            timeout,
        };
        // Credentials first, holding nothing shared: an account whose source
        // hangs or refuses waits (bounded) without a concurrency slot, and
        // its later calls of the same moment fail at once instead of
        // queueing behind it.
        let creds = self.credentials_for(action, region_label).await?;
        // The account's own share first: waiting for it holds no shared slot.
        let _share = match &self.share {
            Some(s) => Some(
                s.acquire()
                    .await
                    .map_err(|_| transport("client is shut down".into(), false))?,
            ),
            None => None,
        };
        self.limits.rate.wait().await;
        let _permit = self
            .limits
            .semaphore
            .acquire()
            .await
            .map_err(|_| transport("client is shut down".into(), false))?;
        // The newest set, unless it expired while the call waited for its
        // slot (refreshes run well before expiry, so this is rare).
        drop(creds);
        let creds = self
            .credentials
            .valid(Duration::ZERO)
            .await
            .map_err(|e| self.credential_error(action, region_label, e.to_string()))?;
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
        decode::decode_owned(action, region_label, status, buf)
    }
}
