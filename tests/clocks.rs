//! Every (account, region) on its own clock, against the binary: a slow
//! region delays only its own walks, an account whose endpoint never
//! answers holds back no other account, a hung region listing holds back
//! no walk, `/ready` waits for every first walk (a failed one counts), and
//! a connect that never completes fails within seconds.

mod common;

use std::time::{Duration, Instant};

use cloud_assistant_exporter::simulator::{RegionFault, SimKey, Simulator};
use common::*;

/// Plugin discovery and instance info off in every test here: their calls
/// would blur the walks counted.
const SIDES_OFF: [&str; 4] = [
    "--collect.plugin-discovery-interval",
    "0",
    "--collect.instance-info-interval",
    "0",
];

/// The binary on the API at `endpoint` with the simulator's key, a walk of
/// each region every `interval`, and `extra` flags.
fn walking_every(endpoint: &str, interval: &str, extra: &[&str]) -> ExporterProcess {
    let mut args = vec!["--collect.interval", interval];
    args.extend(SIDES_OFF.iter().chain(extra));
    ExporterProcess::on_api(endpoint, &args, &sim_key_env())
}

/// Walks of a region ended so far (any result).
fn walks(page: &[Sample], account: Option<&str>, region: &str) -> f64 {
    page.iter()
        .filter(|s| {
            s.name == WALKS
                && s.labels.get("region_id").map(String::as_str) == Some(region)
                && s.labels.get("account").map(String::as_str) == account
        })
        .map(|s| s.value)
        .sum()
}

/// The instance ids a page has agents for in a region, sorted.
fn agents(page: &[Sample], account: Option<&str>, region: &str) -> Vec<String> {
    let mut ids: Vec<String> = page
        .iter()
        .filter(|s| {
            s.name == AGENT_UP
                && s.labels.get("region_id").map(String::as_str) == Some(region)
                && s.labels.get("account").map(String::as_str) == account
        })
        .map(|s| s.labels["instance_id"].clone())
        .collect();
    ids.sort();
    ids
}

fn fleet_ids(sim: &Simulator, region: &str) -> Vec<String> {
    let mut ids: Vec<String> = sim.fleet().regions[region]
        .instances
        .iter()
        .map(|i| i.id.clone())
        .collect();
    ids.sort();
    ids
}

