//! Step 3 of the chain: a profile of the Alibaba Cloud CLI's
//! `~/.aliyun/config.json`, with the CLI's own key names. The profile is the
//! one `ALIBABA_CLOUD_PROFILE` names, else the file's `current`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::detect::{Detected, Detection, now};
use super::{
    Context, CredentialSpec, CredentialsError, Env, OidcSpec, RoleSpec, SOURCE_CLI_PROFILE,
};
use crate::secret::Secret;

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    current: String,
    #[serde(default)]
    profiles: Vec<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: Option<Secret>,
    #[serde(default)]
    sts_token: Option<Secret>,
    #[serde(default)]
    ram_role_arn: String,
    #[serde(default)]
    ram_session_name: String,
    #[serde(default)]
    expired_seconds: Option<Value>,
    #[serde(default)]
    external_id: String,
    #[serde(default)]
    ram_role_name: String,
    #[serde(default)]
    oidc_provider_arn: String,
    #[serde(default)]
    oidc_token_file: String,
    #[serde(default)]
    source_profile: String,
}

/// `ChainableRamRoleArn` profiles may name each other; deeper is a loop.
const MAX_CHAIN: usize = 8;

/// A CLI config that cannot be used. Names the file, the profile and the
/// key, never a value.
#[derive(Debug, thiserror::Error)]
pub enum CliProfileError {
    #[error("cannot read the CLI config {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// serde's messages may quote a value: only the position is kept.
    #[error(
        "the CLI config {} is not valid ({category:?} error at line {line} column {column})",
        .path.display()
    )]
    Invalid {
        path: PathBuf,
        category: serde_json::error::Category,
        line: usize,
        column: usize,
    },
    #[error("no profile {name:?} in {}", .path.display())]
    NoProfile { name: String, path: PathBuf },
    #[error("CLI profile: HOME is not set")]
    NoHome,
    #[error("the CLI config {} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("CLI profile {name:?} in {}: {problem}", .path.display())]
    Profile {
        name: String,
        path: PathBuf,
        problem: ProfileProblem,
    },
}

/// What is wrong in a profile of the CLI config.
#[derive(Debug, thiserror::Error)]
pub enum ProfileProblem {
    #[error("mode {mode} needs {key}")]
    Needs { mode: String, key: &'static str },
    #[error("expired_seconds is not a number")]
    ExpiredNotNumber,
    #[error("expired_seconds is too large")]
    ExpiredTooLarge,
    #[error("source_profile chain longer than {MAX_CHAIN} (a loop?)")]
    ChainTooLong,
    #[error("source_profile {0:?} does not exist")]
    NoSource(String),
    #[error("mode is not set")]
    NoMode,
    #[error(
        "mode {0:?} is not supported (AK, StsToken, RamRoleArn, EcsRamRole, OIDC, ChainableRamRoleArn)"
    )]
    Mode(String),
}

fn config_path(env: &Env) -> Option<PathBuf> {
    env.home().map(|h| h.join(".aliyun").join("config.json"))
}

fn read(path: &Path) -> Result<Option<ConfigFile>, CredentialsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CliProfileError::Read {
                path: path.to_path_buf(),
                source,
            }
            .into());
        }
    };
    parse_config(&text, path).map(Some)
}

fn parse_config(text: &str, path: &Path) -> Result<ConfigFile, CredentialsError> {
    // serde's messages may quote a value: only the position is reported.
    serde_json::from_str(text).map_err(|e| {
        CliProfileError::Invalid {
            path: path.to_path_buf(),
            category: e.classify(),
            line: e.line(),
            column: e.column(),
        }
        .into()
    })
}

/// The credential source the profile `profile` (`None`: the file's
/// `current`) of a CLI config's `text` describes, as [`load`] reads it
/// from `path` (for the fuzz tests).
#[cfg(test)]
pub(crate) fn parse_file(
    text: &str,
    path: &Path,
    profile: Option<&str>,
) -> Result<CredentialSpec, CredentialsError> {
    let cfg = parse_config(text, path)?;
    named_spec(&cfg, &profile_name(&Env::default(), &cfg, profile), path)
}

