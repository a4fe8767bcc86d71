//! Typed errors of an API call. None of them ever holds a URL with query,
//! a signature or a secret: API messages and bodies pass [`redact`] when
//! an error is built, and only codes that look like codes become labels.

/// Error codes that mean "not allowed to call this": the RAM policy lacks
/// the action (`Forbidden.RAM`, `NoPermission`), or the account type may
/// not use it.
const PERMISSION_CODES: &[&str] = &[
    "Forbidden.RAM",
    "Forbidden.NotSupportRAM",
    "Forbidden.SubUser",
    "Forbidden",
    "NoPermission",
    // The reference's 403 for an action the caller may not take.
    "Operation.Forbidden",
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
    /// No valid credentials to sign with (the source refused or did not
    /// answer): not sent, not retried.
    #[error("{action} in {region}: no valid credentials: {message}")]
    Credentials {
        action: String,
        region: String,
        message: String,
    },
}

impl ApiError {
    /// The API's JSON error answer, made safe to log, label and serve: the
    /// message redacted, a code that does not look like one `other`, a
    /// request id that does not look like one `-`.
    pub fn api(
        action: &str,
        region: &str,
        status: u16,
        code: &str,
        message: &str,
        request_id: &str,
    ) -> Self {
        ApiError::Api {
            action: action.to_string(),
            region: region.to_string(),
            status,
            code: code_label(code).to_string(),
            message: redact(message),
            request_id: if looks_like_code(request_id) {
                request_id.to_string()
            } else {
                "-".to_string()
            },
        }
    }

    /// An answer without an API error body; `body` is quoted, redacted and
    /// cut short.
    pub fn http(action: &str, region: &str, status: u16, body: &[u8]) -> Self {
        // The signed request and its token go to the endpoint they were
        // signed for and nowhere else.
        let snippet = if (300..400).contains(&status) {
            "a redirect, which is never followed".to_string()
        } else {
            snippet(body)
        };
        ApiError::Http {
            action: action.to_string(),
            region: region.to_string(),
            status,
            snippet,
        }
    }

    pub fn decode(action: &str, region: &str, what: impl std::fmt::Display) -> Self {
        ApiError::Decode {
            action: action.to_string(),
            region: region.to_string(),
            what: what.to_string(),
        }
    }

