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

use crate::aws::{Aws, AwsError};
use crate::config::env::{Environment, Role};
pub use crate::config::Problem;
use crate::config::{template, StepKinds};
pub use crate::journal::{FenceRecord, Measure, Satisfied};

/// A runbook whose steps are drctl's kinds.
pub type Runbook = crate::config::Runbook<StepSpec>;
/// One step of a [`Runbook`].
pub type StepDef = crate::config::runbook::StepDef<StepSpec>;

pub mod approval;
pub mod asg_scale;
pub mod backup_copy;
pub mod cloudfront_origin;
pub mod drill_app;
pub mod drill_database;
pub mod drill_readiness;
pub mod ec2_image;
pub mod ec2_launch_template;
pub mod elbv2_healthy;
pub mod exec;
pub mod http_check;
pub mod iam;
pub mod notify;
pub mod rds_fence;
pub mod rds_promote;
pub mod rds_replica;
pub mod rds_retire;
pub mod route53_answers;
pub mod route53_failover;
pub mod route53_gate;
pub mod route53_hold;
pub mod route53_record;
pub mod route53_verify;
pub mod wait;

#[cfg(test)]
pub(crate) mod kind_tests;
#[cfg(test)]
pub mod testing;

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

impl From<AwsError> for StepError {
    fn from(e: AwsError) -> Self {
        if e.is_retryable() {
            StepError::Retryable(e.to_string())
        } else {
            StepError::Permanent(e.to_string())
        }
    }
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

/// What steps reach the world through: AWS and plain HTTP. The engine carries it without
/// looking inside (steno's `ExecContextType`): only steps know what it holds.
#[derive(Clone)]
pub struct Services {
    pub aws: Arc<dyn Aws>,
    pub http: reqwest::Client,
    /// Whole-environment checks, given by the run (they need the topology, above steps).
    pub checks: Option<Arc<dyn EnvironmentChecks>>,
}

impl Services {
    pub fn new(aws: Arc<dyn Aws>) -> Self {
        Self {
            aws,
            http: http_client(),
            checks: None,
        }
    }
}

/// One readiness check, as `drctl check` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckRow {
    pub name: String,
    /// `pass`, `warn` or `fail`.
    pub status: String,
    pub reason: String,
}

/// Checks of the whole environment that a step cannot make from the layer it lives in (they
/// observe the topology): the run gives them to steps through [`Services`].
#[async_trait]
pub trait EnvironmentChecks: Send + Sync {
    /// The observed phase, and the readiness checks `drctl check` makes, each within `limit`.
    async fn readiness(&self, env: &Environment, limit: Duration) -> (String, Vec<CheckRow>);
}

/// The client for `http.check` and notifications: bounded connect and whole-request times.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("drctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with rustls and no system configuration builds")
}

/// Something a step tells the journal besides its result, journaled by the engine after the
/// step's execute and again at the end of the attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum StepReport {
    /// Something the operator must know that does not fail the step.
    Warning(String),
    /// A number reports need (the replica lag at promotion is the run's RPO).
    Measured(Measure, f64),
    /// A database was fenced, or could not be reached to be (an outstanding fence).
    Fence(FenceRecord),
}

/// Everything a step may use while it runs. Built by the engine, one per step attempt.
#[derive(Clone)]
pub struct StepCx {
    pub run_id: String,
    pub step_id: String,
    pub env: Arc<Environment>,
    pub http: reqwest::Client,
    pub aws: Arc<dyn Aws>,
    pub approvals: Arc<dyn ApprovalGate>,
    pub shutdown: CancellationToken,
    /// Results of completed steps, for `${steps.ID.KEY}` references.
    pub outputs: Arc<Mutex<BTreeMap<String, Value>>>,
    /// Progress notes for the terminal ("waiting for status available").
    pub notes: Notes,
    /// Warnings and measurements the engine journals.
    pub reports: Arc<Mutex<Vec<StepReport>>>,
    /// Whole-environment checks, when the run gives them (see [`EnvironmentChecks`]).
    pub checks: Option<Arc<dyn EnvironmentChecks>>,
}

/// The run-wide parts of a [`StepCx`].
pub struct CxParts {
    pub run_id: String,
    pub env: Arc<Environment>,
    pub approvals: Arc<dyn ApprovalGate>,
    pub shutdown: CancellationToken,
    pub outputs: Arc<Mutex<BTreeMap<String, Value>>>,
    pub notes: Notes,
}

impl StepCx {
    pub fn new(services: &Services, step_id: &str, p: CxParts) -> Self {
        StepCx {
            run_id: p.run_id,
            step_id: step_id.to_string(),
            env: p.env,
            http: services.http.clone(),
            aws: services.aws.clone(),
            approvals: p.approvals,
            shutdown: p.shutdown,
            outputs: p.outputs,
            notes: p.notes,
            reports: Arc::new(Mutex::new(Vec::new())),
            checks: services.checks.clone(),
        }
    }

    /// What the step reported since the last call (the engine journals it).
    pub fn take_reports(&self) -> Vec<StepReport> {
        std::mem::take(&mut *self.reports.lock().expect("reports lock"))
    }

    /// Record a measurement (journaled by the engine).
    pub fn measure(&self, what: Measure, value: f64) {
        self.report(StepReport::Measured(what, value));
    }

