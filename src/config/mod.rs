//! Command-line flags, in the Prometheus style, strictly validated: a bad
//! value is a one-line error and exit code 2 (clap's usage-error code).

use std::net::SocketAddr;
use std::time::Duration;

pub mod accounts_file;
pub mod checked;
mod credentials_entry;

use clap::{Parser, ValueEnum};

use crate::logging::{LogFormat, LogLevel};
use crate::snapshot::StateSets;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StateSetsFlag {
    /// every state of a state set is a series (0/1)
    All,
    /// only the current state's series (value 1), for very large fleets
    Current,
}

impl From<StateSetsFlag> for StateSets {
    fn from(f: StateSetsFlag) -> Self {
        match f {
            StateSetsFlag::All => StateSets::All,
            StateSetsFlag::Current => StateSets::Current,
        }
    }
}

/// A flag's value that clap's parser refuses; clap prints it after the
/// flag's name.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("{0:?} is not host:port (e.g. 0.0.0.0:9791, [::]:9791, 127.0.0.1:0)")]
    Listen(String),
    #[error("{0:?} must be a path such as /metrics")]
    Path(String),
    #[error("{0} is taken by another endpoint")]
    PathTaken(String),
    #[error("{value:?} is not a duration such as 30s or 2m: {reason}")]
    Duration {
        value: String,
        reason: humantime::DurationError,
    },
    #[error("{0:?} is shorter than 1s")]
    DurationTooShort(String),
    #[error("{0:?} is longer than {max}", max = humantime::format_duration(MAX_DURATION))]
    DurationTooLong(String),
    #[error("{0:?} is not a number from 0 to {MAX_REQUESTS}")]
    MaxRequests(String),
    #[error(
        "{0:?} is not a number of requests per second from {MIN_RATE} to {MAX_RATE} (0 = no limit)"
    )]
    Rate(String),
    #[error(transparent)]
    Invalid(#[from] crate::validate::Invalid),
}

/// Flags that are fine alone but not together, or a shard index the
/// hostname does not give.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FlagsError {
    /// The tag keys' label names clash.
    #[error("--collect.tags: {0}")]
    Tags(crate::api::tags::LabelClash),
    #[error("--shard.index {index} must be below --shard.count {count}")]
    ShardIndex { index: u64, count: u64 },
    #[error(
        "--shard.index-from-hostname: cannot read the hostname (HOSTNAME, /proc/sys/kernel/hostname, hostname)"
    )]
    NoHostname,
    #[error(
        "--shard.index-from-hostname: hostname {0:?} does not end in -<number> (e.g. exporter-2)"
    )]
    HostnameIndex(String),
    #[error("--shard.index {index} (from hostname {host:?}) must be below --shard.count {count}")]
    HostnameShardIndex {
        index: u64,
        host: String,
        count: u64,
    },
}

fn parse_listen(s: &str) -> Result<SocketAddr, ValueError> {
    // `:9791` means every interface, as in other exporters.
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse().map_err(|_| ValueError::Listen(s.to_string()))
}

fn parse_path(s: &str) -> Result<String, ValueError> {
    if !s.starts_with('/') || s.len() < 2 || s.contains(['?', '#', ' ']) {
        return Err(ValueError::Path(s.to_string()));
    }
    if matches!(s, "/healthz" | "/ready" | "/-/reload") {
        return Err(ValueError::PathTaken(s.to_string()));
    }
    Ok(s.to_string())
}

/// The longest duration any flag takes: far beyond any sane setting, far
/// below where adding it to a clock reading could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let d = humantime::parse_duration(s).map_err(|reason| ValueError::Duration {
        value: s.to_string(),
        reason,
    })?;
    if d < Duration::from_secs(1) {
        return Err(ValueError::DurationTooShort(s.to_string()));
    }
    if d > MAX_DURATION {
        return Err(ValueError::DurationTooLong(s.to_string()));
    }
    Ok(d)
}

