//! The client and the walkers against the simulator over real loopback HTTP.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cloud_assistant_exporter::api::{self, cloud_assistant, instance_status, plugins};
use cloud_assistant_exporter::error::ApiError;
use cloud_assistant_exporter::signer;
use cloud_assistant_exporter::simulator::{self, Faults, RegionFault, Simulator};
use common::*;

const SIZES: &[(&str, usize)] = &[
    ("r-0", 0),
    ("r-1", 1),
    ("r-50", 50),
    ("r-51", 51),
    ("r-137", 137),
];

#[tokio::test]
async fn walkers_return_exactly_the_fleet_at_page_boundaries() {
    let sim = Simulator::start(fleet(SIZES)).await.expect("sim");
    let client = client(&sim);
    let fleet = sim.fleet();
    let regions = api::describe_regions(&client).await.expect("regions");
    assert_eq!(
        regions.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["r-0", "r-1", "r-137", "r-50", "r-51"]
    );
    for (region, n) in SIZES {
        let want: BTreeSet<String> = fleet.regions[*region]
            .instances
            .iter()
            .map(|i| i.id.clone())
            .collect();
        assert_eq!(want.len(), *n);

        let before = sim.requests(cloud_assistant::ACTION);
        let agents = api::walk_cloud_assistant_status(&client, region)
            .await
            .expect("agents");
        let got: BTreeSet<String> = agents.iter().map(|a| a.instance_id.to_string()).collect();
        assert_eq!(got, want, "{region}: agents");
        assert_eq!(agents.len(), *n, "{region}: each instance once");
        assert_eq!(
            sim.requests(cloud_assistant::ACTION) - before,
            (*n as u64).div_ceil(50).max(1),
            "{region}: pages"
        );

        let before = sim.requests(instance_status::ACTION);
        let inst = api::walk_instance_status(&client, region)
            .await
            .expect("instances");
        let got: BTreeSet<String> = inst.iter().map(|i| i.instance_id.to_string()).collect();
        assert_eq!(got, want, "{region}: instances");
        assert_eq!(inst.len(), *n);
        assert_eq!(
            sim.requests(instance_status::ACTION) - before,
            (*n as u64).div_ceil(50).max(1)
        );
        for i in &inst {
            let sim_i = fleet.regions[*region]
                .instances
                .iter()
                .find(|s| *s.id == *i.instance_id)
                .expect("known");
            assert_eq!(&*i.status, sim_i.status);
        }
    }
}

#[tokio::test]
async fn agent_fields_match_the_fleet_including_quirky_regions() {
    let mut cfg = fleet(&[("plain", 60)]);
    cfg.regions
        .push(simulator::RegionSpec::new("quirky", 60).quirky());
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    let fleet = sim.fleet();
    for region in ["plain", "quirky"] {
        let agents = api::walk_cloud_assistant_status(&client, region)
            .await
            .expect("agents");
        assert_eq!(agents.len(), 60);
        let now = sim.state.clock.now();
        for a in &agents {
            let s = fleet.regions[region]
                .instances
                .iter()
                .find(|s| *s.id == *a.instance_id)
                .expect("known");
            assert_eq!(a.up, s.agent_up(now), "{}", a.instance_id);
            let installed = s.agent != simulator::fleet::Agent::NotInstalled;
            assert_eq!(a.version.is_some(), installed);
            if installed {
                assert_eq!(a.invocations, Some(s.invocations));
                assert_eq!(a.active_tasks, Some(s.active_tasks));
                let hb = s.last_heartbeat(now).expect("beats");
                // minute-precision answers lose the seconds
                let got = a.last_heartbeat.expect("heartbeat");
                assert!(got == hb || got == hb - hb.rem_euclid(60), "{got} vs {hb}");
            } else {
                assert_eq!(a.last_heartbeat, None);
            }
        }
    }
}

