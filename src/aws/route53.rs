//! Route 53: records, changes, health checks and the DNS answer, in drctl's own types.

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};

use async_trait::async_trait;

use crate::config::env::Route53Settings;

use super::{sdk_err, AwsError, AwsResult, ErrorKind, GLOBAL_REGION};

#[derive(Debug, Clone)]
pub struct SdkRoute53 {
    pub(crate) c: aws_sdk_route53::Client,
}

/// One record set as drctl sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    #[serde(default)]
    pub ttl: Option<i64>,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub set_identifier: Option<String>,
    /// `PRIMARY` or `SECONDARY` for failover records.
    #[serde(default)]
    pub failover: Option<String>,
    #[serde(default)]
    pub health_check_id: Option<String>,
    /// Alias target DNS name (alias records have no TTL or values).
    #[serde(default)]
    pub alias_dns_name: Option<String>,
    /// The alias target's hosted zone (an ALB's canonical zone).
    #[serde(default)]
    pub alias_zone_id: Option<String>,
    /// For an alias: whether Route 53 also follows the target's own health.
    #[serde(default)]
    pub evaluate_target_health: Option<bool>,
}

/// What a change does to a record set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Delete,
    Upsert,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HealthCheck {
    pub id: String,
    pub inverted: bool,
    pub disabled: bool,
    pub target: Option<String>,
    /// HealthCheckConfig.Type: HTTP, HTTPS, CALCULATED, CLOUDWATCH_METRIC, RECOVERY_CONTROL, ...
    pub kind: String,
    /// A CALCULATED check's children and how many must be healthy.
    pub children: Vec<String>,
    pub threshold: Option<i32>,
    /// A RECOVERY_CONTROL check's routing control.
    pub routing_control_arn: Option<String>,
    /// A CLOUDWATCH_METRIC check's alarm: (region, name).
    pub alarm: Option<(String, String)>,
}

/// The public record's failover pair, found by the environment's set identifiers whatever
/// their roles now: in the original layout the primary region's record is PRIMARY (with the
/// health check) and the standby's SECONDARY; a held failover swaps the roles (the standby's
/// record PRIMARY without a health check, so Route 53 keeps answering it when the old primary
/// recovers).
#[derive(Debug, Clone, Default)]
pub struct FailoverPair {
    /// What is wrong with the pair (empty when well formed).
    pub problems: Vec<String>,
    /// The record of the primary region (`primary_set_identifier`).
    pub primary: Option<Record>,
    /// The record of the standby region (`secondary_set_identifier`).
    pub standby: Option<Record>,
}

impl FailoverPair {
    /// The standby's record is PRIMARY: a failover that holds.
    pub fn held_on_standby(&self) -> bool {
        self.standby.as_ref().and_then(|r| r.failover.as_deref()) == Some("PRIMARY")
    }
}

/// Where a record points (alias target or first value), lower-case, without the final dot.
pub fn target(r: &Record) -> Option<String> {
    r.alias_dns_name
        .clone()
        .or_else(|| r.values.first().cloned())
        .map(|v| v.trim_end_matches('.').to_ascii_lowercase())
}

/// Find and check the failover pair among `recs`.
pub fn check_records(recs: &[Record], s: &Route53Settings, max_ttl: i64) -> FailoverPair {
    let mut problems = vec![];
    let find = |set: &str| {
        recs.iter()
            .find(|r| r.set_identifier.as_deref() == Some(set))
            .cloned()
    };
    let primary = find(&s.primary_set_identifier);
    let standby = find(&s.secondary_set_identifier);
    for (rec, set) in [
        (&primary, &s.primary_set_identifier),
        (&standby, &s.secondary_set_identifier),
    ] {
        if rec.is_none() {
            problems.push(format!("no failover record `{set}` for {}", s.record_name));
        }
    }
    if let (Some(p), Some(st)) = (&primary, &standby) {
        match (p.failover.as_deref(), st.failover.as_deref()) {
            (Some("PRIMARY"), Some("SECONDARY")) => match &p.health_check_id {
                None => problems.push("the PRIMARY record has no health check".into()),
                Some(h) if h != s.primary_check() => problems.push(format!(
                    "the PRIMARY record's health check is {h}, the environment names {}",
                    s.primary_check()
                )),
                _ => {}
            },
            // Held on the standby: its record answers whatever the old primary's health.
            (Some("SECONDARY"), Some("PRIMARY")) => {}
            (a, b) => problems.push(format!(
                "records `{}` and `{}` are {} and {}, not one PRIMARY and one SECONDARY",
                s.primary_set_identifier,
                s.secondary_set_identifier,
                a.unwrap_or("not failover"),
                b.unwrap_or("not failover")
            )),
        }
    }
    for r in primary.iter().chain(standby.iter()) {
        if let Some(t) = r.ttl.filter(|t| *t > max_ttl) {
            problems.push(format!(
                "record {} TTL is {t}s, above {max_ttl}s: clients keep the old answer that long",
                r.set_identifier.as_deref().unwrap_or("?")
            ));
        }
    }
    FailoverPair {
        problems,
        primary,
        standby,
    }
}