/// Scrapes at once: a number a semaphore can hold, and far more than any
/// machine serves.
const MAX_REQUESTS: usize = 100_000;

fn parse_max_requests(s: &str) -> Result<usize, ValueError> {
    match s.trim().parse::<usize>() {
        Ok(n) if n <= MAX_REQUESTS => Ok(n),
        _ => Err(ValueError::MaxRequests(s.to_string())),
    }
}

fn parse_duration_or_zero(s: &str) -> Result<Duration, ValueError> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

fn parse_url(s: &str) -> Result<String, ValueError> {
    crate::validate::endpoint_url(s)?;
    Ok(s.trim_end_matches('/').to_string())
}

fn parse_role_arn(s: &str) -> Result<String, ValueError> {
    crate::validate::role_arn(s.trim())?;
    Ok(s.trim().to_string())
}

fn parse_endpoint(s: &str) -> Result<String, ValueError> {
    crate::validate::endpoint_template(s)?;
    Ok(s.trim_end_matches('/').to_string())
}

fn parse_region(s: &str) -> Result<String, ValueError> {
    let s = s.trim();
    crate::validate::region_id(s)?;
    Ok(s.to_string())
}

fn parse_plugin(s: &str) -> Result<String, ValueError> {
    let s = s.trim();
    crate::validate::plugin_name(s)?;
    Ok(s.to_string())
}

fn parse_tag_key(s: &str) -> Result<String, ValueError> {
    let s = s.trim();
    crate::validate::tag_key(s)?;
    Ok(s.to_string())
}

/// The slowest and fastest `--aliyun.rate-limit` besides 0: one request in
/// 1000 s, a million a second. Outside these the spacing between requests
/// does not fit a duration (or rounds to none).
pub const MIN_RATE: f64 = 0.001;
pub const MAX_RATE: f64 = 1_000_000.0;

fn parse_rate(s: &str) -> Result<f64, ValueError> {
    match s.trim().parse::<f64>() {
        Ok(r) if r == 0.0 || (MIN_RATE..=MAX_RATE).contains(&r) => Ok(r),
        _ => Err(ValueError::Rate(s.to_string())),
    }
}

/// Prometheus exporter for Alibaba Cloud ECS Cloud Assistant: agents, plugins
/// and instance states of every region, as labelled series on /metrics.
#[derive(Parser, Debug, Clone)]
#[command(name = "cloud-assistant-exporter", version = crate::own_metrics::VERSION, long_version = LONG_VERSION.as_str())]
pub struct Flags {
    /// Address to serve on, e.g. 0.0.0.0:9791, [::]:9791, 127.0.0.1:0
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9791", value_parser = parse_listen, value_name = "ADDR")]
    pub listen_address: SocketAddr,

    /// Path of the metrics page
    #[arg(long = "web.telemetry-path", default_value = "/metrics", value_parser = parse_path, value_name = "PATH")]
    pub telemetry_path: String,

    /// ECS API URL template; {region} is replaced by the region id. Unset: DescribeRegions at
    /// https://ecs.aliyuncs.com, then each region's own endpoint
    #[arg(long = "aliyun.endpoint", value_parser = parse_endpoint, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Comma-separated region ids to walk instead of all that DescribeRegions returns
    #[arg(long = "aliyun.regions", value_delimiter = ',', value_parser = parse_region, value_name = "IDS")]
    pub regions: Vec<String>,

    /// How often each (account, region) is walked, each on its own clock: a walk starts once the previous one has ended and this long has passed since its start (30s, 2m, ...)
    #[arg(long = "collect.interval", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,

    /// A region's walk that takes longer is abandoned, and the region keeps its last good series
    #[arg(long = "collect.timeout", default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub region_timeout: Duration,

    /// Comma-separated plugin names to sweep in every walk besides the discovered ones
    #[arg(long = "collect.plugins", value_delimiter = ',', value_parser = parse_plugin, value_name = "NAMES")]
    pub plugins: Vec<String>,

