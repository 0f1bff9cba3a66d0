//! On-call flows through the real binary: approvals from a second terminal, a graceful SIGTERM
//! and resume, rollback to a checkpoint, an irreversible stop, refusals without a terminal, plan.
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{drctl, journal, only_run, run, text, workspace};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn lines(p: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn append_step(id: &str, extra: &str) -> String {
    format!(
        "  - id: {id}\n    kind: exec\n{extra}    with:\n      command: [sh, -c, \"echo {id} >> state.txt\"]\n      check: [grep, -qx, {id}, state.txt]\n      undo: [sh, -c, \"sed -i /^{id}$/d state.txt\"]\n"
    )
}

#[test]
fn an_approval_is_granted_from_a_second_terminal_and_journaled() {
    let ws = workspace();
    let dir = ws.path();
    let rb = format!("name: gated\nsteps:\n{}  - id: gate\n    kind: approval\n    with: {{ message: \"promote the replica\" }}\n{}", append_step("before", ""), append_step("after", ""));
    std::fs::write(dir.join("rb.yaml"), rb).unwrap();
    let child = drctl(dir)
        .args(["run", "rb.yaml", "--yes", "--wait-approval"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the run to wait for approval", || {
        // The run's directory appears before its journal, and a line may be half written:
        // read what is there, as a reader racing the writer does.
        let Some(run) = std::fs::read_dir(dir.join(".drctl/runs"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
        else {
            return false;
        };
        std::fs::read_to_string(run.path().join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|e| e["type"] == "step_started" && e["step"] == "gate")
    });
    let id = only_run(dir);
    // From the second terminal: status shows the wait, approve names a non-approval step wrongly.
    let st = run(drctl(dir).args(["status", &id]));
    assert!(text(&st).contains("gate"), "{}", text(&st));
    assert!(!lines(&dir.join("state.txt")).contains(&"after".to_string()));
    let wrong = run(drctl(dir).args(["approve", &id, "before"]));
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    let ok = run(drctl(dir)
        .args(["approve", &id, "gate", "--comment", "db lag is 0"])
        .env("DRCTL_OPERATOR", "bob"));
    assert!(ok.status.success(), "{}", text(&ok));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("drctl approve"),
        "tells the operator how to approve: {}",
        text(&out)
    );
    let ev = journal(dir, &id);
    let g = ev
        .iter()
        .find(|e| e["type"] == "approval_granted")
        .expect("approval journaled");
    assert_eq!(
        (g["by"].as_str(), g["via"].as_str(), g["comment"].as_str()),
        (Some("bob"), Some("cli"), Some("db lag is 0"))
    );
    assert_eq!(lines(&dir.join("state.txt")), ["before", "after"]);
    let st = run(drctl(dir).args(["status", &id]));
    assert!(
        text(&st).contains("bob"),
        "status shows who approved: {}",
        text(&st)
    );
}

#[test]
fn sigterm_pauses_at_a_safe_point_and_resume_finishes() {
    let ws = workspace();
    let dir = ws.path();
    let rb = format!(
        "name: long\nsteps:\n{}  - id: soak\n    kind: wait\n    with: {{ duration: 5s }}\n{}",
        append_step("a", ""),
        append_step("b", "")
    );
    std::fs::write(dir.join("rb.yaml"), rb).unwrap();
    let child = drctl(dir)
        .args(["run", "rb.yaml", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the wait step", || {
        dir.join(".drctl/runs").exists()
            && journal(dir, &only_run(dir))
                .iter()
                .any(|e| e["type"] == "step_intent" && e["step"] == "soak")
    });
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "did not stop promptly"
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let id = only_run(dir);
    assert!(
        text(&out).contains(&format!("drctl resume {id}")),
        "{}",
        text(&out)
    );
    let ev = journal(dir, &id);
    assert_eq!(ev.last().unwrap()["type"], "paused");
    assert_eq!(lines(&dir.join("state.txt")), ["a"]);
    // The lease was released: status works, and resume continues without repeating `a`.
    let out = run(drctl(dir).args(["resume", &id, "--yes"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(lines(&dir.join("state.txt")), ["a", "b"]);
    let ev = journal(dir, &id);
    assert_eq!(
        ev.iter()
            .filter(|e| e["type"] == "step_succeeded" && e["step"] == "a")
            .count(),
        1
    );
}

#[test]
fn rollback_to_a_checkpoint_undoes_what_came_after_and_no_further() {
    let ws = workspace();
    let dir = ws.path();
    let rb = format!(
        "name: cp\nsteps:\n{}{}{}",
        append_step("a", "    checkpoint: base\n"),
        append_step("b", ""),
        append_step("c", "")
    );
    std::fs::write(dir.join("rb.yaml"), rb).unwrap();
    assert!(run(drctl(dir).args(["run", "rb.yaml", "--yes"]))
        .status
        .success());
    let id = only_run(dir);
    let bad = run(drctl(dir).args(["rollback", &id, "--to", "nope", "--yes"]));
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("reached: base"), "{}", text(&bad));
    let out = run(drctl(dir).args(["rollback", &id, "--to", "base", "--yes"]));
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert_eq!(lines(&dir.join("state.txt")), ["a"]);
    let undone: Vec<String> = journal(dir, &id)
        .iter()
        .filter(|e| e["type"] == "undone")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(undone, ["c", "b"], "reverse completion order");
}

#[test]
fn rollback_stops_at_an_irreversible_step_and_says_what_that_means() {
    let ws = workspace();
    let dir = ws.path();
    let rb = format!(
        "name: irr\nsteps:\n{}  - id: gate\n    kind: approval\n  - id: purge\n    kind: exec\n    with:\n      command: [sh, -c, \"echo purged >> state.txt\"]\n      irreversible: deletes the old snapshots\n{}",
        append_step("a", ""),
        append_step("b", "")
    );
    std::fs::write(dir.join("rb.yaml"), rb).unwrap();
    assert!(
        run(drctl(dir).args(["run", "rb.yaml", "--yes", "--approve-irreversible"]))
            .status
            .success()
    );
    let id = only_run(dir);
    let out = run(drctl(dir).args(["rollback", &id, "--yes"]));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(7), "{t}");
    assert!(
        t.contains("`purge` (exec) cannot be undone: deletes the old snapshots"),
        "{t}"
    );
    assert!(t.contains("still in effect: a"), "{t}");
    assert_eq!(lines(&dir.join("state.txt")), ["a", "purged"]);
}

#[test]
fn without_a_terminal_a_mutating_run_needs_yes_and_changes_nothing() {
    let ws = workspace();
    let dir = ws.path();
    std::fs::write(
        dir.join("rb.yaml"),
        format!("name: x\nsteps:\n{}", append_step("a", "")),
    )
    .unwrap();
    let out = run(drctl(dir).args(["run", "rb.yaml"]).stdin(Stdio::null()));
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert!(!dir.join("state.txt").exists());
    assert!(!dir.join(".drctl").exists());
}

#[test]
fn plan_shows_parallel_levels_current_state_and_the_critical_path() {
    let ws = workspace();
    let dir = ws.path();
    let rb = "name: p\nsteps:\n  - id: slow\n    kind: wait\n    with: { duration: 10m }\n  - id: fast\n    kind: wait\n    depends_on: []\n    with: { duration: 1s }\n  - id: join\n    kind: exec\n    depends_on: [slow, fast]\n    with: { command: [\"true\"], check: [test, -e, done.txt] }\n";
    std::fs::write(dir.join("rb.yaml"), rb).unwrap();
    std::fs::write(dir.join("done.txt"), "").unwrap();
    let out = run(drctl(dir).args(["plan", "rb.yaml"]));
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("Critical path (*, about 10m 1s): slow -> join"),
        "{t}"
    );
    assert!(
        t.contains("already done"),
        "join's check passes, so it is a no-op: {t}"
    );
    let out = run(drctl(dir).args(["plan", "rb.yaml", "--output", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let levels: Vec<u64> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["level"].as_u64().unwrap())
        .collect();
    assert_eq!(levels, [0, 0, 1]);
    assert!(!dir.join(".drctl").exists(), "plan wrote state");
}

#[test]
fn history_lists_runs_and_json_output_is_machine_readable() {
    let ws = workspace();
    let dir = ws.path();
    std::fs::write(
        dir.join("rb.yaml"),
        format!("name: h\nsteps:\n{}", append_step("a", "")),
    )
    .unwrap();
    let out = run(drctl(dir).args(["run", "rb.yaml", "--yes", "--output", "json"]));
    assert!(out.status.success());
    let types: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("run_started"));
    assert!(types.contains(&"summary".to_string()));
    let out = run(drctl(dir).args(["history", "--output", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["runbook"], "h");
    assert_eq!(v[0]["operator"], "tester");
}

#[test]
fn a_saved_plan_runs_exactly_and_only_while_nothing_moved() {
    let ws = workspace();
    let dir = ws.path();
    let rb = format!(
        "name: saved\nsteps:\n{}{}",
        append_step("a", ""),
        append_step("b", "")
    );
    std::fs::write(dir.join("rb.yaml"), &rb).unwrap();
    let out = run(drctl(dir).args(["plan", "rb.yaml", "--out", "p.json"]));
    assert!(out.status.success(), "{}", text(&out));
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("p.json")).unwrap()).unwrap();
    assert_eq!(p["kind"], "drctl_saved_plan");
    assert_eq!(p["steps"][0]["state"], "to_do");
    assert!(!dir.join(".drctl").exists(), "planning wrote state");

    // The runbook file changes after planning: the plan still runs what was planned.
    std::fs::write(dir.join("rb.yaml"), rb.replace("id: b", "id: c")).unwrap();
    // The world moved: `b` is already done now, so the plan is refused, naming it.
    std::fs::write(dir.join("state.txt"), "b\n").unwrap();
    let out = run(drctl(dir).args(["run", "--plan", "p.json", "--yes"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("step `b`: planned to do") && text(&out).contains("now already done"),
        "{}",
        text(&out)
    );
    assert!(
        !dir.join(".drctl/runs").exists(),
        "a refused plan made a run"
    );
    // As planned again: it runs the planned steps (a and b, not c).
    std::fs::remove_file(dir.join("state.txt")).unwrap();
    let out = run(drctl(dir).args(["run", "--plan", "p.json", "--yes"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(lines(&dir.join("state.txt")), ["a", "b"]);
    // drctl.yaml changed since the plan: refused.
    let env = std::fs::read_to_string(dir.join("drctl.yaml")).unwrap();
    std::fs::write(
        dir.join("drctl.yaml"),
        env.replace("name: local", "name: local2"),
    )
    .unwrap();
    let out = run(drctl(dir).args(["run", "--plan", "p.json", "--yes"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("changed since the plan"),
        "{}",
        text(&out)
    );
    // Not a plan file: refused at its place.
    std::fs::write(dir.join("bad.json"), "{\"kind\": 3}").unwrap();
    let out = run(drctl(dir).args(["run", "--plan", "bad.json", "--yes"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("bad.json:1:"), "{}", text(&out));
}
