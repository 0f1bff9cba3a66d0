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

mod approvals;
pub mod failover;
pub mod files;
pub mod inspect;
mod lease;
pub mod observe;
mod resume;
pub mod roundtrip;
mod start;
pub mod summary;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use approvals::ApprovalPrompt;
pub use lease::Held;
pub use resume::{Resume, Rollback};
pub use start::NewRun;
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
    #[error(transparent)]
    Replay(#[from] ReplayError),
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
}

impl RunError {
    /// A usage problem: bad input the operator can fix, nothing was executed (exit 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RunError::Config(_)
                | RunError::Refused(_)
                | RunError::Journal(JournalError::NoSuchRun(_))
                | RunError::Engine(EngineError::UnknownCheckpoint(..))
        )
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
        Services::new(self.aws(env))
    }
}

/// What every run started by this process shares.
#[derive(Clone)]
pub struct Context {
    /// Where journals and leases live.
    pub state_dir: PathBuf,
    pub aws: AwsSource,
    pub operator: Operator,
    /// The command line, for the journal and the lease ("drctl failover --region us-west-2").
    pub command: String,
}

/// Where a run's approvals come from.
#[derive(Clone)]
pub enum Approvals {
    /// `--yes`: the operator approved every gate up front.
    Auto,
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
