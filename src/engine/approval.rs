//! Approvals: where a human's "yes" comes from, and how the engine journals it.
//!
//! A waiting run accepts an approval from its own terminal (the CLI's prompt) or from
//! `drctl approve RUN STEP` in a second terminal, which drops a file in the run's directory.
//! Only the run's own process writes the journal; the file is a mailbox, not a second writer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use crate::journal::Operator;
use crate::steps::{Approval, StepError};

#[async_trait]
pub trait ApprovalSource: Send + Sync {
    async fn wait(&self, step: &str, message: &str) -> Result<Approval, StepError>;
    /// Whether a person answers `step` (so the gate shows what is at stake and keeps a
    /// deadline), or it is approved up front (`--yes`, a watch's standing policy).
    fn asks_a_person(&self, _step: &str) -> bool {
        true
    }
}

/// `--yes`: the operator approved everything up front.
pub struct AutoApprove {
    pub operator: Operator,
}

#[async_trait]
impl ApprovalSource for AutoApprove {
    async fn wait(&self, _step: &str, _message: &str) -> Result<Approval, StepError> {
        Ok(Approval {
            by: self.operator.user.clone(),
            via: "--yes".into(),
            comment: None,
        })
    }

    fn asks_a_person(&self, _step: &str) -> bool {
        false
    }
}

pub fn approvals_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("approvals")
}

/// Record an approval for a waiting run (what `drctl approve` does). Atomic: written to a temp
/// file and renamed, so the run never reads half a file.
pub fn write_approval(run_dir: &Path, step: &str, a: &Approval) -> std::io::Result<()> {
    let dir = approvals_dir(run_dir);
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".{step}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(a).expect("approval serializes"))?;
    std::fs::rename(&tmp, dir.join(format!("{step}.json")))
}

pub fn read_approval(run_dir: &Path, step: &str) -> Option<Approval> {
    let bytes = std::fs::read(approvals_dir(run_dir).join(format!("{step}.json"))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Polls the run's approvals directory.
pub struct FileApprovals {
    pub run_dir: PathBuf,
    pub poll: Duration,
}

#[async_trait]
impl ApprovalSource for FileApprovals {
    async fn wait(&self, step: &str, _message: &str) -> Result<Approval, StepError> {
        loop {
            if let Some(a) = read_approval(&self.run_dir, step) {
                return Ok(a);
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
