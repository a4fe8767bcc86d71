//! Scale benchmark: the exporter binary, as a separate process, against the
//! in-repo simulator with a fixed latency per API call. Prints, per fleet
//! size, each region's walk against its own chain of calls, API calls
//! against their minimum, `/metrics` latency under concurrent scrapes
//! through the walks, page sizes, peak RSS and CPU per interval. With
//! `--baseline`, another build of the exporter runs each size first, on the
//! same machine in the same run, for a side-by-side comparison.
//!
//! `cargo run --release --bin bench` (see `--help`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use cloud_assistant_exporter::simulator::{
    self, Faults, Fleet, FleetConfig, RegionSpec, Simulator,
};
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
#[command(about = "Scale benchmark of cloud-assistant-exporter against the simulator")]
struct Args {
    /// Fleet sizes to run (instances over 10 regions, the largest 40%)
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// Latency the simulator adds to every API call, in milliseconds
    #[arg(long, default_value_t = 30)]
    latency_ms: u64,
    /// Fleet size of the extra run at the default limits (8 in flight, 20/s); 0 skips it
    #[arg(long, default_value_t = 10_000)]
    defaults_size: usize,
    /// API requests in flight for the main runs (raised so the limit does not bind)
    #[arg(long, default_value_t = 512)]
    max_concurrency: u32,
    /// Concurrent scrapers of /metrics during a cycle (one cycle asking for gzip, one plain)
    #[arg(long, default_value_t = 8)]
    scrapers: usize,
    /// Quiet cycles at the end of each size: calls are counted in the first;
    /// wall time, render time and CPU are their means (CPU is read in 10 ms
    /// ticks: one cycle at 10 000 instances is only ~20 of them)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    quiet_cycles: u32,
    /// A fast check that the benchmark works: 1 000 instances, defaults run at
    /// 1 000, one quiet cycle
    #[arg(long)]
    smoke: bool,
    /// The exporter binary (default: next to this one)
    #[arg(long)]
    exporter: Option<PathBuf>,
    /// Another exporter binary (an earlier build) run on each size first,
    /// for figures side by side
    #[arg(long)]
    baseline: Option<PathBuf>,
}

const PLUGINS: [&str; 3] = ["ecs-tool-monitor", "aliyun-service-ops", "oos-cloudmonitor"];
const START: i64 = 1_780_000_000;

/// 10 regions; the largest holds 40%, the other nine share the rest.
fn fleet_config(size: usize) -> FleetConfig {
    let largest = size * 2 / 5;
    let rest = size - largest;
    // A command history of one invocation per 100 instances (some failing
    // on all or some of their hosts) and two scheduled tasks a region.
    let region = |id: &str, n: usize| RegionSpec::new(id, n).invocations((n / 100).max(1));
    let mut regions = vec![region("bench-00", largest)];
    for i in 1..10 {
        let n = rest / 9 + usize::from(i <= rest % 9);
        regions.push(region(&format!("bench-{i:02}"), n));
    }
    FleetConfig {
        seed: 2024,
        regions,
        plugins: PLUGINS.iter().map(|s| s.to_string()).collect(),
        start: START,
    }
}

/// The fewest calls a cycle can make, per action, and the longest chain of
/// calls that must follow one another (DescribeRegions, then the longest
/// NextToken walk); per region, its own longest NextToken walk.
struct Minimum {
    regions: u64,
    agents: u64,
    instances: u64,
    plugin_sweeps: u64,
    chain: u64,
    region_chain: std::collections::HashMap<String, u64>,
}

fn pages(n: usize) -> u64 {
    (n as u64).div_ceil(50).max(1)
}

fn minimum(fleet: &Fleet) -> Minimum {
    let mut m = Minimum {
        regions: 1,
        agents: 0,
        instances: 0,
        plugin_sweeps: 0,
        chain: 0,
        region_chain: Default::default(),
    };
    for (id, r) in &fleet.regions {
        let n = r.instances.len();
        m.agents += pages(n);
        m.instances += pages(n);
        m.chain = m.chain.max(pages(n));
        let own = m.region_chain.entry(id.clone()).or_insert(0);
        *own = (*own).max(pages(n));
        for name in PLUGINS {
            let rows = r
                .instances
                .iter()
                .filter(|i| i.plugins.iter().any(|p| p.name == name))
                .count();
            m.plugin_sweeps += pages(rows);
            m.chain = m.chain.max(pages(rows));
            let own = m.region_chain.entry(id.clone()).or_insert(0);
            *own = (*own).max(pages(rows));
        }
    }
    m.chain += 1;
    m
}

