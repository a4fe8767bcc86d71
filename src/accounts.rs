//! `--config.file`: several accounts in one process.
//!
//! [`parse`] is pure and strict: an unknown key, a duplicate account name, a
//! bad or missing value and a secret written inline are errors that name the
//! key and the line. [`AccountSet`] turns the parsed file into live accounts
//! (credentials and a client each, under the limits all accounts share) at
//! start and at every reload, and keeps an account's client when its entry
//! did not change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prometheus::Registry;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::client::{ApiMetrics, Client, ClientOptions, validate_endpoint_template};
use crate::collector::Account;
use crate::credentials::{
    self as creds, CredentialProvider, CredentialSpec, OidcSpec, RefreshMetrics, RoleSpec,
};
use crate::secret::Secret;

// ---------------------------------------------------------------------------
// The file, parsed.

/// A parsed `--config.file`.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountsFile {
    pub accounts: Vec<AccountConfig>,
}

/// One account as written.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountConfig {
    /// The `account` label value.
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
}

impl CredentialConfig {
    /// The credential source, with the secrets read from their files now.
    pub fn to_spec(&self) -> Result<CredentialSpec, String> {
        Ok(match self {
            CredentialConfig::Chain => CredentialSpec::Chain,
            CredentialConfig::AccessKey {
                access_key_id,
                access_key_secret_file,
            } => CredentialSpec::AccessKey {
                origin: creds::SOURCE_CONFIG_FILE,
                access_key_id: access_key_id.clone(),
                access_key_secret: read_secret("access_key_secret_file", access_key_secret_file)?,
                security_token: None,
            },
            CredentialConfig::StsToken {
                access_key_id,
                access_key_secret_file,
                security_token_file,
            } => CredentialSpec::AccessKey {
                origin: creds::SOURCE_CONFIG_FILE,
                access_key_id: access_key_id.clone(),
                access_key_secret: read_secret("access_key_secret_file", access_key_secret_file)?,
                security_token: Some(read_secret("security_token_file", security_token_file)?),
            },
            CredentialConfig::RamRoleArn { role, source } => CredentialSpec::AssumeRole {
                role: role.clone(),
                source: Box::new(source.to_spec().map_err(|e| format!("source: {e}"))?),
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
        })
    }
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

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<AccountsFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("config file {}: cannot read it: {e}", path.display()))?;
    parse(&text, path)
}

