//! `route53.verify_failover`: the public record is a PRIMARY/SECONDARY failover pair with a
//! health check on the PRIMARY and a TTL of at most `max_ttl`, and Route 53 now answers with
//! the expected side (the standby, after a failover). Read-only.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    default_poll, default_standby, problem, Observation, Problem, Reversibility, Satisfied, Step,
    StepCx, StepError,
};
use crate::aws::route53::{check_records, same_name, target, Route53Api};
use crate::config::env::{Environment, Role, Route53Settings};

fn default_max_ttl() -> i64 {
    60
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyFailover {
    /// Which side Route 53 must answer with.
    #[serde(default = "default_standby")]
    pub expect: Role,
    #[serde(default = "default_max_ttl")]
    pub max_ttl: i64,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

impl VerifyFailover {
    async fn state(
        &self,
        r53: &dyn Route53Api,
        s: &Route53Settings,
    ) -> Result<(Vec<String>, Option<String>, Vec<String>), StepError> {
        let recs = r53.records(&s.public_zone_id, &s.record_name).await?;
        let pair = check_records(&recs, s, self.max_ttl);
        let want = match self.expect {
            Role::Standby => pair.standby.as_ref().and_then(target),
            Role::Primary => pair.primary.as_ref().and_then(target),
        };
        let rtype = pair
            .primary
            .as_ref()
            .or(pair.standby.as_ref())
            .map(|r| r.rtype.clone())
            .unwrap_or_else(|| "A".into());
        let problems = pair.problems;
        let answer = r53
            .answer(&s.public_zone_id, &s.record_name, &rtype)
            .await?;
        Ok((problems, want, answer))
    }
}

#[async_trait]
impl Step for VerifyFailover {
    fn moves_traffic(&self) -> bool {
        true
    }

    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let s = cx
            .env
            .route53
            .clone()
            .ok_or_else(|| StepError::permanent("the environment has no `route53`"))?;
        let (problems, _want, answer) = self.state(cx.aws.route53().await.as_ref(), &s).await?;
        let mut current = format!("{} answers {}", s.record_name, answer.join(","));
        if !problems.is_empty() {
            current.push_str(&format!("; {}", problems.join("; ")));
        }
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!("check that Route 53 answers the {}", self.expect),
        ))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let s = cx
            .env
            .route53
            .clone()
            .ok_or_else(|| StepError::permanent("the environment has no `route53`"))?;
        let r53 = cx.aws.route53().await;
        let (problems, want, _) = self.state(r53.as_ref(), &s).await?;
        if !problems.is_empty() {
            return Err(StepError::permanent(format!(
                "failover records are not set up for failover: {}",
                problems.join("; ")
            )));
        }
        let want = want.ok_or_else(|| {
            StepError::permanent(format!("the {} record has no target", self.expect))
        })?;
        let answer = cx
            .poll(
                &format!("Route 53 to answer {want}"),
                self.poll_interval,
                || async {
                    let (_, _, answer) = self.state(r53.as_ref(), &s).await?;
                    Ok(answer
                        .iter()
                        .any(|a| same_name(a, &want))
                        .then(|| answer.clone()))
                },
            )
            .await?;
        Ok(json!({"record": s.record_name, "answer": answer, "expected": want}))
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["record", "answer", "expected"]
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

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let zone = env
            .route53
            .as_ref()
            .map(|r| r.public_zone_id.clone())
            .unwrap_or_else(|| "*".into());
        vec![
            (
                "route53:ListResourceRecordSets",
                format!("arn:aws:route53:::hostedzone/{zone}"),
            ),
            ("route53:TestDNSAnswer", "*".into()),
        ]
    }
}
