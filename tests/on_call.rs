//! On call at 3 a.m., against the sandbox: nothing stale blocks a failover, no gate leaves
//! production without a writer, and `status` says what to do at each moment of an outage.
//!
//! - A failover paused at its approval gate (it changed nothing) is abandoned, and the next
//!   failover runs; a run that changed something is abandoned only with its changes listed and
//!   confirmed, or by `failover --abandon-unfinished --yes`.
//! - A gate nobody answers after a fence undoes the fence before the run pauses (the writer
//!   takes writes again); a scripted failback with no approver pauses before its fence.
//! - `status` in an outage: `primary-down` with `drctl failover` next, until something moves;
//!   during the failover it names the run that exists; after it, `failed-over`.
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::sandbox::Sandbox;
use common::{journal, only_run, text};
use serde_json::{json, Value};

fn drctl(sb: &Sandbox) -> Command {
    let mut c = common::drctl(sb.dir.path());
    c.args(["--env", "drctl.yaml"]).stdin(Stdio::null());
    c
}

fn run(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    common::run(drctl(sb).args(args))
}

fn status(sb: &Sandbox) -> (i32, Value) {
    let out = run(sb, &["status", "--output", "json"]);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status json: {e}: {}", text(&out)));
    (out.status.code().unwrap_or(-1), v)
}

fn next(v: &Value) -> String {
    v["next"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A hang guard (not a timing assertion): the bound is far above what the wait needs.
fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "{what} did not happen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn writable(sb: &Sandbox, region: &str, id: &str) -> Value {
    let st = sb.state();
    st["regions"][region]["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {region}: {st:#}"))["writable"]
        .clone()
}

/// Start `args` in the background and SIGTERM it once its journal shows `step` waiting: a run
/// paused at its approval gate, as an operator who walked away leaves it.
fn paused_at_gate(sb: &Sandbox, args: &[&str], step: &str) -> String {
    let child = drctl(sb)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dir = sb.dir.path();
    wait("the run to wait at its gate", || {
        dir.join(".drctl/runs").exists()
            && journal(dir, &only_run(dir))
                .iter()
                .any(|e| e["type"] == "step_started" && e["step"] == step)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5), "paused: {}", text(&out));
    only_run(dir)
}

