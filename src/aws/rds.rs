//! RDS: the instances drctl promotes and fences, in drctl's own types.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{sdk_err, AwsError, AwsResult, ErrorKind};

#[derive(Debug, Clone)]
pub struct SdkRds {
    pub(crate) c: aws_sdk_rds::Client,
    pub region: String,
}

/// What drctl needs to know about one DB instance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DbInstance {
    pub id: String,
    pub arn: String,
    pub status: String,
    pub endpoint: Option<String>,
    pub port: Option<i32>,
    /// The source this instance replicates from; `None` for a writer.
    pub replica_source: Option<String>,
    /// Read replicas of this instance (ids or ARNs).
    pub replicas: Vec<String>,
    /// The DB parameter group in use and whether its settings are applied (`in-sync`,
    /// `applying`, `pending-reboot`).
    pub parameter_group: Option<String>,
    pub parameter_apply_status: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Tags drctl puts on an instance it retired (renamed and stopped to make way for a new
/// replica): which id it had, which run retired it, and when.
pub const RETIRED_FROM: &str = "drctl:retired-from";
pub const RETIRED_BY: &str = "drctl:retired-by";
pub const RETIRED_AT: &str = "drctl:retired-at";

/// A cross-region read replica to create (CreateDBInstanceReadReplica, issued in the
/// replica's region).
#[derive(Debug, Clone)]
pub struct NewReplica<'a> {
    pub id: &'a str,
    /// The source's ARN (it lives in another region).
    pub source_arn: &'a str,
    pub parameter_group: Option<&'a str>,
    pub kms_key_id: Option<&'a str>,
    pub subnet_group: Option<&'a str>,
    pub security_group_ids: &'a [String],
    pub tags: &'a [(String, String)],
}

impl DbInstance {
    pub fn is_replica(&self) -> bool {
        self.replica_source.is_some()
    }
    pub fn is_available_writer(&self) -> bool {
        !self.is_replica() && self.status == "available"
    }
}

/// RDS: the instances drctl promotes and fences.
#[async_trait]
pub trait RdsApi: Send + Sync {
    /// The instance, or a NotFound error.
    async fn describe(&self, id: &str) -> AwsResult<DbInstance>;
    /// Start promoting a read replica to a standalone writer.
    async fn promote_read_replica(&self, id: &str) -> AwsResult<()>;
    /// Stop an instance (it takes no connections, so no writes, until started again).
    async fn stop(&self, id: &str) -> AwsResult<()>;
    async fn start(&self, id: &str) -> AwsResult<()>;
    /// A parameter's value in a DB parameter group (`None`: not set in the group).
    async fn parameter(&self, group: &str, name: &str) -> AwsResult<Option<String>>;
    /// Set a dynamic parameter in a DB parameter group, applied at once to every instance
    /// that uses the group (ModifyDBParameterGroup, ApplyMethod immediate: no reboot).
    async fn set_parameter(&self, group: &str, name: &str, value: &str) -> AwsResult<()>;
    /// Every instance in the region.
    async fn instances(&self) -> AwsResult<Vec<DbInstance>>;
    /// Start creating a read replica of an instance in another region.
    async fn create_read_replica(&self, r: &NewReplica<'_>) -> AwsResult<()>;
    /// Rename an instance at once (ModifyDBInstance NewDBInstanceIdentifier, ApplyImmediately).
    async fn rename(&self, id: &str, new_id: &str) -> AwsResult<()>;
    async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> AwsResult<()>;
    /// Delete an instance without a final snapshot (a replica holds no data of its own).
    async fn delete(&self, id: &str) -> AwsResult<()>;
    /// Delete an instance, keeping its data as a final manual snapshot `snapshot_id`
    /// (DeleteDBInstance FinalDBSnapshotIdentifier): a retired writer's data outlives it.
    async fn delete_keeping_snapshot(&self, id: &str, snapshot_id: &str) -> AwsResult<()>;
}

fn instance(db: &aws_sdk_rds::types::DbInstance, id: &str) -> DbInstance {
    DbInstance {
        id: db.db_instance_identifier().unwrap_or(id).to_string(),
        arn: db.db_instance_arn().unwrap_or_default().to_string(),
        status: db.db_instance_status().unwrap_or("unknown").to_string(),
        endpoint: db.endpoint().and_then(|e| e.address()).map(String::from),
        port: db.endpoint().and_then(|e| e.port()),
        replica_source: db
            .read_replica_source_db_instance_identifier()
            .filter(|s| !s.is_empty())
            .map(String::from),
        replicas: db.read_replica_db_instance_identifiers().to_vec(),
        parameter_group: db
            .db_parameter_groups()
            .first()
            .and_then(|g| g.db_parameter_group_name())
            .map(String::from),
        parameter_apply_status: db
            .db_parameter_groups()
            .first()
            .and_then(|g| g.parameter_apply_status())
            .map(String::from),
        tags: db
            .tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect(),
    }
}

fn sdk_tags(tags: &[(String, String)]) -> Vec<aws_sdk_rds::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect()
}

