//! Game-day drills (docs/drills.md). A drill is a run like any other (journal, lease, report),
//! with what makes it safe to run unattended every week:
//! - it starts only when the environment is `protected`, the primary's probes are healthy and
//!   no earlier drill left anything behind ([`preflight`]);
//! - an isolated drill's teardown always runs: after success, failure, a signal, or the primary
//!   going down mid-drill (then the drill stops at once, so a watch's failover can take the
//!   lease); it undoes the run's steps (journaled) and then removes by tag anything an
//!   interrupted step made ([`leftovers`]);
//! - `drctl drill cleanup` does the same for drills that crashed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::resume::{close, Rollback};
use super::summary::{RunOutcome, RunSummary};
use super::{Context, Hooks, NewRun, Operation, RunError};
use crate::aws::leftovers::{self, Leftover, Scope};
use crate::config::env::Environment;
use crate::journal::Record;
use crate::journal::RunStatus;
use crate::probe::{probe_once, ProbeResult, Probers};
use crate::report::drill::CLOSED_CLEAN;
use crate::topology::Phase;

/// The shipped runbook of an isolated drill (under `runbooks/`).
pub const ISOLATED_RUNBOOK: &str = "drill-isolated";
/// Runs of runbooks named so are drills: their leftovers are found by tag, and an unfinished
/// one never stands in a failover's way.
pub use crate::report::drill::{is_drill, DRILL_PREFIX};
/// How long teardown may take before it gives up (what remains is listed, for cleanup). A
/// real restore stays `creating` for many minutes and cannot be deleted before it is up.
pub const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long the sweep by tag waits for an instance to terminate or a database to become
/// deletable (it holds no lease while it waits).
pub const SWEEP_WAIT: Duration = Duration::from_secs(25 * 60);

/// What a drill's lease says it is (in the lease's command): a watch's failover waits for a
/// drill that [`yields`] instead of giving up on a held lease.
pub fn lease_label(mode: &str) -> String {
    format!("[drill {mode}]")
}

/// Whether a lease holder is a drill that stops and lets go when the primary goes down
/// (readiness and isolated drills; a full drill moves production itself and does not).
pub fn yields(lease_command: &str) -> bool {
    ["isolated", "readiness"]
        .iter()
        .any(|m| lease_command.contains(&lease_label(m)))
}

/// What a drill checked before starting.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    pub phase: String,
    /// The primary's probes, one round: (target, healthy, detail).
    pub primary: Vec<(String, bool, String)>,
    /// Resources of earlier drills that still exist.
    pub leftovers: Vec<Leftover>,
    /// Why the drill must not start (empty: it may).
    pub refusals: Vec<String>,
}

impl Preflight {
    pub fn ready(&self) -> bool {
        self.refusals.is_empty()
    }
}

/// The probe targets that stand for the primary (the watch policy's list, else every target
/// in the primary region).
fn primary_targets(env: &Environment) -> Result<Probers, String> {
    let mut p = Probers::from_env(env).map_err(|e| e.to_string())?;
    let named = &p.settings.watch.primary;
    p.targets.retain(|t| {
        if named.is_empty() {
            t.region == env.primary_region
        } else {
            named.contains(&t.name)
        }
    });
    if p.targets.is_empty() {
        return Err("no probe targets stand for the primary (probes.targets in the primary region, or probes.watch.primary)".into());
    }
    Ok(p)
}

/// The drill's resources that still exist in the standby region (every run's, or one's).
pub async fn find_leftovers(
    ctx: &Context,
    env: &Environment,
    run: Option<&str>,
) -> Result<Vec<Leftover>, RunError> {
    let aws = ctx.aws.aws(env);
    let api = aws.drill(&env.standby_region).await;
    let scope = Scope {
        env: &env.name,
        run,
        load_balancer: env.drill.load_balancer.as_ref().map(|l| l.arn.as_str()),
    };
    leftovers::find(api.as_ref(), scope).await.map_err(|e| {
        let m = format!("cannot look for drill resources: {e}");
        if e.is_configuration() {
            RunError::Credentials(m)
        } else {
            RunError::Refused(m)
        }
    })
}

