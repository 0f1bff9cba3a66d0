//! `rds.fence_primary`: stop the old primary from taking writes, where it can still be reached,
//! so that two writers never exist. Best effort and bounded: an unreachable primary region is
//! a journaled warning and the step succeeds as "skipped: primary unreachable".
//!
//! Methods:
//! - `read_only` (default): set MySQL's dynamic `read_only = 1` in the DB parameter group the
//!   instance uses (ModifyDBParameterGroup, ApplyMethod immediate: no reboot), then wait until
//!   RDS reports the group `in-sync` and the value in effect. Works while the instance still has
//!   read replicas, which AWS does not allow to be stopped. The group must be the instance's
//!   own: every instance using it becomes read-only, and a `default.*` group cannot be changed.
//! - `stop` (StopDBInstance: no connections at all): only for an instance without replicas
//!   (after a promotion unlinked them); RDS refuses it otherwise.
//!
//! (Associating a different, read-only parameter group is not a fence: RDS applies a newly
//! associated group only at the next reboot, and the instance takes writes until then.)

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::rds_promote::db_of;
use super::{
    arn, database, default_poll, default_primary, problem, FenceRecord, Observation, Problem,
    Reversibility, Satisfied, Step, StepCx, StepError, StepReport,
};
use crate::aws::rds::DbInstance;
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FenceMethod {
    ReadOnly,
    Stop,
}

impl FenceMethod {
    fn name(self) -> &'static str {
        match self {
            FenceMethod::ReadOnly => "read_only",
            FenceMethod::Stop => "stop",
        }
    }
}

fn default_method() -> FenceMethod {
    FenceMethod::ReadOnly
}

/// The MySQL parameter that refuses writes from every user without SUPER.
const READ_ONLY: &str = "read_only";

