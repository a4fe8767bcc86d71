//! Cycles on a pinned clock, comparing pages, a trap port (where nothing may
//! arrive), a TLS front for the plain simulator, and capturing log lines.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::collector::Collector;
use cloud_assistant_exporter::simulator::{FleetConfig, Simulator};

use super::*;

/// The simulator on 127.0.0.1:0 with its fleet's heartbeats on `clock`.
pub async fn sim_on(cfg: FleetConfig, clock: &Clock) -> Simulator {
    Simulator::start_with(cfg, clock.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .expect("sim")
}

/// A label set from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every series of `name`: its labels and its value.
pub fn series(samples: &[Sample], name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| (s.labels.clone(), s.value))
        .collect()
}

/// Runs `n` cycles of `c`, with a pause after each for the walks that
/// run beside the cycle (they are taken in by the next one), and returns
/// the page.
pub async fn run_cycles(c: &Collector, n: usize) -> Vec<Sample> {
    for _ in 0..n {
        c.run_cycle().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    page_samples(c)
}

/// Runs cycles of `c` until `check` holds on its page (100 at most, else
/// panics naming `what`); returns the page.
pub async fn cycle_until(
    c: &Collector,
    what: &str,
    check: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    for _ in 0..100 {
        let page = run_cycles(c, 1).await;
        if check(&page) {
            return page;
        }
    }
    panic!("not within 100 cycles: {what}");
}

/// The page less what differs between two runs of the same walks: time
/// taken, process metrics, and the calls of `actions`.
pub fn steady(samples: &[Sample], actions: &[&str]) -> Vec<Sample> {
    const TIMED: &[&str] = &[
        "aliyun_cloud_assistant_exporter_api_request_duration_seconds",
        "aliyun_cloud_assistant_exporter_collection_duration_seconds",
        "aliyun_cloud_assistant_exporter_cycle_duration_seconds",
        "aliyun_cloud_assistant_exporter_region_walks_total",
        "process_",
    ];
    samples
        .iter()
        .filter(|s| !TIMED.iter().any(|t| s.name.starts_with(t)))
        .filter(|s| {
            s.labels
                .get("action")
                .is_none_or(|a| !actions.contains(&a.as_str()))
        })
        .cloned()
        .collect()
}

/// Requests the simulator answered for `action` in `region`.
pub fn requests_in(sim: &Simulator, action: &str, region: &str) -> u64 {
    sim.requests_by_region()
        .get(&(action.to_string(), region.to_string()))
        .copied()
        .unwrap_or(0)
}

/// Asserts that `got` and `want` hold the same items, naming up to three
/// missing and three unexpected ones.
pub fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) {
    let missing: Vec<&T> = want.iter().filter(|x| !got.contains(x)).take(3).collect();
    let unexpected: Vec<&T> = got.iter().filter(|x| !want.contains(x)).take(3).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty() && got.len() == want.len(),
        "{what}: missing {missing:#?}, unexpected {unexpected:#?} ({} vs {} items)",
        got.len(),
        want.len()
    );
}

/// A port of its own that counts the connections made to it and keeps the
/// first line each one sends (a request line, a proxy's `CONNECT`): where
/// a redirect points, where a proxy stands, where nothing may ever arrive.
/// It answers nothing.
pub struct Trap {
    pub url: String,
    hits: Arc<std::sync::atomic::AtomicUsize>,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Trap {
    pub async fn start() -> Trap {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (counter, kept) = (Arc::clone(&hits), Arc::clone(&lines));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 512];
                    let read = async {
                        while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 4096 {
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.lines().next().unwrap_or("").to_string();
                    if let Ok(mut l) = kept.lock() {
                        l.push(line);
                    }
                });
            }
        });
        Trap { url, hits, lines }
    }

    /// Connections made so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The first line of each connection so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// A TLS front on 127.0.0.1:0 that passes every connection on to `target`
/// as it is (the simulator speaks plain HTTP), so a client can reach it
/// over https: its URL, and the PEM of its self-signed certificate for the
/// client to trust (`SSL_CERT_FILE`).
pub async fn tls_front(target: std::net::SocketAddr) -> (String, String) {
    use tokio_rustls::rustls::{self, pki_types};
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let key = pki_types::PrivateKeyDer::Pkcs8(c.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![c.cert.der().clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let (Ok(mut tls), Ok(mut plain)) = (
                    acceptor.accept(conn).await,
                    tokio::net::TcpStream::connect(target).await,
                ) else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (url, c.cert.pem())
}

/// The log lines of this thread, captured while the guard lives (a
/// current-thread runtime runs the collector's tasks on the test's thread).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn start() -> (LogCapture, tracing::subscriber::DefaultGuard) {
        let capture = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (capture, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A port that accepts connections and never answers on them, nor closes
/// them: an endpoint that hangs.
pub struct Hang {
    pub url: String,
    hits: Arc<std::sync::atomic::AtomicUsize>,
}

impl Hang {
    pub async fn start() -> Hang {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(conn);
            }
        });
        Hang { url, hits }
    }

    /// Connections made so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A port whose connections never complete: it listens with a backlog of
/// one, never accepts, and its one place is taken at the start, so the
/// system drops every later SYN and a client's connect waits until its
/// own timeout (an endpoint behind a firewall that drops packets).
pub struct NoConnect {
    pub url: String,
    _listener: tokio::net::TcpListener,
    _held: tokio::net::TcpStream,
}

impl NoConnect {
    pub async fn start() -> NoConnect {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let listener = socket.listen(0).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let held = tokio::net::TcpStream::connect(addr)
            .await
            .expect("the one connection the backlog takes");
        // The backlog is full now: a further connect does not complete.
        let probe = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr),
        )
        .await;
        assert!(probe.is_err(), "a connect did not hang: {probe:?}");
        NoConnect {
            url: format!("http://{addr}"),
            _listener: listener,
            _held: held,
        }
    }
}
