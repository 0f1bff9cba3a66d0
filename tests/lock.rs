//! The single-writer lease, between two real processes.
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{drctl, run, text, workspace};

const SLOW: &str = "name: slow\nsteps:\n  - id: hold\n    kind: wait\n    with: { duration: 4s }\n";
const FAST: &str =
    "name: fast\nsteps:\n  - id: quick\n    kind: wait\n    with: { duration: 10ms }\n";

fn wait_for_lease(dir: &std::path::Path) -> serde_json::Value {
    let path = dir.join(".drctl/leases/local.json");
    let t = Instant::now();
    loop {
        if let Ok(b) = std::fs::read(&path) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) {
                if v["released"] == false {
                    return v;
                }
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "first run never took the lease"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_run_is_refused_while_the_first_holds_the_lease() {
    let ws = workspace();
    let dir = ws.path();
    std::fs::write(dir.join("slow.yaml"), SLOW).unwrap();
    std::fs::write(dir.join("fast.yaml"), FAST).unwrap();
    let mut first = drctl(dir)
        .args(["run", "slow.yaml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lease = wait_for_lease(dir);
    assert_eq!(lease["token"], 1);

    let out = run(drctl(dir).args(["run", "fast.yaml", "--yes"]));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("locked by tester"), "{t}");
    assert!(
        t.contains(&format!("pid {}", first.id())),
        "names the holder: {t}"
    );
    assert!(t.contains("since"), "{t}");
    // Refused before doing anything: still only the first run exists.
    assert_eq!(
        std::fs::read_dir(dir.join(".drctl/runs")).unwrap().count(),
        1
    );

    assert!(first.wait().unwrap().success());
    let out = run(drctl(dir).args(["run", "fast.yaml", "--yes"]));
    assert!(out.status.success(), "{}", text(&out));
    let lease: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(".drctl/leases/local.json")).unwrap())
            .unwrap();
    assert_eq!(
        lease["token"], 2,
        "the fencing token grows with each acquisition"
    );
}

#[test]
fn a_dead_holder_is_detected_and_break_lock_needs_confirmation() {
    let ws = workspace();
    let dir = ws.path();
    std::fs::write(dir.join("slow.yaml"), SLOW).unwrap();
    std::fs::write(dir.join("fast.yaml"), FAST).unwrap();

    // A live holder: --break-lock with no terminal to confirm on and no --yes changes nothing.
    let mut first = drctl(dir)
        .args(["run", "slow.yaml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lease(dir);
    let out = run(drctl(dir)
        .args(["run", "fast.yaml", "--break-lock"])
        .stdin(Stdio::null()));
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    let lease: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(".drctl/leases/local.json")).unwrap())
            .unwrap();
    assert_eq!(lease["pid"], first.id());
    assert_eq!(lease["token"], 1);

    // The holder dies without releasing. A new run is refused: the dead holder's run is
    // unfinished, and drctl says how to finish it (nothing written, the lease untouched).
    first.kill().unwrap();
    first.wait().unwrap();
    let before = std::fs::read(dir.join(".drctl/leases/local.json")).unwrap();
    let out = run(drctl(dir).args(["run", "fast.yaml", "--yes"]));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    let id = common::only_run(dir);
    assert!(
        t.contains(&format!("drctl resume {id}")) && t.contains(&format!("drctl rollback {id}")),
        "{t}"
    );
    assert_eq!(
        std::fs::read(dir.join(".drctl/leases/local.json")).unwrap(),
        before
    );
    // Resuming it detects the stale lease and takes over.
    let out = run(drctl(dir).args(["resume", &id, "--yes"]));
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("took over the lease (token 1)"), "{t}");
    assert!(t.contains(&format!("pid {}", first.id())), "{t}");
}

#[test]
fn break_lock_with_yes_takes_a_live_lease_and_fences_the_holder() {
    let ws = workspace();
    let dir = ws.path();
    std::fs::write(dir.join("slow.yaml"), SLOW).unwrap();
    std::fs::write(dir.join("fast.yaml"), FAST).unwrap();
    let mut first = drctl(dir)
        .args(["run", "slow.yaml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lease(dir);
    let out = run(drctl(dir).args(["run", "fast.yaml", "--yes", "--break-lock"]));
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("took over the lease (token 1)"), "{t}");
    first.wait().unwrap();
    // The first holder's release does not free the lease it no longer owns.
    let lease: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(".drctl/leases/local.json")).unwrap())
            .unwrap();
    assert_eq!(lease["token"], 2);
}

#[test]
fn a_run_that_fails_after_taking_the_lease_releases_it() {
    let ws = workspace();
    let dir = ws.path();
    std::fs::write(dir.join("fast.yaml"), FAST).unwrap();
    // The journal cannot be created: `runs` is a file where a directory should be.
    std::fs::create_dir_all(dir.join(".drctl")).unwrap();
    std::fs::write(dir.join(".drctl/runs"), "").unwrap();
    let out = run(drctl(dir).args(["run", "fast.yaml", "--yes"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let lease: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(".drctl/leases/local.json")).unwrap())
            .unwrap();
    assert_eq!(
        lease["released"], true,
        "the lease outlived the failed command: {lease}"
    );
    // So the next command is not locked out, and takes no stale-lease detour.
    std::fs::remove_file(dir.join(".drctl/runs")).unwrap();
    let out = run(drctl(dir).args(["run", "fast.yaml", "--yes"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !text(&out).contains("took over the lease"),
        "{}",
        text(&out)
    );
}
