//! AWS Backup: recovery points, copy jobs and the plan's copy rules.

use async_trait::async_trait;

use super::{sdk_err, AwsError, AwsResult, ErrorKind};

#[derive(Debug, Clone)]
pub struct SdkBackup {
    pub(crate) c: aws_sdk_backup::Client,
    pub region: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecoveryPoint {
    pub arn: String,
    pub resource_arn: Option<String>,
    pub resource_type: Option<String>,
    /// `COMPLETED`, `PARTIAL`, `DELETING`, `EXPIRED`, ...
    pub status: String,
    /// Seconds since the epoch.
    pub created: Option<i64>,
}

impl RecoveryPoint {
    /// The AMI id of an EC2 recovery point (`arn:aws:ec2:REGION::image/ami-...`).
    pub fn image_id(&self) -> Option<&str> {
        self.arn.rsplit_once(":image/").map(|(_, id)| id)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyJob {
    pub id: String,
    /// `CREATED`, `RUNNING`, `COMPLETED`, `FAILED`, ...
    pub state: String,
    pub source_recovery_point_arn: Option<String>,
    pub destination_vault_arn: Option<String>,
    pub destination_recovery_point_arn: Option<String>,
    pub created: Option<i64>,
    pub message: Option<String>,
}

fn copy_job(j: &aws_sdk_backup::types::CopyJob) -> CopyJob {
    CopyJob {
        id: j.copy_job_id().unwrap_or_default().to_string(),
        state: j
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        source_recovery_point_arn: j.source_recovery_point_arn().map(String::from),
        destination_vault_arn: j.destination_backup_vault_arn().map(String::from),
        destination_recovery_point_arn: j.destination_recovery_point_arn().map(String::from),
        created: j.creation_date().map(|d| d.secs()),
        message: j.status_message().map(String::from),
    }
}

/// AWS Backup: recovery points and copy jobs.
#[async_trait]
pub trait BackupApi: Send + Sync {
    /// Recovery points in a vault, newest first.
    async fn recovery_points(&self, vault: &str) -> AwsResult<Vec<RecoveryPoint>>;
    async fn vault_arn(&self, vault: &str) -> AwsResult<String>;
    /// Start copying a recovery point (issued in the source vault's region).
    async fn start_copy(
        &self,
        recovery_point_arn: &str,
        source_vault: &str,
        destination_vault_arn: &str,
        role_arn: &str,
    ) -> AwsResult<String>;
    async fn copy_job(&self, id: &str) -> AwsResult<CopyJob>;
    /// Copy jobs issued in this region, newest first.
    async fn copy_jobs(&self) -> AwsResult<Vec<CopyJob>>;
    /// Destination vault ARNs the plan's rules copy to.
    async fn plan_copy_destinations(&self, plan_id: &str) -> AwsResult<Vec<String>>;
}

#[async_trait]
impl BackupApi for SdkBackup {
    async fn recovery_points(&self, vault: &str) -> AwsResult<Vec<RecoveryPoint>> {
        let out = self
            .c
            .list_recovery_points_by_backup_vault()
            .backup_vault_name(vault)
            .send()
            .await
            .map_err(sdk_err!(
                "backup",
                "ListRecoveryPointsByBackupVault",
                self.region
            ))?;
        let mut v: Vec<RecoveryPoint> = out
            .recovery_points()
            .iter()
            .map(|r| RecoveryPoint {
                arn: r.recovery_point_arn().unwrap_or_default().to_string(),
                resource_arn: r.resource_arn().map(String::from),
                resource_type: r.resource_type().map(String::from),
                status: r
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                created: r.creation_date().map(|d| d.secs()),
            })
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.created.unwrap_or(0)));
        Ok(v)
    }

    async fn vault_arn(&self, vault: &str) -> AwsResult<String> {
        let out = self
            .c
            .describe_backup_vault()
            .backup_vault_name(vault)
            .send()
            .await
            .map_err(sdk_err!("backup", "DescribeBackupVault", self.region))?;
        out.backup_vault_arn().map(String::from).ok_or_else(|| {
            AwsError::local(
                "backup",
                "DescribeBackupVault",
                &self.region,
                ErrorKind::NotFound,
                format!("no vault {vault}"),
            )
        })
    }

    async fn start_copy(
        &self,
        recovery_point_arn: &str,
        source_vault: &str,
        destination_vault_arn: &str,
        role_arn: &str,
    ) -> AwsResult<String> {
        let out = self
            .c
            .start_copy_job()
            .recovery_point_arn(recovery_point_arn)
            .source_backup_vault_name(source_vault)
            .destination_backup_vault_arn(destination_vault_arn)
            .iam_role_arn(role_arn)
            .send()
            .await
            .map_err(sdk_err!("backup", "StartCopyJob", self.region))?;
        Ok(out.copy_job_id().unwrap_or_default().to_string())
    }

    async fn copy_job(&self, id: &str) -> AwsResult<CopyJob> {
        let out = self
            .c
            .describe_copy_job()
            .copy_job_id(id)
            .send()
            .await
            .map_err(sdk_err!("backup", "DescribeCopyJob", self.region))?;
        out.copy_job().map(copy_job).ok_or_else(|| {
            AwsError::local(
                "backup",
                "DescribeCopyJob",
                &self.region,
                ErrorKind::NotFound,
                format!("no copy job {id}"),
            )
        })
    }

    async fn copy_jobs(&self) -> AwsResult<Vec<CopyJob>> {
        let out = self.c.list_copy_jobs().send().await.map_err(sdk_err!(
            "backup",
            "ListCopyJobs",
            self.region
        ))?;
        let mut v: Vec<CopyJob> = out.copy_jobs().iter().map(copy_job).collect();
        v.sort_by_key(|j| std::cmp::Reverse(j.created.unwrap_or(0)));
        Ok(v)
    }

    async fn plan_copy_destinations(&self, plan_id: &str) -> AwsResult<Vec<String>> {
        let out = self
            .c
            .get_backup_plan()
            .backup_plan_id(plan_id)
            .send()
            .await
            .map_err(sdk_err!("backup", "GetBackupPlan", self.region))?;
        Ok(out
            .backup_plan()
            .map(|p| {
                p.rules()
                    .iter()
                    .flat_map(|r| {
                        r.copy_actions()
                            .iter()
                            .map(|c| c.destination_backup_vault_arn().to_string())
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}
