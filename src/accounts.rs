//! The accounts the exporter walks, live: each with its credential provider
//! and client, under the limits all accounts share.
//!
//! Every mode is a list of accounts. Without `--config.file` the flags make
//! one unnamed account (the credential chain, `--aliyun.role-arn`,
//! `--aliyun.endpoint`); `--demo` is one account pointed at the in-process
//! simulator; `--config.file` names several. [`AccountSet`] builds them at
//! start and again at every reload, keeping an account's client when its
//! entry did not change. An empty name means series carry no `account`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prometheus::Registry;

use crate::client::{ApiMetrics, Client, ClientOptions};
use crate::config::accounts_file::{self, AccountConfig, ConfigError, CredentialConfig};
use crate::credentials::{self as creds, CredentialProvider, CredentialSpec, RefreshMetrics};
use crate::secret::Secret;

/// One account the collector walks.
#[derive(Clone, Debug)]
pub struct Account {
    /// The `account` label value; empty without `--config.file`.
    pub name: String,
    pub client: Arc<Client>,
    /// Regions to walk; empty = the collector's default (`--aliyun.regions`,
    /// else all that DescribeRegions returns).
    pub regions: Vec<String>,
}

/// Where the list of accounts comes from.
#[derive(Clone, Debug)]
pub enum AccountsSource {
    /// Fixed at start: the flags' one account, or the demo's.
    Fixed(Vec<AccountConfig>),
    /// `--config.file`, read at start and at every reload.
    File(PathBuf),
}

/// Why the accounts could not be (re)built. The running ones stay.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}{message}", prefix(.account, "credentials: "))]
    Credentials { account: String, message: String },
    #[error("{}{message}", prefix(.account, ""))]
    Build { account: String, message: String },
}

/// `account "prod": credentials: ` for a named account; nothing for the
/// unnamed one, whose errors read as the exporter's own.
fn prefix(name: &str, what: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("account {name:?}: {what}")
    }
}

/// What every account is built with; fixed at start.
pub struct BuildOptions {
    pub source: AccountsSource,
    /// `--aliyun.endpoint`, for accounts without an endpoint of their own.
    pub default_endpoint: Option<String>,
    /// Client settings of every account; `limits` shared by all of them.
    pub client: ClientOptions,
    /// The environment the credential sources read (captured at start).
    pub env: creds::Env,
    /// STS and metadata endpoints, timeout and refresh policy; the refresh
    /// metric is each account's own.
    pub credentials: creds::ContextOptions,
    pub registry: Registry,
}

/// An account in use, with what it was built from.
#[derive(Clone)]
struct Live {
    config: AccountConfig,
    spec: CredentialSpec,
    account: Account,
}

/// The accounts in use, built at start and at every reload.
pub struct AccountSet {
    opts: BuildOptions,
    /// Also keeps two reloads from running at once.
    live: tokio::sync::Mutex<Vec<Live>>,
    /// The self-metrics of each account, kept while the account exists so
    /// a reload goes on counting where it was.
    metrics: Mutex<HashMap<String, (ApiMetrics, RefreshMetrics)>>,
}

/// The credential source an entry names, with its secrets read from their
/// files now (at start and at every reload).
pub fn credential_spec(config: &CredentialConfig) -> Result<CredentialSpec, String> {
    let key = |id: &str, secret: Secret, token: Option<Secret>| CredentialSpec::AccessKey {
        origin: creds::SOURCE_CONFIG_FILE,
        access_key_id: id.to_string(),
        access_key_secret: secret,
        security_token: token,
    };
    Ok(match config {
        CredentialConfig::Chain => CredentialSpec::Chain,
        CredentialConfig::AccessKey {
            access_key_id,
            access_key_secret_file: s,
        } => key(
            access_key_id,
            read_secret("access_key_secret_file", s)?,
            None,
        ),
        CredentialConfig::StsToken {
            access_key_id,
            access_key_secret_file: s,
            security_token_file: t,
        } => key(
            access_key_id,
            read_secret("access_key_secret_file", s)?,
            Some(read_secret("security_token_file", t)?),
        ),
        CredentialConfig::RamRoleArn { role, source } => CredentialSpec::AssumeRole {
            role: role.clone(),
            source: Box::new(credential_spec(source).map_err(|e| format!("source: {e}"))?),
        },
        CredentialConfig::OidcRoleArn(spec) => CredentialSpec::Oidc {
            origin: creds::SOURCE_OIDC,
            spec: spec.clone(),
        },
        CredentialConfig::EcsRamRole { role_name } => CredentialSpec::EcsRamRole {
            origin: creds::SOURCE_ECS_RAM_ROLE,
            role_name: role_name.clone(),
        },
        CredentialConfig::Profile { name } => CredentialSpec::Profile { name: name.clone() },
        CredentialConfig::Fixed {
            access_key_id,
            access_key_secret,
        } => CredentialSpec::AccessKey {
            origin: "demo",
            access_key_id: access_key_id.clone(),
            access_key_secret: access_key_secret.clone(),
            security_token: None,
        },
    })
}