    /// The API error code, or a short name of the failure for the
    /// `code` label of `api_requests_total`.
    pub fn code(&self) -> &str {
        match self {
            ApiError::Api { code, .. } => code_label(code),
            ApiError::Http { status, .. } => match status {
                429 => "Throttling",
                500 => "HTTP500",
                502 => "HTTP502",
                503 => "HTTP503",
                504 => "HTTP504",
                s if *s >= 500 => "HTTP5xx",
                s if *s >= 400 => "HTTP4xx",
                s if *s >= 300 => "HTTP3xx",
                _ => "HTTP1xx",
            },
            ApiError::Transport { timeout: true, .. } => "Timeout",
            ApiError::Transport { .. } => "TransportError",
            ApiError::Decode { .. } => "InvalidResponse",
            ApiError::Credentials { .. } => "CredentialsUnavailable",
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Api { status, .. } | ApiError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A `Throttling*` code, or HTTP 429 whatever its body says.
    pub fn is_throttling(&self) -> bool {
        match self {
            ApiError::Api { code, status, .. } => code.starts_with("Throttling") || *status == 429,
            ApiError::Http { status, .. } => *status == 429,
            _ => false,
        }
    }

    /// Worth another try: throttling, server-side failures, no answer at all.
    /// Never a client error (bad parameter, forbidden, bad signature).
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Api { code, status, .. } => {
                code.starts_with("Throttling")
                    || *status == 429
                    || code == "ServiceUnavailable"
                    || code.starts_with("InternalError")
                    || code == "UnknownError"
                    || matches!(status, 500 | 502 | 503 | 504) && !code.contains('.')
            }
            ApiError::Http { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            ApiError::Transport { .. } => true,
            ApiError::Decode { .. } | ApiError::Credentials { .. } => false,
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
            | ApiError::Decode { action, .. }
            | ApiError::Credentials { action, .. } => action,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Api { request_id, .. } => Some(request_id),
            _ => None,
        }
    }
}

/// The longest API error code taken as one; see [`looks_like_code`].
pub const MAX_CODE_LEN: usize = 64;
/// The longest API message kept in an error, after redaction.
const MAX_MESSAGE_CHARS: usize = 400;
/// Quoted bodies (not the API's error JSON) are cut shorter.
const MAX_SNIPPET_BYTES: usize = 160;
const REDACTED: &str = "[redacted]";

/// An API error code as the `code` label may carry it: 1 to 64 characters
/// of `A-Z a-z 0-9 . _ -` (`Throttling.User`, `InvalidParameter.NextToken`).
pub fn looks_like_code(s: &str) -> bool {
    (1..=MAX_CODE_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `code` when it looks like a code, else `other`: labels stay bounded
/// whatever an endpoint answers.
pub fn code_label(code: &str) -> &str {
    if looks_like_code(code) && !crate::secret::holds_secret(code) {
        code
    } else {
        "other"
    }
}

/// Parameter names whose values must never be repeated: the key pair, the
/// tokens and the signature.
const SENSITIVE: &[&str] = &[
    "AccessKeyId",
    "AccessKeySecret",
    "SecurityToken",
    "OIDCToken",
    "Signature",
    "access_key_id",
    "access_key_secret",
    "security_token",
    "sts_token",
    "oidc_token",
    "access-key-id",
    "access-key-secret",
    "security-token",
    "x-acs-security-token",
];

/// An API message (or a quoted body) made safe for a log, a metric or an
/// HTTP body. `SignatureDoesNotMatch` echoes the server's string to sign,
/// which holds the AccessKeyId and the SecurityToken: everything from
/// "string to sign" on is dropped. Values of the parameters in
/// [`SENSITIVE`] anywhere else (`k=v`, percent-encoded `k%3Dv`, `"k":"v"`)
/// become `[redacted]`; control characters become spaces; the text is cut
/// at a few hundred characters.
pub fn redact(message: &str) -> String {
    let mut text = message.to_string();
    let lower = text.to_ascii_lowercase();
    if let Some(i) = ["string to sign", "stringtosign", "string-to-sign"]
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
    {
        text.truncate(i);
        text.push_str("string to sign: ");
        text.push_str(REDACTED);
    }
    let text = redact_values(&text);
    let text = crate::secret::scrub(&text);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    if text.chars().nth(MAX_MESSAGE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// The separators between a parameter's name and its value: `=`, `:` and
/// their percent-encoded forms (once and twice encoded), after an optional
/// closing quote.
fn separator_len(rest: &[u8]) -> Option<usize> {
    let quote = usize::from(rest.first() == Some(&b'"'));
    // `SecurityToken = v`: spaces before the separator too.
    let spaces = rest[quote..].iter().take_while(|b| **b == b' ').count();
    let quote = quote + spaces;
    let after = &rest[quote..];
    let lower: Vec<u8> = after.iter().take(5).map(u8::to_ascii_lowercase).collect();
    let sep = if lower.starts_with(b"%253d") {
        5
    } else if lower.starts_with(b"%3d") || lower.starts_with(b"%3a") {
        3
    } else if matches!(after.first(), Some(b'=' | b':' | b'>')) {
        // `>`: `<SecurityToken>v</SecurityToken>`.
        1
    } else {
        return None;
    };
    let mut n = quote + sep;
    while matches!(rest.get(n), Some(b' ')) {
        n += 1;
    }
    if rest.get(n) == Some(&b'"') {
        n += 1;
    }
    Some(n)
}

/// Where a value ends: at a delimiter, or at an encoded `&`.
fn value_len(rest: &[u8]) -> usize {
    let mut i = 0;
    while i < rest.len() {
        let b = rest[i];
        if b.is_ascii_whitespace() || b"&\"',;<>{}()[]".contains(&b) {
            break;
        }
        let ahead: Vec<u8> = rest[i..]
            .iter()
            .take(5)
            .map(u8::to_ascii_lowercase)
            .collect();
        if ahead.starts_with(b"%26") || ahead.starts_with(b"%2526") {
            break;
        }
        i += 1;
    }
    i
}

fn redact_values(text: &str) -> String {
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let hit = SENSITIVE.iter().find_map(|name| {
            let end = i + name.len();
            // No word boundary asked for: in `%26SecurityToken%3D` a digit
            // comes first, and redacting too much costs nothing.
            let name_here = lower.as_bytes().get(i..end)? == name.to_ascii_lowercase().as_bytes();
            name_here
                .then(|| separator_len(&bytes[end..]).map(|s| end + s))
                .flatten()
        });
        match hit {
            Some(value_start) => {
                let value_end = value_start + value_len(&bytes[value_start..]);
                // Separators and delimiters are ASCII: the cut is on a
                // character boundary.
                out.push_str(&text[copied..value_start]);
                out.push_str(REDACTED);
                copied = value_end;
                i = value_end.max(i + 1);
            }
            None => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The start of a body, redacted, control characters blanked, for an
/// error message.
pub fn snippet(body: &[u8]) -> String {
    let cut = &body[..body.len().min(MAX_SNIPPET_BYTES)];
    redact(&String::from_utf8_lossy(cut))
}

/// `HTTP 404`, or for a 3xx `HTTP 307: a redirect, which is never
/// followed`: for answers without an API error body.
pub fn describe_status(status: u16) -> String {
    if (300..400).contains(&status) {
        format!("HTTP {status}: a redirect, which is never followed")
    } else {
        format!("HTTP {status}")
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

    #[test]
    fn the_string_to_sign_and_secret_values_are_redacted() {
        let echoed = "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3DLTAIkey1%26Action%3DDescribeRegions%26SecurityToken%3DCAIStok1%252Bx%26Version%3D2014-05-26";
        let r = redact(echoed);
        assert_eq!(
            r,
            "Specified signature is not matched with our calculation. server string to sign: [redacted]"
        );
        for (message, gone) in [
            ("bad AccessKeyId=LTAIkey2&Action=X", "LTAIkey2"),
            ("query AccessKeyId%3DLTAIkey3%26Action%3DX", "LTAIkey3"),
            ("glued x%26SecurityToken%3DCAIStok4%26y", "CAIStok4"),
            ("twice AccessKeyId%253DLTAIkey4%2526X", "LTAIkey4"),
            (r#"echo {"SecurityToken": "CAIStok2", "x": 1}"#, "CAIStok2"),
            ("token securitytoken:CAIStok3 expired", "CAIStok3"),
            ("sig Signature=abc%2Bdef%3D&SignatureNonce=1", "abc%2Bdef"),
            ("oidc OIDCToken=eyJhbGci.x.y", "eyJhbGci"),
            ("StringToSign=GET&AccessKeyId=LTAIkey5", "LTAIkey5"),
        ] {
            let r = redact(message);
            assert!(!r.contains(gone), "{message} -> {r}");
            assert!(r.contains(REDACTED), "{message} -> {r}");
        }
        // Prose and other parameters stay.
        let plain = "Specified signature is not matched; SignatureMethod=HMAC-SHA1 AccessKeyId x";
        assert_eq!(redact(plain), plain);
        assert_eq!(redact("a\r\nb\x1b[2J\0c"), "a  b [2J c");
        let long = redact(&"é".repeat(1000));
        assert_eq!(
            long.chars().count(),
            MAX_MESSAGE_CHARS + 1,
            "cut, with an ellipsis"
        );
    }

    #[test]
    fn only_codes_that_look_like_codes_are_labels() {
        assert!(looks_like_code("Throttling.User"));
        assert!(looks_like_code("InvalidParameter.NextToken"));
        assert!(looks_like_code(&"X".repeat(64)));
        for bad in ["", "a b", "x<script>", "Code\n", "é", &"X".repeat(65)] {
            assert!(!looks_like_code(bad), "{bad:?}");
            assert_eq!(code_label(bad), "other");
        }
        let e = ApiError::api("A", "r", 400, "not a code", "m", "R-1");
        assert_eq!(e.code(), "other");
        let e = ApiError::api("A", "r", 400, "Forbidden.RAM", "m", "bad id <x>");
        assert_eq!((e.code(), e.request_id()), ("Forbidden.RAM", Some("-")));
        assert!(e.is_permission_denied());
    }

    #[test]
    fn status_429_is_throttling_and_3xx_a_redirect() {
        let http = |status| ApiError::http("A", "r", status, b"<html>x</html>");
        assert!(http(429).is_throttling() && http(429).is_retryable());
        assert_eq!(http(429).code(), "Throttling");
        let api429 = ApiError::api("A", "r", 429, "TooManyRequests", "slow", "R");
        assert!(api429.is_throttling() && api429.is_retryable());
        let moved = http(307);
        assert!(!moved.is_retryable() && !moved.is_throttling());
        assert_eq!(moved.code(), "HTTP3xx");
        assert!(
            moved.to_string().contains("HTTP 307") && moved.to_string().contains("never followed"),
            "{moved}"
        );
        assert_eq!(http(404).code(), "HTTP4xx");
        assert_eq!(
            describe_status(302),
            "HTTP 302: a redirect, which is never followed"
        );
    }
}
