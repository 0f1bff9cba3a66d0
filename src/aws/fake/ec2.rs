//! The fake EC2: images (by id and tag) and launch template versions.

use async_trait::async_trait;

use super::Handle;
use crate::aws::ec2::{Ec2Api, Image, LaunchTemplate};
use crate::aws::{AwsResult, ErrorKind};

#[async_trait]
impl Ec2Api for Handle {
    async fn images(&self, ids: &[String]) -> AwsResult<Vec<Image>> {
        self.f
            .enter("ec2", "DescribeImages", &self.region, false)
            .await?;
        let w = self.f.world();
        Ok(ids
            .iter()
            .filter_map(|id| w.images.get(&self.key(id)).map(|i| i.0.clone()))
            .collect())
    }

    async fn images_tagged(&self, key: &str, value: &str) -> AwsResult<Vec<Image>> {
        self.f
            .enter("ec2", "DescribeImages", &self.region, false)
            .await?;
        Ok(self
            .f
            .world()
            .images
            .iter()
            .filter(|((r, _), (_, tags))| {
                *r == self.region && tags.get(key).map(String::as_str) == Some(value)
            })
            .map(|(_, (i, _))| i.clone())
            .collect())
    }

    async fn launch_template(&self, id: &str) -> AwsResult<LaunchTemplate> {
        self.f
            .enter("ec2", "DescribeLaunchTemplates", &self.region, false)
            .await?;
        match self.f.world().templates.get(&self.key(id)) {
            Some(t) => Ok(LaunchTemplate {
                id: id.into(),
                default_version: t.default_version,
                latest_version: t.versions.keys().copied().max().unwrap_or(1),
                default_image_id: t.versions.get(&t.default_version).cloned(),
            }),
            None => self.not_found(
                "ec2",
                "DescribeLaunchTemplates",
                format!("no launch template {id}"),
            ),
        }
    }

    async fn create_version(
        &self,
        id: &str,
        _source_version: i64,
        image_id: &str,
        _description: &str,
        client_token: &str,
    ) -> AwsResult<i64> {
        self.f
            .enter("ec2", "CreateLaunchTemplateVersion", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(t) = w.templates.get_mut(&self.key(id)) else {
            return self.not_found(
                "ec2",
                "CreateLaunchTemplateVersion",
                format!("no launch template {id}"),
            );
        };
        // EC2's idempotency: a token seen before returns that call's version.
        if let Some((v, _)) = t.tokens.iter().find(|(_, tok)| tok == client_token) {
            return Ok(*v);
        }
        let v = t.versions.keys().copied().max().unwrap_or(0) + 1;
        t.versions.insert(v, image_id.into());
        t.tokens.push((v, client_token.to_string()));
        Ok(v)
    }

    async fn set_default_version(&self, id: &str, version: i64) -> AwsResult<()> {
        self.f
            .enter("ec2", "ModifyLaunchTemplate", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(t) = w.templates.get_mut(&self.key(id)) else {
            return self.not_found(
                "ec2",
                "ModifyLaunchTemplate",
                format!("no launch template {id}"),
            );
        };
        if !t.versions.contains_key(&version) {
            return self.refuse(
                "ec2",
                "ModifyLaunchTemplate",
                "InvalidLaunchTemplateId.VersionNotFound",
                ErrorKind::NotFound,
                format!("{id} has no version {version}"),
            );
        }
        t.default_version = version;
        Ok(())
    }

    async fn version_image(&self, id: &str, version: &str) -> AwsResult<(i64, Option<String>)> {
        self.f
            .enter("ec2", "DescribeLaunchTemplateVersions", &self.region, false)
            .await?;
        let w = self.f.world();
        let Some(t) = w.templates.get(&self.key(id)) else {
            return self.not_found(
                "ec2",
                "DescribeLaunchTemplateVersions",
                format!("no launch template {id}"),
            );
        };
        let n = match version {
            "$Default" => t.default_version,
            "$Latest" => t.versions.keys().copied().max().unwrap_or(1),
            n => n.parse().unwrap_or(-1),
        };
        match t.versions.get(&n) {
            Some(image) => Ok((n, Some(image.clone()))),
            None => self.not_found(
                "ec2",
                "DescribeLaunchTemplateVersions",
                format!("{id} has no version {version}"),
            ),
        }
    }
}
