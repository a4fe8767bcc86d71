//! The Grafana dashboard, the alert rules and the example Alertmanager
//! configuration, checked as files and against a live Prometheus and
//! Alertmanager.
//!
//! The live test runs the exporter in-process with two accounts (each its
//! own simulator on a pinned clock) with one region failing, a third
//! account whose AccessKey the API refuses, and a fourth whose credentials
//! cannot be had (down); a real
//! `prometheus` (Debian's package) scrapes it every second with
//! `dashboards/alerts.yml` loaded. Every panel query and rule must run,
//! panels must have data wherever the fleet has some, the alerts must name
//! exactly the instances, regions and accounts the fleet says, and the
//! example Alertmanager config must inhibit what the alerts rely on it to
//! inhibit. Without `prometheus` on PATH the live part is skipped, except
//! under CI.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cloud_assistant_exporter::clock::Clock;
use cloud_assistant_exporter::simulator::fleet::Agent;
use cloud_assistant_exporter::simulator::{
    Fleet, FleetConfig, RegionFault, RegionSpec, SimKey, Simulator,
};
use common::{PromApi, ServerProcess, TempDir, grafana_substitute, has_data, repo_file, repo_text};
use serde::Deserialize;
use serde_json::Value;

const RUNBOOKS: &str = "https://github.com/cloud-assistant-exporter/cloud-assistant-exporter/blob/main/dashboards/runbooks.md#";

/// Series docs/metrics.md names that the exporter does not emit yet, with the
/// panels and recording rules that stay empty until they land. The test
/// checks that each is indeed absent from the live page: when one lands,
/// its entry must go, and its panels and rules must then have data. Every
/// family of docs/metrics.md is served now.
const NOT_YET_EXPORTED: &[(&str, &[&str])] = &[];

/// Recording rules that legitimately record nothing in this test, and why.
const EMPTY_RULES: &[(&str, &str)] = &[(
    "cloud_assistant:agent_invocations:increase1h_top20",
    "it reads each counter an hour ago; the test's Prometheus is seconds old",
)];

/// Panels that legitimately show no data in this test, and why.
const EMPTY_PANELS: &[(&str, &str)] = &[
    (
        "Share of requests throttled",
        "no throttling is injected, so no request answers Throttling*",
    ),
    (
        "Firing Cloud Assistant alerts (first 200)",
        "the alerts are minutes long in pending (`for`); the test lasts seconds",
    ),
    (
        "Most commands in the last hour (top 20)",
        "its recording rule reads each counter an hour ago (see EMPTY_RULES)",
    ),
    (
        "Command failures by command and error code",
        "it shows the increase of counters that stand still in a test seconds long",
    ),
    (
        "Most failing commands, last day (top 20)",
        "it shows the increase of counters that stand still in a test seconds long",
    ),
];

/// Series of the whole process: filtered by `job` only.
const PROCESS_METRICS: &[&str] = &[
    "aliyun_cloud_assistant_exporter_build_info",
    "aliyun_cloud_assistant_exporter_collection_interval_seconds",
    "aliyun_cloud_assistant_exporter_plugin_names_dropped_total",
    "aliyun_cloud_assistant_exporter_invocation_walks_truncated_total",
    "aliyun_cloud_assistant_exporter_cycle_duration_seconds",
    "aliyun_cloud_assistant_exporter_cycles_total",
    "aliyun_cloud_assistant_exporter_last_collection_timestamp_seconds",
    "aliyun_cloud_assistant_exporter_plugin_names",
    "aliyun_cloud_assistant_exporter_rows_dropped_total",
    "aliyun_cloud_assistant_exporter_config_last_reload_successful",
    "aliyun_cloud_assistant_exporter_config_last_reload_success_timestamp_seconds",
    "aliyun_cloud_assistant_exporter_shard_info",
    "process_",
];

/// Series per account but not per region: filtered by `job` and `account`.
const ACCOUNT_METRICS: &[&str] = &[
    "aliyun_cloud_assistant_exporter_api_requests_total",
    "aliyun_cloud_assistant_exporter_api_retries_total",
    "aliyun_cloud_assistant_exporter_api_request_duration_seconds",
    "aliyun_cloud_assistant_exporter_credential_refreshes_total",
    "aliyun_cloud_assistant_exporter_account_up",
];

/// Per-instance series: one per instance (or plugin) of the fleet.
const INSTANCE_METRIC_PREFIXES: &[&str] = &[
    "aliyun_cloud_assistant_agent_",
    "aliyun_cloud_assistant_plugin_",
    "aliyun_cloud_assistant_instance_status",
    "aliyun_cloud_assistant_instance_info",
    "aliyun_cloud_assistant_managed_instance_",
];

#[derive(Debug, Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl Rule {
    fn name(&self) -> &str {
        self.alert
            .as_deref()
            .or(self.record.as_deref())
            .expect("alert: or record:")
    }
}

fn rules() -> Vec<Rule> {
    let file: RuleFile =
        yaml_serde::from_str(&repo_text("dashboards/alerts.yml")).expect("alerts.yml");
    assert!(file.groups.len() >= 2, "{:?}", file.groups);
    let mut names = BTreeSet::new();
    let mut rules = Vec::new();
    for g in file.groups {
        assert!(g.name.starts_with("cloud-assistant."), "group {}", g.name);
        for r in g.rules {
            assert!(names.insert(r.name().to_string()), "{} twice", r.name());
            rules.push(r);
        }
    }
    rules
}

fn dashboard() -> Value {
    serde_json::from_str(&repo_text("dashboards/cloud-assistant.json"))
        .expect("the dashboard is JSON")
}

