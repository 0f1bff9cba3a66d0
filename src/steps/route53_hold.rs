//! `route53.hold_failover`: make the failover hold. Route 53 answers a failover pair's PRIMARY
//! while its health check passes, so after a failover done only by health (the old primary's
//! check failing) Route 53 sends users back to the old primary as soon as it recovers, while
//! it may still hold an old writer. This step swaps the roles of the pair in one atomic
//! change batch: the `active` region's record becomes PRIMARY without a health check (always
//! answered), the other region's SECONDARY keeping its check. Failback runs it with
//! `active: primary`, which restores the original layout (primary PRIMARY with the
//! environment's health check, standby SECONDARY). Undo restores the records exactly as they
//! were before.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    default_poll, default_standby, problem, Observation, Problem, Reversibility, Satisfied, Step,
    StepCx, StepError,
};
use crate::aws::route53::{check_records, same_name, target, ChangeKind, Record};
use crate::config::env::{Environment, Role, Route53Settings};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldFailover {
    /// The region Route 53 must keep answering.
    #[serde(default = "default_standby")]
    pub active: Role,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

fn settings(env: &Environment) -> Result<&Route53Settings, StepError> {
    env.route53
        .as_ref()
        .ok_or_else(|| StepError::permanent("the environment has no `route53`"))
}

impl HoldFailover {
    /// The pair as it is now (primary region's record, standby's record).
    async fn current(&self, cx: &StepCx) -> Result<(Record, Record), StepError> {
        let s = settings(&cx.env)?;
        let recs = cx
            .aws
            .route53()
            .await
            .records(&s.public_zone_id, &s.record_name)
            .await?;
        let pair = check_records(&recs, s, i64::MAX);
        match (pair.primary, pair.standby) {
            (Some(p), Some(st)) => Ok((p, st)),
            _ => Err(StepError::permanent(pair.problems.join("; "))),
        }
    }

    /// The pair as this step wants it.
    fn wanted(&self, s: &Route53Settings, p: &Record, st: &Record) -> (Record, Record) {
        let (mut p, mut st) = (p.clone(), st.clone());
        match self.active {
            Role::Standby => {
                st.failover = Some("PRIMARY".into());
                st.health_check_id = None;
                // An alias that evaluates its target's health would still fail back by health.
                if st.alias_dns_name.is_some() {
                    st.evaluate_target_health = Some(false);
                }
                p.failover = Some("SECONDARY".into());
                p.health_check_id = Some(s.primary_check().to_string());
            }
            Role::Primary => {
                p.failover = Some("PRIMARY".into());
                p.health_check_id = Some(s.primary_check().to_string());
                st.failover = Some("SECONDARY".into());
                st.health_check_id = None;
            }
        }
        (p, st)
    }

    fn describe(p: &Record, st: &Record) -> String {
        let one = |r: &Record| {
            format!(
                "{} {}{}",
                r.set_identifier.as_deref().unwrap_or("?"),
                r.failover.as_deref().unwrap_or("-"),
                r.health_check_id
                    .as_ref()
                    .map(|h| format!(" (check {h})"))
                    .unwrap_or_default()
            )
        };
        format!("{}, {}", one(p), one(st))
    }
}

#[async_trait]
impl Step for HoldFailover {
    fn moves_traffic(&self) -> bool {
        true
    }

    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let s = settings(&cx.env)?;
        let (p, st) = self.current(cx).await?;
        let (wp, wst) = self.wanted(s, &p, &st);
        let current = format!("{}: {}", s.record_name, Self::describe(&p, &st));
        if (&p, &st) == (&wp, &wst) {
            return Ok(Observation::new(
                Satisfied::Done,
                current,
                format!("nothing: Route 53 already holds the {}", self.active),
            )
            .with_result(json!({"active": self.active.to_string()})));
        }
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!(
                "one change batch: {} (Route 53 keeps answering the {} until an explicit failback)",
                Self::describe(&wp, &wst),
                self.active
            ),
        )
        .with_prior(json!({"records": [p, st]})))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let s = settings(&cx.env)?;
        // Read again: the batch deletes the records exactly as they are now.
        let (p, st) = self.current(cx).await?;
        let (wp, wst) = self.wanted(s, &p, &st);
        if (&p, &st) == (&wp, &wst) {
            return Ok(json!({"active": self.active.to_string()}));
        }
        let change = cx
            .aws
            .route53()
            .await
            .change_batch(
                &s.public_zone_id,
                &[
                    (ChangeKind::Delete, p),
                    (ChangeKind::Delete, st),
                    (ChangeKind::Create, wp),
                    (ChangeKind::Create, wst),
                ],
                &format!("drctl {}: hold the {}", cx.run_id, self.active),
            )
            .await?;
        Ok(json!({"active": self.active.to_string(), "change_id": change}))
    }

    async fn verify(&self, cx: &StepCx, result: &Value) -> Result<(), StepError> {
        let s = settings(&cx.env)?;
        let r53 = cx.aws.route53().await;
        if let Some(id) = result["change_id"].as_str() {
            cx.poll(
                "the record change to be INSYNC",
                self.poll_interval,
                || async { Ok((r53.change_status(id).await? == "INSYNC").then_some(())) },
            )
            .await?;
        }
        let (p, st) = self.current(cx).await?;
        let want = match self.active {
            Role::Primary => target(&p),
            Role::Standby => target(&st),
        }
        .ok_or_else(|| StepError::permanent("the active record has no target"))?;
        cx.poll(
            &format!("Route 53 to answer {want}"),
            self.poll_interval,
            || async {
                let answer = r53
                    .answer(&s.public_zone_id, &s.record_name, &p.rtype)
                    .await?;
                Ok(answer.iter().any(|a| same_name(a, &want)).then_some(()))
            },
        )
        .await
    }

    async fn undo(&self, cx: &StepCx, prior: &Value, _result: &Value) -> Result<(), StepError> {
        let Some(was) = prior.get("records") else {
            return Ok(());
        };
        let was: Vec<Record> = serde_json::from_value(was.clone())
            .map_err(|e| StepError::permanent(format!("journaled records unreadable: {e}")))?;
        let s = settings(&cx.env)?;
        let (p, st) = self.current(cx).await?;
        if was == [p.clone(), st.clone()] {
            return Ok(());
        }
        let mut changes = vec![(ChangeKind::Delete, p), (ChangeKind::Delete, st)];
        changes.extend(was.into_iter().map(|r| (ChangeKind::Create, r)));
        cx.aws
            .route53()
            .await
            .change_batch(
                &s.public_zone_id,
                &changes,
                &format!("drctl {}: undo hold", cx.run_id),
            )
            .await?;
        Ok(())
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["active", "change_id"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
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
            .map(|r| {
                r.public_zone_id
                    .rsplit('/')
                    .next()
                    .unwrap_or("*")
                    .to_string()
            })
            .unwrap_or_else(|| "*".into());
        let z = format!("arn:aws:route53:::hostedzone/{zone}");
        vec![
            ("route53:ListResourceRecordSets", z.clone()),
            ("route53:ChangeResourceRecordSets", z),
            ("route53:GetChange", "arn:aws:route53:::change/*".into()),
            ("route53:TestDNSAnswer", "*".into()),
        ]
    }
}
