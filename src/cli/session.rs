//! A mutating session: take the environment's lease, keep it alive, turn SIGINT/SIGTERM into a
//! graceful pause, drive the engine, and map how the run ended to an exit code.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use drctl::config::runbook::StepDef;
use drctl::config::{self, Environment, Runbook, Source};
use drctl::engine::approval::{ApprovalSource, AutoApprove, FileApprovals};
use drctl::engine::progress::ProgressSink;
use drctl::engine::{Decision, Engine, Plan, RunEnd, StepPrompter};
use drctl::exit;
use drctl::journal::file::FileJournalStore;
use drctl::journal::lease::FileLeaseStore;
use drctl::journal::{
    Event, JournalStore, LeaseError, LeaseRecord, LeaseRequest, LeaseStore, Operator, RunState,
};
use drctl::steps::{Approval, Observation, StepError};

use super::render::{JsonLines, Live, Plain};
use super::{confirm, is_tty, Global, Mutating, Output, Usage};

const LEASE_TTL: Duration = Duration::from_secs(60);

/// A held lease. Dropping it stops the renewal and releases the lease, on every path out of a
/// command, errors included: a `drctl watch` whose failover failed to start must not keep
/// renewing a lease that locks every human out.
pub struct Held {
    store: Arc<FileLeaseStore>,
    pub lease: LeaseRecord,
    stop: CancellationToken,
}

/// Take the lease (or say who has it), and renew it in the background until released.
pub async fn take_lease(
    g: &Global,
    env: &Environment,
    m: &Mutating,
    command: &str,
    run_id: Option<&str>,
    shutdown: CancellationToken,
) -> Result<Held> {
    let store = Arc::new(FileLeaseStore::new(&g.state_dir(Some(env))));
    let req = LeaseRequest {
        env: env.name.clone(),
        owner: Operator::current().user,
        command: command.into(),
        run_id: run_id.map(String::from),
        ttl: LEASE_TTL,
    };
    let (lease, replaced) = match store.acquire(&req).await {
        Ok(x) => x,
        Err(LeaseError::Held(h)) if m.break_lock => {
            confirm(&format!("{}\nBreak this lock? If that drctl is still running, two operators will act at once.", LeaseError::Held(h.clone())), m.yes)?;
            store.break_and_acquire(&req).await?
        }
        Err(e @ LeaseError::Held(_)) => {
            return Err(anyhow::Error::new(e).context("another drctl is working on this environment; wait for it, or if it is gone, re-run with --break-lock"));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(old) = replaced {
        eprintln!(
            "note: took over the lease (token {}) held by {} on {} pid {} since {}: it had expired, its process was gone, or --break-lock",
            old.token,
            old.owner,
            old.host,
            old.pid,
            old.acquired_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    let stop = CancellationToken::new();
    let (s2, l2, stop2) = (store.clone(), lease.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(LEASE_TTL / 3) => {}
                _ = stop2.cancelled() => return,
            }
            if let Err(e) = s2.renew(&l2, LEASE_TTL).await {
                eprintln!("error: {e}; stopping at the next safe point");
                shutdown.cancel();
                return;
            }
        }
    });
    Ok(Held { store, lease, stop })
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.cancel();
        // The file store's release is a short flock'd read-modify-write that never awaits
        // anything, so it can finish here, even while the runtime shuts down.
        let _ = futures::executor::block_on(self.store.release(&self.lease));
    }
}

/// SIGINT/SIGTERM cancel `token` (a graceful pause); a second SIGINT exits at once.
pub fn install_signals(token: CancellationToken) {
    on_signals(
        token,
        "\nstopping: starting nothing new; running steps finish at a safe point (Ctrl-C again to quit now)",
        Some("quitting now; the journal is intact: `drctl resume` will re-observe in-flight steps"),
    );
}

/// The first SIGINT/SIGTERM prints `first` and cancels `token`; a second prints `second` and
/// exits with 130 at once.
pub fn on_signals(token: CancellationToken, first: &'static str, second: Option<&'static str>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        eprintln!("{first}");
        token.cancel();
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        if let Some(m) = second {
            eprintln!("{m}");
        }
        std::process::exit(130);
    });
}

