//! One home for the rules a value from a flag, the accounts file, the web
//! config or an API answer must pass: endpoint URLs and templates, region
//! ids, RAM ARNs, names, relative paths, one-line error text. A leaf module:
//! it imports nothing of the crate, so every other module may use it.

use std::path::{Path, PathBuf};

/// Checks an STS or metadata endpoint: `http(s)://host[:port][/path]`,
/// no query, no fragment, no user info.
pub fn endpoint_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?}: must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or("");
    let bad =
        |c: char| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '@' | '{' | '}');
    if host.is_empty() || host.starts_with(':') || url.contains(bad) {
        return Err(format!(
            "{url:?}: not a URL such as https://sts.aliyuncs.com"
        ));
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && !host.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("{url:?}: bad port"));
    }
    Ok(())
}

/// Checks an `--aliyun.endpoint` template: an http(s) URL whose only
/// placeholder is `{region}`.
pub fn endpoint_template(t: &str) -> Result<(), String> {
    let probe = t.replace("{region}", "cn-hangzhou");
    if probe.contains('{') || probe.contains('}') {
        return Err(format!(
            "endpoint template {t:?}: the only placeholder allowed is {{region}}"
        ));
    }
    let rest = probe
        .strip_prefix("https://")
        .or_else(|| probe.strip_prefix("http://"))
        .ok_or_else(|| format!("endpoint template {t:?}: must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty()
        || host.contains(|c: char| c.is_whitespace() || c.is_control())
        || host.contains(['?', '#', '@'])
    {
        return Err(format!("endpoint template {t:?}: no valid host"));
    }
    Ok(())
}

/// Region ids are short, lower-case words joined by `-` (`cn-hangzhou`,
/// `ap-southeast-1`); anything else would break a URL or a label.
pub const MAX_REGION_ID: usize = 64;

pub fn region_id(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_REGION_ID
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a region id such as cn-hangzhou",
            shorten(s, 80)
        ))
    }
}

/// A plugin name that can be a label value as it is: 1 to 255 of
/// `A-Z a-z 0-9 . _ -`.
pub fn plugin_name(s: &str) -> Result<(), String> {
    let ok = (1..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?}: a plugin name has 1 to 255 of A-Z a-z 0-9 . _ -",
            shorten(s, 80)
        ))
    }
}

/// A non-empty name of `A-Z a-z 0-9 . _ -` only (its length is the
/// caller's rule: a flag takes 255 bytes, a label value from the API 256).
pub fn plugin_name_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks a RAM role ARN: `acs:ram::<account>:role/<name>`.
pub fn role_arn(arn: &str) -> Result<(), String> {
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
        Err(format!(
            "{arn:?} is not a RAM role ARN such as acs:ram::1234567890123456:role/name"
        ))
    }
}

/// Checks an OIDC provider ARN: `acs:ram::<account>:oidc-provider/<name>`.
pub fn oidc_provider_arn(arn: &str) -> Result<(), String> {
    if arn.starts_with("acs:ram::")
        && arn.contains(":oidc-provider/")
        && !arn.contains(char::is_whitespace)
    {
        Ok(())
    } else {
        Err(format!(
            "{arn:?} is not an ARN such as acs:ram::1234567890123456:oidc-provider/name"
        ))
    }
}

/// An account name is the value of the `account` label: 1 to 128 letters,
/// digits, `_`, `.` or `-`.
pub fn account_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?}: 1 to 128 letters, digits, '_', '.' or '-' (it is the value of the account label)"
        ))
    }
}

/// STS's rule for RoleSessionName: 2 to 64 of `A-Z a-z 0-9 . @ - _`.
pub fn session_name(s: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?}: 2 to 64 letters, digits, '.', '@', '-' or '_'"
        ))
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
            let e = region_id(bad).expect_err(bad);
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
    fn paths_and_text() {
        let file = Path::new("/etc/cae/accounts.yml");
        assert_eq!(resolve_path(file, "s"), PathBuf::from("/etc/cae/s"));
        assert_eq!(resolve_path(file, "/abs"), PathBuf::from("/abs"));
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("ab", 3), "ab");
    }
}
