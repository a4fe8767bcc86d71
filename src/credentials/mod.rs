//! Where the exporter's API credentials come from, and how they stay fresh.
//!
//! A [`CredentialSpec`] describes one source: an AccessKey, an OIDC role
//! (RRSA), the instance's RAM role, a role assumed with another source's
//! credentials, a CLI profile, a section of the credentials file, or the
//! default chain. [`CredentialProvider::from_spec`] turns it into a provider:
//! long-term keys are held as they are, temporary ones are refreshed in the
//! background before they expire. The client asks the provider for the set
//! in use ([`CredentialProvider::valid`]) and never knows where it came from.
//!
//! Every file here reads the environment through [`Env`], captured once at
//! start, so tests never touch the process environment.

mod assume_role;
mod chain;
mod cli_profile;
mod detect;
mod ecs_metadata;
mod env;
#[cfg(test)]
mod fuzz;
mod ini;
mod oidc;
mod provider;
mod refresh;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::secret::Secret;

pub use assume_role::{RoleSpec, StsAnswerError, StsProblem};
pub use cli_profile::{CliProfileError, ProfileProblem};
pub use ecs_metadata::{MetadataError, NoToken};
pub use env::EnvError;
pub use ini::{CredentialsFileError, IniError, SectionProblem};
pub use oidc::OidcSpec;
pub use provider::CredentialProvider;
pub use refresh::{RefreshMetrics, RefreshPolicy};

/// The `source` label values of the refresh metric.
pub const SOURCE_ENV: &str = "env";
pub const SOURCE_OIDC: &str = "oidc";
pub const SOURCE_CLI_PROFILE: &str = "cli_profile";
pub const SOURCE_CREDENTIALS_FILE: &str = "credentials_file";
pub const SOURCE_ECS_RAM_ROLE: &str = "ecs_ram_role";
pub const SOURCE_ASSUME_ROLE: &str = "assume_role";
/// Keys an account of `--config.file` names (its secret read from a file).
pub const SOURCE_CONFIG_FILE: &str = "config_file";

pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com";
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://100.100.100.200";
pub const STS_API_VERSION: &str = "2015-04-01";
pub const DEFAULT_ROLE_SESSION_NAME: &str = "cloud-assistant-exporter";
pub const DEFAULT_DURATION_SECONDS: u32 = 3600;

/// One set of credentials. Secrets only in [`Secret`].
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
    /// When temporary credentials stop working (Unix seconds); `None` for
    /// long-term keys.
    pub expiration: Option<i64>,
}