/// Check that a drill may start: credentials, phase `protected`, a healthy primary, nothing
/// left by an earlier drill, nothing unfinished. Writes nothing.
pub async fn preflight(ctx: &Context, env: &Environment) -> Result<Preflight, RunError> {
    let _ = super::check_identity(ctx, env).await?;
    let mut refusals = Vec::new();
    let topo = super::roundtrip::observe(ctx, env).await;
    if topo.phase != Phase::Protected {
        refusals.push(format!(
            "the environment is {}, not protected: a drill only runs while the standby protects the primary (`drctl status` says why)",
            topo.phase.as_str()
        ));
    }
    let mut primary = Vec::new();
    match primary_targets(env) {
        Ok(p) => {
            for (t, r) in p.targets.iter().zip(p.round().await) {
                if !r.ok {
                    refusals.push(format!(
                        "the primary's probe `{}` fails ({}): a drill never runs while the primary is in trouble",
                        t.name, r.detail
                    ));
                }
                primary.push((t.name.clone(), r.ok, r.detail));
            }
        }
        Err(e) => refusals.push(format!("cannot check the primary's health: {e}")),
    }
    let left = find_leftovers(ctx, env, None).await?;
    if !left.is_empty() {
        let runs: std::collections::BTreeSet<&str> = left.iter().map(|l| l.run.as_str()).collect();
        refusals.push(format!(
            "{} resource(s) of earlier drill(s) still exist (run {}): remove them first with `drctl drill cleanup`",
            left.len(),
            runs.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if let Err(RunError::Refused(m)) = super::refuse_if_unfinished(ctx, &env.name).await {
        refusals.push(m);
    }
    Ok(Preflight {
        phase: topo.phase.as_str().to_string(),
        primary,
        leftovers: left,
        refusals,
    })
}

pub use crate::report::drill::Resource;

/// How a drill ended.
#[derive(Debug, Clone, Serialize)]
pub struct DrillOutcome {
    pub run_id: String,
    pub mode: String,
    /// The copy served end to end and everything it made is gone.
    pub passed: bool,
    /// How the drill's run ended (`succeeded`, `failed`, `paused`, ...).
    pub run_outcome: String,
    /// Why it stopped before the end, if it did (a signal, the primary going down).
    pub stopped: Option<String>,
    pub database_s: Option<f64>,
    pub serving_s: Option<f64>,
    pub resources: Vec<Resource>,
    /// Instances x minutes they existed (a cost figure).
    pub instance_minutes: f64,
    /// What teardown could not remove (`drctl drill cleanup` retries).
    pub leftovers: Vec<Leftover>,
    pub teardown_errors: Vec<String>,
    /// Readiness: each check as `drctl check` makes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<serde_json::Value>,
    /// Readiness: the failover plan, what each step would do now, and the predicted RTO.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<super::observe::PlanView>,
    /// Full: the runs it made, in order (failover, reprotect, failback).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<String>,
    /// Full: the failover's RTO and RPO against the targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto: Option<crate::report::model::Rto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo: Option<crate::report::model::Rpo>,
    /// The phase observed when the drill ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_after: Option<String>,
}

impl DrillOutcome {
    /// An outcome with nothing measured yet.
    pub fn new(run_id: &str, mode: &str) -> Self {
        DrillOutcome {
            run_id: run_id.to_string(),
            mode: mode.to_string(),
            passed: false,
            run_outcome: String::new(),
            stopped: None,
            database_s: None,
            serving_s: None,
            resources: vec![],
            instance_minutes: 0.0,
            leftovers: vec![],
            teardown_errors: vec![],
            checks: None,
            plan: None,
            runs: vec![],
            rto: None,
            rpo: None,
            phase_after: None,
        }
    }

    /// One line for people and notifications.
    pub fn headline(&self) -> String {
        let secs = |v: Option<f64>| v.map(|s| format!("{s:.1}s"));
        let mut parts = vec![format!(
            "{} drill {}: {}",
            self.mode,
            self.run_id,
            if self.passed { "PASSED" } else { "FAILED" }
        )];
        if let Some(w) = &self.stopped {
            parts.push(w.clone());
        }
        if let Some(d) = secs(self.database_s) {
            parts.push(format!("database writable after {d}"));
        }
        if let Some(d) = secs(self.serving_s) {
            parts.push(format!("serving after {d}"));
        }
        if let Some(r) = &self.rto {
            parts.push(format!(
                "RTO {} {} (target {})",
                r.measured_ms
                    .map(crate::report::svg::dur)
                    .unwrap_or_else(|| "not measured".into()),
                r.verdict.word(),
                crate::report::svg::dur(r.target_ms)
            ));
        }
        if let Some(r) = &self.rpo {
            parts.push(format!(
                "RPO {} {} (target {:.0}s)",
                r.measured_s
                    .map(|v| format!("{v:.0}s"))
                    .unwrap_or_else(|| "not measured".into()),
                r.verdict.word(),
                r.target_s
            ));
        }
        if !self.leftovers.is_empty() {
            parts.push(format!("{} resource(s) LEFT BEHIND", self.leftovers.len()));
        }
        parts.push(format!(
            "report: drctl report {} --out {}.html",
            self.run_id, self.run_id
        ));
        parts.join("; ")
    }
}

/// Watch the primary while a drill runs; cancel `stop` (with the reason) once it is down
/// (its failure threshold of consecutive failed rounds).
fn guard_primary(
    env: &Environment,
    stop: CancellationToken,
    why: Arc<Mutex<Option<String>>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let probers = primary_targets(env).ok()?;
    let threshold = probers.settings.failure_threshold.max(1);
    let interval = probers.settings.interval;
    Some(tokio::spawn(async move {
        let mut failed = 0u32;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let results: Vec<ProbeResult> =
                futures::future::join_all(probers.targets.iter().map(probe_once)).await;
            // Down when every primary target fails, as the watch decides.
            if results.iter().all(|r| !r.ok) {
                failed += 1;
            } else {
                failed = 0;
            }
            if failed >= threshold {
                *why.lock().expect("why lock") = Some(format!(
                    "the primary went down during the drill ({}): the drill stopped and tore down to stay out of the failover's way",
                    results.first().map(|r| r.detail.as_str()).unwrap_or("?")
                ));
                stop.cancel();
                return;
            }
        }
    }))
}

/// Run an isolated drill: the run, then teardown whatever happened. `shutdown` is the
/// caller's (signals); teardown runs on its own token, bounded by [`TEARDOWN_TIMEOUT`].
pub async fn isolated(
    ctx: &Context,
    hooks: &Hooks,
    run: &NewRun,
    shutdown: CancellationToken,
) -> Result<DrillOutcome, RunError> {
    let Some(run_id) = run.run_id.clone() else {
        return Err(RunError::Refused(
            "an isolated drill needs its run id before it starts".into(),
        ));
    };
    let stop = shutdown.child_token();
    let why = Arc::new(Mutex::new(None));
    let guard = guard_primary(&run.env, stop.clone(), why.clone());
    // The drill's own bound: past it the run stops and tears down.
    let limit = run.env.drill.timeout;
    let timer = {
        let stop = stop.clone();
        let why = why.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(limit) => {
                    why.lock().expect("why lock").get_or_insert_with(|| format!(
                        "the drill ran past its timeout ({})", humantime::format_duration(limit)));
                    stop.cancel();
                }
            }
        })
    };
    let result = run.execute(ctx, hooks, stop.clone()).await;
    let primary_down = stop.is_cancelled() && why.lock().expect("why lock").is_some();
    stop.cancel();
    if let Some(g) = guard {
        let _ = g.await;
    }
    let _ = timer.await;
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            // The run broke (its journal, the lease taken over): what it made is still
            // removed by tag before the error is reported.
            if let Err(te) = sweep(ctx, &run.env, Some(&run_id)).await {
                hooks
                    .progress
                    .notice(&format!("drill {run_id}: sweep failed: {te}"));
            }
            return Err(e);
        }
    };
    let mut stopped = why.lock().expect("why lock").clone();
    if stopped.is_none() && shutdown.is_cancelled() {
        stopped = Some("stopped by a signal".into());
    }
    // The primary is down: a failover needs the lease now. Remove by tag (no lease needed),
    // leave the run unfinished (a drill's run blocks no one; `drctl drill cleanup` closes it).
    let (left, errors) =
        if primary_down && stopped.as_deref().is_some_and(|w| w.contains("primary")) {
            sweep_only(ctx, hooks, &run.env, &summary.run_id).await
        } else {
            teardown(ctx, hooks, &run.env, &summary.run_id).await
        };
    let records = ctx
        .state
        .journals()
        .await
        .read(&summary.run_id)
        .await
        .map(|(r, _)| r)
        .unwrap_or_default();
    Ok(outcome(&summary, &records, stopped, left, errors))
}

