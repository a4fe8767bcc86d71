//! One home for the rules a value from a flag, the accounts file, the web
//! config or an API answer must pass: endpoint URLs and templates, region
//! ids, RAM ARNs, names, relative paths, one-line error text. A leaf module:
//! it imports nothing of the crate, so every other module may use it.

use std::path::{Path, PathBuf};

/// A value that breaks one of the rules here. The text names the value
/// (shortened where it may be long) and the rule, on one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("{0:?}: must start with http:// or https://")]
    UrlScheme(String),
    #[error("{0:?}: not a URL such as https://sts.aliyuncs.com")]
    Url(String),
    #[error("{0:?}: bad port")]
    UrlPort(String),
    #[error("endpoint template {0:?}: the only placeholder allowed is {{region}}")]
    TemplatePlaceholder(String),
    #[error("endpoint template {0:?}: must start with http:// or https://")]
    TemplateScheme(String),
    #[error("endpoint template {0:?}: no valid host")]
    TemplateHost(String),
    #[error("{0:?} is not a region id such as cn-hangzhou")]
    RegionId(String),
    #[error("{0:?}: a plugin name has 1 to {MAX_PLUGIN_NAME} of A-Z a-z 0-9 . _ -")]
    PluginName(String),
    #[error("{0:?}: a tag key has 1 to {MAX_TAG_KEY_CHARS} characters")]
    TagKey(String),
    #[error("{0:?} is not a RAM role ARN such as acs:ram::1234567890123456:role/name")]
    RoleArn(String),
    #[error("{0:?} is not an ARN such as acs:ram::1234567890123456:oidc-provider/name")]
    OidcProviderArn(String),
    #[error(
        "{0:?}: 1 to 128 letters, digits, '_', '.' or '-' (it is the value of the account label)"
    )]
    AccountName(String),
    #[error("{0:?}: 2 to 64 letters, digits, '.', '@', '-' or '_'")]
    SessionName(String),
}

/// Checks an STS or metadata endpoint: `http(s)://host[:port][/path]`,
/// no query, no fragment, no user info.
pub fn endpoint_url(url: &str) -> Result<(), Invalid> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| Invalid::UrlScheme(url.to_string()))?;
    let host = rest.split('/').next().unwrap_or("");
    let bad =
        |c: char| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '@' | '{' | '}');
    if host.is_empty() || host.starts_with(':') || url.contains(bad) {
        return Err(Invalid::Url(url.to_string()));
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && !host.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(Invalid::UrlPort(url.to_string()));
    }
    Ok(())
}

/// Checks an `--aliyun.endpoint` template: an http(s) URL whose only
/// placeholder is `{region}`.
pub fn endpoint_template(t: &str) -> Result<(), Invalid> {
    let probe = t.replace("{region}", "cn-hangzhou");
    if probe.contains('{') || probe.contains('}') {
        return Err(Invalid::TemplatePlaceholder(t.to_string()));
    }
    let rest = probe
        .strip_prefix("https://")
        .or_else(|| probe.strip_prefix("http://"))
        .ok_or_else(|| Invalid::TemplateScheme(t.to_string()))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty()
        || host.contains(|c: char| c.is_whitespace() || c.is_control())
        || host.contains(['?', '#', '@'])
    {
        return Err(Invalid::TemplateHost(t.to_string()));
    }
    Ok(())
}

/// Region ids are short, lower-case words joined by `-` (`cn-hangzhou`,
/// `ap-southeast-1`); anything else would break a URL or a label.
pub const MAX_REGION_ID: usize = 64;

pub fn region_id(s: &str) -> Result<(), Invalid> {
    let ok = !s.is_empty()
        && s.len() <= MAX_REGION_ID
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Invalid::RegionId(shorten(s, 80)))
    }
}

/// The longest label value a series may carry, in bytes: longer values
/// come from odd API answers and make series nobody can query.
pub const MAX_LABEL_BYTES: usize = 256;

/// The longest plugin name ListPluginStatus takes as `Name` ("1 to 255
/// characters"); within [`MAX_LABEL_BYTES`], so one limit serves the flag,
/// the answers and the label.
pub const MAX_PLUGIN_NAME: usize = 255;

/// A plugin name that can be a label value as it is, from a flag or an API
/// answer alike: 1 to [`MAX_PLUGIN_NAME`] of `A-Z a-z 0-9 . _ -`.
pub fn plugin_name(s: &str) -> Result<(), Invalid> {
    let ok = (1..=MAX_PLUGIN_NAME).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::PluginName(shorten(s, 80)))
    }
}

/// The API's limit on a tag key, in characters.
pub const MAX_TAG_KEY_CHARS: usize = 128;

/// A tag key the API can have: 1 to [`MAX_TAG_KEY_CHARS`] characters.
pub fn tag_key(s: &str) -> Result<(), Invalid> {
    if s.is_empty() || s.chars().count() > MAX_TAG_KEY_CHARS {
        return Err(Invalid::TagKey(shorten(s, 160)));
    }
    Ok(())
}

