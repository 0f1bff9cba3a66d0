//! The library owns a run, from start to end. Every way of starting one (`drctl run`,
//! `failover`, `resume`, `rollback`, the watch's unattended failover; later failback, drills
//! and the scheduler) goes through this module:
//!
//! 1. a *preflight* that reads and checks everything and changes nothing ([`NewRun::prepare`],
//!    [`Resume::load`], [`Rollback::load`], [`failover::preflight`]), so that a refused command
//!    never takes the lease or touches a journal;
//! 2. the caller (the CLI) confirms with the operator, using what the preflight found;
//! 3. *execute*: take and renew the lease, create or open the journal, write the opening event,
//!    build the engine through its one constructor, run it, release the lease;
//! 4. a typed [`RunSummary`] read back from the journal, which the terminal, `--output json`,
//!    reports and notifications all render from.
//!
//! How a run talks to its operator (progress, approvals, `--step`) comes in through [`Hooks`];
//! nothing here knows about terminals.

pub mod abandon;
pub mod agent;
mod approvals;
pub mod deferred;
pub mod drill;
pub mod drill_modes;
pub mod failover;
pub mod files;
pub mod inspect;
mod lease;
pub mod observe;
mod peers;
pub mod report;
mod resume;
pub mod retired;
pub mod roundtrip;
pub mod saved_plan;
mod start;
pub mod state;
pub mod summary;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use abandon::Abandon;
pub use approvals::{Answer, ApprovalPrompt};
pub use lease::Held;
pub use resume::{Resume, Rollback};
pub use start::NewRun;
pub use state::StateStore;
pub use summary::RunSummary;

use crate::aws::{Aws, Sdk};
use crate::config::env::{AwsSettings, Environment};
use crate::config::{self, ConfigError, Source};
use crate::engine::progress::ProgressSink;
use crate::engine::{EngineError, StepPrompter};
use crate::journal::replay::RunState;
use crate::journal::{JournalError, LeaseError, Operator, ReplayError};
use crate::steps::{Runbook, Services, StepSpec};

/// Why a run could not start or go on. Everything but `Lease` (someone else holds it),
/// `Journal` and `Engine` (I/O) is found before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("journal of run {run}: {source}")]
    Replay {
        run: String,
        #[source]
        source: ReplayError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The run's journaled sources no longer parse with this drctl.
    #[error("the journaled {what} no longer parses with this drctl: {source}")]
    Journaled {
        what: &'static str,
        #[source]
        source: ConfigError,
    },
    /// The request does not fit this run or environment; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// No usable AWS credentials, or they may not act: found before any step acts.
    #[error("{0}")]
    Credentials(String),
    /// Another run with the same trigger already acted on this (`NewRun::once_since`).
    #[error("run {0}, started the same way, already acted on this; nothing was run")]
    Superseded(String),
}

impl RunError {
    /// A usage problem: bad input the operator can fix, nothing was executed (exit 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RunError::Config(_)
                | RunError::Refused(_)
                | RunError::Credentials(_)
                | RunError::Journal(JournalError::NoSuchRun(_) | JournalError::BadRunId(_))
                | RunError::Engine(EngineError::UnknownCheckpoint(..))
        )
    }

    /// drctl's own state is damaged (exit 10): nothing was changed.
    pub fn is_damaged_state(&self) -> bool {
        matches!(
            self,
            RunError::Lease(LeaseError::Corrupt { .. })
                | RunError::Journal(JournalError::Tampered { .. } | JournalError::Corrupt { .. })
                | RunError::Replay { .. }
                | RunError::Journaled { .. }
        )
    }

    /// The exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Lease(LeaseError::State(e))
            | RunError::Journal(JournalError::State(e))
            | RunError::Engine(EngineError::Journal(JournalError::State(e))) => {
                return e.exit_code()
            }
            // Someone took the lease over mid-run: another drctl holds the environment now.
            RunError::Journal(JournalError::Fenced { .. })
            | RunError::Engine(EngineError::Journal(JournalError::Fenced { .. })) => {
                return crate::exit::LOCKED
            }
            _ => {}
        }
        if self.is_bad_input() {
            crate::exit::INVALID
        } else if self.is_damaged_state() {
            crate::exit::DAMAGED
        } else if matches!(self, RunError::Lease(LeaseError::Held(_))) {
            crate::exit::LOCKED
        } else {
            crate::exit::ERROR
        }
    }
}

