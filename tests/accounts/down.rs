//! One account's credentials never hold the others up
//! (docs/operating.md, "Throttling and outages"): an account whose STS hangs starts down and comes up by
//! itself; a reload applies the good accounts and names the bad ones;
//! credentials that expire and cannot be renewed fail that account's
//! regions at once, with no storm of calls; and the exporter's own series
//! are as of the scrape. Each account has a simulator of its own that
//! takes only its key (or, for a role, only the credentials its STS gave).

use std::time::{Duration, Instant};

use crate::common::*;
use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::simulator::{IdentityServer, Simulator, StsFault};

/// An account signed with its AccessKey, 3 instances in each of `regions`;
/// every API call takes 20 ms, so a cycle takes a time worth comparing.
async fn keyed(name: &'static str, regions: &[&str]) -> Acct {
    let spec: Vec<(&str, usize)> = regions.iter().map(|r| (*r, 3)).collect();
    let sim = Simulator::start(fleet(&spec)).await.expect("simulator");
    sim.update_faults(|f| f.latency = Duration::from_millis(20));
    Acct::on(name, sim)
}

/// An account reached through a role (`ram_role_arn`) whose STS hands
/// out credentials that live `lifetime`.
async fn role(name: &'static str, regions: &[&str], lifetime: Duration) -> Acct {
    keyed(name, regions).await.through_role(lifetime).await
}

/// The binary on `config`, a cycle every second, STS at `sts` (the one
/// role account's), with `extra` flags and no credentials in its
/// environment.
fn exporter(config: &str, sts: Option<&IdentityServer>, extra: &[&str]) -> ExporterProcess {
    let sts_url = sts.map(IdentityServer::url);
    let mut args = vec![
        "--config.file",
        config,
        "--aliyun.rate-limit",
        "0",
        "--collect.interval",
        "1s",
        "--collect.plugin-discovery-interval",
        "0",
        "--collect.instance-info-interval",
        "0",
    ];
    if let Some(url) = &sts_url {
        args.extend(["--aliyun.sts-endpoint", url.as_str()]);
    }
    args.extend_from_slice(extra);
    ExporterProcess::spawn(&args, &[])
}

fn account_up(page: &[Sample], a: &Acct) -> Option<f64> {
    value(page, ACCOUNT_UP, &[("account", a.name)])
}

/// region_up of each of `a`'s regions, in order (`None`: not on the page).
fn regions_up(page: &[Sample], a: &Acct) -> Vec<Option<f64>> {
    a.regions
        .iter()
        .map(|r| {
            value(
                page,
                REGION_UP,
                &[("account", a.name), ("region_id", r.as_str())],
            )
        })
        .collect()
}

/// Every region of `a` is on the page with region_up `v`.
fn all_regions(page: &[Sample], a: &Acct, v: f64) -> bool {
    regions_up(page, a).iter().all(|u| *u == Some(v))
}

