//! The engine's state for one run, and the one way its side effects reach the journal:
//! [`Engine::log`]. The executor (`executor.rs`) and rollback (`rollback.rs`) both build on it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::approval::ApprovalSource;
use super::plan::Plan;
use super::progress::ProgressSink;
use crate::config::env::Environment;
use crate::journal::{Event, JournalError, JournalWriter, Operator, Record, ReplayError, RunState};
use crate::steps::{
    Approval, ApprovalGate, CxParts, Observation, Services, StepCx, StepDef, StepError, StepReport,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("no checkpoint named `{0}` was reached in this run (reached: {1})")]
    UnknownCheckpoint(String, String),
}

/// What an operator chose at a `--step` prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Go,
    Skip(String),
    Retry,
    Abort,
    Rollback,
}

/// The `--step` conversation; provided by the CLI.
#[async_trait]
pub trait StepPrompter: Send + Sync {
    async fn before(&self, step: &StepDef, obs: &Observation) -> Decision;
    async fn after_failure(&self, step: &StepDef, error: &str) -> Decision;
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    Succeeded {
        continued_failures: Vec<String>,
    },
    Paused {
        reason: String,
    },
    Aborted {
        step: String,
        error: String,
    },
    RolledBack(RollbackReport),
    /// Closed unfinished by `drctl abandon` (nothing more ran, nothing was undone).
    Abandoned {
        message: String,
    },
}

/// How a rollback ended: what was undone, passed over, stopped at, and left in place.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RollbackReport {
    pub to: Option<String>,
    pub undone: Vec<String>,
    /// Steps passed over: nothing to undo, or already in place before the run.
    pub passed: Vec<String>,
    /// The irreversible step the rollback stopped at, and why.
    pub stopped_at: Option<(String, String)>,
    pub failed: Option<(String, String)>,
    /// Completed steps still in effect after the rollback.
    pub left_in_place: Vec<String>,
}

impl RollbackReport {
    pub fn complete(&self) -> bool {
        self.stopped_at.is_none() && self.failed.is_none()
    }
}

/// What an engine is built from (by `run`, or a test).
pub struct EngineParts {
    pub plan: Arc<Plan>,
    pub run_id: String,
    /// The run's journal, opened for writing under the lease.
    pub journal: Box<dyn JournalWriter>,
    /// Fencing token of the lease this process holds.
    pub token: u64,
    pub env: Arc<Environment>,
    /// What steps reach the world through; the engine hands it to them without looking in.
    pub services: Services,
    pub shutdown: CancellationToken,
    pub progress: Arc<dyn ProgressSink>,
    pub approvals: Arc<dyn ApprovalSource>,
    pub prompter: Option<Arc<dyn StepPrompter>>,
    pub operator: Operator,
    /// In-flight steps whose effect cannot be observed, that the operator allowed to run again.
    pub rerun: HashSet<String>,
}

/// One run's executor state. Built once through [`Engine::new`], then [`Engine::run`] or
/// [`Engine::rollback`].
pub struct Engine {
    pub(super) plan: Arc<Plan>,
    pub(super) run_id: String,
    journal: tokio::sync::Mutex<Box<dyn JournalWriter>>,
    token: u64,
    pub(super) env: Arc<Environment>,
    services: Services,
    pub(super) shutdown: CancellationToken,
    pub(super) progress: Arc<dyn ProgressSink>,
    pub(super) approvals: Arc<dyn ApprovalSource>,
    pub(super) prompter: Option<Arc<dyn StepPrompter>>,
    pub(super) operator: Operator,
    pub(super) rerun: HashSet<String>,
    pub(super) outputs: Arc<Mutex<BTreeMap<String, Value>>>,
}

/// Journals approvals as they are granted, and replays ones granted before a crash.
pub(super) struct JournaledGate {
    pub(super) engine: Arc<Engine>,
    pub(super) granted: HashMap<String, Approval>,
}

