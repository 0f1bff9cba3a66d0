//! `drctl failover --region REGION`: run the warm-standby failover runbook toward the standby
//! region, refuse any other region, say "already failed over" (without taking the lease or
//! creating a run) when production already runs there, and end with a summary: each step's
//! duration, RTO so far, the RPO estimate and what to check next.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use drctl::config;
use drctl::engine::Plan;
use drctl::exit;
use drctl::journal::file::FileJournalStore;
use drctl::journal::{Event, JournalStore, Outcome, Record};

use super::render::{fmt_ms, table};
use super::session::{start_run_ex, Prepared};
use super::{Global, Mutating, Output, Usage};

pub const DEFAULT_RUNBOOK: &str = "warm-standby-failover";

/// How long the "already failed over?" look may take before we just run the (idempotent) runbook.
const STATE_TIMEOUT: Duration = Duration::from_secs(15);

/// A path as given, else `runbooks/NAME[.yaml]` beside the environment file, in the current
/// directory, in the install's share dir (`<prefix>/share/drctl/runbooks`), and finally in the
/// source tree this binary was built from.
pub fn resolve_runbook(env_file: &Path, given: Option<&str>) -> Result<PathBuf> {
    let name = given.unwrap_or(DEFAULT_RUNBOOK);
    let p = PathBuf::from(name);
    if given.is_some() && p.is_file() {
        return Ok(p);
    }
    let file = if name.ends_with(".yaml") || name.ends_with(".yml") {
        name.to_string()
    } else {
        format!("{name}.yaml")
    };
    let mut dirs: Vec<PathBuf> = vec![];
    if let Some(d) = env_file.parent() {
        dirs.push(if d.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            d.to_path_buf()
        });
    }
    dirs.push(PathBuf::from("."));
    if let Some(prefix) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().and_then(|b| b.parent()).map(Path::to_path_buf))
    {
        dirs.push(prefix.join("share/drctl"));
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let tried: Vec<PathBuf> = dirs
        .iter()
        .map(|d| d.join("runbooks").join(&file))
        .collect();
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    bail!(Usage(format!(
        "runbook `{name}` not found; looked in: {}",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

pub async fn failover(
    g: &Global,
    region: &str,
    runbook: Option<&str>,
    dry_run: bool,
    m: &Mutating,
) -> Result<i32> {
    let (env_src, env) = g.load_env()?;
    if region != env.standby_region {
        let why = if region == env.primary_region {
            format!("{region} is the primary region of `{}`; failing back to it starts with rebuilding a replica there (the failback runbook)", env.name)
        } else {
            format!("{region} is not a region of `{}`", env.name)
        };
        bail!(Usage(format!(
            "refusing to fail over to {region}: {why}. The standby region is {}",
            env.standby_region
        )));
    }
    let path = resolve_runbook(&g.env_file, runbook)?;
    let (rb_src, rb) = config::load_runbook(&path, Some(&env))?;
    let env = Arc::new(env);
    if dry_run {
        let plan = Plan::new(&rb);
        eprintln!(
            "failover to {region} with {} (dry run: nothing will be changed)",
            path.display()
        );
        super::files::print_plan(g, &env, &plan).await?;
        return Ok(exit::OK);
    }

    // Observe first: a second failover must be a no-op that takes no lease and makes no run.
    let aws = drctl::aws::Aws::new(g.aws_settings(&env));
    let state = drctl::readiness::failover_state(&aws, &env, STATE_TIMEOUT).await;
    if state.done() {
        if g.output == Output::Json {
            println!(
                "{}",
                json!({"type": "summary", "already_failed_over": true, "region": region, "state": state})
            );
        } else {
            println!(
                "already failed over to {region}: the standby database is the writer, CloudFront prefers the standby origin \
                 and Route 53 answers with the standby. Nothing to do.\n  readiness of the new primary: drctl check is for the \
                 standby; watch the app at {}",
                env.route53.as_ref().and_then(|r| r.public_url.clone()).unwrap_or_else(|| "its public name".into())
            );
        }
        return Ok(exit::OK);
    }
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

    let env = Arc::try_unwrap(env).unwrap_or_else(|a| (*a).clone());
    let state_dir = g.state_dir(Some(&env));
    let (run_id, code) = start_run_ex(
        g,
        Prepared {
            env_src,
            env,
            rb_src,
            rb,
        },
        m,
    )
    .await?;
    let store = FileJournalStore::new(&state_dir);
    let (records, _) = store.read(&run_id).await?;
    summary(g, &run_id, &records, region);
    Ok(code)
}

/// The RPO estimate a promote step recorded, if any.
fn rpo_estimate(records: &[Record]) -> Option<f64> {
    records.iter().find_map(|r| match &r.event {
        Event::StepSucceeded { result, .. } => result.get("rpo_estimate_s").and_then(Value::as_f64),
        _ => None,
    })
}

fn summary(g: &Global, run_id: &str, records: &[Record], region: &str) {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return;
    };
    let rto_ms = (last.at - first.at).num_milliseconds().max(0) as u64;
    let rpo = rpo_estimate(records);
    let mut steps: Vec<(String, String, String)> = vec![];
    let mut warnings = vec![];
    for r in records {
        match &r.event {
            Event::StepSucceeded {
                step,
                outcome,
                duration_ms,
                result,
            } => {
                let mut what = match outcome {
                    Outcome::AlreadyDone => "already done".to_string(),
                    Outcome::Changed => "done".to_string(),
                };
                if let Some(s) = result.get("skipped").and_then(Value::as_str) {
                    what = format!("skipped: {s}");
                }
                steps.push((step.clone(), what, fmt_ms(*duration_ms)));
            }
            Event::StepFailed {
                step,
                error,
                retry_in_ms: None,
                ..
            } => steps.push((step.clone(), format!("FAILED: {error}"), "-".into())),
            Event::StepSkipped { step, reason, .. } => {
                steps.push((step.clone(), format!("skipped: {reason}"), "-".into()))
            }
            Event::Warning { step, message } => warnings.push(format!(
                "{}{message}",
                step.as_ref().map(|s| format!("{s}: ")).unwrap_or_default()
            )),
            _ => {}
        }
    }
    let finished = records.iter().rev().find_map(|r| match &r.event {
        Event::RunFinished { status, .. } => Some(status.to_string()),
        Event::Paused { .. } => Some("paused".into()),
        _ => None,
    });
    if g.output == Output::Json {
        println!(
            "{}",
            json!({
                "type": "failover_summary", "run_id": run_id, "region": region, "status": finished,
                "rto_so_far_s": rto_ms as f64 / 1000.0, "rpo_estimate_s": rpo,
                "steps": steps.iter().map(|(s, w, d)| json!({"step": s, "result": w, "duration": d})).collect::<Vec<_>>(),
                "warnings": warnings,
            })
        );
        return;
    }
    println!(
        "\nFailover to {region}: run {run_id} {}",
        finished.as_deref().unwrap_or("did not finish")
    );
    let mut t = table(&["step", "result", "took"]);
    for (s, w, d) in &steps {
        t.add_row(vec![s.clone(), w.clone(), d.clone()]);
    }
    println!("{t}");
    println!(
        "RTO so far: {} (from run start to its last event)",
        fmt_ms(rto_ms)
    );
    match rpo {
        Some(s) => println!("RPO estimate: {s:.0}s of writes (replica lag when it was promoted)"),
        None => println!("RPO estimate: unknown (no promotion recorded lag in this run)"),
    }
    for w in &warnings {
        println!("WARNING {w}");
    }
    println!(
        "Next: check the app from outside (its public name and CloudFront); keep the old primary fenced until a failback; \
         rebuild a replica in the old primary region before failing back; details: drctl status {run_id}"
    );
}