/// Where AWS comes from for a run: the SDK with the environment's settings and the command
/// line's overrides, or a given implementation (tests, the in-process fakes).
#[derive(Clone)]
pub enum AwsSource {
    Sdk {
        profile: Option<String>,
        endpoint_url: Option<String>,
    },
    Given(Arc<dyn Aws>),
}

impl AwsSource {
    /// The environment's AWS settings with the command line's overrides.
    pub fn settings(&self, env: &Environment) -> AwsSettings {
        let mut s = env.aws.clone();
        if s.sts_region.is_none() {
            s.sts_region = Some(env.region_of(crate::config::env::Role::Standby).to_string());
        }
        if let AwsSource::Sdk {
            profile,
            endpoint_url,
        } = self
        {
            if let Some(p) = profile {
                s.profile = Some(p.clone());
            }
            if let Some(e) = endpoint_url {
                s.endpoint_url = Some(e.clone());
            }
        }
        s
    }

    pub fn aws(&self, env: &Environment) -> Arc<dyn Aws> {
        match self {
            AwsSource::Sdk { .. } => Arc::new(Sdk::new(self.settings(env))),
            AwsSource::Given(a) => a.clone(),
        }
    }

    pub fn services(&self, env: &Environment) -> Services {
        let aws = self.aws(env);
        let mut s = Services::new(aws.clone());
        s.checks = Some(Arc::new(Checks { aws }));
        s
    }
}

/// The readiness checks, for the `drill.readiness` step (steps do not observe the topology).
struct Checks {
    aws: Arc<dyn crate::aws::Aws>,
}

#[async_trait::async_trait]
impl crate::steps::EnvironmentChecks for Checks {
    async fn readiness(
        &self,
        env: &Environment,
        limit: std::time::Duration,
    ) -> (String, Vec<crate::steps::CheckRow>) {
        let t = crate::topology::observe(self.aws.as_ref(), env, None, limit).await;
        let http = crate::steps::http_client();
        let rows = crate::readiness::check_environment(self.aws.as_ref(), env, &http, limit, &t)
            .await
            .into_iter()
            .map(|c| crate::steps::CheckRow {
                name: c.name,
                status: c.status.to_string().to_lowercase(),
                reason: c.reason,
            })
            .collect();
        (t.phase.as_str().to_string(), rows)
    }
}

/// What every run started by this process shares.
#[derive(Clone)]
pub struct Context {
    /// The local state dir (approvals' mailbox, the watch's log, schedules; and, with the
    /// default backend, journals and leases).
    pub state_dir: PathBuf,
    /// Where journals and the lease live: [`Context::state_dir`], or the shared table.
    pub state: StateStore,
    pub aws: AwsSource,
    pub operator: Operator,
    /// The command line, for the journal and the lease ("drctl failover --region us-west-2").
    pub command: String,
}

/// Where a run's approvals come from.
#[derive(Clone)]
pub enum Approvals {
    /// `--yes`: the operator approved the gates up front; with `gates: Some(prompt)`, the gates
    /// before irreversible steps still wait for a person (`--approve-irreversible` gives
    /// `None`: those too are approved up front; a watch's policy is its standing approval).
    Auto {
        gates: Option<Arc<dyn ApprovalPrompt>>,
    },
    /// Wait for `drctl approve` (a file in the run's mailbox) or for `prompt` to answer.
    Ask(Arc<dyn ApprovalPrompt>),
}

/// How a run talks to its operator.
#[derive(Clone)]
pub struct Hooks {
    pub progress: Arc<dyn ProgressSink>,
    pub approvals: Approvals,
    /// `--step`: ask before each step.
    pub prompter: Option<Arc<dyn StepPrompter>>,
    /// Take the lease even if it is held (the operator confirmed `--break-lock`).
    pub break_lock: bool,
}

