//! `route53.upsert_record`: point a simple record (by default the region's private-zone
//! database CNAME) at a value, e.g. `${steps.promote.endpoint}`, and wait until INSYNC. Undo
//! puts the old value back (or deletes a record that did not exist).

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    default_poll, default_standby, problem, Observation, Problem, Reversibility, Satisfied, Step,
    StepCx, StepError, Text,
};
use crate::aws::route53::Record;
use crate::config::env::{Environment, Role};

fn default_type() -> String {
    "CNAME".into()
}
fn default_ttl() -> i64 {
    60
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertRecord {
    /// Whose `database.private_zone_id` / `database.record_name` to use when `zone_id` /
    /// `name` are not given.
    #[serde(default = "default_standby")]
    pub role: Role,
    #[serde(default)]
    pub zone_id: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub name: Option<Text>,
    #[serde(default = "default_type", rename = "type")]
    pub rtype: String,
    /// The record's value. May use `${...}` references.
    #[schemars(with = "String")]
    pub value: Text,
    #[serde(default = "default_ttl")]
    pub ttl: i64,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

fn norm(v: &str) -> String {
    v.trim_end_matches('.').to_ascii_lowercase()
}

impl UpsertRecord {
    fn target(&self, cx: &StepCx) -> Result<(String, String), StepError> {
        let db = cx.env.resources(self.role).database.as_ref();
        let zone = self
            .zone_id
            .clone()
            .or_else(|| db.and_then(|d| d.private_zone_id.clone()))
            .ok_or_else(|| {
                StepError::permanent(format!(
                    "no zone_id given and the {} database has no private_zone_id",
                    self.role
                ))
            })?;
        let name = match &self.name {
            Some(n) => cx.render(&n.value)?,
            None => db.and_then(|d| d.record_name.clone()).ok_or_else(|| {
                StepError::permanent(format!(
                    "no name given and the {} database has no record_name",
                    self.role
                ))
            })?,
        };
        Ok((zone, name))
    }
}

#[async_trait]
impl Step for UpsertRecord {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let (zone, name) = self.target(cx)?;
        let value = cx.render(&self.value.value)?;
        let cur = cx
            .aws
            .route53()
            .await
            .record(&zone, &name, &self.rtype)
            .await?;
        let intended = format!("{name} {} -> {value}", self.rtype);
        Ok(match cur {
            Some(r)
                if r.values.iter().map(|v| norm(v)).eq([norm(&value)])
                    && r.ttl == Some(self.ttl) =>
            {
                Observation::new(
                    Satisfied::Done,
                    format!("{name} {} -> {}", r.rtype, r.values.join(",")),
                    intended,
                )
                .with_result(json!({"name": name, "value": value}))
            }
            Some(r) => Observation::new(
                Satisfied::NotDone,
                format!("{name} {} -> {}", r.rtype, r.values.join(",")),
                intended,
            )
            .with_prior(json!({"zone_id": zone, "record": r})),
            None => Observation::new(
                Satisfied::NotDone,
                format!("{name} {} does not exist", self.rtype),
                intended,
            )
            .with_prior(json!({"zone_id": zone, "record": null})),
        })
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let (zone, name) = self.target(cx)?;
        let value = cx.render(&self.value.value)?;
        let rec = Record {
            name: name.clone(),
            rtype: self.rtype.clone(),
            ttl: Some(self.ttl),
            values: vec![value.clone()],
            set_identifier: None,
            failover: None,
            health_check_id: None,
            alias_dns_name: None,
            alias_zone_id: None,
            evaluate_target_health: None,
        };
        let change = cx
            .aws
            .route53()
            .await
            .upsert(
                &zone,
                &rec,
                &format!("drctl run {} step {}", cx.run_id, cx.step_id),
            )
            .await?;
        Ok(json!({"name": name, "value": value, "change_id": change}))
    }

    async fn verify(&self, cx: &StepCx, result: &Value) -> Result<(), StepError> {
        let Some(change) = result["change_id"].as_str().filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        wait_insync(cx, change, self.poll_interval).await
    }

    async fn undo(&self, cx: &StepCx, prior: &Value, _result: &Value) -> Result<(), StepError> {
        let r53 = cx.aws.route53().await;
        let zone = prior["zone_id"]
            .as_str()
            .map(String::from)
            .map_or_else(|| self.target(cx).map(|t| t.0), Ok)?;
        let comment = format!("drctl undo of run {} step {}", cx.run_id, cx.step_id);
        let change = match prior.get("record") {
            Some(Value::Null) | None => {
                // It did not exist before: delete what we wrote, if it is still there.
                let (_, name) = self.target(cx)?;
                match r53.record(&zone, &name, &self.rtype).await? {
                    Some(cur) => r53.delete(&zone, &cur, &comment).await?,
                    None => return Ok(()),
                }
            }
            Some(rec) => {
                let rec: Record = serde_json::from_value(rec.clone()).map_err(|e| {
                    StepError::permanent(format!("journaled prior record unreadable: {e}"))
                })?;
                r53.upsert(&zone, &rec, &comment).await?
            }
        };
        wait_insync(cx, &change, self.poll_interval).await
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["name", "value", "change_id"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn templates(&self) -> Vec<&Text> {
        let mut v = vec![&self.value];
        v.extend(self.name.iter());
        v
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        let db = env.resources(self.role).database.as_ref();
        let mut p = vec![];
        if self.zone_id.is_none() && db.and_then(|d| d.private_zone_id.as_ref()).is_none() {
            p.push(problem(format!(
                "no `zone_id` and the {} region's database has no private_zone_id",
                self.role
            )));
        }
        if self.name.is_none() && db.and_then(|d| d.record_name.as_ref()).is_none() {
            p.push(problem(format!(
                "no `name` and the {} region's database has no record_name",
                self.role
            )));
        }
        if !(0..=172_800).contains(&self.ttl) {
            p.push(problem(format!(
                "ttl {} is out of range 0..172800",
                self.ttl
            )));
        }
        p
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let zone = self
            .zone_id
            .clone()
            .or_else(|| {
                env.resources(self.role)
                    .database
                    .as_ref()
                    .and_then(|d| d.private_zone_id.clone())
            })
            .unwrap_or_else(|| "*".into());
        let z = format!("arn:aws:route53:::hostedzone/{zone}");
        vec![
            ("route53:ListResourceRecordSets", z.clone()),
            ("route53:ChangeResourceRecordSets", z),
            ("route53:GetChange", "arn:aws:route53:::change/*".into()),
        ]
    }
}

/// Wait until a Route 53 change is INSYNC (applied on all of Route 53's servers).
pub(crate) async fn wait_insync(
    cx: &StepCx,
    change: &str,
    interval: Duration,
) -> Result<(), StepError> {
    let r53 = cx.aws.route53().await;
    cx.poll(
        &format!("change {change} to be INSYNC"),
        interval,
        || async { Ok((r53.change_status(change).await? == "INSYNC").then_some(())) },
    )
    .await
}
