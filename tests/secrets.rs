//! Secrets in any shape, against the binary: an API answer that echoes the
//! security token and the AccessKey id by name, in XML, in JSON, in free
//! text, or cut in the middle puts none of them (nor a piece) into the
//! debug log or onto /metrics.

mod common;

use std::time::Duration;

use cloud_assistant_exporter::simulator::{RegionFault, SimKey, Simulator};
use common::*;

const KEY_ID: &str = "LTAI5tQz8RmNvXw3Kp9Jd2Lh";
const SECRET: &str = "sEcReT-9f8e7d6c5b4a39281706";
const TOKEN: &str = "CAIS9wF1q6Ft5B2yfSjIr5bGCPTmnZ5l0q2dQ0XhgGUHVcN4gbzTujQ8xWk3PmR7sLtY";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_any_shape_stay_out_of_logs_and_metrics() {
    let sim = Simulator::start(fleet(&[("good", 5), ("leaky", 5)]))
        .await
        .expect("sim");
    sim.add_key(
        KEY_ID,
        SimKey {
            secret: SECRET.into(),
            security_token: Some(TOKEN.into()),
            expires_at: None,
        },
    );
    let message = format!(
        "SecurityToken = {TOKEN}; <SecurityToken>{TOKEN}</SecurityToken> {{\"securityToken\":\"{TOKEN}\"}} \
         the token {TOKEN} of key {KEY_ID} is not valid; secret {SECRET}; and a piece: {}",
        &TOKEN[17..43]
    );
    let body =
        serde_json::json!({"RequestId": "R", "Code": "InvalidParameter", "Message": message});
    sim.update_faults(|f| {
        f.regions.insert(
            "leaky".into(),
            RegionFault::Raw {
                status: 400,
                body: body.to_string(),
            },
        );
    });
    let url = sim.url();
    let e = ExporterProcess::on_api(
        &url,
        &["--collect.interval", "1s", "--log.level", "debug"],
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID.to_string()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET.to_string()),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN.to_string()),
        ],
    );
    wait_ready(e.socket()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = scrape(e.socket()).await;
    assert!(
        page.contains("region_up{region_id=\"leaky\"} 0"),
        "the region failed"
    );
    assert!(page.contains("region_up{region_id=\"good\"} 1"));
    let log = e.stop();
    assert!(log.contains("leaky"), "the failure is logged:\n{log}");
    assert!(log.contains("[redacted]"), "and redacted:\n{log}");
    for (what, text) in [("log", &log), ("/metrics", &page)] {
        for (name, secret) in [("token", TOKEN), ("key id", KEY_ID), ("secret", SECRET)] {
            for piece in secret.as_bytes().windows(12).step_by(3) {
                let piece = std::str::from_utf8(piece).expect("ascii");
                assert!(
                    !text.contains(piece),
                    "a piece of the {name} ({piece}) in the {what}:\n{text}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_answer_names_no_secret_the_process_holds() {
    let sim = Simulator::start(fleet(&[("r1", 3)])).await.expect("sim");
    sim.add_key(KEY_ID, SimKey::long_term(SECRET));
    let dir = TempDir::new("secrets-reload");
    dir.write("prod.secret", &format!("{SECRET}\n"));
    let entry = |regions: &str| {
        format!(
            "accounts:\n  - name: prod\n    endpoint: \"{}\"\n{regions}    credentials:\n      type: access_key\n      access_key_id: {KEY_ID}\n      access_key_secret_file: prod.secret\n",
            sim.url()
        )
    };
    let config = dir.write("accounts.yml", &entry(""));
    let e = ExporterProcess::spawn(
        &[
            "--config.file",
            &config,
            "--web.enable-lifecycle",
            "--aliyun.rate-limit",
            "0",
            "--log.level",
            "debug",
        ],
        &[],
    );
    wait_ready(e.socket()).await;
    // A bad value that quotes the key id and the secret: the answer says
    // what is wrong, without them.
    dir.write(
        "accounts.yml",
        &entry(&format!("    regions: [\"{KEY_ID}/{SECRET}\"]\n")),
    );
    let (status, body) = post_reload(&e.addr).await;
    assert_eq!(status, 500);
    assert!(body.contains("regions"), "{body}");
    let log = e.stop();
    for (what, text) in [("reload answer", &body), ("log", &log)] {
        for secret in [KEY_ID, SECRET] {
            assert!(
                !text.contains(&secret[..12]),
                "a secret in the {what}:\n{text}"
            );
        }
    }
}
