//! Crash safety of the real failover against the sandbox: `drctl failover` (the shipped
//! runbook, as an operator types it) is SIGKILLed after each of its journal events in turn, and
//! after each of its mutating AWS calls in turn (the answer arrived, drctl never read it). Then
//! a second `drctl failover` must refuse and name the unfinished run, and `drctl resume` must
//! finish it. Every trial must end where an uninterrupted failover ends, with each mutating AWS
//! call made exactly once (the sandbox's call log counts them).
//!
//! Before each failover a newer AMI reaches the standby vault (`drsandbox new-ami`), so the
//! launch template steps have work to do: the calls that were made twice before EC2's client
//! token. The seeded replica has caught up (catch-up lag 0), so a planned switchover promotes
//! at once instead of waiting out a CloudWatch minute.
//!
//! `make test` tries a sample of the kill points, rotating with every commit; `make test-all`
//! tries them all (`tests/common/sweep.rs` says how to choose).
//!
//! The journal-event sweep also runs on the shared DynamoDB backend (`state: backend:
//! dynamodb`, the sandbox's table): there the resume runs in another directory with its own
//! state dir, as on another operator's machine, from the journal in the table.
mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use common::sandbox::Sandbox;
use common::{journal, only_run, text};
use serde_json::Value;

/// Calls a resumed step may repeat because AWS makes the repeat a no-op: the same ClientToken
/// returns the version the first call made (the end-state check proves no second version).
/// Each such call may be repeated once: a kill can interrupt every tier's step at once.
const IDEMPOTENT_REPEATS: &[&str] = &["ec2:CreateLaunchTemplateVersion"];

fn drctl(sb: &Sandbox) -> std::process::Command {
    let mut c = common::drctl(sb.dir.path());
    c.args(["--env", "drctl.yaml"]);
    c
}

/// Where the run's journal and lease live.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    File,
    Dynamo,
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// As an operator types it with the primary up: drctl chooses the planned switchover.
    Chosen,
    Unplanned,
}

fn failover(sb: &Sandbox, mode: Mode, kill: Option<(&str, usize)>) -> Output {
    let mut c = drctl(sb);
    c.args([
        "failover",
        "--region",
        "us-west-2",
        "--yes",
        "--approve-irreversible",
    ]);
    if let Mode::Unplanned = mode {
        c.args(["--mode", "unplanned"]);
    }
    if let Some((var, n)) = kill {
        c.env(var, n.to_string());
    }
    common::run(&mut c)
}

/// A seeded sandbox with a caught-up replica, a newer AMI in the standby vault, and (on the
/// shared backend) the state table, saved as the snapshot `trial`: every trial restores it.
fn prepared(backend: Backend) -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("caught-up.json");
    std::fs::write(&profile, r#"{"base": "instant", "replica_catchup_lag": 0}"#).unwrap();
    let mut sb = Sandbox::start_with(&["--profile", profile.to_str().unwrap()]);
    let out = std::process::Command::new(common::sandbox::python())
        .args([
            "-m",
            "drsandbox",
            "new-ami",
            "--endpoint",
            &sb.endpoint,
            "--dir",
        ])
        .arg(sb.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "new-ami: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if backend == Backend::Dynamo {
        let mut env: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(sb.env_file()).unwrap()).unwrap();
        env["state"] = serde_json::json!({"backend": "dynamodb", "table": "drctl-state", "region": "us-east-2"});
        std::fs::write(sb.env_file(), serde_saphyr::to_string(&env).unwrap()).unwrap();
        let out = common::run(drctl(&sb).args(["state", "init", "--yes"]));
        assert!(out.status.success(), "state init: {}", text(&out));
    }
    sb.control("DELETE", "/_sandbox/calls", None);
    sb.snapshot("trial");
    sb
}

/// The prepared state again, with an empty call log and a workspace without runs.
fn fresh(sb: &mut Sandbox) {
    sb.restore("trial");
    sb.control("DELETE", "/_sandbox/calls", None);
}

/// The one run of the environment, wherever it lives.
fn the_run(sb: &Sandbox, backend: Backend) -> String {
    match backend {
        Backend::File => only_run(sb.dir.path()),
        Backend::Dynamo => {
            let out = common::run(drctl(sb).args(["history", "--output", "json"]));
            let rows: Vec<Value> = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("history: {e}: {}", text(&out)));
            assert_eq!(rows.len(), 1, "expected one run: {rows:?}");
            rows[0]["run_id"].as_str().unwrap().to_string()
        }
    }
}

