//! `backup.copy_recovery_point`: copy the newest completed recovery point of the source
//! region's vault into the destination region's vault, and wait for the copy job. A copy is
//! additive, so there is nothing to undo.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    arn, default_poll, default_primary, default_standby, problem, Observation, Problem,
    Reversibility, Satisfied, Step, StepCx, StepError, Text,
};
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyRecoveryPoint {
    #[serde(default = "default_primary")]
    pub from: Role,
    #[serde(default = "default_standby")]
    pub to: Role,
    /// The role AWS Backup assumes for the copy (default: the environment's
    /// `backup.iam_role_arn`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub iam_role_arn: Option<Text>,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

impl CopyRecoveryPoint {
    fn vaults<'a>(&self, env: &'a Environment) -> Result<(&'a str, &'a str), String> {
        let v = |r: Role| {
            env.resources(r)
                .backup_vault
                .as_deref()
                .ok_or_else(|| format!("the {r} region ({}) has no backup_vault", env.region_of(r)))
        };
        Ok((v(self.from)?, v(self.to)?))
    }

    fn role_arn(&self, cx: &StepCx) -> Result<String, StepError> {
        match &self.iam_role_arn {
            Some(t) => cx.render(&t.value),
            None => cx
                .env
                .backup
                .as_ref()
                .and_then(|b| b.iam_role_arn.clone())
                .ok_or_else(|| {
                    StepError::permanent(
                        "no `iam_role_arn` and the environment has no `backup.iam_role_arn`",
                    )
                }),
        }
    }

    /// The newest completed recovery point in the source vault, and what became of its copy
    /// to the destination region.
    async fn state(&self, cx: &StepCx) -> Result<(String, Copy), StepError> {
        let (src, _) = self.vaults(&cx.env).map_err(StepError::permanent)?;
        let b = cx.aws.backup(cx.env.region_of(self.from)).await;
        let newest = b
            .recovery_points(src)
            .await?
            .into_iter()
            .find(|p| p.status == "COMPLETED")
            .ok_or_else(|| {
                StepError::permanent(format!("vault {src} has no completed recovery point"))
            })?;
        let dest_region = cx.env.region_of(self.to);
        let jobs: Vec<_> = b
            .copy_jobs()
            .await?
            .into_iter()
            .filter(|j| {
                j.source_recovery_point_arn.as_deref() == Some(newest.arn.as_str())
                    && j.destination_vault_arn
                        .as_deref()
                        .is_some_and(|a| a.contains(dest_region))
            })
            .collect();
        let copied = jobs
            .iter()
            .find(|j| j.state == "COMPLETED")
            .and_then(|j| j.destination_recovery_point_arn.clone());
        // A copy started by an earlier attempt (drctl died before journaling it, or its
        // verify timed out) is still under way: wait for it rather than start another.
        let running = jobs
            .iter()
            .find(|j| matches!(j.state.as_str(), "CREATED" | "RUNNING"))
            .map(|j| j.id.clone());
        Ok((
            newest.arn,
            match (copied, running) {
                (Some(dest), _) => Copy::Done(dest),
                (None, Some(job)) => Copy::Running(job),
                (None, None) => Copy::None,
            },
        ))
    }
}

/// What became of the newest recovery point's copy.
enum Copy {
    Done(String),
    Running(String),
    None,
}

