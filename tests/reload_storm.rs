//! A storm of reloads, against the binary: with `--web.enable-lifecycle`,
//! four clients posting `/-/reload` back to back for 20 s run about one
//! reload a second, all answered, and an account whose role is assumed
//! with the credential chain's keys keeps its provider while nothing the
//! chain reads changed: no AssumeRole call per reload.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloud_assistant_exporter::simulator::{IdentityConfig, IdentityServer, Simulator};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_storm_runs_a_reload_a_second_and_assumes_the_role_once() {
    let sim = Simulator::start(fleet(&[("cn-hangzhou", 3)]))
        .await
        .expect("sim");
    let id = IdentityServer::start(&sim, IdentityConfig::default())
        .await
        .expect("identity server");
    let home = TempDir::new("storm");
    let config = home.write(
        "accounts.yml",
        &format!(
            "accounts:\n  - name: prod\n    endpoint: \"{}\"\n    credentials:\n      type: ram_role_arn\n      role_arn: \"{ROLE}\"\n",
            sim.url()
        ),
    );
    let id_url = id.url();
    let mut env = sim_key_env();
    env.push(("HOME", home.str()));
    let e = ExporterProcess::spawn(
        &[
            "--config.file",
            &config,
            "--web.enable-lifecycle",
            "--aliyun.sts-endpoint",
            &id_url,
            "--aliyun.rate-limit",
            "0",
            "--collect.interval",
            "1h",
        ],
        &env,
    );
    wait_ready(e.socket()).await;
    assert_eq!(id.issued("AssumeRole"), 1, "the role assumed at start");

    let ok = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (url, ok) = (e.url("/-/reload"), Arc::clone(&ok));
        clients.spawn(async move {
            let client = reqwest::Client::new();
            let mut other = Vec::new();
            while t0.elapsed() < Duration::from_secs(20) {
                match client.post(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => other.push(r.status().as_u16()),
                    Err(e) => panic!("reload: {e}"),
                }
            }
            other
        });
    }
    while let Some(c) = clients.join_next().await {
        assert_eq!(
            c.expect("client"),
            Vec::<u16>::new(),
            "every reload answered 200"
        );
    }
    let answered = ok.load(Ordering::Relaxed);
    assert!(answered >= 20, "{answered} reloads answered");
    let assumed = id.issued("AssumeRole");
    assert!(assumed <= 10, "{assumed} AssumeRole calls during the storm");
    let log = e.stderr_so_far();
    let reloads = log.matches("accounts reloaded").count();
    assert!(
        (5..=25).contains(&reloads),
        "{reloads} reloads ran in 20 s:\n{log}"
    );

    // A file the chain reads changes: the next reload builds the account
    // again, and assumes the role once more.
    home.write(
        ".alibabacloud/credentials",
        "[default]\ntype = access_key\naccess_key_id = x\naccess_key_secret = y\n",
    );
    let (status, _) = post_reload(&e.addr).await;
    assert_eq!(status, 200);
    assert_eq!(id.issued("AssumeRole"), assumed + 1, "rebuilt on a change");
    e.stop();
}
