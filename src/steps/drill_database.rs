//! `drill.restore_database`: an isolated drill's database. Restores the newest available
//! snapshot or AWS Backup recovery point of the region's database (a fresh snapshot of the
//! replica, tagged as the drill's, when there is none) into a new standalone instance named
//! after the run, and waits until it is writable. Production's instances are only read.
//! Undo deletes what the run tagged (the instance and any snapshot it made), found by tag, so
//! it works after a crash that lost the step's result.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    arn, database, default_poll, default_standby, Measure, Observation, Reversibility, Satisfied,
    Step, StepCx, StepError,
};
use crate::aws::drill::{resource_name, tags, Restore, Snapshot};
use crate::aws::leftovers::{self, Kind, Scope};
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreDatabase {
    /// The region whose database is copied (default: the standby, i.e. its replica).
    #[serde(default = "default_standby")]
    pub role: Role,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

/// The drill database's id: `drctl-drill-<run id>`.
pub fn instance_id(run_id: &str) -> String {
    format!("drctl-{}", resource_name(run_id))
}

fn newest(snaps: Vec<Snapshot>) -> Option<Snapshot> {
    snaps
        .into_iter()
        .filter(|s| s.status == "available")
        .max_by_key(|s| s.created)
}

impl RestoreDatabase {
    async fn existing(
        &self,
        cx: &StepCx,
    ) -> Result<Option<crate::aws::rds::DbInstance>, StepError> {
        let api = cx.aws.drill(cx.env.region_of(self.role)).await;
        let id = instance_id(&cx.run_id);
        Ok(api.db_instances().await?.into_iter().find(|d| d.id == id))
    }

    /// The snapshot to restore: the newest available one of the source, else a new one.
    async fn source_snapshot(&self, cx: &StepCx) -> Result<Snapshot, StepError> {
        let region = cx.env.region_of(self.role);
        let api = cx.aws.drill(region).await;
        let source = &database(&cx.env, self.role)?.instance_id;
        if let Some(s) = newest(api.snapshots(Some(source)).await?) {
            return Ok(s);
        }
        let name = format!("{}-source", instance_id(&cx.run_id));
        cx.note(&format!(
            "no snapshot of {source} in {region}: taking {name}"
        ));
        match api
            .create_snapshot(source, &name, &tags(&cx.run_id, &cx.env.name))
            .await
        {
            Ok(()) => {}
            Err(e) if e.code.as_deref() == Some("DBSnapshotAlreadyExists") => {}
            Err(e) => return Err(e.into()),
        }
        cx.poll(
            &format!("snapshot {name} available"),
            self.poll_interval,
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    Ok(api
                        .snapshots(None)
                        .await?
                        .into_iter()
                        .find(|s| s.id == name && s.status == "available"))
                }
            },
        )
        .await
    }
}

fn result(db: &crate::aws::rds::DbInstance, snapshot: Option<&Snapshot>) -> Value {
    json!({
        "db_instance_id": db.id,
        "endpoint": db.endpoint,
        "port": db.port,
        "snapshot_id": snapshot.map(|s| s.id.clone()),
        "snapshot_kind": snapshot.map(|s| s.kind.clone()),
        "snapshot_age_s": snapshot.and_then(|s| s.created).map(|c| chrono::Utc::now().timestamp() - c),
    })
}

