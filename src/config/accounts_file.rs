//! `--config.file`: several accounts in one process, read strictly.
//!
//! Plain structs (`deny_unknown_fields`) whose values are checked as they
//! are read (see `checked`), so an error carries the YAML parser's line and
//! the key's path (`accounts[1].credentials.role_arn`). Credentials are a
//! tagged enum: one struct per `type`, each with only the keys that type
//! takes. Secrets are only ever named by file, and read when an account is
//! built.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::credentials::{OidcSpec, RoleSpec};
use crate::validate;

use super::checked::{
    AccountName, Checked, CheckedList, Endpoint, InlineOidcToken, InlineSecretKey, InlineToken,
    KeyId, NonEmpty, OidcProviderArn, Policy, Refused, RegionId, RoleArn, Seconds, SessionName,
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

/// A credentials mapping refused as a whole; the parser puts the mapping's
/// line in front of it.
#[derive(Debug, thiserror::Error)]
enum CredentialsEntryError {
    #[error("credentials of type {kind} take no key {key:?} (they take: {})", takes_text(.takes))]
    TakesNoKey {
        kind: String,
        key: String,
        takes: &'static [&'static str],
    },
    #[error("credentials of type {kind}: missing key {key:?}")]
    MissingKey { kind: String, key: &'static str },
    #[error("source: roles nested deeper than {MAX_SOURCE_DEPTH}")]
    TooDeep,
    /// A value written before `type`, read once the type was known.
    #[error("{key}: {reason}")]
    Early {
        key: String,
        reason: yaml_serde::Error,
    },
}

fn takes_text(takes: &[&str]) -> String {
    match takes {
        [] => "no other key".to_string(),
        keys => keys.join(", "),
    }
}

/// `source:` of `ram_role_arn` may itself be a role; deeper is a mistake.
const MAX_SOURCE_DEPTH: usize = 4;

/// The credential types, named as `type` takes them; serde lists the
/// names for the error of an unknown one, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    AccessKey,
    StsToken,
    RamRoleArn,
    OidcRoleArn,
    EcsRamRole,
    Profile,
    Chain,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::AccessKey,
        Kind::StsToken,
        Kind::RamRoleArn,
        Kind::OidcRoleArn,
        Kind::EcsRamRole,
        Kind::Profile,
        Kind::Chain,
    ];

    /// `Ok` when credentials of this type take `key`, else the keys they do
    /// take (read from the type's struct, so they are written once).
    fn takes(self, key: &str) -> Result<(), &'static [&'static str]> {
        match self {
            Kind::AccessKey => keys_of::<AccessKeyKeys>(key),
            Kind::StsToken => keys_of::<StsTokenKeys>(key),
            Kind::RamRoleArn => keys_of::<RamRoleArnKeys>(key),
            Kind::OidcRoleArn => keys_of::<OidcRoleArnKeys>(key),
            Kind::EcsRamRole => keys_of::<EcsRamRoleKeys>(key),
            Kind::Profile => keys_of::<ProfileKeys>(key),
            Kind::Chain => keys_of::<ChainKeys>(key),
        }
    }

    /// Whether any type takes `key` (else it is unknown, not misplaced).
    fn any_takes(key: &str) -> bool {
        Kind::ALL.iter().any(|k| k.takes(key).is_ok())
    }
}

/// The error of a probe into a derived struct or enum: what it takes when
/// a key or name is not one of them.
#[derive(Debug)]
struct Probe(Option<&'static [&'static str]>);

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for Probe {}

impl de::Error for Probe {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probe(None)
    }
    fn unknown_field(_: &str, expected: &'static [&'static str]) -> Self {
        Probe(Some(expected))
    }
    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        Probe(Some(expected))
    }
}

/// `Ok` when `T` has the field `key`, else the fields it has.
fn keys_of<T: de::DeserializeOwned>(key: &str) -> Result<(), &'static [&'static str]> {
    let one = de::value::MapDeserializer::<_, Probe>::new(std::iter::once((key, ())));
    match T::deserialize(one) {
        Err(Probe(Some(takes))) => Err(takes),
        _ => Ok(()),
    }
}

