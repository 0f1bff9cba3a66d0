//! The drill modes by name, from the environment file: preparation (the preflight, the
//! runbook) and running to an outcome, shared by `drctl drill` and `drctl agent`.
//! - readiness: a run of `drill-readiness` (the checks, journaled), plus the failover plan as
//!   observed now with the predicted RTO. Changes nothing.
//! - isolated: [`super::drill::isolated`].
//! - full: a planned failover, a hold with the standby serving, reprotect and failback, each its
//!   own run; the drill passes when all three succeed and the environment is `protected` again.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::drill::{self, DrillOutcome, Preflight};
use super::failover::resolve_runbook;
use super::observe::PlanView;
use super::roundtrip::{self, Mode as FailoverMode, FAILBACK_RUNBOOK, REPROTECT_RUNBOOK};
use super::summary::{RunOutcome, RunSummary};
use super::{Context, Hooks, NewRun, Operation, RunError};
use crate::config::schedule::DrillMode;
use crate::topology::Phase;

/// A drill ready to go: its preflight passed or not (then `refusals` say why).
pub struct Prepared {
    pub mode: DrillMode,
    pub preflight: Preflight,
    /// The run to start (readiness, isolated); a full drill makes its runs as it goes.
    pub run: Option<NewRun>,
}

/// Read the environment and the mode's runbook, and check that a drill may start. Writes
/// nothing.
pub async fn prepare(
    ctx: &Context,
    env_file: &Path,
    mode: DrillMode,
) -> Result<Prepared, RunError> {
    let (env_src, env) = super::load_env(env_file)?;
    let name = match mode {
        DrillMode::Readiness => Some("drill-readiness"),
        DrillMode::Isolated => {
            let problems = drill::settings_problems(&env);
            if !problems.is_empty() {
                return Err(RunError::Refused(format!(
                    "drctl.yaml's `drill:` section cannot serve an isolated drill: {} (docs/drills.md)",
                    problems.join("; ")
                )));
            }
            Some(drill::ISOLATED_RUNBOOK)
        }
        DrillMode::Full => None,
    };
    let run = match name {
        Some(n) => {
            let path = resolve_runbook(env_file, Some(n))?;
            let (rb_src, rb) = super::load_runbook(&path, &env)?;
            Some(NewRun::new(env_src, env.clone(), rb_src, rb))
        }
        None => None,
    };
    let mut preflight = drill::preflight(ctx, &env).await?;
    if mode == DrillMode::Readiness {
        // Readiness makes nothing: an earlier drill's leftovers do not stand in its way.
        preflight
            .refusals
            .retain(|r| !r.contains("drctl drill cleanup"));
    }
    let mut run = run;
    if let Some(r) = run.as_mut() {
        r.phase_before = Some(preflight.phase.clone());
        r.run_id = Some(super::new_run_id());
    }
    Ok(Prepared {
        mode,
        preflight,
        run,
    })
}

/// Run a prepared drill to its outcome (the caller confirmed; the preflight passed).
pub async fn execute(
    ctx: &Context,
    hooks: &Hooks,
    env_file: &Path,
    p: &Prepared,
    shutdown: CancellationToken,
) -> Result<DrillOutcome, RunError> {
    match (p.mode, &p.run) {
        (DrillMode::Isolated, Some(run)) => drill::isolated(ctx, hooks, run, shutdown).await,
        (DrillMode::Readiness, Some(run)) => readiness(ctx, hooks, env_file, run, shutdown).await,
        (DrillMode::Full, _) => full(ctx, hooks, env_file, shutdown).await,
        _ => Err(RunError::Refused("the drill was not prepared".into())),
    }
}

async fn readiness(
    ctx: &Context,
    hooks: &Hooks,
    env_file: &Path,
    run: &NewRun,
    shutdown: CancellationToken,
) -> Result<DrillOutcome, RunError> {
    let s = run.execute(ctx, hooks, shutdown).await?;
    let records = ctx
        .state
        .journals()
        .await
        .read(&s.run_id)
        .await
        .map(|(r, _)| r)
        .unwrap_or_default();
    let checks = records.iter().find_map(|r| match &r.event {
        crate::journal::Event::StepSucceeded { result, .. } => Some(result["checks"].clone()),
        _ => None,
    });
    // The plan of the failover an outage would start, as observed now, with its predicted RTO.
    let failover = NewRun::prepare(
        env_file,
        &resolve_runbook(env_file, Some(FailoverMode::Unplanned.runbook()))?,
    )?;
    let plan = PlanView::build(&ctx.aws.services(&run.env), &run.env, &failover.plan)
        .await
        .with_prediction(&ctx.state, &run.env, &failover.plan)
        .await;
    let predicted_ok = plan
        .predicted_rto
        .as_ref()
        .is_none_or(|p| p.verdict != crate::report::Verdict::Fail);
    let mut o = DrillOutcome::new(&s.run_id, "readiness");
    o.passed = s.outcome == RunOutcome::Succeeded && predicted_ok;
    o.run_outcome = s.outcome.to_string();
    if s.outcome != RunOutcome::Succeeded {
        o.stopped = s.reason.clone();
    } else if !predicted_ok {
        o.stopped = Some("the predicted RTO misses targets.rto".into());
    }
    o.checks = checks;
    o.plan = Some(plan);
    Ok(o)
}

