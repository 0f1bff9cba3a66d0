//! Engine unit tests: a counting test step, an in-memory journal and paused tokio time, so
//! hours of backoff and timeouts run in microseconds and every assertion is exact.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

use super::approval::AutoApprove;
use super::progress::Silent;
use super::{Engine, EngineParts, Plan, RunEnd};
use crate::config::{self, Environment, Source};
use crate::journal::mem::MemJournal;
use crate::journal::{Event, JournalWriter, Operator, Record, RunState, StepPhase};
use crate::steps::testing;

const ENV: &str = "name: t\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n  us-west-2: {}\n";

fn env() -> Arc<Environment> {
    Arc::new(config::parse_env(&Source::from_text(Path::new("drctl.yaml"), ENV.into())).unwrap())
}

pub(super) fn op() -> Operator {
    Operator {
        user: "tester".into(),
        host: "h".into(),
        pid: 1,
    }
}

pub(super) fn plan(yaml: &str) -> Arc<Plan> {
    let e = env();
    let rb = config::parse_runbook(
        &Source::from_text(Path::new("rb.yaml"), yaml.into()),
        Some(&e),
    )
    .unwrap_or_else(|err| panic!("{err}"));
    Arc::new(Plan::new(&rb))
}

fn started() -> Event {
    Event::test_run_started()
}

async fn engine_with(plan: Arc<Plan>, records: Vec<Record>, rerun: &[&str]) -> Arc<Engine> {
    let auto = Arc::new(AutoApprove { operator: op() });
    engine_asking(plan, records, rerun, auto).await
}

/// An engine whose approvals come from `approvals`.
pub(super) async fn engine_asking(
    plan: Arc<Plan>,
    records: Vec<Record>,
    rerun: &[&str],
    approvals: Arc<dyn super::approval::ApprovalSource>,
) -> Arc<Engine> {
    let mut j = MemJournal { records };
    if j.records.is_empty() {
        j.append(1, started()).await.unwrap();
    } else {
        j.append(1, Event::Resumed { operator: op() })
            .await
            .unwrap();
    }
    Engine::new(EngineParts {
        plan,
        run_id: "r".into(),
        journal: Box::new(j),
        token: 1,
        env: env(),
        services: testing::fake_services(),
        shutdown: CancellationToken::new(),
        progress: Arc::new(Silent),
        approvals,
        prompter: None,
        operator: op(),
        rerun: rerun.iter().map(|s| s.to_string()).collect(),
    })
}

/// A journal as a process killed mid-step leaves it: the intent written, no outcome.
async fn killed_in_flight(step: &str) -> Vec<Record> {
    let mut j = MemJournal::default();
    j.append(1, started()).await.unwrap();
    j.append(
        1,
        Event::StepStarted {
            step: step.into(),
            attempt: 1,
        },
    )
    .await
    .unwrap();
    let prior = serde_json::json!({"was_done": false});
    let intent = Event::StepIntent {
        step: step.into(),
        attempt: 1,
        observed: crate::steps::Satisfied::NotDone,
        current: "".into(),
        intended: "".into(),
        prior,
    };
    j.append(1, intent).await.unwrap();
    j.records
}

async fn records(e: &Engine) -> Vec<Record> {
    e.records().await
}

pub(super) fn step(id: &str, key: &str, extra: &str, ctl: &str) -> String {
    format!("  - id: {id}\n    kind: test.step\n    with: {{ key: {key}{extra} }}\n{ctl}")
}