    /// How often plugin names are discovered per instance; 0 turns discovery off
    #[arg(long = "collect.plugin-discovery-interval", default_value = "1h", value_parser = parse_duration_or_zero, value_name = "DURATION")]
    pub plugin_discovery_interval: Duration,

    /// How long a region (or plugin sweep) that keeps failing serves its last good series
    #[arg(long = "collect.max-stale", default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    pub max_stale: Duration,

    /// Plugin names swept per account at most; names past it are logged once and counted
    #[arg(long = "collect.max-plugin-names", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..), value_name = "N")]
    pub max_plugin_names: u16,

    /// How often instance names, zones, types and tags (and activation codes) are walked; 0 turns it off
    #[arg(long = "collect.instance-info-interval", default_value = "10m", value_parser = parse_duration_or_zero, value_name = "DURATION")]
    pub instance_info_interval: Duration,

    /// How often each region's failed command invocations and scheduled tasks are read; 0 turns it off
    #[arg(long = "collect.invocations-interval", default_value = "5m", value_parser = parse_duration_or_zero, value_name = "DURATION")]
    pub invocations_interval: Duration,

    /// Pages of 50 invocations read per walk at most (per region and filter); a walk cut short is logged once and counted
    #[arg(long = "collect.invocations-max-pages", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..), value_name = "N")]
    pub invocations_max_pages: u16,

    /// Distinct command_name label values per account at most; failures of further commands count under "_other"
    #[arg(long = "collect.max-command-names", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..), value_name = "N")]
    pub max_command_names: u16,

    /// Comma-separated tag keys exported as tag_<key> labels on the info series
    #[arg(long = "collect.tags", value_delimiter = ',', value_parser = parse_tag_key, value_name = "KEYS")]
    pub tags: Vec<String>,

    /// Walk hybrid managed instances (mi-*) and activation codes (--collect.managed-instances=false turns it off)
    #[arg(long = "collect.managed-instances", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, value_name = "BOOL")]
    pub managed_instances: bool,

    /// all: every state of a state set is a series (0/1); current: only the current state (value 1)
    #[arg(
        long = "collect.state-sets",
        default_value = "all",
        value_enum,
        value_name = "MODE"
    )]
    pub state_sets: StateSetsFlag,

    /// API requests in flight at once, all regions and actions together
    #[arg(long = "aliyun.max-concurrency", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024), value_name = "N")]
    pub max_concurrency: u16,

    /// API requests per second at most, all together; 0 = no limit
    #[arg(long = "aliyun.rate-limit", default_value = "20", value_parser = parse_rate, value_name = "PER_SECOND")]
    pub rate_limit: f64,

    /// Timeout of one API request
    #[arg(long = "aliyun.request-timeout", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,

    /// Assume this RAM role (STS AssumeRole) with whatever the credential chain yields
    #[arg(long = "aliyun.role-arn", value_parser = parse_role_arn, value_name = "ARN")]
    pub role_arn: Option<String>,

    /// STS URL; at its default, ALIBABA_CLOUD_STS_REGION=R picks https://sts.R.aliyuncs.com
    #[arg(long = "aliyun.sts-endpoint", default_value = crate::credentials::DEFAULT_STS_ENDPOINT, value_parser = parse_url, value_name = "URL")]
    pub sts_endpoint: String,

    /// ECS instance metadata service URL (for the instance's RAM role)
    #[arg(long = "aliyun.metadata-endpoint", default_value = crate::credentials::DEFAULT_METADATA_ENDPOINT, value_parser = parse_url, value_name = "URL")]
    pub metadata_endpoint: String,

    /// Number of replicas the (account, region) pairs are split over
    #[arg(long = "shard.count", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub shard_count: u64,

    /// Which of the --shard.count replicas this is (0-based)
    #[arg(long = "shard.index", default_value_t = 0, value_name = "I")]
    pub shard_index: u64,

    /// Take --shard.index from the number after the last '-' of the hostname (a StatefulSet pod)
    #[arg(long = "shard.index-from-hostname", conflicts_with = "shard_index")]
    pub shard_index_from_hostname: bool,

    /// YAML file of several accounts (name, endpoint, regions, credentials); every series then
    /// carries the label account. Re-read on SIGHUP and POST /-/reload
    #[arg(long = "config.file", value_name = "FILE", conflicts_with_all = ["demo", "role_arn"])]
    pub config_file: Option<std::path::PathBuf>,

    /// TLS, basic auth and extra headers for the HTTP server (the exporter-toolkit YAML)
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<std::path::PathBuf>,

    /// /metrics requests served at once; past it 503 at once; 0 = no limit
    #[arg(long = "web.max-requests", default_value_t = 40, value_parser = parse_max_requests, value_name = "N")]
    pub max_requests: usize,

    /// Enable POST /-/reload (403 without); SIGHUP always reloads
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Serve a built-in simulated fleet instead of a real account
    #[arg(long = "demo")]
    pub demo: bool,

    /// Log level
    #[arg(
        long = "log.level",
        default_value = "info",
        value_enum,
        value_name = "LEVEL"
    )]
    pub log_level: LogLevel,

    /// Log format
    #[arg(
        long = "log.format",
        default_value = "logfmt",
        value_enum,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
}

