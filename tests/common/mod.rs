#![allow(dead_code)]
//! The only home of the tests' shared helpers. Each test crate says
//! `mod common;` (a crate in a folder, `tests/<subject>/main.rs`, names it
//! with `#[path = "../common/mod.rs"]`) and takes what it needs; the parts,
//! by job:
//! - [`setup`]: the simulator, clients, collectors, the exporter in
//!   process, the HTTP server alone, simulated accounts ([`Acct`]) and
//!   their accounts file;
//! - [`metrics`]: the names of the families the tests read, scraping
//!   `/metrics`, parsing the page, finding series, posting `/-/reload`;
//! - [`process`]: the exporter binary as a child process, other servers;
//! - [`prom`]: promtool, Prometheus' API, the dashboard's queries;
//! - [`cycles`]: cycles on a pinned clock, page comparisons, a trap port, a
//!   TLS front and log capture;
//! - [`fuzzing`]: property-test settings and the strategies of the fuzz
//!   tests (also compiled into the crate's own unit tests);
//! - here: temp dirs, free ports, waiting, tools on PATH, flags.

mod cycles;
mod fuzzing;
mod metrics;
mod process;
mod prom;
mod setup;

#[allow(unused_imports)]
pub use cycles::*;
#[allow(unused_imports)]
pub use fuzzing::*;
#[allow(unused_imports)]
pub use metrics::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use prom::*;
#[allow(unused_imports)]
pub use setup::*;

use std::time::Duration;

use clap::Parser;
use cloud_assistant_exporter::config::Flags;

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Polls `check` every 50 ms until it holds; panics naming `what` after
/// `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_some(what, within, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Polls `check` every 50 ms until it gives a value and returns it; panics
/// naming `what` after `within`.
pub async fn eventually_some<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = std::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < until,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A directory of its own under the system temp dir, removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "cae-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&p).expect("mkdir");
        TempDir(p)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn str(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    /// Writes `rel` atomically (write + rename), as config management and
    /// the kubelet do.
    pub fn write(&self, rel: &str, text: &str) -> String {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let tmp = self.0.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &p).expect("rename");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `args` (without the program name) parsed and checked as the binary
/// does it; panics with `what` and the arguments on a bad flag.
pub fn parse_flags(what: &str, args: &[String]) -> Flags {
    let flags = Flags::try_parse_from(
        std::iter::once("cloud-assistant-exporter".to_string()).chain(args.iter().cloned()),
    )
    .unwrap_or_else(|e| panic!("{what}: {args:?}: {e}"));
    flags
        .validate()
        .unwrap_or_else(|e| panic!("{what}: {args:?}: {e}"));
    flags
}

/// The anchor GitHub gives a Markdown heading.
pub fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The first `name` on PATH.
pub fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `name` from PATH, which CI installs (`.ci/run`): a failure under CI, a
/// notice and `None` elsewhere.
pub fn tool(name: &str, package: &str) -> Option<std::path::PathBuf> {
    let found = find_on_path(name);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not on PATH (apt-get install {package})"
        );
        eprintln!("NOTICE: {name} is not on PATH (apt-get install {package}); skipping");
    }
    found
}

/// A file of the repository.
pub fn repo_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The text of a file of the repository; panics naming it.
pub fn repo_text(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}
