//! STS as the simulator answers it: AssumeRole (signed, checked like the
//! ECS calls, with the source key) and AssumeRoleWithOIDC (unsigned, the
//! token compared with the content of a file).

use serde_json::json;

use super::auth::{self, Answer, error};
use super::identity_state::{IdentityState, Issued};
use crate::clock::{format_iso8601, parse_iso8601};

pub const STS_VERSION: &str = "2015-04-01";

pub fn handle(id: &IdentityState, method: &str, params: &[(String, String)]) -> Answer {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("Action") {
        Some("AssumeRole") => assume_role(id, method, params),
        Some("AssumeRoleWithOIDC") => assume_role_with_oidc(id, params),
        _ => error(
            &id.sim,
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        ),
    }
}

/// RoleArn, RoleSessionName and DurationSeconds as STS checks them.
fn role_params(
    id: &IdentityState,
    params: &[(String, String)],
) -> Result<(String, String), Answer> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let Some(arn) = get("RoleArn") else {
        return Err(error(
            &id.sim,
            400,
            "MissingRoleArn",
            "RoleArn is mandatory for this action.",
        ));
    };
    if crate::validate::role_arn(arn).is_err() {
        return Err(error(
            &id.sim,
            400,
            "InvalidParameter.RoleArn",
            "The parameter RoleArn is wrongly formed.",
        ));
    }
    let session = get("RoleSessionName").unwrap_or_default();
    let session_ok = (2..=64).contains(&session.len())
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'));
    if !session_ok {
        return Err(error(
            &id.sim,
            400,
            "InvalidParameter.RoleSessionName",
            "The parameter RoleSessionName is wrongly formed.",
        ));
    }
    if let Some(d) = get("DurationSeconds")
        && !d.parse::<u32>().is_ok_and(|d| (900..=43200).contains(&d))
    {
        return Err(error(
            &id.sim,
            400,
            "InvalidParameter.DurationSeconds",
            "The Min/Max value of DurationSeconds is 15min/12hr.",
        ));
    }
    Ok((arn.to_string(), session.to_string()))
}

fn answer(id: &IdentityState, arn: &str, session: &str, c: &Issued) -> Answer {
    (
        200,
        json!({
            "RequestId": id.sim.request_id(),
            "AssumedRoleUser": {"Arn": format!("{arn}/{session}"), "AssumedRoleId": format!("3{}:{session}", id.random(16))},
            "Credentials": {
                "AccessKeyId": c.id,
                "AccessKeySecret": c.secret,
                "SecurityToken": c.token,
                "Expiration": format_iso8601(c.expires_at),
            }
        }),
    )
}

fn assume_role(id: &IdentityState, method: &str, params: &[(String, String)]) -> Answer {
    if id.config().sts_signature_mismatch {
        return auth::signature_mismatch(&id.sim, method, params);
    }
    if let Err(a) = auth::authenticate_for(&id.sim, method, params, STS_VERSION, false) {
        return a;
    }
    let (arn, session) = match role_params(id, params) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let signer = params
        .iter()
        .find(|(n, _)| n == "AccessKeyId")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    id.record_signer(signer);
    let c = id.issue("AssumeRole");
    answer(id, &arn, &session, &c)
}

fn assume_role_with_oidc(id: &IdentityState, params: &[(String, String)]) -> Answer {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("Version") != Some(STS_VERSION) {
        return error(
            &id.sim,
            400,
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        );
    }
    if get("Timestamp").is_some_and(|t| parse_iso8601(t).is_none()) {
        return error(
            &id.sim,
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        );
    }
    let (arn, session) = match role_params(id, params) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let cfg = id.config();
    if get("OIDCProviderArn") != Some(cfg.oidc_provider_arn.as_str()) {
        return error(
            &id.sim,
            404,
            "EntityNotExist.OIDCProvider",
            "The specified OIDC provider does not exist.",
        );
    }
    let Some(token) = get("OIDCToken").filter(|t| !t.is_empty()) else {
        return error(
            &id.sim,
            400,
            "MissingOIDCToken",
            "OIDCToken is mandatory for this action.",
        );
    };
    // Read at every call: the test rotates the file as the kubelet does.
    let expected = cfg
        .oidc_token_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    if expected.is_empty() || token != expected {
        return error(
            &id.sim,
            400,
            "AuthenticationFail.OIDCToken.Invalid",
            "The OIDC token is invalid.",
        );
    }
    let c = id.issue("AssumeRoleWithOIDC");
    answer(id, &arn, &session, &c)
}