/// Route 53 calls a check healthy while more than 18% of its checkers report success.
pub fn healthy_by_vote(ok: usize, total: usize) -> bool {
    (ok as f64) > 0.18 * (total as f64)
}

/// Names compare without case and trailing dot, as DNS does.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn zone(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// Route 53: records, changes, health checks and the DNS answer.
#[async_trait]
pub trait Route53Api: Send + Sync {
    /// Every record set named `name` in the zone (all types and set identifiers).
    async fn records(&self, zone_id: &str, name: &str) -> AwsResult<Vec<Record>>;
    /// The simple (non-alias) record `name`/`rtype`, if present.
    async fn record(&self, zone_id: &str, name: &str, rtype: &str) -> AwsResult<Option<Record>>;
    /// UPSERT a simple record (name, type, TTL, values). Returns the change id.
    async fn upsert(&self, zone_id: &str, rec: &Record, comment: &str) -> AwsResult<String>;
    /// DELETE a simple record exactly as it is. Returns the change id.
    async fn delete(&self, zone_id: &str, rec: &Record, comment: &str) -> AwsResult<String>;
    /// Apply several changes in one batch, atomically: all or none. Returns the change id.
    async fn change_batch(
        &self,
        zone_id: &str,
        changes: &[(ChangeKind, Record)],
        comment: &str,
    ) -> AwsResult<String>;
    /// `PENDING` or `INSYNC`.
    async fn change_status(&self, change_id: &str) -> AwsResult<String>;
    async fn health_check(&self, id: &str) -> AwsResult<HealthCheck>;
    /// What Route 53's checkers see now, after Inverted/Disabled are applied: healthy while
    /// more than 18% of its checkers report success (Route 53's own rule); `None` when there
    /// are no observations yet.
    async fn health_check_healthy(&self, id: &str) -> AwsResult<Option<bool>>;
    async fn set_inverted(&self, id: &str, inverted: bool) -> AwsResult<()>;
    /// What Route 53 answers for `name`/`rtype` now (TestDNSAnswer).
    async fn answer(&self, zone_id: &str, name: &str, rtype: &str) -> AwsResult<Vec<String>>;
}

