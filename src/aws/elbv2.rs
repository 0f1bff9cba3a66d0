//! Elastic Load Balancing v2: the health of a target group's targets.

use async_trait::async_trait;

use super::{sdk_err, AwsResult};

#[derive(Debug, Clone)]
pub struct SdkElbv2 {
    pub(crate) c: aws_sdk_elasticloadbalancingv2::Client,
    pub region: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetHealth {
    pub id: String,
    /// `healthy`, `initial`, `unhealthy`, `draining`, ...
    pub state: String,
}

/// Elastic Load Balancing v2: target health.
#[async_trait]
pub trait Elbv2Api: Send + Sync {
    async fn target_health(&self, target_group_arn: &str) -> AwsResult<Vec<TargetHealth>>;
}

#[async_trait]
impl Elbv2Api for SdkElbv2 {
    async fn target_health(&self, target_group_arn: &str) -> AwsResult<Vec<TargetHealth>> {
        let out = self
            .c
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(sdk_err!("elbv2", "DescribeTargetHealth", self.region))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .map(|d| TargetHealth {
                id: d
                    .target()
                    .and_then(|t| t.id())
                    .unwrap_or_default()
                    .to_string(),
                state: d
                    .target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "unknown".into()),
            })
            .collect())
    }
}
