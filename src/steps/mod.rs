//! Step kinds: one file per kind, each with its spec (serde) and its observe / execute /
//! verify / undo. The set of kinds is closed: [`StepSpec`] lists them all.
//!
//! The contract every kind keeps, so that the engine can be crash-safe:
//! - `observe` is read-only. It says whether the target state already holds, what is there now,
//!   and captures the `prior` state that undo needs. The engine journals `prior` *before*
//!   calling `execute`, so an undo is possible even if drctl dies mid-action.
//! - `execute` is idempotent: called again after a crash it must not do the work twice.
//! - `verify` waits (bounded by the step timeout) until the change is visible.
//! - `undo` puts back what `prior` recorded, or the kind declares itself irreversible.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::de::{self, Deserialize, Deserializer};
use serde_json::Value;
use serde_saphyr::Spanned;
use tokio_util::sync::CancellationToken;

use crate::config::env::{Environment, Role};
use crate::config::template;

pub mod approval;
pub mod asg_scale;
pub mod backup_copy;
pub mod cloudfront_origin;
pub mod ec2_image;
pub mod ec2_launch_template;
pub mod elbv2_healthy;
pub mod exec;
pub mod http_check;
pub mod notify;
pub mod rds_fence;
pub mod rds_promote;
pub mod route53_failover;
pub mod route53_record;
pub mod route53_verify;
pub mod wait;

#[cfg(test)]
pub mod testing;

/// Whether the state a step wants is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfied {
    /// Target state holds: executing would be a no-op.
    Done,
    /// Target state does not hold: execute would change something.
    NotDone,
    /// This kind cannot tell (e.g. `exec` without a `check` command).
    Unknown,
}

/// The read-only view of a step before it acts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Observation {
    pub state: Satisfied,
    /// What is there now, for people.
    pub current: String,
    /// What executing would change, for people.
    pub intended: String,
    /// What undo needs to put things back. Journaled before `execute`.
    pub prior: Value,
    /// When the state already holds: the step's result as if it had just run (e.g. the
    /// promoted endpoint), so `${steps.ID.KEY}` works for later steps on a re-run.
    pub result: Value,
}

impl Observation {
    pub fn new(state: Satisfied, current: impl Into<String>, intended: impl Into<String>) -> Self {
        Self {
            state,
            current: current.into(),
            intended: intended.into(),
            prior: Value::Null,
            result: Value::Null,
        }
    }

    pub fn with_result(mut self, result: Value) -> Self {
        self.result = result;
        self
    }

    pub fn with_prior(mut self, prior: Value) -> Self {
        self.prior = prior;
        self
    }
}

/// Whether and how a completed step can be undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reversibility {
    /// Undo puts the prior state back.
    Reversible,
    /// Changes nothing that needs undoing (waits, checks, approvals, notifications).
    NothingToUndo,
    /// Cannot be undone; the text says why and what to do instead.
    Irreversible(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Worth another attempt (timeouts, throttling, a state that has not settled yet).
    #[error("{0}")]
    Retryable(String),
    /// Another attempt would fail the same way (refused precondition, bad parameters).
    #[error("{0}")]
    Permanent(String),
    /// Shutdown was requested; the step stopped at a safe point.
    #[error("interrupted by shutdown")]
    Interrupted,
}

impl StepError {
    pub fn retryable(msg: impl Into<String>) -> Self {
        StepError::Retryable(msg.into())
    }
    pub fn permanent(msg: impl Into<String>) -> Self {
        StepError::Permanent(msg.into())
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, StepError::Retryable(_))
    }
}

/// A problem found while validating a step's parameters against the environment.
#[derive(Debug, Clone)]
pub struct Problem {
    pub at: Option<serde_saphyr::Location>,
    pub message: String,
}

/// Who approved a gated step, and how.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Approval {
    pub by: String,
    /// `prompt`, `cli` (`drctl approve` from another terminal) or `--yes`.
    pub via: String,
    #[serde(default)]
    pub comment: Option<String>,
}

/// The engine's side of an `approval` step: asks a human and waits.
#[async_trait]
pub trait ApprovalGate: Send + Sync {
    async fn request(&self, step: &str, message: &str) -> Result<Approval, StepError>;
}