impl Credentials {
    /// A long-term AccessKey (no token, no expiry).
    pub fn access_key(id: impl Into<String>, secret: Secret) -> Self {
        Credentials {
            access_key_id: id.into(),
            access_key_secret: secret,
            security_token: None,
            expiration: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// No source of the chain is configured.
    #[error(
        "no credentials found; tried: {}. Configure one of them (see \"Credentials\" in the README), or run with --demo",
        .tried.join("; ")
    )]
    NotConfigured { tried: Vec<String> },
    // A source is configured, but wrongly (each names the file, profile or
    // key; never a value).
    #[error(transparent)]
    Env(#[from] env::EnvError),
    #[error(transparent)]
    CliProfile(#[from] cli_profile::CliProfileError),
    #[error(transparent)]
    CredentialsFile(#[from] ini::CredentialsFileError),
    /// A profile by name that is neither a CLI profile nor a section of
    /// the credentials file.
    #[error("profile {name:?}: no CLI profile of that name, and {source}")]
    Profile {
        name: String,
        source: Box<CredentialsError>,
    },
    /// An endpoint or region the sources would use breaks its rule.
    #[error(transparent)]
    Invalid(#[from] crate::validate::Invalid),
    #[error("ALIBABA_CLOUD_STS_REGION: {0}")]
    StsRegion(crate::validate::Invalid),
    #[error("cannot build the HTTP client: {0}")]
    Http(reqwest::Error),
    /// A source could not hand out credentials (STS or the metadata service failed).
    #[error("{from}: {reason}")]
    Fetch {
        from: &'static str,
        reason: FetchError,
    },
    /// Temporary credentials expired and no fresh ones came in time.
    #[error("{from} credentials expired and no fresh ones came within {waited:?}")]
    Expired {
        from: &'static str,
        waited: Duration,
    },
    /// Temporary credentials expired and the last refresh failed (the
    /// refresh goes on, with backoff).
    #[error("credentials expired; the last refresh failed: {0}")]
    RefreshFailing(Arc<CredentialsError>),
    /// A refresh brought the set already in use (the metadata service hands
    /// out the same one until it rotates it).
    #[error("the source handed out the same credentials again")]
    SameAgain,
}

/// Why a source could not hand out credentials.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("{action} at {endpoint}: {problem}")]
    Sts {
        action: &'static str,
        endpoint: String,
        problem: StsProblem,
    },
    #[error("cannot read the OIDC token file {}: {source}", .path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the OIDC token file {} is empty", .0.display())]
    EmptyToken(PathBuf),
    /// A source of the tests that is down.
    #[cfg(test)]
    #[error("down")]
    Down,
}

impl CredentialsError {
    /// A source is there but set up wrongly: nothing a retry mends.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            CredentialsError::NotConfigured { .. }
                | CredentialsError::Env(_)
                | CredentialsError::CliProfile(_)
                | CredentialsError::CredentialsFile(_)
                | CredentialsError::Profile { .. }
                | CredentialsError::Invalid(_)
                | CredentialsError::StsRegion(_)
                | CredentialsError::Http(_)
        )
    }

    fn fetch(from: &'static str, reason: impl Into<FetchError>) -> Self {
        CredentialsError::Fetch {
            from,
            reason: reason.into(),
        }
    }
}

/// A typed description of a credential source: what the default chain
/// picks, and what an account of a config file can name.
#[derive(Clone, Debug, PartialEq)]
pub enum CredentialSpec {
    /// The default chain: environment, OIDC, CLI profile, credentials file,
    /// ECS RAM role; the first one configured wins.
    Chain,
    /// A fixed AccessKey, with a security token for fixed STS credentials.
    /// `origin` is the metric's `source` label (`env`, `cli_profile`, ...).
    AccessKey {
        origin: &'static str,
        access_key_id: String,
        access_key_secret: Secret,
        security_token: Option<Secret>,
    },
    /// STS AssumeRoleWithOIDC with a token file (RRSA).
    Oidc {
        origin: &'static str,
        spec: OidcSpec,
    },
    /// The RAM role of the ECS instance, from the metadata service; the role
    /// name is looked up when not given.
    EcsRamRole {
        origin: &'static str,
        role_name: Option<String>,
    },
    /// STS AssumeRole, signed with the credentials of `source`.
    AssumeRole {
        role: RoleSpec,
        source: Box<CredentialSpec>,
    },
    /// A profile of the CLI config `~/.aliyun/config.json` (`None`: as the
    /// chain picks it).
    CliProfile { profile: Option<String> },
    /// A section of the credentials file (`None`: as the chain picks them).
    CredentialsFile {
        path: Option<PathBuf>,
        profile: Option<String>,
    },
    /// A profile by name: the CLI config's profile of that name when it has
    /// one, else that section of the credentials file.
    Profile { name: String },
}

/// The environment variables the sources read, captured once at start.
/// Values are held as [`Secret`]s: some of them are.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, Secret>,
}

/// Every variable a source reads.
pub const ENV_VARS: &[&str] = &[
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    "ALIBABA_CLOUD_ROLE_SESSION_NAME",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CLI_PROFILE_DISABLED",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
    "ALIBABA_CLOUD_ECS_METADATA",
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED",
    "ALIBABA_CLOUD_IMDSV1_DISABLED",
    "ALIBABA_CLOUD_STS_REGION",
    "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED",
    "HOME",
];

