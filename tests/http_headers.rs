//! Arbitrary bytes in the `Authorization` and `Accept-Encoding` headers of
//! a running exporter with basic auth, sent over a raw socket (no client
//! library tidies them up first): every request gets an answer, never a
//! panic, never a 5xx but the documented 503s; a wrong `Authorization` is
//! 401 with the challenge; any `Accept-Encoding` with the right password
//! gets the page, gzip only when the header asks for it.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use cloud_assistant_exporter::app::Running;
use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::simulator::Simulator;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse";
const CHALLENGE: &str = "Basic realm=\"cloud-assistant-exporter\"";

/// Panics on the exporter's threads (its runtime, bcrypt, render) since the
/// process started: none may ever happen.
static EXPORTER_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn watch_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            let exporter = ["", "tokio-runtime-worker", "bcrypt", "render"].contains(&name);
            if exporter && let Ok(mut p) = EXPORTER_PANICS.lock() {
                p.push(format!("{name}: {info}"));
            }
            previous(info);
        }));
    });
}

/// An exporter behind basic auth, on a runtime of its own, ready.
struct Fixture {
    rt: tokio::runtime::Runtime,
    running: Option<Running>,
    _sim: Simulator,
    _dir: TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        watch_panics();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = TempDir::new("http-headers");
        // Cost 4: the lowest, so many wrong passwords stay quick.
        let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
        let web = dir.write("web.yml", &format!("basic_auth_users:\n  {USER}: {hash}\n"));
        let (sim, running) = rt.block_on(async {
            let sim = Simulator::start(fleet(&[("cn-hangzhou", 5)]))
                .await
                .expect("sim");
            let running = start_exporter(
                &sim,
                &["--web.config.file", &web, "--collect.interval", "1h"],
                Clock::System,
            )
            .await;
            let ready = running.collector.ready();
            eventually("first cycle", Duration::from_secs(15), || {
                let ready = std::sync::Arc::clone(&ready);
                async move { ready.load(std::sync::atomic::Ordering::Acquire) }
            })
            .await;
            (sim, running)
        });
        Fixture {
            rt,
            running: Some(running),
            _sim: sim,
            _dir: dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.running.as_ref().expect("running").addr
    }

    /// Runs `cases` of `strategy` through `check`, then asserts that the
    /// exporter never panicked.
    fn run<S: Strategy>(
        &self,
        cases: u32,
        strategy: S,
        check: impl Fn(&Self, S::Value) -> Result<(), TestCaseError>,
    ) where
        S::Value: std::fmt::Debug,
    {
        let mut runner = TestRunner::new(proptest_config(cases));
        if let Err(e) = runner.run(&strategy, |v| check(self, v)) {
            panic!("{e}");
        }
        let panics = EXPORTER_PANICS
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        assert!(panics.is_empty(), "the exporter panicked: {panics:#?}");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown());
        }
    }
}

fn right_authorization() -> String {
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    format!("Basic {creds}")
}

/// An answer as it came off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// A 503 the docs name (too many scrapes or password checks at once),
    /// which tells the client to come back.
    fn documented_503(&self) -> bool {
        self.status == 503 && self.header("retry-after").is_some()
    }

    /// The page, gunzipped if it came compressed.
    fn page(&self) -> String {
        let bytes = if self.header("content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut out)
                .expect("gunzip");
            out
        } else {
            self.body.clone()
        };
        String::from_utf8(bytes).expect("utf8")
    }
}

/// `GET /metrics` with `headers` (each a raw `Name: value` line, whatever
/// its bytes) on a connection of its own; `None` if the server closed it
/// without an answer.
fn get_metrics(f: &Fixture, headers: &[&[u8]]) -> Option<Answer> {
    let mut req = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\nConnection: close\r\n".to_vec();
    for h in headers {
        req.extend_from_slice(h);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    let addr = f.addr();
    let raw = f.rt.block_on(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        // The server may answer and close before it has read everything.
        let _ = s.write_all(&req).await;
        let mut raw = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw)).await;
        assert!(read.is_ok(), "no answer within 20 s");
        raw
    });
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut answer = Answer {
        status,
        head,
        body: raw[end + 4..].to_vec(),
    };
    if let Some(n) = answer.header("content-length").and_then(|n| n.parse().ok()) {
        answer.body.truncate(n);
    }
    Some(answer)
}

fn header(name: &str, value: &[u8]) -> Vec<u8> {
    let mut h = format!("{name}: ").into_bytes();
    h.extend_from_slice(value);
    h
}

/// Bytes a server takes as one header value (RFC 9110 field-value: tab,
/// visible ASCII and space, obs-text), so the request is well formed.
fn one_field_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// The exporter still serves the page to the right password.
fn still_serving(f: &Fixture) -> Result<(), TestCaseError> {
    let right = header("Authorization", right_authorization().as_bytes());
    let a = get_metrics(f, &[&right, b"Accept-Encoding: gzip"]);
    let a = a.ok_or_else(|| TestCaseError::fail("no answer to the right password"))?;
    prop_assert_eq!(a.status, 200, "{:?}", a.head);
    prop_assert!(a.page().contains("aliyun_cloud_assistant_agent_up"));
    Ok(())
}

