//! Reading runs back without changing them (`status RUN`, `history`), and `approve`, which only
//! drops a file in a waiting run's mailbox: work from a second terminal while a run holds the
//! lease.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{sources_from_journal, RunError};
use crate::engine::approval::write_approval;
use crate::journal::replay::RunPhase;
use crate::journal::{JournalStore, Operator, Outcome, RunState, RunStatus, StepPhase};
use crate::steps::Approval;

/// A run's phase in words.
pub fn phase_text(p: &RunPhase) -> String {
    p.text()
}

/// A run's outcome as one word, for scripts and every view: a drill's is `passed` or `failed`
/// (its teardown undoes what it made, which is not a rollback of production).
pub fn outcome(st: &RunState) -> &'static str {
    match &st.phase {
        RunPhase::Finished { status, .. }
            if crate::report::drill::is_drill(&st.runbook_name, &st.runbook_text) =>
        {
            if *status == RunStatus::Succeeded {
                "passed"
            } else {
                "failed"
            }
        }
        p => phase_word(p),
    }
}

/// A run's phase as one word.
fn phase_word(p: &RunPhase) -> &'static str {
    match p {
        RunPhase::Running => "running",
        RunPhase::Paused { .. } => "paused",
        RunPhase::RollingBack => "rolling_back",
        RunPhase::Finished { status, .. } => match status {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
            RunStatus::RolledBack => "rolled_back",
            RunStatus::Abandoned => "abandoned",
        },
    }
}

/// A step's phase in words.
pub fn step_text(p: &StepPhase) -> String {
    match p {
        StepPhase::Pending => "pending".into(),
        StepPhase::Started { .. } => "running".into(),
        StepPhase::InFlight { .. } => "in flight".into(),
        StepPhase::Succeeded {
            outcome: Outcome::AlreadyDone,
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
    }
}

/// One step of a run, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub attempts: Option<u32>,
    pub took_ms: Option<u64>,
    pub approved_by: Option<String>,
}

/// A run read back from its journal.
pub struct RunView {
    pub state: RunState,
    pub steps: Vec<StepRow>,
    /// A torn last line (the writer may be mid-append).
    pub journal_warnings: Vec<String>,
}

/// The newest run in the state dir. Ids sort by the second a run started, then by a random
/// suffix: among runs of the newest second, the one whose journal began last.
pub async fn latest(store: &dyn JournalStore) -> Result<String, RunError> {
    let ids = store.list().await?;
    let Some(last) = ids.last().cloned() else {
        return Err(RunError::Refused(
            "no runs yet in this state directory (see --state-dir)".into(),
        ));
    };
    let second = &last[..last.len().min("YYYYmmdd-HHMMSS".len())];
    let mut best = (None, last.clone());
    for id in ids.iter().filter(|i| i.starts_with(second)) {
        if let Ok((records, _)) = store.read(id).await {
            let at = records.first().map(|r| r.at);
            if at > best.0 {
                best = (at, id.clone());
            }
        }
    }
    Ok(best.1)
}

/// Run `run` (or the newest, for `latest`), read without modifying it.
pub async fn view(store: &dyn JournalStore, run: &str) -> Result<RunView, RunError> {
    let run = match run {
        "latest" => latest(store).await?,
        r => r.to_string(),
    };
    let (records, journal_warnings) = store.read(&run).await?;
    let state = super::replay(&run, &records)?;
    let (_, rb) = sources_from_journal(&state)?;
    let steps = rb
        .steps
        .iter()
        .map(|s| {
            let v = state.steps.get(s.id());
            StepRow {
                id: s.id().to_string(),
                kind: s.kind.value.clone(),
                state: step_text(&state.step(s.id())),
                attempts: v.map(|v| v.attempts),
                took_ms: v.and_then(|v| {
                    Some((v.finished_at? - v.started_at?).num_milliseconds().max(0) as u64)
                }),
                approved_by: v.and_then(|v| v.approved_by.clone()),
            }
        })
        .collect();
    Ok(RunView {
        state,
        steps,
        journal_warnings,
    })
}

/// One line of `history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub run_id: String,
    pub runbook: Option<String>,
    pub env: Option<String>,
    pub operator: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    /// When the run finished (None while it runs, is paused or was interrupted).
    pub finished_at: Option<DateTime<Utc>>,
    /// Seconds from start to finish, or to the last journal record for an unfinished run.
    pub duration_s: Option<f64>,
    /// For scripts: running, paused, rolling_back, succeeded, failed, aborted, rolled_back,
    /// or unreadable.
    pub outcome: String,
    /// The same in words, with the reason or message.
    pub state: Option<String>,
    /// The journal could not be read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The newest `limit` runs, oldest first.
