//! `drctl drill`: game-day drills from the terminal (docs/drills.md). The library runs them
//! (`drctl::run::drill`); this file asks, shows and maps the ending to an exit code.

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::{confirm, Global, Mutating, Output};
use drctl::exit;
use drctl::run::drill::{self, Cleanup, DrillOutcome, Preflight};
use drctl::run::failover::resolve_runbook;
use drctl::run::NewRun;

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Changes nothing: checks, the failover plan, the predicted RTO.
    Readiness,
    /// A copy of the app beside production in the standby region, proven and torn down.
    Isolated,
    /// A planned failover, a hold, reprotect and failback (needs --approve-production).
    Full,
}

fn print_preflight(p: &Preflight) {
    println!("phase: {}", p.phase);
    for (name, ok, detail) in &p.primary {
        println!(
            "primary probe {name}: {} ({detail})",
            if *ok { "healthy" } else { "FAILING" }
        );
    }
    for l in &p.leftovers {
        println!("leftover of drill {}: {} {}", l.run, l.kind, l.id);
    }
}

/// `drctl drill --mode M`.
pub async fn drill(g: &Global, mode: Mode, m: &Mutating) -> Result<i32> {
    let (env_src, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    match mode {
        Mode::Isolated => {}
        Mode::Readiness | Mode::Full => {
            return Err(super::Usage(format!(
                "--mode {} is not built yet: `drctl check` and `drctl failover --dry-run` give readiness; run the round trip (failover, reprotect, failback) by hand for a full drill",
                if mode == Mode::Full { "full" } else { "readiness" }
            ))
            .into())
        }
    }
    if env.drill.load_balancer.is_none() {
        return Err(super::Usage(
            "an isolated drill needs `drill.load_balancer` in drctl.yaml: an ALB in the standby region with no listeners (see docs/drills.md)".into(),
        )
        .into());
    }
    let path = resolve_runbook(&g.env_file, Some(drill::ISOLATED_RUNBOOK))?;
    let (rb_src, rb) = drctl::run::load_runbook(&path, &env)?;
    let mut run = NewRun::new(env_src, env.clone(), rb_src, rb);
    let pre = drill::preflight(&ctx, &env).await?;
    if g.output != Output::Json {
        print_preflight(&pre);
    }
    if !pre.ready() {
        if g.output == Output::Json {
            println!(
                "{}",
                serde_json::json!({"type": "drill", "refused": pre.refusals, "preflight": pre})
            );
        }
        for r in &pre.refusals {
            eprintln!("refused: {r}");
        }
        eprintln!("nothing was created");
        return Ok(exit::NOT_READY);
    }
    run.phase_before = Some(pre.phase.clone());
    confirm(
        &format!(
            "Isolated drill in {}: restore the newest snapshot of {} into a drill database, launch {} instance(s) behind {}, prove the app serves, then remove all of it. Production is not touched. Go?",
            env.standby_region,
            env.resources(drctl::config::env::Role::Standby)
                .database
                .as_ref()
                .map(|d| d.instance_id.as_str())
                .unwrap_or("the standby database"),
            env.drill.instances,
            env.drill.load_balancer.as_ref().map(|l| l.url.as_str()).unwrap_or("?"),
        ),
        m.yes,
    )?;
    let hooks = super::run::hooks(g, m, &drctl::run::Operation::step_ids(&run))?;
    let shutdown = CancellationToken::new();
    super::run::on_signals(
        shutdown.clone(),
        "\nstopping the drill: running steps stop at a safe point, then everything it made is removed (signal again to quit at once; `drctl drill cleanup` removes what remains)",
        Some("quitting now: run `drctl drill cleanup` to remove what the drill made"),
    );
    let out = drill::isolated(&ctx, &hooks, &run, shutdown).await?;
    Ok(show(g, &out))
}

fn show(g: &Global, o: &DrillOutcome) -> i32 {
    let code = if !o.leftovers.is_empty() {
        exit::LEFTOVERS
    } else if o.passed {
        exit::OK
    } else {
        exit::FAILED
    };
    if g.output == Output::Json {
        let mut v = serde_json::to_value(o).unwrap_or_default();
        v["type"] = "drill".into();
        v["exit_code"] = code.into();
        println!("{v}");
        return code;
    }
    let fmt = |s: Option<f64>| s.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "-".into());
    println!(
        "\nDrill {} ({}): {}",
        o.run_id,
        o.mode,
        if o.passed { "PASSED" } else { "FAILED" }
    );
    if let Some(w) = &o.stopped {
        println!("stopped: {w}");
    }
    println!("run: {}", o.run_outcome);
    println!("time to a writable database: {}", fmt(o.database_s));
    println!("time to serving compute:     {}", fmt(o.serving_s));
    if !o.resources.is_empty() {
        let mut t = super::render::table(&["resource", "id", "created", "removed"]);
        let at = |d: &Option<chrono::DateTime<chrono::Utc>>| {
            d.map(|d| d.format("%H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into())
        };
        for r in &o.resources {
            t.add_row(vec![
                r.kind.clone(),
                r.id.clone(),
                at(&r.created_at),
                at(&r.removed_at),
            ]);
        }
        println!("{t}");
    }
    println!("instance-minutes: {:.1}", o.instance_minutes);
    for e in &o.teardown_errors {
        println!("teardown: {e}");
    }
    if o.leftovers.is_empty() {
        println!("left behind: nothing");
    } else {
        for l in &o.leftovers {
            println!("LEFT BEHIND: {} {}", l.kind, l.id);
        }
        println!("Next: drctl drill cleanup");
    }
    println!("Report: drctl report {id} --out {id}.html", id = o.run_id);
    code
}

/// `drctl drill cleanup`.
pub async fn cleanup(g: &Global, m: &Mutating) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    let found = drill::find_leftovers(&ctx, &env, None).await?;
    if g.output != Output::Json {
        if found.is_empty() {
            println!("no drill resources found by tag in {}", env.standby_region);
        }
        for l in &found {
            println!(
                "drill {}: {} {}{}",
                l.run,
                l.kind,
                l.id,
                l.state
                    .as_ref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            );
        }
    }
    if !found.is_empty() {
        confirm(
            &format!("Remove these {} drill resource(s)?", found.len()),
            m.yes,
        )?;
    }
    let hooks = super::run::hooks(g, m, &[])?;
    let c: Cleanup = drill::cleanup(&ctx, &hooks, &env).await?;
    let code = if c.remaining.is_empty() {
        exit::OK
    } else {
        exit::LEFTOVERS
    };
    if g.output == Output::Json {
        let mut v = serde_json::to_value(&c).unwrap_or_default();
        v["type"] = "drill_cleanup".into();
        println!("{v}");
        return Ok(code);
    }
    for r in &c.closed_runs {
        println!("closed drill run {r}");
    }
    for e in &c.errors {
        println!("error: {e}");
    }
    if c.remaining.is_empty() {
        println!("removed {} resource(s); nothing is left", c.found.len());
    } else {
        for l in &c.remaining {
            println!("STILL THERE: {} {}", l.kind, l.id);
        }
    }
    Ok(code)
}
