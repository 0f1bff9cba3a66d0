//! The environment's round trip from the terminal: `status` (no run: the environment as
//! observed), `fence`, `reprotect`, `failback`. The library decides (`drctl::run::roundtrip`);
//! this file asks and shows.

use anyhow::Result;

use drctl::exit;
use drctl::run::failover::resolve_runbook;
use drctl::run::roundtrip::{
    failback_preflight, fence_preflight, observe, reprotect_preflight, FenceNeed, FAILBACK_RUNBOOK,
    FENCE_RUNBOOK, REPROTECT_RUNBOOK,
};
use drctl::run::{NewRun, RunError};
use drctl::topology::Topology;

use super::render::{paint, status_word, table};
use super::{Global, Mutating, Output};

/// `drctl status` without a run: the environment as observed from AWS.
pub async fn status(g: &Global) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    let t = observe(&ctx, &env).await;
    // What earlier drills left behind (found by tag; only where drills are configured).
    let left = match &env.drill.load_balancer {
        Some(_) => tokio::time::timeout(
            std::time::Duration::from_secs(10),
            drctl::run::drill::find_leftovers(&ctx, &env, None),
        )
        .await
        .ok()
        .and_then(Result::ok),
        None => None,
    };
    if g.output == Output::Json {
        let mut v = serde_json::to_value(&t)?;
        if let Some(l) = &left {
            v["drill_leftovers"] = serde_json::to_value(l)?;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        show(&t);
        if let Some(l) = left.filter(|l| !l.is_empty()) {
            let runs: std::collections::BTreeSet<&str> = l.iter().map(|x| x.run.as_str()).collect();
            println!(
                "{} {} resource(s) left by drill run(s) {}: `drctl drill cleanup` removes them",
                status_word(drctl::readiness::Status::Warn),
                l.len(),
                runs.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(t.exit_code())
}

/// The environment, for people.
pub fn show(t: &Topology) {
    println!(
        "environment `{}`: {} ({})",
        t.env,
        paint(&t.phase.to_string().to_uppercase(), t.phase.dangerous()),
        t.where_production()
    );
    let mut tb = table(&[
        "region",
        "role",
        "serves",
        "database",
        "takes writes",
        "lag",
        "compute",
    ]);
    for row in t.rows() {
        tb.add_row(row.to_vec());
    }
    println!("{tb}");
    for line in t.edge_lines() {
        println!("{line}");
    }
    for f in &t.findings {
        println!("{} {}", status_word(f.status), f.text);
    }
    for n in &t.next {
        println!("next: {n}");
    }
}

/// `drctl fence`: complete an outstanding fence.
pub async fn fence(g: &Global, m: &Mutating) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    let t = observe(&ctx, &env).await;
    match fence_preflight(&t)? {
        FenceNeed::Nothing(why) => {
            println!("nothing to fence: {why}");
            return Ok(exit::OK);
        }
        FenceNeed::Fence => {}
    }
    let mut run = shipped(g, FENCE_RUNBOOK)?;
    run.phase_before = Some(t.phase.to_string());
    run.purpose = Some(format!(
        "make the old writer{} read-only; production stays where it is",
        t.outstanding_fences
            .first()
            .map(|f| format!(" {} in {}", f.instance_id, f.region))
            .unwrap_or_default()
    ));
    let s = super::run::start(g, &ctx, &run, m).await?;
    Ok(super::run::finish_as(
        g,
        &s,
        super::run::ending_for(&run.rb.name, &env, &s),
    ))
}

/// The shipped runbook `name`, read and checked against the environment.
fn shipped(g: &Global, name: &str) -> Result<NewRun> {
    let (_, env) = g.load_env()?;
    let name = drctl::run::failover::shipped_for(&env, name);
    let path = resolve_runbook(&g.env_file, Some(&name))?;
    super::run::prepare(g, &path)
}

/// A round-trip command: the shipped runbook `name`, its plan for `--dry-run`, else the
/// preflight on the environment as observed, the run, and the phase it left.
async fn round_trip(
    g: &Global,
    name: &str,
    dry_run: bool,
    m: &Mutating,
    purpose: String,
    preflight: impl FnOnce(&Topology, &drctl::config::Environment) -> Result<String, RunError>,
) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let mut run = shipped(g, name)?;
    if dry_run {
        eprintln!("{name} (dry run: nothing will be changed)");
        super::files::print_plan(g, &run).await?;
        return Ok(exit::OK);
    }
    let ctx = g.context(g.state_dir(Some(&env))?);
    let before = observe(&ctx, &env).await;
    eprintln!("{}", preflight(&before, &env)?);
    run.phase_before = Some(before.phase.to_string());
    run.purpose = Some(purpose);
    let s = super::run::start(g, &ctx, &run, m).await?;
    let code = super::run::finish_as(g, &s, super::run::ending_for(&run.rb.name, &env, &s));
    if g.output == Output::Text {
        eprintln!();
        show(&observe(&ctx, &env).await);
    }
    Ok(code)
}

/// `drctl reprotect`.
pub async fn reprotect(g: &Global, dry_run: bool, m: &Mutating) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let purpose = format!(
        "production stays in {}; a new replica of its writer in {}",
        env.standby_region, env.primary_region
    );
    round_trip(g, REPROTECT_RUNBOOK, dry_run, m, purpose, |t, _| {
        reprotect_preflight(t)?;
        Ok(format!(
            "reprotect: {} serves; a new replica of its writer will be built in {}",
            t.standby.region, t.primary.region
        ))
    })
    .await
}

/// `drctl failback --region R`.
pub async fn failback(g: &Global, region: &str, dry_run: bool, m: &Mutating) -> Result<i32> {
    let (_, env) = g.load_env()?;
    drctl::run::roundtrip::failback_region(&env, region)?;
    let purpose = format!("production {} -> {region}", env.standby_region);
    round_trip(g, FAILBACK_RUNBOOK, dry_run, m, purpose, |t, env| {
        failback_preflight(t, env, region)?;
        Ok(format!(
            "failback to {region}: planned; {} is fenced first and nothing is promoted before its replica has caught up",
            t.standby.region
        ))
    })
    .await
}