fn record_set(rec: &Record) -> Result<ResourceRecordSet, String> {
    let mut b = ResourceRecordSet::builder()
        .name(&rec.name)
        .r#type(RrType::from(rec.rtype.as_str()))
        .set_set_identifier(rec.set_identifier.clone())
        .set_failover(rec.failover.as_deref().map(ResourceRecordSetFailover::from))
        .set_health_check_id(rec.health_check_id.clone());
    if let Some(dns) = &rec.alias_dns_name {
        let target = AliasTarget::builder()
            .dns_name(dns)
            .hosted_zone_id(rec.alias_zone_id.clone().unwrap_or_default())
            .evaluate_target_health(rec.evaluate_target_health.unwrap_or(false))
            .build()
            .map_err(|e| e.to_string())?;
        b = b.alias_target(target);
    } else {
        b = b.ttl(rec.ttl.unwrap_or(60)).set_resource_records(Some(
            rec.values
                .iter()
                .map(|v| {
                    ResourceRecord::builder()
                        .value(v)
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?,
        ));
    }
    b.build().map_err(|e| e.to_string())
}

#[async_trait]
impl Route53Api for SdkRoute53 {
    async fn records(&self, zone_id: &str, name: &str) -> AwsResult<Vec<Record>> {
        let out = self
            .c
            .list_resource_record_sets()
            .hosted_zone_id(zone(zone_id))
            .start_record_name(name)
            .max_items(100)
            .send()
            .await
            .map_err(sdk_err!("route53", "ListResourceRecordSets", GLOBAL_REGION))?;
        Ok(out
            .resource_record_sets()
            .iter()
            .filter(|r| same_name(r.name(), name))
            .map(|r| Record {
                name: r.name().to_string(),
                rtype: r.r#type().as_str().to_string(),
                ttl: r.ttl(),
                values: r
                    .resource_records()
                    .iter()
                    .map(|v| v.value().to_string())
                    .collect(),
                set_identifier: r.set_identifier().map(String::from),
                failover: r.failover().map(|f| f.as_str().to_string()),
                health_check_id: r.health_check_id().map(String::from),
                alias_dns_name: r
                    .alias_target()
                    .map(|a| a.dns_name().trim_end_matches('.').to_string()),
                alias_zone_id: r.alias_target().map(|a| a.hosted_zone_id().to_string()),
                evaluate_target_health: r.alias_target().map(|a| a.evaluate_target_health()),
            })
            .collect())
    }

    async fn record(&self, zone_id: &str, name: &str, rtype: &str) -> AwsResult<Option<Record>> {
        Ok(self
            .records(zone_id, name)
            .await?
            .into_iter()
            .find(|r| r.rtype.eq_ignore_ascii_case(rtype) && r.set_identifier.is_none()))
    }

    async fn upsert(&self, zone_id: &str, rec: &Record, comment: &str) -> AwsResult<String> {
        self.change_batch(zone_id, &[(ChangeKind::Upsert, rec.clone())], comment)
            .await
    }

    async fn delete(&self, zone_id: &str, rec: &Record, comment: &str) -> AwsResult<String> {
        self.change_batch(zone_id, &[(ChangeKind::Delete, rec.clone())], comment)
            .await
    }

    async fn change_batch(
        &self,
        zone_id: &str,
        changes: &[(ChangeKind, Record)],
        comment: &str,
    ) -> AwsResult<String> {
        let local = |m: String| {
            AwsError::local(
                "route53",
                "ChangeResourceRecordSets",
                GLOBAL_REGION,
                ErrorKind::Other,
                m,
            )
        };
        let mut batch = ChangeBatch::builder().comment(comment);
        for (kind, rec) in changes {
            let action = match kind {
                ChangeKind::Create => ChangeAction::Create,
                ChangeKind::Delete => ChangeAction::Delete,
                ChangeKind::Upsert => ChangeAction::Upsert,
            };
            let change = Change::builder()
                .action(action)
                .resource_record_set(record_set(rec).map_err(local)?)
                .build()
                .map_err(|e| local(e.to_string()))?;
            batch = batch.changes(change);
        }
        let out = self
            .c
            .change_resource_record_sets()
            .hosted_zone_id(zone(zone_id))
            .change_batch(batch.build().map_err(|e| local(e.to_string()))?)
            .send()
            .await
            .map_err(sdk_err!(
                "route53",
                "ChangeResourceRecordSets",
                GLOBAL_REGION
            ))?;
        Ok(out
            .change_info()
            .map(|c| c.id().to_string())
            .unwrap_or_default())
    }

    async fn change_status(&self, change_id: &str) -> AwsResult<String> {
        let out = self
            .c
            .get_change()
            .id(zone(change_id))
            .send()
            .await
            .map_err(sdk_err!("route53", "GetChange", GLOBAL_REGION))?;
        Ok(out
            .change_info()
            .map(|c| c.status().as_str().to_string())
            .unwrap_or_default())
    }

    async fn health_check(&self, id: &str) -> AwsResult<HealthCheck> {
        let out = self
            .c
            .get_health_check()
            .health_check_id(id)
            .send()
            .await
            .map_err(sdk_err!("route53", "GetHealthCheck", GLOBAL_REGION))?;
        let cfg = out.health_check().and_then(|h| h.health_check_config());
        Ok(HealthCheck {
            id: id.to_string(),
            inverted: cfg.and_then(|c| c.inverted()).unwrap_or(false),
            disabled: cfg.and_then(|c| c.disabled()).unwrap_or(false),
            target: cfg
                .and_then(|c| c.fully_qualified_domain_name().or(c.ip_address()))
                .map(String::from),
            kind: cfg
                .map(|c| c.r#type().as_str().to_string())
                .unwrap_or_default(),
            children: cfg
                .map(|c| c.child_health_checks().to_vec())
                .unwrap_or_default(),
            threshold: cfg.and_then(|c| c.health_threshold()),
            routing_control_arn: cfg.and_then(|c| c.routing_control_arn()).map(String::from),
            alarm: cfg
                .and_then(|c| c.alarm_identifier())
                .map(|a| (a.region().as_str().to_string(), a.name().to_string())),
        })
    }

    async fn health_check_healthy(&self, id: &str) -> AwsResult<Option<bool>> {
        let out = self
            .c
            .get_health_check_status()
            .health_check_id(id)
            .send()
            .await
            .map_err(sdk_err!("route53", "GetHealthCheckStatus", GLOBAL_REGION))?;
        let obs = out.health_check_observations();
        if obs.is_empty() {
            return Ok(None);
        }
        let ok = obs
            .iter()
            .filter(|o| {
                o.status_report()
                    .and_then(|r| r.status())
                    .is_some_and(|s| s.starts_with("Success"))
            })
            .count();
        Ok(Some(healthy_by_vote(ok, obs.len())))
    }

    async fn set_inverted(&self, id: &str, inverted: bool) -> AwsResult<()> {
        self.c
            .update_health_check()
            .health_check_id(id)
            .inverted(inverted)
            .send()
            .await
            .map_err(sdk_err!("route53", "UpdateHealthCheck", GLOBAL_REGION))?;
        Ok(())
    }

    async fn answer(&self, zone_id: &str, name: &str, rtype: &str) -> AwsResult<Vec<String>> {
        let out = self
            .c
            .test_dns_answer()
            .hosted_zone_id(zone(zone_id))
            .record_name(name)
            .record_type(RrType::from(rtype))
            .send()
            .await
            .map_err(sdk_err!("route53", "TestDNSAnswer", GLOBAL_REGION))?;
        Ok(out
            .record_data()
            .iter()
            .map(|s| s.trim_end_matches('.').to_string())
            .collect())
    }
}
