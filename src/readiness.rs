//! Read-only views of the standby: the readiness checks behind `drctl check`, and the key
//! state that says whether a failover has already happened. Every check is bounded by its
//! own timeout, so a hung region is a FAIL "timed out", never a hang.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::aws::ec2::{newest_image, ImageSource};
use crate::aws::route53::{check_records, same_name};
use crate::aws::Aws;
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub reason: String,
}

fn check(name: &str, status: Status, reason: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status,
        reason: reason.into(),
    }
}

/// Run `f` within `limit`; an error or a timeout is a FAIL for `name`.
async fn bounded<F>(name: &str, limit: Duration, f: F) -> Check
where
    F: Future<Output = Result<(Status, String), String>>,
{
    match tokio::time::timeout(limit, f).await {
        Ok(Ok((s, r))) => check(name, s, r),
        Ok(Err(e)) => check(name, Status::Fail, e),
        Err(_) => check(
            name,
            Status::Fail,
            format!("timed out after {}", humantime::format_duration(limit)),
        ),
    }
}

fn fmt_secs(s: f64) -> String {
    humantime::format_duration(Duration::from_secs(s.max(0.0) as u64)).to_string()
}

/// Every readiness check of the standby region, run concurrently, each within `limit`.
pub async fn check_standby(
    aws: &dyn Aws,
    env: &Environment,
    http: &reqwest::Client,
    limit: Duration,
) -> Vec<Check> {
    let standby = env.region_of(Role::Standby).to_string();
    let res = env.resources(Role::Standby);

    let replica = bounded("database replica", limit, async {
        let db = res
            .database
            .as_ref()
            .ok_or("no standby `database` in the environment")?;
        let d = match aws.rds(&standby).await.describe(&db.instance_id).await {
            Ok(d) => d,
            Err(e) if e.is_not_found() => {
                return Ok((
                    Status::Fail,
                    format!(
                        "replica {} does not exist in {standby}: there is nothing to promote",
                        db.instance_id
                    ),
                ))
            }
            Err(e) => return Err(e.to_string()),
        };
        let Some(src) = &d.replica_source else {
            return Ok((Status::Fail, format!("{} exists but is not a read replica (it is a writer): the standby has no replication", d.id)));
        };
        if d.status != "available" {
            return Ok((
                Status::Fail,
                format!("{} is {}, not available", d.id, d.status),
            ));
        }
        let lag = aws
            .cloudwatch(&standby)
            .await
            .replica_lag(&d.id, Duration::from_secs(600))
            .await
            .map_err(|e| e.to_string())?;
        let rpo = env.targets.rpo.as_secs_f64();
        Ok(match lag {
            None => (
                Status::Warn,
                format!(
                    "{} replicates from {src}, but no ReplicaLag data in 10 minutes",
                    d.id
                ),
            ),
            Some(l) if l > rpo => (
                Status::Fail,
                format!(
                    "{} lags {} behind {src}, above the RPO target {}",
                    d.id,
                    fmt_secs(l),
                    fmt_secs(rpo)
                ),
            ),
            Some(l) => (
                Status::Pass,
                format!(
                    "{} replicates from {src}, lag {}s (target {})",
                    d.id,
                    l,
                    fmt_secs(rpo)
                ),
            ),
        })
    });

    let ami = bounded("standby AMI", limit, async {
        let vault = res
            .backup_vault
            .as_deref()
            .ok_or("no standby `backup_vault` in the environment")?;
        let img = newest_image(aws, &standby, ImageSource::Vault(vault))
            .await
            .map_err(|e| e.to_string())?;
        let Some(img) = img else {
            return Ok((
                Status::Fail,
                format!(
                    "no available AMI in vault {} ({standby})",
                    res.backup_vault.as_deref().unwrap_or("?")
                ),
            ));
        };
        let age = img
            .created()
            .map(|c| (chrono::Utc::now() - c).num_seconds() as f64);
        let max = env.targets.max_ami_age.as_secs_f64();
        if let Some(a) = age.filter(|a| *a > max) {
            return Ok((
                Status::Fail,
                format!(
                    "newest AMI {} is {} old, above max_ami_age {}",
                    img.id,
                    fmt_secs(a),
                    fmt_secs(max)
                ),
            ));
        }
        let ec2 = aws.ec2(&standby).await;
        let mut stale = vec![];
        for (name, asg) in &res.asgs {
            if let Some(lt) = &asg.launch_template_id {
                let t = ec2.launch_template(lt).await.map_err(|e| e.to_string())?;
                if t.default_image_id.as_deref() != Some(img.id.as_str()) {
                    stale.push(format!(
                        "{name} ({lt} runs {})",
                        t.default_image_id.as_deref().unwrap_or("?")
                    ));
                }
            }
        }
        let age_s = age.map(fmt_secs).unwrap_or_else(|| "unknown age".into());
        Ok(if stale.is_empty() {
            (
                Status::Pass,
                format!(
                    "newest AMI {} ({age_s} old) is in every standby launch template",
                    img.id
                ),
            )
        } else {
            (
                Status::Warn,
                format!(
                    "newest AMI {} ({age_s} old) is not the default of: {}",
                    img.id,
                    stale.join(", ")
                ),
            )
        })
    });

    let capacity = bounded("standby ASG capacity", limit, async {
        let a = aws.autoscaling(&standby).await;
        let mut short = vec![];
        let mut ok = vec![];
        for (name, asg) in &res.asgs {
            let g = a.group(&asg.name).await.map_err(|e| e.to_string())?;
            if (g.max as u32) < asg.production_size {
                short.push(format!(
                    "{name}: max {} < production size {}",
                    g.max, asg.production_size
                ));
            } else {
                ok.push(format!("{name} max {} >= {}", g.max, asg.production_size));
            }
        }
        Ok(if short.is_empty() {
            (Status::Pass, ok.join(", "))
        } else {
            (Status::Fail, short.join(", "))
        })
    });

    let dns = bounded("Route 53 failover records", limit, async {
        let s = env
            .route53
            .as_ref()
            .ok_or("no `route53` in the environment")?;
        let r53 = aws.route53().await;
        let recs = r53
            .records(&s.public_zone_id, &s.record_name)
            .await
            .map_err(|e| e.to_string())?;
        let (problems, _, _) = check_records(&recs, s, 60);
        if !problems.is_empty() {
            return Ok((Status::Fail, problems.join("; ")));
        }
        let hc = r53
            .health_check(&s.health_check_id)
            .await
            .map_err(|e| e.to_string())?;
        if hc.inverted || hc.disabled {
            return Ok((
                Status::Warn,
                format!(
                    "health check {} is {}",
                    hc.id,
                    if hc.inverted { "inverted" } else { "disabled" }
                ),
            ));
        }
        Ok((
            Status::Pass,
            format!(
                "{} PRIMARY/SECONDARY with health check {}, TTL <= 60s",
                s.record_name, s.health_check_id
            ),
        ))
    });

    let cdn = bounded("CloudFront origin group", limit, async {
        let c = env
            .cloudfront
            .as_ref()
            .ok_or("no `cloudfront` in the environment")?;
        let origin = c
            .origins
            .get(&standby)
            .ok_or_else(|| format!("cloudfront.origins names no origin for {standby}"))?;
        let g = aws
            .cloudfront()
            .await
            .origin_group(&c.distribution_id, &c.origin_group_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(if g.members.contains(origin) {
            (
                Status::Pass,
                format!(
                    "group {} contains {origin} (order: {})",
                    g.group_id,
                    g.members.join(", ")
                ),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "group {} does not contain the standby origin {origin}",
                    g.group_id
                ),
            )
        })
    });

    let backup = bounded("backup copy to standby", limit, async {
        let b = env
            .backup
            .as_ref()
            .ok_or("no `backup` in the environment")?;
        let primary = env.region_of(Role::Primary);
        let bk = aws.backup(primary).await;
        let dests = bk
            .plan_copy_destinations(&b.plan_id)
            .await
            .map_err(|e| e.to_string())?;
        if !dests.iter().any(|d| d.contains(&format!(":{standby}:"))) {
            return Ok((
                Status::Fail,
                format!("backup plan {} does not copy to {standby}", b.plan_id),
            ));
        }
        let jobs = bk.copy_jobs().await.map_err(|e| e.to_string())?;
        let last = jobs.iter().find(|j| {
            j.destination_vault_arn
                .as_deref()
                .is_some_and(|d| d.contains(&format!(":{standby}:")))
        });
        Ok(match last {
            None => (
                Status::Warn,
                format!("plan copies to {standby}, but no copy job has run yet"),
            ),
            Some(j) if j.state == "COMPLETED" => (
                Status::Pass,
                format!("plan copies to {standby}; last copy job {} COMPLETED", j.id),
            ),
            Some(j) => (
                Status::Fail,
                format!("last copy job {} to {standby} is {}", j.id, j.state),
            ),
        })
    });

    let alb = bounded("standby ALB answers", limit, async {
        let mut parts = vec![];
        let mut bad = vec![];
        for (name, a) in &res.albs {
            let Some(url) = &a.url else { continue };
            match http.get(url).timeout(limit).send().await {
                Ok(r) if r.status().is_success() => {
                    parts.push(format!("{name}: {}", r.status().as_u16()))
                }
                Ok(r) => bad.push(format!("{name}: status {}", r.status().as_u16())),
                Err(e) => bad.push(format!(
                    "{name}: {}",
                    if e.is_timeout() {
                        "timed out".to_string()
                    } else {
                        e.to_string()
                    }
                )),
            }
        }
        Ok(if !bad.is_empty() {
            (Status::Fail, bad.join(", "))
        } else if parts.is_empty() {
            (Status::Warn, "no standby ALB has a `url` to probe".into())
        } else {
            (Status::Pass, parts.join(", "))
        })
    });

    let (a, b, c, d, e, f, g) = tokio::join!(replica, ami, capacity, dns, cdn, backup, alb);
    vec![a, b, c, d, e, f, g]
}

