//! Read-only views of the passive region (the one a failover would go to: the standby while
//! the primary serves, the old primary after a failover): the readiness checks behind
//! `drctl check`, and the key state that says whether a failover has already happened. Every check is bounded by its
//! own timeout, so a hung region is a FAIL "timed out", never a hang.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::aws::ec2::{newest_image, ImageSource};
use crate::aws::route53::check_records;
use crate::aws::Aws;
use crate::config::env::{Environment, Role};
use crate::topology::{other, Topology};

pub use crate::topology::Status;

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
async fn bounded<F>(name: String, limit: Duration, f: F) -> Check
where
    F: Future<Output = Result<(Status, String), String>>,
{
    let name = name.as_str();
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

/// Every readiness check of the `passive` region (the one a failover would go to), run
/// concurrently, each within `limit`.
pub async fn check_passive(
    aws: &dyn Aws,
    env: &Environment,
    http: &reqwest::Client,
    limit: Duration,
    passive: Role,
) -> Vec<Check> {
    let active = match passive {
        Role::Standby => Role::Primary,
        Role::Primary => Role::Standby,
    };
    let standby = env.region_of(passive).to_string();
    let res = env.resources(passive);
    let active_db = env
        .resources(active)
        .database
        .as_ref()
        .map(|d| d.instance_id.clone());

    let replica = bounded("database replica".into(), limit, async {
        let db = res
            .database
            .as_ref()
            .ok_or_else(|| format!("no {passive} `database` in the environment"))?;
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
            return Ok((Status::Fail, format!("{} exists but is not a read replica (it is a writer): the {passive} region has no replication", d.id)));
        };
        if let Some(a) = &active_db {
            if !(src == a || src.ends_with(&format!(":db:{a}"))) {
                return Ok((
                    Status::Fail,
                    format!(
                        "{} replicates from {src}, not from the active writer {a}",
                        d.id
                    ),
                ));
            }
        }
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
        Ok(match lag.map(|l| (l, l.seconds)) {
            None => (
                Status::Warn,
                format!(
                    "{} replicates from {src}, but no ReplicaLag data in 10 minutes",
                    d.id
                ),
            ),
            // -1: replication is not running; the replica falls further behind every second.
            Some((l, None)) => (
                Status::Fail,
                format!(
                    "{} is a replica of {src}, but {}{}",
                    d.id,
                    l.describe(),
                    l.last_known
                        .map(|(at, v)| format!(
                            "; last known lag {v:.0}s at {}",
                            at.format("%H:%M:%S UTC")
                        ))
                        .unwrap_or_default()
                ),
            ),
            Some((_, Some(l))) if l > rpo => (
                Status::Fail,
                format!(
                    "{} lags {} behind {src}, above the RPO target {}",
                    d.id,
                    fmt_secs(l),
                    fmt_secs(rpo)
                ),
            ),
            Some((_, Some(l))) => (
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

    let ami = bounded(format!("{passive} AMI"), limit, async {
        let vault = res
            .backup_vault
            .as_deref()
            .ok_or_else(|| format!("no {passive} `backup_vault` in the environment"))?;
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
                    "newest AMI {} ({age_s} old) is in every {passive} launch template",
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

    let capacity = bounded(format!("{passive} ASG capacity"), limit, async {
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

    let dns = bounded("Route 53 failover records".into(), limit, async {
        let s = env
            .route53
            .as_ref()
            .ok_or("no `route53` in the environment")?;
        let r53 = aws.route53().await;
        let recs = r53
            .records(&s.public_zone_id, &s.record_name)
            .await
            .map_err(|e| e.to_string())?;
        let problems = check_records(&recs, s, 60).problems;
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

    let cdn = bounded("CloudFront origin group".into(), limit, async {
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
                    "group {} does not contain the {passive} origin {origin}",
                    g.group_id
                ),
            )
        })
    });

    let backup = bounded(format!("backup copy to {passive}"), limit, async {
        let b = env
            .backup
            .as_ref()
            .ok_or("no `backup` in the environment")?;
        if passive == Role::Primary {
            // The plan backs up the primary and copies to the standby; while the standby
            // serves, new AMIs reach the old primary only by a copy back (`drctl reprotect`).
            return Ok((
                Status::Warn,
                format!(
                    "backup plan {} copies from {} to {}: while {} serves, copy AMIs back with `drctl reprotect` or a plan there",
                    b.plan_id,
                    env.region_of(Role::Primary),
                    env.region_of(Role::Standby),
                    env.region_of(Role::Standby)
                ),
            ));
        }
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

    let alb = bounded(format!("{passive} ALB answers"), limit, async {
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
            (
                Status::Warn,
                format!("no {passive} ALB has a `url` to probe"),
            )
        } else {
            (Status::Pass, parts.join(", "))
        })
    });

    // Static stability: without a gate, moving traffic needs Route 53's API (us-east-1).
    let gate = bounded("failover gate (data plane)".into(), limit, async {
        let Some(r) = env.route53.as_ref() else {
            return Err("no `route53` in the environment".into());
        };
        let Some(g) = &r.gate else {
            return Ok((
                Status::Warn,
                "no route53.gate: a failover moves traffic through Route 53's API, whose control plane is in us-east-1 and may not answer when us-east-1 does not (AWS Fault Isolation Boundaries, Appendix B); see docs/failover.md, \"Static stability\"".into(),
            ));
        };
        if let Some(problem) = gate_wiring(aws, r, g).await? {
            return Ok((Status::Fail, problem));
        }
        let read = aws
            .gate(g, &env.primary_region)
            .await
            .read()
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            Status::Pass,
            format!(
                "{} gate reads {} ({}); the PRIMARY record carries calculated check {}",
                g.kind(),
                read.state,
                read.detail,
                g.calculated_health_check_id
            ),
        ))
    });
    let (a, b, c, d, e, f, g, h) =
        tokio::join!(replica, ami, capacity, dns, cdn, backup, alb, gate);
    vec![a, b, c, d, e, f, g, h]
}

/// `drctl check`: what the environment's state says (an unfenced old writer, split brain,
/// unprotected), then the readiness of whichever region is passive now: the standby while the
/// primary serves, the old primary after a failover. A check that fails only because a region
/// the topology found unreachable did not answer is a WARN with that reason, not a verdict on
/// the passive region's readiness; the passive region itself not answering is a FAIL.
pub async fn check_environment(
    aws: &dyn Aws,
    env: &Environment,
    http: &reqwest::Client,
    limit: Duration,
    t: &Topology,
) -> Vec<Check> {
    let passive = t.active_role().map(other).unwrap_or(Role::Standby);
    let mut out: Vec<Check> = t
        .findings
        .iter()
        .map(|f| check("environment", f.status, f.text.clone()))
        .collect();
    if out.is_empty() {
        out.push(check(
            "environment",
            Status::Pass,
            format!(
                "{}{}",
                t.phase,
                t.active
                    .as_ref()
                    .map(|a| format!(", production in {a}"))
                    .unwrap_or_default()
            ),
        ));
    }
    // The active (or dead) region not answering says nothing about the passive region's
    // readiness; the passive region not answering is exactly what makes it not ready.
    let dark: Vec<&str> = [&t.primary, &t.standby]
        .into_iter()
        .filter(|v| !v.reachable && v.role != passive)
        .map(|v| v.region.as_str())
        .collect();
    for mut c in check_passive(aws, env, http, limit, passive).await {
        let unanswered = ["timed out", "no answer", "not delivered", "unreachable"]
            .iter()
            .any(|w| c.reason.contains(w));
        if c.status == Status::Fail && unanswered && !dark.is_empty() {
            c.status = Status::Warn;
            c.reason = format!("{} unreachable: {}", dark.join(", "), c.reason);
        }
        out.push(c);
    }
    out
}

/// How the gate is wired in Route 53, read from its API (a pre-incident check): the PRIMARY
/// record carries the CALCULATED check, whose children are the primary's own check and the
/// gate's check, all of which must be healthy (HealthThreshold = the number of children:
/// Route 53 Developer Guide, "Monitoring other health checks (calculated health checks)"); the
/// gate's check follows the routing control or the alarm drctl.yaml names. `None`: wired.
async fn gate_wiring(
    aws: &dyn Aws,
    r: &crate::config::env::Route53Settings,
    g: &crate::config::env::Gate,
) -> Result<Option<String>, String> {
    let r53 = aws.route53().await;
    let calc = r53
        .health_check(&g.calculated_health_check_id)
        .await
        .map_err(|e| e.to_string())?;
    let id = &g.calculated_health_check_id;
    if calc.kind != "CALCULATED" {
        return Ok(Some(format!(
            "route53.gate.calculated_health_check_id {id} is a {} check, not CALCULATED",
            calc.kind
        )));
    }
    for (child, what) in [
        (
            &r.health_check_id,
            "the primary's check (route53.health_check_id)",
        ),
        (&g.gate_health_check_id, "the gate's check"),
    ] {
        if !calc.children.contains(child) {
            return Ok(Some(format!(
                "calculated check {id} does not include {what} {child} (children: {})",
                calc.children.join(", ")
            )));
        }
    }
    if calc.threshold != Some(calc.children.len() as i32) {
        return Ok(Some(format!(
            "calculated check {id} is healthy with {} of its {} children: closing the gate would not stop the PRIMARY answer (set HealthThreshold to {})",
            calc.threshold.map_or("?".into(), |t| t.to_string()),
            calc.children.len(),
            calc.children.len()
        )));
    }
    let gate = r53
        .health_check(&g.gate_health_check_id)
        .await
        .map_err(|e| e.to_string())?;
    let gid = &g.gate_health_check_id;
    if let Some(rc) = &g.routing_control {
        if gate.kind != "RECOVERY_CONTROL" || gate.routing_control_arn.as_deref() != Some(&rc.arn) {
            return Ok(Some(format!(
                "gate check {gid} is {} on {}, not RECOVERY_CONTROL on {}",
                gate.kind,
                gate.routing_control_arn
                    .as_deref()
                    .unwrap_or("no routing control"),
                rc.arn
            )));
        }
    }
    if let Some(a) = &g.alarm {
        let want = (a.region.clone(), a.name.clone());
        if gate.kind != "CLOUDWATCH_METRIC" || gate.alarm.as_ref() != Some(&want) {
            return Ok(Some(format!(
                "gate check {gid} is {} on alarm {}, not CLOUDWATCH_METRIC on {} in {}",
                gate.kind,
                gate.alarm
                    .as_ref()
                    .map_or("none".into(), |(r, n)| format!("{n} in {r}")),
                a.name,
                a.region
            )));
        }
    }
    let records = r53
        .records(&r.public_zone_id, &r.record_name)
        .await
        .map_err(|e| e.to_string())?;
    let primary = records
        .iter()
        .find(|x| x.set_identifier.as_deref() == Some(r.primary_set_identifier.as_str()));
    match primary {
        Some(p) if p.health_check_id.as_deref() == Some(id.as_str()) => Ok(None),
        // Held after a failover (the roles swapped): the gate matters again after failback.
        Some(p) if p.failover.as_deref() != Some("PRIMARY") => Ok(None),
        Some(p) => Ok(Some(format!(
            "record {} ({}) carries check {}, not the calculated check {id}",
            r.record_name,
            r.primary_set_identifier,
            p.health_check_id.as_deref().unwrap_or("none")
        ))),
        None => Ok(Some(format!(
            "no record {} with set identifier {}",
            r.record_name, r.primary_set_identifier
        ))),
    }
}
