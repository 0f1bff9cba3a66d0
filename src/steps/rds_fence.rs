//! `rds.fence_primary`: stop the old primary from taking writes, where it can still be reached,
//! so that two writers never exist. Best effort and bounded: an unreachable primary region is
//! a journaled warning and the step succeeds as "skipped: primary unreachable".
//!
//! Methods: `stop` (StopDBInstance: no connections at all; what the sandbox supports) and
//! `parameter_group` (ModifyDBInstance to a group with `read_only = 1`, applied at once: the
//! honest fence on AWS, where an instance that still has read replicas cannot be stopped).

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::rds_promote::db_of;
use super::{
    arn, database, default_poll, default_primary, problem, Observation, Problem, Reversibility,
    Satisfied, Step, StepCx, StepError,
};
use crate::aws::rds::DbInstance;
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FenceMethod {
    Stop,
    ParameterGroup,
}

fn default_method() -> FenceMethod {
    FenceMethod::Stop
}
fn default_reach() -> Duration {
    Duration::from_secs(15)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FencePrimary {
    /// The region whose database is fenced.
    #[serde(default = "default_primary")]
    pub role: Role,
    #[serde(default = "default_method")]
    pub method: FenceMethod,
    /// With `method: parameter_group`: a DB parameter group that sets `read_only = 1`.
    #[serde(default)]
    pub parameter_group: Option<String>,
    /// How long to try to reach the primary before declaring it unreachable.
    #[serde(default = "default_reach", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub reach_timeout: Duration,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

enum Reach {
    Up(DbInstance),
    Unreachable(String),
}

impl FencePrimary {
    async fn reach(&self, cx: &StepCx) -> Result<Reach, StepError> {
        let db = database(&cx.env, self.role)?;
        let region = cx.env.region_of(self.role).to_string();
        let call = async { cx.aws.rds(&region).await.describe(&db.instance_id).await };
        match tokio::time::timeout(self.reach_timeout, call).await {
            Ok(Ok(d)) => Ok(Reach::Up(d)),
            Ok(Err(e)) if e.is_unreachable() => Ok(Reach::Unreachable(e.to_string())),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Ok(Reach::Unreachable(format!(
                "rds DescribeDBInstances in {region}: no answer within {}",
                humantime::format_duration(self.reach_timeout)
            ))),
        }
    }

    fn fenced(&self, db: &DbInstance) -> bool {
        match self.method {
            FenceMethod::Stop => matches!(db.status.as_str(), "stopped" | "stopping"),
            // The parameter group is not in our DbInstance view; a modify is cheap and idempotent.
            FenceMethod::ParameterGroup => false,
        }
    }
}

#[async_trait]
impl Step for FencePrimary {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        Ok(match self.reach(cx).await? {
            Reach::Up(db) if self.fenced(&db) => Observation::new(
                Satisfied::Done,
                format!("{} is {}", db.id, db.status),
                "nothing: already fenced",
            )
            .with_result(json!({"fenced": true, "instance_id": db.id})),
            Reach::Up(db) => Observation::new(
                Satisfied::NotDone,
                format!("{} is {} and may take writes", db.id, db.status),
                format!("fence {} ({:?})", db.id, self.method),
            )
            .with_prior(json!({"status": db.status})),
            Reach::Unreachable(why) => Observation::new(
                Satisfied::NotDone,
                format!("primary unreachable: {why}"),
                "skip the fence with a warning: the primary cannot be reached",
            )
            .with_prior(json!({"unreachable": why})),
        })
    }

    async fn execute(&self, cx: &StepCx, obs: &Observation) -> Result<Value, StepError> {
        // Observe just spent reach_timeout finding the region dark: do not spend it twice.
        let reach = match obs.prior.get("unreachable").and_then(Value::as_str) {
            Some(why) => Reach::Unreachable(why.to_string()),
            None => self.reach(cx).await?,
        };
        let db = match reach {
            Reach::Up(db) => db,
            Reach::Unreachable(why) => {
                cx.warn(&format!(
                    "fence skipped: primary unreachable ({why}). The old primary may still accept writes if its region comes back: \
                     stop it (or set read_only) before it does"
                ));
                return Ok(
                    json!({"fenced": false, "skipped": "primary unreachable", "reason": why}),
                );
            }
        };
        let region = cx.env.region_of(self.role).to_string();
        let rds = cx.aws.rds(&region).await;
        match self.method {
            FenceMethod::Stop if self.fenced(&db) => {}
            FenceMethod::Stop => {
                cx.note(&format!("stopping {} so it takes no writes", db.id));
                rds.stop(&db.id).await?;
            }
            FenceMethod::ParameterGroup => {
                let group = self.parameter_group.as_deref().ok_or_else(|| {
                    StepError::permanent("method parameter_group needs `parameter_group`")
                })?;
                rds.set_parameter_group(&db.id, group).await?;
            }
        }
        Ok(
            json!({"fenced": true, "instance_id": db.id, "method": format!("{:?}", self.method).to_lowercase()}),
        )
    }

    async fn verify(&self, cx: &StepCx, result: &Value) -> Result<(), StepError> {
        if result["fenced"] != json!(true) || self.method != FenceMethod::Stop {
            return Ok(());
        }
        cx.poll("the old primary to stop", self.poll_interval, || async {
            Ok(match self.reach(cx).await? {
                Reach::Up(db) => self.fenced(&db).then_some(()),
                // It went dark after we stopped it: nothing more to wait for.
                Reach::Unreachable(_) => Some(()),
            })
        })
        .await
    }

    async fn undo(&self, cx: &StepCx, _prior: &Value, result: &Value) -> Result<(), StepError> {
        if result["fenced"] != json!(true) || self.method != FenceMethod::Stop {
            return Ok(());
        }
        let db = database(&cx.env, self.role)?;
        let rds = cx.aws.rds(cx.env.region_of(self.role)).await;
        let cur = rds.describe(&db.instance_id).await?;
        if cur.status == "stopped" {
            rds.start(&db.instance_id).await?;
        }
        Ok(())
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        let mut p = vec![];
        if env.resources(self.role).database.is_none() {
            p.push(problem(format!(
                "the {} region ({}) has no `database`",
                self.role,
                env.region_of(self.role)
            )));
        }
        if self.method == FenceMethod::ParameterGroup && self.parameter_group.is_none() {
            p.push(problem(
                "method parameter_group needs `parameter_group` (a group with read_only = 1)",
            ));
        }
        p
    }

    fn estimate(&self) -> Duration {
        self.reach_timeout
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let (region, db) = db_of(env, self.role);
        let a = arn("rds", region, &format!("db:{db}"));
        let mut v = vec![("rds:DescribeDBInstances", a.clone())];
        match self.method {
            FenceMethod::Stop => v.extend([
                ("rds:StopDBInstance", a.clone()),
                ("rds:StartDBInstance", a),
            ]),
            FenceMethod::ParameterGroup => {
                v.push(("rds:ModifyDBInstance", a));
                v.push((
                    "rds:ModifyDBInstance",
                    arn(
                        "rds",
                        region,
                        &format!("pg:{}", self.parameter_group.as_deref().unwrap_or("*")),
                    ),
                ));
            }
        }
        v
    }
}
