//! The regions DescribeRegions names, against the running binary: ids and
//! endpoints pass the checks a flag would (a hostile id, or a plain http
//! endpoint while the exporter talks https, is left out with a warning and
//! the other regions are collected), and with a `{region}` endpoint
//! template DescribeRegions goes to the public endpoint, never to the
//! template's own URL.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cloud_assistant_exporter::simulator::Simulator;
use common::*;

const REFUSED: &str = "DescribeRegions named a region that does not pass the checks";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_region_ids_and_a_plain_http_endpoint_are_left_out_and_the_rest_collected() {
    let sim = Simulator::start(fleet(&[
        ("cn-hangzhou", 4),
        ("cn-shanghai", 3),
        ("cn-beijing", 2),
    ]))
    .await
    .expect("sim");
    // The exporter reaches the API over https (a TLS front of the
    // simulator), so a region endpoint in plain http is a downgrade.
    let (https, cert) = tls_front(sim.addr).await;
    let dir = TempDir::new("region-list");
    let ca = dir.write("front.pem", &cert);
    let long = "a".repeat(300);
    let hostile = ["x.evil/#", "a b", long.as_str()];
    let mut listed = vec![
        ("cn-hangzhou", "ecs.cn-hangzhou.aliyuncs.com".to_string()),
        ("cn-shanghai", "https://ecs.cn-shanghai.aliyuncs.com".into()),
        ("cn-beijing", sim.url()),
    ];
    listed.extend(
        hostile
            .iter()
            .map(|id| (*id, "ecs.example.com".to_string())),
    );
    sim.update_faults(|f| {
        f.region_list = Some(
            listed
                .iter()
                .map(|(id, e)| (id.to_string(), e.clone()))
                .collect(),
        );
    });
    let exporter = ExporterProcess::every_second(&https, &[], &[("SSL_CERT_FILE", ca)]);
    wait_ready(exporter.socket()).await;
    let fleet = sim.fleet();
    let collected = ["cn-hangzhou", "cn-shanghai"];
    let page = scrape_until(exporter.socket(), "two cycles of both good regions", |p| {
        collected
            .iter()
            .all(|r| value(p, REGION_UP, &[("region_id", r)]) == Some(1.0))
            && value(p, CYCLES, &[]).is_some_and(|n| n >= 2.0)
    })
    .await;
    let stderr = exporter.stop();

    // The good regions are there, whole; nothing else is.
    let regions: BTreeSet<&str> = page
        .iter()
        .filter_map(|s| s.labels.get("region_id"))
        .map(String::as_str)
        .collect();
    assert_eq!(regions, collected.into_iter().collect());
    for r in collected {
        let agents = page
            .iter()
            .filter(|s| s.name == AGENT_UP && s.labels["region_id"] == r)
            .count();
        assert_eq!(agents, fleet.regions[r].instances.len(), "{r}");
    }
    // No call went out for a region left out.
    let asked: BTreeSet<String> = sim
        .requests_by_region()
        .into_keys()
        .filter(|(action, _)| action != "DescribeRegions")
        .map(|(_, region)| region)
        .collect();
    assert_eq!(asked, collected.iter().map(|r| r.to_string()).collect());

    // One warning each time the list names them, saying why.
    let refusals: Vec<&str> = stderr.lines().filter(|l| l.contains(REFUSED)).collect();
    let about = |needle: &str| -> Vec<&str> {
        refusals
            .iter()
            .copied()
            .filter(|l| l.contains(needle))
            .collect()
    };
    let http = about("region=cn-beijing ");
    assert!(!http.is_empty(), "no warning about cn-beijing: {stderr}");
    assert!(
        http.iter()
            .all(|l| l.contains("plain http") && l.contains("level=warn")),
        "{http:#?}"
    );
    // logfmt quotes a value with a space; a long id is shortened.
    for (id, field) in [
        ("x.evil/#", "region=x.evil/# ".to_string()),
        ("a b", "region=\"a b\" ".to_string()),
        (long.as_str(), format!("region={}… ", "a".repeat(80))),
    ] {
        let lines = about(&field);
        assert!(!lines.is_empty(), "no warning about {id}: {refusals:#?}");
        assert!(
            lines
                .iter()
                .all(|l| l.contains("is not a region id") && l.contains("level=warn")),
            "{id}: {lines:#?}"
        );
    }
    assert!(
        !stderr.contains(&"a".repeat(81)),
        "the long id is shortened"
    );
    // Every refusal is about one of these, and each cycle's list is
    // checked: as many warnings per entry.
    let per_entry = http.len();
    assert_eq!(refusals.len(), 4 * per_entry, "{refusals:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_template_sends_describe_regions_to_the_public_endpoint_not_the_template() {
    // The template's own URL, and a proxy that sees where https goes.
    let template = Trap::start().await;
    let proxy = Trap::start().await;
    let endpoint = format!("{}/{{region}}", template.url);
    let exporter =
        ExporterProcess::every_second(&endpoint, &[], &[("HTTPS_PROXY", proxy.url.clone())]);
    // DescribeRegions tried (and retried) until it fails for this cycle.
    eventually(
        "DescribeRegions failed, or a call at the template",
        Duration::from_secs(30),
        || async {
            exporter.stderr_so_far().contains("DescribeRegions failed") || template.hits() > 0
        },
    )
    .await;
    let stderr = exporter.stop();
    let lines = proxy.lines();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("CONNECT ecs.aliyuncs.com:443 ")),
        "{lines:#?}"
    );
    assert_eq!(template.hits(), 0, "nothing went to the template's URL");
    assert!(
        !lines.is_empty(),
        "DescribeRegions went through the proxy: {stderr}"
    );
}
