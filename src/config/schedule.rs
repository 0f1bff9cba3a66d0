//! Drill schedules (`drill.schedules` in the environment file): when each drill runs.
//! Placeholder shape; the scheduler fills it in.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One scheduled drill.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillSchedule {
    /// A name for logs, notifications and `drctl drill --list`.
    pub name: String,
}
