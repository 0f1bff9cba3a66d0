//! A new run of a runbook: prepared (parsed, validated, planned) without side effects, then
//! executed under the environment's lease.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::summary::RunSummary;
use super::{approvals, lease, new_run_id, Context, Hooks, Operation, RunError};
use crate::config::{self, Environment, Source};
use crate::engine::{Engine, EngineParts, Plan};
use crate::journal::{AwsIdentity, Event, Trigger};
use crate::steps::{Runbook, StepSpec};

/// A runbook and its environment, parsed and validated, ready to run. Nothing has been written.
pub struct NewRun {
    pub env_src: Source,
    pub env: Arc<Environment>,
    pub rb_src: Source,
    pub rb: Runbook,
    pub plan: Arc<Plan>,
    /// The environment's phase as the caller observed it before the run, for the report.
    pub phase_before: Option<String>,
    /// What started the run unattended (`drctl watch`), for the report's RTO.
    pub trigger: Option<Trigger>,
    /// The run's id, when the caller must know it before the run starts (a drill tears down by
    /// it even when the run ends in an error); else a new one.
    pub run_id: Option<String>,
    /// Run only if no run of this environment with the same trigger (`trigger.by`) started at
    /// or after this time: checked under the lease, so that of several watchers that saw the
    /// same outage, the second to get the lease finds the first's run and stands by.
    pub once_since: Option<chrono::DateTime<chrono::Utc>>,
    /// What the run does to the environment, in the command's own words ("us-west-2 ->
    /// us-east-1"), for the confirmation. None: the regions and their roles are shown instead
    /// (a runbook's direction is not drctl's to guess).
    pub purpose: Option<String>,
}

impl NewRun {
    /// Read and check both files.
    pub fn prepare(env_file: &Path, runbook: &Path) -> Result<NewRun, RunError> {
        let (env_src, env) = config::load_env(env_file)?;
        let (rb_src, rb) = config::load_runbook::<StepSpec>(runbook, Some(&env))?;
        Ok(Self::new(env_src, env, rb_src, rb))
    }

    pub fn new(env_src: Source, env: Environment, rb_src: Source, rb: Runbook) -> NewRun {
        let plan = Arc::new(Plan::new(&rb));
        NewRun {
            env_src,
            env: Arc::new(env),
            rb_src,
            rb,
            plan,
            phase_before: None,
            trigger: None,
            run_id: None,
            once_since: None,
            purpose: None,
        }
    }

    /// How many steps cannot be undone (for the confirmation).
    pub fn irreversible_steps(&self) -> usize {
        self.plan
            .steps
            .iter()
            .filter(|s| config::StepKinds::irreversible(&s.spec).is_some())
            .count()
    }
}

#[async_trait::async_trait]
impl Operation for NewRun {
    fn describe(&self) -> String {
        let irreversible = self.irreversible_steps();
        format!(
            "Run `{}` ({} steps{}) against environment `{}` ({})?",
            self.rb.name,
            self.plan.steps.len(),
            if irreversible > 0 {
                format!(", {irreversible} IRREVERSIBLE")
            } else {
                String::new()
            },
            self.env.name,
            self.purpose.clone().unwrap_or_else(|| format!(
                "primary {}, standby {}",
                self.env.primary_region, self.env.standby_region
            ))
        )
    }

    fn step_ids(&self) -> Vec<String> {
        self.plan.steps.iter().map(|s| s.id().to_string()).collect()
    }

