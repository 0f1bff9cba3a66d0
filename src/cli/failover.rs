//! `drctl failover --region REGION [--mode planned|unplanned]`: confirm and run the planned
//! (switchover) or unplanned failover runbook, then a summary: each step's duration, RTO so
//! far, the RPO estimate and what to check next. The region guard, the "already failed over"
//! look and the choice of mode are the library's preflight.

use anyhow::Result;
use serde_json::json;

use drctl::exit;
use drctl::run::failover::{preflight, resolve_runbook, Preflight};
use drctl::run::roundtrip::Mode;
use drctl::run::summary::RunSummary;

use super::run::Ending;
use super::{FailoverMode, Global, Mutating, Output};

pub async fn failover(
    g: &Global,
    region: &str,
    runbook: Option<&str>,
    dry_run: bool,
    mode: Option<FailoverMode>,
    m: &Mutating,
) -> Result<i32> {
    let (_, env) = g.load_env()?;
    drctl::run::failover::check_region(&env, region)?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    let asked = mode.map(|m| match m {
        FailoverMode::Planned => Mode::Planned,
        FailoverMode::Unplanned => Mode::Unplanned,
    });

    // Observe first: a second failover must be a no-op that takes no lease and makes no run.
    let (mode, why, phase) = match preflight(&ctx, &env, region, asked).await? {
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
    let path = resolve_runbook(&g.env_file, Some(runbook.unwrap_or(mode.runbook())))?;
    let mut run = super::run::prepare(g, &path)?;
    run.phase_before = Some(phase);
    if dry_run {
        eprintln!(
            "failover to {region}, {mode}: {why}\n  with {} (dry run: nothing will be changed)",
            path.display()
        );
        super::files::print_plan(g, &run).await?;
        return Ok(exit::OK);
    }
    eprintln!(
        "failover to {region}, {mode}: {why}\n  with {}",
        path.display()
    );
    let s = super::run::start(g, &ctx, &run, m).await?;
    Ok(super::run::finish_as(g, &s, ending(&s, region)))
}

/// The failover's summary: the RTO, the RPO, and what to check next.
fn ending(s: &RunSummary, region: &str) -> Ending {
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