/// Set by `drctl watch`: runs it starts print plain lines, never a live table over its output.
pub static FORCE_PLAIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn progress_sink(g: &Global, plan: &Plan, step_mode: bool) -> Arc<dyn ProgressSink> {
    if g.output == Output::Json {
        Arc::new(JsonLines)
    } else if FORCE_PLAIN.load(std::sync::atomic::Ordering::Relaxed) {
        Arc::new(Plain)
    } else if is_tty() && !step_mode && std::env::var_os("DRCTL_PLAIN").is_none() {
        Arc::new(Live::new(
            &plan
                .steps
                .iter()
                .map(|s| s.id().to_string())
                .collect::<Vec<_>>(),
        ))
    } else {
        Arc::new(Plain)
    }
}

pub fn new_run_id() -> String {
    let suffix: u16 = rand::random();
    format!(
        "{}-{suffix:04x}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    )
}

/// The terminal's approval: a prompt on this TTY, or `drctl approve` from another terminal.
struct CliApprovals {
    file: FileApprovals,
    run_id: String,
    tty: bool,
    progress: Arc<dyn ProgressSink>,
}

#[async_trait]
impl ApprovalSource for CliApprovals {
    async fn wait(&self, step: &str, message: &str) -> Result<Approval, StepError> {
        self.progress.hold();
        let a = self.ask(step, message).await;
        self.progress.release();
        a
    }
}

impl CliApprovals {
    async fn ask(&self, step: &str, message: &str) -> Result<Approval, StepError> {
        eprintln!("\n  APPROVAL NEEDED for step `{step}`: {message}");
        eprintln!(
            "  approve from another terminal with: drctl approve {} {step}",
            self.run_id
        );
        if !self.tty {
            return self.file.wait(step, message).await;
        }
        eprint!("  type `yes` to approve here: ");
        let step_owned = step.to_string();
        let prompt = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            loop {
                line.clear();
                if std::io::stdin().lock().read_line(&mut line).unwrap_or(0) == 0 {
                    return None;
                }
                if line.trim() == "yes" {
                    return Some(());
                }
                eprint!("  type `yes` to approve step `{step_owned}` (or Ctrl-C to pause): ");
            }
        });
        tokio::select! {
            a = self.file.wait(step, message) => a,
            r = prompt => match r {
                Ok(Some(())) => Ok(Approval { by: Operator::current().user, via: "prompt".into(), comment: None }),
                _ => self.file.wait(step, message).await,
            },
        }
    }
}

/// `--step`: ask before each step.
struct CliPrompter;

fn ask(prompt: &str) -> String {
    eprint!("{prompt}");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line.trim().to_string()
}

