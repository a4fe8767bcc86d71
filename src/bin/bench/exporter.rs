//! The exporter under test, as a separate process, and the rounds its JSON
//! log reports.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cloud_assistant_exporter::simulator::{self, Simulator};
use tokio::sync::mpsc;

use crate::error::BenchError;

/// A "cycle finished" line of the exporter's JSON log (a build with one
/// global cycle), or a "round finished" one (every region walked once more
/// on its own clock), with the walks of the regions ended since the last.
#[derive(Debug)]
pub struct CycleEvent {
    pub duration: f64,
    pub render: f64,
    /// (region, seconds) of each "region collected" line since the last event.
    pub walks: Vec<(String, f64)>,
}

pub struct Exporter {
    pub child: Child,
    pub addr: String,
    cycles: mpsc::UnboundedReceiver<CycleEvent>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        // SIGTERM first: the exporter shuts down gracefully (and a profiler
        // wrapped around it gets to write its data).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn spawn_exporter(
    bin: &PathBuf,
    sim: &Simulator,
    interval: Duration,
    concurrency: Option<u32>,
) -> Result<Exporter, BenchError> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--web.listen-address",
        &addr,
        "--aliyun.endpoint",
        &sim.url(),
        "--log.format",
        "json",
    ])
    .args(["--collect.interval", &format!("{}s", interval.as_secs())])
    // Discovery asks 1/60 of the eligible agents per cycle at every size
    // (as at the defaults, 60s and 1h), so sizes compare like for like.
    .args([
        "--collect.plugin-discovery-interval",
        &format!("{}s", interval.as_secs() * 60),
    ])
    .env("ALIBABA_CLOUD_ACCESS_KEY_ID", simulator::DEFAULT_KEY_ID)
    .env(
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        simulator::DEFAULT_KEY_SECRET,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    // One invocations walk per run (a build that has them): its calls are
    // counted like the info walk's.
    let help = Command::new(bin)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if help.contains("--collect.invocations-interval") {
        cmd.args(["--collect.invocations-interval", "1h"]);
    }
    if let Some(c) = concurrency {
        cmd.args([
            "--aliyun.max-concurrency",
            &c.to_string(),
            "--aliyun.rate-limit",
            "0",
        ]);
    }
    let mut child = cmd.spawn().map_err(|source| BenchError::Start {
        bin: bin.display().to_string(),
        source,
    })?;
    let stderr = child.stderr.take().ok_or(BenchError::NoStderr)?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut walks = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["level"] == "WARN" || v["level"] == "ERROR" {
                eprintln!("exporter: {line}");
            }
            let num = |k: &str| {
                v[k].as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::NAN)
            };
            let message = v["message"].as_str().unwrap_or("");
            if message == "region collected" {
                let region = v["region"].as_str().unwrap_or("").to_string();
                walks.push((region, num("duration_seconds")));
            }
            if message == "cycle finished" || message.starts_with("round finished") {
                let _ = tx.send(CycleEvent {
                    duration: num("duration_seconds"),
                    render: num("render_seconds"),
                    walks: std::mem::take(&mut walks),
                });
            }
        }
    });
    Ok(Exporter {
        child,
        addr,
        cycles: rx,
    })
}

pub async fn next_cycle(e: &mut Exporter, within: Duration) -> Result<CycleEvent, BenchError> {
    tokio::time::timeout(within, e.cycles.recv())
        .await
        .map_err(|_| BenchError::NoCycle(within))?
        .ok_or(BenchError::Exited)
}
