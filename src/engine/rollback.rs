//! Rollback: undo completed steps in reverse completion order, back to a named checkpoint or to
//! the start. Steps that died in flight are undone first, from the prior state their intent
//! journaled. An irreversible step stops the rollback there, and the report says what that means.

use std::sync::Arc;

use serde::Serialize;

pub use super::core::RollbackReport;
use super::core::{Engine, EngineError};
use super::plan::Plan;
use crate::journal::{Event, Outcome, RunState, RunStatus, StepPhase};
use crate::retry::Backoff;
use crate::steps::Reversibility;

/// What a rollback would do, worked out from the journal alone (for the confirmation, and
/// by the rollback itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackPlan {
    /// Steps to undo, in the order they will be undone (in-flight first, then newest first).
    pub undo: Vec<String>,
    /// The irreversible step the rollback will stop at, if any.
    pub stops_at: Option<String>,
    /// Steps it will pass over: nothing to undo, or already in place before the run.
    pub passed: Vec<String>,
}

/// Which steps a rollback to `to` (or all the way) visits, newest first: in-flight work first,
/// then completed steps back to the checkpoint.
fn visit_order(
    plan: &Plan,
    state: &RunState,
    to: Option<&str>,
) -> Result<Vec<String>, EngineError> {
    let from = match to {
        None => 0,
        Some(name) => match state.checkpoints.iter().rev().find(|(n, _)| n == name) {
            Some((_, idx)) => (*idx).min(state.completed.len()),
            None => {
                let reached: Vec<&str> = state.checkpoints.iter().map(|c| c.0.as_str()).collect();
                return Err(EngineError::UnknownCheckpoint(
                    name.into(),
                    if reached.is_empty() {
                        "none".into()
                    } else {
                        reached.join(", ")
                    },
                ));
            }
        },
    };
    let mut targets: Vec<String> = plan
        .steps
        .iter()
        .map(|s| s.id().to_string())
        .filter(|id| {
            matches!(
                state.step(id),
                StepPhase::InFlight { .. } | StepPhase::Failed { prior: Some(_), .. }
            )
        })
        .collect();
    targets.extend(state.completed[from..].iter().rev().cloned());
    Ok(targets)
}

/// What a rollback of this run to `to` would undo, pass over, and stop at.
pub fn plan_rollback(
    plan: &Plan,
    state: &RunState,
    to: Option<&str>,
) -> Result<RollbackPlan, EngineError> {
    let mut out = RollbackPlan {
        undo: vec![],
        stops_at: None,
        passed: vec![],
    };
    for id in visit_order(plan, state, to)? {
        let Some(i) = plan.index(&id) else { continue };
        if matches!(
            state.step(&id),
            StepPhase::Succeeded {
                outcome: Outcome::AlreadyDone,
                ..
            }
        ) {
            out.passed.push(id);
            continue;
        }
        match plan.steps[i].spec.step().reversibility() {
            Reversibility::NothingToUndo => out.passed.push(id),
            Reversibility::Irreversible(_) => {
                out.stops_at = Some(id);
                break;
            }
            Reversibility::Reversible => out.undo.push(id),
        }
    }
    Ok(out)
}

pub async fn rollback(
    engine: &Arc<Engine>,
    to: Option<&str>,
    why: &str,
) -> Result<RollbackReport, EngineError> {
    let state = engine.state().await?;
    let targets = visit_order(&engine.plan, &state, to)?;
    let report = undo_steps(engine, &state, &targets, to, why, false).await?;
    let (status, message) = if report.complete() {
        (
            RunStatus::RolledBack,
            format!(
                "rolled back{}: {why}",
                to.map(|t| format!(" to checkpoint `{t}`"))
                    .unwrap_or_default()
            ),
        )
    } else {
        (RunStatus::Failed, format!("rollback incomplete: {why}"))
    };
    engine.log(Event::RunFinished { status, message }).await?;
    Ok(report)
}

/// A rollback that leaves the run open (rolling back, finished by the caller's own
/// `RunFinished`): a drill's teardown closes its run with the drill's verdict once everything it
/// made is gone, not as "rolled back".
pub async fn rollback_leaving_open(
    engine: &Arc<Engine>,
    to: Option<&str>,
    why: &str,
) -> Result<RollbackReport, EngineError> {
    let state = engine.state().await?;
    let targets = visit_order(&engine.plan, &state, to)?;
    undo_steps(engine, &state, &targets, to, why, false).await
}

