//! The fake AWS Backup: vaults, recovery points, copy jobs that complete and copy the AMI.

use async_trait::async_trait;

use super::{FakeCopy, Handle, SETTLE_READS};
use crate::aws::backup::{BackupApi, CopyJob, RecoveryPoint};
use crate::aws::AwsResult;

#[async_trait]
impl BackupApi for Handle {
    async fn recovery_points(&self, vault: &str) -> AwsResult<Vec<RecoveryPoint>> {
        self.f
            .enter(
                "backup",
                "ListRecoveryPointsByBackupVault",
                &self.region,
                false,
            )
            .await?;
        match self.f.world().vaults.get(&self.key(vault)) {
            Some((_, points)) => {
                let mut v = points.clone();
                v.sort_by_key(|r| std::cmp::Reverse(r.created.unwrap_or(0)));
                Ok(v)
            }
            None => self.not_found(
                "backup",
                "ListRecoveryPointsByBackupVault",
                format!("no vault {vault}"),
            ),
        }
    }

    async fn vault_arn(&self, vault: &str) -> AwsResult<String> {
        self.f
            .enter("backup", "DescribeBackupVault", &self.region, false)
            .await?;
        match self.f.world().vaults.get(&self.key(vault)) {
            Some((arn, _)) => Ok(arn.clone()),
            None => self.not_found("backup", "DescribeBackupVault", format!("no vault {vault}")),
        }
    }

    async fn start_copy(
        &self,
        recovery_point_arn: &str,
        _source_vault: &str,
        destination_vault_arn: &str,
        _role_arn: &str,
    ) -> AwsResult<String> {
        self.f
            .enter("backup", "StartCopyJob", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(((dest_region, dest_vault), _)) = w
            .vaults
            .iter()
            .find(|(_, (arn, _))| arn == destination_vault_arn)
            .map(|(k, v)| (k.clone(), v.clone()))
        else {
            return self.not_found(
                "backup",
                "StartCopyJob",
                format!("no vault {destination_vault_arn}"),
            );
        };
        let id = w.id("copy-");
        let created = chrono::Utc::now().timestamp() + w.next_id as i64;
        w.copy_jobs.push(FakeCopy {
            job: CopyJob {
                id: id.clone(),
                state: "RUNNING".into(),
                source_recovery_point_arn: Some(recovery_point_arn.into()),
                destination_vault_arn: Some(destination_vault_arn.into()),
                destination_recovery_point_arn: None,
                created: Some(created),
                message: None,
            },
            source_region: self.region.clone(),
            destination_region: dest_region,
            destination_vault: dest_vault,
            reads_left: SETTLE_READS,
        });
        Ok(id)
    }

    async fn copy_job(&self, id: &str) -> AwsResult<CopyJob> {
        self.f
            .enter("backup", "DescribeCopyJob", &self.region, false)
            .await?;
        let mut w = self.f.world();
        let Some(i) = w.copy_jobs.iter().position(|c| c.job.id == id) else {
            return self.not_found("backup", "DescribeCopyJob", format!("no copy job {id}"));
        };
        let c = &mut w.copy_jobs[i];
        c.reads_left = c.reads_left.saturating_sub(1);
        if c.reads_left == 0 && c.job.state == "RUNNING" {
            c.job.state = "COMPLETED".into();
            let src_image = c
                .job
                .source_recovery_point_arn
                .as_deref()
                .and_then(|a| a.rsplit_once(":image/").map(|x| x.1.to_string()))
                .unwrap_or_default();
            let (dest_region, vault) = (c.destination_region.clone(), c.destination_vault.clone());
            let new_id = format!("{src_image}-copy");
            c.job.destination_recovery_point_arn =
                Some(format!("arn:aws:ec2:{dest_region}::image/{new_id}"));
            let job = c.job.clone();
            drop(w);
            self.f.add_image(
                &dest_region,
                &new_id,
                &chrono::Utc::now().to_rfc3339(),
                Some(&vault),
            );
            return Ok(job);
        }
        Ok(c.job.clone())
    }

    async fn copy_jobs(&self) -> AwsResult<Vec<CopyJob>> {
        self.f
            .enter("backup", "ListCopyJobs", &self.region, false)
            .await?;
        let mut v: Vec<CopyJob> = self
            .f
            .world()
            .copy_jobs
            .iter()
            .filter(|c| c.source_region == self.region)
            .map(|c| c.job.clone())
            .collect();
        v.sort_by_key(|j| std::cmp::Reverse(j.created.unwrap_or(0)));
        Ok(v)
    }

    async fn plan_copy_destinations(&self, plan_id: &str) -> AwsResult<Vec<String>> {
        self.f
            .enter("backup", "GetBackupPlan", &self.region, false)
            .await?;
        match self.f.world().plans.get(plan_id) {
            Some(d) => Ok(d.clone()),
            None => self.not_found("backup", "GetBackupPlan", format!("no plan {plan_id}")),
        }
    }
}