/// Parses the text of the file at `file` (named in errors; relative paths in
/// it are taken from its directory). An error is one line:
/// `config file <file> line <n>: <what>`.
pub fn parse(text: &str, file: &Path) -> Result<AccountsFile, String> {
    let root = NodeSeed { path: Vec::new() }
        .deserialize(yaml_serde::Deserializer::from_str(text))
        .map_err(|e| {
            let msg = one_line(&e.to_string());
            match e.location() {
                Some(l) => {
                    // The line goes in front; the parser's own suffix would repeat it.
                    let suffix = format!(" at line {} column {}", l.line(), l.column());
                    let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
                    format!("config file {} line {}: {msg}", file.display(), l.line())
                }
                None => format!("config file {}: {msg}", file.display()),
            }
        })?;
    let schema = Schema {
        text,
        base: file.parent().unwrap_or(Path::new(".")),
    };
    schema
        .file(&root)
        .map_err(|p| match line_of(text, &p.path, p.at_key) {
            Some(n) => format!("config file {} line {n}: {}", file.display(), p.msg),
            None => format!("config file {}: {}", file.display(), p.msg),
        })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------
// A YAML document as a tree whose nodes know where they are: the path of
// entry positions from the root. The line of a node is found on demand by
// walking the document again to that path (see `line_of`), only for the one
// error reported.

#[derive(Debug)]
struct Node {
    /// Position of each mapping entry or list item from the root.
    path: Vec<usize>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Null,
    Bool,
    Int(i128),
    Float,
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order, duplicates kept (they are an error).
    Map(Vec<(String, Node)>),
}

impl Kind {
    fn describe(&self) -> &'static str {
        match self {
            Kind::Null => "empty",
            Kind::Bool => "true/false",
            Kind::Int(_) | Kind::Float => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

struct NodeSeed {
    path: Vec<usize>,
}

impl NodeSeed {
    fn child(&self, i: usize) -> NodeSeed {
        let mut path = self.path.clone();
        path.push(i);
        NodeSeed { path }
    }

    fn node(&self, kind: Kind) -> Node {
        Node {
            path: self.path.clone(),
            kind,
        }
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = Node;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(self.node(Kind::Bool))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(self.node(Kind::Int(v.into())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(self.node(Kind::Int(v.into())))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(self.node(Kind::Int(v)))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        i128::try_from(v)
            .map(|v| self.node(Kind::Int(v)))
            .map_err(|_| E::custom("a number too large"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(self.node(Kind::Float))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(self.node(Kind::Str(v.to_string())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(self.node(Kind::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(self.node(Kind::Null))
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element_seed(self.child(items.len()))? {
            items.push(n);
        }
        Ok(self.node(Kind::Seq(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(self.child(entries.len()))?;
            entries.push((key, value));
        }
        Ok(self.node(Kind::Map(entries)))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Node, A::Error> {
        Err(de::Error::custom("YAML tags (!tag) are not supported"))
    }
}

/// A mapping key as text; a list or mapping as a key is an error.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
}

/// Marks the node `line_of` looks for; never shown.
const FOUND: &str = "found";

/// The line (1-based) of the node at `path`, or of its key when `at_key`:
/// the document is walked again and stopped there with an error, which the
/// YAML parser stamps with the position of the value it was reading.
fn line_of(text: &str, path: &[usize], at_key: bool) -> Option<usize> {
    let seed = Locate { rest: path, at_key };
    match seed.deserialize(yaml_serde::Deserializer::from_str(text)) {
        Ok(()) => None,
        Err(e) => e.location().map(|l| l.line()),
    }
}

struct Locate<'a> {
    rest: &'a [usize],
    at_key: bool,
}

impl Locate<'_> {
    fn here<E: de::Error>(&self) -> Result<(), E> {
        if self.rest.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.here()
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.here()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((&target, rest)) = self.rest.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let mut i = 0;
        loop {
            let more = if i == target {
                seq.next_element_seed(Locate {
                    rest,
                    at_key: self.at_key,
                })?
                .is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((&target, rest)) = self.rest.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let mut i = 0;
        loop {
            let stop = i == target && rest.is_empty() && self.at_key;
            if map.next_key_seed(LocateKey { stop })?.is_none() {
                return Ok(());
            }
            if i == target {
                map.next_value_seed(Locate {
                    rest,
                    at_key: self.at_key,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            i += 1;
        }
    }
}

/// A key, or the error that marks it.
struct LocateKey {
    stop: bool,
}

impl<'de> DeserializeSeed<'de> for LocateKey {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.stop {
            d.deserialize_any(Locate {
                rest: &[],
                at_key: false,
            })
        } else {
            <IgnoredAny as serde::Deserialize>::deserialize(d).map(|_| ())
        }
    }
}

// ---------------------------------------------------------------------------
// What the file may hold.

const FILE_KEYS: &[&str] = &["accounts"];
const ACCOUNT_KEYS: &[&str] = &["name", "endpoint", "regions", "credentials"];
const TYPES: &[&str] = &[
    "access_key",
    "sts_token",
    "ram_role_arn",
    "oidc_role_arn",
    "ecs_ram_role",
    "profile",
    "chain",
];

fn type_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "access_key" => &["type", "access_key_id", "access_key_secret_file"],
        "sts_token" => &[
            "type",
            "access_key_id",
            "access_key_secret_file",
            "security_token_file",
        ],
        "ram_role_arn" => &[
            "type",
            "role_arn",
            "external_id",
            "role_session_name",
            "duration_seconds",
            "policy",
            "source",
        ],
        "oidc_role_arn" => &[
            "type",
            "role_arn",
            "oidc_provider_arn",
            "oidc_token_file",
            "role_session_name",
            "duration_seconds",
        ],
        "ecs_ram_role" => &["type", "role_name"],
        "profile" => &["type", "profile"],
        _ => &["type"],
    }
}

/// Keys that would hold a secret inline, and the key that names its file.
const INLINE_SECRETS: &[(&str, &str)] = &[
    ("access_key_secret", "access_key_secret_file"),
    ("security_token", "security_token_file"),
    ("sts_token", "security_token_file"),
    ("oidc_token", "oidc_token_file"),
];

/// `source:` of `ram_role_arn` may itself be a role; deeper is a mistake.
const MAX_SOURCE_DEPTH: usize = 4;

/// STS accepts 900 s up to the role's maximum session, at most 12 hours.
const DURATION_RANGE: std::ops::RangeInclusive<i128> = 900..=43200;

/// A problem at a node (or at the key of its entry).
struct Problem {
    path: Vec<usize>,
    at_key: bool,
    msg: String,
}

impl Problem {
    fn at(node: &Node, msg: impl Into<String>) -> Self {
        Problem {
            path: node.path.clone(),
            at_key: false,
            msg: msg.into(),
        }
    }

    /// At the key of the entry whose value is `value`.
    fn key(value: &Node, msg: impl Into<String>) -> Self {
        Problem {
            path: value.path.clone(),
            at_key: true,
            msg: msg.into(),
        }
    }
}

type Checked<T> = Result<T, Problem>;

/// The value of `key`, unless absent or empty (`key:` with nothing).
fn get<'n>(entries: &'n [(String, Node)], key: &str) -> Option<&'n Node> {
    entries
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .filter(|v| !matches!(v.kind, Kind::Null))
}

fn require<'n>(
    map: &Node,
    entries: &'n [(String, Node)],
    key: &str,
    what: &str,
) -> Checked<&'n Node> {
    get(entries, key).ok_or_else(|| Problem::at(map, format!("{what}: missing key {key:?}")))
}

/// Duplicate keys and secrets written inline, whatever the mapping.
fn check_entries(entries: &[(String, Node)]) -> Checked<()> {
    for (i, (k, v)) in entries.iter().enumerate() {
        if entries[..i].iter().any(|(p, _)| p == k) {
            return Err(Problem::key(v, format!("duplicate key {k:?}")));
        }
        if let Some((_, file_key)) = INLINE_SECRETS.iter().find(|(s, _)| s == k) {
            return Err(Problem::key(
                v,
                format!(
                    "key {k:?}: secrets are never written in this file; put it in a file of its own and name that with {file_key:?}"
                ),
            ));
        }
    }
    Ok(())
}

fn check_known(entries: &[(String, Node)], allowed: &[&str], what: &str) -> Checked<()> {
    match entries.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, v)) => Err(Problem::key(
            v,
            format!("unknown key {k:?} ({what}: {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_region(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// STS's rule for RoleSessionName: 2 to 64 of `A-Z a-z 0-9 . @ - _`.
fn valid_session_name(s: &str) -> bool {
    (2..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'))
}

struct Schema<'a> {
    text: &'a str,
    /// Relative file paths are taken from here (the config file's directory).
    base: &'a Path,
}

impl Schema<'_> {
    fn file(&self, root: &Node) -> Checked<AccountsFile> {
        let entries = match &root.kind {
            Kind::Map(e) => e,
            Kind::Null => {
                return Err(Problem::at(
                    root,
                    "the file is empty; it needs a list of accounts under \"accounts\"",
                ));
            }
            other => {
                return Err(Problem::at(
                    root,
                    format!(
                        "the file must be a mapping with the key \"accounts\", not {}",
                        other.describe()
                    ),
                ));
            }
        };
        check_entries(entries)?;
        check_known(entries, FILE_KEYS, "the file takes")?;
        let list = require(root, entries, "accounts", "the file")?;
        let items = match &list.kind {
            Kind::Seq(items) if !items.is_empty() => items,
            Kind::Seq(_) => {
                return Err(Problem::at(
                    list,
                    "accounts: the list is empty; at least one account is needed",
                ));
            }
            other => {
                return Err(Problem::at(
                    list,
                    format!(
                        "accounts must be a list of accounts, not {}",
                        other.describe()
                    ),
                ));
            }
        };
        let mut accounts: Vec<AccountConfig> = Vec::with_capacity(items.len());
        let mut names: Vec<&Node> = Vec::with_capacity(items.len());
        for item in items {
            let (account, name_node) = self.account(item)?;
            if let Some(i) = accounts.iter().position(|a| a.name == account.name) {
                let first = line_of(self.text, &names[i].path, false)
                    .map(|l| format!(" (first at line {l})"))
                    .unwrap_or_default();
                return Err(Problem::at(
                    name_node,
                    format!("duplicate account name {:?}{first}", account.name),
                ));
            }
            accounts.push(account);
            names.push(name_node);
        }
        Ok(AccountsFile { accounts })
    }

    fn account<'n>(&self, item: &'n Node) -> Checked<(AccountConfig, &'n Node)> {
        let Kind::Map(entries) = &item.kind else {
            return Err(Problem::at(
                item,
                format!(
                    "an account must be a mapping with at least \"name\", not {}",
                    item.kind.describe()
                ),
            ));
        };
        check_entries(entries)?;
        check_known(entries, ACCOUNT_KEYS, "an account takes")?;
        let name_node = require(item, entries, "name", "the account")?;
        let name = string(name_node, "name")?;
        if !valid_name(&name) {
            return Err(Problem::at(
                name_node,
                format!(
                    "name {name:?}: 1 to 128 letters, digits, '_', '.' or '-' (it is the value of the account label)"
                ),
            ));
        }
        let endpoint = match get(entries, "endpoint") {
            None => None,
            Some(n) => {
                let s = string(n, "endpoint")?;
                validate_endpoint_template(&s)
                    .map_err(|e| Problem::at(n, format!("endpoint: {e}")))?;
                Some(s.trim_end_matches('/').to_string())
            }
        };
        let regions = match get(entries, "regions") {
            None => Vec::new(),
            Some(n) => regions(n)?,
        };
        let credentials = match get(entries, "credentials") {
            None => CredentialConfig::Chain,
            Some(n) => self.credentials(n, 0)?,
        };
        Ok((
            AccountConfig {
                name,
                endpoint,
                regions,
                credentials,
            },
            name_node,
        ))
    }

    fn credentials(&self, node: &Node, depth: usize) -> Checked<CredentialConfig> {
        let Kind::Map(entries) = &node.kind else {
            return Err(Problem::at(
                node,
                format!(
                    "credentials must be a mapping with a \"type\" key, not {}",
                    node.kind.describe()
                ),
            ));
        };
        check_entries(entries)?;
        let type_node = require(node, entries, "type", "credentials")?;
        let kind = string(type_node, "type")?;
        if !TYPES.contains(&kind.as_str()) {
            return Err(Problem::at(
                type_node,
                format!("type {kind:?} is not one of {}", TYPES.join(", ")),
            ));
        }
        let what = format!("credentials of type {kind}");
        check_known(entries, type_keys(&kind), &format!("{what} take"))?;
        let req = |key: &str| require(node, entries, key, &what);
        let opt_string = |key: &str| get(entries, key).map(|n| string(n, key)).transpose();
        Ok(match kind.as_str() {
            "access_key" => CredentialConfig::AccessKey {
                access_key_id: key_id(req("access_key_id")?)?,
                access_key_secret_file: self
                    .path(req("access_key_secret_file")?, "access_key_secret_file")?,
            },
            "sts_token" => CredentialConfig::StsToken {
                access_key_id: key_id(req("access_key_id")?)?,
                access_key_secret_file: self
                    .path(req("access_key_secret_file")?, "access_key_secret_file")?,
                security_token_file: self
                    .path(req("security_token_file")?, "security_token_file")?,
            },
            "ram_role_arn" => {
                let source = match get(entries, "source") {
                    None => CredentialConfig::Chain,
                    Some(_) if depth >= MAX_SOURCE_DEPTH => {
                        return Err(Problem::at(
                            node,
                            format!("source: roles nested deeper than {MAX_SOURCE_DEPTH}"),
                        ));
                    }
                    Some(n) => self.credentials(n, depth + 1)?,
                };
                let policy = match get(entries, "policy") {
                    None => None,
                    Some(n) => {
                        let p = string(n, "policy")?;
                        if !matches!(
                            serde_json::from_str::<serde_json::Value>(&p),
                            Ok(serde_json::Value::Object(_))
                        ) {
                            return Err(Problem::at(
                                n,
                                "policy must be a JSON policy document (an object)",
                            ));
                        }
                        Some(p)
                    }
                };
                CredentialConfig::RamRoleArn {
                    role: RoleSpec {
                        role_arn: role_arn(req("role_arn")?)?,
                        role_session_name: session_name(get(entries, "role_session_name"))?,
                        duration_seconds: duration(get(entries, "duration_seconds"))?,
                        external_id: opt_string("external_id")?,
                        policy,
                    },
                    source: Box::new(source),
                }
            }
            "oidc_role_arn" => {
                let provider_node = req("oidc_provider_arn")?;
                let provider = string(provider_node, "oidc_provider_arn")?;
                if !provider.starts_with("acs:ram::")
                    || !provider.contains(":oidc-provider/")
                    || provider.contains(char::is_whitespace)
                {
                    return Err(Problem::at(
                        provider_node,
                        format!(
                            "oidc_provider_arn {provider:?} is not an ARN such as acs:ram::1234567890123456:oidc-provider/name"
                        ),
                    ));
                }
                CredentialConfig::OidcRoleArn(OidcSpec {
                    role_arn: role_arn(req("role_arn")?)?,
                    oidc_provider_arn: provider,
                    oidc_token_file: self.path(req("oidc_token_file")?, "oidc_token_file")?,
                    role_session_name: session_name(get(entries, "role_session_name"))?,
                    duration_seconds: duration(get(entries, "duration_seconds"))?,
                })
            }
            "ecs_ram_role" => CredentialConfig::EcsRamRole {
                role_name: opt_string("role_name")?,
            },
            "profile" => CredentialConfig::Profile {
                name: string(req("profile")?, "profile")?,
            },
            _ => CredentialConfig::Chain,
        })
    }

    /// A file path; relative ones are taken from the config file's directory.
    fn path(&self, node: &Node, key: &str) -> Checked<PathBuf> {
        let p = PathBuf::from(string(node, key)?);
        Ok(if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        })
    }
}

/// A non-empty string (a number is taken as its digits).
fn string(node: &Node, key: &str) -> Checked<String> {
    let s = match &node.kind {
        Kind::Str(s) => s.trim().to_string(),
        Kind::Int(i) => i.to_string(),
        other => {
            return Err(Problem::at(
                node,
                format!("{key} must be a string, not {}", other.describe()),
            ));
        }
    };
    if s.is_empty() {
        return Err(Problem::at(node, format!("{key} is empty")));
    }
    Ok(s)
}

fn key_id(node: &Node) -> Checked<String> {
    let id = string(node, "access_key_id")?;
    if id.contains(char::is_whitespace) {
        return Err(Problem::at(node, "access_key_id has white space in it"));
    }
    Ok(id)
}

fn role_arn(node: &Node) -> Checked<String> {
    let arn = string(node, "role_arn")?;
    creds::validate_role_arn(&arn).map_err(|e| Problem::at(node, format!("role_arn {e}")))?;
    Ok(arn)
}

fn session_name(node: Option<&Node>) -> Checked<Option<String>> {
    let Some(node) = node else { return Ok(None) };
    let s = string(node, "role_session_name")?;
    if !valid_session_name(&s) {
        return Err(Problem::at(
            node,
            format!("role_session_name {s:?}: 2 to 64 letters, digits, '.', '@', '-' or '_'"),
        ));
    }
    Ok(Some(s))
}

fn duration(node: Option<&Node>) -> Checked<Option<u32>> {
    let Some(node) = node else { return Ok(None) };
    let n = match &node.kind {
        Kind::Int(i) => Some(*i),
        Kind::Str(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    match n {
        Some(n) if DURATION_RANGE.contains(&n) => Ok(u32::try_from(n).ok()),
        _ => Err(Problem::at(
            node,
            format!(
                "duration_seconds must be a number of seconds from {} to {}",
                DURATION_RANGE.start(),
                DURATION_RANGE.end()
            ),
        )),
    }
}

fn regions(node: &Node) -> Checked<Vec<String>> {
    let Kind::Seq(items) = &node.kind else {
        return Err(Problem::at(
            node,
            format!(
                "regions must be a list such as [cn-hangzhou, cn-shanghai], not {}",
                node.kind.describe()
            ),
        ));
    };
    if items.is_empty() {
        return Err(Problem::at(
            node,
            "regions is an empty list; leave it out to walk every region",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let r = string(item, "a region")?;
        if !valid_region(&r) {
            return Err(Problem::at(
                item,
                format!("region {r:?} is not a region id such as cn-hangzhou"),
            ));
        }
        if out.contains(&r) {
            return Err(Problem::at(item, format!("region {r:?} is listed twice")));
        }
        out.push(r);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Live accounts.

/// What every account is built with; fixed at start.
pub struct BuildOptions {
    pub path: PathBuf,
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

/// The accounts of `--config.file`, loaded at start and at every reload.
pub struct AccountSet {
    opts: BuildOptions,
    /// Also keeps two reloads from running at once.
    live: tokio::sync::Mutex<Vec<Live>>,
    /// The self-metrics of each account, kept while the account exists so
    /// a reload goes on counting where it was.
    metrics: Mutex<HashMap<String, (ApiMetrics, RefreshMetrics)>>,
}

/// Whether a running provider of `spec` may be kept as it is: not when it
/// depends on files outside the config file (the chain, profiles), which a
/// reload must read again.
fn pinned(spec: &CredentialSpec) -> bool {
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

    pub fn path(&self) -> &Path {
        &self.opts.path
    }

    /// Reads the file and builds its accounts (credentials fetched, a client
    /// each). On success they replace the ones in use and are returned; on
    /// failure the ones in use stay, and the error is one line.
    pub async fn load(&self) -> Result<Vec<Account>, String> {
        let mut live = self.live.lock().await;
        let built = self.build(&live).await;
        if let Ok(new) = built.as_ref() {
            *live = new.clone();
        }
        let keep: Vec<&str> = live.iter().map(|l| l.config.name.as_str()).collect();
        self.prune_metrics(&keep);
        built.map(|new| new.into_iter().map(|l| l.account).collect())
    }

    async fn build(&self, running: &[Live]) -> Result<Vec<Live>, String> {
        let file = load(&self.opts.path)?;
        let shown = self.opts.path.display();
        let mut done: Vec<Option<Live>> = Vec::with_capacity(file.accounts.len());
        let mut pending: HashMap<usize, Pending> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, config) in file.accounts.into_iter().enumerate() {
            let name = config.name.clone();
            let spec = config
                .credentials
                .to_spec()
                .map_err(|e| format!("config file {shown}: account {name:?}: credentials: {e}"))?;
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
            let (api, refresh) = self
                .metrics_for(&name)
                .map_err(|e| format!("account {name:?}: metrics registry: {e}"))?;
            let ctx = creds::Context::new(
                self.opts.env.clone(),
                creds::ContextOptions {
                    metrics: Some(refresh),
                    ..self.opts.credentials.clone()
                },
            )
            .map_err(|e| format!("account {name:?}: {e}"))?;
            let task_spec = spec.clone();
            tasks.spawn(async move { (i, CredentialProvider::from_spec(&task_spec, &ctx).await) });
            pending.insert(i, Pending { config, spec, api });
            done.push(None);
        }
        // Credentials of all new accounts are fetched at once; the first
        // failure ends the load (the other fetches are dropped with the set).
        while let Some(joined) = tasks.join_next().await {
            let (i, provider) = joined
                .map_err(|e| format!("fetching the credentials of an account failed: {e}"))?;
            let Some(p) = pending.remove(&i) else {
                continue;
            };
            let name = p.config.name.clone();
            let provider = provider.map_err(|e| format!("account {name:?}: {e}"))?;
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
            .map_err(|e| format!("account {name:?}: {e}"))?;
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
            .map(|l| l.ok_or_else(|| "an account was not built".to_string()))
            .collect()
    }

    fn metrics_for(&self, name: &str) -> prometheus::Result<(ApiMetrics, RefreshMetrics)> {
        let mut cache = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.get(name) {
            return Ok(m.clone());
        }
        let api = ApiMetrics::for_account(&self.opts.registry, Some(name))?;
        let refresh = match RefreshMetrics::for_account(&self.opts.registry, Some(name)) {
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

    const FILE: &str = "/etc/cae/accounts.yml";

    fn ok(text: &str) -> AccountsFile {
        parse(text, Path::new(FILE)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error, checked to be one line that starts with the file and `line`.
    fn err(text: &str, line: usize) -> String {
        let e = parse(text, Path::new(FILE)).expect_err("an error");
        assert!(!e.contains('\n'), "one line: {e}");
        let prefix = format!("config file {FILE} line {line}: ");
        assert!(e.starts_with(&prefix), "want {prefix:?}, got {e:?}");
        e
    }

    #[test]
    fn the_documented_example_parses() {
        let f = ok(r#"
accounts:
  - name: prod                         # the account label
    endpoint: "https://ecs.aliyuncs.com/"
    regions: [cn-hangzhou, cn-shanghai]
    credentials:
      type: ram_role_arn
      role_arn: "acs:ram::1234567890123456:role/cloud-assistant-exporter"
      external_id: "abc"
      role_session_name: exporter
      duration_seconds: 1800
      policy: '{"Version": "1", "Statement": []}'
      source: {type: chain}
  - name: staging
    credentials:
      type: access_key
      access_key_id: LTAI-staging
      access_key_secret_file: /run/secrets/staging
  - name: sts.1
    credentials:
      type: sts_token
      access_key_id: STS.x
      access_key_secret_file: secret
      security_token_file: token
  - name: rrsa
    credentials:
      type: oidc_role_arn
      role_arn: "acs:ram::1234567890123456:role/r"
      oidc_provider_arn: "acs:ram::1234567890123456:oidc-provider/ack"
      oidc_token_file: /var/run/secrets/tokens/oidc-token
  - name: ecs
    credentials: {type: ecs_ram_role, role_name: EcsRole}
  - name: ecs-any
    credentials: {type: ecs_ram_role}
  - name: p
    credentials: {type: profile, profile: ops}
  - name: "2024"
    credentials:
"#);
        let a = &f.accounts;
        assert_eq!(a.len(), 8);
        assert_eq!(a[0].name, "prod");
        assert_eq!(a[0].endpoint.as_deref(), Some("https://ecs.aliyuncs.com"));
        assert_eq!(a[0].regions, vec!["cn-hangzhou", "cn-shanghai"]);
        let CredentialConfig::RamRoleArn { role, source } = &a[0].credentials else {
            panic!("{:?}", a[0].credentials)
        };
        assert_eq!(
            role,
            &RoleSpec {
                role_arn: "acs:ram::1234567890123456:role/cloud-assistant-exporter".into(),
                role_session_name: Some("exporter".into()),
                duration_seconds: Some(1800),
                external_id: Some("abc".into()),
                policy: Some(r#"{"Version": "1", "Statement": []}"#.into()),
            }
        );
        assert_eq!(**source, CredentialConfig::Chain);
        assert_eq!(
            a[1].credentials,
            CredentialConfig::AccessKey {
                access_key_id: "LTAI-staging".into(),
                access_key_secret_file: "/run/secrets/staging".into(),
            }
        );
        // Relative paths are taken from the file's directory.
        assert_eq!(
            a[2].credentials,
            CredentialConfig::StsToken {
                access_key_id: "STS.x".into(),
                access_key_secret_file: "/etc/cae/secret".into(),
                security_token_file: "/etc/cae/token".into(),
            }
        );
        let CredentialConfig::OidcRoleArn(o) = &a[3].credentials else {
            panic!("{:?}", a[3].credentials)
        };
        assert_eq!(
            o.oidc_token_file,
            PathBuf::from("/var/run/secrets/tokens/oidc-token")
        );
        assert_eq!(
            a[4].credentials,
            CredentialConfig::EcsRamRole {
                role_name: Some("EcsRole".into())
            }
        );
        assert_eq!(
            a[5].credentials,
            CredentialConfig::EcsRamRole { role_name: None }
        );
        assert_eq!(
            a[6].credentials,
            CredentialConfig::Profile { name: "ops".into() }
        );
        assert_eq!(a[7].name, "2024");
        assert_eq!(a[7].credentials, CredentialConfig::Chain, "the default");
        assert!(a[7].regions.is_empty() && a[7].endpoint.is_none());
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let e = err(
            "accounts:\n  - name: a\n    credentials:\n      type: access_key\n      access_key_id: x\n      access_key_secret_file: /s\n      acces_key_id: y\n",
            7,
        );
        assert!(e.contains("unknown key \"acces_key_id\""), "{e}");
        let e = err("accounts:\n  - name: a\n    region: [cn-hangzhou]\n", 3);
        assert!(e.contains("unknown key \"region\""), "{e}");
        let e = err("accounts:\n  - name: a\nextra: 1\n", 3);
        assert!(e.contains("unknown key \"extra\""), "{e}");
        // A key of another type is unknown for this one.
        let e = err(
            "accounts:\n- name: a\n  credentials:\n    type: chain\n    role_arn: acs:ram::1:role/r\n",
            5,
        );
        assert!(e.contains("unknown key \"role_arn\""), "{e}");
        // In a flow mapping and a nested source.
        let e = err(
            "accounts:\n- name: a\n  credentials:\n    type: ram_role_arn\n    role_arn: acs:ram::1:role/r\n    source: {type: chain,\n      bogus: 1}\n",
            7,
        );
        assert!(e.contains("unknown key \"bogus\""), "{e}");
    }

    #[test]
    fn duplicate_names_and_keys() {
        let e = err(
            "accounts:\n  - name: prod\n  - name: staging\n  - name: prod\n",
            4,
        );
        assert!(
            e.contains("duplicate account name \"prod\" (first at line 2)"),
            "{e}"
        );
        let e = err("accounts:\n  - name: a\n    name: b\n", 3);
        assert!(e.contains("duplicate key \"name\""), "{e}");
    }

    #[test]
    fn inline_secrets_are_refused_without_echoing_them() {
        for (key, file_key) in [
            ("access_key_secret", "access_key_secret_file"),
            ("security_token", "security_token_file"),
        ] {
            let text = format!(
                "accounts:\n  - name: a\n    credentials:\n      type: sts_token\n      access_key_id: x\n      {key}: hunter2\n"
            );
            let e = err(&text, 6);
            assert!(e.contains(&format!("key \"{key}\"")), "{e}");
            assert!(e.contains(file_key), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        // Before the type is even known, and at the account level too.
        let e = err(
            "accounts:\n  - name: a\n    access_key_secret: hunter2\n",
            3,
        );
        assert!(!e.contains("hunter2") && e.contains("secrets"), "{e}");
    }

    #[test]
    fn missing_keys_point_at_their_mapping() {
        let e = err("accounts:\n  - endpoint: http://127.0.0.1:1\n", 2);
        assert!(e.contains("missing key \"name\""), "{e}");
        let e = err(
            "accounts:\n  - name: a\n    credentials:\n      type: ram_role_arn\n",
            4,
        );
        assert!(
            e.contains("credentials of type ram_role_arn: missing key \"role_arn\""),
            "{e}"
        );
        let e = err(
            "accounts:\n  - name: a\n    credentials:\n      access_key_id: x\n",
            4,
        );
        assert!(e.contains("missing key \"type\""), "{e}");
        let e = err(
            "accounts:\n  - name: a\n    credentials: {type: access_key, access_key_id: x}\n",
            3,
        );
        assert!(e.contains("missing key \"access_key_secret_file\""), "{e}");
        let e = err("# nothing\nother: 1\n", 2);
        assert!(e.contains("unknown key \"other\""), "{e}");
        let e = err("{}\n", 1);
        assert!(e.contains("missing key \"accounts\""), "{e}");
        let e = parse("# only a comment\n", Path::new(FILE)).expect_err("empty");
        assert!(
            e.starts_with("config file") && e.contains("is empty"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_the_key_and_line() {
        for (text, line, want) in [
            ("accounts: []\n", 1, "the list is empty"),
            ("accounts: prod\n", 1, "must be a list"),
            ("accounts:\n  - prod\n", 2, "must be a mapping"),
            ("accounts:\n  - name: pr od\n", 2, "name \"pr od\""),
            ("accounts:\n  - name: [a]\n", 2, "name must be a string"),
            (
                "accounts:\n  - name: a\n    endpoint: ecs.aliyuncs.com\n",
                3,
                "endpoint",
            ),
            (
                "accounts:\n  - name: a\n    endpoint: https://{zone}.x\n",
                3,
                "{region}",
            ),
            (
                "accounts:\n  - name: a\n    regions: cn-hangzhou\n",
                3,
                "regions must be a list",
            ),
            ("accounts:\n  - name: a\n    regions: []\n", 3, "empty list"),
            (
                "accounts:\n  - name: a\n    regions:\n      - cn-hangzhou\n      - CN_X\n",
                5,
                "region \"CN_X\"",
            ),
            (
                "accounts:\n  - name: a\n    regions: [cn-a, cn-a]\n",
                3,
                "listed twice",
            ),
            (
                "accounts:\n  - name: a\n    credentials: chain\n",
                3,
                "must be a mapping",
            ),
            (
                "accounts:\n  - name: a\n    credentials:\n      type: magic\n",
                4,
                "type \"magic\" is not one of",
            ),
            (
                "accounts:\n  - name: a\n    credentials:\n      type: ram_role_arn\n      role_arn: reader\n",
                5,
                "role_arn \"reader\"",
            ),
            (
                "accounts:\n  - name: a\n    credentials:\n      type: ram_role_arn\n      role_arn: acs:ram::1:role/r\n      duration_seconds: 60\n",
                6,
                "duration_seconds",
            ),
            (
                "accounts:\n  - name: a\n    credentials:\n      type: ram_role_arn\n      role_arn: acs:ram::1:role/r\n      role_session_name: a b\n",
                6,
                "role_session_name",
            ),
            (
                "accounts:\n  - name: a\n    credentials:\n      type: ram_role_arn\n      role_arn: acs:ram::1:role/r\n      policy: not json\n",
                6,
                "policy",
            ),
            (
                "accounts:\n  - name: a\n    credentials:\n      type: oidc_role_arn\n      role_arn: acs:ram::1:role/r\n      oidc_provider_arn: ack\n      oidc_token_file: /t\n",
                6,
                "oidc_provider_arn",
            ),
            (
                "accounts:\n  - name: a\n    credentials:\n      type: access_key\n      access_key_id: \"\"\n      access_key_secret_file: /s\n",
                5,
                "access_key_id is empty",
            ),
            (
                "accounts:\n  - name: a\n    credentials: {type: profile, profile: true}\n",
                3,
                "profile must be a string",
            ),
            (
                "accounts:\n  - name: a\n    credentials: !access_key {}\n",
                3,
                "tags",
            ),
        ] {
            let e = err(text, line);
            assert!(e.contains(want), "{text:?}: want {want:?} in {e}");
        }
    }

    #[test]
    fn yaml_syntax_errors_carry_the_line() {
        let e = err("accounts:\n  - name: a\n   bad: [\n", 3);
        assert!(e.starts_with("config file"), "{e}");
        let e = parse(
            "accounts:\n  - name: a\n---\naccounts: []\n",
            Path::new(FILE),
        )
        .expect_err("two documents");
        assert!(e.contains("more than one document"), "{e}");
    }

    #[test]
    fn nested_sources_and_their_limit() {
        let f = ok(r#"
accounts:
  - name: chained
    credentials:
      type: ram_role_arn
      role_arn: "acs:ram::1:role/outer"
      source:
        type: ram_role_arn
        role_arn: "acs:ram::1:role/inner"
        source: {type: access_key, access_key_id: LTAI, access_key_secret_file: s}
"#);
        let CredentialConfig::RamRoleArn { source, .. } = &f.accounts[0].credentials else {
            panic!()
        };
        let CredentialConfig::RamRoleArn { source, role } = &**source else {
            panic!()
        };
        assert_eq!(role.role_arn, "acs:ram::1:role/inner");
        assert!(matches!(**source, CredentialConfig::AccessKey { .. }));
        let mut deep = String::from("accounts:\n- name: a\n  credentials: ");
        for _ in 0..6 {
            deep.push_str("{type: ram_role_arn, role_arn: \"acs:ram::1:role/r\", source: ");
        }
        deep.push_str("{type: chain}");
        deep.push_str(&"}".repeat(6));
        deep.push('\n');
        let e = parse(&deep, Path::new(FILE)).expect_err("too deep");
        assert!(e.contains("nested deeper"), "{e}");
    }

    #[test]
    fn secrets_are_read_from_files_trimmed_and_never_shown() {
        let dir = std::env::temp_dir().join(format!("cae-accounts-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("secret"), "s3cret-value\n").expect("write");
        std::fs::write(dir.join("token"), "  tok\n").expect("write");
        std::fs::write(dir.join("empty"), "\n").expect("write");
        let file = dir.join("accounts.yml");
        let f = parse(
            "accounts:\n- name: a\n  credentials: {type: sts_token, access_key_id: STS.1, access_key_secret_file: secret, security_token_file: token}\n- name: b\n  credentials: {type: access_key, access_key_id: LTAI, access_key_secret_file: empty}\n- name: c\n  credentials: {type: access_key, access_key_id: LTAI, access_key_secret_file: missing}\n",
            &file,
        )
        .expect("parses");
        let spec = f.accounts[0].credentials.to_spec().expect("reads");
        let CredentialSpec::AccessKey {
            origin,
            access_key_secret,
            security_token,
            ..
        } = &spec
        else {
            panic!("{spec:?}")
        };
        assert_eq!(*origin, creds::SOURCE_CONFIG_FILE);
        assert_eq!(access_key_secret.expose(), "s3cret-value");
        assert_eq!(security_token.as_ref().map(Secret::expose), Some("tok"));
        assert!(!format!("{spec:?}").contains("s3cret"));
        let e = f.accounts[1].credentials.to_spec().expect_err("empty");
        assert!(
            e.contains("access_key_secret_file") && e.contains("is empty"),
            "{e}"
        );
        let e = f.accounts[2].credentials.to_spec().expect_err("missing");
        assert!(e.contains("cannot read it"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lines_are_found_for_keys_and_values() {
        let text = "accounts:\n  - name: a\n    credentials:\n      type: chain\n  - name: b\n";
        assert_eq!(line_of(text, &[0, 0, 0], false), Some(2), "name of a");
        assert_eq!(line_of(text, &[0, 0, 1, 0], true), Some(4), "key type");
        assert_eq!(line_of(text, &[0, 1], false), Some(5), "second account");
        assert_eq!(line_of(text, &[0, 9], false), None, "no such node");
    }

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
