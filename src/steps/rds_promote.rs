//! `rds.promote_replica`: promote the standby region's read replica to a standalone writer.
//! Irreversible. Refuses while the replica lags more than `max_lag` (unless `force`), and
//! records the lag at promotion as the run's RPO estimate.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    arn, database, default_poll, default_standby, problem, Measure, Observation, Problem,
    Reversibility, Satisfied, Step, StepCx, StepError,
};
use crate::aws::rds::DbInstance;
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteReplica {
    /// The region whose database (a read replica) is promoted.
    #[serde(default = "default_standby")]
    pub role: Role,
    /// Refuse to promote while ReplicaLag is above this (default: the environment's `targets.rpo`).
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub max_lag: Option<Duration>,
    /// Promote even if the lag is above `max_lag` or unknown: accept losing those writes.
    #[serde(default)]
    pub force: bool,
    /// A planned switchover: wait until the replica has caught up (ReplicaLag 0) before
    /// promoting, so no write is lost (RPO 0). The old writer must be fenced first, or the
    /// lag never settles at 0.
    #[serde(default)]
    pub catch_up: bool,
    /// With `catch_up`: how long to wait for lag 0 before the step fails (the fence still
    /// holds writes off; the run pauses for a person to decide).
    #[serde(default = "default_catch_up_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub catch_up_timeout: Duration,
    /// How often to look at the instance while it is promoted.
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

fn default_catch_up_timeout() -> Duration {
    Duration::from_secs(600)
}

fn result(db: &DbInstance, lag: Option<f64>) -> Value {
    json!({ "instance_id": db.id, "endpoint": db.endpoint, "port": db.port, "rpo_estimate_s": lag })
}

impl PromoteReplica {
    /// The replica's lag now, or a refusal: above `max_lag` (permanent: the operator decides),
    /// or no datapoint (retryable: RDS publishes once a minute). `force` turns both into
    /// journaled warnings.
    async fn lag_guard(&self, cx: &StepCx, db: &DbInstance) -> Result<Option<f64>, StepError> {
        let region = cx.env.region_of(self.role);
        let max_lag = self.max_lag.unwrap_or(cx.env.targets.rpo);
        let lag = cx
            .aws
            .cloudwatch(region)
            .await
            .replica_lag(&db.id, Duration::from_secs(600))
            .await?;
        match lag {
            Some(l) if l > max_lag.as_secs_f64() && !self.force => Err(StepError::permanent(format!(
                "replica {} lags {l:.0}s behind its source, above max_lag {}: promoting now loses up to {l:.0}s of writes. \
                 Wait for it to catch up, or set `force: true` to accept the loss",
                db.id,
                humantime::format_duration(max_lag)
            ))),
            None if !self.force => Err(StepError::retryable(format!(
                "no ReplicaLag data for {} in the last 10 minutes, so the data loss of a promotion is unknown; \
                 waiting for a datapoint (set `force: true` to promote without one)",
                db.id
            ))),
            Some(l) if l > max_lag.as_secs_f64() => {
                cx.warn(&format!("promoting {} with replica lag {l:.0}s above max_lag (force: true)", db.id));
                Ok(lag)
            }
            None => {
                cx.warn(&format!("promoting {} without ReplicaLag data (force: true): RPO unknown", db.id));
                Ok(lag)
            }
            _ => Ok(lag),
        }
    }

    async fn lag(&self, cx: &StepCx, db: &DbInstance) -> Result<Option<f64>, StepError> {
        Ok(cx
            .aws
            .cloudwatch(cx.env.region_of(self.role))
            .await
            .replica_lag(&db.id, Duration::from_secs(600))
            .await?)
    }

    /// Wait (at most `catch_up_timeout`) until the replica reports no lag.
    async fn wait_caught_up(&self, cx: &StepCx, db: &DbInstance) -> Result<f64, StepError> {
        let last = std::sync::Mutex::new(None::<f64>);
        let what = format!("{} to catch up with its source (ReplicaLag 0)", db.id);
        let wait = cx.poll(&what, self.poll_interval, || async {
            let lag = self.lag(cx, db).await?;
            *last.lock().expect("lag") = lag;
            Ok(match lag {
                Some(l) if l <= 0.0 => Some(l),
                Some(l) => {
                    cx.note(&format!("{} lags {l:.0}s; waiting for 0", db.id));
                    None
                }
                None => None,
            })
        });
        match tokio::time::timeout(self.catch_up_timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(StepError::permanent(format!(
                "{} did not catch up within {} (lag {}): nothing was promoted. Writes stay fenced; \
                 find out why replication is behind, then `drctl resume` to wait again, or roll this run back \
                 and fail over with `--mode unplanned` accepting the loss",
                db.id,
                humantime::format_duration(self.catch_up_timeout),
                last.lock()
                    .expect("lag")
                    .map(|l| format!("{l:.0}s"))
                    .unwrap_or_else(|| "unknown".into())
            ))),
        }
    }

    /// A promoted instance whose parameter group still says `read_only = 1` (left there by
    /// an earlier fence of this region) would be a writer that refuses writes: clear it.
    async fn ensure_writable(&self, cx: &StepCx, db: &DbInstance) -> Result<bool, StepError> {
        let Some(group) = db.parameter_group.as_deref() else {
            return Ok(true);
        };
        let rds = cx.aws.rds(cx.env.region_of(self.role)).await;
        let ro = rds.parameter(group, "read_only").await?;
        if matches!(ro.as_deref(), Some("1" | "ON" | "on" | "true" | "TRUE")) {
            if group.starts_with("default.") {
                return Err(StepError::permanent(format!(
                    "{} uses {group}, which sets read_only and cannot be changed",
                    db.id
                )));
            }
            cx.note(&format!(
                "clearing read_only in {group}, left by an earlier fence, so {} takes writes",
                db.id
            ));
            rds.set_parameter(group, "read_only", "0").await?;
            return Ok(false);
        }
        Ok(db.parameter_apply_status.as_deref() != Some("applying"))
    }

    async fn describe(&self, cx: &StepCx) -> Result<DbInstance, StepError> {
        let db = database(&cx.env, self.role)?;
        Ok(cx
            .aws
            .rds(cx.env.region_of(self.role))
            .await
            .describe(&db.instance_id)
            .await?)
    }
}

#[async_trait]
impl Step for PromoteReplica {
    /// Read-only, and where the lag guard lives: a refusal here happens before any intent is
    /// journaled, so the run shows that nothing was attempted and a rollback does not stop at
    /// a promotion that never started.
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let db = self.describe(cx).await?;
        if db.is_available_writer() {
            return Ok(Observation::new(
                Satisfied::Done,
                format!("{} is a writer ({})", db.id, db.status),
                "nothing: already promoted",
            )
            .with_prior(json!({ "replica_source": db.replica_source, "status": db.status }))
            .with_result(result(&db, None)));
        }
        let (current, lag) = match &db.replica_source {
            Some(src) if db.status == "available" => {
                let lag = if self.catch_up {
                    self.lag(cx, &db).await?
                } else {
                    self.lag_guard(cx, &db).await?
                };
                let shown = lag
                    .map(|l| format!("lag {l:.0}s"))
                    .unwrap_or_else(|| "lag unknown".into());
                (
                    format!("{} is a read replica of {src} ({shown})", db.id),
                    lag,
                )
            }
            Some(src) => (
                format!("{} is a read replica of {src} ({})", db.id, db.status),
                None,
            ),
            None => (format!("{} is being promoted ({})", db.id, db.status), None),
        };
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!("promote {} to a standalone writer (IRREVERSIBLE)", db.id),
        )
        .with_prior(
            json!({ "replica_source": db.replica_source, "status": db.status, "lag_s": lag }),
        ))
    }

    async fn execute(&self, cx: &StepCx, obs: &Observation) -> Result<Value, StepError> {
        let region = cx.env.region_of(self.role).to_string();
        let db = self.describe(cx).await?;
        let lag = obs.prior.get("lag_s").and_then(Value::as_f64);
        // A promotion already under way (drctl died after asking) must not be asked twice.
        let lag = if self.catch_up && db.is_replica() && db.status == "available" {
            Some(self.wait_caught_up(cx, &db).await?)
        } else {
            lag
        };
        if db.is_replica() && db.status == "available" {
            cx.note(&format!(
                "promoting {} (replica lag {})",
                db.id,
                lag.map(|l| format!("{l:.0}s"))
                    .unwrap_or_else(|| "unknown".into())
            ));
            cx.aws
                .rds(&region)
                .await
                .promote_read_replica(&db.id)
                .await?;
            if let Some(l) = lag {
                // The run's RPO: journaled before the promotion's long verify.
                cx.measure(Measure::RpoSeconds, l);
            }
        } else {
            cx.note(&format!(
                "{} is already being promoted ({})",
                db.id, db.status
            ));
        }
        Ok(result(&db, lag))
    }

    async fn verify(&self, cx: &StepCx, _result: &Value) -> Result<(), StepError> {
        cx.poll(
            "the promoted instance to be available and no longer a replica",
            self.poll_interval,
            || async {
                let db = self.describe(cx).await?;
                if !db.is_available_writer() {
                    return Ok(None);
                }
                Ok(self.ensure_writable(cx, &db).await?.then_some(()))
            },
        )
        .await
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["instance_id", "endpoint", "port", "rpo_estimate_s"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Irreversible("a promoted replica cannot become a replica again; failing back means building a new replica in the old primary region")
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        match &env.resources(self.role).database {
            None => vec![problem(format!(
                "the {} region ({}) has no `database`",
                self.role,
                env.region_of(self.role)
            ))],
            Some(_) => vec![],
        }
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(300)
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let (region, db) = db_of(env, self.role);
        vec![
            (
                "rds:DescribeDBInstances",
                arn("rds", region, &format!("db:{db}")),
            ),
            (
                "rds:PromoteReadReplica",
                arn("rds", region, &format!("db:{db}")),
            ),
            ("cloudwatch:GetMetricStatistics", "*".into()),
        ]
    }
}

/// The region and RDS instance id playing `role`, for IAM resource ARNs (`*` when unnamed).
pub(crate) fn db_of(env: &Environment, role: Role) -> (&str, String) {
    let db = env
        .resources(role)
        .database
        .as_ref()
        .map_or_else(|| "*".into(), |d| d.instance_id.clone());
    (env.region_of(role), db)
}
