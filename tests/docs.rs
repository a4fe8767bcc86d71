//! The README and docs/ stay true to the binary: every command's flags
//! parse, every config block loads with the exporter's own parsers, every
//! relative link resolves, the README's flags table is exactly `--help`, and
//! docs/metrics.md lists exactly the families the exporter serves.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::simulator::{RegionFault, Simulator};
use common::{EXPORTER_BIN, TempDir, github_anchor, parse_flags, repo_text};
use yaml_serde::Value;

const README_MAX_LINES: usize = 250;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md, as (path from the repository root, text).
fn docs() -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    names.sort();
    names.insert(0, "README.md".into());
    names
        .into_iter()
        .map(|n| (n.clone(), repo_text(&n)))
        .collect()
}

// ---------------------------------------------------------------------------
// The parsers the docs are checked with. Each is one call into the crate, so
// a rewrite of that parser changes one line here.

/// An accounts file (`--config.file`), as the exporter parses it.
fn parse_accounts_file(text: &str, path: &Path) -> Result<usize, String> {
    cloud_assistant_exporter::config::accounts_file::parse(text, path)
        .map(|f| f.accounts.len())
        .map_err(|e| e.to_string())
}

/// A web config file (`--web.config.file`) at `path`, as the exporter loads
/// it at start.
fn load_web_config(path: &Path) -> Result<(), String> {
    cloud_assistant_exporter::server::web_config::WebConfigSource::load(path)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Every environment variable the credential chain reads.
fn chain_env_vars() -> &'static [&'static str] {
    cloud_assistant_exporter::credentials::ENV_VARS
}

// ---------------------------------------------------------------------------
// Markdown, as much of it as the docs use.

struct Block {
    /// `README.md:12`: where the opening fence is.
    at: String,
    info: String,
    body: String,
}

/// The fenced code blocks of `text`, with the fence's indentation taken off
/// every line (blocks inside list items are indented).
fn blocks(file: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((n + 1, indent, info.trim().to_string(), String::new()));
                }
            }
            Some((start, fence_indent, info, mut body)) => {
                if trimmed.starts_with("```") {
                    out.push(Block {
                        at: format!("{file}:{start}"),
                        info,
                        body,
                    });
                } else {
                    let cut = indent.min(fence_indent);
                    body.push_str(&line[cut..]);
                    body.push('\n');
                    open = Some((start, fence_indent, info, body));
                }
            }
        }
    }
    assert!(open.is_none(), "{file}: a code block is not closed");
    out
}

/// The text outside code blocks, line by line (blocks become empty lines,
/// so line numbers stay).
fn prose_lines(text: &str) -> Vec<String> {
    let mut inside = false;
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                inside = !inside;
                return String::new();
            }
            if inside {
                String::new()
            } else {
                line.to_string()
            }
        })
        .collect()
}

/// The anchors of the headings of a Markdown file (GitHub's rule, with its
/// `-1`, `-2` suffixes for repeated headings).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose_lines(text) {
        let hashes = line.bytes().take_while(|b| *b == b'#').count();
        if !(1..=6).contains(&hashes) || line.as_bytes().get(hashes) != Some(&b' ') {
            continue;
        }
        let base = github_anchor(&line[hashes..]);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// `[text](target)` links outside code blocks and inline code, with their
/// line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text).iter().enumerate() {
        // Inline code may hold brackets and parentheses that are no links.
        let plain: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((n + 1, after[..end].trim().to_string()));
            rest = &after[end..];
        }
    }
    out
}