pub async fn history(store: &dyn JournalStore, limit: usize) -> Result<Vec<HistoryRow>, RunError> {
    let ids = store.list().await?;
    let mut rows = Vec::new();
    for id in ids.iter().rev().take(limit).rev() {
        let read = match store.read(id).await {
            Ok((r, _)) => super::replay(id, &r),
            Err(e) => Err(e.into()),
        };
        rows.push(match read {
            Ok(st) => HistoryRow {
                run_id: st.run_id.clone(),
                runbook: Some(st.runbook_name.clone()),
                env: Some(st.env_name.clone()),
                operator: Some(st.operator.user.clone()),
                started_at: Some(st.started_at),
                finished_at: st.is_finished().then_some(st.last_at),
                duration_s: Some(
                    ((st.last_at - st.started_at).num_milliseconds() as f64 / 1000.0).max(0.0),
                ),
                outcome: outcome(&st).into(),
                state: Some(phase_text(&st.phase)),
                error: None,
            },
            Err(e) => HistoryRow {
                run_id: id.clone(),
                runbook: None,
                env: None,
                operator: None,
                started_at: None,
                finished_at: None,
                duration_s: None,
                outcome: "unreadable".into(),
                state: None,
                error: Some(e.to_string()),
            },
        });
    }
    Ok(rows)
}

/// Approve a waiting `approval` step of a running run, as `by` (`drctl approve`).
pub async fn approve(
    store: &dyn JournalStore,
    state: &super::StateStore,
    run: &str,
    step: &str,
    by: &Operator,
    comment: Option<String>,
) -> Result<(), RunError> {
    let (records, _) = store.read(run).await?;
    let st = super::replay(run, &records)?;
    let (env, rb) = sources_from_journal(&st)?;
    let refuse = |m: String| Err(RunError::Refused(m));
    let Some(def) = rb.steps.iter().find(|s| s.id() == step) else {
        return refuse(format!("run {run} has no step `{step}`"));
    };
    if def.kind.value != "approval" {
        return refuse(format!(
            "step `{step}` is a `{}` step, not an approval",
            def.kind.value
        ));
    }
    if st.is_finished() {
        return refuse(format!(
            "run {run} has finished; there is nothing to approve"
        ));
    }
    match st.step(step) {
        StepPhase::Succeeded { .. } => return refuse(format!("step `{step}` is already approved")),
        StepPhase::Skipped { .. } => return refuse(format!("step `{step}` was skipped")),
        _ => {}
    }
    let gates = super::approvals::irreversible_gates(&crate::engine::Plan::new(&rb));
    if env.approvals.two_person && gates.contains(step) && by.user == st.operator.user {
        return refuse(format!(
            "two-person rule: {} started run {run}, so another operator must approve `{step}` (it stands before an irreversible step)",
            st.operator.user
        ));
    }
    let approval = Approval {
        by: by.user.clone(),
        via: "cli".into(),
        comment,
    };
    // With shared state the run may be on any machine: the approval goes in the table.
    if let Some(t) = state.dynamo().await {
        let json = serde_json::to_string(&approval).expect("approval serializes");
        return t
            .put_approval(run, step, &json)
            .await
            .map_err(|e| RunError::Journal(crate::journal::JournalError::State(e)));
    }
    write_approval(&state.run_dir(run), step, &approval).map_err(|source| {
        RunError::Journal(crate::journal::JournalError::Io {
            path: state.run_dir(run).display().to_string(),
            source,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::file::FileJournalStore;
    use crate::journal::{Event, JournalStore};

    /// A `run_started` that passes the store's integrity checks for run `id`.
    fn started(id: &str) -> Event {
        use sha2::{Digest, Sha256};
        let mut e = Event::test_run_started();
        if let Event::RunStarted {
            run_id,
            runbook_sha256,
            env_sha256,
            runbook_text,
            env_text,
            ..
        } = &mut e
        {
            *run_id = id.to_string();
            *runbook_sha256 = hex::encode(Sha256::digest(runbook_text.as_bytes()));
            *env_sha256 = hex::encode(Sha256::digest(env_text.as_bytes()));
        }
        e
    }

    #[tokio::test]
    async fn latest_is_the_run_that_began_last_even_within_one_second() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileJournalStore::new(dir.path());
        // Same second; the random suffixes sort the other way round from the start order.
        for id in ["20261201-120000-ffff", "20261201-120000-0000"] {
            let mut j = store.create(id).await.unwrap();
            j.append(1, started(id)).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(latest(&store).await.unwrap(), "20261201-120000-0000");
        // A later second wins by its id alone.
        let mut j = store.create("20261201-120001-aaaa").await.unwrap();
        j.append(1, started("20261201-120001-aaaa")).await.unwrap();
        assert_eq!(latest(&store).await.unwrap(), "20261201-120001-aaaa");
    }
}
