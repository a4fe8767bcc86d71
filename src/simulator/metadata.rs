//! The ECS instance metadata service as the simulator answers it: IMDSv2
//! session tokens (optionally required), the role name and the role's
//! temporary credentials, rotated once half their lifetime has passed, as
//! the real service hands out the same set for a while.

use serde_json::json;

use super::identity_state::{IdentityState, Issued, now_ms};
use crate::clock::{Clock, format_iso8601};

pub const TOKEN_PATH: &str = "/latest/api/token";
pub const TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
pub const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
pub const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";

/// Answers one metadata request: status and plain-text body.
pub fn handle(
    id: &IdentityState,
    method: &str,
    path: &str,
    header: impl Fn(&str) -> Option<String>,
) -> (u16, String) {
    let cfg = id.config();
    let now = Clock::System.now();
    if path == TOKEN_PATH {
        if method != "PUT" {
            return (405, "Method Not Allowed".into());
        }
        if cfg.imdsv2_unsupported {
            return (404, "Not Found".into());
        }
        let Some(ttl) = header(TTL_HEADER)
            .and_then(|t| t.trim().parse::<i64>().ok())
            .filter(|t| (1..=21600).contains(t))
        else {
            return (
                400,
                "Bad Request: the token TTL must be 1..21600 seconds".into(),
            );
        };
        let token = id.random(48);
        if let Ok(mut t) = id.metadata_tokens.lock() {
            t.retain(|_, exp| *exp > now);
            t.insert(token.clone(), now + ttl);
        }
        return (200, token);
    }
    if method != "GET" {
        return (405, "Method Not Allowed".into());
    }
    match header(TOKEN_HEADER) {
        Some(token) => {
            let valid = id
                .metadata_tokens
                .lock()
                .map(|t| t.get(&token).is_some_and(|exp| *exp > now))
                .unwrap_or(false);
            if !valid {
                return (
                    401,
                    "Unauthorized: invalid or expired metadata token".into(),
                );
            }
        }
        None => {
            id.plain_gets
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if cfg.imdsv2_required {
                return (403, "Forbidden: a metadata token is required".into());
            }
        }
    }
    let Some(role) = path.strip_prefix(CREDENTIALS_PATH) else {
        return (404, "Not Found".into());
    };
    if cfg.role_name.is_empty() || (!role.is_empty() && role != cfg.role_name) {
        return (404, "Not Found".into());
    }
    if role.is_empty() {
        return (200, cfg.role_name);
    }
    let c = role_credentials(id);
    let body = json!({
        "AccessKeyId": c.id,
        "AccessKeySecret": c.secret,
        "Expiration": format_iso8601(c.expires_at),
        "SecurityToken": c.token,
        "LastUpdated": format_iso8601(c.issued_ms / 1000),
        "Code": "Success",
    });
    (200, body.to_string())
}

/// The role's current set, replaced once half its lifetime has passed.
fn role_credentials(id: &IdentityState) -> Issued {
    let mut slot = id
        .role_credentials
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let now = now_ms();
    if let Some(c) = slot.as_ref() {
        let half = c.issued_ms + (c.expires_at * 1000 - c.issued_ms) / 2;
        if now < half {
            return c.clone();
        }
    }
    let fresh = id.issue("metadata");
    *slot = Some(fresh.clone());
    fresh
}