/// Undo the drill's run (journaled), remove by tag what is still there, close the run, and
/// say what remains.
pub async fn teardown(
    ctx: &Context,
    hooks: &Hooks,
    env: &Environment,
    run_id: &str,
) -> (Vec<Leftover>, Vec<String>) {
    let token = CancellationToken::new();
    let work = async {
        let mut errors = Vec::new();
        hooks
            .progress
            .notice(&format!("drill {run_id}: tearing down"));
        // Whether the drill did what it set out to (its steps all succeeded), before teardown
        // touches the journal: with a clean teardown, that is the drill's verdict.
        let served = drill_served(ctx, run_id).await;
        match Rollback::load(ctx, run_id, None).await {
            Ok(mut rb) => {
                rb.reason = "drill teardown".into();
                // The run is closed below with the drill's verdict, never as "rolled back".
                rb.leave_open = true;
                if let Err(e) = rb.execute(ctx, hooks, token.clone()).await {
                    errors.push(format!("rollback: {e}"));
                }
            }
            // Nothing completed to undo: the sweep below finds anything in-flight steps made.
            Err(RunError::Refused(_)) => {}
            Err(e) => errors.push(format!("rollback: {e}")),
        }
        match sweep(ctx, env, Some(run_id)).await {
            Ok(errs) => errors.extend(errs),
            Err(e) => errors.push(e.to_string()),
        }
        let verdict = match (&served, errors.is_empty()) {
            (Ok(()), true) => (
                RunStatus::Succeeded,
                format!("{CLOSED_CLEAN}; the drill passed"),
            ),
            (Err(why), true) => (
                RunStatus::Failed,
                format!("{CLOSED_CLEAN}; the drill failed: {why}"),
            ),
            (_, false) => (
                RunStatus::Failed,
                format!("drill closed; teardown left errors: {}", errors.join("; ")),
            ),
        };
        if let Err(e) = close(ctx, hooks, run_id, (verdict.0, &verdict.1), token.clone()).await {
            errors.push(format!("closing the run: {e}"));
        }
        errors
    };
    let errors = match tokio::time::timeout(TEARDOWN_TIMEOUT, work).await {
        Ok(e) => e,
        Err(_) => vec![format!(
            "teardown did not finish within {}",
            humantime::format_duration(TEARDOWN_TIMEOUT)
        )],
    };
    remaining(ctx, env, run_id, errors).await
}