/// The rows of the first table after the heading `heading`, as cells.
fn table_after(text: &str, heading: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut in_section = false;
    for line in text.lines() {
        if line.starts_with('#') {
            if in_section && !rows.is_empty() {
                break;
            }
            in_section = line.trim_start_matches('#').trim() == heading;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(inner) = line.trim().strip_prefix('|') {
            let cells: Vec<String> = inner
                .trim_end_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            if !cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
            {
                rows.push(cells);
            }
        } else if !rows.is_empty() {
            break;
        }
    }
    // The first row is the header.
    rows.into_iter().skip(1).collect()
}

/// The text between backticks, if the cell is exactly one code span.
fn code(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?
        .strip_suffix('`')
        .filter(|s| !s.contains('`'))
}

// ---------------------------------------------------------------------------
// Shell, as much of it as the docs use.

/// The commands of a `sh` block, as words: continuation lines joined,
/// comments dropped, quotes removed, split at `|`, `;`, `&&` and `||`.
fn commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let mut words: Vec<String> = Vec::new();
        let mut word: Option<String> = None;
        let mut chars = line.chars().peekable();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.get_or_insert_with(String::new).push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    word.get_or_insert_with(String::new);
                }
                (None, '#') if word.is_none() => break,
                (None, ' ' | '\t') => words.extend(word.take()),
                (None, '|' | ';' | '&') => {
                    words.extend(word.take());
                    if chars.peek() == Some(&c) {
                        chars.next();
                    }
                    out.push(std::mem::take(&mut words));
                }
                (None, c) => word.get_or_insert_with(String::new).push(c),
            }
        }
        assert!(quote.is_none(), "unclosed quote in {line:?}");
        words.extend(word);
        out.push(words);
    }
    out.retain(|c| !c.is_empty());
    out
}

/// The exporter's arguments if `cmd` runs the exporter: the binary by any
/// path, or `cargo run … -- <args>`.
fn exporter_args(cmd: &[String]) -> Option<Vec<String>> {
    let words: Vec<&String> = cmd
        .iter()
        .skip_while(|w| {
            w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
        })
        .collect();
    let (program, rest) = words.split_first()?;
    if Path::new(program.as_str()).file_name()? == "cloud-assistant-exporter" {
        return Some(rest.iter().map(|s| s.to_string()).collect());
    }
    if program.as_str() == "cargo" && rest.first().map(|s| s.as_str()) == Some("run") {
        let dashes = rest.iter().position(|w| w.as_str() == "--");
        return Some(dashes.map_or_else(Vec::new, |i| {
            rest[i + 1..].iter().map(|s| s.to_string()).collect()
        }));
    }
    None
}

/// `ALIBABA_CLOUD_*` names in `text`.
fn env_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("ALIBABA_CLOUD_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        out.insert(name);
    }
    out
}

// ---------------------------------------------------------------------------
// The tests.

const KINDS: &[&str] = &["sh", "yaml", "json", "ini", "promql", "text"];

#[test]
fn every_block_says_what_it_is() {
    let mut n = 0;
    for (file, text) in docs() {
        for b in blocks(&file, &text) {
            n += 1;
            assert!(
                KINDS.contains(&b.info.as_str()),
                "{}: code block with info string {:?}; use one of {KINDS:?} (text for output and diagrams)",
                b.at,
                b.info
            );
        }
    }
    assert!(n >= 20, "only {n} code blocks found");
}

#[test]
fn commands_use_real_flags() {
    let mut invocations = 0;
    for (file, text) in docs() {
        for b in blocks(&file, &text).iter().filter(|b| b.info == "sh") {
            for cmd in commands(&b.body) {
                if let Some(args) = exporter_args(&cmd) {
                    parse_flags(&b.at, &args);
                    invocations += 1;
                }
            }
        }
    }
    assert!(
        invocations >= 5,
        "only {invocations} exporter commands found"
    );
}

#[test]
fn environment_variables_are_the_chains() {
    let known: BTreeSet<&str> = chain_env_vars().iter().copied().collect();
    let mut used = BTreeSet::new();
    for (file, text) in docs() {
        for name in env_names(&text) {
            assert!(
                known.contains(name.as_str()),
                "{file} names {name}, which the credential chain does not read"
            );
            used.insert(name);
        }
    }
    // The environment source, documented at least.
    for must in [
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    ] {
        assert!(used.contains(must), "no doc names {must}");
    }
}

/// A PEM certificate and key, for web config blocks that name TLS files.
fn self_signed() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

const WEB_CONFIG_KEYS: &[&str] = &[
    "tls_server_config",
    "basic_auth_users",
    "http_server_config",
];
const PROMETHEUS_KEYS: &[&str] = &[
    "global",
    "rule_files",
    "scrape_configs",
    "scrape_config_files",
    "alerting",
    "remote_write",
    "remote_read",
    "storage",
];
const ALERTMANAGER_KEYS: &[&str] = &[
    "global",
    "route",
    "receivers",
    "inhibit_rules",
    "templates",
    "time_intervals",
];

