//! Limits that hold whatever a client does (docs/operating.md, "When
//! clients misbehave"): clients that
//! stop reading, too many scrapes at once, scrapes without gzip, reload
//! storms, and SIGTERM during a slow reload. The server in process runs
//! with short timeouts; the binary with its defaults.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloud_assistant_exporter::render::Page;
use cloud_assistant_exporter::server::{
    ReloadFuture, ReloadHook, ReloadPart, ReloadReport, ServerOptions,
};
use cloud_assistant_exporter::simulator::{self, Simulator};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// These tests read this process's memory and threads: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A page of `mib` MiB that gzip cannot shrink, so it is as large on the
/// wire as it is in memory.
fn big_page(mib: usize, seed: u64) -> Page {
    let mut x = seed | 1;
    let plain: Vec<u8> = (0..mib << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    Page::from_text(&plain).expect("page")
}

/// A client that sends `GET /metrics` and never reads. Its receive window
/// is small, so the server's writes block after a few KiB.
async fn stuck_client(addr: SocketAddr, gzip: bool) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("receive buffer");
    let mut s = sock.connect(addr).await.expect("connect");
    let accept = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{accept}\r\n").as_bytes())
        .await
        .expect("request");
    s
}

/// Whether the server closes `s` within `within`: whatever it had sent is
/// read, then the stream ends (or is reset).
async fn closed_by_server(mut s: TcpStream, within: Duration) -> bool {
    let mut buf = vec![0u8; 1 << 16];
    tokio::time::timeout(within, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
    .await
    .is_ok()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// One scrape: its status, how long the whole answer took, and the body.
async fn scrape_once(addr: SocketAddr, gzip: bool) -> (u16, Duration, Bytes) {
    let t0 = Instant::now();
    let mut req = http().get(format!("http://{addr}/metrics"));
    if gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let r = req.send().await.expect("scrape");
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("body");
    (status, t0.elapsed(), body)
}

/// Threads of this process named `name`, with their niceness.
fn threads_named(name: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start at 3.
        if let Some(nice) = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split(' ').nth(16))
            .and_then(|n| n.parse().ok())
        {
            out.push(nice);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_are_dropped_and_their_page_freed() {
    let _one = ONE_AT_A_TIME.lock().await;
    let opts = ServerOptions {
        max_connections: 128,
        header_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(1),
        send_timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(1),
        ..ServerOptions::default()
    };
    let metrics = opts.metrics.clone();
    let server = page_server(opts, big_page(8, 1)).await;
    let next_page = Arc::new(big_page(8, 2));
    // Warm up, so what follows measures the clients, not first allocations.
    for gzip in [true, false] {
        assert_eq!(scrape_once(server.addr, gzip).await.0, 200);
    }
    let before = rss_kib("self");
    let old_page = Arc::downgrade(&server.page.load_full());

    let mut stuck = Vec::new();
    for i in 0..300 {
        stuck.push(stuck_client(server.addr, i % 2 == 0).await);
    }
    // Past the moment their scrapes stop counting (a tenth of the stall
    // timeout without a byte read).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, took, body) = scrape_once(server.addr, true).await;
    assert_eq!(status, 200);
    let mut plain = Vec::new();
    std::io::copy(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain).expect("gunzip");
    assert_eq!(
        plain,
        server.page.load().plain().expect("page"),
        "the whole page"
    );
    assert!(took < Duration::from_secs(1), "a scrape took {took:?}");
    let during = rss_kib("self");

    // A new page comes: the old one goes once the clients holding it are
    // dropped.
    server.page.store(next_page);
    eventually("the old page is freed", Duration::from_secs(10), || async {
        old_page.upgrade().is_none()
    })
    .await;
    let mut closed = tokio::task::JoinSet::new();
    for s in stuck {
        closed.spawn(closed_by_server(s, Duration::from_secs(10)));
    }
    while let Some(c) = closed.join_next().await {
        assert!(
            c.expect("task"),
            "a client that stopped reading kept its connection"
        );
    }
    let after = rss_kib("self");
    let stalled = metrics.dropped.with_label_values(&["stalled"]).get();
    let evicted = metrics.dropped.with_label_values(&["evicted"]).get();
    assert!(stalled > 0, "stalled {stalled}");
    assert!(evicted > 0, "evicted {evicted}: 300 clients, a cap of 128");
    // Each client pins at most its share of a page: no copies per client
    // (300 copies of the 8 MiB page would be 2.4 GiB). With TCP_NODELAY the
    // first writes of each connection go out at once and more of them are
    // in flight per client (about 30 MiB in all for the 300 here, the
    // allocator keeping some after they go).
    for (when, rss) in [("during", during), ("after", after)] {
        assert!(
            rss.saturating_sub(before) < 40 << 10,
            "RSS {when} the clients grew from {before} KiB to {rss} KiB"
        );
    }
    let _ = server.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_requests_scrapes_are_sent_at_once_and_the_next_gets_503_at_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let opts = ServerOptions {
        max_requests: 3,
        stall_timeout: Duration::from_secs(10),
        send_timeout: Duration::from_secs(30),
        ..ServerOptions::default()
    };
    let metrics = opts.metrics.clone();
    let server = page_server(opts, big_page(8, 3)).await;
    let mut stuck = Vec::new();
    for _ in 0..3 {
        stuck.push(stuck_client(server.addr, true).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    let r = http()
        .get(format!("http://{}/metrics", server.addr))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), 503);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(r.headers()["retry-after"], "1");
    let why = r.text().await.expect("body");
    assert!(why.contains("--web.max-requests 3"), "{why}");
    assert_eq!(
        metrics.refused.with_label_values(&["max_requests"]).get(),
        1
    );

    // Clients that read nothing stop counting after a second (a tenth of
    // the stall timeout), long before they are dropped.
    eventually(
        "a scrape gets through the stuck ones",
        Duration::from_secs(5),
        || async { scrape_once(server.addr, true).await.0 == 200 },
    )
    .await;
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(metrics.dropped.with_label_values(&["stalled"]).get(), 0);
    drop(stuck);
    let _ = server.stop.send(true);

    // 0: no limit.
    let server = page_server(
        ServerOptions {
            max_requests: 0,
            ..ServerOptions::default()
        },
        big_page(8, 3),
    )
    .await;
    let mut stuck = Vec::new();
    for _ in 0..5 {
        stuck.push(stuck_client(server.addr, true).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(scrape_once(server.addr, true).await.0, 200);
    drop(stuck);
    let _ = server.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_without_gzip_run_two_at_a_time_and_the_rest_wait_a_bounded_time() {
    let _one = ONE_AT_A_TIME.lock().await;
    let opts = ServerOptions {
        plain_wait: Duration::from_millis(500),
        stall_timeout: Duration::from_secs(20),
        send_timeout: Duration::from_secs(30),
        ..ServerOptions::default()
    };
    let metrics = opts.metrics.clone();
    let page = big_page(8, 4);
    let plain = page.plain().expect("gunzip");
    let server = page_server(opts, page).await;
    let mut first_two = Vec::new();
    for _ in 0..2 {
        first_two.push(stuck_client(server.addr, false).await);
    }
    eventually("two inflate threads", Duration::from_secs(5), || async {
        threads_named("inflate").len() == 2
    })
    .await;
    // Each inflates at the background priority, below the collection.
    assert_eq!(threads_named("inflate"), vec![10, 10]);

    // A third waits its bounded time, then gets 503 naming the way out.
    let t0 = Instant::now();
    let r = http()
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .expect("scrape");
    let waited = t0.elapsed();
    assert_eq!(r.status(), 503);
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(r.text().await.expect("body").contains("gzip"));
    assert_eq!(
        metrics.refused.with_label_values(&["plain_scrapes"]).get(),
        1
    );

    // A loop of them never gets more than two inflating; gzip scrapes
    // meanwhile are not held up.
    let mut more = Vec::new();
    for _ in 0..10 {
        more.push(stuck_client(server.addr, false).await);
    }
    let (status, took, _) = scrape_once(server.addr, true).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(threads_named("inflate").len(), 2);
    eventually(
        "the ten waiting ones are refused",
        Duration::from_secs(5),
        || async { metrics.refused.with_label_values(&["plain_scrapes"]).get() == 11 },
    )
    .await;

    // A client that hangs up frees its slot: the next one gets the whole
    // plain page.
    drop(first_two.pop());
    let (status, _, body) = scrape_once(server.addr, false).await;
    assert_eq!(status, 200);
    assert!(body == plain, "the inflated page differs");
    drop((first_two, more));
    eventually(
        "no inflate thread is left",
        Duration::from_secs(5),
        || async { threads_named("inflate").is_empty() },
    )
    .await;
    let _ = server.stop.send(true);
}

/// A reload hook that takes a while and counts its runs and overlaps.
#[derive(Default)]
struct SlowHook {
    runs: AtomicUsize,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl SlowHook {
    fn hook(self: &Arc<Self>) -> ReloadHook {
        let me = Arc::clone(self);
        ReloadHook(Arc::new(move || -> ReloadFuture {
            let me = Arc::clone(&me);
            Box::pin(async move {
                me.runs.fetch_add(1, Ordering::SeqCst);
                let now = me.now.fetch_add(1, Ordering::SeqCst) + 1;
                me.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                me.now.fetch_sub(1, Ordering::SeqCst);
                let mut report = ReloadReport::default();
                report.part::<std::io::Error>(ReloadPart::Accounts, Ok(()));
                report
            })
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_reloads_runs_one_at_a_time_and_answers_every_caller() {
    let slow = Arc::new(SlowHook::default());
    let (addr, stop, _task) = tiny_server(ServerOptions {
        enable_lifecycle: true,
        reload_hook: Some(slow.hook()),
        ..ServerOptions::default()
    })
    .await;
    let client = http();
    let mut storm = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let c = client.clone();
        storm.spawn(async move {
            let r = c
                .post(format!("http://{addr}/-/reload"))
                .send()
                .await
                .expect("reload");
            (r.status().as_u16(), r.text().await.expect("body"))
        });
    }
    while let Some(answer) = storm.join_next().await {
        let (status, body) = answer.expect("task");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, "accounts reloaded\n");
    }
    let runs = slow.runs.load(Ordering::SeqCst);
    assert!((1..=3).contains(&runs), "50 requests, {runs} reloads");
    assert_eq!(slow.most.load(Ordering::SeqCst), 1, "reloads overlapped");
    let _ = stop.send(true);

    // Without --web.enable-lifecycle: 403 and a line that says why.
    let (addr, stop, _task) = tiny_server(ServerOptions {
        reload_hook: Some(slow.hook()),
        ..ServerOptions::default()
    })
    .await;
    let r = client
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .expect("reload");
    assert_eq!(r.status(), 403);
    let why = r.text().await.expect("body");
    assert_eq!(why.lines().count(), 1);
    assert!(why.contains("--web.enable-lifecycle"), "{why}");
    assert_eq!(slow.runs.load(Ordering::SeqCst), runs, "no reload ran");
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_a_scrape_through_300_clients_that_stop_reading() {
    let e = ExporterProcess::spawn(&["--demo"], &[]);
    wait_ready(e.socket()).await;
    for gzip in [true, false] {
        assert_eq!(scrape_once(e.socket(), gzip).await.0, 200);
    }
    let pid = e.child.id().to_string();
    let before = rss_kib(&pid);
    let mut stuck = Vec::new();
    for i in 0..300 {
        stuck.push(stuck_client(e.socket(), i % 2 == 0).await);
    }
    for gzip in [true, false] {
        let (status, took, _) = scrape_once(e.socket(), gzip).await;
        assert_eq!(status, 200, "gzip {gzip}");
        assert!(took < Duration::from_secs(1), "gzip {gzip}: {took:?}");
    }
    let during = rss_kib(&pid);
    assert!(
        during.saturating_sub(before) < 32 << 10,
        "RSS grew from {before} KiB to {during} KiB"
    );
    let page = scrape_once(e.socket(), false).await.2;
    let page = String::from_utf8_lossy(&page);
    let open = value(
        &parse_metrics(&page),
        "aliyun_cloud_assistant_exporter_http_connections",
        &[],
    );
    assert!(open.is_some(), "the connection gauge is on the page");
    drop(stuck);
    e.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_reload_stops_the_process() {
    let sim = Simulator::start(fleet(&[("cn-hangzhou", 3)]))
        .await
        .expect("simulator");
    let dir = TempDir::new("slow-reload");
    dir.write("key.secret", simulator::DEFAULT_KEY_SECRET);
    let account = |credentials: &str| {
        format!(
            "accounts:\n  - name: a\n    endpoint: \"{}\"\n    credentials: {credentials}\n",
            sim.url()
        )
    };
    let key = format!(
        "{{type: access_key, access_key_id: {}, access_key_secret_file: key.secret}}",
        simulator::DEFAULT_KEY_ID
    );
    let config = dir.write("accounts.yml", &account(&key));
    // An STS that takes connections and never answers: a reload that
    // assumes a role through it waits for the request timeout (5 minutes).
    let hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let sts = format!("http://{}", hole.local_addr().expect("addr"));
    let e = ExporterProcess::spawn(
        &[
            "--config.file",
            &config,
            "--aliyun.sts-endpoint",
            &sts,
            "--aliyun.request-timeout",
            "5m",
        ],
        &[],
    );
    wait_ready(e.socket()).await;
    dir.write(
        "accounts.yml",
        &account(&format!(
            "{{type: ram_role_arn, role_arn: \"acs:ram::1234567890123456:role/reader\", source: {key}}}"
        )),
    );
    e.signal("-HUP");
    eventually("the reload starts", Duration::from_secs(10), || async {
        e.stderr_so_far().contains("SIGHUP: reloading")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Still serving while the reload waits.
    assert_eq!(scrape_once(e.socket(), true).await.0, 200);
    let mut e = e;
    e.signal("-TERM");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = e.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "still running 10s after SIGTERM, during a reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    let log = e.stderr_so_far();
    assert!(
        !log.contains("accounts reloaded"),
        "the reload was still waiting: {log}"
    );
}