#[async_trait]
impl Step for RestoreDatabase {
    fn makes_drill_resources(&self) -> bool {
        true
    }

    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let id = instance_id(&cx.run_id);
        let prior = json!({"db_instance_id": id});
        match self.existing(cx).await? {
            Some(db) if db.status == "available" => Ok(Observation::new(
                Satisfied::Done,
                format!("{id} is available"),
                "nothing (the drill database is up)",
            )
            .with_prior(prior)
            .with_result(result(&db, None))),
            Some(db) => Ok(Observation::new(
                Satisfied::NotDone,
                format!("{id} is {}", db.status),
                format!("wait until {id} is available"),
            )
            .with_prior(prior)),
            None => Ok(Observation::new(
                Satisfied::NotDone,
                format!("no drill database {id}"),
                format!(
                    "restore the newest snapshot of {} into {id} (tagged for cleanup)",
                    database(&cx.env, self.role)?.instance_id
                ),
            )
            .with_prior(prior)),
        }
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let started = Instant::now();
        let region = cx.env.region_of(self.role);
        let api = cx.aws.drill(region).await;
        let id = instance_id(&cx.run_id);
        let snapshot = match self.existing(cx).await? {
            Some(_) => None,
            None => {
                let snap = self.source_snapshot(cx).await?;
                cx.note(&format!("restoring {} ({}) into {id}", snap.id, snap.kind));
                let t = tags(&cx.run_id, &cx.env.name);
                let source = &database(&cx.env, self.role)?.instance_id;
                let r = Restore {
                    id: &id,
                    snapshot_id: &snap.id,
                    network_of: source,
                    instance_class: cx.env.drill.db_instance_class.as_deref(),
                    tags: &t,
                };
                match api.restore(&r).await {
                    Ok(()) => {}
                    Err(e) if e.code.as_deref() == Some("DBInstanceAlreadyExists") => {}
                    Err(e) => return Err(e.into()),
                }
                Some(snap)
            }
        };
        let db = cx
            .poll(&format!("{id} available"), self.poll_interval, || {
                let api = api.clone();
                let id = id.clone();
                async move {
                    Ok(api
                        .db_instances()
                        .await?
                        .into_iter()
                        .find(|d| d.id == id && d.status == "available" && d.endpoint.is_some()))
                }
            })
            .await?;
        cx.measure(
            Measure::DrillDatabaseSeconds,
            started.elapsed().as_secs_f64(),
        );
        Ok(result(&db, snapshot.as_ref()))
    }

    async fn undo(&self, cx: &StepCx, _prior: &Value, _result: &Value) -> Result<(), StepError> {
        let region = cx.env.region_of(self.role);
        let api = cx.aws.drill(region).await;
        let scope = Scope {
            env: &cx.env.name,
            run: Some(&cx.run_id),
            load_balancer: None,
        };
        let mine: Vec<_> = leftovers::find(api.as_ref(), scope)
            .await?
            .into_iter()
            .filter(|l| matches!(l.kind, Kind::DbInstance | Kind::DbSnapshot))
            .collect();
        let (_, failed) = leftovers::remove(api.as_ref(), &mine, Duration::from_secs(60)).await;
        match failed.first() {
            None => Ok(()),
            Some((l, why)) => Err(StepError::retryable(format!("{} {}: {why}", l.kind, l.id))),
        }
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn validate(&self, _env: &Environment) -> Vec<super::Problem> {
        if self.role != Role::Standby {
            return vec![super::problem(
                "a drill acts in the standby region only: `role` must be standby",
            )];
        }
        vec![]
    }

    fn outputs(&self) -> &'static [&'static str] {
        &[
            "db_instance_id",
            "endpoint",
            "port",
            "snapshot_id",
            "snapshot_kind",
            "snapshot_age_s",
        ]
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(15 * 60)
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let region = env.region_of(self.role);
        let source = env
            .resources(self.role)
            .database
            .as_ref()
            .map_or("*", |d| d.instance_id.as_str());
        // CreateDBSnapshot acts on the source instance and the new snapshot; the restore on
        // the new instance and the snapshot it reads, which may be the region's newest of any
        // name or an AWS Backup recovery point (`snapshot:awsbackup:job-...`) (Service
        // Authorization Reference, Amazon RDS: required resource types db and snapshot).
        vec![
            ("rds:DescribeDBSnapshots", "*".to_string()),
            ("rds:DescribeDBInstances", "*".to_string()),
            (
                "rds:CreateDBSnapshot",
                arn("rds", region, "snapshot:drctl-drill-*"),
            ),
            (
                "rds:CreateDBSnapshot",
                arn("rds", region, &format!("db:{source}")),
            ),
            (
                "rds:RestoreDBInstanceFromDBSnapshot",
                arn("rds", region, "db:drctl-drill-*"),
            ),
            (
                "rds:RestoreDBInstanceFromDBSnapshot",
                arn("rds", region, "snapshot:*"),
            ),
            // The restore goes in the source's DB subnet group, named in the request.
            (
                "rds:RestoreDBInstanceFromDBSnapshot",
                arn(
                    "rds",
                    region,
                    &format!(
                        "subgrp:{}",
                        env.resources(self.role)
                            .database
                            .as_ref()
                            .and_then(|d| d.subnet_group.as_deref())
                            .unwrap_or("*")
                    ),
                ),
            ),
            // Tag on create: CreateDBSnapshot and the restore with Tags also need
            // AddTagsToResource on what they create (RDS User Guide, "Tagging Amazon RDS
            // resources": "Permissions for tagging on creation").
            (
                "rds:AddTagsToResource",
                arn("rds", region, "db:drctl-drill-*"),
            ),
            (
                "rds:AddTagsToResource",
                arn("rds", region, "snapshot:drctl-drill-*"),
            ),
            (
                "rds:DeleteDBInstance",
                arn("rds", region, "db:drctl-drill-*"),
            ),
            (
                "rds:DeleteDBSnapshot",
                arn("rds", region, "snapshot:drctl-drill-*"),
            ),
        ]
    }
}
