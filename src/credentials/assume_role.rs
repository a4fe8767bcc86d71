//! STS AssumeRole: a RAM role assumed with the credentials of another source
//! (`ram_role_arn`, `RamRoleArn`, `ChainableRamRoleArn`, `--aliyun.role-arn`),
//! signed exactly like the ECS calls. Also the STS plumbing that
//! AssumeRoleWithOIDC shares.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::{
    BoxFuture, Context, CredentialProvider, Credentials, CredentialsError,
    DEFAULT_DURATION_SECONDS, DEFAULT_ROLE_SESSION_NAME, FetchError, SOURCE_ASSUME_ROLE,
    STS_API_VERSION, Source,
};
use crate::clock::{Clock, format_iso8601, parse_iso8601};
use crate::secret::Secret;
use crate::signer::{CommonParams, canonical_query, sign_request};

/// The role to assume and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSpec {
    pub role_arn: String,
    /// Default `cloud-assistant-exporter`.
    pub role_session_name: Option<String>,
    /// Default 3600.
    pub duration_seconds: Option<u32>,
    pub external_id: Option<String>,
    /// A policy document that narrows the role's permissions further.
    pub policy: Option<String>,
}

impl RoleSpec {
    pub fn new(role_arn: impl Into<String>) -> Self {
        RoleSpec {
            role_arn: role_arn.into(),
            role_session_name: None,
            duration_seconds: None,
            external_id: None,
            policy: None,
        }
    }
}

pub(crate) struct AssumeRoleSource {
    role: RoleSpec,
    inner: Arc<CredentialProvider>,
}

impl AssumeRoleSource {
    pub(crate) fn new(role: RoleSpec, inner: Arc<CredentialProvider>) -> Self {
        AssumeRoleSource { role, inner }
    }

    fn params(&self) -> Vec<(String, String)> {
        let mut p = vec![
            ("RoleArn".to_string(), self.role.role_arn.clone()),
            (
                "RoleSessionName".to_string(),
                self.role
                    .role_session_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ROLE_SESSION_NAME.into()),
            ),
            (
                "DurationSeconds".to_string(),
                self.role
                    .duration_seconds
                    .unwrap_or(DEFAULT_DURATION_SECONDS)
                    .to_string(),
            ),
        ];
        if let Some(id) = &self.role.external_id {
            p.push(("ExternalId".into(), id.clone()));
        }
        if let Some(policy) = &self.role.policy {
            p.push(("Policy".into(), policy.clone()));
        }
        p
    }
}

impl Source for AssumeRoleSource {
    fn label(&self) -> &'static str {
        SOURCE_ASSUME_ROLE
    }

    fn describe(&self) -> String {
        format!("assume_role with {}", self.inner.describe())
    }

    fn fetch<'a>(
        &'a self,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<Credentials, CredentialsError>> {
        Box::pin(async move {
            // The source's own refresh keeps these valid; never sign with expired ones.
            let src = self.inner.valid(ctx.timeout).await?;
            let nonce = uuid::Uuid::new_v4().to_string();
            let timestamp = format_iso8601(Clock::System.now());
            let common = CommonParams {
                access_key_id: &src.access_key_id,
                security_token: src.security_token.as_ref(),
                action: "AssumeRole",
                version: STS_API_VERSION,
                region_id: None,
                timestamp: &timestamp,
                nonce: &nonce,
            };
            let signed = sign_request("POST", self.params(), &common, &src.access_key_secret);
            post_sts(
                ctx,
                SOURCE_ASSUME_ROLE,
                "AssumeRole",
                canonical_query(&signed),
            )
            .await
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsAnswer {
    credentials: Option<StsCredentials>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: String,
    access_key_secret: Secret,
    security_token: Secret,
    expiration: String,
}

const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What went wrong with an STS call.
#[derive(Debug, thiserror::Error)]
pub enum StsProblem {
    #[error("{}", crate::error::describe_transport(.0))]
    Transport(reqwest::Error),
    #[error("answer larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    /// STS's error answer as [`describe_error_body`] tells it (redacted).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Answer(#[from] StsAnswerError),
}

/// POSTs a form to STS and reads the `Credentials` of the answer.
pub(crate) async fn post_sts(
    ctx: &Context,
    from: &'static str,
    action: &'static str,
    form: String,
) -> Result<Credentials, CredentialsError> {
    let fail = |problem: StsProblem| {
        CredentialsError::fetch(
            from,
            FetchError::Sts {
                action,
                endpoint: ctx.sts_endpoint.clone(),
                problem,
            },
        )
    };
    let mut resp = ctx
        .http
        .post(&ctx.sts_endpoint)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form)
        .send()
        .await
        .map_err(|e| fail(StsProblem::Transport(e)))?;
    let status = resp.status().as_u16();
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| fail(StsProblem::Transport(e)))?
    {
        if buf.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(fail(StsProblem::TooLarge));
        }
        buf.extend_from_slice(&chunk);
    }
    if !(200..300).contains(&status) {
        return Err(fail(StsProblem::Refused(describe_error_body(status, &buf))));
    }
    parse_sts_credentials(&buf).map_err(|e| fail(e.into()))
}

