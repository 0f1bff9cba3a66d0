//! The environment as it is, observed from AWS (never from drctl.yaml's roles alone): which
//! region holds the database writer and whether a second one takes writes, where Route 53
//! answers and whether that holds, CloudFront's first origin, compute sizes, whether a replica
//! protects the active region, outstanding fences and retired instances, and the phase that
//! follows (`protected`, `failed_over`, ...). `drctl status`, `check`, `failover`, `fence`,
//! `reprotect`, `failback` and the watch decide from it. Every read is bounded.

mod advice;
pub mod fences;
pub mod iam;
pub mod phase;

use std::time::Duration;

use serde::Serialize;

use crate::aws::rds::{DbInstance, RETIRED_AT, RETIRED_BY, RETIRED_FROM};
use crate::aws::route53::{check_records, same_name};
use crate::aws::Aws;
use crate::config::env::{Environment, Role};
use crate::journal::JournalStore;
pub use fences::{DeferredWork, OpenRun, OutstandingFence};
pub use phase::{other, Phase};

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DbView {
    pub id: String,
    pub status: String,
    /// `writer` or `replica`.
    pub role: &'static str,
    pub replica_source: Option<String>,
    /// For a writer: takes writes now (not read-only, not stopped). `None`: unknown.
    pub writable: Option<bool>,
    /// The replica's lag in seconds, when replication runs.
    pub lag_s: Option<f64>,
    /// ReplicaLag says -1: replication is not active (its source unreachable, or stopped).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replication_stopped: bool,
    pub parameter_group: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AsgView {
    pub tier: String,
    pub name: String,
    pub desired: i32,
    pub in_service: i32,
    pub production_size: u32,
    pub warm_size: u32,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RetiredView {
    pub id: String,
    pub status: String,
    pub retired_from: String,
    pub retired_by: Option<String>,
    pub retired_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RegionView {
    pub region: String,
    /// The region's role in drctl.yaml (not whether it serves now: see `Topology::active`).
    pub role: Role,
    /// Its APIs answered. False when a call failed as unreachable or timed out.
    pub reachable: bool,
    pub error: Option<String>,
    /// AWS answered, and refused drctl's credentials or permissions: a configuration error,
    /// never evidence that the region is down.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    pub database: Option<DbView>,
    pub asgs: Vec<AsgView>,
    pub retired: Vec<RetiredView>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DnsView {
    pub answer: Vec<String>,
    /// The region whose ALB Route 53 answers.
    pub region: Option<String>,
    /// The standby's record is PRIMARY without a health check, or the failover gate is
    /// closed: a failover that holds.
    pub held_on_standby: bool,
    pub problems: Vec<String>,
    /// The failover gate as its data plane reads it (`gate closed: routing control ... Off`),
    /// when the environment has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CdnView {
    pub first_origin: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
/// A verdict: on a finding, a readiness check, a report line (`pass`, `warn`, `fail` in JSON;
/// PASS, WARN, FAIL for people).
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

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Finding {
    pub status: Status,
    pub text: String,
}

/// A part of the environment that was observed, or why it could not be: in JSON the part's own
/// fields, or `{"error": "..."}` (never a Rust `Result`).
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // the shape of `observed` in the schema
enum Observed<T> {
    Known(T),
    Unknown { error: String },
}

fn observed<T: Serialize, S: serde::Serializer>(
    v: &Result<T, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Ok(t) => t.serialize(s),
        Err(e) => Observed::<()>::Unknown { error: e.clone() }.serialize(s),
    }
}

/// `drctl status --output json` (`drctl schema status`): the environment as observed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Topology {
    /// The version of this document's shape (see `drctl schema status`).
    pub schema_version: u32,
    pub env: String,
    pub phase: Phase,
    /// The region serving users, if it can be told.
    pub active: Option<String>,
    pub primary: RegionView,
    pub standby: RegionView,
    #[serde(serialize_with = "observed")]
    #[schemars(with = "Observed<DnsView>")]
    pub dns: Result<DnsView, String>,
    #[serde(serialize_with = "observed")]
    #[schemars(with = "Observed<CdnView>")]
    pub cdn: Result<CdnView, String>,
    pub outstanding_fences: Vec<OutstandingFence>,
    /// Steps left for when their control plane answers again (`drctl deferred`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<fences::DeferredWork>,
    /// The environment's runs that have not finished (with the journals given to `observe`).
    pub open_runs: Vec<OpenRun>,
    /// What is wrong or worth knowing, worst first.
    pub findings: Vec<Finding>,
    /// What to do next.
    pub next: Vec<String>,
}

impl Topology {
    pub fn region(&self, role: Role) -> &RegionView {
        match role {
            Role::Primary => &self.primary,
            Role::Standby => &self.standby,
        }
    }

    /// The role serving users now.
    pub fn active_role(&self) -> Option<Role> {
        let a = self.active.as_deref()?;
        [Role::Primary, Role::Standby]
            .into_iter()
            .find(|r| self.region(*r).region == a)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status == Status::Fail)
    }

    /// The exit code `drctl status` ends with: 0 protected, 4 dangerous (split brain, tiers
    /// apart, an unfenced old writer), 9 not protected (failed over, no replica, unknown).
    pub fn exit_code(&self) -> i32 {
        if self.phase.dangerous() || self.failures().next().is_some() {
            crate::exit::FAILED
        } else if self.phase.protected() {
            crate::exit::OK
        } else {
            crate::exit::UNPROTECTED
        }
    }
}

async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(format!(
            "no answer within {}",
            humantime::format_duration(limit)
        ))
    })
}

