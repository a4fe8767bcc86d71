//! Alibaba Cloud RPC signature, version 1.0 (HMAC-SHA1).
//!
//! Pure functions, one per stage, so each can be checked against a golden
//! value: parameters → canonical query → string to sign → signature.
//! Time and nonce are passed in by the caller.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::secret::Secret;

/// Percent-encodes per RFC 3986: only `A-Z a-z 0-9 - _ . ~` stay as they are,
/// every other byte of the UTF-8 form becomes `%XX` with upper-case hex.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    percent_encode_into(s, &mut out);
    out
}

fn percent_encode_into(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xF) as usize] as char);
        }
    }
}

/// Sorts the parameters by name (byte order) and joins them as
/// `k=v&k=v`, names and values percent-encoded.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::new();
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(k, &mut out);
        out.push('=');
        percent_encode_into(v, &mut out);
    }
    out
}

/// `METHOD&%2F&` + percent-encode(canonical query).
pub fn string_to_sign(method: &str, canonical_query: &str) -> String {
    format!("{}&%2F&{}", method, percent_encode(canonical_query))
}

/// base64(HMAC-SHA1(secret + "&", string to sign)).
pub fn signature(secret: &Secret, string_to_sign: &str) -> String {
    let key = format!("{}&", secret.expose());
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The common parameters every signed call carries.
#[derive(Debug, Clone)]
pub struct CommonParams<'a> {
    pub access_key_id: &'a str,
    pub security_token: Option<&'a Secret>,
    pub action: &'a str,
    pub version: &'a str,
    pub region_id: Option<&'a str>,
    /// `YYYY-MM-DDThh:mm:ssZ`, UTC.
    pub timestamp: &'a str,
    pub nonce: &'a str,
}

/// Adds the common parameters to the action's own, signs the result and
/// returns every parameter to send, `Signature` included.
pub fn sign_request(
    method: &str,
    mut params: Vec<(String, String)>,
    common: &CommonParams<'_>,
    secret: &Secret,
) -> Vec<(String, String)> {
    let mut push = |k: &str, v: &str| params.push((k.to_string(), v.to_string()));
    push("AccessKeyId", common.access_key_id);
    push("Action", common.action);
    push("Format", "JSON");
    if let Some(region) = common.region_id {
        push("RegionId", region);
    }
    push("SignatureMethod", "HMAC-SHA1");
    push("SignatureNonce", common.nonce);
    push("SignatureVersion", "1.0");
    push("Timestamp", common.timestamp);
    push("Version", common.version);
    if let Some(token) = common.security_token {
        push("SecurityToken", token.expose());
    }
    let sts = string_to_sign(method, &canonical_query(&params));
    let sig = signature(secret, &sts);
    params.push(("Signature".to_string(), sig));
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    fn golden_params() -> Vec<(String, String)> {
        vec![
            p("AccessKeyId", "testid"),
            p("Action", "DescribeRegions"),
            p("Format", "XML"),
            p("SignatureMethod", "HMAC-SHA1"),
            p("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            p("SignatureVersion", "1.0"),
            p("Timestamp", "2016-02-23T12:46:24Z"),
            p("Version", "2014-05-26"),
        ]
    }

    #[test]
    fn golden_canonical_query() {
        let mut params = golden_params();
        params.reverse(); // order of input must not matter
        assert_eq!(
            canonical_query(&params),
            "AccessKeyId=testid&Action=DescribeRegions&Format=XML&SignatureMethod=HMAC-SHA1\
             &SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0\
             &Timestamp=2016-02-23T12%3A46%3A24Z&Version=2014-05-26"
        );
    }

    #[test]
    fn golden_string_to_sign() {
        let sts = string_to_sign("GET", &canonical_query(&golden_params()));
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML\
             %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             %26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
    }

    #[test]
    fn golden_signature() {
        let sts = string_to_sign("GET", &canonical_query(&golden_params()));
        let sig = signature(&Secret::new("testsecret"), &sts);
        assert_eq!(sig, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    }

    #[test]
    fn wrong_secret_gives_another_signature() {
        let sts = string_to_sign("GET", &canonical_query(&golden_params()));
        assert_ne!(
            signature(&Secret::new("testsecret2"), &sts),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    #[test]
    fn encodes_reserved_and_special_characters() {
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("~"), "~");
        assert_eq!(percent_encode("+"), "%2B");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("="), "%3D");
        assert_eq!(percent_encode("-_.AZaz09"), "-_.AZaz09");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("云助手"), "%E4%BA%91%E5%8A%A9%E6%89%8B");
        assert_eq!(percent_encode("&"), "%26");
    }

    #[test]
    fn next_token_survives_encoding() {
        let q = canonical_query(&[p("NextToken", "AAAA+/=b"), p("MaxResults", "50")]);
        assert_eq!(q, "MaxResults=50&NextToken=AAAA%2B%2F%3Db");
        // and it is encoded a second time inside the string to sign
        assert_eq!(
            string_to_sign("GET", &q),
            "GET&%2F&MaxResults%3D50%26NextToken%3DAAAA%252B%252F%253Db"
        );
    }

    #[test]
    fn sorting_is_by_byte_order() {
        // Upper-case sorts before lower-case in byte order.
        let q = canonical_query(&[
            p("b", "1"),
            p("B", "2"),
            p("a", "3"),
            p("InstanceId.10", "x"),
            p("InstanceId.2", "y"),
        ]);
        assert_eq!(q, "B=2&InstanceId.10=x&InstanceId.2=y&a=3&b=1");
    }

    fn common<'a>(token: Option<&'a Secret>) -> CommonParams<'a> {
        CommonParams {
            access_key_id: "testid",
            security_token: token,
            action: "DescribeRegions",
            version: "2014-05-26",
            region_id: Some("cn-hangzhou"),
            timestamp: "2016-02-23T12:46:24Z",
            nonce: "n-1",
        }
    }

    #[test]
    fn sign_request_adds_common_params_and_signature() {
        let secret = Secret::new("testsecret");
        let params = sign_request("GET", vec![p("PageSize", "50")], &common(None), &secret);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Format"), Some("JSON"));
        assert_eq!(get("RegionId"), Some("cn-hangzhou"));
        assert_eq!(get("SignatureNonce"), Some("n-1"));
        assert_eq!(get("SecurityToken"), None);
        let sig = get("Signature").map(str::to_string);
        // Recompute from everything but the signature.
        let rest: Vec<_> = params
            .iter()
            .filter(|(k, _)| k != "Signature")
            .cloned()
            .collect();
        let expect = signature(&secret, &string_to_sign("GET", &canonical_query(&rest)));
        assert_eq!(sig.as_deref(), Some(expect.as_str()));
    }

    #[test]
    fn security_token_is_signed_when_set() {
        let secret = Secret::new("testsecret");
        let token = Secret::new("tok+en/=");
        let with = sign_request("GET", vec![], &common(Some(&token)), &secret);
        let without = sign_request("GET", vec![], &common(None), &secret);
        let get = |ps: &[(String, String)], k: &str| {
            ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&with, "SecurityToken").as_deref(), Some("tok+en/="));
        assert_ne!(get(&with, "Signature"), get(&without, "Signature"));
    }
}