/// Checks one YAML block by what it is; returns what it was.
fn check_yaml(at: &str, text: &str) -> &'static str {
    let docs: Vec<Value> = yaml_serde::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{at}: {e}")))
        .collect();
    assert!(!docs.is_empty(), "{at}: empty");
    let top = keys(&docs[0]);
    let subset =
        |allowed: &[&str]| !top.is_empty() && top.iter().all(|k| allowed.contains(&k.as_str()));
    assert!(
        !top.contains("groups"),
        "{at}: a copy of rule groups; link to dashboards/alerts.yml instead"
    );
    if docs
        .iter()
        .all(|d| d["apiVersion"].is_string() && d["kind"].is_string())
    {
        for d in &docs {
            assert!(d["metadata"]["name"].is_string(), "{at}: metadata.name");
        }
        return "kubernetes";
    }
    assert_eq!(
        docs.len(),
        1,
        "{at}: several documents that are not manifests"
    );
    if top.contains("accounts") {
        let n = parse_accounts_file(
            text,
            Path::new("/etc/cloud-assistant-exporter/accounts.yml"),
        )
        .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(n > 0, "{at}: no accounts");
        return "accounts";
    }
    if subset(WEB_CONFIG_KEYS) {
        let dir = TempDir::new("docs-web-config");
        let tls = &docs[0]["tls_server_config"];
        let (cert, key) = self_signed();
        for (field, pem) in [
            ("cert_file", &cert),
            ("key_file", &key),
            ("client_ca_file", &cert),
        ] {
            if let Some(p) = tls[field].as_str() {
                assert!(
                    Path::new(p).is_relative(),
                    "{at}: {field} {p}: use a relative path"
                );
                dir.write(p, pem);
            }
        }
        let path = dir.write("web.yml", text);
        load_web_config(Path::new(&path)).unwrap_or_else(|e| panic!("{at}: {e}"));
        return "web config";
    }
    if subset(PROMETHEUS_KEYS) && (top.contains("scrape_configs") || top.contains("rule_files")) {
        for job in docs[0]["scrape_configs"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let name = job["job_name"]
                .as_str()
                .unwrap_or_else(|| panic!("{at}: job_name"));
            // CloudAssistantExporterDown matches jobs by this name.
            assert!(name.contains("cloud-assistant"), "{at}: job {name}");
            let targets = job["static_configs"][0]["targets"].as_sequence();
            assert!(
                targets.is_some_and(|t| !t.is_empty()),
                "{at}: {name}: no targets"
            );
        }
        return "prometheus";
    }
    if subset(ALERTMANAGER_KEYS) {
        return "alertmanager";
    }
    panic!("{at}: a YAML block of unknown kind (top-level keys {top:?})");
}

#[test]
fn yaml_blocks_load() {
    let mut kinds = BTreeSet::new();
    for (file, text) in docs() {
        for b in blocks(&file, &text).iter().filter(|b| b.info == "yaml") {
            kinds.insert(check_yaml(&b.at, &b.body));
        }
    }
    for want in ["accounts", "web config", "prometheus", "kubernetes"] {
        assert!(
            kinds.contains(want),
            "no {want} block checked; found {kinds:?}"
        );
    }
}

/// The actions of every statement of a RAM policy.
fn actions(policy: &serde_json::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for st in policy["Statement"].as_array().into_iter().flatten() {
        match &st["Action"] {
            serde_json::Value::String(a) => {
                out.insert(a.clone());
            }
            serde_json::Value::Array(list) => {
                out.extend(list.iter().filter_map(|a| a.as_str()).map(String::from));
            }
            other => panic!("Action {other}"),
        }
    }
    out
}

#[test]
fn json_blocks_parse_and_the_policy_is_deploys() {
    let deploy_policy: serde_json::Value =
        serde_json::from_str(&repo_text("deploy/ram-policy.json")).expect("ram-policy.json");
    let want = actions(&deploy_policy);
    assert!(want.iter().all(|a| a.starts_with("ecs:")) && want.len() >= 4);
    let mut policies = 0;
    for (file, text) in docs() {
        for b in blocks(&file, &text).iter().filter(|b| b.info == "json") {
            let v: serde_json::Value =
                serde_json::from_str(&b.body).unwrap_or_else(|e| panic!("{}: {e}", b.at));
            let got = actions(&v);
            if got.iter().any(|a| a.starts_with("ecs:")) {
                assert_eq!(got, want, "{}: differs from deploy/ram-policy.json", b.at);
                policies += 1;
            }
            for p in v["profiles"].as_array().into_iter().flatten() {
                assert!(
                    p["name"].is_string() && p["mode"].is_string(),
                    "{}: {p}",
                    b.at
                );
            }
        }
    }
    assert!(policies >= 1, "no doc shows the RAM policy");
}