/// Whether the drill's run ran all its steps (finished succeeded), or why not.
async fn drill_served(ctx: &Context, run_id: &str) -> Result<(), String> {
    let store = ctx.state.journals().await;
    let (records, _) = store.read(run_id).await.map_err(|e| e.to_string())?;
    let st = crate::journal::RunState::replay(&records).map_err(|e| e.to_string())?;
    match st.phase {
        crate::journal::replay::RunPhase::Finished {
            status: RunStatus::Succeeded,
            ..
        } => Ok(()),
        p => Err(format!("it did not finish its steps ({})", p.text())),
    }
}

/// What is still there after teardown; when that cannot be told, an error says so (and the
/// caller reports leftovers as unknown rather than none).
async fn remaining(
    ctx: &Context,
    env: &Environment,
    run_id: &str,
    mut errors: Vec<String>,
) -> (Vec<Leftover>, Vec<String>) {
    match find_leftovers(ctx, env, Some(run_id)).await {
        Ok(left) => (left, errors),
        Err(e) => {
            errors.push(format!("could not check what is left: {e}"));
            (vec![], errors)
        }
    }
}

/// Teardown without the lease: remove by tag only, bounded. For a drill stopped because the
/// primary went down: a failover must get the lease at once.
pub async fn sweep_only(
    ctx: &Context,
    hooks: &Hooks,
    env: &Environment,
    run_id: &str,
) -> (Vec<Leftover>, Vec<String>) {
    hooks.progress.notice(&format!(
        "drill {run_id}: the primary is down: lease released; removing the drill's resources by tag"
    ));
    let errors = match tokio::time::timeout(TEARDOWN_TIMEOUT, sweep(ctx, env, Some(run_id))).await {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => vec![e.to_string()],
        Err(_) => vec![format!(
            "the sweep did not finish within {}",
            humantime::format_duration(TEARDOWN_TIMEOUT)
        )],
    };
    remaining(ctx, env, run_id, errors).await
}

