#![allow(dead_code)]
//! Shared set-up for the tests that run against the simulator.

use std::sync::Arc;
use std::time::Duration;

use cloud_assistant_exporter::client::{ApiMetrics, Client, ClientOptions, RetryPolicy};
use cloud_assistant_exporter::credentials::{CredentialProvider, Credentials};
use cloud_assistant_exporter::secret::Secret;
use cloud_assistant_exporter::simulator::{self, FleetConfig, RegionSpec, Simulator};

pub fn fleet(regions: &[(&str, usize)]) -> FleetConfig {
    FleetConfig {
        seed: 7,
        regions: regions
            .iter()
            .map(|(id, n)| RegionSpec::new(id, *n))
            .collect(),
        plugins: vec!["ecs-tool-monitor".into(), "aliyun-service-ops".into()],
        start: 1_700_000_000,
    }
}

pub fn creds(id: &str, secret: &str) -> Arc<CredentialProvider> {
    CredentialProvider::fixed(
        "test",
        Credentials {
            access_key_id: id.into(),
            access_key_secret: Secret::new(secret),
            security_token: None,
            expiration: None,
        },
    )
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_tries: 6,
        base: Duration::from_millis(5),
        throttle_base: Duration::from_millis(10),
        cap: Duration::from_millis(100),
        max_total: Duration::from_secs(10),
    }
}

pub fn client_with(
    sim: &Simulator,
    secret: &str,
    tune: impl FnOnce(&mut ClientOptions),
) -> Arc<Client> {
    let registry = prometheus::Registry::new();
    let metrics = ApiMetrics::new(&registry).expect("metrics");
    let mut opts = ClientOptions {
        endpoint_template: Some(sim.url()),
        timeout: Duration::from_secs(5),
        max_concurrency: 8,
        rate_limit: 0.0,
        retry: fast_retry(),
        ..ClientOptions::default()
    };
    tune(&mut opts);
    Arc::new(Client::new(creds(simulator::DEFAULT_KEY_ID, secret), opts, metrics).expect("client"))
}

pub fn client(sim: &Simulator) -> Arc<Client> {
    client_with(sim, simulator::DEFAULT_KEY_SECRET, |_| {})
}

use std::collections::BTreeMap;

use clap::Parser;
use cloud_assistant_exporter::app::{self, Running};
use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::config::Flags;

/// Starts the whole exporter against `sim` on 127.0.0.1:0 with `extra` flags.
pub async fn start_exporter(sim: &Simulator, extra: &[&str], clock: Clock) -> Running {
    let url = sim.url();
    let mut args = vec![
        "cloud-assistant-exporter",
        "--web.listen-address",
        "127.0.0.1:0",
        "--aliyun.endpoint",
        url.as_str(),
        "--aliyun.rate-limit",
        "0",
    ];
    args.extend_from_slice(extra);
    let flags = Flags::try_parse_from(args).expect("flags");
    let env = |k: &str| match k {
        "ALIBABA_CLOUD_ACCESS_KEY_ID" => Some(simulator::DEFAULT_KEY_ID.to_string()),
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET" => Some(simulator::DEFAULT_KEY_SECRET.to_string()),
        _ => None,
    };
    app::start(&flags, env, clock)
        .await
        .expect("exporter starts")
}

/// Waits until `/ready` answers 200.
pub async fn wait_ready(addr: std::net::SocketAddr) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("http://{addr}/ready")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("exporter not ready within 10s");
}

/// `/metrics` as plain text (the client asks for no gzip).
pub async fn scrape(addr: std::net::SocketAddr) -> String {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.expect("body")
}

/// Scrapes `addr` until `check` holds on the page (15 s at most, else
/// panics naming `what`) and returns that page.
pub async fn scrape_until(
    addr: std::net::SocketAddr,
    what: &str,
    check: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let until = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = parse_metrics(&scrape(addr).await);
        if check(&page) {
            return page;
        }
        assert!(std::time::Instant::now() < until, "not within 15 s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the text exposition format (enough of it for the tests).
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("value");
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'));
                    let mut val = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => match chars.next() {
                                Some('n') => val.push('\n'),
                                Some(o) => val.push(o),
                                None => {}
                            },
                            '"' => break,
                            c => val.push(c),
                        }
                    }
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                    labels.insert(key, val);
                }
                (n.to_string(), labels)
            }
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().expect("number"),
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// The value of the one series with `name` and exactly these `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
}

