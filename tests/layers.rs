//! The architecture, checked: data flows one way (files -> config -> run -> engine -> steps ->
//! aws), the engine carries the steps' context without naming AWS or HTTP, and no two files
//! import each other. Reads the source tree; a new import against the grain fails here.

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
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + 7..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &after[name.len()..];
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The top-level module a file belongs to (`src/steps/rds_fence.rs` -> `steps`).
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

#[test]
fn arrows_point_one_way() {
    let forbidden: &[(&str, &[&str])] = &[
        (
            "config",
            &[
                "steps",
                "engine",
                "journal",
                "aws",
                "run",
                "topology",
                "probe",
                "readiness",
            ],
        ),
        (
            "aws",
            &[
                "steps",
                "engine",
                "journal",
                "run",
                "topology",
                "probe",
                "readiness",
            ],
        ),
        (
            "journal",
            &["steps", "engine", "aws", "run", "topology", "probe"],
        ),
        (
            "steps",
            &["engine", "run", "topology", "probe", "readiness"],
        ),
        ("engine", &["aws", "run", "topology", "probe", "readiness"]),
        (
            "probe",
            &["steps", "engine", "run", "topology", "readiness"],
        ),
        ("topology", &["steps", "engine", "run", "probe"]),
        // Reports read journals alone: no AWS, no runs, no observation.
        (
            "report",
            &["steps", "aws", "run", "topology", "probe", "readiness"],
        ),
    ];
    let mut broken = vec![];
    for (module, not) in forbidden {
        for (path, text) in files_of(module) {
            for r in crate_refs(&text) {
                if not.contains(&r.as_str()) {
                    broken.push(format!("{} imports crate::{r}", path.display()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the grain:\n{}",
        broken.join("\n")
    );
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