impl Env {
    /// Reads [`ENV_VARS`] through `get` (the process environment in `main`,
    /// a map in tests).
    pub fn capture(get: impl Fn(&str) -> Option<String>) -> Self {
        let vars = ENV_VARS
            .iter()
            .filter_map(|k| get(k).map(|v| (k.to_string(), Secret::new(v))))
            .collect();
        Env { vars }
    }

    /// The value, unless unset or empty.
    fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(Secret::expose)
            .filter(|v| !v.trim().is_empty())
    }

    fn is_set(&self, key: &str) -> bool {
        self.vars.contains_key(key)
    }

    fn secret(&self, key: &str) -> Option<Secret> {
        self.get(key).map(Secret::new)
    }

    /// `true` (any case), as the SDKs read their switches.
    fn is_true(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// `~` for the CLI config and the credentials file.
    fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from)
    }

    /// A fingerprint of everything the chain and the profiles read besides
    /// the environment (captured once, at start): the CLI config and the
    /// credentials files, as they are now. Equal fingerprints mean a
    /// rebuilt provider would come out the same, so a reload may keep the
    /// running one instead of asking STS again.
    pub fn inputs_fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut files: Vec<PathBuf> = Vec::new();
        if let Some(home) = self.home() {
            files.push(home.join(".aliyun").join("config.json"));
            files.extend(ini::default_paths(&home));
        }
        if let Some(p) = self.get("ALIBABA_CLOUD_CREDENTIALS_FILE") {
            files.push(PathBuf::from(p));
        }
        for f in files {
            f.hash(&mut h);
            std::fs::read(&f).ok().hash(&mut h);
        }
        h.finish()
    }
}