/// `Code (HTTP 400): Message (RequestId …)` of an error answer, the message
/// redacted (`SignatureDoesNotMatch` echoes the string to sign, with the
/// AccessKeyId and the SecurityToken). A 3xx is a redirect, never followed.
pub(crate) fn describe_error_body(status: u16, body: &[u8]) -> String {
    if (300..400).contains(&status) {
        return crate::error::describe_status(status);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) if o.get("Code").is_some_and(Value::is_string) => {
            let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
            let request_id = Some(s("RequestId"))
                .filter(|r| crate::error::looks_like_code(r))
                .unwrap_or("-");
            format!(
                "{} (HTTP {status}): {} (RequestId {request_id})",
                crate::error::code_label(s("Code")),
                crate::error::redact(s("Message")),
            )
        }
        _ => format!("HTTP {status} without an API error body"),
    }
}

/// A successful STS answer without usable credentials. Never quotes the
/// answer: it holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum StsAnswerError {
    #[error("malformed answer ({category:?} at line {line} column {column})")]
    Malformed {
        category: serde_json::error::Category,
        line: usize,
        column: usize,
    },
    #[error("the answer has no Credentials")]
    NoCredentials,
    #[error("the answer's Credentials are empty")]
    Empty,
    #[error("the answer's Expiration is not a time")]
    Expiration,
}

/// The credentials of a successful STS answer.
pub(crate) fn parse_sts_credentials(body: &[u8]) -> Result<Credentials, StsAnswerError> {
    let answer: StsAnswer =
        serde_json::from_slice(body).map_err(|e| StsAnswerError::Malformed {
            category: e.classify(),
            line: e.line(),
            column: e.column(),
        })?;
    let c = answer.credentials.ok_or(StsAnswerError::NoCredentials)?;
    if c.access_key_id.is_empty() || c.access_key_secret.expose().is_empty() {
        return Err(StsAnswerError::Empty);
    }
    let expiration = parse_iso8601(&c.expiration).ok_or(StsAnswerError::Expiration)?;
    Ok(Credentials {
        access_key_id: c.access_key_id,
        access_key_secret: c.access_key_secret,
        security_token: Some(c.security_token),
        expiration: Some(expiration),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sts_answers_without_quoting_them() {
        let ok = br#"{"RequestId":"r","AssumedRoleUser":{"Arn":"a","AssumedRoleId":"i"},
            "Credentials":{"AccessKeyId":"STS.1","AccessKeySecret":"sec-XYZ","SecurityToken":"tok-XYZ","Expiration":"2030-01-01T00:00:00Z"}}"#;
        let c = parse_sts_credentials(ok).expect("ok");
        assert_eq!(c.access_key_id, "STS.1");
        assert_eq!(c.access_key_secret.expose(), "sec-XYZ");
        assert_eq!(c.expiration, Some(1_893_456_000));
        for bad in [
            &br#"{"Credentials":{"AccessKeyId":"STS.1","AccessKeySecret":"sec-XYZ","SecurityToken":"tok-XYZ","Expiration":"soon"}}"#[..],
            br#"{"Credentials":{"AccessKeyId":"STS.1","AccessKeySecret":"sec-XYZ","SecurityToken":"tok-XYZ"}}"#,
            br#"{"Credentials":{"AccessKeyId":"STS.1","AccessKeySecret":"sec-XYZ","#,
            br#"{"RequestId":"r"}"#,
        ] {
            let e = parse_sts_credentials(bad).expect_err("bad").to_string();
            assert!(!e.contains("XYZ"), "{e}");
        }
        let e = describe_error_body(
            403,
            br#"{"RequestId":"R1","Code":"NoPermission","Message":"You are not authorized"}"#,
        );
        assert_eq!(
            e,
            "NoPermission (HTTP 403): You are not authorized (RequestId R1)"
        );
        assert_eq!(
            describe_error_body(502, b"<html>"),
            "HTTP 502 without an API error body"
        );
    }

    #[test]
    fn params_have_defaults_and_optional_ones() {
        let inner = CredentialProvider::fixed("t", Credentials::access_key("id", Secret::new("s")));
        let mut role = RoleSpec::new("acs:ram::1:role/r");
        let p = AssumeRoleSource::new(role.clone(), Arc::clone(&inner)).params();
        assert_eq!(
            p,
            vec![
                ("RoleArn".to_string(), "acs:ram::1:role/r".to_string()),
                ("RoleSessionName".into(), "cloud-assistant-exporter".into()),
                ("DurationSeconds".into(), "3600".into()),
            ]
        );
        role.external_id = Some("ext".into());
        role.policy = Some("{}".into());
        role.duration_seconds = Some(900);
        let p = AssumeRoleSource::new(role, inner).params();
        assert!(p.contains(&("ExternalId".into(), "ext".into())));
        assert!(p.contains(&("Policy".into(), "{}".into())));
        assert!(p.contains(&("DurationSeconds".into(), "900".into())));
    }
}
