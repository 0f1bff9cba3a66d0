//! Where a run's approvals come from: `--yes` up front, `drctl approve` from another terminal
//! (a file in the run's mailbox), or the operator's own terminal through an
//! [`ApprovalPrompt`]. Whichever answers first wins; a shutdown (Ctrl-C, SIGTERM) ends the wait
//! at once so the run pauses instead of waiting out the step's timeout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::Approvals;
use crate::engine::approval::{ApprovalSource, AutoApprove, FileApprovals};
use crate::journal::Operator;
use crate::steps::{Approval, StepError};

/// Asks a human where they are (the CLI's terminal prompt). `None`: nobody can answer here;
/// the run keeps waiting for `drctl approve`.
#[async_trait]
pub trait ApprovalPrompt: Send + Sync {
    async fn ask(&self, run_id: &str, step: &str, message: &str) -> Option<Approval>;
}

/// The mailbox and the prompt, raced, and cut short by shutdown.
struct Asked {
    mailbox: FileApprovals,
    prompt: Arc<dyn ApprovalPrompt>,
    run_id: String,
    shutdown: CancellationToken,
}

#[async_trait]
impl ApprovalSource for Asked {
    async fn wait(&self, step: &str, message: &str) -> Result<Approval, StepError> {
        tokio::select! {
            a = self.mailbox.wait(step, message) => a,
            Some(a) = self.prompt.ask(&self.run_id, step, message) => Ok(a),
            _ = self.shutdown.cancelled() => Err(StepError::Interrupted),
        }
    }
}

pub(super) fn source(
    approvals: &Approvals,
    operator: &Operator,
    run_id: &str,
    run_dir: PathBuf,
    shutdown: CancellationToken,
) -> Arc<dyn ApprovalSource> {
    match approvals {
        Approvals::Auto => Arc::new(AutoApprove {
            operator: operator.clone(),
        }),
        Approvals::Ask(prompt) => Arc::new(Asked {
            mailbox: FileApprovals {
                run_dir,
                poll: Duration::from_millis(300),
            },
            prompt: prompt.clone(),
            run_id: run_id.to_string(),
            shutdown,
        }),
    }
}