static LONG_VERSION: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(crate::own_metrics::long_version);

impl Flags {
    /// Checks that go across flags (clap checks each flag alone).
    pub fn validate(&self) -> Result<(), FlagsError> {
        crate::api::tag_label_names(&self.tags).map_err(FlagsError::Tags)?;
        if self.shard_index >= self.shard_count {
            return Err(FlagsError::ShardIndex {
                index: self.shard_index,
                count: self.shard_count,
            });
        }
        Ok(())
    }

    /// The shard index in force: `--shard.index`, or with
    /// `--shard.index-from-hostname` the hostname's trailing number
    /// (`HOSTNAME` through `env`, else the kernel's hostname).
    pub fn resolve_shard_index(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<u64, FlagsError> {
        if !self.shard_index_from_hostname {
            return Ok(self.shard_index);
        }
        let host = hostname(env).ok_or(FlagsError::NoHostname)?;
        let index = index_from_hostname(&host)?;
        if index >= self.shard_count {
            return Err(FlagsError::HostnameShardIndex {
                index,
                host,
                count: self.shard_count,
            });
        }
        Ok(index)
    }
}

fn hostname(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let clean = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    env("HOSTNAME")
        .and_then(clean)
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .and_then(clean)
        })
        .or_else(|| {
            let out = std::process::Command::new("hostname").output().ok()?;
            clean(String::from_utf8_lossy(&out.stdout).into_owned())
        })
}