// One struct per type, each with only its own keys. Required keys are
// `Option` so that a missing one is reported with the type's name.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainKeys {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessKeyKeys {
    access_key_id: Option<Checked<KeyId>>,
    access_key_secret_file: Option<Checked<NonEmpty>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StsTokenKeys {
    access_key_id: Option<Checked<KeyId>>,
    access_key_secret_file: Option<Checked<NonEmpty>>,
    security_token_file: Option<Checked<NonEmpty>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RamRoleArnKeys {
    role_arn: Option<Checked<RoleArn>>,
    external_id: Option<Checked<NonEmpty>>,
    role_session_name: Option<Checked<SessionName>>,
    duration_seconds: Option<Seconds>,
    policy: Option<Checked<Policy>>,
    source: Option<Box<CredentialConfig>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcRoleArnKeys {
    role_arn: Option<Checked<RoleArn>>,
    oidc_provider_arn: Option<Checked<OidcProviderArn>>,
    oidc_token_file: Option<Checked<NonEmpty>>,
    role_session_name: Option<Checked<SessionName>>,
    duration_seconds: Option<Seconds>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EcsRamRoleKeys {
    role_name: Option<Checked<NonEmpty>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileKeys {
    profile: Option<Checked<NonEmpty>>,
}

/// Keys that would hold a secret inline: refused, whatever the type, at the
/// value's line and without echoing it.
const INLINE_SECRETS: [&str; 4] = [
    "access_key_secret",
    "security_token",
    "sts_token",
    "oidc_token",
];

/// The error for an inline secret at `key`: its value is read only to be
/// refused.
fn refuse<'de, A: de::MapAccess<'de>>(map: &mut A, key: &str) -> A::Error {
    let read = match key {
        "access_key_secret" => map.next_value::<Refused<InlineSecretKey>>().map(drop),
        "oidc_token" => map.next_value::<Refused<InlineOidcToken>>().map(drop),
        _ => map.next_value::<Refused<InlineToken>>().map(drop),
    };
    read.err()
        .unwrap_or_else(|| de::Error::custom("secrets are never written in this file"))
}

/// A key of a credentials mapping, sorted while the parser still points at
/// it, so an unknown key is reported at its own line.
enum Key<T> {
    Type,
    Field(T),
    /// A key another type takes: reported with what this type takes.
    Foreign(String),
    Secret(String),
}

/// Reads a key; `kind` is `None` until `type` was read, and `seed` is the
/// field identifier of the type's struct (or a plain string before).
struct KeySeed<S> {
    kind: Option<Kind>,
    seed: S,
}

impl<'de, S: de::DeserializeSeed<'de>> de::DeserializeSeed<'de> for KeySeed<S> {
    type Value = Key<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de, S: de::DeserializeSeed<'de>> Visitor<'de> for KeySeed<S> {
    type Value = Key<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, k: &str) -> Result<Self::Value, E> {
        if INLINE_SECRETS.contains(&k) {
            return Ok(Key::Secret(k.to_string()));
        }
        if k == "type" {
            return match self.kind {
                None => Ok(Key::Type),
                Some(_) => Err(E::duplicate_field("type")),
            };
        }
        let field = |seed: S| seed.deserialize(de::value::StrDeserializer::<E>::new(k));
        match self.kind.map(|kind| kind.takes(k)) {
            Some(Ok(())) => Ok(Key::Field(field(self.seed)?)),
            Some(Err(_)) if Kind::any_takes(k) => Ok(Key::Foreign(k.to_string())),
            Some(Err(takes)) => Err(E::unknown_field(k, takes)),
            None if Kind::any_takes(k) => Ok(Key::Field(field(self.seed)?)),
            None => Err(E::custom(format_args!("unknown field `{k}`"))),
        }
    }
}

/// Reads `type`'s value: the error for an unknown type lists the known.
struct TypeSeed;

impl<'de> de::DeserializeSeed<'de> for TypeSeed {
    type Value = (Kind, String);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for TypeSeed {
    type Value = (Kind, String);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a credential type")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let name = v.trim();
        match Kind::deserialize(de::value::StrDeserializer::<Probe>::new(name)) {
            Ok(kind) => Ok((kind, name.to_string())),
            Err(Probe(all)) => Err(E::custom(format_args!(
                "{name:?} is not one of {}",
                all.unwrap_or_default().join(", ")
            ))),
        }
    }
}

/// The rest of a credentials mapping once `type` is known: the keys written
/// before it first, then the parser's own, so the type's struct reads its
/// values where they stand (with their lines and paths).
struct Rest<A> {
    map: A,
    kind: Kind,
    name: String,
    before: VecDeque<(String, yaml_serde::Value)>,
    held: Option<(String, yaml_serde::Value)>,
}

impl<A> Rest<A> {
    fn takes_no_key(&self, key: String, takes: &'static [&'static str]) -> CredentialsEntryError {
        CredentialsEntryError::TakesNoKey {
            kind: self.name.clone(),
            key,
            takes,
        }
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Rest<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if let Some((k, v)) = self.before.pop_front() {
            if let Err(takes) = self.kind.takes(&k) {
                return Err(de::Error::custom(self.takes_no_key(k, takes)));
            }
            let key = seed.deserialize(de::value::StrDeserializer::<A::Error>::new(&k))?;
            self.held = Some((k, v));
            return Ok(Some(key));
        }
        let kind = Some(self.kind);
        match self.map.next_key_seed(KeySeed { kind, seed })? {
            None => Ok(None),
            Some(Key::Field(key)) => Ok(Some(key)),
            Some(Key::Foreign(k)) => {
                let takes = self.kind.takes("").err().unwrap_or_default();
                Err(de::Error::custom(self.takes_no_key(k, takes)))
            }
            Some(Key::Secret(k)) => Err(refuse(&mut self.map, &k)),
            Some(Key::Type) => Err(de::Error::duplicate_field("type")),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        match self.held.take() {
            Some((key, v)) => seed
                .deserialize(v)
                .map_err(|reason| de::Error::custom(CredentialsEntryError::Early { key, reason })),
            None => self.map.next_value_seed(seed),
        }
    }
}

impl<'de> Deserialize<'de> for CredentialConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde's internally tagged enums buffer the whole mapping before
        // they read it, and lose the line and key path of every error. So
        // `type` is read by hand, and the rest goes straight from the parser
        // to the type's struct; checks of the whole mapping run inside the
        // visit, so the parser puts their error at the mapping's line.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CredentialConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("credentials: a mapping with a \"type\" key")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<CredentialConfig, A::Error> {
                // Keys before `type` wait, their values held as YAML, until
                // the type says which struct takes them.
                let mut before = VecDeque::new();
                let (kind, name) = loop {
                    let seed = KeySeed {
                        kind: None,
                        seed: std::marker::PhantomData::<String>,
                    };
                    match map.next_key_seed(seed)? {
                        None => return Err(de::Error::missing_field("type")),
                        Some(Key::Type) => break map.next_value_seed(TypeSeed)?,
                        Some(Key::Secret(k)) => return Err(refuse(&mut map, &k)),
                        Some(Key::Field(k)) | Some(Key::Foreign(k)) => {
                            let v: yaml_serde::Value = map.next_value()?;
                            before.push_back((k, v));
                        }
                    }
                };
                let rest = de::value::MapAccessDeserializer::new(Rest {
                    map,
                    kind,
                    name: name.clone(),
                    before,
                    held: None,
                });
                let raw = match kind {
                    Kind::AccessKey => CredentialsRaw::AccessKey(AccessKeyKeys::deserialize(rest)?),
                    Kind::StsToken => CredentialsRaw::StsToken(StsTokenKeys::deserialize(rest)?),
                    Kind::RamRoleArn => {
                        CredentialsRaw::RamRoleArn(RamRoleArnKeys::deserialize(rest)?)
                    }
                    Kind::OidcRoleArn => {
                        CredentialsRaw::OidcRoleArn(OidcRoleArnKeys::deserialize(rest)?)
                    }
                    Kind::EcsRamRole => {
                        CredentialsRaw::EcsRamRole(EcsRamRoleKeys::deserialize(rest)?)
                    }
                    Kind::Profile => CredentialsRaw::Profile(ProfileKeys::deserialize(rest)?),
                    Kind::Chain => {
                        ChainKeys::deserialize(rest)?;
                        CredentialsRaw::Chain
                    }
                };
                raw.into_config(name).map_err(de::Error::custom)
            }
        }
        d.deserialize_map(V)
    }
}

