//! `drctl failover --region REGION [--mode planned|unplanned]`: confirm and run the planned
//! (switchover) or unplanned failover runbook, then a summary: each step's duration, RTO so
//! far, the RPO estimate and what to check next. The region guard, the "already failed over"
//! look and the choice of mode are the library's preflight.

use anyhow::Result;
use serde_json::json;

use drctl::exit;
use drctl::run::failover::{dry_run_preflight, preflight, resolve_runbook, Preflight};
use drctl::run::roundtrip::Mode;

use super::{FailoverMode, Global, Mutating, Output};

/// What the operator asked `drctl failover` for.
pub struct Asked<'a> {
    pub region: &'a str,
    pub runbook: Option<&'a str>,
    pub dry_run: bool,
    pub mode: Option<FailoverMode>,
    pub abandon_unfinished: bool,
    /// `--dry-run --out FILE`: save the plan.
    pub out: Option<&'a std::path::Path>,
    /// `--plan FILE`: run exactly a saved plan.
    pub plan: Option<&'a std::path::Path>,
}

pub async fn failover(g: &Global, a: Asked<'_>, m: &Mutating) -> Result<i32> {
    let Asked {
        region,
        runbook,
        dry_run,
        mode,
        abandon_unfinished,
        out,
        plan,
    } = a;
    let (env_src, env) = g.load_env()?;
    drctl::run::failover::check_region(&env, region)?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    if !dry_run {
        clear_unfinished(g, &ctx, &env.name, region, abandon_unfinished, m).await?;
    }
    let asked = mode.map(|m| match m {
        FailoverMode::Planned => Mode::Planned,
        FailoverMode::Unplanned => Mode::Unplanned,
    });

    // Observe first: a second failover must be a no-op that takes no lease and makes no run.
    let looked = if dry_run {
        for (id, what) in drctl::run::unfinished_runs(&ctx, &env.name).await? {
            super::files::say(&format!(
                "note: run {id} has not finished ({what}); a failover would refuse until it is resumed, rolled back or abandoned (`drctl abandon {id} --reason TEXT`, or `--abandon-unfinished`)"
            ));
        }
        dry_run_preflight(&ctx, &env, region, asked).await?
    } else {
        preflight(&ctx, &env, region, asked).await?
    };
    let (mode, why, phase) = match looked {
        Preflight::AlreadyDone(t) if !dry_run => {
            if g.output == Output::Json {
                println!(
                    "{}",
                    json!({"type": "summary", "already_failed_over": true, "region": region, "environment": t})
                );
            } else {
                println!(
                    "already failed over to {region}: the environment is `{}` with production in {}. Nothing to do.\n  watch the app at {}",
                    t.phase,
                    t.active.as_deref().unwrap_or("?"),
                    env.route53.as_ref().and_then(|r| r.public_url.clone()).unwrap_or_else(|| "its public name".into())
                );
                for n in &t.next {
                    println!("  next: {n}");
                }
            }
            return Ok(exit::OK);
        }
        Preflight::AlreadyDone(t) => (
            Mode::Unplanned,
            "already failed over".to_string(),
            t.phase.to_string(),
        ),
        Preflight::Proceed {
            mode,
            why,
            topology,
        } => (mode, why, topology.phase.to_string()),
    };
    let intent = drctl::run::saved_plan::FailoverIntent {
        region: region.to_string(),
        mode: mode.to_string(),
        phase: phase.clone(),
    };
    let (mut run, path) = match plan {
        // Exactly the saved plan, and only while the world is the one it was made in.
        Some(file) => {
            let saved = drctl::run::saved_plan::SavedPlan::read(file)?;
            if saved.failover.is_none() {
                return Err(super::Usage(format!(
                    "{} is not a failover plan: `drctl run --plan {}` runs it",
                    file.display(),
                    file.display()
                ))
                .into());
            }
            let run = saved.new_run(env_src, env.clone())?;
            let now = g.observe_plan(&run).await;
            let moved = saved.differences(&now, Some(&intent));
            if !moved.is_empty() {
                return Err(super::Usage(format!(
                    "the plan {} (made {} by {}) no longer matches what is observed now; nothing was changed:\n  {}\nmake a new plan: drctl failover --region {region} --dry-run --out {}",
                    file.display(),
                    saved.created_at.format("%Y-%m-%d %H:%M UTC"),
                    saved.created_by,
                    moved.join("\n  "),
                    file.display()
                ))
                .into());
            }
            let path = std::path::PathBuf::from(&saved.runbook.path);
            (run, path)
        }
        None => {
            let shipped = drctl::run::failover::shipped_for(&env, mode.runbook());
            let path = resolve_runbook(&g.env_file, Some(runbook.unwrap_or(&shipped)))?;
            (super::run::prepare(g, &path)?, path)
        }
    };
    run.phase_before = Some(phase);
    run.purpose = Some(format!(
        "production {} -> {region}, {mode}",
        env.primary_region
    ));
    if dry_run {
        super::files::say(&format!("failover to {region}, {mode}: {why}"));
        super::files::say(&format!(
            "with {} (dry run: nothing will be changed)",
            path.display()
        ));
        let view = super::files::print_plan(g, &run).await?;
        if let Some(out) = out {
            super::files::save_plan(&run, &view, Some(intent), out)?;
        }
        return Ok(exit::OK);
    }
    eprintln!(
        "failover to {region}, {mode}: {why}\n  with {}",
        path.display()
    );
    let s = super::run::start(g, &ctx, &run, m).await?;
    Ok(super::run::finish_as(
        g,
        &s,
        super::run::failover_ending(&s, region),
    ))
}

