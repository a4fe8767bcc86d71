//! Fuzzing what users and the API hand the exporter: the accounts file, the
//! web config file, the API's answers and error bodies (the credentials
//! file and the CLI config: `src/credentials/fuzz.rs`). Arbitrary bytes, structured garbage and valid
//! files with random edits: nothing panics, every error names its file (or
//! the field, for API answers), and no error quotes a secret.

mod common;

use std::path::Path;

use cloud_assistant_exporter::api::{
    activations, cloud_assistant, instance_status, instances, managed_instances, plugins, regions,
};
use cloud_assistant_exporter::client::decode_response;
use cloud_assistant_exporter::config::accounts_file;
use cloud_assistant_exporter::error::{looks_like_code, redact};
use cloud_assistant_exporter::server::web_config::WebConfigSource;
use common::{SECRET, TempDir, any_text, clean_error, edited, one_line, proptest_config, scalar};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

/// Nested maps and lists whose keys are mostly from `keys`.
fn tree(keys: &'static [&'static str]) -> BoxedStrategy<Value> {
    let key = prop_oneof![
        4 => select(keys).prop_map(str::to_string),
        1 => "[a-z_]{1,12}",
    ];
    scalar()
        .prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

/// `v` as YAML text, or as JSON (which YAML reads too).
fn yaml_or_json(v: &Value, yaml: bool) -> String {
    if yaml {
        yaml_serde::to_string(v).unwrap_or_default()
    } else {
        v.to_string()
    }
}

// ---- the accounts file ----

const CREDENTIAL_TYPES: &[&str] = &[
    "access_key",
    "sts_token",
    "ram_role_arn",
    "oidc_role_arn",
    "ecs_ram_role",
    "profile",
    "chain",
    "fixed",
    "AK",
];
const CREDENTIAL_KEYS: &[&str] = &[
    "access_key_id",
    "access_key_secret_file",
    "security_token_file",
    "role_arn",
    "external_id",
    "role_session_name",
    "duration_seconds",
    "policy",
    "oidc_provider_arn",
    "oidc_token_file",
    "role_name",
    "profile",
    "access_key_secret",
    "security_token",
];
const ACCOUNT_KEYS: &[&str] = &["name", "endpoint", "regions", "credentials"];

fn credentials() -> impl Strategy<Value = Value> {
    let one = || {
        (
            select(CREDENTIAL_TYPES),
            prop::collection::vec((select(CREDENTIAL_KEYS), scalar()), 0..6),
        )
            .prop_map(|(t, kv)| {
                let mut m: Map<String, Value> =
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                m.insert("type".into(), json!(t));
                m
            })
    };
    (one(), prop::option::of(one())).prop_map(|(mut m, source)| {
        if let Some(s) = source {
            m.insert("source".into(), Value::Object(s));
        }
        Value::Object(m)
    })
}

fn account() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop_oneof![
            Just(json!("prod")),
            Just(json!("prod")),
            scalar()
        ]),
        prop::option::of(scalar()),
        prop::option::of(prop_oneof![
            prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
            scalar()
        ]),
        prop::option::of(credentials()),
        prop::option::of((select(ACCOUNT_KEYS), scalar())),
    )
        .prop_map(|(name, endpoint, regions, creds, extra)| {
            let mut m = Map::new();
            for (k, v) in [
                ("name", name),
                ("endpoint", endpoint),
                ("regions", regions),
                ("credentials", creds),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            if let Some((k, v)) = extra {
                m.insert(format!("{k}x"), v);
            }
            Value::Object(m)
        })
}

const ACCOUNTS_FILE: &str = "# two accounts
accounts:
  - name: prod
    endpoint: \"https://ecs.{region}.aliyuncs.com\"
    regions: [cn-hangzhou, cn-beijing]
    credentials:
      type: ram_role_arn
      role_arn: \"acs:ram::1234567890123456:role/reader\"
      duration_seconds: 900
      source: {type: access_key, access_key_id: LTAIx, access_key_secret_file: prod.secret}
  - name: ops
    credentials:
      type: sts_token
      access_key_id: STS.x
      access_key_secret_file: ops.secret
      security_token_file: ops.token
";

