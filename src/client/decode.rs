//! An answer's status and body turned into its JSON object or a typed error.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::error::{ApiError, snippet};

/// A successful answer: the body of a JSON object, checked whole but not
/// kept as a tree; each action reads it into its own types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer(Vec<u8>);

impl Answer {
    pub fn body(&self) -> &[u8] {
        &self.0
    }

    /// The answer as a JSON tree, for tests and tools; the walkers read
    /// their typed rows from [`Answer::body`].
    pub fn json(&self) -> serde_json::Result<Value> {
        serde_json::from_slice(&self.0)
    }
}

/// A JSON object, read through without keeping anything.
struct AnObject;

impl<'de> Deserialize<'de> for AnObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<AnObject, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnObject)
            }
        }
        d.deserialize_any(V)
    }
}

/// Turns status and body into the JSON answer or a typed error: a 3xx is
/// an error (redirects are never followed), HTTP 429 is throttling.
pub fn decode_response(
    action: &str,
    region: &str,
    status: u16,
    body: &[u8],
) -> Result<Answer, ApiError> {
    check(action, region, status, body)?;
    Ok(Answer(body.to_vec()))
}

/// [`decode_response`] of a body the caller owns: kept without a copy.
pub(crate) fn decode_owned(
    action: &str,
    region: &str,
    status: u16,
    body: Vec<u8>,
) -> Result<Answer, ApiError> {
    check(action, region, status, &body)?;
    Ok(Answer(body))
}

fn check(action: &str, region: &str, status: u16, body: &[u8]) -> Result<(), ApiError> {
    if (300..400).contains(&status) {
        // Whatever its body says: a redirect is never followed.
        return Err(ApiError::http(action, region, status, body));
    }
    if !(200..300).contains(&status) {
        // Error bodies are small and rare: read as a tree.
        if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body)
            && let Some(code) = o.get("Code").and_then(Value::as_str)
        {
            let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
            return Err(ApiError::api(
                action,
                region,
                status,
                code,
                s("Message"),
                s("RequestId"),
            ));
        }
        return Err(ApiError::http(action, region, status, body));
    }
    // Skipping values does not look inside strings: UTF-8 is checked here,
    // whole, as a tree would have checked it.
    if let Err(e) = std::str::from_utf8(body) {
        return Err(ApiError::decode(
            action,
            region,
            format!("not JSON (not UTF-8: {e}): {}", snippet(body)),
        ));
    }
    match serde_json::from_slice::<AnObject>(body) {
        Ok(AnObject) => Ok(()),
        Err(e) if e.is_data() => Err(ApiError::decode(
            action,
            region,
            "the answer is JSON but not an object",
        )),
        Err(e) if e.is_eof() => Err(ApiError::decode(
            action,
            region,
            format!("truncated JSON ({} bytes)", body.len()),
        )),
        Err(e) => Err(ApiError::decode(
            action,
            region,
            format!("not JSON ({e}): {}", snippet(body)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_error_bodies() {
        let body = br#"{"RequestId":"R-1","Code":"Throttling.User","Message":"Request was denied","HostId":"ecs"}"#;
        let e = decode_response("DescribeRegions", "-", 400, body).unwrap_err();
        match &e {
            ApiError::Api {
                status,
                code,
                request_id,
                ..
            } => {
                assert_eq!(
                    (*status, code.as_str(), request_id.as_str()),
                    (400, "Throttling.User", "R-1")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_throttling());
        let e = decode_response("A", "r", 502, b"<html>Bad Gateway</html>").unwrap_err();
        assert!(matches!(e, ApiError::Http { status: 502, .. }));
        assert!(e.is_retryable());
    }

    #[test]
    fn rejects_bad_success_bodies() {
        let e = decode_response(
            "DescribeInstanceStatus",
            "cn-x",
            200,
            b"{\"TotalCount\": 5, \"Inst",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("DescribeInstanceStatus in cn-x: malformed response: truncated"),
            "{e}"
        );
        let e = decode_response("A", "r", 200, b"<xml/>").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        let e = decode_response("A", "r", 200, b"[1,2]").unwrap_err();
        assert!(e.to_string().contains("not an object"), "{e}");
        assert!(decode_response("A", "r", 200, b"{}").is_ok());
        let e = decode_response("A", "r", 200, b"{\"a\": \"\xff\"}").unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }
}
