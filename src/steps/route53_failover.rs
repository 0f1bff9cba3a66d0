//! `route53.force_failover`: make Route 53 answer the SECONDARY (standby) record by making the
//! PRIMARY record's health check report unhealthy: invert it while the primary answers. Undo
//! puts the inversion back as it was.
//!
//! Inverting a check whose target is already failing would make it *healthy* and send users
//! back to the dead region, so a check that already reports unhealthy is left alone (with a
//! journaled warning), and a check that was inverted and then saw its target die is un-inverted.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    default_poll, problem, Observation, Problem, Reversibility, Satisfied, Step, StepCx, StepError,
};
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
    /// How long verify waits for the check to report unhealthy before failing the attempt, so
    /// that a retry re-observes (the primary may have died after the check was inverted).
    #[serde(default = "default_settle", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub settle_timeout: Duration,
}

fn default_settle() -> Duration {
    Duration::from_secs(30)
}

impl ForceFailover {
    fn id(&self, env: &Environment) -> Result<String, StepError> {
        self.health_check_id
            .clone()
            .or_else(|| env.route53.as_ref().map(|r| r.health_check_id.clone()))
            .ok_or_else(|| {
                StepError::permanent("no health_check_id and the environment has no `route53`")
            })
    }
}

#[async_trait]
impl Step for ForceFailover {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let id = self.id(&cx.env)?;
        let r53 = cx.aws.route53().await;
        let hc = r53.health_check(&id).await?;
        let healthy = r53.health_check_healthy(&id).await?;
        let prior = json!({"health_check_id": id, "inverted": hc.inverted});
        let current = format!(
            "health check {id}: {}, {}",
            if hc.inverted {
                "inverted"
            } else {
                "not inverted"
            },
            match healthy {
                Some(true) => "reports healthy",
                Some(false) => "reports unhealthy",
                None => "no observations yet",
            }
        );
        if healthy == Some(false) {
            if !hc.inverted {
                cx.warn(&format!(
                    "health check {id} already reports the primary unhealthy, so Route 53 answers the SECONDARY without inverting it \
                     (inverting would mark the dead primary healthy). If the primary recovers, Route 53 will answer it again: \
                     invert the check then, or disable the PRIMARY record"
                ));
            }
            return Ok(Observation::new(
                Satisfied::Done,
                current,
                "nothing: Route 53 already fails over",
            )
            .with_prior(prior)
            .with_result(json!({"health_check_id": id, "inverted": hc.inverted})));
        }
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!("flip health check {id}'s inversion so it reports the primary unhealthy"),
        )
        .with_prior(prior))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let id = self.id(&cx.env)?;
        let r53 = cx.aws.route53().await;
        let hc = r53.health_check(&id).await?;
        // Healthy and not inverted: the primary answers, so inverting fails it. Healthy *and*
        // inverted: the primary died after the check was inverted, so un-inverting fails it.
        let want = !hc.inverted;
        r53.set_inverted(&id, want).await?;
        Ok(json!({"health_check_id": id, "inverted": want}))
    }

    async fn verify(&self, cx: &StepCx, _result: &Value) -> Result<(), StepError> {
        let id = self.id(&cx.env)?;
        let r53 = cx.aws.route53().await;
        let what = format!("health check {id} to report unhealthy");
        let wait = cx.poll(&what, self.poll_interval, || async {
            Ok((r53.health_check_healthy(&id).await? == Some(false)).then_some(()))
        });
        tokio::time::timeout(self.settle_timeout, wait)
            .await
            .unwrap_or_else(|_| {
                Err(StepError::retryable(format!(
                    "health check {id} still reports healthy after {}; observing again",
                    humantime::format_duration(self.settle_timeout)
                )))
            })
    }

    async fn undo(&self, cx: &StepCx, prior: &Value, _result: &Value) -> Result<(), StepError> {
        let id = self.id(&cx.env)?;
        let was = prior["inverted"].as_bool().unwrap_or(false);
        cx.aws.route53().await.set_inverted(&id, was).await?;
        Ok(())
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["health_check_id", "inverted"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        if self.health_check_id.is_none() && env.route53.is_none() {
            return vec![problem(
                "no `health_check_id` and the environment has no `route53` section",
            )];
        }
        vec![]
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let id = self.id(env).unwrap_or_else(|_| "*".into());
        let a = format!("arn:aws:route53:::healthcheck/{id}");
        vec![
            ("route53:GetHealthCheck", a.clone()),
            ("route53:GetHealthCheckStatus", a.clone()),
            ("route53:UpdateHealthCheck", a),
        ]
    }
}
