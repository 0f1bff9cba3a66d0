//! The fake RDS and CloudWatch (ReplicaLag): instances, promotion, stop/start, parameter
//! groups, cross-region replicas, renames and tags.

use async_trait::async_trait;

use super::{Handle, SETTLE_READS};
use crate::aws::{AwsResult, ErrorKind};
use std::time::Duration;

use crate::aws::cloudwatch::CloudWatchApi;
use crate::aws::rds::{DbInstance, NewReplica, RdsApi};

#[async_trait]
impl RdsApi for Handle {
    async fn describe(&self, id: &str) -> AwsResult<DbInstance> {
        self.f
            .enter("rds", "DescribeDBInstances", &self.region, false)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.dbs.get_mut(&self.key(id)) else {
            return self.not_found("rds", "DescribeDBInstances", format!("no DB instance {id}"));
        };
        if d.applying > 0 {
            d.applying -= 1;
            if d.applying == 0 {
                d.db.parameter_apply_status = Some("in-sync".into());
            }
        }
        if let Some((left, status, unlink)) = d.pending.take() {
            if left <= 1 {
                d.db.status = status;
                if unlink {
                    d.db.replica_source = None;
                }
            } else {
                d.pending = Some((left - 1, status, unlink));
            }
        }
        Ok(d.db.clone())
    }

    async fn promote_read_replica(&self, id: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "PromoteReadReplica", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.dbs.get_mut(&self.key(id)) else {
            return self.not_found("rds", "PromoteReadReplica", format!("no DB instance {id}"));
        };
        if d.db.replica_source.is_none() || d.db.status != "available" {
            return self.refuse(
                "rds",
                "PromoteReadReplica",
                "InvalidDBInstanceState",
                ErrorKind::Conflict,
                format!("{id} is not an available read replica ({})", d.db.status),
            );
        }
        d.db.status = "modifying".into();
        d.pending = Some((SETTLE_READS, "available".into(), true));
        let arn = d.db.arn.clone();
        for other in w.dbs.values_mut() {
            other.db.replicas.retain(|r| r != &arn && r != id);
        }
        Ok(())
    }

    async fn stop(&self, id: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "StopDBInstance", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.dbs.get_mut(&self.key(id)) else {
            return self.not_found("rds", "StopDBInstance", format!("no DB instance {id}"));
        };
        if d.db.status != "available" || d.db.replica_source.is_some() || !d.db.replicas.is_empty()
        {
            return self.refuse(
                "rds",
                "StopDBInstance",
                "InvalidDBInstanceState",
                ErrorKind::Conflict,
                format!(
                    "{id} cannot be stopped: it is {} or has read replicas",
                    d.db.status
                ),
            );
        }
        d.db.status = "stopping".into();
        d.pending = Some((SETTLE_READS, "stopped".into(), false));
        Ok(())
    }

    async fn start(&self, id: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "StartDBInstance", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.dbs.get_mut(&self.key(id)) else {
            return self.not_found("rds", "StartDBInstance", format!("no DB instance {id}"));
        };
        if d.db.status != "stopped" {
            return self.refuse(
                "rds",
                "StartDBInstance",
                "InvalidDBInstanceState",
                ErrorKind::Conflict,
                format!("{id} is {}, not stopped", d.db.status),
            );
        }
        d.db.status = "starting".into();
        d.pending = Some((SETTLE_READS, "available".into(), false));
        Ok(())
    }

    async fn parameter(&self, group: &str, name: &str) -> AwsResult<Option<String>> {
        self.f
            .enter("rds", "DescribeDBParameters", &self.region, false)
            .await?;
        match self.f.world().parameter_groups.get(&self.key(group)) {
            Some(g) => Ok(g.get(name).cloned()),
            None => self.not_found(
                "rds",
                "DescribeDBParameters",
                format!("no DB parameter group {group}"),
            ),
        }
    }

