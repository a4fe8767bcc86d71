//! The checks every request passes first, as the real API makes them:
//! signature, method, version, nonce and timestamp; and the API's error
//! answer.

use serde_json::{Value, json};

use super::state::SimState;
use crate::clock::{Clock, parse_iso8601};
use crate::secret::Secret;
use crate::signer::{canonical_query, signature, string_to_sign};

/// An answer: HTTP status and JSON body.
pub type Answer = (u16, Value);

/// The API's error answer: `code` and `message` under a fresh RequestId.
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
/// `Simulator::refuse_long_term_keys`.
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
