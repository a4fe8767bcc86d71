//! `--web.config.file`: the exporter-toolkit YAML that node_exporter reads
//! (TLS, basic auth, extra response headers), re-read when it changes.
//!
//! Whether the listener speaks TLS at all is decided once at start, as in
//! exporter-toolkit: a reload may change certificates, client auth, users and
//! headers, but not turn HTTPS into plain HTTP (a half-written file must never
//! be able to do that).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use tokio_rustls::rustls::ServerConfig;

use super::auth::{Authenticator, Verdict};
pub use super::tls::{ClientAuth, TlsError};
use super::tls::{parse_version, server_config};
use crate::validate::{one_line, resolve_path};

/// A web config that cannot be used; the last good one (if any) stays.
/// Names the key at fault, never a password hash or a key's content.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    #[error("{}", one_line(&.0.to_string()))]
    Yaml(yaml_serde::Error),
    #[error("basic_auth_users: {0:?} is not a user name (empty, or has a ':')")]
    UserName(String),
    #[error("basic_auth_users: the password of {0:?} is not a bcrypt hash")]
    NotBcrypt(String),
    #[error("http_server_config.headers: {0:?} is not a header name")]
    HeaderName(String),
    #[error("http_server_config.headers: {0} is set by the server and cannot be configured")]
    ReservedHeader(String),
    #[error("http_server_config.headers: the value of {0} is not a valid header value")]
    HeaderValue(String),
    #[error("tls_server_config: cert_file is missing")]
    NoCertFile,
    #[error("tls_server_config: key_file is missing")]
    NoKeyFile,
    #[error("tls_server_config: client_auth_type {0:?} needs client_ca_file")]
    NeedsCaFile(ClientAuth),
    #[error(
        "tls_server_config: client_ca_file is set but client_auth_type {0:?} does not verify client certificates"
    )]
    CaFileUnused(ClientAuth),
    #[error("tls_server_config: min_version is above max_version")]
    VersionOrder,
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("tls_server_config was removed: switching from HTTPS to plain HTTP needs a restart")]
    TlsRemoved,
    #[error("tls_server_config was added: switching from plain HTTP to HTTPS needs a restart")]
    TlsAdded,
    /// At start: the problem, after the file's name, on one line.
    #[error("{}: {}", .file.display(), one_line(&.source.to_string()))]
    File {
        file: PathBuf,
        source: Box<WebConfigError>,
    },
}

/// How long a request whose password is not cached waits for its turn at
/// bcrypt before it gets 503 (a flood of new passwords is queued ahead).
pub const PASSWORD_WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// The file, as written (strict: an unknown key is an error, not ignored).

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    tls_server_config: Option<FileTls>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    http_server_config: Option<FileHttp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// Headers the server sets itself: a config file may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "allow",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "transfer-encoding",
    "vary",
    "www-authenticate",
];

// ---------------------------------------------------------------------------
// The loaded, validated configuration.

/// One good version of the web config. Its `Debug` shows no password hash.
pub struct WebConfig {
    /// Present when the file has a `tls_server_config`.
    pub tls: Option<Arc<ServerConfig>>,
    pub client_auth: ClientAuth,
    /// User → bcrypt hash.
    users: BTreeMap<String, String>,
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("client_auth", &self.client_auth)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .finish()
    }
}

impl WebConfig {
    /// True when requests need a user and password.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }
}

