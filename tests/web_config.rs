//! `--web.config.file` against the real binary: TLS with a throwaway CA,
//! client certificates, basic auth, extra headers, live reloads, and
//! start-up errors.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloud_assistant_exporter::server::ServerOptions;
use cloud_assistant_exporter::server::web_config::WebConfigSource;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use reqwest::Method;
use tokio::io::AsyncReadExt;

use common::{ExporterProcess, TempDir, eventually, free_port, refused};

const CHALLENGE: &str = "Basic realm=\"cloud-assistant-exporter\"";

/// A CA, a server certificate for 127.0.0.1 and a client certificate from
/// it, and a client certificate from another CA; all as PEM files in `dir`.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let ca = new_ca("test CA");
        let other_ca = new_ca("another CA");
        leaf(dir, "server", &ca, ExtendedKeyUsagePurpose::ServerAuth);
        leaf(dir, "client", &ca, ExtendedKeyUsagePurpose::ClientAuth);
        leaf(dir, "other", &other_ca, ExtendedKeyUsagePurpose::ClientAuth);
        leaf(
            dir,
            "other-server",
            &other_ca,
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca");
        std::fs::write(dir.join("other-ca.pem"), other_ca.pem()).expect("write other ca");
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).expect("read pem")
    }

    /// A client trusting only the test CA, with the named certificate.
    fn client(&self, identity: Option<&str>) -> reqwest::Client {
        self.client_trusting("ca.pem", identity)
    }

    fn client_trusting(&self, ca: &str, identity: Option<&str>) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&self.read(ca)).expect("ca cert");
        let mut b = reqwest::Client::builder()
            .tls_certs_only([ca])
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10));
        if let Some(name) = identity {
            let mut pem = self.read(&format!("{name}.pem"));
            pem.extend(self.read(&format!("{name}-key.pem")));
            b = b.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
        }
        b.build().expect("client")
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("ca")
}

fn leaf(
    dir: &Path,
    name: &str,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    usage: ExtendedKeyUsagePurpose,
) {
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, issuer).expect("sign");
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write cert");
    std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).expect("write key");
}

fn hash(password: &str) -> String {
    // Cost 4: the lowest, to keep the tests fast.
    bcrypt::hash(password, 4).expect("bcrypt")
}

/// The exporter in demo mode with `web_config`, and `/-/reload` on.
fn start(web_config: &Path) -> ExporterProcess {
    ExporterProcess::spawn(
        &[
            "--demo",
            "--web.config.file",
            web_config.to_str().expect("utf-8 path"),
            "--web.enable-lifecycle",
        ],
        &[],
    )
}

/// `path` on the exporter over TLS.
fn https(e: &ExporterProcess, path: &str) -> String {
    format!("https://{}{path}", e.addr)
}

/// Waits until `/healthz` answers over TLS (it needs no password).
async fn wait_up(e: &ExporterProcess, client: &reqwest::Client) {
    eventually("up over TLS", Duration::from_secs(20), || async {
        matches!(client.get(https(e, "/healthz")).send().await, Ok(r) if r.status() == 200)
    })
    .await;
}

/// `method` on `url` as `auth`, answered.
async fn send(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    auth: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut r = client.request(method, url);
    if let Some((u, p)) = auth {
        r = r.basic_auth(u, Some(p));
    }
    r.send().await.expect("request")
}

async fn get(client: &reqwest::Client, url: &str, auth: Option<(&str, &str)>) -> u16 {
    send(client, Method::GET, url, auth).await.status().as_u16()
}

/// Reloads are picked up at the next connection or within the server's
/// check interval.
const RELOAD: Duration = Duration::from_secs(15);

#[tokio::test]
async fn tls_basic_auth_headers_and_live_reload() {
    let dir = TempDir::new("web-auth");
    let pki = Pki::new(dir.path());
    let web = dir.path().join("web.yml");
    let old_hash = hash("old-secret");
    dir.write("web.yml", &auth_config(&old_hash));
    let exporter = start(&web);
    let client = pki.client(None);
    wait_up(&exporter, &client).await;

    healthz_is_open_and_carries_the_extra_headers(&exporter, &client).await;
    the_right_password_opens_metrics(&exporter, &client).await;
    wrong_or_missing_credentials_get_401_with_the_challenge(&exporter, &client).await;
    with_the_password_the_usual_answers(&exporter, &client).await;
    plain_http_and_an_untrusting_client_get_no_page(&exporter, &pki).await;
    let new_hash = a_new_password_is_taken_without_a_restart(&dir, &exporter, &client).await;
    a_broken_file_keeps_the_last_good_config(&dir, &exporter, &client).await;
    a_fixed_file_is_taken_without_a_restart(&dir, &exporter, &client, &old_hash).await;

    let stderr = exporter.stop();
    assert!(
        stderr.contains("web config not reloaded"),
        "a bad file is logged: {stderr}"
    );
    for secret in [
        old_hash.as_str(),
        new_hash.as_str(),
        "old-secret",
        "new-secret",
        "bob-secret",
    ] {
        assert!(!stderr.contains(secret), "a secret in the logs: {stderr}");
    }
}