/// The profile `name` of `cfg`, read from `path`; missing is an error.
fn named_spec(
    cfg: &ConfigFile,
    name: &str,
    path: &Path,
) -> Result<CredentialSpec, CredentialsError> {
    let p = cfg
        .profiles
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| CliProfileError::NoProfile {
            name: name.to_string(),
            path: path.to_path_buf(),
        })?;
    to_spec(cfg, p, path, 0)
}

fn profile_name(env: &Env, cfg: &ConfigFile, asked: Option<&str>) -> String {
    asked
        .or_else(|| env.get("ALIBABA_CLOUD_PROFILE"))
        .or(Some(cfg.current.as_str()).filter(|c| !c.is_empty()))
        .unwrap_or("default")
        .trim()
        .to_string()
}

/// The chain's step: `Absent` when switched off, or when there is no file
/// or no such profile.
pub(crate) fn detect(ctx: &Context) -> Detection<'_> {
    if ctx.env.is_true("ALIBABA_CLOUD_CLI_PROFILE_DISABLED") {
        return now(Ok(Detected::Absent(
            "CLI profile (ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true)".into(),
        )));
    }
    now(find(&ctx.env))
}

fn find(env: &Env) -> Result<Detected, CredentialsError> {
    let Some(path) = config_path(env) else {
        return Ok(Detected::Absent("CLI profile (HOME is not set)".into()));
    };
    let Some(cfg) = read(&path)? else {
        return Ok(Detected::Absent(format!(
            "CLI profile ({} does not exist)",
            path.display()
        )));
    };
    let name = profile_name(env, &cfg, None);
    match cfg.profiles.iter().find(|p| p.name == name) {
        None => Ok(Detected::Absent(format!(
            "CLI profile (no profile {name:?} in {})",
            path.display()
        ))),
        Some(p) => Ok(Detected::Found(
            to_spec(&cfg, p, &path, 0)?,
            format!(
                "CLI profile {name:?} (mode {}) in {}",
                p.mode,
                path.display()
            ),
        )),
    }
}

/// Whether the CLI config has a profile of this name (no file: it has not).
pub(crate) fn has_profile(env: &Env, name: &str) -> Result<bool, CredentialsError> {
    let Some(path) = config_path(env) else {
        return Ok(false);
    };
    Ok(read(&path)?.is_some_and(|cfg| cfg.profiles.iter().any(|p| p.name == name.trim())))
}

/// A profile asked for by name (`None`: as the chain picks it); missing is an error.
pub(crate) fn load(env: &Env, profile: Option<&str>) -> Result<CredentialSpec, CredentialsError> {
    let path = config_path(env).ok_or(CliProfileError::NoHome)?;
    let cfg = read(&path)?.ok_or_else(|| CliProfileError::Missing(path.clone()))?;
    named_spec(&cfg, &profile_name(env, &cfg, profile), &path)
}

