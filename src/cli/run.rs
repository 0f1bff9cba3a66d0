//! `run`, `resume`, `rollback`: ask the operator (confirmations, approvals, `--step`), hand the
//! run to the library (`drctl::run`), and show how it ended. Signals become a graceful pause.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use drctl::engine::progress::ProgressSink;
use drctl::engine::{Decision, StepPrompter};
use drctl::journal::{LeaseError, Operator};
use drctl::run::{
    Answer, ApprovalPrompt, Approvals, Context, Hooks, NewRun, Operation, Resume, Rollback,
    RunError, RunSummary,
};
use drctl::steps::{Approval, Observation, StepDef};

use super::render::{JsonLines, Live, Plain};
use super::{confirm, is_tty, Global, Mutating, Output, Usage};

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

/// JSON lines with `--output json`, a live table on a terminal, plain lines otherwise.
pub fn progress_sink(g: &Global, step_ids: &[String], step_mode: bool) -> Arc<dyn ProgressSink> {
    if g.output == Output::Json {
        Arc::new(JsonLines)
    } else if is_tty() && !step_mode {
        Arc::new(Live::new(step_ids))
    } else {
        Arc::new(Plain)
    }
}

/// `yes` approves; `yes <words>` approves with a comment. Anything else does not.
fn approval_comment(line: &str) -> Option<Option<String>> {
    let rest = line.trim().strip_prefix("yes")?;
    if rest.is_empty() {
        return Some(None);
    }
    // `yesterday` is not a yes.
    rest.starts_with(|c: char| c.is_whitespace() || c == ':')
        .then(|| Some(rest.trim_start_matches(':').trim().to_string()).filter(|c| !c.is_empty()))
}

/// `no` (or `n`) declines.
fn is_no(line: &str) -> bool {
    matches!(line.trim(), "no" | "n" | "NO" | "N" | "No")
}

/// The operator's terminal as a source of approvals: type `yes` here, or run `drctl approve`
/// from another terminal.
struct TerminalPrompt {
    progress: Arc<dyn ProgressSink>,
}

/// Redraws the live table again when the prompt ends, however it ends. A prompt that ends
/// unanswered here (approved from another terminal) first ends its line, so what follows does
/// not run on after the question.
struct Held {
    progress: Arc<dyn ProgressSink>,
    answered: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.answered {
            eprintln!("\n  (answered elsewhere: `drctl approve`)");
        }
        self.progress.release();
    }
}

#[async_trait]
impl ApprovalPrompt for TerminalPrompt {
    async fn ask(&self, run_id: &str, step: &str, message: &str) -> Option<Answer> {
        self.progress.hold();
        let mut held = Held {
            progress: self.progress.clone(),
            answered: true,
        };
        eprintln!("\n  APPROVAL NEEDED for step `{step}`: {message}");
        eprintln!("  approve from another terminal with: drctl approve {run_id} {step}");
        if !is_tty() {
            return None;
        }
        eprint!("  type `yes` to approve here (`yes <why>` keeps a comment for the report), `no` to pause the run: ");
        held.answered = false;
        let step_owned = step.to_string();
        let typed = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            loop {
                line.clear();
                if std::io::stdin().lock().read_line(&mut line).unwrap_or(0) == 0 {
                    return None;
                }
                if let Some(comment) = approval_comment(&line) {
                    return Some(Some(comment));
                }
                if is_no(&line) {
                    return Some(None);
                }
                eprint!("  type `yes` to approve step `{step_owned}`, `no` to pause the run (or Ctrl-C): ");
            }
        })
        .await
        .ok()
        .flatten();
        // Ended here (an answer, or stdin closed): nothing to tidy on the line.
        held.answered = true;
        let by = Operator::current().user;
        let answer = match typed? {
            Some(comment) => Answer::Approved(Approval {
                by,
                via: "prompt".into(),
                comment,
            }),
            None => Answer::Declined { by },
        };
        Some(answer)
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

