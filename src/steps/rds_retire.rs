//! `rds.retire_instance`: set aside the old writer of a region so a new replica can take its
//! name. It must already be fenced (read-only or stopped). It is renamed to
//! `<id>-old-<run id>`, tagged (`drctl:retired-from`, `drctl:retired-by`, `drctl:retired-at`)
//! and stopped, and kept until a person deletes it (`aws rds delete-db-instance
//! --db-instance-identifier <id>-old-<run id> --final-db-snapshot-identifier ...`): its data may
//! hold the last writes of a failed region. `drctl status` lists retired instances. RDS starts
//! a stopped instance again after seven days: delete or snapshot it before then.
//!
//! Irreversible as far as drctl goes (it would have to delete the new replica to give the name
//! back), so it needs an approval before it.

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
use crate::aws::rds::{DbInstance, RETIRED_AT, RETIRED_BY, RETIRED_FROM};
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireInstance {
    /// The region whose old writer is retired.
    #[serde(default = "default_primary")]
    pub role: Role,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

impl RetireInstance {
    /// The retired name this run gives it (the same on every retry and resume).
    fn retired_name(id: &str, run_id: &str) -> String {
        let suffix: String = run_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        format!("{id}-old-{suffix}")
    }

    async fn find(&self, cx: &StepCx, id: &str) -> Result<Option<DbInstance>, StepError> {
        match cx
            .aws
            .rds(cx.env.region_of(self.role))
            .await
            .describe(id)
            .await
        {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Read-only or stopped: takes no writes.
    async fn fenced(&self, cx: &StepCx, db: &DbInstance) -> Result<bool, StepError> {
        if matches!(db.status.as_str(), "stopped" | "stopping") {
            return Ok(true);
        }
        let Some(group) = &db.parameter_group else {
            return Ok(false);
        };
        let ro = cx
            .aws
            .rds(cx.env.region_of(self.role))
            .await
            .parameter(group, "read_only")
            .await?;
        Ok(
            matches!(ro.as_deref(), Some("1" | "ON" | "on" | "true" | "TRUE"))
                && db.parameter_apply_status.as_deref() == Some("in-sync"),
        )
    }
}

#[async_trait]
impl Step for RetireInstance {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let id = database(&cx.env, self.role)?.instance_id.clone();
        let retired = Self::retired_name(&id, &cx.run_id);
        let done = |current: String, d: Option<&DbInstance>| {
            Observation::new(Satisfied::Done, current, "nothing").with_result(json!({
                "retired_as": d.map(|d| d.id.clone()),
                "instance_id": id,
            }))
        };
        match self.find(cx, &id).await? {
            Some(d) if d.is_replica() => Ok(done(
                format!("{id} is a replica: no old writer holds the name"),
                None,
            )),
            Some(d) => Ok(Observation::new(
                Satisfied::NotDone,
                format!("{id} is a writer ({})", d.status),
                format!(
                    "rename {id} to {retired}, tag it and stop it (kept until a person deletes it)"
                ),
            )
            .with_prior(json!({"status": d.status}))),
            None => match self.find(cx, &retired).await? {
                Some(d) if matches!(d.status.as_str(), "stopped" | "stopping") => Ok(done(
                    format!("{id} was retired as {retired} ({})", d.status),
                    Some(&d),
                )),
                Some(d) => Ok(Observation::new(
                    Satisfied::NotDone,
                    format!("{id} was renamed to {retired} ({})", d.status),
                    format!("tag {retired} and stop it"),
                )
                .with_prior(json!({"status": d.status}))),
                None => Ok(done(format!("no instance {id}"), None)),
            },
        }
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let id = database(&cx.env, self.role)?.instance_id.clone();
        let retired = Self::retired_name(&id, &cx.run_id);
        let rds = cx.aws.rds(cx.env.region_of(self.role)).await;
        if let Some(d) = self.find(cx, &id).await?.filter(|d| !d.is_replica()) {
            if !self.fenced(cx, &d).await? {
                return Err(StepError::permanent(format!(
                    "{id} may still take writes: fence it first (`drctl fence`), then retire it"
                )));
            }
            cx.note(&format!("renaming {id} to {retired}"));
            rds.rename(&id, &retired).await?;
        }
        let d = cx
            .poll(
                &format!("{retired} to be available"),
                self.poll_interval,
                || async {
                    Ok(self.find(cx, &retired).await?.filter(|d| {
                        matches!(d.status.as_str(), "available" | "stopped" | "stopping")
                    }))
                },
            )
            .await?;
        rds.add_tags(
            &d.arn,
            &[
                (RETIRED_FROM.into(), id.clone()),
                (RETIRED_BY.into(), cx.run_id.clone()),
                (RETIRED_AT.into(), chrono::Utc::now().to_rfc3339()),
            ],
        )
        .await?;
        if d.status == "available" {
            if d.replicas.is_empty() {
                rds.stop(&retired).await?;
            } else {
                cx.warn(&format!(
                    "{retired} still has read replicas, so RDS will not stop it; it stays read-only"
                ));
            }
        }
        cx.warn(&format!(
            "{id} is kept as {retired} (stopped): delete it when its data is no longer needed \
             (`aws rds delete-db-instance --db-instance-identifier {retired} --final-db-snapshot-identifier {retired}-final`); \
             RDS starts a stopped instance again after seven days"
        ));
        Ok(json!({"retired_as": retired, "instance_id": id}))
    }

    async fn verify(&self, cx: &StepCx, result: &Value) -> Result<(), StepError> {
        let Some(retired) = result["retired_as"].as_str() else {
            return Ok(());
        };
        cx.poll(
            &format!("{retired} to stop"),
            self.poll_interval,
            || async {
                Ok(self.find(cx, retired).await?.and_then(|d| {
                    (matches!(d.status.as_str(), "stopped") || !d.replicas.is_empty()).then_some(())
                }))
            },
        )
        .await
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["retired_as", "instance_id"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Irreversible(
            "the old instance was renamed and stopped and a new replica may hold its name; rename it back by hand if needed",
        )
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        if env.resources(self.role).database.is_none() {
            return vec![problem(format!(
                "the {} region ({}) has no `database`",
                self.role,
                env.region_of(self.role)
            ))];
        }
        vec![]
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(300)
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let (region, db) = db_of(env, self.role);
        let a = arn("rds", region, &format!("db:{db}*"));
        vec![
            ("rds:DescribeDBInstances", a.clone()),
            ("rds:DescribeDBParameters", arn("rds", region, "pg:*")),
            ("rds:ModifyDBInstance", a.clone()),
            ("rds:AddTagsToResource", a.clone()),
            ("rds:StopDBInstance", a),
        ]
    }
}