/// The three facts that say production already runs in the standby region.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverState {
    pub database_writer: Result<bool, String>,
    pub cloudfront_prefers_standby: Result<bool, String>,
    pub dns_answers_standby: Result<bool, String>,
}

impl FailoverState {
    pub fn done(&self) -> bool {
        matches!(
            (
                &self.database_writer,
                &self.cloudfront_prefers_standby,
                &self.dns_answers_standby
            ),
            (Ok(true), Ok(true), Ok(true))
        )
    }
}

async fn within<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(format!(
            "timed out after {}",
            humantime::format_duration(limit)
        ))
    })
}

/// Observe the key failover state, read-only, each part within `limit`.
pub async fn failover_state(aws: &dyn Aws, env: &Environment, limit: Duration) -> FailoverState {
    let standby = env.region_of(Role::Standby).to_string();
    let db = within(limit, async {
        let db = env
            .resources(Role::Standby)
            .database
            .as_ref()
            .ok_or("no standby database")?;
        let d = aws
            .rds(&standby)
            .await
            .describe(&db.instance_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(d.is_available_writer())
    });
    let cdn = within(limit, async {
        let c = env.cloudfront.as_ref().ok_or("no cloudfront")?;
        let origin = c.origins.get(&standby).ok_or("no standby origin")?;
        let g = aws
            .cloudfront()
            .await
            .origin_group(&c.distribution_id, &c.origin_group_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(g.members.first() == Some(origin))
    });
    let dns = within(limit, async {
        let s = env.route53.as_ref().ok_or("no route53")?;
        let r53 = aws.route53().await;
        let recs = r53
            .records(&s.public_zone_id, &s.record_name)
            .await
            .map_err(|e| e.to_string())?;
        let secondary = recs
            .iter()
            .find(|r| r.failover.as_deref() == Some("SECONDARY"))
            .ok_or("no SECONDARY record")?;
        let want = secondary
            .alias_dns_name
            .clone()
            .or_else(|| secondary.values.first().cloned())
            .ok_or("SECONDARY record has no target")?;
        let answer = r53
            .answer(&s.public_zone_id, &s.record_name, &secondary.rtype)
            .await
            .map_err(|e| e.to_string())?;
        Ok(answer.iter().any(|a| same_name(a, &want)))
    });
    let (database_writer, cloudfront_prefers_standby, dns_answers_standby) =
        tokio::join!(db, cdn, dns);
    FailoverState {
        database_writer,
        cloudfront_prefers_standby,
        dns_answers_standby,
    }
}