    /// Take the lease, journal the start, and run the engine to its end. The caller confirmed
    /// and owns `shutdown` (signals, or a watch stopping).
    async fn execute(
        &self,
        ctx: &Context,
        hooks: &Hooks,
        shutdown: CancellationToken,
    ) -> Result<RunSummary, RunError> {
        super::refuse_if_unfinished(ctx, &self.env.name).await?;
        let keeper = approvals::Gatekeeping {
            approvals: &hooks.approvals,
            operator: &ctx.operator,
            starter: &ctx.operator.user,
            two_person: self.env.approvals.two_person,
            gates: approvals::irreversible_gates(&self.plan),
        };
        keeper.check()?;
        let who =
            super::check_credentials(ctx, &self.env, &self.plan, hooks.progress.as_ref()).await?;
        let run_id = self.run_id.clone().unwrap_or_else(new_run_id);
        let held = lease::take(ctx, hooks, &self.env.name, &run_id, shutdown.clone()).await?;
        let store = ctx.state.journals().await;
        if let (Some(since), Some(t)) = (self.once_since, &self.trigger) {
            if let Some(done) =
                started_since(store.as_ref(), &self.env.name, &self.rb.name, &t.by, since).await?
            {
                return Err(RunError::Superseded(done));
            }
        }
        let redacted = crate::config::redact_secrets(&self.env_src.text);
        let mut journal = store.create(&run_id).await?;
        journal
            .append(
                held.token(),
                Event::RunStarted {
                    run_id: run_id.clone(),
                    runbook_name: self.rb.name.clone(),
                    runbook_path: self.rb_src.name(),
                    runbook_text: self.rb_src.text.clone(),
                    runbook_sha256: self.rb_src.sha256.clone(),
                    env_name: self.env.name.clone(),
                    env_path: self.env_src.name(),
                    // Notification URLs carry tokens: never journaled.
                    env_text: redacted.clone(),
                    env_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                        redacted.as_bytes(),
                    )),
                    operator: ctx.operator.clone(),
                    command: ctx.command.clone(),
                    aws_identity: who.map(|w| AwsIdentity {
                        account: w.account,
                        arn: w.arn,
                    }),
                    phase_before: self.phase_before.clone(),
                    trigger: self.trigger.clone(),
                },
            )
            .await?;
        hooks
            .progress
            .notice(&format!("run {run_id}: journal {}", store.locator(&run_id)));
        // The opening event was written before the engine (and its sink) existed.
        if let Some(r) = journal.records().last() {
            hooks.progress.record(r);
        }
        let engine = Engine::new(EngineParts {
            plan: self.plan.clone(),
            run_id: run_id.clone(),
            journal,
            token: held.token(),
            env: self.env.clone(),
            services: ctx.aws.services(&self.env),
            shutdown: shutdown.clone(),
            progress: hooks.progress.clone(),
            approvals: keeper.source(&run_id, &ctx.state, shutdown),
            prompter: hooks.prompter.clone(),
            operator: ctx.operator.clone(),
            rerun: HashSet::new(),
        });
        let end = engine.clone().run().await?;
        drop(held);
        Ok(RunSummary::build(
            &engine.records().await,
            &self.plan,
            &end,
            &self.env.targets,
        ))
    }
}

/// The newest run of runbook `runbook` in `env` started by `by` at or after `since`, if any
/// (the newest runs only: run ids begin with their start time, so older ones are not read).
async fn started_since(
    store: &dyn crate::journal::JournalStore,
    env: &str,
    runbook: &str,
    by: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Option<String>, RunError> {
    let ids = store.list().await?;
    let floor = since.format("%Y%m%d-%H%M%S").to_string();
    for id in ids
        .iter()
        .rev()
        .take_while(|id| id.as_str() >= floor.as_str())
    {
        // A run that cannot be read now is not a run that is not there: "cannot tell" stops
        // here (the watcher stands by) rather than starting a second failover.
        let records = match store.read(id).await {
            Ok((r, _)) => r,
            Err(e @ crate::journal::JournalError::State(_)) => return Err(e.into()),
            Err(_) => continue,
        };
        if let Some(Event::RunStarted {
            env_name,
            runbook_name,
            trigger,
            ..
        }) = records.first().map(|r| &r.event)
        {
            if env_name == env
                && runbook_name == runbook
                && trigger.as_ref().is_some_and(|t| t.by == by)
                && records[0].at >= since
            {
                return Ok(Some(id.clone()));
            }
        }
    }
    Ok(None)
}
