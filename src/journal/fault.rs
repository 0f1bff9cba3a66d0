//! What can go wrong with the shared state table, classified: it decides the exit code (14 when
//! the table cannot be used now, 2 when the set-up is wrong) and the advice the operator gets.

/// What kind of trouble the state table is in: it decides the exit code and the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFault {
    /// No answer in time, or no connection: the table's region may be down, or the network.
    Unreachable,
    /// The table does not exist (`drctl state init`).
    Missing,
    /// Credentials missing or refused, or not allowed to use the table.
    Denied,
    /// DynamoDB answered with something else (throttled, an internal error, a bad item).
    Other,
    /// The table is not one drctl can use (another schema): fix drctl.yaml.
    Config,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("state table {table} ({region}): {message}. {}", self.advice())]
pub struct StateError {
    pub fault: StateFault,
    pub table: String,
    pub region: String,
    pub message: String,
}

impl StateError {
    /// What the operator can do about it.
    pub fn advice(&self) -> String {
        match self.fault {
            StateFault::Unreachable => format!(
                "drctl keeps this environment's runs and lease there and does not fall back to local files that other machines cannot see: check the network to DynamoDB in {}, then run again (a run stopped by this is resumable: `drctl resume RUN`)",
                self.region
            ),
            StateFault::Missing => "Create it with `drctl state init` (or fix state.table / state.region in drctl.yaml)".to_string(),
            StateFault::Denied => "Check the AWS credentials and that they may use the table (docs/shared-state.md lists the IAM actions)".to_string(),
            StateFault::Other => "Run again; if it persists, look at the table in the DynamoDB console".to_string(),
            StateFault::Config => "Fix state.table in drctl.yaml".to_string(),
        }
    }

    /// The exit code: 14 when the table cannot be used now, 2 when the setup is wrong.
    pub fn exit_code(&self) -> i32 {
        match self.fault {
            StateFault::Unreachable | StateFault::Other => crate::exit::STATE_UNAVAILABLE,
            StateFault::Missing | StateFault::Denied | StateFault::Config => crate::exit::INVALID,
        }
    }
}