#[test]
fn ini_blocks_are_sections_of_typed_keys() {
    for (file, text) in docs() {
        for b in blocks(&file, &text).iter().filter(|b| b.info == "ini") {
            let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            let mut current: Option<String> = None;
            for line in b.body.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                    continue;
                }
                if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    current = Some(name.to_string());
                    sections.entry(name.to_string()).or_default();
                    continue;
                }
                let (k, v) = line
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}: {line:?} is not key = value", b.at));
                let section = current
                    .clone()
                    .unwrap_or_else(|| panic!("{}: key before a section", b.at));
                sections
                    .entry(section)
                    .or_default()
                    .insert(k.trim().into(), v.trim().into());
            }
            assert!(!sections.is_empty(), "{}: no section", b.at);
            for (name, entries) in &sections {
                assert!(
                    entries.contains_key("type"),
                    "{}: [{name}] has no type",
                    b.at
                );
            }
        }
    }
}

/// (name, type, labels) of every family in the tables of docs/metrics.md.
fn documented_families() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let text = repo_text("docs/metrics.md");
    let mut out = BTreeMap::new();
    for line in prose_lines(&text) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(metric), Some(kind)) = (cells.get(1).and_then(|c| code(c)), cells.get(2)) else {
            continue;
        };
        if !metric.starts_with("aliyun_cloud_assistant_") {
            continue;
        }
        let (name, labels) = match metric.split_once('{') {
            None => (metric, BTreeSet::new()),
            Some((n, l)) => (
                n,
                l.trim_end_matches('}')
                    .split(',')
                    .map(String::from)
                    .collect(),
            ),
        };
        let old = out.insert(name.to_string(), (kind.to_string(), labels));
        assert!(old.is_none(), "docs/metrics.md lists {name} twice");
    }
    assert!(
        out.len() >= 20,
        "only {} families in docs/metrics.md",
        out.len()
    );
    out
}

#[test]
fn metric_names_in_the_docs_exist() {
    let families = documented_families();
    for (file, text) in docs() {
        let mut rest = text.as_str();
        while let Some(i) = rest.find("aliyun_cloud_assistant_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            if name.ends_with('_') {
                // A prefix, not a name.
                continue;
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| families.contains_key(*f)))
                .unwrap_or(&name);
            assert!(
                families.contains_key(family),
                "{file} names {name}, which docs/metrics.md does not list"
            );
        }
        // The README's brief names families without the prefix.
        if file == "README.md" {
            for row in table_after(&text, "Metrics in brief") {
                for short in row[0].split(", ") {
                    let short = code(short).unwrap_or_else(|| panic!("README: {short}"));
                    let name = format!("aliyun_cloud_assistant_{short}");
                    assert!(families.contains_key(&name), "README names {name}");
                }
            }
        }
    }
}

/// The families (name → type) and label names of a page.
fn served(page: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (String, BTreeSet<String>)> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), (t.to_string(), BTreeSet::new())))
        .collect();
    for s in common::parse_metrics(page) {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| s.name.strip_suffix(suffix).filter(|f| out.contains_key(*f)))
            .unwrap_or(&s.name)
            .to_string();
        let labels = &mut out.get_mut(&family).expect("a sample of a typed family").1;
        // `account` is described once for all families; `le` is a histogram's.
        labels.extend(s.labels.into_keys().filter(|k| k != "account" && k != "le"));
    }
    out
}

