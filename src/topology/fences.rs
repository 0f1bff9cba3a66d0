//! What the journals add to the environment as observed: outstanding fences (databases a fence
//! step could not reach because their region was dark, that may take writes again when it
//! returns: the latest `fence` event per instance across the environment's runs says whether
//! it is fenced), and the runs that have not finished (so that `status` names a run only when
//! one exists).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::journal::{Event, FenceRecord, JournalStore};

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct OutstandingFence {
    pub region: String,
    pub instance_id: String,
    /// The run whose fence could not finish, and when.
    pub run_id: String,
    pub since: DateTime<Utc>,
    pub detail: String,
}

/// A run of the environment that has not finished: running, paused or interrupted.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct OpenRun {
    pub run_id: String,
    pub runbook: String,
    /// Where it is, in words (`paused: ...`).
    pub state: String,
}

/// A step a run left as deferred work because its control plane did not answer
/// (`on_failure: defer`), not done since by the environment's `deferred` runbook.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DeferredWork {
    pub run_id: String,
    pub step: String,
    pub kind: String,
    pub since: DateTime<Utc>,
    /// Why it was deferred (the call that did not answer).
    pub error: String,
    /// The step as its runbook wrote it (JSON), to do it later exactly as it was meant.
    #[schemars(with = "serde_json::Value")]
    pub definition: serde_json::Value,
}

/// The runbook `drctl deferred --run` (and the watch) runs: its successful steps complete the
/// deferred work of the same id.
pub const DEFERRED_RUNBOOK: &str = "deferred";

/// What the journals say about an environment besides its runs' own state.
#[derive(Debug, Clone, Default)]
pub struct JournalFacts {
    pub fences: Vec<OutstandingFence>,
    pub open: Vec<OpenRun>,
    pub deferred: Vec<DeferredWork>,
}

/// The definition of step `id` in a runbook's text, as JSON.
fn definition(runbook_text: &str, id: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_saphyr::from_str(runbook_text).ok()?;
    v.get("steps")?
        .as_array()?
        .iter()
        .find(|s| s.get("id").and_then(|i| i.as_str()) == Some(id))
        .cloned()
}

/// Fences of `env` still outstanding, by the journals in `store`. Unreadable journals are
/// skipped (`status` of a run reports them); a fence is never hidden by one: the latest
/// readable word per instance counts.
pub async fn outstanding(store: &dyn JournalStore, env: &str) -> Vec<OutstandingFence> {
    read(store, env).await.0
}

/// Outstanding fences and unfinished runs of `env`, each journal read once.
pub async fn read(store: &dyn JournalStore, env: &str) -> (Vec<OutstandingFence>, Vec<OpenRun>) {
    let f = read_all(store, env).await;
    (f.fences, f.open)
}

/// Outstanding fences, unfinished runs and deferred work of `env`, each journal read once.
pub async fn read_all(store: &dyn JournalStore, env: &str) -> JournalFacts {
    let Ok(mut runs) = store.list().await else {
        return JournalFacts::default();
    };
    // Run ids begin with their start time: in order, a later word overrides an earlier one.
    runs.sort();
    let mut deferred: BTreeMap<String, DeferredWork> = BTreeMap::new();
    let mut open = vec![];
    let mut latest: BTreeMap<(String, String), (DateTime<Utc>, String, FenceRecord)> =
        BTreeMap::new();
    for run in runs {
        let Ok((records, _)) = store.read(&run).await else {
            continue;
        };
        let ours = records.first().is_some_and(
            |r| matches!(&r.event, Event::RunStarted { env_name, .. } if env_name == env),
        );
        if !ours {
            continue;
        }
        if let Ok(st) = crate::journal::RunState::replay(&records) {
            if !st.is_finished() {
                open.push(OpenRun {
                    run_id: run.clone(),
                    runbook: st.runbook_name.clone(),
                    state: st.phase.text(),
                });
            }
        }
        let (runbook, text) = match records.first().map(|r| &r.event) {
            Some(Event::RunStarted {
                runbook_name,
                runbook_text,
                ..
            }) => (runbook_name.as_str(), runbook_text.as_str()),
            _ => ("", ""),
        };
        for r in &records {
            match &r.event {
                Event::Deferred { step, error } => {
                    let definition = definition(text, step).unwrap_or_default();
                    let kind = definition
                        .get("kind")
                        .and_then(|k| k.as_str())
                        .unwrap_or("?")
                        .to_string();
                    deferred.insert(
                        step.clone(),
                        DeferredWork {
                            run_id: run.clone(),
                            step: step.clone(),
                            kind,
                            since: r.at,
                            error: error.clone(),
                            definition,
                        },
                    );
                }
                Event::StepSucceeded { step, .. } if runbook == DEFERRED_RUNBOOK => {
                    deferred.remove(step);
                }
                _ => {}
            }
            if let Event::Fence { fence, .. } = &r.event {
                let key = (fence.region.clone(), fence.instance_id.clone());
                if latest.get(&key).is_none_or(|(at, _, _)| *at <= r.at) {
                    latest.insert(key, (r.at, run.clone(), fence.clone()));
                }
            }
        }
    }
    let fences = latest
        .into_values()
        .filter(|(_, _, f)| !f.fenced)
        .map(|(since, run_id, f)| OutstandingFence {
            region: f.region,
            instance_id: f.instance_id,
            run_id,
            since,
            detail: f.detail,
        })
        .collect();
    JournalFacts {
        fences,
        open,
        deferred: deferred.into_values().collect(),
    }
}
