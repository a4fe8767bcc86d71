//! The packaging in deploy/ stays in step with the binary: the manifests
//! parse and name only flags that exist, the systemd unit passes
//! `systemd-analyze verify`, and the RAM policy grants exactly what the
//! exporter calls.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{API_ACTIONS, EXPORTER_BIN as BIN, OPTIONAL_API_ACTIONS, parse_flags};
use serde::Deserialize;
use yaml_serde::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every YAML document under deploy/kubernetes/, with its file name.
fn manifests() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(deploy().join("kubernetes"))
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    for path in files {
        let text = read(&path);
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            if !v.is_null() {
                docs.push((name.clone(), v));
            }
        }
    }
    docs
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .map(|x| x.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kubernetes_manifests_parse_and_use_real_flags() {
    let docs = manifests();
    let kinds: Vec<&str> = docs.iter().map(|(_, d)| kind(d)).collect();
    for want in [
        "Deployment",
        "StatefulSet",
        "Service",
        "ServiceMonitor",
        "ServiceAccount",
        "PrometheusRule",
    ] {
        assert!(kinds.contains(&want), "no {want} in deploy/kubernetes");
    }
    let mut workloads = 0;
    for (file, doc) in &docs {
        for field in ["apiVersion", "kind"] {
            assert!(doc[field].is_string(), "{file}: {field}");
        }
        assert!(doc["metadata"]["name"].is_string(), "{file}: metadata.name");
        match kind(doc) {
            "ServiceAccount" => {
                let role =
                    &doc["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"];
                assert!(role.is_string(), "{file}: RRSA role annotation");
            }
            "Deployment" | "StatefulSet" => {
                workloads += 1;
                let pod = &doc["spec"]["template"]["spec"];
                let psc = &pod["securityContext"];
                assert_eq!(psc["runAsNonRoot"].as_bool(), Some(true), "{file}");
                assert_eq!(
                    psc["seccompProfile"]["type"].as_str(),
                    Some("RuntimeDefault"),
                    "{file}"
                );
                assert!(pod["serviceAccountName"].is_string(), "{file}");
                let containers = pod["containers"].as_sequence().expect("containers");
                assert!(!containers.is_empty(), "{file}");
                for c in containers {
                    let args = strings(&c["args"]);
                    let flags = parse_flags(file, &args);
                    let sc = &c["securityContext"];
                    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{file}");
                    assert_eq!(
                        sc["allowPrivilegeEscalation"].as_bool(),
                        Some(false),
                        "{file}"
                    );
                    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{file}");
                    assert_eq!(
                        c["readinessProbe"]["httpGet"]["path"].as_str(),
                        Some("/ready"),
                        "{file}"
                    );
                    assert_eq!(
                        c["livenessProbe"]["httpGet"]["path"].as_str(),
                        Some("/healthz"),
                        "{file}"
                    );
                    assert_eq!(
                        c["ports"][0]["containerPort"].as_u64(),
                        Some(flags.listen_address.port() as u64),
                        "{file}"
                    );
                    if kind(doc) == "StatefulSet" {
                        assert!(flags.shard_index_from_hostname, "{file}");
                        assert_eq!(
                            Some(flags.shard_count),
                            doc["spec"]["replicas"].as_u64(),
                            "{file}: --shard.count must equal replicas"
                        );
                        // The pod name ends in its ordinal, the shard index.
                        let name = doc["metadata"]["name"].as_str().expect("name");
                        let host = format!("{name}-{}", flags.shard_count - 1);
                        let env = |k: &str| (k == "HOSTNAME").then(|| host.clone());
                        assert_eq!(flags.resolve_shard_index(&env), Ok(flags.shard_count - 1));
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!(workloads, 2);
}

/// The last `ExecStart=` of a unit or drop-in, split into arguments.
fn exec_start(text: &str) -> Vec<String> {
    let line = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ExecStart="))
        .rfind(|l| !l.is_empty())
        .expect("an ExecStart line");
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn systemd_unit_uses_real_flags_and_verifies() {
    let dir = deploy().join("systemd");
    let unit = read(&dir.join("cloud-assistant-exporter.service"));
    let dropin = read(&dir.join("web-config.conf"));
    for (what, text) in [("unit", &unit), ("drop-in", &dropin)] {
        let argv = exec_start(text);
        assert_eq!(argv[0], "/usr/local/bin/cloud-assistant-exporter", "{what}");
        parse_flags(what, &argv[1..]);
    }
    for want in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "EnvironmentFile=/etc/cloud-assistant-exporter/env",
        "Restart=on-failure",
    ] {
        assert!(unit.lines().any(|l| l.trim() == want), "unit lacks {want}");
    }
    assert!(unit.lines().any(|l| l.trim() == "CapabilityBoundingSet="));

    let has_tool = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_tool {
        println!("systemd-analyze not found: skipping `systemd-analyze verify`");
        return;
    }
    // verify checks that the binary exists: point it at the one just built.
    let tmp = common::TempDir::new("systemd");
    for (name, text) in [
        ("cloud-assistant-exporter.service", unit.clone()),
        // The drop-in applied: its lines after the unit's.
        (
            "cloud-assistant-exporter-web.service",
            format!("{unit}\n{dropin}"),
        ),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(
            &path,
            text.replace("/usr/local/bin/cloud-assistant-exporter", BIN),
        )
        .expect("write unit");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Only lines about this unit: the host's own units may warn too.
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("cloud-assistant-exporter"))
            .collect();
        assert!(
            out.status.success() && ours.is_empty(),
            "systemd-analyze verify {name}: {stderr}"
        );
    }
}

/// The actions one policy statement allows, sorted.
fn statement_actions(s: &serde_json::Value) -> Vec<String> {
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(s["Resource"], "*");
    let mut actions: Vec<String> = s["Action"]
        .as_array()
        .expect("Action")
        .iter()
        .map(|a| a.as_str().expect("string").to_string())
        .collect();
    actions.sort();
    assert!(
        actions.iter().all(|a| !a.contains('*')),
        "no wildcard actions"
    );
    actions
}

fn ecs(actions: impl IntoIterator<Item = &'static str>) -> Vec<String> {
    let mut v: Vec<String> = actions.into_iter().map(|a| format!("ecs:{a}")).collect();
    v.sort();
    v
}

#[test]
fn ram_policy_grants_exactly_the_calls_made() {
    let policy: serde_json::Value =
        serde_json::from_str(&read(&deploy().join("ram-policy.json"))).expect("JSON");
    assert_eq!(policy["Version"], "1");
    let statements = policy["Statement"].as_array().expect("Statement");
    // A policy cannot mark a permission optional: the optional ones have a
    // statement of their own, which can be left out.
    assert_eq!(statements.len(), 2);
    let required = statement_actions(&statements[0]);
    let optional = statement_actions(&statements[1]);
    assert_eq!(
        required,
        ecs(API_ACTIONS
            .iter()
            .copied()
            .filter(|a| !OPTIONAL_API_ACTIONS.contains(a)))
    );
    assert_eq!(optional, ecs(OPTIONAL_API_ACTIONS.iter().copied()));
    assert_eq!(
        required,
        [
            "ecs:DescribeCloudAssistantStatus",
            "ecs:DescribeInstanceStatus",
            "ecs:DescribeRegions",
            "ecs:ListPluginStatus",
        ]
    );
    assert_eq!(
        optional,
        [
            "ecs:DescribeActivations",
            "ecs:DescribeInstances",
            "ecs:DescribeInvocations",
            "ecs:DescribeManagedInstances",
        ]
    );
    // The README says which are optional and what their absence costs.
    let readme = read(&deploy().join("README.md"));
    let section = readme
        .split("## RAM policy")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a RAM policy section");
    for a in &optional {
        let line = section
            .lines()
            .find(|l| l.contains(&format!("`{a}`")))
            .unwrap_or_else(|| panic!("README does not list {a}"));
        assert!(
            line.contains("optional"),
            "README: {a} not called optional: {line}"
        );
    }
}

#[test]
fn dockerfile_is_multi_stage_and_non_root() {
    let text = read(&deploy().join("Dockerfile"));
    let instr: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&&str> = instr.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    assert!(text.contains("cargo build --release --locked"));
    let user = instr
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    let uid: u32 = user
        .split(':')
        .next()
        .and_then(|u| u.parse().ok())
        .expect("a numeric user");
    assert_ne!(uid, 0, "not root");
    assert!(instr.contains(&"EXPOSE 9791"));
    assert!(
        instr
            .iter()
            .any(|l| l.starts_with("ENTRYPOINT [\"/usr/local/bin/cloud-assistant-exporter\"")),
        "ENTRYPOINT is the binary"
    );
}

#[test]
fn deploy_readme_covers_every_file() {
    let readme = read(&deploy().join("README.md"));
    for f in [
        "Dockerfile",
        "systemd/cloud-assistant-exporter.service",
        "systemd/web-config.conf",
        "kubernetes/",
        "kubernetes/prometheusrule.yaml",
        "ram-policy.json",
    ] {
        assert!(readme.contains(f), "deploy/README.md does not mention {f}");
    }
}

/// deploy/kubernetes/prometheusrule.yaml as generated from
/// dashboards/alerts.yml: its `groups:` (comments included) under `spec:`.
fn prometheus_rule_from_alerts(alerts: &str) -> String {
    let groups = alerts
        .find("\ngroups:\n")
        .map(|at| &alerts[at + 1..])
        .expect("alerts.yml has a top-level groups: list");
    let mut out = String::from(
        "# Generated from dashboards/alerts.yml by `UPDATE_GOLDEN=1 cargo test --test deploy`;\n\
         # do not edit: change alerts.yml and generate it again (the test fails while\n\
         # they differ). Give it the labels your Prometheus' ruleSelector matches.\n\
         apiVersion: monitoring.coreos.com/v1\n\
         kind: PrometheusRule\n\
         metadata:\n  name: cloud-assistant-exporter\n  namespace: monitoring\n  labels:\n\
         \x20   app.kubernetes.io/name: cloud-assistant-exporter\n\
         spec:\n",
    );
    for line in groups.lines() {
        if !line.is_empty() {
            out.push_str("  ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn prometheus_rule_is_alerts_yml() {
    let alerts_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/alerts.yml");
    let alerts = read(&alerts_path);
    let want = prometheus_rule_from_alerts(&alerts);
    let path = deploy().join("kubernetes/prometheusrule.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &want).expect("write prometheusrule.yaml");
    }
    assert!(
        read(&path) == want,
        "deploy/kubernetes/prometheusrule.yaml differs from dashboards/alerts.yml: \
         run `UPDATE_GOLDEN=1 cargo test --test deploy`"
    );
    // The same rules, read as YAML: the indentation kept every block scalar.
    let rule: Value = yaml_serde::from_str(&want).expect("prometheusrule.yaml parses");
    let groups: Value = yaml_serde::from_str(&alerts).expect("alerts.yml parses");
    assert_eq!(rule["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(
        rule["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    assert!(
        groups["groups"]
            .as_sequence()
            .is_some_and(|g| !g.is_empty())
    );
    assert_eq!(rule["spec"]["groups"], groups["groups"]);
}
