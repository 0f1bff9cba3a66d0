//! A plan observed read-only: what each step sees now and would change (`drctl plan`,
//! `failover --dry-run`). Every step observes at once, each bounded; nothing is journaled.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Environment;
use crate::engine::Plan;
use crate::steps::{Approval, ApprovalGate, CxParts, Satisfied, Services, StepCx, StepError};

/// Bound on one step's observation.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    AlreadyDone,
    ToDo,
    /// The step cannot observe its effect (`exec` without `check`).
    ToDoUnobservable,
    /// Observing failed or timed out.
    Unknown,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Seen::AlreadyDone => "already done",
            Seen::ToDo => "to do",
            Seen::ToDoUnobservable => "to do (cannot observe)",
            Seen::Unknown => "unknown",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub seen: Seen,
    pub current: String,
    pub intended: String,
}

struct NoApprovals;

#[async_trait]
impl ApprovalGate for NoApprovals {
    async fn request(&self, _s: &str, _m: &str) -> Result<Approval, StepError> {
        Err(StepError::permanent("plan does not ask for approvals"))
    }
}

/// Observe every step of `plan`, in plan order.
pub async fn observe_plan(
    services: &Services,
    env: &Arc<Environment>,
    plan: &Plan,
) -> Vec<Observed> {
    let outputs = Arc::new(Mutex::new(BTreeMap::new()));
    let futs = plan.steps.iter().map(|s| {
        let cx = StepCx::new(
            services,
            s.id(),
            CxParts {
                run_id: "plan".into(),
                env: env.clone(),
                approvals: Arc::new(NoApprovals),
                shutdown: CancellationToken::new(),
                outputs: outputs.clone(),
                notes: Arc::new(|_, _| {}),
            },
        );
        async move {
            match tokio::time::timeout(OBSERVE_TIMEOUT, s.spec.step().observe(&cx)).await {
                Ok(Ok(o)) => Observed {
                    seen: match o.state {
                        Satisfied::Done => Seen::AlreadyDone,
                        Satisfied::NotDone => Seen::ToDo,
                        Satisfied::Unknown => Seen::ToDoUnobservable,
                    },
                    current: o.current,
                    intended: o.intended,
                },
                Ok(Err(e)) => Observed {
                    seen: Seen::Unknown,
                    current: format!("cannot observe: {e}"),
                    intended: "-".into(),
                },
                Err(_) => Observed {
                    seen: Seen::Unknown,
                    current: format!(
                        "cannot observe: timed out after {}",
                        humantime::format_duration(OBSERVE_TIMEOUT)
                    ),
                    intended: "-".into(),
                },
            }
        }
    });
    // Observation is read-only, so all steps are observed at once.
    futures::future::join_all(futs).await
}
