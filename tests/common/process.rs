//! Child processes: the exporter binary, and servers (Prometheus,
//! Alertmanager) the dashboard tests run it with.

use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{TempDir, free_port};

/// The exporter binary of this build.
pub const EXPORTER_BIN: &str = env!("CARGO_BIN_EXE_cloud-assistant-exporter");

/// Flags for an exporter a test watches as it runs: no rate limit, a
/// cycle a second, and debug logs.
pub const WATCHED: [&str; 6] = [
    "--aliyun.rate-limit",
    "0",
    "--collect.interval",
    "1s",
    "--log.level",
    "debug",
];

/// Runs `cmd` to its end; fails the test, showing its output, unless it
/// succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the binary with `args` and exactly `env` (nothing of the test's
/// own environment) to its end; a run that outlasts 30 s is killed and
/// fails the test.
pub fn run_exporter(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut c = Command::new(EXPORTER_BIN);
    c.env_clear()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().expect("spawn");
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("{args:?} still running after 30 s");
        }
    }
}

/// Runs the binary as [`run_exporter`] does, expecting it to refuse to
/// start: exit code 2 and one line on stderr, `error: …`, which it returns.
pub fn refused(args: &[&str], env: &[(&str, String)]) -> String {
    let out = run_exporter(args, env);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    err
}

/// The binary as its own process, its stderr drained in the background
/// (debug logs would otherwise fill the pipe and block it).
pub struct ExporterProcess {
    pub child: std::process::Child,
    pub addr: String,
    stderr: Arc<Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl ExporterProcess {
    /// Spawns the binary on a free port with `args` and exactly `env`
    /// (nothing of the test's own environment).
    pub fn spawn(args: &[&str], env: &[(&str, String)]) -> Self {
        use std::io::Read;
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
        let stderr = Arc::new(Mutex::new(String::new()));
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
        let mut args = vec!["--collect.interval", "1s"];
        args.extend_from_slice(extra);
        let mut all = super::sim_key_env();
        all.extend(env.iter().cloned());
        Self::on_api(endpoint, &args, &all)
    }

    /// The binary on the API at `endpoint`, no rate limit, `extra` flags
    /// and exactly `env`.
    pub fn on_api(endpoint: &str, extra: &[&str], env: &[(&str, String)]) -> Self {
        let mut args = vec!["--aliyun.endpoint", endpoint, "--aliyun.rate-limit", "0"];
        args.extend_from_slice(extra);
        Self::spawn(&args, env)
    }

    /// Waits (30 s at most) until `path` answers 200; fails with the
    /// exporter's log.
    pub async fn wait_for(&self, path: &str) {
        let client = reqwest::Client::new();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = client.get(self.url(path)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path} not 200 within 30 s:\n{}", self.stderr_so_far());
    }

    pub fn socket(&self) -> std::net::SocketAddr {
        self.addr.parse().expect("addr")
    }

    /// `path` on this process over plain HTTP.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What the process has logged so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends `sig` (`-HUP`, `-TERM`, …) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// SIGTERM, then the whole stderr; a process still running 15 s later
    /// is killed and fails the test.
    pub fn stop(self) -> String {
        self.stop_with_status().1
    }

    /// As [`ExporterProcess::stop`], with how the process ended.
    pub fn stop_with_status(mut self) -> (ExitStatus, String) {
        self.signal("-TERM");
        let until = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break Some(status);
            }
            if Instant::now() > until {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
        let stderr = self.stderr_so_far();
        match status {
            Some(status) => (status, stderr),
            None => panic!("no exit within 15 s of SIGTERM:\n{stderr}"),
        }
    }
}

/// A test that never calls `stop` (or panics first) leaves no exporter
/// running: it is killed and reaped here.
impl Drop for ExporterProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
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
    let per_second = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    ticks / per_second
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
        binary: &Path,
        dir: TempDir,
        args: &[String],
        ready_path: &str,
    ) -> ServerProcess {
        let log_path = dir.path().join("server.log");
        let spawn = |port: u16| {
            let log = std::fs::File::create(&log_path).expect("log file");
            Command::new(binary)
                .args(args)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
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
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
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
