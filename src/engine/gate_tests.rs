//! Gates that hold production, in the engine with paused time: a gate after a fence that
//! nobody answers (or that is declined) gives the writer back before the run pauses; resumed,
//! the fence runs again before the gate asks again. Never after a promotion.

use std::sync::Arc;

use async_trait::async_trait;

use super::approval::{ApprovalSource, AutoApprove};
use super::tests::{engine_asking, op, plan, step};
use super::RunEnd;
use crate::journal::{Event, RunState, StepPhase};
use crate::steps::{testing, Approval, StepError};

/// A person who never answers.
struct Nobody;

#[async_trait]
impl ApprovalSource for Nobody {
    async fn wait(&self, _step: &str, _message: &str) -> Result<Approval, StepError> {
        std::future::pending().await
    }
}

/// A person who says no.
struct SaysNo;

#[async_trait]
impl ApprovalSource for SaysNo {
    async fn wait(&self, _step: &str, _message: &str) -> Result<Approval, StepError> {
        Err(StepError::permanent("declined by dana at the prompt"))
    }
}

/// Approves `ok` and never answers anything else.
struct Approves(&'static str);

#[async_trait]
impl ApprovalSource for Approves {
    async fn wait(&self, step: &str, message: &str) -> Result<Approval, StepError> {
        if step == self.0 {
            return AutoApprove { operator: op() }.wait(step, message).await;
        }
        std::future::pending().await
    }
}

/// fence (stops writes) -> gate -> promote (irreversible); `gate` is the approval's `with`.
fn fenced_gate(key: &str, gate: &str) -> String {
    format!(
        "name: g\nsteps:\n{}  - id: gate\n    kind: approval\n    with: {{ {gate} }}\n    depends_on: [fence]\n{}",
        step("fence", key, ", stops_writes: true", ""),
        step("promote", key, ", irreversible: true", "    depends_on: [gate]\n"),
    )
}

fn events(recs: &[crate::journal::Record]) -> Vec<String> {
    recs.iter()
        .map(|r| match &r.event {
            Event::StepSucceeded { step, .. } => format!("done {step}"),
            Event::Undone { step } => format!("undone {step}"),
            Event::StepFailed { step, .. } => format!("failed {step}"),
            e => e.name().to_string(),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_gate_after_a_fence_gives_the_writer_back_and_pauses() {
    let key = "gate-deadline";
    testing::reset(key);
    let p = plan(&fenced_gate(key, "message: promote?, deadline: 2m"));
    let e = engine_asking(p.clone(), vec![], &[], Arc::new(Nobody)).await;
    let t = tokio::time::Instant::now();
    let end = e.clone().run().await.unwrap();
    let RunEnd::Paused { reason } = &end else {
        panic!("{end:?}")
    };
    assert!(reason.contains("no approval within 2m"), "{reason}");
    assert!(
        reason.contains("writes are on again: fence undone"),
        "{reason}"
    );
    assert_eq!(
        t.elapsed(),
        std::time::Duration::from_secs(120),
        "waited its deadline"
    );
    let recs = e.records().await;
    let ev = events(&recs);
    let at = |what: &str| {
        ev.iter()
            .position(|e| e == what)
            .unwrap_or_else(|| panic!("{what}: {ev:?}"))
    };
    assert!(at("done fence") < at("failed gate"));
    assert!(at("failed gate") < at("undone fence"));
    assert!(at("undone fence") < at("paused"));
    assert!(!ev.contains(&"done promote".to_string()), "{ev:?}");
    // The fence's undo ran: "writes" are on (the test step's target state is gone).
    let log = testing::log(key);
    assert_eq!(log.done.get("fence"), Some(&false));
    let st = RunState::replay(&recs).unwrap();
    assert!(matches!(
        st.phase,
        crate::journal::replay::RunPhase::Paused { .. }
    ));
    assert_eq!(st.step("fence"), StepPhase::Undone);

    // Resumed with an approval: the fence runs again first, then the gate, then the promotion.
    let e = engine_asking(p, recs, &[], Arc::new(AutoApprove { operator: op() })).await;
    assert!(matches!(
        e.clone().run().await.unwrap(),
        RunEnd::Succeeded { .. }
    ));
    let log = testing::log(key);
    assert_eq!(
        log.executions.get("fence"),
        Some(&2),
        "fenced again on resume"
    );
    assert_eq!(log.executions.get("promote"), Some(&1));
    let recs = e.records().await;
    let ev = events(&recs);
    let last_fence = ev.iter().rposition(|e| e == "done fence").unwrap();
    let promote = ev.iter().position(|e| e == "done promote").unwrap();
    assert!(last_fence < promote, "{ev:?}");
}

#[tokio::test(start_paused = true)]
async fn a_declined_gate_after_a_fence_gives_the_writer_back_too() {
    let key = "gate-declined";
    testing::reset(key);
    let p = plan(&fenced_gate(key, "message: promote?"));
    let e = engine_asking(p, vec![], &[], Arc::new(SaysNo)).await;
    let end = e.clone().run().await.unwrap();
    let RunEnd::Paused { reason } = &end else {
        panic!("{end:?}")
    };
    assert!(reason.contains("declined by dana"), "{reason}");
    assert!(reason.contains("writes are on again"), "{reason}");
    assert_eq!(testing::log(key).done.get("fence"), Some(&false));
}

#[tokio::test(start_paused = true)]
async fn a_gate_without_a_fence_before_it_pauses_after_its_default_deadline_and_undoes_nothing() {
    let key = "gate-open";
    testing::reset(key);
    let y = format!(
        "name: g\nsteps:\n  - id: gate\n    kind: approval\n    with: {{ message: go? }}\n{}{}",
        step(
            "fence",
            key,
            ", stops_writes: true",
            "    depends_on: [gate]\n"
        ),
        step(
            "promote",
            key,
            ", irreversible: true",
            "    depends_on: [fence]\n"
        ),
    );
    let e = engine_asking(plan(&y), vec![], &[], Arc::new(Nobody)).await;
    let t = tokio::time::Instant::now();
    let end = e.clone().run().await.unwrap();
    assert!(
        matches!(&end, RunEnd::Paused { reason } if reason.contains("no approval within 15m") && !reason.contains("writes")),
        "{end:?}"
    );
    assert_eq!(t.elapsed(), crate::steps::approval::DEADLINE_WRITES_ON);
    let ev = events(&e.records().await);
    assert!(
        !ev.iter()
            .any(|e| e.contains("fence") || e.starts_with("rollback")),
        "{ev:?}"
    );
    assert!(
        testing::log(key).executions.is_empty(),
        "nothing behind the gate ran"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fence_is_never_undone_once_a_promotion_acted() {
    let key = "gate-after-promotion";
    testing::reset(key);
    // ok -> fence -> promote -> gate: the gate after the promotion expires; the fence stays.
    let y = format!(
        "name: g\nsteps:\n  - id: ok\n    kind: approval\n{}{}  - id: gate\n    kind: approval\n    with: {{ message: more?, deadline: 1m }}\n    depends_on: [promote]\n",
        step("fence", key, ", stops_writes: true", "    depends_on: [ok]\n"),
        step("promote", key, ", irreversible: true", "    depends_on: [fence]\n"),
    );
    let e = engine_asking(plan(&y), vec![], &[], Arc::new(Approves("ok"))).await;
    let end = e.clone().run().await.unwrap();
    assert!(
        matches!(&end, RunEnd::Paused { reason } if reason.contains("no approval within 1m") && !reason.contains("writes are on")),
        "{end:?}"
    );
    let ev = events(&e.records().await);
    assert!(ev.contains(&"done promote".to_string()), "{ev:?}");
    assert!(!ev.iter().any(|e| e.starts_with("undone")), "{ev:?}");
    assert_eq!(testing::log(key).done.get("fence"), Some(&true));
}
