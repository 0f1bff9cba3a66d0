//! `cloudfront.promote_origin`: make a region's origin the first member of the distribution's
//! origin group (ETag-guarded, re-read on PreconditionFailed) and wait until Deployed. Undo
//! restores the previous order.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    default_poll, default_standby, problem, Observation, Problem, Reversibility, Satisfied, Step,
    StepCx, StepError,
};
use crate::config::env::{CloudFrontSettings, Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteOrigin {
    /// The region whose origin becomes CloudFront's first choice.
    #[serde(default = "default_standby")]
    pub role: Role,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

impl PromoteOrigin {
    fn settings<'a>(
        &self,
        env: &'a Environment,
    ) -> Result<(&'a CloudFrontSettings, String), StepError> {
        let cf = env
            .cloudfront
            .as_ref()
            .ok_or_else(|| StepError::permanent("the environment has no `cloudfront`"))?;
        let origin = cf
            .origins
            .get(env.region_of(self.role))
            .cloned()
            .ok_or_else(|| {
                StepError::permanent(format!(
                    "cloudfront.origins has no origin for {}",
                    env.region_of(self.role)
                ))
            })?;
        Ok((cf, origin))
    }
}

async fn wait_deployed(
    cx: &StepCx,
    distribution: &str,
    interval: Duration,
) -> Result<(), StepError> {
    let cf = cx.aws.cloudfront().await;
    cx.poll(
        &format!("distribution {distribution} to be Deployed"),
        interval,
        || async { Ok((cf.status(distribution).await? == "Deployed").then_some(())) },
    )
    .await
}

#[async_trait]
impl Step for PromoteOrigin {
    fn moves_traffic(&self) -> bool {
        true
    }

    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let (s, origin) = self.settings(&cx.env)?;
        let g = cx
            .aws
            .cloudfront()
            .await
            .origin_group(&s.distribution_id, &s.origin_group_id)
            .await?;
        let current = format!(
            "origin group {} order: {}",
            g.group_id,
            g.members.join(", ")
        );
        let prior = json!({"members": g.members});
        if g.members.first() == Some(&origin) {
            return Ok(Observation::new(Satisfied::Done, current, "nothing")
                .with_prior(prior)
                .with_result(json!({"first_origin": origin})));
        }
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!("make {origin} the first origin"),
        )
        .with_prior(prior))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let (s, origin) = self.settings(&cx.env)?;
        let cf = cx.aws.cloudfront().await;
        let g = cf
            .origin_group(&s.distribution_id, &s.origin_group_id)
            .await?;
        let mut order = vec![origin.clone()];
        order.extend(g.members.iter().filter(|m| **m != origin).cloned());
        let etag = cf
            .set_member_order(&s.distribution_id, &s.origin_group_id, &order)
            .await?;
        Ok(json!({"first_origin": origin, "order": order, "etag": etag}))
    }

    async fn verify(&self, cx: &StepCx, _result: &Value) -> Result<(), StepError> {
        let (s, _) = self.settings(&cx.env)?;
        wait_deployed(cx, &s.distribution_id, self.poll_interval).await
    }

    async fn undo(&self, cx: &StepCx, prior: &Value, _result: &Value) -> Result<(), StepError> {
        let (s, _) = self.settings(&cx.env)?;
        let members: Vec<String> = serde_json::from_value(prior["members"].clone())
            .map_err(|e| StepError::permanent(format!("journaled prior order unreadable: {e}")))?;
        cx.aws
            .cloudfront()
            .await
            .set_member_order(&s.distribution_id, &s.origin_group_id, &members)
            .await?;
        wait_deployed(cx, &s.distribution_id, self.poll_interval).await
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["first_origin", "order", "etag"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        match self.settings(env) {
            Ok(_) => vec![],
            Err(e) => vec![problem(e.to_string())],
        }
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(300)
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let id = env
            .cloudfront
            .as_ref()
            .map(|c| c.distribution_id.clone())
            .unwrap_or_else(|| "*".into());
        let a = format!("arn:aws:cloudfront::*:distribution/{id}");
        vec![
            ("cloudfront:GetDistributionConfig", a.clone()),
            ("cloudfront:UpdateDistribution", a.clone()),
            ("cloudfront:GetDistribution", a),
        ]
    }
}