/// The walks of each region over `span`, counted from the page.
async fn walks_over(
    addr: std::net::SocketAddr,
    span: Duration,
    regions: &[(Option<&str>, &str)],
) -> Vec<f64> {
    let before = parse_metrics(&scrape(addr).await);
    let t0 = Instant::now();
    tokio::time::sleep(span).await;
    let after = parse_metrics(&scrape(addr).await);
    let secs = t0.elapsed().as_secs_f64();
    assert!(secs < span.as_secs_f64() + 2.0, "scrapes took {secs} s");
    regions
        .iter()
        .map(|(a, r)| walks(&after, *a, r) - walks(&before, *a, r))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_region_delays_only_its_own_walks() {
    let sim = Simulator::start(fleet(&[("fast-a", 30), ("fast-b", 60), ("slow", 120)]))
        .await
        .expect("sim");
    sim.update_faults(|f| {
        f.region_latency
            .insert("slow".into(), Duration::from_secs(4));
    });
    let url = sim.url();
    let exporter = walking_every(&url, "3s", &[]);
    exporter.wait_for("/ready").await;
    // 15 s: five walks of each fast region at 3 s apart (at least three on
    // a busy machine; one global cycle would allow two), and of the slow
    // one (each call 4 s more, one after another through its pages) at
    // most two (three pages: 12 s a walk).
    let n = walks_over(
        exporter.socket(),
        Duration::from_secs(15),
        &[(None, "fast-a"), (None, "fast-b"), (None, "slow")],
    )
    .await;
    let log = exporter.stderr_so_far();
    for (region, walked) in [("fast-a", n[0]), ("fast-b", n[1])] {
        assert!(
            (3.0..=6.0).contains(&walked),
            "{region} walked {walked} times in 15 s, not every 3 s\n{log}"
        );
    }
    assert!(n[2] <= 2.0, "slow walked {} times in 15 s", n[2]);
    let page = parse_metrics(&scrape(exporter.socket()).await);
    for region in ["fast-a", "fast-b", "slow"] {
        assert_eq!(
            agents(&page, None, region),
            fleet_ids(&sim, region),
            "{region}"
        );
        assert_eq!(region_up(&page, region), Some(1.0), "{region}");
    }
    exporter.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_whose_endpoint_never_answers_holds_back_no_other() {
    let sim = Simulator::start(fleet(&[("r1", 40), ("r2", 25)]))
        .await
        .expect("sim");
    sim.add_key("LTAI-good", SimKey::long_term("secret-of-good"));
    let hang = Hang::start().await;
    let dir = TempDir::new("clocks");
    dir.write("good.secret", "secret-of-good\n");
    dir.write("hung.secret", "secret-of-hung\n");
    // The hung account's regions are configured and its endpoint has no
    // `{region}`: every one of its walks calls the endpoint that hangs,
    // at once, as many calls as it may.
    let config = dir.write(
        "accounts.yml",
        &format!(
            "accounts:\n\
             \x20 - name: good\n    endpoint: \"{}\"\n    credentials:\n      type: access_key\n      access_key_id: LTAI-good\n      access_key_secret_file: good.secret\n\
             \x20 - name: hung\n    endpoint: \"{}\"\n    regions: [h1, h2, h3, h4]\n    credentials:\n      type: access_key\n      access_key_id: LTAI-hung\n      access_key_secret_file: hung.secret\n",
            sim.url(),
            hang.url
        ),
    );
    let exporter = ExporterProcess::spawn(
        &[
            &[
                "--config.file",
                &config,
                "--aliyun.rate-limit",
                "0",
                "--aliyun.max-concurrency",
                "4",
                "--aliyun.request-timeout",
                "30s",
                "--collect.interval",
                "3s",
            ],
            &SIDES_OFF[..],
        ]
        .concat(),
        &[],
    );
    // Ready waits for the hung account's first walks; the page does not.
    let addr = exporter.socket();
    exporter.wait_for("/healthz").await;
    let good = Some("good");
    eventually(
        "the good account's regions on /metrics",
        Duration::from_secs(20),
        || async {
            let page = parse_metrics(&scrape(addr).await);
            walks(&page, good, "r1") >= 1.0 && walks(&page, good, "r2") >= 1.0
        },
    )
    .await;
    // Its calls hang, each on a connection of its own, for the 30 s of the
    // request timeout: it holds no more than its share of the 4 slots.
    assert!(hang.hits() > 0, "the hung endpoint was called");
    assert!(
        hang.hits() <= 2,
        "{} calls hang at once, more than max(1, 4 / 2)",
        hang.hits()
    );
    let n = walks_over(addr, Duration::from_secs(15), &[(good, "r1"), (good, "r2")]).await;
    let log = exporter.stderr_so_far();
    for (region, walked) in [("r1", n[0]), ("r2", n[1])] {
        assert!(
            (3.0..=6.0).contains(&walked),
            "good/{region} walked {walked} times in 15 s, not every 3 s\n{log}"
        );
    }
    let page = parse_metrics(&scrape(addr).await);
    for region in ["r1", "r2"] {
        assert_eq!(
            agents(&page, good, region),
            fleet_ids(&sim, region),
            "{region}"
        );
        assert_eq!(
            value(
                &page,
                REGION_UP,
                &[("account", "good"), ("region_id", region)]
            ),
            Some(1.0)
        );
    }
    assert_eq!(value(&page, ACCOUNT_UP, &[("account", "good")]), Some(1.0));
    // The hung account's walks have not ended: nothing of it on the page
    // yet but its regions' own series.
    assert!(agents(&page, Some("hung"), "h1").is_empty());
    exporter.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_walk_keeps_the_last_good_pieces_until_max_stale() {
    let sim = Simulator::start(fleet(&[("a", 30), ("b", 40)]))
        .await
        .expect("sim");
    let url = sim.url();
    let exporter = walking_every(
        &url,
        "1s",
        &["--collect.timeout", "2s", "--collect.max-stale", "8s"],
    );
    exporter.wait_for("/ready").await;
    let addr = exporter.socket();
    let before = parse_metrics(&scrape(addr).await);
    let b_ids = fleet_ids(&sim, "b");
    assert_eq!(agents(&before, None, "b"), b_ids);
    // From now on every call in b takes 3 s: each walk of b times out.
    sim.update_faults(|f| {
        f.region_latency.insert("b".into(), Duration::from_secs(3));
    });
    let timeouts =
        |p: &[Sample]| value(p, WALKS, &[("region_id", "b"), ("result", "timeout")]).unwrap_or(0.0);
    let t0 = Instant::now();
    let failed = scrape_until(addr, "b's walk timed out", |p| timeouts(p) >= 1.0).await;
    // The last good pieces of b stay, marked down; a walks on.
    assert_eq!(region_up(&failed, "b"), Some(0.0));
    assert_eq!(
        agents(&failed, None, "b"),
        b_ids,
        "b's last good series kept"
    );
    assert_eq!(region_up(&failed, "a"), Some(1.0));
    assert!(t0.elapsed() < Duration::from_secs(7), "{:?}", t0.elapsed());
    // Past --collect.max-stale since b's last success, its series go; a's stay.
    let gone = scrape_until(addr, "b's series dropped after max-stale", |p| {
        agents(p, None, "b").is_empty()
    })
    .await;
    assert!(
        t0.elapsed() >= Duration::from_secs(5),
        "dropped before max-stale: {:?}",
        t0.elapsed()
    );
    assert_eq!(region_up(&gone, "b"), Some(0.0));
    assert_eq!(agents(&gone, None, "a"), fleet_ids(&sim, "a"));
    assert_eq!(region_up(&gone, "a"), Some(1.0));
    let a_walks = walks(&gone, None, "a");
    assert!(a_walks >= 8.0, "a walked {a_walks} times");
    exporter.stop();
}

/// The regions of an account keep different places in the interval: every
/// first walk starts at once, and from the second on the `k`-th of `n`
/// regions walks `k / n` of half the interval after the first
/// (docs/design.md, "Clocks"), each still every interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_regions_of_an_account_walk_at_their_own_moments() {
    let names = ["r0", "r1", "r2", "r3"];
    let sim = Simulator::start(fleet(&names.map(|n| (n, 20))))
        .await
        .expect("sim");
    let exporter = walking_every(&sim.url(), "4s", &[]);
    // When each region's walks started: the moments its count of agent
    // calls (one page a walk) rose, sampled every 10 ms.
    let t0 = Instant::now();
    let mut starts: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut seen = vec![0u64; names.len()];
    while t0.elapsed() < Duration::from_secs(15) && starts.iter().any(|s| s.len() < 3) {
        let by_region = sim.requests_by_region();
        for (k, region) in names.iter().enumerate() {
            let key = (
                "DescribeCloudAssistantStatus".to_string(),
                region.to_string(),
            );
            let n = by_region.get(&key).copied().unwrap_or(0);
            if n > seen[k] {
                starts[k].push(t0.elapsed().as_secs_f64());
                seen[k] = n;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = exporter.stderr_so_far();
    assert!(
        starts.iter().all(|s| s.len() >= 3),
        "three walks of each region: {starts:?}\n{log}"
    );
    // The first walks together.
    let first: Vec<f64> = starts.iter().map(|s| s[0]).collect();
    let spread = first.iter().cloned().fold(f64::MIN, f64::max)
        - first.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread < 0.4, "first walks {first:?}");
    for (k, s) in starts.iter().enumerate() {
        // Every interval (the second once its phase more)...
        let phase = 0.5 * k as f64;
        assert!(
            (s[1] - s[0] - 4.0 - phase).abs() < 0.3,
            "region {k}: second walk {:.2} s after the first",
            s[1] - s[0]
        );
        assert!(
            (s[2] - s[1] - 4.0).abs() < 0.3,
            "region {k}: third walk {:.2} s after the second",
            s[2] - s[1]
        );
        // ...and half a second after the previous region's.
        assert!(
            (s[2] - starts[0][2] - phase).abs() < 0.3,
            "region {k}: {:.2} s after r0's",
            s[2] - starts[0][2]
        );
    }
    exporter.stop();
}

/// Calls made so far whose (action, region) `keep` takes.
fn calls(sim: &Simulator, keep: impl Fn(&str, &str) -> bool) -> u64 {
    sim.requests_by_region()
        .iter()
        .filter(|((action, region), _)| keep(action, region))
        .map(|(_, n)| n)
        .sum()
}

/// Calls of a region's walk for `region` made so far (the side walks'
/// DescribeInvocations, DescribeActivations and DescribeInstances left out).
fn walk_calls(sim: &Simulator, region: &str) -> u64 {
    const WALK: [&str; 4] = [
        "DescribeCloudAssistantStatus",
        "DescribeInstanceStatus",
        "ListPluginStatus",
        "DescribeManagedInstances",
    ];
    calls(sim, |a, r| r == region && WALK.contains(&a))
}

/// DescribeRegions calls made so far (whatever region they name).
fn listings(sim: &Simulator) -> u64 {
    calls(sim, |a, _| a == "DescribeRegions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_listing_that_hangs_holds_back_no_walk() {
    let sim = Simulator::start(fleet(&[("a", 30), ("b", 40)]))
        .await
        .expect("sim");
    let exporter = walking_every(&sim.url(), "3s", &["--aliyun.request-timeout", "30s"]);
    exporter.wait_for("/ready").await;
    // From now on DescribeRegions takes a minute: the account's next
    // listing hangs through the whole window below.
    sim.update_faults(|f| {
        f.action_latency
            .insert("DescribeRegions".into(), Duration::from_secs(60));
    });
    let before = listings(&sim);
    eventually(
        "the account lists its regions again",
        Duration::from_secs(10),
        || async { listings(&sim) > before },
    )
    .await;
    let n = walks_over(
        exporter.socket(),
        Duration::from_secs(12),
        &[(None, "a"), (None, "b")],
    )
    .await;
    let log = exporter.stderr_so_far();
    for (region, walked) in [("a", n[0]), ("b", n[1])] {
        assert!(
            (3.0..=5.0).contains(&walked),
            "{region} walked {walked} times in 12 s while DescribeRegions hung, not every 3 s\n{log}"
        );
    }
    let page = parse_metrics(&scrape(exporter.socket()).await);
    for region in ["a", "b"] {
        assert_eq!(agents(&page, None, region), fleet_ids(&sim, region));
        assert_eq!(region_up(&page, region), Some(1.0), "{region}");
    }
    exporter.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_every_first_walk_and_a_failed_one_counts() {
    let sim = Simulator::start(fleet(&[("ok", 20), ("slow", 20), ("bad", 20)]))
        .await
        .expect("sim");
    sim.update_faults(|f| {
        f.region_latency
            .insert("slow".into(), Duration::from_secs(3));
        f.regions.insert(
            "bad".into(),
            RegionFault::Error {
                status: 400,
                code: "InvalidParameter".into(),
            },
        );
    });
    let exporter = walking_every(&sim.url(), "60s", &[]);
    let addr = exporter.socket();
    let client = reqwest::Client::new();
    let failed = |p: &[Sample]| {
        value(p, WALKS, &[("region_id", "bad"), ("result", "failed")]).unwrap_or(0.0)
    };
    let (mut waited, t0) = (false, Instant::now());
    // When the last of slow's calls arrived (its answer comes 3 s later),
    // and when its walk was first on the page.
    let (mut calls, mut last_call, mut seen) = (0, t0, None);
    // A page before and after each /ready: what had ended before it was
    // asked, and what had not ended yet when it answered.
    let ready_page = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "not ready in 40 s\n{}",
            exporter.stderr_so_far()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now_calls = walk_calls(&sim, "slow");
        if now_calls > calls {
            (calls, last_call) = (now_calls, Instant::now());
        }
        let Ok(r) = client.get(exporter.url("/metrics")).send().await else {
            continue;
        };
        let before = parse_metrics(&r.text().await.expect("page"));
        let ready = client
            .get(exporter.url("/ready"))
            .send()
            .await
            .expect("ready")
            .status();
        let after = parse_metrics(&scrape(addr).await);
        if seen.is_none() && walks(&after, None, "slow") >= 1.0 {
            seen = Some(Instant::now());
        }
        if ready == 200 {
            break after;
        }
        assert_eq!(ready, 503);
        if walks(&before, None, "ok") >= 1.0
            && failed(&before) >= 1.0
            && walks(&after, None, "slow") == 0.0
        {
            waited = true;
        }
    };
    assert!(
        waited,
        "/ready was 503 once ok had walked and bad had failed, while slow still walked"
    );
    // Ready: every region has ended its first walk, the failed one too.
    assert!(walks(&ready_page, None, "slow") >= 1.0);
    // A finished walk is on the page within a second (give or take the
    // polls' few hundredths of a second).
    let seen = seen.expect("slow's walk seen");
    let answered = last_call + Duration::from_secs(3);
    let delay = seen.saturating_duration_since(answered);
    eprintln!(
        "slow's walk on the page {delay:?} after its last answer ({:?} after its last call)",
        seen - last_call
    );
    assert!(delay < Duration::from_secs(1), "{delay:?}");
    assert!(failed(&ready_page) >= 1.0);
    assert_eq!(region_up(&ready_page, "bad"), Some(0.0));
    assert!(agents(&ready_page, None, "bad").is_empty());
    for region in ["ok", "slow"] {
        assert_eq!(region_up(&ready_page, region), Some(1.0), "{region}");
        assert_eq!(agents(&ready_page, None, region), fleet_ids(&sim, region));
        assert_eq!(
            value(
                &ready_page,
                WALKS,
                &[("region_id", region), ("result", "ok")]
            ),
            Some(1.0),
            "{region}"
        );
    }
    exporter.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_that_never_completes_fails_in_seconds_not_the_request_timeout() {
    let dead = NoConnect::start().await;
    let t0 = Instant::now();
    let exporter = walking_every(
        &dead.url,
        "3s",
        &[
            "--aliyun.regions",
            "h1",
            "--aliyun.request-timeout",
            "60s",
            "--collect.timeout",
            "5m",
        ],
    );
    // Five tries of a 3 s connect and their backoff: about 17 s, where a
    // connect bound only by the request timeout would hold the first try
    // alone for 60 s.
    exporter.wait_for("/healthz").await;
    let addr = exporter.socket();
    let page = eventually_some(
        "h1's first walk failed",
        Duration::from_secs(45),
        || async {
            let page = scrape_samples(addr).await;
            let failed = value(&page, WALKS, &[("region_id", "h1"), ("result", "failed")]);
            (failed.unwrap_or(0.0) >= 1.0).then_some(page)
        },
    )
    .await;
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(40), "failed after {took:?}");
    assert!(
        took > Duration::from_secs(9),
        "failed after {took:?}: retried?"
    );
    assert_eq!(region_up(&page, "h1"), Some(0.0));
    let timeouts = find_value(
        &page,
        API_REQUESTS,
        &[
            ("action", "DescribeCloudAssistantStatus"),
            ("code", "Timeout"),
        ],
    )
    .unwrap_or(0.0);
    assert!(timeouts >= 5.0, "{timeouts} timed-out calls counted");
    let log = exporter.stop();
    assert!(log.contains("timed out"), "{log}");
    assert!(log.contains("h1"), "{log}");
}
