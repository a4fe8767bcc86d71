//! Step 4 of the chain: the SDKs' credentials file,
//! `ALIBABA_CLOUD_CREDENTIALS_FILE` else `~/.alibabacloud/credentials.ini`,
//! section `ALIBABA_CLOUD_PROFILE` else `default`, with the SDKs' key names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::detect::{Detected, Detection, now};
use super::{
    Context, CredentialSpec, CredentialsError, Env, OidcSpec, RoleSpec, SOURCE_CREDENTIALS_FILE,
};
use crate::secret::Secret;

/// Sections of an INI file: name → key → value. Values stay in this map
/// only until the secret ones are moved into [`Secret`]s.
type Sections = HashMap<String, HashMap<String, String>>;

/// A line of the credentials file that is not INI. Names the line, never
/// its text (it may hold a secret).
#[derive(Debug, thiserror::Error)]
pub enum IniError {
    #[error("line {0}: a section header without ']'")]
    Header(usize),
    #[error("line {0}: neither a section nor key = value")]
    Line(usize),
    #[error("line {0}: a key before any [section]")]
    NoSection(usize),
}

/// A credentials file that cannot be used. Names the file, the section and
/// the key, never a value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsFileError {
    #[error("cannot read the credentials file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the credentials file {}: {source}", .path.display())]
    Syntax { path: PathBuf, source: IniError },
    #[error("credentials file: HOME is not set")]
    NoHome,
    #[error("the credentials file {} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("no section [{name}] in {}", .path.display())]
    NoSection { name: String, path: PathBuf },
    #[error("section [{name}] of {}: {problem}", .path.display())]
    Section {
        name: String,
        path: PathBuf,
        problem: SectionProblem,
    },
}

/// What is wrong in a section of the credentials file.
#[derive(Debug, thiserror::Error)]
pub enum SectionProblem {
    #[error("type {kind} needs {key}")]
    Needs { kind: String, key: &'static str },
    #[error("role_session_expiration is not a number of seconds")]
    Duration,
    #[error("type is not set")]
    NoType,
    #[error("type {0:?} is not supported (access_key, ram_role_arn, oidc_role_arn, ecs_ram_role)")]
    Type(String),
}

/// Parses `[section]` and `key = value` lines; `#` and `;` start comments.
fn parse(text: &str) -> Result<Sections, IniError> {
    let mut sections = Sections::new();
    let mut current: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or(IniError::Header(n + 1))?;
            let name = name.trim().to_string();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let (k, v) = line.split_once('=').ok_or(IniError::Line(n + 1))?;
        let section = current.as_ref().ok_or(IniError::NoSection(n + 1))?;
        let mut v = v.trim();
        // An inline comment needs a space before it: secrets hold no spaces.
        if let Some(i) = v.find(" #").or_else(|| v.find(" ;")) {
            v = v[..i].trim_end();
        }
        if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            v = &v[1..v.len() - 1];
        }
        sections
            .entry(section.clone())
            .or_default()
            .insert(k.trim().to_ascii_lowercase(), v.to_string());
    }
    Ok(sections)
}

/// The file and whether it was named explicitly (then it must exist).
fn file_path(env: &Env, path: Option<&Path>) -> Option<(PathBuf, bool)> {
    if let Some(p) = path {
        return Some((p.to_path_buf(), true));
    }
    if let Some(p) = env.get("ALIBABA_CLOUD_CREDENTIALS_FILE") {
        return Some((PathBuf::from(p), true));
    }
    let home = env.home()?;
    let paths = default_paths(&home);
    // The first that exists; when none does, the first is the one named.
    let found = paths.iter().find(|p| p.exists()).unwrap_or(&paths[0]);
    Some((found.clone(), false))
}

/// Where the file is looked for in `home`: `credentials.ini` (the Python
/// SDK's name) and `credentials` (the Go, Java and Node SDKs').
pub(super) fn default_paths(home: &Path) -> [PathBuf; 2] {
    let dir = home.join(".alibabacloud");
    [dir.join("credentials.ini"), dir.join("credentials")]
}

fn read(path: &Path, explicit: bool) -> Result<Option<Sections>, CredentialsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(source) => {
            return Err(CredentialsFileError::Read {
                path: path.to_path_buf(),
                source,
            }
            .into());
        }
    };
    parse_named(&text, path).map(Some)
}

