//! Where the exporter's API credentials come from.
//!
//! Today: the environment (`ALIBABA_CLOUD_ACCESS_KEY_ID`,
//! `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, optional `ALIBABA_CLOUD_SECURITY_TOKEN`)
//! or fixed values (the demo). The client reads the current set through
//! [`CredentialProvider::current`], so sources that refresh can swap in new
//! ones without the client knowing.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::secret::Secret;

#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no credentials found: tried the environment (ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET); set them, or run with --demo"
    )]
    NotConfigured,
    #[error("{0} is set but empty")]
    Empty(&'static str),
}

/// Holds the credentials in use; `current` is cheap and lock-free.
#[derive(Debug)]
pub struct CredentialProvider {
    source: &'static str,
    current: ArcSwap<Credentials>,
}

impl CredentialProvider {
    pub fn fixed(source: &'static str, creds: Credentials) -> Arc<Self> {
        Arc::new(CredentialProvider {
            source,
            current: ArcSwap::from_pointee(creds),
        })
    }

    /// Reads the environment through `get` (so tests need not touch the
    /// process environment).
    pub fn from_env_with(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Arc<Self>, CredentialsError> {
        let id = get("ALIBABA_CLOUD_ACCESS_KEY_ID");
        let secret = get("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
        let (Some(id), Some(secret)) = (id, secret) else {
            return Err(CredentialsError::NotConfigured);
        };
        if id.trim().is_empty() {
            return Err(CredentialsError::Empty("ALIBABA_CLOUD_ACCESS_KEY_ID"));
        }
        if secret.is_empty() {
            return Err(CredentialsError::Empty("ALIBABA_CLOUD_ACCESS_KEY_SECRET"));
        }
        let token = get("ALIBABA_CLOUD_SECURITY_TOKEN")
            .filter(|t| !t.is_empty())
            .map(Secret::new);
        Ok(Self::fixed(
            "env",
            Credentials {
                access_key_id: id.trim().to_string(),
                access_key_secret: Secret::new(secret),
                security_token: token,
            },
        ))
    }

    pub fn from_env() -> Result<Arc<Self>, CredentialsError> {
        Self::from_env_with(|k| std::env::var(k).ok())
    }

    pub fn current(&self) -> Arc<Credentials> {
        self.current.load_full()
    }

    /// Which source the credentials came from (for logs; never a value).
    pub fn source(&self) -> &'static str {
        self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn reads_the_environment() {
        let p = CredentialProvider::from_env_with(env(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIid"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cret"),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", "tok"),
        ]))
        .expect("configured");
        let c = p.current();
        assert_eq!(c.access_key_id, "LTAIid");
        assert_eq!(c.access_key_secret.expose(), "s3cret");
        assert_eq!(c.security_token.as_ref().map(|t| t.expose()), Some("tok"));
        assert_eq!(p.source(), "env");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!format!("{c:?}").contains("tok\""));
    }

    #[test]
    fn missing_or_empty_is_a_clear_error() {
        let e = CredentialProvider::from_env_with(env(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "x")]))
            .unwrap_err();
        assert!(e.to_string().contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"));
        let e = CredentialProvider::from_env_with(env(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "x"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
        ]))
        .unwrap_err();
        assert!(matches!(
            e,
            CredentialsError::Empty("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        ));
    }
}
