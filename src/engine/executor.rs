//! The executor: runs a plan's steps as a DAG with bounded parallelism, journaling intent before
//! each side effect and the outcome after it, and resumes a run from its journal.
//!
//! One run, one process, one writer: every journal append goes through [`Engine::log`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::task::JoinSet;

use super::core::{Decision, Engine, EngineError, JournaledGate, RunEnd};
use super::plan::Plan;
use crate::config::runbook::OnFailure;
use crate::journal::{Event, Outcome, RunState, RunStatus, StepPhase};
use crate::retry::Backoff;
use crate::steps::{Approval, ApprovalGate, Satisfied, StepCx, StepDef, StepError};

enum StepEnd {
    Ok,
    Failed(String),
    Interrupted,
    Attention(String),
    Decision(Decision),
}

/// One attempt of a step: its number, whether an earlier drctl left it in flight, when the
/// step began (for its duration) and whether to ask the prompter first.
#[derive(Clone, Copy)]
struct Try {
    attempt: u32,
    crashed: bool,
    began: Instant,
    ask: bool,
}

enum AttemptEnd {
    Done,
    Skipped,
    Attention(String),
    Decision(Decision),
}

enum Stop {
    Interrupted,
    Pause(String),
    Abort(String, String),
    Rollback(String, String),
}

