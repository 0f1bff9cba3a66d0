//! Auto Scaling: group sizes and how many instances are in service.

use async_trait::async_trait;

use super::{sdk_err, AwsError, AwsResult, ErrorKind};

#[derive(Debug, Clone)]
pub struct SdkAutoScaling {
    pub(crate) c: aws_sdk_autoscaling::Client,
    pub region: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Group {
    pub name: String,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub in_service: i32,
    pub launch_template_id: Option<String>,
    pub launch_template_version: Option<String>,
}

/// Auto Scaling: group sizes.
#[async_trait]
pub trait AutoScalingApi: Send + Sync {
    async fn group(&self, name: &str) -> AwsResult<Group>;
    /// Set min, desired and (when given) max in one call.
    async fn set_sizes(
        &self,
        name: &str,
        min: i32,
        desired: i32,
        max: Option<i32>,
    ) -> AwsResult<()>;
    /// Make the group launch from version `version` (a number, `$Latest` or `$Default`) of
    /// launch template `template`.
    async fn set_launch_template(&self, name: &str, template: &str, version: &str)
        -> AwsResult<()>;
}

#[async_trait]
impl AutoScalingApi for SdkAutoScaling {
    async fn group(&self, name: &str) -> AwsResult<Group> {
        let out = self
            .c
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(sdk_err!(
                "autoscaling",
                "DescribeAutoScalingGroups",
                self.region
            ))?;
        let g = out.auto_scaling_groups().first().ok_or_else(|| {
            AwsError::local(
                "autoscaling",
                "DescribeAutoScalingGroups",
                &self.region,
                ErrorKind::NotFound,
                format!("no Auto Scaling group {name}"),
            )
        })?;
        let in_service = g
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
            .count() as i32;
        Ok(Group {
            name: name.to_string(),
            min: g.min_size().unwrap_or(0),
            max: g.max_size().unwrap_or(0),
            desired: g.desired_capacity().unwrap_or(0),
            in_service,
            launch_template_id: g
                .launch_template()
                .and_then(|l| l.launch_template_id())
                .map(String::from),
            launch_template_version: g
                .launch_template()
                .and_then(|l| l.version())
                .map(String::from),
        })
    }

    async fn set_sizes(
        &self,
        name: &str,
        min: i32,
        desired: i32,
        max: Option<i32>,
    ) -> AwsResult<()> {
        self.c
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(min)
            .desired_capacity(desired)
            .set_max_size(max)
            .send()
            .await
            .map_err(sdk_err!(
                "autoscaling",
                "UpdateAutoScalingGroup",
                self.region
            ))?;
        Ok(())
    }

    async fn set_launch_template(
        &self,
        name: &str,
        template: &str,
        version: &str,
    ) -> AwsResult<()> {
        self.c
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(template)
                    .version(version)
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_err!(
                "autoscaling",
                "UpdateAutoScalingGroup",
                self.region
            ))?;
        Ok(())
    }
}
