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
use drctl::run::NewRun;
use drctl::topology::Topology;

use super::render::{paint, status_word, table};
use super::{Global, Mutating, Output};

/// `drctl status` without a run: the environment as observed from AWS.
pub async fn status(g: &Global) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env)));
    let t = observe(&ctx, &env).await;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        show(&t);
    }
    Ok(t.exit_code())
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

/// The environment, for people.
pub fn show(t: &Topology) {
    println!(
        "environment `{}`: {}{}",
        t.env,
        paint(&t.phase.to_string().to_uppercase(), t.phase.dangerous()),
        t.active
            .as_ref()
            .map(|a| format!(" (production in {a})"))
            .unwrap_or_default()
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
    for v in [&t.primary, &t.standby] {
        let serves = t.active.as_deref() == Some(v.region.as_str());
        let db = match (&v.database, v.reachable) {
            (_, false) => "UNREACHABLE".to_string(),
            (Some(d), _) => format!("{} {} ({})", d.id, d.role, d.status),
            (None, _) => "none".into(),
        };
        let compute = v
            .asgs
            .iter()
            .map(|a| format!("{} {}/{}", a.tier, a.in_service, a.desired))
            .collect::<Vec<_>>()
            .join(", ");
        tb.add_row(vec![
            v.region.clone(),
            v.role.to_string(),
            if serves { "yes".into() } else { "".into() },
            db,
            yes_no(v.database.as_ref().and_then(|d| d.writable)).into(),
            v.database
                .as_ref()
                .and_then(|d| d.lag_s)
                .map(|l| format!("{l:.0}s"))
                .unwrap_or_default(),
            compute,
        ]);
    }
    println!("{tb}");
    match &t.dns {
        Ok(d) => println!(
            "Route 53: answers {} ({}){}",
            d.region.as_deref().unwrap_or("?"),
            d.answer.join(", "),
            if d.held_on_standby {
                "; held on the standby (records swapped)"
            } else {
                ""
            }
        ),
        Err(e) => println!("Route 53: unknown ({e})"),
    }
    match &t.cdn {
        Ok(c) => println!(
            "CloudFront: first origin {} ({})",
            c.first_origin.as_deref().unwrap_or("?"),
            c.region.as_deref().unwrap_or("?")
        ),
        Err(e) => println!("CloudFront: unknown ({e})"),
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
    let ctx = g.context(g.state_dir(Some(&env)));
    let t = observe(&ctx, &env).await;
    match fence_preflight(&t)? {
        FenceNeed::Nothing(why) => {
            println!("nothing to fence: {why}");
            return Ok(exit::OK);
        }
        FenceNeed::Fence => {}
    }
    let run = shipped(g, FENCE_RUNBOOK)?;
    let s = super::run::start(g, &ctx, &run, m).await?;
    Ok(super::run::finish(g, &s))
}

/// The shipped runbook `name`, read and checked against the environment.
fn shipped(g: &Global, name: &str) -> Result<NewRun> {
    let path = resolve_runbook(&g.env_file, Some(name))?;
    super::run::prepare(g, &path)
}

/// `drctl reprotect`.
pub async fn reprotect(g: &Global, dry_run: bool, m: &Mutating) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let run = shipped(g, REPROTECT_RUNBOOK)?;
    if dry_run {
        eprintln!("reprotect (dry run: nothing will be changed)");
        super::files::print_plan(g, &run).await?;
        return Ok(exit::OK);
    }
    let ctx = g.context(g.state_dir(Some(&env)));
    let t = observe(&ctx, &env).await;
    reprotect_preflight(&t)?;
    eprintln!(
        "reprotect: {} serves; a new replica of its writer will be built in {}",
        t.standby.region, t.primary.region
    );
    let s = super::run::start(g, &ctx, &run, m).await?;
    let code = super::run::finish(g, &s);
    after(g, &ctx, &env).await;
    Ok(code)
}

/// `drctl failback --region R`.
pub async fn failback(g: &Global, region: &str, dry_run: bool, m: &Mutating) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let run = shipped(g, FAILBACK_RUNBOOK)?;
    if dry_run {
        eprintln!("failback to {region} (dry run: nothing will be changed)");
        super::files::print_plan(g, &run).await?;
        return Ok(exit::OK);
    }
    let ctx = g.context(g.state_dir(Some(&env)));
    let t = observe(&ctx, &env).await;
    failback_preflight(&t, &env, region)?;
    eprintln!(
        "failback to {region}: planned; {} is fenced first and nothing is promoted before its replica has caught up",
        t.standby.region
    );
    let s = super::run::start(g, &ctx, &run, m).await?;
    let code = super::run::finish(g, &s);
    after(g, &ctx, &env).await;
    Ok(code)
}

/// The environment after a run, so the operator sees the phase it left.
async fn after(g: &Global, ctx: &drctl::run::Context, env: &drctl::config::Environment) {
    if g.output == Output::Text {
        eprintln!();
        show(&observe(ctx, env).await);
    }
}
