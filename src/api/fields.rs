//! Tolerant field access on the JSON answers: numbers as numbers or strings,
//! booleans as `true`/`True`/`"true"`, two spellings of a key, a set given as
//! an array or as an object that wraps the array.

use serde_json::Value;

use std::sync::Arc;

use crate::clock::parse_iso8601;
use crate::intern::intern;

/// What was wrong with one field, for an error message.
pub type FieldError = String;

/// The first of `names` that `obj` holds (and is not null).
pub fn get<'a>(obj: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| obj.get(*n))
        .filter(|v| !v.is_null())
}

/// A required string (a number is accepted and written out).
pub fn req_str(obj: &Value, names: &[&str]) -> Result<String, FieldError> {
    opt_str(obj, names)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{} is missing", names[0]))
}

/// A required string, shared through the intern pool.
pub fn req_shared(obj: &Value, names: &[&str]) -> Result<Arc<str>, FieldError> {
    match get(obj, names) {
        Some(Value::String(s)) if !s.is_empty() => Ok(intern(s)),
        _ => req_str(obj, names).map(|s| intern(&s)),
    }
}

/// An optional string, shared through the intern pool; empty means absent.
pub fn opt_shared(obj: &Value, names: &[&str]) -> Result<Option<Arc<str>>, FieldError> {
    match get(obj, names) {
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(intern(s))),
        _ => Ok(opt_str(obj, names)?.map(|s| intern(&s))),
    }
}

/// An optional string; empty means absent.
pub fn opt_str(obj: &Value, names: &[&str]) -> Result<Option<String>, FieldError> {
    match get(obj, names) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("{} is {}, not a string", names[0], kind(other))),
    }
}

/// An optional non-negative integer, from a number or a numeric string.
pub fn opt_u64(obj: &Value, names: &[&str]) -> Result<Option<u64>, FieldError> {
    match get(obj, names) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e18)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| format!("{} is {n}, not a non-negative integer", names[0])),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{} is {s:?}, not a non-negative integer", names[0])),
        Some(other) => Err(format!("{} is {}, not a number", names[0], kind(other))),
    }
}

/// An optional boolean: `true`, `false`, and their string forms in any case.
pub fn opt_bool(obj: &Value, names: &[&str]) -> Result<Option<bool>, FieldError> {
    match get(obj, names) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(other) => Err(format!(
            "{} is {}, not true or false",
            names[0],
            short(other)
        )),
    }
}

/// Earliest and latest times taken as real: anything outside is a broken
/// answer, not a heartbeat (2000-01-01 .. 2200-01-01).
const MIN_TIME: i64 = 946_684_800;
const MAX_TIME: i64 = 7_258_118_400;

/// An optional UTC time (`…T09:00:40Z` or `…T09:00Z`) as Unix seconds.
pub fn opt_time(obj: &Value, names: &[&str]) -> Result<Option<i64>, FieldError> {
    let Some(s) = opt_str(obj, names)? else {
        return Ok(None);
    };
    let t = parse_iso8601(&s).ok_or_else(|| format!("{} is {s:?}, not a UTC time", names[0]))?;
    if !(MIN_TIME..MAX_TIME).contains(&t) {
        return Err(format!("{} is {s:?}, outside any plausible time", names[0]));
    }
    Ok(Some(t))
}

/// The items of a set such as `{"XSet": {"X": [..]}}`; every documented
/// shape is accepted: the set an array, or an object wrapping the array
/// under any of `inner` (or a single object). Missing set → `Err`.
pub fn set_items<'a>(
    resp: &'a Value,
    outer: &[&str],
    inner: &[&str],
) -> Result<Vec<&'a Value>, FieldError> {
    let set = get(resp, outer).ok_or_else(|| format!("{} is missing", outer[0]))?;
    let items = match set {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => match get(set, inner) {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v @ Value::Object(_)) => vec![v],
            // `{"XSet": {}}` is how an empty set is written.
            None => Vec::new(),
            Some(other) => {
                return Err(format!(
                    "{}.{} is {}, not a list",
                    outer[0],
                    inner[0],
                    kind(other)
                ));
            }
        },
        other => return Err(format!("{} is {}, not a list", outer[0], kind(other))),
    };
    for (i, it) in items.iter().enumerate() {
        if !it.is_object() {
            return Err(format!(
                "{} item {i} is {}, not an object",
                outer[0],
                kind(it)
            ));
        }
    }
    Ok(items)
}

/// Like [`set_items`], but a page whose set is missing altogether is an
/// empty page when nothing says more rows exist (no NextToken, or
/// TotalCount 0), as the SDKs read it; with a NextToken it is an error,
/// since rows would be lost silently.
pub fn set_items_or_empty<'a>(
    resp: &'a Value,
    outer: &[&str],
    inner: &[&str],
) -> Result<Vec<&'a Value>, FieldError> {
    if get(resp, outer).is_some() {
        return set_items(resp, outer, inner);
    }
    let token = opt_str(resp, &["NextToken"]).unwrap_or(None);
    let total = opt_u64(resp, &["TotalCount"]).unwrap_or(None);
    if token.is_none() || total == Some(0) {
        Ok(Vec::new())
    } else {
        Err(format!(
            "{} is missing, yet a NextToken says more pages follow",
            outer[0]
        ))
    }
}

