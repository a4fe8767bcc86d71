//! The small edges of the second hardening round: an agent that comes back
//! without its version while down keeps the last one, the reference's 403
//! (`Operation.Forbidden`) is a missing permission, a bad
//! `ALIBABA_CLOUD_STS_REGION` is refused at start, and the credentials
//! file is also found under the name the Go, Java and Node SDKs read.

mod common;

use std::time::Duration;

use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::collector::CollectorOptions;
use cloud_assistant_exporter::simulator::fleet::Agent;
use cloud_assistant_exporter::simulator::{RegionFault, Simulator};
use common::*;

const NOW: i64 = 1_780_000_000;

#[tokio::test]
async fn a_down_agent_without_a_version_keeps_the_last_one() {
    let clock = Clock::fixed(NOW);
    let sim = sim_on(fleet(&[("r", 6)]), &clock).await;
    let c = collector(&sim, CollectorOptions::default(), clock.clone());
    c.run_cycle().await;
    let id = sim.fleet().regions["r"]
        .instances
        .iter()
        .find(|i| i.agent != Agent::NotInstalled && !i.version.is_empty())
        .map(|i| (i.id.clone(), i.version.clone()))
        .expect("an installed agent");
    let info = |page: &[Sample]| {
        page.iter()
            .find(|s| {
                s.name == "aliyun_cloud_assistant_agent_info"
                    && s.labels.get("instance_id") == Some(&id.0)
            })
            .map(|s| s.labels["version"].clone())
    };
    assert_eq!(info(&page_samples(&c)), Some(id.1.clone()));
    // The agent goes down and the API leaves its version empty.
    sim.update_fleet(|f| {
        let inst = f
            .regions
            .get_mut("r")
            .expect("r")
            .instances
            .iter_mut()
            .find(|i| i.id == id.0)
            .expect("i");
        inst.agent = Agent::Down {
            last_heartbeat: NOW - 3600,
        };
        inst.version = String::new();
    });
    c.run_cycle().await;
    let page = page_samples(&c);
    assert_eq!(
        value(
            &page,
            "aliyun_cloud_assistant_agent_up",
            &[("region_id", "r"), ("instance_id", &id.0)]
        ),
        Some(0.0)
    );
    assert_eq!(info(&page), Some(id.1), "the last known version stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_forbidden_is_a_missing_permission() {
    let sim = Simulator::start(fleet(&[("r1", 5), ("r2", 5)]).clone())
        .await
        .expect("sim");
    sim.update_faults(|f| {
        f.actions.insert(
            "DescribeInstances".into(),
            RegionFault::Error {
                status: 403,
                code: "Operation.Forbidden".into(),
            },
        );
    });
    let e =
        ExporterProcess::every_second(&sim.url(), &["--collect.instance-info-interval", "1s"], &[]);
    wait_ready(e.socket()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let page = scrape_samples(e.socket()).await;
    for r in ["r1", "r2"] {
        assert_eq!(region_up(&page, r), Some(1.0), "{r}");
    }
    assert_eq!(count(&page, "aliyun_cloud_assistant_instance_info"), 0);
    let log = e.stop();
    let warned = log
        .lines()
        .filter(|l| l.contains("ecs:DescribeInstances"))
        .count();
    assert_eq!(warned, 1, "one warning naming the permission:\n{log}");
}

#[test]
fn a_bad_sts_region_is_refused_at_start_in_one_line() {
    let err = refused(
        &["--aliyun.role-arn", "acs:ram::1234567890123456:role/r"],
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-someone".into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "secret-someone".into()),
            ("ALIBABA_CLOUD_STS_REGION", "cn-hangzhou.evil.com/#".into()),
        ],
    );
    assert!(err.contains("ALIBABA_CLOUD_STS_REGION"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credentials_file_is_found_under_either_name() {
    let sim = Simulator::start(fleet(&[("r1", 3)])).await.expect("sim");
    let home = TempDir::new("credfile");
    home.write(
        ".alibabacloud/credentials",
        &format!(
            "[default]\ntype = access_key\naccess_key_id = {}\naccess_key_secret = {}\n",
            cloud_assistant_exporter::simulator::DEFAULT_KEY_ID,
            cloud_assistant_exporter::simulator::DEFAULT_KEY_SECRET
        ),
    );
    let url = sim.url();
    let e = ExporterProcess::spawn(
        &["--aliyun.endpoint", &url, "--aliyun.rate-limit", "0"],
        &[
            ("HOME", home.str()),
            ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true".into()),
        ],
    );
    wait_ready(e.socket()).await;
    let page = scrape_samples(e.socket()).await;
    assert_eq!(region_up(&page, "r1"), Some(1.0));
    let log = e.stop();
    assert!(log.contains(".alibabacloud/credentials"), "{log}");
}
