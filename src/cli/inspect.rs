//! `status RUN`, `history` and `approve`: work from a second terminal while a run holds the
//! lease. The library reads (`drctl::run::inspect`); this file shows.

use anyhow::Result;
use serde_json::json;

use drctl::exit;
use drctl::journal::Operator;
use drctl::run::inspect::{self, phase_text};

use super::render::{fmt_ms, table};
use super::{Global, Output};

pub async fn status(g: &Global, run: &str) -> Result<i32> {
    let store = g.journals().await?;
    let v = inspect::view(store.as_ref(), run).await?;
    let st = &v.state;
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"run": st, "steps": v.steps, "journal_warnings": v.journal_warnings})
            )?
        );
        return Ok(exit::OK);
    }
    for w in &v.journal_warnings {
        eprintln!("note: {w} (the writer may be mid-append)");
    }
    // A damaged journal can still be looked at, but not without saying so.
    if let Ok(chain) = store.verify_chain(&v.state.run_id).await {
        if let Some(b) = &chain.broken {
            eprintln!(
                "{} the journal is not as drctl wrote it: {b} (`drctl verify {}`)",
                super::render::paint("WARNING", true),
                v.state.run_id
            );
        }
    }
    let sha = &st.runbook_sha256[..12.min(st.runbook_sha256.len())];
    println!("run       {}", st.run_id);
    println!(
        "runbook   {} ({}, sha256 {sha})",
        st.runbook_name, st.runbook_path
    );
    println!("env       {}", st.env_name);
    println!("operator  {}", st.operator);
    println!("command   {}", st.command);
    println!(
        "started   {}",
        st.started_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!("last      {}", st.last_at.format("%Y-%m-%d %H:%M:%S UTC"));
    println!("state     {}", phase_text(&st.phase));
    let mut t = table(&["step", "kind", "state", "tries", "took", "approved by"]);
    for s in &v.steps {
        t.add_row(vec![
            s.id.clone(),
            s.kind.clone(),
            s.state.clone(),
            s.attempts.map(|a| a.to_string()).unwrap_or_default(),
            s.took_ms.map(fmt_ms).unwrap_or_default(),
            s.approved_by.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
    for w in &st.warnings {
        println!("warning: {w}");
    }
    if !st.checkpoints.is_empty() {
        let names: Vec<&str> = st.checkpoints.iter().map(|c| c.0.as_str()).collect();
        println!("checkpoints: {}", names.join(", "));
    }
    Ok(exit::OK)
}

pub async fn history(g: &Global, limit: usize) -> Result<i32> {
    let store = g.journals().await?;
    let rows = inspect::history(store.as_ref(), limit).await?;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        println!("no runs yet");
        return Ok(exit::OK);
    }
    let mut t = table(&[
        "run",
        "runbook",
        "env",
        "operator",
        "started (UTC)",
        "took",
        "state",
    ]);
    for r in rows {
        t.add_row(vec![
            r.run_id,
            r.runbook.unwrap_or_default(),
            r.env.unwrap_or_default(),
            r.operator.unwrap_or_default(),
            r.started_at
                .map(|s| s.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
            r.duration_s
                .map(|s| {
                    let s = std::time::Duration::from_secs(s.round() as u64);
                    humantime::format_duration(s).to_string()
                })
                .unwrap_or_default(),
            r.error.or(r.state).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(exit::OK)
}

pub async fn approve(g: &Global, run: &str, step: &str, comment: Option<String>) -> Result<i32> {
    let ctx = g.context_for_changes()?;
    let store = ctx.state.journals().await;
    let op = Operator::current();
    inspect::approve(store.as_ref(), &ctx.state, run, step, &op, comment).await?;
    println!("approved step `{step}` of run {run} as {}; a waiting run continues within a second (a paused one on `drctl resume`)", op.user);
    Ok(exit::OK)
}

/// `drctl retired [--delete --older-than D]`.
pub async fn retired(
    g: &Global,
    delete: bool,
    older_than: std::time::Duration,
    yes: bool,
) -> Result<i32> {
    use drctl::run::retired;
    let (_, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    let (all, unread) = retired::list(&ctx, &env).await;
    for u in &unread {
        eprintln!("note: could not list the instances of {u}");
    }
    let now = chrono::Utc::now();
    let age = |r: &retired::Retired| {
        r.kept_for(now)
            .map(|k| {
                humantime::format_duration(std::time::Duration::from_secs(k.as_secs())).to_string()
            })
            .unwrap_or_else(|| "?".into())
    };
    if !delete {
        if g.output == Output::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"schema_version": drctl::SCHEMA_VERSION, "retired": all})
                )?
            );
        } else if all.is_empty() {
            println!("no retired instances");
        } else {
            let mut t = super::render::table(&[
                "region",
                "instance",
                "was",
                "status",
                "kept for",
                "retired by",
            ]);
            for r in &all {
                t.add_row(vec![
                    r.region.clone(),
                    r.id.clone(),
                    r.retired_from.clone(),
                    r.status.clone(),
                    age(r),
                    r.retired_by.clone().unwrap_or_default(),
                ]);
            }
            println!("{t}");
            println!("`drctl retired --delete --older-than 7d` removes those kept longer than 7 days (a final snapshot of each is kept)");
        }
        return Ok(drctl::exit::OK);
    }
    let due = retired::past(&all, older_than, now);
    if due.is_empty() {
        println!(
            "nothing to delete: no retired instance was kept longer than {} ({} kept in all)",
            humantime::format_duration(older_than),
            all.len()
        );
        return Ok(drctl::exit::OK);
    }
    let mut q = format!(
        "Delete {} retired instance(s) kept longer than {}? Each leaves a final snapshot; the instance itself is gone.",
        due.len(),
        humantime::format_duration(older_than)
    );
    for r in &due {
        q.push_str(&format!(
            "\n  {} in {} (was {}, kept {}) -> snapshot {}",
            r.id,
            r.region,
            r.retired_from,
            age(r),
            r.final_snapshot(now)
        ));
    }
    super::confirm(&q, yes)?;
    let done = retired::delete(&ctx, &env, &due).await?;
    let mut failed = false;
    for (r, res) in &done {
        match res {
            Ok(snap) => println!(
                "deleting {} in {}: its data kept as snapshot {snap}",
                r.id, r.region
            ),
            Err(e) => {
                failed = true;
                println!("NOT deleted: {} in {}: {e}", r.id, r.region);
            }
        }
    }
    Ok(if failed {
        drctl::exit::FAILED
    } else {
        drctl::exit::OK
    })
}