/// Checks a RAM role ARN: `acs:ram::<account>:role/<name>`.
pub fn role_arn(arn: &str) -> Result<(), Invalid> {
    let ok = arn
        .strip_prefix("acs:ram::")
        .and_then(|r| r.split_once(":role/"))
        .is_some_and(|(account, name)| {
            !account.is_empty()
                && account.bytes().all(|b| b.is_ascii_digit())
                && !name.is_empty()
                && !name.contains(char::is_whitespace)
        });
    if ok {
        Ok(())
    } else {
        Err(Invalid::RoleArn(arn.to_string()))
    }
}

/// Checks an OIDC provider ARN: `acs:ram::<account>:oidc-provider/<name>`.
pub fn oidc_provider_arn(arn: &str) -> Result<(), Invalid> {
    if arn.starts_with("acs:ram::")
        && arn.contains(":oidc-provider/")
        && !arn.contains(char::is_whitespace)
    {
        Ok(())
    } else {
        Err(Invalid::OidcProviderArn(arn.to_string()))
    }
}

/// An account name is the value of the `account` label: 1 to 128 letters,
/// digits, `_`, `.` or `-`.
pub fn account_name(s: &str) -> Result<(), Invalid> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::AccountName(s.to_string()))
    }
}

/// STS's rule for RoleSessionName: 2 to 64 of `A-Z a-z 0-9 . @ - _`.
pub fn session_name(s: &str) -> Result<(), Invalid> {
    let ok = (2..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::SessionName(s.to_string()))
    }
}

/// A path named in a config file: relative ones are taken from the file's
/// directory, so the file means the same wherever the exporter starts.
pub fn resolve_path(config_file: &Path, p: impl AsRef<Path>) -> PathBuf {
    let p = p.as_ref();
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// Error text as one line: runs of white space (newlines included) become
/// one space, so a message never breaks a log line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters of `s`, with `…` when cut: values echoed in an
/// error stay short.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        for ok in [
            "https://ecs.aliyuncs.com",
            "http://127.0.0.1:8080/x",
            "https://[::1]:443",
        ] {
            assert!(endpoint_url(ok).is_ok(), "{ok}");
            assert!(endpoint_template(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ecs.aliyuncs.com",
            "https://",
            "https://a b",
            "https://u@h",
            "https://h:99999",
            "https://h?x",
            "ftp://x",
            "http://:80",
            "http://h:port",
            "https://h/?q",
        ] {
            assert!(endpoint_url(bad).is_err(), "{bad}");
        }
        assert!(endpoint_template("https://ecs.{region}.aliyuncs.com").is_ok());
        assert!(endpoint_template("https://{zone}.x").is_err());
        assert!(endpoint_template("ftp://{region}.x").is_err());
        assert!(endpoint_template("https:///path").is_err());
    }

    #[test]
    fn regions_names_arns() {
        assert!(region_id("cn-hangzhou").is_ok());
        for bad in ["", "CN", "x.evil/#", "a b", &"a".repeat(300)] {
            let e = region_id(bad).expect_err(bad).to_string();
            assert!(e.len() < 200, "{e}");
        }
        assert!(role_arn("acs:ram::1:role/r").is_ok());
        for bad in [
            "reader",
            "acs:ram::x:role/r",
            "acs:ram::123:role/",
            "acs:ram::123:user/u",
        ] {
            assert!(role_arn(bad).is_err(), "{bad}");
        }
        assert!(oidc_provider_arn("acs:ram::1:oidc-provider/ack").is_ok());
        assert!(oidc_provider_arn("ack").is_err());
        assert!(account_name("prod.1_a-b").is_ok());
        assert!(account_name("pr od").is_err());
        assert!(session_name("exporter").is_ok());
        assert!(session_name("a b").is_err());
    }

    #[test]
    fn plugin_names_and_tag_keys_have_one_limit() {
        assert!(plugin_name(&"p".repeat(MAX_PLUGIN_NAME)).is_ok());
        assert!(plugin_name(&"p".repeat(MAX_PLUGIN_NAME + 1)).is_err());
        assert!(plugin_name("bad name").is_err());
        assert!(plugin_name("").is_err());
        assert!(tag_key(&"部".repeat(MAX_TAG_KEY_CHARS)).is_ok());
        assert!(tag_key(&"k".repeat(MAX_TAG_KEY_CHARS + 1)).is_err());
        assert!(tag_key("").is_err());
    }

    #[test]
    fn paths_and_text() {
        let file = Path::new("/etc/cae/accounts.yml");
        assert_eq!(resolve_path(file, "s"), PathBuf::from("/etc/cae/s"));
        assert_eq!(resolve_path(file, "/abs"), PathBuf::from("/abs"));
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("ab", 3), "ab");
    }
}