fn check_accounts_file(text: &str) -> Result<(), TestCaseError> {
    let file = Path::new("/fuzz/accounts.yml");
    if let Err(e) = accounts_file::parse(text, file) {
        clean_error(&e.to_string(), "/fuzz/accounts.yml")?;
    }
    Ok(())
}

// ---- the web config file ----

const WEB_KEYS: &[&str] = &[
    "tls_server_config",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
    "basic_auth_users",
    "http_server_config",
    "headers",
    "RequireAndVerifyClientCert",
    "TLS12",
    "TLS13",
];

/// A user's bcrypt hash, well formed or not.
fn password_hash() -> impl Strategy<Value = Value> {
    prop_oneof![
        "\\$2[abxy]\\$[0-9]{2}\\$[./A-Za-z0-9]{53}".prop_map(Value::String),
        Just(json!(format!("$2y$10${SECRET}"))),
        scalar(),
    ]
}

fn web_config() -> impl Strategy<Value = Value> {
    (
        prop::option::of(tree(WEB_KEYS)),
        prop::option::of(prop::collection::btree_map(
            "[a-z]{0,8}",
            password_hash(),
            0..3,
        )),
        prop::option::of(tree(WEB_KEYS)),
    )
        .prop_map(|(tls, users, http)| {
            let mut m = Map::new();
            if let Some(t) = tls {
                m.insert("tls_server_config".into(), t);
            }
            if let Some(u) = users {
                m.insert("basic_auth_users".into(), json!(u));
            }
            if let Some(h) = http {
                m.insert("http_server_config".into(), h);
            }
            Value::Object(m)
        })
}

/// The one way these tests load a web config: written to a file of its
/// own, then read by `WebConfigSource::load`, the loader's public entry.
fn load_web_config(text: &str) -> Result<(), TestCaseError> {
    let dir = TempDir::new("fuzz-web");
    let path = dir.write("web.yml", text);
    if let Err(e) = WebConfigSource::load(&path) {
        clean_error(&e.to_string(), &path)?;
    }
    Ok(())
}

const WEB_CONFIG: &str = "tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS12
basic_auth_users:
  prometheus: $2y$10$X0P3cYyGbXbEFaNOq3J1Xu4t9Rb7x5.W2xWmXz3bqQfYp0RkHqJ3m
http_server_config:
  headers:
    X-Frame-Options: deny
";

// ---- API answers and error bodies ----

const API_KEYS: &[&str] = &[
    "RequestId",
    "Code",
    "Message",
    "TotalCount",
    "NextToken",
    "PageSize",
    "InstanceCloudAssistantStatusSet",
    "InstanceCloudAssistantStatus",
    "InstanceId",
    "CloudAssistantStatus",
    "InstanceStatuses",
    "InstanceStatus",
    "Status",
    "InstancePluginStatusSet",
    "InstancePluginStatus",
    "PluginStatusSet",
    "PluginStatus",
    "PluginName",
    "Regions",
    "Region",
    "RegionId",
    "RegionEndpoint",
    "Instances",
    "Instance",
    "Tags",
    "Tag",
    "TagKey",
    "TagValue",
    "Connected",
    "ActivationList",
    "ActivationId",
    "TimeToLiveInHours",
];

/// Every answer parser of `src/api`: an error names the field (a key of
/// the answer, in CamelCase) or the row listed twice; never a panic.
fn check_answer(v: &Value) -> Result<(), TestCaseError> {
    let v = &serde_json::to_vec(v).expect("JSON")[..];
    let errors = [
        cloud_assistant::parse_page(v).err(),
        instance_status::parse_page(v).err(),
        plugins::parse_page(v).err(),
        regions::parse(v).err(),
        instances::parse_page(v).err(),
        managed_instances::parse_page(v).err(),
        activations::parse_page(v).err(),
    ];
    for e in errors.into_iter().flatten() {
        let e = e.to_string();
        let names_field = e
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w.starts_with(|c: char| c.is_ascii_uppercase()) && w.len() >= 2);
        prop_assert!(names_field || e.contains("listed twice"), "{}", e);
    }
    Ok(())
}

