//! Concurrent scrapers of `/metrics` while a round runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cloud_assistant_exporter::simulator::Simulator;

use crate::error::BenchError;
use crate::exporter::{Exporter, next_cycle};

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
pub async fn scrape_during_next_cycle(
    sim: &Simulator,
    e: &mut Exporter,
    n: usize,
    gzip: bool,
    within: Duration,
) -> Result<Vec<Duration>, BenchError> {
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
        all.extend(t.await?);
    }
    all.sort();
    Ok(all)
}