#[tokio::test]
async fn metrics_doc_lists_what_the_exporter_serves() {
    let documented = documented_families();
    let mut fleet = common::fleet(&[("cn-hangzhou", 30), ("cn-shanghai", 20), ("cn-beijing", 5)]);
    // Hybrid servers and activation codes in one region.
    fleet.regions[0] = fleet.regions[0].clone().hybrid(4, 4).invocations(30);
    let sim = Simulator::start(fleet).await.expect("simulator");
    // One region answers 503 to everything: retried, so the retry counter
    // has a series too, while the others serve every other family.
    sim.update_faults(|f| {
        f.regions.insert(
            "cn-beijing".into(),
            RegionFault::Error {
                status: 503,
                code: "ServiceUnavailable".into(),
            },
        );
    });
    // One account from a config file (its credentials from the chain, which
    // start_exporter fills with the simulator's key), so that the families
    // only a config file brings are served too.
    let dir = TempDir::new("docs-metrics");
    let config = dir.write("accounts.yml", "accounts:\n  - name: docs\n");
    let running = common::start_exporter(
        &sim,
        &[
            "--config.file",
            &config,
            "--collect.plugins",
            "ecs-tool-monitor",
            "--collect.interval",
            "1h",
            "--collect.tags",
            "env",
        ],
        Clock::System,
    )
    .await;
    common::wait_ready(running.addr).await;
    // The instance-info and invocation walks run beside the region's walks:
    // their series come after.
    let mut page = common::scrape(running.addr).await;
    for _ in 0..200 {
        if page.contains("aliyun_cloud_assistant_instance_info{")
            && page.contains("aliyun_cloud_assistant_activation_instances{")
            && page.contains("aliyun_cloud_assistant_scheduled_invocation_info{")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        page = common::scrape(running.addr).await;
    }
    running.shutdown().await;

    let mut served = served(&page);
    served.retain(|name, _| !name.starts_with("process_"));
    assert!(served.len() >= 20, "{page}");
    let served_names: BTreeSet<&String> = served.keys().collect();
    let documented_names: BTreeSet<&String> = documented.keys().collect();
    assert_eq!(
        served_names, documented_names,
        "families served (left) and listed in docs/metrics.md (right)"
    );
    for (name, (kind, labels)) in &served {
        let (doc_kind, doc_labels) = &documented[name];
        assert_eq!(kind, doc_kind, "{name}: type");
        // `tag_<key>...` stands for the labels of `--collect.tags` (here: env).
        let want: BTreeSet<String> = doc_labels
            .iter()
            .map(|l| match l.as_str() {
                "tag_<key>..." => "tag_env".to_string(),
                l => l.to_string(),
            })
            .collect();
        assert_eq!(labels, &want, "{name}: labels");
    }
}

#[test]
fn readme_flags_table_is_help() {
    let out = std::process::Command::new(EXPORTER_BIN)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    // Flag → default, from the help text: a flag line, then its description
    // up to the next flag line.
    let mut flags: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in help.lines() {
        let t = line.trim_start();
        let t = t
            .strip_prefix("-h, ")
            .or(t.strip_prefix("-V, "))
            .unwrap_or(t);
        if let Some(flag) = t.strip_prefix("--") {
            let name = flag.split([' ', '=']).next().expect("name");
            current = Some(format!("--{name}"));
            flags.insert(format!("--{name}"), None);
        } else if let (Some(f), Some(d)) = (&current, t.strip_prefix("[default: ")) {
            flags.insert(f.clone(), Some(d.trim_end_matches(']').to_string()));
        }
    }
    flags.remove("--help");
    flags.remove("--version");
    assert!(flags.len() >= 20, "{help}");

    let readme = repo_text("README.md");
    let mut table: BTreeMap<String, Option<String>> = BTreeMap::new();
    for row in table_after(&readme, "Flags") {
        let flag = code(&row[0]).unwrap_or_else(|| panic!("README flags table: {:?}", row[0]));
        // A code span is a default value; a word (unset, all, off) is none.
        let default = code(&row[1]).map(String::from);
        assert!(
            table.insert(flag.to_string(), default).is_none(),
            "README lists {flag} twice"
        );
    }
    let listed: BTreeSet<&String> = table.keys().collect();
    let has: BTreeSet<&String> = flags.keys().collect();
    assert_eq!(listed, has, "README flags table (left) and --help (right)");
    for (flag, default) in &flags {
        assert_eq!(&table[flag], default, "README: default of {flag}");
    }
}

