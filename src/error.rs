//! Typed errors of an API call. None of them ever holds a URL with query,
//! a signature or a secret.

/// Error codes that mean "not allowed to call this": the RAM policy lacks
/// the action (`Forbidden.RAM`, `NoPermission`), or the account type may
/// not use it.
const PERMISSION_CODES: &[&str] = &[
    "Forbidden.RAM",
    "Forbidden.NotSupportRAM",
    "Forbidden.SubUser",
    "Forbidden",
    "NoPermission",
];

/// What went wrong with one API call (after retries).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The API answered with its JSON error body.
    #[error("{action} in {region}: {code} (HTTP {status}): {message} (RequestId {request_id})")]
    Api {
        action: String,
        region: String,
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    /// The endpoint answered with a status but no error body we understand.
    #[error("{action} in {region}: HTTP {status} without an API error body: {snippet}")]
    Http {
        action: String,
        region: String,
        status: u16,
        snippet: String,
    },
    /// No answer: connection refused, reset, or the request timed out.
    #[error("{action} in {region}: {message}")]
    Transport {
        action: String,
        region: String,
        message: String,
        timeout: bool,
    },
    /// An answer that is not what the API documents.
    #[error("{action} in {region}: malformed response: {what}")]
    Decode {
        action: String,
        region: String,
        what: String,
    },
}

impl ApiError {
    pub fn decode(action: &str, region: &str, what: impl Into<String>) -> Self {
        ApiError::Decode {
            action: action.to_string(),
            region: region.to_string(),
            what: what.into(),
        }
    }

    /// The API error code, or a short name of the failure for the
    /// `code` label of `api_requests_total`.
    pub fn code(&self) -> &str {
        match self {
            ApiError::Api { code, .. } => code,
            ApiError::Http { status, .. } => match status {
                500 => "HTTP500",
                502 => "HTTP502",
                503 => "HTTP503",
                504 => "HTTP504",
                s if *s >= 500 => "HTTP5xx",
                _ => "HTTP4xx",
            },
            ApiError::Transport { timeout: true, .. } => "Timeout",
            ApiError::Transport { .. } => "TransportError",
            ApiError::Decode { .. } => "InvalidResponse",
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Api { status, .. } | ApiError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_throttling(&self) -> bool {
        matches!(self, ApiError::Api { code, .. } if code.starts_with("Throttling"))
    }

    /// Worth another try: throttling, server-side failures, no answer at all.
    /// Never a client error (bad parameter, forbidden, bad signature).
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Api { code, status, .. } => {
                code.starts_with("Throttling")
                    || code == "ServiceUnavailable"
                    || code.starts_with("InternalError")
                    || code == "UnknownError"
                    || matches!(status, 500 | 502 | 503 | 504) && !code.contains('.')
            }
            ApiError::Http { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            ApiError::Transport { .. } => true,
            ApiError::Decode { .. } => false,
        }
    }

    /// `RegionId.ApiNotSupported`: the action does not exist in that region.
    pub fn is_api_not_supported(&self) -> bool {
        matches!(self, ApiError::Api { code, .. } if code == "RegionId.ApiNotSupported")
    }

    /// The caller may not call this action: its RAM policy does not grant
    /// it (`Forbidden.RAM`, HTTP 403, which ECS query actions answer since
    /// December 2025 instead of an empty list) or a similar refusal. For
    /// the optional actions this means "leave their series out", not "the
    /// region failed".
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, ApiError::Api { code, .. } if PERMISSION_CODES.contains(&code.as_str()))
    }

    /// The action that failed.
    pub fn action(&self) -> &str {
        match self {
            ApiError::Api { action, .. }
            | ApiError::Http { action, .. }
            | ApiError::Transport { action, .. }
            | ApiError::Decode { action, .. } => action,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Api { request_id, .. } => Some(request_id),
            _ => None,
        }
    }
}

/// A transport failure in words (timed out, connection failed, ...) with
/// its causes: for the API client and the credential sources alike.
pub fn describe_transport(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    };
    let mut msg = kind.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str, status: u16) -> ApiError {
        ApiError::Api {
            action: "A".into(),
            region: "r".into(),
            status,
            code: code.into(),
            message: "m".into(),
            request_id: "id".into(),
        }
    }

    #[test]
    fn retry_classification() {
        assert!(api("Throttling.User", 400).is_retryable());
        assert!(api("Throttling", 400).is_throttling());
        assert!(api("ServiceUnavailable", 503).is_retryable());
        assert!(api("InternalError.Dispatch", 500).is_retryable());
        assert!(api("UnknownError", 500).is_retryable());
        assert!(!api("IncompleteSignature", 400).is_retryable());
        assert!(!api("InvalidParameter.NextToken", 400).is_retryable());
        assert!(!api("RegionId.ApiNotSupported", 400).is_retryable());
        assert!(api("RegionId.ApiNotSupported", 400).is_api_not_supported());
        assert!(!api("Forbidden.RAM", 403).is_retryable());
        assert!(api("Forbidden.RAM", 403).is_permission_denied());
        assert!(api("NoPermission", 403).is_permission_denied());
        assert!(!api("InstanceIds.ExceedLimit", 403).is_permission_denied());
        assert!(!api("IncompleteSignature", 400).is_permission_denied());
        assert!(!api("RegionId.ApiNotSupported", 400).is_permission_denied());
        assert_eq!(api("Forbidden.RAM", 403).action(), "A");
        let http = |s| ApiError::Http {
            action: "A".into(),
            region: "r".into(),
            status: s,
            snippet: String::new(),
        };
        assert!(http(502).is_retryable());
        assert!(!http(404).is_retryable());
        assert_eq!(http(503).code(), "HTTP503");
        assert!(
            ApiError::decode("A", "r", "x")
                .to_string()
                .contains("A in r: malformed response: x")
        );
    }
}