/// How this command's run talks to the operator.
pub fn hooks(g: &Global, m: &Mutating, step_ids: &[String]) -> Result<Hooks> {
    if m.step && !is_tty() {
        bail!(Usage("--step needs a terminal to ask on".into()));
    }
    let progress = progress_sink(g, step_ids, m.step);
    Ok(Hooks {
        approvals: if m.yes && !m.wait_approval {
            Approvals::Auto {
                gates: (!m.approve_irreversible).then(|| {
                    Arc::new(TerminalPrompt {
                        progress: progress.clone(),
                    }) as Arc<dyn ApprovalPrompt>
                }),
            }
        } else {
            Approvals::Ask(Arc::new(TerminalPrompt {
                progress: progress.clone(),
            }))
        },
        progress,
        prompter: m
            .step
            .then(|| Arc::new(CliPrompter) as Arc<dyn StepPrompter>),
        break_lock: false,
    })
}

/// Run `go` under the lease; if another drctl holds it and `--break-lock` was given, ask, then
/// try once more taking it over.
pub async fn with_lease<F, Fut>(m: &Mutating, mut hooks: Hooks, go: F) -> Result<RunSummary>
where
    F: Fn(Hooks) -> Fut,
    Fut: std::future::Future<Output = Result<RunSummary, RunError>>,
{
    match go(hooks.clone()).await {
        Err(RunError::Lease(e @ LeaseError::Held(_))) if m.break_lock => {
            confirm(&format!("{e}\nBreak this lock? If that drctl is still running, two operators will act at once."), m.yes)?;
            hooks.break_lock = true;
            Ok(go(hooks).await?)
        }
        Err(RunError::Lease(e @ LeaseError::Held(_))) => Err(anyhow::Error::new(e).context(
            "another drctl is working on this environment; wait for it, or if it is gone, re-run with --break-lock",
        )),
        other => Ok(other?),
    }
}

/// How a command names its run in the summary, and what it adds to it.
#[derive(Default)]
pub struct Ending {
    /// The first line (default: "run ID (RUNBOOK) OUTCOME").
    pub title: Option<String>,
    /// After a success: what the operator checks or does next.
    pub next: Option<String>,
    /// Whether the elapsed time is this run's RTO (a failover) and the RPO line belongs.
    pub recovery: bool,
    /// Extra fields of the JSON summary (`region`, ...).
    pub json: serde_json::Map<String, serde_json::Value>,
}

/// Print how a run ended, with what to do next, and return the exit code.
pub fn finish(g: &Global, s: &RunSummary) -> i32 {
    finish_as(g, s, Ending::default())
}

