//! The architecture, checked: every module's allowed arrows are listed (data flows one way:
//! files -> config -> run -> engine -> steps -> aws), grouped imports included; the engine
//! carries the steps' context without naming AWS or HTTP; and no two modules or files import
//! each other. Reads the source tree; a new import against the grain fails here, and a test
//! proves the checker catches a planted one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `crate::NAME` a file mentions, outside comments.
/// The first path segment after every `crate::`, including each item of a grouped import
/// (`use crate::{aws, config::env::Role};` names `aws` and `config`).
fn crate_refs(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    // Comments go first; a grouped import may span lines, so the rest is read as one text.
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            // Split the group's top level at commas (nested groups belong to their item).
            let (mut depth, mut item) = (0usize, String::new());
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(ch);
            }
            out.insert(ident(&item));
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out
}

fn module_of(p: &Path) -> Option<String> {
    let rel = p.strip_prefix(src()).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .to_string();
    Some(first.trim_end_matches(".rs").to_string())
}

/// Test code is a composition root (a test may wire layers together), so it is exempt.
fn is_test_code(p: &Path) -> bool {
    let s = p.to_string_lossy();
    s.ends_with("/tests.rs")
        || s.contains("/tests/")
        || s.contains("_tests/")
        || s.ends_with("_tests.rs")
}

fn files_of(module: &str) -> Vec<(PathBuf, String)> {
    let mut files = vec![];
    rust_files(&src(), &mut files);
    files
        .into_iter()
        .filter(|p| module_of(p).as_deref() == Some(module) && !is_test_code(p))
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect()
}

/// The arrows each module of the library may draw (`use crate::X`): everything else is
/// against the grain. Data flows one way: files -> config -> run -> engine -> steps -> aws.
/// `cli` and `main` are the binary (they use `drctl::`), `lib` declares the modules.
const ALLOWED: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("exit", &[]),
    ("retry", &[]),
    ("schedule", &["config"]),
    ("aws", &["config", "retry"]),
    ("journal", &["config", "exit"]),
    ("steps", &["aws", "config", "journal", "retry"]),
    ("engine", &["config", "journal", "retry", "steps"]),
    ("probe", &["config", "retry"]),
    ("topology", &["aws", "config", "exit", "journal"]),
    ("readiness", &["aws", "config", "topology"]),
    // Reports read journals alone: no AWS, no runs, no observation; kind facts come through
    // the engine's plan.
    ("report", &["config", "engine", "journal"]),
    // One file per user-facing command (issue 21): what a command decides, over the run.
    (
        "command",
        &[
            "aws",
            "config",
            "engine",
            "exit",
            "journal",
            "probe",
            "readiness",
            "report",
            "retry",
            "run",
            "schedule",
            "steps",
            "topology",
        ],
    ),
    (
        "run",
        &[
            "aws",
            "config",
            "engine",
            "exit",
            "journal",
            "probe",
            "readiness",
            "report",
            "retry",
            "schedule",
            "steps",
            "topology",
        ],
    ),
];
const BINARY: &[&str] = &["cli", "main", "lib"];

/// What `files` ((module, source text)) draw against [`ALLOWED`]: an arrow to a module not
/// allowed, a module with no place in the list, and a circle among the arrows drawn.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut out = vec![];
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in files {
        if BINARY.contains(&module.as_str()) {
            continue;
        }
        let Some(may) = allowed.get(module.as_str()) else {
            out.push(format!("module `{module}` has no place in ALLOWED"));
            continue;
        };
        // Only arrows to modules count (`crate::SCHEMA_VERSION` is an item of the root).
        for r in crate_refs(text)
            .into_iter()
            .filter(|r| r != module && allowed.contains_key(r.as_str()))
        {
            if !may.contains(&r.as_str()) {
                out.push(format!(
                    "`{module}` imports crate::{r}, an arrow against the grain"
                ));
            }
            graph.entry(module.clone()).or_default().insert(r);
        }
    }
    if let Some(c) = cycle(&graph) {
        out.push(format!("a circle: {}", c.join(" -> ")));
    }
    out.sort();
    out.dedup();
    out
}

/// Every library file's (module, text), tests left out.
fn library() -> Vec<(String, String)> {
    let mut files = vec![];
    rust_files(&src(), &mut files);
    files
        .into_iter()
        .filter(|p| !is_test_code(p))
        .filter_map(|p| Some((module_of(&p)?, std::fs::read_to_string(&p).unwrap())))
        .collect()
}

#[test]
fn arrows_point_one_way() {
    let v = violations(&library());
    assert!(v.is_empty(), "imports against the grain:\n{}", v.join("\n"));
}