/// A "cycle finished" line of the exporter's JSON log (a build with one
/// global cycle), or a "round finished" one (every region walked once more
/// on its own clock), with the walks of the regions ended since the last.
#[derive(Debug)]
struct CycleEvent {
    duration: f64,
    render: f64,
    /// (region, seconds) of each "region collected" line since the last event.
    walks: Vec<(String, f64)>,
}

struct Exporter {
    child: Child,
    addr: String,
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

fn spawn_exporter(
    bin: &PathBuf,
    sim: &Simulator,
    interval: Duration,
    concurrency: Option<u32>,
) -> Result<Exporter, String> {
    let port = free_port().map_err(|e| e.to_string())?;
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
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
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

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

struct Row {
    size: usize,
    /// The build: "baseline" or "new".
    build: &'static str,
    /// The slowest region's walk over its own chain of calls × latency.
    walk_ratio: f64,
    wall: f64,
    lower: f64,
    render: f64,
    calls: [(u64, u64); 4],
    discovery: u64,
    gzip_p: (f64, f64, usize),
    plain_p: (f64, f64, usize),
    gzip_bytes: usize,
    plain_bytes: usize,
    rss: f64,
    cpu: f64,
    /// DescribeInstances calls of the run's first info walk (one per
    /// `--collect.instance-info-interval`, beside the cycles).
    info_calls: u64,
    /// DescribeActivations calls of that walk.
    activation_calls: u64,
    /// DescribeInvocations calls of the run's one invocations walk (the
    /// three filters in every region).
    invocation_calls: u64,
    /// DescribeManagedInstances calls in a quiet cycle.
    managed_calls: u64,
}

async fn next_cycle(e: &mut Exporter, within: Duration) -> Result<CycleEvent, String> {
    tokio::time::timeout(within, e.cycles.recv())
        .await
        .map_err(|_| format!("no cycle finished within {within:?}"))?
        .ok_or_else(|| "the exporter exited".to_string())
}

/// Scrapes `/metrics` in a loop until `stop`.
async fn scrape_loop(addr: String, stop: Arc<AtomicBool>, gzip: bool) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut req = client.get(format!("http://{addr}/metrics"));
        if gzip {
            req = req.header("accept-encoding", "gzip");
        }
        let t0 = Instant::now();
        match req.send().await {
            Ok(mut r) if r.status() == 200 => {
                // Read the body to its end without gathering it: the scraper
                // should cost as little CPU as a real one streaming to a parser.
                let mut ok = true;
                loop {
                    match r.chunk().await {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                }
                if ok {
                    out.push(t0.elapsed());
                }
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    out
}

/// Waits for the next cycle to start, scrapes with `n` clients until it
/// finishes, and returns the sorted latencies.
async fn scrape_during_next_cycle(
    sim: &Simulator,
    e: &mut Exporter,
    n: usize,
    gzip: bool,
    within: Duration,
) -> Result<Vec<Duration>, String> {
    sim.reset_counts();
    while sim.requests("DescribeRegions") == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(scrape_loop(e.addr.clone(), Arc::clone(&stop), gzip)))
        .collect();
    next_cycle(e, within).await?;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())?);
    }
    all.sort();
    Ok(all)
}