/// Alice's password before it changes.
const ALICE: Option<(&str, &str)> = Some(("alice", "old-secret"));

/// The web config: TLS, alice with `alice_hash`, bob, and extra headers.
fn auth_config(alice_hash: &str) -> String {
    format!(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n\
         basic_auth_users:\n  alice: '{alice_hash}'\n  bob: '{}'\n\
         http_server_config:\n  headers:\n    X-Frame-Options: deny\n    \
         Strict-Transport-Security: max-age=31536000\n",
        hash("bob-secret")
    )
}

async fn healthz_is_open_and_carries_the_extra_headers(
    exporter: &ExporterProcess,
    client: &reqwest::Client,
) {
    let r = send(client, Method::GET, &https(exporter, "/healthz"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "deny");
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
}

/// Twice: the second is served from the verification cache.
async fn the_right_password_opens_metrics(exporter: &ExporterProcess, client: &reqwest::Client) {
    for _ in 0..2 {
        let r = send(client, Method::GET, &https(exporter, "/metrics"), ALICE).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert_eq!(r.headers()["x-frame-options"], "deny");
        let page = r.text().await.expect("page");
        assert!(
            page.contains("aliyun_cloud_assistant_exporter_shard_info{count=\"1\",index=\"0\"} 1"),
            "{page}"
        );
    }
}

/// On every path but /healthz, including unknown ones.
async fn wrong_or_missing_credentials_get_401_with_the_challenge(
    exporter: &ExporterProcess,
    client: &reqwest::Client,
) {
    for (path, auth) in [
        ("/metrics", Some(("alice", "wrong"))),
        ("/metrics", Some(("mallory", "old-secret"))),
        ("/metrics", Some(("bob", "old-secret"))),
        ("/metrics", None),
        ("/", None),
        ("/ready", None),
        ("/no-such-page", None),
    ] {
        let r = send(client, Method::GET, &https(exporter, path), auth).await;
        assert_eq!(r.status(), 401, "{path} {auth:?}");
        assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
        assert_eq!(r.headers()["x-frame-options"], "deny");
    }
    let r = send(client, Method::POST, &https(exporter, "/-/reload"), None).await;
    assert_eq!(r.status(), 401);
}

async fn with_the_password_the_usual_answers(exporter: &ExporterProcess, client: &reqwest::Client) {
    eventually("ready, with the password", RELOAD, || async {
        get(client, &https(exporter, "/ready"), ALICE).await == 200
    })
    .await;
    assert_eq!(get(client, &https(exporter, "/nope"), ALICE).await, 404);
    assert_eq!(
        get(
            client,
            &https(exporter, "/metrics"),
            Some(("bob", "bob-secret"))
        )
        .await,
        200
    );
    let r = send(client, Method::POST, &https(exporter, "/metrics"), ALICE).await;
    assert_eq!(r.status(), 405);
    let r = client
        .get(https(exporter, "/metrics"))
        .basic_auth("alice", Some("old-secret"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("gzip");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
}

async fn plain_http_and_an_untrusting_client_get_no_page(exporter: &ExporterProcess, pki: &Pki) {
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    match plain.get(exporter.url("/healthz")).send().await {
        Ok(r) => {
            assert_eq!(r.status(), 400);
            assert!(r.text().await.expect("body").contains("HTTPS"));
        }
        Err(e) => assert!(!e.is_status(), "{e}"),
    }
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pki.read("other-ca.pem")).expect("ca")])
        .no_proxy()
        .build()
        .expect("client");
    assert!(
        untrusting
            .get(https(exporter, "/healthz"))
            .send()
            .await
            .is_err()
    );
}

