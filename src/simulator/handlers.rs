//! The ECS actions as the simulator answers them, after checking the
//! signature, nonce and timestamp of every request like the real API.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

use super::SimState;
use super::faults::RegionFault;
use super::fleet::{HybridPaging, SimInstance, SimRegion};
use crate::clock::{Clock, parse_iso8601};
use crate::secret::Secret;
use crate::signer::{canonical_query, signature, string_to_sign};

/// An answer: HTTP status and JSON body.
pub type Answer = (u16, Value);

pub fn error(state: &SimState, status: u16, code: &str, message: &str) -> Answer {
    (
        status,
        json!({"RequestId": state.request_id(), "Code": code, "Message": message, "HostId": "ecs.aliyuncs.com"}),
    )
}

/// `SignatureDoesNotMatch` as the real API words it: the message echoes
/// the string to sign it computed, AccessKeyId and SecurityToken included.
pub fn signature_mismatch(state: &SimState, method: &str, params: &[(String, String)]) -> Answer {
    let rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .cloned()
        .collect();
    let message = format!(
        "Specified signature is not matched with our calculation. server string to sign is:{}",
        string_to_sign(method, &canonical_query(&rest))
    );
    error(state, 400, "SignatureDoesNotMatch", &message)
}

/// Decodes `k=v&k=v` (percent-encoding, `+` as space as in forms).
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => match (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

/// How long a Timestamp may be away from the server's clock.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// Checks signature, method, version, nonce and timestamp of an ECS call.
/// `Err` is the answer.
pub fn authenticate(
    state: &SimState,
    method: &str,
    params: &[(String, String)],
) -> Result<(), Answer> {
    authenticate_for(state, method, params, "2014-05-26", true)
}

/// The same for the API of `version`; `ecs` calls also honour
/// [`super::Simulator::refuse_long_term_keys`].
pub fn authenticate_for(
    state: &SimState,
    method: &str,
    params: &[(String, String)],
    version: &str,
    ecs: bool,
) -> Result<(), Answer> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    for required in [
        "AccessKeyId",
        "Signature",
        "SignatureNonce",
        "Timestamp",
        "SignatureMethod",
        "SignatureVersion",
        "Version",
        "Action",
    ] {
        if get(required).is_none() {
            return Err(error(
                state,
                400,
                &format!("Missing{required}"),
                &format!("{required} is mandatory for this action."),
            ));
        }
    }
    if get("SignatureMethod") != Some("HMAC-SHA1") || get("SignatureVersion") != Some("1.0") {
        return Err(error(
            state,
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards.",
        ));
    }
    let key_id = get("AccessKeyId").unwrap_or_default();
    let Some(key) = state.key(key_id) else {
        return Err(error(
            state,
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    };
    let rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .cloned()
        .collect();
    let expect = signature(
        &Secret::new(key.secret.clone()),
        &string_to_sign(method, &canonical_query(&rest)),
    );
    if get("Signature") != Some(expect.as_str()) {
        return Err(error(
            state,
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards.",
        ));
    }
    if let Some(token) = &key.security_token
        && get("SecurityToken") != Some(token.as_str())
    {
        return Err(error(
            state,
            400,
            "InvalidSecurityToken.Mismatch",
            "Specified SecurityToken mismatch with the AccessKey.",
        ));
    }
    let now = Clock::System.now();
    if key.expires_at.is_some_and(|e| now >= e) {
        state
            .expired_refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(error(
            state,
            400,
            "InvalidSecurityToken.Expired",
            "Specified SecurityToken is expired.",
        ));
    }
    if ecs
        && key.security_token.is_none()
        && state
            .long_term_refused
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Err(error(
            state,
            403,
            "Forbidden.RAM",
            "User not authorized to operate on the specified resource, or this API does not support RAM.",
        ));
    }
    match get("Timestamp").and_then(parse_iso8601) {
        None => {
            return Err(error(
                state,
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            ));
        }
        Some(t) if (t - now).abs() > MAX_SKEW_SECS => {
            return Err(error(
                state,
                400,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            ));
        }
        Some(_) => {}
    }
    if !state.use_nonce(get("SignatureNonce").unwrap_or_default(), now) {
        return Err(error(
            state,
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    if get("Version") != Some(version) {
        return Err(error(
            state,
            400,
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        ));
    }
    Ok(())
}

/// Opaque page tokens that always hold `+`, `/` and `=`.
fn make_token(state: &SimState, scope: &str, offset: usize) -> String {
    let payload = format!("{}|{scope}|{offset}", state.token_salt);
    let mut bytes = vec![0xfb, 0xff];
    bytes.extend_from_slice(payload.as_bytes());
    // A length that is not a multiple of 3 always ends in `=`.
    while bytes.len() % 3 == 0 {
        bytes.push(b'|');
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn read_token(state: &SimState, scope: &str, token: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let text = std::str::from_utf8(bytes.get(2..)?)
        .ok()?
        .trim_end_matches('|');
    let mut parts = text.rsplitn(2, '|');
    let offset = parts.next()?.parse().ok()?;
    (parts.next()? == format!("{}|{scope}", state.token_salt)).then_some(offset)
}

fn page_size(
    state: &SimState,
    params: &BTreeMap<&str, &str>,
    name: &str,
    code: &str,
) -> Result<usize, Answer> {
    match params.get(name) {
        None => Ok(10),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=50).contains(&n) => Ok(n),
            _ => Err(error(
                state,
                400,
                code,
                &format!("The specified parameter {name} is not valid."),
            )),
        },
    }
}

fn instance_ids(params: &BTreeMap<&str, &str>) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k.starts_with("InstanceId."))
        .map(|(_, v)| v.to_string())
        .collect()
}

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
        let listed = state.faults.read().ok().and_then(|f| f.region_list.clone());
        let regions: Vec<Value> = match listed {
            Some(list) => list
                .into_iter()
                .map(|(id, endpoint)| {
                    let endpoint = if endpoint.is_empty() {
                        state.base_url()
                    } else {
                        endpoint
                    };
                    json!({"RegionId": id, "RegionEndpoint": endpoint, "LocalName": id})
                })
                .collect(),
            None => {
                let fleet = state.fleet.read().unwrap_or_else(|e| e.into_inner());
                fleet
                    .regions
                    .keys()
                    .map(|id| json!({"RegionId": id, "RegionEndpoint": state.base_url(), "LocalName": id}))
                    .collect()
            }
        };
        return (
            200,
            json!({"RequestId": state.request_id(), "Regions": {"Region": regions}}),
        );
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
    let now = state.clock.now();
    let ids = instance_ids(&map);
    let scope = format!("{action}|{region}");
    match action {
        "DescribeInstances" => describe_instances(state, &map, sim_region, &scope, endless, repeat)
            .unwrap_or_else(|a| a),
        "DescribeInvocations" => {
            describe_invocations(state, &map, sim_region, &scope, endless, repeat)
                .unwrap_or_else(|a| a)
        }
        "DescribeManagedInstances" => {
            let rows = &sim_region.managed;
            let page = Page::new(&scope, "Instances", endless, repeat);
            hybrid_page(state, &map, sim_region, page, rows.len(), |k| {
                rows[k].json()
            })
            .unwrap_or_else(|a| a)
        }
        "DescribeActivations" => {
            let rows = &sim_region.activations;
            let page = Page::new(&scope, "ActivationList", endless, repeat);
            hybrid_page(state, &map, sim_region, page, rows.len(), |k| {
                rows[k].json()
            })
            .unwrap_or_else(|a| a)
        }
        "DescribeCloudAssistantStatus" => {
            let size = match page_size(state, &map, "MaxResults", "InvalidParameter.MaxResults") {
                Ok(s) => s,
                Err(a) => return a,
            };
            if let Err(a) = page_size(state, &map, "PageSize", "InvalidParam.PageSize") {
                return a;
            }
            if ids.len() > 100 {
                return error(
                    state,
                    403,
                    "InstanceIds.ExceedLimit",
                    "The number of instance IDs exceeds the upper limit.",
                );
            }
            let rows = select(sim_region, &ids, None);
            let scope = format!("{action}|{region}");
            let (offset, start, end) =
                match page_window(state, &map, &scope, rows.len(), size, endless) {
                    Ok(w) => w,
                    Err(a) => return a,
                };
            let old = sim_region.quirky;
            let items: Vec<Value> = (start..end)
                .map(|k| rows.get(k).agent_json(now, old))
                .collect();
            let set = if old {
                json!({"InstanceCloudAssitantStatus": {"InstanceCloudAssitantStatusSet": items}})
            } else {
                json!({"InstanceCloudAssistantStatusSet": {"InstanceCloudAssistantStatus": items}})
            };
            let mut body = json!({"RequestId": state.request_id(), "TotalCount": rows.len(), "PageSize": size});
            merge(&mut body, set);
            if let Some(next) = next_offset(offset, size, end, rows.len(), endless, repeat) {
                body["NextToken"] = json!(make_token(state, &scope, next));
            }
            (200, body)
        }
        "DescribeInstanceStatus" => {
            let size = match page_size(state, &map, "PageSize", "InvalidParam.PageSize") {
                Ok(s) => s,
                Err(a) => return a,
            };
            let number = match map.get("PageNumber").map(|v| v.parse::<usize>()) {
                None => 1,
                Some(Ok(n)) if n >= 1 => n,
                _ => {
                    return error(
                        state,
                        400,
                        "InvalidParam.PageNumber",
                        "The specified parameter PageNumber is not valid.",
                    );
                }
            };
            if ids.len() > 100 {
                return error(
                    state,
                    403,
                    "InvalidParameter.TooManyInstanceIds",
                    "Instance ids cannot be more than 100.",
                );
            }
            let rows = select(sim_region, &ids, None);
            let start = ((number - 1) * size).min(rows.len());
            let end = (start + size).min(rows.len());
            let items: Vec<Value> = (start..end)
                .map(|k| rows.get(k))
                .map(|i| json!({"InstanceId": i.id, "Status": i.status}))
                .collect();
            let total = if sim_region.quirky {
                json!(rows.len().to_string())
            } else {
                json!(rows.len())
            };
            (
                200,
                json!({"RequestId": state.request_id(), "TotalCount": total, "PageNumber": number, "PageSize": size,
                       "InstanceStatuses": {"InstanceStatus": items}}),
            )
        }
        _ => {
            let size = match page_size(state, &map, "MaxResults", "InvalidParameter.MaxResults") {
                Ok(s) => s,
                Err(a) => return a,
            };
            if ids.len() > 50 {
                return error(
                    state,
                    400,
                    "InstanceIds.ExceedLimit",
                    "The number of instance IDs exceeds the upper limit.",
                );
            }
            let name = map.get("Name").copied().filter(|n| !n.is_empty());
            if name.is_none() && ids.len() != 1 {
                return error(
                    state,
                    400,
                    "PluginName.MissingValue",
                    "The plugin name must be specified when the number of InstanceIds is not 1.",
                );
            }
            // Rows: every instance that reports the plugin (by name), or the
            // one instance asked for (all its plugins). Only the page's rows
            // are turned into JSON.
            let rows = select(sim_region, &ids, name);
            if name.is_none() {
                for inst in rows.iter() {
                    state.count_instance_query(&inst.id);
                }
            }
            let row_json = |inst: &SimInstance| {
                // An old or silent agent reports nothing about its plugins.
                let silent = name.is_none()
                    && (!super::fleet::agent_supports_plugins(&inst.os_type, &inst.version)
                        || !inst.agent_up(now));
                let plugins: Vec<Value> = inst
                    .plugins
                    .iter()
                    .filter(|p| !silent && name.is_none_or(|n| n == p.name))
                    .map(|p| inst.plugin_json(p, now))
                    .collect();
                json!({"InstanceId": inst.id, "PluginStatusSet": {"PluginStatus": plugins}})
            };
            if !ids.is_empty() && rows.is_empty() && name.is_none() {
                return error(
                    state,
                    404,
                    "InvalidInstance.NotFound",
                    "The specified instance does not exist.",
                );
            }
            let scope = format!("{action}|{region}|{}|{}", name.unwrap_or(""), ids.join(","));
            let (offset, start, end) =
                match page_window(state, &map, &scope, rows.len(), size, endless) {
                    Ok(w) => w,
                    Err(a) => return a,
                };
            let total = rows.len();
            let items: Vec<Value> = (start..end).map(|k| row_json(rows.get(k))).collect();
            let mut body = json!({"RequestId": state.request_id(), "TotalCount": total, "PageSize": size,
                                  "InstancePluginStatusSet": {"InstancePluginStatus": items}});
            if let Some(next) = next_offset(offset, size, end, total, endless, repeat) {
                body["NextToken"] = json!(make_token(state, &scope, next));
            }
            (200, body)
        }
    }
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

/// DescribeInstances' `MaxResults` as its reference documents it: "Valid
/// values: 1 to 100"; unset or below 10 gives 10, above 100 gives 100.
fn instances_page_size(state: &SimState, map: &BTreeMap<&str, &str>) -> Result<usize, Answer> {
    match map.get("MaxResults").map(|v| v.parse::<u64>()) {
        None => Ok(10),
        Some(Ok(n)) if n >= 1 => Ok(n.clamp(10, 100) as usize),
        Some(_) => Err(error(
            state,
            400,
            "InvalidParameter.MaxResults",
            "The specified parameter MaxResults is not valid.",
        )),
    }
}

fn describe_instances(
    state: &SimState,
    map: &BTreeMap<&str, &str>,
    region: &SimRegion,
    scope: &str,
    endless: bool,
    repeat: bool,
) -> Result<Answer, Answer> {
    let size = instances_page_size(state, map)?;
    let rows = &region.instances;
    let page = Page::new(scope, "Instances", endless, repeat);
    token_page(
        state,
        map,
        page,
        ("Instance", region.quirky),
        size,
        rows.len(),
        |k| rows[k].info_json(region.quirky),
    )
}

/// A NextToken page of `len` rows, `row(k)` each, listed as
/// `{list_key: {item_key: [..]}}`; a quirky region leaves an empty list out
/// altogether.
fn token_page(
    state: &SimState,
    map: &BTreeMap<&str, &str>,
    page: Page<'_>,
    (item_key, quirky): (&str, bool),
    size: usize,
    len: usize,
    row: impl Fn(usize) -> Value,
) -> Result<Answer, Answer> {
    let (offset, start, end) = page_window(state, map, page.scope, len, size, page.endless)?;
    let items: Vec<Value> = (start..end).map(row).collect();
    let mut body = json!({"RequestId": state.request_id(), "TotalCount": len,
                          "PageSize": size, "PageNumber": 1});
    if !(items.is_empty() && quirky) {
        body[page.list_key] = json!({ item_key: items });
    }
    if let Some(next) = next_offset(offset, size, end, len, page.endless, page.repeat) {
        body["NextToken"] = json!(make_token(state, page.scope, next));
    }
    Ok((200, body))
}

/// DescribeInvocations: `InvokeStatus` and `Timed` filter, `MaxResults`
/// 1..=50 (10 by default) and NextToken, newest first; output only with
/// `IncludeOutput=true`. Every request is counted by what it asked for.
fn describe_invocations(
    state: &SimState,
    map: &BTreeMap<&str, &str>,
    region: &SimRegion,
    scope: &str,
    endless: bool,
    repeat: bool,
) -> Result<Answer, Answer> {
    let invoke_status = map.get("InvokeStatus").copied();
    let timed = match map.get("Timed").copied() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(error(
                state,
                400,
                "InvalidParameter.Timed",
                "The specified parameter Timed is not valid.",
            ));
        }
    };
    let include_output = map.get("IncludeOutput").copied() == Some("true");
    state.count_invocation_query(super::invocations::query_kind(
        invoke_status,
        map.get("Timed").copied(),
        include_output,
    ));
    let size = page_size(state, map, "MaxResults", "InvalidParameter.MaxResults")?;
    // The token is bound to the filter it was made for.
    let scope = format!("{scope}|{invoke_status:?}|{timed:?}");
    let rows = super::invocations::select(&region.invocations, invoke_status, timed);
    let page = Page::new(&scope, "Invocations", endless, repeat);
    token_page(
        state,
        map,
        page,
        ("Invocation", region.quirky),
        size,
        rows.len(),
        |k| rows[k].json(include_output),
    )
}

