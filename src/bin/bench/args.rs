//! The benchmark's command line.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Scale benchmark of cloud-assistant-exporter against the simulator")]
pub struct Args {
    /// Fleet sizes to run (instances over 10 regions, the largest 40%)
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub sizes: Vec<usize>,
    /// Latency the simulator adds to every API call, in milliseconds
    #[arg(long, default_value_t = 30)]
    pub latency_ms: u64,
    /// Fleet size of the extra run at the default limits (8 in flight, 20/s); 0 skips it
    #[arg(long, default_value_t = 10_000)]
    pub defaults_size: usize,
    /// API requests in flight for the main runs (raised so the limit does not bind)
    #[arg(long, default_value_t = 512)]
    pub max_concurrency: u32,
    /// Concurrent scrapers of /metrics during a cycle (one cycle asking for gzip, one plain)
    #[arg(long, default_value_t = 8)]
    pub scrapers: usize,
    /// Quiet cycles at the end of each size: calls are counted in the first;
    /// wall time, render time and CPU are their means (CPU is read in 10 ms
    /// ticks: one cycle at 10 000 instances is only ~20 of them)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub quiet_cycles: u32,
    /// A fast check that the benchmark works: 1 000 instances, defaults run at
    /// 1 000, one quiet cycle
    #[arg(long)]
    pub smoke: bool,
    /// The exporter binary (default: next to this one)
    #[arg(long)]
    pub exporter: Option<PathBuf>,
    /// Another exporter binary (an earlier build) run on each size first,
    /// for figures side by side
    #[arg(long)]
    pub baseline: Option<PathBuf>,
}
