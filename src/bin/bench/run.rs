//! One fleet size against one build: its rounds, calls, latencies, page
//! sizes, memory and CPU; and the cold round at the default limits.

use std::path::PathBuf;
use std::time::Duration;

use cloud_assistant_exporter::simulator::{Faults, Simulator};

use crate::args::Args;
use crate::error::BenchError;
use crate::exporter::{next_cycle, spawn_exporter};
use crate::fleet::{fleet_config, minimum};
use crate::measure::{RssWatch, call_seconds, cpu_split, peak_rss_mb, percentile};
use crate::scrape::scrape_during_next_cycle;

pub struct Row {
    pub size: usize,
    /// The build: "baseline" or "new".
    pub build: &'static str,
    /// The slowest region's walk over its own chain of calls × latency.
    pub walk_ratio: f64,
    pub wall: f64,
    pub lower: f64,
    pub render: f64,
    pub calls: [(u64, u64); 4],
    pub discovery: u64,
    pub gzip_p: (f64, f64, usize),
    pub plain_p: (f64, f64, usize),
    pub gzip_bytes: usize,
    pub plain_bytes: usize,
    pub rss: f64,
    pub cpu: f64,
    /// DescribeInstances calls of the run's first info walk (one per
    /// `--collect.instance-info-interval`, beside the cycles).
    pub info_calls: u64,
    /// DescribeActivations calls of that walk.
    pub activation_calls: u64,
    /// DescribeInvocations calls of the run's one invocations walk (the
    /// three filters in every region).
    pub invocation_calls: u64,
    /// DescribeManagedInstances calls in a quiet cycle.
    pub managed_calls: u64,
}

pub async fn run_size(
    args: &Args,
    bin: &PathBuf,
    build: &'static str,
    size: usize,
) -> Result<Row, BenchError> {
    let cfg = fleet_config(size);
    let sim = Simulator::start(cfg).await?;
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
    let rss_watch = RssWatch::start(pid);

    // Cycle 1: cold (discovery starts from nothing).
    next_cycle(&mut e, within).await?;
    let rss_cold = rss_watch.take_mb();
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
    let rss_gzip = rss_watch.take_mb();
    count_info(&sim);
    let plain = scrape_during_next_cycle(&sim, &mut e, args.scrapers, false, within).await?;
    let rss_plain = rss_watch.take_mb();

    // Cycle 4 settles (cycle 3 may have overrun its interval under the plain
    // scrapers); then quiet cycles on schedule: calls in the first; wall
    // time, render time and CPU as means over all of them.
    next_cycle(&mut e, within).await?;
    count_info(&sim);
    let client = reqwest::Client::new();
    let url = format!("http://{}/metrics", e.addr);
    let calls0 = call_seconds(&client.get(&url).send().await?.text().await?);
    sim.reset_counts();
    // A profiler can be attached to the exporter from here on.
    eprintln!("{build} {size}: quiet rounds begin (exporter pid {pid})");
    let cpu0 = cpu_split(pid);
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
    let mut by_region: Vec<(&str, u64, f64)> = per_region
        .iter()
        .filter_map(|(r, (sum, n))| {
            let pages = *min.region_chain.get(*r)?;
            Some((*r, pages, sum / n / (pages as f64 * latency)))
        })
        .collect();
    let walk_ratio = by_region.iter().map(|r| r.2).fold(f64::NAN, f64::max);
    by_region.sort_by_key(|(_, pages, _)| std::cmp::Reverse(*pages));
    let listed: Vec<String> = by_region
        .iter()
        .map(|(r, pages, ratio)| format!("{r} {ratio:.3} ({pages} pages)"))
        .collect();
    eprintln!(
        "{build} {size}: walk / own chain by region: {}",
        listed.join(", ")
    );
    let n = f64::from(args.quiet_cycles);
    let cpu1 = cpu_split(pid);
    let (user, system) = ((cpu1.0 - cpu0.0) / n, (cpu1.1 - cpu0.1) / n);
    let cpu = user + system;
    eprintln!("{build} {size}: CPU per round: user {user:.2} s, system {system:.2} s");
    eprintln!(
        "{build} {size}: highest RSS by round (MB): cold {rss_cold:.0}, gzip scrapers {rss_gzip:.0}, plain scrapers {rss_plain:.0}, settling and quiet {:.0}",
        rss_watch.take_mb()
    );
    // Where a page's time goes beyond the latency: the call as the exporter
    // sees it, the simulator's own work, its sleeps' overshoot.
    let calls1 = call_seconds(&client.get(&url).send().await?.text().await?);
    let answered: u64 = sim.requests_by_region().values().sum();
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / answered.max(1) as f64;
    // The chain at the latency the simulator delivered: its sleeps wake
    // after the latency asked for, never before (a thread's wake-up, the
    // wait for a core).
    let delivered = 1.0 + per(sim.overslept()) / args.latency_ms as f64;
    eprintln!(
        "{build} {size}: slowest walk / own chain at the latency delivered ({:.2} ms): {:.3}",
        args.latency_ms as f64 * delivered,
        walk_ratio / delivered
    );
    eprintln!(
        "{build} {size}: per call in the quiet rounds ({answered} calls): the exporter saw {:.2} ms (latency {} ms); the simulator worked {:.2} ms, its sleeps ran over by {:.2} ms",
        (calls1.0 - calls0.0) * 1000.0 / (calls1.1 - calls0.1).max(1.0),
        args.latency_ms,
        per(sim.busy()),
        per(sim.overslept()),
    );
    let gzip_bytes = client
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await?
        .bytes()
        .await?
        .len();
    let plain_bytes = client
        .head(&url)
        .send()
        .await?
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
pub async fn run_defaults(
    args: &Args,
    bin: &PathBuf,
    size: usize,
) -> Result<(f64, u64), BenchError> {
    let sim = Simulator::start(fleet_config(size)).await?;
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