fn to_spec(
    cfg: &ConfigFile,
    p: &Profile,
    path: &Path,
    depth: usize,
) -> Result<CredentialSpec, CredentialsError> {
    let err = |problem: ProfileProblem| -> CredentialsError {
        CliProfileError::Profile {
            name: p.name.clone(),
            path: path.to_path_buf(),
            problem,
        }
        .into()
    };
    let needs = |key: &'static str| {
        err(ProfileProblem::Needs {
            mode: p.mode.clone(),
            key,
        })
    };
    let need = |key: &'static str, v: &str| -> Result<String, CredentialsError> {
        if v.trim().is_empty() {
            Err(needs(key))
        } else {
            Ok(v.trim().to_string())
        }
    };
    let need_secret = |key: &'static str, v: &Option<Secret>| -> Result<Secret, CredentialsError> {
        v.clone()
            .filter(|s| !s.expose().is_empty())
            .ok_or_else(|| needs(key))
    };
    let access_key = |token: Option<Secret>| -> Result<CredentialSpec, CredentialsError> {
        Ok(CredentialSpec::AccessKey {
            origin: SOURCE_CLI_PROFILE,
            access_key_id: need("access_key_id", &p.access_key_id)?,
            access_key_secret: need_secret("access_key_secret", &p.access_key_secret)?,
            security_token: token,
        })
    };
    let duration = match &p.expired_seconds {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => return Err(err(ProfileProblem::ExpiredNotNumber)),
    }
    .filter(|d| *d > 0)
    .map(|d| u32::try_from(d).map_err(|_| err(ProfileProblem::ExpiredTooLarge)))
    .transpose()?;
    let role = || -> Result<RoleSpec, CredentialsError> {
        Ok(RoleSpec {
            role_arn: need("ram_role_arn", &p.ram_role_arn)?,
            role_session_name: Some(p.ram_session_name.trim().to_string())
                .filter(|s| !s.is_empty()),
            duration_seconds: duration,
            external_id: Some(p.external_id.trim().to_string()).filter(|s| !s.is_empty()),
            policy: None,
        })
    };
    match p.mode.as_str() {
        "AK" => access_key(None),
        "" if !p.access_key_id.is_empty() => access_key(None),
        "StsToken" => access_key(Some(need_secret("sts_token", &p.sts_token)?)),
        "RamRoleArn" => Ok(CredentialSpec::AssumeRole {
            role: role()?,
            source: Box::new(access_key(None)?),
        }),
        "EcsRamRole" => Ok(CredentialSpec::EcsRamRole {
            origin: SOURCE_CLI_PROFILE,
            role_name: Some(p.ram_role_name.trim().to_string()).filter(|s| !s.is_empty()),
        }),
        "OIDC" => Ok(CredentialSpec::Oidc {
            origin: SOURCE_CLI_PROFILE,
            spec: OidcSpec {
                role_arn: need("ram_role_arn", &p.ram_role_arn)?,
                oidc_provider_arn: need("oidc_provider_arn", &p.oidc_provider_arn)?,
                oidc_token_file: PathBuf::from(need("oidc_token_file", &p.oidc_token_file)?),
                role_session_name: Some(p.ram_session_name.trim().to_string())
                    .filter(|s| !s.is_empty()),
                duration_seconds: duration,
            },
        }),
        "ChainableRamRoleArn" => {
            let source_name = need("source_profile", &p.source_profile)?;
            if depth >= MAX_CHAIN {
                return Err(err(ProfileProblem::ChainTooLong));
            }
            let source = cfg
                .profiles
                .iter()
                .find(|s| s.name == source_name)
                .ok_or_else(|| err(ProfileProblem::NoSource(source_name.clone())))?;
            Ok(CredentialSpec::AssumeRole {
                role: role()?,
                source: Box::new(to_spec(cfg, source, path, depth + 1)?),
            })
        }
        "" => Err(err(ProfileProblem::NoMode)),
        other => Err(err(ProfileProblem::Mode(other.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::*;

    fn home_with(config: &str) -> (PathBuf, Env) {
        let dir = std::env::temp_dir().join(format!(
            "cae-cli-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(dir.join(".aliyun")).expect("mkdir");
        std::fs::write(dir.join(".aliyun/config.json"), config).expect("write");
        let home = dir.to_string_lossy().into_owned();
        (dir, env(&[("HOME", home.as_str())]))
    }

    const CONFIG: &str = r#"{
      "current": "ak",
      "profiles": [
        {"name": "ak", "mode": "AK", "access_key_id": "LTAIak", "access_key_secret": "sec-ak", "region_id": "cn-hangzhou", "output_format": "json"},
        {"name": "sts", "mode": "StsToken", "access_key_id": "STS.x", "access_key_secret": "sec-sts", "sts_token": "tok-sts"},
        {"name": "role", "mode": "RamRoleArn", "access_key_id": "LTAIrole", "access_key_secret": "sec-role",
         "ram_role_arn": "acs:ram::123:role/reader", "ram_session_name": "s1", "expired_seconds": 900, "external_id": "ext"},
        {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "EcsRole"},
        {"name": "oidc", "mode": "OIDC", "ram_role_arn": "acs:ram::123:role/o", "oidc_provider_arn": "acs:ram::123:oidc-provider/p",
         "oidc_token_file": "/var/token", "expired_seconds": "1200"},
        {"name": "chain", "mode": "ChainableRamRoleArn", "source_profile": "role", "ram_role_arn": "acs:ram::456:role/cross"},
        {"name": "loop", "mode": "ChainableRamRoleArn", "source_profile": "loop", "ram_role_arn": "acs:ram::456:role/cross"},
        {"name": "sso", "mode": "CloudSSO"},
        {"name": "half", "mode": "RamRoleArn", "access_key_id": "LTAIx", "access_key_secret": "sec-half"}
      ]
    }"#;

    fn load_named(env: &Env, name: &str) -> Result<CredentialSpec, CredentialsError> {
        load(env, Some(name))
    }

    #[test]
    fn every_mode_maps_to_its_source() {
        let (dir, env) = home_with(CONFIG);
        match find(&env).expect("ok") {
            Detected::Found(
                CredentialSpec::AccessKey {
                    origin,
                    access_key_id,
                    ..
                },
                what,
            ) => {
                assert_eq!((origin, access_key_id.as_str()), ("cli_profile", "LTAIak"));
                assert!(what.contains("\"ak\" (mode AK)"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        let CredentialSpec::AccessKey { security_token, .. } =
            load_named(&env, "sts").expect("sts")
        else {
            panic!()
        };
        assert_eq!(
            security_token.map(|t| t.expose().to_string()).as_deref(),
            Some("tok-sts")
        );
        let CredentialSpec::AssumeRole { role, source } = load_named(&env, "role").expect("role")
        else {
            panic!()
        };
        assert_eq!(role.role_arn, "acs:ram::123:role/reader");
        assert_eq!(role.role_session_name.as_deref(), Some("s1"));
        assert_eq!(role.duration_seconds, Some(900));
        assert_eq!(role.external_id.as_deref(), Some("ext"));
        assert!(
            matches!(*source, CredentialSpec::AccessKey { ref access_key_id, .. } if access_key_id == "LTAIrole")
        );
        assert!(matches!(
            load_named(&env, "ecs").expect("ecs"),
            CredentialSpec::EcsRamRole { origin: "cli_profile", role_name: Some(ref r) } if r == "EcsRole"
        ));
        let CredentialSpec::Oidc { spec, .. } = load_named(&env, "oidc").expect("oidc") else {
            panic!()
        };
        assert_eq!(spec.duration_seconds, Some(1200));
        assert_eq!(spec.oidc_token_file, PathBuf::from("/var/token"));
        let CredentialSpec::AssumeRole { role, source } = load_named(&env, "chain").expect("chain")
        else {
            panic!()
        };
        assert_eq!(role.role_arn, "acs:ram::456:role/cross");
        assert!(
            matches!(*source, CredentialSpec::AssumeRole { .. }),
            "role over role"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn errors_name_the_profile_and_key_never_a_value() {
        let (dir, env) = home_with(CONFIG);
        for (name, want) in [
            ("loop", "loop?"),
            ("sso", "CloudSSO"),
            ("half", "needs ram_role_arn"),
            ("nope", "no profile \"nope\""),
        ] {
            let e = load_named(&env, name).expect_err(name).to_string();
            assert!(e.contains(want), "{name}: {e}");
            assert!(!e.contains("sec-"), "{e}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn profile_from_environment_and_absent_cases() {
        let (dir, _) = home_with(CONFIG);
        let home = dir.to_string_lossy().into_owned();
        let e = env(&[("HOME", home.as_str()), ("ALIBABA_CLOUD_PROFILE", "ecs")]);
        assert!(matches!(
            find(&e),
            Ok(Detected::Found(CredentialSpec::EcsRamRole { .. }, _))
        ));
        let e = env(&[
            ("HOME", home.as_str()),
            ("ALIBABA_CLOUD_PROFILE", "only-in-ini"),
        ]);
        assert!(matches!(find(&e), Ok(Detected::Absent(ref w)) if w.contains("only-in-ini")));
        assert!(matches!(find(&env(&[])), Ok(Detected::Absent(_))));
        let e = env(&[("HOME", "/nonexistent-home")]);
        assert!(matches!(find(&e), Ok(Detected::Absent(ref w)) if w.contains("does not exist")));
        std::fs::write(
            dir.join(".aliyun/config.json"),
            "{\"profiles\": [{\"name\": 5, \"access_key_secret\": \"sec-bad\"",
        )
        .expect("write");
        let err = find(&env(&[("HOME", home.as_str())]))
            .expect_err("bad json")
            .to_string();
        assert!(
            err.contains("config.json is not valid") && !err.contains("sec-bad"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