/// The sum of `name`'s series of account `a` whose labels include `with`.
fn total(page: &[Sample], name: &str, a: &Acct, with: &[(&str, &str)]) -> f64 {
    page.iter()
        .filter(|s| s.name == name && s.labels.get("account").map(String::as_str) == Some(a.name))
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// The pages of the next `n` cycles that finish (one scrape each), as
/// they come.
async fn next_cycles(addr: std::net::SocketAddr, n: usize) -> Vec<Vec<Sample>> {
    let cycles = |p: &[Sample]| value(p, CYCLES, &[]).unwrap_or(0.0);
    let mut seen = cycles(&parse_metrics(&scrape(addr).await));
    let mut pages = Vec::new();
    let until = Instant::now() + Duration::from_secs(20 + 2 * n as u64);
    while pages.len() < n {
        assert!(
            Instant::now() < until,
            "{} of {n} cycles in time",
            pages.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let page = parse_metrics(&scrape(addr).await);
        if cycles(&page) > seen {
            seen = cycles(&page);
            pages.push(page);
        }
    }
    pages
}

fn median(mut xs: Vec<f64>) -> f64 {
    assert!(!xs.is_empty());
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The median cycle time of `pages` (each a cycle's).
fn cycle_time(pages: &[Vec<Sample>]) -> f64 {
    median(
        pages
            .iter()
            .map(|p| value(p, CYCLE_SECONDS, &[]).expect("cycle time"))
            .collect(),
    )
}

/// The median time the regions of `accounts` took to walk over `pages`.
fn region_time(pages: &[Vec<Sample>], accounts: &[&Acct]) -> f64 {
    let mut xs = Vec::new();
    for p in pages {
        for a in accounts {
            for r in &a.regions {
                xs.extend(value(
                    p,
                    REGION_SECONDS,
                    &[("account", a.name), ("region_id", r.as_str())],
                ));
            }
        }
    }
    median(xs)
}

/// Log lines naming `account` at warn or error.
fn warnings_about<'a>(stderr: &'a str, account: &str) -> Vec<&'a str> {
    let named = format!("account={account}");
    stderr
        .lines()
        .filter(|l| l.split(' ').any(|w| w == named))
        .filter(|l| l.contains("level=warn") || l.contains("level=error"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_whose_sts_hangs_is_down_alone_and_comes_up_by_itself() {
    let alpha = role(
        "alpha",
        &["cn-hangzhou", "cn-shanghai"],
        Duration::from_secs(3600),
    )
    .await;
    let beta = keyed("beta", &["cn-beijing", "cn-hangzhou"]).await;
    let gamma = keyed("gamma", &["cn-shenzhen"]).await;
    let dir = TempDir::new("sts-hangs");

    // beta and gamma alone: their cycle time.
    let config = dir.write(
        "accounts.yml",
        &accounts_file(&[beta.entry(&dir), gamma.entry(&dir)]),
    );
    let e = exporter(&config, None, &[]);
    wait_ready(e.socket()).await;
    let alone = cycle_time(&next_cycles(e.socket(), 5).await);
    e.stop();

    // With alpha, whose STS takes calls and never answers.
    alpha
        .sts()
        .update_config(|c| c.sts_fault = Some(StsFault::Hang));
    let config = dir.write(
        "accounts.yml",
        &accounts_file(&[alpha.entry(&dir), beta.entry(&dir), gamma.entry(&dir)]),
    );
    let started = Instant::now();
    let e = exporter(&config, alpha.sts.as_ref(), &[]);
    wait_ready(e.socket()).await;
    let took = started.elapsed();
    // An STS call may take the whole request timeout (10 s): the exporter
    // does not wait that long to serve the others.
    assert!(took < Duration::from_secs(6), "ready after {took:?}");
    let page = parse_metrics(&scrape(e.socket()).await);
    assert_eq!(account_up(&page, &alpha), Some(0.0));
    assert_eq!(regions_up(&page, &alpha), vec![None, None], "not walked");
    for a in [&beta, &gamma] {
        assert_eq!(account_up(&page, a), Some(1.0), "{}", a.name);
        assert!(all_regions(&page, a, 1.0), "{}", a.name);
    }
    let with = cycle_time(&next_cycles(e.socket(), 5).await);
    eprintln!("cycle: {alone:.3} s without alpha, {with:.3} s with alpha down");
    assert!(
        with <= 2.0 * alone + 0.5,
        "{with} s with alpha down, {alone} s without"
    );
    assert!(alpha.sts().sts_requests() >= 1, "STS was asked");
    assert_eq!(alpha.calls(), 0, "no API call without credentials");

    // One line says why, once the STS call has given up.
    eventually(
        "the line saying alpha is down",
        Duration::from_secs(20),
        || {
            let err = e.stderr_so_far();
            async move { !warnings_about(&err, "alpha").is_empty() }
        },
    )
    .await;

    // The STS answers again: alpha joins by itself, no reload.
    alpha.sts().update_config(|c| c.sts_fault = None);
    let page = scrape_until(e.socket(), "alpha up by itself", |p| {
        account_up(p, &alpha) == Some(1.0) && all_regions(p, &alpha, 1.0)
    })
    .await;
    for a in [&beta, &gamma] {
        assert_eq!(account_up(&page, a), Some(1.0), "{}", a.name);
        assert!(all_regions(&page, a, 1.0), "{}", a.name);
    }
    assert!(alpha.calls() > 0);
    let stderr = e.stop();
    let lines = warnings_about(&stderr, "alpha");
    assert_eq!(lines.len(), 1, "one line about alpha: {stderr}");
    assert!(
        lines[0].contains("account down") && lines[0].contains("AssumeRole"),
        "{}",
        lines[0]
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("account up") && l.contains("account=alpha")),
        "{stderr}"
    );
    for a in [&beta, &gamma] {
        assert!(warnings_about(&stderr, a.name).is_empty(), "{stderr}");
    }
    assert!(!stderr.contains("secret-of-"), "no secret in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_the_good_accounts_and_names_the_bad_ones() {
    let alpha = role("alpha", &["cn-hangzhou"], Duration::from_secs(3600)).await;
    let beta = keyed("beta", &["cn-beijing"]).await;
    let gamma = keyed("gamma", &["cn-shenzhen", "cn-hangzhou"]).await;
    let delta = keyed("delta", &["cn-qingdao"]).await;
    let dir = TempDir::new("reload-down");
    let config = dir.write(
        "accounts.yml",
        &accounts_file(&[alpha.entry_as(&dir, "first"), beta.entry(&dir)]),
    );
    let e = exporter(&config, alpha.sts.as_ref(), &["--web.enable-lifecycle"]);
    wait_ready(e.socket()).await;
    let page = parse_metrics(&scrape(e.socket()).await);
    assert!(all_regions(&page, &alpha, 1.0) && all_regions(&page, &beta, 1.0));
    assert_eq!(value(&page, RELOAD_OK, &[]), Some(1.0));

    // alpha's entry changes while its STS refuses (it cannot be rebuilt),
    // gamma comes, and delta comes with a secret file that is not there.
    alpha.sts().update_config(|c| {
        c.sts_fault = Some(StsFault::Error {
            status: 403,
            code: "NoPermission".into(),
        })
    });
    let missing = format!(
        "  - name: delta\n    endpoint: \"{}\"\n    credentials: {{type: access_key, access_key_id: LTAI-delta, access_key_secret_file: delta.secret}}\n",
        delta.sim.url()
    );
    dir.write(
        "accounts.yml",
        &accounts_file(&[
            alpha.entry_as(&dir, "second"),
            beta.entry(&dir),
            gamma.entry(&dir),
            missing,
        ]),
    );
    let _ = std::fs::remove_file(dir.path().join("delta.secret"));
    let alpha_before = total(
        &parse_metrics(&scrape(e.socket()).await),
        API_REQUESTS,
        &alpha,
        &[],
    );
    let (status, body) = post_reload(&e.addr).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("\"alpha\"") && body.contains("\"delta\""),
        "names the bad ones: {body}"
    );
    assert!(
        body.contains("NoPermission") && body.contains("delta.secret"),
        "says why: {body}"
    );
    assert!(
        !body.contains("\"beta\"") && !body.contains("\"gamma\""),
        "names only the bad ones: {body}"
    );
    let page = scrape_until(e.socket(), "gamma walked", |p| all_regions(p, &gamma, 1.0)).await;
    assert_eq!(value(&page, RELOAD_OK, &[]), Some(0.0));
    assert_eq!(account_up(&page, &gamma), Some(1.0));
    assert_eq!(account_up(&page, &delta), Some(0.0));
    assert_eq!(regions_up(&page, &delta), vec![None]);
    assert_eq!(delta.calls(), 0);
    // alpha's running account stays, its credentials still good: walked on.
    assert_eq!(account_up(&page, &alpha), Some(1.0));
    let page = next_cycles(e.socket(), 2).await.pop().expect("a page");
    assert!(all_regions(&page, &alpha, 1.0) && all_regions(&page, &beta, 1.0));
    assert!(total(&page, API_REQUESTS, &alpha, &[]) > alpha_before);

    // Fixed: the STS answers and delta's secret is there; a reload is 200.
    alpha.sts().update_config(|c| c.sts_fault = None);
    dir.write("delta.secret", "secret-of-delta\n");
    let (status, _) = post_reload(&e.addr).await;
    assert_eq!(status, 200);
    let page = scrape_until(e.socket(), "every account up", |p| {
        [&alpha, &beta, &gamma, &delta]
            .iter()
            .all(|a| account_up(p, a) == Some(1.0) && all_regions(p, a, 1.0))
            && value(p, RELOAD_OK, &[]) == Some(1.0)
    })
    .await;
    assert_eq!(count(&page, ACCOUNT_UP), 4);
    let stderr = e.stop();
    assert!(!stderr.contains("secret-of-"), "no secret in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_credentials_that_sts_refuses_to_renew_fail_their_account_at_once() {
    let refuse = StsFault::Error {
        status: 403,
        code: "NoPermission".into(),
    };
    credentials_run_out(refuse, "NoPermission", &[]).await;
}

/// A hanging STS: each refresh gives up after the request timeout (1 s
/// here, so that it gives up before the 4 s credentials run out, as a 10 s
/// timeout does before 15 minute ones do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_credentials_that_a_hanging_sts_cannot_renew_fail_their_account_at_once() {
    credentials_run_out(
        StsFault::Hang,
        "timed out",
        &["--aliyun.request-timeout", "1s"],
    )
    .await;
}

/// alpha's STS fails with `fault` mid-run: once its credentials run out,
/// its regions fail at once (the log saying `reason`), no call is retried,
/// STS is not stormed, and the other accounts' cycles do not change.
async fn credentials_run_out(fault: StsFault, reason: &str, extra: &[&str]) {
    // alpha's credentials live 4 s: renewed every 2 s while its STS works.
    let alpha = role(
        "alpha",
        &["cn-hangzhou", "cn-shanghai"],
        Duration::from_secs(4),
    )
    .await;
    let beta = keyed("beta", &["cn-beijing", "cn-hangzhou"]).await;
    let gamma = keyed("gamma", &["cn-shenzhen"]).await;
    let dir = TempDir::new("expiring");
    let config = dir.write(
        "accounts.yml",
        &accounts_file(&[alpha.entry(&dir), beta.entry(&dir), gamma.entry(&dir)]),
    );
    let e = exporter(&config, alpha.sts.as_ref(), extra);
    wait_ready(e.socket()).await;
    let before = next_cycles(e.socket(), 5).await;
    for a in [&alpha, &beta, &gamma] {
        assert!(before.iter().all(|p| all_regions(p, a, 1.0)), "{}", a.name);
    }
    let slowest = before
        .iter()
        .filter_map(|p| value(p, CYCLE_SECONDS, &[]))
        .fold(0.0, f64::max);
    let others = region_time(&before, &[&beta, &gamma]);

    // STS fails, and the credentials in hand run out within 4 s. Every
    // cycle meanwhile takes the time it took before: nothing waits on the
    // failing STS.
    alpha.sts().update_config(|c| c.sts_fault = Some(fault));
    let refused = Instant::now();
    let sts0 = alpha.sts().sts_requests();
    let through = next_cycles(e.socket(), 8).await;
    let took = refused.elapsed();
    let sts = alpha.sts().sts_requests() - sts0;
    let times: Vec<f64> = through
        .iter()
        .filter_map(|p| value(p, CYCLE_SECONDS, &[]))
        .collect();
    eprintln!(
        "cycles {times:?} after the refusal ({slowest:.3} s at most before); {sts} STS calls in {took:?}"
    );
    for (p, t) in through.iter().zip(&times) {
        assert!(*t <= 2.0 * slowest + 0.5, "a cycle of {t} s: {times:?}");
        for a in [&beta, &gamma] {
            assert!(all_regions(p, a, 1.0), "{}", a.name);
        }
    }
    assert!(took < Duration::from_secs(13), "8 cycles in {took:?}");
    // The refresh backs off (1 s, doubling); a call that finds the
    // credentials expired asks once more at most.
    assert!(sts <= 8, "{sts} STS calls in {took:?}");
    let down = through.last().expect("a page");
    assert_eq!(account_up(down, &alpha), Some(0.0));
    assert!(all_regions(down, &alpha, 0.0));

    // Down: alpha's regions fail at once with CredentialsUnavailable, no
    // call goes out, nothing is retried, and the others go on as before.
    let (calls0, sts0) = (alpha.calls(), alpha.sts().sts_requests());
    let retries0 = total(down, API_RETRIES, &alpha, &[]);
    let unavailable = [("code", "CredentialsUnavailable")];
    let failed0 = total(down, API_REQUESTS, &alpha, &unavailable);
    assert!(failed0 >= 1.0);
    let watch = Instant::now();
    let after = next_cycles(e.socket(), 4).await;
    let watched = watch.elapsed();
    for p in &after {
        assert_eq!(account_up(p, &alpha), Some(0.0));
        assert!(all_regions(p, &alpha, 0.0));
        for a in [&beta, &gamma] {
            assert!(all_regions(p, a, 1.0), "{}", a.name);
        }
    }
    let last = after.last().expect("a page");
    let alpha_regions = region_time(&after, &[&alpha]);
    assert!(
        alpha_regions < 0.5,
        "alpha's regions fail in {alpha_regions} s"
    );
    let others_after = region_time(&after, &[&beta, &gamma]);
    assert!(
        others_after <= 2.0 * others + 0.5,
        "{others_after} s, {others} s before"
    );
    assert_eq!(alpha.calls(), calls0, "no API call without credentials");
    assert_eq!(alpha.sim.expired_refusals(), 0, "none with expired ones");
    assert_eq!(
        total(last, API_RETRIES, &alpha, &[]),
        retries0,
        "not retried"
    );
    // Each cycle: DescribeRegions and the first calls of each region.
    let failed = total(last, API_REQUESTS, &alpha, &unavailable) - failed0;
    assert!((1.0..=4.0 * 8.0).contains(&failed), "{failed} calls failed");
    let sts = alpha.sts().sts_requests() - sts0;
    assert!(sts <= 4, "{sts} STS calls in {watched:?}");

    // STS answers again: alpha comes back by itself.
    alpha.sts().update_config(|c| c.sts_fault = None);
    scrape_until(e.socket(), "alpha back", |p| {
        account_up(p, &alpha) == Some(1.0) && all_regions(p, &alpha, 1.0)
    })
    .await;
    let stderr = e.stop();
    let failing: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("CredentialsUnavailable"))
        .collect();
    assert!(
        failing
            .iter()
            .any(|l| l.contains("the last refresh failed") && l.contains(reason)),
        "the region's line says why: {failing:#?}"
    );
    for s in alpha.sts().issued_secrets() {
        assert!(!stderr.contains(&s), "a secret in the logs");
    }
}

/// The exporter's own series are gathered at each scrape: the API counters
/// move while a slow first cycle runs and the rendered page stays the same;
/// a gzip scrape (one gzip member, read by a decoder of single members)
/// and a plain one are the same page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_series_are_as_of_the_scrape_gzip_or_not() {
    let sim = Simulator::start(fleet(&[("cn-hangzhou", 300)]))
        .await
        .expect("simulator");
    sim.update_faults(|f| f.latency = Duration::from_millis(250));
    let running = start_exporter(
        &sim,
        &[
            "--collect.interval",
            "1h",
            "--collect.plugins",
            "ecs-tool-monitor",
            "--collect.plugin-discovery-interval",
            "0",
            "--collect.instance-info-interval",
            "0",
            "--collect.managed-instances=false",
        ],
        Clock::System,
    )
    .await;
    let pages = running.collector.page();
    let calls = |p: &[Sample]| -> f64 {
        p.iter()
            .filter(|s| s.name == API_REQUESTS)
            .map(|s| s.value)
            .sum()
    };
    let rendered = pages.load_full();
    let first = scrape_until(running.addr, "a first API call", |p| calls(p) >= 1.0).await;
    let second = scrape_until(running.addr, "more API calls", |p| calls(p) > calls(&first)).await;
    assert!(
        std::sync::Arc::ptr_eq(&rendered, &pages.load_full()),
        "no page was rendered between the scrapes"
    );
    assert_eq!(
        value(&second, CYCLES, &[]),
        Some(0.0),
        "the cycle still runs"
    );
    assert_eq!(count(&second, REGION_UP), 0);
    wait_ready(running.addr).await;

    // Idle now (the next cycle is an hour away): gzip and plain agree.
    let client = reqwest::Client::new();
    let get = |gzip: bool| {
        let mut req = client.get(format!("http://{}/metrics", running.addr));
        if gzip {
            req = req.header("accept-encoding", "gzip");
        }
        async move {
            let r = req.send().await.expect("scrape");
            assert_eq!(r.status(), 200);
            let encoding = r.headers().get("content-encoding").cloned();
            let length: usize = r.headers()["content-length"]
                .to_str()
                .ok()
                .and_then(|l| l.parse().ok())
                .expect("content-length");
            let body = r.bytes().await.expect("body");
            assert_eq!(body.len(), length);
            (encoding, body)
        }
    };
    let (encoding, gz) = get(true).await;
    assert_eq!(encoding.as_ref().map(|v| v.as_bytes()), Some(&b"gzip"[..]));
    let mut decoder = flate2::bufread::GzDecoder::new(&gz[..]);
    let mut unzipped = String::new();
    std::io::Read::read_to_string(&mut decoder, &mut unzipped).expect("one valid gzip member");
    assert!(decoder.into_inner().is_empty(), "nothing after the member");
    let (encoding, plain) = get(false).await;
    assert!(encoding.is_none());
    let plain = String::from_utf8(plain.to_vec()).expect("utf-8");
    // Only the process' own figures and the connections open move between
    // two scrapes of an idle exporter.
    assert_eq!(idle_lines(&unzipped), idle_lines(&plain));
    assert!(unzipped.contains("aliyun_cloud_assistant_agent_up{"));
    assert!(unzipped.contains("process_cpu_seconds_total "));
    let page = parse_metrics(&plain);
    assert_eq!(
        value(&page, REGION_UP, &[("region_id", "cn-hangzhou")]),
        Some(1.0)
    );
    assert!(calls(&page) > calls(&second));
    promtool_check(&plain);
    running.shutdown().await;
}
