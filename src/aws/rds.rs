//! RDS: the instances drctl promotes and fences, in drctl's own types.

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
    /// Apply a DB parameter group at once (e.g. one with `read_only = 1`).
    async fn set_parameter_group(&self, id: &str, group: &str) -> AwsResult<()>;
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
        Ok(DbInstance {
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
        })
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

    async fn set_parameter_group(&self, id: &str, group: &str) -> AwsResult<()> {
        self.c
            .modify_db_instance()
            .db_instance_identifier(id)
            .db_parameter_group_name(group)
            .apply_immediately(true)
            .send()
            .await
            .map_err(sdk_err!("rds", "ModifyDBInstance", self.region))?;
        Ok(())
    }
}