/// A secret file's content, trimmed (a trailing newline is not part of it).
/// Errors name the key and the path, never the content.
fn read_secret(key: &str, path: &Path) -> Result<Secret, String> {
    let raw = std::fs::read_to_string(path)
        .map(Secret::new)
        .map_err(|e| format!("{key} {}: cannot read it: {e}", path.display()))?;
    let value = raw.expose().trim();
    if value.is_empty() {
        return Err(format!("{key} {} is empty", path.display()));
    }
    Ok(Secret::new(value))
}

/// Whether a running provider of `spec` may be kept as it is: not when it
/// depends on files outside the config file (the chain, profiles), which a
/// reload must read again.
pub fn pinned(spec: &CredentialSpec) -> bool {
    match spec {
        CredentialSpec::Chain
        | CredentialSpec::CliProfile { .. }
        | CredentialSpec::CredentialsFile { .. }
        | CredentialSpec::Profile { .. } => false,
        CredentialSpec::AssumeRole { source, .. } => pinned(source),
        CredentialSpec::AccessKey { .. }
        | CredentialSpec::Oidc { .. }
        | CredentialSpec::EcsRamRole { .. } => true,
    }
}

/// An account waiting for its credentials.
struct Pending {
    config: AccountConfig,
    spec: CredentialSpec,
    api: ApiMetrics,
}

impl AccountSet {
    pub fn new(opts: BuildOptions) -> Self {
        AccountSet {
            opts,
            live: tokio::sync::Mutex::new(Vec::new()),
            metrics: Mutex::new(HashMap::new()),
        }
    }

    /// The file accounts are read from (`None`: fixed at start).
    pub fn file(&self) -> Option<&std::path::Path> {
        match &self.opts.source {
            AccountsSource::File(p) => Some(p),
            AccountsSource::Fixed(_) => None,
        }
    }

    fn configs(&self) -> Result<Vec<AccountConfig>, AccountsError> {
        match &self.opts.source {
            AccountsSource::Fixed(list) => Ok(list.clone()),
            AccountsSource::File(path) => Ok(accounts_file::load(path)?.accounts),
        }
    }

    /// Builds the accounts (credentials fetched, a client each). On success
    /// they replace the ones in use and are returned; on failure the ones in
    /// use stay.
    pub async fn load(&self) -> Result<Vec<Account>, AccountsError> {
        let mut live = self.live.lock().await;
        let built = self.build(&live).await;
        if let Ok(new) = built.as_ref() {
            *live = new.clone();
        }
        let keep: Vec<&str> = live.iter().map(|l| l.config.name.as_str()).collect();
        self.prune_metrics(&keep);
        built.map(|new| new.into_iter().map(|l| l.account).collect())
    }