/// [`parse`], its error naming the file.
fn parse_named(text: &str, path: &Path) -> Result<Sections, CredentialsError> {
    parse(text).map_err(|source| {
        CredentialsFileError::Syntax {
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

/// The credential source section `profile` of a credentials file's `text`
/// describes, as [`load`] reads it from `path` (for the fuzz tests).
#[cfg(test)]
pub(crate) fn parse_file(
    text: &str,
    path: &Path,
    profile: &str,
) -> Result<CredentialSpec, CredentialsError> {
    let mut sections = parse_named(text, path)?;
    let section = sections
        .remove(profile)
        .ok_or_else(|| CredentialsFileError::NoSection {
            name: profile.to_string(),
            path: path.to_path_buf(),
        })?;
    to_spec(section, profile, path)
}

/// The chain's step: `Absent` when there is no file, no such section or
/// the section is disabled (`enable = false`).
pub(crate) fn detect(ctx: &Context) -> Detection<'_> {
    now(find(&ctx.env))
}

fn find(env: &Env) -> Result<Detected, CredentialsError> {
    let Some((path, explicit)) = file_path(env, None) else {
        return Ok(Detected::Absent(
            "credentials file (HOME and ALIBABA_CLOUD_CREDENTIALS_FILE are not set)".into(),
        ));
    };
    let Some(mut sections) = read(&path, explicit)? else {
        return Ok(Detected::Absent(format!(
            "credentials file ({} does not exist)",
            path.display()
        )));
    };
    let name = env
        .get("ALIBABA_CLOUD_PROFILE")
        .unwrap_or("default")
        .trim()
        .to_string();
    let Some(section) = sections.remove(&name) else {
        return Ok(Detected::Absent(format!(
            "credentials file (no section [{name}] in {})",
            path.display()
        )));
    };
    if section
        .get("enable")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"))
    {
        return Ok(Detected::Absent(format!(
            "credentials file (section [{name}] in {} has enable = false)",
            path.display()
        )));
    }
    let kind = section.get("type").cloned().unwrap_or_default();
    Ok(Detected::Found(
        to_spec(section, &name, &path)?,
        format!(
            "credentials file {} section [{name}] (type {kind})",
            path.display()
        ),
    ))
}

/// A section asked for by name (`None`: as the chain picks it); missing is an error.
pub(crate) fn load(
    env: &Env,
    path: Option<&Path>,
    profile: Option<&str>,
) -> Result<CredentialSpec, CredentialsError> {
    let (path, explicit) = file_path(env, path).ok_or(CredentialsFileError::NoHome)?;
    let mut sections =
        read(&path, explicit)?.ok_or_else(|| CredentialsFileError::Missing(path.clone()))?;
    let name = profile
        .or_else(|| env.get("ALIBABA_CLOUD_PROFILE"))
        .unwrap_or("default")
        .trim()
        .to_string();
    let section = sections
        .remove(&name)
        .ok_or_else(|| CredentialsFileError::NoSection {
            name: name.clone(),
            path: path.clone(),
        })?;
    to_spec(section, &name, &path)
}

fn to_spec(
    mut s: HashMap<String, String>,
    name: &str,
    path: &Path,
) -> Result<CredentialSpec, CredentialsError> {
    let kind = s.get("type").cloned().unwrap_or_default();
    let err = |problem: SectionProblem| -> CredentialsError {
        CredentialsFileError::Section {
            name: name.to_string(),
            path: path.to_path_buf(),
            problem,
        }
        .into()
    };
    let mut take = |key: &'static str| -> Result<String, CredentialsError> {
        s.remove(key)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                err(SectionProblem::Needs {
                    kind: kind.clone(),
                    key,
                })
            })
    };
    let access_key = |take: &mut dyn FnMut(&'static str) -> Result<String, CredentialsError>| {
        Ok::<_, CredentialsError>(CredentialSpec::AccessKey {
            origin: SOURCE_CREDENTIALS_FILE,
            access_key_id: take("access_key_id")?.trim().to_string(),
            access_key_secret: Secret::new(take("access_key_secret")?),
            security_token: None,
        })
    };
    match kind.as_str() {
        "access_key" => access_key(&mut take),
        "ram_role_arn" => {
            let source = access_key(&mut take)?;
            let role_arn = take("role_arn")?;
            let role_session_name = take("role_session_name").ok();
            let external_id = take("external_id").ok();
            let policy = take("policy").ok();
            let duration = take("role_session_expiration")
                .ok()
                .map(|d| {
                    d.trim()
                        .parse::<u32>()
                        .map_err(|_| err(SectionProblem::Duration))
                })
                .transpose()?;
            Ok(CredentialSpec::AssumeRole {
                role: RoleSpec {
                    role_arn: role_arn.trim().to_string(),
                    role_session_name,
                    duration_seconds: duration,
                    external_id,
                    policy,
                },
                source: Box::new(source),
            })
        }
        "oidc_role_arn" => Ok(CredentialSpec::Oidc {
            origin: SOURCE_CREDENTIALS_FILE,
            spec: OidcSpec {
                role_arn: take("role_arn")?.trim().to_string(),
                oidc_provider_arn: take("oidc_provider_arn")?.trim().to_string(),
                oidc_token_file: PathBuf::from(take("oidc_token_file_path")?.trim()),
                role_session_name: take("role_session_name").ok(),
                duration_seconds: None,
            },
        }),
        "ecs_ram_role" => Ok(CredentialSpec::EcsRamRole {
            origin: SOURCE_CREDENTIALS_FILE,
            role_name: take("role_name").ok(),
        }),
        "" => Err(err(SectionProblem::NoType)),
        other => Err(err(SectionProblem::Type(other.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::*;

    const FILE: &str = "\
# the SDKs' example
[default]
enable = true
type = access_key
access_key_id = LTAIdefault
access_key_secret = sec-default  # trailing comment

[role]
type = ram_role_arn
access_key_id = LTAIrole
access_key_secret = \"sec-role\"
role_arn = acs:ram::123:role/reader
role_session_name = s1
role_session_expiration = 900

[oidc]
type = oidc_role_arn
oidc_provider_arn = acs:ram::123:oidc-provider/p
oidc_token_file_path = /var/token
role_arn = acs:ram::123:role/o

[ecs]
type = ecs_ram_role
role_name = EcsRole

[off]
enable = false
type = access_key

[bad]
type = rsa_key_pair
";

    fn file_env(text: &str, profile: Option<&str>) -> (PathBuf, Env) {
        let path = std::env::temp_dir().join(format!(
            "cae-ini-{}-{}.ini",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::write(&path, text).expect("write");
        let p = path.to_string_lossy().into_owned();
        let mut pairs = vec![("ALIBABA_CLOUD_CREDENTIALS_FILE", p.as_str())];
        if let Some(profile) = profile {
            pairs.push(("ALIBABA_CLOUD_PROFILE", profile));
        }
        (path.clone(), env(&pairs))
    }

    #[test]
    fn every_type_maps_to_its_source() {
        let (path, e) = file_env(FILE, None);
        match find(&e).expect("ok") {
            Detected::Found(
                CredentialSpec::AccessKey {
                    origin,
                    access_key_id,
                    access_key_secret,
                    ..
                },
                what,
            ) => {
                assert_eq!(
                    (origin, access_key_id.as_str(), access_key_secret.expose()),
                    ("credentials_file", "LTAIdefault", "sec-default")
                );
                assert!(what.contains("[default] (type access_key)"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        let CredentialSpec::AssumeRole { role, source } =
            load(&e, None, Some("role")).expect("role")
        else {
            panic!()
        };
        assert_eq!(role.role_arn, "acs:ram::123:role/reader");
        assert_eq!(role.duration_seconds, Some(900));
        assert_eq!(role.role_session_name.as_deref(), Some("s1"));
        let CredentialSpec::AccessKey {
            access_key_secret, ..
        } = *source
        else {
            panic!()
        };
        assert_eq!(access_key_secret.expose(), "sec-role", "quotes stripped");
        let CredentialSpec::Oidc { spec, .. } = load(&e, None, Some("oidc")).expect("oidc") else {
            panic!()
        };
        assert_eq!(spec.oidc_token_file, PathBuf::from("/var/token"));
        assert!(matches!(
            load(&e, None, Some("ecs")).expect("ecs"),
            CredentialSpec::EcsRamRole { role_name: Some(ref r), .. } if r == "EcsRole"
        ));
        let bad = load(&e, None, Some("bad")).expect_err("bad").to_string();
        assert!(
            bad.contains("rsa_key_pair") && bad.contains("[bad]"),
            "{bad}"
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn absent_disabled_and_broken_files() {
        let (path, e) = file_env(FILE, Some("off"));
        assert!(matches!(find(&e), Ok(Detected::Absent(ref w)) if w.contains("enable = false")));
        let (p1, e) = file_env(FILE, Some("nope"));
        assert!(matches!(find(&e), Ok(Detected::Absent(ref w)) if w.contains("[nope]")));
        // Named explicitly but missing: an error, not a silent skip.
        let e = env(&[(
            "ALIBABA_CLOUD_CREDENTIALS_FILE",
            "/nonexistent/credentials.ini",
        )]);
        assert!(
            find(&e)
                .expect_err("missing")
                .to_string()
                .contains("/nonexistent/credentials.ini")
        );
        // The default path may be missing.
        let e = env(&[("HOME", "/nonexistent-home")]);
        assert!(matches!(find(&e), Ok(Detected::Absent(_))));
        let (p2, e) = file_env("[default]\naccess_key_secret sec-broken\n", None);
        let err = find(&e).expect_err("broken").to_string();
        assert!(
            err.contains("line 2") && !err.contains("sec-broken"),
            "{err}"
        );
        let (p3, e) = file_env(
            "[default]\ntype = access_key\naccess_key_secret = sec-x\n",
            None,
        );
        let err = find(&e).expect_err("no id").to_string();
        assert!(
            err.contains("needs access_key_id") && !err.contains("sec-x"),
            "{err}"
        );
        for p in [path, p1, p2, p3] {
            let _ = std::fs::remove_file(p);
        }
    }
}