/// Sink for progress notes: (step id, message).
pub type Notes = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Everything a step may use while it runs. Built by the engine, one per step attempt.
#[derive(Clone)]
pub struct StepCx {
    pub run_id: String,
    pub step_id: String,
    pub env: Arc<Environment>,
    pub http: reqwest::Client,
    pub aws: Arc<crate::aws::Aws>,
    pub approvals: Arc<dyn ApprovalGate>,
    pub shutdown: CancellationToken,
    /// Results of completed steps, for `${steps.ID.KEY}` references.
    pub outputs: Arc<Mutex<BTreeMap<String, Value>>>,
    /// Progress notes for the terminal ("waiting for status available").
    pub notes: Notes,
    /// Warnings the engine journals (as `Event::Warning`) when the attempt ends.
    pub warnings: Arc<Mutex<Vec<String>>>,
}

impl StepCx {
    /// Fill `${...}` references from the environment, the run and earlier steps' outputs.
    pub fn render(&self, text: &str) -> Result<String, StepError> {
        let outputs = self.outputs.lock().expect("outputs lock").clone();
        let ctx = template::context(&self.env, &self.run_id, &outputs);
        template::render(text, &ctx).map_err(StepError::permanent)
    }

    pub fn note(&self, msg: &str) {
        (self.notes)(&self.step_id, msg)
    }

    /// Something the operator must know that does not fail the step (a fence skipped because
    /// the primary is unreachable). Journaled by the engine at the end of the attempt.
    pub fn warn(&self, msg: &str) {
        self.warnings
            .lock()
            .expect("warnings lock")
            .push(msg.to_string());
    }

    /// Poll `check` every `interval` until it yields a value. Bounded by the step timeout the
    /// engine enforces; retryable errors (throttling, a slow region) are noted and polled
    /// through, permanent ones end the wait.
    pub async fn poll<T, F, Fut>(
        &self,
        what: &str,
        interval: Duration,
        mut check: F,
    ) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, StepError>>,
    {
        let mut n = 0u32;
        loop {
            match check().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) if e.is_retryable() => self.note(&format!("{what}: {e} (will poll again)")),
                Err(e) => return Err(e),
            }
            n += 1;
            if n == 1 || n.is_multiple_of(10) {
                self.note(&format!("waiting: {what}"));
            }
            self.sleep(interval).await?;
        }
    }

    /// Sleep that ends early, with `Interrupted`, when shutdown is requested.
    pub async fn sleep(&self, d: Duration) -> Result<(), StepError> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.shutdown.cancelled() => Err(StepError::Interrupted),
        }
    }
}

