//! Command-line surface: clap definitions, the context every command shares, and one file per
//! group of subcommands. The only place that knows about terminals and exit codes.

pub mod agent;
pub mod check;
pub mod deferred;
pub mod drill;
pub mod env;
pub mod failover;
pub mod files;
pub mod iam;
pub mod inspect;
pub mod probe;
pub mod render;
pub mod report;
pub mod run;
pub mod state;
pub mod verify;
pub mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};

use drctl::config::{Environment, Source};
use drctl::journal::Operator;
use drctl::run::{AwsSource, Context};

/// `drctl --version`: the release and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DRCTL_COMMIT"),
    " ",
    env!("DRCTL_COMMIT_DATE"),
    ")"
);

#[derive(Parser, Debug)]
#[command(name = "drctl", version = VERSION, about = "Disaster-recovery orchestrator for AWS warm-standby deployments", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// The environment file.
    #[arg(
        long = "env",
        global = true,
        env = "DRCTL_ENV",
        default_value = "drctl.yaml"
    )]
    pub env_file: PathBuf,
    /// Where journals and leases live (default: `state_dir` in the environment, else .drctl).
    #[arg(long, global = true, env = "DRCTL_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Output for people (text) or machines (json).
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// AWS named profile (overrides the environment file).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// One endpoint for every AWS service (the sandbox). Also AWS_ENDPOINT_URL.
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// More logging (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Mutating {
    /// Do not ask for confirmation; approve `approval` steps as this operator, except those
    /// before an irreversible step (see --approve-irreversible).
    #[arg(short, long)]
    pub yes: bool,
    /// With --yes: also approve the approval steps that stand before an irreversible step (the
    /// promotion). Without it they wait for a person: this terminal, or `drctl approve`.
    #[arg(long, requires = "yes")]
    pub approve_irreversible: bool,
    /// With --yes: still wait for `approval` steps to be approved (`drctl approve`).
    #[arg(long)]
    pub wait_approval: bool,
    /// Ask before each step: yes, skip, abort or roll back (and retry after a failure).
    #[arg(long)]
    pub step: bool,
    /// Take the environment's lease even if another drctl holds it (asks first).
    #[arg(long)]
    pub break_lock: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check runbooks and environment files: syntax, fields, ids, cycles, references.
    Validate {
        /// Files to check (runbooks or environment files). Default: the environment file and runbooks/*.yaml.
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the environment file or of runbooks.
    Schema {
        #[arg(value_enum, default_value_t = SchemaKind::Runbook)]
        which: SchemaKind,
    },
    /// Dry run: the steps in order and in parallel, what each would change, the critical path.
    Plan {
        /// A runbook file, or a name under runbooks/.
        runbook: PathBuf,
        /// Save the plan (what was observed, what each step intends) for `run --plan FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Execute a runbook.
    Run {
        /// The runbook (not with --plan: a saved plan carries its own).
        #[arg(required_unless_present = "plan")]
        runbook: Option<PathBuf>,
        /// Execute exactly a saved plan (`drctl plan ... --out FILE`), refused if what is
        /// observed now no longer matches it.
        #[arg(long, value_name = "FILE", conflicts_with = "runbook")]
        plan: Option<PathBuf>,
        #[command(flatten)]
        m: Mutating,
    },
    /// Continue a paused or interrupted run. Steps that were in flight are observed again first.
    Resume {
        run: String,
        #[command(flatten)]
        m: Mutating,
        /// Allow an in-flight step whose effect cannot be observed to run again.
        #[arg(long = "rerun", value_name = "STEP")]
        rerun: Vec<String>,
    },
    /// Undo a run's completed steps, newest first, back to a checkpoint (default: all).
    Rollback {
        run: String,
        /// Stop at this checkpoint: steps completed before it stay.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        m: Mutating,
    },
    /// Close an unfinished run without running or undoing anything more: a stale run (paused
    /// at its gate, interrupted) then no longer blocks a failover. Journaled with who and why;
    /// what the run may have changed is listed and stays changed (confirmed first). Refused
    /// (exit 3) while the run's own process is alive and holds the lease.
    Abandon {
        /// A run id, or `latest`.
        run: String,
        /// Why (journaled, shown in `history` and the report).
        #[arg(long)]
        reason: String,
        /// Do not ask for confirmation (needed without a terminal when the run changed something).
        #[arg(short, long)]
        yes: bool,
    },
    /// Without RUN: the environment as observed from AWS (phase, writer, DNS, CloudFront,
    /// outstanding fences, what to do next); exit 0 protected, 4 dangerous, 9 unprotected.
    /// With RUN (or `latest`): that run's steps, times and approvals.
    Status { run: Option<String> },
    /// A run's report from its journal alone: outcome, who started and approved, a timeline,
    /// RTO and RPO against the targets, warnings, fences. `--history`: the environment's runs,
    /// their RTO/RPO trend and step durations by kind.
    Report {
        /// A run id, or `latest` (default).
        run: Option<String>,
        /// Over all of the environment's runs instead of one.
        #[arg(long)]
        history: bool,
        /// md, html or json (default: from --out's extension, else md).
        #[arg(long, value_enum)]
        format: Option<report::Format>,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write the report of a journal that fails `drctl verify` anyway (under a BROKEN
        /// banner). Without it such a report is refused with exit 10.
        #[arg(long)]
        allow_broken: bool,
    },
    /// Check a run's journal against its hash chain (RUN may be `latest`): exit 0 intact, 10
    /// changed after it was written (names the first such event), 11 written before hash chains.
    Verify { run: String },
    /// List runs, newest last.
    History {
        /// Show at most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Approve a waiting `approval` step of a running run (from a second terminal).
    Approve {
        run: String,
        step: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Probe every target in `probes:` once and print a table. Exit 0 if all answered as
    /// expected, 4 if any failed.
    Probe {
        /// Only these targets (repeatable).
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
    },
    /// Watch the targets continuously; on a confirmed primary outage notify, or fail over
    /// (`probes.watch` in drctl.yaml). Serves /metrics, /status and /healthz.
    Watch {
        /// Address for /metrics, /status and /healthz (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: String,
        /// Only notify, whatever `probes.watch.action` says (for trying a policy out).
        #[arg(long)]
        notify_only: bool,
        /// With shared state: this watcher's name among the watchers that must agree
        /// (default: HOST-PID). Sent with every probe as `X-Drctl-Client`.
        #[arg(long, env = "DRCTL_WATCHER_ID")]
        watcher_id: Option<String>,
    },
    /// Fail over production to the standby region: runs the warm-standby failover runbook.
    Failover {
        /// The region to fail over to (must be the environment's standby region).
        #[arg(long)]
        region: String,
        /// Runbook path, or a name under runbooks/ (default: warm-standby-failover).
        #[arg(long)]
        runbook: Option<String>,
        /// Show the plan (what each step would change) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// planned: fence first, promote at lag 0 (the primary answers); unplanned: the fence
        /// on the side, never in the way (the primary is in trouble). Default: from what is seen.
        #[arg(long, value_enum)]
        mode: Option<FailoverMode>,
        /// Close the environment's unfinished runs first (`drctl abandon`: nothing more of them
        /// runs, nothing is undone) instead of refusing. Asked on a terminal; with --yes in scripts.
        #[arg(long)]
        abandon_unfinished: bool,
        /// With --dry-run: save the plan for `failover --plan FILE`.
        #[arg(long, value_name = "FILE", requires = "dry_run")]
        out: Option<PathBuf>,
        /// Execute exactly a saved plan (`failover --dry-run --out FILE`), refused, with what
        /// moved, if what is observed now no longer matches it.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["dry_run", "runbook", "mode"])]
        plan: Option<PathBuf>,
        #[command(flatten)]
        m: Mutating,
    },
    /// Finish an outstanding fence: make the old primary's database read-only, now that its
    /// region answers (after a failover that could not reach it). Not a failback.
    Fence {
        #[command(flatten)]
        m: Mutating,
    },
    /// The control-plane work a failover deferred because its API did not answer (swapping
    /// Route 53's records, CloudFront's origin; both APIs live in us-east-1). Lists it; with
    /// --run, does it now. `drctl watch` does it by itself once the APIs answer.
    Deferred {
        /// Do the deferred work now (a journaled run under the lease).
        #[arg(long)]
        run: bool,
        #[command(flatten)]
        m: Mutating,
    },
    /// After a failover: a new replica of the current writer in the old primary region, the
    /// old instance kept (renamed, stopped), AMIs copied back. Needs `failed_over`.
    Reprotect {
        /// Show the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        m: Mutating,
    },
    /// A planned return to the primary region (never automatic). Needs `reprotected`.
    Failback {
        /// The region to go back to (must be the environment's primary region).
        #[arg(long)]
        region: String,
        /// Show the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        m: Mutating,
    },
    /// Game-day drills: `--mode isolated` brings up a copy of the app beside production in the
    /// standby region, proves it serves and removes it; `drill cleanup` removes what a crashed
    /// drill left. Exit 0 passed, 4 failed, 12 not ready (nothing created), 13 leftovers.
    #[command(args_conflicts_with_subcommands = true)]
    Drill {
        #[command(subcommand)]
        action: Option<DrillAction>,
        /// readiness (changes nothing), isolated (beside production) or full (moves production).
        #[arg(long, value_enum, default_value_t = drill::Mode::Isolated)]
        mode: drill::Mode,
        /// The drill schedules in drctl.yaml and the next run of each; runs nothing.
        #[arg(long)]
        list: bool,
        /// A full drill moves production: this flag (or typing the environment name at the
        /// prompt) approves it; --yes alone does not.
        #[arg(long)]
        approve_production: bool,
        #[command(flatten)]
        m: Mutating,
    },
    /// The shared state table (`state: backend: dynamodb` in drctl.yaml): create it, copy this
    /// directory's runs into it, or show where runs and the lease live.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// Run the drills scheduled in drctl.yaml (`drill.schedules`), one at a time, under the
    /// lease, with the missed-run policy; notify each result. Stops on SIGINT/SIGTERM (a running
    /// drill stops and tears down first).
    Agent,
    /// Readiness of the region a failover would go to (the standby, or the old primary after a
    /// failover), read-only: PASS/WARN/FAIL per check (exit 4 on any FAIL).
    Check {
        /// Bound on each check.
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// The old writers reprotect and failback keep (renamed, tagged, stopped): list them, or
    /// with --delete remove those kept longer than --older-than, each leaving a final snapshot
    /// (asks first; --yes in scripts).
    Retired {
        /// Delete those past their keep time.
        #[arg(long)]
        delete: bool,
        /// The keep time: only instances retired longer ago than this are deleted.
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Print the least-privilege IAM policy (JSON) a runbook needs: a runbook file, a shipped
    /// runbook's name, or a command (failover, switchover, fence, reprotect, failback, drill,
    /// drill-readiness) as it runs in this environment.
    IamPolicy { runbook: PathBuf },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff) to stdout, or write one page per command into --dir.
    Man {
        /// Write drctl.1 and drctl-COMMAND.1 pages here instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DrillAction {
    /// Remove every resource an earlier drill left (found by its tags) and close its run.
    Cleanup {
        #[command(flatten)]
        m: Mutating,
    },
}

#[derive(Subcommand, Debug)]
pub enum StateAction {
    /// Create the DynamoDB table of `state:` (on-demand billing) and wait until it is ACTIVE.
    Init {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
        /// Say what would be created; create nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy this state dir's runs of the environment into the table (hash chains unchanged).
    Migrate {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
        /// List what would be copied; copy nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Where the environment's runs and lease live, and who holds the lease.
    Show,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailoverMode {
    Planned,
    Unplanned,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    Env,
    Runbook,
    /// `drctl status --output json`: the environment as observed.
    Status,
    /// `drctl plan --output json` (and `failover --dry-run --output json`).
    Plan,
    /// The summary a run ends with under `--output json` (`"type": "summary"`).
    Summary,
    /// The JSON report of one run (`drctl report RUN --format json`).
    Report,
    /// The JSON of `drctl report --history --format json`.
    History,
}

/// A usage problem found after parsing (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The operator said no, or there was no one to ask (exit code 8).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Declined(pub String);

pub fn is_tty() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Ask a yes/no question on the terminal. Without a TTY, refuse and say how to proceed.
pub fn confirm(question: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !is_tty() {
        return Err(Declined(format!(
            "{question}\nno terminal to confirm on: re-run with --yes if you mean it"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the answer")?;
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        Err(Declined("not confirmed; nothing was changed".into()).into())
    }
}

impl Global {
    pub fn load_env(&self) -> Result<(Source, Environment)> {
        Ok(drctl::run::load_env(&self.env_file)?)
    }

    pub fn state_dir(&self, env: Option<&Environment>) -> Result<PathBuf> {
        let d = drctl::run::state_dir(self.state_dir.as_deref(), &self.env_file, env);
        drctl::run::check_state_dir(&d)?;
        Ok(d)
    }

    /// State dir for read-only commands that may run without an environment file.
    pub fn state_dir_lenient(&self) -> Result<PathBuf> {
        self.state_dir(None)
    }

    /// Where AWS comes from: the SDK, with `--profile` and `--endpoint-url` (or
    /// AWS_ENDPOINT_URL) over the environment's settings.
    pub fn aws_source(&self) -> AwsSource {
        AwsSource::Sdk {
            profile: self.profile.clone(),
            endpoint_url: self
                .endpoint_url
                .clone()
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()),
        }
    }

    /// The plan as observed now (what `--plan` compares with the saved one), without printing.
    pub async fn observe_plan(&self, run: &drctl::run::NewRun) -> drctl::run::observe::PlanView {
        drctl::run::observe::PlanView::build(
            &self.aws_source().services(&run.env),
            &run.env,
            &run.plan,
        )
        .await
    }

    /// Where runs live for read-only commands (`history`, `status RUN`, `report`, `verify`).
    pub async fn journals(&self) -> Result<std::sync::Arc<dyn drctl::journal::JournalStore>> {
        Ok(self
            .context(self.state_dir_lenient()?)
            .state
            .journals()
            .await)
    }

    /// The context for commands that change a run found by id (`resume`, `rollback`,
    /// `approve`): like [`Global::context`], but an environment file that is there and does not
    /// load is an error, not a quiet fall back to the state dir (with shared state, the run is
    /// in the table, and acting on a stale local copy would split it).
    pub fn context_for_changes(&self) -> Result<Context> {
        if self.env_file.exists() {
            drctl::run::load_env(&self.env_file)?;
        }
        Ok(self.context(self.state_dir_lenient()?))
    }

    /// The run context for commands that start or continue runs.
    pub fn context(&self, state_dir: PathBuf) -> Context {
        let aws = self.aws_source();
        // The backend is the environment's (`state:`), when its file loads; commands that work
        // without one (`history`, `status RUN`) then read the state dir.
        let state = match self
            .env_file
            .exists()
            .then(|| drctl::config::load_env(&self.env_file))
        {
            Some(Ok((_, env))) => {
                drctl::run::StateStore::for_env(&state_dir, &env, aws.settings(&env))
            }
            Some(Err(e)) => {
                // Said, not silent: with shared state the runs are not in this directory.
                eprintln!(
                    "note: {} did not load, so runs are read from the state dir {} (not a shared table): {}",
                    self.env_file.display(),
                    state_dir.display(),
                    e.to_string().lines().next().unwrap_or_default()
                );
                drctl::run::StateStore::file(&state_dir)
            }
            None => drctl::run::StateStore::file(&state_dir),
        };
        Context {
            state_dir,
            state,
            aws,
            operator: Operator::current(),
            command: command_line(),
        }
    }
}

/// The command line as typed, for the journal and the lease.
pub fn command_line() -> String {
    std::env::args()
        .map(|a| if a.contains(' ') { format!("{a:?}") } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}