/// The run's journal records as JSON (the file's lines, or the table's items).
fn records(sb: &Sandbox, backend: Backend, id: &str) -> Vec<Value> {
    match backend {
        Backend::File => journal(sb.dir.path(), id),
        Backend::Dynamo => {
            use drctl::journal::JournalStore;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                common::sandbox::sdk_credentials();
                let settings = drctl::config::env::AwsSettings {
                    endpoint_url: Some(sb.endpoint.clone()),
                    ..Default::default()
                };
                let client = drctl::aws::state_client(
                    &settings,
                    "us-east-2",
                    None,
                    std::time::Duration::from_secs(10),
                )
                .await;
                let store = drctl::journal::dynamo::DynamoState::new(
                    client,
                    "drctl-state",
                    "us-east-2",
                    "sandbox",
                    std::time::Duration::from_secs(10),
                );
                let (rs, _) = store
                    .read(id)
                    .await
                    .expect("the run's journal in the table");
                rs.iter()
                    .map(|r| serde_json::to_value(r).unwrap())
                    .collect()
            })
        }
    }
}

/// Successful mutating AWS calls so far, per `service:Operation`, once the sandbox has answered
/// every request it began: a killed drctl can leave one still being served. The state table's
/// own writes are not the failover's side effects and are left out.
fn mutating(sb: &Sandbox) -> BTreeMap<String, u64> {
    for _ in 0..600 {
        let calls = sb.control("GET", "/_sandbox/calls", None);
        // A killed failover may have written requests the sandbox has not read yet: they are
        // not in flight until read, but their connection is open until then (only this
        // request's own connection may remain).
        if calls["in_flight"] == 0 && calls["connections"].as_u64().is_some_and(|c| c <= 1) {
            let all: BTreeMap<String, u64> =
                serde_json::from_value(calls["mutating"].clone()).unwrap();
            return all
                .into_iter()
                .filter(|(op, _)| !op.starts_with("dynamodb:"))
                .collect();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the sandbox still had AWS requests in flight or connections open after 30 s");
}

/// What a failover leaves behind, without what differs between two seeds (ids, times).
fn end_state(sb: &Sandbox) -> Value {
    let mut st = sb.state();
    scrub(&mut st);
    st
}

fn scrub(v: &mut Value) {
    if let Value::String(s) = v {
        // Health check ids are UUIDs and local listeners get new ports with every sandbox.
        let uuid = s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4;
        if uuid || s.starts_with("http://127.0.0.1:") {
            *s = "<varies>".into();
        }
        return;
    }
    match v {
        Value::Object(m) => {
            m.retain(|k, _| {
                !(k.ends_with("_at")
                    || k == "time"
                    || k == "etag"
                    || k == "id"
                    || k.ends_with("_id"))
            });
            m.values_mut().for_each(scrub);
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

struct Reference {
    backend: Backend,
    mode: Mode,
    events: usize,
    calls: BTreeMap<String, u64>,
    state: Value,
}

fn reference(sb: &mut Sandbox, mode: Mode, backend: Backend) -> Reference {
    fresh(sb);
    let out = failover(sb, mode, None);
    assert!(out.status.success(), "reference failover: {}", text(&out));
    let id = the_run(sb, backend);
    let events = records(sb, backend, &id).len();
    let calls = mutating(sb);
    assert!(
        calls.len() >= 5,
        "the reference failover made few mutating calls: {calls:?}"
    );
    // The seeded groups launch from `$Latest`: a new version is the whole change.
    assert!(
        calls.contains_key("ec2:CreateLaunchTemplateVersion"),
        "the launch templates had no work (no CreateLaunchTemplateVersion): {calls:?}"
    );
    Reference {
        backend,
        mode,
        events,
        calls,
        state: end_state(sb),
    }
}

/// One trial: kill at `n` (by `var`), then a new failover that must refuse, then resume.
/// Returns what went wrong, if anything.
fn trial(sb: &mut Sandbox, r: &Reference, var: &str, n: usize) -> Option<String> {
    fresh(sb);
    let sb = &*sb;
    let out = failover(sb, r.mode, Some((var, n)));
    if out.status.signal() != Some(9) {
        return Some(format!(
            "{var}={n}: not killed (exit {:?}): {}",
            out.status.code(),
            text(&out)
        ));
    }
    let id = the_run(sb, r.backend);
    // A second operator types the same command: it must not act, and must say what to do.
    let before = mutating(sb);
    let again = failover(sb, r.mode, None);
    let t = text(&again);
    if again.status.success() || !t.contains(&id) || !t.contains("drctl resume") {
        return Some(format!(
            "{var}={n}: a second failover did not refuse with the run and `drctl resume` (exit {:?}): {t}",
            again.status.code()
        ));
    }
    let after = mutating(sb);
    if after != before {
        return Some(format!(
            "{var}={n}: the refused failover changed AWS: {before:?} -> {after:?}"
        ));
    }
    // On the shared backend, another operator resumes from another directory and state dir.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut resume = drctl(sb);
    if r.backend == Backend::Dynamo {
        std::fs::copy(sb.env_file(), elsewhere.path().join("drctl.yaml")).unwrap();
        resume = common::drctl(elsewhere.path());
        resume.args(["--env", "drctl.yaml"]);
    }
    let out = common::run(resume.args(["resume", &id, "--yes", "--approve-irreversible"]));
    if !out.status.success() {
        return Some(format!("{var}={n}: resume failed: {}", text(&out)));
    }
    if r.backend == Backend::Dynamo && sb.dir.path().join(".drctl/runs").exists() {
        return Some(format!("{var}={n}: the shared run left a local journal"));
    }
    let j = records(sb, r.backend, &id);
    let last = j.last().unwrap();
    if last["type"] != "run_finished" || last["status"] != "succeeded" {
        return Some(format!("{var}={n}: the run ended {last}"));
    }
    let calls = mutating(sb);
    let mut wrong = vec![];
    for (op, want) in &r.calls {
        let got = calls.get(op).copied().unwrap_or(0);
        let repeat_ok = IDEMPOTENT_REPEATS.contains(&op.as_str()) && got > *want && got <= 2 * want;
        if got != *want && !repeat_ok {
            wrong.push(format!("{op} {got} times (uninterrupted: {want})"));
        }
    }
    for (op, got) in &calls {
        if !r.calls.contains_key(op) {
            wrong.push(format!("{op} {got} times (uninterrupted: never)"));
        }
    }
    if !wrong.is_empty() {
        return Some(format!("{var}={n}: {}", wrong.join(", ")));
    }
    let st = end_state(sb);
    if st != r.state {
        let mut d = vec![];
        differences("", &st, &r.state, &mut d);
        return Some(format!(
            "{var}={n}: end state differs (resumed vs uninterrupted):\n{}",
            d.join("\n")
        ));
    }
    None
}

/// Where two states differ, as `path: resumed != uninterrupted` lines.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (l, r) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                differences(&format!("{path}.{k}"), l, r, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}[{i}]"), l, r, out);
            }
        }
        _ if a != b => out.push(format!("  {path}: {a} != {b}")),
        _ => {}
    }
}

fn sweep(mode: Mode, var: &str) {
    sweep_on(mode, var, Backend::File);
}

fn sweep_on(mode: Mode, var: &str, backend: Backend) {
    let mut sb = prepared(backend);
    sweep_in(&mut sb, mode, var, backend);
}

/// A sweep in a prepared sandbox: the reference run, then the trials, each from the snapshot.
fn sweep_in(sb: &mut Sandbox, mode: Mode, var: &str, backend: Backend) {
    let r = reference(sb, mode, backend);
    let points = match var {
        // The last event is run_finished: killing after it leaves nothing to resume.
        "DRCTL_TEST_KILL_AFTER_EVENT" => r.events - 1,
        _ => r.calls.values().sum::<u64>() as usize,
    };
    let sample = common::sweep::sample(points);
    eprintln!("{backend:?} {mode:?} {var}: trying {}", sample.how);
    let failures: Vec<String> = sample
        .points
        .iter()
        .filter_map(|&n| trial(sb, &r, var, n).map(|f| format!("{backend:?} {mode:?} {f}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of the {} kill points tried failed ({}):\n\n{}",
        failures.len(),
        sample.points.len(),
        sample.how,
        failures.join("\n\n")
    );
}

#[test]
fn killed_after_each_journal_event_a_chosen_failover_resumes_to_the_same_end() {
    sweep(Mode::Chosen, "DRCTL_TEST_KILL_AFTER_EVENT");
}

#[test]
fn killed_after_each_journal_event_an_unplanned_failover_resumes_to_the_same_end() {
    sweep(Mode::Unplanned, "DRCTL_TEST_KILL_AFTER_EVENT");
}

#[test]
fn killed_after_each_mutating_aws_call_each_call_happens_exactly_once() {
    let mut sb = prepared(Backend::File);
    for mode in [Mode::Chosen, Mode::Unplanned] {
        sweep_in(
            &mut sb,
            mode,
            "DRCTL_TEST_KILL_AFTER_MUTATING_CALL",
            Backend::File,
        );
    }
}

#[test]
fn on_the_shared_table_killed_after_each_journal_event_a_failover_resumes_from_another_directory() {
    sweep_on(Mode::Chosen, "DRCTL_TEST_KILL_AFTER_EVENT", Backend::Dynamo);
}