/// POST /-/reload with a good file is 200; then Alice's password changes
/// in the file and, without a restart, the old one stops working and the
/// new one works. Gives the new hash.
async fn a_new_password_is_taken_without_a_restart(
    dir: &TempDir,
    exporter: &ExporterProcess,
    client: &reqwest::Client,
) -> String {
    let r = send(client, Method::POST, &https(exporter, "/-/reload"), ALICE).await;
    assert_eq!(r.status(), 200);
    let new_hash = hash("new-secret");
    dir.write("web.yml", &auth_config(&new_hash));
    eventually(
        "the new password works and the old one does not",
        RELOAD,
        || async {
            get(
                client,
                &https(exporter, "/metrics"),
                Some(("alice", "new-secret")),
            )
            .await
                == 200
                && get(client, &https(exporter, "/metrics"), ALICE).await == 401
        },
    )
    .await;
    new_hash
}

/// On /-/reload (500 with the reason) and when only noticed by the
/// watcher.
async fn a_broken_file_keeps_the_last_good_config(
    dir: &TempDir,
    exporter: &ExporterProcess,
    client: &reqwest::Client,
) {
    dir.write("web.yml", "basic_auth_users:\n  alice: not-a-hash\n");
    let r = send(
        client,
        Method::POST,
        &https(exporter, "/-/reload"),
        Some(("alice", "new-secret")),
    )
    .await;
    assert_eq!(r.status(), 500);
    let reason = r.text().await.expect("body");
    assert!(reason.contains("not a bcrypt hash"), "{reason}");
    dir.write("web.yml", "tls_server_config: [oops\n");
    // Longer than the server's check interval (3s).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        get(
            client,
            &https(exporter, "/metrics"),
            Some(("alice", "new-secret"))
        )
        .await,
        200
    );
    assert_eq!(get(client, &https(exporter, "/metrics"), None).await, 401);
}

async fn a_fixed_file_is_taken_without_a_restart(
    dir: &TempDir,
    exporter: &ExporterProcess,
    client: &reqwest::Client,
    old_hash: &str,
) {
    dir.write("web.yml", &auth_config(old_hash));
    eventually("the fixed file is taken", RELOAD, || async {
        get(client, &https(exporter, "/metrics"), ALICE).await == 200
    })
    .await;
}

#[tokio::test]
async fn client_certificates_are_required_and_checked() {
    let dir = TempDir::new("web-mtls");
    let pki = Pki::new(dir.path());
    let web = dir.path().join("web.yml");
    let config = |auth_type: &str, ca: bool| {
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: {auth_type}\n{}",
            dir.path().join("server.pem").display(),
            dir.path().join("server-key.pem").display(),
            if ca { "  client_ca_file: ca.pem\n" } else { "" }
        )
    };
    dir.write("web.yml", &config("RequireAndVerifyClientCert", true));
    let exporter = start(&web);
    let good = pki.client(Some("client"));
    wait_up(&exporter, &good).await;
    let url = https(&exporter, "/metrics");

    assert_eq!(get(&good, &url, None).await, 200);
    let none = pki.client(None);
    assert!(
        none.get(&url).send().await.is_err(),
        "no client certificate: the handshake fails"
    );
    let other = pki.client(Some("other"));
    assert!(
        other.get(&url).send().await.is_err(),
        "a certificate from another CA: the handshake fails"
    );

    // VerifyClientCertIfGiven, by reload: no certificate is fine, a bad one
    // still is not.
    dir.write("web.yml", &config("VerifyClientCertIfGiven", true));
    eventually("VerifyClientCertIfGiven is taken", RELOAD, || async {
        matches!(none.get(&url).send().await, Ok(r) if r.status() == 200)
    })
    .await;
    assert!(other.get(&url).send().await.is_err());
    assert_eq!(get(&good, &url, None).await, 200);

    // RequireAnyClientCert: any certificate, none is refused.
    dir.write("web.yml", &config("RequireAnyClientCert", false));
    eventually("RequireAnyClientCert is taken", RELOAD, || async {
        matches!(other.get(&url).send().await, Ok(r) if r.status() == 200)
    })
    .await;
    assert!(none.get(&url).send().await.is_err());

    // A file that would switch to plain HTTP is refused.
    dir.write("web.yml", "");
    let r = good
        .post(https(&exporter, "/-/reload"))
        .send()
        .await
        .expect("reload");
    assert_eq!(r.status(), 500);
    assert!(r.text().await.expect("body").contains("restart"));
    assert!(none.get(&url).send().await.is_err());
    assert_eq!(get(&good, &url, None).await, 200);
    exporter.stop();
}