#[async_trait]
impl RdsApi for SdkRds {
    async fn describe(&self, id: &str) -> AwsResult<DbInstance> {
        let out = self
            .c
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(sdk_err!("rds", "DescribeDBInstances", self.region))?;
        let db = out.db_instances().first().ok_or_else(|| {
            AwsError::local(
                "rds",
                "DescribeDBInstances",
                &self.region,
                ErrorKind::NotFound,
                format!("no DB instance {id}"),
            )
        })?;
        Ok(instance(db, id))
    }

    async fn promote_read_replica(&self, id: &str) -> AwsResult<()> {
        self.c
            .promote_read_replica()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(sdk_err!("rds", "PromoteReadReplica", self.region))?;
        Ok(())
    }

    async fn stop(&self, id: &str) -> AwsResult<()> {
        self.c
            .stop_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(sdk_err!("rds", "StopDBInstance", self.region))?;
        Ok(())
    }

    async fn start(&self, id: &str) -> AwsResult<()> {
        self.c
            .start_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(sdk_err!("rds", "StartDBInstance", self.region))?;
        Ok(())
    }

    async fn parameter(&self, group: &str, name: &str) -> AwsResult<Option<String>> {
        // Groups hold hundreds of parameters: page until the one we want.
        let mut pages = self
            .c
            .describe_db_parameters()
            .db_parameter_group_name(group)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk_err!("rds", "DescribeDBParameters", self.region))?;
            if let Some(p) = page
                .parameters()
                .iter()
                .find(|p| p.parameter_name() == Some(name))
            {
                return Ok(p.parameter_value().map(String::from));
            }
        }
        Ok(None)
    }

    async fn set_parameter(&self, group: &str, name: &str, value: &str) -> AwsResult<()> {
        let param = aws_sdk_rds::types::Parameter::builder()
            .parameter_name(name)
            .parameter_value(value)
            .apply_method(aws_sdk_rds::types::ApplyMethod::Immediate)
            .build();
        self.c
            .modify_db_parameter_group()
            .db_parameter_group_name(group)
            .parameters(param)
            .send()
            .await
            .map_err(sdk_err!("rds", "ModifyDBParameterGroup", self.region))?;
        Ok(())
    }

    async fn instances(&self) -> AwsResult<Vec<DbInstance>> {
        let mut pages = self.c.describe_db_instances().into_paginator().send();
        let mut out = vec![];
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk_err!("rds", "DescribeDBInstances", self.region))?;
            out.extend(page.db_instances().iter().map(|d| instance(d, "")));
        }
        Ok(out)
    }

    async fn create_read_replica(&self, r: &NewReplica<'_>) -> AwsResult<()> {
        self.c
            .create_db_instance_read_replica()
            .db_instance_identifier(r.id)
            .source_db_instance_identifier(r.source_arn)
            .set_db_parameter_group_name(r.parameter_group.map(String::from))
            .set_kms_key_id(r.kms_key_id.map(String::from))
            .set_db_subnet_group_name(r.subnet_group.map(String::from))
            .set_vpc_security_group_ids(
                (!r.security_group_ids.is_empty()).then(|| r.security_group_ids.to_vec()),
            )
            .set_tags(Some(sdk_tags(r.tags)))
            .send()
            .await
            .map_err(sdk_err!("rds", "CreateDBInstanceReadReplica", self.region))?;
        Ok(())
    }

    async fn rename(&self, id: &str, new_id: &str) -> AwsResult<()> {
        self.c
            .modify_db_instance()
            .db_instance_identifier(id)
            .new_db_instance_identifier(new_id)
            .apply_immediately(true)
            .send()
            .await
            .map_err(sdk_err!("rds", "ModifyDBInstance", self.region))?;
        Ok(())
    }

    async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> AwsResult<()> {
        self.c
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .map_err(sdk_err!("rds", "AddTagsToResource", self.region))?;
        Ok(())
    }

    async fn delete(&self, id: &str) -> AwsResult<()> {
        self.c
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .send()
            .await
            .map_err(sdk_err!("rds", "DeleteDBInstance", self.region))?;
        Ok(())
    }

    async fn delete_keeping_snapshot(&self, id: &str, snapshot_id: &str) -> AwsResult<()> {
        self.c
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(false)
            .final_db_snapshot_identifier(snapshot_id)
            .send()
            .await
            .map_err(sdk_err!("rds", "DeleteDBInstance", self.region))?;
        Ok(())
    }
}