/// A full drill: planned failover, hold, reprotect, failback. Each part refuses (as its own
/// command would) when the environment is not in the phase it needs.
async fn full(
    ctx: &Context,
    hooks: &Hooks,
    env_file: &Path,
    shutdown: CancellationToken,
) -> Result<DrillOutcome, RunError> {
    let (_, env) = super::load_env(env_file)?;
    let mut o = DrillOutcome::new("", "full");
    let step = |name: &str| -> Result<NewRun, RunError> {
        NewRun::prepare(env_file, &resolve_runbook(env_file, Some(name))?)
    };

    // 1. The planned failover (the primary answers: fence first, promote at lag 0).
    let pre =
        super::failover::preflight(ctx, &env, &env.standby_region, Some(FailoverMode::Planned))
            .await?;
    let super::failover::Preflight::Proceed { topology, .. } = pre else {
        return Err(RunError::Refused(
            "production already runs in the standby region: a full drill starts from `protected`"
                .into(),
        ));
    };
    let mut run = step(FailoverMode::Planned.runbook())?;
    run.phase_before = Some(topology.phase.to_string());
    let s = run.execute(ctx, hooks, shutdown.clone()).await?;
    o.run_id = s.run_id.clone();
    o.runs.push(s.run_id.clone());
    o.rto = s.rto.clone();
    o.rpo = s.rpo.clone();
    if !finished(&s, &mut o) {
        return Ok(o);
    }

    // 2. The hold: the standby serves production for the configured time.
    hooks.progress.notice(&format!(
        "full drill: the standby serves; holding for {} before reprotect and failback",
        humantime::format_duration(env.drill.hold)
    ));
    tokio::select! {
        _ = tokio::time::sleep(env.drill.hold) => {}
        _ = shutdown.cancelled() => {
            o.stopped = Some("stopped by a signal during the hold: production stays in the standby region; `drctl reprotect`, then `drctl failback`".into());
            return Ok(o);
        }
    }

    // 3. Reprotect, 4. failback: each checked against the phase as observed.
    for (name, label) in [
        (REPROTECT_RUNBOOK, "reprotect"),
        (FAILBACK_RUNBOOK, "failback"),
    ] {
        let t = roundtrip::observe(ctx, &env).await;
        let check = if name == REPROTECT_RUNBOOK {
            roundtrip::reprotect_preflight(&t)
        } else {
            roundtrip::failback_preflight(&t, &env, &env.primary_region)
        };
        if let Err(e) = check {
            o.stopped = Some(format!("{label} refused: {e}"));
            return Ok(o);
        }
        let where_now = "production runs in the standby region: `drctl status`, then `drctl reprotect` / `drctl failback` by hand";
        let mut run = match step(name) {
            Ok(r) => r,
            Err(e) => {
                o.stopped = Some(format!("{label} could not start: {e}; {where_now}"));
                return Ok(o);
            }
        };
        run.phase_before = Some(t.phase.to_string());
        let s = match run.execute(ctx, hooks, shutdown.clone()).await {
            Ok(s) => s,
            Err(e) => {
                o.stopped = Some(format!("{label} failed to run: {e}; {where_now}"));
                return Ok(o);
            }
        };
        o.runs.push(s.run_id.clone());
        if !finished(&s, &mut o) {
            return Ok(o);
        }
    }
    let t = roundtrip::observe(ctx, &env).await;
    o.phase_after = Some(t.phase.to_string());
    o.passed = t.phase == Phase::Protected && o.stopped.is_none();
    if t.phase != Phase::Protected {
        o.stopped = Some(format!("the environment ended {}, not protected", t.phase));
    }
    Ok(o)
}

/// Record how a part ended; false when the drill must stop there.
fn finished(s: &RunSummary, o: &mut DrillOutcome) -> bool {
    o.run_outcome = s.outcome.to_string();
    if s.outcome == RunOutcome::Succeeded {
        return true;
    }
    o.stopped = Some(format!(
        "run {} ({}) ended {}: {}; `drctl status` says where the environment is",
        s.run_id,
        s.runbook,
        s.outcome,
        s.reason.as_deref().unwrap_or("")
    ));
    false
}

/// Whether `o` is to be told apart from a failure by a scheduler: a refusal made nothing.
pub fn refused(p: &Prepared) -> Option<String> {
    (!p.preflight.ready()).then(|| p.preflight.refusals.join("; "))
}

/// `Operation::step_ids` of the prepared run, for progress displays.
pub fn step_ids(p: &Prepared) -> Vec<String> {
    p.run.as_ref().map(|r| r.step_ids()).unwrap_or_default()
}