async fn run_size(
    args: &Args,
    bin: &PathBuf,
    build: &'static str,
    size: usize,
) -> Result<Row, String> {
    let cfg = fleet_config(size);
    let sim = Simulator::start(cfg).await.map_err(|e| e.to_string())?;
    sim.set_faults(Faults {
        latency: Duration::from_millis(args.latency_ms),
        ..Faults::default()
    });
    let min = minimum(&sim.fleet());
    let latency = args.latency_ms as f64 / 1000.0;
    let lower = min.chain as f64 * latency;
    // Room for a cycle to finish well before the next starts.
    let interval = Duration::from_secs((lower * 2.5 + 6.0).ceil() as u64);
    let within = interval * 3;
    let mut e = spawn_exporter(bin, &sim, interval, Some(args.max_concurrency))?;
    let pid = e.child.id();

    // Cycle 1: cold (discovery starts from nothing).
    next_cycle(&mut e, within).await?;
    // The info walks (once per --collect.instance-info-interval, far longer
    // than the run: the first cycle's) are counted before each reset.
    let (mut info_calls, mut activation_calls, mut invocation_calls) = (0, 0, 0);
    let mut count_info = |sim: &Simulator| {
        info_calls += sim.requests("DescribeInstances");
        activation_calls += sim.requests("DescribeActivations");
        invocation_calls += sim.requests("DescribeInvocations");
    };
    // Cycle 2: scrapers asking for gzip run while it does; cycle 3: plain ones.
    count_info(&sim);
    let gz = scrape_during_next_cycle(&sim, &mut e, args.scrapers, true, within).await?;
    count_info(&sim);
    let plain = scrape_during_next_cycle(&sim, &mut e, args.scrapers, false, within).await?;

    // Cycle 4 settles (cycle 3 may have overrun its interval under the plain
    // scrapers); then quiet cycles on schedule: calls in the first; wall
    // time, render time and CPU as means over all of them.
    next_cycle(&mut e, within).await?;
    count_info(&sim);
    sim.reset_counts();
    let cpu0 = cpu_seconds(pid);
    let first = next_cycle(&mut e, within).await?;
    let discovery: u64 = sim.instance_queries().values().sum();
    let managed_calls = sim.requests("DescribeManagedInstances");
    let calls = [
        (sim.requests("DescribeRegions"), min.regions),
        (sim.requests("DescribeCloudAssistantStatus"), min.agents),
        (sim.requests("DescribeInstanceStatus"), min.instances),
        (
            sim.requests("ListPluginStatus") - discovery,
            min.plugin_sweeps,
        ),
    ];
    let (mut wall, mut render) = (first.duration, first.render);
    let mut walks = first.walks;
    for _ in 1..args.quiet_cycles {
        let c = next_cycle(&mut e, within).await?;
        wall += c.duration;
        render += c.render;
        walks.extend(c.walks);
    }
    // Each region's mean walk over its own chain bound; the slowest.
    let mut per_region: std::collections::HashMap<&str, (f64, f64)> = Default::default();
    for (region, secs) in &walks {
        let e = per_region.entry(region).or_default();
        e.0 += secs;
        e.1 += 1.0;
    }
    let walk_ratio = per_region
        .iter()
        .filter_map(|(r, (sum, n))| {
            let own = *min.region_chain.get(*r)? as f64 * latency;
            Some(sum / n / own)
        })
        .fold(f64::NAN, f64::max);
    let n = f64::from(args.quiet_cycles);
    let cpu = (cpu_seconds(pid) - cpu0) / n;
    let client = reqwest::Client::new();
    let url = format!("http://{}/metrics", e.addr);
    let gzip_bytes = client
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?
        .len();
    let plain_bytes = client
        .head(&url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let rss = peak_rss_mb(pid);
    Ok(Row {
        size,
        build,
        walk_ratio,
        wall: wall / n,
        lower,
        render: render / n,
        calls,
        discovery,
        gzip_p: (percentile(&gz, 0.5), percentile(&gz, 0.99), gz.len()),
        plain_p: (
            percentile(&plain, 0.5),
            percentile(&plain, 0.99),
            plain.len(),
        ),
        gzip_bytes,
        plain_bytes,
        rss,
        cpu,
        info_calls,
        activation_calls,
        invocation_calls,
        managed_calls,
    })
}

/// One cold cycle at the default limits (8 in flight, 20 requests/s).
async fn run_defaults(args: &Args, bin: &PathBuf, size: usize) -> Result<(f64, u64), String> {
    let sim = Simulator::start(fleet_config(size))
        .await
        .map_err(|e| e.to_string())?;
    sim.set_faults(Faults {
        latency: Duration::from_millis(args.latency_ms),
        ..Faults::default()
    });
    let mut e = spawn_exporter(bin, &sim, Duration::from_secs(60), None)?;
    let c = next_cycle(&mut e, Duration::from_secs(1800)).await?;
    let by_region = sim.requests_by_region();
    let total: u64 = by_region.values().sum();
    let mut per_action = std::collections::BTreeMap::new();
    for ((action, _), n) in by_region {
        *per_action.entry(action).or_insert(0u64) += n;
    }
    eprintln!("defaults run calls: {per_action:?}");
    Ok((c.duration, total))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    / 1_048_576.0
            })
        })
        .unwrap_or(0.0);
    format!("{cpu}, {cores} cores, {mem:.0} GiB")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    if args.smoke {
        args.sizes = vec![1000];
        args.defaults_size = 1000;
        args.quiet_cycles = 1;
    }
    let bin = args.exporter.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().unwrap_or_default();
        me.with_file_name(format!(
            "cloud-assistant-exporter{}",
            std::env::consts::EXE_SUFFIX
        ))
    });
    println!("machine: {}", machine());
    println!(
        "settings: latency {} ms per call; main runs --aliyun.max-concurrency {} --aliyun.rate-limit 0; {} concurrent scrapers during a cycle (gzip in one cycle, plain in the next); wall, render and CPU: means of {} quiet cycles; 10 regions, largest 40%; plugins: {}",
        args.latency_ms,
        args.max_concurrency,
        args.scrapers,
        args.quiet_cycles,
        PLUGINS.join(", ")
    );
    println!();
    println!(
        "| build | instances | round wall s | lower bound s | ratio | slowest walk / own chain | render s | API calls (Regions/Agents/Instances/Plugins) | minimum | ratio | discovery calls | /metrics gzip p50/p99 ms (n) | plain p50/p99 ms (n) | page gzip / plain MB | peak RSS MB | CPU s/interval |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|---|---|---:|---:|");
    let mut rows = Vec::new();
    let mut builds: Vec<(&'static str, PathBuf)> = Vec::new();
    if let Some(b) = &args.baseline {
        builds.push(("baseline", b.clone()));
    }
    builds.push(("new", bin.clone()));
    let runs: Vec<(usize, &'static str, PathBuf)> = args
        .sizes
        .iter()
        .flat_map(|&size| builds.iter().map(move |(b, p)| (size, *b, p.clone())))
        .collect();
    for (size, build, bin) in runs {
        match run_size(&args, &bin, build, size).await {
            Ok(r) => {
                let got: u64 = r.calls.iter().map(|c| c.0).sum();
                let min: u64 = r.calls.iter().map(|c| c.1).sum();
                let list = |f: fn(&(u64, u64)) -> u64| {
                    r.calls
                        .iter()
                        .map(f)
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                };
                println!(
                    "| {} | {} | {:.2} | {:.2} | {:.3} | {:.3} | {:.2} | {} | {} | {:.3} | {} | {:.1}/{:.1} ({}) | {:.1}/{:.1} ({}) | {:.2} / {:.1} | {:.0} | {:.2} |",
                    r.build,
                    r.size,
                    r.wall,
                    r.lower,
                    r.wall / r.lower,
                    r.walk_ratio,
                    r.render,
                    list(|c| c.0),
                    list(|c| c.1),
                    got as f64 / min as f64,
                    r.discovery,
                    r.gzip_p.0,
                    r.gzip_p.1,
                    r.gzip_p.2,
                    r.plain_p.0,
                    r.plain_p.1,
                    r.plain_p.2,
                    r.gzip_bytes as f64 / 1e6,
                    r.plain_bytes as f64 / 1e6,
                    r.rss,
                    r.cpu
                );
                rows.push(r);
            }
            Err(e) => {
                eprintln!("error: {build}, {size} instances: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    println!();
    println!(
        "| build | instances | instance-info walk calls per --collect.instance-info-interval | activation calls per interval | invocation calls per --collect.invocations-interval | managed-instance calls per interval |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.build, r.size, r.info_calls, r.activation_calls, r.invocation_calls, r.managed_calls
        );
    }
    for (build, _) in &builds {
        let of = |n| rows.iter().find(|r| r.build == *build && r.size == n);
        if let (Some(a), Some(b)) = (of(10_000), of(100_000)) {
            println!();
            println!(
                "{build}: growth 10 000 → 100 000: wall ×{:.2}, CPU ×{:.2}, peak RSS ×{:.2}, gzip page ×{:.2}",
                b.wall / a.wall,
                b.cpu / a.cpu,
                b.rss / a.rss,
                b.gzip_bytes as f64 / a.gzip_bytes as f64
            );
        }
    }
    if args.baseline.is_some() {
        println!();
        for r in rows.iter().filter(|r| r.build == "new") {
            if let Some(b) = rows
                .iter()
                .find(|b| b.build == "baseline" && b.size == r.size)
            {
                println!(
                    "{} instances, new / baseline: CPU ×{:.2}, peak RSS ×{:.2}, gzip page ×{:.3}, gzip p99 ×{:.2}",
                    r.size,
                    r.cpu / b.cpu,
                    r.rss / b.rss,
                    r.gzip_bytes as f64 / b.gzip_bytes as f64,
                    r.gzip_p.1 / b.gzip_p.1
                );
            }
        }
    }
    if args.defaults_size > 0 {
        match run_defaults(&args, &bin, args.defaults_size).await {
            Ok((secs, calls)) => {
                println!();
                println!(
                    "at the defaults (--aliyun.max-concurrency 8 --aliyun.rate-limit 20), {} instances: first cycle {secs:.1} s for {calls} API calls",
                    args.defaults_size
                );
            }
            Err(e) => {
                eprintln!("error: defaults run: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
