//! What an account entry names, made concrete: its credential source with
//! the secrets read from their files, and whether a running provider of it
//! may be kept across a reload.

use std::path::{Path, PathBuf};

use crate::config::accounts_file::CredentialConfig;
use crate::credentials::{self as creds, CredentialSpec};
use crate::secret::Secret;

/// A secret file an entry names that cannot be used. Names the key and the
/// path, never the content.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{key} {}: cannot read it: {source}", .path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key} {} is empty", .path.display())]
    Empty { key: &'static str, path: PathBuf },
    /// In the `source:` of a role.
    #[error("source: {0}")]
    Source(Box<SpecError>),
}

/// The credential source an entry names, with its secrets read from their
/// files now (at start and at every reload).
pub fn credential_spec(config: &CredentialConfig) -> Result<CredentialSpec, SpecError> {
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
            source: Box::new(credential_spec(source).map_err(|e| SpecError::Source(Box::new(e)))?),
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

/// A secret file's content, trimmed (a trailing newline is not part of it).
/// Errors name the key and the path, never the content.
fn read_secret(key: &'static str, path: &Path) -> Result<Secret, SpecError> {
    let raw = std::fs::read_to_string(path)
        .map(Secret::new)
        .map_err(|source| SpecError::Read {
            key,
            path: path.to_path_buf(),
            source,
        })?;
    let value = raw.expose().trim();
    if value.is_empty() {
        return Err(SpecError::Empty {
            key,
            path: path.to_path_buf(),
        });
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
