//! End to end on the two-region sandbox: `drctl watch` sees both regions healthy; the primary
//! backend ALB's listener is black-holed; watch detects it, decides, notifies a local webhook and
//! runs the failover runbook to completion through the engine, journal and lease. A second outage
//! within the cooldown triggers nothing.
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::watch::{get, webhook, Watcher};
use serde_json::json;

/// A stand-in for runbooks/warm-standby-failover.yaml (built on the `aws` branch): it proves from
/// the outside that the standby serves, and leaves a mark.
const RUNBOOK: &str = r#"name: test-failover
steps:
  - id: standby-serves
    kind: http.check
    with:
      url: ${standby.albs.backend.url}/health
      body_contains: ok
  - id: mark
    kind: exec
    with:
      command: [sh, -c, "echo ${env.name} > failed-over.txt"]
"#;

#[test]
fn watch_fails_over_once_on_a_blackholed_primary_and_not_again_in_the_cooldown() {
    let sb = common::sandbox::Sandbox::start();
    let dir = sb.dir.path();
    let got = Arc::new(Mutex::new(Vec::new()));
    let hook = webhook(false, got.clone());
    std::fs::write(dir.join("failover.yaml"), RUNBOOK).unwrap();
    // Replace the seeded watch policy (notify) with one that fails over through a test runbook.
    let mut env: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(sb.env_file()).unwrap()).unwrap();
    env["probes"]["watch"] = serde_json::json!({
        "primary": ["primary-backend"],
        "standby": ["standby-backend"],
        "confirm_for": "1s",
        "action": "failover",
        "runbook": "failover.yaml",
        "cooldown": "10m",
        "notifications": [{ "webhook": format!("http://{hook}/hook") }],
    });
    std::fs::write(sb.env_file(), serde_saphyr::to_string(&env).unwrap()).unwrap();

    let w = Watcher::start(dir, &sb.env_file());
    for t in [
        "primary-frontend",
        "primary-backend",
        "standby-frontend",
        "standby-backend",
    ] {
        w.wait_for(&format!("{t} ["), Duration::from_secs(10));
    }
    w.wait_for(
        "standby-backend [standby]: unknown -> healthy",
        Duration::from_secs(10),
    );
    w.wait_for(
        "primary-backend [primary]: unknown -> healthy",
        Duration::from_secs(10),
    );
    assert_eq!(w.count("-> healthy"), 4, "{:?}", w.lines.lock().unwrap());

    let alb = sb.topology()["regions"]["us-east-1"]["albs"]["backend"]["dns_name"]
        .as_str()
        .unwrap()
        .to_string();
    let t0 = Instant::now();
    sb.control(
        "POST",
        "/_sandbox/listeners",
        Some(json!({"name": alb, "mode": "blackhole"})),
    );
    let down = w.wait_for(
        "primary-backend [primary]: failing -> down, timed_out",
        Duration::from_secs(10),
    );
    // threshold (3) x interval (1s) + timeout (800ms) + jitter (100ms), plus slack for a busy box.
    assert!(
        down - t0 <= Duration::from_millis(3000 + 800 + 100 + 700),
        "down after {:?}",
        down - t0
    );
    let decided = w.wait_for("DECISION act", Duration::from_secs(5));
    assert!(
        decided - down >= Duration::from_millis(900),
        "decided {:?} after down; confirm_for is 1s",
        decided - down
    );
    w.wait_for(
        "ACTION Failover finished: succeeded",
        Duration::from_secs(30),
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("failed-over.txt"))
            .unwrap()
            .trim(),
        "sandbox"
    );

    // The run is an ordinary run: its own journal, finished, started by the watch.
    let state = dir.join(".drctl");
    let runs: Vec<_> = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    let journal = std::fs::read_to_string(runs[0].path().join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("\"command\":") && journal.contains("watch"),
        "{journal}"
    );
    assert!(
        journal.lines().last().unwrap().contains("\"succeeded\""),
        "{journal}"
    );
    // Notified, with the evidence.
    let t1 = Instant::now();
    while got.lock().unwrap().len() < 2 && t1.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let msgs = got.lock().unwrap().clone();
    assert!(
        msgs.iter()
            .any(|m| m.contains("PRIMARY DOWN") && m.contains("primary-backend")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("failover finished (succeeded")),
        "{msgs:?}"
    );
    // The notification says where the report is; the run's journal says when the outage was
    // detected (its first failed probe, before the run started), which the report's RTO uses.
    let run_id = runs[0].file_name().to_string_lossy().into_owned();
    assert!(
        msgs.iter()
            .any(|m| m.contains(&format!("report: drctl report {run_id}"))),
        "{msgs:?}"
    );
    let first: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    assert_eq!(first["trigger"]["by"], "drctl watch", "{first}");
    let detected: chrono::DateTime<chrono::Utc> = first["trigger"]["detected_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let started: chrono::DateTime<chrono::Utc> = first["at"].as_str().unwrap().parse().unwrap();
    assert!(detected < started, "detected {detected}, started {started}");
    let out = common::run(common::drctl(dir).args(["report", &run_id, "--format", "json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    assert_eq!(
        report["trigger"]["detected_at"],
        first["trigger"]["detected_at"]
    );

    // Recovery is reported, never acted on; a second outage in the cooldown triggers nothing.
    sb.control(
        "POST",
        "/_sandbox/listeners",
        Some(json!({"name": alb, "mode": "up"})),
    );
    w.wait_for(
        "primary-backend [primary]: recovering -> healthy",
        Duration::from_secs(10),
    );
    sb.control(
        "POST",
        "/_sandbox/listeners",
        Some(json!({"name": alb, "mode": "blackhole"})),
    );
    w.wait_for("DECISION suppressed_cooldown", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(w.count("ACTION Failover started"), 1);
    assert_eq!(
        std::fs::read_dir(state.join("runs")).unwrap().count(),
        1,
        "no second run"
    );

    let (_, _, metrics) = get(&w.addr, "/metrics");
    assert!(metrics.contains("drctl_target_transitions_total{target=\"primary-backend\",from=\"failing\",to=\"down\"} 2"), "{metrics}");
    assert!(
        metrics.contains("drctl_watch_decisions_total{decision=\"suppressed_cooldown\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("drctl_watch_actions_total{kind=\"failover\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    sb.control(
        "POST",
        "/_sandbox/listeners",
        Some(json!({"name": alb, "mode": "up"})),
    );
    let (status, lines) = w.sigterm();
    assert!(status.success(), "{}", lines.join("\n"));
    let wj = std::fs::read_to_string(state.join("watch/sandbox.jsonl")).unwrap();
    assert_eq!(
        wj.lines()
            .filter(|l| l.contains("\"event\":\"action_started\""))
            .count(),
        1
    );
}