/// `exporter-2` → 2; a domain after the first `.` is ignored
/// (`exporter-2.exporter.monitoring.svc` → 2).
pub fn index_from_hostname(host: &str) -> Result<u64, FlagsError> {
    let short = host.split('.').next().unwrap_or(host);
    short
        .rsplit_once('-')
        .and_then(|(_, n)| {
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse::<u64>().ok())
                .flatten()
        })
        .ok_or_else(|| FlagsError::HostnameIndex(host.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(
            std::iter::once("cloud-assistant-exporter").chain(args.iter().copied()),
        )
    }

    #[test]
    fn defaults_match_the_spec() {
        let f = parse(&[]).expect("defaults");
        assert_eq!(f.listen_address.to_string(), "0.0.0.0:9791");
        assert_eq!(f.telemetry_path, "/metrics");
        assert_eq!(f.interval, Duration::from_secs(60));
        assert_eq!(f.plugin_discovery_interval, Duration::from_secs(3600));
        assert_eq!((f.max_concurrency, f.rate_limit), (8, 20.0));
        assert_eq!(f.state_sets, StateSetsFlag::All);
        assert_eq!((f.shard_count, f.shard_index), (1, 0));
        assert!(f.regions.is_empty() && f.plugins.is_empty() && f.endpoint.is_none() && !f.demo);
    }

    #[test]
    fn parses_values() {
        let f = parse(&[
            "--web.listen-address",
            ":9999",
            "--aliyun.regions",
            "cn-hangzhou,cn-shanghai",
            "--collect.interval",
            "2m",
            "--collect.plugins",
            "a,b",
            "--collect.plugin-discovery-interval",
            "0",
            "--aliyun.endpoint",
            "http://127.0.0.1:8080/",
            "--collect.state-sets",
            "current",
            "--log.format",
            "json",
            "--aliyun.rate-limit",
            "0",
        ])
        .expect("valid");
        assert_eq!(f.listen_address.to_string(), "0.0.0.0:9999");
        assert_eq!(f.regions, vec!["cn-hangzhou", "cn-shanghai"]);
        assert_eq!(f.interval, Duration::from_secs(120));
        assert_eq!(f.plugins, vec!["a", "b"]);
        assert_eq!(f.plugin_discovery_interval, Duration::ZERO);
        assert_eq!(f.endpoint.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(f.state_sets, StateSetsFlag::Current);
    }

    #[test]
    fn rejects_bad_values_with_usage_errors() {
        for bad in [
            &["--web.listen-address", "localhost"][..],
            &["--web.listen-address", "0.0.0.0:99999"],
            &["--collect.interval", "soon"],
            &["--collect.interval", "0"],
            &["--aliyun.endpoint", "ecs.aliyuncs.com"],
            &["--aliyun.endpoint", "https://{zone}.example"],
            &["--aliyun.regions", "CN_HANGZHOU"],
            &["--aliyun.max-concurrency", "0"],
            &["--aliyun.rate-limit", "-1"],
            &["--aliyun.rate-limit", "1e-300"],
            &["--aliyun.rate-limit", "1e308"],
            &["--aliyun.rate-limit", "0.0000001"],
            &["--aliyun.rate-limit", "NaN"],
            &["--aliyun.rate-limit", "inf"],
            &["--web.telemetry-path", "metrics"],
            &["--log.level", "trace"],
            &["--no-such-flag"],
            &["--config.file", "a.yml", "--demo"],
            &[
                "--config.file",
                "a.yml",
                "--aliyun.role-arn",
                "acs:ram::1:role/r",
            ],
        ] {
            let e = parse(bad).expect_err(&format!("{bad:?}"));
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let f = parse(&["--shard.count", "2", "--shard.index", "2"]).expect("parses");
        assert!(
            f.validate()
                .unwrap_err()
                .to_string()
                .contains("--shard.index")
        );
    }

    #[test]
    fn shard_index_from_hostname() {
        assert_eq!(index_from_hostname("exporter-2"), Ok(2));
        assert_eq!(index_from_hostname("cloud-assistant-exporter-10"), Ok(10));
        assert_eq!(
            index_from_hostname("exporter-3.exporter.monitoring.svc"),
            Ok(3)
        );
        for bad in ["exporter", "exporter-", "exporter-x1", "exporter-+1", ""] {
            assert!(index_from_hostname(bad).is_err(), "{bad}");
        }
        let f = parse(&["--shard.count", "3", "--shard.index-from-hostname"]).expect("parses");
        let env = |host: &'static str| move |k: &str| (k == "HOSTNAME").then(|| host.to_string());
        assert_eq!(f.resolve_shard_index(&env("exporter-2")), Ok(2));
        assert!(
            f.resolve_shard_index(&env("exporter-3"))
                .unwrap_err()
                .to_string()
                .contains("below")
        );
        assert!(
            f.resolve_shard_index(&env("exporter"))
                .unwrap_err()
                .to_string()
                .contains("-<number>")
        );
        assert!(parse(&["--shard.index", "1", "--shard.index-from-hostname"]).is_err());
        assert_eq!(
            parse(&[]).expect("defaults").resolve_shard_index(&env("x")),
            Ok(0)
        );
    }
}