/// Remove the drill resources of `run` (or of every drill of the environment) found by tag.
/// Returns what could not be removed.
pub async fn sweep(
    ctx: &Context,
    env: &Environment,
    run: Option<&str>,
) -> Result<Vec<String>, RunError> {
    let items = find_leftovers(ctx, env, run).await?;
    if items.is_empty() {
        return Ok(vec![]);
    }
    let aws = ctx.aws.aws(env);
    let api = aws.drill(&env.standby_region).await;
    let (_, failed) = leftovers::remove(api.as_ref(), &items, SWEEP_WAIT).await;
    Ok(failed
        .into_iter()
        .map(|(l, why)| format!("{} {}: {why}", l.kind, l.id))
        .collect())
}

/// What `drctl drill cleanup` did.
#[derive(Debug, Clone, Serialize)]
pub struct Cleanup {
    pub found: Vec<Leftover>,
    /// Unfinished drill runs it closed (after undoing what they completed).
    pub closed_runs: Vec<String>,
    pub remaining: Vec<Leftover>,
    pub errors: Vec<String>,
}

/// Remove every leftover of the environment's drills and close their unfinished runs.
pub async fn cleanup(ctx: &Context, hooks: &Hooks, env: &Environment) -> Result<Cleanup, RunError> {
    refuse_while_held(ctx, &env.name).await?;
    let found = find_leftovers(ctx, env, None).await?;
    let mut runs: Vec<String> = found.iter().map(|l| l.run.clone()).collect();
    runs.extend(unfinished_drills(ctx, &env.name).await);
    runs.sort();
    runs.dedup();
    let store = ctx.state.journals().await;
    let known = store.list().await.unwrap_or_default();
    let mut closed = Vec::new();
    let mut errors = Vec::new();
    for run in &runs {
        if known.contains(run) {
            let (_, errs) = teardown(ctx, hooks, env, run).await;
            errors.extend(errs);
            closed.push(run.clone());
        }
    }
    // Resources whose run is not in this state dir (another machine's, a lost journal).
    errors.extend(sweep(ctx, env, None).await?);
    let remaining = find_leftovers(ctx, env, None).await?;
    Ok(Cleanup {
        found,
        closed_runs: closed,
        remaining,
        errors,
    })
}

