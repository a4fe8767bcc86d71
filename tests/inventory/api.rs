//! DescribeInstances, DescribeManagedInstances and DescribeActivations: the
//! walkers against the simulator over real loopback HTTP return exactly the
//! seeded data, page at the edges, fall back to numbered pages where the API
//! is older, and surface ApiNotSupported and missing permissions as typed
//! errors.

use std::collections::BTreeSet;

use crate::common::*;
use cloud_assistant_exporter::api::invocations::Filter;
use cloud_assistant_exporter::api::{
    self, Activation, InstanceInfo, ManagedInstance, Tags, activations, instances, invocations,
    managed_instances, tag_label_name,
};
use cloud_assistant_exporter::error::ApiError;
use cloud_assistant_exporter::simulator::fleet::{QUIRK_MINUTE_TIMES, QUIRK_OMIT_OPTIONAL};
use cloud_assistant_exporter::simulator::{
    Fleet, FleetConfig, HybridPaging, RegionFault, RegionSpec, SimActivation, SimManagedInstance,
    Simulator,
};
use serde_json::Value;

fn tags(pairs: &[(String, String)]) -> Tags {
    Tags::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// A time as an answer with these quirks gives it back.
fn seen(t: i64, quirks: u8) -> i64 {
    if quirks & QUIRK_MINUTE_TIMES != 0 {
        t - t.rem_euclid(60)
    } else {
        t
    }
}

/// `regions` with the specs changed by `tune`.
fn config(regions: &[(&str, usize)], tune: impl Fn(&str, RegionSpec) -> RegionSpec) -> FleetConfig {
    let mut cfg = fleet(regions);
    cfg.regions = cfg
        .regions
        .into_iter()
        .map(|r| tune(&r.id.clone(), r))
        .collect();
    cfg
}

fn status_code(e: &ApiError) -> (Option<u16>, &str) {
    (e.status(), e.code())
}

#[tokio::test]
async fn instance_info_is_exactly_the_seeded_fleet_at_page_edges() {
    let sizes = [
        ("r-0", 0),
        ("r-1", 1),
        ("r-100", 100),
        ("r-101", 101),
        ("r-250", 250),
        ("q-30", 30),
    ];
    let cfg = config(&sizes, |id, r| if id == "q-30" { r.quirky() } else { r });
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    let fleet = sim.fleet();
    let mut all: Vec<InstanceInfo> = Vec::new();
    for (region, n) in sizes {
        let before = sim.requests(instances::ACTION);
        let got = api::walk_instance_info(&client, region)
            .await
            .expect("walk");
        assert_eq!(
            sim.requests(instances::ACTION) - before,
            (n as u64).div_ceil(100).max(1),
            "{region}: one call per 100 instances"
        );
        let r = &fleet.regions[region];
        let want: Vec<InstanceInfo> = r
            .instances
            .iter()
            .map(|s| InstanceInfo {
                instance_id: s.id.as_str().into(),
                name: (s.quirks & QUIRK_OMIT_OPTIONAL == 0).then(|| s.name.as_str().into()),
                zone_id: Some(s.zone_id.as_str().into()),
                instance_type: Some(s.instance_type.as_str().into()),
                os_type: Some(s.os_type.to_ascii_lowercase().into()),
                tags: tags(&s.tags),
            })
            .collect();
        assert_eq!(got, want, "{region}");
        all.extend(got);
    }
    // The data the info series must carry through: odd names and tags.
    for odd in [" ", "\"", "'", "\\", "应用"] {
        assert!(
            all.iter()
                .any(|i| i.name.as_deref().is_some_and(|n| n.contains(odd))),
            "a name with {odd:?}"
        );
    }
    assert!(
        all.iter().any(|i| i.tags.len() == 20),
        "an instance with 20 tags"
    );
    assert!(
        all.iter().any(|i| i.tags.get("owner") == Some("")),
        "an empty tag value"
    );
    let keys: BTreeSet<&str> = all
        .iter()
        .flat_map(|i| i.tags.iter().map(|(k, _)| k))
        .collect();
    for k in [
        "Cost Center",
        "app.kubernetes.io/name",
        "部门",
        "env",
        "team",
    ] {
        assert!(keys.contains(k), "tag key {k:?}");
    }
    assert!(
        all.iter().any(|i| i.name.is_none()),
        "a quirky row without a name"
    );
}

fn want_managed(m: &SimManagedInstance) -> ManagedInstance {
    let q = m.quirks;
    ManagedInstance {
        instance_id: m.id.as_str().into(),
        connected: m.connected,
        name: Some(m.name.as_str().into()),
        hostname: Some(m.hostname.as_str().into()),
        agent_version: Some(m.agent_version.as_str().into()),
        os_type: Some(m.os_type.as_str().into()),
        os_version: Some(m.os_version.as_str().into()),
        invocations: Some(m.invocations),
        last_invoked: m
            .last_invoked
            .filter(|_| q & QUIRK_OMIT_OPTIONAL == 0)
            .map(|t| seen(t, q)),
        registered: Some(seen(m.registered_at, q)),
        activation_id: Some(m.activation_id.as_str().into()),
        tags: tags(&m.tags),
    }
}

fn want_activation(a: &SimActivation) -> Activation {
    Activation {
        activation_id: a.id.as_str().into(),
        instance_name: Some(a.instance_name.as_str().into()),
        limit: Some(a.limit),
        registered: Some(a.registered),
        deregistered: Some(a.deregistered),
        disabled: Some(a.disabled),
        created: Some(seen(a.created, a.quirks)),
        ttl_hours: Some(a.ttl_hours),
        tags: tags(&a.tags),
    }
}

/// Walks the managed instances and the activation codes of `region`,
/// checks both against the seeded fleet, and returns each with the calls
/// its walk took.
async fn walk_hybrid(
    sim: &Simulator,
    client: &cloud_assistant_exporter::client::Client,
    region: &str,
) -> ((Vec<ManagedInstance>, u64), (Vec<Activation>, u64)) {
    let fleet = sim.fleet();
    let r = &fleet.regions[region];
    let before = sim.requests(managed_instances::ACTION);
    let managed = api::walk_managed_instances(client, region)
        .await
        .expect("managed");
    let managed_calls = sim.requests(managed_instances::ACTION) - before;
    let want: Vec<_> = r.managed.iter().map(want_managed).collect();
    assert_eq!(managed, want, "{region}");
    let before = sim.requests(activations::ACTION);
    let codes = api::walk_activations(client, region).await.expect("codes");
    let code_calls = sim.requests(activations::ACTION) - before;
    let want: Vec<_> = r.activations.iter().map(want_activation).collect();
    assert_eq!(codes, want, "{region}");
    ((managed, managed_calls), (codes, code_calls))
}

#[tokio::test]
async fn the_hybrid_fleet_is_exactly_the_seeded_one_at_page_edges() {
    let sizes = [("h-0", 0), ("h-50", 0), ("h-51", 0), ("h-q", 0)];
    let cfg = config(&sizes, |id, r| match id {
        "h-50" => r.hybrid(50, 50),
        "h-51" => r.hybrid(51, 51),
        "h-q" => r.quirky().hybrid(40, 6),
        _ => r,
    });
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    let fleet = sim.fleet();
    let start = 1_700_000_000;
    for (region, _) in sizes {
        let r = &fleet.regions[region];
        let ((got, managed_calls), (codes, code_calls)) = walk_hybrid(&sim, &client, region).await;
        let pages = |n: usize| (n as u64).div_ceil(50).max(1);
        assert_eq!(
            managed_calls,
            pages(r.managed.len()),
            "{region}: one call per 50, one for none"
        );
        assert_eq!(code_calls, pages(r.activations.len()), "{region}");
        if region == "h-q" {
            assert!(got.iter().any(|m| m.connected) && got.iter().any(|m| !m.connected));
            // Code 0 has expired, 1 is disabled, 2 has one registration
            // left, 3 expires within a day.
            assert!(
                codes
                    .iter()
                    .any(|a| a.expires_at().is_some_and(|e| e < start))
            );
            assert!(codes.iter().any(|a| a.disabled == Some(true)));
            assert!(codes.iter().any(|a| {
                a.limit
                    .zip(a.registered)
                    .zip(a.deregistered)
                    .is_some_and(|((l, r), d)| l == r + d + 1 && r + d >= 9)
            }));
            assert!(codes.iter().any(|a| {
                a.expires_at()
                    .is_some_and(|e| (start..start + 86_400).contains(&e))
            }));
            assert!(got.iter().all(|m| m.instance_id.starts_with("mi-")));
        }
    }
}

#[tokio::test]
async fn page_tokens_hold_plus_slash_and_equals_and_come_back_intact() {
    let cfg = config(&[("r", 150)], |_, r| r.hybrid(60, 0));
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    for (action, size) in [
        (instances::ACTION, "100"),
        (managed_instances::ACTION, "50"),
    ] {
        let first = client
            .call(action, Some("r"), &[kv("MaxResults", size)])
            .await
            .expect("first page")
            .json()
            .expect("JSON");
        let token = first["NextToken"].as_str().expect("a token").to_string();
        assert!(
            token.contains('+') && token.contains('/') && token.ends_with('='),
            "{token}"
        );
        let second = client
            .call(
                action,
                Some("r"),
                &[kv("MaxResults", size), kv("NextToken", &token)],
            )
            .await
            .expect("the token is read back as sent")
            .json()
            .expect("JSON");
        assert!(second.get("NextToken").is_none(), "{action}: two pages");
    }
}

#[tokio::test]
async fn older_hybrid_paging_falls_back_to_page_numbers() {
    let sizes = [("ignores", 0), ("refuses", 0), ("tokens", 0)];
    let cfg = config(&sizes, |id, r| {
        let r = r.hybrid(120, 55);
        match id {
            "ignores" => r.hybrid_paging(HybridPaging::IgnoresTokens),
            "refuses" => r.hybrid_paging(HybridPaging::RefusesTokens),
            _ => r,
        }
    });
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    for (region, _) in sizes {
        let ((_, managed_calls), (_, code_calls)) = walk_hybrid(&sim, &client, region).await;
        // 3 pages of 50; the older APIs cost the first, wasted call too.
        let extra = u64::from(region != "tokens");
        assert_eq!(managed_calls, 3 + extra, "{region}");
        assert_eq!(code_calls, 2 + extra, "{region}");
    }
    let m = client.metrics();
    assert_eq!(
        m.count(managed_instances::ACTION, "InvalidParameter.MaxResults"),
        1
    );
    assert_eq!(
        m.count(activations::ACTION, "InvalidParameter.MaxResults"),
        1
    );
}

#[tokio::test]
async fn regions_without_the_hybrid_actions_answer_api_not_supported() {
    let cfg = config(&[("old", 5)], |_, r| r.hybrid(3, 2).hybrid_not_supported());
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    let e = api::walk_managed_instances(&client, "old")
        .await
        .expect_err("unsupported");
    assert!(e.is_api_not_supported() && !e.is_permission_denied(), "{e}");
    assert_eq!(status_code(&e), (Some(400), "RegionId.ApiNotSupported"));
    let e = api::walk_activations(&client, "old")
        .await
        .expect_err("unsupported");
    assert!(e.is_api_not_supported(), "{e}");
    // No retry storm: one call each.
    assert_eq!(sim.requests(managed_instances::ACTION), 1);
    assert_eq!(sim.requests(activations::ACTION), 1);
    // The region's ECS instances are there all the same.
    assert_eq!(
        api::walk_instance_info(&client, "old")
            .await
            .expect("info")
            .len(),
        5
    );
}

#[tokio::test]
async fn a_missing_permission_is_a_typed_error_and_fails_only_that_action() {
    let cfg = config(&[("r", 20)], |_, r| r.hybrid(4, 2));
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    for action in OPTIONAL_API_ACTIONS {
        sim.set_faults(Default::default());
        sim.update_faults(|f| {
            f.deny(action);
        });
        sim.reset_counts();
        let e = match *action {
            instances::ACTION => api::walk_instance_info(&client, "r").await.map(|_| ()),
            managed_instances::ACTION => {
                api::walk_managed_instances(&client, "r").await.map(|_| ())
            }
            invocations::ACTION => {
                api::invocations::walk_invocations(&client, "r", Filter::Failed, 20)
                    .await
                    .map(|_| ())
            }
            _ => api::walk_activations(&client, "r").await.map(|_| ()),
        }
        .expect_err("denied");
        assert!(e.is_permission_denied(), "{e}");
        assert!(!e.is_retryable() && !e.is_api_not_supported());
        assert_eq!(status_code(&e), (Some(403), "Forbidden.RAM"));
        assert_eq!(e.action(), *action);
        let text = e.to_string();
        assert!(
            text.contains(action) && text.contains("not authorized"),
            "{text}"
        );
        assert!(!text.contains(cloud_assistant_exporter::simulator::DEFAULT_KEY_SECRET));
        assert_eq!(
            sim.requests(action),
            1,
            "{action}: refused once, not retried"
        );
        // Everything else still answers.
        for other in OPTIONAL_API_ACTIONS.iter().filter(|a| *a != action) {
            let ok = match *other {
                instances::ACTION => api::walk_instance_info(&client, "r").await.map(|_| ()),
                managed_instances::ACTION => {
                    api::walk_managed_instances(&client, "r").await.map(|_| ())
                }
                invocations::ACTION => {
                    api::invocations::walk_invocations(&client, "r", Filter::Timed, 20)
                        .await
                        .map(|_| ())
                }
                _ => api::walk_activations(&client, "r").await.map(|_| ()),
            };
            assert!(ok.is_ok(), "{other} with {action} denied: {ok:?}");
        }
        assert_eq!(
            api::walk_cloud_assistant_status(&client, "r")
                .await
                .expect("agents")
                .len(),
            20
        );
    }
    // The body names the permission, as the real API's AccessDeniedDetail.
    sim.set_faults(Default::default());
    sim.update_faults(|f| {
        f.deny(instances::ACTION);
    });
    let resp = reqwest::Client::new()
        .post(sim.url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(signed_body(instances::ACTION, "r"))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 403);
    let body: Value = serde_json::from_str(&resp.text().await.expect("body")).expect("json");
    assert_eq!(
        body["AccessDeniedDetail"]["AuthAction"],
        "ecs:DescribeInstances"
    );
}

/// A form body for `action` in `region`, signed with the simulator's key.
fn signed_body(action: &str, region: &str) -> String {
    use cloud_assistant_exporter::{secret::Secret, signer};
    let now = cloud_assistant_exporter::clock::format_iso8601(
        cloud_assistant_exporter::clock::Clock::System.now(),
    );
    let common = signer::CommonParams {
        access_key_id: cloud_assistant_exporter::simulator::DEFAULT_KEY_ID,
        security_token: None,
        action,
        version: "2014-05-26",
        region_id: Some(region),
        timestamp: &now,
        nonce: &format!("nonce-{action}-{region}"),
    };
    let secret = Secret::new(cloud_assistant_exporter::simulator::DEFAULT_KEY_SECRET);
    signer::canonical_query(&signer::sign_request("POST", vec![], &common, &secret))
}

#[tokio::test]
async fn documented_limits_of_the_new_actions() {
    let cfg = config(&[("r", 250)], |_, r| r.hybrid(3, 3));
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    // Action, parameter and a value the reference refuses. Its error codes:
    // `InvalidParam.<name>` for the numbered paging parameters,
    // `InvalidParameter.<name>` for the token paging ones.
    let cases = [
        (instances::ACTION, "MaxResults", "0"),
        (instances::ACTION, "MaxResults", "ten"),
        (instances::ACTION, "NextToken", "bogus+/="),
        (managed_instances::ACTION, "MaxResults", "51"),
        (managed_instances::ACTION, "MaxResults", "0"),
        (managed_instances::ACTION, "PageSize", "51"),
        (managed_instances::ACTION, "PageNumber", "0"),
        (managed_instances::ACTION, "NextToken", "bogus+/="),
        (activations::ACTION, "MaxResults", "51"),
        (activations::ACTION, "PageSize", "100"),
    ];
    for (action, key, val) in cases {
        let code = match key {
            "PageSize" | "PageNumber" => format!("InvalidParam.{key}"),
            _ => format!("InvalidParameter.{key}"),
        };
        let e = client
            .call(action, Some("r"), &[kv(key, val)])
            .await
            .expect_err("refused");
        assert_eq!(status_code(&e), (Some(400), &*code), "{action} {key}={val}");
        assert!(!e.is_retryable());
    }
    // DescribeInstances' reference: "Valid values: 1 to 100"; unset or below
    // 10 gives 10, above 100 gives 100 (it cuts the page, it does not refuse).
    for (asked, rows) in [("100", 100), ("101", 100), ("5", 10), ("37", 37)] {
        let page = client
            .call(instances::ACTION, Some("r"), &[kv("MaxResults", asked)])
            .await
            .expect("page");
        let got = instances::parse_page(page.body()).expect("parses").len();
        assert_eq!(got, rows, "MaxResults={asked}");
        let page: serde_json::Value = serde_json::from_slice(page.body()).expect("JSON");
        assert!(page["NextToken"].is_string());
    }
}

#[tokio::test]
async fn a_missing_list_key_is_an_empty_page_and_broken_pages_are_errors() {
    // A quirky region leaves empty lists out altogether.
    let cfg = config(&[("q", 0)], |_, r| r.quirky());
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    let raw = client
        .call(instances::ACTION, Some("q"), &[])
        .await
        .expect("page")
        .json()
        .expect("JSON");
    assert!(raw.get("Instances").is_none(), "{raw}");
    let raw = client
        .call(managed_instances::ACTION, Some("q"), &[])
        .await
        .expect("page")
        .json()
        .expect("JSON");
    assert!(
        raw.get("Instances").is_none() && raw["TotalCount"] == "0",
        "{raw}"
    );
    assert!(
        api::walk_instance_info(&client, "q")
            .await
            .expect("info")
            .is_empty()
    );
    assert!(
        api::walk_managed_instances(&client, "q")
            .await
            .expect("managed")
            .is_empty()
    );
    assert!(
        api::walk_activations(&client, "q")
            .await
            .expect("codes")
            .is_empty()
    );

    // A missing list with a NextToken would lose rows: an error that says so.
    sim.update_faults(|f| {
        f.actions.insert(
            instances::ACTION.into(),
            RegionFault::Body(r#"{"RequestId":"R","NextToken":"AAAA"}"#.into()),
        );
        f.actions.insert(
            managed_instances::ACTION.into(),
            RegionFault::Body(r#"{"Instances":[{"InstanceId":"mi-1","Connected":"maybe"}]}"#.into()),
        );
        f.actions.insert(
            activations::ACTION.into(),
            RegionFault::Body(r#"{"ActivationList":[{"ActivationId":"A","InstanceCount":"12","Disabled":"false","Tags":[]}]}"#.into()),
        );
    });
    let e = api::walk_instance_info(&client, "q")
        .await
        .expect_err("broken");
    assert!(e.to_string().contains("Instances is missing"), "{e}");
    let e = api::walk_managed_instances(&client, "q")
        .await
        .expect_err("broken");
    assert!(e.to_string().contains("mi-1: Connected"), "{e}");
    // Numbers and booleans as strings parse.
    let codes = api::walk_activations(&client, "q")
        .await
        .expect("quirks parse");
    assert_eq!((codes[0].limit, codes[0].disabled), (Some(12), Some(false)));
}

#[tokio::test]
async fn every_request_is_signed() {
    let cfg = config(&[("r", 2)], |_, r| r.hybrid(2, 1));
    let sim = Simulator::start(cfg).await.expect("sim");
    let bad = client_with(&sim, "not-the-secret", |_| {});
    for e in [
        api::walk_instance_info(&bad, "r").await.map(|_| ()),
        api::walk_managed_instances(&bad, "r").await.map(|_| ()),
        api::walk_activations(&bad, "r").await.map(|_| ()),
    ] {
        let e = e.expect_err("bad signature");
        assert_eq!(status_code(&e), (Some(400), "IncompleteSignature"));
        assert!(!e.to_string().contains("not-the-secret"));
    }
}

#[tokio::test]
async fn the_policy_actions_are_exactly_the_calls_the_walkers_make() {
    let cfg = config(&[("r", 60)], |_, r| r.hybrid(2, 1));
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    let regions = api::describe_regions(&client).await.expect("regions");
    assert_eq!(regions.len(), 1);
    api::walk_cloud_assistant_status(&client, "r")
        .await
        .expect("agents");
    api::walk_instance_status(&client, "r")
        .await
        .expect("status");
    api::walk_plugin_status_by_name(&client, "r", "ecs-tool-monitor")
        .await
        .expect("sweep");
    let one = sim.fleet().regions["r"].instances[0].id.clone();
    let _ = api::list_plugins_of_instance(&client, "r", &one).await;
    api::walk_instance_info(&client, "r").await.expect("info");
    api::walk_managed_instances(&client, "r")
        .await
        .expect("managed");
    api::walk_activations(&client, "r").await.expect("codes");
    api::invocations::walk_invocations(&client, "r", Filter::PartialFailed, 20)
        .await
        .expect("invocations");
    let called: BTreeSet<String> = sim
        .requests_by_region()
        .into_keys()
        .map(|(a, _)| a)
        .collect();
    let listed: BTreeSet<String> = API_ACTIONS.iter().map(|a| a.to_string()).collect();
    assert_eq!(called, listed);
}

#[tokio::test]
async fn list_plugin_status_does_not_take_managed_instance_ids() {
    // Its reference documents ECS instances only (unlike
    // DescribeCloudAssistantStatus, which names managed instances): the
    // simulator knows no plugins of `mi-*` servers.
    let cfg = config(&[("r", 3)], |_, r| r.hybrid(2, 0));
    let sim = Simulator::start(cfg).await.expect("sim");
    let client = client(&sim);
    let mi = sim.fleet().regions["r"].managed[0].id.clone();
    let e = api::list_plugins_of_instance(&client, "r", &mi)
        .await
        .expect_err("not an ECS instance");
    assert_eq!(status_code(&e), (Some(404), "InvalidInstance.NotFound"));
}

#[test]
fn the_new_data_leaves_the_rest_of_a_seeded_fleet_as_it_was() {
    let plain = fleet(&[("a", 80), ("b", 30)]);
    let mut hybrid = plain.clone();
    hybrid.regions = hybrid
        .regions
        .into_iter()
        .map(|r| r.hybrid(25, 7).hybrid_paging(HybridPaging::IgnoresTokens))
        .collect();
    let now = plain.start + 900;
    let ecs_side = |f: &Fleet| -> Vec<String> {
        f.regions
            .values()
            .flat_map(|r| r.instances.iter())
            .map(|i| {
                let plugins: Vec<Value> = i.plugins.iter().map(|p| i.plugin_json(p, now)).collect();
                format!(
                    "{} {} {} {:?}",
                    i.id,
                    i.status,
                    i.agent_json(now, false),
                    plugins
                )
            })
            .collect()
    };
    let (a, b) = (Fleet::generate(&plain), Fleet::generate(&hybrid));
    assert_eq!(ecs_side(&a), ecs_side(&b));
    assert!(a.regions["a"].managed.is_empty() && a.regions["a"].activations.is_empty());
    assert_eq!(b.regions["a"].managed.len(), 25);
    // And the instance data itself is the same with or without a hybrid fleet.
    let info = |f: &Fleet| -> Vec<Value> {
        f.regions
            .values()
            .flat_map(|r| r.instances.iter().map(|i| i.info_json(false)))
            .collect()
    };
    assert_eq!(info(&a), info(&b));
    // The demo shows a small hybrid fleet, and a region without it.
    let demo = Fleet::generate(&FleetConfig::demo(now));
    assert!(
        demo.regions
            .values()
            .map(|r| r.managed.len())
            .sum::<usize>()
            > 0
    );
    assert!(demo.regions.values().any(|r| !r.hybrid_supported));
}

#[test]
fn every_tag_key_of_the_fleet_becomes_a_valid_label_name() {
    let f = Fleet::generate(&FleetConfig::demo(1_700_000_000));
    let keys: BTreeSet<&str> = f
        .regions
        .values()
        .flat_map(|r| {
            let ecs = r.instances.iter().flat_map(|i| i.tags.iter());
            let mi = r.managed.iter().flat_map(|m| m.tags.iter());
            ecs.chain(mi).map(|(k, _)| k.as_str())
        })
        .collect();
    assert!(keys.len() >= 20);
    for k in &keys {
        let name = tag_label_name(k);
        let mut chars = name.chars();
        assert!(
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        );
        assert!(
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{k:?} → {name}"
        );
        assert!(name.starts_with("tag_") && !name.starts_with("__"));
    }
    assert_eq!(tag_label_name("Cost Center"), "tag_cost_center");
    assert_eq!(
        tag_label_name("app.kubernetes.io/name"),
        "tag_app_kubernetes_io_name"
    );
    assert_eq!(tag_label_name("部门"), "tag___");
    assert!(api::tag_label_names(&["cost-center", "Cost Center"]).is_err());
}
