//! Faults injected one by one: limits, hangs, unsupported regions, failing
//! DescribeRegions, hostile answers, endless pages, slow clients.

mod api_safety;
#[path = "../common/mod.rs"]
mod common;
mod failure_domains;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloud_assistant_exporter::api;

use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::collector::CollectorOptions;
use cloud_assistant_exporter::server::ServerOptions;
use cloud_assistant_exporter::simulator::{self, FleetConfig, RegionFault, RegionSpec, Simulator};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NOW: i64 = 1_760_000_000;

fn three(n: usize) -> FleetConfig {
    FleetConfig {
        seed: 5,
        regions: vec![
            RegionSpec::new("a", n),
            RegionSpec::new("b", n),
            RegionSpec::new("c", n),
        ],
        plugins: vec!["p".into()],
        start: NOW - 600,
    }
}

fn agents_in(samples: &[Sample], region: &str) -> usize {
    samples
        .iter()
        .filter(|s| s.name == "aliyun_cloud_assistant_agent_up" && s.labels["region_id"] == region)
        .count()
}

#[tokio::test]
async fn concurrency_limit_holds_across_regions_and_actions() {
    let sim = Simulator::start(three(300)).await.expect("sim");
    sim.update_faults(|f| f.latency = Duration::from_millis(20));
    let c = tuned_collector(
        &sim,
        CollectorOptions {
            plugins: vec!["p".into()],
            ..CollectorOptions::default()
        },
        Clock::System,
        |o| o.max_concurrency = 3,
    );
    sim.reset_counts();
    let r = c.run_cycle().await;
    assert_eq!(r.regions_ok, 3);
    let peak = sim.max_in_flight();
    assert!(peak <= 3, "{peak} requests in flight with a limit of 3");
    assert!(peak >= 2, "regions and actions run concurrently ({peak})");
}

#[tokio::test]
async fn rate_limit_spaces_requests() {
    let sim = Simulator::start(three(1000)).await.expect("sim");
    let client = client_with(&sim, simulator::DEFAULT_KEY_SECRET, |o| {
        o.rate_limit = 20.0;
        o.max_concurrency = 8;
    });
    let t0 = Instant::now();
    // 20 pages fetched concurrently once TotalCount is known: 20 requests at 20/s.
    let inst = api::walk_instance_status(&client, "a").await.expect("walk");
    assert_eq!(inst.len(), 1000);
    assert_eq!(sim.requests("DescribeInstanceStatus"), 20);
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?} for 20 requests at 20/s",
        t0.elapsed()
    );
}

#[tokio::test]
async fn a_hung_region_neither_delays_nor_blanks_the_others() {
    let clock = Clock::fixed(NOW);
    let sim = sim_at(three(60), clock.clone()).await;
    let opts = CollectorOptions {
        region_timeout: Duration::from_secs(1),
        ..CollectorOptions::default()
    };
    let c = tuned_collector(&sim, opts, clock.clone(), |o| {
        o.timeout = Duration::from_secs(30)
    });
    c.run_cycle().await;
    let before = page_samples(&c);
    sim.update_faults(|f| {
        f.regions.insert("c".into(), RegionFault::Hang);
    });
    let t0 = Instant::now();
    let r = c.run_cycle().await;
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "the cycle waited {:?}",
        t0.elapsed()
    );
    assert_eq!((r.regions_ok, r.regions_failed), (2, 1));
    let after = page_samples(&c);
    assert_eq!(region_up(&after, "a"), Some(1.0));
    assert_eq!(region_up(&after, "c"), Some(0.0));
    assert_eq!(agents_in(&after, "c"), 60, "last good copy kept");
    assert_eq!(agents_in(&before, "c"), 60);
}