    pub fn report(&self, r: StepReport) {
        self.reports.lock().expect("reports lock").push(r);
    }

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
        self.reports
            .lock()
            .expect("reports lock")
            .push(StepReport::Warning(msg.to_string()));
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
    /// Whether the kind moves users' traffic (DNS answers, the CDN's origin, the failover
    /// gate): an `http.check` after it checks from outside, and a run with it recovers
    /// service (its RTO is judged).
    fn moves_traffic(&self) -> bool {
        false
    }
    /// Whether the kind restores service by itself (a database promotion), without moving
    /// traffic: a run with it has its RTO judged too.
    fn recovers_service(&self) -> bool {
        self.moves_traffic()
    }
    /// Whether the kind makes drill resources beside production: only safe inside `drctl
    /// drill` (its preflight, its guard on the primary and its teardown).
    fn makes_drill_resources(&self) -> bool {
        false
    }
    /// Strings that may hold `${...}` references, for validation.
    fn templates(&self) -> Vec<&Spanned<String>> {
        Vec::new()
    }
    /// Kind-specific checks against the environment (resources that must exist).
    fn validate(&self, _env: &Environment) -> Vec<Problem> {
        Vec::new()
    }
    /// The keys of its result that later steps may use as `${steps.ID.KEY}`. Empty: not
    /// declared (no check).
    fn outputs(&self) -> &'static [&'static str] {
        &[]
    }
    /// A rough duration for the plan's critical path.
    fn estimate(&self) -> Duration {
        Duration::from_secs(1)
    }
    /// Done, it leaves production without a writer until a later step gives it one again (a
    /// fence). A gate that waits after such a step waits with writes off: it gets a deadline,
    /// at which the engine undoes this step and pauses the run.
    fn stops_writes(&self) -> bool {
        false
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
            /// Whether the step calls AWS (a run with none needs no AWS credentials).
            pub fn uses_aws(&self) -> bool {
                const AWS: &[&str] = &["rds.", "route53.", "cloudfront.", "backup.", "ec2.", "asg.", "elbv2.", "drill."];
                AWS.iter().any(|p| self.kind().starts_with(p))
            }

            pub fn kind(&self) -> &'static str {
                match self { $( $(#[$attr])* StepSpec::$variant(_) => $name ),* }
            }

            pub fn step(&self) -> &dyn Step {
                match self { $( $(#[$attr])* StepSpec::$variant(s) => s ),* }
            }
        }

        impl StepKinds for StepSpec {
            /// The kind names, in the order of the list below.
            // Pushes rather than `vec![]`: a `#[cfg]` may drop an entry.
            #[allow(clippy::vec_init_then_push)]
            fn kinds() -> Vec<&'static str> {
                let mut v = Vec::new();
                $( $(#[$attr])* v.push($name); )*
                v
            }

            fn deserialize_kind<'de, D: Deserializer<'de>>(kind: &str, d: D) -> Result<Self, D::Error> {
                match kind {
                    $( $(#[$attr])* $name => <$module::$ty as Deserialize>::deserialize(d).map(StepSpec::$variant), )*
                    other => Err(de::Error::custom(format!("unknown step kind `{other}`"))),
                }
            }

            /// JSON Schema of each kind's `with` parameters.
            #[allow(clippy::vec_init_then_push)]
            fn schemas() -> Vec<(&'static str, schemars::Schema)> {
                let mut v = Vec::new();
                $( $(#[$attr])* v.push(($name, schemars::schema_for!($module::$ty))); )*
                v
            }

            fn irreversible(&self) -> Option<&'static str> {
                match self.step().reversibility() {
                    Reversibility::Irreversible(why) => Some(why),
                    _ => None,
                }
            }

            fn is_approval(&self) -> bool {
                matches!(self, StepSpec::Approval(_))
            }

            fn templates(&self) -> Vec<&Spanned<String>> {
                self.step().templates()
            }

            fn validate(&self, env: &Environment) -> Vec<Problem> {
                self.step().validate(env)
            }

            fn outputs(&self) -> &'static [&'static str] {
                self.step().outputs()
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
    "rds.create_replica" => RdsCreateReplica(rds_replica::CreateReplica),
    "rds.retire_instance" => RdsRetire(rds_retire::RetireInstance),
    "route53.upsert_record" => Route53Upsert(route53_record::UpsertRecord),
    "route53.force_failover" => Route53Force(route53_failover::ForceFailover),
    "route53.verify_failover" => Route53Verify(route53_verify::VerifyFailover),
    "route53.hold_failover" => Route53Hold(route53_hold::HoldFailover),
    "route53.set_gate" => Route53Gate(route53_gate::SetGate),
    "route53.verify_answers" => Route53Answers(route53_answers::VerifyAnswers),
    "cloudfront.promote_origin" => CloudFrontPromote(cloudfront_origin::PromoteOrigin),
    "backup.copy_recovery_point" => BackupCopy(backup_copy::CopyRecoveryPoint),
    "ec2.latest_image" => Ec2LatestImage(ec2_image::LatestImage),
    "ec2.update_launch_template" => Ec2UpdateLaunchTemplate(ec2_launch_template::UpdateLaunchTemplate),
    "asg.scale" => AsgScale(asg_scale::Scale),
    "elbv2.wait_healthy" => Elbv2WaitHealthy(elbv2_healthy::WaitHealthy),
    "drill.restore_database" => DrillRestoreDatabase(drill_database::RestoreDatabase),
    "drill.serve_app" => DrillServeApp(drill_app::ServeApp),
    "drill.readiness" => DrillReadiness(drill_readiness::Readiness),
    #[cfg(test)]
    "test.step" => Test(testing::TestStep),
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
    Problem::new(message)
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
