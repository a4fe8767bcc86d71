//! The RAM role of the ECS instance, from the instance metadata service.
//! IMDSv2 first (a session token from `PUT /latest/api/token`, sent with
//! every GET); plain GETs only when that fails and IMDSv1 is not disabled.
//! The connect timeout is 1 s, so a machine outside ECS fails fast.

use serde::Deserialize;

use super::{BoxFuture, Context, Credentials, CredentialsError, Env, Source};
use crate::clock::parse_iso8601;
use crate::secret::Secret;
use crate::signer::percent_encode;

pub const TOKEN_PATH: &str = "/latest/api/token";
pub const TOKEN_TTL_HEADER: &str = "X-aliyun-ecs-metadata-token-ttl-seconds";
pub const TOKEN_HEADER: &str = "X-aliyun-ecs-metadata-token";
pub const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";
/// The longest a metadata token may live; one is asked for at every fetch anyway.
const TOKEN_TTL_SECONDS: &str = "21600";

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
    async fn token(&self, ctx: &Context) -> Result<Option<Secret>, String> {
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
                Ok(_) => "an empty token".to_string(),
                Err(e) => crate::error::describe_transport(&e),
            },
            Ok(r) => crate::error::describe_status(r.status().as_u16()),
            // Nothing listens there: a plain GET would not fare better.
            Err(e) if e.is_connect() => {
                return Err(format!(
                    "metadata service at {}: {}",
                    ctx.metadata_endpoint,
                    crate::error::describe_transport(&e)
                ));
            }
            Err(e) => crate::error::describe_transport(&e),
        };
        if self.imdsv1_disabled {
            return Err(format!(
                "no IMDSv2 token from {} ({why}) and ALIBABA_CLOUD_IMDSV1_DISABLED=true",
                ctx.metadata_endpoint
            ));
        }
        tracing::debug!(reason = %why, "no IMDSv2 metadata token; using plain requests");
        Ok(None)
    }

    async fn get(
        &self,
        ctx: &Context,
        path: &str,
        token: Option<&Secret>,
    ) -> Result<String, String> {
        let url = format!("{}{path}", ctx.metadata_endpoint);
        let mut req = ctx.metadata_http.get(&url);
        if let Some(t) = token {
            req = req.header(TOKEN_HEADER, t.expose());
        }
        let resp = req.send().await.map_err(|e| {
            format!(
                "metadata service at {}: {}",
                ctx.metadata_endpoint,
                crate::error::describe_transport(&e)
            )
        })?;
        let status = resp.status().as_u16();
        if status == 404 && path == CREDENTIALS_PATH {
            return Err(format!(
                "no RAM role is attached to the instance (metadata service at {})",
                ctx.metadata_endpoint
            ));
        }
        if !(200..300).contains(&status) {
            return Err(format!(
                "GET {path} at {}: {}",
                ctx.metadata_endpoint,
                crate::error::describe_status(status)
            ));
        }
        capped_text(resp)
            .await
            .map_err(|e| format!("GET {path}: {}", crate::error::describe_transport(&e)))
    }

    async fn role(&self, ctx: &Context, token: Option<&Secret>) -> Result<String, String> {
        if let Some(r) = &self.role_name {
            return Ok(r.clone());
        }
        let list = self.get(ctx, CREDENTIALS_PATH, token).await?;
        list.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .ok_or_else(|| "no RAM role is attached to the instance".to_string())
    }

    /// The chain's test: is there a metadata service with a role? Returns
    /// the role's name, or why not.
    pub(crate) async fn probe(&self, ctx: &Context) -> Result<String, String> {
        let token = self.token(ctx).await?;
        self.role(ctx, token.as_ref()).await
    }

    async fn fetch_inner(&self, ctx: &Context) -> Result<Credentials, String> {
        let token = self.token(ctx).await?;
        let role = self.role(ctx, token.as_ref()).await?;
        let path = format!("{CREDENTIALS_PATH}{}", percent_encode(&role));
        let body = self.get(ctx, &path, token.as_ref()).await?;
        // Never quote the body: it holds the secret.
        let c: MetadataCredentials = serde_json::from_str(&body).map_err(|e| {
            format!(
                "credentials of role {role}: malformed answer ({:?} at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })?;
        let code = c.code.as_deref().unwrap_or("");
        if code != "Success" {
            // Only a code-like Code is quoted: the answer is not echoed.
            let shown = match code {
                "" => "missing".to_string(),
                c => format!("{:?}", crate::error::code_label(c)),
            };
            return Err(format!(
                "credentials of role {role}: Code is {shown}, not Success"
            ));
        }
        let (Some(id), Some(secret), Some(token), Some(exp)) = (
            c.access_key_id.filter(|s| !s.is_empty()),
            c.access_key_secret.filter(|s| !s.expose().is_empty()),
            c.security_token,
            c.expiration,
        ) else {
            return Err(format!(
                "credentials of role {role}: AccessKeyId, AccessKeySecret, SecurityToken or Expiration is missing"
            ));
        };
        let expiration = parse_iso8601(&exp)
            .ok_or_else(|| format!("credentials of role {role}: Expiration is not a time"))?;
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