#[async_trait]
impl Step for CopyRecoveryPoint {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let (rp, copy) = self.state(cx).await?;
        Ok(match copy {
            Copy::Done(dest) => Observation::new(
                Satisfied::Done,
                format!("{rp} already copied to {dest}"),
                "nothing",
            )
            .with_result(json!({"recovery_point_arn": rp, "destination_recovery_point_arn": dest})),
            Copy::Running(job) => Observation::new(
                Satisfied::NotDone,
                format!("newest recovery point {rp}: copy job {job} under way"),
                "wait for that copy job",
            ),
            Copy::None => Observation::new(
                Satisfied::NotDone,
                format!("newest recovery point {rp} not copied yet"),
                format!("copy it to the {} vault", self.to),
            ),
        })
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let (rp, copy) = self.state(cx).await?;
        if let Copy::Running(job) = copy {
            cx.note(&format!("copy job {job} of {rp} is already under way"));
            return Ok(json!({"recovery_point_arn": rp, "copy_job_id": job}));
        }
        let (src, dst) = self.vaults(&cx.env).map_err(StepError::permanent)?;
        let dest_arn = cx
            .aws
            .backup(cx.env.region_of(self.to))
            .await
            .vault_arn(dst)
            .await?;
        let job = cx
            .aws
            .backup(cx.env.region_of(self.from))
            .await
            .start_copy(&rp, src, &dest_arn, &self.role_arn(cx)?)
            .await?;
        Ok(json!({"recovery_point_arn": rp, "copy_job_id": job}))
    }

    async fn verify(&self, cx: &StepCx, result: &Value) -> Result<(), StepError> {
        let Some(job) = result["copy_job_id"].as_str() else {
            return Ok(());
        };
        let b = cx.aws.backup(cx.env.region_of(self.from)).await;
        cx.poll(&format!("copy job {job}"), self.poll_interval, || async {
            let j = b.copy_job(job).await?;
            match j.state.as_str() {
                "COMPLETED" => Ok(Some(())),
                // CopyJob.State is CREATED | RUNNING | COMPLETED | FAILED | PARTIAL (AWS Backup
                // API reference, "CopyJob"); PARTIAL is final (a composite job some of whose
                // children failed). A final failure ends the wait (a retryable error would be
                // polled through until the step's timeout); `drctl resume` starts a new copy.
                "FAILED" | "ABORTED" | "PARTIAL" => Err(StepError::permanent(format!(
                    "copy job {job} {}: {}",
                    j.state,
                    j.message.unwrap_or_default()
                ))),
                _ => Ok(None),
            }
        })
        .await
    }

    fn outputs(&self) -> &'static [&'static str] {
        &[
            "recovery_point_arn",
            "destination_recovery_point_arn",
            "copy_job_id",
        ]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::NothingToUndo
    }

    fn templates(&self) -> Vec<&Text> {
        self.iam_role_arn.iter().collect()
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        let mut p = vec![];
        if let Err(e) = self.vaults(env) {
            p.push(problem(e));
        }
        if self.from == self.to {
            p.push(problem("`from` and `to` are the same region"));
        }
        if self.iam_role_arn.is_none()
            && env
                .backup
                .as_ref()
                .and_then(|b| b.iam_role_arn.as_ref())
                .is_none()
        {
            p.push(problem(
                "no `iam_role_arn`, and the environment has no `backup.iam_role_arn`",
            ));
        }
        p
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(600)
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let (src, dst) = self.vaults(env).unwrap_or(("*", "*"));
        let (fr, tr) = (env.region_of(self.from), env.region_of(self.to));
        vec![
            (
                "backup:ListRecoveryPointsByBackupVault",
                arn("backup", fr, &format!("backup-vault:{src}")),
            ),
            ("backup:ListCopyJobs", "*".into()),
            (
                "backup:DescribeBackupVault",
                arn("backup", tr, &format!("backup-vault:{dst}")),
            ),
            // A recovery point's ARN is the resource's own for EC2 (an AMI) and
            // `recovery-point:...` for others (AWS Backup Developer Guide, "Access control":
            // "the recovery point ARN ... for Amazon EC2 ... is the image ARN").
            ("backup:StartCopyJob", arn("backup", fr, "recovery-point:*")),
            ("backup:StartCopyJob", format!("arn:aws:ec2:{fr}::image/*")),
            ("backup:DescribeCopyJob", "*".into()),
            (
                "iam:PassRole",
                self.iam_role_arn
                    .as_ref()
                    .map(|t| t.value.clone())
                    .or_else(|| env.backup.as_ref().and_then(|b| b.iam_role_arn.clone()))
                    .unwrap_or_else(|| "*".into()),
            ),
        ]
    }
}