#[tokio::test]
async fn tls_versions_are_enforced() {
    let dir = TempDir::new("web-versions");
    let pki = Pki::new(dir.path());
    let web = dir.path().join("web.yml");
    dir.write("web.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n  min_version: TLS13\n",
    );
    let exporter = start(&web);
    let client = pki.client(None);
    wait_up(&exporter, &client).await;
    let ca = reqwest::Certificate::from_pem(&pki.read("ca.pem")).expect("ca");
    let tls12 = reqwest::Client::builder()
        .tls_certs_only([ca])
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .no_proxy()
        .build()
        .expect("client");
    assert!(
        tls12
            .get(https(&exporter, "/healthz"))
            .send()
            .await
            .is_err()
    );
    assert_eq!(get(&client, &https(&exporter, "/healthz"), None).await, 200);
    exporter.stop();
}

/// cert-manager style rotation: the certificate and key files are replaced
/// (one after the other) and new handshakes get the new certificate.
#[tokio::test]
async fn certificates_rotate_without_a_restart() {
    let dir = TempDir::new("web-rotate");
    let pki = Pki::new(dir.path());
    let web = dir.path().join("web.yml");
    dir.write(
        "web.yml",
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n",
    );
    let exporter = start(&web);
    let old = pki.client(None);
    wait_up(&exporter, &old).await;
    let new = pki.client_trusting("other-ca.pem", None);
    assert!(new.get(https(&exporter, "/healthz")).send().await.is_err());
    for (from, to) in [
        ("other-server.pem", "server.pem"),
        ("other-server-key.pem", "server-key.pem"),
    ] {
        dir.write(to, &String::from_utf8(pki.read(from)).expect("pem"));
    }
    eventually("the new certificate is served", RELOAD, || async {
        matches!(new.get(https(&exporter, "/healthz")).send().await, Ok(r) if r.status() == 200)
    })
    .await;
    assert!(old.get(https(&exporter, "/healthz")).send().await.is_err());
    exporter.stop();
}

#[test]
fn a_bad_web_config_at_start_is_one_line_and_exit_2() {
    let dir = TempDir::new("web-bad");
    Pki::new(dir.path());
    let cases = [
        ("bogus: 1\n", "unknown field `bogus`"),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n  cipher: x\n",
            "unknown field `cipher`",
        ),
        (
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: server-key.pem\n",
            "missing.pem",
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: ca.pem\n",
            "key_file",
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
            "client_ca_file",
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n  max_version: TLS14\n",
            "max_version",
        ),
        ("basic_auth_users:\n  alice: hunter2\n", "not a bcrypt hash"),
        ("basic_auth_users: [\n", "line"),
        (
            "http_server_config:\n  headers:\n    Content-Length: '1'\n",
            "Content-Length",
        ),
    ];
    for (text, want) in cases {
        let web = dir.write("web.yml", text);
        let listen = format!("127.0.0.1:{}", free_port());
        let err = refused(
            &[
                "--demo",
                "--web.listen-address",
                &listen,
                "--web.config.file",
                &web,
            ],
            &[],
        );
        assert!(err.starts_with("error: --web.config.file"), "{text}: {err}");
        assert!(err.contains(want), "{text}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    refused(
        &["--demo", "--web.config.file", "/nonexistent/web.yml"],
        &[],
    );
}

/// A client that opens a connection and never finishes the TLS handshake
/// loses it after the header timeout, so it cannot hold a slot for ever.
#[tokio::test]
async fn a_stalled_tls_handshake_is_dropped() {
    let dir = TempDir::new("web-stall");
    Pki::new(dir.path());
    let web = dir.path().join("web.yml");
    dir.write(
        "web.yml",
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n",
    );
    let source = WebConfigSource::load(&web).expect("web config");
    let (addr, stop, task) = common::tiny_server(ServerOptions {
        max_connections: 2,
        header_timeout: Duration::from_millis(300),
        web: Some(source),
        ..ServerOptions::default()
    })
    .await;

    let started = Instant::now();
    // A TLS record header, then nothing.
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut s, &[0x16, 0x03, 0x01])
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("the server closes the connection");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let _ = stop.send(true);
    let _ = task.await;
}