#[test]
fn the_checker_reads_grouped_imports_and_catches_a_planted_arrow_and_circle() {
    assert_eq!(
        crate_refs("use crate::{aws, config::{env::Role, Source}};\nuse crate::journal::Event;"),
        ["aws", "config", "journal"].map(String::from).into()
    );
    let f = |m: &str, t: &str| (m.to_string(), t.to_string());
    // An upward arrow hidden in a grouped import.
    let v = violations(&[f("aws", "use crate::{config, steps::Step};")]);
    assert_eq!(
        v,
        ["`aws` imports crate::steps, an arrow against the grain"],
        "{v:?}"
    );
    // A circle: each arrow is against the grain, and the circle is named as such.
    let v = violations(&[
        f("schedule", "use crate::retry::x;"),
        f("retry", "use crate::{schedule};"),
    ]);
    assert!(v.iter().any(|x| x.starts_with("a circle: ")), "{v:?}");
    assert!(
        v.contains(&"`retry` imports crate::schedule, an arrow against the grain".to_string()),
        "{v:?}"
    );
    // A new module must be given its place.
    let v = violations(&[f("fleet", "use crate::config;")]);
    assert_eq!(v, ["module `fleet` has no place in ALLOWED"], "{v:?}");
    // Nothing planted, nothing found.
    assert!(violations(&[f("steps", "use crate::{aws, config};")]).is_empty());
}

#[test]
fn the_engine_carries_the_steps_context_without_naming_aws_or_http() {
    let mut named = vec![];
    for (path, text) in files_of("engine") {
        for (n, line) in text.lines().enumerate() {
            if line.contains("reqwest") || line.contains("crate::aws") {
                named.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(named.is_empty(), "{}", named.join("\n"));
}

/// Depth-first search for a cycle in a small graph.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        mark: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        mark.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match mark.get(m).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|p| p == m).unwrap();
                    return Some(path[start..].to_vec());
                }
                0 => {
                    if let Some(c) = visit(m, g, mark, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        mark.insert(n.to_string(), 2);
        None
    }
    let mut mark = BTreeMap::new();
    for n in graph.keys() {
        if mark.get(n).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, graph, &mut mark, &mut vec![]) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_two_modules_import_each_other() {
    let mut files = vec![];
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in files.iter().filter(|p| !is_test_code(p)) {
        let Some(m) = module_of(p) else { continue };
        if m == "main" || m == "cli" || m == "lib" {
            continue;
        }
        let refs = crate_refs(&std::fs::read_to_string(p).unwrap());
        let e = graph.entry(m.clone()).or_default();
        e.extend(refs.into_iter().filter(|r| *r != m));
    }
    assert_eq!(cycle(&graph), None, "{graph:#?}");
}

/// The first path segment after every `super::` (including each item of `super::{a, b}`)
/// and after `crate::MODULE::`.
fn sibling_refs(code: &str, module_path: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut prefixes = vec!["super::".to_string()];
    if !module_path.is_empty() {
        prefixes.push(format!("crate::{module_path}::"));
    }
    for prefix in &prefixes {
        let mut rest = code;
        while let Some(i) = rest.find(prefix.as_str()) {
            rest = &rest[i + prefix.len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let end = list.find('}').unwrap_or(list.len());
                for item in list[..end].split(',') {
                    out.insert(ident(item));
                }
            } else {
                out.insert(ident(rest));
            }
        }
    }
    out.remove("");
    out
}

#[test]
fn no_two_sibling_files_import_each_other() {
    // Within one directory, files other than mod.rs (which declares them) must not form a
    // cycle through `super::NAME` or `crate::MODULE::NAME`.
    let mut files = vec![];
    rust_files(&src(), &mut files);
    let mut dirs: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for p in files {
        dirs.entry(p.parent().unwrap().to_path_buf())
            .or_default()
            .push(p);
    }
    for (dir, files) in dirs {
        let names: BTreeSet<String> = files
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
            .filter(|n| n != "mod" && n != "lib" && n != "main")
            .collect();
        let module_path = dir
            .strip_prefix(src())
            .unwrap()
            .to_string_lossy()
            .replace('/', "::");
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in &files {
            let me = p.file_stem().unwrap().to_string_lossy().to_string();
            if !names.contains(&me) {
                continue;
            }
            let text = std::fs::read_to_string(p).unwrap();
            let code: String = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            let used = sibling_refs(&code, &module_path);
            let e = graph.entry(me.clone()).or_default();
            e.extend(used.into_iter().filter(|o| o != &me && names.contains(o)));
        }
        assert_eq!(cycle(&graph), None, "{}: {graph:#?}", dir.display());
    }
}
