//! How the simulator cuts pages: opaque NextToken tokens that always hold
//! `+`, `/` and `=`, page sizes and their limits, numbered pages, and the
//! rows a request covers.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

use super::auth::{Answer, error};
use super::fleet::{HybridPaging, SimInstance, SimRegion};
use super::quirks::{count_json, lists_rows};
use super::state::SimState;

/// Opaque page tokens that always hold `+`, `/` and `=`.
pub(super) fn make_token(state: &SimState, scope: &str, offset: usize) -> String {
    let payload = format!("{}|{scope}|{offset}", state.token_salt);
    let mut bytes = vec![0xfb, 0xff];
    bytes.extend_from_slice(payload.as_bytes());
    // A length that is not a multiple of 3 always ends in `=`.
    while bytes.len() % 3 == 0 {
        bytes.push(b'|');
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(super) fn read_token(state: &SimState, scope: &str, token: &str) -> Option<usize> {
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

pub(super) fn page_size(
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

/// `PageNumber`: 1 when absent, else a number from 1 up.
pub(super) fn page_number(
    state: &SimState,
    params: &BTreeMap<&str, &str>,
) -> Result<usize, Answer> {
    match params.get("PageNumber").map(|v| v.parse::<usize>()) {
        None => Ok(1),
        Some(Ok(n)) if n >= 1 => Ok(n),
        _ => Err(error(
            state,
            400,
            "InvalidParam.PageNumber",
            "The specified parameter PageNumber is not valid.",
        )),
    }
}

/// The rows of page `number` (from 1) of `size` rows over `len` rows.
pub(super) fn number_window(number: usize, size: usize, len: usize) -> std::ops::Range<usize> {
    let start = (number - 1).saturating_mul(size).min(len);
    start..start.saturating_add(size).min(len)
}

pub(super) fn instance_ids(params: &BTreeMap<&str, &str>) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k.starts_with("InstanceId."))
        .map(|(_, v)| v.to_string())
        .collect()
}

/// A NextToken page of `len` rows, `row(k)` each, listed as
/// `{list_key: {item_key: [..]}}`; a quirky region leaves an empty list out
/// altogether.
pub(super) fn token_page(
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
    if lists_rows(items.is_empty(), quirky) {
        body[page.list_key] = json!({ item_key: items });
    }
    if let Some(next) = next_offset(offset, size, end, len, page.endless, page.repeat) {
        body["NextToken"] = json!(make_token(state, page.scope, next));
    }
    Ok((200, body))
}

/// Where a page comes from (its token scope, its list key) and how a
/// fault bends its tokens.
pub(super) struct Page<'a> {
    scope: &'a str,
    list_key: &'a str,
    endless: bool,
    repeat: bool,
}

impl<'a> Page<'a> {
    pub(super) fn new(scope: &'a str, list_key: &'a str, endless: bool, repeat: bool) -> Self {
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
pub(super) fn hybrid_page(
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
    let num = |n: usize| count_json(n, region.quirky);
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
        let number = page_number(state, map)?;
        items = number_window(number, size, len).map(row).collect();
        body["PageNumber"] = num(number);
        body["PageSize"] = num(size);
    }
    if lists_rows(items.is_empty(), region.quirky) {
        body[page.list_key] = Value::Array(items);
    }
    Ok((200, body))
}

/// The rows a request covers, in id order: the whole region (no ids given)
/// or the instances asked for; with a plugin name, only those reporting it.
pub(super) fn select<'a>(region: &'a SimRegion, ids: &[String], plugin: Option<&str>) -> Rows<'a> {
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
pub(super) enum Rows<'a> {
    All(&'a [SimInstance]),
    Indexed(&'a [SimInstance], &'a [u32]),
    Picked(Vec<&'a SimInstance>),
}

impl<'a> Rows<'a> {
    pub(super) fn len(&self) -> usize {
        match self {
            Rows::All(a) => a.len(),
            Rows::Indexed(_, ix) => ix.len(),
            Rows::Picked(p) => p.len(),
        }
    }

    /// Row `k < len()`.
    pub(super) fn get(&self, k: usize) -> &'a SimInstance {
        match self {
            Rows::All(a) => &a[k],
            Rows::Indexed(a, ix) => &a[ix[k] as usize],
            Rows::Picked(p) => p[k],
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &'a SimInstance> + '_ {
        (0..self.len()).map(|k| self.get(k))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The token's offset and the rows `[start, end)` of this page; a token
/// that is not ours, or points past the rows, is the API's error.
pub(super) fn page_window(
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
pub(super) fn next_offset(
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