#[test]
fn a_failover_paused_at_its_gate_is_abandoned_and_the_next_failover_runs() {
    let sb = Sandbox::start();
    let id = paused_at_gate(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--wait-approval",
        ],
        "approve_promotion",
    );
    let j = journal(sb.dir.path(), &id);
    assert!(
        !j.iter()
            .any(|e| e["type"] == "step_started" && e["step"] == "fence_primary"),
        "the planned failover asks before it fences: {j:#?}"
    );
    assert_eq!(writable(&sb, "us-east-1", "shop-db-use1"), true);

    // The stale run blocks the failover, and the refusal names the way out.
    let out = run(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("drctl abandon {id}")),
        "{}",
        text(&out)
    );

    // What it may have changed (its compute branch runs beside the gate) is listed and stays.
    let acted: Vec<String> = j
        .iter()
        .filter(|e| e["type"] == "step_intent")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    let out = run(
        &sb,
        &[
            "abandon",
            "latest",
            "--yes",
            "--reason",
            "stale gate from the 02:40 attempt",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = journal(sb.dir.path(), &id);
    let n = j.len();
    assert_eq!(j[n - 2]["type"], "abandoned");
    assert_eq!(j[n - 2]["operator"]["user"], "tester");
    assert_eq!(j[n - 2]["reason"], "stale gate from the 02:40 attempt");
    let mut listed: Vec<&str> = j[n - 2]["left_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().split(' ').next().unwrap())
        .collect();
    let mut mutating_acted: Vec<&str> = acted
        .iter()
        .map(String::as_str)
        .filter(|s| s.starts_with("lt_") || s.starts_with("scale_"))
        .collect();
    // The same steps (the list is in plan order, the journal in the order they ran).
    listed.sort();
    mutating_acted.sort();
    assert_eq!(
        listed,
        mutating_acted,
        "exactly the steps that may have acted: {:?}",
        j[n - 2]
    );
    assert_eq!(
        (j[n - 1]["type"].as_str(), j[n - 1]["status"].as_str()),
        (Some("run_finished"), Some("abandoned"))
    );
    let out = run(&sb, &["history", "--output", "json"]);
    assert!(text(&out).contains("abandoned"), "{}", text(&out));
    // Abandoning twice is refused, and writes nothing.
    let out = run(&sb, &["abandon", &id, "--reason", "again"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(journal(sb.dir.path(), &id).len(), n);

    let out = run(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(status(&sb).1["phase"], "failed_over");
}

#[test]
fn a_paused_run_that_changed_nothing_is_abandoned_without_a_question() {
    let ws = common::workspace();
    let dir = ws.path();
    std::fs::write(
        dir.join("rb.yaml"),
        "name: gated\nsteps:\n  - id: first\n    kind: wait\n    with: { duration: 10ms }\n  - id: gate\n    kind: approval\n    depends_on: [first]\n  - id: after\n    kind: exec\n    with: { command: [touch, after.txt] }\n    depends_on: [gate]\n",
    )
    .unwrap();
    let child = common::drctl(dir)
        .args(["run", "rb.yaml", "--yes", "--wait-approval"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait("the run to wait at its gate", || {
        dir.join(".drctl/runs").exists()
            && journal(dir, &only_run(dir))
                .iter()
                .any(|e| e["type"] == "step_started" && e["step"] == "gate")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(5));
    let id = only_run(dir);
    // Rolling it back is no way out: there is nothing to undo.
    let out = common::run(common::drctl(dir).args(["rollback", &id, "--yes"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // No terminal, no --yes: nothing to confirm, since it changed nothing.
    let out = common::run(
        common::drctl(dir)
            .stdin(Stdio::null())
            .args(["abandon", &id, "--reason", "stale"]),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("it changed nothing"), "{}", text(&out));
    let j = journal(dir, &id);
    assert_eq!(j[j.len() - 2]["left_changed"], json!([]));
    assert_eq!(j.last().unwrap()["status"], "abandoned");
    assert!(!dir.join("after.txt").exists());
    let out = common::run(common::drctl(dir).args(["status", &id]));
    assert!(text(&out).contains("abandoned"), "{}", text(&out));
}

#[test]
fn a_run_that_changed_something_is_abandoned_only_with_its_changes_listed_and_confirmed() {
    let sb = Sandbox::start();
    std::fs::write(
        sb.dir.path().join("scale.yaml"),
        "name: scale-up\nsteps:\n  - id: scale_frontend\n    kind: asg.scale\n    with: { role: standby, asg: frontend }\n  - id: gate\n    kind: approval\n    with: { message: more? }\n    depends_on: [scale_frontend]\n",
    )
    .unwrap();
    let id = paused_at_gate(
        &sb,
        &["run", "scale.yaml", "--yes", "--wait-approval"],
        "gate",
    );
    let before = journal(sb.dir.path(), &id).len();

    // No terminal and no --yes: refused (exit 8), nothing written.
    let out = run(&sb, &["abandon", &id, "--reason", "superseded"]);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(
        text(&out).contains("scale_frontend"),
        "what stays changed is listed: {}",
        text(&out)
    );
    assert_eq!(journal(sb.dir.path(), &id).len(), before);

    // The failover refuses beside it; with --abandon-unfinished --yes it closes it first.
    let out = run(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = run(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
            "--abandon-unfinished",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("scale_frontend"), "{}", text(&out));
    let j = journal(sb.dir.path(), &id);
    let ab = j
        .iter()
        .find(|e| e["type"] == "abandoned")
        .expect("abandoned");
    assert!(
        ab["reason"]
            .as_str()
            .unwrap()
            .contains("drctl failover --region us-west-2"),
        "{ab}"
    );
    assert!(
        ab["left_changed"][0]
            .as_str()
            .unwrap()
            .starts_with("scale_frontend"),
        "{ab}"
    );
    assert_eq!(j.last().unwrap()["status"], "abandoned");
    assert_eq!(status(&sb).1["phase"], "failed_over");
}

#[test]
fn a_gate_nobody_answers_after_a_fence_gives_production_its_writer_back() {
    let sb = Sandbox::start();
    // An old-style planned runbook: the fence first, then the gate.
    std::fs::write(
        sb.dir.path().join("fence-first.yaml"),
        "name: fence-first\nsteps:\n  - id: fence\n    kind: rds.fence_primary\n    with: { role: primary, method: read_only, require: true }\n  - id: gate\n    kind: approval\n    with: { message: promote?, deadline: 3s }\n    depends_on: [fence]\n  - id: promote\n    kind: rds.promote_replica\n    with: { role: standby }\n    depends_on: [gate]\n",
    )
    .unwrap();
    let out = run(&sb, &["run", "fence-first.yaml", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(
        t.contains("WRITES ARE OFF NOW"),
        "the gate says writes are off: {t}"
    );
    assert!(t.contains("writes are on again"), "{t}");
    assert_eq!(
        writable(&sb, "us-east-1", "shop-db-use1"),
        true,
        "the fence was undone"
    );
    let id = only_run(sb.dir.path());
    let j = journal(sb.dir.path(), &id);
    let kinds: Vec<&str> = j.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let at = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k}: {kinds:?}"))
    };
    assert!(at("undone") < at("paused"), "{kinds:?}");
    assert!(j
        .iter()
        .any(|e| e["type"] == "rollback_started" && e["then_pause"] == true));
    assert!(!j
        .iter()
        .any(|e| e["type"] == "step_started" && e["step"] == "promote"));
    let (code, v) = status(&sb);
    assert_eq!((code, v["phase"].as_str()), (0, Some("protected")), "{v:#}");
}

#[test]
fn a_scripted_failback_with_no_approver_pauses_before_its_fence_and_says_what_is_at_stake() {
    let sb = Sandbox::start();
    for args in [
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ][..],
        &["reprotect", "--yes", "--approve-irreversible"],
    ] {
        let out = run(&sb, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    assert_eq!(status(&sb).1["phase"], "reprotected");
    // The shipped failback, with a short deadline on its gate (a runbook beside drctl.yaml
    // takes precedence over the shipped one).
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/failback.yaml"),
    )
    .unwrap();
    let gate = "  - id: approve_failback\n    kind: approval\n    depends_on: []\n    with:\n";
    assert!(shipped.contains(gate), "the failback asks first");
    std::fs::create_dir_all(sb.dir.path().join("runbooks")).unwrap();
    std::fs::write(
        sb.dir.path().join("runbooks/failback.yaml"),
        shipped.replace(gate, &format!("{gate}      deadline: 2s\n")),
    )
    .unwrap();
    // Without a terminal and without --yes: declined, and the question says the real direction.
    let out = run(&sb, &["failback", "--region", "us-east-1"]);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(
        text(&out).contains("production us-west-2 -> us-east-1"),
        "{}",
        text(&out)
    );
    let out = run(&sb, &["failback", "--region", "us-east-1", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    // At the gate: what the fence will do and the replica's lag, before any answer.
    assert!(t.contains("then `fence_standby` will"), "{t}");
    assert!(t.contains("lag"), "{t}");
    assert!(t.contains("no approval within 2s"), "{t}");
    // Production kept its writer: the fence never ran.
    assert_eq!(writable(&sb, "us-west-2", "shop-db-usw2"), true);
    let id = only_run_of(&sb, "failback");
    let j = journal(sb.dir.path(), &id);
    assert!(!j
        .iter()
        .any(|e| e["type"] == "step_started" && e["step"] == "fence_standby"));
    assert_eq!(j.last().unwrap()["type"], "paused");
    assert_eq!(status(&sb).1["phase"], "reprotected");
    // Resumed with an approval, it goes back.
    std::fs::remove_file(sb.dir.path().join("runbooks/failback.yaml")).unwrap();
    let out = run(&sb, &["resume", &id, "--yes", "--approve-irreversible"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Failback to us-east-1"),
        "a resumed failback says what it was: {}",
        text(&out)
    );
    let (_, v) = status(&sb);
    assert_eq!(v["phase"], "protected");

    // The old writers the round trip kept: one line in status, listed by `drctl retired`, and
    // removed past their keep time with a final snapshot each, after a confirmation.
    let lines: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["text"].as_str().unwrap().contains("retired instance"))
        .collect();
    assert_eq!(lines.len(), 1, "{v:#}");
    assert!(
        lines[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("2 retired instance(s) kept"),
        "{v:#}"
    );
    let out = run(&sb, &["retired", "--output", "json"]);
    let kept: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<String> = kept["retired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{kept:#}");
    let out = run(&sb, &["retired", "--delete", "--older-than", "1h"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing to delete"), "{}", text(&out));
    let out = run(&sb, &["retired", "--delete", "--older-than", "0s"]);
    assert_eq!(out.status.code(), Some(8), "asks first: {}", text(&out));
    let out = run(&sb, &["retired", "--delete", "--older-than", "0s", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let st = sb.state();
    for id in &ids {
        for r in ["us-east-1", "us-west-2"] {
            assert!(
                !st["regions"][r]["databases"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["id"] == id.as_str() && d["status"] != "deleting"),
                "{id} still there: {st:#}"
            );
        }
    }
    let snaps = final_snapshots(&sb);
    for id in &ids {
        assert!(
            snaps.iter().any(|s| s.starts_with(&format!("{id}-final-"))),
            "{id}: {snaps:?}"
        );
    }
}

/// The manual DB snapshots of both regions (boto3 against the sandbox).
fn final_snapshots(sb: &Sandbox) -> Vec<String> {
    let py = "import boto3,sys,json\nout=[]\nfor r in ('us-east-1','us-west-2'):\n  c=boto3.client('rds',region_name=r,endpoint_url=sys.argv[1],aws_access_key_id='t',aws_secret_access_key='t')\n  out+= [s['DBSnapshotIdentifier'] for s in c.describe_db_snapshots(SnapshotType='manual')['DBSnapshots']]\nprint(json.dumps(out))";
    let out = Command::new(common::sandbox::python())
        .args(["-c", py, &sb.endpoint])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The one run of `runbook` in the workspace.
fn only_run_of(sb: &Sandbox, runbook: &str) -> String {
    let out = run(sb, &["history", "--output", "json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<String> = rows
        .iter()
        .filter(|r| r["runbook"] == runbook)
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{rows:#?}");
    ids[0].clone()
}

#[test]
fn status_tells_what_to_do_at_each_moment_of_an_outage() {
    let sb = Sandbox::start();
    // The ungated layout moves traffic through Route 53's API: spare the global control planes (a gated failover is tested with them dark in static_stability.rs).
    sb.fault(json!({"region": "us-east-1", "kind": "outage", "control_planes": false}));
    // The first seconds: the region is dark, Route 53's check has not flipped.
    let (code, v) = status(&sb);
    assert_eq!(v["phase"], "primary_down", "{v:#}");
    assert_eq!(code, 4, "an alarm");
    // The JSON is a versioned document: no Rust `Result` in it, and a schema to read it by.
    assert_eq!(v["schema_version"], 1);
    for part in ["dns", "cdn"] {
        assert!(
            v[part].get("Ok").is_none() && v[part].get("Err").is_none(),
            "{part}: {}",
            v[part]
        );
    }
    let out = run(&sb, &["schema", "status"]);
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "Topology", "{schema:#}");
    assert!(schema["properties"]["schema_version"].is_object());
    let n = next(&v);
    assert!(n.contains("drctl failover --region us-west-2"), "{n}");
    assert!(!n.contains("drctl resume"), "no run exists to resume: {n}");
    let out = run(&sb, &["status"]);
    let screen = String::from_utf8_lossy(&out.stdout).to_string();
    let head = screen.lines().next().unwrap();
    assert!(head.contains("PRIMARY_DOWN"), "{screen}");
    assert!(
        !head.contains("production in"),
        "unknown is not a region: {head}"
    );

    // Route 53's health check flips: it answers the standby, whose database is a replica.
    wait("Route 53 to answer us-west-2", || {
        sb.state()["route53"]["answer_region"] == "us-west-2"
    });
    let (_, v) = status(&sb);
    assert_eq!(
        v["phase"], "primary_down",
        "not mixed: nothing drctl did: {v:#}"
    );

    // During the failover: it dies after the promotion; status names that run.
    let out = run_with(
        &sb,
        &[(
            "DRCTL_TEST_KILL_AFTER_EVENT",
            "step_succeeded:promote_replica",
        )],
    );
    assert_eq!(out.status.code(), None, "killed: {}", text(&out));
    let id = only_run(sb.dir.path());
    let (_, v) = status(&sb);
    let n = next(&v);
    assert_ne!(v["phase"], "primary_down", "{v:#}");
    assert!(n.contains(&id), "names the run that exists: {n}");

    // After it: failed over; the way on is the fence and reprotect once us-east-1 answers.
    let out = run(&sb, &["resume", &id, "--yes", "--approve-irreversible"]);
    assert!(out.status.success(), "{}", text(&out));
    let (_, v) = status(&sb);
    assert_eq!(v["phase"], "failed_over", "{v:#}");
    assert!(next(&v).contains("drctl reprotect"), "{v:#}");
}

/// `drctl failover` (unplanned: us-east-1 is dark) with extra environment.
fn run_with(sb: &Sandbox, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = drctl(sb);
    c.args([
        "failover",
        "--region",
        "us-west-2",
        "--yes",
        "--approve-irreversible",
    ]);
    for (k, v) in env {
        c.env(k, v);
    }
    common::run(&mut c)
}

#[test]
fn a_saved_failover_plan_runs_only_while_the_world_is_as_planned() {
    let sb = Sandbox::start();
    let out = run(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--dry-run",
            "--out",
            "plan.json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let p: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.dir.path().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(p["failover"]["mode"], "planned");
    assert_eq!(p["failover"]["phase"], "protected");
    // The primary's region goes dark after the plan was reviewed: the planned switchover is
    // no longer what would run, and the plan says so instead of running.
    sb.fault(json!({"region": "us-east-1", "kind": "outage", "control_planes": false}));
    let out = run(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--plan",
            "plan.json",
            "--yes",
            "--approve-irreversible",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("mode: planned planned, chosen now unplanned"),
        "{t}"
    );
    assert!(
        t.contains("planned while protected, now primary_down"),
        "{t}"
    );
    assert!(
        !sb.dir.path().join(".drctl/runs").exists(),
        "a refused plan made a run"
    );
    // The region is back: the plan runs, exactly the switchover that was planned.
    sb.clear_faults();
    wait("us-east-1 to answer again", || {
        sb.state()["regions"]["us-east-1"]["dark"] == false
    });
    wait("the primary's health check to pass", || {
        sb.state()["route53"]["answer_region"] == "us-east-1"
    });
    let out = run(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--plan",
            "plan.json",
            "--yes",
            "--approve-irreversible",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = only_run(sb.dir.path());
    let j = journal(sb.dir.path(), &id);
    assert_eq!(j[0]["runbook_name"], "warm-standby-switchover");
    assert_eq!(status(&sb).1["phase"], "failed_over");
}
