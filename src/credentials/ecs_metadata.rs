//! The RAM role of the ECS instance, from the instance metadata service.
//! IMDSv2 first (a session token from `PUT /latest/api/token`, sent with
//! every GET); plain GETs only when that fails and IMDSv1 is not disabled.
//! The connect timeout is 1 s, so a machine outside ECS fails fast.

use serde::Deserialize;

use super::detect::{Detected, Detection};
use super::{
    BoxFuture, Context, CredentialSpec, Credentials, CredentialsError, Env, SOURCE_ECS_RAM_ROLE,
    Source,
};
use crate::clock::parse_iso8601;
use crate::error::{code_label, describe_status, describe_transport};
use crate::secret::Secret;
use crate::signer::percent_encode;

pub const TOKEN_PATH: &str = "/latest/api/token";
pub const TOKEN_TTL_HEADER: &str = "X-aliyun-ecs-metadata-token-ttl-seconds";
pub const TOKEN_HEADER: &str = "X-aliyun-ecs-metadata-token";
pub const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";
/// The longest a metadata token may live; one is asked for at every fetch anyway.
const TOKEN_TTL_SECONDS: &str = "21600";

/// Why the metadata service gave no credentials. Never quotes an answer:
/// the credentials one holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata service at {endpoint}: {}", describe_transport(.source))]
    Unreachable {
        endpoint: String,
        source: reqwest::Error,
    },
    #[error("no IMDSv2 token from {endpoint} ({why}) and ALIBABA_CLOUD_IMDSV1_DISABLED=true")]
    NoToken { endpoint: String, why: NoToken },
    #[error("no RAM role is attached to the instance (metadata service at {0})")]
    NoRole(String),
    #[error("no RAM role is attached to the instance")]
    EmptyRoleList,
    #[error("GET {path} at {endpoint}: {}", describe_status(*.status))]
    Status {
        path: String,
        endpoint: String,
        status: u16,
    },
    #[error("GET {path}: {}", describe_transport(.source))]
    Body {
        path: String,
        source: reqwest::Error,
    },
    #[error(
        "credentials of role {role}: malformed answer ({category:?} at line {line} column {column})"
    )]
    Malformed {
        role: String,
        category: serde_json::error::Category,
        line: usize,
        column: usize,
    },
    /// `code`: the answer's Code as a label shows it (`None`: missing).
    #[error("credentials of role {role}: Code is {}, not Success", shown_code(.code.as_deref()))]
    Code { role: String, code: Option<String> },
    #[error(
        "credentials of role {0}: AccessKeyId, AccessKeySecret, SecurityToken or Expiration is missing"
    )]
    Missing(String),
    #[error("credentials of role {0}: Expiration is not a time")]
    Expiration(String),
}

fn shown_code(code: Option<&str>) -> String {
    match code {
        None => "missing".to_string(),
        Some(c) => format!("{c:?}"),
    }
}

/// Why there is no IMDSv2 token.
#[derive(Debug, thiserror::Error)]
pub enum NoToken {
    #[error("an empty token")]
    Empty,
    #[error("{}", describe_transport(.0))]
    Transport(reqwest::Error),
    #[error("{}", describe_status(*.0))]
    Status(u16),
}

/// The chain's step: the instance's RAM role, when a metadata service
/// answers with one (and the step is not switched off).
pub(crate) fn detect(ctx: &Context) -> Detection<'_> {
    Box::pin(async move {
        if ctx.env.is_true("ALIBABA_CLOUD_ECS_METADATA_DISABLED") {
            return Ok(Detected::Absent(
                "ECS instance RAM role (ALIBABA_CLOUD_ECS_METADATA_DISABLED=true)".into(),
            ));
        }
        let source = EcsMetadataSource::new(SOURCE_ECS_RAM_ROLE, None, &ctx.env);
        Ok(match source.probe(ctx).await {
            Ok(role) => {
                let what = format!("ECS instance RAM role {role} at {}", ctx.metadata_endpoint);
                let spec = CredentialSpec::EcsRamRole {
                    origin: SOURCE_ECS_RAM_ROLE,
                    role_name: Some(role),
                };
                Detected::Found(spec, what)
            }
            Err(why) => Detected::Absent(format!("ECS instance RAM role ({why})")),
        })
    })
}

