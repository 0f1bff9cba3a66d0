//! Crash safety of the real binary: kill it with SIGKILL right after each journal event in turn,
//! resume, and check that every command ran exactly once and the end state matches an
//! uninterrupted run.
mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use common::{drctl, journal, only_run, run, text, workspace};

/// Parallel branches, a join, an approval and a checkpoint: every kind of event appears.
const RUNBOOK: &str = r#"name: crash
steps:
  - id: a
    kind: exec
    with:
      command: [sh, -c, "echo a >> out.txt; echo a >> ran.log"]
      check: [grep, -qx, a, out.txt]
      undo: [sh, -c, "sed -i /^a$/d out.txt"]
    checkpoint: after-a
  - id: b
    kind: exec
    depends_on: []
    with:
      command: [sh, -c, "echo b >> out.txt; echo b >> ran.log"]
      check: [grep, -qx, b, out.txt]
  - id: gate
    kind: approval
    depends_on: [a, b]
    with: { message: "go on" }
  - id: c
    kind: exec
    with:
      command: [sh, -c, "echo c >> out.txt; echo c >> ran.log"]
      check: [grep, -qx, c, out.txt]
  - id: d
    kind: exec
    with:
      command: [sh, -c, "echo d >> out.txt; echo d >> ran.log"]
      check: [grep, -qx, d, out.txt]
"#;

fn sorted_lines(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn killed_after_every_event_resumes_without_repeating_anything() {
    // The reference: one uninterrupted run.
    let reference = workspace();
    std::fs::write(reference.path().join("rb.yaml"), RUNBOOK).unwrap();
    let out = run(drctl(reference.path()).args(["run", "rb.yaml", "--yes"]));
    assert!(out.status.success(), "{}", text(&out));
    let events = journal(reference.path(), &only_run(reference.path())).len();
    let want = sorted_lines(&reference.path().join("out.txt"));
    assert_eq!(want, ["a", "b", "c", "d"]);

    let mut unkilled = 0;
    for k in 1..=events {
        let ws = workspace();
        let dir = ws.path();
        std::fs::write(dir.join("rb.yaml"), RUNBOOK).unwrap();
        let out = run(drctl(dir)
            .args(["run", "rb.yaml", "--yes"])
            .env("DRCTL_TEST_KILL_AFTER_EVENT", k.to_string()));
        let killed = out.status.signal() == Some(9);
        if !killed {
            // Parallel branches can finish in fewer events than the reference; then the run completed.
            assert!(out.status.success(), "k={k}: {}", text(&out));
        }
        let id = only_run(dir);
        if !killed {
            assert!(
                journal(dir, &id).len() < k,
                "k={k}: the kill hook did not fire"
            );
            unkilled += 1;
        }
        if killed {
            assert_eq!(
                journal(dir, &id).len(),
                k,
                "k={k}: the process outlived its kill point"
            );
            // The lease of a killed process on this host is stale; resume takes it over.
            let out = run(drctl(dir).args(["resume", &id, "--yes"]));
            let t = text(&out);
            let finished_already = t.contains("already finished");
            assert!(
                out.status.success() || finished_already,
                "k={k}: resume failed: {t}"
            );
        }
        assert_eq!(
            sorted_lines(&dir.join("out.txt")),
            want,
            "k={k}: end state differs"
        );
        assert_eq!(
            sorted_lines(&dir.join("ran.log")),
            want,
            "k={k}: a command ran twice or never"
        );
        let events = journal(dir, &id);
        let last = events.last().unwrap();
        assert_eq!(last["type"], "run_finished", "k={k}");
        assert_eq!(last["status"], "succeeded", "k={k}");
        // Sequence numbers have no gaps across the crash.
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["seq"], (i + 1) as u64, "k={k}");
        }
    }
    assert!(
        unkilled <= 2,
        "{unkilled} of {events} runs were never killed"
    );
}

#[test]
fn a_torn_last_line_is_cut_back_with_a_warning() {
    let ws = workspace();
    let dir = ws.path();
    std::fs::write(dir.join("rb.yaml"), RUNBOOK).unwrap();
    let out = run(drctl(dir)
        .args(["run", "rb.yaml", "--yes"])
        .env("DRCTL_TEST_KILL_AFTER_EVENT", "3"));
    assert_eq!(out.status.signal(), Some(9));
    let id = only_run(dir);
    let path = dir.join(".drctl/runs").join(&id).join("journal.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(br#"{"seq":4,"at":"2026-11-22T0"#);
    std::fs::write(&path, &bytes).unwrap();
    let out = run(drctl(dir).args(["resume", &id, "--yes"]));
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("torn last line"), "no warning: {t}");
    let events = journal(dir, &id);
    assert_eq!(
        events[3]["type"], "resumed",
        "the torn record was cut, the 3 whole ones kept"
    );
    assert!(std::fs::read(&path).unwrap().len() > whole);
    assert_eq!(sorted_lines(&dir.join("ran.log")), ["a", "b", "c", "d"]);
}
