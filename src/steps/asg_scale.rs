//! `asg.scale`: bring an Auto Scaling group to a size and wait for it. `size: production`
//! (default) grows the group to the environment's `production_size` and never shrinks it;
//! `size: warm` sets it to `warm_size` (a failback sending the region it leaves back to warm
//! standby), and waits until no more than that many instances are in service. Undo restores
//! the sizes.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    arn, default_poll, default_standby, problem, Observation, Problem, Reversibility, Satisfied,
    Step, StepCx, StepError,
};
use crate::config::env::{Asg, Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    #[serde(default = "default_standby")]
    pub role: Role,
    /// The ASG by its name in drctl.yaml (`frontend`, `backend`).
    pub asg: String,
    /// Which of the environment's sizes to go to.
    #[serde(default)]
    pub size: Size,
    /// Desired capacity (default: the ASG's size for `size`).
    #[serde(default)]
    pub desired: Option<u32>,
    /// Minimum size (default: the desired capacity, so the group cannot scale back in).
    #[serde(default)]
    pub min: Option<u32>,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// Grow to `production_size` (never shrink).
    #[default]
    Production,
    /// Set to `warm_size` exactly (the region stops serving production).
    Warm,
}

impl Scale {
    fn asg<'a>(&self, env: &'a Environment) -> Result<&'a Asg, String> {
        env.resources(self.role).asgs.get(&self.asg).ok_or_else(|| {
            format!(
                "the {} region ({}) has no ASG named `{}` (defined: {})",
                self.role,
                env.region_of(self.role),
                self.asg,
                env.resources(self.role)
                    .asgs
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    fn sizes(&self, asg: &Asg) -> (i32, i32) {
        let base = match self.size {
            Size::Production => asg.production_size,
            Size::Warm => asg.warm_size,
        };
        let desired = self.desired.unwrap_or(base) as i32;
        (self.min.map(|m| m as i32).unwrap_or(desired), desired)
    }

    /// Whether group `g` is where this step wants it.
    fn reached(&self, min: i32, desired: i32, g: &crate::aws::autoscaling::Group) -> bool {
        match self.size {
            Size::Production => g.min >= min && g.desired >= desired && g.in_service >= desired,
            Size::Warm => g.min <= min && g.desired == desired && g.in_service <= desired,
        }
    }
}

#[async_trait]
impl Step for Scale {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let asg = self.asg(&cx.env).map_err(StepError::permanent)?;
        let (min, desired) = self.sizes(asg);
        let g = cx
            .aws
            .autoscaling(cx.env.region_of(self.role))
            .await
            .group(&asg.name)
            .await?;
        let current = format!(
            "{}: min {} desired {} max {}, {} InService",
            g.name, g.min, g.desired, g.max, g.in_service
        );
        let prior = json!({"name": g.name, "min": g.min, "desired": g.desired, "max": g.max});
        if self.reached(min, desired, &g) {
            return Ok(Observation::new(Satisfied::Done, current, "nothing")
                .with_prior(prior)
                .with_result(
                    json!({"name": g.name, "desired": g.desired, "in_service": g.in_service}),
                ));
        }
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!("min {min} desired {desired}, wait for {desired} InService"),
        )
        .with_prior(prior))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let asg = self.asg(&cx.env).map_err(StepError::permanent)?;
        let (min, desired) = self.sizes(asg);
        let a = cx.aws.autoscaling(cx.env.region_of(self.role)).await;
        let g = a.group(&asg.name).await?;
        // Going to production never shrinks a group that is already bigger than asked.
        let (min, desired) = match self.size {
            Size::Production => (min.max(g.min), desired.max(g.desired)),
            Size::Warm => (min, desired),
        };
        let max = (desired > g.max).then_some(desired);
        if max.is_some() {
            cx.warn(&format!(
                "{}: max {} is below the desired {desired}; raising max to {desired}",
                asg.name, g.max
            ));
        }
        a.set_sizes(&asg.name, min, desired, max).await?;
        Ok(json!({"name": asg.name, "min": min, "desired": desired}))
    }

    async fn verify(&self, cx: &StepCx, result: &Value) -> Result<(), StepError> {
        let asg = self.asg(&cx.env).map_err(StepError::permanent)?;
        let want = result["desired"].as_i64().unwrap_or(0) as i32;
        let a = cx.aws.autoscaling(cx.env.region_of(self.role)).await;
        let warm = self.size == Size::Warm;
        cx.poll(
            &format!(
                "{} to have {}{want} InService instances",
                asg.name,
                if warm { "at most " } else { "" }
            ),
            self.poll_interval,
            || async {
                let n = a.group(&asg.name).await?.in_service;
                Ok((if warm { n <= want } else { n >= want }).then_some(()))
            },
        )
        .await
    }

    async fn undo(&self, cx: &StepCx, prior: &Value, _result: &Value) -> Result<(), StepError> {
        let (Some(name), Some(min), Some(desired), Some(max)) = (
            prior["name"].as_str(),
            prior["min"].as_i64(),
            prior["desired"].as_i64(),
            prior["max"].as_i64(),
        ) else {
            return Err(StepError::permanent("journaled prior sizes are incomplete"));
        };
        cx.aws
            .autoscaling(cx.env.region_of(self.role))
            .await
            .set_sizes(name, min as i32, desired as i32, Some(max as i32))
            .await?;
        Ok(())
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["name", "min", "desired", "in_service"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        match self.asg(env) {
            Err(e) => vec![problem(e)],
            Ok(asg) => {
                let (min, desired) = self.sizes(asg);
                if min > desired {
                    vec![problem(format!("min {min} is above desired {desired}"))]
                } else {
                    vec![]
                }
            }
        }
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(240)
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let region = env.region_of(self.role);
        let name = self
            .asg(env)
            .map(|a| a.name.clone())
            .unwrap_or_else(|_| "*".into());
        vec![
            ("autoscaling:DescribeAutoScalingGroups", "*".into()),
            (
                "autoscaling:UpdateAutoScalingGroup",
                arn(
                    "autoscaling",
                    region,
                    &format!("autoScalingGroup:*:autoScalingGroupName/{name}"),
                ),
            ),
        ]
    }
}
