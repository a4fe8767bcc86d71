//! Property-test settings and the inputs the fuzz tests share. This file
//! uses nothing of the crate, so the crate's own unit tests compile it too
//! (`src/credentials/fuzz.rs`) for the parsers that are not public.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

/// Property-test settings: `cases` inputs (PROPTEST_CASES overrides), a
/// fixed seed unless PROPTEST_RNG_SEED names another, so every run (CI's
/// too) tries the same inputs and a failure reproduces; no failure files
/// written into the tree.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    /// Any fixed number; change it to explore other inputs.
    const SEED: u64 = 0x5eed_c10d_a551_57a7;
    let base = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            base.cases
        } else {
            cases
        },
        rng_seed: match base.rng_seed {
            RngSeed::Random => RngSeed::Fixed(SEED),
            fixed => fixed,
        },
        failure_persistence: None,
        ..base
    }
}

/// Planted in secret fields; no error may repeat it.
pub const SECRET: &str = "S3CR3Tplanted";

/// Any bytes, read as a file is (UTF-8, lossy).
pub fn any_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..600)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// What a user might write as a value: odd strings, numbers, booleans, null,
/// and a few values that pass the checks, so deeper ones run too.
pub fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        ".{0,30}".prop_map(Value::String),
        "[a-z0-9:/._{}-]{0,40}".prop_map(Value::String),
        Just(json!("")),
        Just(json!("x.secret")),
        Just(json!("acs:ram::1234567890123456:role/reader")),
        Just(json!("acs:ram::1234567890123456:oidc-provider/ack")),
        Just(json!("https://ecs.{region}.aliyuncs.com")),
        Just(json!("http://127.0.0.1:1")),
        Just(json!("cn-hangzhou")),
        Just(json!("900")),
        Just(json!("{\"Statement\": []}")),
    ]
    .boxed()
}

/// `text` with a few random edits: a character inserted, one removed, a
/// line repeated; near-valid files reach the deepest checks.
pub fn edited(text: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<Index>(), any::<char>(), 0u8..3), 0..6).prop_map(move |edits| {
        let mut chars: Vec<char> = text.chars().collect();
        for (at, c, how) in edits {
            let i = at.index(chars.len() + 1);
            match how {
                0 => chars.insert(i, c),
                1 if i < chars.len() => {
                    chars.remove(i);
                }
                _ => {
                    let lines: Vec<String> = chars
                        .iter()
                        .collect::<String>()
                        .lines()
                        .map(str::to_string)
                        .collect();
                    let k = at.index(lines.len().max(1));
                    let mut out = lines.clone();
                    if let Some(l) = lines.get(k) {
                        out.insert(k, l.clone());
                    }
                    chars = out.join("\n").chars().collect();
                }
            }
        }
        chars.into_iter().collect()
    })
}

/// No error message may span lines or carry control characters.
pub fn one_line(e: &str) -> bool {
    !e.is_empty() && !e.chars().any(char::is_control)
}

/// A file's error as the user sees it: one line, naming `file`, quoting no
/// planted secret.
pub fn clean_error(e: &str, file: &str) -> Result<(), TestCaseError> {
    prop_assert!(e.contains(file), "{}", e);
    prop_assert!(one_line(e), "{:?}", e);
    prop_assert!(!e.contains(SECRET), "{}", e);
    Ok(())
}