#[test]
fn readme_is_short_and_runs_what_ci_runs() {
    let readme = repo_text("README.md");
    let lines = readme.lines().count();
    assert!(lines <= README_MAX_LINES, "README.md has {lines} lines");
    // The two commands come first, in the first code block.
    let first = blocks("README.md", &readme)
        .into_iter()
        .next()
        .expect("a block");
    let cmds = commands(&first.body);
    assert_eq!(cmds[0], ["cargo", "run", "--release", "--", "--demo"]);
    // CI's last command is the README's test command, word for word.
    let ci = repo_text(".ci/run");
    let ci_test = ci
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a command in .ci/run");
    assert!(
        cmds.iter().any(|c| c.join(" ") == ci_test),
        "the README's first block does not run {ci_test:?}, the test command of .ci/run"
    );
}

#[test]
fn relative_links_resolve() {
    let mut files: Vec<(String, String)> = docs();
    for extra in ["dashboards/README.md", "deploy/README.md"] {
        files.push((extra.to_string(), repo_text(extra)));
    }
    let mut checked = 0;
    for (file, text) in &files {
        let dir = Path::new(file).parent().expect("dir");
        for (line, target) in links(text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let at = format!("{file}:{line}: {target}");
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved: PathBuf = if path.is_empty() {
                PathBuf::from(file)
            } else {
                normalize(&dir.join(path)).unwrap_or_else(|| panic!("{at}: outside the repository"))
            };
            let full = repo().join(&resolved);
            assert!(full.exists(), "{at}: no such file");
            if !anchor.is_empty() {
                assert!(
                    resolved.extension().is_some_and(|e| e == "md"),
                    "{at}: an anchor into a file that is not Markdown"
                );
                let target_text = std::fs::read_to_string(&full).expect("read");
                assert!(
                    anchors(&target_text).contains(anchor),
                    "{at}: no heading with that anchor in {}",
                    resolved.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} links checked");
}

/// `a/../b` → `b`; `None` when it leaves the repository.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

#[test]
fn no_doc_copies_the_alert_rules() {
    let rules = repo_text("dashboards/alerts.yml");
    let rule_lines: Vec<&str> = rules
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let windows: BTreeSet<Vec<&str>> = rule_lines.windows(3).map(|w| w.to_vec()).collect();
    assert!(!windows.is_empty());
    for (file, text) in docs() {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        for w in lines.windows(3) {
            assert!(
                !windows.contains(w),
                "{file} copies dashboards/alerts.yml ({w:?}); link to it instead"
            );
        }
        assert!(
            !text.contains("- alert:"),
            "{file} shows alert rules; link to dashboards/alerts.yml instead"
        );
    }
}

// The helpers above are themselves worth a check: a parser that finds
// nothing would make every test here pass.

#[test]
fn the_shell_reader_finds_exporter_commands() {
    let script = "export ALIBABA_CLOUD_PROFILE=x  # a comment\n\
                  ALIBABA_CLOUD_PROFILE=reader ./cloud-assistant-exporter --demo \\\n  --log.level 'debug' # why\n\
                  cargo run --release -- --collect.interval 2m && curl -s http://x/metrics | grep up\n";
    let cmds = commands(script);
    assert_eq!(cmds.len(), 5, "{cmds:?}");
    let args: Vec<Vec<String>> = cmds.iter().filter_map(|c| exporter_args(c)).collect();
    assert_eq!(
        args,
        [
            vec!["--demo", "--log.level", "debug"],
            vec!["--collect.interval", "2m"]
        ]
    );
    assert_eq!(env_names(script).len(), 1);
    let bad = std::panic::catch_unwind(|| parse_flags("test", &["--no-such-flag".to_string()]));
    assert!(bad.is_err(), "an unknown flag must fail");
}

#[test]
fn the_markdown_reader_finds_blocks_links_and_anchors() {
    let md = "# Title\n\n## A: b `c`\n\n1. step\n\n   ```sh\n   echo [x](y)\n   ```\n\n\
              See [here](#a-b-c) and `[no](link)` and [there](../x.md#title).\n\n## Title\n";
    let b = blocks("t.md", md);
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0].info.as_str(), b[0].body.as_str()),
        ("sh", "echo [x](y)\n")
    );
    assert_eq!(
        links(md),
        [
            (11, "#a-b-c".to_string()),
            (11, "../x.md#title".to_string())
        ]
    );
    let a = anchors(md);
    assert!(
        a.contains("a-b-c") && a.contains("title") && a.contains("title-1"),
        "{a:?}"
    );
}
