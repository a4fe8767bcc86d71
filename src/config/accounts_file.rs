//! `--config.file`: several accounts in one process, read strictly.
//!
//! Plain structs (`deny_unknown_fields`) whose values are checked as they
//! are read (see `checked`), so an error carries the YAML parser's line and
//! the key's path (`accounts[1].credentials.role_arn`). Which keys a
//! credential type takes is checked in `TryFrom`, at the mapping's line.
//! Secrets are only ever named by file, and read when an account is built.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::credentials::{OidcSpec, RoleSpec};
use crate::secret::Secret;
use crate::validate;

use super::checked::{
    AccountName, Checked, CheckedList, CredentialType, Endpoint, InlineOidcToken, InlineSecretKey,
    InlineToken, KeyId, NonEmpty, OidcProviderArn, Policy, Refused, RegionId, RoleArn, Seconds,
    SessionName, type_keys,
};

/// A `--config.file` that could not be used: one line naming the file, and
/// the line and key when the problem is in it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {file}: cannot read it: {reason}")]
    Read { file: String, reason: String },
    #[error("config file {file} line {line}: {message}")]
    At {
        file: String,
        line: usize,
        message: String,
    },
    #[error("config file {file}: {message}")]
    Invalid { file: String, message: String },
}

/// A parsed `--config.file`.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountsFile {
    pub accounts: Vec<AccountConfig>,
}

/// One account: from the file, or (unnamed) from the flags.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountConfig {
    /// The `account` label value; empty for the one account of the flags.
    pub name: String,
    /// A URL template as `--aliyun.endpoint`; `None`: the flag's.
    pub endpoint: Option<String>,
    /// Empty: `--aliyun.regions`, else all that DescribeRegions returns.
    pub regions: Vec<String>,
    pub credentials: CredentialConfig,
}

/// Where an account's credentials come from. Secrets are named by file and
/// read when the account is built (at start and at every reload).
#[derive(Clone, Debug, PartialEq)]
pub enum CredentialConfig {
    Chain,
    AccessKey {
        access_key_id: String,
        access_key_secret_file: PathBuf,
    },
    StsToken {
        access_key_id: String,
        access_key_secret_file: PathBuf,
        security_token_file: PathBuf,
    },
    RamRoleArn {
        role: RoleSpec,
        source: Box<CredentialConfig>,
    },
    OidcRoleArn(OidcSpec),
    EcsRamRole {
        role_name: Option<String>,
    },
    /// A CLI profile of that name, else a section of the credentials file.
    Profile {
        name: String,
    },
    /// Keys held in memory: the demo's throwaway pair, never from a file.
    Fixed {
        access_key_id: String,
        access_key_secret: Secret,
    },
}

impl CredentialConfig {
    /// Relative file paths, taken from the config file's directory.
    fn resolve(&mut self, file: &Path) {
        let fix = |p: &mut PathBuf| *p = validate::resolve_path(file, &*p);
        match self {
            CredentialConfig::AccessKey {
                access_key_secret_file,
                ..
            } => fix(access_key_secret_file),
            CredentialConfig::StsToken {
                access_key_secret_file,
                security_token_file,
                ..
            } => {
                fix(access_key_secret_file);
                fix(security_token_file);
            }
            CredentialConfig::RamRoleArn { source, .. } => source.resolve(file),
            CredentialConfig::OidcRoleArn(spec) => fix(&mut spec.oidc_token_file),
            _ => {}
        }
    }
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<AccountsFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse(&text, path)
}

/// Parses the text of the file at `file` (named in errors; relative paths in
/// it are taken from its directory).
pub fn parse(text: &str, file: &Path) -> Result<AccountsFile, ConfigError> {
    let shown = file.display().to_string();
    let raw: Option<FileRaw> = yaml_serde::from_str(text).map_err(|e| {
        let msg = validate::one_line(&e.to_string());
        match e.location() {
            Some(l) => {
                // The line goes in front; the parser's own suffix would repeat it.
                let suffix = format!(" at line {} column {}", l.line(), l.column());
                ConfigError::At {
                    file: shown.clone(),
                    line: l.line(),
                    message: msg.strip_suffix(&suffix).unwrap_or(&msg).to_string(),
                }
            }
            None => ConfigError::Invalid {
                file: shown.clone(),
                message: msg,
            },
        }
    })?;
    let Some(raw) = raw else {
        return Err(ConfigError::Invalid {
            file: shown,
            message: "the file is empty; it needs a list of accounts under \"accounts\"".into(),
        });
    };
    let mut accounts = raw.accounts.0;
    for a in &mut accounts {
        a.credentials.resolve(file);
    }
    Ok(AccountsFile { accounts })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with the key \"accounts\"")]