/// Print `header`, then ask until a choice is made. `first` is the one choice that differs
/// between "before a step" (yes) and "after a failure" (retry).
async fn choose(header: String, first: (&'static str, &'static str, Decision)) -> Decision {
    tokio::task::spawn_blocking(move || {
        eprintln!("{header}");
        let (key, word, decision) = first;
        let prompt = format!("  [{key}]{} / [s]kip / [a]bort / roll[b]ack? ", &word[1..]);
        loop {
            let answer = ask(&prompt);
            if answer == key || answer == word {
                return decision;
            }
            match answer.as_str() {
                "s" | "skip" => return Decision::Skip(ask("  reason for skipping: ")),
                "a" | "abort" => return Decision::Abort,
                "b" | "rollback" => return Decision::Rollback,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or(Decision::Abort)
}

#[async_trait]
impl StepPrompter for CliPrompter {
    async fn before(&self, step: &StepDef, obs: &Observation) -> Decision {
        let header = format!(
            "\nnext: {} ({})\n  now:  {}\n  will: {}",
            step.id(),
            step.kind.value,
            obs.current,
            obs.intended
        );
        choose(header, ("y", "yes", Decision::Go)).await
    }

    async fn after_failure(&self, step: &StepDef, error: &str) -> Decision {
        choose(
            format!("\n{} failed: {error}", step.id()),
            ("r", "retry", Decision::Retry),
        )
        .await
    }
}

pub struct Prepared {
    pub env_src: Source,
    pub env: Environment,
    pub rb_src: Source,
    pub rb: Runbook,
}

pub fn command_line() -> String {
    std::env::args()
        .map(|a| if a.contains(' ') { format!("{a:?}") } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A run's journal, opened for writing under the lease.
pub struct OpenRun<'a> {
    pub run_id: &'a str,
    pub run_dir: PathBuf,
    pub journal: Box<dyn drctl::journal::JournalWriter>,
    pub token: u64,
}

pub fn build_engine(
    g: &Global,
    m: &Mutating,
    env: Arc<Environment>,
    plan: Arc<Plan>,
    open: OpenRun<'_>,
    shutdown: CancellationToken,
    rerun: HashSet<String>,
) -> Result<Arc<Engine>> {
    let OpenRun {
        run_id,
        run_dir,
        journal,
        token,
    } = open;
    let run_dir = run_dir.as_path();
    let operator = Operator::current();
    let progress = progress_sink(g, &plan, m.step);
    let file = FileApprovals {
        run_dir: run_dir.to_path_buf(),
        poll: Duration::from_millis(300),
    };
    let approvals: Arc<dyn ApprovalSource> = if m.yes && !m.wait_approval {
        Arc::new(AutoApprove {
            operator: operator.clone(),
        })
    } else {
        Arc::new(CliApprovals {
            file,
            run_id: run_id.into(),
            tty: is_tty(),
            progress: progress.clone(),
        })
    };
    // The event that opened this session (RunStarted or Resumed) was written before the sink existed.
    if let Some(r) = journal.records().last() {
        progress.record(r);
    }
    Ok(Arc::new(Engine {
        plan: plan.clone(),
        run_id: run_id.into(),
        journal: tokio::sync::Mutex::new(journal),
        token,
        aws: Arc::new(drctl::aws::Aws::new(g.aws_settings(&env))),
        env,
        http: super::http_client()?,
        shutdown,
        progress,
        approvals,
        prompter: if m.step {
            Some(Arc::new(CliPrompter))
        } else {
            None
        },
        operator,
        rerun,
        outputs: Arc::new(Mutex::new(BTreeMap::new())),
    }))
}

/// Print how a run ended, with what to do next, and return the exit code.
pub fn finish(g: &Global, run_id: &str, end: &RunEnd) -> i32 {
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::json!({"type": "summary", "run_id": run_id, "end": format!("{end:?}")})
        );
    }
    match end {
        RunEnd::Succeeded { continued_failures } => {
            if continued_failures.is_empty() {
                eprintln!("run {run_id} succeeded");
            } else {
                eprintln!(
                    "run {run_id} completed, but these steps failed and were passed over: {}",
                    continued_failures.join(", ")
                );
            }
            exit::OK
        }
        RunEnd::Paused { reason } => {
            eprintln!("run {run_id} paused: {reason}\n  status: drctl status {run_id}\n  resume: drctl resume {run_id}\n  undo:   drctl rollback {run_id}");
            exit::PAUSED
        }
        RunEnd::Aborted { step, error } => {
            eprintln!("run {run_id} aborted at step `{step}`: {error}\n  undo what it did: drctl rollback {run_id}");
            exit::FAILED
        }
        RunEnd::RolledBack(r) => rollback_summary(run_id, r),
    }
}

pub fn rollback_summary(run_id: &str, r: &drctl::engine::RollbackReport) -> i32 {
    eprintln!(
        "rollback of {run_id}: undid {}",
        if r.undone.is_empty() {
            "nothing".into()
        } else {
            r.undone.join(", ")
        }
    );
    if let Some((_, why)) = &r.stopped_at {
        eprintln!("STOPPED: {why}");
    }
    if let Some((step, err)) = &r.failed {
        eprintln!("UNDO FAILED at `{step}`: {err}\n  fix the cause, then run `drctl rollback {run_id}` again");
    }
    if !r.left_in_place.is_empty() {
        eprintln!("still in effect: {}", r.left_in_place.join(", "));
    }
    if r.complete() {
        exit::ROLLED_BACK
    } else {
        exit::ROLLBACK_INCOMPLETE
    }
}

pub fn prepare(g: &Global, runbook: &Path) -> Result<Prepared> {
    let (env_src, env) = g.load_env()?;
    let (rb_src, rb) = config::load_runbook(runbook, Some(&env))?;
    Ok(Prepared {
        env_src,
        env,
        rb_src,
        rb,
    })
}

/// `drctl run RUNBOOK`.
pub async fn run(g: &Global, runbook: &Path, m: &Mutating) -> Result<i32> {
    let p = prepare(g, runbook)?;
    start_run(g, p, m).await
}

pub async fn start_run(g: &Global, p: Prepared, m: &Mutating) -> Result<i32> {
    Ok(start_run_ex(g, p, m).await?.1)
}

/// Start a run and drive it to its end; returns the run id and the exit code, for callers
/// (`failover`) that summarise the run from its journal afterwards.
pub async fn start_run_ex(g: &Global, p: Prepared, m: &Mutating) -> Result<(String, i32)> {
    if m.step && !is_tty() {
        bail!(Usage("--step needs a terminal to ask on".into()));
    }
    let plan = Arc::new(Plan::new(&p.rb));
    let irreversible = plan
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.spec.step().reversibility(),
                drctl::steps::Reversibility::Irreversible(_)
            )
        })
        .count();
    confirm(
        &format!(
            "Run `{}` ({} steps{}) against environment `{}` ({} -> {})?",
            p.rb.name,
            plan.steps.len(),
            if irreversible > 0 {
                format!(", {irreversible} IRREVERSIBLE")
            } else {
                String::new()
            },
            p.env.name,
            p.env.primary_region,
            p.env.standby_region
        ),
        m.yes || m.step,
    )?;
    let shutdown = CancellationToken::new();
    install_signals(shutdown.clone());
    let (run_id, end) = execute_run(g, p, m, shutdown).await?;
    let code = finish(g, &run_id, &end);
    Ok((run_id, code))
}