/// An API error body with `message` and `code`, as the API sends it.
fn error_body() -> impl Strategy<Value = (u16, Vec<u8>)> {
    let message = prop_oneof![
        ".{0,80}",
        ".{0,20}".prop_map(|p| format!(
            "{p} server string to sign is:POST&%2F&AccessKeyId%3D{SECRET}%26SecurityToken%3D{SECRET}"
        )),
        (".{0,20}", select(&["AccessKeyId", "SecurityToken", "Signature", "OIDCToken"][..]), select(&["=", "%3D", "%253D", "\":\"", ": "][..]), ".{0,20}")
            .prop_map(|(p, k, sep, s)| format!("{p} {k}{sep}{SECRET}&{s}")),
    ];
    let code = prop_oneof![
        Just("SignatureDoesNotMatch".to_string()),
        Just("Throttling.User".to_string()),
        ".{0,80}",
    ];
    (300u16..600, code, message, ".{0,40}").prop_map(|(status, code, message, id)| {
        let body = json!({"RequestId": id, "Code": code, "Message": message, "HostId": "ecs"});
        (status, body.to_string().into_bytes())
    })
}

proptest! {
    #![proptest_config(proptest_config(2048))]

    #[test]
    fn accounts_file_any_bytes(text in any_text()) {
        check_accounts_file(&text)?;
    }

    #[test]
    fn accounts_file_structured_garbage(accounts in prop::collection::vec(account(), 0..4), top in prop::option::of(tree(ACCOUNT_KEYS)), yaml in any::<bool>()) {
        let mut doc = Map::new();
        doc.insert("accounts".into(), Value::Array(accounts));
        if let Some(t) = top {
            doc.insert("extra".into(), t);
        }
        check_accounts_file(&yaml_or_json(&Value::Object(doc), yaml))?;
    }

    #[test]
    fn accounts_file_with_random_edits(text in edited(ACCOUNTS_FILE)) {
        check_accounts_file(&text)?;
    }

    #[test]
    fn api_answers_structured_garbage(v in tree(API_KEYS)) {
        check_answer(&v)?;
        for set in ["InstanceCloudAssistantStatusSet", "InstanceStatuses", "InstancePluginStatusSet", "Regions", "Instances", "ActivationList"] {
            check_answer(&json!({ set: v.clone() }))?;
        }
    }

    #[test]
    fn api_error_bodies_are_redacted_and_labelled((status, body) in error_body()) {
        let e = decode_response("A", "r", status, &body).expect_err("not 2xx");
        let shown = e.to_string();
        prop_assert!(shown.starts_with("A in r:"), "{}", shown);
        prop_assert!(!shown.contains(SECRET), "{}", shown);
        prop_assert!(one_line(&shown), "{:?}", shown);
        prop_assert!(looks_like_code(e.code()), "{}", e.code());
    }

    #[test]
    fn redaction_removes_every_planted_value(pre in ".{0,40}", key in select(&["AccessKeyId", "accesskeyid", "SecurityToken", "Signature", "OIDCToken", "AccessKeySecret"][..]), sep in select(&["=", "%3D", "%3d", "%253D", "\":\"", "\": \"", ": "][..]), end in select(&["&", "%26", "%2526", " ", "\"", ""][..]), post in ".{0,40}") {
        let message = format!("{pre}{key}{sep}{SECRET}x9{end}{post}");
        let r = redact(&message);
        let planted = format!("{SECRET}x9");
        prop_assert!(!r.contains(&planted) || pre.contains(&planted) || post.contains(&planted), "{} -> {}", message, r);
        prop_assert!(!r.chars().any(char::is_control));
        prop_assert!(r.chars().count() <= 401);
    }
}

proptest! {
    // Each case writes a file and reads it back: fewer cases.
    #![proptest_config(proptest_config(512))]

    #[test]
    fn web_config_structured_garbage(cfg in web_config(), yaml in any::<bool>()) {
        load_web_config(&yaml_or_json(&cfg, yaml))?;
    }

    #[test]
    fn web_config_with_random_edits(text in edited(WEB_CONFIG)) {
        load_web_config(&text)?;
    }

    #[test]
    fn web_config_any_bytes(text in any_text()) {
        load_web_config(&text)?;
    }
}