pub(crate) struct EcsMetadataSource {
    origin: &'static str,
    role_name: Option<String>,
    imdsv1_disabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataCredentials {
    code: Option<String>,
    access_key_id: Option<String>,
    access_key_secret: Option<Secret>,
    security_token: Option<Secret>,
    expiration: Option<String>,
}

impl EcsMetadataSource {
    /// `role_name` unset: `ALIBABA_CLOUD_ECS_METADATA`, else asked of the service.
    pub(crate) fn new(origin: &'static str, role_name: Option<String>, env: &Env) -> Self {
        let role_name = role_name
            .filter(|r| !r.trim().is_empty())
            .or_else(|| env.get("ALIBABA_CLOUD_ECS_METADATA").map(str::to_string))
            .map(|r| r.trim().to_string());
        EcsMetadataSource {
            origin,
            role_name,
            imdsv1_disabled: env.is_true("ALIBABA_CLOUD_IMDSV1_DISABLED"),
        }
    }

    /// An IMDSv2 token; `None` to go on with plain GETs.
    async fn token(&self, ctx: &Context) -> Result<Option<Secret>, MetadataError> {
        let url = format!("{}{TOKEN_PATH}", ctx.metadata_endpoint);
        let resp = ctx
            .metadata_http
            .put(&url)
            .header(TOKEN_TTL_HEADER, TOKEN_TTL_SECONDS)
            .send()
            .await;
        let why = match resp {
            Ok(r) if r.status().is_success() => match capped_text(r).await {
                Ok(t) if !t.trim().is_empty() => return Ok(Some(Secret::new(t.trim()))),
                Ok(_) => NoToken::Empty,
                Err(e) => NoToken::Transport(e),
            },
            Ok(r) => NoToken::Status(r.status().as_u16()),
            // Nothing listens there: a plain GET would not fare better.
            Err(source) if source.is_connect() => {
                return Err(MetadataError::Unreachable {
                    endpoint: ctx.metadata_endpoint.clone(),
                    source,
                });
            }
            Err(e) => NoToken::Transport(e),
        };
        if self.imdsv1_disabled {
            return Err(MetadataError::NoToken {
                endpoint: ctx.metadata_endpoint.clone(),
                why,
            });
        }
        tracing::debug!(reason = %why, "no IMDSv2 metadata token; using plain requests");
        Ok(None)
    }

    async fn get(
        &self,
        ctx: &Context,
        path: &str,
        token: Option<&Secret>,
    ) -> Result<String, MetadataError> {
        let url = format!("{}{path}", ctx.metadata_endpoint);
        let mut req = ctx.metadata_http.get(&url);
        if let Some(t) = token {
            req = req.header(TOKEN_HEADER, t.expose());
        }
        let resp = req
            .send()
            .await
            .map_err(|source| MetadataError::Unreachable {
                endpoint: ctx.metadata_endpoint.clone(),
                source,
            })?;
        let status = resp.status().as_u16();
        if status == 404 && path == CREDENTIALS_PATH {
            return Err(MetadataError::NoRole(ctx.metadata_endpoint.clone()));
        }
        if !(200..300).contains(&status) {
            return Err(MetadataError::Status {
                path: path.to_string(),
                endpoint: ctx.metadata_endpoint.clone(),
                status,
            });
        }
        capped_text(resp)
            .await
            .map_err(|source| MetadataError::Body {
                path: path.to_string(),
                source,
            })
    }