/// 200 new wrong passwords at once (none can be answered from the cache)
/// while Prometheus scrapes with the right one: its scrapes answer within a
/// second each, the flood gets 401 or 503 and never the page, and the
/// collection keeps its schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_flood_neither_locks_out_the_scraper_nor_delays_the_collection() {
    let dir = TempDir::new("web-flood");
    let web = dir.path().join("web.yml");
    // Cost 9: each check takes a real share of a core (~0.1 s in this
    // unoptimized build), so the flood outlasts the 5 s wait for a turn.
    let hash = bcrypt::hash("right", 9).expect("bcrypt");
    dir.write(
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: '{hash}'\n"),
    );
    let e = ExporterProcess::spawn(
        &[
            "--demo",
            "--collect.interval",
            "1s",
            "--web.config.file",
            web.to_str().expect("utf-8"),
        ],
        &[],
    );
    let url = format!("http://{}/metrics", e.addr);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let right = || async {
        let t0 = Instant::now();
        let r = client
            .get(&url)
            .basic_auth("prometheus", Some("right"))
            .send()
            .await
            .ok()?;
        let ok = r.status() == 200;
        let page = r.text().await.ok()?;
        ok.then(|| (t0.elapsed(), common::parse_metrics(&page)))
    };
    let cycles = |page: &[common::Sample]| {
        common::value(page, "aliyun_cloud_assistant_exporter_cycles_total", &[]).unwrap_or(0.0)
    };
    let took = |page: &[common::Sample]| {
        common::value(
            page,
            "aliyun_cloud_assistant_exporter_cycle_duration_seconds",
            &[],
        )
        .unwrap_or(0.0)
    };
    // The scraper's password is checked once, then remembered. Two cycles
    // give the time a cycle takes undisturbed.
    eventually("two cycles", Duration::from_secs(30), || async {
        right().await.is_some_and(|(_, p)| cycles(&p) >= 2.0)
    })
    .await;
    let (_, page) = right().await.expect("a scrape");
    let quiet = took(&page);

    let mut flood = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (c, url) = (client.clone(), url.clone());
        flood.spawn(async move {
            let r = c
                .get(&url)
                .basic_auth("prometheus", Some(format!("wrong-{i}")))
                .send()
                .await
                .expect("request");
            r.status().as_u16()
        });
    }
    let pid = e.child.id().to_string();
    let cpu_before = common::cpu_seconds(&pid);
    let started = Instant::now();
    let first_cycles = cycles(&page);
    let (mut last_cycles, mut slowest) = (first_cycles, 0.0f64);
    let mut scrapes = 0;
    while !flood.is_empty() {
        let (took_scrape, page) = right().await.expect("a scrape during the flood");
        assert!(
            took_scrape < Duration::from_secs(1),
            "a scrape took {took_scrape:?}"
        );
        if cycles(&page) > last_cycles {
            slowest = slowest.max(took(&page));
        }
        last_cycles = cycles(&page);
        scrapes += 1;
        while let Some(done) = flood.try_join_next() {
            let status = done.expect("task");
            assert!(
                status == 401 || status == 503,
                "a wrong password got {status}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lasted = started.elapsed();
    let cores = (common::cpu_seconds(&pid) - cpu_before) / lasted.as_secs_f64();
    // One password check at a time: the flood costs about one core.
    assert!(cores < 1.5, "the flood took {cores:.2} cores");
    assert!(
        lasted > Duration::from_secs(3) && scrapes >= 5,
        "the flood was over too soon to tell: {lasted:?}, {scrapes} scrapes"
    );
    // Cycles during the flood take about as long as before it, and keep
    // coming one after another.
    assert!(
        slowest < quiet * 1.5 + 0.5,
        "a cycle took {slowest}s during the flood, {quiet}s before"
    );
    let expected = (lasted.as_secs_f64() / (quiet * 1.5 + 0.5)).floor() - 1.0;
    assert!(
        last_cycles - first_cycles >= expected.max(1.0),
        "{} cycles in {lasted:?} of flood\n{}",
        last_cycles - first_cycles,
        e.stderr_so_far()
    );
    // Every wrong password was refused, and counted (as of the next cycle).
    let refused = |page: &[common::Sample]| {
        let failures = common::value(
            page,
            "aliyun_cloud_assistant_exporter_http_auth_failures_total",
            &[],
        );
        let busy = common::value(
            page,
            "aliyun_cloud_assistant_exporter_http_requests_refused_total",
            &[("reason", "password_checks")],
        );
        failures.unwrap_or(0.0) + busy.unwrap_or(0.0)
    };
    eventually("200 refusals counted", Duration::from_secs(10), || async {
        right().await.is_some_and(|(_, p)| refused(&p) == 200.0)
    })
    .await;
    e.stop();
}
