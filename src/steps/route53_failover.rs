//! `route53.force_failover`: make Route 53 answer the SECONDARY (standby) record by inverting
//! the PRIMARY record's health check. Undo reverts the inversion.
//!
//! Inverting a check whose target is already failing would make it *healthy* and send users
//! back to the dead region, so when the check already reports unhealthy the step leaves it as
//! it is (Route 53 is failing over on its own) and journals a warning instead.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{default_poll, problem, Observation, Problem, Reversibility, Satisfied, Step, StepCx, StepError};
use crate::config::env::Environment;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForceFailover {
    /// Default: the environment's `route53.health_check_id`.
    #[serde(default)]
    pub health_check_id: Option<String>,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

impl ForceFailover {
    fn id(&self, env: &Environment) -> Result<String, StepError> {
        self.health_check_id
            .clone()
            .or_else(|| env.route53.as_ref().map(|r| r.health_check_id.clone()))
            .ok_or_else(|| StepError::permanent("no health_check_id and the environment has no `route53`"))
    }
}

#[async_trait]
impl Step for ForceFailover {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let id = self.id(&cx.env)?;
        let hc = cx.aws.route53().await.health_check(&id).await?;
        let prior = json!({"health_check_id": id, "inverted": hc.inverted});
        if hc.inverted {
            return Ok(Observation::new(Satisfied::Done, format!("health check {id} is inverted"), "nothing: failover already forced")
                .with_prior(prior)
                .with_result(json!({"health_check_id": id, "inverted": true})));
        }
        Ok(Observation::new(Satisfied::NotDone, format!("health check {id} is not inverted"), format!("invert health check {id} so Route 53 answers the SECONDARY")).with_prior(prior))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let id = self.id(&cx.env)?;
        let r53 = cx.aws.route53().await;
        if r53.health_check_healthy(&id).await? == Some(false) {
            cx.warn(&format!(
                "health check {id} already reports the primary unhealthy, so Route 53 already answers the SECONDARY; \
                 not inverting it (that would mark the dead primary healthy). If the primary recovers, Route 53 will \
                 answer it again: invert the check then, or disable the PRIMARY record"
            ));
            return Ok(json!({"health_check_id": id, "inverted": false, "skipped": "primary already unhealthy"}));
        }
        r53.set_inverted(&id, true).await?;
        Ok(json!({"health_check_id": id, "inverted": true}))
    }

    async fn verify(&self, cx: &StepCx, result: &Value) -> Result<(), StepError> {
        if result["inverted"] != json!(true) {
            return Ok(());
        }
        let id = self.id(&cx.env)?;
        let r53 = cx.aws.route53().await;
        cx.poll(&format!("health check {id} to report unhealthy"), self.poll_interval, || async { Ok((r53.health_check_healthy(&id).await? == Some(false)).then_some(())) })
            .await
    }

    async fn undo(&self, cx: &StepCx, prior: &Value, result: &Value) -> Result<(), StepError> {
        if result["inverted"] == json!(false) {
            return Ok(());
        }
        let id = self.id(&cx.env)?;
        let was = prior["inverted"].as_bool().unwrap_or(false);
        cx.aws.route53().await.set_inverted(&id, was).await?;
        Ok(())
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        if self.health_check_id.is_none() && env.route53.is_none() {
            return vec![problem("no `health_check_id` and the environment has no `route53` section")];
        }
        vec![]
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let id = self.id(env).unwrap_or_else(|_| "*".into());
        let a = format!("arn:aws:route53:::healthcheck/{id}");
        vec![("route53:GetHealthCheck", a.clone()), ("route53:GetHealthCheckStatus", a.clone()), ("route53:UpdateHealthCheck", a)]
    }
}