/// The metric and recording-rule names an expression reads.
fn metric_names(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["aliyun_cloud_assistant_", "cloud_assistant:", "process_"]
            .iter()
            .any(|p| expr[i..].starts_with(p))
            && (i == 0 || !is_ident(bytes[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        out.push(expr[i..end].to_string());
        i = end;
    }
    out
}

/// Every selector filters on the dashboard's variables its series carry:
/// `$job` always, `$account` for series of an account, `$region_id` for
/// series of a region, `$instance_id` for per-instance series. Returns the
/// offending selectors.
fn unfiltered_selectors(expr: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for name in metric_names(expr) {
        let at = expr.find(&name).expect("name");
        // Every occurrence of the name.
        let mut from = at;
        while let Some(pos) = expr[from..].find(&name) {
            let start = from + pos;
            let end = start + name.len();
            from = end;
            let next_ok = expr[end..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
            if !next_ok {
                continue;
            }
            let matchers = if expr[end..].starts_with('{') {
                let close = expr[end..].find('}').map_or(expr.len(), |c| end + c + 1);
                expr[end..close].replace(' ', "")
            } else {
                String::new()
            };
            let need = |v: &str| matchers.contains(&format!("{v}=~\"${v}\""));
            let process = PROCESS_METRICS.iter().any(|p| name.starts_with(p));
            let account = ACCOUNT_METRICS.iter().any(|p| name.starts_with(p));
            let instance = INSTANCE_METRIC_PREFIXES.iter().any(|p| name.starts_with(p))
                || (name.starts_with("cloud_assistant:")
                    && (name.ends_with(":info") || name.ends_with(":age_seconds")));
            let ok = need("job")
                && (process || need("account"))
                && (process || account || need("region_id"))
                && (!instance || need("instance_id"));
            if !ok {
                bad.push(format!("{name}{matchers}"));
            }
        }
    }
    bad
}

/// Label lists of `by (...)` and `on (...)` clauses.
fn grouping_lists(expr: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for kw in ["by (", "on (", "by(", "on("] {
        let mut rest = expr;
        while let Some(pos) = rest.find(kw) {
            let after = &rest[pos + kw.len()..];
            let Some(close) = after.find(')') else { break };
            out.push(
                after[..close]
                    .split(',')
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect(),
            );
            rest = &after[close..];
        }
    }
    out
}

fn duration(s: &str) -> Duration {
    humantime::parse_duration(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// The rules: their labels and annotations, runbooks, promtool tests and
/// documentation.
#[test]
fn alert_rules_are_documented_tested_and_keep_account() {
    let rules = rules();
    let alerts: Vec<&Rule> = rules.iter().filter(|r| r.alert.is_some()).collect();
    assert!(alerts.len() >= 20, "{} alerts", alerts.len());
    let alert_names: BTreeSet<String> = alerts.iter().map(|r| r.name().to_string()).collect();
    each_alert_has_a_runbook_of_every_part(&alert_names);
    the_panels_a_runbook_names_exist();
    every_alert_fires_in_a_test_and_is_checked_quiet_after_its_for(&alerts, &alert_names);
    every_alert_is_a_row_of_the_readme_with_fixed_annotations(&alerts);
    only_alerts_about_one_process_name_the_target(&alerts);
    grouping_by_region_keeps_account(&rules);
    the_docs_link_to_the_rules_and_runbooks_instead_of_copying_them();
}

/// One section per alert in runbooks.md, each with every part.
fn each_alert_has_a_runbook_of_every_part(alert_names: &BTreeSet<String>) {
    let runbooks = repo_text("dashboards/runbooks.md");
    let sections: Vec<(&str, &str)> = runbooks
        .split("\n## ")
        .skip(1)
        .map(|s| s.split_once('\n').unwrap_or((s, "")))
        .collect();
    let headings: BTreeSet<String> = sections.iter().map(|(h, _)| h.trim().to_string()).collect();
    assert_eq!(
        &headings, alert_names,
        "runbooks.md has one section per alert"
    );
    for (heading, body) in &sections {
        for part in [
            "**Means.**",
            "**Check first.**",
            "**Confirm.**",
            "**Usual causes.**",
            "**Do.**",
        ] {
            assert!(body.contains(part), "runbook {heading}: no {part}");
        }
        // The first check is one command (a code span), one page of a
        // console (in bold) or one panel of the dashboard (its title in
        // quotes, checked below).
        let first = body
            .split("**Check first.**")
            .nth(1)
            .and_then(|s| s.split("\n\n").next())
            .unwrap_or("");
        assert!(
            first.contains('`') || first.contains("**") || first.contains('"'),
            "runbook {heading}: the first check names no command or page: {first}"
        );
    }
}

/// The panels and rows a runbook names by their title ("Walks by
/// result") exist.
fn the_panels_a_runbook_names_exist() {
    let runbooks = repo_text("dashboards/runbooks.md");
    let mut titles: BTreeSet<String> = BTreeSet::new();
    let mut walk = vec![dashboard()["panels"].clone()];
    while let Some(Value::Array(list)) = walk.pop() {
        for p in list {
            walk.push(p["panels"].clone());
            titles.insert(p["title"].as_str().unwrap_or("").to_string());
        }
    }
    let flat = runbooks.replace('\n', " ");
    let parts: Vec<&str> = flat.split('"').collect();
    let mut named = 0;
    for i in (1..parts.len()).step_by(2) {
        // A label value in a selector (`code!="OK"`) is not a title.
        let q = parts[i];
        if q.starts_with(|c: char| c.is_ascii_uppercase()) && !parts[i - 1].ends_with('=') {
            assert!(
                titles.contains(q),
                "runbooks.md names a panel {q:?} the dashboard lacks"
            );
            named += 1;
        }
    }
    assert!(named >= 10, "runbooks.md names {named} panels");
}

fn every_alert_fires_in_a_test_and_is_checked_quiet_after_its_for(
    alerts: &[&Rule],
    alert_names: &BTreeSet<String>,
) {
    let test_file: yaml_serde::Value =
        yaml_serde::from_str(&repo_text("dashboards/alerts.test.yml")).expect("alerts.test.yml");
    let mut tested = BTreeSet::new();
    let for_of: BTreeMap<&str, Duration> = alerts
        .iter()
        .map(|r| (r.name(), duration(r.for_.as_deref().unwrap_or("0s"))))
        .collect();
    let mut quiet_checks = 0;
    for t in test_file["tests"].as_sequence().expect("tests") {
        for a in t["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = a["alertname"].as_str().expect("alertname");
            if a["exp_alerts"].as_sequence().is_some_and(|e| !e.is_empty()) {
                tested.insert(name.to_string());
            } else {
                // A check that an alert is quiet is made once its `for` has
                // elapsed since the series began: before, even an alert on
                // `vector(1)` would pass it.
                let at = duration(a["eval_time"].as_str().expect("eval_time"));
                let for_ = for_of
                    .get(name)
                    .unwrap_or_else(|| panic!("no alert {name}"));
                assert!(
                    at >= *for_,
                    "{}: {name} checked quiet at {at:?}, before its for of {for_:?}",
                    t["name"].as_str().unwrap_or("?")
                );
                quiet_checks += 1;
            }
        }
    }
    assert!(
        quiet_checks >= 20,
        "{quiet_checks} checks that an alert is quiet"
    );
    let untested: Vec<&String> = alert_names.difference(&tested).collect();
    assert!(
        untested.is_empty(),
        "alerts no promtool test sees fire: {untested:?}"
    );
}

/// Not a copy of the rule: a row of dashboards/README.md with its runbook;
/// a severity, fixed summaries, labels in descriptions, a `for` long enough;
/// per-instance alerts are warnings that outlive a restart.
fn every_alert_is_a_row_of_the_readme_with_fixed_annotations(alerts: &[&Rule]) {
    let docs = repo_text("dashboards/README.md");
    let mut per_instance_alerts = 0;
    for r in alerts {
        let name = r.name();
        // Not a copy of the rule: a row of the table, with its runbook.
        let row = docs
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("[{name}]")))
            .unwrap_or_else(|| panic!("dashboards/README.md does not list {name}"));
        assert!(
            row.contains(&format!("(runbooks.md#{})", common::github_anchor(name))),
            "{name}: no runbook link in {row}"
        );
        let severity = r.labels.get("severity").map(String::as_str);
        assert!(
            matches!(severity, Some("critical" | "warning" | "info")),
            "{name}: severity {severity:?}"
        );
        assert!(row.contains(severity.unwrap_or("?")), "{name}: {row}");
        let summary = &r.annotations["summary"];
        assert!(!summary.contains("{{"), "{name}: summary is fixed text");
        let description = &r.annotations["description"];
        assert!(
            description.contains("{{ $labels.") || r.expr.trim_start().starts_with("absent("),
            "{name}: the description names the labels"
        );
        assert_eq!(
            r.annotations["runbook_url"],
            format!("{RUNBOOKS}{}", common::github_anchor(name)),
            "{name}: runbook_url"
        );
        assert_eq!(r.annotations.len(), 3, "{name}: {:?}", r.annotations);
        // At least three collection intervals at the default 60s.
        let for_ = duration(r.for_.as_deref().unwrap_or("0s"));
        assert!(for_ >= Duration::from_secs(180), "{name}: for {for_:?}");
        // Per-instance alerts are warnings that outlive an exporter restart.
        let per_instance = (metric_names(&r.expr).iter().any(|m| {
            m.starts_with("cloud_assistant:")
                && (m.ends_with(":info") || m.ends_with(":age_seconds"))
        }) && r.expr.contains("instance_id"))
            || grouping_lists(&r.expr)
                .iter()
                .any(|l| l.iter().any(|x| x == "instance_id"));
        if per_instance {
            assert_ne!(
                severity,
                Some("critical"),
                "{name}: per instance, not a page"
            );
            let keep = duration(r.keep_firing_for.as_deref().unwrap_or("0s"));
            assert!(keep >= Duration::from_secs(300), "{name}: keep_firing_for");
            per_instance_alerts += 1;
        }
    }
    // Agent down and not installed, plugin crashed and stopped, managed
    // server disconnected, a scheduled task failed or not running.
    assert_eq!(per_instance_alerts, 7, "per-instance alerts found");
}

fn only_alerts_about_one_process_name_the_target(alerts: &[&Rule]) {
    for r in alerts {
        // No alert but those about one exporter process keeps a target
        // label: a replaced pod neither doubles nor re-sends the others.
        let about_a_process = [
            "CloudAssistantExporterDown",
            "CloudAssistantScrapesFailing",
            "CloudAssistantCollectionStalled",
            "CloudAssistantConfigReloadFailed",
        ]
        .contains(&r.name());
        for l in ["instance", "pod"] {
            let shown = r.annotations["description"].contains(&format!("$labels.{l} "));
            assert!(
                about_a_process || !shown,
                "{}: its description names the target's {l}",
                r.name()
            );
        }
    }
}

fn grouping_by_region_keeps_account(rules: &[Rule]) {
    for r in rules {
        // Grouping by region keeps the account (absent without --config.file).
        for list in grouping_lists(&r.expr) {
            if list.iter().any(|l| l == "region_id") {
                assert!(
                    list.iter().any(|l| l == "account"),
                    "{}: ({}) drops account",
                    r.name(),
                    list.join(", ")
                );
            }
        }
    }
}

fn the_docs_link_to_the_rules_and_runbooks_instead_of_copying_them() {
    let docs = repo_text("dashboards/README.md");
    assert!(
        repo_text("README.md").contains("dashboards/README.md"),
        "README.md links to dashboards/README.md"
    );
    for target in [
        "alerts.yml",
        "runbooks.md",
        "alertmanager.example.yml",
        "alerts.test.yml",
    ] {
        assert!(
            docs.contains(&format!("]({target})")),
            "dashboards/README.md links {target}"
        );
    }
}

/// The dashboard's variables and panels, as files.
#[test]
fn dashboard_scales_to_large_fleets() {
    let dashboard = dashboard();
    assert_eq!(dashboard["title"], "Cloud Assistant");
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    the_variables_filter_by_job_account_and_region(&dashboard);
    let panels = common::dashboard_panels(dashboard["panels"].as_array().expect("panels"));
    assert!(panels.len() >= 40, "{} panels", panels.len());
    let titles: BTreeSet<&str> = panels.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(titles.len(), panels.len(), "panel titles are unique");
    let all_exprs = every_query_is_filtered_at_the_resolution_and_keeps_account(&panels);
    legends_name_the_account_and_tables_link_to_the_console(&dashboard);
    what_the_exporter_says_has_a_panel(&all_exprs);
    the_lists_of_empty_panels_name_panels_or_rules(&titles);
}

fn the_variables_filter_by_job_account_and_region(dashboard: &Value) {
    let vars = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("variable {name}"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    for name in ["job", "account", "region_id"] {
        let v = var(name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["multi"], true, "{name} multi");
        assert_eq!(v["includeAll"], true, "{name} includeAll");
        assert_eq!(v["allValue"], ".*", "{name} allValue");
    }
    // Regions from the exporter's one series per region, not from a
    // per-instance series; instances typed, not listed.
    let region_query = var("region_id")["definition"].as_str().unwrap_or("");
    assert!(
        region_query.starts_with("label_values(aliyun_cloud_assistant_exporter_region_up{"),
        "{region_query}"
    );
    assert_eq!(var("instance_id")["type"], "textbox");
    assert!(
        vars.iter().any(|v| v["type"] == "adhoc"),
        "an ad hoc filter"
    );
}

/// Every query filters its selectors, rates follow the panel's
/// resolution, raw per-instance series are read by instant top-N panels
/// only, and grouping by region keeps the account. Every query's text.
fn every_query_is_filtered_at_the_resolution_and_keeps_account(
    panels: &[(String, Vec<common::PanelQuery>)],
) -> String {
    let mut all_exprs = String::new();
    for (title, queries) in panels {
        assert!(!queries.is_empty(), "panel {title:?} has no query");
        for q in queries {
            all_exprs.push_str(&q.expr);
            all_exprs.push('\n');
            let bad = unfiltered_selectors(&q.expr);
            assert!(
                bad.is_empty(),
                "panel {title:?}: selectors missing a filter: {bad:?}"
            );
            // Rates follow the panel's resolution, except in instant
            // queries over a fixed window ("in the last hour").
            for func in ["rate(", "increase("] {
                for part in q.expr.split(func).skip(1) {
                    let window = part.split('[').nth(1).and_then(|w| w.split(']').next());
                    assert!(
                        window == Some("$__rate_interval") || q.instant,
                        "panel {title:?}: {func} over {window:?}"
                    );
                }
            }
            // A range query over raw per-instance series would read every
            // instance's samples on each refresh: only instant top-N panels
            // read them.
            let raw_instance = metric_names(&q.expr)
                .iter()
                .any(|m| INSTANCE_METRIC_PREFIXES.iter().any(|p| m.starts_with(p)));
            if raw_instance {
                assert!(
                    q.instant && q.expr.starts_with("topk("),
                    "panel {title:?} reads per-instance series over a range: {}",
                    q.expr
                );
            }
            for list in grouping_lists(&q.expr) {
                if list.iter().any(|l| l == "region_id") {
                    assert!(
                        list.iter().any(|l| l == "account"),
                        "panel {title:?}: {list:?}"
                    );
                }
            }
        }
    }
    all_exprs
}

/// Legends name the account with the region, and instance ids link to
/// their console page.
fn legends_name_the_account_and_tables_link_to_the_console(dashboard: &Value) {
    let mut legends = 0;
    let mut linked_tables = 0;
    let mut walk = vec![dashboard["panels"].clone()];
    while let Some(Value::Array(list)) = walk.pop() {
        for p in list {
            walk.push(p["panels"].clone());
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(l) = t["legendFormat"].as_str()
                    && l.contains("{{region_id}}")
                {
                    legends += 1;
                    assert!(
                        l.contains("{{account}}/{{region_id}}"),
                        "{}: {l}",
                        p["title"]
                    );
                }
            }
            let exprs = p["targets"].to_string();
            if p["type"] == "table" && exprs.contains("instance_id") {
                let links = p["fieldConfig"]["overrides"].to_string();
                assert!(
                    links.contains("ecs.console.aliyun.com/server/${__value.raw}/detail")
                        || links.contains("ecs.console.aliyun.com/cloud-assistant/region/"),
                    "table {} links instance ids to the console",
                    p["title"]
                );
                linked_tables += 1;
            }
        }
    }
    assert!(
        legends >= 10 && linked_tables >= 6,
        "{legends} legends, {linked_tables} tables"
    );
}

/// What the exporter has to say about itself and the fleet has a panel.
fn what_the_exporter_says_has_a_panel(all_exprs: &str) {
    for metric in [
        "aliyun_cloud_assistant_exporter_credential_refreshes_total",
        "aliyun_cloud_assistant_exporter_config_last_reload_successful",
        "aliyun_cloud_assistant_exporter_cycle_duration_seconds",
        "aliyun_cloud_assistant_exporter_shard_info",
        "aliyun_cloud_assistant_exporter_account_up",
        "cloud_assistant:problem_instance:info",
        "aliyun_cloud_assistant_managed_instances",
        "cloud_assistant:managed_instance_disconnected:info",
        "aliyun_cloud_assistant_activation_instances",
        "ALERTS",
    ] {
        assert!(all_exprs.contains(metric), "no panel reads {metric}");
    }
}

fn the_lists_of_empty_panels_name_panels_or_rules(titles: &BTreeSet<&str>) {
    let listed = EMPTY_PANELS.iter().map(|(t, _)| *t).chain(
        NOT_YET_EXPORTED
            .iter()
            .flat_map(|(_, ps)| ps.iter().copied()),
    );
    let recorded: BTreeSet<String> = rules().iter().filter_map(|r| r.record.clone()).collect();
    for (rule, _) in EMPTY_RULES {
        assert!(
            recorded.contains(*rule),
            "{rule:?} is in EMPTY_RULES, but is no recording rule"
        );
    }
    for title in listed {
        assert!(
            titles.contains(title) || recorded.contains(title),
            "{title:?} is listed, but is neither a panel nor a recording rule"
        );
    }
}

/// The example Alertmanager config passes `amtool check-config` and routes
/// by severity (info to a channel of its own) and by an instance tag.
#[test]
fn alertmanager_example_checks_and_routes() {
    let Some(amtool) = common::tool("amtool", "prometheus-alertmanager") else {
        return;
    };
    let config = repo_file("dashboards/alertmanager.example.yml");
    common::run_ok(
        std::process::Command::new(&amtool)
            .arg("check-config")
            .arg(&config),
    );
    for (labels, receiver) in [
        (
            &[
                "alertname=CloudAssistantAgentDown",
                "severity=warning",
                "tag_team=payments",
            ][..],
            "team-payments",
        ),
        (
            &[
                "alertname=CloudAssistantAgentsDownHigh",
                "severity=critical",
            ],
            "pager",
        ),
        (
            &["alertname=CloudAssistantRegionStale", "severity=warning"],
            "tickets",
        ),
        (
            &["alertname=CloudAssistantCollectionSlow", "severity=info"],
            "info",
        ),
        (
            &[
                "alertname=CloudAssistantAgentNotInstalled",
                "severity=info",
                "tag_team=payments",
            ],
            "team-payments",
        ),
    ] {
        let out = std::process::Command::new(&amtool)
            .args(["config", "routes", "test"])
            .arg(format!("--config.file={}", config.display()))
            .args(labels)
            .output()
            .expect("amtool runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            receiver,
            "{labels:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

type Key = Vec<String>;

/// The alerts the two accounts' fleets must raise, by name, each keyed by
/// its account, region and (where it has them) instance and plugin. The
/// `failing` (account, region) has never been collected.
fn expected_alerts(
    fleets: &[(&str, Fleet)],
    now: i64,
    failing: (&str, &str),
) -> BTreeMap<&'static str, BTreeSet<Key>> {
    let mut want: BTreeMap<&'static str, BTreeSet<Key>> = BTreeMap::new();
    for name in [
        "CloudAssistantAgentDown",
        "CloudAssistantAgentNotInstalled",
        "CloudAssistantPluginCrashed",
        "CloudAssistantPluginStopped",
        "CloudAssistantAgentsDownHigh",
        "CloudAssistantPluginCrashedMany",
    ] {
        want.insert(name, BTreeSet::new());
    }
    want.insert(
        "CloudAssistantRegionStale",
        BTreeSet::from([vec![failing.0.to_string(), failing.1.to_string()]]),
    );
    want.insert(
        "CloudAssistantCredentialsRefused",
        BTreeSet::from([vec!["gamma".to_string()]]),
    );
    // delta's secret file is not there: the account is down.
    want.insert(
        "CloudAssistantAccountDown",
        BTreeSet::from([vec!["delta".to_string()]]),
    );
    // beta's sweeps of oos-cloudmonitor fail in its regions that are up.
    want.insert(
        "CloudAssistantPluginSweepFailing",
        BTreeSet::from([vec![
            "beta".to_string(),
            "cn-hangzhou".to_string(),
            "oos-cloudmonitor".to_string(),
        ]]),
    );
    for (account, fleet) in fleets {
        for (region, r) in &fleet.regions {
            if (*account, region.as_str()) == failing {
                continue;
            }
            let key = |more: &[&str]| -> Key {
                [account, region.as_str()]
                    .iter()
                    .chain(more)
                    .map(|s| s.to_string())
                    .collect()
            };
            let running: Vec<_> = r
                .instances
                .iter()
                .filter(|i| i.status == "Running")
                .collect();
            let mut down = 0;
            let mut crashed: BTreeMap<&str, usize> = BTreeMap::new();
            // Instances of the region that have each plugin installed (any
            // state but NotInstalled and Removed), Running or not.
            let mut installed: BTreeMap<&str, usize> = BTreeMap::new();
            for inst in &r.instances {
                for p in &inst.plugins {
                    if p.status != "NotInstalled" && p.status != "Removed" {
                        *installed.entry(&p.name).or_default() += 1;
                    }
                }
            }
            for inst in &running {
                // A stale heartbeat is also an agent down: one alert,
                // CloudAssistantAgentDown (the recording rule is checked
                // at the edge below).
                if inst.agent == Agent::NotInstalled {
                    want.get_mut("CloudAssistantAgentNotInstalled")
                        .expect("name")
                        .insert(key(&[&inst.id]));
                } else if !inst.agent_up(now) {
                    down += 1;
                    want.get_mut("CloudAssistantAgentDown")
                        .expect("name")
                        .insert(key(&[&inst.id]));
                }
                for p in inst.plugins.iter().filter(|p| p.status == "Stopped") {
                    want.get_mut("CloudAssistantPluginStopped")
                        .expect("name")
                        .insert(key(&[&inst.id, &p.name]));
                }
                for p in inst.plugins.iter().filter(|p| p.status == "Crashed") {
                    *crashed.entry(&p.name).or_default() += 1;
                    want.get_mut("CloudAssistantPluginCrashed")
                        .expect("name")
                        .insert(key(&[&inst.id, &p.name]));
                }
            }
            // The hybrid servers and their activation codes.
            if r.hybrid_supported {
                let mut disconnected = 0;
                for m in r.managed.iter().filter(|m| !m.connected) {
                    disconnected += 1;
                    want.entry("CloudAssistantManagedInstanceDisconnected")
                        .or_default()
                        .insert(key(&[&m.id]));
                }
                if disconnected >= 3 && disconnected * 10 >= r.managed.len() {
                    want.entry("CloudAssistantManagedInstancesDisconnectedHigh")
                        .or_default()
                        .insert(key(&[]));
                }
                // The activation alerts speak only of codes servers
                // registered with in the last hour: with the clock pinned,
                // none does, so none fires (an unexpected one fails below).
            }
            // Scheduled tasks whose last run failed on an instance that is
            // not Stopped (the demo's nightly backup fails on one host).
            for task in r.invocations.iter().filter(|i| i.timed()) {
                for run in &task.runs {
                    let failed = matches!(
                        run.status.as_str(),
                        "Failed" | "Error" | "Timeout" | "Aborted" | "Invalid"
                    );
                    let stopped = r
                        .instances
                        .iter()
                        .any(|i| i.id == run.instance_id && i.status == "Stopped");
                    if failed && !stopped {
                        want.entry("CloudAssistantScheduledTaskFailed")
                            .or_default()
                            .insert(key(&[&run.instance_id]));
                    }
                    // A task at a fixed rate whose last run is older than
                    // twice its period (15 minutes at least) has stopped.
                    let period = task
                        .frequency
                        .strip_prefix("rate(")
                        .and_then(|f| f.strip_suffix(')'))
                        .and_then(|f| {
                            let (n, unit) = f.split_at(f.len().checked_sub(1)?);
                            let n: i64 = n.parse().ok()?;
                            Some(
                                n * match unit {
                                    "s" => 1,
                                    "m" => 60,
                                    "h" => 3600,
                                    "d" => 86_400,
                                    _ => return None,
                                },
                            )
                        });
                    let last = run.finish.unwrap_or(run.start);
                    if let Some(p) = period
                        && !stopped
                        && now - last > (2 * p).max(900)
                    {
                        want.entry("CloudAssistantScheduledTaskNotRunning")
                            .or_default()
                            .insert(key(&[&run.instance_id]));
                    }
                }
            }
            if down >= 3 && down * 10 >= running.len() {
                want.get_mut("CloudAssistantAgentsDownHigh")
                    .expect("name")
                    .insert(key(&[]));
            }
            for (plugin, n) in crashed {
                if n >= 3 && n * 10 >= installed.get(plugin).copied().unwrap_or(0).max(1) {
                    want.get_mut("CloudAssistantPluginCrashedMany")
                        .expect("name")
                        .insert(key(&[plugin]));
                }
            }
        }
    }
    want
}

/// Active (pending or firing) alerts named `alertname`, keyed by account,
/// region, instance and plugin (those the alert has).
fn active(alerts: &[Value], alertname: &str) -> BTreeSet<Key> {
    alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == alertname)
        .filter(|a| matches!(a["state"].as_str(), Some("pending" | "firing")))
        .map(|a| {
            let l = &a["labels"];
            ["account", "region_id", "instance_id", "plugin"]
                .iter()
                .filter_map(|k| l[*k].as_str().map(str::to_string))
                .collect()
        })
        .collect()
}

/// A simulated account: a simulator that accepts only its own key.
async fn simulated_account(name: &str, cfg: FleetConfig, clock: &Clock) -> (Simulator, String) {
    let sim = common::sim_at(cfg, clock.clone()).await;
    let key_id = format!("LTAI-{name}");
    sim.add_key(&key_id, SimKey::long_term(format!("secret-of-{name}")));
    (sim, key_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_against_live_prometheus() {
    let Some(prometheus) = common::tool("prometheus", "prometheus") else {
        return;
    };
    let rules = rules();
    let dashboard = dashboard();
    let panels = common::dashboard_panels(dashboard["panels"].as_array().expect("panels"));
    let fleets = two_accounts_with_every_case().await;
    let (running, _accounts_dir) = exporter_on_four_accounts(&fleets).await;
    the_page_has_what_the_rules_and_panels_read(running.addr, &rules, &panels).await;

    let rules_path = repo_file("dashboards/alerts.yml");
    let prom_dir = TempDir::new("prometheus");
    let prom_config = prom_dir.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules_path:?}\n\
             scrape_configs:\n  - job_name: cloud-assistant\n    static_configs:\n      - targets: [\"{}\"]\n",
            running.addr
        ),
    );
    let data_dir = prom_dir.path().join("data");
    let prom = common::launch_prometheus(&prometheus, prom_dir, &prom_config, &data_dir).await;
    let api = PromApi::new(&prom.base, Duration::from_secs(10));

    api.wait_for_data("aliyun_cloud_assistant_agent_up", 30)
        .await;
    // A second cycle while Prometheus scrapes, so the API counters move and
    // the rate and latency panels have traffic to show.
    running.collector.run_cycle().await;
    api.wait_for_data(
        "sum(rate(aliyun_cloud_assistant_exporter_api_requests_total[1m])) > 0",
        15,
    )
    .await;
    prometheus_loads_and_records_every_rule(&api, &rules).await;
    every_panel_query_runs(&api, &panels).await;
    let alerts = exactly_the_expected_alerts(&api, &rules, &fleets).await;

    // The example Alertmanager config against these alerts: an instance
    // both down and stale is one alert, and a region-wide page stands for
    // the warnings of its instances.
    if let Some(alertmanager) = common::tool("prometheus-alertmanager", "prometheus-alertmanager") {
        check_inhibition(&alertmanager, &alerts).await;
    }

    drop(prom);
    running.shutdown().await;
    drop(fleets);
}

/// The two simulated accounts the live test reads, at a pinned "now" near
/// the wall clock.
struct LiveFleets {
    now: i64,
    clock: Clock,
    plugins: Vec<String>,
    alpha: Simulator,
    alpha_key: String,
    beta: Simulator,
    beta_key: String,
    /// The (account, region) that answers ServiceUnavailable to everything.
    failing: (&'static str, &'static str),
    /// alpha's agents with heartbeats at the 5-minute edge: (id, age).
    edge: Vec<(String, i64)>,
}

async fn two_accounts_with_every_case() -> LiveFleets {
    // Two accounts at a pinned "now" near the wall clock (Prometheus stamps
    // samples with its own time), started an hour ago, so agents that stop
    // beating after the start have every heartbeat age from 0 to an hour.
    // beta's cn-beijing answers ServiceUnavailable to everything.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let clock = Clock::fixed(now);
    let plugins: Vec<String> = ["ecs-tool-monitor", "aliyun-service-ops", "oos-cloudmonitor"]
        .map(String::from)
        .to_vec();
    let (alpha, alpha_key) =
        simulated_account("alpha", FleetConfig::demo(now - 3600), &clock).await;
    let beta_cfg = FleetConfig {
        seed: 43,
        regions: vec![
            RegionSpec::new("cn-hangzhou", 60),
            RegionSpec::new("cn-beijing", 30),
        ],
        plugins: plugins.clone(),
        start: now - 3600,
    };
    let (beta, beta_key) = simulated_account("beta", beta_cfg, &clock).await;
    let failing = ("beta", "cn-beijing");
    beta.update_faults(|f| {
        f.regions.insert(
            failing.1.into(),
            RegionFault::Error {
                status: 503,
                code: "ServiceUnavailable".into(),
            },
        );
    });
    // Three Running instances of alpha with heartbeats exactly 299, 300 and
    // 301 seconds old, so the "older than 5 minutes" edge is exercised.
    let edge_ages: [i64; 3] = [299, 300, 301];
    let mut edge = Vec::new();
    alpha.update_fleet(|fleet| {
        let region = fleet.regions.get_mut("cn-hangzhou").expect("cn-hangzhou");
        assert!(
            !region.quirky,
            "edge instances need full-precision heartbeats"
        );
        for (inst, age) in region
            .instances
            .iter_mut()
            .filter(|i| i.status == "Running" && i.agent != Agent::NotInstalled)
            .zip(edge_ages)
        {
            inst.agent = Agent::Down {
                last_heartbeat: now - age,
            };
            edge.push((inst.id.clone(), age));
        }
    });
    assert_eq!(
        edge.len(),
        edge_ages.len(),
        "Running instances for the edge"
    );

    LiveFleets {
        now,
        clock,
        plugins,
        alpha,
        alpha_key,
        beta,
        beta_key,
        failing,
        edge,
    }
}

/// The exporter on four accounts (alpha and beta walked, gamma refused,
/// delta down), after its first cycle and a second in which one of beta's
/// sweeps fails.
async fn exporter_on_four_accounts(
    f: &LiveFleets,
) -> (cloud_assistant_exporter::app::Running, TempDir) {
    let (alpha, alpha_key, beta, beta_key, plugins, clock) = (
        &f.alpha,
        &f.alpha_key,
        &f.beta,
        &f.beta_key,
        &f.plugins,
        &f.clock,
    );
    let dir = TempDir::new("dashboards-live");
    let mut accounts = String::from("accounts:\n");
    // gamma's AccessKey is unknown to its API (deleted, say): every call is
    // refused, which must raise one alert for gamma, not one per region.
    let revoked = "LTAI-revoked".to_string();
    for (name, sim, key, regions) in [
        ("alpha", alpha, alpha_key, None),
        ("beta", beta, beta_key, Some("[cn-hangzhou, cn-beijing]")),
        ("gamma", beta, &revoked, Some("[cn-hangzhou, cn-shanghai]")),
    ] {
        let secret = dir.write(&format!("{name}.secret"), &format!("secret-of-{name}\n"));
        accounts.push_str(&format!(
            "  - name: {name}\n    endpoint: \"{}\"\n{}    credentials:\n      type: access_key\n      access_key_id: {key}\n      access_key_secret_file: {secret}\n",
            sim.url(),
            regions.map(|r| format!("    regions: {r}\n")).unwrap_or_default(),
        ));
    }
    // delta's secret file is not there: its credentials cannot be had, so
    // it is down (account_up 0), which raises one alert for the account.
    accounts.push_str(&format!(
        "  - name: delta\n    endpoint: \"{}\"\n    credentials: {{type: access_key, access_key_id: LTAI-delta, access_key_secret_file: delta.secret}}\n",
        beta.url()
    ));
    let config = dir.write("accounts.yml", &accounts);
    let running = common::start_app(
        &[
            "--config.file",
            &config,
            "--aliyun.rate-limit",
            "0",
            "--collect.interval",
            "1h",
            "--collect.plugins",
            &plugins.join(","),
            "--collect.plugin-discovery-interval",
            "0",
        ],
        &[],
        clock.clone(),
    )
    .await
    .expect("exporter starts");
    common::wait_ready(running.addr).await;
    // From the second cycle on, beta's sweeps of one plugin fail in every
    // region: they keep their last good series, with plugin_sweep_up 0.
    beta.update_faults(|f| {
        f.plugin_sweeps.insert(
            "oos-cloudmonitor".into(),
            RegionFault::Error {
                status: 500,
                code: "InternalError".into(),
            },
        );
    });
    running.collector.run_cycle().await;
    // The accounts file's folder lives as long as the exporter.
    (running, dir)
}

/// The page: the series not built yet are absent, every account's
/// `account_up` is right, and every series the dashboard and the rules read
/// is there.
async fn the_page_has_what_the_rules_and_panels_read(
    addr: std::net::SocketAddr,
    rules: &[Rule],
    panels: &[(String, Vec<common::PanelQuery>)],
) {
    // The page: the series not built yet are absent, and every other series
    // the dashboard and the rules read is there. Names, tags and activation
    // codes come from walks beside the cycle, a moment later.
    let page = common::eventually_some("names and codes", Duration::from_secs(10), || async {
        let page = common::scrape(addr).await;
        (page.contains("aliyun_cloud_assistant_instance_info{")
            && page.contains("aliyun_cloud_assistant_activation_instances{"))
        .then_some(page)
    })
    .await;
    let families: BTreeSet<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for (metric, _) in NOT_YET_EXPORTED {
        assert!(
            !families.contains(metric),
            "{metric} is exported now: take it off NOT_YET_EXPORTED (and its panels and rules)"
        );
    }
    let samples = common::parse_metrics(&page);
    for (account, up) in [
        ("alpha", 1.0),
        ("beta", 1.0),
        ("gamma", 1.0),
        ("delta", 0.0),
    ] {
        assert_eq!(
            common::value(
                &samples,
                "aliyun_cloud_assistant_exporter_account_up",
                &[("account", account)]
            ),
            Some(up),
            "account_up of {account}"
        );
    }
    let recorded: BTreeSet<&str> = rules.iter().filter_map(|r| r.record.as_deref()).collect();
    let mut read_names = BTreeSet::new();
    for r in rules {
        read_names.extend(metric_names(&r.expr));
    }
    for (_, queries) in panels {
        for q in queries {
            read_names.extend(metric_names(&q.expr));
        }
    }
    for name in &read_names {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(f)))
            .unwrap_or(name);
        assert!(
            families.contains(family)
                || recorded.contains(name.as_str())
                || NOT_YET_EXPORTED.iter().any(|(m, _)| m == name),
            "{name} is read by the dashboard or the rules but is not on the page"
        );
    }
}

/// Prometheus records every rule (or leaves the listed ones empty), loaded
/// the same rules, and each alert expression runs.
async fn prometheus_loads_and_records_every_rule(api: &PromApi, rules: &[Rule]) {
    let empty_rule = |name: &str| EMPTY_RULES.iter().any(|(r, _)| *r == name);
    for r in rules.iter().filter(|r| r.record.is_some()) {
        if waits_for(r.name()) || empty_rule(r.name()) {
            let got = api
                .query(r.name())
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", r.name()));
            assert!(
                !has_data(&got),
                "{} has data: update NOT_YET_EXPORTED or EMPTY_RULES",
                r.name()
            );
        } else {
            api.wait_for_data(r.name(), 15).await;
        }
    }

    // Prometheus loaded the same rules.
    let loaded = api.get("/api/v1/rules").await.expect("/api/v1/rules");
    let mut loaded_names = BTreeSet::new();
    for g in loaded["groups"].as_array().expect("rule groups") {
        for r in g["rules"].as_array().expect("rules") {
            assert_ne!(r["health"], "err", "{r}");
            loaded_names.insert(r["name"].as_str().expect("rule name").to_string());
        }
    }
    let names: BTreeSet<String> = rules.iter().map(|r| r.name().to_string()).collect();
    assert_eq!(loaded_names, names, "rules Prometheus loaded");
    for r in rules {
        if let Err(e) = api.query(&r.expr).await {
            panic!("rule {}: {e}\n{}", r.name(), r.expr);
        }
    }
}

/// A rule or panel that waits for a family not exported yet.
fn waits_for(name: &str) -> bool {
    NOT_YET_EXPORTED.iter().any(|(_, ps)| ps.contains(&name))
}

/// Every panel query runs, and has data unless listed as empty.
async fn every_panel_query_runs(api: &PromApi, panels: &[(String, Vec<common::PanelQuery>)]) {
    let mut failures = Vec::new();
    for (title, queries) in panels {
        let allowed_empty = EMPTY_PANELS.iter().any(|(t, _)| t == title) || waits_for(title);
        let mut any = false;
        for q in queries {
            let expr = grafana_substitute(&q.expr, "1m", "15s");
            match api.query(&expr).await {
                Err(err) => failures.push(format!("{title}: {err}\n  {expr}")),
                Ok(r) => any |= has_data(&r),
            }
        }
        if !any && !allowed_empty {
            failures.push(format!("{title}: no data"));
        }
        if any && allowed_empty {
            failures.push(format!(
                "{title}: has data, but is listed as empty (EMPTY_PANELS or NOT_YET_EXPORTED)"
            ));
        }
    }
    assert!(failures.is_empty(), "panels:\n{}", failures.join("\n"));
}

/// The alerts: exactly these names and labels, pending or firing, the
/// heartbeat edge right, pages never about one instance. Returns them.
async fn exactly_the_expected_alerts(api: &PromApi, rules: &[Rule], f: &LiveFleets) -> Vec<Value> {
    let (now, failing, edge) = (f.now, f.failing, &f.edge);
    let (alpha, beta) = (&f.alpha, &f.beta);
    let want = expected_alerts(
        &[("alpha", alpha.fleet()), ("beta", beta.fleet())],
        now,
        failing,
    );
    for (name, keys) in &want {
        assert!(
            !keys.is_empty() || name.ends_with("High") || name.ends_with("Many"),
            "the fleets have no case for {name}"
        );
        eprintln!("{name}: {} expected", keys.len());
    }
    // Heartbeats 299, 300 and 301 seconds old: only the last is stale; all
    // three agents are down, one alert each.
    for (id, age) in edge {
        let key = vec!["alpha".to_string(), "cn-hangzhou".to_string(), id.clone()];
        assert!(
            want["CloudAssistantAgentDown"].contains(&key),
            "{id}: heartbeat {age}s old, agent down"
        );
        let stale = api
            .query(&format!(
                r#"cloud_assistant:agent_heartbeat_stale:age_seconds{{account="alpha",instance_id="{id}"}}"#
            ))
            .await
            .expect("query");
        assert_eq!(has_data(&stale), *age > 300, "{id}: heartbeat {age}s old");
    }
    // API errors come and go with the rate window; only beta has any.
    let tolerated = ["CloudAssistantApiErrors"];
    let deadline = Instant::now() + Duration::from_secs(20);
    let alerts = loop {
        let data = api.get("/api/v1/alerts").await.expect("/api/v1/alerts");
        let alerts = data["alerts"].as_array().cloned().unwrap_or_default();
        let done = want
            .iter()
            .all(|(name, keys)| active(&alerts, name) == *keys);
        if done || Instant::now() > deadline {
            break alerts;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for (name, keys) in &want {
        let got = active(&alerts, name);
        let missing: Vec<_> = keys.difference(&got).collect();
        let extra: Vec<_> = got.difference(keys).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name}: {} expected, {} active; missing {missing:?}; unexpected {extra:?}",
            keys.len(),
            got.len()
        );
    }
    let by_name: BTreeMap<&str, &Rule> = rules
        .iter()
        .filter_map(|r| Some((r.alert.as_deref()?, r)))
        .collect();
    for a in &alerts {
        let l = &a["labels"];
        let name = l["alertname"].as_str().expect("alertname");
        assert!(
            want.contains_key(name) || (tolerated.contains(&name) && l["account"] == "beta"),
            "unexpected alert {a}"
        );
        // Pages are never about one instance.
        assert!(
            l["severity"] != "critical" || l["instance_id"].is_null(),
            "a per-instance page: {a}"
        );
        if !l["instance_id"].is_null() {
            assert!(by_name[name].keep_firing_for.is_some(), "{name}");
            let description = a["annotations"]["description"].as_str().unwrap_or("");
            for label in ["instance_id", "region_id", "account"] {
                let v = l[label].as_str().expect("label");
                assert!(description.contains(v), "{name}: {description} lacks {v}");
            }
        }
    }

    alerts
}

/// Sends `alerts` (labels and annotations) to an Alertmanager running the
/// example config and waits until it has them all and suppresses exactly
/// those `inhibited` says. Returns how many it shows.
async fn alertmanager_suppresses(
    alertmanager: &std::path::Path,
    alerts: &[Value],
    inhibited: &dyn Fn(&Value) -> bool,
) -> usize {
    let dir = TempDir::new("alertmanager");
    let storage = dir.path().join("data");
    let am = ServerProcess::launch(
        alertmanager,
        dir,
        &[
            format!(
                "--config.file={}",
                repo_file("dashboards/alertmanager.example.yml").display()
            ),
            format!("--storage.path={}", storage.display()),
            "--cluster.listen-address=".to_string(),
        ],
        "/-/ready",
    )
    .await;
    let posted: Vec<Value> = alerts
        .iter()
        .map(|a| {
            serde_json::json!({
                "labels": a["labels"],
                "annotations": a["annotations"],
            })
        })
        .collect();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/v2/alerts", am.base))
        .header("content-type", "application/json")
        .body(serde_json::to_string(&posted).expect("json"))
        .send()
        .await
        .expect("post alerts");
    assert!(r.status().is_success(), "{}", r.status());
    // Inhibition settles as Alertmanager takes the alerts in.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = http
            .get(format!("{}/api/v2/alerts", am.base))
            .send()
            .await
            .expect("alerts")
            .text()
            .await
            .expect("body");
        let got: Vec<Value> = serde_json::from_str(&body).expect("json");
        let wrong: Vec<String> = got
            .iter()
            .filter(|a| {
                let suppressed = a["status"]["inhibitedBy"]
                    .as_array()
                    .is_some_and(|v| !v.is_empty());
                suppressed != inhibited(&a["labels"])
            })
            .map(|a| a["labels"].to_string())
            .collect();
        if got.len() == posted.len() && wrong.is_empty() {
            let shown = got
                .iter()
                .filter(|a| a["status"]["state"] == "active")
                .count();
            eprintln!("Alertmanager: {} alerts, {shown} shown", got.len());
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager: {} of {} alerts; inhibition differs for {wrong:?}",
            got.len(),
            posted.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The label values of `keys`, in order ("" when absent).
fn key_of(l: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|k| l[*k].as_str().unwrap_or("").to_string())
        .collect()
}

/// The alerts Prometheus raised against the live fleets, through the
/// example config: a region-wide page stands for the warnings of its
/// instances, an account that cannot be collected for its regions'.
async fn check_inhibition(alertmanager: &std::path::Path, alerts: &[Value]) {
    let firing = |name: &str, keys: &[&str]| -> BTreeSet<Vec<String>> {
        alerts
            .iter()
            .map(|a| &a["labels"])
            .filter(|l| l["alertname"] == name)
            .map(|l| key_of(l, keys))
            .collect()
    };
    const REGION: &[&str] = &["job", "account", "region_id"];
    const ACCOUNT: &[&str] = &["job", "account"];
    let high = firing("CloudAssistantAgentsDownHigh", REGION);
    let many = firing(
        "CloudAssistantPluginCrashedMany",
        &["job", "account", "region_id", "plugin"],
    );
    let managed = firing("CloudAssistantManagedInstancesDisconnectedHigh", REGION);
    let down = firing("CloudAssistantAccountDown", ACCOUNT);
    let blind = firing("CloudAssistantAccountBlind", ACCOUNT);
    let whole: BTreeSet<Vec<String>> = firing("CloudAssistantExporterBlind", &["job"])
        .into_iter()
        .chain(firing("CloudAssistantCollectionStalled", &["job"]))
        .collect();
    assert!(
        !firing("CloudAssistantAgentDown", REGION).is_empty(),
        "the fleets have agents down"
    );
    // An agent that is down runs no scheduled task: its task alerts are
    // muted by its own.
    const INSTANCE: &[&str] = &["job", "account", "region_id", "instance_id"];
    let agents_down = firing("CloudAssistantAgentDown", INSTANCE);
    // What the inhibit rules say, computed from the labels.
    let inhibited = |l: &Value| -> bool {
        let job = key_of(l, &["job"]);
        match l["alertname"].as_str().unwrap_or("") {
            "CloudAssistantAgentDown" => high.contains(&key_of(l, REGION)),
            "CloudAssistantPluginCrashed" => {
                many.contains(&key_of(l, &["job", "account", "region_id", "plugin"]))
            }
            "CloudAssistantManagedInstanceDisconnected" => managed.contains(&key_of(l, REGION)),
            "CloudAssistantRegionStale" | "CloudAssistantPluginSweepFailing" => {
                blind.contains(&key_of(l, ACCOUNT)) || whole.contains(&job)
            }
            "CloudAssistantApiErrors" => {
                down.contains(&key_of(l, ACCOUNT))
                    || blind.contains(&key_of(l, ACCOUNT))
                    || firing("CloudAssistantExporterBlind", &["job"]).contains(&job)
            }
            "CloudAssistantScheduledTaskFailed" => {
                high.contains(&key_of(l, REGION)) || agents_down.contains(&key_of(l, INSTANCE))
            }
            "CloudAssistantScheduledTaskNotRunning" => {
                high.contains(&key_of(l, REGION))
                    || agents_down.contains(&key_of(l, INSTANCE))
                    || blind.contains(&key_of(l, ACCOUNT))
                    || whole.contains(&job)
            }
            _ => false,
        }
    };
    let shown = alertmanager_suppresses(alertmanager, alerts, &inhibited).await;
    assert!(shown > 0);
}

/// An alert's labels, and whether the example config mutes it.
type InhibitCase = (&'static [(&'static str, &'static str)], bool);

/// An account that cannot be had fails its calls.
const ACCOUNT_DOWN_MUTES: &[InhibitCase] = &[
    (
        &[
            ("alertname", "CloudAssistantAccountDown"),
            ("job", "ca-a"),
            ("account", "x"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantApiErrors"),
            ("job", "ca-a"),
            ("account", "x"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantApiErrors"),
            ("job", "ca-b"),
            ("account", "x"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantApiErrors"),
            ("job", "ca-a"),
            ("account", "y"),
        ],
        false,
    ),
];

/// A stalled exporter: its job's region alerts.
const STALLED_EXPORTER_MUTES: &[InhibitCase] = &[
    (
        &[
            ("alertname", "CloudAssistantCollectionStalled"),
            ("job", "ca-a"),
            ("instance", "a-0:9791"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantRegionStale"),
            ("job", "ca-a"),
            ("account", "y"),
            ("region_id", "cn-hangzhou"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantPluginSweepFailing"),
            ("job", "ca-a"),
            ("account", "y"),
            ("region_id", "cn-hangzhou"),
            ("plugin", "p"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantRegionStale"),
            ("job", "ca-b"),
            ("account", "y"),
            ("region_id", "cn-hangzhou"),
        ],
        false,
    ),
];

/// A region-wide page: its instances' warnings and delivery failures.
const REGION_PAGE_MUTES: &[InhibitCase] = &[
    (
        &[
            ("alertname", "CloudAssistantAgentsDownHigh"),
            ("job", "ca-a"),
            ("account", "x"),
            ("region_id", "cn-shanghai"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantAgentDown"),
            ("job", "ca-a"),
            ("account", "x"),
            ("region_id", "cn-shanghai"),
            ("instance_id", "i-1"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantCommandDeliveryFailing"),
            ("job", "ca-a"),
            ("account", "x"),
            ("region_id", "cn-shanghai"),
            ("error_code", "ClientNotRunning"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantAgentDown"),
            ("job", "ca-b"),
            ("account", "x"),
            ("region_id", "cn-shanghai"),
            ("instance_id", "i-1"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantAgentDown"),
            ("job", "ca-a"),
            ("account", "x"),
            ("region_id", "cn-beijing"),
            ("instance_id", "i-2"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantPluginCrashedMany"),
            ("job", "ca-a"),
            ("account", "x"),
            ("region_id", "cn-shanghai"),
            ("plugin", "p"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantPluginCrashed"),
            ("job", "ca-a"),
            ("account", "x"),
            ("region_id", "cn-shanghai"),
            ("instance_id", "i-3"),
            ("plugin", "p"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantPluginCrashed"),
            ("job", "ca-a"),
            ("account", "x"),
            ("region_id", "cn-shanghai"),
            ("instance_id", "i-3"),
            ("plugin", "q"),
        ],
        false,
    ),
];

/// An agent that is down: its scheduled tasks.
const AGENT_DOWN_MUTES: &[InhibitCase] = &[
    (
        &[
            ("alertname", "CloudAssistantAgentDown"),
            ("job", "ca-e"),
            ("account", "x"),
            ("region_id", "cn-hangzhou"),
            ("instance_id", "i-9"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantScheduledTaskFailed"),
            ("job", "ca-e"),
            ("account", "x"),
            ("region_id", "cn-hangzhou"),
            ("instance_id", "i-9"),
            ("invoke_id", "t-1"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantScheduledTaskNotRunning"),
            ("job", "ca-e"),
            ("account", "x"),
            ("region_id", "cn-hangzhou"),
            ("instance_id", "i-8"),
            ("invoke_id", "t-1"),
        ],
        false,
    ),
];

/// A blind account: its regions and failing calls; a blind job: its
/// accounts.
const BLIND_ACCOUNT_OR_JOB_MUTES: &[InhibitCase] = &[
    (
        &[
            ("alertname", "CloudAssistantAccountBlind"),
            ("job", "ca-c"),
            ("account", "z"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantRegionStale"),
            ("job", "ca-c"),
            ("account", "z"),
            ("region_id", "cn-hangzhou"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantApiErrors"),
            ("job", "ca-c"),
            ("account", "z"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantRegionStale"),
            ("job", "ca-c"),
            ("account", "w"),
            ("region_id", "cn-hangzhou"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantExporterBlind"),
            ("job", "ca-d"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantAccountBlind"),
            ("job", "ca-d"),
            ("account", "w"),
        ],
        true,
    ),
];

/// A target down: the shard count of its job, its own failing scrapes.
const TARGET_DOWN_MUTES: &[InhibitCase] = &[
    (
        &[
            ("alertname", "CloudAssistantExporterDown"),
            ("job", "ca-f"),
            ("instance", "f-0:9791"),
        ],
        false,
    ),
    (
        &[
            ("alertname", "CloudAssistantShardsMissing"),
            ("job", "ca-f"),
            ("count", "3"),
            ("reporting", "2"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantScrapesFailing"),
            ("job", "ca-f"),
            ("instance", "f-0:9791"),
        ],
        true,
    ),
    (
        &[
            ("alertname", "CloudAssistantScrapesFailing"),
            ("job", "ca-f"),
            ("instance", "f-1:9791"),
        ],
        false,
    ),
];

/// Each inhibit rule of the example config, on alerts made for it: the
/// source mutes its targets of the same job (and account, region, instance
/// or plugin as the rule says), and nothing of another job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_example_inhibits_within_a_job() {
    let Some(alertmanager) = common::tool("prometheus-alertmanager", "prometheus-alertmanager")
    else {
        return;
    };
    let cases = [
        ACCOUNT_DOWN_MUTES,
        STALLED_EXPORTER_MUTES,
        REGION_PAGE_MUTES,
        AGENT_DOWN_MUTES,
        BLIND_ACCOUNT_OR_JOB_MUTES,
        TARGET_DOWN_MUTES,
    ]
    .concat();
    let alerts: Vec<Value> = cases
        .iter()
        .map(|(labels, _)| {
            let labels: serde_json::Map<String, Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect();
            serde_json::json!({ "labels": labels, "annotations": {} })
        })
        .collect();
    let muted = |l: &Value| -> bool {
        cases
            .iter()
            .find(|(labels, _)| {
                labels.len() == l.as_object().map_or(0, |o| o.len())
                    && labels.iter().all(|(k, v)| l[*k] == *v)
            })
            .map(|(_, m)| *m)
            .unwrap_or_else(|| panic!("an alert not posted: {l}"))
    };
    let shown = alertmanager_suppresses(&alertmanager, &alerts, &muted).await;
    assert_eq!(shown, cases.iter().filter(|(_, m)| !m).count());
}