#[tokio::test]
async fn numbered_pages_run_in_a_few_lanes() {
    let sim = Simulator::start(fleet(&[("r", 2000)])).await.expect("sim");
    sim.update_faults(|f| f.latency = Duration::from_millis(50));
    let client = client_with(&sim, simulator::DEFAULT_KEY_SECRET, |o| {
        o.max_concurrency = 256;
        o.rate_limit = 0.0;
    });
    let t0 = std::time::Instant::now();
    let got = api::walk_instance_status(&client, "r").await.expect("walk");
    assert_eq!(got.len(), 2000);
    assert_eq!(sim.requests("DescribeInstanceStatus"), 40);
    // 39 later pages in 2 lanes (finishing in half the time of the region's
    // 40-page agent walk), however high the client's limit: concurrent (one
    // after another they would take 2 s; in 2 lanes ~1 s), but not 39 at once.
    assert_eq!(sim.max_in_flight(), 2);
    assert!(
        t0.elapsed() < Duration::from_millis(1700),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn plugin_walks_by_name_and_by_instance() {
    let sim = Simulator::start(fleet(&[("r", 137)])).await.expect("sim");
    let client = client(&sim);
    let fleet = sim.fleet();
    let now = sim.state.clock.now();
    for name in ["ecs-tool-monitor", "aliyun-service-ops", "no-such-plugin"] {
        let got = api::walk_plugin_status_by_name(&client, "r", name)
            .await
            .expect("plugins");
        let want: Vec<(String, String)> = fleet.regions["r"]
            .instances
            .iter()
            .flat_map(|i| {
                i.plugins
                    .iter()
                    .filter(|p| p.name == name)
                    .map(move |p| (i.id.clone(), p.status.clone()))
            })
            .collect();
        assert_eq!(
            got.iter()
                .map(|p| (p.instance_id.to_string(), p.status.to_string()))
                .collect::<Vec<_>>(),
            want,
            "{name}"
        );
    }
    let inst = fleet.regions["r"]
        .instances
        .iter()
        .find(|i| {
            i.plugins.len() >= 2
                && i.agent_up(now)
                && simulator::fleet::agent_supports_plugins(&i.os_type, &i.version)
        })
        .expect("an instance with plugins");
    let got = api::list_plugins_of_instance(&client, "r", &inst.id)
        .await
        .expect("plugins");
    assert_eq!(got.len(), inst.plugins.len());

    // A plugin installed while the simulator runs is swept from then on.
    let mut plugin = inst.plugins[0].clone();
    plugin.name = "late-plugin".into();
    let target = inst.id.clone();
    sim.update_fleet(|f| {
        if let Some(i) = f
            .regions
            .get_mut("r")
            .and_then(|r| r.instances.iter_mut().find(|i| i.id == target))
        {
            i.plugins.push(plugin);
        }
    });
    let got = api::walk_plugin_status_by_name(&client, "r", "late-plugin")
        .await
        .expect("plugins");
    assert_eq!(
        got.iter()
            .map(|p| p.instance_id.to_string())
            .collect::<Vec<_>>(),
        [target]
    );
}

async fn call_err(
    client: &cloud_assistant_exporter::client::Client,
    action: &str,
    params: &[(String, String)],
) -> ApiError {
    client
        .call(action, Some("r"), params)
        .await
        .expect_err("must fail")
}

fn code_of(e: &ApiError) -> (u16, String) {
    match e {
        ApiError::Api {
            status,
            code,
            request_id,
            ..
        } => {
            assert!(!request_id.is_empty(), "RequestId kept");
            (*status, code.clone())
        }
        other => panic!("not an API error: {other:?}"),
    }
}

#[tokio::test]
async fn documented_limits_surface_as_typed_errors() {
    let sim = Simulator::start(fleet(&[("r", 3)])).await.expect("sim");
    let client = client(&sim);
    let ids = |n: usize| {
        (1..=n)
            .map(|i| kv(&format!("InstanceId.{i}"), &format!("i-{i}")))
            .collect::<Vec<_>>()
    };
    type Case = (&'static str, Vec<(String, String)>, u16, &'static str);
    let cases: Vec<Case> = vec![
        (
            "DescribeCloudAssistantStatus",
            vec![kv("MaxResults", "51")],
            400,
            "InvalidParameter.MaxResults",
        ),
        (
            "DescribeCloudAssistantStatus",
            vec![kv("MaxResults", "0")],
            400,
            "InvalidParameter.MaxResults",
        ),
        (
            "DescribeCloudAssistantStatus",
            vec![kv("NextToken", "bogus+/=")],
            400,
            "InvalidParameter.NextToken",
        ),
        (
            "DescribeCloudAssistantStatus",
            ids(101),
            403,
            "InstanceIds.ExceedLimit",
        ),
        (
            "DescribeInstanceStatus",
            vec![kv("PageSize", "100")],
            400,
            "InvalidParam.PageSize",
        ),
        (
            "DescribeInstanceStatus",
            vec![kv("PageNumber", "0")],
            400,
            "InvalidParam.PageNumber",
        ),
        (
            "DescribeInstanceStatus",
            ids(101),
            403,
            "InvalidParameter.TooManyInstanceIds",
        ),
        ("ListPluginStatus", vec![], 400, "PluginName.MissingValue"),
        ("ListPluginStatus", ids(2), 400, "PluginName.MissingValue"),
        (
            "ListPluginStatus",
            {
                let mut v = ids(51);
                v.push(kv("Name", "x"));
                v
            },
            400,
            "InstanceIds.ExceedLimit",
        ),
        (
            "ListPluginStatus",
            vec![kv("Name", "x"), kv("MaxResults", "500")],
            400,
            "InvalidParameter.MaxResults",
        ),
        ("NoSuchAction", vec![], 404, "InvalidAction.NotFound"),
    ];
    for (action, params, status, code) in cases {
        let e = call_err(&client, action, &params).await;
        assert_eq!(
            code_of(&e),
            (status, code.to_string()),
            "{action} {params:?}"
        );
        assert!(!e.is_retryable());
    }
    let e = client
        .call("DescribeInstanceStatus", Some("no-such-region"), &[])
        .await
        .expect_err("unknown region");
    assert_eq!(code_of(&e), (404, "InvalidRegionId.NotFound".to_string()));
    // A client error is not retried.
    assert_eq!(
        client
            .metrics()
            .retries
            .with_label_values(&["ListPluginStatus"])
            .get(),
        0
    );
}

#[tokio::test]
async fn wrong_secret_is_rejected_with_incomplete_signature() {
    let sim = Simulator::start(fleet(&[("r", 3)])).await.expect("sim");
    let bad = client_with(&sim, "not-the-secret", |_| {});
    let e = api::walk_cloud_assistant_status(&bad, "r")
        .await
        .expect_err("rejected");
    assert_eq!(code_of(&e), (400, "IncompleteSignature".into()));
    assert!(!e.to_string().contains("not-the-secret"));
    assert_eq!(
        bad.metrics()
            .count(cloud_assistant::ACTION, "IncompleteSignature"),
        1,
        "tried once"
    );
    let good = client(&sim);
    assert!(api::walk_cloud_assistant_status(&good, "r").await.is_ok());
    assert_eq!(good.metrics().count(cloud_assistant::ACTION, "OK"), 1);
}

/// Sends a hand-signed request, to replay nonces and age timestamps.
async fn raw_call(sim: &Simulator, nonce: &str, timestamp: &str) -> (u16, String) {
    let secret = cloud_assistant_exporter::secret::Secret::new(simulator::DEFAULT_KEY_SECRET);
    let common = signer::CommonParams {
        access_key_id: simulator::DEFAULT_KEY_ID,
        security_token: None,
        action: "DescribeRegions",
        version: "2014-05-26",
        region_id: None,
        timestamp,
        nonce,
    };
    let params = signer::sign_request("GET", vec![], &common, &secret);
    let url = format!("{}/?{}", sim.url(), signer::canonical_query(&params));
    let resp = reqwest::get(url).await.expect("answer");
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    let code = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["Code"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code)
}

#[tokio::test]
async fn reused_nonce_and_stale_timestamp_are_rejected() {
    let sim = Simulator::start(fleet(&[("r", 1)])).await.expect("sim");
    let now = cloud_assistant_exporter::clock::format_iso8601(
        cloud_assistant_exporter::clock::Clock::System.now(),
    );
    assert_eq!(
        raw_call(&sim, "nonce-1", &now).await,
        (200, String::new()),
        "GET with query works too"
    );
    assert_eq!(
        raw_call(&sim, "nonce-1", &now).await,
        (400, "SignatureNonceUsed".into())
    );
    assert_eq!(
        raw_call(&sim, "nonce-2", "2016-02-23T12:46:24Z").await,
        (400, "InvalidTimeStamp.Expired".into())
    );
}

#[tokio::test]
async fn throttling_and_503_are_retried_until_success() {
    let sim = Simulator::start(fleet(&[("r", 137)])).await.expect("sim");
    sim.set_faults(Faults {
        throttle_rate: 0.3,
        unavailable_rate: 0.2,
        ..Faults::default()
    });
    let client = client(&sim);
    let agents = api::walk_cloud_assistant_status(&client, "r")
        .await
        .expect("retries get through");
    assert_eq!(agents.len(), 137);
    let m = client.metrics();
    let retries = m
        .retries
        .with_label_values(&[cloud_assistant::ACTION])
        .get();
    assert!(retries > 0, "some retries");
    assert_eq!(m.count(cloud_assistant::ACTION, "OK"), 3);
    assert_eq!(
        m.count(cloud_assistant::ACTION, "Throttling.User")
            + m.count(cloud_assistant::ACTION, "ServiceUnavailable"),
        retries
    );
}

#[tokio::test]
async fn persistent_503_gives_up_after_bounded_tries() {
    let sim = Simulator::start(fleet(&[("r", 3)])).await.expect("sim");
    sim.set_faults(Faults {
        unavailable_rate: 1.0,
        ..Faults::default()
    });
    let client = client(&sim);
    let e = api::walk_instance_status(&client, "r")
        .await
        .expect_err("gives up");
    assert_eq!(code_of(&e), (503, "ServiceUnavailable".into()));
    assert_eq!(
        sim.requests(instance_status::ACTION),
        common::fast_retry().max_tries as u64
    );
}

#[tokio::test]
async fn hostile_answers_are_clear_errors() {
    let sim = Simulator::start(fleet(&[("r", 3), ("ok", 3)]))
        .await
        .expect("sim");
    let client = client_with(&sim, simulator::DEFAULT_KEY_SECRET, |o| {
        o.timeout = Duration::from_millis(300)
    });
    for (body, want) in [
        ("not json at all", "not JSON"),
        (
            "{\"InstanceCloudAssistantStatusSet\": {\"InstanceCloudAss",
            "truncated",
        ),
        // Without a NextToken this is an empty page (see tests/resilience/api_safety.rs).
        (
            "{\"RequestId\": \"x\", \"NextToken\": \"AA==\"}",
            "InstanceCloudAssistantStatusSet is missing",
        ),
        (
            "{\"InstanceCloudAssistantStatusSet\": {\"InstanceCloudAssistantStatus\": [{\"InstanceId\": 5, \"CloudAssistantStatus\": []}]}}",
            "CloudAssistantStatus",
        ),
    ] {
        sim.update_faults(|f| {
            f.regions.insert("r".into(), RegionFault::Body(body.into()));
        });
        let e = api::walk_cloud_assistant_status(&client, "r")
            .await
            .expect_err(body);
        let msg = e.to_string();
        assert!(
            msg.contains("DescribeCloudAssistantStatus in r") && msg.contains(want),
            "{msg}"
        );
    }
    sim.update_faults(|f| {
        f.regions.insert("r".into(), RegionFault::RepeatToken);
    });
    // A token that does not change is caught on the second page.
    let e = api::walk_cloud_assistant_status(&client, "r")
        .await
        .expect_err("endless");
    assert!(e.to_string().contains("NextToken did not change"), "{e}");

    sim.update_faults(|f| {
        f.regions.insert("r".into(), RegionFault::Hang);
    });
    let e = api::walk_instance_status(&client, "r")
        .await
        .expect_err("hangs");
    assert!(
        matches!(e, ApiError::Transport { timeout: true, .. }),
        "{e:?}"
    );
    // The other region is unaffected.
    assert_eq!(
        api::walk_instance_status(&client, "ok")
            .await
            .expect("ok")
            .len(),
        3
    );
}

#[tokio::test]
async fn dead_endpoint_is_a_transport_error() {
    let sim = Simulator::start(fleet(&[("r", 1)])).await.expect("sim");
    let url = sim.url();
    drop(sim);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let probe = Simulator::start(fleet(&[("r", 1)])).await.expect("sim");
    let client = client_with(&probe, simulator::DEFAULT_KEY_SECRET, |o| {
        o.endpoint_template = Some(url.clone())
    });
    let e = api::describe_regions(&client)
        .await
        .expect_err("nobody listens");
    assert!(matches!(e, ApiError::Transport { .. }), "{e:?}");
    assert!(!e.to_string().contains(simulator::DEFAULT_KEY_SECRET));
}

#[tokio::test]
async fn region_endpoints_from_describe_regions_are_used() {
    let sim = Simulator::start(fleet(&[("r", 2)])).await.expect("sim");
    let client = client_with(&sim, simulator::DEFAULT_KEY_SECRET, |_| {});
    // Pretend no template: the endpoint comes from RegionEndpoint.
    let plain = client_with(&sim, simulator::DEFAULT_KEY_SECRET, |o| {
        o.endpoint_template = None
    });
    let regions = api::describe_regions(&client).await.expect("regions");
    plain.set_region_endpoints(
        regions
            .iter()
            .filter_map(|r| Some((r.id.clone(), r.endpoint.clone()?))),
    );
    assert_eq!(plain.endpoint_for(Some("r")), sim.url());
    assert_eq!(
        plain.endpoint_for(Some("cn-beijing")),
        "https://ecs.cn-beijing.aliyuncs.com"
    );
    assert_eq!(
        api::walk_instance_status(&plain, "r")
            .await
            .expect("instances")
            .len(),
        2
    );
}

#[tokio::test]
async fn plugin_versions_rule_is_simulated() {
    let sim = Simulator::start(fleet(&[("r", 80)])).await.expect("sim");
    let client = client(&sim);
    let fleet = sim.fleet();
    let old = fleet.regions["r"]
        .instances
        .iter()
        .find(|i| {
            !i.plugins.is_empty()
                && !simulator::fleet::agent_supports_plugins(&i.os_type, &i.version)
        })
        .expect("an old agent with plugins");
    let got = plugins::list_plugins_of_instance(&client, "r", &old.id)
        .await
        .expect("answers");
    assert!(
        got.is_empty(),
        "an agent too old to report plugins reports none"
    );
}