#[async_trait]
impl ApprovalGate for JournaledGate {
    async fn request(&self, step: &str, message: &str) -> Result<Approval, StepError> {
        if let Some(a) = self.granted.get(step) {
            return Ok(a.clone());
        }
        let engine = &self.engine;
        let a = match engine.plan.index(step) {
            // A person is asked: show what is at stake, and wait no longer than the deadline.
            Some(i) if engine.approvals.asks_a_person(step) => {
                let state = engine
                    .state()
                    .await
                    .map_err(|e| StepError::permanent(e.to_string()))?;
                let off = super::gate::writes_off(&engine.plan, &state, i);
                let deadline = super::gate::deadline(&engine.plan, i, !off.is_empty());
                let context = engine.gate_context(i, &off, deadline).await;
                let message = std::iter::once(message.to_string())
                    .chain(context)
                    .collect::<Vec<_>>()
                    .join("\n    ");
                engine
                    .progress
                    .note(step, &format!("waiting for approval: {message}"));
                match tokio::time::timeout(deadline, engine.approvals.wait(step, &message)).await {
                    Ok(a) => a?,
                    Err(_) => {
                        return Err(StepError::permanent(format!(
                            "no approval within {} (the gate's deadline{})",
                            humantime::format_duration(deadline),
                            if off.is_empty() {
                                String::new()
                            } else {
                                format!("; writes were off since {}", off.join(", "))
                            }
                        )))
                    }
                }
            }
            _ => {
                engine
                    .progress
                    .note(step, &format!("waiting for approval: {message}"));
                engine.approvals.wait(step, message).await?
            }
        };
        engine
            .log(Event::ApprovalGranted {
                step: step.into(),
                by: a.by.clone(),
                via: a.via.clone(),
                comment: a.comment.clone(),
            })
            .await
            .map_err(|e| StepError::permanent(e.to_string()))?;
        Ok(a)
    }
}

impl Engine {
    pub fn new(p: EngineParts) -> Arc<Self> {
        Arc::new(Engine {
            plan: p.plan,
            run_id: p.run_id,
            journal: tokio::sync::Mutex::new(p.journal),
            token: p.token,
            env: p.env,
            services: p.services,
            shutdown: p.shutdown,
            progress: p.progress,
            approvals: p.approvals,
            prompter: p.prompter,
            operator: p.operator,
            rerun: p.rerun,
            outputs: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Append one event durably and show it.
    pub async fn log(&self, event: Event) -> Result<Record, EngineError> {
        let r = self.journal.lock().await.append(self.token, event).await?;
        tracing::info!(run = %self.run_id, seq = r.seq, event = r.event.name(), "journaled");
        self.progress.record(&r);
        Ok(r)
    }

    /// Every record of this run so far.
    pub async fn records(&self) -> Vec<Record> {
        self.journal.lock().await.records().to_vec()
    }

    pub async fn state(&self) -> Result<RunState, EngineError> {
        Ok(RunState::replay(self.journal.lock().await.records())?)
    }

    pub fn step_cx(self: &Arc<Self>, step: &str, gate: Arc<dyn ApprovalGate>) -> StepCx {
        let progress = self.progress.clone();
        StepCx::new(
            &self.services,
            step,
            CxParts {
                run_id: self.run_id.clone(),
                env: self.env.clone(),
                approvals: gate,
                shutdown: self.shutdown.clone(),
                outputs: self.outputs.clone(),
                notes: Arc::new(move |s, m| progress.note(s, m)),
            },
        )
    }

    /// Journal what a step reported (warnings, measurements) since the last flush.
    pub(super) async fn flush_reports(&self, cx: &StepCx) -> Result<(), EngineError> {
        for report in cx.take_reports() {
            let step = cx.step_id.clone();
            self.log(match report {
                StepReport::Warning(message) => Event::Warning {
                    step: Some(step),
                    message,
                },
                StepReport::Measured(measure, value) => Event::Measured {
                    step,
                    measure,
                    value,
                },
                StepReport::Fence(fence) => Event::Fence { step, fence },
            })
            .await?;
        }
        Ok(())
    }
}

impl Engine {
    /// What gate `i` tells its approver beyond the runbook's message: that writes are off (and
    /// until when), and what the steps behind it will do, as observed now (bounded).
    pub(super) async fn gate_context(
        self: &Arc<Self>,
        i: usize,
        off: &[String],
        deadline: std::time::Duration,
    ) -> Vec<String> {
        use super::gate;
        let mut lines = vec![gate::first_line(off, deadline)];
        let nobody: Arc<dyn ApprovalGate> = Arc::new(gate::NoApprovals);
        for d in gate::gated(&self.plan, i) {
            let def = &self.plan.steps[d];
            let cx = self.step_cx(def.id(), nobody.clone());
            let seen =
                tokio::time::timeout(gate::OBSERVE_LIMIT, def.spec.step().observe(&cx)).await;
            lines.push(match seen {
                Ok(Ok(o)) => format!(
                    "then `{}` will {} (now: {})",
                    def.id(),
                    o.intended,
                    o.current
                ),
                Ok(Err(e)) => format!(
                    "then `{}` ({}): could not be observed: {e}",
                    def.id(),
                    def.kind.value
                ),
                Err(_) => format!(
                    "then `{}` ({}): not observed within {}",
                    def.id(),
                    def.kind.value,
                    humantime::format_duration(gate::OBSERVE_LIMIT)
                ),
            });
        }
        lines
    }
}
