//! The exporter's own metrics, under one namespace. Those kept in a
//! `prometheus` registry (API calls, credential refreshes, HTTP, reloads,
//! dropped rows, build info) are defined here, name and help, as [`Def`]s
//! and registered by the module that counts them; those rendered from the
//! snapshot (`region_up`, `cycles_total`, …) take their names from
//! [`own_name!`] and keep their help in the renderer's table of families. Fleet series are rendered straight
//! from the snapshot (see `render`). A leaf: it imports nothing of the
//! crate.

use prometheus::{IntGaugeVec, Opts, Registry};

/// The namespace in front of every name of the exporter's own metrics.
#[macro_export]
macro_rules! own_namespace {
    () => {
        "aliyun_cloud_assistant_exporter"
    };
}

/// The full name of an own metric, at compile time:
/// `own_name!("region_up")` is `aliyun_cloud_assistant_exporter_region_up`.
#[macro_export]
macro_rules! own_name {
    ($name:literal) => {
        concat!($crate::own_namespace!(), "_", $name)
    };
}

pub const NAMESPACE: &str = own_namespace!();

/// One metric of the exporter's own that lives in a registry.
#[derive(Clone, Copy, Debug)]
pub struct Def {
    /// The full name.
    pub name: &'static str,
    pub help: &'static str,
}

impl Def {
    pub fn opts(&self) -> Opts {
        Opts::new(self.name, self.help)
    }

    /// With `account` as a constant label when there is one, so several
    /// accounts' series of one name live side by side in the registry.
    pub fn opts_for(&self, account: Option<&str>) -> Opts {
        match account {
            Some(a) => self.opts().const_label("account", a),
            None => self.opts(),
        }
    }
}

pub const BUILD_INFO: Def = Def {
    name: own_name!("build_info"),
    help: "Version, git revision and compiler of the exporter; always 1.",
};
pub const API_REQUESTS: Def = Def {
    name: own_name!("api_requests_total"),
    help: "API requests sent, by action and result code (OK or the API error code).",
};
pub const API_REQUEST_DURATION: Def = Def {
    name: own_name!("api_request_duration_seconds"),
    help: "Duration of single API requests (each try), by action.",
};
pub const API_RETRIES: Def = Def {
    name: own_name!("api_retries_total"),
    help: "API requests tried again after a retryable failure, by action.",
};
pub const ACCOUNT_UP: Def = Def {
    name: own_name!("account_up"),
    help: "1 if the account's credentials could be had and it is walked, else 0 (it is tried again with backoff).",
};
pub const CREDENTIAL_REFRESHES: Def = Def {
    name: own_name!("credential_refreshes_total"),
    help: "Credentials fetched from their source (the first at start included), by source and result.",
};
pub const HTTP_CONNECTIONS: Def = Def {
    name: own_name!("http_connections"),
    help: "HTTP connections open now.",
};
pub const HTTP_CONNECTIONS_DROPPED: Def = Def {
    name: own_name!("http_connections_dropped_total"),
    help: "HTTP connections the exporter closed on its own, by reason: header_timeout (no request or TLS handshake in time), idle_timeout (kept alive without a request), stalled (the client stopped reading), send_timeout (the answer took too long), evicted (room made at the connection cap).",
};
pub const HTTP_REQUESTS_REFUSED: Def = Def {
    name: own_name!("http_requests_refused_total"),
    help: "Requests answered 503 to protect the exporter, by reason: max_requests (--web.max-requests scrapes at once), plain_scrapes (scrapes without gzip queued too long), password_checks (password checks queued too long).",
};
pub const HTTP_AUTH_FAILURES: Def = Def {
    name: own_name!("http_auth_failures_total"),
    help: "Requests answered 401: a missing, unknown or wrong user or password.",
};
pub const CONFIG_LAST_RELOAD_SUCCESSFUL: Def = Def {
    name: own_name!("config_last_reload_successful"),
    help: "Whether the last load of --config.file succeeded (1) or failed (0).",
};
pub const CONFIG_LAST_RELOAD_SUCCESS_TIME: Def = Def {
    name: own_name!("config_last_reload_success_timestamp_seconds"),
    help: "When --config.file was last loaded successfully, Unix seconds.",
};
pub const SHARD_INFO: Def = Def {
    name: own_name!("shard_info"),
    help: "The shard this replica collects (index) out of count; always 1.",
};
pub const PLUGIN_NAMES_DROPPED: Def = Def {
    name: own_name!("plugin_names_dropped_total"),
    help: "Plugin names not swept because an account has more than --collect.max-plugin-names.",
};
pub const INVOCATION_WALKS_TRUNCATED: Def = Def {
    name: own_name!("invocation_walks_truncated_total"),
    help: "Invocation walks (per region and filter) that stopped at --collect.invocations-max-pages with pages left.",
};
pub const ROWS_DROPPED: Def = Def {
    name: own_name!("rows_dropped_total"),
    help: "Rows of API answers left off the page, by reason: label_too_long (a value over 256 bytes), plugin_name (a name outside A-Z a-z 0-9 . _ -).",
};

/// Every metric defined here.
pub const ALL: [Def; 16] = [
    BUILD_INFO,
    API_REQUESTS,
    API_REQUEST_DURATION,
    API_RETRIES,
    ACCOUNT_UP,
    CREDENTIAL_REFRESHES,
    HTTP_CONNECTIONS,
    HTTP_CONNECTIONS_DROPPED,
    HTTP_REQUESTS_REFUSED,
    HTTP_AUTH_FAILURES,
    CONFIG_LAST_RELOAD_SUCCESSFUL,
    CONFIG_LAST_RELOAD_SUCCESS_TIME,
    SHARD_INFO,
    PLUGIN_NAMES_DROPPED,
    INVOCATION_WALKS_TRUNCATED,
    ROWS_DROPPED,
];

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("BUILD_REVISION");
pub const RUSTC: &str = env!("BUILD_RUSTC");

/// The text `--version` prints.
pub fn long_version() -> String {
    format!("{VERSION} (revision {REVISION}, {RUSTC})")
}

/// A registry with build info and process metrics only: with
/// `--config.file` each account registers API self-metrics of its own.
pub fn base_registry() -> prometheus::Result<Registry> {
    let registry = Registry::new();
    let build = IntGaugeVec::new(BUILD_INFO.opts(), &["version", "revision", "rustc"])?;
    build.with_label_values(&[VERSION, REVISION, RUSTC]).set(1);
    registry.register(Box::new(build))?;
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_in_the_namespace_and_once() {
        let mut names: Vec<&str> = ALL.iter().map(|d| d.name).collect();
        assert!(
            names
                .iter()
                .all(|n| n.starts_with(&format!("{NAMESPACE}_")))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
