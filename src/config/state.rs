//! The `state:` section of the environment file: where the environment's runs and lease live.
//! `file` (the default) keeps them in the state dir, which protects one directory on one
//! machine; `dynamodb` keeps them in a table that every operator, bastion and watcher shares
//! (docs/shared-state.md).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which store holds journals and the lease.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// Files under the state dir: one machine, one directory.
    #[default]
    File,
    /// A DynamoDB table shared by every machine (`drctl state init` creates it).
    Dynamodb,
}

/// `state:`: the backend, and for `dynamodb` its table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateSettings {
    #[serde(default)]
    pub backend: StateBackend,
    /// The DynamoDB table (backend `dynamodb`).
    #[serde(default)]
    pub table: Option<String>,
    /// The table's region: never the primary region, whose outage the state must outlive.
    #[serde(default)]
    pub region: Option<String>,
    /// An endpoint for DynamoDB alone (default: `aws.endpoint_url`, else AWS's).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// How long a lease lasts without renewal: after a holder's machine dies, another
    /// machine may take the lease over (and resume its run) this long after its last renewal.
    #[serde(default = "defaults::lease_ttl", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub lease_ttl: Duration,
    /// Bound on each call to the state table, retries included.
    #[serde(default = "defaults::timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

impl Default for StateSettings {
    fn default() -> Self {
        Self {
            backend: StateBackend::File,
            table: None,
            region: None,
            endpoint: None,
            lease_ttl: defaults::lease_ttl(),
            timeout: defaults::timeout(),
        }
    }
}

mod defaults {
    use std::time::Duration;
    pub fn lease_ttl() -> Duration {
        Duration::from_secs(60)
    }
    pub fn timeout() -> Duration {
        Duration::from_secs(10)
    }
}

/// A DynamoDB table name: 3-255 of `A-Za-z0-9_.-`.
pub fn table_name_ok(t: &str) -> bool {
    (3..=255).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
