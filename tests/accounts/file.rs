//! The accounts file (`--config.file`): what parses, and that every error
//! is one line naming the file, the line and the key.

use std::path::{Path, PathBuf};

use cloud_assistant_exporter::accounts::credential_spec;
use cloud_assistant_exporter::config::accounts_file::{AccountsFile, CredentialConfig, parse};
use cloud_assistant_exporter::credentials::{self as creds, CredentialSpec, RoleSpec};
use cloud_assistant_exporter::secret::Secret;

const FILE: &str = "/etc/cae/accounts.yml";

fn ok(text: &str) -> AccountsFile {
    parse(text, Path::new(FILE)).unwrap_or_else(|e| panic!("{e}"))
}

/// The error, checked to be one line that starts with the file and `line`.
fn err(text: &str, line: usize) -> String {
    let e = parse(text, Path::new(FILE))
        .expect_err("an error")
        .to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    let prefix = format!("config file {FILE} line {line}: ");
    assert!(e.starts_with(&prefix), "want {prefix:?}, got {e:?}");
    e
}

#[test]
fn the_documented_example_parses() {
    let f = ok(r#"
accounts:
  - name: prod                         # the account label
    endpoint: "https://ecs.aliyuncs.com/"
    regions: [cn-hangzhou, cn-shanghai]
    credentials:
      type: ram_role_arn
      role_arn: "acs:ram::1234567890123456:role/cloud-assistant-exporter"
      external_id: "abc"
      role_session_name: exporter
      duration_seconds: 1800
      policy: '{"Version": "1", "Statement": []}'
      source: {type: chain}
  - name: staging
    credentials:
      type: access_key
      access_key_id: LTAI-staging
      access_key_secret_file: /run/secrets/staging
  - name: sts.1
    credentials:
      type: sts_token
      access_key_id: STS.x
      access_key_secret_file: secret
      security_token_file: token
  - name: rrsa
    credentials:
      type: oidc_role_arn
      role_arn: "acs:ram::1234567890123456:role/r"
      oidc_provider_arn: "acs:ram::1234567890123456:oidc-provider/ack"
      oidc_token_file: /var/run/secrets/tokens/oidc-token
  - name: ecs
    credentials: {type: ecs_ram_role, role_name: EcsRole}
  - name: ecs-any
    credentials: {type: ecs_ram_role}
  - name: p
    credentials: {type: profile, profile: ops}
  - name: "2024"
    credentials:
"#);
    let a = &f.accounts;
    assert_eq!(a.len(), 8);
    assert_eq!(a[0].name, "prod");
    assert_eq!(a[0].endpoint.as_deref(), Some("https://ecs.aliyuncs.com"));
    assert_eq!(a[0].regions, vec!["cn-hangzhou", "cn-shanghai"]);
    let CredentialConfig::RamRoleArn { role, source } = &a[0].credentials else {
        panic!("{:?}", a[0].credentials)
    };
    assert_eq!(
        role,
        &RoleSpec {
            role_arn: "acs:ram::1234567890123456:role/cloud-assistant-exporter".into(),
            role_session_name: Some("exporter".into()),
            duration_seconds: Some(1800),
            external_id: Some("abc".into()),
            policy: Some(r#"{"Version": "1", "Statement": []}"#.into()),
        }
    );
    assert_eq!(**source, CredentialConfig::Chain);
    assert_eq!(
        a[1].credentials,
        CredentialConfig::AccessKey {
            access_key_id: "LTAI-staging".into(),
            access_key_secret_file: "/run/secrets/staging".into(),
        }
    );
    // Relative paths are taken from the file's directory.
    assert_eq!(
        a[2].credentials,
        CredentialConfig::StsToken {
            access_key_id: "STS.x".into(),
            access_key_secret_file: "/etc/cae/secret".into(),
            security_token_file: "/etc/cae/token".into(),
        }
    );
    let CredentialConfig::OidcRoleArn(o) = &a[3].credentials else {
        panic!("{:?}", a[3].credentials)
    };
    assert_eq!(
        o.oidc_token_file,
        PathBuf::from("/var/run/secrets/tokens/oidc-token")
    );
    assert_eq!(
        a[4].credentials,
        CredentialConfig::EcsRamRole {
            role_name: Some("EcsRole".into())
        }
    );
    assert_eq!(
        a[5].credentials,
        CredentialConfig::EcsRamRole { role_name: None }
    );
    assert_eq!(
        a[6].credentials,
        CredentialConfig::Profile { name: "ops".into() }
    );
    assert_eq!(a[7].name, "2024");
    assert_eq!(a[7].credentials, CredentialConfig::Chain, "the default");
    assert!(a[7].regions.is_empty() && a[7].endpoint.is_none());
}

#[test]
fn unknown_keys_name_the_key_and_line() {
    let e = err(
        "accounts:\n  - name: a\n    credentials:\n      type: access_key\n      access_key_id: x\n      access_key_secret_file: /s\n      acces_key_id: y\n",
        7,
    );
    assert!(e.contains("unknown field `acces_key_id`"), "{e}");
    let e = err("accounts:\n  - name: a\n    region: [cn-hangzhou]\n", 3);
    assert!(e.contains("unknown field `region`"), "{e}");
    let e = err("accounts:\n  - name: a\nextra: 1\n", 3);
    assert!(e.contains("unknown field `extra`"), "{e}");
    // A key of another type is unknown for this one.
    let e = err(
        "accounts:\n- name: a\n  credentials:\n    type: chain\n    role_arn: acs:ram::1:role/r\n",
        4,
    );
    assert!(e.contains("take no key \"role_arn\""), "{e}");
    // In a flow mapping and a nested source.
    let e = err(
        "accounts:\n- name: a\n  credentials:\n    type: ram_role_arn\n    role_arn: acs:ram::1:role/r\n    source: {type: chain,\n      bogus: 1}\n",
        7,
    );
    assert!(e.contains("unknown field `bogus`"), "{e}");
}

#[test]
fn duplicate_names_and_keys() {
    let e = err(
        "accounts:\n  - name: prod\n  - name: staging\n  - name: prod\n",
        4,
    );
    assert!(
        e.contains("duplicate account name \"prod\" (the same as account 1)"),
        "{e}"
    );
    // serde reports it at the mapping, naming the key.
    let e = err("accounts:\n  - name: a\n    name: b\n", 2);
    assert!(e.contains("accounts[0]: duplicate field `name`"), "{e}");
}

#[test]
fn inline_secrets_are_refused_without_echoing_them() {
    for (key, file_key) in [
        ("access_key_secret", "access_key_secret_file"),
        ("security_token", "security_token_file"),
    ] {
        let text = format!(
            "accounts:\n  - name: a\n    credentials:\n      type: sts_token\n      access_key_id: x\n      {key}: hunter2\n"
        );
        let e = err(&text, 6);
        assert!(
            e.contains(&format!("credentials.{key}: secrets are never written")),
            "{e}"
        );
        assert!(e.contains(file_key), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
    // Before the type is even known, and at the account level too.
    let e = err(
        "accounts:\n  - name: a\n    access_key_secret: hunter2\n",
        3,
    );
    assert!(
        !e.contains("hunter2") && e.contains("unknown field `access_key_secret`"),
        "{e}"
    );
}

#[test]
fn missing_keys_point_at_their_mapping() {
    let e = err("accounts:\n  - endpoint: http://127.0.0.1:1\n", 2);
    assert!(e.contains("missing field `name`"), "{e}");
    let e = err(
        "accounts:\n  - name: a\n    credentials:\n      type: ram_role_arn\n",
        4,
    );
    assert!(
        e.contains("credentials of type ram_role_arn: missing key \"role_arn\""),
        "{e}"
    );
    let e = err(
        "accounts:\n  - name: a\n    credentials:\n      access_key_id: x\n",
        4,
    );
    assert!(e.contains("missing field `type`"), "{e}");
    let e = err(
        "accounts:\n  - name: a\n    credentials: {type: access_key, access_key_id: x}\n",
        3,
    );
    assert!(
        e.contains("type access_key: missing key \"access_key_secret_file\""),
        "{e}"
    );
    let e = err("# nothing\nother: 1\n", 2);
    assert!(e.contains("unknown field `other`"), "{e}");
    let e = err("{}\n", 1);
    assert!(e.contains("missing field `accounts`"), "{e}");
    let e = parse("# only a comment\n", Path::new(FILE))
        .expect_err("empty")
        .to_string();
    assert!(
        e.starts_with("config file") && e.contains("is empty"),
        "{e}"
    );
}

#[test]
fn bad_values_name_the_key_and_line() {
    for (text, line, want) in [
        ("accounts: []\n", 1, "the list is empty"),
        ("accounts: prod\n", 1, "expected a list of accounts"),
        ("accounts:\n  - prod\n", 2, "expected an account: a mapping"),
        (
            "accounts:\n  - name: pr od\n",
            2,
            "accounts[0].name: \"pr od\"",
        ),
        (
            "accounts:\n  - name: [a]\n",
            2,
            "accounts[0].name: invalid type: sequence, expected a string",
        ),
        (
            "accounts:\n  - name: a\n    endpoint: ecs.aliyuncs.com\n",
            3,
            "endpoint",
        ),
        (
            "accounts:\n  - name: a\n    endpoint: https://{zone}.x\n",
            3,
            "{region}",
        ),
        (
            "accounts:\n  - name: a\n    regions: cn-hangzhou\n",
            3,
            "regions: invalid type: string \"cn-hangzhou\", expected a list",
        ),
        ("accounts:\n  - name: a\n    regions: []\n", 3, "empty list"),
        (
            "accounts:\n  - name: a\n    regions:\n      - cn-hangzhou\n      - CN_X\n",
            5,
            "regions[1]: \"CN_X\" is not a region id",
        ),
        (
            "accounts:\n  - name: a\n    regions: [cn-a, cn-a]\n",
            3,
            "listed twice",
        ),
        (
            "accounts:\n  - name: a\n    credentials: chain\n",
            3,
            "expected credentials: a mapping",
        ),
        (
            "accounts:\n  - name: a\n    credentials:\n      type: magic\n",
            4,
            "credentials.type: \"magic\" is not one of access_key",
        ),
        (
            "accounts:\n  - name: a\n    credentials:\n      type: ram_role_arn\n      role_arn: reader\n",
            5,
            "role_arn: \"reader\" is not a RAM role ARN",
        ),
        (
            "accounts:\n  - name: a\n    credentials:\n      type: ram_role_arn\n      role_arn: acs:ram::1:role/r\n      duration_seconds: 60\n",
            6,
            "duration_seconds",
        ),
        (
            "accounts:\n  - name: a\n    credentials:\n      type: ram_role_arn\n      role_arn: acs:ram::1:role/r\n      role_session_name: a b\n",
            6,
            "role_session_name",
        ),
        (
            "accounts:\n  - name: a\n    credentials:\n      type: ram_role_arn\n      role_arn: acs:ram::1:role/r\n      policy: not json\n",
            6,
            "policy",
        ),
        (
            "accounts:\n  - name: a\n    credentials:\n      type: oidc_role_arn\n      role_arn: acs:ram::1:role/r\n      oidc_provider_arn: ack\n      oidc_token_file: /t\n",
            6,
            "oidc_provider_arn",
        ),
        (
            "accounts:\n  - name: a\n    credentials:\n      type: access_key\n      access_key_id: \"\"\n      access_key_secret_file: /s\n",
            5,
            "access_key_id: is empty",
        ),
        (
            "accounts:\n  - name: a\n    credentials: {type: profile, profile: true}\n",
            3,
            "profile: invalid type: boolean `true`, expected a string",
        ),
        (
            "accounts:\n  - name: a\n    credentials: !access_key {}\n",
            3,
            "missing field `type`",
        ),
    ] {
        let e = err(text, line);
        assert!(e.contains(want), "{text:?}: want {want:?} in {e}");
    }
}

#[test]
fn yaml_syntax_errors_carry_the_line() {
    let e = err("accounts:\n  - name: a\n   bad: [\n", 3);
    assert!(e.starts_with("config file"), "{e}");
    let e = parse(
        "accounts:\n  - name: a\n---\naccounts: []\n",
        Path::new(FILE),
    )
    .expect_err("two documents")
    .to_string();
    assert!(e.contains("more than one document"), "{e}");
}

#[test]
fn nested_sources_and_their_limit() {
    let f = ok(r#"
accounts:
  - name: chained
    credentials:
      type: ram_role_arn
      role_arn: "acs:ram::1:role/outer"
      source:
        type: ram_role_arn
        role_arn: "acs:ram::1:role/inner"
        source: {type: access_key, access_key_id: LTAI, access_key_secret_file: s}
"#);
    let CredentialConfig::RamRoleArn { source, .. } = &f.accounts[0].credentials else {
        panic!()
    };
    let CredentialConfig::RamRoleArn { source, role } = &**source else {
        panic!()
    };
    assert_eq!(role.role_arn, "acs:ram::1:role/inner");
    assert!(matches!(**source, CredentialConfig::AccessKey { .. }));
    let mut deep = String::from("accounts:\n- name: a\n  credentials: ");
    for _ in 0..6 {
        deep.push_str("{type: ram_role_arn, role_arn: \"acs:ram::1:role/r\", source: ");
    }
    deep.push_str("{type: chain}");
    deep.push_str(&"}".repeat(6));
    deep.push('\n');
    let e = parse(&deep, Path::new(FILE))
        .expect_err("too deep")
        .to_string();
    assert!(e.contains("nested deeper"), "{e}");
}

#[test]
fn secrets_are_read_from_files_trimmed_and_never_shown() {
    let dir = crate::common::TempDir::new("accounts");
    dir.write("secret", "s3cret-value\n");
    dir.write("token", "  tok\n");
    dir.write("empty", "\n");
    let file = dir.path().join("accounts.yml");
    let f = parse(
            "accounts:\n- name: a\n  credentials: {type: sts_token, access_key_id: STS.1, access_key_secret_file: secret, security_token_file: token}\n- name: b\n  credentials: {type: access_key, access_key_id: LTAI, access_key_secret_file: empty}\n- name: c\n  credentials: {type: access_key, access_key_id: LTAI, access_key_secret_file: missing}\n",
            &file,
        )
        .expect("parses");
    let spec = credential_spec(&f.accounts[0].credentials).expect("reads");
    let CredentialSpec::AccessKey {
        origin,
        access_key_secret,
        security_token,
        ..
    } = &spec
    else {
        panic!("{spec:?}")
    };
    assert_eq!(*origin, creds::SOURCE_CONFIG_FILE);
    assert_eq!(access_key_secret.expose(), "s3cret-value");
    assert_eq!(security_token.as_ref().map(Secret::expose), Some("tok"));
    assert!(!format!("{spec:?}").contains("s3cret"));
    let e = credential_spec(&f.accounts[1].credentials)
        .expect_err("empty")
        .to_string();
    assert!(
        e.contains("access_key_secret_file") && e.contains("is empty"),
        "{e}"
    );
    let e = credential_spec(&f.accounts[2].credentials)
        .expect_err("missing")
        .to_string();
    assert!(e.contains("cannot read it"), "{e}");
}
