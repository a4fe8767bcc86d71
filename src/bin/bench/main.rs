//! Scale benchmark: the exporter binary, as a separate process, against the
//! in-repo simulator with a fixed latency per API call. Prints, per fleet
//! size, each region's walk against its own chain of calls, API calls
//! against their minimum, `/metrics` latency under concurrent scrapes
//! through the walks, page sizes, peak RSS and CPU per interval. With
//! `--baseline`, another build of the exporter runs each size first, on the
//! same machine in the same run, for a side-by-side comparison.
//!
//! `cargo run --release --bin bench` (see `--help`).

mod args;
mod error;
mod exporter;
mod fleet;
mod measure;
mod run;
mod scrape;

use std::path::PathBuf;

use clap::Parser;

use args::Args;
use fleet::PLUGINS;
use measure::machine;
use run::{run_defaults, run_size};

// The simulator answering the exporter lives in this process: glibc's
// allocator doubled its work per answer (JSON trees of many small strings),
// which showed as latency the exporter was charged with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
