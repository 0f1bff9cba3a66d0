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
use crate::steps::{
    Approval, ApprovalGate, CxParts, Reversibility, Satisfied, Services, StepCx, StepError,
};

/// Bound on one step's observation.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
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
                // What it acts on comes from an earlier step's result, known only in the run.
                Ok(Err(e)) if waits_for_step(&e.to_string()).is_some() => {
                    let from = waits_for_step(&e.to_string()).unwrap_or_default();
                    Observed {
                        seen: Seen::ToDo,
                        current: format!("known once `{from}` has run"),
                        intended: format!("act on what `{from}` finds"),
                    }
                }
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

/// The step whose result an observation needed and did not have (`${steps.ID.KEY}` not
/// defined yet, in a plan).
fn waits_for_step(error: &str) -> Option<String> {
    let rest = error.split("`${steps.").nth(1)?;
    error
        .contains("is not defined")
        .then(|| rest.split('.').next().unwrap_or_default().to_string())
}

/// A step's text with `${steps.ID.KEY}` (known only once that step has run) said in words.
fn unresolved(text: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"\$\{steps\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\}").expect("regex")
    })
    .replace_all(text, "<$2 of $1, once it has run>")
    .into_owned()
}

/// One step of a plan view.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlanStep {
    pub id: String,
    pub kind: String,
    /// 0 for roots; steps of one level may run together.
    pub level: usize,
    pub depends_on: Vec<String>,
    pub state: Seen,
    pub current: String,
    pub intended: String,
    /// `undoable`, `-` (nothing to undo) or `IRREVERSIBLE`.
    pub reversibility: &'static str,
    pub critical: bool,
}

/// What a plan will do, counted: Terraform's "N to add, M to change" for a runbook.
#[derive(Debug, Clone, Copy, Default, Serialize, schemars::JsonSchema)]
pub struct PlanCounts {
    pub steps: usize,
    /// Steps that will act (to do, or cannot observe whether they must).
    pub will_change: usize,
    /// Of those, how many cannot be undone.
    pub irreversible: usize,
    /// Steps whose target state already holds: no-ops.
    pub already_done: usize,
    /// Steps that could not be observed.
    pub unknown: usize,
}

impl PlanCounts {
    /// "Plan: 12 steps will change (1 IRREVERSIBLE), 3 already done, 1 could not be observed."
    pub fn line(&self) -> String {
        let mut s = format!(
            "Plan: {} of {} steps will change",
            self.will_change, self.steps
        );
        if self.irreversible > 0 {
            s.push_str(&format!(" ({} IRREVERSIBLE)", self.irreversible));
        }
        s.push_str(&format!(", {} already done", self.already_done));
        if self.unknown > 0 {
            s.push_str(&format!(", {} could not be observed", self.unknown));
        }
        s.push('.');
        s
    }
}

/// A plan as `drctl plan` and `--dry-run` show it: steps in level order with what each sees
/// and would change, and the critical path. Durations are milliseconds.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlanView {
    pub schema_version: u32,
    pub runbook: String,
    pub environment: String,
    pub counts: PlanCounts,
    pub steps: Vec<PlanStep>,
    pub critical_path: Vec<String>,
    pub critical_path_estimate_ms: u64,
    pub max_parallel: usize,
    /// For a recovery plan: its critical path weighed with past durations, against the RTO
    /// target (set by `with_prediction`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_rto: Option<crate::report::Prediction>,
}

impl PlanView {
    pub async fn build(services: &Services, env: &Arc<Environment>, plan: &Plan) -> PlanView {
        let observed = observe_plan(services, env, plan).await;
        let (critical, total) = plan.critical_path();
        let steps = plan
            .levels()
            .into_iter()
            .flatten()
            .map(|i| {
                let s = &plan.steps[i];
                let o = &observed[i];
                PlanStep {
                    id: s.id().to_string(),
                    kind: s.kind.value.clone(),
                    level: plan.level[i],
                    depends_on: plan.deps[i]
                        .iter()
                        .map(|&d| plan.steps[d].id().to_string())
                        .collect(),
                    state: o.seen,
                    current: unresolved(&o.current),
                    intended: unresolved(&o.intended),
                    reversibility: match s.spec.step().reversibility() {
                        Reversibility::Reversible => "undoable",
                        Reversibility::NothingToUndo => "-",
                        Reversibility::Irreversible(_) => "IRREVERSIBLE",
                    },
                    critical: critical.contains(&i),
                }
            })
            .collect();
        let mut counts = PlanCounts {
            steps: plan.steps.len(),
            ..Default::default()
        };
        for (i, o) in observed.iter().enumerate() {
            match o.seen {
                Seen::AlreadyDone => counts.already_done += 1,
                Seen::Unknown => counts.unknown += 1,
                Seen::ToDo | Seen::ToDoUnobservable => {
                    let rev = plan.steps[i].spec.step().reversibility();
                    // A wait, a check or a gate "to do" changes nothing.
                    if rev != Reversibility::NothingToUndo {
                        counts.will_change += 1;
                    }
                    if matches!(rev, Reversibility::Irreversible(_)) {
                        counts.irreversible += 1;
                    }
                }
            }
        }
        PlanView {
            schema_version: crate::SCHEMA_VERSION,
            runbook: plan.name.clone(),
            environment: env.name.clone(),
            counts,
            steps,
            critical_path: critical
                .iter()
                .map(|&i| plan.steps[i].id().to_string())
                .collect(),
            critical_path_estimate_ms: total.as_millis() as u64,
            max_parallel: plan.max_parallel,
            predicted_rto: None,
        }
    }

    /// Add the predicted RTO of a recovery plan, from the state dir's past runs.
    pub async fn with_prediction(
        mut self,
        state: &super::StateStore,
        env: &Environment,
        plan: &Plan,
    ) -> PlanView {
        if crate::report::model::is_recovery(plan) {
            self.predicted_rto =
                Some(super::report::predict(state, &env.name, plan, &env.targets).await);
        }
        self
    }
}