/// A credentials mapping as read: the type and its own keys.
enum CredentialsRaw {
    AccessKey(AccessKeyKeys),
    StsToken(StsTokenKeys),
    RamRoleArn(RamRoleArnKeys),
    OidcRoleArn(OidcRoleArnKeys),
    EcsRamRole(EcsRamRoleKeys),
    Profile(ProfileKeys),
    Chain,
}

/// How deep `source:` roles nest under this one.
fn source_depth(c: &CredentialConfig) -> usize {
    match c {
        CredentialConfig::RamRoleArn { source, .. } => 1 + source_depth(source),
        _ => 0,
    }
}

impl CredentialsRaw {
    /// The entry, once its required keys are there (`kind`: the type's name
    /// for the error).
    fn into_config(self, kind: String) -> Result<CredentialConfig, CredentialsEntryError> {
        let need = |v: Option<String>, key: &'static str| {
            v.ok_or_else(|| CredentialsEntryError::MissingKey {
                kind: kind.clone(),
                key,
            })
        };
        fn text<R>(v: Option<Checked<R>>) -> Option<String> {
            v.map(Checked::into_inner)
        }
        Ok(match self {
            CredentialsRaw::Chain => CredentialConfig::Chain,
            CredentialsRaw::AccessKey(k) => CredentialConfig::AccessKey {
                access_key_id: need(text(k.access_key_id), "access_key_id")?,
                access_key_secret_file: need(
                    text(k.access_key_secret_file),
                    "access_key_secret_file",
                )?
                .into(),
            },
            CredentialsRaw::StsToken(k) => CredentialConfig::StsToken {
                access_key_id: need(text(k.access_key_id), "access_key_id")?,
                access_key_secret_file: need(
                    text(k.access_key_secret_file),
                    "access_key_secret_file",
                )?
                .into(),
                security_token_file: need(text(k.security_token_file), "security_token_file")?
                    .into(),
            },
            CredentialsRaw::RamRoleArn(k) => {
                let source = k.source.map_or(CredentialConfig::Chain, |s| *s);
                if source_depth(&source) >= MAX_SOURCE_DEPTH {
                    return Err(CredentialsEntryError::TooDeep);
                }
                CredentialConfig::RamRoleArn {
                    role: RoleSpec {
                        role_arn: need(text(k.role_arn), "role_arn")?,
                        role_session_name: text(k.role_session_name),
                        duration_seconds: k.duration_seconds.map(|s| s.0),
                        external_id: text(k.external_id),
                        policy: text(k.policy),
                    },
                    source: Box::new(source),
                }
            }
            CredentialsRaw::OidcRoleArn(k) => CredentialConfig::OidcRoleArn(OidcSpec {
                role_arn: need(text(k.role_arn), "role_arn")?,
                oidc_provider_arn: need(text(k.oidc_provider_arn), "oidc_provider_arn")?,
                oidc_token_file: need(text(k.oidc_token_file), "oidc_token_file")?.into(),
                role_session_name: text(k.role_session_name),
                duration_seconds: k.duration_seconds.map(|s| s.0),
            }),
            CredentialsRaw::EcsRamRole(k) => CredentialConfig::EcsRamRole {
                role_name: text(k.role_name),
            },
            CredentialsRaw::Profile(k) => CredentialConfig::Profile {
                name: need(text(k.profile), "profile")?,
            },
        })
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
        assert!(Kind::ALL.iter().all(|k| k.takes("").is_err()));
        assert_eq!(
            Kind::AccessKey.takes(""),
            Err(&["access_key_id", "access_key_secret_file"][..])
        );
    }
}
