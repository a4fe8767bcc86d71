//! The benchmark's smoke run (1 000 instances), so it cannot rot: it must run
//! to the end, print its table, and make no more API calls than the minimum
//! allows. Timing targets live in BENCHMARKS.md, not here.

use std::process::Command;

#[test]
fn bench_smoke_runs_and_stays_at_the_minimum_of_calls() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "--smoke",
            "--exporter",
            env!("CARGO_BIN_EXE_cloud-assistant-exporter"),
        ])
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| new | 1000 |"))
        .expect("a row for 1 000 instances");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // | build | instances | wall | lower | ratio | walk ratio | render | calls | minimum | ratio | ...
    let (calls, minimum, ratio): (&str, &str, f64) =
        (cells[8], cells[9], cells[10].parse().expect("ratio"));
    assert!(
        ratio <= 1.02,
        "API calls {calls} against the minimum {minimum}"
    );
    let wall: f64 = cells[3].parse().expect("wall");
    let lower: f64 = cells[4].parse().expect("lower bound");
    assert!(
        wall >= lower,
        "a round cannot beat its lower bound ({wall} < {lower})"
    );
    let walk: f64 = cells[6].parse().expect("walk ratio");
    assert!(
        walk >= 0.99,
        "a region's walk cannot beat its own chain of calls ({walk})"
    );
    assert!(stdout.contains("at the defaults"), "{stdout}");
}
