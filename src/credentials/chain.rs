//! The default credential chain of the vendor's SDKs: environment, OIDC,
//! CLI profile, credentials file, ECS instance RAM role. The first source
//! that is configured wins; what was tried is kept for the error when none is.

use super::detect::{Detect, Detected};
use super::{Context, CredentialSpec, CredentialsError, cli_profile, ecs_metadata, env, ini, oidc};

/// The steps, in the SDKs' order.
const STEPS: [Detect; 5] = [
    env::detect,
    oidc::detect,
    cli_profile::detect,
    ini::detect,
    ecs_metadata::detect,
];

/// The first configured source, and where it was found (for the log; never
/// a value). A source that is configured wrongly is an error here rather
/// than a reason to try the next one, which would hide the mistake.
pub(crate) async fn resolve(ctx: &Context) -> Result<(CredentialSpec, String), CredentialsError> {
    let mut tried = Vec::new();
    for detect in STEPS {
        match detect(ctx).await? {
            Detected::Found(spec, what) => return Ok((spec, what)),
            Detected::Absent(why) => tried.push(why),
        }
    }
    Err(CredentialsError::NotConfigured { tried })
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::super::{ContextOptions, Env};
    use super::*;

    fn ctx(e: Env) -> Context {
        // A closed loopback port: the metadata probe fails at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        Context::new(
            e,
            ContextOptions {
                metadata_endpoint: format!("http://127.0.0.1:{port}"),
                ..Default::default()
            },
        )
        .expect("context")
    }

    #[tokio::test]
    async fn first_configured_source_wins() {
        let both = env(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIid"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "sec"),
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"),
            ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "p"),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/t"),
        ]);
        let (spec, _) = resolve(&ctx(both)).await.expect("env");
        assert!(matches!(
            spec,
            CredentialSpec::AccessKey { origin: "env", .. }
        ));
        let oidc_only = env(&[
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"),
            ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "p"),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/t"),
        ]);
        let (spec, _) = resolve(&ctx(oidc_only)).await.expect("oidc");
        assert!(matches!(spec, CredentialSpec::Oidc { origin: "oidc", .. }));
    }

    #[tokio::test]
    async fn nothing_configured_names_every_source_tried() {
        let started = std::time::Instant::now();
        let e = resolve(&ctx(env(&[("HOME", "/nonexistent-home")])))
            .await
            .expect_err("none");
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
        let msg = e.to_string();
        for want in [
            "environment (",
            "OIDC (",
            "CLI profile (/nonexistent-home/.aliyun/config.json does not exist)",
            "credentials file (/nonexistent-home/.alibabacloud/credentials.ini does not exist)",
            "ECS instance RAM role (metadata service at http://127.0.0.1:",
            "--demo",
        ] {
            assert!(msg.contains(want), "{want}: {msg}");
        }
        let e = resolve(&ctx(env(&[
            ("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true"),
            ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true"),
        ])))
        .await
        .expect_err("none")
        .to_string();
        assert!(
            e.contains("CLI profile (ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true)"),
            "{e}"
        );
        assert!(
            e.contains("ECS instance RAM role (ALIBABA_CLOUD_ECS_METADATA_DISABLED=true)"),
            "{e}"
        );
        assert!(
            e.contains("HOME and ALIBABA_CLOUD_CREDENTIALS_FILE are not set"),
            "{e}"
        );
    }
}
