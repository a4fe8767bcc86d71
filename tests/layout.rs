//! The module layout stays as docs/design.md draws it: imports between the
//! top-level modules of `src/` run one way (no cycle, `client` never imports
//! `api`, `config` never imports `render`), each module imports only what its
//! line in the design's dependency block shows, and the design's table
//! lists exactly the files of `src/`. Between the files of `src/` there is
//! no import cycle and no file is over 600 lines, but for the ones listed
//! below, which may only leave their lists.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::repo_file;

/// The import cycles between files of `src/` that exist and are being
/// taken apart, each as the set of files that import each other round. The
/// list only shrinks: a cycle not on it fails, and so does an entry that is
/// no longer exactly a cycle of the tree (take it off, or write the smaller
/// set that is left).
const KNOWN_FILE_CYCLES: &[&[&str]] = &[];

/// The most lines a file of `src/` may have.
const MAX_FILE_LINES: usize = 600;

/// The files of `src/` over [`MAX_FILE_LINES`] today, being split. The list
/// only shrinks: another long file fails, and so does a listed one that is
/// short enough now or gone (take it off).
const KNOWN_LONG_FILES: &[&str] = &[];

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
                // `$crate::some_macro!` names a macro, not a module.
                if rest[name.len()..].starts_with('!') {
                    continue;
                }
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

/// Who imports whom among files: file → the files it imports → the first
/// path that does.
type FileGraph = BTreeMap<String, BTreeMap<String, String>>;