    async fn set_parameter(&self, group: &str, name: &str, value: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "ModifyDBParameterGroup", &self.region, true)
            .await?;
        let mut w = self.f.world();
        if group.starts_with("default.") {
            return self.refuse(
                "rds",
                "ModifyDBParameterGroup",
                "InvalidDBParameterGroupState",
                ErrorKind::Other,
                format!("default parameter group {group} cannot be modified"),
            );
        }
        let Some(g) = w.parameter_groups.get_mut(&self.key(group)) else {
            return self.not_found(
                "rds",
                "ModifyDBParameterGroup",
                format!("no DB parameter group {group}"),
            );
        };
        g.insert(name.into(), value.into());
        for d in w.dbs.values_mut() {
            if d.db.parameter_group.as_deref() == Some(group)
                && d.db.arn.contains(&format!(":{}:", self.region))
            {
                d.db.parameter_apply_status = Some("applying".into());
                d.applying = SETTLE_READS;
            }
        }
        Ok(())
    }

    async fn instances(&self) -> AwsResult<Vec<DbInstance>> {
        self.f
            .enter("rds", "DescribeDBInstances", &self.region, false)
            .await?;
        let ids: Vec<String> = self
            .f
            .world()
            .dbs
            .keys()
            .filter(|(r, _)| *r == self.region)
            .map(|(_, id)| id.clone())
            .collect();
        let mut out = vec![];
        for id in ids {
            out.push(self.describe(&id).await?);
        }
        Ok(out)
    }

    async fn create_read_replica(&self, r: &NewReplica<'_>) -> AwsResult<()> {
        self.f
            .enter("rds", "CreateDBInstanceReadReplica", &self.region, true)
            .await?;
        let source = self
            .f
            .world()
            .dbs
            .values()
            .find(|d| d.db.arn == r.source_arn)
            .map(|d| d.db.clone());
        let Some(src) = source else {
            return self.not_found(
                "rds",
                "CreateDBInstanceReadReplica",
                format!("no DB instance {}", r.source_arn),
            );
        };
        if self.f.world().dbs.contains_key(&self.key(r.id)) {
            return self.refuse(
                "rds",
                "CreateDBInstanceReadReplica",
                "DBInstanceAlreadyExists",
                ErrorKind::Conflict,
                format!("{} already exists", r.id),
            );
        }
        if src.status != "available" || src.replica_source.is_some() {
            return self.refuse(
                "rds",
                "CreateDBInstanceReadReplica",
                "InvalidDBInstanceState",
                ErrorKind::Conflict,
                format!("source {} is {} or a replica", src.id, src.status),
            );
        }
        self.f
            .add_db(&self.region, r.id, Some(r.source_arn), Some(0.0));
        let mut w = self.f.world();
        let d = w.dbs.get_mut(&self.key(r.id)).expect("just added");
        d.db.status = "creating".into();
        d.pending = Some((SETTLE_READS, "available".into(), false));
        d.db.tags = r.tags.iter().cloned().collect();
        if let Some(g) = r.parameter_group {
            d.db.parameter_group = Some(g.into());
        }
        Ok(())
    }

    async fn rename(&self, id: &str, new_id: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "ModifyDBInstance", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(mut d) = w.dbs.remove(&self.key(id)) else {
            return self.not_found("rds", "ModifyDBInstance", format!("no DB instance {id}"));
        };
        if d.db.status != "available" {
            let status = d.db.status.clone();
            w.dbs.insert(self.key(id), d);
            return self.refuse(
                "rds",
                "ModifyDBInstance",
                "InvalidDBInstanceState",
                ErrorKind::Conflict,
                format!("{id} is {status}, not available"),
            );
        }
        let old_arn = d.db.arn.clone();
        d.db.id = new_id.into();
        d.db.arn = old_arn.replace(&format!(":db:{id}"), &format!(":db:{new_id}"));
        let new_arn = d.db.arn.clone();
        w.dbs.insert(self.key(new_id), d);
        for other in w.dbs.values_mut() {
            for r in other.db.replicas.iter_mut() {
                if *r == old_arn {
                    *r = new_arn.clone();
                }
            }
            if other.db.replica_source.as_deref() == Some(old_arn.as_str()) {
                other.db.replica_source = Some(new_arn.clone());
            }
        }
        Ok(())
    }

    async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> AwsResult<()> {
        self.f
            .enter("rds", "AddTagsToResource", &self.region, true)
            .await?;
        let mut w = self.f.world();
        match w.dbs.values_mut().find(|d| d.db.arn == arn) {
            Some(d) => {
                d.db.tags.extend(tags.iter().cloned());
                Ok(())
            }
            None => self.not_found("rds", "AddTagsToResource", format!("no resource {arn}")),
        }
    }

    async fn delete_keeping_snapshot(&self, id: &str, _snapshot_id: &str) -> AwsResult<()> {
        self.delete(id).await
    }

    async fn delete(&self, id: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "DeleteDBInstance", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.dbs.remove(&self.key(id)) else {
            return self.not_found("rds", "DeleteDBInstance", format!("no DB instance {id}"));
        };
        for other in w.dbs.values_mut() {
            other.db.replicas.retain(|r| r != &d.db.arn);
        }
        Ok(())
    }
}

#[async_trait]
impl CloudWatchApi for Handle {
    async fn replica_lag(
        &self,
        instance_id: &str,
        _window: Duration,
    ) -> AwsResult<Option<crate::aws::cloudwatch::Lag>> {
        self.f
            .enter("cloudwatch", "GetMetricStatistics", &self.region, false)
            .await?;
        // One datapoint now: its value, -1 standing for replication not active (with the lag
        // known three minutes before, if the test set one).
        let w = self.f.world();
        let Some(d) = w.dbs.get(&self.key(instance_id)) else {
            return Ok(None);
        };
        let now = chrono::Utc::now();
        Ok(d.lag.map(|l| {
            let mut lag = crate::aws::cloudwatch::Lag::from_point(now, l, l);
            if lag.stopped() {
                lag.last_known = d
                    .last_known_lag
                    .map(|v| (now - chrono::Duration::minutes(3), v));
            }
            lag
        }))
    }
}
