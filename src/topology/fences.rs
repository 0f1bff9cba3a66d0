//! Outstanding fences: databases a fence step could not reach (their region was dark), that
//! may take writes again when it returns. Read from the journals: the latest `fence` event per
//! instance across the environment's runs says whether it is fenced.

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

/// Fences of `env` still outstanding, by the journals in `store`. Unreadable journals are
/// skipped (`status` of a run reports them); a fence is never hidden by one: the latest
/// readable word per instance counts.
pub async fn outstanding(store: &dyn JournalStore, env: &str) -> Vec<OutstandingFence> {
    let Ok(runs) = store.list().await else {
        return vec![];
    };
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
        for r in &records {
            if let Event::Fence { fence, .. } = &r.event {
                let key = (fence.region.clone(), fence.instance_id.clone());
                if latest.get(&key).is_none_or(|(at, _, _)| *at <= r.at) {
                    latest.insert(key, (r.at, run.clone(), fence.clone()));
                }
            }
        }
    }
    latest
        .into_values()
        .filter(|(_, _, f)| !f.fenced)
        .map(|(since, run_id, f)| OutstandingFence {
            region: f.region,
            instance_id: f.instance_id,
            run_id,
            since,
            detail: f.detail,
        })
        .collect()
}
