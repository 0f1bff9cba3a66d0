//! `route53.set_gate`: close (or open) the failover gate of `route53.gate`. Closed, the
//! primary's failover record stops answering, whatever its ALB's health, so production stays
//! on the standby when the old primary returns (the hold), with no call to Route 53's control
//! plane: an ARC routing control set through its cluster's regional endpoints, or a metric
//! written to CloudWatch in the gate's region, drives a Route 53 health check (data plane).
//! The step waits until the gate itself says so (the routing control's state; the alarm's
//! state after its next evaluation). Undo sets the gate back as it was.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    default_poll, problem, Observation, Problem, Reversibility, Satisfied, Step, StepCx, StepError,
};
use crate::aws::gate::{GateApi, GateState};
use crate::config::env::{Environment, Gate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Want {
    Open,
    Closed,
}

impl Want {
    fn state(self) -> GateState {
        match self {
            Want::Open => GateState::Open,
            Want::Closed => GateState::Closed,
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetGate {
    /// `closed`: the primary's record stops answering (failover); `open`: it may answer again
    /// (failback).
    pub state: Want,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

fn gate(env: &Environment) -> Result<&Gate, StepError> {
    env.route53
        .as_ref()
        .and_then(|r| r.gate.as_ref())
        .ok_or_else(|| StepError::permanent("the environment has no `route53.gate`"))
}

async fn api(cx: &StepCx) -> Result<std::sync::Arc<dyn GateApi>, StepError> {
    Ok(cx.aws.gate(gate(&cx.env)?, &cx.env.primary_region).await)
}

/// Set the gate to `want` and wait until it reads so.
async fn set_and_wait(
    cx: &StepCx,
    g: &dyn GateApi,
    want: GateState,
    poll: Duration,
) -> Result<(String, String), StepError> {
    let written = chrono::Utc::now();
    let via = g.set(want).await?;
    cx.note(&format!("gate set {want} through {via}"));
    // A last known status (an alarm with no data) counts only if it was evaluated after the
    // write: before that, Route 53 still acts on what came before, whatever was written.
    let detail = cx
        .poll(&format!("the gate to read {want}"), poll, || async {
            let r = g.read().await?;
            let settled = r.last_known_since.is_none_or(|t| t >= written);
            Ok((r.state == want && settled).then_some(r.detail))
        })
        .await?;
    Ok((via, detail))
}

#[async_trait]
impl Step for SetGate {
    fn moves_traffic(&self) -> bool {
        true
    }

    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let g = gate(&cx.env)?;
        let r = api(cx).await?.read().await?;
        let want = self.state.state();
        let state = if r.state == want {
            Satisfied::Done
        } else {
            Satisfied::NotDone
        };
        let intended = match self.state {
            Want::Closed => format!(
                "close the {} gate: the primary's record stops answering, production is held on the standby",
                g.kind()
            ),
            Want::Open => format!(
                "open the {} gate: the primary's record answers again while its health check passes",
                g.kind()
            ),
        };
        Ok(Observation::new(state, r.detail.clone(), intended)
            .with_prior(json!({ "state": r.state }))
            .with_result(json!({ "gate": want, "detail": r.detail })))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let g = api(cx).await?;
        let want = self.state.state();
        let (via, detail) = set_and_wait(cx, g.as_ref(), want, self.poll_interval).await?;
        Ok(json!({ "gate": want, "via": via, "detail": detail }))
    }

    async fn verify(&self, cx: &StepCx, _result: &Value) -> Result<(), StepError> {
        let want = self.state.state();
        let g = api(cx).await?;
        cx.poll(
            &format!("the gate to read {want}"),
            self.poll_interval,
            || async { Ok((g.read().await?.state == want).then_some(())) },
        )
        .await
    }

    async fn undo(&self, cx: &StepCx, prior: &Value, _result: &Value) -> Result<(), StepError> {
        let back = match prior.get("state").and_then(Value::as_str) {
            Some("open") => GateState::Open,
            Some("closed") => GateState::Closed,
            // Unknown before: nothing known to put back; leave the gate as it is, saying so.
            _ => {
                cx.warn("the gate's state before this run was unknown: left as it is");
                return Ok(());
            }
        };
        let g = api(cx).await?;
        set_and_wait(cx, g.as_ref(), back, self.poll_interval).await?;
        Ok(())
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["gate", "via", "detail"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        match env.route53.as_ref().and_then(|r| r.gate.as_ref()) {
            None => vec![problem(
                "the environment has no `route53.gate` (an ARC routing control or a CloudWatch alarm)",
            )],
            Some(_) => vec![],
        }
    }

    fn estimate(&self) -> Duration {
        // A routing control answers at once; an alarm reads the change at its next
        // evaluation, up to a minute.
        Duration::from_secs(60)
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let Some(g) = env.route53.as_ref().and_then(|r| r.gate.as_ref()) else {
            return vec![];
        };
        if let Some(rc) = &g.routing_control {
            // ARC's data plane authorizes on the routing control (Service Authorization
            // Reference, "Actions defined by Amazon Route 53 Recovery Cluster").
            return vec![
                (
                    "route53-recovery-cluster:GetRoutingControlState",
                    rc.arn.clone(),
                ),
                (
                    "route53-recovery-cluster:UpdateRoutingControlState",
                    rc.arn.clone(),
                ),
            ];
        }
        let a = g
            .alarm
            .as_ref()
            .expect("validated: routing_control or alarm");
        vec![
            // PutMetricData has no resource-level permissions (Service Authorization
            // Reference, CloudWatch: resource `*`, condition key cloudwatch:namespace).
            ("cloudwatch:PutMetricData", "*".into()),
            (
                "cloudwatch:DescribeAlarms",
                format!("arn:aws:cloudwatch:{}:*:alarm:{}", a.region, a.name),
            ),
            ("cloudwatch:GetMetricStatistics", "*".into()),
        ]
    }
}
