//! `--config.file`: several accounts in one process, read strictly.
//!
//! Plain structs (`deny_unknown_fields`) whose values are checked as they
//! are read (see `checked`), so an error carries the YAML parser's line and
//! the key's path (`accounts[1].credentials.role_arn`). Credentials are a
//! tagged enum: one struct per `type`, each with only the keys that type
//! takes. Secrets are only ever named by file, and read when an account is
//! built.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::credentials::{OidcSpec, RoleSpec};
use crate::validate;

use super::checked::{AccountName, Checked, CheckedList, Endpoint, RegionId};

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

/// Where an account's credentials come from, one variant per `type` of the
/// file. Secrets are named by file and read when the account is built (at
/// start and at every reload).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(text: &str) -> Result<CredentialConfig, ConfigError> {
        let file = format!("accounts:\n  - name: a\n    credentials:\n{text}");
        parse(&file, Path::new("/etc/a.yml")).map(|mut f| f.accounts.remove(0).credentials)
    }

    fn err(text: &str) -> String {
        creds(text).expect_err(text).to_string()
    }

    #[test]
    fn keys_before_type_are_read_by_the_type_that_follows() {
        let c = creds(
            "      duration_seconds: \"900\"\n      role_arn: acs:ram::1:role/r\n      type: ram_role_arn\n",
        )
        .expect("parses");
        let CredentialConfig::RamRoleArn { role, source } = c else {
            panic!("{c:?}")
        };
        assert_eq!(role.duration_seconds, Some(900));
        assert_eq!(*source, CredentialConfig::Chain);
        // A key of another type, an unknown key, a bad value and an inline
        // secret before `type`.
        let e = err("      profile: p\n      type: chain\n");
        assert!(
            e.contains("credentials of type chain take no key \"profile\""),
            "{e}"
        );
        let e = err("      bogus: 1\n      type: chain\n");
        assert!(
            e.contains("line 4") && e.contains("unknown field `bogus`"),
            "{e}"
        );
        let e = err("      role_arn: reader\n      type: ram_role_arn\n");
        assert!(
            e.contains("role_arn: \"reader\" is not a RAM role ARN"),
            "{e}"
        );
        let e = err("      access_key_secret: hunter2\n      type: access_key\n");
        assert!(
            e.contains("secrets are never written") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn each_type_names_its_own_keys() {
        let e = err("      type: profile\n      role_name: r\n");
        assert!(e.contains("(they take: profile)"), "{e}");
        let e = err("      type: profile\n      type: chain\n");
        assert!(e.contains("duplicate field `type`"), "{e}");
        let e = err("      type: ecs_ram_role\n      role_nam: r\n");
        assert!(
            e.contains("unknown field `role_nam`, expected `role_name`"),
            "{e}"
        );
    }
}
