//! Fuzzing the credentials file and the CLI config, as `tests/fuzz.rs`
//! fuzzes the other files a user hands the exporter: arbitrary bytes,
//! structured garbage and valid files with random edits. Nothing panics,
//! every error is one line naming the file, and no error quotes a secret.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

use super::{cli_profile, ini};

// The shared strategies, from the integration tests' helpers.
#[allow(dead_code)]
#[path = "../../tests/common/fuzzing.rs"]
mod fuzzing;
use fuzzing::{SECRET, any_text, clean_error, edited, proptest_config, scalar};

const INI_KEYS: &[&str] = &[
    "type",
    "enable",
    "access_key_id",
    "access_key_secret",
    "role_arn",
    "role_session_name",
    "role_session_expiration",
    "external_id",
    "policy",
    "oidc_provider_arn",
    "oidc_token_file_path",
    "role_name",
];
const INI_TYPES: &[&str] = &[
    "access_key",
    "ram_role_arn",
    "oidc_role_arn",
    "ecs_ram_role",
    "sts",
    "",
];

fn ini_line() -> impl Strategy<Value = String> {
    prop_oneof![
        select(&["default", "role", "x", ""][..]).prop_map(|s| format!("[{s}]")),
        "\\[[^\\]\n]{0,8}".prop_map(|s| s),
        (select(INI_KEYS), "[ -~]{0,30}").prop_map(|(k, v)| format!("{k} = {v}")),
        select(INI_TYPES).prop_map(|t| format!("type = {t}")),
        Just(format!("access_key_secret = {SECRET}")),
        Just(format!("access_key_secret = \"{SECRET}\" # quoted")),
        "[#;][^\n]{0,20}",
        "[^\n]{0,30}",
        Just(String::new()),
    ]
}

fn check_credentials_file(text: &str, profile: &str) -> Result<(), TestCaseError> {
    let file = Path::new("/fuzz/credentials.ini");
    if let Err(e) = ini::parse_file(text, file, profile) {
        clean_error(&e.to_string(), "/fuzz/credentials.ini")?;
    }
    Ok(())
}

const CLI_KEYS: &[&str] = &[
    "name",
    "mode",
    "access_key_id",
    "access_key_secret",
    "sts_token",
    "ram_role_arn",
    "ram_session_name",
    "expired_seconds",
    "external_id",
    "ram_role_name",
    "oidc_provider_arn",
    "oidc_token_file",
    "source_profile",
];
const CLI_MODES: &[&str] = &[
    "AK",
    "StsToken",
    "RamRoleArn",
    "EcsRamRole",
    "OIDC",
    "ChainableRamRoleArn",
    "CloudSSO",
    "",
];
const PROFILE_NAMES: &[&str] = &["default", "a", "b"];

fn cli_profile() -> impl Strategy<Value = Value> {
    (
        select(PROFILE_NAMES),
        select(CLI_MODES),
        prop::collection::vec((select(CLI_KEYS), scalar()), 0..8),
        any::<bool>(),
    )
        .prop_map(|(name, mode, kv, plant)| {
            let mut m: Map<String, Value> =
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            m.insert("name".into(), json!(name));
            m.insert("mode".into(), json!(mode));
            if plant {
                m.insert("access_key_secret".into(), json!(SECRET));
                m.insert("sts_token".into(), json!(SECRET));
            }
            Value::Object(m)
        })
}

fn cli_config() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop_oneof![
            select(PROFILE_NAMES).prop_map(|n| json!(n)),
            scalar()
        ]),
        prop_oneof![
            prop::collection::vec(cli_profile(), 0..4).prop_map(Value::Array),
            scalar()
        ],
    )
        .prop_map(|(current, profiles)| {
            let mut m = Map::new();
            if let Some(c) = current {
                m.insert("current".into(), c);
            }
            m.insert("profiles".into(), profiles);
            Value::Object(m)
        })
}

fn check_cli_config(text: &str, profile: Option<&str>) -> Result<(), TestCaseError> {
    let file = Path::new("/fuzz/config.json");
    if let Err(e) = cli_profile::parse_file(text, file, profile) {
        clean_error(&e.to_string(), "/fuzz/config.json")?;
    }
    Ok(())
}

const CLI_CONFIG: &str = r#"{"current": "a", "profiles": [
  {"name": "a", "mode": "ChainableRamRoleArn", "source_profile": "b", "ram_role_arn": "acs:ram::1:role/x", "expired_seconds": 900},
  {"name": "b", "mode": "StsToken", "access_key_id": "STS.x", "access_key_secret": "S3CR3Tplanted", "sts_token": "S3CR3Tplanted"}]}"#;

proptest! {
    #![proptest_config(proptest_config(2048))]

    #[test]
    fn credentials_file_lines(lines in prop::collection::vec(ini_line(), 0..16), crlf in any::<bool>(), profile in select(&["default", "role", "x"][..])) {
        let text = lines.join(if crlf { "\r\n" } else { "\n" });
        check_credentials_file(&text, profile)?;
    }

    #[test]
    fn credentials_file_any_bytes(text in any_text()) {
        check_credentials_file(&text, "default")?;
    }

    #[test]
    fn cli_config_structured_garbage(cfg in cli_config(), profile in prop::option::of(select(PROFILE_NAMES))) {
        check_cli_config(&cfg.to_string(), profile)?;
    }

    #[test]
    fn cli_config_with_random_edits(text in edited(CLI_CONFIG), profile in prop::option::of(select(PROFILE_NAMES))) {
        check_cli_config(&text, profile)?;
    }

    #[test]
    fn cli_config_any_bytes(text in any_text()) {
        check_cli_config(&text, None)?;
    }
}
