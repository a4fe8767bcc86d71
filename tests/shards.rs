//! `--shard.count N` replicas over one simulated account cover every region
//! exactly once, and each says which shard it is.

mod common;

use std::collections::BTreeMap;

use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::simulator::Simulator;
use common::*;

const NOW: i64 = 1_700_003_600;

const REGIONS: [&str; 12] = REGION_IDS;

async fn simulator() -> Simulator {
    let regions: Vec<(&str, usize)> = REGIONS.iter().map(|r| (*r, 2)).collect();
    sim_at(fleet(&regions), Clock::fixed(NOW)).await
}

const QUIET: [&str; 4] = [
    "--collect.interval",
    "1h",
    "--collect.plugin-discovery-interval",
    "0",
];

/// Region ids with `region_up` on each replica's page, and its shard_info.
async fn scrape_replicas(addrs: &[std::net::SocketAddr]) -> Vec<(Vec<String>, Vec<Sample>)> {
    let mut out = Vec::new();
    for addr in addrs {
        wait_ready(*addr).await;
        let samples = scrape_samples(*addr).await;
        let regions = samples
            .iter()
            .filter(|s| s.name == "aliyun_cloud_assistant_exporter_region_up")
            .map(|s| s.labels["region_id"].clone())
            .collect();
        let info = samples
            .into_iter()
            .filter(|s| s.name == "aliyun_cloud_assistant_exporter_shard_info")
            .collect();
        out.push((regions, info));
    }
    out
}

fn check_cover(n: u64, replicas: &[(Vec<String>, Vec<Sample>)]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (regions, info)) in replicas.iter().enumerate() {
        for r in regions {
            *seen.entry(r.clone()).or_default() += 1;
        }
        assert_eq!(info.len(), 1, "replica {i}: one shard_info");
        assert_eq!(info[0].value, 1.0);
        assert_eq!(info[0].labels["index"], i.to_string());
        assert_eq!(info[0].labels["count"], n.to_string());
    }
    let want: BTreeMap<String, usize> = REGIONS.iter().map(|r| (r.to_string(), 1)).collect();
    assert_eq!(seen, want, "N={n}: every region exactly once");
}

#[tokio::test]
async fn replicas_cover_every_region_exactly_once() {
    let sim = simulator().await;
    for n in 1..=3u64 {
        let mut running = Vec::new();
        for i in 0..n {
            let (count, index) = (n.to_string(), i.to_string());
            let mut args = QUIET.to_vec();
            args.extend(["--shard.count", &count, "--shard.index", &index]);
            running.push(start_exporter(&sim, &args, Clock::fixed(NOW)).await);
        }
        let addrs: Vec<_> = running.iter().map(|r| r.addr).collect();
        check_cover(n, &scrape_replicas(&addrs).await);
        for r in running {
            r.shutdown().await;
        }
    }
}

/// The StatefulSet way: the index comes from the pod's hostname.
#[tokio::test]
async fn index_from_hostname_splits_the_same_way() {
    let sim = simulator().await;
    let url = sim.url();
    let mut running = Vec::new();
    for i in 0..3 {
        let mut args = vec![
            "--aliyun.endpoint",
            url.as_str(),
            "--aliyun.rate-limit",
            "0",
            "--shard.count",
            "3",
            "--shard.index-from-hostname",
        ];
        args.extend(QUIET);
        let mut env = sim_key_env();
        env.push(("HOSTNAME", format!("cloud-assistant-exporter-{i}")));
        running.push(
            start_app(&args, &env, Clock::fixed(NOW))
                .await
                .expect("starts"),
        );
    }
    let addrs: Vec<_> = running.iter().map(|r| r.addr).collect();
    check_cover(3, &scrape_replicas(&addrs).await);
    for r in running {
        r.shutdown().await;
    }
}

#[test]
fn a_hostname_without_a_number_is_one_line_and_exit_2() {
    for (host, want) in [
        ("exporter", "does not end in -<number>"),
        ("exporter-7", "must be below --shard.count 3"),
    ] {
        let err = refused(
            &[
                "--demo",
                "--web.listen-address",
                "127.0.0.1:0",
                "--shard.count",
                "3",
                "--shard.index-from-hostname",
            ],
            &[("HOSTNAME", host.into())],
        );
        assert!(err.contains(want), "{err}");
    }
}
