//! `drill.readiness`: a readiness drill's check, read-only. The checks `drctl check` makes
//! (the environment's state, then the passive region: replica and lag, AMI age, capacity,
//! DNS, CloudFront, backups, ALBs), journaled as the step's result; any FAIL fails the step.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Observation, Reversibility, Satisfied, Step, StepCx, StepError};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    /// Bound on each check.
    #[serde(default = "default_limit", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub check_timeout: Duration,
}

fn default_limit() -> Duration {
    Duration::from_secs(20)
}

#[async_trait]
impl Step for Readiness {
    async fn observe(&self, _cx: &StepCx) -> Result<Observation, StepError> {
        Ok(Observation::new(
            Satisfied::NotDone,
            "not checked yet",
            "check the environment and the region a failover would go to (read-only)",
        ))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let checks = cx.checks.as_ref().ok_or_else(|| {
            StepError::permanent(
                "this run gives no environment checks (run it with `drctl drill --mode readiness`)",
            )
        })?;
        let (phase, rows) = checks.readiness(&cx.env, self.check_timeout).await;
        let count = |s: &str| rows.iter().filter(|c| c.status == s).count();
        let (fail, warn) = (count("fail"), count("warn"));
        for c in rows.iter().filter(|c| c.status == "warn") {
            cx.warn(&format!("{}: {}", c.name, c.reason));
        }
        if fail > 0 {
            let failed: Vec<String> = rows
                .iter()
                .filter(|c| c.status == "fail")
                .map(|c| format!("{}: {}", c.name, c.reason))
                .collect();
            return Err(StepError::permanent(format!(
                "{fail} readiness check(s) FAIL: {}",
                failed.join("; ")
            )));
        }
        Ok(json!({"phase": phase, "checks": rows, "warn": warn, "fail": fail}))
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::NothingToUndo
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["phase", "checks", "warn", "fail"]
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(10)
    }

    fn iam(&self, _env: &crate::config::env::Environment) -> Vec<(&'static str, String)> {
        [
            "rds:DescribeDBInstances",
            "cloudwatch:GetMetricData",
            "ec2:DescribeImages",
            "backup:ListRecoveryPointsByBackupVault",
            "autoscaling:DescribeAutoScalingGroups",
            "route53:GetHealthCheckStatus",
            "route53:ListResourceRecordSets",
            "cloudfront:GetDistribution",
            "elasticloadbalancing:DescribeTargetHealth",
        ]
        .into_iter()
        .map(|a| (a, "*".to_string()))
        .collect()
    }
}
