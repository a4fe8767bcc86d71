//! OIDC (RRSA on Kubernetes): STS AssumeRoleWithOIDC with the token the
//! kubelet writes to a file. Unsigned: the token is the proof. The file is
//! read afresh at every refresh, because the kubelet rotates it.

use std::path::PathBuf;

use super::detect::{Detected, Detection, now};
use super::{
    BoxFuture, Context, CredentialSpec, Credentials, CredentialsError, DEFAULT_DURATION_SECONDS,
    DEFAULT_ROLE_SESSION_NAME, Env, FetchError, SOURCE_OIDC, STS_API_VERSION, Source, assume_role,
};
use crate::clock::{Clock, format_iso8601};
use crate::secret::Secret;
use crate::signer::canonical_query;

/// A role assumed with an OIDC token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSpec {
    pub role_arn: String,
    pub oidc_provider_arn: String,
    pub oidc_token_file: PathBuf,
    /// Default `cloud-assistant-exporter`.
    pub role_session_name: Option<String>,
    /// Default 3600.
    pub duration_seconds: Option<u32>,
}

const ROLE_ARN: &str = "ALIBABA_CLOUD_ROLE_ARN";
const PROVIDER_ARN: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
const TOKEN_FILE: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";

const NOT_SET: &str = "OIDC (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE are not all set)";

/// Step 2 of the chain.
pub(crate) fn detect(ctx: &Context) -> Detection<'_> {
    now(Ok(match find(&ctx.env) {
        Some(spec) => Detected::Found(spec, format!("OIDC ({TOKEN_FILE})")),
        None => Detected::Absent(NOT_SET.into()),
    }))
}

/// Configured when all three variables are set.
fn find(env: &Env) -> Option<CredentialSpec> {
    let (role, provider, file) = (
        env.get(ROLE_ARN)?,
        env.get(PROVIDER_ARN)?,
        env.get(TOKEN_FILE)?,
    );
    Some(CredentialSpec::Oidc {
        origin: SOURCE_OIDC,
        spec: OidcSpec {
            role_arn: role.trim().to_string(),
            oidc_provider_arn: provider.trim().to_string(),
            oidc_token_file: PathBuf::from(file),
            role_session_name: env
                .get("ALIBABA_CLOUD_ROLE_SESSION_NAME")
                .map(|s| s.trim().to_string()),
            duration_seconds: None,
        },
    })
}

pub(crate) struct OidcSource {
    origin: &'static str,
    spec: OidcSpec,
}

impl OidcSource {
    pub(crate) fn new(origin: &'static str, spec: OidcSpec) -> Self {
        OidcSource { origin, spec }
    }

    fn read_token(&self) -> Result<Secret, CredentialsError> {
        let path = &self.spec.oidc_token_file;
        let text = std::fs::read_to_string(path).map_err(|source| {
            CredentialsError::fetch(
                self.origin,
                FetchError::TokenFile {
                    path: path.clone(),
                    source,
                },
            )
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(CredentialsError::fetch(
                self.origin,
                FetchError::EmptyToken(path.clone()),
            ));
        }
        Ok(Secret::new(token))
    }

    fn form(&self, token: &Secret) -> String {
        let s = &self.spec;
        let params = [
            ("Action", "AssumeRoleWithOIDC".to_string()),
            ("Format", "JSON".into()),
            ("Version", STS_API_VERSION.into()),
            ("Timestamp", format_iso8601(Clock::System.now())),
            ("RoleArn", s.role_arn.clone()),
            ("OIDCProviderArn", s.oidc_provider_arn.clone()),
            ("OIDCToken", token.expose().to_string()),
            (
                "RoleSessionName",
                s.role_session_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ROLE_SESSION_NAME.into()),
            ),
            (
                "DurationSeconds",
                s.duration_seconds
                    .unwrap_or(DEFAULT_DURATION_SECONDS)
                    .to_string(),
            ),
        ];
        let params: Vec<(String, String)> = params
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        canonical_query(&params)
    }
}

impl Source for OidcSource {
    fn label(&self) -> &'static str {
        self.origin
    }

    fn describe(&self) -> String {
        format!(
            "{}: AssumeRoleWithOIDC with the token file {}",
            self.origin,
            self.spec.oidc_token_file.display()
        )
    }

    fn fetch<'a>(
        &'a self,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<Credentials, CredentialsError>> {
        Box::pin(async move {
            let token = self.read_token()?;
            let form = self.form(&token);
            assume_role::post_sts(ctx, self.origin, "AssumeRoleWithOIDC", form).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::*;

    #[test]
    fn configured_only_with_all_three_variables() {
        assert!(
            find(&env(&[
                (ROLE_ARN, "acs:ram::1:role/r"),
                (PROVIDER_ARN, "p")
            ]))
            .is_none()
        );
        let spec = find(&env(&[
            (ROLE_ARN, "acs:ram::1:role/r"),
            (PROVIDER_ARN, "acs:ram::1:oidc-provider/ack"),
            (TOKEN_FILE, "/var/run/token"),
            ("ALIBABA_CLOUD_ROLE_SESSION_NAME", "s"),
        ]));
        let Some(CredentialSpec::Oidc { origin, spec }) = spec else {
            panic!("{spec:?}")
        };
        assert_eq!(origin, "oidc");
        assert_eq!(spec.oidc_token_file, PathBuf::from("/var/run/token"));
        assert_eq!(spec.role_session_name.as_deref(), Some("s"));
    }

    #[test]
    fn form_carries_the_token_and_defaults() {
        let src = OidcSource::new(
            "oidc",
            OidcSpec {
                role_arn: "acs:ram::1:role/r".into(),
                oidc_provider_arn: "acs:ram::1:oidc-provider/ack".into(),
                oidc_token_file: "/nonexistent/token".into(),
                role_session_name: None,
                duration_seconds: None,
            },
        );
        let form = src.form(&Secret::new("eyJ.a+b/c="));
        assert!(form.contains("Action=AssumeRoleWithOIDC"), "{form}");
        assert!(form.contains("OIDCToken=eyJ.a%2Bb%2Fc%3D"), "{form}");
        assert!(
            form.contains("RoleSessionName=cloud-assistant-exporter"),
            "{form}"
        );
        assert!(form.contains("DurationSeconds=3600"), "{form}");
        assert!(!form.contains("Signature"), "unsigned");
        let e = src.read_token().expect_err("no file");
        assert!(e.to_string().contains("/nonexistent/token"), "{e}");
    }
}
