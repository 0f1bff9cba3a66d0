//! `drctl failover --region REGION`: confirm and run the warm-standby failover runbook, then a
//! summary: each step's duration, RTO so far, the RPO estimate and what to check next. The
//! region guard and the "already failed over" look are the library's preflight.

use anyhow::Result;
use serde_json::json;

use drctl::exit;
use drctl::run::failover::{preflight, resolve_runbook, Preflight};
use drctl::run::summary::{RunSummary, StepResult};
use drctl::run::NewRun;

use super::render::{fmt_ms, table};
use super::{Global, Mutating, Output};

pub async fn failover(
    g: &Global,
    region: &str,
    runbook: Option<&str>,
    dry_run: bool,
    m: &Mutating,
) -> Result<i32> {
    let (env_src, env) = g.load_env()?;
    drctl::run::failover::check_region(&env, region)?;
    let path = resolve_runbook(&g.env_file, runbook)?;
    let (rb_src, rb) = drctl::run::load_runbook(&path, &env)?;
    let run = NewRun::new(env_src, env, rb_src, rb);
    if dry_run {
        eprintln!(
            "failover to {region} with {} (dry run: nothing will be changed)",
            path.display()
        );
        super::files::print_plan(g, &run).await?;
        return Ok(exit::OK);
    }
    let ctx = g.context(g.state_dir(Some(&run.env)));

    // Observe first: a second failover must be a no-op that takes no lease and makes no run.
    let state = match preflight(&ctx, &run.env, region).await? {
        Preflight::AlreadyDone(state) => {
            if g.output == Output::Json {
                println!(
                    "{}",
                    json!({"type": "summary", "already_failed_over": true, "region": region, "state": state})
                );
            } else {
                println!(
                    "already failed over to {region}: the standby database is the writer, CloudFront prefers the standby origin \
                     and Route 53 answers with the standby. Nothing to do.\n  watch the app at {}",
                    run.env.route53.as_ref().and_then(|r| r.public_url.clone()).unwrap_or_else(|| "its public name".into())
                );
            }
            return Ok(exit::OK);
        }
        Preflight::Proceed(state) => state,
    };
    let show = |r: &Result<bool, String>| match r {
        Ok(true) => "yes".to_string(),
        Ok(false) => "no".to_string(),
        Err(e) => format!("unknown ({e})"),
    };
    eprintln!(
        "failover to {region} with {}\n  now: standby database writer: {}; CloudFront prefers standby: {}; Route 53 answers standby: {}",
        path.display(),
        show(&state.database_writer),
        show(&state.cloudfront_prefers_standby),
        show(&state.dns_answers_standby)
    );
    let s = super::run::start(g, &ctx, &run, m).await?;
    let code = super::run::finish(g, &s);
    summary(g, &s, region);
    Ok(code)
}

fn result_text(r: &StepResult) -> String {
    match r {
        StepResult::Done => "done".into(),
        StepResult::AlreadyDone => "already done".into(),
        StepResult::DoneSkipped { why } => format!("skipped: {why}"),
        StepResult::Skipped { reason } => format!("skipped: {reason}"),
        StepResult::Failed { error } => format!("FAILED: {error}"),
    }
}

fn summary(g: &Global, s: &RunSummary, region: &str) {
    let status = s.outcome;
    let steps: Vec<(String, String, String)> = s
        .steps
        .iter()
        .map(|l| {
            (
                l.id.clone(),
                result_text(&l.result),
                l.duration_ms.map(fmt_ms).unwrap_or_else(|| "-".into()),
            )
        })
        .collect();
    if g.output == Output::Json {
        println!(
            "{}",
            json!({
                "type": "failover_summary", "run_id": s.run_id, "region": region, "status": status,
                "rto_so_far_s": s.elapsed_ms as f64 / 1000.0, "rpo_estimate_s": s.rpo_s,
                "steps": steps.iter().map(|(s, w, d)| json!({"step": s, "result": w, "duration": d})).collect::<Vec<_>>(),
                "warnings": s.warnings,
            })
        );
        return;
    }
    println!(
        "\nFailover to {region}: run {} {}",
        s.run_id,
        serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(|t| t.replace('_', " ")))
            .unwrap_or_default()
    );
    let mut t = table(&["step", "result", "took"]);
    for (s, w, d) in &steps {
        t.add_row(vec![s.clone(), w.clone(), d.clone()]);
    }
    println!("{t}");
    println!(
        "RTO so far: {} (from run start to its last event)",
        fmt_ms(s.elapsed_ms)
    );
    match s.rpo_s {
        Some(r) => println!("RPO estimate: {r:.0}s of writes (replica lag when it was promoted)"),
        None => println!("RPO estimate: unknown (no promotion recorded lag in this run)"),
    }
    for w in &s.warnings {
        println!("WARNING {w}");
    }
    println!(
        "Next: check the app from outside (its public name and CloudFront); keep the old primary fenced; \
         details: drctl status {}",
        s.run_id
    );
}