/// Where a hybrid page comes from and how it is cut.
struct Page<'a> {
    scope: &'a str,
    list_key: &'a str,
    endless: bool,
    repeat: bool,
}

impl<'a> Page<'a> {
    fn new(scope: &'a str, list_key: &'a str, endless: bool, repeat: bool) -> Self {
        Page {
            scope,
            list_key,
            endless,
            repeat,
        }
    }
}

/// A page of DescribeManagedInstances or DescribeActivations: rows `row(k)`
/// for `k < len`, the list a plain array. Token paging when `MaxResults` or
/// `NextToken` is given (unless the region's older API ignores or refuses
/// them), numbered paging otherwise; `RegionId.ApiNotSupported` where the
/// region lacks the actions.
fn hybrid_page(
    state: &SimState,
    map: &BTreeMap<&str, &str>,
    region: &SimRegion,
    page: Page<'_>,
    len: usize,
    row: impl Fn(usize) -> Value,
) -> Result<Answer, Answer> {
    if !region.hybrid_supported {
        return Err(error(
            state,
            400,
            "RegionId.ApiNotSupported",
            "The api is not supported in this region.",
        ));
    }
    let token_param = ["MaxResults", "NextToken"]
        .into_iter()
        .find(|k| map.contains_key(k));
    if let (Some(name), HybridPaging::RefusesTokens) = (token_param, region.hybrid_paging) {
        return Err(error(
            state,
            400,
            &format!("InvalidParameter.{name}"),
            &format!("The specified parameter {name} is not valid."),
        ));
    }
    let num = |n: usize| {
        if region.quirky {
            json!(n.to_string())
        } else {
            json!(n)
        }
    };
    let page_size_param = page_size(state, map, "PageSize", "InvalidParam.PageSize")?;
    let mut body = json!({"RequestId": state.request_id(), "TotalCount": num(len)});
    let items: Vec<Value>;
    if token_param.is_some() && region.hybrid_paging == HybridPaging::Tokens {
        let size = page_size(state, map, "MaxResults", "InvalidParameter.MaxResults")?;
        let (offset, start, end) = page_window(state, map, page.scope, len, size, page.endless)?;
        items = (start..end).map(row).collect();
        body["PageSize"] = num(size);
        if let Some(next) = next_offset(offset, size, end, len, page.endless, page.repeat) {
            body["NextToken"] = json!(make_token(state, page.scope, next));
        }
    } else {
        let size = page_size_param;
        let number = match map.get("PageNumber").map(|v| v.parse::<usize>()) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            _ => {
                return Err(error(
                    state,
                    400,
                    "InvalidParam.PageNumber",
                    "The specified parameter PageNumber is not valid.",
                ));
            }
        };
        let start = (number - 1).saturating_mul(size).min(len);
        items = (start..(start + size).min(len)).map(row).collect();
        body["PageNumber"] = num(number);
        body["PageSize"] = num(size);
    }
    // A quirky region leaves an empty list out altogether.
    if !(items.is_empty() && region.quirky) {
        body[page.list_key] = Value::Array(items);
    }
    Ok((200, body))
}

