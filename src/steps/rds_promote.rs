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
use crate::aws::cloudwatch::Lag;
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

/// How far back to look for the replica's last known lag (CloudWatch keeps one-minute data
/// for 15 days; an hour covers an outage that began well before the failover).
const LAG_WINDOW: Duration = Duration::from_secs(3600);

/// What the run knows of the writes a promotion loses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Basis {
    /// ReplicaLag measured now, replication running.
    Measured(f64),
    /// Replication is not active (ReplicaLag -1): the last lag measured before it stopped,
    /// and when. The loss is at least that, plus what the source wrote since.
    LastKnown(f64, chrono::DateTime<chrono::Utc>),
    /// Nothing measured.
    Unknown,
}

impl Basis {
    fn json(self) -> Value {
        match self {
            Basis::Measured(s) => json!({"basis": "measured", "seconds": s}),
            Basis::LastKnown(s, at) => json!({"basis": "last_known", "seconds": s, "at": at}),
            Basis::Unknown => json!({"basis": "unknown"}),
        }
    }

    fn from_json(v: &Value) -> Basis {
        let secs = v["seconds"].as_f64();
        match (v["basis"].as_str(), secs) {
            (Some("measured"), Some(s)) => Basis::Measured(s),
            (Some("last_known"), Some(s)) => v["at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(Basis::Unknown, |at| {
                    Basis::LastKnown(s, at.with_timezone(&chrono::Utc))
                }),
            _ => Basis::Unknown,
        }
    }

    fn shown(self) -> String {
        match self {
            Basis::Measured(s) => format!("lag {s:.0}s"),
            Basis::LastKnown(s, at) => format!(
                "replication not active; last known lag {s:.0}s at {}",
                at.format("%H:%M:%S UTC")
            ),
            Basis::Unknown => "lag unknown".into(),
        }
    }
}

impl PromoteReplica {
    /// What the promotion would lose, or a refusal: a lag above `max_lag` (permanent: the
    /// operator decides), no datapoint at all (retryable: RDS publishes once a minute), or
    /// replication stopped with no lag known before it. `force` turns each into a journaled
    /// warning. ReplicaLag -1 (replication not active) is never taken for "caught up": the
    /// last lag measured before it is the basis, said as such.
    async fn lag_guard(&self, cx: &StepCx, db: &DbInstance) -> Result<Basis, StepError> {
        let max_lag = self.max_lag.unwrap_or(cx.env.targets.rpo);
        let max = max_lag.as_secs_f64();
        let over = |l: f64, what: &str| {
            StepError::permanent(format!(
                "replica {} {what} {l:.0}s behind its source, above max_lag {}: promoting now loses at least {l:.0}s of writes. \
                 Wait for it to catch up, or set `force: true` to accept the loss",
                db.id,
                humantime::format_duration(max_lag)
            ))
        };
        let reading = self.lag(cx, db).await?;
        let basis = match reading {
            None => Basis::Unknown,
            Some(l) => match (l.seconds, l.last_known) {
                (Some(v), _) => Basis::Measured(v),
                (None, Some((at, v))) => Basis::LastKnown(v, at),
                (None, None) => Basis::Unknown,
            },
        };
        match (basis, reading) {
            (Basis::Measured(l), _) if l > max && !self.force => Err(over(l, "lags")),
            (Basis::LastKnown(l, _), _) if l > max && !self.force => {
                Err(over(l, "has stopped replicating; it last lagged"))
            }
            (Basis::Unknown, None) if !self.force => Err(StepError::retryable(format!(
                "no ReplicaLag data for {} in the last hour, so the data loss of a promotion is unknown; \
                 waiting for a datapoint (set `force: true` to promote without one)",
                db.id
            ))),
            (Basis::Unknown, Some(l)) if !self.force => Err(StepError::permanent(format!(
                "{} {}, and no lag was measured before it in the last hour: the data loss is unknown. \
                 Set `force: true` to promote anyway",
                db.id,
                l.describe()
            ))),
            (Basis::Measured(l), _) | (Basis::LastKnown(l, _), _) if l > max => {
                cx.warn(&format!("promoting {} with {} above max_lag (force: true)", db.id, basis.shown()));
                Ok(basis)
            }
            (Basis::Unknown, _) => {
                cx.warn(&format!("promoting {} without a known replica lag (force: true): RPO unknown", db.id));
                Ok(basis)
            }
            _ => Ok(basis),
        }
    }

    async fn lag(&self, cx: &StepCx, db: &DbInstance) -> Result<Option<Lag>, StepError> {
        Ok(cx
            .aws
            .cloudwatch(cx.env.region_of(self.role))
            .await
            .replica_lag(&db.id, LAG_WINDOW)
            .await?)
    }

