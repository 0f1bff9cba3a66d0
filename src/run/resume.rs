//! Going on with a run that exists: `resume` (run the steps still to do) and `rollback` (undo
//! completed steps back to a checkpoint). Each has a preflight that reads the journal and
//! refuses what makes no sense before the lease is taken or anything is written.

use std::collections::HashSet;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::summary::RunSummary;
use super::{approvals, lease, sources_from_journal, Context, Hooks, Operation, RunError};
use crate::config::Environment;
use crate::engine::executor::pending_steps;
use crate::engine::rollback::{plan_rollback, RollbackPlan};
use crate::engine::{Engine, EngineParts, Plan, RunEnd};
use crate::journal::replay::RunPhase;
use crate::journal::{Event, JournalWriter, RunState};

/// A journaled run, read and replayed, with what it ran.
pub(super) struct Loaded {
    pub state: RunState,
    pub env: Arc<Environment>,
    pub plan: Arc<Plan>,
    /// Its journal, as read.
    pub records: Vec<crate::journal::Record>,
}

impl Loaded {
    pub fn step_ids(&self) -> Vec<String> {
        self.plan.steps.iter().map(|s| s.id().to_string()).collect()
    }
}

pub(super) async fn load(ctx: &Context, run: &str) -> Result<Loaded, RunError> {
    let store = ctx.state.journals().await;
    let (records, _) = store.read_intact(run).await?;
    let state = super::replay(run, &records)?;
    let (env, rb) = sources_from_journal(&state)?;
    Ok(Loaded {
        state,
        env: Arc::new(env),
        plan: Arc::new(Plan::new(&rb)),
        records,
    })
}

fn refuse_finished(run: &str, state: &RunState) -> Result<(), RunError> {
    if let RunPhase::Finished { status, message } = &state.phase {
        return Err(RunError::Refused(format!("run {run} already finished ({status}: {message}); nothing to resume. Start a new run: completed steps will be no-ops")));
    }
    Ok(())
}

/// Take the lease for an existing run and open its journal for appending.
pub(super) async fn open(
    ctx: &Context,
    hooks: &Hooks,
    run: &str,
    l: &Loaded,
    shutdown: CancellationToken,
) -> Result<(lease::Held, Box<dyn JournalWriter>, RunState), RunError> {
    super::check_credentials(ctx, &l.env, &l.plan, hooks.progress.as_ref()).await?;
    let held = lease::take(ctx, hooks, &l.env.name, run, shutdown).await?;
    let store = ctx.state.journals().await;
    let (journal, warnings) = store.open_writer(run).await?;
    for w in warnings {
        hooks.progress.notice(&format!("warning: {w}"));
    }
    let state = super::replay(run, journal.records())?;
    Ok((held, journal, state))
}

/// A run's journal opened for appending under a lease with `token`.
struct Opened<'a> {
    run: &'a str,
    journal: Box<dyn JournalWriter>,
    token: u64,
}

fn engine(
    ctx: &Context,
    hooks: &Hooks,
    l: &Loaded,
    o: Opened<'_>,
    shutdown: CancellationToken,
    rerun: HashSet<String>,
) -> Arc<Engine> {
    let Opened {
        run,
        journal,
        token,
    } = o;
    Engine::new(EngineParts {
        plan: l.plan.clone(),
        run_id: run.to_string(),
        journal,
        token,
        env: l.env.clone(),
        services: ctx.aws.services(&l.env),
        shutdown: shutdown.clone(),
        progress: hooks.progress.clone(),
        approvals: approvals::Gatekeeping {
            approvals: &hooks.approvals,
            operator: &ctx.operator,
            starter: &l.state.operator.user,
            two_person: l.env.approvals.two_person,
            gates: approvals::irreversible_gates(&l.plan),
        }
        .source(run, &ctx.state, shutdown),
        prompter: hooks.prompter.clone(),
        operator: ctx.operator.clone(),
        rerun,
    })
}

/// `drctl resume RUN`: a paused or interrupted run, checked and ready to go on.
pub struct Resume {
    pub run_id: String,
    loaded: Loaded,
    rerun: HashSet<String>,
}

impl Resume {
    /// Read the run and refuse what cannot be resumed. Writes nothing.
    pub async fn load(ctx: &Context, run: &str, rerun: &[String]) -> Result<Resume, RunError> {
        let loaded = load(ctx, run).await?;
        refuse_finished(run, &loaded.state)?;
        for s in rerun {
            if loaded.plan.index(s).is_none() {
                return Err(RunError::Refused(format!(
                    "--rerun {s}: no such step in run {run}"
                )));
            }
        }
        Ok(Resume {
            run_id: run.to_string(),
            loaded,
            rerun: rerun.iter().cloned().collect(),
        })
    }

    /// The runbook the run runs (its name), and the environment it was started with.
    pub fn runbook(&self) -> (&str, &Environment) {
        (&self.loaded.state.runbook_name, &self.loaded.env)
    }

    /// Steps still to run, in plan order.
    pub fn pending(&self) -> Vec<String> {
        pending_steps(&self.loaded.plan, &self.loaded.state)
    }
}