/// Take the lease, journal the start, and run the engine to its end. The caller confirmed and
/// owns `shutdown` (signals, or `drctl watch` stopping). Used by `run` and by `watch`'s
/// failover action, so both go through the same lease, journal and engine.
pub async fn execute_run(
    g: &Global,
    p: Prepared,
    m: &Mutating,
    shutdown: CancellationToken,
) -> Result<(String, RunEnd)> {
    let plan = Arc::new(Plan::new(&p.rb));
    let run_id = new_run_id();
    let held = take_lease(
        g,
        &p.env,
        m,
        &command_line(),
        Some(&run_id),
        shutdown.clone(),
    )
    .await?;
    let store = FileJournalStore::new(&g.state_dir(Some(&p.env)));
    let mut journal = store.create(&run_id).await?;
    let operator = Operator::current();
    journal
        .append(
            held.lease.token,
            Event::RunStarted {
                run_id: run_id.clone(),
                runbook_name: p.rb.name.clone(),
                runbook_path: p.rb_src.name(),
                runbook_text: p.rb_src.text.clone(),
                runbook_sha256: p.rb_src.sha256.clone(),
                env_name: p.env.name.clone(),
                env_path: p.env_src.name(),
                env_text: p.env_src.text.clone(),
                env_sha256: p.env_src.sha256.clone(),
                operator,
                command: command_line(),
            },
        )
        .await?;
    eprintln!(
        "run {run_id}: journal {}",
        store.run_dir(&run_id).join("journal.jsonl").display()
    );
    let engine = build_engine(
        g,
        m,
        Arc::new(p.env),
        plan,
        OpenRun {
            run_id: &run_id,
            run_dir: store.run_dir(&run_id),
            journal,
            token: held.lease.token,
        },
        shutdown,
        HashSet::new(),
    )?;
    let end = engine.run().await;
    drop(held);
    Ok((run_id, end?))
}

/// Re-read a run's runbook and environment from its journal (what ran is what resumes).
pub fn sources_from_journal(state: &RunState) -> Result<(Environment, Runbook)> {
    let env_src = Source::from_text(&PathBuf::from(&state.env_path), state.env_text.clone());
    let env = config::parse_env(&env_src)
        .context("the journaled environment no longer parses with this drctl")?;
    let rb_src = Source::from_text(
        &PathBuf::from(&state.runbook_path),
        state.runbook_text.clone(),
    );
    let rb = config::parse_runbook(&rb_src, Some(&env))
        .context("the journaled runbook no longer parses with this drctl")?;
    Ok((env, rb))
}

