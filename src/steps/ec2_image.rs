//! `ec2.latest_image`: find the newest available AMI in a region, from a backup vault's EC2
//! recovery points (the AMIs AWS Backup copied there) or by tag. Read-only; its output
//! `image_id` feeds `ec2.update_launch_template`.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    arn, default_standby, problem, Observation, Problem, Reversibility, Satisfied, Step, StepCx,
    StepError,
};
use crate::aws::ec2::{Image, ImageSource};
use crate::aws::Aws;
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatestImage {
    #[serde(default = "default_standby")]
    pub role: Role,
    /// Backup vault whose recovery points are searched (default: the region's `backup_vault`).
    #[serde(default)]
    pub vault: Option<String>,
    /// Instead of a vault: our own AMIs with this tag, as `key=value`.
    #[serde(default)]
    pub tag: Option<String>,
}

/// The newest available AMI in `region`, from `vault`'s recovery points or by `tag`.
async fn newest_image(
    aws: &dyn Aws,
    region: &str,
    vault: Option<&str>,
    tag: Option<&str>,
) -> Result<Option<Image>, StepError> {
    let source = match (tag, vault) {
        (Some(t), _) => {
            let (k, v) = t
                .split_once('=')
                .ok_or_else(|| StepError::permanent(format!("tag `{t}` is not key=value")))?;
            ImageSource::Tag(k, v)
        }
        (None, Some(vault)) => ImageSource::Vault(vault),
        (None, None) => {
            return Err(StepError::permanent(
                "neither a vault nor a tag to find images by",
            ))
        }
    };
    Ok(crate::aws::ec2::newest_image(aws, region, source).await?)
}

impl LatestImage {
    fn vault<'a>(&'a self, env: &'a Environment) -> Option<&'a str> {
        self.vault
            .as_deref()
            .or(env.resources(self.role).backup_vault.as_deref())
    }

    async fn find(&self, cx: &StepCx) -> Result<Image, StepError> {
        let region = cx.env.region_of(self.role);
        newest_image(
            cx.aws.as_ref(),
            region,
            self.vault(&cx.env),
            self.tag.as_deref(),
        )
        .await?
        .ok_or_else(|| {
            StepError::permanent(match &self.tag {
                Some(t) => format!("no available AMI tagged {t} in {region}"),
                None => format!(
                    "no available AMI among the recovery points of vault {} in {region}",
                    self.vault(&cx.env).unwrap_or("?")
                ),
            })
        })
    }
}

fn describe(i: &Image) -> Value {
    let age = i.created().map(|c| (chrono::Utc::now() - c).num_seconds());
    json!({"image_id": i.id, "name": i.name, "created": i.creation_date, "age_s": age})
}

#[async_trait]
impl Step for LatestImage {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let current = match self.find(cx).await {
            Ok(i) => format!(
                "newest: {} ({})",
                i.id,
                i.creation_date.as_deref().unwrap_or("?")
            ),
            Err(e) => format!("none found: {e}"),
        };
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            "look up the newest AMI (read-only)",
        ))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        Ok(describe(&self.find(cx).await?))
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["image_id", "name", "created", "age_s"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::NothingToUndo
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        let mut p = vec![];
        if self.tag.is_none() && self.vault(env).is_none() {
            p.push(problem(format!(
                "no `vault` or `tag`, and the {} region has no backup_vault",
                self.role
            )));
        }
        if let Some(t) = &self.tag {
            if !t.contains('=') {
                p.push(problem(format!("tag `{t}` is not key=value")));
            }
        }
        p
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let region = env.region_of(self.role);
        let mut v = vec![("ec2:DescribeImages", "*".to_string())];
        if self.tag.is_none() {
            v.push((
                "backup:ListRecoveryPointsByBackupVault",
                arn(
                    "backup",
                    region,
                    &format!("backup-vault:{}", self.vault(env).unwrap_or("*")),
                ),
            ));
        }
        v
    }
}
