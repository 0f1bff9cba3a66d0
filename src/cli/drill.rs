//! `drctl drill`: game-day drills from the terminal (docs/drills.md). The library runs them
//! (`drctl::run::drill`); this file asks, shows and maps the ending to an exit code.

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::{confirm, Global, Mutating, Output};
use drctl::config::schedule::DrillMode;
use drctl::exit;
use drctl::run::drill::{self, Cleanup, DrillOutcome, Preflight};
use drctl::run::drill_modes;

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
pub async fn drill(g: &Global, mode: Mode, m: &Mutating, approve_production: bool) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let mut ctx = g.context(g.state_dir(Some(&env))?);
    let dmode = match mode {
        Mode::Readiness => DrillMode::Readiness,
        Mode::Isolated => DrillMode::Isolated,
        Mode::Full => DrillMode::Full,
    };
    // The lease says it is a drill, and which: a watch's failover waits for one that yields.
    ctx.command = format!("{} {}", ctx.command, drill::lease_label(dmode.as_str()));
    let p = drill_modes::prepare(&ctx, &g.env_file, dmode).await?;
    let pre = &p.preflight;
    if g.output != Output::Json {
        print_preflight(pre);
    }
    if !pre.ready() {
        if g.output == Output::Json {
            println!(
                "{}",
                serde_json::json!({"type": "drill", "mode": dmode.to_string(), "refused": pre.refusals, "preflight": pre})
            );
        }
        for r in &pre.refusals {
            eprintln!("refused: {r}");
        }
        eprintln!("nothing was created or changed");
        return Ok(exit::NOT_READY);
    }
    let standby_db = env
        .resources(drctl::config::env::Role::Standby)
        .database
        .as_ref()
        .map(|d| d.instance_id.clone())
        .unwrap_or_else(|| "the standby database".into());
    let mut m = m.clone();
    match dmode {
        DrillMode::Readiness => {}
        DrillMode::Isolated => confirm(
            &format!(
                "Isolated drill in {}: restore the newest snapshot of {standby_db} into a drill database, launch {} instance(s) behind {}, prove the app serves, then remove all of it. Production is not touched. Go?",
                env.standby_region,
                env.drill.instances,
                env.drill.load_balancer.as_ref().map(|l| l.url.as_str()).unwrap_or("?"),
            ),
            m.yes,
        )?,
        DrillMode::Full => {
            // --yes is not enough: a full drill moves production twice.
            let what = format!(
                "A FULL drill moves PRODUCTION: a planned failover of `{}` from {} to {} (fenced, promoted: irreversible), {} with the standby serving, reprotect, then failback to {}.",
                env.name,
                env.primary_region,
                env.standby_region,
                humantime::format_duration(env.drill.hold),
                env.primary_region
            );
            if !approve_production {
                if !super::is_tty() {
                    return Err(super::Declined(format!(
                        "{what}\nre-run with --approve-production if you mean it (--yes alone does not approve a full drill)"
                    ))
                    .into());
                }
                eprint!("{what}\nType the environment name `{}` to approve: ", env.name);
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                if line.trim() != env.name {
                    return Err(super::Declined("not approved; nothing was changed".into()).into());
                }
            }
            m.yes = true;
            m.approve_irreversible = true;
        }
    }
    let hooks = super::run::hooks(g, &m, &drill_modes::step_ids(&p))?;
    let shutdown = CancellationToken::new();
    super::run::on_signals(
        shutdown.clone(),
        "\nstopping the drill: running steps stop at a safe point, then everything it made is removed (signal again to quit at once; `drctl drill cleanup` removes what remains)",
        Some("quitting now: run `drctl drill cleanup` to remove what the drill made"),
    );
    let out = drill_modes::execute(&ctx, &hooks, &g.env_file, &p, shutdown).await?;
    // A drill by hand tells the same people a watch would (probes.watch.notifications).
    if let Some(sinks) = env.probes.as_ref().map(|p| &p.watch.notifications) {
        let mut doc = serde_json::to_value(&out).unwrap_or_default();
        doc["type"] = "drill".into();
        drctl::run::agent::notify(sinks, hooks.progress.as_ref(), out.headline(), doc).await;
    }
    Ok(show(g, &out))
}

/// `drctl drill --list`: each schedule and its next run.
pub fn list(g: &Global) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let state_dir = g.state_dir(Some(&env))?;
    let state =
        drctl::schedule::ScheduleState::load(&drctl::schedule::ScheduleState::path_in(&state_dir))?;
    let rows = drctl::schedule::list(&env.drill.schedules, &state, chrono::Utc::now());
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        println!(
            "no drill schedules in {} (drill.schedules: docs/drills-schedules.md)",
            g.env_file.display()
        );
    } else {
        println!("{}", drctl::schedule::render_table(&rows));
    }
    Ok(exit::OK)
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
    if !o.runs.is_empty() {
        println!("runs: {}", o.runs.join(", "));
    }
    if let Some(p) = &o.phase_after {
        println!("phase after: {p}");
    }
    if let Some(checks) = o.checks.as_ref().and_then(|c| c.as_array()) {
        for c in checks {
            println!(
                "check {}: {} {}",
                c["name"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?"),
                c["reason"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(p) = &o.plan {
        println!(
            "failover plan ({}): {} steps; critical path {}",
            p.runbook,
            p.steps.len(),
            p.critical_path.join(" -> ")
        );
        for s in &p.steps {
            println!("  {}: {}", s.id, s.intended);
        }
        if let Some(r) = &p.predicted_rto {
            println!(
                "predicted RTO: {} {} (target {})",
                drctl::report::svg::dur(r.predicted_ms),
                r.verdict.word(),
                drctl::report::svg::dur(r.target_ms)
            );
        }
    }
    if let Some(r) = &o.rto {
        println!(
            "RTO: {} {} (target {})",
            r.measured_ms
                .map(drctl::report::svg::dur)
                .unwrap_or_else(|| "not measured".into()),
            r.verdict.word(),
            drctl::report::svg::dur(r.target_ms)
        );
    }
    if let Some(r) = &o.rpo {
        println!(
            "RPO: {} {} (target {:.0}s)",
            r.measured_s
                .map(|v| format!("{v:.0}s"))
                .unwrap_or_else(|| "not measured".into()),
            r.verdict.word(),
            r.target_s
        );
    }
    if o.mode == "isolated" {
        println!("time to a writable database: {}", fmt(o.database_s));
        println!("time to serving compute:     {}", fmt(o.serving_s));
    }
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
    if o.mode == "isolated" {
        println!("instance-minutes: {:.1}", o.instance_minutes);
    }
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
