//! The catalogue of bad input, `tests/bad/catalogue.yaml` (see `tests/bad/README.md`):
//! runbooks, environments, leases, journals, state directories and command lines that drctl
//! must refuse. Each case says the exit code and the words it must print, and every case checks
//! that nothing changed: the workspace (state dir included) byte for byte, and nothing written
//! beside it (a `..` must not escape). A `sandbox: true` case runs against one two-region
//! sandbox shared by all such cases, and also checks that the command made no mutating AWS call
//! and that the sandbox's state is the same after it as before.
//!
//! The data is in the catalogue; the damage a case can do after its setup (`tamper`) is a small
//! fixed set of actions, [`Tamper`], kept here.
mod common;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use common::sandbox::Sandbox;
use common::{drctl, text};
use serde::Deserialize;
use serde_json::Value;

/// The catalogue, relative to the crate root.
const CATALOGUE: &str = "tests/bad/catalogue.yaml";
/// Stands for the id of the workspace's only run, in `args` and in tamper paths.
const ONLY: &str = "ONLY";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    /// Text several cases share, through YAML anchors (`&fast`) and aliases (`*fast`).
    #[serde(default)]
    #[allow(dead_code)]
    shared: Option<serde::de::IgnoredAny>,
    cases: Vec<serde_saphyr::Spanned<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// Run against the shared sandbox: the workspace's drctl.yaml is the seeded one, and the
    /// sandbox must make no mutating call and keep its state.
    #[serde(default)]
    sandbox: bool,
    /// Files written into the workspace before anything runs (path relative to it).
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// Commands run first to make state (a finished run, a lease), before the snapshot.
    #[serde(default)]
    setup: Vec<Vec<String>>,
    /// Damage done after the setup, before the snapshot, in order.
    #[serde(default)]
    tamper: Vec<Tamper>,
    /// Environment variables for the checked command: a value sets one, null removes it.
    #[serde(default)]
    env: BTreeMap<String, Option<String>>,
    args: Vec<String>,
    exit: i32,
    says: Vec<String>,
    /// Where the case starts in the catalogue.
    #[serde(skip)]
    line: usize,
}

/// What a case may do to its workspace after the setup. Paths are relative to the workspace;
/// a path component `ONLY` stands for the id of its only run. The journal actions edit the
/// only run's `.drctl/runs/ONLY/journal.jsonl`; their line numbers count from 0, and negative
/// ones from the end (-1 is the last line).
#[derive(Deserialize, Debug)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Tamper {
    /// Write a file (its directory made): `text`, or `parts` joined (for bytes that are not
    /// UTF-8, or text too long to spell out).
    WriteFile {
        path: String,
        text: Option<String>,
        parts: Option<Vec<Part>>,
    },
    RemoveFile {
        path: String,
    },
    MakeDir {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    /// Replace every occurrence of `from` in a file by `to`; `from` must occur.
    ReplaceInFile {
        path: String,
        from: String,
        to: String,
    },
    /// Set a field of one journal event (the journal is written back one JSON event a line).
    SetJournalField {
        line: i64,
        field: String,
        value: Value,
    },
    /// Replace one line of the journal by any text.
    ReplaceJournalLine {
        line: i64,
        text: String,
    },
    RemoveJournalLine {
        line: i64,
    },
    SwapJournalLines {
        a: i64,
        b: i64,
    },
}

/// One piece of a written file: `text` or `bytes`, `repeat` times (default 1).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Part {
    text: Option<String>,
    bytes: Option<Vec<u8>>,
    #[serde(default = "once")]
    repeat: usize,
}

fn once() -> usize {
    1
}

/// The catalogue's cases, and what is wrong with the ones that cannot run (named, with their
/// line). A file that is not YAML, or not a catalogue at all, fails here.
fn load() -> (Vec<Case>, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CATALOGUE);
    let src = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the catalogue {CATALOGUE}: {e}"));
    let raw: RawCatalogue = serde_saphyr::from_str(&src)
        .unwrap_or_else(|e| panic!("{CATALOGUE} is not a catalogue of bad inputs: {e}"));
    let mut cases: Vec<Case> = vec![];
    let mut problems = vec![];
    for (i, spanned) in raw.cases.into_iter().enumerate() {
        let line = spanned.referenced.line() as usize;
        let name = spanned.value["name"]
            .as_str()
            .unwrap_or("(no name)")
            .to_string();
        let at = format!("{CATALOGUE}:{line}: case #{} `{name}`", i + 1);
        match serde_json::from_value::<Case>(spanned.value) {
            Ok(mut c) => {
                c.line = line;
                let wrong = check(&c);
                if !wrong.is_empty() {
                    problems.push(format!("{at}: {}", wrong.join("; ")));
                } else if cases.iter().any(|o| o.name == c.name) {
                    problems.push(format!("{at}: another case has this name"));
                } else {
                    cases.push(c);
                }
            }
            Err(e) => problems.push(format!("{at}: {e}")),
        }
    }
    (cases, problems)
}

