//! `drctl abandon RUN --reason TEXT`: close an unfinished run without running or undoing
//! anything, so that a stale run (paused at its approval gate, say) never stands between an
//! operator and the failover they need now.
//!
//! What the run may have changed stays changed, and is said: each step that may have acted is
//! listed (from its journaled intent) before the operator confirms, and journaled with who
//! abandoned the run and why. A run that changed nothing can always be abandoned. A run whose
//! process is alive still holds the lease: taking the lease is refused then (exit 3), so a live
//! run is never closed under its own feet.

use tokio_util::sync::CancellationToken;

use super::resume::{load, Loaded};
use super::summary::RunSummary;
use super::{lease, Context, Hooks, Operation, RunError};
use crate::engine::RunEnd;
use crate::journal::{Event, Outcome, Record, RunState, RunStatus, StepPhase};
use crate::steps::Reversibility;

/// A step that may have changed something, and stays as it is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeftChanged {
    pub step: String,
    pub kind: String,
    /// How far it got: `done`, `may have acted (in flight)`, ...
    pub state: String,
    /// What it set out to do, from its journaled intent.
    pub intended: String,
    /// It cannot be undone (a promotion).
    pub irreversible: bool,
}

impl std::fmt::Display for LeftChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}: {}{}",
            self.step,
            self.kind,
            self.state,
            self.intended,
            if self.irreversible {
                " [irreversible]"
            } else {
                ""
            }
        )
    }
}

/// The steps of a run that may have acted, in the order the run meant them.
pub fn left_changed(
    loaded_plan: &crate::engine::Plan,
    state: &RunState,
    records: &[Record],
) -> Vec<LeftChanged> {
    let intended = |step: &str| {
        records
            .iter()
            .rev()
            .find_map(|r| match &r.event {
                Event::StepIntent {
                    step: s, intended, ..
                } if s == step => Some(intended.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    loaded_plan
        .steps
        .iter()
        .filter_map(|def| {
            let rev = def.spec.step().reversibility();
            if rev == Reversibility::NothingToUndo {
                return None;
            }
            let how = match state.step(def.id()) {
                StepPhase::Succeeded {
                    outcome: Outcome::Changed,
                    ..
                } => "done",
                StepPhase::InFlight { .. } => "may have acted (in flight)",
                StepPhase::Failed { prior: Some(_), .. } => {
                    "may have acted (failed after its intent)"
                }
                StepPhase::Undoing { .. } | StepPhase::UndoFailed { .. } => "undo not finished",
                _ => return None,
            };
            Some(LeftChanged {
                step: def.id().to_string(),
                kind: def.kind.value.clone(),
                state: how.to_string(),
                intended: intended(def.id()),
                irreversible: matches!(rev, Reversibility::Irreversible(_)),
            })
        })
        .collect()
}

/// `drctl abandon RUN`: checked, with what stays changed, ready to be confirmed.
pub struct Abandon {
    pub run_id: String,
    pub reason: String,
    /// What stays changed. Empty: the run changed nothing.
    pub left_changed: Vec<LeftChanged>,
    loaded: Loaded,
}

impl Abandon {
    /// Read the run and refuse what cannot be abandoned. Writes nothing.
    pub async fn load(ctx: &Context, run: &str, reason: &str) -> Result<Abandon, RunError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(RunError::Refused(
                "--reason must say why the run is abandoned (it is journaled and shown in its report)".into(),
            ));
        }
        let loaded = load(ctx, run).await?;
        if let crate::journal::replay::RunPhase::Finished { status, message } = &loaded.state.phase
        {
            return Err(RunError::Refused(format!(
                "run {run} already finished ({status}: {message}); there is nothing to abandon"
            )));
        }
        Ok(Abandon {
            run_id: run.to_string(),
            reason: reason.to_string(),
            left_changed: left_changed(&loaded.plan, &loaded.state, &loaded.records),
            loaded,
        })
    }

    /// Its runbook's name.
    pub fn runbook(&self) -> &str {
        &self.loaded.state.runbook_name
    }

    /// Where the run stopped, in words.
    pub fn where_it_stopped(&self) -> String {
        super::inspect::phase_text(&self.loaded.state.phase)
    }
}

#[async_trait::async_trait]
impl Operation for Abandon {
    fn describe(&self) -> String {
        let mut q = format!(
            "Abandon run {} ({}, {})? Nothing more of it will run, and nothing will be undone.",
            self.run_id,
            self.runbook(),
            self.where_it_stopped()
        );
        if self.left_changed.is_empty() {
            q.push_str("\n  it changed nothing");
        } else {
            q.push_str("\n  these stay changed:");
            for c in &self.left_changed {
                q.push_str(&format!("\n    - {c}"));
            }
        }
        q
    }

    fn step_ids(&self) -> Vec<String> {
        self.loaded.step_ids()
    }

    async fn execute(
        &self,
        ctx: &Context,
        hooks: &Hooks,
        shutdown: CancellationToken,
    ) -> Result<RunSummary, RunError> {
        let run = self.run_id.as_str();
        // A live run holds the lease: taking it is refused (exit 3), so it is never closed
        // under its own feet. No AWS is needed: abandon works whatever is dark.
        let held = lease::take(ctx, hooks, &self.loaded.env.name, run, shutdown).await?;
        let store = ctx.state.journals().await;
        let (mut journal, warnings) = store.open_writer(run).await?;
        for w in warnings {
            hooks.progress.notice(&format!("warning: {w}"));
        }
        let state = super::replay(run, journal.records())?;
        if state.is_finished() {
            return Err(RunError::Refused(format!(
                "run {run} finished while this command waited; nothing to abandon"
            )));
        }
        // What stays changed, read again under the lease (the run may have moved since).
        let left = left_changed(&self.loaded.plan, &state, journal.records());
        let message = format!(
            "abandoned by {}: {}{}",
            ctx.operator.user,
            self.reason,
            if left.is_empty() {
                " (it changed nothing)".to_string()
            } else {
                format!(
                    " (left changed: {})",
                    left.iter()
                        .map(|c| c.step.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        for event in [
            Event::Abandoned {
                operator: ctx.operator.clone(),
                reason: self.reason.clone(),
                left_changed: left.iter().map(|c| c.to_string()).collect(),
            },
            Event::RunFinished {
                status: RunStatus::Abandoned,
                message: message.clone(),
            },
        ] {
            journal.append(held.token(), event).await?;
            if let Some(r) = journal.records().last() {
                hooks.progress.record(r);
            }
        }
        drop(held);
        Ok(RunSummary::build(
            journal.records(),
            &self.loaded.plan,
            &RunEnd::Abandoned { message },
            &self.loaded.env.targets,
        ))
    }
}