/// Refuse (exit 3) while someone holds the environment's lease: a drill may be running, and
/// its resources are not leftovers.
pub async fn refuse_while_held(ctx: &Context, env: &str) -> Result<(), RunError> {
    use crate::journal::lease::{staleness, Staleness};
    use crate::journal::LeaseError;
    match ctx.state.leases().await.current(env).await? {
        Some(l) if staleness(&l, chrono::Utc::now()) == Staleness::Fresh => {
            Err(RunError::Lease(LeaseError::Held(Box::new(l))))
        }
        _ => Ok(()),
    }
}

/// What is wrong with drctl.yaml's `drill:` section for an isolated drill: the load balancer
/// must be in the standby region and none of production's; instance count and port sane.
pub fn settings_problems(env: &Environment) -> Vec<String> {
    let d = &env.drill;
    let mut p = Vec::new();
    match &d.load_balancer {
        None => p.push(
            "no `drill.load_balancer` (an ALB in the standby region with no listeners of its own)"
                .to_string(),
        ),
        Some(lb) => {
            if !lb.arn.contains(&format!(":{}:", env.standby_region)) {
                p.push(format!(
                    "drill.load_balancer {} is not in the standby region {}",
                    lb.arn, env.standby_region
                ));
            }
            let production = env
                .regions
                .values()
                .flat_map(|r| r.albs.values())
                .any(|a| a.arn == lb.arn);
            if production {
                p.push(format!(
                    "drill.load_balancer {} is one of production's ALBs: a drill must never add a listener to production",
                    lb.arn
                ));
            }
        }
    }
    if !(1..=20).contains(&d.instances) {
        p.push(format!("drill.instances is {}: 1 to 20", d.instances));
    }
    if d.listener_port == 0 {
        p.push("drill.listener_port is 0".into());
    }
    p
}

/// The environment a drill run ran against (from its journal), or `None` when `run` is not a
/// drill's.
pub async fn drill_run_env(ctx: &Context, run: &str) -> Result<Option<Environment>, RunError> {
    let store = ctx.state.journals().await;
    let (records, _) = store.read_intact(run).await?;
    let state = super::replay(run, &records)?;
    if !is_drill(&state.runbook_name, &state.runbook_text) {
        return Ok(None);
    }
    let (env, _) = super::sources_from_journal(&state)?;
    Ok(Some(env))
}

/// The environment's drill runs that have not finished.
async fn unfinished_drills(ctx: &Context, env: &str) -> Vec<String> {
    let store = ctx.state.journals().await;
    let mut out = Vec::new();
    for id in store.list().await.unwrap_or_default() {
        let Ok((records, _)) = store.read(&id).await else {
            continue;
        };
        let Ok(st) = crate::journal::RunState::replay(&records) else {
            continue;
        };
        if st.env_name == env && is_drill(&st.runbook_name, &st.runbook_text) && !st.is_finished() {
            out.push(id);
        }
    }
    out
}

/// How the drill ended, with its figures from its journal (as its report shows them).
fn outcome(
    s: &RunSummary,
    records: &[Record],
    stopped: Option<String>,
    leftovers: Vec<Leftover>,
    teardown_errors: Vec<String>,
) -> DrillOutcome {
    let f = crate::report::drill::figures(records).unwrap_or_default();
    let served = s.outcome == RunOutcome::Succeeded;
    DrillOutcome {
        passed: served && stopped.is_none() && leftovers.is_empty() && teardown_errors.is_empty(),
        run_outcome: s.outcome.to_string(),
        stopped,
        database_s: f.database_s,
        serving_s: f.serving_s,
        resources: f.resources,
        instance_minutes: f.instance_minutes,
        leftovers,
        teardown_errors,
        ..DrillOutcome::new(&s.run_id, "isolated")
    }
}