/// Unfinished runs stand in a failover's way. With --abandon-unfinished (or a yes at the
/// terminal) each is abandoned first, with what it leaves changed listed; otherwise the
/// preflight refuses and says how to finish or close them.
async fn clear_unfinished(
    g: &Global,
    ctx: &drctl::run::Context,
    env: &str,
    region: &str,
    asked: bool,
    m: &Mutating,
) -> Result<()> {
    // Offered unasked only where someone can answer, and never over --yes.
    if !asked && (m.yes || !super::is_tty()) {
        return Ok(());
    }
    let open = drctl::run::unfinished_runs(ctx, env).await?;
    let reason = format!("superseded by `drctl failover --region {region}`");
    let mut runs = vec![];
    for (id, _) in &open {
        let r = drctl::run::Abandon::load(ctx, id, &reason).await?;
        // An earlier failover that acted is finished (`drctl resume`), never abandoned here:
        // it may have promoted, and a new failover would not know.
        let failover = [Mode::Planned.runbook(), Mode::Unplanned.runbook()].contains(&r.runbook());
        if r.left_changed.is_empty() || !failover {
            runs.push(r);
        }
    }
    if runs.is_empty() {
        return Ok(());
    }
    let mut question = format!(
        "{} unfinished run(s) stand in the way of this failover. Abandon them (nothing more of them runs, nothing is undone) and fail over?",
        runs.len()
    );
    for r in &runs {
        question.push_str(&format!("\n\n{}", drctl::run::Operation::describe(r)));
    }
    if !asked {
        // On a terminal without the flag: offer it; a "no" leaves the preflight to refuse.
        if super::confirm(&question, false).is_err() {
            return Ok(());
        }
    } else {
        super::confirm(&question, m.yes)?;
    }
    for r in &runs {
        let hooks = super::run::hooks(g, m, &[])?;
        let s = super::run::with_lease(m, hooks, |h| async move {
            drctl::run::Operation::execute(r, ctx, &h, tokio_util::sync::CancellationToken::new())
                .await
        })
        .await?;
        eprintln!(
            "run {} ({}) {}",
            r.run_id,
            r.runbook(),
            s.reason.as_deref().unwrap_or("abandoned")
        );
    }
    Ok(())
}
