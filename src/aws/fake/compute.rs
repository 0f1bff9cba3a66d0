//! The fake Auto Scaling and ELBv2: group sizes and target health.

use async_trait::async_trait;

use super::Handle;
use crate::aws::autoscaling::{AutoScalingApi, Group};
use crate::aws::elbv2::{Elbv2Api, TargetHealth};
use crate::aws::{AwsResult, ErrorKind};

#[async_trait]
impl AutoScalingApi for Handle {
    async fn group(&self, name: &str) -> AwsResult<Group> {
        self.f
            .enter(
                "autoscaling",
                "DescribeAutoScalingGroups",
                &self.region,
                false,
            )
            .await?;
        match self.f.world().groups.get(&self.key(name)) {
            Some(g) => Ok(g.clone()),
            None => self.not_found(
                "autoscaling",
                "DescribeAutoScalingGroups",
                format!("no Auto Scaling group {name}"),
            ),
        }
    }

    async fn set_sizes(
        &self,
        name: &str,
        min: i32,
        desired: i32,
        max: Option<i32>,
    ) -> AwsResult<()> {
        self.f
            .enter("autoscaling", "UpdateAutoScalingGroup", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(g) = w.groups.get_mut(&self.key(name)) else {
            return self.not_found(
                "autoscaling",
                "UpdateAutoScalingGroup",
                format!("no Auto Scaling group {name}"),
            );
        };
        let max = max.unwrap_or(g.max);
        if desired > max || min > desired {
            return self.refuse(
                "autoscaling",
                "UpdateAutoScalingGroup",
                "ValidationError",
                ErrorKind::Other,
                format!("min {min} <= desired {desired} <= max {max} does not hold"),
            );
        }
        g.min = min;
        g.desired = desired;
        g.max = max;
        // Instances come into service at once here; the sandbox models the wait.
        g.in_service = desired;
        Ok(())
    }

    async fn set_launch_template(
        &self,
        name: &str,
        template: &str,
        version: &str,
    ) -> AwsResult<()> {
        self.f
            .enter("autoscaling", "UpdateAutoScalingGroup", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(g) = w.groups.get_mut(&self.key(name)) else {
            return self.not_found(
                "autoscaling",
                "UpdateAutoScalingGroup",
                format!("no Auto Scaling group {name}"),
            );
        };
        g.launch_template_id = Some(template.into());
        g.launch_template_version = Some(version.into());
        Ok(())
    }
}

#[async_trait]
impl Elbv2Api for Handle {
    async fn target_health(&self, target_group_arn: &str) -> AwsResult<Vec<TargetHealth>> {
        self.f
            .enter("elbv2", "DescribeTargetHealth", &self.region, false)
            .await?;
        let w = self.f.world();
        match w.target_groups.get(&self.key(target_group_arn)) {
            Some(t) => Ok(t.clone()),
            None => self.not_found(
                "elbv2",
                "DescribeTargetHealth",
                format!("no target group {target_group_arn}"),
            ),
        }
    }
}