/// One kind of step. See the module docs for the contract.
#[async_trait]
pub trait Step: Send + Sync {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError>;
    /// Make the change. Returns data for verify, undo and later steps (`${steps.ID.KEY}`).
    async fn execute(&self, cx: &StepCx, obs: &Observation) -> Result<Value, StepError>;
    async fn verify(&self, _cx: &StepCx, _result: &Value) -> Result<(), StepError> {
        Ok(())
    }
    /// Put back what `prior` recorded. `result` is Null if drctl died before journaling it.
    async fn undo(&self, _cx: &StepCx, _prior: &Value, _result: &Value) -> Result<(), StepError> {
        Ok(())
    }
    fn reversibility(&self) -> Reversibility;
    /// Strings that may hold `${...}` references, for validation.
    fn templates(&self) -> Vec<&Spanned<String>> {
        Vec::new()
    }
    /// Kind-specific checks against the environment (resources that must exist).
    fn validate(&self, _env: &Environment) -> Vec<Problem> {
        Vec::new()
    }
    /// A rough duration for the plan's critical path.
    fn estimate(&self) -> Duration {
        Duration::from_secs(1)
    }
    /// The IAM actions this step calls, each with the resource ARN it acts on (`*` when the
    /// API does not support resource-level permissions or the ARN is not known).
    fn iam(&self, _env: &Environment) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

macro_rules! step_kinds {
    ($( $(#[$attr:meta])* $name:literal => $variant:ident($module:ident :: $ty:ident) ),* $(,)?) => {
        /// Every step kind drctl knows, with its parameters.
        #[derive(Debug, Clone)]
        pub enum StepSpec { $( $(#[$attr])* $variant($module::$ty) ),* }

        impl StepSpec {
            /// The kind names, in the order of the list below.
            // Pushes rather than `vec![]`: a `#[cfg]` may drop an entry.
            #[allow(clippy::vec_init_then_push)]
            pub fn kinds() -> Vec<&'static str> {
                let mut v = Vec::new();
                $( $(#[$attr])* v.push($name); )*
                v
            }

            pub fn kind(&self) -> &'static str {
                match self { $( $(#[$attr])* StepSpec::$variant(_) => $name ),* }
            }

            pub fn deserialize_kind<'de, D: Deserializer<'de>>(kind: &str, d: D) -> Result<Self, D::Error> {
                match kind {
                    $( $(#[$attr])* $name => <$module::$ty as Deserialize>::deserialize(d).map(StepSpec::$variant), )*
                    other => Err(de::Error::custom(format!("unknown step kind `{other}`"))),
                }
            }

            pub fn step(&self) -> &dyn Step {
                match self { $( $(#[$attr])* StepSpec::$variant(s) => s ),* }
            }

            /// JSON Schema of each kind's `with` parameters.
            #[allow(clippy::vec_init_then_push)]
            pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
                let mut v = Vec::new();
                $( $(#[$attr])* v.push(($name, schemars::schema_for!($module::$ty))); )*
                v
            }
        }
    };
}

step_kinds! {
    "wait" => Wait(wait::Wait),
    "approval" => Approval(approval::ApprovalStep),
    "http.check" => HttpCheck(http_check::HttpCheck),
    "exec" => Exec(exec::Exec),
    "notify" => Notify(notify::Notify),
    "rds.promote_replica" => RdsPromote(rds_promote::PromoteReplica),
    "rds.fence_primary" => RdsFence(rds_fence::FencePrimary),
    "route53.upsert_record" => Route53Upsert(route53_record::UpsertRecord),
    "route53.force_failover" => Route53Force(route53_failover::ForceFailover),
    "route53.verify_failover" => Route53Verify(route53_verify::VerifyFailover),
    "cloudfront.promote_origin" => CloudFrontPromote(cloudfront_origin::PromoteOrigin),
    "backup.copy_recovery_point" => BackupCopy(backup_copy::CopyRecoveryPoint),
    "ec2.latest_image" => Ec2LatestImage(ec2_image::LatestImage),
    "ec2.update_launch_template" => Ec2UpdateLaunchTemplate(ec2_launch_template::UpdateLaunchTemplate),
    "asg.scale" => AsgScale(asg_scale::Scale),
    "elbv2.wait_healthy" => Elbv2WaitHealthy(elbv2_healthy::WaitHealthy),
    #[cfg(test)]
    "test.step" => Test(testing::TestStep),
}

impl StepSpec {
    /// Parameters when a step has no `with`: only kinds whose fields are all optional.
    pub fn from_empty(kind: &str) -> Result<Self, String> {
        let d = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
            std::iter::empty::<(String, String)>(),
        );
        Self::deserialize_kind(kind, d).map_err(|e| e.to_string())
    }
}

/// Serde helper: `Spanned<String>` fields are plain strings in the schema.
pub(crate) type Text = Spanned<String>;

fn default_standby() -> Role {
    Role::Standby
}
fn default_primary() -> Role {
    Role::Primary
}
fn default_poll() -> Duration {
    Duration::from_millis(500)
}

/// A problem with no better location than the step's `kind`.
fn problem(message: impl Into<String>) -> Problem {
    Problem {
        at: None,
        message: message.into(),
    }
}

/// The database of the region playing `role`, or a permanent error naming what is missing.
fn database(env: &Environment, role: Role) -> Result<&crate::config::env::Database, StepError> {
    env.resources(role).database.as_ref().ok_or_else(|| {
        StepError::permanent(format!(
            "the {role} region ({}) has no `database` in the environment",
            env.region_of(role)
        ))
    })
}

/// `arn:aws:SERVICE:REGION:*:RESOURCE` for IAM statements when the account is not known.
fn arn(service: &str, region: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{region}:*:{resource}")
}
