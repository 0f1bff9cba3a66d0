//! Shared state on the sandbox's DynamoDB (`state: backend: dynamodb`): the lease and journals
//! in one table that every drctl shares.
//!
//! - Two operators in two directories type `drctl failover` at once: exactly one runs, the
//!   other exits 3 naming the holder, and any directory sees the one run.
//! - A writer whose lease was broken is refused at its very next append (the library, against
//!   the sandbox's table); a record larger than an item is stored in parts and reads back whole.
//! - Three watchers: one cut off from the primary alone never fails over; a real outage seen by
//!   all three is failed over exactly once, journaled in the table.
//! - The table out of reach stops a mutating command with exit 14 before anything acts.
//!
//! The crash sweep on this backend (SIGKILL after each journal event, resume from another
//! directory) is in tests/crash_failover.rs.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::sandbox::Sandbox;
use common::watch::{get, Watcher};
use common::{run, text};
use serde_json::{json, Value};

const TABLE: &str = "drctl-state";
const TABLE_REGION: &str = "us-east-2";

/// Point the seeded drctl.yaml at the table (`edit` may change more), and create the table.
fn shared(sb: &Sandbox, edit: impl FnOnce(&mut Value)) {
    let mut env: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(sb.env_file()).unwrap()).unwrap();
    env["state"] = json!({"backend": "dynamodb", "table": TABLE, "region": TABLE_REGION});
    edit(&mut env);
    std::fs::write(sb.env_file(), serde_saphyr::to_string(&env).unwrap()).unwrap();
    let out = run(common::drctl(sb.dir.path()).args(["state", "init", "--yes"]));
    assert!(out.status.success(), "state init: {}", text(&out));
}

/// A second working directory with the same drctl.yaml (another operator's laptop).
fn other_dir(sb: &Sandbox) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(sb.env_file(), d.path().join("drctl.yaml")).unwrap();
    d
}

