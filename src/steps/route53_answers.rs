//! `route53.verify_answers`: the public name, asked of DNS (the hosted zone's name servers,
//! `route53.name_servers`), answers the expected region: its addresses are those of that
//! region's ALBs, themselves resolved at the time. Route 53's data plane only: no API call,
//! so it works while Route 53's control plane (us-east-1) does not. An answer that matches
//! neither region is "unknown" and never taken for either. Read-only.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    default_poll, default_standby, problem, Observation, Problem, Reversibility, Satisfied, Step,
    StepCx, StepError,
};
use crate::aws::dns::{where_answers, AnswerRegion, DnsApi};
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyAnswers {
    /// Which region the public name must answer.
    #[serde(default = "default_standby")]
    pub expect: Role,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

/// The zone's name servers, and the system resolver for names outside the zone (ALBs) when
/// it can be read.
type Resolvers = (
    std::sync::Arc<dyn DnsApi>,
    Option<std::sync::Arc<dyn DnsApi>>,
);

impl VerifyAnswers {
    async fn dns(&self, cx: &StepCx) -> Result<Resolvers, StepError> {
        let r53 = cx
            .env
            .route53
            .as_ref()
            .ok_or_else(|| StepError::permanent("the environment has no `route53`"))?;
        let zone = cx.aws.dns(&r53.name_servers).await?;
        let system = if r53.name_servers.is_empty() {
            None
        } else {
            cx.aws.dns(&[]).await.ok()
        };
        Ok((zone, system))
    }
}

#[async_trait]
impl Step for VerifyAnswers {
    fn moves_traffic(&self) -> bool {
        true
    }

    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let dns = self.dns(cx).await?;
        let (at, shown) = where_answers(&cx.env, dns.0.as_ref(), dns.1.as_deref()).await?;
        let want = cx.env.region_of(self.expect).to_string();
        let current = match &at {
            AnswerRegion::Region(r) => format!("DNS answers {r} ({})", shown.join(",")),
            AnswerRegion::Unknown(why) => why.clone(),
        };
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!("check that DNS answers {want} ({})", self.expect),
        ))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let dns = self.dns(cx).await?;
        let want = cx.env.region_of(self.expect).to_string();
        let shown = cx
            .poll(
                &format!("DNS to answer {want}'s ALB"),
                self.poll_interval,
                || async {
                    let (at, shown) =
                        where_answers(&cx.env, dns.0.as_ref(), dns.1.as_deref()).await?;
                    Ok((at == AnswerRegion::Region(want.clone())).then_some(shown))
                },
            )
            .await?;
        let r53 = cx.env.route53.as_ref().expect("checked");
        Ok(json!({"record": r53.record_name, "answer": shown, "region": want}))
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["record", "answer", "region"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::NothingToUndo
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        if env.route53.is_none() {
            return vec![problem("the environment has no `route53` section")];
        }
        vec![]
    }

    fn estimate(&self) -> Duration {
        // A health check interval and the record's TTL, at most.
        Duration::from_secs(30)
    }
}