struct FileRaw {
    accounts: Accounts,
}

/// The list of accounts: not empty, names unique.
struct Accounts(Vec<AccountConfig>);

impl<'de> Deserialize<'de> for Accounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Accounts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of accounts")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Accounts, A::Error> {
                let mut out: Vec<AccountConfig> = Vec::new();
                while let Some(a) = seq.next_element_seed(AccountSeed(&out))? {
                    out.push(a);
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "the list is empty; at least one account is needed",
                    ));
                }
                Ok(Accounts(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// One account, checked against the ones before it inside the visit of its
/// mapping, so a duplicate name is reported at that account's line.
struct AccountSeed<'a>(&'a [AccountConfig]);

impl<'de> de::DeserializeSeed<'de> for AccountSeed<'_> {
    type Value = AccountConfig;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AccountConfig, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AccountSeed<'_> {
    type Value = AccountConfig;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an account: a mapping with at least \"name\"")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<AccountConfig, A::Error> {
        let a = AccountConfig::from(AccountRaw::deserialize(
            de::value::MapAccessDeserializer::new(map),
        )?);
        if let Some(i) = self.0.iter().position(|o| o.name == a.name) {
            return Err(de::Error::custom(format!(
                "duplicate account name {:?} (the same as account {})",
                a.name,
                i + 1
            )));
        }
        Ok(a)
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an account: a mapping with at least \"name\""
)]
struct AccountRaw {
    name: Checked<AccountName>,
    endpoint: Option<Checked<Endpoint>>,
    regions: Option<CheckedList<RegionId>>,
    credentials: Option<CredentialConfig>,
}

impl From<AccountRaw> for AccountConfig {
    fn from(r: AccountRaw) -> Self {
        AccountConfig {
            name: r.name.into_inner(),
            endpoint: r
                .endpoint
                .map(|e| e.into_inner().trim_end_matches('/').to_string()),
            regions: r.regions.map(CheckedList::into_inner).unwrap_or_default(),
            credentials: r.credentials.unwrap_or(CredentialConfig::Chain),
        }
    }
}

/// The credentials mapping as written: every key any type takes; which of
/// them a type takes is checked in `TryFrom`.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "credentials: a mapping with a \"type\" key"
)]
struct CredentialsRaw {
    #[serde(rename = "type")]
    kind: Checked<CredentialType>,
    access_key_id: Option<Checked<KeyId>>,
    access_key_secret_file: Option<Checked<NonEmpty>>,
    security_token_file: Option<Checked<NonEmpty>>,
    role_arn: Option<Checked<RoleArn>>,
    external_id: Option<Checked<NonEmpty>>,
    role_session_name: Option<Checked<SessionName>>,
    duration_seconds: Option<Checked<Seconds>>,
    policy: Option<Checked<Policy>>,
    source: Option<Box<CredentialConfig>>,
    oidc_provider_arn: Option<Checked<OidcProviderArn>>,
    oidc_token_file: Option<Checked<NonEmpty>>,
    role_name: Option<Checked<NonEmpty>>,
    profile: Option<Checked<NonEmpty>>,
    // Secrets written inline are refused (while parsing) with a pointer to
    // the right key; a value never gets here.
    #[allow(dead_code)]
    access_key_secret: Option<Refused<InlineSecretKey>>,
    #[allow(dead_code)]
    security_token: Option<Refused<InlineToken>>,
    #[allow(dead_code)]
    sts_token: Option<Refused<InlineToken>>,
    #[allow(dead_code)]
    oidc_token: Option<Refused<InlineOidcToken>>,
}

/// `source:` of `ram_role_arn` may itself be a role; deeper is a mistake.
const MAX_SOURCE_DEPTH: usize = 4;

impl<'de> Deserialize<'de> for CredentialConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The whole-mapping checks run inside the visit of the mapping, so
        // the parser puts their error at the mapping's line.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CredentialConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("credentials: a mapping with a \"type\" key")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CredentialConfig, A::Error> {
                let raw = CredentialsRaw::deserialize(de::value::MapAccessDeserializer::new(map))?;
                CredentialConfig::try_from(raw).map_err(de::Error::custom)
            }
        }
        d.deserialize_map(V)
    }
}

