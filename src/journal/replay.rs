//! Replay: fold a journal into the state of a run, refusing impossible orders (an outcome
//! without a start, a step after the run finished, a gap in sequence numbers). `status`,
//! `resume`, `rollback` and reports all read runs through this one state machine.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::event::{Event, Operator, Outcome, Record, RunStatus};

#[derive(Debug, thiserror::Error)]
#[error("journal event #{seq} ({event}) is impossible here: {why}")]
pub struct ReplayError {
    pub seq: u64,
    pub event: &'static str,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum StepPhase {
    Pending,
    /// Started, not yet past observe. Nothing was changed by this attempt.
    Started {
        attempt: u32,
    },
    /// The intent is journaled: execute may have run, fully, partly or not at all.
    InFlight {
        attempt: u32,
        prior: Value,
    },
    Succeeded {
        outcome: Outcome,
        prior: Value,
        result: Value,
    },
    Failed {
        attempt: u32,
        error: String,
        will_retry: bool,
        prior: Option<Value>,
    },
    Skipped {
        reason: String,
    },
    Undoing {
        prior: Value,
        result: Value,
    },
    Undone,
    UndoFailed {
        error: String,
        prior: Value,
        result: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunPhase {
    Running,
    Paused { reason: String },
    Finished { status: RunStatus, message: String },
    RollingBack,
}

impl RunPhase {
    /// The phase in words.
    pub fn text(&self) -> String {
        match self {
            RunPhase::Running => "running (or interrupted: `drctl resume`)".into(),
            RunPhase::Paused { reason } => format!("paused: {reason}"),
            RunPhase::Finished { status, message } => format!("{status}: {message}"),
            RunPhase::RollingBack => "rolling back (or interrupted during rollback)".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub phase: StepPhase,
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunState {
    pub run_id: String,
    pub runbook_name: String,
    pub runbook_path: String,
    pub runbook_text: String,
    pub runbook_sha256: String,
    pub env_name: String,
    pub env_path: String,
    pub env_text: String,
    pub env_sha256: String,
    pub operator: Operator,
    pub command: String,
    pub aws_identity: Option<super::AwsIdentity>,
    pub started_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub phase: RunPhase,
    pub steps: BTreeMap<String, StepView>,
    /// Succeeded steps, in the order they completed (rollback undoes in reverse).
    pub completed: Vec<String>,
    /// Checkpoint name -> how many entries of `completed` existed when it was reached.
    pub checkpoints: Vec<(String, usize)>,
    pub warnings: Vec<String>,
    /// Measurements by kind, the latest of each (a resumed promotion keeps its RPO).
    pub measured: BTreeMap<super::Measure, (String, f64)>,
    pub last_seq: u64,
    /// An `abandoned` event was read: only its `run_finished` may follow.
    #[serde(skip)]
    abandoning: bool,
    /// The rollback under way ends in a pause, not a finish (`rollback_started.then_pause`).
    #[serde(skip)]
    pause_after_rollback: bool,
}

impl RunState {
    pub fn replay(records: &[Record]) -> Result<RunState, ReplayError> {
        let first = records.first().ok_or(ReplayError {
            seq: 0,
            event: "none",
            why: "the journal is empty".into(),
        })?;
        let Event::RunStarted {
            run_id,
            runbook_name,
            runbook_path,
            runbook_text,
            runbook_sha256,
            env_name,
            env_path,
            env_text,
            env_sha256,
            operator,
            command,
            aws_identity,
            ..
        } = &first.event
        else {
            return Err(ReplayError {
                seq: first.seq,
                event: first.event.name(),
                why: "a journal must begin with run_started".into(),
            });
        };
        let mut st = RunState {
            run_id: run_id.clone(),
            runbook_name: runbook_name.clone(),
            runbook_path: runbook_path.clone(),
            runbook_text: runbook_text.clone(),
            runbook_sha256: runbook_sha256.clone(),
            env_name: env_name.clone(),
            env_path: env_path.clone(),
            env_text: env_text.clone(),
            env_sha256: env_sha256.clone(),
            operator: operator.clone(),
            command: command.clone(),
            aws_identity: aws_identity.clone(),
            started_at: first.at,
            last_at: first.at,
            phase: RunPhase::Running,
            steps: BTreeMap::new(),
            completed: Vec::new(),
            checkpoints: Vec::new(),
            warnings: Vec::new(),
            measured: BTreeMap::new(),
            last_seq: first.seq,
            abandoning: false,
            pause_after_rollback: false,
        };
        if first.seq != 1 {
            return Err(ReplayError {
                seq: first.seq,
                event: "run_started",
                why: "sequence must start at 1".into(),
            });
        }
        for r in &records[1..] {
            st.apply(r)?;
        }
        Ok(st)
    }

    pub fn step(&self, id: &str) -> StepPhase {
        self.steps
            .get(id)
            .map_or(StepPhase::Pending, |s| s.phase.clone())
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, RunPhase::Finished { .. })
    }

    fn view(&mut self, id: &str) -> &mut StepView {
        self.steps.entry(id.to_string()).or_insert(StepView {
            phase: StepPhase::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            approved_by: None,
        })
    }

    /// Apply one record, or say why it cannot follow what came before.
    pub fn apply(&mut self, r: &Record) -> Result<(), ReplayError> {
        let bad = |why: String| ReplayError {
            seq: r.seq,
            event: r.event.name(),
            why,
        };
        if r.seq != self.last_seq + 1 {
            return Err(bad(format!(
                "expected sequence number {}",
                self.last_seq + 1
            )));
        }
        if self.abandoning && !matches!(r.event, Event::RunFinished { .. }) {
            return Err(bad("only run_finished may follow `abandoned`".into()));
        }
        let step_events_allowed = matches!(self.phase, RunPhase::Running);
        use StepPhase as P;
        match &r.event {
            Event::RunStarted { .. } => return Err(bad("a run starts only once".into())),
            Event::Resumed { .. } => match self.phase {
                RunPhase::Running | RunPhase::Paused { .. } => self.phase = RunPhase::Running,
                _ => return Err(bad("only a paused or interrupted run can resume".into())),
            },
            Event::StepStarted { step, attempt } => {
                if !step_events_allowed {
                    return Err(bad(format!("the run is {:?}", self.phase)));
                }
                let v = self.view(step);
                match &v.phase {
                    // An undone step runs again when a paused run goes on (a gate's fence).
                    P::Pending
                    | P::Started { .. }
                    | P::InFlight { .. }
                    | P::Failed { .. }
                    | P::Undone => {}
                    other => return Err(bad(format!("step `{step}` is already {other:?}"))),
                }
                v.attempts = v.attempts.max(*attempt);
                // An attempt restarted after a crash, or retried after an attempt that failed
                // once its intent was journaled (it may have acted), keeps what the earlier
                // intent recorded: the state before drctl touched anything, which undo needs.
                v.phase = match &v.phase {
                    P::InFlight { prior, .. }
                    | P::Failed {
                        prior: Some(prior), ..
                    } => P::InFlight {
                        attempt: *attempt,
                        prior: prior.clone(),
                    },
                    _ => P::Started { attempt: *attempt },
                };
                v.started_at.get_or_insert(r.at);
            }
            Event::StepIntent {
                step,
                attempt,
                prior,
                ..
            } => {
                if !step_events_allowed {
                    return Err(bad(format!("the run is {:?}", self.phase)));
                }
                let v = self.view(step);
                match &v.phase {
                    P::Started { .. } => {
                        v.phase = P::InFlight {
                            attempt: *attempt,
                            prior: prior.clone(),
                        }
                    }
                    // Re-observed after a crash: keep the first prior, it is the state before
                    // drctl touched anything.
                    P::InFlight { prior: first, .. } => {
                        v.phase = P::InFlight {
                            attempt: *attempt,
                            prior: first.clone(),
                        }
                    }
                    other => return Err(bad(format!("step `{step}` has not started ({other:?})"))),
                }
            }
            Event::StepSucceeded {
                step,
                outcome,
                result,
                ..
            } => {
                if !step_events_allowed {
                    return Err(bad(format!("the run is {:?}", self.phase)));
                }
                let v = self.view(step);
                let prior = match &v.phase {
                    P::Started { .. } => Value::Null,
                    P::InFlight { prior, .. } => prior.clone(),
                    other => return Err(bad(format!("step `{step}` was not running ({other:?})"))),
                };
                v.phase = P::Succeeded {
                    outcome: *outcome,
                    prior,
                    result: result.clone(),
                };
                v.finished_at = Some(r.at);
                self.completed.push(step.clone());
            }
            Event::StepFailed {
                step,
                attempt,
                error,
                retry_in_ms,
            } => {
                if !step_events_allowed {
                    return Err(bad(format!("the run is {:?}", self.phase)));
                }
                let v = self.view(step);
                let prior = match &v.phase {
                    P::Started { .. } => None,
                    P::InFlight { prior, .. } => Some(prior.clone()),
                    other => return Err(bad(format!("step `{step}` was not running ({other:?})"))),
                };
                v.phase = P::Failed {
                    attempt: *attempt,
                    error: error.clone(),
                    will_retry: retry_in_ms.is_some(),
                    prior,
                };
                v.finished_at = Some(r.at);
            }
            Event::StepSkipped { step, reason, .. } => {
                if !step_events_allowed {
                    return Err(bad(format!("the run is {:?}", self.phase)));
                }
                let v = self.view(step);
                // An operator may skip a step that may have acted (failed after its intent,
                // or re-observed after one): it is theirs to check by hand then.
                match &v.phase {
                    P::Pending | P::Started { .. } | P::InFlight { .. } | P::Failed { .. } => {}
                    other => {
                        return Err(bad(format!(
                            "step `{step}` cannot be skipped now ({other:?})"
                        )))
                    }
                }
                v.phase = P::Skipped {
                    reason: reason.clone(),
                };
                v.finished_at = Some(r.at);
            }
            Event::ApprovalGranted { step, by, .. } => {
                let v = self.view(step);
                if !matches!(v.phase, P::Started { .. } | P::InFlight { .. }) {
                    return Err(bad(format!("step `{step}` is not waiting for approval")));
                }
                v.approved_by = Some(by.clone());
            }
            Event::CheckpointReached { name, step } => {
                if !matches!(self.step(step), P::Succeeded { .. }) {
                    return Err(bad(format!(
                        "checkpoint `{name}` names step `{step}`, which has not succeeded"
                    )));
                }
                self.checkpoints.push((name.clone(), self.completed.len()));
            }
            Event::Deferred { step, error } => {
                if !step_events_allowed {
                    return Err(bad(format!("`deferred` of {step} outside a running run")));
                }
                self.warnings.push(format!(
                    "{step}: deferred (its control plane did not answer: {error}); drctl deferred --run"
                ))
            }
            Event::Warning { step, message } => self.warnings.push(match step {
                Some(s) => format!("{s}: {message}"),
                None => message.clone(),
            }),
            Event::Measured {
                step,
                measure,
                value,
            } => {
                self.measured.insert(*measure, (step.clone(), *value));
            }
            Event::Fence { .. } => {}
            Event::Paused { reason } => match self.phase {
                // A gate's fence undone: the run waits again instead of finishing.
                RunPhase::Running | RunPhase::RollingBack
                    if self.phase == RunPhase::Running || self.pause_after_rollback =>
                {
                    self.pause_after_rollback = false;
                    self.phase = RunPhase::Paused {
                        reason: reason.clone(),
                    }
                }
                _ => return Err(bad(format!("cannot pause a run that is {:?}", self.phase))),
            },
            Event::RunFinished { status, message }
                if self.abandoning != (*status == RunStatus::Abandoned) =>
            {
                return Err(bad(if self.abandoning {
                    "an abandoned run finishes as abandoned".into()
                } else {
                    "a run is abandoned only through an `abandoned` event".into()
                }))
            }
            Event::RunFinished { status, message } => match self.phase {
                RunPhase::Running | RunPhase::Paused { .. } | RunPhase::RollingBack => {
                    self.phase = RunPhase::Finished {
                        status: *status,
                        message: message.clone(),
                    }
                }
                _ => return Err(bad("the run already finished".into())),
            },
            Event::RollbackStarted { then_pause, .. } => {
                self.pause_after_rollback = *then_pause;
                if matches!(
                    self.phase,
                    RunPhase::Finished {
                        status: RunStatus::RolledBack,
                        ..
                    }
                ) {
                    // A second rollback to an earlier checkpoint is allowed.
                }
                self.phase = RunPhase::RollingBack;
            }
            Event::UndoStarted { step } => {
                if self.phase != RunPhase::RollingBack {
                    return Err(bad("undo outside a rollback".into()));
                }
                let v = self.view(step);
                v.phase = match &v.phase {
                    P::Succeeded { prior, result, .. }
                    | P::Undoing { prior, result }
                    | P::UndoFailed { prior, result, .. } => P::Undoing {
                        prior: prior.clone(),
                        result: result.clone(),
                    },
                    // A step that died in flight may have changed something: undo from its prior.
                    P::InFlight { prior, .. }
                    | P::Failed {
                        prior: Some(prior), ..
                    } => P::Undoing {
                        prior: prior.clone(),
                        result: Value::Null,
                    },
                    other => {
                        return Err(bad(format!(
                            "step `{step}` has nothing to undo ({other:?})"
                        )))
                    }
                };
            }
            Event::Undone { step } => {
                let v = self.view(step);
                if !matches!(v.phase, P::Undoing { .. }) {
                    return Err(bad(format!("step `{step}` was not being undone")));
                }
                v.phase = P::Undone;
                self.completed.retain(|s| s != step);
            }
            Event::UndoFailed { step, error } => {
                let v = self.view(step);
                let P::Undoing { prior, result } = &v.phase else {
                    return Err(bad(format!("step `{step}` was not being undone")));
                };
                v.phase = P::UndoFailed {
                    error: error.clone(),
                    prior: prior.clone(),
                    result: result.clone(),
                };
            }
            Event::RollbackStopped { .. } => {
                if self.phase != RunPhase::RollingBack {
                    return Err(bad("not rolling back".into()));
                }
            }
            Event::RollbackFinished { .. } => {
                if self.phase != RunPhase::RollingBack {
                    return Err(bad("not rolling back".into()));
                }
                // RunFinished follows and records the final status.
            }
            Event::Abandoned { .. } => {
                if self.is_finished() {
                    return Err(bad("the run already finished".into()));
                }
                // RunFinished (abandoned) follows; nothing else may.
                self.abandoning = true;
            }
        }
        self.last_seq = r.seq;
        self.last_at = r.at;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(seq: u64, event: Event) -> Record {
        Record {
            seq,
            at: Utc::now(),
            token: 1,
            event,
            hash: None,
        }
    }

    fn start() -> Record {
        rec(1, Event::test_run_started())
    }

    fn started(seq: u64, s: &str) -> Record {
        rec(
            seq,
            Event::StepStarted {
                step: s.into(),
                attempt: 1,
            },
        )
    }

    fn succeeded(seq: u64, s: &str) -> Record {
        rec(
            seq,
            Event::StepSucceeded {
                step: s.into(),
                outcome: Outcome::Changed,
                result: json!(null),
                duration_ms: 1,
            },
        )
    }

    #[test]
    fn normal_order_replays() {
        let recs = vec![
            start(),
            started(2, "a"),
            rec(
                3,
                Event::StepIntent {
                    step: "a".into(),
                    attempt: 1,
                    observed: crate::journal::Satisfied::NotDone,
                    current: "".into(),
                    intended: "".into(),
                    prior: json!({"old": 1}),
                },
            ),
            succeeded(4, "a"),
            rec(
                5,
                Event::CheckpointReached {
                    name: "cp".into(),
                    step: "a".into(),
                },
            ),
            rec(
                6,
                Event::RunFinished {
                    status: RunStatus::Succeeded,
                    message: "".into(),
                },
            ),
        ];
        let st = RunState::replay(&recs).unwrap();
        assert_eq!(st.completed, vec!["a"]);
        assert_eq!(st.checkpoints, vec![("cp".to_string(), 1)]);
        assert!(
            matches!(st.step("a"), StepPhase::Succeeded { prior, .. } if prior == json!({"old": 1}))
        );
    }

    #[test]
    fn impossible_orders_are_rejected() {
        let cases: Vec<(Vec<Record>, &str)> = vec![
            (vec![started(1, "a")], "must begin with run_started"),
            (vec![start(), succeeded(2, "a")], "was not running"),
            (vec![start(), started(3, "a")], "expected sequence number 2"),
            (
                vec![start(), started(2, "a"), succeeded(3, "a"), started(4, "a")],
                "already",
            ),
            (
                vec![
                    start(),
                    rec(
                        2,
                        Event::RunFinished {
                            status: RunStatus::Succeeded,
                            message: "".into(),
                        },
                    ),
                    started(3, "b"),
                ],
                "the run is",
            ),
            (
                vec![start(), rec(2, Event::Undone { step: "a".into() })],
                "was not being undone",
            ),
            (
                vec![start(), Record { seq: 2, ..start() }],
                "starts only once",
            ),
            (vec![Record { seq: 2, ..start() }], "must start at 1"),
        ];
        for (recs, want) in cases {
            let err = RunState::replay(&recs).unwrap_err().to_string();
            assert!(err.contains(want), "{err} !~ {want}");
        }
    }
}