/// Reads and validates the file at `path`; relative certificate paths are
/// taken from the file's directory. Returns the config and every file it
/// depends on (to watch for changes).
fn load(path: &Path) -> Result<(WebConfig, Vec<PathBuf>), WebConfigError> {
    let text = std::fs::read_to_string(path).map_err(WebConfigError::Read)?;
    // An empty file (or only comments) is a valid config with nothing in it.
    let file: FileConfig = yaml_serde::from_str::<Option<FileConfig>>(&text)
        .map_err(WebConfigError::Yaml)?
        .unwrap_or_default();
    let resolve = |p: &str| resolve_path(path, p);
    let mut deps = vec![path.to_path_buf()];

    let mut users = BTreeMap::new();
    for (user, hash) in file.basic_auth_users.unwrap_or_default() {
        if user.is_empty() || user.contains(':') {
            return Err(WebConfigError::UserName(user));
        }
        // Checked now so that a typo fails at load, not at every request.
        // The hash itself is never echoed back.
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(WebConfigError::NotBcrypt(user));
        }
        users.insert(user, hash);
    }

    let mut headers = Vec::new();
    for (name, value) in file
        .http_server_config
        .and_then(|h| h.headers)
        .unwrap_or_default()
    {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| WebConfigError::HeaderName(name.clone()))?;
        if RESERVED_HEADERS.contains(&n.as_str()) {
            return Err(WebConfigError::ReservedHeader(name));
        }
        let v = HeaderValue::from_str(&value).map_err(|_| WebConfigError::HeaderValue(name))?;
        headers.push((n, v));
    }

    let (tls, client_auth) = match file.tls_server_config {
        None => (None, ClientAuth::NoClientCert),
        Some(t) => {
            let client_auth = ClientAuth::parse(t.client_auth_type.as_deref().unwrap_or(""))?;
            let cert_file = t
                .cert_file
                .filter(|s| !s.is_empty())
                .ok_or(WebConfigError::NoCertFile)?;
            let key_file = t
                .key_file
                .filter(|s| !s.is_empty())
                .ok_or(WebConfigError::NoKeyFile)?;
            let ca_file = t.client_ca_file.filter(|s| !s.is_empty());
            match (&ca_file, client_auth.verifies()) {
                (None, true) => return Err(WebConfigError::NeedsCaFile(client_auth)),
                (Some(_), false) => return Err(WebConfigError::CaFileUnused(client_auth)),
                _ => {}
            }
            let min = parse_version("min_version", t.min_version.as_deref().unwrap_or("TLS12"))?;
            let max = parse_version("max_version", t.max_version.as_deref().unwrap_or("TLS13"))?;
            if min > max {
                return Err(WebConfigError::VersionOrder);
            }
            let cert_path = resolve(&cert_file);
            let key_path = resolve(&key_file);
            let ca_path = ca_file.as_deref().map(resolve);
            deps.push(cert_path.clone());
            deps.push(key_path.clone());
            deps.extend(ca_path.clone());
            let cfg = server_config(
                &cert_path,
                &key_path,
                ca_path.as_deref(),
                client_auth,
                min,
                max,
            )?;
            (Some(Arc::new(cfg)), client_auth)
        }
    };
    Ok((
        WebConfig {
            tls,
            client_auth,
            users,
            headers,
        },
        deps,
    ))
}

// ---------------------------------------------------------------------------
// Change detection.

/// What a file looked like; any change of content changes it in practice.
/// `None`: the file could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp(Option<FileStamp>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    /// Modification time, seconds and nanoseconds.
    modified: (i64, i64),
    /// Status change time (unix), seconds and nanoseconds.
    changed: (i64, i64),
    inode: u64,
}

fn stamp(path: &Path) -> Stamp {
    let Ok(m) = std::fs::metadata(path) else {
        return Stamp(None);
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Stamp(Some(FileStamp {
            len: m.len(),
            modified: (m.mtime(), m.mtime_nsec()),
            changed: (m.ctime(), m.ctime_nsec()),
            inode: m.ino(),
        }))
    }
    #[cfg(not(unix))]
    {
        let t = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default();
        Stamp(Some(FileStamp {
            len: m.len(),
            modified: (t.as_secs() as i64, i64::from(t.subsec_nanos())),
            changed: (0, 0),
            inode: 0,
        }))
    }
}

#[derive(Debug)]
struct Watched {
    paths: Vec<PathBuf>,
    stamps: Vec<Stamp>,
}

impl Watched {
    fn new(paths: Vec<PathBuf>) -> Self {
        let stamps = paths.iter().map(|p| stamp(p)).collect();
        Watched { paths, stamps }
    }

    fn changed(&self) -> bool {
        self.paths
            .iter()
            .zip(&self.stamps)
            .any(|(p, s)| stamp(p) != *s)
    }
}

// ---------------------------------------------------------------------------
// The source the server reads from.

/// The web config file, its last good version, and the password checker.
pub struct WebConfigSource {
    path: PathBuf,
    current: ArcSwap<WebConfig>,
    /// Fixed at start: the listener speaks TLS or it does not.
    tls: bool,
    /// The files of the last attempt, good or bad: a bad file is tried again
    /// only once it changes, so it is logged once, not on every connection.
    watched: Mutex<Watched>,
    auth: Arc<Authenticator>,
}

impl std::fmt::Debug for WebConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfigSource")
            .field("path", &self.path)
            .field("tls", &self.tls)
            .finish()
    }
}

