//! EC2: AMIs in a region and launch template versions.

use aws_sdk_ec2::types::Filter;

use async_trait::async_trait;

use super::{sdk_err, AwsError, AwsResult, ErrorKind};

#[derive(Debug, Clone)]
pub struct SdkEc2 {
    pub(crate) c: aws_sdk_ec2::Client,
    pub region: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Image {
    pub id: String,
    pub state: String,
    pub name: Option<String>,
    /// ISO 8601, as EC2 reports it.
    pub creation_date: Option<String>,
}

impl Image {
    pub fn created(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.creation_date
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&chrono::Utc))
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LaunchTemplate {
    pub id: String,
    pub default_version: i64,
    pub latest_version: i64,
    /// The AMI of the default version.
    pub default_image_id: Option<String>,
}

fn image(i: &aws_sdk_ec2::types::Image) -> Image {
    Image {
        id: i.image_id().unwrap_or_default().to_string(),
        state: i
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        name: i.name().map(String::from),
        creation_date: i.creation_date().map(String::from),
    }
}

/// EC2: images and launch templates.
#[async_trait]
pub trait Ec2Api: Send + Sync {
    async fn images(&self, ids: &[String]) -> AwsResult<Vec<Image>>;
    /// Our own images carrying tag `key=value`.
    async fn images_tagged(&self, key: &str, value: &str) -> AwsResult<Vec<Image>>;
    async fn launch_template(&self, id: &str) -> AwsResult<LaunchTemplate>;
    /// A new version based on `source_version` with `image_id`; returns its number.
    /// EC2 returns the version already made for a `client_token` it has seen with the same
    /// request, so a retry after a crash never makes a second one.
    async fn create_version(
        &self,
        id: &str,
        source_version: i64,
        image_id: &str,
        description: &str,
        client_token: &str,
    ) -> AwsResult<i64>;
    async fn set_default_version(&self, id: &str, version: i64) -> AwsResult<()>;
    /// The (number, AMI) of version `version` of template `id`: a number, `$Latest` or
    /// `$Default` (DescribeLaunchTemplateVersions takes all three).
    async fn version_image(&self, id: &str, version: &str) -> AwsResult<(i64, Option<String>)>;
}

#[async_trait]
impl Ec2Api for SdkEc2 {
    async fn images(&self, ids: &[String]) -> AwsResult<Vec<Image>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let out = self
            .c
            .describe_images()
            .set_image_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(sdk_err!("ec2", "DescribeImages", self.region))?;
        Ok(out.images().iter().map(image).collect())
    }

    async fn images_tagged(&self, key: &str, value: &str) -> AwsResult<Vec<Image>> {
        let out = self
            .c
            .describe_images()
            .owners("self")
            .filters(
                Filter::builder()
                    .name(format!("tag:{key}"))
                    .values(value)
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_err!("ec2", "DescribeImages", self.region))?;
        Ok(out.images().iter().map(image).collect())
    }

    async fn launch_template(&self, id: &str) -> AwsResult<LaunchTemplate> {
        let out = self
            .c
            .describe_launch_templates()
            .launch_template_ids(id)
            .send()
            .await
            .map_err(sdk_err!("ec2", "DescribeLaunchTemplates", self.region))?;
        let lt = out.launch_templates().first().ok_or_else(|| {
            AwsError::local(
                "ec2",
                "DescribeLaunchTemplates",
                &self.region,
                ErrorKind::NotFound,
                format!("no launch template {id}"),
            )
        })?;
        let default_version = lt.default_version_number().unwrap_or(1);
        let versions = self
            .c
            .describe_launch_template_versions()
            .launch_template_id(id)
            .versions(default_version.to_string())
            .send()
            .await
            .map_err(sdk_err!(
                "ec2",
                "DescribeLaunchTemplateVersions",
                self.region
            ))?;
        let default_image_id = versions
            .launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .and_then(|d| d.image_id())
            .map(String::from);
        Ok(LaunchTemplate {
            id: id.to_string(),
            default_version,
            latest_version: lt.latest_version_number().unwrap_or(default_version),
            default_image_id,
        })
    }

    async fn create_version(
        &self,
        id: &str,
        source_version: i64,
        image_id: &str,
        description: &str,
        client_token: &str,
    ) -> AwsResult<i64> {
        let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
            .image_id(image_id)
            .build();
        let out = self
            .c
            .create_launch_template_version()
            .launch_template_id(id)
            .client_token(client_token)
            .source_version(source_version.to_string())
            .version_description(description)
            .launch_template_data(data)
            .send()
            .await
            .map_err(sdk_err!("ec2", "CreateLaunchTemplateVersion", self.region))?;
        out.launch_template_version()
            .and_then(|v| v.version_number())
            .ok_or_else(|| {
                AwsError::local(
                    "ec2",
                    "CreateLaunchTemplateVersion",
                    &self.region,
                    ErrorKind::Other,
                    "answer has no version number",
                )
            })
    }

    async fn version_image(&self, id: &str, version: &str) -> AwsResult<(i64, Option<String>)> {
        let out = self
            .c
            .describe_launch_template_versions()
            .launch_template_id(id)
            .versions(version)
            .send()
            .await
            .map_err(sdk_err!(
                "ec2",
                "DescribeLaunchTemplateVersions",
                self.region
            ))?;
        let v = out.launch_template_versions().first().ok_or_else(|| {
            AwsError::local(
                "ec2",
                "DescribeLaunchTemplateVersions",
                &self.region,
                ErrorKind::NotFound,
                format!("{id} has no version {version}"),
            )
        })?;
        Ok((
            v.version_number().unwrap_or(0),
            v.launch_template_data()
                .and_then(|d| d.image_id())
                .map(String::from),
        ))
    }

    async fn set_default_version(&self, id: &str, version: i64) -> AwsResult<()> {
        self.c
            .modify_launch_template()
            .launch_template_id(id)
            .default_version(version.to_string())
            .send()
            .await
            .map_err(sdk_err!("ec2", "ModifyLaunchTemplate", self.region))?;
        Ok(())
    }
}

/// Where to look for the newest AMI of a region.
#[derive(Debug, Clone, Copy)]
pub enum ImageSource<'a> {
    /// The EC2 recovery points (AMIs) AWS Backup put in this vault.
    Vault(&'a str),
    /// Our own AMIs carrying tag `key=value`.
    Tag(&'a str, &'a str),
}

/// The newest available AMI in `region` from `source`, if any.
pub async fn newest_image(
    aws: &dyn super::Aws,
    region: &str,
    source: ImageSource<'_>,
) -> AwsResult<Option<Image>> {
    let ec2 = aws.ec2(region).await;
    let images = match source {
        ImageSource::Tag(k, v) => ec2.images_tagged(k, v).await?,
        ImageSource::Vault(vault) => {
            let points = aws.backup(region).await.recovery_points(vault).await?;
            let ids: Vec<String> = points
                .iter()
                .filter(|p| p.status == "COMPLETED")
                .filter_map(|p| p.image_id().map(String::from))
                .collect();
            ec2.images(&ids).await?
        }
    };
    Ok(images
        .into_iter()
        .filter(|i| i.state == "available")
        .max_by_key(|i| i.created()))
}
