//! CloudFront: the order of an origin group's members, changed under an ETag guard.

use std::time::Duration;

use async_trait::async_trait;

use crate::retry::{retry, Backoff};

use super::{sdk_err, AwsError, AwsResult, ErrorKind, GLOBAL_REGION};

#[derive(Debug, Clone)]
pub struct SdkCloudFront {
    pub(crate) c: aws_sdk_cloudfront::Client,
}

/// An origin group as drctl sees it: members in failover order (first is preferred).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OriginGroup {
    pub distribution_id: String,
    pub group_id: String,
    pub members: Vec<String>,
    pub etag: String,
}

/// How many times an update reads the configuration and writes under its ETag before giving
/// up on a distribution that keeps changing under it.
const PRECONDITION_ATTEMPTS: u32 = 8;
/// Short, spread pauses between lost ETag races.
const RACE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(40))
    .max(Duration::from_millis(320))
    .jitter(0.5);

/// CloudFront: the order of an origin group's members.
#[async_trait]
pub trait CloudFrontApi: Send + Sync {
    async fn origin_group(&self, distribution_id: &str, group_id: &str) -> AwsResult<OriginGroup>;
    /// Reorder the group's members to `order` (a permutation of the current members). Each
    /// attempt reads the configuration and its ETag and writes with `IfMatch`; a concurrent
    /// writer makes it PreconditionFailed, and then it reads again rather than overwrite.
    /// Returns the new ETag, or `None` when the order already held.
    async fn set_member_order(
        &self,
        distribution_id: &str,
        group_id: &str,
        order: &[String],
    ) -> AwsResult<Option<String>>;
    /// `Deployed` or `InProgress`.
    async fn status(&self, distribution_id: &str) -> AwsResult<String>;
}

impl SdkCloudFront {
    /// One read-compare-write under the ETag read with the configuration.
    async fn reorder_once(
        &self,
        distribution_id: &str,
        group_id: &str,
        order: &[String],
    ) -> AwsResult<Option<String>> {
        let out = self.config(distribution_id).await?;
        let etag = out.e_tag().unwrap_or_default().to_string();
        let Some(mut cfg) = out.distribution_config().cloned() else {
            return Err(AwsError::local(
                "cloudfront",
                "GetDistributionConfig",
                GLOBAL_REGION,
                ErrorKind::Other,
                "answer has no DistributionConfig",
            ));
        };
        let not_found = || {
            AwsError::local(
                "cloudfront",
                "UpdateDistribution",
                GLOBAL_REGION,
                ErrorKind::NotFound,
                format!("distribution {distribution_id} has no origin group {group_id}"),
            )
        };
        let group = cfg
            .origin_groups
            .as_mut()
            .and_then(|g| g.items.as_mut())
            .and_then(|items| items.iter_mut().find(|g| g.id == group_id))
            .ok_or_else(not_found)?;
        let members = group.members.as_mut().ok_or_else(not_found)?;
        let current: Vec<String> = members
            .items
            .iter()
            .map(|m| m.origin_id().to_string())
            .collect();
        if current == order {
            return Ok(None);
        }
        let mut sorted_cur = current.clone();
        sorted_cur.sort();
        let mut sorted_new = order.to_vec();
        sorted_new.sort();
        if sorted_cur != sorted_new {
            return Err(AwsError::local(
                "cloudfront",
                "UpdateDistribution",
                GLOBAL_REGION,
                ErrorKind::Other,
                format!("origin group {group_id} has members {current:?}, cannot reorder them to {order:?}"),
            ));
        }
        members.items.sort_by_key(|m| {
            order
                .iter()
                .position(|o| o == m.origin_id())
                .unwrap_or(usize::MAX)
        });
        let res = self
            .c
            .update_distribution()
            .id(distribution_id)
            .if_match(&etag)
            .distribution_config(cfg)
            .send()
            .await;
        res.map(|o| Some(o.e_tag().unwrap_or_default().to_string()))
            .map_err(|e| AwsError::from_sdk("cloudfront", "UpdateDistribution", GLOBAL_REGION, e))
    }

    /// The distribution's configuration and the ETag that guards the next update.
    async fn config(
        &self,
        distribution_id: &str,
    ) -> AwsResult<
        aws_sdk_cloudfront::operation::get_distribution_config::GetDistributionConfigOutput,
    > {
        self.c
            .get_distribution_config()
            .id(distribution_id)
            .send()
            .await
            .map_err(sdk_err!(
                "cloudfront",
                "GetDistributionConfig",
                GLOBAL_REGION
            ))
    }
}

#[async_trait]
impl CloudFrontApi for SdkCloudFront {
    async fn origin_group(&self, distribution_id: &str, group_id: &str) -> AwsResult<OriginGroup> {
        let out = self.config(distribution_id).await?;
        let etag = out.e_tag().unwrap_or_default().to_string();
        let cfg = out.distribution_config();
        let group = cfg
            .and_then(|c| c.origin_groups())
            .map(|g| g.items())
            .unwrap_or_default()
            .iter()
            .find(|g| g.id() == group_id)
            .ok_or_else(|| {
                AwsError::local(
                    "cloudfront",
                    "GetDistributionConfig",
                    GLOBAL_REGION,
                    ErrorKind::NotFound,
                    format!("distribution {distribution_id} has no origin group {group_id}"),
                )
            })?;
        let members = group
            .members()
            .map(|m| {
                m.items()
                    .iter()
                    .map(|i| i.origin_id().to_string())
                    .collect()
            })
            .unwrap_or_default();
        Ok(OriginGroup {
            distribution_id: distribution_id.into(),
            group_id: group_id.into(),
            members,
            etag,
        })
    }

    async fn set_member_order(
        &self,
        distribution_id: &str,
        group_id: &str,
        order: &[String],
    ) -> AwsResult<Option<String>> {
        // Someone else wrote in between: let them finish, then read again rather than
        // overwrite their change.
        retry(
            RACE_BACKOFF,
            PRECONDITION_ATTEMPTS,
            |e: &AwsError| e.code.as_deref() == Some("PreconditionFailed"),
            |_| self.reorder_once(distribution_id, group_id, order),
        )
        .await
    }

    async fn status(&self, distribution_id: &str) -> AwsResult<String> {
        let out = self
            .c
            .get_distribution()
            .id(distribution_id)
            .send()
            .await
            .map_err(sdk_err!("cloudfront", "GetDistribution", GLOBAL_REGION))?;
        Ok(out
            .distribution()
            .map(|d| d.status().to_string())
            .unwrap_or_default())
    }
}