impl WebConfigSource {
    /// Loads the file at start; an error is one line naming the problem.
    pub fn load(path: impl Into<PathBuf>) -> Result<Arc<Self>, WebConfigError> {
        let path = path.into();
        // Stamps are taken before reading, so a write during the read shows
        // up as a change at the next check.
        let before = Watched::new(vec![path.clone()]);
        let (cfg, deps) = load(&path).map_err(|e| WebConfigError::File {
            file: path.clone(),
            source: Box::new(e),
        })?;
        let mut watched = Watched::new(deps);
        watched.stamps[0] = before.stamps[0].clone();
        tracing::info!(
            file = %path.display(),
            tls = cfg.tls.is_some(),
            client_auth = ?cfg.client_auth,
            users = cfg.users.len(),
            headers = cfg.headers.len(),
            "web config loaded"
        );
        Ok(Arc::new(WebConfigSource {
            tls: cfg.tls.is_some(),
            path,
            current: ArcSwap::from_pointee(cfg),
            watched: Mutex::new(watched),
            auth: Authenticator::new(PASSWORD_WAIT),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The last good config.
    pub fn current(&self) -> Arc<WebConfig> {
        self.current.load_full()
    }

    /// Re-reads the files if any changed since the last attempt; cheap when
    /// none did (a few `stat`s). A bad file keeps the last good config.
    pub fn reload_if_changed(&self) {
        // If another connection is checking right now, it does the work.
        let Ok(mut watched) = self.watched.try_lock() else {
            return;
        };
        if !watched.changed() {
            return;
        }
        let _ = self.reload_locked(&mut watched);
    }

    /// Re-reads the files now (`POST /-/reload`).
    pub fn reload(&self) -> Result<(), WebConfigError> {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        self.reload_locked(&mut watched)
    }

    fn reload_locked(&self, watched: &mut Watched) -> Result<(), WebConfigError> {
        let before = stamp(&self.path);
        let result = load(&self.path).and_then(|(cfg, deps)| {
            if cfg.tls.is_some() != self.tls {
                return Err(if self.tls {
                    WebConfigError::TlsRemoved
                } else {
                    WebConfigError::TlsAdded
                });
            }
            Ok((cfg, deps))
        });
        match result {
            Ok((cfg, deps)) => {
                *watched = Watched::new(deps);
                watched.stamps[0] = before;
                tracing::info!(
                    file = %self.path.display(),
                    tls = cfg.tls.is_some(),
                    client_auth = ?cfg.client_auth,
                    users = cfg.users.len(),
                    headers = cfg.headers.len(),
                    "web config loaded"
                );
                self.current.store(Arc::new(cfg));
                self.auth.clear();
                Ok(())
            }
            Err(e) => {
                // Remember what was tried, plus the files of the good config
                // (a fixed certificate must be picked up too).
                let mut paths = vec![self.path.clone()];
                for p in &watched.paths[1..] {
                    paths.push(p.clone());
                }
                *watched = Watched::new(paths);
                watched.stamps[0] = before;
                tracing::error!(file = %self.path.display(), error = %e, "web config not reloaded; keeping the last good one");
                Err(e)
            }
        }
    }

    /// Checks an `Authorization: Basic` header against `cfg`'s users.
    pub async fn authorize(&self, cfg: &WebConfig, header: Option<&HeaderValue>) -> Verdict {
        self.auth.check(&cfg.users, header).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("web-config-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn empty_and_comment_only_files_are_valid() {
        let d = tempdir("empty");
        for text in ["", "# nothing\n", "---\n"] {
            let p = write(&d, "web.yml", text);
            let s = WebConfigSource::load(&p).expect("loads");
            assert!(!s.tls() && !s.current().requires_auth());
        }
    }

    #[test]
    fn errors_are_one_line_and_name_the_problem() {
        let d = tempdir("errors");
        let hash = bcrypt::hash("pw", 4).expect("hash");
        for (text, want) in [
            ("bogus: 1\n", "unknown field"),
            ("tls_server_config:\n  cert_file: a\n  nope: 1\n", "nope"),
            (
                "tls_server_config:\n  key_file: k\n",
                "cert_file is missing",
            ),
            ("basic_auth_users:\n  alice: plain\n", "not a bcrypt hash"),
            (
                "http_server_config:\n  headers:\n    Content-Type: x\n",
                "Content-Type",
            ),
            (
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Maybe\n",
                "client_auth_type",
            ),
            (
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS10\n",
                "TLS10",
            ),
            (
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert\n",
                "needs client_ca_file",
            ),
            (
                "tls_server_config:\n  cert_file: c\n  key_file: k\n",
                "cert_file",
            ),
            ("basic_auth_users: [\n", "web.yml"),
        ] {
            let p = write(&d, "web.yml", text);
            let e = WebConfigSource::load(&p).expect_err(text).to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
            assert!(!e.contains(&hash));
        }
    }

    #[tokio::test]
    async fn passwords_are_checked_against_the_loaded_users() {
        use base64::Engine;
        let d = tempdir("auth");
        let hash = bcrypt::hash("secret", 4).expect("hash");
        let p = write(
            &d,
            "web.yml",
            &format!("basic_auth_users:\n  alice: '{hash}'\n"),
        );
        let s = WebConfigSource::load(&p).expect("loads");
        let cfg = s.current();
        let h = |u: &str, pw: &str| {
            HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{pw}"))
            ))
            .expect("header")
        };
        assert_eq!(
            s.authorize(&cfg, Some(&h("alice", "secret"))).await,
            Verdict::Accepted
        );
        assert_eq!(
            s.authorize(&cfg, Some(&h("alice", "wrong"))).await,
            Verdict::Refused
        );
        assert_eq!(s.authorize(&cfg, None).await, Verdict::Refused);
        assert!(!format!("{:?}", cfg).contains(&hash));
    }
}
