//! The API self-metrics: requests by action and code, durations, retries.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Registry};

use crate::own_metrics as own;

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
        let requests =
            IntCounterVec::new(own::API_REQUESTS.opts_for(account), &["action", "code"])?;
        let duration = HistogramVec::new(
            HistogramOpts {
                common_opts: own::API_REQUEST_DURATION.opts_for(account),
                buckets: vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            },
            &["action"],
        )?;
        let retries = IntCounterVec::new(own::API_RETRIES.opts_for(account), &["action"])?;
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