/// [`finish`] with a command's own title, next steps and JSON fields. Every run, resumed or
/// not, gets the same summary: its ended steps with their durations, what is still unfinished,
/// the elapsed time (the RTO of a finished failover; only "so far" while it is not finished),
/// the RPO a promotion recorded, warnings, and the way on.
pub fn finish_as(g: &Global, s: &RunSummary, e: Ending) -> i32 {
    use super::render::{fmt_ms, table};
    use drctl::run::summary::RunOutcome;
    if g.output == Output::Json {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        v["type"] = "summary".into();
        if e.recovery && s.outcome == RunOutcome::Succeeded {
            // The same RTO as the text and the report: to the first outside check.
            v["rto_ms"] = s
                .rto
                .as_ref()
                .and_then(|r| r.measured_ms)
                .unwrap_or(s.elapsed_ms)
                .into();
        }
        if let Some(o) = v.as_object_mut() {
            o.extend(e.json);
        }
        println!("{v}");
        return s.exit_code();
    }
    let title = e
        .title
        .unwrap_or_else(|| format!("Run {} ({})", s.run_id, s.runbook));
    println!("\n{title}: {}", s.outcome);
    if !s.steps.is_empty() {
        let mut t = table(&["step", "result", "took"]);
        for l in &s.steps {
            let took = l.duration_ms.map(fmt_ms).unwrap_or_else(|| "-".into());
            t.add_row(vec![l.id.clone(), l.result.to_string(), took]);
        }
        println!("{t}");
    }
    let done = s.outcome == RunOutcome::Succeeded;
    if !done && !s.unfinished.is_empty() {
        println!("not done: {}", s.unfinished.join(", "));
    }
    let elapsed = fmt_ms(s.elapsed_ms);
    match (&s.rto, done) {
        (Some(rto), _) if rto.measured_ms.is_some() => println!(
            "RTO: {} {} (target {}; {})",
            fmt_ms(rto.measured_ms.unwrap_or_default()),
            paint_verdict(&rto.verdict),
            fmt_ms(rto.target_ms),
            rto.note
        ),
        (Some(_), _) | (None, false) if e.recovery => println!(
            "elapsed so far: {elapsed} (the run is {}: recovery is not complete)",
            s.outcome
        ),
        (None, true) if e.recovery => {
            println!("RTO: {elapsed} (from the run's start to its last event)")
        }
        _ => println!("elapsed: {elapsed}"),
    }
    match (&s.rpo, s.rpo_s) {
        (Some(rpo), Some(r)) => println!(
            "RPO: {r:.0}s {} (target {}; {})",
            paint_verdict(&rpo.verdict),
            fmt_ms((rpo.target_s * 1000.0) as u64),
            rpo.note
        ),
        (_, Some(r)) => {
            println!("RPO estimate: {r:.0}s of writes (replica lag when it was promoted)")
        }
        (Some(rpo), None) if e.recovery && rpo.last_known_s.is_some() => {
            println!("RPO: {} ({})", paint_verdict(&rpo.verdict), rpo.note)
        }
        (_, None) if e.recovery => {
            println!("RPO estimate: unknown (no promotion recorded lag in this run)")
        }
        _ => {}
    }
    for w in &s.warnings {
        println!("{} {w}", super::render::paint("WARNING", true));
    }
    for line in s.headline() {
        eprintln!("{line}");
    }
    if let (true, Some(next)) = (done, e.next) {
        println!("Next: {next}");
    }
    println!(
        "Report: drctl report {id} --out {id}.html (from the journal, any time)",
        id = s.run_id
    );
    s.exit_code()
}

/// PASS in green, FAIL in red (on a terminal, without NO_COLOR).
fn paint_verdict(v: &drctl::report::Verdict) -> String {
    use drctl::report::Verdict;
    match v {
        Verdict::Pass => super::render::status_word(drctl::readiness::Status::Pass),
        Verdict::Fail => super::render::status_word(drctl::readiness::Status::Fail),
        other => other.word().to_string(),
    }
}

/// Confirm `op` (always asked, unless `yes_ok`), then drive it to its end under the lease,
/// with signals as a graceful pause.
pub async fn drive(
    g: &Global,
    ctx: &Context,
    op: &dyn Operation,
    m: &Mutating,
    yes_ok: bool,
) -> Result<RunSummary> {
    let hooks = hooks(g, m, &op.step_ids())?;
    confirm(&op.describe(), yes_ok)?;
    let shutdown = CancellationToken::new();
    install_signals(shutdown.clone());
    with_lease(m, hooks, |h| {
        let sd = shutdown.clone();
        async move { op.execute(ctx, &h, sd).await }
    })
    .await
}

/// Confirm, then start `run` and drive it to its end. `failover` and the round trip use it.
pub async fn start(g: &Global, ctx: &Context, run: &NewRun, m: &Mutating) -> Result<RunSummary> {
    drive(g, ctx, run, m, m.yes || m.step).await
}

/// The environment file and `runbook`, read and checked.
pub fn prepare(g: &Global, runbook: &Path) -> Result<NewRun> {
    let (env_src, env) = g.load_env()?;
    let (rb_src, rb) = drctl::run::load_runbook(runbook, &env)?;
    Ok(NewRun::new(env_src, env, rb_src, rb))
}

