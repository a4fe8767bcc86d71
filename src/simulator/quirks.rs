//! The older answer formats a quirky region plays, in one place: the
//! oldest DescribeCloudAssistantStatus page's misspelt `Assitant` keys and
//! reversed nesting, `"True"`, numbers as strings, minute-precision times,
//! optional fields left out, tags as a plain array, and empty lists left out
//! of wrapped pages altogether. The exporter must read them all.

use serde_json::{Value, json};

use crate::clock::{format_iso8601, format_iso8601_minutes};

/// Per-row quirks (a bit set), drawn for each row of a quirky region.
pub const QUIRK_BOOL_CAPITAL: u8 = 1;
pub const QUIRK_NUMBERS_AS_STRINGS: u8 = 2;
pub const QUIRK_MINUTE_TIMES: u8 = 4;
pub const QUIRK_OMIT_OPTIONAL: u8 = 8;

/// A time as an answer with `quirks` writes it.
pub(crate) fn time_json(t: i64, quirks: u8) -> Value {
    if quirks & QUIRK_MINUTE_TIMES != 0 {
        json!(format_iso8601_minutes(t))
    } else {
        json!(format_iso8601(t))
    }
}

/// A number as an answer with `quirks` writes it.
pub(crate) fn num_json(n: u64, quirks: u8) -> Value {
    if quirks & QUIRK_NUMBERS_AS_STRINGS != 0 {
        json!(n.to_string())
    } else {
        json!(n)
    }
}

/// A page's count (TotalCount, PageSize, PageNumber): a string in a quirky
/// region.
pub(crate) fn count_json(n: usize, quirky: bool) -> Value {
    if quirky {
        json!(n.to_string())
    } else {
        json!(n)
    }
}

/// A boolean as an answer with `quirks` writes it (`"True"`, `"False"`).
pub(crate) fn bool_json(b: bool, quirks: u8) -> Value {
    match (quirks & QUIRK_BOOL_CAPITAL != 0, b) {
        (true, true) => json!("True"),
        (true, false) => json!("False"),
        (false, b) => json!(b),
    }
}

/// CloudAssistantStatus, a string either way: `"true"`, or `"True"` with
/// [`QUIRK_BOOL_CAPITAL`].
pub(crate) fn status_word(up: bool, quirks: u8) -> &'static str {
    match (quirks & QUIRK_BOOL_CAPITAL != 0, up) {
        (true, true) => "True",
        (true, false) => "False",
        (false, true) => "true",
        (false, false) => "false",
    }
}

/// The CloudAssistantStatus key of a row; `old_keys`: the misspelt form.
pub(crate) fn status_key(old_keys: bool) -> &'static str {
    if old_keys {
        "CloudAssitantStatus"
    } else {
        "CloudAssistantStatus"
    }
}

/// The DescribeCloudAssistantStatus list; `old_keys`: misspelt and nested
/// the other way round.
pub(crate) fn agent_status_set(items: Vec<Value>, old_keys: bool) -> Value {
    if old_keys {
        json!({"InstanceCloudAssitantStatus": {"InstanceCloudAssitantStatusSet": items}})
    } else {
        json!({"InstanceCloudAssistantStatusSet": {"InstanceCloudAssistantStatus": items}})
    }
}

/// Tags as `{"Tag": [..]}` (DescribeInstances) or a plain array (the
/// hybrid actions, and DescribeInstances in a quirky region).
pub(crate) fn tags_json(tags: &[(String, String)], wrapped: bool) -> Value {
    let list: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
        .collect();
    if wrapped {
        json!({"Tag": list})
    } else {
        Value::Array(list)
    }
}

/// Whether a page lists its rows: a quirky region leaves an empty list out
/// altogether.
pub(crate) fn lists_rows(empty: bool, quirky: bool) -> bool {
    !(empty && quirky)
}