/// The rows a request covers, in id order: the whole region (no ids given)
/// or the instances asked for; with a plugin name, only those reporting it.
fn select<'a>(region: &'a SimRegion, ids: &[String], plugin: Option<&str>) -> Rows<'a> {
    let all = &region.instances[..];
    match plugin {
        None if ids.is_empty() => Rows::All(all),
        Some(name) if ids.is_empty() => Rows::Indexed(all, region.with_plugin(name)),
        _ => Rows::Picked(
            all.iter()
                .filter(|i| ids.contains(&i.id))
                .filter(|i| plugin.is_none_or(|n| i.plugins.iter().any(|p| p.name == n)))
                .collect(),
        ),
    }
}

/// Rows of a page walk, without copying a large region's list per request.
enum Rows<'a> {
    All(&'a [SimInstance]),
    Indexed(&'a [SimInstance], &'a [u32]),
    Picked(Vec<&'a SimInstance>),
}

impl<'a> Rows<'a> {
    fn len(&self) -> usize {
        match self {
            Rows::All(a) => a.len(),
            Rows::Indexed(_, ix) => ix.len(),
            Rows::Picked(p) => p.len(),
        }
    }

    /// Row `k < len()`.
    fn get(&self, k: usize) -> &'a SimInstance {
        match self {
            Rows::All(a) => &a[k],
            Rows::Indexed(a, ix) => &a[ix[k] as usize],
            Rows::Picked(p) => p[k],
        }
    }

    fn iter(&self) -> impl Iterator<Item = &'a SimInstance> + '_ {
        (0..self.len()).map(|k| self.get(k))
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The token's offset and the rows `[start, end)` of this page; a token
/// that is not ours, or points past the rows, is the API's error.
fn page_window(
    state: &SimState,
    map: &BTreeMap<&str, &str>,
    scope: &str,
    len: usize,
    size: usize,
    endless: bool,
) -> Result<(usize, usize, usize), Answer> {
    let offset = match map.get("NextToken") {
        None => 0,
        Some(t) => match read_token(state, scope, t) {
            Some(o) if o <= len || endless => o,
            _ => {
                return Err(error(
                    state,
                    400,
                    "InvalidParameter.NextToken",
                    "The specified parameter NextToken is not valid.",
                ));
            }
        },
    };
    let start = offset.min(len);
    Ok((offset, start, (start + size).min(len)))
}

/// Where the next page starts, if there is one (faults bend the rule).
fn next_offset(
    offset: usize,
    size: usize,
    end: usize,
    len: usize,
    endless: bool,
    repeat: bool,
) -> Option<usize> {
    if repeat {
        Some(offset)
    } else if endless {
        Some(offset + size)
    } else {
        (end < len).then_some(end)
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let p = parse_form("a=1&b=x%2By%2F%3D&c=a+b&d=%E4%BA%91&e&f=%zz");
        assert_eq!(p[1], ("b".into(), "x+y/=".into()));
        assert_eq!(p[2], ("c".into(), "a b".into()));
        assert_eq!(p[3], ("d".into(), "云".into()));
        assert_eq!(p[4], ("e".into(), "".into()));
        assert_eq!(p[5], ("f".into(), "%zz".into()));
    }
}
