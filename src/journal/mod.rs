//! The run journal and the single-writer lease, behind traits with two backends: files
//! (the default, `file`, `lease`) and a shared DynamoDB table (`dynamo`, conditional writes). The engine only sees the traits.
//!
//! Journal: an append-only list of [`Record`]s per run; `append` returns only once the record is
//! durable. Lease: one writer per environment, with a fencing token that grows on every
//! acquisition; every record carries the token of the lease under which it was written. The
//! file journal chains its lines by hash (`chain`), so an edit after the fact is found.

pub mod chain;
#[cfg(test)]
mod chain_tests;
pub mod describe;
pub mod dynamo;
mod dynamo_admin;
pub mod event;
pub mod fault;
pub mod file;
pub mod lease;
#[cfg(test)]
pub mod mem;
pub mod replay;

use async_trait::async_trait;

pub use dynamo_admin::Init;
pub use event::{
    AwsIdentity, Event, FenceRecord, Measure, Operator, Outcome, Record, RunStatus, Satisfied,
    Trigger,
};
pub use lease::{LeaseError, LeaseRecord, LeaseRequest, LeaseStore};
pub use replay::{ReplayError, RunState, StepPhase};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {path} line {line} is corrupt ({why}); it is not the last line, so this is not a torn write. Refusing to guess: inspect the file")]
    Corrupt {
        path: String,
        line: usize,
        why: String,
    },
    #[error("no run `{0}` (see `drctl history`)")]
    NoSuchRun(String),
    #[error("`{0}` is not a run id: run ids are letters, digits, `-`, `_` and `.` (see `drctl history`)")]
    BadRunId(String),
    #[error("journal {path} was altered ({why}); refusing to use it. The original may be in a backup; `drctl history` lists the runs")]
    Tampered { path: String, why: String },
    #[error("run `{0}` already exists")]
    Exists(String),
    /// The shared state table could not be used (unreachable, missing, refused).
    #[error(transparent)]
    State(#[from] dynamo::StateError),
    /// This writer's lease was taken over: its append was refused, nothing was written.
    #[error("run {run}: append refused: the environment's lease now has fencing token {theirs}, this drctl's was {ours} (another drctl took the lease over). Nothing was written; see `drctl status {run}`")]
    Fenced { run: String, ours: u64, theirs: u64 },
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// An open journal that this process may append to (it holds the lease).
#[async_trait]
pub trait JournalWriter: Send {
    /// Append one event durably (fsync'd) and return its record.
    async fn append(&mut self, token: u64, event: Event) -> Result<Record, JournalError>;
    fn records(&self) -> &[Record];
}

/// Where journals live.
#[async_trait]
pub trait JournalStore: Send + Sync {
    async fn create(&self, run_id: &str) -> Result<Box<dyn JournalWriter>, JournalError>;
    /// Open for appending. A torn last line is cut back and reported in the warnings.
    async fn open_writer(
        &self,
        run_id: &str,
    ) -> Result<(Box<dyn JournalWriter>, Vec<String>), JournalError>;
    /// Read without modifying (safe while another process writes).
    async fn read(&self, run_id: &str) -> Result<(Vec<Record>, Vec<String>), JournalError>;
    /// Read a run to go on with it (`resume`, `rollback`): as `read`, and the hash chain must
    /// hold too. Other readers (`status`, `history`) read a journal whose chain is broken, so
    /// that a damaged run can still be looked at; `drctl verify` says where.
    async fn read_intact(&self, run_id: &str) -> Result<(Vec<Record>, Vec<String>), JournalError>;
    /// The run's hash chain, as `drctl verify` reports it (reads, never modifies).
    async fn verify_chain(&self, run_id: &str) -> Result<chain::ChainReport, JournalError>;
    /// Where the run's journal is, for people (a path, or `dynamodb://table/env/run`).
    fn locator(&self, run_id: &str) -> String;
    /// Every run id, oldest first.
    async fn list(&self) -> Result<Vec<String>, JournalError>;
}
