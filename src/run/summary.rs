//! A run's summary, read back from its journal: the outcome, each step's result and duration,
//! the elapsed time (RTO so far), the RPO a promotion measured, warnings, and what to do next.
//! The terminal, `--output json`, reports and notifications all render from this one type.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::env::Targets;
use crate::engine::{Plan, RollbackReport, RunEnd};
use crate::exit;
use crate::journal::{Event, Measure, Outcome, Record};

/// How a run ended (or stopped for now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded,
    Paused,
    Aborted,
    RolledBack,
    /// A rollback stopped at an irreversible step, or an undo failed.
    RollbackIncomplete,
    /// Closed unfinished (`drctl abandon`).
    Abandoned,
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Paused => "paused",
            RunOutcome::Aborted => "aborted",
            RunOutcome::RolledBack => "rolled back",
            RunOutcome::RollbackIncomplete => "rollback incomplete",
            RunOutcome::Abandoned => "abandoned",
        })
    }
}

/// One step's result as the journal tells it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepResult {
    Done,
    AlreadyDone,
    /// Done, but the step itself reports it skipped its effect (a fence of an unreachable region).
    DoneSkipped {
        why: String,
    },
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
}

impl std::fmt::Display for StepResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepResult::Done => f.write_str("done"),
            StepResult::AlreadyDone => f.write_str("already done"),
            StepResult::DoneSkipped { why } => write!(f, "skipped: {why}"),
            StepResult::Skipped { reason } => write!(f, "skipped: {reason}"),
            StepResult::Failed { error } => write!(f, "FAILED: {error}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct StepLine {
    pub id: String,
    #[serde(flatten)]
    pub result: StepResult,
    pub duration_ms: Option<u64>,
}

/// How a run ended, for people and scripts (`drctl schema summary`). Under `--output json` the
/// command adds `"type": "summary"`, and a recovery run `rto_ms` (the RTO the text shows) and
/// the command's own fields (`region`, `left_changed`).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RunSummary {
    /// The version of this document's shape.
    pub schema_version: u32,
    pub run_id: String,
    pub runbook: String,
    pub env: String,
    pub outcome: RunOutcome,
    /// Why it paused, or the error it aborted with.
    pub reason: Option<String>,
    /// The step an aborted run stopped at.
    pub aborted_at: Option<String>,
    /// Steps that failed and were passed over (`on_failure: continue`).
    pub continued_failures: Vec<String>,
    pub rollback: Option<RollbackReport>,
    /// Steps that ended, in the order they ended.
    pub steps: Vec<StepLine>,
    /// Steps still to do (pending or in flight), in plan order.
    pub unfinished: Vec<String>,
    /// From the run's first journal event to its last.
    pub elapsed_ms: u64,
    /// The replica lag a promotion measured: the writes the run may have lost.
    pub rpo_s: Option<f64>,
    pub warnings: Vec<String>,
    /// For a recovery run: the RTO and RPO against the environment's targets, measured as
    /// the report measures them (to the first outside check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto: Option<crate::report::model::Rto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo: Option<crate::report::model::Rpo>,
}

impl RunSummary {
    /// Fold a run's journal (and how the engine said it ended) into its summary, with the
    /// RTO and RPO judged against `targets`.
    pub fn build(records: &[Record], plan: &Plan, end: &RunEnd, targets: &Targets) -> RunSummary {
        let mut s = Self::fold(records, plan, end);
        if crate::report::model::is_recovery(plan) && !records.is_empty() {
            let r = crate::report::model::build(&crate::report::model::Inputs {
                records,
                plan,
                targets,
                journal_path: String::new(),
                outcome: (
                    match s.outcome {
                        RunOutcome::Succeeded => "succeeded",
                        _ => "not_succeeded",
                    }
                    .into(),
                    String::new(),
                ),
            });
            s.rto = Some(r.rto);
            s.rpo = Some(r.rpo);
        }
        s
    }