pub fn count(samples: &[Sample], name: &str) -> usize {
    samples.iter().filter(|s| s.name == name).count()
}

use cloud_assistant_exporter::accounts::Account;
use cloud_assistant_exporter::collector::{Collector, CollectorOptions};

/// The one unnamed account of a single-account exporter, on `client`.
pub fn one_account(client: Arc<Client>) -> Vec<Account> {
    vec![Account {
        name: String::new(),
        client,
        regions: Vec::new(),
    }]
}

/// A collector on `sim` driven by hand (`run_cycle`), with its own registry.
pub fn collector(sim: &Simulator, opts: CollectorOptions, clock: Clock) -> Collector {
    tuned_collector(sim, opts, clock, |o| o.max_concurrency = 16)
}

/// As [`collector`], with the client's options changed by `tune`.
pub fn tuned_collector(
    sim: &Simulator,
    opts: CollectorOptions,
    clock: Clock,
    tune: impl FnOnce(&mut ClientOptions),
) -> Collector {
    let (registry, api) = cloud_assistant_exporter::metrics::new_registry().expect("registry");
    let mut o = ClientOptions {
        endpoint_template: Some(sim.url()),
        timeout: Duration::from_secs(5),
        rate_limit: 0.0,
        retry: fast_retry(),
        ..ClientOptions::default()
    };
    tune(&mut o);
    let client = Client::new(
        creds(simulator::DEFAULT_KEY_ID, simulator::DEFAULT_KEY_SECRET),
        o,
        api,
    )
    .expect("client");
    Collector::new(one_account(Arc::new(client)), opts, clock, registry).expect("collector")
}

/// The page the collector serves now, parsed.
pub fn page_samples(c: &Collector) -> Vec<Sample> {
    let text = c.scrape_text().expect("gunzip");
    parse_metrics(&String::from_utf8(text).expect("utf8"))
}

/// Runs `promtool check metrics` on `text`. Without promtool the check fails
/// under CI (which installs it) and is reported, not run, elsewhere.
pub fn promtool_check(text: &str) {
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is required under CI (apt-get install prometheus)"
        );
        eprintln!("promtool not found: install Debian's prometheus package to run this check");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The exporter binary of this build.