fn is_on(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "ON" | "on" | "true" | "TRUE"))
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
    /// A planned switchover or failback: the fence must succeed. An unreachable instance
    /// fails the step (and the run waits) instead of being skipped with a warning.
    #[serde(default)]
    pub require: bool,
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

    /// Fence the instance, or report it unreachable (a warning, or an error if required).
    async fn fence(&self, cx: &StepCx, obs: &Observation) -> Result<Value, StepError> {
        // Observe just spent reach_timeout finding the region dark: do not spend it twice.
        let reach = match obs.prior.get("unreachable").and_then(Value::as_str) {
            Some(why) => Reach::Unreachable(why.to_string()),
            None => self.reach(cx).await?,
        };
        let db = match reach {
            Reach::Up(db) => db,
            Reach::Unreachable(why) if self.require => {
                return Err(StepError::retryable(format!(
                    "cannot fence: {why}. This fence is required (a planned switchover): \
                     with the region dark, run an unplanned failover instead"
                )));
            }
            Reach::Unreachable(why) => {
                cx.report(StepReport::Fence(FenceRecord {
                    region: cx.env.region_of(self.role).to_string(),
                    instance_id: database(&cx.env, self.role)?.instance_id.clone(),
                    fenced: false,
                    detail: format!("unreachable: {why}"),
                }));
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
        if !self.fenced(cx, &db).await? {
            match self.method {
                FenceMethod::Stop => {
                    cx.note(&format!("stopping {} so it takes no writes", db.id));
                    rds.stop(&db.id).await?;
                }
                FenceMethod::ReadOnly => {
                    let group = db
                        .parameter_group
                        .as_deref()
                        .filter(|g| !g.starts_with("default."))
                        .ok_or_else(|| {
                            StepError::permanent(format!(
                                "{} uses {}, which cannot be changed: give the instance a DB parameter group of its own \
                                 (ModifyDBInstance, applied at its next reboot) so drctl can set read_only in it",
                                db.id,
                                db.parameter_group.as_deref().unwrap_or("no parameter group")
                            ))
                        })?;
                    cx.note(&format!("setting read_only = 1 in {group} ({})", db.id));
                    rds.set_parameter(group, READ_ONLY, "1").await?;
                }
            }
        }
        cx.report(StepReport::Fence(FenceRecord {
            region,
            instance_id: db.id.clone(),
            fenced: true,
            detail: self.method.name().into(),
        }));
        Ok(json!({
            "fenced": true,
            "instance_id": db.id,
            "method": self.method.name(),
            "parameter_group": db.parameter_group,
        }))
    }

    /// Whether `db` takes writes again, settled: available, and with `read_only` off in effect
    /// (not merely asked for: the group `in-sync`).
    async fn takes_writes(&self, cx: &StepCx, db: &DbInstance) -> Result<bool, StepError> {
        if db.status != "available" {
            return Ok(false);
        }
        let Some(group) = &db.parameter_group else {
            return Ok(true);
        };
        let rds = cx.aws.rds(cx.env.region_of(self.role)).await;
        let value = rds.parameter(group, READ_ONLY).await?;
        Ok(!is_on(value.as_deref()) && db.parameter_apply_status.as_deref() == Some("in-sync"))
    }

    /// Whether `db` takes no writes now, by this step's method. A stopped instance takes
    /// none, whatever the method.
    async fn fenced(&self, cx: &StepCx, db: &DbInstance) -> Result<bool, StepError> {
        if matches!(db.status.as_str(), "stopped" | "stopping") {
            return Ok(true);
        }
        match self.method {
            FenceMethod::Stop => Ok(false),
            FenceMethod::ReadOnly => {
                let Some(group) = &db.parameter_group else {
                    return Ok(false);
                };
                let rds = cx.aws.rds(cx.env.region_of(self.role)).await;
                let value = rds.parameter(group, READ_ONLY).await?;
                Ok(is_on(value.as_deref())
                    && db.parameter_apply_status.as_deref() == Some("in-sync"))
            }
        }
    }
}

#[async_trait]
impl Step for FencePrimary {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        Ok(match self.reach(cx).await? {
            Reach::Up(db) if self.fenced(cx, &db).await? => {
                // Journaled with the step: an outstanding fence is settled by finding it done.
                cx.report(StepReport::Fence(FenceRecord {
                    region: cx.env.region_of(self.role).to_string(),
                    instance_id: db.id.clone(),
                    fenced: true,
                    detail: format!("already fenced ({})", db.status),
                }));
                Observation::new(
                    Satisfied::Done,
                    format!("{} is {} and takes no writes", db.id, db.status),
                    "nothing: already fenced",
                )
                .with_result(
                    json!({"fenced": true, "instance_id": db.id, "method": self.method.name()}),
                )
            }
            Reach::Up(db) => {
                let read_only = match (&db.parameter_group, self.method) {
                    (Some(g), FenceMethod::ReadOnly) => {
                        cx.aws
                            .rds(cx.env.region_of(self.role))
                            .await
                            .parameter(g, READ_ONLY)
                            .await?
                    }
                    _ => None,
                };
                Observation::new(
                    Satisfied::NotDone,
                    format!("{} is {} and may take writes", db.id, db.status),
                    format!("fence {} ({})", db.id, self.method.name()),
                )
                .with_prior(json!({
                    "status": db.status,
                    "parameter_group": db.parameter_group,
                    "read_only": read_only,
                }))
            }
            Reach::Unreachable(why) => Observation::new(
                Satisfied::NotDone,
                format!("primary unreachable: {why}"),
                "skip the fence with a warning: the primary cannot be reached",
            )
            .with_prior(json!({"unreachable": why})),
        })
    }

    async fn execute(&self, cx: &StepCx, obs: &Observation) -> Result<Value, StepError> {
        let res = self.fence(cx, obs).await;
        if let Err(e) = &res {
            // Whatever stopped it, the fence is outstanding until a later one succeeds.
            if !matches!(e, StepError::Interrupted) {
                cx.report(StepReport::Fence(FenceRecord {
                    region: cx.env.region_of(self.role).to_string(),
                    instance_id: database(&cx.env, self.role)?.instance_id.clone(),
                    fenced: false,
                    detail: format!("failed: {e}"),
                }));
            }
        }
        res
    }

    async fn verify(&self, cx: &StepCx, result: &Value) -> Result<(), StepError> {
        if result["fenced"] != json!(true) {
            return Ok(());
        }
        let what = match self.method {
            FenceMethod::Stop => "the old primary to stop",
            FenceMethod::ReadOnly => "RDS to report read_only in effect on the old primary",
        };
        cx.poll(what, self.poll_interval, || async {
            Ok(match self.reach(cx).await? {
                Reach::Up(db) => self.fenced(cx, &db).await?.then_some(()),
                // It went dark after we stopped it: nothing more to wait for.
                Reach::Unreachable(_) => Some(()),
            })
        })
        .await
    }

    async fn undo(&self, cx: &StepCx, prior: &Value, result: &Value) -> Result<(), StepError> {
        // A fence skipped for an unreachable primary changed nothing. `result` is Null when
        // drctl died before journaling it: undo from what `prior` says was there.
        if result["fenced"] == json!(false) || prior.get("unreachable").is_some() {
            return Ok(());
        }
        let db = database(&cx.env, self.role)?;
        let rds = cx.aws.rds(cx.env.region_of(self.role)).await;
        match self.method {
            FenceMethod::Stop => {
                let cur = rds.describe(&db.instance_id).await?;
                if cur.status == "stopped" {
                    rds.start(&db.instance_id).await?;
                }
            }
            FenceMethod::ReadOnly => {
                let Some(group) = prior["parameter_group"].as_str() else {
                    return Ok(());
                };
                let was = prior["read_only"].as_str().unwrap_or("0");
                if !is_on(Some(was)) {
                    rds.set_parameter(group, READ_ONLY, was).await?;
                }
            }
        }
        // Undone means the writer takes writes again, not that RDS was asked: a gate that
        // gives production its writer back says so only once it is true (bounded by the step's
        // timeout, as the fence's own wait is).
        cx.poll(
            "RDS to report the old writer writable again",
            self.poll_interval,
            || async {
                Ok(match self.reach(cx).await? {
                    Reach::Up(db) => self.takes_writes(cx, &db).await?.then_some(()),
                    Reach::Unreachable(_) => None,
                })
            },
        )
        .await
    }

    fn outputs(&self) -> &'static [&'static str] {
        &[
            "fenced",
            "skipped",
            "reason",
            "instance_id",
            "method",
            "parameter_group",
        ]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn stops_writes(&self) -> bool {
        true
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
            FenceMethod::ReadOnly => {
                // The instance's own group, as the environment names it (else any group).
                let group = env
                    .resources(self.role)
                    .database
                    .as_ref()
                    .and_then(|d| d.parameter_group.clone())
                    .unwrap_or_else(|| "*".into());
                let pg = arn("rds", region, &format!("pg:{group}"));
                v.push(("rds:DescribeDBParameters", pg.clone()));
                v.push(("rds:ModifyDBParameterGroup", pg));
            }
        }
        v
    }
}