    /// Wait (at most `catch_up_timeout`) for a fresh zero: a ReplicaLag of 0, replication
    /// running, in a minute that began after `since` (the fence was before it). An older
    /// datapoint may predate the fence, and -1 is never caught up.
    async fn wait_caught_up(
        &self,
        cx: &StepCx,
        db: &DbInstance,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<f64, StepError> {
        let last = std::sync::Mutex::new(None::<Lag>);
        let what = format!(
            "{} to catch up with its source (a fresh ReplicaLag of 0)",
            db.id
        );
        let wait = cx.poll(&what, self.poll_interval, || async {
            let lag = self.lag(cx, db).await?;
            *last.lock().expect("lag") = lag;
            Ok(match lag {
                Some(l) if l.at > since && l.seconds == Some(0.0) => Some(0.0),
                Some(l) if l.at <= since => {
                    cx.note(&format!(
                        "{}: waiting for a ReplicaLag datapoint newer than the fence (the newest is from {})",
                        db.id,
                        l.at.format("%H:%M:%S UTC")
                    ));
                    None
                }
                Some(l) => {
                    cx.note(&format!("{}: {}; waiting for 0", db.id, l.describe()));
                    None
                }
                None => None,
            })
        });
        match tokio::time::timeout(self.catch_up_timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(StepError::permanent(format!(
                "{} did not catch up within {} ({}): nothing was promoted. Writes stay fenced; \
                 find out why replication is behind, then `drctl resume` to wait again, or roll this run back \
                 and fail over with `--mode unplanned` accepting the loss",
                db.id,
                humantime::format_duration(self.catch_up_timeout),
                last.lock()
                    .expect("lag")
                    .map(|l| l.describe())
                    .unwrap_or_else(|| "no datapoint".into())
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
    fn recovers_service(&self) -> bool {
        true
    }

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
        let (current, basis) = match &db.replica_source {
            Some(src) if db.status == "available" => {
                let basis = if self.catch_up {
                    // Measured again after the fence (execute waits for a fresh zero).
                    match self.lag(cx, &db).await? {
                        Some(Lag {
                            seconds: Some(s), ..
                        }) => Basis::Measured(s),
                        Some(Lag {
                            last_known: Some((at, s)),
                            ..
                        }) => Basis::LastKnown(s, at),
                        _ => Basis::Unknown,
                    }
                } else {
                    self.lag_guard(cx, &db).await?
                };
                (
                    format!("{} is a read replica of {src} ({})", db.id, basis.shown()),
                    basis,
                )
            }
            Some(src) => (
                format!("{} is a read replica of {src} ({})", db.id, db.status),
                Basis::Unknown,
            ),
            None => (
                format!("{} is being promoted ({})", db.id, db.status),
                Basis::Unknown,
            ),
        };
        let lag_s = match basis {
            Basis::Measured(s) => Some(s),
            _ => None,
        };
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!("promote {} to a standalone writer (IRREVERSIBLE)", db.id),
        )
        .with_prior(json!({
            "replica_source": db.replica_source,
            "status": db.status,
            "lag_s": lag_s,
            "lag": basis.json(),
        })))
    }

    async fn execute(&self, cx: &StepCx, obs: &Observation) -> Result<Value, StepError> {
        let region = cx.env.region_of(self.role).to_string();
        let mut db = self.describe(cx).await?;
        // A replica that is not available (backing-up for its automated backup, modifying,
        // ...) cannot be promoted yet: "a read replica cannot be promoted to a standalone
        // instance when it is in the backing-up status" (PromoteReadReplica API reference).
        // Wait it out (within the step's timeout) rather than take it for a promotion under
        // way; one that stops being a replica meanwhile was promoted (a resumed run).
        let waited = db.is_replica() && db.status != "available";
        if waited {
            cx.note(&format!(
                "{} is {}: waiting for it to be available before promoting it",
                db.id, db.status
            ));
            db = cx
                .poll(
                    &format!("{} to be available", db.id),
                    self.poll_interval,
                    || async {
                        let d = self.describe(cx).await?;
                        Ok((d.status == "available" || !d.is_replica()).then_some(d))
                    },
                )
                .await?;
        }
        let mut basis = Basis::from_json(&obs.prior["lag"]);
        if waited && db.is_replica() && !self.catch_up {
            // Observed while unavailable, so the lag guard has not run yet: run it now.
            basis = self.lag_guard(cx, &db).await?;
        }
        // A promotion already under way (drctl died after asking) must not be asked twice.
        if self.catch_up && db.is_replica() && db.status == "available" {
            // The fence ran before this step: only a datapoint newer than now counts.
            let since = chrono::Utc::now();
            basis = Basis::Measured(self.wait_caught_up(cx, &db, since).await?);
        }
        let lag = match basis {
            Basis::Measured(s) => Some(s),
            _ => None,
        };
        if db.is_replica() && db.status == "available" {
            cx.note(&format!("promoting {} ({})", db.id, basis.shown()));
            cx.aws
                .rds(&region)
                .await
                .promote_read_replica(&db.id)
                .await?;
            // The run's RPO with its basis, journaled before the promotion's long verify: a
            // measured lag, or the last one known before replication stopped (never -1, never
            // a 0 nobody measured).
            match basis {
                Basis::Measured(l) => cx.measure(Measure::RpoSeconds, l),
                Basis::LastKnown(l, at) => {
                    cx.measure(Measure::RpoLastKnownSeconds, l);
                    cx.warn(&format!(
                        "RPO not measured: replication was not active when {} was promoted; the last known lag was {l:.0}s at {} ({} before the promotion), and the writes since are lost too",
                        db.id,
                        at.format("%H:%M:%S UTC"),
                        humantime::format_duration(std::time::Duration::from_secs(
                            (chrono::Utc::now() - at).num_seconds().max(0) as u64
                        ))
                    ));
                }
                Basis::Unknown => cx.warn(&format!(
                    "RPO unknown: no replica lag was measured before {} was promoted",
                    db.id
                )),
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
        // The promoted instance's own parameter group: a fence of an earlier round trip may
        // have left read_only = 1 in it, which the promotion clears (`writable`).
        let pg = env
            .resources(self.role)
            .database
            .as_ref()
            .and_then(|d| d.parameter_group.clone())
            .unwrap_or_else(|| "*".into());
        vec![
            (
                "rds:DescribeDBInstances",
                arn("rds", region, &format!("db:{db}")),
            ),
            (
                "rds:PromoteReadReplica",
                arn("rds", region, &format!("db:{db}")),
            ),
            (
                "rds:DescribeDBParameters",
                arn("rds", region, &format!("pg:{pg}")),
            ),
            (
                "rds:ModifyDBParameterGroup",
                arn("rds", region, &format!("pg:{pg}")),
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