    async fn build(&self, running: &[Live]) -> Result<Vec<Live>, AccountsError> {
        let configs = self.configs()?;
        let mut done: Vec<Option<Live>> = Vec::with_capacity(configs.len());
        let mut pending: HashMap<usize, Pending> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, config) in configs.into_iter().enumerate() {
            let name = config.name.clone();
            let spec = credential_spec(&config.credentials).map_err(|message| {
                AccountsError::Credentials {
                    account: name.clone(),
                    message,
                }
            })?;
            let kept = running.iter().find(|l| {
                l.config.name == config.name
                    && l.config.endpoint == config.endpoint
                    && l.config.credentials == config.credentials
                    && l.spec == spec
                    && pinned(&spec)
            });
            if let Some(old) = kept {
                tracing::debug!(account = %name, "account unchanged; keeping its client and credentials");
                done.push(Some(Live {
                    account: Account {
                        name,
                        client: Arc::clone(&old.account.client),
                        regions: config.regions.clone(),
                    },
                    config,
                    spec,
                }));
                continue;
            }
            let build_error = |message: String| AccountsError::Build {
                account: name.clone(),
                message,
            };
            let (api, refresh) = self
                .metrics_for(&name)
                .map_err(|e| build_error(format!("metrics registry: {e}")))?;
            let ctx = creds::Context::new(
                self.opts.env.clone(),
                creds::ContextOptions {
                    metrics: Some(refresh),
                    ..self.opts.credentials.clone()
                },
            )
            .map_err(|e| build_error(e.to_string()))?;
            let task_spec = spec.clone();
            tasks.spawn(async move { (i, CredentialProvider::from_spec(&task_spec, &ctx).await) });
            pending.insert(i, Pending { config, spec, api });
            done.push(None);
        }
        // Credentials of all new accounts are fetched at once; the first
        // failure ends the load (the other fetches are dropped with the set).
        while let Some(joined) = tasks.join_next().await {
            let (i, provider) = joined.map_err(|e| AccountsError::Build {
                account: String::new(),
                message: format!("fetching credentials failed: {e}"),
            })?;
            let Some(p) = pending.remove(&i) else {
                continue;
            };
            let name = p.config.name.clone();
            let provider = provider.map_err(|e| AccountsError::Credentials {
                account: name.clone(),
                message: e.to_string(),
            })?;
            tracing::info!(account = %name, source = provider.source(), via = %provider.describe(), "credentials found");
            let endpoint = p
                .config
                .endpoint
                .clone()
                .or_else(|| self.opts.default_endpoint.clone());
            let client = Client::new(
                provider,
                ClientOptions {
                    endpoint_template: endpoint,
                    ..self.opts.client.clone()
                },
                p.api,
            )
            .map_err(|message| AccountsError::Build {
                account: name.clone(),
                message,
            })?;
            if let Some(slot) = done.get_mut(i) {
                *slot = Some(Live {
                    account: Account {
                        name,
                        client: Arc::new(client),
                        regions: p.config.regions.clone(),
                    },
                    config: p.config,
                    spec: p.spec,
                });
            }
        }
        done.into_iter()
            .map(|l| {
                l.ok_or_else(|| AccountsError::Build {
                    account: String::new(),
                    message: "an account was not built".into(),
                })
            })
            .collect()
    }

    /// The API and refresh metrics of an account: without an `account`
    /// label for the unnamed one.
    fn metrics_for(&self, name: &str) -> prometheus::Result<(ApiMetrics, RefreshMetrics)> {
        let mut cache = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.get(name) {
            return Ok(m.clone());
        }
        let label = (!name.is_empty()).then_some(name);
        let api = ApiMetrics::for_account(&self.opts.registry, label)?;
        let refresh = match RefreshMetrics::for_account(&self.opts.registry, label) {
            Ok(r) => r,
            Err(e) => {
                api.unregister(&self.opts.registry);
                return Err(e);
            }
        };
        cache.insert(name.to_string(), (api.clone(), refresh.clone()));
        Ok((api, refresh))
    }

    /// Takes the metrics of accounts no longer in use off the page.
    fn prune_metrics(&self, keep: &[&str]) {
        let mut cache = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|name, (api, refresh)| {
            let kept = keep.contains(&name.as_str());
            if !kept {
                api.unregister(&self.opts.registry);
                refresh.unregister(&self.opts.registry);
            }
            kept
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::RoleSpec;
    use crate::secret::Secret;

    #[test]
    fn only_fixed_sources_are_kept_across_reloads() {
        let key = CredentialSpec::AccessKey {
            origin: "config_file",
            access_key_id: "x".into(),
            access_key_secret: Secret::new("s"),
            security_token: None,
        };
        assert!(pinned(&key));
        assert!(!pinned(&CredentialSpec::Chain));
        assert!(!pinned(&CredentialSpec::Profile { name: "p".into() }));
        assert!(pinned(&CredentialSpec::AssumeRole {
            role: RoleSpec::new("acs:ram::1:role/r"),
            source: Box::new(key),
        }));
        assert!(!pinned(&CredentialSpec::AssumeRole {
            role: RoleSpec::new("acs:ram::1:role/r"),
            source: Box::new(CredentialSpec::Chain),
        }));
    }
}
