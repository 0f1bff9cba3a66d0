//! The catalogue of bad input: runbooks, environments, leases, journals, state directories and
//! command lines that drctl must refuse. Each case says the exit code and the words it must
//! print, and every case checks that nothing changed: the workspace (state dir included) byte
//! for byte, and nothing written beside it (a `..` must not escape).
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{drctl, text};

const ENV: &str = common::LOCAL_ENV;
const FAST: &str =
    "name: fast\nsteps:\n  - id: quick\n    kind: wait\n    with: { duration: 10ms }\n";
const GATED: &str = "name: gated\nsteps:\n  - id: gate\n    kind: approval\n  - id: after\n    kind: wait\n    with: { duration: 10ms }\n";

struct Case {
    name: &'static str,
    /// Files written into the workspace before anything runs (path relative to it).
    files: &'static [(&'static str, &'static str)],
    /// Commands run first to make state (a finished run, a lease), before the snapshot.
    setup: &'static [&'static [&'static str]],
    /// Damage done after the setup, before the snapshot.
    tamper: Option<fn(&Path)>,
    args: &'static [&'static str],
    exit: i32,
    says: &'static [&'static str],
}

fn env_with(extra: &str) -> String {
    format!("{ENV}{extra}")
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

fn only_run(ws: &Path) -> String {
    common::only_run(ws)
}

fn journal_path(ws: &Path) -> PathBuf {
    ws.join(".drctl/runs")
        .join(only_run(ws))
        .join("journal.jsonl")
}

fn edit_journal(ws: &Path, f: impl Fn(&mut Vec<serde_json::Value>)) {
    let p = journal_path(ws);
    let mut lines: Vec<serde_json::Value> = std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    f(&mut lines);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(p, text).unwrap();
}

fn cases() -> Vec<Case> {
    vec![
        // --- runbooks -------------------------------------------------------------------
        Case { name: "runbook: timeout of zero", files: &[("rb.yaml", "name: r\nsteps:\n  - id: a\n    kind: wait\n    with: { duration: 1s }\n    timeout: 0s\n")], setup: &[], tamper: None, args: &["validate", "rb.yaml"], exit: 2, says: &["rb.yaml:3:", "timeout must be more than zero"] },
        Case { name: "runbook: a typo in an output key", files: &[("rb.yaml", "name: r\nsteps:\n  - id: a\n    kind: exec\n    with: { command: [\"true\"] }\n  - id: b\n    kind: exec\n    with: { command: [echo, \"${steps.a.exitcode}\"] }\n")], setup: &[], tamper: None, args: &["validate", "rb.yaml"], exit: 2, says: &["has no output `exitcode`", "exit_code"] },
        Case { name: "runbook: a reference to a mapping", files: &[("rb.yaml", "name: r\nsteps:\n  - id: a\n    kind: exec\n    with: { command: [echo, \"${standby.albs}\"] }\n")], setup: &[], tamper: None, args: &["validate", "rb.yaml"], exit: 2, says: &["is a mapping or a list"] },
        Case { name: "runbook: ${...} in a field that is not templated", files: &[("rb.yaml", "name: r\nsteps:\n  - id: a\n    kind: wait\n    with:\n      duration: \"${run.id}\"\n")], setup: &[], tamper: None, args: &["validate", "rb.yaml"], exit: 2, says: &["rb.yaml:"] },
        Case { name: "runbook: not UTF-8", files: &[("rb.yaml", "placeholder\n")], setup: &[], tamper: Some(|ws| std::fs::write(ws.join("rb.yaml"), b"name: r\xff\xfe\nsteps: []\n").unwrap()), args: &["validate", "rb.yaml"], exit: 2, says: &["not UTF-8"] },
        Case { name: "runbook: empty file", files: &[("rb.yaml", "")], setup: &[], tamper: None, args: &["validate", "rb.yaml"], exit: 2, says: &["rb.yaml:"] },
        Case { name: "runbook: a list at the top", files: &[("rb.yaml", "- a\n- b\n")], setup: &[], tamper: None, args: &["validate", "rb.yaml"], exit: 2, says: &["rb.yaml:1:"] },
        Case { name: "runbook: tabs for indentation", files: &[("rb.yaml", "name: r\nsteps:\n\t- id: a\n")], setup: &[], tamper: None, args: &["validate", "rb.yaml"], exit: 2, says: &["rb.yaml:3:"] },
        Case { name: "runbook: too large", files: &[], setup: &[], tamper: Some(|ws| std::fs::write(ws.join("rb.yaml"), format!("name: r\n#{}\nsteps: []\n", "x".repeat(2 * 1024 * 1024))).unwrap()), args: &["validate", "rb.yaml"], exit: 2, says: &["more than drctl reads"] },
        Case { name: "runbook: no steps, run refused", files: &[("rb.yaml", "name: r\nsteps: []\n")], setup: &[], tamper: None, args: &["run", "rb.yaml", "--yes"], exit: 2, says: &["no steps"] },
        Case { name: "runbook: unknown step kind, run refused", files: &[("rb.yaml", "name: r\nsteps:\n  - id: a\n    kind: rds.explode\n")], setup: &[], tamper: None, args: &["run", "rb.yaml", "--yes"], exit: 2, says: &["unknown step kind `rds.explode`"] },
        Case { name: "runbook: missing file", files: &[], setup: &[], tamper: None, args: &["run", "nope.yaml", "--yes"], exit: 2, says: &["nope.yaml"] },
        Case { name: "runbook: a cycle, plan refused", files: &[("rb.yaml", "name: r\nsteps:\n  - id: a\n    kind: wait\n    with: { duration: 1s }\n    depends_on: [b]\n  - id: b\n    kind: wait\n    with: { duration: 1s }\n    depends_on: [a]\n")], setup: &[], tamper: None, args: &["plan", "rb.yaml"], exit: 2, says: &["dependency cycle"] },
        Case { name: "runbook: step id with a slash", files: &[("rb.yaml", "name: r\nsteps:\n  - id: a/b\n    kind: wait\n    with: { duration: 1s }\n")], setup: &[], tamper: None, args: &["validate", "rb.yaml"], exit: 2, says: &["may use only letters"] },
        Case { name: "runbook: irreversible without an approval", files: &[("rb.yaml", "name: r\nsteps:\n  - id: a\n    kind: exec\n    with: { command: [\"true\"], irreversible: deletes things }\n")], setup: &[], tamper: None, args: &["run", "rb.yaml", "--yes"], exit: 2, says: &["irreversible"] },
        Case { name: "runbook: --step without a terminal", files: &[("rb.yaml", FAST)], setup: &[], tamper: None, args: &["run", "rb.yaml", "--step"], exit: 2, says: &["--step needs a terminal"] },
        Case { name: "runbook: no terminal and no --yes", files: &[("rb.yaml", FAST)], setup: &[], tamper: None, args: &["run", "rb.yaml"], exit: 8, says: &["--yes"] },
        // --- environments ----------------------------------------------------------------
        Case { name: "env: a mistyped standby region", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-wset-2\nregions:\n  us-east-1: {}\n  us-wset-2: {}\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["drctl.yaml:3:1", "`us-wset-2` is not an AWS region", "did you mean `us-west-2`"] },
        Case { name: "env: a region that does not exist", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-west-3\nregions:\n  us-east-1: {}\n  us-west-3: {}\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["`us-west-3` is not an AWS region"] },
        Case { name: "env: a mistyped region stops a failover before it acts", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-wset-2\nregions:\n  us-east-1: {}\n  us-wset-2: {}\n")], setup: &[], tamper: None, args: &["failover", "--region", "us-wset-2", "--yes"], exit: 2, says: &["not an AWS region"] },
        Case { name: "env: both regions the same", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-east-1\nregions:\n  us-east-1: {}\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["drctl.yaml:3:1", "are both"] },
        Case { name: "env: an empty name", files: &[("drctl.yaml", "name: ''\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n  us-west-2: {}\n")], setup: &[], tamper: None, args: &["run", "rb.yaml", "--yes"], exit: 2, says: &["drctl.yaml:1:1", "not a safe name"] },
        Case { name: "env: a name that climbs out of the state dir", files: &[("drctl.yaml", "name: ../../pwned\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n  us-west-2: {}\n"), ("rb.yaml", FAST)], setup: &[], tamper: None, args: &["run", "rb.yaml", "--yes"], exit: 2, says: &["`../../pwned` is not a safe name"] },
        Case { name: "env: a name with a slash", files: &[("drctl.yaml", "name: a/b\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n  us-west-2: {}\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["not a safe name"] },
        Case { name: "env: a region without resources", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["regions has no entry for `us-west-2`"] },
        Case { name: "env: an operation timeout of zero", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-west-2\naws:\n  operation_timeout: 0s\nregions:\n  us-east-1: {}\n  us-west-2: {}\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["drctl.yaml:5:3", "operation_timeout must be more than zero"] },
        Case { name: "env: an attempt timeout of zero", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-west-2\naws:\n  attempt_timeout: 0s\nregions:\n  us-east-1: {}\n  us-west-2: {}\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["attempt_timeout must be more than zero"] },
        Case { name: "env: zero attempts", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-west-2\naws:\n  max_attempts: 0\nregions:\n  us-east-1: {}\n  us-west-2: {}\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["max_attempts must be at least 1"] },
        Case { name: "env: an ALB url without a scheme", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1:\n    albs:\n      frontend:\n        arn: a\n        dns_name: d\n        url: shop.example.com\n  us-west-2: {}\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["drctl.yaml:10:9", "must start with http:// or https://"] },
        Case { name: "env: an unknown field", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-west-2\nregoins: {}\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["drctl.yaml:4:", "regoins"] },
        Case { name: "env: a probe url without a scheme", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n  us-west-2: {}\nprobes:\n  targets:\n    - name: p\n      region: us-east-1\n      http: { url: example.com }\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["drctl.yaml:9:", "must start with http:// or https://"] },
        Case { name: "env: a probe threshold of zero", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n  us-west-2: {}\nprobes:\n  failure_threshold: 0\n  targets: []\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["at least 1"] },
        Case { name: "env: the file is missing", files: &[("rb.yaml", FAST)], setup: &[], tamper: Some(|ws| std::fs::remove_file(ws.join("drctl.yaml")).unwrap()), args: &["run", "rb.yaml", "--yes"], exit: 2, says: &["environment file drctl.yaml not found"] },
        Case { name: "env: the file is a directory", files: &[("rb.yaml", FAST)], setup: &[], tamper: Some(|ws| { std::fs::remove_file(ws.join("drctl.yaml")).unwrap(); std::fs::create_dir(ws.join("drctl.yaml")).unwrap(); }), args: &["run", "rb.yaml", "--yes"], exit: 2, says: &["drctl.yaml"] },
        Case { name: "env: a failover action without a runbook", files: &[("drctl.yaml", "name: local\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n  us-west-2: {}\nprobes:\n  targets: []\n  watch:\n    action: failover\n")], setup: &[], tamper: None, args: &["validate", "drctl.yaml"], exit: 2, says: &["no runbook is given"] },
        // --- leases ----------------------------------------------------------------------
        Case { name: "lease: garbage text", files: &[("rb.yaml", FAST), (".drctl/leases/local.json", "this is not a lease\n")], setup: &[], tamper: None, args: &["run", "rb.yaml", "--yes"], exit: 10, says: &["is not a drctl lease", "mv "] },
        Case { name: "lease: truncated", files: &[("rb.yaml", FAST), (".drctl/leases/local.json", "{\"env\": \"local\", \"owner\": \"bob\", \"tok")], setup: &[], tamper: None, args: &["run", "rb.yaml", "--yes"], exit: 10, says: &["is not a drctl lease"] },
        Case { name: "lease: the wrong shape", files: &[("rb.yaml", FAST), (".drctl/leases/local.json", "[1, 2, 3]\n")], setup: &[], tamper: None, args: &["run", "rb.yaml", "--yes"], exit: 10, says: &["is not a drctl lease"] },
        Case { name: "lease: another environment's", files: &[("rb.yaml", FAST), (".drctl/leases/local.json", "{\"env\":\"other\",\"owner\":\"bob\",\"host\":\"h\",\"pid\":1,\"command\":\"drctl run\",\"run_id\":null,\"acquired_at\":\"2026-01-01T00:00:00Z\",\"expires_at\":\"2026-01-01T00:01:00Z\",\"token\":7,\"released\":true}")], setup: &[], tamper: None, args: &["run", "rb.yaml", "--yes"], exit: 10, says: &["names environment `other`"] },
        Case { name: "lease: binary garbage", files: &[("rb.yaml", FAST)], setup: &[], tamper: Some(|ws| { std::fs::create_dir_all(ws.join(".drctl/leases")).unwrap(); std::fs::write(ws.join(".drctl/leases/local.json"), [0xff, 0x00, 0xfe, 0x01]).unwrap(); }), args: &["run", "rb.yaml", "--yes"], exit: 10, says: &["not UTF-8"] },
        Case { name: "lease: garbage refuses a resume too", files: &[("rb.yaml", GATED)], setup: &[&["run", "rb.yaml", "--yes", "--wait-approval", "--output", "json"]], tamper: Some(|ws| std::fs::write(ws.join(".drctl/leases/local.json"), "garbage").unwrap()), args: &["resume", "ONLY", "--yes"], exit: 10, says: &["is not a drctl lease"] },
        // --- run ids and the state dir -----------------------------------------------------
        Case { name: "run id: rollback ../../x", files: &[], setup: &[], tamper: None, args: &["rollback", "../../x", "--yes"], exit: 2, says: &["`../../x` is not a run id"] },
        Case { name: "run id: resume ../x", files: &[], setup: &[], tamper: None, args: &["resume", "../x", "--yes"], exit: 2, says: &["is not a run id"] },
        Case { name: "run id: approve ../../x gate", files: &[], setup: &[], tamper: None, args: &["approve", "../../x", "gate"], exit: 2, says: &["is not a run id"] },
        Case { name: "run id: status ../../x", files: &[], setup: &[], tamper: None, args: &["status", "../../x"], exit: 2, says: &["is not a run id"] },
        Case { name: "run id: empty", files: &[], setup: &[], tamper: None, args: &["resume", "", "--yes"], exit: 2, says: &["is not a run id"] },
        Case { name: "run id: a slash", files: &[], setup: &[], tamper: None, args: &["rollback", "a/b", "--yes"], exit: 2, says: &["is not a run id"] },
        Case { name: "run id: an absolute path", files: &[], setup: &[], tamper: None, args: &["status", "/etc/passwd"], exit: 2, says: &["is not a run id"] },
        Case { name: "run id: no such run", files: &[], setup: &[], tamper: None, args: &["resume", "20260101-000000-abcd", "--yes"], exit: 2, says: &["no run `20260101-000000-abcd`"] },
        Case { name: "run: resume a finished run", files: &[("rb.yaml", FAST)], setup: &[&["run", "rb.yaml", "--yes"]], tamper: None, args: &["resume", "ONLY", "--yes"], exit: 2, says: &["already finished"] },
        Case { name: "run: rollback to a checkpoint never reached", files: &[("rb.yaml", FAST)], setup: &[&["run", "rb.yaml", "--yes"]], tamper: None, args: &["rollback", "ONLY", "--to", "nope", "--yes"], exit: 2, says: &["never reached checkpoint `nope`"] },
        Case { name: "run: approve a step that is not an approval", files: &[("rb.yaml", GATED)], setup: &[&["run", "rb.yaml", "--yes", "--wait-approval", "--output", "json"]], tamper: None, args: &["approve", "ONLY", "after"], exit: 2, says: &["is a `wait` step, not an approval"] },
        Case { name: "run: approve a step that does not exist", files: &[("rb.yaml", GATED)], setup: &[&["run", "rb.yaml", "--yes", "--wait-approval", "--output", "json"]], tamper: None, args: &["approve", "ONLY", "ghost"], exit: 2, says: &["has no step `ghost`"] },
        Case { name: "run: rollback of a run with nothing to undo", files: &[("rb.yaml", FAST)], setup: &[&["run", "rb.yaml", "--yes"]], tamper: None, args: &["rollback", "ONLY", "--yes"], exit: 2, says: &["nothing to undo"] },
        Case { name: "state dir: a file, not a directory", files: &[("rb.yaml", FAST), ("state", "")], setup: &[], tamper: None, args: &["--state-dir", "state", "run", "rb.yaml", "--yes"], exit: 2, says: &["state dir state is not a directory"] },
        Case { name: "state dir: history in a file", files: &[("state", "")], setup: &[], tamper: None, args: &["--state-dir", "state", "history"], exit: 2, says: &["is not a directory"] },
        // --- journals ------------------------------------------------------------------------
        Case { name: "journal: the runbook copy edited", files: &[("rb.yaml", FAST)], setup: &[&["run", "rb.yaml", "--yes"]], tamper: Some(|ws| edit_journal(ws, |j| j[0]["runbook_text"] = "name: fast\nsteps:\n  - id: evil\n    kind: exec\n    with: { command: [rm, -rf, /] }\n".into())), args: &["status", "ONLY"], exit: 10, says: &["was altered", "does not match its recorded SHA-256"] },
        Case { name: "journal: the environment copy edited", files: &[("rb.yaml", FAST)], setup: &[&["run", "rb.yaml", "--yes"]], tamper: Some(|ws| edit_journal(ws, |j| j[0]["env_text"] = "name: other\n".into())), args: &["rollback", "ONLY", "--yes"], exit: 10, says: &["was altered"] },
        Case { name: "journal: another run's journal under a new id", files: &[("rb.yaml", FAST)], setup: &[&["run", "rb.yaml", "--yes"]], tamper: Some(|ws| { let id = only_run(ws); std::fs::rename(ws.join(".drctl/runs").join(&id), ws.join(".drctl/runs/20990101-000000-beef")).unwrap(); }), args: &["rollback", "20990101-000000-beef", "--yes"], exit: 10, says: &["it is the journal of run"] },
        Case { name: "journal: a corrupt line in the middle", files: &[("rb.yaml", FAST)], setup: &[&["run", "rb.yaml", "--yes"]], tamper: Some(|ws| { let p = journal_path(ws); let t = std::fs::read_to_string(&p).unwrap(); let mut l: Vec<&str> = t.lines().collect(); l[1] = "{not json"; std::fs::write(&p, l.join("\n") + "\n").unwrap(); }), args: &["status", "ONLY"], exit: 10, says: &["is corrupt"] },
        Case { name: "journal: empty", files: &[("rb.yaml", FAST)], setup: &[&["run", "rb.yaml", "--yes"]], tamper: Some(|ws| std::fs::write(journal_path(ws), "").unwrap()), args: &["status", "ONLY"], exit: 10, says: &["the journal is empty"] },
        Case { name: "journal: not starting with run_started", files: &[("rb.yaml", FAST)], setup: &[&["run", "rb.yaml", "--yes"]], tamper: Some(|ws| edit_journal(ws, |j| { j.remove(0); })), args: &["status", "ONLY"], exit: 10, says: &["must begin with run_started"] },
        Case { name: "journal: an impossible order", files: &[("rb.yaml", FAST)], setup: &[&["run", "rb.yaml", "--yes"]], tamper: Some(|ws| edit_journal(ws, |j| { let last = j.len() - 1; j.swap(1, last); })), args: &["status", "ONLY"], exit: 10, says: &["journal of run", "impossible"] },
        // --- command lines -------------------------------------------------------------------
        Case { name: "failover: not the standby region", files: &[], setup: &[], tamper: None, args: &["failover", "--region", "eu-west-1", "--yes"], exit: 2, says: &["refusing to fail over to eu-west-1", "standby region is us-west-2"] },
        Case { name: "failover: the primary region", files: &[], setup: &[], tamper: None, args: &["failover", "--region", "us-east-1", "--yes"], exit: 2, says: &["production already runs there"] },
        Case { name: "failback: not the primary region", files: &[], setup: &[], tamper: None, args: &["failback", "--region", "us-west-2", "--yes"], exit: 2, says: &["refusing to fail back to us-west-2"] },
        Case { name: "cli: --approve-irreversible without --yes", files: &[("rb.yaml", FAST)], setup: &[], tamper: None, args: &["run", "rb.yaml", "--approve-irreversible"], exit: 2, says: &["--yes"] },
        Case { name: "cli: a bad duration", files: &[], setup: &[], tamper: None, args: &["check", "--timeout", "soon"], exit: 2, says: &["soon"] },
        Case { name: "cli: an unknown command", files: &[], setup: &[], tamper: None, args: &["explode"], exit: 2, says: &["explode"] },
        Case { name: "cli: an unknown schema", files: &[], setup: &[], tamper: None, args: &["schema", "nope"], exit: 2, says: &["nope"] },
        Case { name: "cli: --rerun of an unknown step", files: &[("rb.yaml", GATED)], setup: &[&["run", "rb.yaml", "--yes", "--wait-approval", "--output", "json"]], tamper: None, args: &["resume", "ONLY", "--rerun", "ghost", "--yes"], exit: 2, says: &["--rerun ghost: no such step"] },
    ]
}

#[test]
fn every_bad_input_is_refused_clearly_and_changes_nothing() {
    let mut failures = vec![];
    let all = cases();
    assert!(all.len() >= 60, "the catalogue has {} cases", all.len());
    for case in &all {
        // The workspace sits one level down, so anything that escapes it is seen.
        let outer = tempfile::tempdir().unwrap();
        let ws = outer.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join("drctl.yaml"), env_with("")).unwrap();
        for (p, content) in case.files {
            let p = ws.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        for args in case.setup {
            // A setup run that waits for an approval is stopped by a timeout and left paused.
            let mut c = drctl(&ws);
            c.args(*args);
            let mut child = c
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let t = std::time::Instant::now();
            while child.try_wait().unwrap().is_none()
                && t.elapsed() < std::time::Duration::from_secs(3)
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            if child.try_wait().unwrap().is_none() {
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                )
                .unwrap();
                child.wait().unwrap();
            }
        }
        if let Some(t) = case.tamper {
            t(&ws);
        }
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| {
                if *a == "ONLY" {
                    only_run(&ws)
                } else {
                    a.to_string()
                }
            })
            .collect();
        let before = snapshot(outer.path());
        let out = common::run(drctl(&ws).args(&args).stdin(std::process::Stdio::null()));
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
        for s in case.says {
            if !t.contains(s) {
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
        if !wrong.is_empty() {
            failures.push(format!("{}: {}\n{}", case.name, wrong.join("; "), t));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
}
