//! Step 1 of the chain: `ALIBABA_CLOUD_ACCESS_KEY_ID` and
//! `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, optional `ALIBABA_CLOUD_SECURITY_TOKEN`.

use super::detect::{Detected, Detection, now};
use super::{Context, CredentialSpec, CredentialsError, Env, SOURCE_ENV};

const ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
const SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
const TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// The chain's note when neither variable is set.
const NOT_SET: &str =
    "environment (ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET are not set)";

/// The chain's step.
pub(crate) fn detect(ctx: &Context) -> Detection<'_> {
    now(find(&ctx.env).map(|found| match found {
        Some(spec) => Detected::Found(spec, format!("environment ({ID})")),
        None => Detected::Absent(NOT_SET.into()),
    }))
}

/// The AccessKey of the environment; `None` when neither variable is set.
/// Half a key is an error rather than a reason to look elsewhere: it is
/// almost always a typo, and another source would hide it.
fn find(env: &Env) -> Result<Option<CredentialSpec>, CredentialsError> {
    match (env.get(ID), env.secret(SECRET)) {
        (Some(id), Some(secret)) => Ok(Some(CredentialSpec::AccessKey {
            origin: SOURCE_ENV,
            access_key_id: id.trim().to_string(),
            access_key_secret: secret,
            security_token: env.secret(TOKEN),
        })),
        (None, None) if !env.is_set(ID) && !env.is_set(SECRET) => Ok(None),
        (Some(_), None) => Err(EnvError::Half {
            set: ID,
            missing: SECRET,
            empty: env.is_set(SECRET),
        }
        .into()),
        (None, Some(_)) => Err(EnvError::Half {
            set: SECRET,
            missing: ID,
            empty: env.is_set(ID),
        }
        .into()),
        (None, None) => Err(EnvError::BothEmpty.into()),
    }
}

/// Half an AccessKey in the environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(
        "{set} is set but {missing} is {}; set both, or run with --demo",
        if *.empty { "empty" } else { "not set" }
    )]
    Half {
        set: &'static str,
        missing: &'static str,
        /// Set, but to nothing.
        empty: bool,
    },
    #[error("{ID} and {SECRET} are set but empty; set both, or run with --demo")]
    BothEmpty,
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::*;

    #[test]
    fn reads_the_environment() {
        let spec = find(&env(&[
            (ID, " LTAIid "),
            (SECRET, "s3cret"),
            (TOKEN, "tok"),
        ]))
        .expect("ok")
        .expect("configured");
        let CredentialSpec::AccessKey {
            origin,
            access_key_id,
            access_key_secret,
            security_token,
        } = &spec
        else {
            panic!("{spec:?}")
        };
        assert_eq!(
            (*origin, access_key_id.as_str(), access_key_secret.expose()),
            ("env", "LTAIid", "s3cret")
        );
        assert_eq!(security_token.as_ref().map(|t| t.expose()), Some("tok"));
        assert!(!format!("{spec:?}").contains("s3cret"));
        assert!(!format!("{spec:?}").contains("tok\""));
    }

    #[test]
    fn unset_is_none_and_half_a_key_is_a_clear_error() {
        assert!(find(&env(&[])).expect("ok").is_none());
        let e = find(&env(&[(ID, "x")])).expect_err("half");
        assert!(
            e.to_string().contains(SECRET) && e.to_string().contains("--demo"),
            "{e}"
        );
        let e = find(&env(&[(ID, "x"), (SECRET, "")])).expect_err("empty");
        assert!(e.to_string().contains(&format!("{SECRET} is empty")), "{e}");
        let e = find(&env(&[(SECRET, "x")])).expect_err("half");
        assert!(e.to_string().contains(ID), "{e}");
    }
}