    fn fold(records: &[Record], plan: &Plan, end: &RunEnd) -> RunSummary {
        let mut run_id = String::new();
        let mut runbook = plan.name.clone();
        let mut env = String::new();
        let mut order: Vec<String> = vec![];
        let mut ended: BTreeMap<String, StepLine> = BTreeMap::new();
        let mut warnings = vec![];
        let mut rpo_s = None;
        for r in records {
            let mut end_step = |id: &str, result: StepResult, duration_ms: Option<u64>| {
                order.retain(|s| s != id);
                order.push(id.to_string());
                ended.insert(
                    id.to_string(),
                    StepLine {
                        id: id.to_string(),
                        result,
                        duration_ms,
                    },
                );
            };
            match &r.event {
                Event::RunStarted {
                    run_id: id,
                    runbook_name,
                    env_name,
                    ..
                } => {
                    run_id = id.clone();
                    runbook = runbook_name.clone();
                    env = env_name.clone();
                }
                Event::StepSucceeded {
                    step,
                    outcome,
                    result,
                    duration_ms,
                } => {
                    let res = match (outcome, result.get("skipped").and_then(|v| v.as_str())) {
                        (_, Some(why)) => StepResult::DoneSkipped { why: why.into() },
                        (Outcome::AlreadyDone, None) => StepResult::AlreadyDone,
                        (Outcome::Changed, None) => StepResult::Done,
                    };
                    end_step(step, res, Some(*duration_ms));
                }
                Event::StepFailed {
                    step,
                    error,
                    retry_in_ms: None,
                    ..
                } => end_step(
                    step,
                    StepResult::Failed {
                        error: error.clone(),
                    },
                    None,
                ),
                Event::StepSkipped { step, reason, .. } => end_step(
                    step,
                    StepResult::Skipped {
                        reason: reason.clone(),
                    },
                    None,
                ),
                Event::StepStarted { step, .. } => {
                    // A retried or resumed step is no longer ended.
                    ended.remove(step);
                    order.retain(|s| s != step);
                }
                Event::Warning { step, message } => warnings.push(format!(
                    "{}{message}",
                    step.as_ref().map(|s| format!("{s}: ")).unwrap_or_default()
                )),
                Event::Measured {
                    measure: Measure::RpoSeconds,
                    value,
                    ..
                } if *value >= 0.0 => rpo_s = Some(*value),
                _ => {}
            }
        }
        let elapsed_ms = match (records.first(), records.last()) {
            (Some(a), Some(b)) => (b.at - a.at).num_milliseconds().max(0) as u64,
            _ => 0,
        };
        let unfinished = plan
            .steps
            .iter()
            .map(|s| s.id().to_string())
            .filter(|id| !ended.contains_key(id))
            .collect();
        let steps = order.iter().filter_map(|id| ended.remove(id)).collect();
        let mut s = RunSummary {
            schema_version: crate::SCHEMA_VERSION,
            run_id,
            runbook,
            env,
            outcome: RunOutcome::Succeeded,
            reason: None,
            aborted_at: None,
            continued_failures: vec![],
            rollback: None,
            steps,
            unfinished,
            elapsed_ms,
            rpo_s,
            warnings,
            rto: None,
            rpo: None,
        };
        match end {
            RunEnd::Succeeded { continued_failures } => {
                s.continued_failures = continued_failures.clone()
            }
            RunEnd::Paused { reason } => {
                s.outcome = RunOutcome::Paused;
                s.reason = Some(reason.clone());
            }
            RunEnd::Aborted { step, error } => {
                s.outcome = RunOutcome::Aborted;
                s.aborted_at = Some(step.clone());
                s.reason = Some(error.clone());
            }
            RunEnd::RolledBack(r) => {
                s.outcome = if r.complete() {
                    RunOutcome::RolledBack
                } else {
                    RunOutcome::RollbackIncomplete
                };
                s.rollback = Some(r.clone());
            }
            RunEnd::Abandoned { message } => {
                s.outcome = RunOutcome::Abandoned;
                s.reason = Some(message.clone());
            }
        }
        s
    }

    /// The exit code a script sees for this outcome (see `drctl::exit`).
    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            RunOutcome::Succeeded => exit::OK,
            RunOutcome::Paused => exit::PAUSED,
            RunOutcome::Aborted => exit::FAILED,
            RunOutcome::RolledBack => exit::ROLLED_BACK,
            RunOutcome::RollbackIncomplete => exit::ROLLBACK_INCOMPLETE,
            // What was asked (close the run) was done.
            RunOutcome::Abandoned => exit::OK,
        }
    }
}

impl RunSummary {
    /// How the run ended, and what to do next, in lines for people.
    pub fn headline(&self) -> Vec<String> {
        let id = &self.run_id;
        let reason = self.reason.as_deref().unwrap_or("");
        match self.outcome {
            RunOutcome::Succeeded if self.continued_failures.is_empty() => {
                vec![format!("run {id} succeeded")]
            }
            RunOutcome::Succeeded => vec![format!(
                "run {id} completed, but these steps failed and were passed over: {}",
                self.continued_failures.join(", ")
            )],
            RunOutcome::Paused => vec![
                format!("run {id} paused: {reason}"),
                format!("  status: drctl status {id}"),
                format!("  resume: drctl resume {id}"),
                format!("  undo:   drctl rollback {id}"),
                format!("  close it without running more: drctl abandon {id} --reason TEXT"),
            ],
            RunOutcome::Abandoned => vec![format!("run {id} {reason}")],
            RunOutcome::Aborted => vec![
                format!(
                    "run {id} aborted at step `{}`: {reason}",
                    self.aborted_at.as_deref().unwrap_or("?")
                ),
                format!("  undo what it did: drctl rollback {id}"),
            ],
            RunOutcome::RolledBack | RunOutcome::RollbackIncomplete => {
                let Some(r) = &self.rollback else {
                    return vec![];
                };
                let mut out = vec![format!(
                    "rollback of {id}: undid {}",
                    if r.undone.is_empty() {
                        "nothing".into()
                    } else {
                        r.undone.join(", ")
                    }
                )];
                if let Some((_, why)) = &r.stopped_at {
                    out.push(format!("STOPPED: {why}"));
                }
                if let Some((step, err)) = &r.failed {
                    out.push(format!("UNDO FAILED at `{step}`: {err}"));
                    out.push(format!(
                        "  fix the cause, then run `drctl rollback {id}` again"
                    ));
                }
                if !r.left_in_place.is_empty() {
                    out.push(format!("still in effect: {}", r.left_in_place.join(", ")));
                }
                out
            }
        }
    }
}