/// What the catalogue cannot mean for one case.
fn check(c: &Case) -> Vec<String> {
    let mut wrong = vec![];
    if c.name.trim().is_empty() {
        wrong.push("an empty name".to_string());
    }
    if c.args.is_empty() {
        wrong.push("no args".into());
    }
    if c.exit <= 0 || c.exit > 255 {
        wrong.push(format!("exit {} (bad input is refused: 1..=255)", c.exit));
    }
    if c.says.is_empty() || c.says.iter().any(|s| s.is_empty()) {
        wrong.push("says must list the words the command prints, none empty".into());
    }
    let mut paths: Vec<&str> = c.files.keys().map(String::as_str).collect();
    for t in &c.tamper {
        match t {
            Tamper::WriteFile { path, text, parts } => {
                paths.push(path);
                if text.is_some() == parts.is_some() {
                    wrong.push(format!("write_file {path}: give `text` or `parts`"));
                }
                for p in parts.iter().flatten() {
                    if p.text.is_some() == p.bytes.is_some() {
                        wrong.push(format!("write_file {path}: a part has `text` or `bytes`"));
                    }
                }
            }
            Tamper::RemoveFile { path }
            | Tamper::MakeDir { path }
            | Tamper::ReplaceInFile { path, .. } => paths.push(path),
            Tamper::Rename { from, to } => paths.extend([from.as_str(), to.as_str()]),
            Tamper::SetJournalField { .. }
            | Tamper::ReplaceJournalLine { .. }
            | Tamper::RemoveJournalLine { .. }
            | Tamper::SwapJournalLines { .. } => paths.push(".drctl/runs/ONLY"),
        }
    }
    for p in &paths {
        let pb = Path::new(p);
        if p.is_empty()
            || pb.is_absolute()
            || pb.components().any(|c| matches!(c, Component::ParentDir))
        {
            wrong.push(format!("path {p:?} is not inside the workspace"));
        }
    }
    let uses_only = c.args.iter().any(|a| a == ONLY)
        || paths
            .iter()
            .any(|p| Path::new(p).components().any(|c| c.as_os_str() == ONLY));
    if uses_only && c.setup.is_empty() {
        wrong.push(format!(
            "{ONLY} stands for the run a setup makes, and there is none"
        ));
    }
    if c.env.keys().any(|k| k.is_empty() || k.contains('=')) {
        wrong.push("an env name is empty or has a `=`".into());
    }
    wrong
}