#[tokio::test(start_paused = true)]
async fn step_warnings_are_journaled_and_already_done_steps_keep_their_outputs() {
    let key = "warn";
    testing::reset(key);
    let y = format!(
        "name: w\nsteps:\n{}{}",
        step("a", key, ", warn: primary unreachable", ""),
        step("b", key, ", done_initially: true", ""),
    );
    let e = engine_with(plan(&y), vec![], &[]).await;
    assert!(matches!(
        e.clone().run().await.unwrap(),
        RunEnd::Succeeded { .. }
    ));
    let recs = records(&e).await;
    let pos = |f: &dyn Fn(&Event) -> bool| recs.iter().position(|r| f(&r.event));
    let warned = pos(&|ev| matches!(ev, Event::Warning { step: Some(s), message } if s == "a" && message == "primary unreachable"))
        .expect("warning journaled");
    let a_done = pos(&|ev| matches!(ev, Event::StepSucceeded { step, .. } if step == "a")).unwrap();
    assert!(warned < a_done, "the warning precedes the step's outcome");
    let b = recs
        .iter()
        .find_map(|r| match &r.event {
            Event::StepSucceeded { step, result, .. } if step == "b" => Some(result.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(b, serde_json::json!({"observed": true}));
    assert_eq!(
        e.outputs.lock().unwrap()["b"],
        serde_json::json!({"observed": true})
    );
}

#[tokio::test(start_paused = true)]
async fn parallelism_is_bounded_and_roots_run_together() {
    let key = "par";
    testing::reset(key);
    let mut y = String::from("name: p\nmax_parallel: 2\nsteps:\n");
    for i in 0..6 {
        y += &step(
            &format!("s{i}"),
            key,
            ", duration: 10s",
            "    depends_on: []\n",
        );
    }
    let e = engine_with(plan(&y), vec![], &[]).await;
    let t = tokio::time::Instant::now();
    assert_eq!(
        e.clone().run().await.unwrap(),
        RunEnd::Succeeded {
            continued_failures: vec![]
        }
    );
    let log = testing::log(key);
    assert_eq!(log.max_running, 2);
    // Six 10 s steps two at a time: three rounds.
    assert_eq!(t.elapsed().as_secs(), 30);
    assert!(log.executions.values().all(|&n| n == 1));
}

#[tokio::test(start_paused = true)]
async fn file_order_and_depends_on_are_respected() {
    let key = "order";
    testing::reset(key);
    let y = format!(
        "name: o\nsteps:\n{}{}{}{}",
        step("a", key, ", duration: 3s", ""),
        step("b", key, ", duration: 1s", ""),
        step("c", key, ", duration: 1s", "    depends_on: [a]\n"),
        step("d", key, "", "    depends_on: [b, c]\n"),
    );
    let e = engine_with(plan(&y), vec![], &[]).await;
    e.clone().run().await.unwrap();
    let log = testing::log(key);
    let at = |s: &str, what: &str| {
        log.events
            .iter()
            .find(|e| e.0 == s && e.1 == what)
            .unwrap()
            .2
    };
    // b follows a by file order; c depends only on a, so b and c run side by side.
    assert!(at("b", "start") >= at("a", "end"));
    assert_eq!(at("b", "start"), at("c", "start"));
    assert!(at("d", "start") >= at("b", "end").max(at("c", "end")));
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_then_succeed() {
    let key = "retry";
    testing::reset(key);
    let y = format!(
        "name: r\nsteps:\n{}",
        step(
            "a",
            key,
            ", fail_times: 2",
            "    retries: 3\n    backoff: 10s\n"
        )
    );
    let e = engine_with(plan(&y), vec![], &[]).await;
    let t = tokio::time::Instant::now();
    assert!(matches!(
        e.clone().run().await.unwrap(),
        RunEnd::Succeeded { .. }
    ));
    let recs = records(&e).await;
    let delays: Vec<u64> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepFailed {
                retry_in_ms: Some(ms),
                ..
            } => Some(*ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 2);
    // 10 s then 20 s, each with +-25% jitter.
    assert!((7_500..=12_500).contains(&delays[0]), "{delays:?}");
    assert!((15_000..=25_000).contains(&delays[1]), "{delays:?}");
    // The run slept exactly the journaled delays; each was journaled in whole milliseconds.
    let slept = t.elapsed().as_millis() as u64;
    assert!(
        slept.abs_diff(delays[0] + delays[1]) <= 2,
        "slept {slept} ms, journaled {delays:?}"
    );
    assert_eq!(testing::log(key).executions["a"], 3);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried_and_abort_stops_dependents() {
    let key = "perm";
    testing::reset(key);
    let y = format!(
        "name: r\nsteps:\n{}{}",
        step(
            "a",
            key,
            ", fail_times: 5, permanent: true",
            "    retries: 3\n    on_failure: abort\n"
        ),
        step("b", key, "", "")
    );
    let e = engine_with(plan(&y), vec![], &[]).await;
    let end = e.clone().run().await.unwrap();
    assert!(
        matches!(end, RunEnd::Aborted { ref step, .. } if step == "a"),
        "{end:?}"
    );
    assert_eq!(testing::log(key).executions["a"], 1);
    assert!(!testing::log(key).executions.contains_key("b"));
    let st = RunState::replay(&records(&e).await).unwrap();
    assert!(st.is_finished());
}

#[tokio::test(start_paused = true)]
async fn a_step_that_exceeds_its_timeout_fails_with_a_clear_reason() {
    let key = "timeout";
    testing::reset(key);
    let y = format!(
        "name: t\nsteps:\n{}",
        step(
            "slow",
            key,
            ", duration: 1h",
            "    timeout: 5s\n    on_failure: abort\n"
        )
    );
    let e = engine_with(plan(&y), vec![], &[]).await;
    let t = tokio::time::Instant::now();
    let end = e.clone().run().await.unwrap();
    assert_eq!(t.elapsed(), Duration::from_secs(5));
    assert!(
        matches!(end, RunEnd::Aborted { ref error, .. } if error.contains("timed out after 5s")),
        "{end:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn continue_lets_dependents_run() {
    let key = "cont";
    testing::reset(key);
    let y = format!(
        "name: c\nsteps:\n{}{}",
        step("a", key, ", fail_times: 9", "    on_failure: continue\n"),
        step("b", key, "", "")
    );
    let e = engine_with(plan(&y), vec![], &[]).await;
    assert_eq!(
        e.clone().run().await.unwrap(),
        RunEnd::Succeeded {
            continued_failures: vec!["a".into()]
        }
    );
    assert_eq!(testing::log(key).executions["b"], 1);
}

#[tokio::test(start_paused = true)]
async fn pause_then_resume_never_repeats_completed_work() {
    let key = "pause";
    testing::reset(key);
    let y = format!(
        "name: p\nsteps:\n{}{}{}",
        step("a", key, "", ""),
        step("b", key, ", fail_times: 1", ""),
        step("c", key, "", "")
    );
    let p = plan(&y);
    let e = engine_with(p.clone(), vec![], &[]).await;
    let end = e.clone().run().await.unwrap();
    assert!(
        matches!(end, RunEnd::Paused { ref reason } if reason.contains("step `b` failed")),
        "{end:?}"
    );
    let e2 = engine_with(p, records(&e).await, &[]).await;
    assert!(matches!(
        e2.clone().run().await.unwrap(),
        RunEnd::Succeeded { .. }
    ));
    let log = testing::log(key);
    assert_eq!(
        (
            log.executions["a"],
            log.executions["b"],
            log.executions["c"]
        ),
        (1, 2, 1)
    );
    RunState::replay(&records(&e2).await).unwrap();
}

#[tokio::test(start_paused = true)]
async fn already_done_is_a_no_op_and_rollback_leaves_it_alone() {
    let key = "done";
    testing::reset(key);
    let y = format!(
        "name: d\nsteps:\n{}{}",
        step("a", key, ", done_initially: true", ""),
        step("b", key, "", "")
    );
    let e = engine_with(plan(&y), vec![], &[]).await;
    e.clone().run().await.unwrap();
    assert!(!testing::log(key).executions.contains_key("a"));
    let report = super::rollback::rollback(&e, None, "test").await.unwrap();
    assert_eq!(report.undone, vec!["b"]);
    assert_eq!(report.passed, vec!["a"]);
}

#[tokio::test(start_paused = true)]
async fn in_flight_unobservable_step_needs_a_human_on_resume() {
    let key = "inflight";
    testing::reset(key);
    let y = format!(
        "name: i\nsteps:\n{}",
        step("a", key, ", unobservable: true", "")
    );
    let p = plan(&y);
    let e = engine_with(p.clone(), killed_in_flight("a").await, &[]).await;
    let end = e.clone().run().await.unwrap();
    assert!(
        matches!(end, RunEnd::Paused { ref reason } if reason.contains("--rerun a")),
        "{end:?}"
    );
    assert!(!testing::log(key).executions.contains_key("a"));
    let e2 = engine_with(p, records(&e).await, &["a"]).await;
    assert!(matches!(
        e2.clone().run().await.unwrap(),
        RunEnd::Succeeded { .. }
    ));
    assert_eq!(testing::log(key).executions["a"], 1);
}

#[tokio::test(start_paused = true)]
async fn an_unobservable_step_that_failed_in_this_run_is_retried_not_paused() {
    // Its own failed attempt is known to have failed: `retries` asks for another, and only a
    // step left in flight by an earlier drctl needs a human.
    let key = "unobservable-retry";
    testing::reset(key);
    let y = format!(
        "name: u\nsteps:\n{}",
        step(
            "a",
            key,
            ", unobservable: true, fail_times: 1",
            "    retries: 1\n    backoff: 1s\n"
        )
    );
    let e = engine_with(plan(&y), vec![], &[]).await;
    let end = e.clone().run().await.unwrap();
    assert!(matches!(end, RunEnd::Succeeded { .. }), "{end:?}");
    assert_eq!(testing::log(key).executions["a"], 2);
}

#[tokio::test(start_paused = true)]
async fn in_flight_step_observed_done_counts_as_changed() {
    let key = "inflight-done";
    testing::reset(key);
    let y = format!(
        "name: i\nsteps:\n{}",
        step("a", key, ", done_initially: true", "")
    );
    let e = engine_with(plan(&y), killed_in_flight("a").await, &[]).await;
    e.clone().run().await.unwrap();
    let st = RunState::replay(&records(&e).await).unwrap();
    // The earlier process did the work; rollback must undo it, from the journaled prior.
    assert!(
        matches!(st.step("a"), StepPhase::Succeeded { outcome: crate::journal::Outcome::Changed, ref prior, .. } if prior["was_done"] == false)
    );
    assert!(!testing::log(key).executions.contains_key("a"));
}

#[tokio::test(start_paused = true)]
async fn rollback_on_failure_undoes_back_to_the_last_checkpoint_only() {
    let key = "rb";
    testing::reset(key);
    let y = format!(
        "name: r\nsteps:\n{}{}{}{}",
        step("a", key, "", "    checkpoint: cp1\n"),
        step("b", key, "", "    checkpoint: cp2\n"),
        step("c", key, "", ""),
        step("d", key, ", fail_times: 9", "    on_failure: rollback\n"),
    );
    let e = engine_with(plan(&y), vec![], &[]).await;
    let end = e.clone().run().await.unwrap();
    let RunEnd::RolledBack(report) = end else {
        panic!("{end:?}")
    };
    // `d` failed after its intent was journaled, so it may have half-acted: it is undone first,
    // then what completed after checkpoint cp2. a and b (up to cp2) stay.
    assert_eq!(report.undone, vec!["d", "c"]);
    assert_eq!(report.left_in_place, vec!["a", "b"]);
    let undos: Vec<String> = testing::log(key)
        .events
        .iter()
        .filter(|e| e.1 == "undo")
        .map(|e| e.0.clone())
        .collect();
    assert_eq!(undos, vec!["d", "c"]);
}

#[tokio::test(start_paused = true)]
async fn rollback_stops_at_an_irreversible_step() {
    let key = "irr";
    testing::reset(key);
    let y = format!(
        "name: r\nsteps:\n  - id: gate\n    kind: approval\n{}{}",
        step("promote", key, ", irreversible: true", ""),
        step("after", key, "", ""),
    );
    let e = engine_with(plan(&y), vec![], &[]).await;
    e.clone().run().await.unwrap();
    let report = super::rollback::rollback(&e, None, "test").await.unwrap();
    assert_eq!(report.undone, vec!["after"]);
    let (step, why) = report.stopped_at.clone().unwrap();
    assert_eq!(step, "promote");
    assert!(why.contains("cannot be undone"), "{why}");
    assert!(!report.complete());
    let st = RunState::replay(&records(&e).await).unwrap();
    assert!(matches!(st.step("promote"), StepPhase::Succeeded { .. }));
    assert_eq!(st.steps["gate"].approved_by.as_deref(), Some("tester"));
}

#[tokio::test(start_paused = true)]
async fn shutdown_pauses_at_a_safe_point() {
    let key = "sig";
    testing::reset(key);
    let y = format!(
        "name: s\nsteps:\n{}{}",
        step("a", key, ", duration: 1m", ""),
        step("b", key, "", "")
    );
    let p = plan(&y);
    let e = engine_with(p.clone(), vec![], &[]).await;
    let token = e.shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        token.cancel();
    });
    let end = e.clone().run().await.unwrap();
    assert!(
        matches!(end, RunEnd::Paused { ref reason } if reason.contains("interrupted")),
        "{end:?}"
    );
    assert!(!testing::log(key).executions.contains_key("b"));
    // The interrupted step is re-observed and run on resume.
    let e2 = engine_with(p, records(&e).await, &[]).await;
    assert!(matches!(
        e2.clone().run().await.unwrap(),
        RunEnd::Succeeded { .. }
    ));
}

fn random_dag() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<u64>, usize)> {
    (1usize..10).prop_flat_map(|n| {
        let deps = (0..n)
            .map(|i| proptest::collection::vec(0..i.max(1), 0..=i.min(3)))
            .collect::<Vec<_>>();
        (deps, proptest::collection::vec(0u64..5, n), 1usize..4)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every step runs once, after everything it depends on; rollback is the exact reverse.
    #[test]
    fn random_dags_run_once_in_order_and_roll_back_in_reverse((deps, durations, par) in random_dag()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let key = format!("prop-{}", rand::random::<u64>());
            testing::reset(&key);
            let mut y = format!("name: prop\nmax_parallel: {par}\nsteps:\n");
            for (i, ds) in deps.iter().enumerate() {
                let ds: HashSet<usize> = ds.iter().copied().filter(|&d| d < i).collect();
                let list = ds.iter().map(|d| format!("s{d}")).collect::<Vec<_>>().join(", ");
                y += &step(&format!("s{i}"), &key, &format!(", duration: {}s", durations[i]), &format!("    depends_on: [{list}]\n"));
            }
            let p = plan(&y);
            let e = engine_with(p.clone(), vec![], &[]).await;
            let end = e.clone().run().await.unwrap();
            prop_assert!(matches!(end, RunEnd::Succeeded { .. }), "run ended {:?}", end);
            let log = testing::log(&key);
            prop_assert!(log.executions.len() == deps.len() && log.executions.values().all(|&n| n == 1));
            prop_assert!(log.max_running as usize <= par);
            let at: HashMap<(String, &str), Duration> = log.events.iter().map(|e| ((e.0.clone(), e.1), e.2)).collect();
            for (i, _) in deps.iter().enumerate() {
                for &d in &p.deps[i] {
                    let (me, dep) = (format!("s{i}"), format!("s{d}"));
                    prop_assert!(at[&(me.clone(), "start")] >= at[&(dep.clone(), "end")], "{} started before {} ended", me, dep);
                }
            }
            let completed = RunState::replay(&records(&e).await).unwrap().completed;
            let report = super::rollback::rollback(&e, None, "prop").await.unwrap();
            let mut reversed = completed.clone();
            reversed.reverse();
            prop_assert_eq!(report.undone, reversed);
            Ok(())
        })?;
    }
}