/// Undo `steps` (newest first, as given) and leave the run to pause, not to finish: a gate that
/// expired with writes off gives production its writer back before the run waits for a person.
/// The undone steps run again when the run is resumed.
pub async fn undo_then_pause(
    engine: &Arc<Engine>,
    steps: &[String],
    why: &str,
) -> Result<RollbackReport, EngineError> {
    let state = engine.state().await?;
    undo_steps(engine, &state, steps, None, why, true).await
}

/// Journal a rollback of `targets` (in that order) and undo them, stopping at an irreversible
/// step or a failed undo. The caller journals how the run goes on (finished, or paused).
async fn undo_steps(
    engine: &Arc<Engine>,
    state: &RunState,
    targets: &[String],
    to: Option<&str>,
    why: &str,
    then_pause: bool,
) -> Result<RollbackReport, EngineError> {
    engine
        .log(Event::RollbackStarted {
            to: to.map(String::from),
            operator: engine.operator.clone(),
            then_pause,
        })
        .await?;
    engine.progress.note("-", why);

    let gate: Arc<dyn crate::steps::ApprovalGate> = Arc::new(super::gate::NoApprovals);
    let mut report = RollbackReport {
        to: to.map(String::from),
        undone: vec![],
        passed: vec![],
        stopped_at: None,
        failed: None,
        left_in_place: vec![],
    };
    for id in targets {
        let Some(i) = engine.plan.index(id) else {
            continue;
        };
        let def = &engine.plan.steps[i];
        let step = def.spec.step();
        let (prior, result) = match state.step(id) {
            StepPhase::Succeeded {
                outcome: Outcome::AlreadyDone,
                ..
            } => {
                report.passed.push(id.clone());
                continue;
            }
            StepPhase::Succeeded { prior, result, .. }
            | StepPhase::Undoing { prior, result }
            | StepPhase::UndoFailed { prior, result, .. } => (prior, result),
            StepPhase::InFlight { prior, .. }
            | StepPhase::Failed {
                prior: Some(prior), ..
            } => (prior, serde_json::Value::Null),
            _ => continue,
        };
        match step.reversibility() {
            Reversibility::NothingToUndo => {
                report.passed.push(id.clone());
                continue;
            }
            Reversibility::Irreversible(what) => {
                let reason = format!(
                    "`{id}` ({}) cannot be undone: {what}. Steps completed before it stay in place",
                    def.kind.value
                );
                engine
                    .log(Event::RollbackStopped {
                        step: id.clone(),
                        reason: reason.clone(),
                    })
                    .await?;
                report.stopped_at = Some((id.clone(), reason));
                break;
            }
            Reversibility::Reversible => {}
        }
        engine.log(Event::UndoStarted { step: id.clone() }).await?;
        let cx = engine.step_cx(id, gate.clone());
        let mut last_err = String::new();
        let mut ok = false;
        for attempt in 1..=def.retries + 1 {
            if attempt > 1
                && cx
                    .sleep(Backoff::new(def.backoff).delay(attempt - 1))
                    .await
                    .is_err()
            {
                break;
            }
            match tokio::time::timeout(engine.plan.timeout(i), step.undo(&cx, &prior, &result))
                .await
            {
                Ok(Ok(())) => {
                    ok = true;
                    break;
                }
                Ok(Err(e)) => last_err = e.to_string(),
                Err(_) => {
                    last_err = format!(
                        "undo timed out after {}",
                        humantime::format_duration(engine.plan.timeout(i))
                    )
                }
            }
        }
        if ok {
            engine.log(Event::Undone { step: id.clone() }).await?;
            report.undone.push(id.clone());
        } else {
            engine
                .log(Event::UndoFailed {
                    step: id.clone(),
                    error: last_err.clone(),
                })
                .await?;
            report.failed = Some((id.clone(), last_err));
            break;
        }
    }
    let after = engine.state().await?;
    report.left_in_place = after
        .completed
        .iter()
        .filter(|id| !report.passed.contains(id))
        .cloned()
        .collect();
    engine
        .log(Event::RollbackFinished {
            undone: report.undone.clone(),
            complete: report.complete(),
        })
        .await?;
    Ok(report)
}