/// How deep `source:` roles nest under this one.
fn source_depth(c: &CredentialConfig) -> usize {
    match c {
        CredentialConfig::RamRoleArn { source, .. } => 1 + source_depth(source),
        _ => 0,
    }
}

impl TryFrom<CredentialsRaw> for CredentialConfig {
    type Error = String;

    fn try_from(r: CredentialsRaw) -> Result<Self, String> {
        let kind = r.kind.into_inner();
        let keys = type_keys(&kind);
        let given: [(&str, bool); 13] = [
            ("access_key_id", r.access_key_id.is_some()),
            ("access_key_secret_file", r.access_key_secret_file.is_some()),
            ("security_token_file", r.security_token_file.is_some()),
            ("role_arn", r.role_arn.is_some()),
            ("external_id", r.external_id.is_some()),
            ("role_session_name", r.role_session_name.is_some()),
            ("duration_seconds", r.duration_seconds.is_some()),
            ("policy", r.policy.is_some()),
            ("source", r.source.is_some()),
            ("oidc_provider_arn", r.oidc_provider_arn.is_some()),
            ("oidc_token_file", r.oidc_token_file.is_some()),
            ("role_name", r.role_name.is_some()),
            ("profile", r.profile.is_some()),
        ];
        let what = format!("credentials of type {kind}");
        if let Some((k, _)) = given.iter().find(|(k, set)| *set && !keys.contains(k)) {
            let takes = match keys {
                [] => "no other key".to_string(),
                keys => keys.join(", "),
            };
            return Err(format!("{what} take no key {k:?} (they take: {takes})"));
        }
        fn req<T>(v: Option<Checked<T>>, key: &str, what: &str) -> Result<String, String> {
            v.map(|c| c.into_inner())
                .ok_or_else(|| format!("{what}: missing key {key:?}"))
        }
        let path = |v: Option<Checked<NonEmpty>>, key: &str| req(v, key, &what).map(PathBuf::from);
        let opt = |v: Option<Checked<NonEmpty>>| v.map(|c| c.into_inner());
        Ok(match kind.as_str() {
            "chain" => CredentialConfig::Chain,
            "access_key" => CredentialConfig::AccessKey {
                access_key_id: req(r.access_key_id, "access_key_id", &what)?,
                access_key_secret_file: path(r.access_key_secret_file, "access_key_secret_file")?,
            },
            "sts_token" => CredentialConfig::StsToken {
                access_key_id: req(r.access_key_id, "access_key_id", &what)?,
                access_key_secret_file: path(r.access_key_secret_file, "access_key_secret_file")?,
                security_token_file: path(r.security_token_file, "security_token_file")?,
            },
            "ram_role_arn" => {
                let source = r.source.map_or(CredentialConfig::Chain, |s| *s);
                if source_depth(&source) >= MAX_SOURCE_DEPTH {
                    return Err(format!(
                        "source: roles nested deeper than {MAX_SOURCE_DEPTH}"
                    ));
                }
                CredentialConfig::RamRoleArn {
                    role: RoleSpec {
                        role_arn: req(r.role_arn, "role_arn", &what)?,
                        role_session_name: r.role_session_name.map(|c| c.into_inner()),
                        duration_seconds: r
                            .duration_seconds
                            .and_then(|c| c.into_inner().parse().ok()),
                        external_id: opt(r.external_id),
                        policy: r.policy.map(|c| c.into_inner()),
                    },
                    source: Box::new(source),
                }
            }
            "oidc_role_arn" => CredentialConfig::OidcRoleArn(OidcSpec {
                role_arn: req(r.role_arn, "role_arn", &what)?,
                oidc_provider_arn: req(r.oidc_provider_arn, "oidc_provider_arn", &what)?,
                oidc_token_file: path(r.oidc_token_file, "oidc_token_file")?,
                role_session_name: r.role_session_name.map(|c| c.into_inner()),
                duration_seconds: r.duration_seconds.and_then(|c| c.into_inner().parse().ok()),
            }),
            "ecs_ram_role" => CredentialConfig::EcsRamRole {
                role_name: opt(r.role_name),
            },
            _ => CredentialConfig::Profile {
                name: req(r.profile, "profile", &what)?,
            },
        })
    }
}