/// Something that runs under the lease and ends in a summary: a new run, a resume, a
/// rollback. The terminal confirms [`Operation::describe`], then calls
/// [`Operation::execute`].
#[async_trait::async_trait]
pub trait Operation: Send + Sync {
    /// What it is about to do, for the operator to confirm.
    fn describe(&self) -> String;
    /// The run's step ids, for progress displays.
    fn step_ids(&self) -> Vec<String>;
    async fn execute(
        &self,
        ctx: &Context,
        hooks: &Hooks,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<RunSummary, RunError>;
}

/// Load a runbook file checked against `env`.
pub fn load_runbook(path: &Path, env: &Environment) -> Result<(Source, Runbook), ConfigError> {
    config::load_runbook::<StepSpec>(path, Some(env))
}

/// Re-read a run's runbook and environment from its journal (what ran is what resumes).
pub fn sources_from_journal(state: &RunState) -> Result<(Environment, Runbook), RunError> {
    let env_src = Source::from_text(&PathBuf::from(&state.env_path), state.env_text.clone());
    let env = config::parse_env(&env_src).map_err(|source| RunError::Journaled {
        what: "environment",
        source,
    })?;
    let rb_src = Source::from_text(
        &PathBuf::from(&state.runbook_path),
        state.runbook_text.clone(),
    );
    let rb = config::parse_runbook::<StepSpec>(&rb_src, Some(&env)).map_err(|source| {
        RunError::Journaled {
            what: "runbook",
            source,
        }
    })?;
    Ok((env, rb))
}

/// A new run id: UTC time to the second and 16 random bits (`20261122-101500-3f2a`).
pub fn new_run_id() -> String {
    let suffix: u16 = rand::random();
    format!(
        "{}-{suffix:04x}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    )
}

/// Read and check the environment file, saying how to get one when it is missing.
pub fn load_env(env_file: &Path) -> Result<(Source, Environment), RunError> {
    if !env_file.exists() {
        return Err(RunError::Refused(format!(
            "environment file {} not found: pass --env FILE or set DRCTL_ENV (`python -m drsandbox seed` writes one for the sandbox)",
            env_file.display()
        )));
    }
    Ok(config::load_env(env_file)?)
}

/// A state dir that exists must be a directory: anything else is a mistyped flag, refused
/// before anything is written.
pub fn check_state_dir(dir: &Path) -> Result<(), RunError> {
    if dir.exists() && !dir.is_dir() {
        return Err(RunError::Refused(format!(
            "state dir {} is not a directory: pass --state-dir DIR (or DRCTL_STATE_DIR) naming a directory",
            dir.display()
        )));
    }
    Ok(())
}

/// Where journals and leases live: `--state-dir` (or DRCTL_STATE_DIR), else the environment's
/// `state_dir` (relative to its file), else `.drctl`. Without `env`, the environment file is
/// read if it loads (for commands that work without one: `status RUN`, `history`).
pub fn state_dir(flag: Option<&Path>, env_file: &Path, env: Option<&Environment>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    let loaded;
    let env = match env {
        Some(e) => Some(e),
        None => {
            loaded = env_file
                .exists()
                .then(|| config::load_env(env_file).ok().map(|(_, e)| e))
                .flatten();
            loaded.as_ref()
        }
    };
    if let Some(d) = env.and_then(|e| e.state_dir.as_ref()) {
        return env_file.parent().unwrap_or(Path::new(".")).join(d);
    }
    PathBuf::from(".drctl")
}

/// The environment's runs that have not finished (paused, interrupted, or stopped mid-rollback)
/// while nobody holds its lease: a new mutating run must not start beside one. Returns
/// (run id, what state it is in); empty while a live holder works (the lease speaks then).
pub async fn unfinished_runs(ctx: &Context, env: &str) -> Result<Vec<(String, String)>, RunError> {
    use crate::journal::lease::{staleness, Staleness};
    let held = ctx.state.leases().await.current(env).await?;
    if held.is_some_and(|l| staleness(&l, chrono::Utc::now()) == Staleness::Fresh) {
        return Ok(vec![]);
    }
    let store = ctx.state.journals().await;
    let mut out = vec![];
    // An unreadable runs directory is reported by the run's own journal, right after; a state
    // table that cannot be read stops here (no run may start on a guess).
    let ids = match store.list().await {
        Ok(ids) => ids,
        Err(e @ JournalError::State(_)) => return Err(e.into()),
        Err(_) => vec![],
    };
    for id in ids.into_iter().rev() {
        let records = match store.read(&id).await {
            Ok((r, _)) => r,
            Err(e @ JournalError::State(_)) => return Err(e.into()),
            Err(_) => continue,
        };
        let Ok(st) = RunState::replay(&records) else {
            continue;
        };
        // A drill's unfinished run stands in no one's way: its resources are found by tag
        // (`drctl drill cleanup`), and a failover must never wait for one.
        if st.env_name == env
            && !st.is_finished()
            && !drill::is_drill(&st.runbook_name, &st.runbook_text)
        {
            out.push((id, inspect::phase_text(&st.phase)));
        }
    }
    Ok(out)
}

/// Refuse to start a run beside an unfinished one, saying exactly what to do.
pub async fn refuse_if_unfinished(ctx: &Context, env: &str) -> Result<(), RunError> {
    let open = unfinished_runs(ctx, env).await?;
    let Some((id, what)) = open.first() else {
        return Ok(());
    };
    Err(RunError::Refused(format!(
        "run {id} of environment `{env}` has not finished ({what}). Finish it first: \
         `drctl resume {id}` goes on from where it stopped (in-flight steps are observed again), \
         `drctl rollback {id}` undoes it, `drctl abandon {id} --reason TEXT` closes it without \
         running or undoing anything (what it changed is listed first); `drctl status {id}` \
         shows where it is{}",
        if open.len() > 1 {
            format!(
                " ({} unfinished runs in all: see `drctl history`)",
                open.len()
            )
        } else {
            String::new()
        }
    )))
}

/// Prove the credentials before anything acts: a credentials or permission error stops the run
/// here with one message; an STS that cannot be reached (or is slow) does not, since the run's
/// own calls are bounded and classified.
pub async fn check_credentials(
    ctx: &Context,
    env: &Environment,
    plan: &crate::engine::Plan,
    progress: &dyn ProgressSink,
) -> Result<Option<crate::aws::CallerIdentity>, RunError> {
    if !plan.steps.iter().any(|s| s.spec.uses_aws()) {
        return Ok(None);
    }
    match check_identity(ctx, env).await? {
        Ok(id) => Ok(Some(id)),
        Err(note) => {
            progress.notice(&note);
            Ok(None)
        }
    }
}

/// Who AWS says drctl is (STS GetCallerIdentity in the standby region, bounded). Missing or
/// refused credentials are an error, before anything is observed or changed; an identity that
/// cannot be confirmed for another reason is a note to show, and the caller goes on.
pub async fn check_identity(
    ctx: &Context,
    env: &Environment,
) -> Result<Result<crate::aws::CallerIdentity, String>, RunError> {
    let aws = ctx.aws.aws(env);
    let limit = env
        .aws
        .operation_timeout
        .min(std::time::Duration::from_secs(10));
    match tokio::time::timeout(limit, aws.identity(&env.standby_region)).await {
        Ok(Ok(id)) => Ok(Ok(id)),
        Ok(Err(e)) if e.is_configuration() => Err(RunError::Credentials(format!(
            "AWS credentials are missing or were refused, caught before anything was changed: {e}. \
             Check AWS_PROFILE / --profile, the environment's `aws.profile`, or your SSO session \
             (`aws sso login`), then run again"
        ))),
        Ok(Err(e)) => Ok(Err(format!(
            "note: could not confirm the AWS identity ({e}); going on"
        ))),
        Err(_) => Ok(Err(format!(
            "note: STS did not answer within {}; going on",
            humantime::format_duration(limit)
        ))),
    }
}

/// Replay a run's journal, naming it when it cannot be.
pub fn replay(run: &str, records: &[crate::journal::Record]) -> Result<RunState, RunError> {
    RunState::replay(records).map_err(|source| RunError::Replay {
        run: run.to_string(),
        source,
    })
}
