//! The watchers' views in the shared state table: the [`Peers`] of `drctl watch` when the
//! environment keeps its state in DynamoDB (one item per watcher, overwritten each heartbeat).

use async_trait::async_trait;

use super::StateStore;
use crate::probe::watch::quorum::{PeerView, Peers};

pub struct TablePeers {
    state: StateStore,
    id: String,
}

impl TablePeers {
    pub fn new(state: StateStore, id: String) -> Self {
        Self { state, id }
    }
}

/// `<host>-<pid>`, with anything outside the id alphabet replaced.
pub fn default_id() -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "watcher".into());
    let clean: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    format!("{clean}-{}", std::process::id())
}

/// A watcher id names an item and goes in an HTTP header: 1-64 of `A-Za-z0-9-_.`.
pub fn id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[async_trait]
impl Peers for TablePeers {
    fn id(&self) -> &str {
        &self.id
    }

    async fn publish(&self, view: &PeerView) -> Result<(), String> {
        let table = self.state.dynamo().await.ok_or("no shared state table")?;
        let text = serde_json::to_string(view).map_err(|e| e.to_string())?;
        table
            .put_watcher(&self.id, &text)
            .await
            .map_err(|e| e.to_string())
    }

    async fn leave(&self) -> Result<(), String> {
        let table = self.state.dynamo().await.ok_or("no shared state table")?;
        table
            .remove_watcher(&self.id)
            .await
            .map_err(|e| e.to_string())
    }

    async fn read(&self) -> Result<Vec<PeerView>, String> {
        let table = self.state.dynamo().await.ok_or("no shared state table")?;
        let texts = table.watchers().await.map_err(|e| e.to_string())?;
        // A view that does not parse (another drctl version) is left out, not fatal.
        Ok(texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect())
    }
}
