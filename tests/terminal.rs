//! The binary as it meets a terminal and a shell: Ctrl-C at the approval prompt (on a real
//! pseudo-terminal), a reader that goes away (`| head -1`), a full disk, `--version` and
//! `drctl man`.
mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{drctl, journal, only_run, text, workspace};

const GATED: &str = "name: gated\nsteps:\n  - id: first\n    kind: wait\n    with: { duration: 10ms }\n  - id: gate\n    kind: approval\n    with: { message: promote now? }\n  - id: after\n    kind: exec\n    with: { command: [touch, after.txt] }\n";

/// Wait until `out` contains `what`, or panic with what was seen (a hang guard, not a timing
/// assertion: the bound is far above what the step needs).
fn wait_for(out: &Arc<Mutex<Vec<u8>>>, what: &str) {
    let t = Instant::now();
    loop {
        let seen = String::from_utf8_lossy(&out.lock().unwrap()).to_string();
        if seen.contains(what) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "never saw {what:?}; the terminal showed:\n{seen}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `drctl run rb.yaml` in `dir` on a pseudo-terminal: the child, what the terminal shows so far,
/// and the keyboard.
fn run_on_pty(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, Arc<Mutex<Vec<u8>>>, std::fs::File) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = std::fs::File::from(pty.slave);
    let mut cmd = drctl(dir);
    cmd.args(["run", "rb.yaml"]).env("TERM", "dumb");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut master = std::fs::File::from(pty.master);
    let answer = master.try_clone().unwrap();
    {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
    }
    (child, seen, answer)
}

/// Wait for `child` to exit after `what` (a hang guard at 30 s, not a timing assertion).
fn wait_exit(
    child: &mut std::process::Child,
    seen: &Arc<Mutex<Vec<u8>>>,
    what: &str,
) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!(
                "still running after {what}:\n{}",
                String::from_utf8_lossy(&seen.lock().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_at_the_approval_prompt_pauses_the_run_with_the_resume_hint() {
    let ws = workspace();
    std::fs::write(ws.path().join("rb.yaml"), GATED).unwrap();
    let (mut child, seen, mut answer) = run_on_pty(ws.path(), &[]);
    // The run asks to start; say yes on the terminal.
    wait_for(&seen, "[y/N]");
    std::io::Write::write_all(&mut answer, b"y\n").unwrap();
    wait_for(&seen, "type `yes` to approve here");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let t = Instant::now();
    let status = wait_exit(&mut child, &seen, "Ctrl-C");
    eprintln!("Ctrl-C at the prompt ended drctl in {:?}", t.elapsed());
    // Give the reader a moment to drain the last output.
    std::thread::sleep(Duration::from_millis(200));
    let screen = String::from_utf8_lossy(&seen.lock().unwrap()).to_string();
    assert_eq!(status.code(), Some(5), "paused is exit 5:\n{screen}");
    let id = only_run(ws.path());
    assert!(screen.contains(&format!("drctl resume {id}")), "{screen}");
    let j = journal(ws.path(), &id);
    assert!(
        j.iter().any(|r| r["type"] == "paused"),
        "the pause is journaled: {j:#?}"
    );
    assert!(
        !j.iter()
            .any(|r| r["type"] == "step_succeeded" && r["step"] == "gate"),
        "the gate was not passed"
    );
    assert!(
        !ws.path().join("after.txt").exists(),
        "nothing after the gate ran"
    );
    // The lease was given back: the run resumes at once, and the gate asks again.
    let out = common::run(drctl(ws.path()).args(["resume", &id, "--yes"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(ws.path().join("after.txt").exists());
}

#[test]
fn yes_with_words_at_the_approval_prompt_approves_with_a_comment() {
    let ws = workspace();
    std::fs::write(ws.path().join("rb.yaml"), GATED).unwrap();
    let (mut child, seen, mut answer) = run_on_pty(ws.path(), &[("DRCTL_OPERATOR", "dana")]);
    wait_for(&seen, "[y/N]");
    std::io::Write::write_all(&mut answer, b"y\n").unwrap();
    wait_for(&seen, "type `yes` to approve here");
    // Not a yes: asked again. Then a yes with the reason.
    std::io::Write::write_all(&mut answer, b"yesterday\n").unwrap();
    wait_for(&seen, "`no` to pause the run (or Ctrl-C)");
    std::io::Write::write_all(&mut answer, b"yes replica lag is 0\n").unwrap();
    let status = wait_exit(&mut child, &seen, "the approval");
    assert_eq!(status.code(), Some(0));
    let id = only_run(ws.path());
    let j = journal(ws.path(), &id);
    let g = j
        .iter()
        .find(|r| r["type"] == "approval_granted")
        .expect("approval journaled");
    assert_eq!(
        (g["by"].as_str(), g["via"].as_str(), g["comment"].as_str()),
        (Some("dana"), Some("prompt"), Some("replica lag is 0"))
    );
    assert!(ws.path().join("after.txt").exists());
}

#[test]
fn no_at_the_approval_prompt_pauses_the_run_and_says_who_declined() {
    let ws = workspace();
    std::fs::write(ws.path().join("rb.yaml"), GATED).unwrap();
    let (mut child, seen, mut answer) = run_on_pty(ws.path(), &[("DRCTL_OPERATOR", "dana")]);
    wait_for(&seen, "[y/N]");
    std::io::Write::write_all(&mut answer, b"y\n").unwrap();
    wait_for(&seen, "`no` to pause the run");
    std::io::Write::write_all(&mut answer, b"no\n").unwrap();
    let status = wait_exit(&mut child, &seen, "no");
    std::thread::sleep(Duration::from_millis(200));
    let screen = String::from_utf8_lossy(&seen.lock().unwrap()).to_string();
    assert_eq!(
        status.code(),
        Some(5),
        "a declined gate pauses (exit 5):\n{screen}"
    );
    assert!(screen.contains("declined by dana"), "{screen}");
    let id = only_run(ws.path());
    assert!(screen.contains(&format!("drctl resume {id}")), "{screen}");
    let j = journal(ws.path(), &id);
    assert!(
        j.iter().any(|r| r["type"] == "step_failed"
            && r["step"] == "gate"
            && r["error"]
                .as_str()
                .unwrap_or("")
                .contains("declined by dana")),
        "{j:#?}"
    );
    assert_eq!(j.last().unwrap()["type"], "paused");
    assert!(
        !ws.path().join("after.txt").exists(),
        "nothing after the gate ran"
    );
}

#[test]
fn an_approval_from_another_terminal_ends_the_prompt_line() {
    let ws = workspace();
    std::fs::write(ws.path().join("rb.yaml"), GATED).unwrap();
    let (mut child, seen, mut answer) = run_on_pty(ws.path(), &[]);
    wait_for(&seen, "[y/N]");
    std::io::Write::write_all(&mut answer, b"y\n").unwrap();
    let prompt = "`no` to pause the run: ";
    wait_for(&seen, prompt);
    let id = only_run(ws.path());
    let out = common::run(
        drctl(ws.path())
            .env("DRCTL_OPERATOR", "bob")
            .args(["approve", &id, "gate"]),
    );
    assert!(out.status.success(), "{}", text(&out));
    let status = wait_exit(&mut child, &seen, "the approval from another terminal");
    std::thread::sleep(Duration::from_millis(200));
    let screen = String::from_utf8_lossy(&seen.lock().unwrap()).to_string();
    assert_eq!(status.code(), Some(0), "{screen}");
    // What follows the question starts on a line of its own, saying where the answer came from.
    let after = &screen[screen.find(prompt).unwrap() + prompt.len()..];
    assert!(
        after.starts_with("\r\n") && after.contains("answered elsewhere"),
        "the prompt line was not ended: {after:?}"
    );
    let j = journal(ws.path(), &id);
    assert!(j
        .iter()
        .any(|r| r["type"] == "approval_granted" && r["by"] == "bob"));
    assert!(ws.path().join("after.txt").exists());
}

#[test]
fn steps_that_finish_while_the_gate_asks_show_as_done_on_the_live_table() {
    let ws = workspace();
    // `beside` runs next to the gate and ends while the prompt waits for an answer.
    std::fs::write(
        ws.path().join("rb.yaml"),
        "name: beside\nsteps:\n  - id: beside\n    kind: wait\n    with: { duration: 300ms }\n  - id: gate\n    kind: approval\n    depends_on: []\n    with: { message: go? }\n  - id: after\n    kind: exec\n    depends_on: [gate, beside]\n    with: { command: [touch, after.txt] }\n",
    )
    .unwrap();
    let mut cmd = drctl(ws.path());
    cmd.args(["run", "rb.yaml"])
        .env("TERM", "xterm-256color")
        .env_remove("DRCTL_PLAIN");
    let (mut child, seen, mut keys) = common::pty::spawn(cmd);
    wait_for(&seen, "[y/N]");
    std::io::Write::write_all(&mut keys, b"y\n").unwrap();
    wait_for(&seen, "`no` to pause the run");
    // Let `beside` finish while the question is on the screen.
    std::thread::sleep(Duration::from_millis(800));
    std::io::Write::write_all(&mut keys, b"yes\n").unwrap();
    let status = wait_exit(&mut child, &seen, "the approval");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(status.code(), Some(0));
    let raw = seen.lock().unwrap().clone();
    let screen = common::pty::screen(&raw, 120);
    // After the answer the table is drawn again: `beside` is done, never left "observing".
    let last_beside = screen
        .iter()
        .rev()
        .find(|l| l.contains("beside") && !l.contains("step `"))
        .unwrap_or_else(|| panic!("{}", screen.join("\n")));
    assert!(
        last_beside.contains('✓') || last_beside.contains("done"),
        "{last_beside:?} in:\n{}",
        screen.join("\n")
    );
}

#[test]
fn a_reader_that_goes_away_ends_drctl_quietly() {
    let ws = workspace();
    std::fs::write(
        ws.path().join("rb.yaml"),
        GATED
            .replace("approval", "wait")
            .replace("with: { message: promote now? }", "with: { duration: 1ms }"),
    )
    .unwrap();
    for _ in 0..3 {
        let out = common::run(drctl(ws.path()).args(["run", "rb.yaml", "--yes"]));
        assert!(out.status.success(), "{}", text(&out));
    }
    for args in [&["history"][..], &["schema", "runbook"], &["--help"]] {
        // `drctl ... | head -0`: the read end is closed before drctl writes a byte.
        let mut child = drctl(ws.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.signal() == Some(13) || status.code() == Some(0),
            "{args:?}: ended {status:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_full_disk_is_an_error_message_not_a_panic() {
    let ws = workspace();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = drctl(ws.path())
        .args(["schema", "runbook"])
        .stdout(Stdio::from(full))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write the output"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn version_names_the_commit_and_man_renders_every_command() {
    let ws = workspace();
    let out = common::run(drctl(ws.path()).arg("--version"));
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.starts_with(&format!("drctl {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{t}"
    );
    let commit = t
        .split("(commit ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{t}"
    );

    let out = common::run(drctl(ws.path()).arg("man"));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        page.starts_with(".ie") || page.contains(".TH drctl"),
        "{page}"
    );
    // The sections a script writer looks for: every exit code, and the variables drctl reads.
    let exit_status = &page[page.find(".SH \"EXIT STATUS\"").expect("EXIT STATUS")..];
    for code in 0..=14 {
        assert!(
            exit_status.contains(&format!(".TP\n{code}\n")),
            "exit {code}: {exit_status}"
        );
    }
    let environment = &page[page.find(".SH ENVIRONMENT").expect("ENVIRONMENT")..];
    for var in [
        "DRCTL_ENV",
        "DRCTL_STATE_DIR",
        "DRCTL_OPERATOR",
        "AWS_ENDPOINT_URL",
        "NO_COLOR",
    ] {
        assert!(environment.contains(var), "{var}: {environment}");
    }
    for cmd in [
        "failover",
        "failback",
        "reprotect",
        "resume",
        "rollback",
        "approve",
    ] {
        assert!(page.contains(cmd), "the page lacks {cmd}");
    }
    let out = common::run(drctl(ws.path()).args(["man", "--dir", "man"]));
    assert!(out.status.success(), "{}", text(&out));
    for page in ["drctl.1", "drctl-failover.1", "drctl-resume.1"] {
        let p = ws.path().join("man").join(page);
        assert!(
            std::fs::read_to_string(&p)
                .unwrap_or_default()
                .contains(".TH"),
            "{} missing or empty",
            p.display()
        );
    }
}
