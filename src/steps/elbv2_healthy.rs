//! `elbv2.wait_healthy`: wait until a region's ALB target groups have enough healthy targets.
//! Read-only.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    default_poll, default_standby, problem, Observation, Problem, Reversibility, Satisfied, Step,
    StepCx, StepError,
};
use crate::config::env::{Environment, Role};

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitHealthy {
    #[serde(default = "default_standby")]
    pub role: Role,
    /// ALBs by name in drctl.yaml (default: every ALB of the region with a target group).
    #[serde(default)]
    pub albs: Vec<String>,
    /// Healthy targets each target group needs.
    #[serde(default = "one")]
    pub min_healthy: u32,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

impl WaitHealthy {
    fn groups(&self, env: &Environment) -> Result<Vec<(String, String)>, String> {
        let albs = &env.resources(self.role).albs;
        let names: Vec<String> = if self.albs.is_empty() {
            albs.keys().cloned().collect()
        } else {
            self.albs.clone()
        };
        let mut out = vec![];
        for n in names {
            let alb = albs.get(&n).ok_or_else(|| {
                format!(
                    "the {} region has no ALB named `{n}` (defined: {})",
                    self.role,
                    albs.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            match &alb.target_group_arn {
                Some(tg) => out.push((n, tg.clone())),
                None if !self.albs.is_empty() => {
                    return Err(format!(
                        "ALB `{n}` has no target_group_arn in the environment"
                    ))
                }
                None => {}
            }
        }
        if out.is_empty() {
            return Err(format!(
                "the {} region has no ALB with a target_group_arn",
                self.role
            ));
        }
        Ok(out)
    }

    async fn healthy(&self, cx: &StepCx) -> Result<Vec<(String, u32)>, StepError> {
        let groups = self.groups(&cx.env).map_err(StepError::permanent)?;
        let elb = cx.aws.elbv2(cx.env.region_of(self.role)).await;
        let mut out = vec![];
        for (name, tg) in groups {
            let n = elb
                .target_health(&tg)
                .await?
                .iter()
                .filter(|t| t.state == "healthy")
                .count() as u32;
            out.push((name, n));
        }
        Ok(out)
    }
}

fn summary(v: &[(String, u32)]) -> String {
    v.iter()
        .map(|(n, c)| format!("{n}: {c} healthy"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl Step for WaitHealthy {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let h = self.healthy(cx).await?;
        let state = if h.iter().all(|(_, n)| *n >= self.min_healthy) {
            Satisfied::Done
        } else {
            Satisfied::NotDone
        };
        let result = json!({"healthy": h.iter().map(|(n, c)| (n.clone(), json!(c))).collect::<serde_json::Map<_, _>>()});
        Ok(Observation::new(
            state,
            summary(&h),
            format!(
                "wait for {} healthy target(s) per target group",
                self.min_healthy
            ),
        )
        .with_result(result))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let h = cx
            .poll(
                &format!("{} healthy target(s) per target group", self.min_healthy),
                self.poll_interval,
                || async {
                    let h = self.healthy(cx).await?;
                    Ok(h.iter().all(|(_, n)| *n >= self.min_healthy).then_some(h))
                },
            )
            .await?;
        Ok(
            json!({"healthy": h.iter().map(|(n, c)| (n.clone(), json!(c))).collect::<serde_json::Map<_, _>>()}),
        )
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["healthy"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::NothingToUndo
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        match self.groups(env) {
            Ok(_) => vec![],
            Err(e) => vec![problem(e)],
        }
    }

    fn iam(&self, _env: &Environment) -> Vec<(&'static str, String)> {
        vec![("elasticloadbalancing:DescribeTargetHealth", "*".into())]
    }
}