#[tokio::test]
async fn api_not_supported_leaves_the_region_out_and_is_rechecked_rarely() {
    let clock = Clock::fixed(NOW);
    let sim = sim_at(three(10), clock.clone()).await;
    sim.update_faults(|f| {
        f.regions.insert(
            "c".into(),
            RegionFault::Error {
                status: 400,
                code: "RegionId.ApiNotSupported".into(),
            },
        );
    });
    let opts = CollectorOptions {
        unsupported_recheck: Duration::from_secs(3600),
        ..CollectorOptions::default()
    };
    let c = tuned_collector(&sim, opts, clock.clone(), |_| {});
    let r = c.run_cycle().await;
    assert_eq!((r.regions_ok, r.regions_failed), (2, 0));
    let p = page_samples(&c);
    assert_eq!(
        region_up(&p, "c"),
        None,
        "an unsupported region is not a failing one"
    );
    assert_eq!(agents_in(&p, "a"), 10);
    let calls_c = |sim: &Simulator| {
        sim.requests_by_region()
            .iter()
            .filter(|((_, r), _)| r == "c")
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let first = calls_c(&sim);
    assert!(first > 0);
    assert_eq!(
        sim.requests("DescribeCloudAssistantStatus") as usize,
        3,
        "no retry storm: one call per region"
    );
    clock.advance(60);
    c.run_cycle().await;
    assert_eq!(calls_c(&sim), first, "not asked again within the hour");
    sim.update_faults(|f| f.regions.clear());
    clock.advance(3600);
    c.run_cycle().await;
    assert!(calls_c(&sim) > first, "rechecked after the hour");
    assert_eq!(region_up(&page_samples(&c), "c"), Some(1.0));
}

#[tokio::test]
async fn describe_regions_failing_uses_the_last_known_list() {
    let clock = Clock::fixed(NOW);
    let sim = sim_at(three(5), clock.clone()).await;
    let c = tuned_collector(&sim, CollectorOptions::default(), clock.clone(), |_| {});
    assert_eq!(c.run_cycle().await.regions_ok, 3);
    sim.update_faults(|f| {
        f.actions.insert(
            "DescribeRegions".into(),
            RegionFault::Error {
                status: 503,
                code: "ServiceUnavailable".into(),
            },
        );
    });
    let r = c.run_cycle().await;
    assert_eq!(r.regions_ok, 3, "walked the known regions");
    assert!(sim.requests("DescribeRegions") >= 2);
    let p = page_samples(&c);
    for region in ["a", "b", "c"] {
        assert_eq!(region_up(&p, region), Some(1.0));
    }
}

#[tokio::test]
async fn hostile_answers_fail_only_their_region() {
    let clock = Clock::fixed(NOW);
    let sim = sim_at(three(20), clock.clone()).await;
    let c = tuned_collector(&sim, CollectorOptions::default(), clock.clone(), |o| {
        o.max_body_bytes = 64 << 10
    });
    c.run_cycle().await;
    let good = page_samples(&c);
    let huge = format!("{{\"Pad\": \"{}\"}}", "x".repeat(100 << 10));
    let dup = r#"{"InstanceCloudAssistantStatusSet":{"InstanceCloudAssistantStatus":[{"InstanceId":"i-1","CloudAssistantStatus":true},{"InstanceId":"i-1","CloudAssistantStatus":true}]}}"#;
    let absurd = r#"{"InstanceCloudAssistantStatusSet":{"InstanceCloudAssistantStatus":[{"InstanceId":"i-1","CloudAssistantStatus":true,"LastHeartbeatTime":"9999-01-01T00:00:00Z"}]}}"#;
    let wrong = r#"{"InstanceCloudAssistantStatusSet":{"InstanceCloudAssistantStatus":[{"InstanceId":"i-1","CloudAssistantStatus":true,"InvocationCount":{"n":1}}]}}"#;
    for body in [
        "<html>oops</html>",
        "{\"InstanceCloudAssistantStatusSet\": {",
        huge.as_str(),
        dup,
        absurd,
        wrong,
        "[]",
        // No set, yet a NextToken: rows would be lost (without the token it
        // is an empty page, see api_safety.rs).
        "{\"Unknown\": 1, \"NextToken\": \"AA==\"}",
    ] {
        sim.update_faults(|f| {
            f.regions
                .insert("c".into(), RegionFault::Body(body.to_string()));
        });
        let r = c.run_cycle().await;
        assert_eq!(
            (r.regions_ok, r.regions_failed),
            (2, 1),
            "{}",
            &body[..body.len().min(40)]
        );
        let p = page_samples(&c);
        assert_eq!(region_up(&p, "c"), Some(0.0));
        assert_eq!(region_up(&p, "a"), Some(1.0));
        let of = |s: &[Sample]| region_series(s, "c");
        assert_eq!(of(&p), of(&good), "region c keeps its last good series");
    }
}

#[tokio::test]
async fn a_next_token_that_never_ends_stops_at_the_page_cap() {
    let sim = Simulator::start(three(3)).await.expect("sim");
    sim.update_faults(|f| {
        f.regions.insert("a".into(), RegionFault::EndlessToken);
    });
    let client = client_with(&sim, simulator::DEFAULT_KEY_SECRET, |o| o.max_pages = 20);
    let e = api::walk_cloud_assistant_status(&client, "a")
        .await
        .expect_err("capped");
    assert!(
        e.to_string().contains("still a NextToken after 20 pages"),
        "{e}"
    );
    assert_eq!(sim.requests("DescribeCloudAssistantStatus"), 20);
    assert_eq!(
        api::walk_cloud_assistant_status(&client, "b")
            .await
            .expect("b")
            .len(),
        3
    );
}

#[tokio::test]
async fn slow_clients_cannot_exhaust_the_server() {
    let (addr, _stop, _task) = tiny_server(ServerOptions {
        max_connections: 4,
        header_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    })
    .await;
    // Four connections that never send a request take every slot...
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("partial request");
        idle.push(s);
    }
    // ...until the header timeout closes them, and a real scrape gets through.
    let t0 = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::get(format!("http://{addr}/healthz")),
    )
    .await
    .expect("answered in time")
    .expect("ok");
    assert_eq!(r.status(), 200);
    assert!(t0.elapsed() < Duration::from_secs(3));
    for mut s in idle {
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
        assert!(
            closed.is_ok(),
            "an idle half-sent request is closed by the server"
        );
    }
}

