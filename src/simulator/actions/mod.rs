//! The ECS actions as the simulator answers them, one file each (as the
//! exporter's `api` has one per action). [`dispatch`] applies the injected
//! faults and the RAM policy, finds the region and hands the request to
//! its action.

mod activations;
mod call;
mod cloud_assistant;
mod instance_status;
mod instances;
mod invocations;
mod managed_instances;
mod plugins;
mod regions;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::auth::{Answer, error};
use super::faults::RegionFault;
use super::paging::instance_ids;
use super::state::SimState;
use call::Call;

/// Answers one authenticated request.
pub fn dispatch(state: &SimState, params: &[(String, String)]) -> Answer {
    let map: BTreeMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let action = map.get("Action").copied().unwrap_or_default();
    let region = map.get("RegionId").copied().unwrap_or_default();
    let fault = state.fault(action, region);
    match &fault {
        Some(RegionFault::Error { status, code }) => {
            return error(state, *status, code, "injected fault");
        }
        Some(RegionFault::Body(b)) => return (200, Value::String(b.clone())),
        Some(RegionFault::Raw { status, body }) => return (*status, Value::String(body.clone())),
        _ => {}
    }
    if state.denied(action) {
        return forbidden_ram(state, action);
    }
    if action == "ListPluginStatus"
        && let Some(name) = map.get("Name")
        && let Some(RegionFault::Error { status, code }) = state.faults.read().ok().and_then(|f| {
            f.plugin_sweeps
                .get(*name)
                .or_else(|| {
                    f.region_plugin_sweeps
                        .get(&(region.to_string(), name.to_string()))
                })
                .cloned()
        })
    {
        return error(state, status, &code, "injected fault");
    }
    if action == "DescribeRegions" {
        return regions::describe_regions(state);
    }
    if !matches!(
        action,
        "DescribeCloudAssistantStatus"
            | "DescribeInstanceStatus"
            | "ListPluginStatus"
            | "DescribeInstances"
            | "DescribeManagedInstances"
            | "DescribeActivations"
            | "DescribeInvocations"
    ) {
        return error(
            state,
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        );
    }
    if region.is_empty() {
        return error(
            state,
            400,
            "MissingRegionId",
            "RegionId is mandatory for this action.",
        );
    }
    let endless = fault == Some(RegionFault::EndlessToken);
    let repeat = fault == Some(RegionFault::RepeatToken);
    let fleet = state.fleet.read().unwrap_or_else(|e| e.into_inner());
    let Some(sim_region) = fleet.regions.get(region) else {
        return error(
            state,
            404,
            "InvalidRegionId.NotFound",
            "The RegionId provided does not exist in our records.",
        );
    };
    let call = Call {
        state,
        map: &map,
        region: sim_region,
        scope: format!("{action}|{region}"),
        endless,
        repeat,
        now: state.clock.now(),
        ids: instance_ids(&map),
    };
    match action {
        "DescribeInstances" => instances::describe_instances(&call),
        "DescribeInvocations" => invocations::describe_invocations(&call),
        "DescribeManagedInstances" => managed_instances::describe_managed_instances(&call),
        "DescribeActivations" => activations::describe_activations(&call),
        "DescribeCloudAssistantStatus" => cloud_assistant::describe_cloud_assistant_status(&call),
        "DescribeInstanceStatus" => instance_status::describe_instance_status(&call),
        // ListPluginStatus, the one action left.
        _ => plugins::list_plugin_status(&call),
    }
    .unwrap_or_else(|a| a)
}

/// HTTP 403 `Forbidden.RAM`, as ECS answers a RAM user or role whose
/// policy lacks the action (query actions since December 2025; before,
/// they answered an empty list).
fn forbidden_ram(state: &SimState, action: &str) -> Answer {
    let (status, mut body) = error(
        state,
        403,
        "Forbidden.RAM",
        "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
    );
    body["AccessDeniedDetail"] = json!({
        "AuthAction": format!("ecs:{action}"),
        "AuthPrincipalType": "SubUser",
        "AuthPrincipalDisplayName": "cloud-assistant-exporter",
        "PolicyType": "AccountLevelIdentityBasedPolicy",
        "NoPermissionType": "ImplicitDeny",
    });
    (status, body)
}
