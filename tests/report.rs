//! `drctl report` on real runs of local runbooks (no AWS): a succeeded run with a retry and an
//! approval from a second operator, a failed run, a paused-then-resumed run and a rolled-back
//! run, each report checked field by field against its journal; the HTML rendered in headless
//! Chromium; `report --history` over them; `drctl schema report`.
mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{drctl, journal, run, text, workspace};
use serde_json::Value;

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn runs(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join(".drctl/runs"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The run that is in `dir` and not in `before` (ids sort by second only: two runs of one
/// second sort by their random suffix).
fn new_run(dir: &Path, before: &[String]) -> Option<String> {
    runs(dir).into_iter().find(|r| !before.contains(r))
}

fn report_json(dir: &Path, id: &str) -> Value {
    let out = run(drctl(dir).args(["report", id, "--format", "json"]));
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("report is JSON")
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// What every report must say, read straight from the journal.
fn check_against_journal(r: &Value, j: &[Value], steps: &[&str]) {
    let first = &j[0];
    let last = j.last().unwrap();
    assert_eq!(r["schema"], "drctl.report/v1");
    assert_eq!(r["run_id"], first["run_id"]);
    assert_eq!(r["runbook"], first["runbook_name"]);
    assert_eq!(r["env"], first["env_name"]);
    assert_eq!(r["command"], first["command"]);
    assert_eq!(r["started_by"]["user"], first["operator"]["user"]);
    assert_eq!(r["started_by"]["host"], first["operator"]["host"]);
    assert_eq!(at(&r["started_at"]), at(&first["at"]));
    assert_eq!(at(&r["last_event_at"]), at(&last["at"]));
    assert_eq!(
        r["duration_ms"].as_i64().unwrap(),
        (at(&last["at"]) - at(&first["at"])).num_milliseconds()
    );
    assert_eq!(r["journal"]["events"].as_u64().unwrap(), j.len() as u64);
    assert_eq!(
        r["journal"]["chain_head"], last["hash"],
        "the chain's head is the last event's hash"
    );
    assert_eq!(r["journal"]["chained"], true);
    let ids: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, steps, "every step of the runbook, in file order");
    // Each step's end is the journal's record of its end.
    for s in r["steps"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let ended = j.iter().rev().find(|e| {
            e["step"] == id
                && (e["type"] == "step_succeeded"
                    || e["type"] == "step_skipped"
                    || (e["type"] == "step_failed" && e["retry_in_ms"].is_null()))
        });
        // Its start is its first `step_started`; a step the journal never started has no bar.
        let started = j
            .iter()
            .find(|e| e["step"] == id && e["type"] == "step_started");
        match (started, s["span"].as_object()) {
            (Some(b), Some(span)) => assert_eq!(
                span["start_ms"].as_i64().unwrap(),
                (at(&b["at"]) - at(&first["at"])).num_milliseconds(),
                "step {id} starts where the journal says"
            ),
            (None, None) => assert_eq!(s["state"], "not_started", "step {id}"),
            (b, span) => panic!("step {id}: journal start {b:?}, report span {span:?}"),
        }
        if let Some(e) = ended {
            let span = s["span"].as_object().expect("an ended step has a span");
            assert_eq!(
                span["end_ms"].as_i64().unwrap(),
                (at(&e["at"]) - at(&first["at"])).num_milliseconds(),
                "step {id} ends where the journal says"
            );
        }
        if let Some(e) = ended.filter(|e| e["type"] == "step_succeeded") {
            assert_eq!(s["duration_ms"], e["duration_ms"], "step {id}");
        }
    }
}

fn step<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {r}"))
}

/// An approval comment with table syntax and markup in it.
const COMMENT: &str = "lag is 0, go | </td><script>alert(1)</script>";

const FLAKY: &str = "  - id: flaky\n    kind: exec\n    retries: 1\n    backoff: 10ms\n    with:\n      command: [sh, -c, \"test -f tried || { touch tried; exit 1; }\"]\n";

#[test]
fn reports_of_succeeded_failed_resumed_and_rolled_back_runs_match_their_journals() {
    let ws = workspace();
    let dir = ws.path();

    // 1. Succeeded: a retry, and an approval from a second operator with a comment.
    let rb = format!(
        "name: gated\nsteps:\n{FLAKY}  - id: gate\n    kind: approval\n  - id: after\n    kind: wait\n    with: {{ duration: 10ms }}\n"
    );
    std::fs::write(dir.join("gated.yaml"), rb).unwrap();
    let before = runs(dir);
    let child = drctl(dir)
        .args(["run", "gated.yaml", "--yes", "--wait-approval"])
        .env("DRCTL_OPERATOR", "alice")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the gate", || {
        new_run(dir, &before).is_some_and(|id| {
            journal(dir, &id)
                .iter()
                .any(|e| e["type"] == "step_started" && e["step"] == "gate")
        })
    });
    let id = new_run(dir, &before).unwrap();
    let ok = run(drctl(dir)
        .args(["approve", &id, "gate", "--comment", COMMENT])
        .env("DRCTL_OPERATOR", "bob"));
    assert!(ok.status.success(), "{}", text(&ok));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let j = journal(dir, &id);
    let r = report_json(dir, &id);
    check_against_journal(&r, &j, &["flaky", "gate", "after"]);
    assert_eq!(r["outcome"], "succeeded");
    assert_eq!(r["finished"], true);
    assert_eq!(r["started_by"]["user"], "alice");
    assert_eq!(r["approvals"].as_array().unwrap().len(), 1);
    let a = &r["approvals"][0];
    assert_eq!(
        (
            a["step"].as_str(),
            a["by"].as_str(),
            a["via"].as_str(),
            a["comment"].as_str()
        ),
        (Some("gate"), Some("bob"), Some("cli"), Some(COMMENT))
    );
    let flaky = step(&r, "flaky");
    assert_eq!(flaky["attempts"], 2);
    assert_eq!(flaky["retries_at_ms"].as_array().unwrap().len(), 1);
    assert_eq!(flaky["state"], "done");
    assert_eq!(step(&r, "gate")["wait"], true);
    assert_eq!(
        r["critical_path"],
        serde_json::json!(["flaky", "gate", "after"])
    );
    // Not a recovery run: nothing to judge, and it says so.
    assert_eq!(r["recovery"], false);
    assert_eq!(r["rto"]["verdict"], "not_applicable");
    // Markdown names who approved and why; HTML renders in a browser with one bar per step.
    let md = text(&run(drctl(dir).args(["report", &id])));
    // What a user typed is shown, never interpreted: not as table syntax, not as HTML.
    for want in [
        "| gate | bob | cli |",
        "lag is 0, go \\| &lt;/td&gt;&lt;script&gt;",
        "alice@",
        "hash chain head:",
    ] {
        assert!(md.contains(want), "markdown lacks {want:?}:\n{md}");
    }
    let html = dir.join("r.html");
    let w = run(drctl(dir).args(["report", &id, "--out"]).arg(&html));
    assert!(w.status.success(), "{}", text(&w));
    let dom = common::browser::dom(&html);
    for s in ["flaky", "gate", "after"] {
        assert_eq!(common::browser::bars(&dom, s), 1, "one Gantt bar for {s}");
    }
    assert!(
        dom.contains("class=\"approver\">bob<"),
        "the approver is shown"
    );
    assert!(!dom.contains("<script"), "a comment is text, not markup");
    assert!(
        dom.contains("lag is 0, go | &lt;/td&gt;&lt;script&gt;"),
        "the comment is shown as typed"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains(" src=") && !page.contains(" href=") && !page.contains("url("),
        "the HTML fetches nothing"
    );
    assert!(dom.contains("id=\"outcome\""), "the outcome is shown");
    common::browser::screenshot(&html, "report-succeeded");

    // 2. Failed: the step's error, and what never started.
    std::fs::write(
        dir.join("fails.yaml"),
        "name: fails\nsteps:\n  - id: first\n    kind: wait\n    with: { duration: 10ms }\n  - id: broken\n    kind: exec\n    on_failure: abort\n    with: { command: [sh, -c, \"echo boom >&2; exit 3\"] }\n  - id: never\n    kind: wait\n    with: { duration: 10ms }\n",
    )
    .unwrap();
    let before = runs(dir);
    let out = run(drctl(dir).args(["run", "fails.yaml", "--yes"]));
    assert!(!out.status.success());
    let id = new_run(dir, &before).expect("the failed run");
    let j = journal(dir, &id);
    let r = report_json(dir, &id);
    check_against_journal(&r, &j, &["first", "broken", "never"]);
    let end = j.last().unwrap();
    assert_eq!(end["type"], "run_finished");
    assert_eq!(r["outcome"], end["status"], "the outcome is the journal's");
    assert_eq!(step(&r, "broken")["state"], "failed");
    assert!(
        step(&r, "broken")["detail"]
            .as_str()
            .unwrap()
            .contains("exit"),
        "{r}"
    );
    assert_eq!(step(&r, "never")["state"], "not_started");
    assert!(step(&r, "never")["span"].is_null());

    // 3. Paused by SIGTERM, then resumed by someone else.
    std::fs::write(
        dir.join("long.yaml"),
        "name: long\nsteps:\n  - id: a\n    kind: wait\n    with: { duration: 10ms }\n  - id: soak\n    kind: wait\n    with: { duration: 5s }\n  - id: b\n    kind: wait\n    with: { duration: 10ms }\n",
    )
    .unwrap();
    let before = runs(dir);
    let child = drctl(dir)
        .args(["run", "long.yaml", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the soak step", || {
        new_run(dir, &before).is_some_and(|id| {
            journal(dir, &id)
                .iter()
                .any(|e| e["type"] == "step_intent" && e["step"] == "soak")
        })
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let id = new_run(dir, &before).unwrap();
    let paused = report_json(dir, &id);
    assert_eq!(paused["outcome"], "paused");
    assert_eq!(paused["finished"], false);
    assert_eq!(step(&paused, "b")["state"], "not_started");
    let res = run(drctl(dir)
        .args(["resume", &id, "--yes"])
        .env("DRCTL_OPERATOR", "carol"));
    assert!(res.status.success(), "{}", text(&res));
    let j = journal(dir, &id);
    let r = report_json(dir, &id);
    check_against_journal(&r, &j, &["a", "soak", "b"]);
    assert_eq!(r["outcome"], "succeeded");
    let sessions = r["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{r}");
    assert_eq!(
        (sessions[0]["kind"].as_str(), sessions[0]["user"].as_str()),
        (Some("resume"), Some("carol"))
    );
    let pauses = r["pauses"].as_array().unwrap();
    assert_eq!(pauses.len(), 1);
    let paused_at = j.iter().find(|e| e["type"] == "paused").unwrap();
    let resumed_at = j.iter().find(|e| e["type"] == "resumed").unwrap();
    assert_eq!(
        pauses[0]["start_ms"].as_i64().unwrap(),
        (at(&paused_at["at"]) - at(&j[0]["at"])).num_milliseconds()
    );
    assert_eq!(
        pauses[0]["end_ms"].as_i64().unwrap(),
        (at(&resumed_at["at"]) - at(&j[0]["at"])).num_milliseconds()
    );

    // 4. Rolled back.
    std::fs::write(
        dir.join("undoable.yaml"),
        "name: undoable\nsteps:\n  - id: mark\n    kind: exec\n    with:\n      command: [sh, -c, \"echo x > mark.txt\"]\n      check: [test, -f, mark.txt]\n      undo: [rm, -f, mark.txt]\n",
    )
    .unwrap();
    let before = runs(dir);
    let out = run(drctl(dir).args(["run", "undoable.yaml", "--yes"]));
    assert!(out.status.success(), "{}", text(&out));
    let id = new_run(dir, &before).expect("the undoable run");
    let out = run(drctl(dir).args(["rollback", &id, "--yes"]));
    assert!(
        out.status.success() || out.status.code() == Some(6),
        "{}",
        text(&out)
    );
    let j = journal(dir, &id);
    let r = report_json(dir, &id);
    check_against_journal(&r, &j, &["mark"]);
    assert_eq!(r["outcome"], "rolled_back");
    assert_eq!(step(&r, "mark")["state"], "undone");
    assert_eq!(r["sessions"][0]["kind"], "rollback");

    // The history: every run, oldest first, and step durations by kind.
    let h = run(drctl(dir).args(["report", "--history", "--format", "json"]));
    assert!(h.status.success(), "{}", text(&h));
    let h: Value = serde_json::from_slice(&h.stdout).unwrap();
    let listed: Vec<&str> = h["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, runs(dir));
    let wait = h["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "wait")
        .expect("wait stats");
    assert!(wait["samples"].as_u64().unwrap() >= 5, "{wait}");
    assert!(wait["p50_ms"].as_u64().unwrap() <= wait["p90_ms"].as_u64().unwrap());
    let hh = dir.join("history.html");
    let w = run(drctl(dir).args(["report", "--history", "--out"]).arg(&hh));
    assert!(w.status.success(), "{}", text(&w));
    let dom = common::browser::dom(&hh);
    for id in runs(dir) {
        assert!(
            dom.contains(&format!("<tr data-run=\"{id}\">")),
            "history lists {id}"
        );
    }
    assert!(dom.contains("class=\"trend\""), "the trend chart is drawn");
    // Run labels stand inside the chart and clear of the legend: each is written at 60° from
    // its point, so it reaches at most its length (20 characters of 10px type, ~6px each)
    // times sin/cos of that angle to the left and below.
    let attr = |tag: &str, name: &str| -> f64 {
        let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        tag[at..].split('"').next().unwrap().parse().unwrap()
    };
    let legend = &dom[dom.find("class=\"legend\"").unwrap()..];
    let legend_y = attr(legend, "y");
    for label in dom.split("<text class=\"run-label\"").skip(1) {
        let (x, y) = (attr(label, "x"), attr(label, "y"));
        let len = 20.0 * 6.0;
        assert!(x - len * 0.5 >= 0.0, "label clipped at the left: x {x}");
        assert!(
            y + len * 0.87 < legend_y,
            "label runs into the legend: y {y}, legend {legend_y}"
        );
    }
}

#[test]
fn the_report_schema_is_printed_and_names_its_version() {
    let ws = workspace();
    let out = run(drctl(ws.path()).args(["schema", "report"]));
    assert!(out.status.success(), "{}", text(&out));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["title"], "Report");
    for k in [
        "schema",
        "run_id",
        "outcome",
        "steps",
        "rto",
        "rpo",
        "approvals",
        "journal",
    ] {
        assert!(s["properties"].get(k).is_some(), "schema lacks {k}");
    }
    let rto = s["$defs"]["Rto"]["properties"].as_object().unwrap();
    assert!(
        rto.contains_key("measured_ms") && rto.contains_key("target_ms"),
        "durations carry their unit"
    );
}

#[test]
fn a_report_of_no_such_run_is_a_clear_error_and_writes_nothing() {
    let ws = workspace();
    let dir = ws.path();
    let out = run(drctl(dir).args(["report", "20260101-000000-beef", "--out", "x.html"]));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("20260101-000000-beef"),
        "{}",
        text(&out)
    );
    assert!(!dir.join("x.html").exists());
    let out = run(drctl(dir).args(["report", "../../etc", "--format", "json"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