pub const EXPORTER_BIN: &str = env!("CARGO_BIN_EXE_cloud-assistant-exporter");

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// The binary as its own process, its stderr drained in the background
/// (debug logs would otherwise fill the pipe and block it).
pub struct ExporterProcess {
    pub child: std::process::Child,
    pub addr: String,
    stderr: Arc<std::sync::Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl ExporterProcess {
    /// Spawns the binary on a free port with `args` and exactly `env`
    /// (nothing of the test's own environment).
    pub fn spawn(args: &[&str], env: &[(&str, String)]) -> Self {
        use std::io::Read;
        use std::process::{Command, Stdio};
        let addr = format!("127.0.0.1:{}", free_port());
        let mut c = Command::new(EXPORTER_BIN);
        c.env_clear()
            .args(["--web.listen-address", &addr])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("spawn");
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        let drain = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        ExporterProcess {
            child,
            addr,
            stderr,
            drain: Some(drain),
        }
    }

    /// The binary on the API at `endpoint` with the simulator's key, no
    /// rate limit, a cycle every second, and `extra` flags.
    pub fn every_second(endpoint: &str, extra: &[&str], env: &[(&str, String)]) -> Self {
        let mut args = vec![
            "--aliyun.endpoint",
            endpoint,
            "--aliyun.rate-limit",
            "0",
            "--collect.interval",
            "1s",
        ];
        args.extend_from_slice(extra);
        let mut all = sim_key_env();
        all.extend(env.iter().cloned());
        Self::spawn(&args, &all)
    }

    pub fn socket(&self) -> std::net::SocketAddr {
        self.addr.parse().expect("addr")
    }

    /// What the process has logged so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends `sig` (`-HUP`, `-TERM`, …) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// SIGTERM, wait (15 s at most, then kill), and the whole stderr.
    pub fn stop(mut self) -> String {
        self.signal("-TERM");
        let until = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The HTTP server alone on 127.0.0.1:0, serving an empty page with
/// `opts`: its address, the sender that stops it, and its task.
pub async fn tiny_server(
    opts: cloud_assistant_exporter::server::ServerOptions,
) -> (
    std::net::SocketAddr,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let page = cloud_assistant_exporter::render::render(
        &Default::default(),
        cloud_assistant_exporter::render::StateSets::All,
        0,
    )
    .expect("page");
    let s = page_server(opts, page).await;
    (s.addr, s.stop, s.task)
}

/// The HTTP server alone, serving `page` (which the test may swap).
pub struct PageServer {
    pub addr: std::net::SocketAddr,
    pub page: Arc<arc_swap::ArcSwap<cloud_assistant_exporter::render::Page>>,
    pub stop: tokio::sync::watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
}

pub async fn page_server(
    opts: cloud_assistant_exporter::server::ServerOptions,
    page: cloud_assistant_exporter::render::Page,
) -> PageServer {
    use cloud_assistant_exporter::server::{AppState, Server};
    let page = Arc::new(arc_swap::ArcSwap::from_pointee(page));
    let state = AppState {
        page: Arc::clone(&page),
        registry: prometheus::Registry::new(),
        ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        opts: Arc::new(opts),
    };
    let server = Server::bind(([127, 0, 0, 1], 0).into(), state)
        .await
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(server.run(rx));
    PageServer {
        addr,
        page,
        stop,
        task,
    }
}

/// Resident memory of process `pid` (`"self"` for this one), in KiB.
pub fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
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

/// CPU time (user and system) process `pid` has used, in seconds.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // utime and stime: fields 14 and 15, the 12th and 13th after the
    // command name (which may hold spaces).
    let after = &stat[stat.rfind(") ").expect("comm") + 2..];
    let ticks: f64 = after
        .split(' ')
        .skip(11)
        .take(2)
        .map(|t| t.parse::<f64>().expect("ticks"))
        .sum();
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    ticks / per_second
}

/// Polls `check` every 50 ms until it holds; panics naming `what` after
/// `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within {within:?}: {what}");
}

// --- Prometheus, Alertmanager and the dashboard, for the dashboard tests ---

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

/// A child server process (Prometheus, Alertmanager) in a directory of its
/// own: killed on drop, its log printed when a test fails.
pub struct ServerProcess {
    child: std::process::Child,
    pub dir: TempDir,
    pub base: String,
}

impl ServerProcess {
    /// Starts `binary` with `args` plus `--web.listen-address` on a free
    /// port, and waits for `ready_path`. A port taken between choosing it
    /// and the server binding it is retried.
    pub async fn launch(
        binary: &std::path::Path,
        dir: TempDir,
        args: &[String],
        ready_path: &str,
    ) -> ServerProcess {
        let log_path = dir.path().join("server.log");
        let spawn = |port: u16| {
            let log = std::fs::File::create(&log_path).expect("log file");
            std::process::Command::new(binary)
                .args(args)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()))
        };
        let port = free_port();
        let mut p = ServerProcess {
            child: spawn(port),
            dir,
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..3 {
            match p.wait_ready(ready_path).await {
                Ok(()) => return p,
                Err(_) if p.log().contains("address already in use") => {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    let port = free_port();
                    p.child = spawn(port);
                    p.base = format!("http://127.0.0.1:{port}");
                }
                // Dropping `p` while panicking prints its log.
                Err(why) => panic!("{} did not start: {why}", binary.display()),
            }
        }
        panic!("{} found no free port in 3 tries", binary.display());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Waits for `path` to answer 200; gives up early if the process exits.
    async fn wait_ready(&mut self, path: &str) -> Result<(), String> {
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited ({status})"));
            }
            if let Ok(r) = http.get(format!("{}{path}", self.base)).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("{path} not ready within 60s"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- server log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// `application/x-www-form-urlencoded` value (reqwest's `form` feature is off).
pub fn form_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Prometheus' HTTP API.
pub struct PromApi {
    pub http: reqwest::Client,
    pub base: String,
}

impl PromApi {
    pub fn new(base: &str, timeout: Duration) -> PromApi {
        PromApi {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("http client"),
            base: base.to_string(),
        }
    }

    fn data(body: &str) -> Result<serde_json::Value, String> {
        let v: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"].clone())
    }

    pub async fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Self::data(&r.text().await.map_err(|e| e.to_string())?)
    }

    /// POSTs a form to `path` (`/api/v1/query`, `/api/v1/query_range`).
    pub async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, String> {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect();
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Self::data(&r.text().await.map_err(|e| e.to_string())?)
    }

    /// The samples or series of a query answer (a scalar counts as one).
    pub fn results(data: &serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                Ok(data["result"].as_array().cloned().unwrap_or_default())
            }
            Some("scalar") => Ok(vec![serde_json::json!({ "value": data["result"] })]),
            other => Err(format!("unexpected result type {other:?}")),
        }
    }