/// Open a run for writing under the lease: `resume` and `rollback`.
async fn open_run(
    g: &Global,
    run: &str,
    m: &Mutating,
    shutdown: CancellationToken,
) -> Result<(
    FileJournalStore,
    Box<dyn drctl::journal::JournalWriter>,
    RunState,
    Environment,
    Runbook,
    Held,
)> {
    let state_dir = g.state_dir_lenient();
    let store = FileJournalStore::new(&state_dir);
    // Read first to learn the environment, then lock, then open for writing.
    let (records, _) = store.read(run).await?;
    let state = RunState::replay(&records)?;
    let (env, rb) = sources_from_journal(&state)?;
    let held = take_lease(g, &env, m, &command_line(), Some(run), shutdown).await?;
    let (journal, warnings) = store.open_writer(run).await?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let state = RunState::replay(journal.records())?;
    Ok((store, journal, state, env, rb, held))
}

/// `drctl resume RUN`.
pub async fn resume(g: &Global, run: &str, m: &Mutating, rerun: &[String]) -> Result<i32> {
    let shutdown = CancellationToken::new();
    let (store, mut journal, state, env, rb, held) = open_run(g, run, m, shutdown.clone()).await?;
    if let drctl::journal::replay::RunPhase::Finished { status, message } = &state.phase {
        bail!(Usage(format!("run {run} already finished ({status}: {message}); nothing to resume. Start a new run: completed steps will be no-ops")));
    }
    for s in rerun {
        if !rb.steps.iter().any(|d| d.id() == s) {
            bail!(Usage(format!("--rerun {s}: no such step in run {run}")));
        }
    }
    let plan = Arc::new(Plan::new(&rb));
    let pending = drctl::engine::executor::pending_steps(&plan, &state);
    confirm(
        &format!(
            "Resume run {run} ({} of {} steps left: {})?",
            pending.len(),
            plan.steps.len(),
            pending.join(", ")
        ),
        m.yes || m.step,
    )?;
    journal
        .append(
            held.lease.token,
            Event::Resumed {
                operator: Operator::current(),
            },
        )
        .await?;
    install_signals(shutdown.clone());
    let engine = build_engine(
        g,
        m,
        Arc::new(env),
        plan,
        OpenRun {
            run_id: run,
            run_dir: store.run_dir(run),
            journal,
            token: held.lease.token,
        },
        shutdown,
        rerun.iter().cloned().collect(),
    )?;
    let end = engine.run().await;
    drop(held);
    Ok(finish(g, run, &end?))
}

/// `drctl rollback RUN [--to CHECKPOINT]`.
pub async fn rollback(g: &Global, run: &str, to: Option<&str>, m: &Mutating) -> Result<i32> {
    let shutdown = CancellationToken::new();
    let (store, journal, state, env, rb, held) = open_run(g, run, m, shutdown.clone()).await?;
    if let Some(cp) = to {
        if !state.checkpoints.iter().any(|(n, _)| n == cp) {
            let reached: Vec<&str> = state.checkpoints.iter().map(|c| c.0.as_str()).collect();
            bail!(Usage(format!(
                "run {run} never reached checkpoint `{cp}` (reached: {})",
                if reached.is_empty() {
                    "none".into()
                } else {
                    reached.join(", ")
                }
            )));
        }
    }
    let plan = Arc::new(Plan::new(&rb));
    confirm(
        &format!(
            "Roll back run {run}{}?",
            to.map(|t| format!(" to checkpoint `{t}`"))
                .unwrap_or_else(|| " completely".into())
        ),
        m.yes,
    )?;
    install_signals(shutdown.clone());
    let engine = build_engine(
        g,
        m,
        Arc::new(env),
        plan,
        OpenRun {
            run_id: run,
            run_dir: store.run_dir(run),
            journal,
            token: held.lease.token,
        },
        shutdown,
        HashSet::new(),
    )?;
    let report = drctl::engine::rollback::rollback(&engine, to, "requested by the operator").await;
    drop(held);
    Ok(rollback_summary(run, &report?))
}
