//! `status`, `history` and `approve`: work from a second terminal while a run holds the lease.
//! They read journals without modifying them; `approve` only drops a file in the run's mailbox.

use anyhow::{bail, Result};
use serde_json::json;

use drctl::engine::approval::write_approval;
use drctl::exit;
use drctl::journal::file::FileJournalStore;
use drctl::journal::replay::RunPhase;
use drctl::journal::{JournalStore, Operator, RunState, StepPhase};
use drctl::steps::Approval;

use super::render::{fmt_ms, table};
use super::{Global, Output, Usage};

async fn latest(store: &FileJournalStore) -> Result<String> {
    match store.list().await?.pop() {
        Some(r) => Ok(r),
        None => bail!(Usage(
            "no runs yet in this state directory (see --state-dir)".into()
        )),
    }
}

fn phase_text(p: &RunPhase) -> String {
    match p {
        RunPhase::Running => "running (or interrupted: `drctl resume`)".into(),
        RunPhase::Paused { reason } => format!("paused: {reason}"),
        RunPhase::Finished { status, message } => format!("{status}: {message}"),
        RunPhase::RollingBack => "rolling back (or interrupted during rollback)".into(),
    }
}

pub async fn status(g: &Global, run: Option<&str>) -> Result<i32> {
    let store = FileJournalStore::new(&g.state_dir_lenient());
    let run = match run {
        Some("latest") | None => latest(&store).await?,
        Some(r) => r.to_string(),
    };
    let (records, warnings) = store.read(&run).await?;
    let st = RunState::replay(&records)?;
    let (_, rb) = drctl::run::sources_from_journal(&st)?;
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"run": st, "journal_warnings": warnings}))?
        );
        return Ok(exit::OK);
    }
    for w in &warnings {
        eprintln!("note: {w} (the writer may be mid-append)");
    }
    println!("run       {}", st.run_id);
    println!(
        "runbook   {} ({}, sha256 {})",
        st.runbook_name,
        st.runbook_path,
        &st.runbook_sha256[..12.min(st.runbook_sha256.len())]
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
    for s in &rb.steps {
        let v = st.steps.get(s.id());
        let phase = st.step(s.id());
        let state = match &phase {
            StepPhase::Pending => "pending".to_string(),
            StepPhase::Started { .. } => "running".into(),
            StepPhase::InFlight { .. } => "in flight".into(),
            StepPhase::Succeeded {
                outcome: drctl::journal::Outcome::AlreadyDone,
                ..
            } => "already done".into(),
            StepPhase::Succeeded { .. } => "done".into(),
            StepPhase::Failed {
                error,
                will_retry: true,
                ..
            } => format!("retrying: {error}"),
            StepPhase::Failed { error, .. } => format!("FAILED: {error}"),
            StepPhase::Skipped { reason } => format!("skipped: {reason}"),
            StepPhase::Undoing { .. } => "undoing".into(),
            StepPhase::Undone => "undone".into(),
            StepPhase::UndoFailed { error, .. } => format!("UNDO FAILED: {error}"),
        };
        let took = v
            .and_then(|v| Some((v.finished_at? - v.started_at?).num_milliseconds().max(0) as u64))
            .map(fmt_ms)
            .unwrap_or_default();
        t.add_row(vec![
            s.id().to_string(),
            s.kind.value.clone(),
            state,
            v.map_or(String::new(), |v| v.attempts.to_string()),
            took,
            v.and_then(|v| v.approved_by.clone()).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    for w in &st.warnings {
        println!("warning: {w}");
    }
    if !st.checkpoints.is_empty() {
        println!(
            "checkpoints: {}",
            st.checkpoints
                .iter()
                .map(|c| c.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(exit::OK)
}

pub async fn history(g: &Global, limit: usize) -> Result<i32> {
    let store = FileJournalStore::new(&g.state_dir_lenient());
    let ids = store.list().await?;
    let mut rows = Vec::new();
    for id in ids.iter().rev().take(limit).rev() {
        match store.read(id).await.map_err(anyhow::Error::from).and_then(|(r, _)| Ok(RunState::replay(&r)?)) {
            Ok(st) => rows.push(json!({
                "run_id": st.run_id, "runbook": st.runbook_name, "env": st.env_name,
                "operator": st.operator.user, "started_at": st.started_at, "state": phase_text(&st.phase),
            })),
            Err(e) => rows.push(json!({"run_id": id, "error": e.to_string()})),
        }
    }
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
        "state",
    ]);
    for r in rows {
        let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let started = r
            .get("started_at")
            .and_then(|v| v.as_str())
            .map(|s| s.replace('T', " ").chars().take(19).collect())
            .unwrap_or_default();
        t.add_row(vec![
            s("run_id"),
            s("runbook"),
            s("env"),
            s("operator"),
            started,
            if r.get("error").is_some() {
                s("error")
            } else {
                s("state")
            },
        ]);
    }
    println!("{t}");
    Ok(exit::OK)
}

pub async fn approve(g: &Global, run: &str, step: &str, comment: Option<String>) -> Result<i32> {
    let store = FileJournalStore::new(&g.state_dir_lenient());
    let (records, _) = store.read(run).await?;
    let st = RunState::replay(&records)?;
    let (_, rb) = drctl::run::sources_from_journal(&st)?;
    let Some(def) = rb.steps.iter().find(|s| s.id() == step) else {
        bail!(Usage(format!("run {run} has no step `{step}`")));
    };
    if def.kind.value != "approval" {
        bail!(Usage(format!(
            "step `{step}` is a `{}` step, not an approval",
            def.kind.value
        )));
    }
    if st.is_finished() {
        bail!(Usage(format!(
            "run {run} has finished; there is nothing to approve"
        )));
    }
    match st.step(step) {
        StepPhase::Succeeded { .. } => bail!(Usage(format!("step `{step}` is already approved"))),
        StepPhase::Skipped { .. } => bail!(Usage(format!("step `{step}` was skipped"))),
        _ => {}
    }
    let op = Operator::current();
    write_approval(
        &store.run_dir(run),
        step,
        &Approval {
            by: op.user.clone(),
            via: "cli".into(),
            comment,
        },
    )?;
    println!("approved step `{step}` of run {run} as {}; a waiting run continues within a second (a paused one on `drctl resume`)", op.user);
    Ok(exit::OK)
}