/// What a client may send as `Authorization`: any bytes, any scheme, and
/// Basic with garbage, a wrong password, no colon or an unknown user.
fn authorization() -> impl Strategy<Value = Vec<u8>> {
    let b64 = |raw: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(raw);
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(any::<u8>(), 0..120).prop_map(move |raw| format!(
            "Basic {}",
            b64(raw)
        )
        .into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..60).prop_map(move |pw| {
            let mut raw = format!("{USER}:").into_bytes();
            raw.extend(pw);
            format!("Basic {}", b64(raw)).into_bytes()
        }),
        ("[a-zA-Z]{0,8}", "[ \t]{0,3}", "[A-Za-z0-9+/=:. -]{0,80}")
            .prop_map(|(scheme, gap, rest)| format!("{scheme}{gap}{rest}").into_bytes()),
        Just(format!("basic {}", b64(format!("{USER}:{PASSWORD} ").into_bytes())).into_bytes()),
        Just(format!("Basic {}", b64(format!("{USER}{PASSWORD}").into_bytes())).into_bytes()),
        Just(
            format!(
                "Basic {}",
                b64(format!("Prometheus:{PASSWORD}").into_bytes())
            )
            .into_bytes()
        ),
    ]
}

#[test]
fn any_authorization_header_is_answered_and_a_wrong_one_is_401() {
    let f = Fixture::start();
    let right = right_authorization().into_bytes();
    f.run(512, authorization(), |f, value| {
        let h = header("Authorization", &value);
        let a = get_metrics(f, &[&h, b"Accept-Encoding: gzip"])
            .ok_or_else(|| TestCaseError::fail("the connection closed without an answer"))?;
        prop_assert!(
            a.status < 500 || a.documented_503(),
            "{} for {:?}",
            a.head,
            String::from_utf8_lossy(&value)
        );
        if one_field_value(&value) && value.trim_ascii() != right.as_slice() {
            prop_assert_eq!(a.status, 401, "{:?}", String::from_utf8_lossy(&value));
            prop_assert_eq!(a.header("www-authenticate"), Some(CHALLENGE));
            prop_assert!(!a.page().contains("aliyun_cloud_assistant"), "no page");
        } else if a.status == 200 {
            // Only the right password, however the bytes around it split.
            prop_assert!(
                value.windows(right.len()).any(|w| w == right.as_slice()),
                "{:?}",
                String::from_utf8_lossy(&value)
            );
        } else {
            prop_assert!([400, 401].contains(&a.status), "{}", a.head);
        }
        still_serving(f)
    });
}

/// What a client may send as `Accept-Encoding`: any bytes, and lists of
/// codings with odd case, spaces and q-values.
fn accept_encoding() -> impl Strategy<Value = Vec<u8>> {
    let coding = prop_oneof![
        Just("gzip"),
        Just("GZip"),
        Just("x-gzip"),
        Just("deflate"),
        Just("br"),
        Just("identity"),
        Just("*"),
        Just(""),
    ];
    let q = prop_oneof![
        Just(String::new()),
        "[0-9.]{0,5}".prop_map(|q| format!(";q={q}")),
        "[ -~]{0,12}".prop_map(|junk| format!(";{junk}")),
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec((coding, q, "[ \t]{0,2}"), 0..5).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(c, q, ws)| format!("{ws}{c}{q}"))
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes()
        }),
    ]
}

#[test]
fn any_accept_encoding_with_the_right_password_gets_the_page() {
    let f = Fixture::start();
    let right = header("Authorization", right_authorization().as_bytes());
    f.run(512, accept_encoding(), |f, value| {
        let h = header("Accept-Encoding", &value);
        let a = get_metrics(f, &[&right, &h])
            .ok_or_else(|| TestCaseError::fail("the connection closed without an answer"))?;
        let shown = String::from_utf8_lossy(&value).into_owned();
        prop_assert!(
            a.status < 500 || a.documented_503(),
            "{} for {:?}",
            a.head,
            shown
        );
        if one_field_value(&value) {
            prop_assert!(
                a.status == 200 || a.documented_503(),
                "{} for {:?}",
                a.head,
                shown
            );
        } else {
            prop_assert!([200, 400].contains(&a.status), "{} for {:?}", a.head, shown);
        }
        if a.status == 200 {
            prop_assert!(a.page().contains("aliyun_cloud_assistant_agent_up"));
            let lower = shown.to_ascii_lowercase();
            if a.header("content-encoding").is_some() {
                prop_assert_eq!(a.header("content-encoding"), Some("gzip"));
                prop_assert!(lower.contains("gzip") || lower.contains('*'), "{:?}", shown);
            } else {
                prop_assert!(
                    !["gzip", "gzip, deflate", " GZIP "].contains(&shown.as_str()),
                    "asked for gzip: {:?}",
                    shown
                );
            }
        }
        still_serving(f)
    });
}
