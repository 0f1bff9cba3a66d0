//! `rds.create_replica`: a new cross-region read replica of the `source` region's writer, in
//! the `role` region, named by that region's `database.instance_id` and using its
//! `parameter_group`; done when it is available and replicates with a lag at most `max_lag`
//! (default: `targets.rpo`). This is how the old primary region is protected again after a
//! failover (reprotect), and the standby after a failback. The id must be free: an old
//! writer still holding it is retired first (`rds.retire_instance`). Undo deletes the
//! replica (it holds no data of its own).

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::rds_promote::db_of;
use super::{
    arn, database, default_poll, default_primary, default_standby, problem, Observation, Problem,
    Reversibility, Satisfied, Step, StepCx, StepError,
};
use crate::aws::rds::{DbInstance, NewReplica};
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReplica {
    /// The region the replica is created in.
    #[serde(default = "default_primary")]
    pub role: Role,
    /// The region whose writer it replicates.
    #[serde(default = "default_standby")]
    pub source: Role,
    /// Done once ReplicaLag is at most this (default: the environment's `targets.rpo`).
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub max_lag: Option<Duration>,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

/// Whether `db` replicates from `source` (RDS names a cross-region source by ARN).
fn replicates(db: &DbInstance, source: &DbInstance) -> bool {
    db.replica_source
        .as_deref()
        .is_some_and(|s| s == source.arn || s == source.id)
}

impl CreateReplica {
    async fn source(&self, cx: &StepCx) -> Result<DbInstance, StepError> {
        let db = database(&cx.env, self.source)?;
        let src = cx
            .aws
            .rds(cx.env.region_of(self.source))
            .await
            .describe(&db.instance_id)
            .await?;
        if !src.is_available_writer() {
            return Err(StepError::permanent(format!(
                "{} in {} is {}{}, not an available writer to replicate from",
                src.id,
                cx.env.region_of(self.source),
                src.status,
                if src.is_replica() { " (a replica)" } else { "" }
            )));
        }
        Ok(src)
    }

    /// The instance named for the replica, if it exists.
    async fn replica(&self, cx: &StepCx) -> Result<Option<DbInstance>, StepError> {
        let db = database(&cx.env, self.role)?;
        match cx
            .aws
            .rds(cx.env.region_of(self.role))
            .await
            .describe(&db.instance_id)
            .await
        {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn max_lag(&self, env: &Environment) -> Duration {
        self.max_lag.unwrap_or(env.targets.rpo)
    }

    fn result(db: &DbInstance, lag: Option<f64>) -> Value {
        json!({"instance_id": db.id, "endpoint": db.endpoint, "port": db.port, "lag_s": lag})
    }
}

#[async_trait]
impl Step for CreateReplica {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let src = self.source(cx).await?;
        let name = &database(&cx.env, self.role)?.instance_id;
        let intended = format!(
            "create read replica {name} in {} of {} ({}), wait until it lags at most {}",
            cx.env.region_of(self.role),
            src.id,
            cx.env.region_of(self.source),
            humantime::format_duration(self.max_lag(&cx.env))
        );
        match self.replica(cx).await? {
            None => Ok(Observation::new(
                Satisfied::NotDone,
                format!("no instance {name} in {}", cx.env.region_of(self.role)),
                intended,
            )
            .with_prior(json!({"existed": false}))),
            Some(d) if replicates(&d, &src) => {
                let lag = if d.status == "available" {
                    cx.aws
                        .cloudwatch(cx.env.region_of(self.role))
                        .await
                        .replica_lag(&d.id, Duration::from_secs(600))
                        .await?
                } else {
                    None
                };
                // -1 (replication not active) is never caught up.
                let lag = lag.and_then(|l| l.seconds);
                let caught_up = lag.is_some_and(|l| l <= self.max_lag(&cx.env).as_secs_f64());
                let current = format!(
                    "{} replicates from {} ({}, lag {})",
                    d.id,
                    src.id,
                    d.status,
                    lag.map(|l| format!("{l:.0}s"))
                        .unwrap_or_else(|| "unknown".into())
                );
                if d.status == "available" && caught_up {
                    Ok(Observation::new(Satisfied::Done, current, "nothing")
                        .with_result(Self::result(&d, lag)))
                } else {
                    // Created by an earlier attempt: execute only waits.
                    Ok(Observation::new(Satisfied::NotDone, current, intended)
                        .with_prior(json!({"existed": false})))
                }
            }
            Some(d) => Err(StepError::permanent(format!(
                "{} already exists in {} and is {}: retire it first (rds.retire_instance) so the replica can take its name",
                d.id,
                cx.env.region_of(self.role),
                match &d.replica_source {
                    Some(s) => format!("a replica of {s}"),
                    None => format!("a writer ({})", d.status),
                }
            ))),
        }
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let src = self.source(cx).await?;
        let db = database(&cx.env, self.role)?;
        if self.replica(cx).await?.is_none() {
            cx.note(&format!(
                "creating read replica {} of {}",
                db.instance_id, src.id
            ));
            cx.aws
                .rds(cx.env.region_of(self.role))
                .await
                .create_read_replica(&NewReplica {
                    id: &db.instance_id,
                    source_arn: &src.arn,
                    parameter_group: db.parameter_group.as_deref(),
                    kms_key_id: db.kms_key_id.as_deref(),
                    subnet_group: db.subnet_group.as_deref(),
                    security_group_ids: &db.security_group_ids,
                    tags: &[
                        ("drctl:env".into(), cx.env.name.clone()),
                        ("drctl:created-by".into(), cx.run_id.clone()),
                    ],
                })
                .await?;
        }
        // Later steps need its endpoint, which RDS gives once the replica is available.
        let d = cx
            .poll(
                "the new replica to be available",
                self.poll_interval,
                || async {
                    Ok(self
                        .replica(cx)
                        .await?
                        .filter(|d| d.status == "available" && replicates(d, &src)))
                },
            )
            .await?;
        Ok(Self::result(&d, None))
    }

    async fn verify(&self, cx: &StepCx, _result: &Value) -> Result<(), StepError> {
        let max = self.max_lag(&cx.env).as_secs_f64();
        let region = cx.env.region_of(self.role).to_string();
        let id = database(&cx.env, self.role)?.instance_id.clone();
        let cw = cx.aws.cloudwatch(&region).await;
        cx.poll(
            &format!("{id} to replicate with a lag of at most {max:.0}s"),
            self.poll_interval,
            || async {
                Ok(cw
                    .replica_lag(&id, Duration::from_secs(600))
                    .await?
                    .and_then(|l| l.seconds)
                    .filter(|l| *l <= max)
                    .map(|_| ()))
            },
        )
        .await
    }

    async fn undo(&self, cx: &StepCx, prior: &Value, _result: &Value) -> Result<(), StepError> {
        if prior["existed"] != json!(false) {
            return Ok(());
        }
        let src = self.source(cx).await?;
        if let Some(d) = self.replica(cx).await? {
            if replicates(&d, &src) {
                cx.aws
                    .rds(cx.env.region_of(self.role))
                    .await
                    .delete(&d.id)
                    .await?;
            }
        }
        Ok(())
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["instance_id", "endpoint", "port", "lag_s"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        let mut p = vec![];
        if self.role == self.source {
            p.push(problem("`role` and `source` must be different regions"));
        }
        for r in [self.role, self.source] {
            if env.resources(r).database.is_none() {
                p.push(problem(format!(
                    "the {r} region ({}) has no `database`",
                    env.region_of(r)
                )));
            }
        }
        p
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(1200)
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let (region, db) = db_of(env, self.role);
        let (src_region, src) = db_of(env, self.source);
        let replica = arn("rds", region, &format!("db:{db}"));
        let conf = env.resources(self.role).database.as_ref();
        let named = |kind: &str, name: Option<&String>| {
            arn(
                "rds",
                region,
                &format!("{kind}:{}", name.map_or("*", |n| n.as_str())),
            )
        };
        // CreateDBInstanceReadReplica acts on the new instance, its source and the groups it
        // names: its parameter group always (the region's default one when none is named) and
        // the subnet group (Service Authorization Reference, Amazon RDS). An encrypted replica
        // also needs the key: RDS creates a grant on it for the caller (RDS User Guide,
        // "Encrypting Amazon RDS resources": kms:CreateGrant and kms:DescribeKey).
        let mut extra = vec![(
            "rds:CreateDBInstanceReadReplica",
            named("pg", conf.and_then(|d| d.parameter_group.as_ref())),
        )];
        if let Some(g) = conf.and_then(|d| d.subnet_group.as_ref()) {
            extra.push(("rds:CreateDBInstanceReadReplica", named("subgrp", Some(g))));
        }
        if let Some(k) = conf.and_then(|d| d.kms_key_id.as_ref()) {
            let key = if k.starts_with("arn:") {
                k.clone()
            } else {
                format!("arn:aws:kms:{region}:*:key/*")
            };
            extra.push(("kms:CreateGrant", key.clone()));
            extra.push(("kms:DescribeKey", key));
        }
        extra.extend(vec![
            ("rds:DescribeDBInstances", replica.clone()),
            (
                "rds:DescribeDBInstances",
                arn("rds", src_region, &format!("db:{src}")),
            ),
            ("rds:CreateDBInstanceReadReplica", replica.clone()),
            (
                "rds:CreateDBInstanceReadReplica",
                arn("rds", src_region, &format!("db:{src}")),
            ),
            ("rds:AddTagsToResource", replica.clone()),
            ("rds:DeleteDBInstance", replica),
            ("cloudwatch:GetMetricStatistics", "*".into()),
        ]);
        extra
    }
}