#[tokio::test]
async fn many_concurrent_scrapes_during_a_cycle() {
    let sim = Simulator::start(three(200)).await.expect("sim");
    let running = start_exporter(
        &sim,
        &["--collect.interval", "1h", "--collect.plugins", "p"],
        Clock::System,
    )
    .await;
    wait_ready(running.addr).await;
    let reference = scrape(running.addr).await;
    sim.update_faults(|f| f.latency = Duration::from_millis(300));
    let collector = Arc::clone(&running.collector);
    let cycle = tokio::spawn(async move { collector.run_cycle().await });
    let client = reqwest::Client::new();
    let mut scrapes = tokio::task::JoinSet::new();
    for i in 0..64 {
        let (c, addr) = (client.clone(), running.addr);
        scrapes.spawn(async move {
            let req = c.get(format!("http://{addr}/metrics"));
            let req = if i % 2 == 0 {
                req.header("accept-encoding", "gzip")
            } else {
                req
            };
            let t0 = Instant::now();
            let r = req.send().await.expect("scrape");
            assert_eq!(r.status(), 200);
            let body = r.bytes().await.expect("body");
            (t0.elapsed(), body.len())
        });
    }
    while let Some(j) = scrapes.join_next().await {
        let (took, len) = j.expect("task");
        assert!(len > 1000);
        assert!(
            took < Duration::from_secs(2),
            "a scrape waited {took:?} on the cycle"
        );
    }
    assert!(
        !cycle.is_finished(),
        "the scrapes ran while the cycle was still going"
    );
    cycle.await.expect("cycle");
    // Same fleet, same series (values like durations may move).
    let after = scrape_samples(running.addr).await;
    assert_eq!(
        count(&after, "aliyun_cloud_assistant_agent_up"),
        count(
            &parse_metrics(&reference),
            "aliyun_cloud_assistant_agent_up"
        )
    );
    running.shutdown().await;
}
