//! Where notifications go (`probes.watch.notifications`, `drill.schedules[].notify`): its own
//! file so that every section of the environment file can name it without importing another.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One notification sink. Webhook URLs may hold tokens: they are never logged or journaled.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Notification {
    /// POST a JSON document describing the decision.
    Webhook(String),
    /// POST to a Slack incoming webhook (`{"text": ...}`).
    Slack(String),
}
