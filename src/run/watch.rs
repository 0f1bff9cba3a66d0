//! The watch's side of a run: its unattended failover (an [`Actuator`]) and its Route 53 oracle,
//! through the same preflight, lease, journal and engine as a person's `drctl run`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::summary::RunOutcome;
use super::{Approvals, Context, Hooks, NewRun};
use crate::aws::Aws;
use crate::engine::progress::ProgressSink;
use crate::probe::watch::{ActionReport, Actuator, Route53Oracle};

/// Runs the failover runbook as `drctl run RUNBOOK --yes` would, under the environment's lease.
pub struct RunbookActuator {
    pub ctx: Context,
    pub env_file: PathBuf,
    pub progress: Arc<dyn ProgressSink>,
}

#[async_trait]
impl Actuator for RunbookActuator {
    async fn failover(
        &self,
        runbook: &Path,
        why: &str,
        shutdown: CancellationToken,
    ) -> ActionReport {
        self.progress
            .notice(&format!("{why}: running {}", runbook.display()));
        let not_started = |e: &dyn std::fmt::Display| ActionReport {
            ok: false,
            run_id: None,
            outcome: format!("runbook not started: {e}"),
        };
        let run = match NewRun::prepare(&self.env_file, runbook) {
            Ok(r) => r,
            Err(e) => return not_started(&e),
        };
        // The policy is the approval: `action: failover` in drctl.yaml is the operator's
        // standing yes. Never break another holder's lease: a human at work wins.
        let hooks = Hooks {
            progress: self.progress.clone(),
            approvals: Approvals::Auto,
            prompter: None,
            break_lock: false,
        };
        match run.execute(&self.ctx, &hooks, shutdown).await {
            Ok(s) => {
                let (ok, outcome) = match s.outcome {
                    RunOutcome::Succeeded if s.continued_failures.is_empty() => {
                        (true, "succeeded".to_string())
                    }
                    RunOutcome::Succeeded => (
                        true,
                        format!(
                            "completed; failed but continued: {}",
                            s.continued_failures.join(", ")
                        ),
                    ),
                    RunOutcome::Paused => (
                        false,
                        format!(
                            "paused: {}; `drctl resume {}`",
                            s.reason.as_deref().unwrap_or(""),
                            s.run_id
                        ),
                    ),
                    RunOutcome::Aborted => (
                        false,
                        format!(
                            "aborted at `{}`: {}",
                            s.aborted_at.as_deref().unwrap_or("?"),
                            s.reason.as_deref().unwrap_or("")
                        ),
                    ),
                    RunOutcome::RolledBack | RunOutcome::RollbackIncomplete => {
                        (false, "rolled back".to_string())
                    }
                };
                ActionReport {
                    ok,
                    run_id: Some(s.run_id),
                    outcome,
                }
            }
            Err(e) => not_started(&e),
        }
    }
}

/// Route 53's view of the primary: its health check, read through the one AWS door.
pub struct HealthCheckOracle {
    pub aws: Arc<dyn Aws>,
    pub health_check_id: String,
}

#[async_trait]
impl Route53Oracle for HealthCheckOracle {
    async fn primary_unhealthy(&self) -> Result<bool, String> {
        let id = &self.health_check_id;
        match self.aws.route53().await.health_check_healthy(id).await {
            Ok(Some(healthy)) => Ok(!healthy),
            Ok(None) => Err(format!(
                "route53 GetHealthCheckStatus ({id}): no observations yet"
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}