    /// An instant query now.
    pub async fn query(&self, expr: &str) -> Result<Vec<serde_json::Value>, String> {
        Self::results(&self.post("/api/v1/query", &[("query", expr)]).await?)
    }

    /// Polls `expr` until it has a sample that is a number, up to `secs`.
    pub async fn wait_for_data(&self, expr: &str, secs: u64) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match self.query(expr).await {
                Ok(r) if has_data(&r) => return r,
                Err(e) => panic!("query {expr:?} failed: {e}"),
                Ok(_) if std::time::Instant::now() > deadline => {
                    panic!("no data for {expr:?} within {secs}s")
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

/// True if some sample (instant) or point (range) is a number; NaN (a
/// histogram_quantile over no traffic) is not.
pub fn has_data(results: &[serde_json::Value]) -> bool {
    let number = |p: &serde_json::Value| {
        p[1].as_str()
            .is_some_and(|v| v.parse::<f64>().is_ok_and(|x| !x.is_nan()))
    };
    results.iter().any(|s| {
        number(&s["value"])
            || s["values"]
                .as_array()
                .is_some_and(|vs| vs.iter().any(number))
    })
}

/// One query of a dashboard panel.
#[derive(Clone, Debug)]
pub struct PanelQuery {
    pub expr: String,
    /// Grafana runs it once at the end of the range, not over the range.
    pub instant: bool,
}

/// A dashboard panel's title and its queries (panels of collapsed rows too).
pub fn dashboard_panels(panels: &[serde_json::Value]) -> Vec<(String, Vec<PanelQuery>)> {
    let mut out = Vec::new();
    for p in panels {
        if let Some(nested) = p["panels"].as_array() {
            out.extend(dashboard_panels(nested));
        }
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("").to_string();
        let queries = p["targets"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .filter_map(|t| {
                        Some(PanelQuery {
                            expr: t["expr"].as_str()?.to_string(),
                            instant: t["instant"] == true && t["range"] != true,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push((title, queries));
    }
    out
}

/// A query as Grafana sends it with every variable on "All" and the given
/// `$__rate_interval` and `$__interval`.
pub fn grafana_substitute(expr: &str, rate_interval: &str, interval: &str) -> String {
    let mut s = expr.to_string();
    for var in ["job", "account", "region_id", "instance_id"] {
        s = s.replace(&format!("${{{var}}}"), ".*");
        s = s.replace(&format!("${var}"), ".*");
    }
    for (var, value) in [("__rate_interval", rate_interval), ("__interval", interval)] {
        s = s.replace(&format!("${{{var}}}"), value);
        s = s.replace(&format!("${var}"), value);
    }
    assert!(
        !s.contains("${")
            && !s
                .split('$')
                .skip(1)
                .any(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')),
        "unknown variable left in {s}"
    );
    s
}

/// Property-test settings: `cases` inputs (PROPTEST_CASES overrides), a
/// fixed seed unless PROPTEST_RNG_SEED names another, so every run (CI's
/// too) tries the same inputs and a failure reproduces; no failure files
/// written into the tree.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    /// Any fixed number; change it to explore other inputs.
    const SEED: u64 = 0x5eed_c10d_a551_57a7;
    let base = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            base.cases
        } else {
            cases
        },
        rng_seed: match base.rng_seed {
            RngSeed::Random => RngSeed::Fixed(SEED),
            fixed => fixed,
        },
        failure_persistence: None,
        ..base
    }
}

// --- Pinned-clock collections: the walks beside the cycle, counted ---

/// The simulator on 127.0.0.1:0 with its fleet's heartbeats on `clock`.
pub async fn sim_on(cfg: FleetConfig, clock: &Clock) -> Simulator {
    Simulator::start_with(cfg, clock.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .expect("sim")
}

/// A label set from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every series of `name`: its labels and its value.
pub fn series(samples: &[Sample], name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| (s.labels.clone(), s.value))
        .collect()
}

/// Runs `n` cycles of `c`, with a pause after each for the walks that
/// run beside the cycle (they are taken in by the next one), and returns
/// the page.
pub async fn run_cycles(c: &Collector, n: usize) -> Vec<Sample> {
    for _ in 0..n {
        c.run_cycle().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    page_samples(c)
}

/// Runs cycles of `c` until `check` holds on its page (100 at most, else
/// panics naming `what`); returns the page.
pub async fn cycle_until(
    c: &Collector,
    what: &str,
    check: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    for _ in 0..100 {
        let page = run_cycles(c, 1).await;
        if check(&page) {
            return page;
        }
    }
    panic!("not within 100 cycles: {what}");
}

/// The page less what differs between two runs of the same walks: time
/// taken, process metrics, and the calls of `actions`.
pub fn steady(samples: &[Sample], actions: &[&str]) -> Vec<Sample> {
    const TIMED: &[&str] = &[
        "aliyun_cloud_assistant_exporter_api_request_duration_seconds",
        "aliyun_cloud_assistant_exporter_collection_duration_seconds",
        "aliyun_cloud_assistant_exporter_cycle_duration_seconds",
        "process_",
    ];
    samples
        .iter()
        .filter(|s| !TIMED.iter().any(|t| s.name.starts_with(t)))
        .filter(|s| {
            s.labels
                .get("action")
                .is_none_or(|a| !actions.contains(&a.as_str()))
        })
        .cloned()
        .collect()
}

/// The lines of a page less those that move between two scrapes of an
/// idle exporter (its own series are as of each scrape): the process'
/// figures and the connections open.
pub fn idle_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            !l.contains("process_")
                && !l.starts_with("aliyun_cloud_assistant_exporter_http_connections ")
        })
        .collect()
}

/// Requests the simulator answered for `action` in `region`.
pub fn requests_in(sim: &Simulator, action: &str, region: &str) -> u64 {
    sim.requests_by_region()
        .get(&(action.to_string(), region.to_string()))
        .copied()
        .unwrap_or(0)
}

/// The environment that gives the binary the simulator's key.
pub fn sim_key_env() -> Vec<(&'static str, String)> {
    vec![
        (
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            simulator::DEFAULT_KEY_ID.into(),
        ),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            simulator::DEFAULT_KEY_SECRET.into(),
        ),
    ]
}

/// Asserts that `got` and `want` hold the same items, naming up to three
/// missing and three unexpected ones.
pub fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) {
    let missing: Vec<&T> = want.iter().filter(|x| !got.contains(x)).take(3).collect();
    let unexpected: Vec<&T> = got.iter().filter(|x| !want.contains(x)).take(3).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty() && got.len() == want.len(),
        "{what}: missing {missing:#?}, unexpected {unexpected:#?} ({} vs {} items)",
        got.len(),
        want.len()
    );
}

/// A port of its own that counts the connections made to it and keeps the
/// first line each one sends (a request line, a proxy's `CONNECT`): where
/// a redirect points, where a proxy stands, where nothing may ever arrive.
/// It answers nothing.
pub struct Trap {
    pub url: String,
    hits: Arc<std::sync::atomic::AtomicUsize>,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Trap {
    pub async fn start() -> Trap {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (counter, kept) = (Arc::clone(&hits), Arc::clone(&lines));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 512];
                    let read = async {
                        while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 4096 {
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.lines().next().unwrap_or("").to_string();
                    if let Ok(mut l) = kept.lock() {
                        l.push(line);
                    }
                });
            }
        });
        Trap { url, hits, lines }
    }

    /// Connections made so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The first line of each connection so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// A TLS front on 127.0.0.1:0 that passes every connection on to `target`
/// as it is (the simulator speaks plain HTTP), so a client can reach it
/// over https: its URL, and the PEM of its self-signed certificate for the
/// client to trust (`SSL_CERT_FILE`).
pub async fn tls_front(target: std::net::SocketAddr) -> (String, String) {
    use tokio_rustls::rustls::{self, pki_types};
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let key = pki_types::PrivateKeyDer::Pkcs8(c.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![c.cert.der().clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let (Ok(mut tls), Ok(mut plain)) = (
                    acceptor.accept(conn).await,
                    tokio::net::TcpStream::connect(target).await,
                ) else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (url, c.cert.pem())
}

/// The log lines of this thread, captured while the guard lives (a
/// current-thread runtime runs the collector's tasks on the test's thread).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn start() -> (LogCapture, tracing::subscriber::DefaultGuard) {
        let capture = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (capture, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