fn history(dir: &Path) -> Vec<Value> {
    let out = run(common::drctl(dir).args(["history", "--output", "json"]));
    assert!(out.status.success(), "history: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Successful mutating AWS calls, without the state table's own.
fn mutating(sb: &Sandbox) -> u64 {
    let calls = sb.control("GET", "/_sandbox/calls", None);
    calls["mutating"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(op, _)| !op.starts_with("dynamodb:"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum()
}

#[test]
fn two_operators_in_two_directories_cannot_fail_over_at_once() {
    let sb = Sandbox::start();
    shared(&sb, |_| {});
    let (a, b) = (other_dir(&sb), other_dir(&sb));
    let failover = |dir: &Path| {
        let mut c = common::drctl(dir);
        c.args([
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ]);
        c
    };
    let (mut ca, mut cb) = (failover(a.path()), failover(b.path()));
    let ta = std::thread::spawn(move || run(&mut ca));
    let tb = std::thread::spawn(move || run(&mut cb));
    let outs = [ta.join().unwrap(), tb.join().unwrap()];
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![Some(0), Some(3)],
        "exactly one failover, the other locked out:\n--- a\n{}\n--- b\n{}",
        text(&outs[0]),
        text(&outs[1])
    );
    let loser = &outs[codes.iter().position(|c| *c == Some(3)).unwrap()];
    let runs = history(sb.dir.path());
    assert_eq!(runs.len(), 1, "{runs:?}");
    let id = runs[0]["run_id"].as_str().unwrap();
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs:?}");
    // The refusal names who holds the environment and which run.
    let t = text(loser);
    assert!(
        t.contains("locked by tester") && t.contains(id),
        "the loser should name the holder and its run: {t}"
    );
    // Nothing of the run lives in either directory: any machine sees it from the table.
    for d in [a.path(), b.path(), sb.dir.path()] {
        assert!(
            !d.join(".drctl/runs").exists(),
            "{} has local runs",
            d.display()
        );
    }
    let c = other_dir(&sb);
    let out = run(common::drctl(c.path()).args(["status", id, "--output", "json"]));
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["run"]["run_id"], id);
    let out = run(common::drctl(c.path()).args(["verify", id]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(common::drctl(c.path()).args(["report", id, "--output", "json"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("dynamodb://{TABLE}/sandbox/{id}")));
}

#[test]
fn an_operator_in_another_directory_approves_a_waiting_run() {
    let sb = Sandbox::start();
    shared(&sb, |_| {});
    let (a, b) = (other_dir(&sb), other_dir(&sb));
    let marks = a.path().join("marks.txt");
    std::fs::write(
        a.path().join("gated.yaml"),
        format!(
            "name: gated\nsteps:\n  - id: gate\n    kind: approval\n    with: {{ message: \"go on?\" }}\n  - id: mark\n    kind: exec\n    with:\n      command: [sh, -c, \"echo ran >> {}\"]\n",
            marks.display()
        ),
    )
    .unwrap();
    let child = common::drctl(a.path())
        .args(["run", "gated.yaml", "--yes", "--wait-approval"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The run is in the table, seen from the other directory; it waits at its gate.
    let t0 = Instant::now();
    let id = loop {
        if let Some(r) = history(b.path()).first() {
            break r["run_id"].as_str().unwrap().to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no run in the table"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(1));
    assert!(!marks.exists(), "the gate held");
    let out = run(common::drctl(b.path())
        .env("DRCTL_OPERATOR", "bob")
        .args(["approve", &id, "gate"]));
    assert!(out.status.success(), "{}", text(&out));
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(std::fs::read_to_string(&marks).unwrap().lines().count(), 1);
    // Nothing went through a local mailbox.
    assert!(!b.path().join(".drctl").exists());
    assert!(!a.path().join(".drctl/runs").exists());
    let report = run(common::drctl(b.path()).args(["report", &id, "--output", "json"]));
    assert!(
        text(&report).contains("bob"),
        "the report names the approver"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fenced_out_writer_is_refused_at_its_next_append() {
    use drctl::journal::dynamo::DynamoState;
    use drctl::journal::{Event, JournalError, JournalStore, LeaseRequest, LeaseStore, RunStatus};
    let sb = tokio::task::spawn_blocking(Sandbox::start).await.unwrap();
    let settings = drctl::config::env::AwsSettings {
        endpoint_url: Some(sb.endpoint.clone()),
        ..Default::default()
    };
    common::sandbox::sdk_credentials();
    let client =
        drctl::aws::state_client(&settings, TABLE_REGION, None, Duration::from_secs(5)).await;
    let store = DynamoState::new(
        client,
        TABLE,
        TABLE_REGION,
        "sandbox",
        Duration::from_secs(5),
    );
    store
        .create_table(Duration::from_secs(60), |_| {})
        .await
        .unwrap();
    let req = |who: &str| LeaseRequest {
        env: "sandbox".into(),
        owner: who.into(),
        command: "test".into(),
        run_id: Some("r1".into()),
        ttl: Duration::from_secs(60),
    };
    let finished = |m: &str| Event::RunFinished {
        status: RunStatus::Aborted,
        message: m.into(),
    };
    let (a, _) = store.acquire(&req("alice")).await.unwrap();
    assert!(matches!(
        store.acquire(&req("bob")).await,
        Err(drctl::journal::LeaseError::Held(_))
    ));
    let mut ja = store.create("r1").await.unwrap();
    ja.append(a.token, finished("first")).await.unwrap();
    // A record larger than one DynamoDB item (400 KB) goes in parts, in the same transaction.
    let big = "x".repeat(1_000_000);
    ja.append(a.token, finished(&big)).await.unwrap();

    // Bob breaks the lock: his token is higher, and Alice's very next append is refused.
    let (b, replaced) = store.break_and_acquire(&req("bob")).await.unwrap();
    assert_eq!(b.token, a.token + 1);
    assert_eq!(replaced.unwrap().token, a.token);
    let refused = ja.append(a.token, finished("late")).await.unwrap_err();
    assert!(
        matches!(refused, JournalError::Fenced { ours, theirs, .. } if ours == a.token && theirs == b.token),
        "{refused}"
    );
    assert!(store.renew(&a, Duration::from_secs(60)).await.is_err());
    let (records, _) = store.read_intact("r1").await.unwrap();
    assert_eq!(records.len(), 2, "the refused record was not written");
    assert!(
        matches!(&records[1].event, Event::RunFinished { message, .. } if *message == big),
        "the large record reads back whole"
    );
    // Bob goes on from the shared journal, with his token, and the chain holds.
    let (mut jb, _) = store.open_writer("r1").await.unwrap();
    jb.append(b.token, finished("bob")).await.unwrap();
    let chain = store.verify_chain("r1").await.unwrap();
    assert_eq!(chain.events, 3);
    assert!(chain.broken.is_none(), "{chain:?}");
    assert_eq!(store.list().await.unwrap(), vec!["r1".to_string()]);
    drop(sb);
}

#[test]
fn a_state_table_out_of_reach_stops_a_failover_before_anything_acts() {
    let sb = Sandbox::start();
    shared(&sb, |_| {});
    sb.control("DELETE", "/_sandbox/calls", None);
    // DynamoDB in the table's region does not answer.
    sb.fault(json!({"region": TABLE_REGION, "service": "dynamodb", "kind": "outage"}));
    let t0 = Instant::now();
    let out = run(common::drctl(sb.dir.path()).args([
        "failover",
        "--region",
        "us-west-2",
        "--yes",
        "--approve-irreversible",
    ]));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(14), "{t}");
    assert!(
        t.contains(TABLE) && t.contains("does not fall back"),
        "the message names the table and says there is no fallback: {t}"
    );
    assert_eq!(mutating(&sb), 0, "nothing acted: {t}");
    assert!(!sb.dir.path().join(".drctl/runs").exists());
    assert!(!sb.dir.path().join(".drctl/leases").exists());
    // Bounded: the table's timeout (10 s) and retries, not a hang.
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "{:?}",
        t0.elapsed()
    );
    sb.clear_faults();
    assert!(history(sb.dir.path()).is_empty());
}

/// A failover runbook that proves the standby serves and leaves one line per execution.
fn marking_runbook(marks: &Path) -> String {
    format!(
        r#"name: test-failover
steps:
  - id: standby-serves
    kind: http.check
    with:
      url: ${{standby.albs.backend.url}}/health
      body_contains: ok
  - id: mark
    kind: exec
    with:
      command: [sh, -c, "echo ran >> {}"]
"#,
        marks.display()
    )
}

#[test]
fn three_watchers_fail_over_once_and_never_on_a_one_watcher_partition() {
    let sb = Sandbox::start();
    let marks = sb.dir.path().join("marks.txt");
    let rb = sb.dir.path().join("failover.yaml");
    std::fs::write(&rb, marking_runbook(&marks)).unwrap();
    shared(&sb, |env| {
        env["probes"]["watch"] = json!({
            "primary": ["primary-backend"],
            "standby": ["standby-backend"],
            "confirm_for": "1s",
            "action": "failover",
            "runbook": rb.to_str().unwrap(),
            "cooldown": "10m",
            "heartbeat": "500ms",
            "peer_timeout": "3s",
        });
    });
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| other_dir(&sb)).collect();
    let ws: Vec<Watcher> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let id = format!("w{}", i + 1);
            Watcher::start_with(
                d.path(),
                &d.path().join("drctl.yaml"),
                &["--watcher-id", &id],
            )
        })
        .collect();
    for w in &ws {
        w.wait_for(
            "primary-backend [primary]: unknown -> healthy",
            Duration::from_secs(20),
        );
    }
    // Every watcher sees the three, live.
    let quorum = |w: &Watcher| -> Value {
        let (_, _, body) = get(&w.addr, "/status");
        serde_json::from_str::<Value>(&body).unwrap()["quorum"].clone()
    };
    let t0 = Instant::now();
    while ws.iter().any(|w| quorum(w)["live"] != 3) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "watchers did not see each other: {:?}",
            ws.iter().map(quorum).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Partition: only w1 loses its path to the primary (its probes carry X-Drctl-Client: w1).
    sb.fault(json!({"region": "us-east-1", "kind": "outage", "client": "w1"}));
    ws[0].wait_for(
        "primary-backend [primary]: failing -> down",
        Duration::from_secs(20),
    );
    ws[0].wait_for("DECISION withheld_no_quorum", Duration::from_secs(20));
    // Long past confirm_for, with the others' views read many times over: still nothing.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        assert!(
            ws.iter().all(|w| w.count("ACTION") == 0),
            "a one-watcher partition started an action"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let q = quorum(&ws[0]);
    assert_eq!(
        (q["live"].clone(), q["needed"].clone()),
        (json!(3), json!(2)),
        "{q}"
    );
    assert_eq!(q["agreeing"], 1, "{q}");
    for w in &ws[1..] {
        assert_eq!(
            w.count("failing -> down"),
            0,
            "{:?}",
            w.lines.lock().unwrap()
        );
    }
    assert!(history(sb.dir.path()).is_empty());
    assert!(!marks.exists());
    sb.clear_faults();
    ws[0].wait_for(
        "primary-backend [primary]: down -> ",
        Duration::from_secs(20),
    );

    // A real outage of the primary's backend ALB, seen by all three.
    let alb = sb.topology()["regions"]["us-east-1"]["albs"]["backend"]["dns_name"]
        .as_str()
        .unwrap()
        .to_string();
    sb.control(
        "POST",
        "/_sandbox/listeners",
        Some(json!({"name": alb, "mode": "blackhole"})),
    );
    for w in &ws {
        w.wait_for("ACTION Failover finished", Duration::from_secs(60));
    }
    let runs = history(sb.dir.path());
    assert_eq!(runs.len(), 1, "exactly one failover run: {runs:?}");
    assert_eq!(runs[0]["outcome"], "succeeded");
    let id = runs[0]["run_id"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(&marks).unwrap().lines().count(),
        1,
        "the runbook ran once"
    );
    let stood_by = ws.iter().filter(|w| w.count("stood by") > 0).count();
    let ran = ws
        .iter()
        .filter(|w| w.count("ACTION Failover finished: succeeded") > 0)
        .count();
    assert_eq!((ran, stood_by), (1, 2), "one ran, two stood by");
    for w in &ws {
        assert!(w.count(id) > 0, "every watcher names run {id}");
        assert_eq!(w.count("DECISION act"), 1);
    }
    for w in ws {
        let (st, _) = w.sigterm();
        assert!(st.success());
    }
}

#[test]
fn state_migrate_copies_file_journals_with_their_chains_and_carries_the_token_on() {
    let sb = Sandbox::start();
    let dir = sb.dir.path();
    // Two runs on the file backend first.
    std::fs::write(
        dir.join("quick.yaml"),
        "name: quick\nsteps:\n  - id: w\n    kind: wait\n    with: { duration: 0s }\n",
    )
    .unwrap();
    for _ in 0..2 {
        let out = run(common::drctl(dir).args(["run", "quick.yaml", "--yes"]));
        assert!(out.status.success(), "{}", text(&out));
    }
    let local = history(dir);
    assert_eq!(local.len(), 2);
    let heads: Vec<String> = local
        .iter()
        .map(|r| {
            let id = r["run_id"].as_str().unwrap();
            let out = run(common::drctl(dir).args(["verify", id, "--output", "json"]));
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            v["head"].as_str().unwrap().to_string()
        })
        .collect();
    let file_token: Value =
        serde_json::from_slice(&std::fs::read(dir.join(".drctl/leases/sandbox.json")).unwrap())
            .unwrap();
    shared(&sb, |_| {});
    assert!(history(dir).is_empty(), "the table starts empty");

    let out = run(common::drctl(dir).args(["state", "migrate", "--dry-run"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).matches("would copy ").count(),
        2,
        "{}",
        text(&out)
    );
    assert!(history(dir).is_empty(), "a dry run copies nothing");

    let out = run(common::drctl(dir).args(["state", "migrate", "--yes"]));
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("2 run(s) copied"), "{t}");
    // From another directory: the same runs, the same chain heads.
    let other = other_dir(&sb);
    let shared_runs = history(other.path());
    assert_eq!(shared_runs.len(), 2);
    for (r, head) in shared_runs.iter().zip(&heads) {
        let id = r["run_id"].as_str().unwrap();
        let out = run(common::drctl(other.path()).args(["verify", id, "--output", "json"]));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["head"].as_str().unwrap(),
            head,
            "the chain head is unchanged"
        );
    }
    // Again: nothing new.
    let out = run(common::drctl(dir).args(["state", "migrate", "--yes"]));
    assert!(text(&out).contains("nothing to copy"), "{}", text(&out));
    // Fencing tokens keep growing across the move.
    let out = run(common::drctl(other.path()).args(["state", "show", "--output", "json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lease"]["token"], file_token["token"], "{v}");
    let out = run(common::drctl(other.path()).args(["run", "quick.yaml", "--yes"]));
    assert!(
        !out.status.success(),
        "quick.yaml is not in the other directory"
    );
    std::fs::copy(dir.join("quick.yaml"), other.path().join("quick.yaml")).unwrap();
    let out = run(common::drctl(other.path()).args(["run", "quick.yaml", "--yes"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(common::drctl(other.path()).args(["state", "show", "--output", "json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["lease"]["token"].as_u64().unwrap(),
        file_token["token"].as_u64().unwrap() + 1
    );
}

/// The table's lease record, rewritten by `f` (a holder on another machine, for the test).
fn rewrite_lease(sb: &Sandbox, f: impl FnOnce(&mut Value)) {
    use aws_sdk_dynamodb::types::AttributeValue;
    common::sandbox::sdk_credentials();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let settings = drctl::config::env::AwsSettings {
            endpoint_url: Some(sb.endpoint.clone()),
            ..Default::default()
        };
        let c =
            drctl::aws::state_client(&settings, TABLE_REGION, None, Duration::from_secs(10)).await;
        let key = |k: &str| AttributeValue::S(k.to_string());
        let item = c
            .get_item()
            .table_name(TABLE)
            .key("pk", key("env#sandbox"))
            .key("sk", key("lease"))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .expect("a lease item");
        let mut rec: Value = serde_json::from_str(item["lease"].as_s().unwrap()).unwrap();
        f(&mut rec);
        let mut item = item.clone();
        item.insert("lease".into(), key(&rec.to_string()));
        c.put_item()
            .table_name(TABLE)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    });
}

#[test]
fn a_run_whose_machine_died_is_resumed_elsewhere_once_its_lease_expires() {
    let sb = Sandbox::start();
    shared(&sb, |env| {
        env["state"]["lease_ttl"] = json!("6s");
        env["state"]["timeout"] = json!("2s");
    });
    // The failover's machine dies after its 8th journal event.
    let out = run(common::drctl(sb.dir.path())
        .env("DRCTL_TEST_KILL_AFTER_EVENT", "8")
        .args([
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ]));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "{}",
        text(&out)
    );
    let id = history(sb.dir.path())[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // It was another machine: its process cannot be looked up from here, only its lease expiry.
    rewrite_lease(&sb, |l| {
        l["host"] = json!("bastion-that-died");
        l["expires_at"] = json!((chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339());
    });
    let other = other_dir(&sb);
    let resume = |dir: &Path| {
        run(common::drctl(dir).args(["resume", &id, "--yes", "--approve-irreversible"]))
    };
    let early = resume(other.path());
    assert_eq!(early.status.code(), Some(3), "{}", text(&early));
    assert!(
        text(&early).contains("bastion-that-died"),
        "{}",
        text(&early)
    );
    // After the expiry, the next holder takes over with a higher token and finishes the run.
    std::thread::sleep(Duration::from_secs(6));
    let out = resume(other.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("took over the lease"), "{}", text(&out));
    let runs = history(other.path());
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs:?}");
    let out = run(common::drctl(other.path()).args(["state", "show", "--output", "json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lease"]["token"], 2, "{v}");
    assert_eq!(v["lease"]["released"], true, "{v}");
}