impl Engine {
    /// Run (or resume) to the end, a pause, an abort or a rollback.
    pub async fn run(self: Arc<Self>) -> Result<RunEnd, EngineError> {
        let state = self.state().await?;
        let plan = self.plan.clone();
        let n = plan.steps.len();

        #[derive(Clone, Copy, PartialEq)]
        enum S {
            Todo,
            Running,
            Done,
            FailedContinue,
        }
        let mut st = vec![S::Todo; n];
        let mut first_attempt = vec![1u32; n];
        let mut inflight = vec![false; n];
        let mut granted = HashMap::new();
        for (i, def) in plan.steps.iter().enumerate() {
            let id = def.id();
            let view = state.steps.get(id);
            if let Some(by) = view.and_then(|v| v.approved_by.clone()) {
                granted.insert(
                    id.to_string(),
                    Approval {
                        by,
                        via: "journal".into(),
                        comment: None,
                    },
                );
            }
            first_attempt[i] = view.map_or(0, |v| v.attempts) + 1;
            match state.step(id) {
                StepPhase::Succeeded { result, .. } => {
                    st[i] = S::Done;
                    self.outputs
                        .lock()
                        .expect("outputs")
                        .insert(id.into(), result);
                }
                StepPhase::Skipped { .. } => st[i] = S::Done,
                StepPhase::Failed {
                    will_retry: false, ..
                } if def.on_failure == OnFailure::Continue => st[i] = S::FailedContinue,
                StepPhase::InFlight { .. } | StepPhase::Failed { prior: Some(_), .. } => {
                    inflight[i] = true
                }
                _ => {}
            }
        }
        let gate: Arc<dyn ApprovalGate> = Arc::new(JournaledGate {
            engine: self.clone(),
            granted,
        });

        let mut set: JoinSet<(usize, StepEnd)> = JoinSet::new();
        let mut stop: Option<Stop> = None;
        let mut continued = Vec::new();
        let max_parallel = if self.prompter.is_some() {
            1
        } else {
            plan.max_parallel
        };
        loop {
            if stop.is_none() && self.shutdown.is_cancelled() {
                stop = Some(Stop::Interrupted);
            }
            if stop.is_none() {
                for i in 0..n {
                    if set.len() >= max_parallel {
                        break;
                    }
                    let ready = st[i] == S::Todo
                        && plan.deps[i]
                            .iter()
                            .all(|&d| matches!(st[d], S::Done | S::FailedContinue));
                    if ready {
                        st[i] = S::Running;
                        let me = self.clone();
                        let cx = self.step_cx(plan.steps[i].id(), gate.clone());
                        let (attempt, was_inflight) = (first_attempt[i], inflight[i]);
                        set.spawn(
                            async move { (i, me.run_step(i, cx, attempt, was_inflight).await) },
                        );
                    }
                }
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let (i, end) = joined.expect("step tasks do not panic");
            let id = plan.steps[i].id().to_string();
            match end {
                StepEnd::Ok => st[i] = S::Done,
                StepEnd::Failed(err) => match plan.steps[i].on_failure {
                    OnFailure::Continue => {
                        st[i] = S::FailedContinue;
                        continued.push(id);
                    }
                    OnFailure::Pause | OnFailure::Defer => {
                        stop.get_or_insert(Stop::Pause(format!("step `{id}` failed: {err}")));
                    }
                    OnFailure::Abort => {
                        stop.get_or_insert(Stop::Abort(id, err));
                    }
                    OnFailure::Rollback => {
                        stop.get_or_insert(Stop::Rollback(id, err));
                    }
                },
                StepEnd::Interrupted => {
                    stop.get_or_insert(Stop::Interrupted);
                }
                StepEnd::Attention(why) => {
                    stop.get_or_insert(Stop::Pause(why));
                }
                StepEnd::Decision(Decision::Rollback) => {
                    stop.get_or_insert(Stop::Rollback(id, "operator chose to roll back".into()));
                }
                StepEnd::Decision(_) => {
                    stop.get_or_insert(Stop::Abort(id, "operator aborted the run".into()));
                }
            }
        }

        match stop {
            None => {
                let message = if continued.is_empty() {
                    "all steps completed".to_string()
                } else {
                    format!("completed; failed but continued: {}", continued.join(", "))
                };
                self.log(Event::RunFinished {
                    status: RunStatus::Succeeded,
                    message,
                })
                .await?;
                Ok(RunEnd::Succeeded {
                    continued_failures: continued,
                })
            }
            Some(Stop::Interrupted) => {
                let reason = "interrupted: running steps reached a safe point".to_string();
                self.log(Event::Paused {
                    reason: reason.clone(),
                })
                .await?;
                Ok(RunEnd::Paused { reason })
            }
            Some(Stop::Pause(reason)) => {
                let reason = self.give_writes_back(reason).await?;
                self.log(Event::Paused {
                    reason: reason.clone(),
                })
                .await?;
                Ok(RunEnd::Paused { reason })
            }
            Some(Stop::Abort(step, error)) => {
                self.log(Event::RunFinished {
                    status: RunStatus::Aborted,
                    message: format!("at step `{step}`: {error}"),
                })
                .await?;
                Ok(RunEnd::Aborted { step, error })
            }
            Some(Stop::Rollback(step, error)) => {
                let cp = self.state().await?.checkpoints.last().map(|c| c.0.clone());
                let report = super::rollback::rollback(
                    &self,
                    cp.as_deref(),
                    &format!("step `{step}` failed: {error}"),
                )
                .await?;
                Ok(RunEnd::RolledBack(report))
            }
        }
    }

    /// Before a run pauses at a gate that held writes off (its deadline passed, or it was
    /// declined), undo the fences it held, so production is never left without a writer while
    /// nobody is there. Never after a promotion: that would make two writers.
    async fn give_writes_back(self: &Arc<Self>, reason: String) -> Result<String, EngineError> {
        let state = self.state().await?;
        let fences = super::gate::fences_to_undo(&self.plan, &state);
        if fences.is_empty() {
            return Ok(reason);
        }
        let why = format!("{reason}: giving production its writer back before pausing");
        let report = super::rollback::undo_then_pause(self, &fences, &why).await?;
        Ok(if report.complete() && report.undone == fences {
            format!(
                "{reason}; writes are on again: {} undone (it runs again on `drctl resume`)",
                fences.join(", ")
            )
        } else {
            format!(
                "{reason}; WRITES MAY STILL BE OFF: undoing {} did not finish ({}): check the writer now",
                fences.join(", "),
                report
                    .failed
                    .as_ref()
                    .map(|(s, e)| format!("{s}: {e}"))
                    .or_else(|| report.stopped_at.as_ref().map(|(s, e)| format!("{s}: {e}")))
                    .unwrap_or_else(|| "not undone".into())
            )
        })
    }

    async fn run_step(
        self: Arc<Self>,
        i: usize,
        cx: StepCx,
        mut attempt: u32,
        mut inflight: bool,
    ) -> StepEnd {
        match self
            .run_step_inner(i, &cx, &mut attempt, &mut inflight)
            .await
        {
            Ok(end) => end,
            Err(e) => {
                // The journal failed: nothing more can be recorded, so nothing more may be done.
                self.shutdown.cancel();
                StepEnd::Attention(format!("journal write failed: {e}"))
            }
        }
    }

    async fn run_step_inner(
        &self,
        i: usize,
        cx: &StepCx,
        attempt: &mut u32,
        inflight: &mut bool,
    ) -> Result<StepEnd, EngineError> {
        let def = &self.plan.steps[i];
        let id = def.id().to_string();
        let began = Instant::now();
        let budget = def.retries + 1;
        let mut tries = 0;
        // In flight when an earlier drctl stopped: the effect is unknown. After a failed
        // attempt of our own it is not: the step said it failed, and `retries` asks for more.
        let mut crashed = *inflight;
        loop {
            tries += 1;
            self.log(Event::StepStarted {
                step: id.clone(),
                attempt: *attempt,
            })
            .await?;
            let timeout = self.plan.timeout(i);
            let ask = self.prompter.is_some() && tries == 1;
            let res = tokio::time::timeout(
                timeout,
                self.attempt(
                    def,
                    cx,
                    inflight,
                    Try {
                        attempt: *attempt,
                        crashed,
                        began,
                        ask,
                    },
                ),
            )
            .await;
            self.flush_reports(cx).await?;
            let err = match res {
                Ok(Ok(AttemptEnd::Done | AttemptEnd::Skipped)) => return Ok(StepEnd::Ok),
                Ok(Ok(AttemptEnd::Attention(why))) => return Ok(StepEnd::Attention(why)),
                Ok(Ok(AttemptEnd::Decision(d))) => return Ok(StepEnd::Decision(d)),
                Ok(Err(AttemptErr::Engine(e))) => return Err(e),
                Ok(Err(AttemptErr::Step(StepError::Interrupted))) => {
                    return Ok(StepEnd::Interrupted)
                }
                Ok(Err(AttemptErr::Step(e))) => e,
                Err(_) => StepError::Retryable(format!(
                    "timed out after {}",
                    humantime::format_duration(timeout)
                )),
            };
            if err.is_retryable() && tries < budget && !self.shutdown.is_cancelled() {
                let delay = Backoff::new(def.backoff).delay(tries);
                self.log(Event::StepFailed {
                    step: id.clone(),
                    attempt: *attempt,
                    error: err.to_string(),
                    retry_in_ms: Some(delay.as_millis() as u64),
                })
                .await?;
                if cx.sleep(delay).await.is_err() {
                    return Ok(StepEnd::Interrupted);
                }
                *attempt += 1;
                crashed = false;
                continue;
            }
            self.log(Event::StepFailed {
                step: id.clone(),
                attempt: *attempt,
                error: err.to_string(),
                retry_in_ms: None,
            })
            .await?;
            if let Some(p) = &self.prompter {
                match p.after_failure(def, &err.to_string()).await {
                    Decision::Retry | Decision::Go => {
                        *attempt += 1;
                        tries = 0;
                        continue;
                    }
                    Decision::Skip(reason) => {
                        self.skip(id, reason).await?;
                        return Ok(StepEnd::Ok);
                    }
                    d => return Ok(StepEnd::Decision(d)),
                }
            }
            if def.on_failure == OnFailure::Defer && err.is_retryable() {
                // Its service did not answer: left for later, the run carries on.
                self.log(Event::Deferred {
                    step: id.clone(),
                    error: err.to_string(),
                })
                .await?;
                self.skip(id.clone(), format!("deferred: {err}")).await?;
                return Ok(StepEnd::Ok);
            }
            return Ok(StepEnd::Failed(err.to_string()));
        }
    }

    async fn attempt(
        &self,
        def: &StepDef,
        cx: &StepCx,
        inflight: &mut bool,
        t: Try,
    ) -> Result<AttemptEnd, AttemptErr> {
        let Try {
            attempt,
            crashed,
            began,
            ask,
        } = t;
        let id = def.id().to_string();
        let step = def.spec.step();
        let obs = step.observe(cx).await?;
        let succeed = |outcome, result: Value| Event::StepSucceeded {
            step: id.clone(),
            outcome,
            result,
            duration_ms: began.elapsed().as_millis() as u64,
        };
        match obs.state {
            Satisfied::Done => {
                // Done after our own intent was journaled means our earlier execute took effect;
                // it may not have settled yet (a distribution still InProgress when drctl died),
                // so it is verified like any execute before it counts as done.
                if *inflight {
                    step.verify(cx, &obs.result).await?;
                }
                let outcome = if *inflight {
                    Outcome::Changed
                } else {
                    Outcome::AlreadyDone
                };
                if !obs.result.is_null() {
                    self.outputs
                        .lock()
                        .expect("outputs")
                        .insert(id.clone(), obs.result.clone());
                }
                self.flush_reports(cx).await?;
                self.log(succeed(outcome, obs.result.clone())).await?;
                self.reached_checkpoint(def).await?;
                return Ok(AttemptEnd::Done);
            }
            Satisfied::Unknown if crashed && !self.rerun.contains(&id) => {
                return Ok(AttemptEnd::Attention(format!(
                    "step `{id}` was in flight when drctl stopped, and a `{}` step cannot observe whether it took effect. \
                     Check by hand, then `drctl resume {} --rerun {id}` to run it again (or add a `check` command to the step)",
                    def.kind.value, self.run_id
                )));
            }
            _ => {}
        }
        if ask {
            if let Some(p) = &self.prompter {
                match p.before(def, &obs).await {
                    Decision::Go | Decision::Retry => {}
                    Decision::Skip(reason) => {
                        self.skip(id, reason).await?;
                        return Ok(AttemptEnd::Skipped);
                    }
                    d => return Ok(AttemptEnd::Decision(d)),
                }
            }
        }
        self.log(Event::StepIntent {
            step: id.clone(),
            attempt,
            observed: obs.state,
            current: obs.current.clone(),
            intended: obs.intended.clone(),
            prior: obs.prior.clone(),
        })
        .await?;
        *inflight = true;
        let result = step.execute(cx, &obs).await?;
        // What execute measured or warned about is journaled before the (long) verify, so a
        // crash while waiting does not lose it.
        self.flush_reports(cx).await?;
        step.verify(cx, &result).await?;
        self.outputs
            .lock()
            .expect("outputs")
            .insert(id.clone(), result.clone());
        self.flush_reports(cx).await?;
        self.log(succeed(Outcome::Changed, result)).await?;
        self.reached_checkpoint(def).await?;
        Ok(AttemptEnd::Done)
    }

    async fn skip(&self, step: String, reason: String) -> Result<(), EngineError> {
        self.log(Event::StepSkipped {
            step,
            reason,
            by: self.operator.user.clone(),
        })
        .await?;
        Ok(())
    }

    async fn reached_checkpoint(&self, def: &StepDef) -> Result<(), EngineError> {
        if let Some(cp) = &def.checkpoint {
            self.log(Event::CheckpointReached {
                name: cp.value.clone(),
                step: def.id().into(),
            })
            .await?;
        }
        Ok(())
    }
}

enum AttemptErr {
    Step(StepError),
    Engine(EngineError),
}

impl From<StepError> for AttemptErr {
    fn from(e: StepError) -> Self {
        AttemptErr::Step(e)
    }
}

impl From<EngineError> for AttemptErr {
    fn from(e: EngineError) -> Self {
        AttemptErr::Engine(e)
    }
}

/// Which steps of a journaled run still have to run, for `status` and `plan` displays.
pub fn pending_steps(plan: &Plan, state: &RunState) -> Vec<String> {
    plan.steps
        .iter()
        .filter(|s| {
            !matches!(
                state.step(s.id()),
                StepPhase::Succeeded { .. } | StepPhase::Skipped { .. }
            )
        })
        .map(|s| s.id().to_string())
        .collect()
}