/// What the sources share: the environment, the endpoints, HTTP clients,
/// the refresh metric and policy. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    env: Env,
    sts_endpoint: String,
    metadata_endpoint: String,
    http: reqwest::Client,
    metadata_http: reqwest::Client,
    timeout: Duration,
    metrics: Option<RefreshMetrics>,
    policy: RefreshPolicy,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("sts_endpoint", &self.sts_endpoint)
            .field("metadata_endpoint", &self.metadata_endpoint)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Context`].
#[derive(Clone, Debug)]
pub struct ContextOptions {
    /// `--aliyun.sts-endpoint`; left at its default, `ALIBABA_CLOUD_STS_REGION` picks a regional one.
    pub sts_endpoint: String,
    /// `--aliyun.metadata-endpoint`.
    pub metadata_endpoint: String,
    /// Timeout of one STS request, and how long a caller waits for fresh credentials.
    pub timeout: Duration,
    pub metrics: Option<RefreshMetrics>,
    pub policy: RefreshPolicy,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            sts_endpoint: DEFAULT_STS_ENDPOINT.into(),
            metadata_endpoint: DEFAULT_METADATA_ENDPOINT.into(),
            timeout: Duration::from_secs(10),
            metrics: None,
            policy: RefreshPolicy::default(),
        }
    }
}

/// The metadata service is link-local: a machine outside ECS must fail in
/// about a second, not hang.
const METADATA_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const METADATA_TIMEOUT: Duration = Duration::from_secs(3);

impl Context {
    pub fn new(env: Env, opts: ContextOptions) -> Result<Self, CredentialsError> {
        crate::validate::endpoint_url(&opts.sts_endpoint)?;
        crate::validate::endpoint_url(&opts.metadata_endpoint)?;
        let agent = concat!("cloud-assistant-exporter/", env!("CARGO_PKG_VERSION"));
        // Neither client follows a redirect: a signed STS request, an OIDC
        // token or a metadata token goes to its endpoint and nowhere else.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(3)))
            .user_agent(agent)
            .build()
            .map_err(CredentialsError::Http)?;
        // Never through a proxy: the metadata service is only reachable directly.
        let metadata_http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(METADATA_CONNECT_TIMEOUT)
            .timeout(METADATA_TIMEOUT)
            .user_agent(agent)
            .build()
            .map_err(CredentialsError::Http)?;
        if let Some(region) = env.get("ALIBABA_CLOUD_STS_REGION") {
            crate::validate::region_id(region.trim()).map_err(CredentialsError::StsRegion)?;
        }
        let sts_endpoint = sts_endpoint(&opts.sts_endpoint, &env);
        Ok(Context {
            env,
            sts_endpoint,
            metadata_endpoint: opts.metadata_endpoint.trim_end_matches('/').to_string(),
            http,
            metadata_http,
            timeout: opts.timeout,
            metrics: opts.metrics,
            policy: opts.policy,
        })
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The STS URL in use.
    pub fn sts_endpoint(&self) -> &str {
        &self.sts_endpoint
    }

    pub fn metadata_endpoint(&self) -> &str {
        &self.metadata_endpoint
    }
}

/// The STS URL: the flag when it is not the default, else the regional
/// endpoint of `ALIBABA_CLOUD_STS_REGION` (the VPC one when
/// `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`), else the default.
pub fn sts_endpoint(flag: &str, env: &Env) -> String {
    let flag = flag.trim_end_matches('/');
    if flag != DEFAULT_STS_ENDPOINT {
        return flag.to_string();
    }
    match env.get("ALIBABA_CLOUD_STS_REGION") {
        Some(region) if env.is_true("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED") => {
            format!("https://sts-vpc.{}.aliyuncs.com", region.trim())
        }
        Some(region) => format!("https://sts.{}.aliyuncs.com", region.trim()),
        None => DEFAULT_STS_ENDPOINT.to_string(),
    }
}

/// What [`Source::fetch`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One place credentials come from. `fetch` runs at start and at every
/// refresh; only temporary credentials (with an expiration) are refreshed.
pub trait Source: Send + Sync {
    /// The `source` label of the refresh metric.
    fn label(&self) -> &'static str;
    /// What it is, for the log line at start: names and paths, never a value.
    fn describe(&self) -> String;
    fn fetch<'a>(
        &'a self,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<Credentials, CredentialsError>>;
}

/// Unix milliseconds now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn env(pairs: &[(&str, &str)]) -> Env {
        Env::capture(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn sts_endpoint_from_flag_region_and_vpc() {
        let none = env(&[]);
        assert_eq!(
            sts_endpoint(DEFAULT_STS_ENDPOINT, &none),
            DEFAULT_STS_ENDPOINT
        );
        let r = env(&[("ALIBABA_CLOUD_STS_REGION", "cn-shanghai")]);
        assert_eq!(
            sts_endpoint(DEFAULT_STS_ENDPOINT, &r),
            "https://sts.cn-shanghai.aliyuncs.com"
        );
        let vpc = env(&[
            ("ALIBABA_CLOUD_STS_REGION", "cn-shanghai"),
            ("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "TRUE"),
        ]);
        assert_eq!(
            sts_endpoint(DEFAULT_STS_ENDPOINT, &vpc),
            "https://sts-vpc.cn-shanghai.aliyuncs.com"
        );
        // An explicit flag wins over the region.
        assert_eq!(
            sts_endpoint("http://127.0.0.1:9000/", &vpc),
            "http://127.0.0.1:9000"
        );
    }

    #[test]
    fn env_hides_values_and_reads_switches() {
        let e = env(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cret"),
            ("ALIBABA_CLOUD_IMDSV1_DISABLED", "True"),
            ("ALIBABA_CLOUD_PROFILE", ""),
            ("NOT_READ", "x"),
        ]);
        assert!(!format!("{e:?}").contains("s3cret"));
        assert!(e.is_true("ALIBABA_CLOUD_IMDSV1_DISABLED"));
        assert!(!e.is_true("ALIBABA_CLOUD_ECS_METADATA_DISABLED"));
        assert_eq!(e.get("ALIBABA_CLOUD_PROFILE"), None, "empty is unset");
        assert!(e.is_set("ALIBABA_CLOUD_PROFILE"));
        assert!(!e.is_set("NOT_READ"));
    }
}