#[async_trait::async_trait]
impl Operation for Resume {
    fn describe(&self) -> String {
        let pending = self.pending();
        format!(
            "Resume run {} ({} of {} steps left: {})?",
            self.run_id,
            pending.len(),
            self.loaded.plan.steps.len(),
            pending.join(", ")
        )
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
        let (held, mut journal, state) =
            open(ctx, hooks, run, &self.loaded, shutdown.clone()).await?;
        // It may have finished between the preflight and the lease.
        refuse_finished(run, &state)?;
        journal
            .append(
                held.token(),
                Event::Resumed {
                    operator: ctx.operator.clone(),
                },
            )
            .await?;
        if let Some(r) = journal.records().last() {
            hooks.progress.record(r);
        }
        let opened = Opened {
            run,
            journal,
            token: held.token(),
        };
        let e = engine(
            ctx,
            hooks,
            &self.loaded,
            opened,
            shutdown,
            self.rerun.clone(),
        );
        let end = e.clone().run().await?;
        drop(held);
        Ok(RunSummary::build(
            &e.records().await,
            &self.loaded.plan,
            &end,
            &self.loaded.env.targets,
        ))
    }
}

/// `drctl rollback RUN [--to CHECKPOINT]`: what would be undone, checked and ready.
pub struct Rollback {
    pub run_id: String,
    pub to: Option<String>,
    loaded: Loaded,
    /// What the rollback will undo, pass over and stop at, read from the journal.
    pub plan: RollbackPlan,
    /// Why, for the journal (default: requested by the operator).
    pub reason: String,
    /// Leave the run open after the undo (rolling back): its caller finishes it (a drill's
    /// teardown, with the drill's verdict).
    pub leave_open: bool,
}

impl Rollback {
    /// Read the run and work out what a rollback would do. Writes nothing.
    pub async fn load(ctx: &Context, run: &str, to: Option<&str>) -> Result<Rollback, RunError> {
        let loaded = load(ctx, run).await?;
        if let Some(cp) = to {
            if !loaded.state.checkpoints.iter().any(|(n, _)| n == cp) {
                let reached: Vec<&str> = loaded
                    .state
                    .checkpoints
                    .iter()
                    .map(|c| c.0.as_str())
                    .collect();
                return Err(RunError::Refused(format!(
                    "run {run} never reached checkpoint `{cp}` (reached: {})",
                    if reached.is_empty() {
                        "none".into()
                    } else {
                        reached.join(", ")
                    }
                )));
            }
        }
        let plan = plan_rollback(&loaded.plan, &loaded.state, to)?;
        // A rollback that would undo nothing must not mark a run that succeeded as failed.
        if plan.undo.is_empty() {
            return Err(RunError::Refused(match &plan.stops_at {
                Some(s) => format!(
                    "nothing to undo in run {run}: the newest step to undo, `{s}`, cannot be undone (see `drctl status {run}`)"
                ),
                None => format!("nothing to undo in run {run}: no completed step changed anything that can be undone"),
            }));
        }
        Ok(Rollback {
            run_id: run.to_string(),
            to: to.map(String::from),
            loaded,
            plan,
            reason: "requested by the operator".into(),
            leave_open: false,
        })
    }
}

#[async_trait::async_trait]
impl Operation for Rollback {
    /// Says what will be undone, in order, and where it will stop.
    fn describe(&self) -> String {
        let p = &self.plan;
        let mut q = format!(
            "Roll back run {}{}?",
            self.run_id,
            self.to
                .as_ref()
                .map(|t| format!(" to checkpoint `{t}`"))
                .unwrap_or_else(|| " completely".into())
        );
        if p.undo.is_empty() {
            q.push_str("\n  nothing to undo");
        } else {
            q.push_str(&format!("\n  undo, newest first: {}", p.undo.join(", ")));
        }
        if let Some(s) = &p.stops_at {
            q.push_str(&format!("\n  stops at `{s}`: it cannot be undone"));
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
        let (held, journal, _) = open(ctx, hooks, run, &self.loaded, shutdown.clone()).await?;
        let opened = Opened {
            run,
            journal,
            token: held.token(),
        };
        let e = engine(ctx, hooks, &self.loaded, opened, shutdown, HashSet::new());
        let report = if self.leave_open {
            crate::engine::rollback::rollback_leaving_open(&e, self.to.as_deref(), &self.reason)
                .await?
        } else {
            crate::engine::rollback::rollback(&e, self.to.as_deref(), &self.reason).await?
        };
        drop(held);
        Ok(RunSummary::build(
            &e.records().await,
            &self.loaded.plan,
            &RunEnd::RolledBack(report),
            &self.loaded.env.targets,
        ))
    }
}

/// Close an unfinished run without running or undoing anything (`RunFinished` with `status`
/// and `why`): a drill whose resources were removed by tag has nothing left to resume. Returns
/// false when the run had already finished.
pub async fn close(
    ctx: &Context,
    hooks: &Hooks,
    run: &str,
    (status, why): (crate::journal::RunStatus, &str),
    shutdown: CancellationToken,
) -> Result<bool, RunError> {
    let loaded = load(ctx, run).await?;
    if loaded.state.is_finished() {
        return Ok(false);
    }
    let (held, mut journal, state) = open(ctx, hooks, run, &loaded, shutdown).await?;
    if state.is_finished() {
        return Ok(false);
    }
    journal
        .append(
            held.token(),
            Event::RunFinished {
                status,
                message: why.to_string(),
            },
        )
        .await?;
    Ok(true)
}
