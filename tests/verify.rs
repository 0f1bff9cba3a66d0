//! `drctl verify` against the real binary: a journal as written is intact and shows its head; one
//! edited byte is found at its event, and `resume` and `rollback` refuse that journal without
//! touching anything; a journal from before hash chains still reads, and verifies as unchained.
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{drctl, journal, only_run, run, text, workspace};

/// Three short waits: a run with a middle event to edit, and nothing to reach AWS for.
const WAITS: &str = "name: waits\nsteps:\n  - id: a\n    kind: wait\n    with: { duration: 1ms }\n  - id: b\n    kind: wait\n    with: { duration: 2ms }\n  - id: c\n    kind: wait\n    with: { duration: 3ms }\n";

/// A finished run of [`WAITS`]: its id and its journal's path.
fn finished_run(dir: &Path) -> (String, PathBuf) {
    std::fs::write(dir.join("rb.yaml"), WAITS).unwrap();
    let out = run(drctl(dir).args(["run", "rb.yaml", "--yes"]));
    assert!(out.status.success(), "{}", text(&out));
    let id = only_run(dir);
    let path = dir.join(".drctl/runs").join(&id).join("journal.jsonl");
    (id, path)
}

/// Every file under `dir` with its bytes: what "changes nothing" is checked against.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_journal_with_one_edited_byte_fails_verify_at_that_event() {
    let ws = workspace();
    let dir = ws.path();
    let (id, path) = finished_run(dir);

    // As written: intact, and the head is the last event's hash.
    let out = run(drctl(dir).args(["verify", &id]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events = journal(dir, &id);
    let head = events.last().unwrap()["hash"].as_str().unwrap().to_string();
    assert_eq!(head.len(), 64);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "journal of run {id}: {} events, hash chain intact, head {head}",
            events.len()
        )
    );
    let latest = run(drctl(dir).args(["verify", "latest"]));
    assert_eq!(latest.stdout, out.stdout, "`latest` is the only run");

    // One byte of the middle step's outcome: its duration's first digit.
    let at = events
        .iter()
        .position(|e| e["type"] == "step_succeeded" && e["step"] == "b")
        .unwrap();
    let seq = events[at]["seq"].as_u64().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let start: usize = bytes
        .split_inclusive(|&b| b == b'\n')
        .take(at)
        .map(<[u8]>::len)
        .sum();
    let key = b"\"duration_ms\":";
    let digit = start
        + bytes[start..]
            .windows(key.len())
            .position(|w| w == key)
            .unwrap()
        + key.len();
    bytes[digit] = if bytes[digit] == b'9' {
        b'8'
    } else {
        bytes[digit] + 1
    };
    std::fs::write(&path, &bytes).unwrap();

    let out = run(drctl(dir).args(["verify", &id]));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(10), "{t}");
    assert!(
        t.contains(&format!(
            "journal of run {id} is not intact: event {seq} (line {}) does not match its hash: it was changed after it was written",
            at + 1
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!("journal: .drctl/runs/{id}/journal.jsonl")),
        "{t}"
    );

    let out = run(drctl(dir).args(["verify", &id, "--output", "json"]));
    assert_eq!(out.status.code(), Some(10), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["run_id"], id.as_str());
    assert_eq!(v["intact"], false);
    assert_eq!(v["status"], "broken");
    assert_eq!(v["events"], events.len());
    assert_eq!(v["chained"], events.len());
    assert_eq!(v["head"], serde_json::Value::Null);
    assert_eq!(v["break"]["line"], at + 1);
    assert_eq!(v["break"]["seq"], seq);
    assert_eq!(v["break"]["why"], "hash_mismatch");

    // Neither resume nor rollback goes on from it, and nothing is written: not the journal,
    // not the lease.
    let before = snapshot(dir);
    for args in [["resume", &id, "--yes"], ["rollback", &id, "--yes"]] {
        let out = run(drctl(dir).args(args));
        let t = text(&out);
        assert_eq!(out.status.code(), Some(10), "{args:?}: {t}");
        assert!(t.contains("was altered"), "{args:?}: {t}");
        assert!(
            t.contains(&format!(
                "event {seq} (line {}) does not match its hash",
                at + 1
            )),
            "{args:?}: {t}"
        );
        assert_eq!(snapshot(dir), before, "{args:?} changed something");
    }
    // Looking at it is still allowed, with a warning; its report says the chain is broken.
    let out = run(drctl(dir).args(["status", &id]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("not as drctl wrote it"),
        "{}",
        text(&out)
    );
    // Its report is refused as `verify` refuses it (exit 10), writes nothing, and says why.
    let html = dir.join("tampered.html");
    let out = run(drctl(dir).args(["report", &id, "--out"]).arg(&html));
    assert_eq!(out.status.code(), Some(10), "{}", text(&out));
    assert!(text(&out).contains("BROKEN JOURNAL"), "{}", text(&out));
    assert!(text(&out).contains("--allow-broken"), "{}", text(&out));
    assert!(!html.exists(), "a report of a broken journal was written");
    // With --allow-broken it is written, under the banner, and no badge is green.
    let out = run(drctl(dir)
        .args(["report", &id, "--allow-broken", "--out"])
        .arg(&html));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dom = common::browser::dom(&html);
    let banner = &dom[dom.find("id=\"broken\"").expect("the banner")..];
    assert!(
        banner[..banner.find("</p>").unwrap()].contains("BROKEN JOURNAL"),
        "{banner}"
    );
    assert!(
        dom.find("id=\"broken\"").unwrap() < dom.find("id=\"outcome\"").unwrap(),
        "the banner comes first"
    );
    let badge = &dom[dom.find("id=\"outcome\"").unwrap()..];
    assert!(
        badge[..badge.find('>').unwrap()].contains("fail"),
        "{badge}"
    );
    let out = run(drctl(dir).args(["report", &id, "--format", "json", "--allow-broken"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        r["journal"]["chain_status"]
            .as_str()
            .unwrap()
            .starts_with("BROKEN"),
        "{}",
        r["journal"]
    );
    assert!(r["journal"]["chain_head"].is_null());
}

#[test]
fn a_journal_from_before_hash_chains_reads_and_verifies_as_unchained() {
    let ws = workspace();
    let dir = ws.path();
    let (id, path) = finished_run(dir);
    // What a drctl before hash chains wrote: each line without its last key.
    let old: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            let (body, hash) = l.rsplit_once(",\"hash\":\"").unwrap();
            assert_eq!(hash.len(), 66, "{hash}");
            format!("{body}}}\n")
        })
        .collect();
    std::fs::write(&path, &old).unwrap();

    let out = run(drctl(dir).args(["verify", &id]));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(11), "{t}");
    assert!(
        t.contains(&format!(
            "journal of run {id}: 11 events, unchained (written by a drctl before hash chains)"
        )),
        "{t}"
    );
    let out = run(drctl(dir).args(["verify", &id, "--output", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&v["status"], &v["chained"], &v["head"], &v["break"]),
        (
            &"unchained".into(),
            &0.into(),
            &serde_json::Value::Null,
            &serde_json::Value::Null
        )
    );
    // It reads as before, and resume judges it on what it says (finished), not on its hashes.
    let out = run(drctl(dir).args(["status", &id]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("succeeded"), "{}", text(&out));
    let out = run(drctl(dir).args(["resume", &id, "--yes"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already finished"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), old);
}

/// The chain goes on across every writer of a journal: a run killed mid-way, its resume, and a
/// rollback, each opening the journal anew.
#[test]
fn resume_and_rollback_continue_the_chain() {
    let ws = workspace();
    let dir = ws.path();
    let step = |id: &str| {
        format!("  - id: {id}\n    kind: exec\n    with:\n      command: [sh, -c, \"echo {id} >> out.txt\"]\n      check: [grep, -qx, {id}, out.txt]\n      undo: [sh, -c, \"sed -i /^{id}$/d out.txt\"]\n")
    };
    let rb = format!("name: undoable\nsteps:\n{}{}", step("a"), step("b"));
    std::fs::write(dir.join("rb.yaml"), rb).unwrap();
    let out = run(drctl(dir)
        .args(["run", "rb.yaml", "--yes"])
        .env("DRCTL_TEST_KILL_AFTER_EVENT", "4"));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9)
    );
    let id = only_run(dir);
    let intact = |after: &str| {
        let out = run(drctl(dir).args(["verify", &id]));
        let events = journal(dir, &id);
        let head = events.last().unwrap()["hash"].as_str().unwrap().to_string();
        assert_eq!(out.status.code(), Some(0), "after {after}: {}", text(&out));
        assert!(
            text(&out).contains(&format!(
                "{} events, hash chain intact, head {head}",
                events.len()
            )),
            "after {after}: {}",
            text(&out)
        );
        events.len()
    };
    assert_eq!(intact("the kill"), 4);
    let out = run(drctl(dir).args(["resume", &id, "--yes"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let resumed = intact("resume");
    let out = run(drctl(dir).args(["rollback", &id, "--yes"]));
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(intact("rollback") > resumed);
    assert_eq!(std::fs::read_to_string(dir.join("out.txt")).unwrap(), "");
}

#[test]
fn a_torn_last_line_is_not_an_edit() {
    let ws = workspace();
    let dir = ws.path();
    let (id, path) = finished_run(dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let torn = br#"{"seq":12,"at":"2026-11-22T0"#;
    bytes.extend_from_slice(torn);
    std::fs::write(&path, &bytes).unwrap();
    let out = run(drctl(dir).args(["verify", &id]));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("11 events, hash chain intact"), "{t}");
    assert!(
        t.contains(&format!(
            "the last line is torn ({} bytes after event 11",
            torn.len()
        )),
        "{t}"
    );
}

#[test]
fn verify_of_a_run_that_does_not_exist_is_bad_input() {
    let ws = workspace();
    let out = run(drctl(ws.path()).args(["verify", "20260101-000000-abcd"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no run `20260101-000000-abcd`"),
        "{}",
        text(&out)
    );
}