/// `code` with comments, string and char literals blanked out (newlines
/// kept), so that braces and paths in them are not read as code.
fn code_only(code: &str) -> String {
    let c: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && !prev_ident
            && matches!(c.get(i + 1), Some('"' | '#'))
            && c[i + 1..].iter().find(|&&ch| ch != '#') == Some(&'"')
        {
            // A raw string: r#"…"# with as many hashes at each end.
            let hashes = c[i + 1..].iter().take_while(|&&ch| ch == '#').count();
            i += 2 + hashes;
            while i < c.len() {
                if c[i] == '"'
                    && c[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&ch| ch == '#')
                        .count()
                        == hashes
                {
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = c.get(i) {
                    blank(&mut out, ch);
                }
                i += 1;
            }
            i += 1;
        } else if c[i] == '\'' && c.get(i + 1) == Some(&'\\') {
            // An escaped char literal: '\n', '\'', '\u{7b}'.
            i += 2;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The paths of a use tree starting at `c[*i]` (after a root such as
/// `super::`), each as its segments: `a::{b, c::{d, self}}` gives `a::b`,
/// `a::c::d` and `a::c`.
fn use_tree(c: &[char], i: &mut usize) -> Vec<Vec<String>> {
    let skip_space = |i: &mut usize| {
        while *i < c.len() && c[*i].is_whitespace() {
            *i += 1;
        }
    };
    let mut segments = Vec::new();
    loop {
        skip_space(i);
        if c.get(*i) == Some(&'{') {
            *i += 1;
            let mut out = Vec::new();
            loop {
                skip_space(i);
                match c.get(*i) {
                    Some('}') => {
                        *i += 1;
                        break;
                    }
                    Some(',') => *i += 1,
                    None => break,
                    _ => {
                        let before = *i;
                        for tail in use_tree(c, i) {
                            out.push(segments.iter().cloned().chain(tail).collect());
                        }
                        if *i == before {
                            *i += 1;
                        }
                    }
                }
            }
            return out;
        }
        let start = *i;
        while *i < c.len() && (c[*i].is_alphanumeric() || c[*i] == '_') {
            *i += 1;
        }
        if *i == start {
            break;
        }
        let name: String = c[start..*i].iter().collect();
        if name != "self" {
            segments.push(name);
        }
        if c.get(*i) == Some(&':') && c.get(*i + 1) == Some(&':') {
            *i += 2;
        } else {
            break;
        }
    }
    vec![segments]
}

/// The module path of a file of `src/` (`src/a/b.rs` and `src/a/b/mod.rs`
/// are `a::b`, `src/lib.rs` is the root); `None` for the binaries.
fn module_path(file: &str) -> Option<Vec<String>> {
    let rel = file.strip_prefix("src/")?.strip_suffix(".rs")?;
    if rel == "main" || rel.starts_with("bin/") {
        return None;
    }
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    Some(parts)
}

/// The paths `code`, the text of a file at module `at`, names through
/// `crate::`, `self::` and `super::` (of its own module or of a `mod x { … }`
/// inside it) and `cloud_assistant_exporter::`, as absolute module paths of
/// the library; `crate::` of a binary (`at` is `None`) is not the library.
fn file_imports(code: &str, at: Option<&[String]>) -> Vec<(Vec<String>, String)> {
    let c: Vec<char> = code_only(code).chars().collect();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    // The inline modules open at this point, with the depth each opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut pending_mod: Option<String> = None;
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '{' => {
                if let Some(name) = pending_mod.take() {
                    inline.push((name, depth));
                }
                depth += 1;
                i += 1;
                continue;
            }
            '}' => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                i += 1;
                continue;
            }
            ';' => pending_mod = None,
            _ => {}
        }
        if !ident(c[i]) || (i > 0 && ident(c[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < c.len() && ident(c[i]) {
            i += 1;
        }
        let word: String = c[start..i].iter().collect();
        if word == "mod" {
            let mut j = i;
            while j < c.len() && c[j].is_whitespace() {
                j += 1;
            }
            let from = j;
            while j < c.len() && ident(c[j]) {
                j += 1;
            }
            pending_mod = Some(c[from..j].iter().collect());
            i = j;
            continue;
        }
        if !matches!(
            word.as_str(),
            "crate" | "self" | "super" | "cloud_assistant_exporter"
        ) || c.get(i) != Some(&':')
            || c.get(i + 1) != Some(&':')
        {
            continue;
        }
        let here: Option<Vec<String>> = at.map(|m| {
            m.iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect()
        });
        let base = match word.as_str() {
            "cloud_assistant_exporter" => Some(Vec::new()),
            "crate" => at.map(|_| Vec::new()),
            _ => here.clone(),
        };
        let text_start = start;
        i += 2;
        let first = word.as_str() == "super";
        for tail in use_tree(&c, &mut i) {
            let mut path = base.clone();
            let mut tail = tail.into_iter().peekable();
            if first {
                path = path.and_then(|mut p| p.pop().map(|_| p));
            }
            while tail.peek().map(String::as_str) == Some("super") {
                tail.next();
                path = path.and_then(|mut p| p.pop().map(|_| p));
            }
            if let Some(mut p) = path {
                p.extend(tail);
                let text: String = c[text_start..i].iter().collect();
                // A group is named by its root: `super::x::{…}`.
                let text = match text.split_once('{') {
                    Some((root, _)) => format!("{}{{…}}", root.trim_end()),
                    None => text.split_whitespace().collect(),
                };
                out.push((p, text));
            }
        }
    }
    out
}

/// The imports between the files of `src/`: each path resolved to the file
/// of its longest module prefix.
fn file_graph() -> FileGraph {
    let files = src_files();
    let by_module: BTreeMap<Vec<String>, String> = files
        .iter()
        .filter_map(|f| module_path(f).map(|m| (m, f.clone())))
        .collect();
    let mut g = FileGraph::new();
    for file in &files {
        let code = std::fs::read_to_string(repo_file(file)).expect("read");
        let at = module_path(file);
        let deps = g.entry(file.clone()).or_default();
        for (path, text) in file_imports(&code, at.as_deref()) {
            let target = (0..=path.len())
                .rev()
                .find_map(|n| by_module.get(&path[..n]))
                .expect("the library root resolves every path");
            if target != file {
                deps.entry(target.clone()).or_insert(text);
            }
        }
    }
    g
}

/// The strongly connected parts of `g` with more than one file: the sets of
/// files that import each other round.
fn file_cycles(g: &FileGraph) -> Vec<BTreeSet<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(f) = todo.pop() {
            for dep in g.get(&f).into_iter().flat_map(|d| d.keys()) {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> = g.keys().map(|f| (f, reach(f))).collect();
    let mut out: Vec<BTreeSet<String>> = Vec::new();
    for (f, r) in &reached {
        if !r.contains(*f) || out.iter().any(|c| c.contains(*f)) {
            continue;
        }
        let part: BTreeSet<String> = r
            .iter()
            .filter(|o| reached.get(o).is_some_and(|back| back.contains(*f)))
            .cloned()
            .collect();
        out.push(part);
    }
    out
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
fn no_file_imports_one_that_imports_it_back_but_the_known_cycles() {
    let g = file_graph();
    assert!(g.len() >= 60, "only {} files found", g.len());
    let known: Vec<BTreeSet<String>> = KNOWN_FILE_CYCLES
        .iter()
        .map(|c| c.iter().map(|f| f.to_string()).collect())
        .collect();
    let found = file_cycles(&g);
    let mut errors = Vec::new();
    for c in found.iter().filter(|c| !known.contains(c)) {
        let hops: Vec<String> = c
            .iter()
            .flat_map(|f| {
                g[f].iter()
                    .filter(|(to, _)| c.contains(*to))
                    .map(move |(to, how)| format!("{f} → {to} ({how})"))
            })
            .collect();
        errors.push(format!(
            "import cycle between files: {}; KNOWN_FILE_CYCLES only shrinks",
            hops.join(", ")
        ));
    }
    for c in known.iter().filter(|c| !found.contains(c)) {
        errors.push(format!(
            "{c:?} is no longer a cycle as listed: take it off KNOWN_FILE_CYCLES \
             (or list the smaller cycle that is left)"
        ));
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn no_file_is_over_600_lines_but_the_known_long_ones() {
    let mut errors = Vec::new();
    let files = src_files();
    for file in &files {
        let lines = std::fs::read_to_string(repo_file(file))
            .expect("read")
            .lines()
            .count();
        let known = KNOWN_LONG_FILES.contains(&file.as_str());
        if lines > MAX_FILE_LINES && !known {
            errors.push(format!(
                "{file} has {lines} lines, over {MAX_FILE_LINES}: split it by job"
            ));
        } else if lines <= MAX_FILE_LINES && known {
            errors.push(format!(
                "{file} has {lines} lines now: take it off KNOWN_LONG_FILES"
            ));
        }
    }
    for file in KNOWN_LONG_FILES {
        if !files.iter().any(|f| f == file) {
            errors.push(format!("{file} is gone: take it off KNOWN_LONG_FILES"));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Errors are typed at every boundary: outside the simulator (a test
/// double) and the files' own test modules, no function returns
/// `Result<_, String>`.
#[test]
fn no_result_of_string_outside_the_simulator() {
    let mut errors = Vec::new();
    for file in src_files()
        .iter()
        .filter(|f| !f.starts_with("src/simulator/"))
    {
        let text = std::fs::read_to_string(repo_file(file)).expect("read");
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or("");
            if line.contains("Result<") && line.contains(", String>") {
                errors.push(format!("{file}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "Result<_, String> (give the module an error type):\n{}",
        errors.join("\n")
    );
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
                let n = $crate::not_a_module!();\n\
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

#[test]
fn the_file_import_reader_resolves_super_self_crate_and_inline_modules() {
    let code = "use super::x::{Y, z::{self, W}};\n\
                use crate::a::b;\n\
                // use crate::commented::out;\n\
                let s = \"crate::in_a_string\";\n\
                let c = '{';\n\
                fn f<'a>(v: &'a str) { self::g(v) }\n\
                mod tests {\n\
                    use super::*;\n\
                    use super::super::q;\n\
                }\n\
                let r = super::h();\n";
    let at = ["m".to_string(), "n".to_string()];
    let got: Vec<String> = file_imports(code, Some(&at))
        .into_iter()
        .map(|(p, _)| p.join("::"))
        .collect();
    assert_eq!(
        got,
        [
            "m::x::Y",
            "m::x::z",
            "m::x::z::W",
            "a::b",
            "m::n::g",
            "m::n",
            "m::q",
            "m::h"
        ]
    );
    // A binary's `crate::` is its own crate; the library's name is the library.
    let got: Vec<String> = file_imports("use crate::x; use cloud_assistant_exporter::y::Z;", None)
        .into_iter()
        .map(|(p, _)| p.join("::"))
        .collect();
    assert_eq!(got, ["y::Z"]);
    let mut g = FileGraph::new();
    for (from, to) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "d"),
    ] {
        g.entry(from.into())
            .or_default()
            .insert(to.into(), String::new());
    }
    let set = |fs: &[&str]| fs.iter().map(|f| f.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        file_cycles(&g),
        vec![set(&["a", "b", "c"]), set(&["d", "e"])]
    );
}