/// The rows of one page: the set at `outer`/`inner` (as
/// [`set_items_or_empty`] finds it), each read by `parse`, with no `id`
/// twice (`what` names a row in that error).
pub fn unique_rows<T>(
    resp: &Value,
    (outer, inner): (&[&str], &[&str]),
    parse: impl Fn(&Value) -> Result<T, FieldError>,
    id: impl Fn(&T) -> &str,
    what: &str,
) -> Result<Vec<T>, FieldError> {
    let rows = set_items_or_empty(resp, outer, inner)?
        .into_iter()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    check_unique(rows.iter().map(id), what)?;
    Ok(rows)
}

/// An error naming the first key that one page lists twice. Rows repeated
/// across pages can happen while instances come and go; within one page
/// they mean a broken answer.
pub fn check_unique<'a>(
    keys: impl IntoIterator<Item = &'a str>,
    what: &str,
) -> Result<(), FieldError> {
    let mut seen = std::collections::HashSet::new();
    for k in keys {
        if !seen.insert(k) {
            return Err(format!("{what} {k} is listed twice in one page"));
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}…", &s[..s.floor_char_boundary(40)])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quirks_parse() {
        let v = json!({"a": "12", "b": 12, "c": "True", "d": false, "e": "2021-01-20T09:00Z", "f": "", "g": null, "h": 3.0});
        assert_eq!(opt_u64(&v, &["a"]), Ok(Some(12)));
        assert_eq!(opt_u64(&v, &["b"]), Ok(Some(12)));
        assert_eq!(opt_u64(&v, &["h"]), Ok(Some(3)));
        assert_eq!(opt_bool(&v, &["c"]), Ok(Some(true)));
        assert_eq!(opt_bool(&v, &["d"]), Ok(Some(false)));
        assert_eq!(opt_time(&v, &["e"]), Ok(Some(1_611_133_200)));
        assert_eq!(opt_str(&v, &["f"]), Ok(None));
        assert_eq!(opt_str(&v, &["g"]), Ok(None));
        assert_eq!(opt_str(&v, &["missing", "b"]), Ok(Some("12".into())));
        assert_eq!(opt_u64(&v, &["missing"]), Ok(None));
    }

    #[test]
    fn wrong_types_are_errors() {
        let v = json!({"a": "x1", "b": -1, "c": "yes", "d": [1], "e": "yesterday", "f": "1901-01-01T00:00:00Z"});
        assert!(opt_u64(&v, &["a"]).unwrap_err().contains("\"x1\""));
        assert!(opt_u64(&v, &["b"]).is_err());
        assert!(opt_bool(&v, &["c"]).is_err());
        assert!(opt_str(&v, &["d"]).unwrap_err().contains("a list"));
        assert!(opt_time(&v, &["e"]).is_err());
        assert!(opt_time(&v, &["f"]).unwrap_err().contains("plausible"));
        assert!(req_str(&v, &["zz"]).unwrap_err().contains("zz is missing"));
    }

    #[test]
    fn sets_in_every_shape() {
        let wrapped = json!({"S": {"I": [{"x": 1}, {"x": 2}]}});
        assert_eq!(set_items(&wrapped, &["S"], &["I"]).map(|v| v.len()), Ok(2));
        let bare = json!({"S": [{"x": 1}]});
        assert_eq!(set_items(&bare, &["S"], &["I"]).map(|v| v.len()), Ok(1));
        let single = json!({"S": {"I": {"x": 1}}});
        assert_eq!(set_items(&single, &["S"], &["I"]).map(|v| v.len()), Ok(1));
        let empty = json!({"S": {}});
        assert_eq!(set_items(&empty, &["S"], &["I"]).map(|v| v.len()), Ok(0));
        assert!(
            set_items(&json!({}), &["S"], &["I"])
                .unwrap_err()
                .contains("S is missing")
        );
        assert!(set_items(&json!({"S": {"I": [1]}}), &["S"], &["I"]).is_err());
        assert!(set_items(&json!({"S": "x"}), &["S"], &["I"]).is_err());
    }

    #[test]
    fn a_missing_set_is_empty_only_when_no_more_pages_follow() {
        let n = |v: Value| set_items_or_empty(&v, &["S"], &["I"]).map(|v| v.len());
        assert_eq!(n(json!({"RequestId": "x"})), Ok(0));
        assert_eq!(n(json!({"NextToken": ""})), Ok(0));
        assert_eq!(n(json!({"TotalCount": "0", "NextToken": "AA=="})), Ok(0));
        assert_eq!(n(json!({"S": [{"x": 1}], "NextToken": "AA=="})), Ok(1));
        assert!(
            n(json!({"NextToken": "AA=="}))
                .unwrap_err()
                .contains("S is missing")
        );
        assert!(n(json!({"S": "x"})).is_err(), "a present set is checked");
    }
}