    async fn role(&self, ctx: &Context, token: Option<&Secret>) -> Result<String, MetadataError> {
        if let Some(r) = &self.role_name {
            return Ok(r.clone());
        }
        let list = self.get(ctx, CREDENTIALS_PATH, token).await?;
        list.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .ok_or(MetadataError::EmptyRoleList)
    }

    /// The chain's test: is there a metadata service with a role? Returns
    /// the role's name, or why not.
    pub(crate) async fn probe(&self, ctx: &Context) -> Result<String, MetadataError> {
        let token = self.token(ctx).await?;
        self.role(ctx, token.as_ref()).await
    }

    async fn fetch_inner(&self, ctx: &Context) -> Result<Credentials, MetadataError> {
        let token = self.token(ctx).await?;
        let role = self.role(ctx, token.as_ref()).await?;
        let path = format!("{CREDENTIALS_PATH}{}", percent_encode(&role));
        let body = self.get(ctx, &path, token.as_ref()).await?;
        // Never quote the body: it holds the secret.
        let c: MetadataCredentials =
            serde_json::from_str(&body).map_err(|e| MetadataError::Malformed {
                role: role.clone(),
                category: e.classify(),
                line: e.line(),
                column: e.column(),
            })?;
        let code = c.code.as_deref().unwrap_or("");
        if code != "Success" {
            // Only a code-like Code is quoted: the answer is not echoed.
            return Err(MetadataError::Code {
                role,
                code: (!code.is_empty()).then(|| code_label(code).to_string()),
            });
        }
        let (Some(id), Some(secret), Some(token), Some(exp)) = (
            c.access_key_id.filter(|s| !s.is_empty()),
            c.access_key_secret.filter(|s| !s.expose().is_empty()),
            c.security_token,
            c.expiration,
        ) else {
            return Err(MetadataError::Missing(role));
        };
        let expiration = parse_iso8601(&exp).ok_or(MetadataError::Expiration(role))?;
        Ok(Credentials {
            access_key_id: id,
            access_key_secret: secret,
            security_token: Some(token),
            expiration: Some(expiration),
        })
    }
}

impl Source for EcsMetadataSource {
    fn label(&self) -> &'static str {
        self.origin
    }

    fn describe(&self) -> String {
        match &self.role_name {
            Some(r) => format!("{}: ECS instance RAM role {r}", self.origin),
            None => format!("{}: ECS instance RAM role", self.origin),
        }
    }

    fn fetch<'a>(
        &'a self,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<Credentials, CredentialsError>> {
        Box::pin(async move {
            self.fetch_inner(ctx)
                .await
                .map_err(|m| CredentialsError::fetch(self.origin, m))
        })
    }
}

/// The metadata service answers a few hundred bytes; more is refused
/// rather than buffered.
pub const MAX_METADATA_BODY: usize = 64 << 10;

/// A metadata answer's body as text, at most [`MAX_METADATA_BODY`] bytes:
/// past it, an error (the text is cut at the cap).
async fn capped_text(mut resp: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_METADATA_BODY {
            body.truncate(MAX_METADATA_BODY);
            // A body this large is no answer of the metadata service: what
            // follows is not read, and the caller sees it cut (its parse
            // then fails with the usual message).
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::*;

    #[test]
    fn role_name_from_argument_then_environment() {
        let e = env(&[
            ("ALIBABA_CLOUD_ECS_METADATA", " from-env "),
            ("ALIBABA_CLOUD_IMDSV1_DISABLED", "true"),
        ]);
        let s = EcsMetadataSource::new("ecs_ram_role", None, &e);
        assert_eq!(s.role_name.as_deref(), Some("from-env"));
        assert!(s.imdsv1_disabled);
        let s = EcsMetadataSource::new("cli_profile", Some("given".into()), &e);
        assert_eq!(s.role_name.as_deref(), Some("given"));
        assert_eq!(s.describe(), "cli_profile: ECS instance RAM role given");
        let s = EcsMetadataSource::new("ecs_ram_role", Some(String::new()), &env(&[]));
        assert_eq!(s.role_name, None);
    }
}