/// `drctl run RUNBOOK`.
pub async fn run(g: &Global, runbook: &Path, m: &Mutating) -> Result<i32> {
    let run = prepare(g, runbook)?;
    // A drill's resources are only safe with its preflight, its primary guard and teardown.
    if run
        .plan
        .steps
        .iter()
        .any(|s| s.spec.step().makes_drill_resources())
    {
        return Err(Usage(format!(
            "{} makes drill resources: run it with `drctl drill --mode isolated`, which checks the environment first and always tears down",
            runbook.display()
        ))
        .into());
    }
    let ctx = g.context(g.state_dir(Some(&run.env))?);
    let s = start(g, &ctx, &run, m).await?;
    Ok(finish(g, &s))
}

/// `RUN` as typed: an id, or `latest` (the newest run), as `status`, `report` and `verify` take it.
async fn run_id(ctx: &Context, run: &str) -> Result<String> {
    if run != "latest" {
        return Ok(run.to_string());
    }
    Ok(drctl::run::inspect::latest(ctx.state.journals().await.as_ref()).await?)
}

/// `drctl run --plan FILE`: exactly a saved plan, refused when what is observed moved.
pub async fn run_plan(g: &Global, file: &Path, m: &Mutating) -> Result<i32> {
    let saved = drctl::run::saved_plan::SavedPlan::read(file)?;
    let (env_src, env) = g.load_env()?;
    let run = saved.new_run(env_src, env)?;
    let now = g.observe_plan(&run).await;
    let moved = saved.differences(&now, None);
    if !moved.is_empty() {
        return Err(Usage(format!(
            "the plan {} (made {} by {}) no longer matches what is observed now; nothing was changed:\n  {}\nmake a new plan: drctl plan {} --out {}",
            file.display(),
            saved.created_at.format("%Y-%m-%d %H:%M UTC"),
            saved.created_by,
            moved.join("\n  "),
            saved.runbook.path,
            file.display()
        ))
        .into());
    }
    let ctx = g.context(g.state_dir(Some(&run.env))?);
    let s = start(g, &ctx, &run, m).await?;
    Ok(finish(g, &s))
}

/// `drctl resume RUN`.
pub async fn resume(g: &Global, run: &str, m: &Mutating, rerun: &[String]) -> Result<i32> {
    let ctx = g.context_for_changes()?;
    let run = &run_id(&ctx, run).await?;
    // A drill is not resumed: what it made is removed (its completed steps undone, the rest
    // found by tag) and its run closed, as `drctl drill cleanup` does for it.
    if let Some(env) = drctl::run::drill::drill_run_env(&ctx, run).await? {
        super::confirm(
            &format!(
                "Run {run} is a drill: resuming it tears it down (undo, remove by tag, close). Go?"
            ),
            m.yes,
        )?;
        let hooks = hooks(g, m, &[])?;
        let (left, errors) = drctl::run::drill::teardown(&ctx, &hooks, &env, run).await;
        for e in &errors {
            eprintln!("teardown: {e}");
        }
        for l in &left {
            println!("STILL THERE: {} {}", l.kind, l.id);
        }
        if left.is_empty() {
            println!("drill {run} torn down: nothing of it is left");
            return Ok(drctl::exit::OK);
        }
        return Ok(drctl::exit::LEFTOVERS);
    }
    let r = Resume::load(&ctx, run, rerun).await?;
    let s = drive(g, &ctx, &r, m, m.yes || m.step).await?;
    let (runbook, env) = r.runbook();
    // A resumed failover ends as a failover does: its header, RTO and the way on.
    Ok(finish_as(g, &s, ending_for(runbook, env, &s)))
}