fn is_on(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "ON" | "on" | "true" | "TRUE"))
}

/// Whether a writer takes writes now: stopped, or `read_only` in effect, means no.
async fn writable(aws: &dyn Aws, region: &str, db: &DbInstance) -> Option<bool> {
    if db.is_replica() {
        return None;
    }
    if matches!(db.status.as_str(), "stopped" | "stopping") {
        return Some(false);
    }
    if db.status != "available" {
        return None;
    }
    let Some(group) = &db.parameter_group else {
        return Some(true);
    };
    let ro = aws
        .rds(region)
        .await
        .parameter(group, "read_only")
        .await
        .ok()?;
    let applied = db.parameter_apply_status.as_deref() == Some("in-sync");
    Some(!(is_on(ro.as_deref()) && applied))
}

async fn region_view(aws: &dyn Aws, env: &Environment, role: Role, limit: Duration) -> RegionView {
    let region = env.region_of(role).to_string();
    let res = env.resources(role);
    let mut v = RegionView {
        region: region.clone(),
        role,
        reachable: true,
        error: None,
        refused: false,
        database: None,
        asgs: vec![],
        retired: vec![],
    };
    if let Some(db) = &res.database {
        let rds = aws.rds(&region).await;
        let got = tokio::time::timeout(limit, rds.describe(&db.instance_id)).await;
        match got {
            Ok(Ok(d)) => {
                let lag = if d.is_replica() && d.status == "available" {
                    within(limit, async {
                        aws.cloudwatch(&region)
                            .await
                            .replica_lag(&d.id, Duration::from_secs(600))
                            .await
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .ok()
                    .flatten()
                } else {
                    None
                };
                let w = within(limit, async { Ok(writable(aws, &region, &d).await) })
                    .await
                    .ok()
                    .flatten();
                v.database = Some(DbView {
                    role: if d.is_replica() { "replica" } else { "writer" },
                    writable: w,
                    lag_s: lag.and_then(|l| l.seconds),
                    replication_stopped: lag.is_some_and(|l| l.stopped()),
                    id: d.id,
                    status: d.status,
                    replica_source: d.replica_source,
                    parameter_group: d.parameter_group,
                });
            }
            Ok(Err(e)) if e.is_not_found() => {}
            Ok(Err(e)) => {
                v.reachable = !e.is_unreachable();
                v.refused = e.is_configuration();
                v.error = Some(e.to_string());
            }
            Err(_) => {
                v.reachable = false;
                v.error = Some(format!(
                    "rds DescribeDBInstances in {region}: no answer within {}",
                    humantime::format_duration(limit)
                ));
            }
        }
    }
    if !v.reachable {
        return v;
    }
    let retired = within(limit, async {
        aws.rds(&region)
            .await
            .instances()
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    if let Ok(all) = retired {
        v.retired = all
            .into_iter()
            .filter_map(|d| {
                let from = d.tags.get(RETIRED_FROM)?.clone();
                Some(RetiredView {
                    retired_by: d.tags.get(RETIRED_BY).cloned(),
                    retired_at: d.tags.get(RETIRED_AT).cloned(),
                    id: d.id,
                    status: d.status,
                    retired_from: from,
                })
            })
            .collect();
    }
    for (tier, asg) in &res.asgs {
        let g = within(limit, async {
            aws.autoscaling(&region)
                .await
                .group(&asg.name)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        if let Ok(g) = g {
            v.asgs.push(AsgView {
                tier: tier.clone(),
                name: g.name,
                desired: g.desired,
                in_service: g.in_service,
                production_size: asg.production_size,
                warm_size: asg.warm_size,
            });
        }
    }
    v
}

/// The region whose ALB `name` is.
fn region_of_alb(env: &Environment, name: &str) -> Option<String> {
    env.regions
        .iter()
        .find(|(_, r)| r.albs.values().any(|a| same_name(&a.dns_name, name)))
        .map(|(region, _)| region.clone())
}

async fn dns_view(aws: &dyn Aws, env: &Environment, limit: Duration) -> Result<DnsView, String> {
    let s = env
        .route53
        .as_ref()
        .ok_or("no `route53` in the environment")?;
    if s.gate.is_some() || !s.name_servers.is_empty() {
        return within(limit, data_plane_dns_view(aws, env, s)).await;
    }
    within(limit, async {
        let r53 = aws.route53().await;
        let recs = r53
            .records(&s.public_zone_id, &s.record_name)
            .await
            .map_err(|e| e.to_string())?;
        let pair = check_records(&recs, s, i64::MAX);
        let rtype = pair
            .primary
            .as_ref()
            .or(pair.standby.as_ref())
            .map(|r| r.rtype.clone())
            .unwrap_or_else(|| "A".into());
        let answer = r53
            .answer(&s.public_zone_id, &s.record_name, &rtype)
            .await
            .map_err(|e| e.to_string())?;
        Ok(DnsView {
            region: answer.iter().find_map(|a| region_of_alb(env, a)),
            held_on_standby: pair.held_on_standby(),
            problems: pair.problems,
            answer,
            gate: None,
        })
    })
    .await
}

/// Where the public name points by DNS answers (the zone's name servers: Route 53's data
/// plane), matched by address against each region's ALB, and whether the failover gate holds
/// it on the standby. No call to Route 53's API (us-east-1), so it answers in the outage a
/// gated failover is for. An answer that matches no region is no region.
async fn data_plane_dns_view(
    aws: &dyn Aws,
    env: &Environment,
    s: &crate::config::env::Route53Settings,
) -> Result<DnsView, String> {
    let dns = aws.dns(&s.name_servers).await.map_err(|e| e.to_string())?;
    let system = if s.name_servers.is_empty() {
        None
    } else {
        aws.dns(&[]).await.ok()
    };
    let (at, answer) = crate::aws::dns::where_answers(env, dns.as_ref(), system.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let mut problems = vec![];
    let region = match at {
        crate::aws::dns::AnswerRegion::Region(r) => Some(r),
        crate::aws::dns::AnswerRegion::Unknown(why) => {
            problems.push(why);
            None
        }
    };
    let (held_on_standby, gate) = match &s.gate {
        Some(g) => match aws.gate(g, &env.primary_region).await.read().await {
            Ok(r) => (
                r.state == crate::aws::gate::GateState::Closed,
                Some(format!("gate {}: {}", r.state, r.detail)),
            ),
            Err(e) => {
                problems.push(format!("the gate could not be read: {e}"));
                (false, Some("gate unknown".into()))
            }
        },
        None => (false, None),
    };
    Ok(DnsView {
        answer,
        region,
        held_on_standby,
        problems,
        gate,
    })
}

async fn cdn_view(aws: &dyn Aws, env: &Environment, limit: Duration) -> Result<CdnView, String> {
    let c = env
        .cloudfront
        .as_ref()
        .ok_or("no `cloudfront` in the environment")?;
    within(limit, async {
        let g = aws
            .cloudfront()
            .await
            .origin_group(&c.distribution_id, &c.origin_group_id)
            .await
            .map_err(|e| e.to_string())?;
        let first = g.members.first().cloned();
        Ok(CdnView {
            region: first.as_ref().and_then(|o| {
                c.origins
                    .iter()
                    .find(|(_, id)| *id == o)
                    .map(|(r, _)| r.clone())
            }),
            first_origin: first,
        })
    })
    .await
}

/// Observe the environment, every part within `limit`. `journals` (the state dir's) adds the
/// outstanding fences.
pub async fn observe(
    aws: &dyn Aws,
    env: &Environment,
    journals: Option<&dyn JournalStore>,
    limit: Duration,
) -> Topology {
    let (primary, standby, dns, cdn) = tokio::join!(
        region_view(aws, env, Role::Primary, limit),
        region_view(aws, env, Role::Standby, limit),
        dns_view(aws, env, limit),
        cdn_view(aws, env, limit),
    );
    let facts = match journals {
        Some(j) => fences::read_all(j, &env.name).await,
        None => fences::JournalFacts::default(),
    };
    let (mut fences, open_runs, deferred) = (facts.fences, facts.open, facts.deferred);
    // While moving CloudFront's origin is deferred, its distribution says where it pointed
    // before the failover, not where the edge goes: with a gate, the edge's primary origin is
    // the gated name and follows DNS. The distribution is not a tier's word until it is done.
    let cdn = match deferred.iter().find(|d| d.kind.starts_with("cloudfront.")) {
        Some(d) if env.route53.as_ref().is_some_and(|r| r.gate.is_some()) => Err(format!(
            "its origin change ({}) is deferred; the edge follows the gated name",
            d.step
        )),
        _ => cdn,
    };
    // A region that answers settles its fence by what AWS says: read-only, stopped, gone or
    // now a replica takes no writes, whatever the journal last heard.
    fences.retain(|f| {
        let v = if f.region == primary.region {
            &primary
        } else {
            &standby
        };
        !v.reachable
            || v.database.as_ref().is_some_and(|d| {
                d.id == f.instance_id && d.writable != Some(false) && d.role == "writer"
            })
    });
    let mut t = assemble(env, primary, standby, dns, cdn, fences, open_runs);
    t.deferred = deferred;
    t.next = advice::next_steps(&t);
    t
}

fn facts_of(v: &RegionView, other: &RegionView) -> phase::DbFacts {
    let Some(d) = &v.database else {
        return phase::DbFacts::default();
    };
    let other_id = other.database.as_ref().map(|o| o.id.as_str());
    phase::DbFacts {
        seen: true,
        writer: d.role == "writer" && d.status == "available",
        writable: if d.role == "writer" { d.writable } else { None },
        replicates_other: d.role == "replica"
            && other_id.is_some_and(|o| {
                d.replica_source
                    .as_deref()
                    .is_some_and(|s| s == o || s.ends_with(&format!(":db:{o}")))
            }),
    }
}

fn assemble(
    env: &Environment,
    primary: RegionView,
    standby: RegionView,
    dns: Result<DnsView, String>,
    cdn: Result<CdnView, String>,
    outstanding_fences: Vec<OutstandingFence>,
    open_runs: Vec<OpenRun>,
) -> Topology {
    let role_of = |region: &Option<String>| {
        region.as_deref().and_then(|r| {
            if r == primary.region {
                Some(Role::Primary)
            } else if r == standby.region {
                Some(Role::Standby)
            } else {
                None
            }
        })
    };
    let facts = phase::Facts {
        primary: facts_of(&primary, &standby),
        standby: facts_of(&standby, &primary),
        dns: dns.as_ref().ok().and_then(|d| role_of(&d.region)),
        cdn: cdn.as_ref().ok().and_then(|c| role_of(&c.region)),
        primary_dark: !primary.reachable,
        dns_held_on_standby: dns.as_ref().is_ok_and(|d| d.held_on_standby),
    };
    let phase = phase::decide(&facts);
    let active = facts.active().map(|r| env.region_of(r).to_string());
    // The writer of the region that serves is not an old writer to fence (a failback whose
    // fence failed left it serving).
    let mut outstanding_fences = outstanding_fences;
    outstanding_fences.retain(|f| Some(&f.region) != active.as_ref());
    let mut t = Topology {
        schema_version: crate::SCHEMA_VERSION,
        env: env.name.clone(),
        phase,
        active,
        primary,
        standby,
        dns,
        cdn,
        outstanding_fences,
        open_runs,
        deferred: vec![],
        findings: vec![],
        next: vec![],
    };
    t.findings = advice::findings(&t, &facts);
    t.next = advice::next_steps(&t);
    t
}

impl Topology {
    /// The per-region table `drctl status` shows: region, role, serves, database, takes
    /// writes, lag, compute (in service / desired per tier).
    pub fn rows(&self) -> Vec<[String; 7]> {
        [&self.primary, &self.standby]
            .into_iter()
            .map(|v| {
                let db = match (&v.database, v.reachable) {
                    (_, false) => "UNREACHABLE".to_string(),
                    (Some(d), _) => format!("{} {} ({})", d.id, d.role, d.status),
                    (None, _) => "none".into(),
                };
                let writes = match v.database.as_ref().and_then(|d| d.writable) {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                };
                let compute: Vec<String> = v
                    .asgs
                    .iter()
                    .map(|a| format!("{} {}/{}", a.tier, a.in_service, a.desired))
                    .collect();
                [
                    v.region.clone(),
                    v.role.to_string(),
                    if self.active.as_deref() == Some(v.region.as_str()) {
                        "yes".into()
                    } else {
                        String::new()
                    },
                    db,
                    writes.into(),
                    v.database
                        .as_ref()
                        .map(|d| match (d.lag_s, d.replication_stopped) {
                            (_, true) => "STOPPED".to_string(),
                            (Some(l), _) => format!("{l:.0}s"),
                            (None, _) => String::new(),
                        })
                        .unwrap_or_default(),
                    compute.join(", "),
                ]
            })
            .collect()
    }

    /// What the header says after the phase: where production is, only as far as it is known.
    pub fn where_production(&self) -> String {
        match (self.phase, self.active.as_deref()) {
            (Phase::PrimaryDown, _) => format!(
                "production was in {}: {}; nothing has moved to {}",
                self.primary.region,
                if self.primary.reachable {
                    "its health check fails"
                } else {
                    "its region does not answer"
                },
                self.standby.region
            ),
            // Unknown is said as unknown: never a region beside it.
            (Phase::Unknown, _) => "which region serves cannot be told".into(),
            (Phase::Mixed | Phase::SplitBrain, _) => "tiers point at different regions".into(),
            (_, Some(a)) => format!("production in {a}"),
            (_, None) => "which region serves cannot be told".into(),
        }
    }

    /// Where the edge points: Route 53 and CloudFront, a line each.
    pub fn edge_lines(&self) -> Vec<String> {
        vec![
            match &self.dns {
                Ok(d) => format!(
                    "Route 53: answers {} ({}){}",
                    d.region.as_deref().unwrap_or("?"),
                    d.answer.join(", "),
                    match (&d.gate, d.held_on_standby) {
                        (Some(g), _) => format!("; {g}"),
                        (None, true) => "; held on the standby (records swapped)".into(),
                        (None, false) => String::new(),
                    }
                ),
                Err(e) => format!("Route 53: unknown ({e})"),
            },
            match &self.cdn {
                Ok(c) => format!(
                    "CloudFront: first origin {} ({})",
                    c.first_origin.as_deref().unwrap_or("?"),
                    c.region.as_deref().unwrap_or("?")
                ),
                Err(e) => format!("CloudFront: unknown ({e})"),
            },
        ]
    }
}