#[test]
fn every_bad_input_is_refused_clearly_and_changes_nothing() {
    let (all, mut failures) = load();
    let total = all.len() + failures.len();
    assert!(
        total >= 60,
        "{CATALOGUE} has {total} cases, wanted at least 60"
    );
    let on_sandbox = all.iter().filter(|c| c.sandbox).count();
    assert!(
        on_sandbox >= 3,
        "{CATALOGUE} has {on_sandbox} `sandbox: true` cases, wanted at least 3"
    );
    let sb = (on_sandbox > 0).then(Sandbox::start);
    let seeded = sb
        .as_ref()
        .map(|sb| std::fs::read_to_string(sb.env_file()).expect("the sandbox's seeded drctl.yaml"));
    for case in &all {
        let ctx = case.sandbox.then(|| {
            (
                sb.as_ref().expect("started when any case needs it"),
                seeded.as_deref().expect("read with the sandbox"),
            )
        });
        // A case that panics (a bug here, or a sandbox that stops answering) is reported with
        // the others.
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(case, ctx)))
            .unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(format!("the case panicked: {msg}"))
            });
        if let Err(e) = got {
            failures.push(format!("{} ({CATALOGUE}:{}): {e}", case.name, case.line));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Run one case: `Err` says everything that was wrong, and what drctl printed.
fn run_case(case: &Case, sandbox: Option<(&Sandbox, &str)>) -> Result<(), String> {
    // The workspace sits one level down, so anything that escapes it is seen.
    let outer = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ws = outer.path().join("ws");
    std::fs::create_dir_all(&ws).map_err(|e| e.to_string())?;
    let env = sandbox.map_or(common::LOCAL_ENV, |(_, seeded)| seeded);
    write(&ws.join("drctl.yaml"), env.as_bytes())?;
    for (p, content) in &case.files {
        write(&ws.join(p), content.as_bytes())?;
    }
    for args in &case.setup {
        setup(&ws, args)?;
    }
    for t in &case.tamper {
        tamper(&ws, t).map_err(|e| format!("tamper {t:?}: {e}"))?;
    }
    let mut args = vec![];
    for a in &case.args {
        args.push(if a == ONLY { only_run(&ws)? } else { a.clone() });
    }
    let state_before = match sandbox {
        Some((sb, _)) => {
            settled_calls(sb)?;
            sb.control("DELETE", "/_sandbox/calls", None);
            Some(sb.state())
        }
        None => None,
    };
    let before = snapshot(outer.path());
    let mut cmd = drctl(&ws);
    cmd.args(&args).stdin(std::process::Stdio::null());
    for (k, v) in &case.env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = common::run(&mut cmd);
    let after = snapshot(outer.path());
    let t = text(&out);
    let mut wrong = vec![];
    if out.status.code() != Some(case.exit) {
        wrong.push(format!(
            "exit {:?}, wanted {}",
            out.status.code(),
            case.exit
        ));
    }
    for s in &case.says {
        if !t.contains(s.as_str()) {
            wrong.push(format!("does not say {s:?}"));
        }
    }
    if t.contains("panicked") || t.contains("RUST_BACKTRACE") {
        wrong.push("panicked".into());
    }
    if before != after {
        let changed: Vec<_> = after
            .keys()
            .chain(before.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        wrong.push(format!("changed files: {changed:?}"));
    }
    if let (Some((sb, _)), Some(state_before)) = (sandbox, state_before) {
        let calls = settled_calls(sb)?;
        let mutating = &calls["mutating"];
        if mutating.as_object().is_none_or(|m| !m.is_empty()) {
            wrong.push(format!("made mutating AWS calls: {mutating}"));
        }
        let state_after = sb.state();
        if state_after != state_before {
            let mut paths = vec![];
            differences("", &state_before, &state_after, &mut paths);
            wrong.push(format!("changed the sandbox's state at {paths:?}"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{t}", wrong.join("; ")))
    }
}

fn write(p: &Path, content: &[u8]) -> Result<(), String> {
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(p, content).map_err(|e| format!("{}: {e}", p.display()))
}

/// Run a setup command. One that waits for an approval is stopped by a timeout and left paused.
fn setup(ws: &Path, args: &[String]) -> Result<(), String> {
    let mut child = drctl(ws)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("setup {args:?}: {e}"))?;
    let t = Instant::now();
    while child.try_wait().map_err(|e| e.to_string())?.is_none()
        && t.elapsed() < Duration::from_secs(3)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().map_err(|e| e.to_string())?.is_none() {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .map_err(|e| e.to_string())?;
        child.wait().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The id of the workspace's only run.
fn only_run(ws: &Path) -> Result<String, String> {
    let ids: Vec<String> = std::fs::read_dir(ws.join(".drctl/runs"))
        .map_err(|e| format!("{ONLY}: no runs dir: {e}"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    match ids.as_slice() {
        [id] => Ok(id.clone()),
        _ => Err(format!("{ONLY}: expected one run, found {ids:?}")),
    }
}

/// `path` in the workspace, with a component `ONLY` read as the only run's id.
fn resolve(ws: &Path, path: &str) -> Result<PathBuf, String> {
    let mut p = ws.to_path_buf();
    for c in Path::new(path).components() {
        if c.as_os_str() == ONLY {
            p.push(only_run(ws)?);
        } else {
            p.push(c);
        }
    }
    Ok(p)
}

fn tamper(ws: &Path, t: &Tamper) -> Result<(), String> {
    match t {
        Tamper::WriteFile { path, text, parts } => {
            let p = resolve(ws, path)?;
            let mut bytes = text.clone().unwrap_or_default().into_bytes();
            for part in parts.iter().flatten() {
                let piece = match (&part.text, &part.bytes) {
                    (Some(t), None) => t.as_bytes(),
                    (None, Some(b)) => b.as_slice(),
                    _ => return Err("a part has `text` or `bytes`".into()),
                };
                bytes.extend(piece.repeat(part.repeat));
            }
            write(&p, &bytes)
        }
        Tamper::RemoveFile { path } => {
            let p = resolve(ws, path)?;
            std::fs::remove_file(&p).map_err(io(&p))
        }
        Tamper::MakeDir { path } => {
            let p = resolve(ws, path)?;
            std::fs::create_dir(&p).map_err(io(&p))
        }
        Tamper::Rename { from, to } => {
            let (f, t) = (resolve(ws, from)?, resolve(ws, to)?);
            std::fs::rename(&f, &t).map_err(io(&f))
        }
        Tamper::ReplaceInFile { path, from, to } => {
            let p = resolve(ws, path)?;
            let text = std::fs::read_to_string(&p).map_err(io(&p))?;
            if !text.contains(from.as_str()) {
                return Err(format!("{} does not contain {from:?}", p.display()));
            }
            write(&p, text.replace(from.as_str(), to).as_bytes())
        }
        Tamper::SetJournalField { line, field, value } => edit_journal(ws, |j| {
            let i = index(*line, j.len())?;
            j[i][field.as_str()] = value.clone();
            Ok(())
        }),
        Tamper::RemoveJournalLine { line } => edit_journal(ws, |j| {
            j.remove(index(*line, j.len())?);
            Ok(())
        }),
        Tamper::SwapJournalLines { a, b } => edit_journal(ws, |j| {
            let (a, b) = (index(*a, j.len())?, index(*b, j.len())?);
            j.swap(a, b);
            Ok(())
        }),
        Tamper::ReplaceJournalLine { line, text } => {
            let p = resolve(ws, ".drctl/runs/ONLY/journal.jsonl")?;
            let t = std::fs::read_to_string(&p).map_err(io(&p))?;
            let mut lines: Vec<&str> = t.lines().collect();
            let i = index(*line, lines.len())?;
            lines[i] = text;
            write(&p, (lines.join("\n") + "\n").as_bytes())
        }
    }
}

/// An I/O error, with the path it happened at.
fn io(p: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", p.display())
}

/// A line number counted from 0, or from the end when negative.
fn index(line: i64, len: usize) -> Result<usize, String> {
    let i = if line < 0 { len as i64 + line } else { line };
    if (0..len as i64).contains(&i) {
        Ok(i as usize)
    } else {
        Err(format!("the journal has no line {line} ({len} lines)"))
    }
}

/// Edit the only run's journal as JSON events, and write it back one event a line.
fn edit_journal(
    ws: &Path,
    f: impl FnOnce(&mut Vec<Value>) -> Result<(), String>,
) -> Result<(), String> {
    let p = resolve(ws, ".drctl/runs/ONLY/journal.jsonl")?;
    let mut lines = vec![];
    for (n, l) in std::fs::read_to_string(&p)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .lines()
        .enumerate()
    {
        lines.push(
            serde_json::from_str::<Value>(l)
                .map_err(|e| format!("journal line {n} is not JSON: {e}"))?,
        );
    }
    f(&mut lines)?;
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    write(&p, text.as_bytes())
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.insert(
                    p.strip_prefix(base).unwrap().to_path_buf(),
                    b"<dir>".to_vec(),
                );
                walk(base, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(base).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap_or_default(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The sandbox's call log once it has answered every AWS request it began.
fn settled_calls(sb: &Sandbox) -> Result<Value, String> {
    let t = Instant::now();
    loop {
        let calls = sb.control("GET", "/_sandbox/calls", None);
        // Only this request's connection may be open: a closed drctl's requests have landed.
        let quiet = calls["connections"].as_u64().is_some_and(|c| c <= 1);
        match calls.get("in_flight").and_then(Value::as_u64) {
            Some(0) if quiet => return Ok(calls),
            Some(n) if t.elapsed() > Duration::from_secs(30) => {
                return Err(format!(
                    "the sandbox still had {n} AWS requests in flight (or connections open) after 30 s"
                ))
            }
            Some(_) => std::thread::sleep(Duration::from_millis(50)),
            None => {
                return Err(
                    "GET /_sandbox/calls has no `in_flight` count: is the sandbox older than this test?"
                        .into(),
                )
            }
        }
    }
}

/// Where two JSON values differ, as JSON pointers (at most 20).
fn differences(at: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if out.len() >= 20 || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => differences(&format!("{at}/{k}"), va, vb, out),
                    (va, vb) => out.push(format!("{at}/{k}: {va:?} -> {vb:?}")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences(&format!("{at}/{i}"), va, vb, out);
            }
        }
        _ => out.push(format!("{at}: {a} -> {b}")),
    }
}
