//! The whole watch (probe loops, state machines, policy, journal) against scripted targets, in
//! paused time: detection latency and anti-flap are exact, not sampled.

use super::*;
use crate::config::env::WatchPolicy;
use crate::probe::state::Thresholds;
use crate::probe::{Check, ProbeResult, Reason, Target};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

struct Collect(Mutex<Vec<(Instant, WatchRecord)>>);
impl WatchSink for Collect {
    fn record(&self, r: &WatchRecord) {
        self.0.lock().unwrap().push((Instant::now(), r.clone()));
    }
}

fn target(name: &str, role: Role, f: impl Fn() -> bool + Send + Sync + 'static) -> Target {
    Target {
        name: name.into(),
        region: if role == Role::Primary {
            "us-east-1".into()
        } else {
            "us-west-2".into()
        },
        role: Some(role),
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(800),
        jitter: Duration::from_millis(100),
        thresholds: Thresholds {
            failure: 3,
            recovery: 2,
        },
        check: Check::Scripted(Arc::new(move || {
            if f() {
                ProbeResult::ok(Duration::from_millis(1), "status 200")
            } else {
                ProbeResult::fail(Reason::TimedOut, Duration::from_millis(800), "timed out")
            }
        })),
    }
}

async fn run_for(
    targets: Vec<Target>,
    confirm: Duration,
    secs: u64,
    during: impl FnOnce() + Send + 'static,
    at: u64,
) -> (tempfile::TempDir, Vec<(Instant, WatchRecord)>, Instant) {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Collect(Mutex::new(Vec::new())));
    let cfg = WatchConfig {
        env: "t".into(),
        state_dir: dir.path().to_path_buf(),
        policy: WatchPolicy {
            confirm_for: confirm,
            ..WatchPolicy::default()
        },
        runbook: None,
        max_in_flight: 16,
        tick: Duration::from_millis(100),
    };
    let w = Watch::new(cfg, targets, sink.clone()).unwrap();
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let h = tokio::spawn(w.run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(at)).await;
    let fault_at = Instant::now();
    during();
    tokio::time::sleep(Duration::from_secs(secs - at)).await;
    stop.cancel();
    h.await.unwrap().unwrap();
    let _ = t0;
    let recs = sink.0.lock().unwrap().clone();
    (dir, recs, fault_at)
}

fn transitions_to(recs: &[(Instant, WatchRecord)], name: &str, to: Phase) -> Vec<Instant> {
    recs.iter()
            .filter(|(_, r)| matches!(&r.event, WatchEvent::Transition { target, to: t, .. } if target == name && *t == to))
            .map(|(at, _)| *at)
            .collect()
}

fn decisions(recs: &[(Instant, WatchRecord)]) -> Vec<(Instant, Verdict)> {
    recs.iter()
        .filter_map(|(at, r)| match &r.event {
            WatchEvent::Decision { decision, .. } => Some((*at, *decision)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn alternating_success_and_failure_never_reaches_down() {
    let n = Arc::new(AtomicU64::new(0));
    let p = target("primary", Role::Primary, move || {
        n.fetch_add(1, Ordering::Relaxed).is_multiple_of(2)
    });
    let s = target("standby", Role::Standby, || true);
    let (_d, recs, _) = run_for(vec![p, s], Duration::ZERO, 600, || {}, 1).await;
    assert!(
        transitions_to(&recs, "primary", Phase::Down).is_empty(),
        "flapped to down"
    );
    assert!(decisions(&recs).is_empty());
    assert!(
        transitions_to(&recs, "primary", Phase::Failing).len() > 100,
        "the target did flap"
    );
}

#[tokio::test(start_paused = true)]
async fn n_failures_reach_down_within_the_bound_and_the_decision_follows_confirm_for() {
    let dead = Arc::new(AtomicBool::new(false));
    let d2 = dead.clone();
    let p = target("primary", Role::Primary, move || {
        !d2.load(Ordering::Relaxed)
    });
    let s = target("standby", Role::Standby, || true);
    let confirm = Duration::from_secs(2);
    let (dir, recs, fault_at) = run_for(
        vec![p, s],
        confirm,
        30,
        move || dead.store(true, Ordering::Relaxed),
        10,
    )
    .await;
    let down = transitions_to(&recs, "primary", Phase::Down);
    assert_eq!(down.len(), 1, "{recs:#?}");
    let took = down[0] - fault_at;
    // threshold x interval + jitter: the first failing probe lands within one interval (plus
    // jitter), and the third comes two slots later (less a jitter).
    assert!(
        took <= Duration::from_millis(3 * 1000 + 100),
        "down after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(2000 - 100),
        "down after only {took:?}"
    );
    let d = decisions(&recs);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].1, Verdict::Act);
    let after = d[0].0 - down[0];
    assert!(
        after >= confirm && after <= confirm + Duration::from_millis(200),
        "decided {after:?} after down"
    );
    // Journaled, fsync'd, in order.
    let text = std::fs::read_to_string(WatchJournal::path_for(dir.path(), "t")).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("started"));
    assert_eq!(kinds.last().map(String::as_str), Some("stopped"));
    assert!(kinds.iter().any(|k| k == "decision") && kinds.iter().any(|k| k == "action_started"));
}

#[tokio::test(start_paused = true)]
async fn no_action_while_the_standby_is_down_too() {
    let p = target("primary", Role::Primary, || false);
    let s = target("standby", Role::Standby, || false);
    let (_d, recs, _) = run_for(vec![p, s], Duration::from_secs(1), 20, || {}, 1).await;
    let d = decisions(&recs);
    assert_eq!(
        d.iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![Verdict::WithheldStandbyUnhealthy]
    );
}
