//! The `credentials:` mapping of an account in `--config.file`: `type` is
//! read first, then every other key straight into that type's struct
//! (`deny_unknown_fields`), so each error keeps the parser's line and the
//! key's path. Serde's internally tagged enums would buffer the mapping and
//! lose both.

use std::collections::VecDeque;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::accounts_file::CredentialConfig;
use crate::credentials::{OidcSpec, RoleSpec};

use super::checked::{
    Checked, InlineOidcToken, InlineSecretKey, InlineToken, KeyId, NonEmpty, OidcProviderArn,
    Policy, Refused, RoleArn, Seconds, SessionName,
};

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

    #[test]
    fn each_type_lists_the_keys_it_takes() {
        assert!(Kind::ALL.iter().all(|k| k.takes("").is_err()));
        assert_eq!(
            Kind::AccessKey.takes(""),
            Err(&["access_key_id", "access_key_secret_file"][..])
        );
    }
}