/// How the round trip's runs end, by their runbook: a title and what to do next. Used by the
/// commands themselves and by `resume`, so a resumed run says the same.
pub fn ending_for(runbook: &str, env: &drctl::config::Environment, s: &RunSummary) -> Ending {
    use drctl::run::roundtrip::{
        FAILBACK_RUNBOOK, FENCE_RUNBOOK, PLANNED_RUNBOOK, REPROTECT_RUNBOOK, UNPLANNED_RUNBOOK,
    };
    let titled = |title: String, next: String, recovery: bool| Ending {
        title: Some(title),
        next: Some(next),
        recovery,
        json: Default::default(),
    };
    match runbook {
        r if r == UNPLANNED_RUNBOOK || r == PLANNED_RUNBOOK => {
            failover_ending(s, &env.standby_region)
        }
        r if r == FAILBACK_RUNBOOK => titled(
            format!("Failback to {}: run {}", env.primary_region, s.run_id),
            format!(
                "check the app from outside; `drctl status` should say protected (production in {}, a replica in {})",
                env.primary_region, env.standby_region
            ),
            true,
        ),
        r if r == REPROTECT_RUNBOOK => titled(
            format!("Reprotect from {}: run {}", env.standby_region, s.run_id),
            format!(
                "`drctl status` should say reprotected; when ready, go back (planned): drctl failback --region {}",
                env.primary_region
            ),
            false,
        ),
        r if r == FENCE_RUNBOOK => titled(
            format!("Fence of the old writer: run {}", s.run_id),
            "`drctl status` shows no outstanding fence; then drctl reprotect".into(),
            false,
        ),
        _ => Ending::default(),
    }
}

/// `drctl rollback RUN [--to CHECKPOINT]`.
pub async fn rollback(g: &Global, run: &str, to: Option<&str>, m: &Mutating) -> Result<i32> {
    let ctx = g.context_for_changes()?;
    let run = &run_id(&ctx, run).await?;
    let r = Rollback::load(&ctx, run, to).await?;
    let s = drive(g, &ctx, &r, m, m.yes).await?;
    Ok(finish(g, &s))
}

/// `drctl abandon RUN --reason TEXT`: a run that changed nothing is closed at once; one that
/// may have changed something is closed only once its changes are listed and confirmed.
pub async fn abandon(g: &Global, run: &str, reason: &str, yes: bool) -> Result<i32> {
    let ctx = g.context_for_changes()?;
    let run = &run_id(&ctx, run).await?;
    let a = drctl::run::Abandon::load(&ctx, run, reason).await?;
    let m = Mutating {
        yes: true,
        approve_irreversible: false,
        wait_approval: false,
        step: false,
        break_lock: false,
    };
    let hooks = hooks(g, &m, &[])?;
    let question = a.describe();
    if a.left_changed.is_empty() {
        eprintln!("{question}");
    } else {
        confirm(&question, yes)?;
    }
    let s = with_lease(&m, hooks, |h| {
        let (ctx, a) = (&ctx, &a);
        async move { a.execute(ctx, &h, CancellationToken::new()).await }
    })
    .await?;
    if g.output == Output::Json {
        let mut v = serde_json::to_value(&s).unwrap_or_default();
        v["type"] = "summary".into();
        v["left_changed"] = serde_json::to_value(&a.left_changed).unwrap_or_default();
        println!("{v}");
        return Ok(s.exit_code());
    }
    println!(
        "Run {run} ({}) {}",
        a.runbook(),
        s.reason.as_deref().unwrap_or("abandoned")
    );
    for c in &a.left_changed {
        println!("  stays changed: {c}");
    }
    println!("Next: `drctl status` shows the environment as it is now; `drctl history` lists the run as abandoned");
    Ok(s.exit_code())
}

/// The failover's summary: the RTO, the RPO, and what to check next.
pub fn failover_ending(s: &RunSummary, region: &str) -> Ending {
    let mut json = serde_json::Map::new();
    json.insert("region".into(), region.into());
    Ending {
        title: Some(format!("Failover to {region}: run {}", s.run_id)),
        next: Some(format!(
            "check the app from outside (its public name and CloudFront); `drctl status` for the \
             environment (an outstanding fence shows there); then `drctl reprotect`. Details: drctl status {}",
            s.run_id
        )),
        recovery: true,
        json,
    }
}
