//! The module layout stays as docs/design.md draws it: imports between the
//! top-level modules of `src/` run one way (no cycle, `client` never imports
//! `api`, `config` never imports `render`), each module imports only what its
//! line in the design's dependency block shows, and the design's table
//! lists exactly the files of `src/`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::repo_file;

/// Who imports whom: module → the modules it imports → one file that does.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// Every file below `dir`, as paths from the repository root.
fn files_below(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_below(&path, out);
        } else {
            let rel = path.strip_prefix(repo_file("")).expect("in the repository");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn src_files() -> Vec<String> {
    let mut out = Vec::new();
    files_below(&repo_file("src"), &mut out);
    out.retain(|f| f.ends_with(".rs"));
    out.sort();
    out
}

/// The top-level module a file of `src/` belongs to (`main` for the
/// binary's own file); `None` for the library root and other binaries.
fn module_of(file: &str) -> Option<String> {
    let rel = file.strip_prefix("src/")?;
    let first = rel.split('/').next()?;
    match first.strip_suffix(".rs") {
        Some("lib") => None,
        Some(name) => Some(name.to_string()),
        None if first == "bin" => None,
        None => Some(first.to_string()),
    }
}

/// The top-level modules `code` reaches through `crate::` (or, in the
/// binary, `cloud_assistant_exporter::`) paths: `use` lines, grouped
/// imports (`crate::{a, b::c}`) and paths in expressions alike. Comments
/// are skipped.
fn imports(code: &str) -> BTreeSet<String> {
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    for root in ["crate::", "cloud_assistant_exporter::"] {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(root) {
            let before = rest[..i].chars().next_back();
            rest = &rest[i + root.len()..];
            // `$crate::` is the same crate; `foo_crate::` is not a path of it.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                // The group up to its closing brace, split at its own commas;
                // of each item, the leading name.
                let (mut depth, mut items, mut item) = (0, Vec::new(), String::new());
                for c in group.chars() {
                    match c {
                        '}' if depth == 0 => break,
                        ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        c => item.push(c),
                    }
                }
                items.push(item);
                for item in items {
                    out.insert(
                        item.trim()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect(),
                    );
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name);
            }
        }
    }
    out.into_iter()
        .map(|n| n.split("::").next().unwrap_or("").to_string())
        .filter(|n| !n.is_empty() && n != "self")
        .collect()
}

/// The imports between the top-level modules of `src/`.
fn graph() -> Graph {
    let mut g = Graph::new();
    for file in src_files() {
        let Some(module) = module_of(&file) else {
            continue;
        };
        let code = std::fs::read_to_string(repo_file(&file)).expect("read");
        let deps = g.entry(module.clone()).or_default();
        for dep in imports(&code) {
            if dep != module {
                deps.entry(dep).or_insert_with(|| file.clone());
            }
        }
    }
    g
}

/// A cycle of `g`, as the modules along it (the first again at the end).
fn cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut c = path[at..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for dep in g.get(m).into_iter().flat_map(|d| d.keys()) {
            if let Some(c) = visit(g, dep, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|m| visit(g, m, &mut Vec::new(), &mut done))
}

/// A section of docs/design.md: from its `## ` heading to the next.
fn design_section(heading: &str) -> String {
    let text = std::fs::read_to_string(repo_file("docs/design.md")).expect("docs/design.md");
    let start = text
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("docs/design.md has no section {heading:?}"));
    let body = &text[start + 1..];
    let end = body[3..].find("\n## ").map_or(body.len(), |i| i + 3);
    body[..end].to_string()
}

/// The design's dependency block: each module's allowed imports, and the
/// leaves (which may import only each other).
fn documented() -> (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>) {
    let section = design_section("Dependencies run one way");
    let block = section
        .split("```text\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a text block in the dependency section");
    let mut rules = BTreeMap::new();
    let mut leaves = BTreeSet::new();
    let mut lines = block.lines();
    while let Some(line) = lines.next() {
        if let Some((module, deps)) = line.split_once('→') {
            // A note in parentheses is prose, not a module.
            let deps = deps.split('(').next().unwrap_or("");
            let deps = deps
                .split(',')
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect();
            rules.insert(module.trim().to_string(), deps);
        } else if line.starts_with("leaves") {
            let names = lines.next().expect("the leaves' line");
            leaves = names.split(',').map(|n| n.trim().to_string()).collect();
        }
    }
    assert!(!rules.is_empty() && !leaves.is_empty(), "{block}");
    (rules, leaves)
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = graph();
    assert!(g.len() >= 15, "only {} modules found: {g:?}", g.len());
    if let Some(c) = cycle(&g) {
        let hops: Vec<String> = c
            .windows(2)
            .map(|w| format!("{} → {} ({})", w[0], w[1], g[&w[0]][&w[1]]))
            .collect();
        panic!("import cycle: {}", hops.join(", "));
    }
}

#[test]
fn client_knows_no_api_and_config_no_render() {
    let g = graph();
    for (from, to) in [("client", "api"), ("config", "render")] {
        assert!(
            !g[from].contains_key(to),
            "{from} imports {to} ({}): a helper both need lives in a leaf",
            g[from][to]
        );
    }
}

#[test]
fn imports_are_the_ones_the_design_shows() {
    let g = graph();
    let (rules, leaves) = documented();
    for (module, deps) in &g {
        let allowed = if leaves.contains(module) {
            &BTreeSet::new()
        } else {
            rules.get(module).unwrap_or_else(|| {
                panic!("{module} is neither a leaf nor on a line of the design's dependency block")
            })
        };
        for (dep, file) in deps {
            assert!(
                allowed.contains(dep) || leaves.contains(dep),
                "{file}: {module} imports {dep}, which docs/design.md does not show; \
                 change the code or the design"
            );
        }
        for dep in allowed {
            assert!(
                deps.contains_key(dep),
                "docs/design.md: {module} → {dep}, but {module} does not import {dep}"
            );
        }
    }
    for module in rules.keys().chain(&leaves) {
        assert!(
            g.contains_key(module),
            "docs/design.md names {module}, which src/ lacks"
        );
    }
}

#[test]
fn the_layout_table_lists_every_file() {
    let section = design_section("Module layout");
    let listed: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|p| p.starts_with("src/"))
        .map(str::to_string)
        .collect();
    let files: BTreeSet<String> = src_files().into_iter().collect();
    let missing: Vec<_> = files.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&files).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "docs/design.md's layout: not listed {missing:?}; listed but not in src/ {gone:?}"
    );
}

#[test]
fn the_import_reader_finds_every_module() {
    let code = "use crate::a::b;\n\
                use crate::{c, d::{e, f}, self as x};\n\
                let v = crate::g::h();\n\
                // crate::commented::out\n\
                impl $crate::i::Rule for X {}\n\
                use other_crate::j;\n\
                use cloud_assistant_exporter::{k, l::m};\n";
    let want: BTreeSet<String> = ["a", "c", "d", "g", "i", "k", "l"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(imports(code), want);
    let mut g = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(from.into())
            .or_default()
            .insert(to.into(), String::new());
    }
    assert_eq!(
        cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    g.get_mut("c").expect("c").remove("a");
    assert_eq!(cycle(&g), None);
}
