//! What the journals add to the environment as observed: outstanding fences (databases a fence
//! step could not reach because their region was dark, that may take writes again when it
//! returns: the latest `fence` event per instance across the environment's runs says whether
//! it is fenced), and the runs that have not finished (so that `status` names a run only when
//! one exists).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::journal::{Event, FenceRecord, JournalStore};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutstandingFence {
    pub region: String,
    pub instance_id: String,
    /// The run whose fence could not finish, and when.
    pub run_id: String,
    pub since: DateTime<Utc>,
    pub detail: String,
}

/// A run of the environment that has not finished: running, paused or interrupted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenRun {
    pub run_id: String,
    pub runbook: String,
    /// Where it is, in words (`paused: ...`).
    pub state: String,
}

/// Fences of `env` still outstanding, by the journals in `store`. Unreadable journals are
/// skipped (`status` of a run reports them); a fence is never hidden by one: the latest
/// readable word per instance counts.
pub async fn outstanding(store: &dyn JournalStore, env: &str) -> Vec<OutstandingFence> {
    read(store, env).await.0
}

/// Outstanding fences and unfinished runs of `env`, each journal read once.
pub async fn read(store: &dyn JournalStore, env: &str) -> (Vec<OutstandingFence>, Vec<OpenRun>) {
    let Ok(runs) = store.list().await else {
        return (vec![], vec![]);
    };
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
        for r in &records {
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
    (fences, open)
}
