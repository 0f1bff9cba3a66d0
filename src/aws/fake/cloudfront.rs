//! The fake CloudFront: origin groups reordered under an ETag, deployments that settle.

use async_trait::async_trait;

use super::{Handle, SETTLE_READS};
use crate::aws::cloudfront::{CloudFrontApi, OriginGroup};
use crate::aws::{AwsResult, ErrorKind};

#[async_trait]
impl CloudFrontApi for Handle {
    async fn origin_group(&self, distribution_id: &str, group_id: &str) -> AwsResult<OriginGroup> {
        self.f
            .enter("cloudfront", "GetDistributionConfig", &self.region, false)
            .await?;
        let w = self.f.world();
        let Some(d) = w.distributions.get(distribution_id) else {
            return self.not_found(
                "cloudfront",
                "GetDistributionConfig",
                format!("no distribution {distribution_id}"),
            );
        };
        let Some(members) = d.groups.get(group_id) else {
            return self.not_found(
                "cloudfront",
                "GetDistributionConfig",
                format!("distribution {distribution_id} has no origin group {group_id}"),
            );
        };
        Ok(OriginGroup {
            distribution_id: distribution_id.into(),
            group_id: group_id.into(),
            members: members.clone(),
            etag: format!("E{}", d.etag),
        })
    }

    async fn set_member_order(
        &self,
        distribution_id: &str,
        group_id: &str,
        order: &[String],
    ) -> AwsResult<Option<String>> {
        let current = self.origin_group(distribution_id, group_id).await?.members;
        if current == order {
            return Ok(None);
        }
        let (mut a, mut b) = (current.clone(), order.to_vec());
        a.sort();
        b.sort();
        if a != b {
            return self.refuse("cloudfront", "UpdateDistribution", "InvalidArgument", ErrorKind::Other,
                format!("origin group {group_id} has members {current:?}, cannot reorder them to {order:?}"));
        }
        self.f
            .enter("cloudfront", "UpdateDistribution", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let d = w
            .distributions
            .get_mut(distribution_id)
            .expect("read just now");
        d.groups.insert(group_id.into(), order.to_vec());
        d.etag += 1;
        d.deploying = SETTLE_READS;
        Ok(Some(format!("E{}", d.etag)))
    }

    async fn status(&self, distribution_id: &str) -> AwsResult<String> {
        self.f
            .enter("cloudfront", "GetDistribution", &self.region, false)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.distributions.get_mut(distribution_id) else {
            return self.not_found(
                "cloudfront",
                "GetDistribution",
                format!("no distribution {distribution_id}"),
            );
        };
        d.deploying = d.deploying.saturating_sub(1);
        Ok(if d.deploying == 0 {
            "Deployed"
        } else {
            "InProgress"
        }
        .into())
    }
}
