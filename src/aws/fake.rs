//! An in-process AWS behind the same per-service traits as the SDK ([`FakeAws`]): a small world
//! of DB instances, records, health checks, distributions, vaults, images, launch templates,
//! groups and target groups, with the state changes drctl waits for (a promotion settles after a
//! few reads, a distribution deploys, a copy job completes), every call recorded, and failures
//! injected per service, operation and region (throttling, 5xx, timeouts, a region that hangs,
//! denial). For unit tests of step logic and rollback: milliseconds, no Python, no network.
//! End-to-end behaviour is tested against the sandbox.
//!
//! Modelled on awslabs/mountpoint-s3's mock and failure-injecting clients.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::autoscaling::{AutoScalingApi, Group};
use super::backup::{BackupApi, CopyJob, RecoveryPoint};
use super::cloudfront::{CloudFrontApi, OriginGroup};
use super::cloudwatch::CloudWatchApi;
use super::ec2::{Ec2Api, Image, LaunchTemplate};
use super::elbv2::{Elbv2Api, TargetHealth};
use super::rds::{DbInstance, NewReplica, RdsApi};
use super::route53::{same_name, ChangeKind, HealthCheck, Record, Route53Api};
use super::{Aws, AwsError, AwsResult, ErrorKind, GLOBAL_REGION};

/// How many reads a change takes to settle (a promotion, a deployment, a copy job).
pub const SETTLE_READS: u32 = 2;

/// A failure to inject.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// `ThrottlingException` (retryable).
    Throttle,
    /// A 503 (the region answers, badly).
    Unavailable,
    /// The call runs out of time after this long (what the SDK's operation timeout reports).
    Timeout(Duration),
    /// The call never answers (a dark region); only an outer timeout ends it.
    Hang,
    /// `AccessDenied` (permanent).
    Denied,
}

/// Which calls a fault applies to, and how many times (None: every time).
#[derive(Debug, Clone)]
pub struct Fault {
    pub service: Option<&'static str>,
    pub operation: Option<&'static str>,
    pub region: Option<String>,
    pub kind: FaultKind,
    pub times: Option<u32>,
}

impl Fault {
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            service: None,
            operation: None,
            region: None,
            kind,
            times: None,
        }
    }
    pub fn service(mut self, s: &'static str) -> Self {
        self.service = Some(s);
        self
    }
    pub fn operation(mut self, o: &'static str) -> Self {
        self.operation = Some(o);
        self
    }
    pub fn region(mut self, r: &str) -> Self {
        self.region = Some(r.into());
        self
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
    fn matches(&self, service: &str, op: &str, region: &str) -> bool {
        self.service.is_none_or(|s| s == service)
            && self.operation.is_none_or(|o| o == op)
            && self.region.as_deref().is_none_or(|r| r == region)
    }
}

/// One call the fake answered (or refused).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub service: &'static str,
    pub operation: &'static str,
    pub region: String,
    /// Changes state in AWS (as opposed to a read).
    pub mutating: bool,
    /// A fault was injected instead of answering.
    pub faulted: bool,
}

#[derive(Debug, Clone)]
pub struct FakeDb {
    pub db: DbInstance,
    /// Reads left before a parameter change is `in-sync`.
    pub applying: u32,
    /// (reads left, the status after them, whether the replica link goes too).
    pub pending: Option<(u32, String, bool)>,
    /// ReplicaLag datapoint, if any.
    pub lag: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct FakeHealthCheck {
    pub check: HealthCheck,
    /// Whether the checked endpoint answers (before inversion).
    pub endpoint_up: bool,
}

#[derive(Debug, Clone)]
pub struct FakeDistribution {
    pub groups: BTreeMap<String, Vec<String>>,
    pub etag: u64,
    /// Reads of the status left before `Deployed`.
    pub deploying: u32,
}

#[derive(Debug, Clone)]
pub struct FakeTemplate {
    pub default_version: i64,
    /// Version number -> AMI.
    pub versions: BTreeMap<i64, String>,
}

#[derive(Debug, Clone)]
pub struct FakeCopy {
    pub job: CopyJob,
    pub source_region: String,
    pub destination_region: String,
    pub destination_vault: String,
    pub reads_left: u32,
}

/// Everything the fake AWS holds. Public so a test can seed it and assert on it.
#[derive(Debug, Default)]
pub struct World {
    /// (region, id) -> instance.
    pub dbs: BTreeMap<(String, String), FakeDb>,
    /// (region, group) -> parameter values.
    pub parameter_groups: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// zone id -> record sets.
    pub zones: BTreeMap<String, Vec<Record>>,
    /// change id -> reads left before INSYNC.
    pub changes: BTreeMap<String, u32>,
    pub health_checks: BTreeMap<String, FakeHealthCheck>,
    pub distributions: BTreeMap<String, FakeDistribution>,
    /// (region, vault name) -> (vault ARN, recovery points).
    pub vaults: BTreeMap<(String, String), (String, Vec<RecoveryPoint>)>,
    pub copy_jobs: Vec<FakeCopy>,
    /// plan id -> destination vault ARNs of its copy rules.
    pub plans: BTreeMap<String, Vec<String>>,
    /// (region, id) -> (image, tags).
    pub images: BTreeMap<(String, String), (Image, BTreeMap<String, String>)>,
    pub templates: BTreeMap<(String, String), FakeTemplate>,
    pub groups: BTreeMap<(String, String), Group>,
    pub target_groups: BTreeMap<(String, String), Vec<TargetHealth>>,
    pub faults: Vec<Fault>,
    pub calls: Vec<Call>,
    next_id: u64,
}

impl World {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:08x}", self.next_id)
    }

    /// The mutating calls made so far, as `service:Operation`.
    pub fn mutations(&self) -> Vec<String> {
        self.calls
            .iter()
            .filter(|c| c.mutating && !c.faulted)
            .map(|c| format!("{}:{}", c.service, c.operation))
            .collect()
    }

    /// What Route 53 answers for `name` in `zone`: for a failover pair the PRIMARY while it is
    /// healthy (a record without a health check always is), else the SECONDARY.
    pub fn answer(&self, zone: &str, name: &str, rtype: &str) -> Vec<String> {
        let recs: Vec<&Record> = self
            .zones
            .get(zone)
            .map(|v| {
                v.iter()
                    .filter(|r| same_name(&r.name, name) && r.rtype.eq_ignore_ascii_case(rtype))
                    .collect()
            })
            .unwrap_or_default();
        let target = |r: &Record| -> Vec<String> {
            r.alias_dns_name
                .clone()
                .map(|a| vec![a])
                .unwrap_or_else(|| r.values.clone())
        };
        let healthy = |r: &Record| {
            r.health_check_id
                .as_ref()
                .and_then(|h| self.health_checks.get(h))
                .is_none_or(hc_healthy)
        };
        let by = |f: &str| recs.iter().find(|r| r.failover.as_deref() == Some(f));
        match (by("PRIMARY"), by("SECONDARY")) {
            (Some(p), Some(s)) if !healthy(p) => target(s),
            (Some(p), _) => target(p),
            (None, Some(s)) => target(s),
            (None, None) => recs.first().map(|r| target(r)).unwrap_or_default(),
        }
    }
}

fn hc_healthy(h: &FakeHealthCheck) -> bool {
    if h.check.disabled {
        return true;
    }
    h.endpoint_up != h.check.inverted
}

/// AWS in memory. Cheap to clone: clones share the world.
#[derive(Clone, Default)]
pub struct FakeAws {
    world: Arc<Mutex<World>>,
}

impl FakeAws {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("fake world lock")
    }

    pub fn inject(&self, f: Fault) {
        self.world().faults.push(f);
    }

    pub fn clear_faults(&self) {
        self.world().faults.clear();
    }

    /// Record the call, then fail it if a fault says so.
    async fn enter(
        &self,
        service: &'static str,
        operation: &'static str,
        region: &str,
        mutating: bool,
    ) -> AwsResult<()> {
        let fault = {
            let mut w = self.world();
            let hit = w
                .faults
                .iter_mut()
                .find(|f| f.matches(service, operation, region) && f.times != Some(0));
            let kind = hit.map(|f| {
                if let Some(n) = f.times.as_mut() {
                    *n -= 1;
                }
                f.kind.clone()
            });
            w.calls.push(Call {
                service,
                operation,
                region: region.to_string(),
                mutating,
                faulted: kind.is_some(),
            });
            kind
        };
        let err = |kind, code: &str, msg: &str| {
            let mut e = AwsError::local(service, operation, region, kind, msg);
            e.code = Some(code.into());
            Err(e)
        };
        match fault {
            None => Ok(()),
            Some(FaultKind::Throttle) => {
                err(ErrorKind::Throttled, "ThrottlingException", "Rate exceeded")
            }
            Some(FaultKind::Unavailable) => {
                err(ErrorKind::Unavailable, "ServiceUnavailable", "injected 503")
            }
            Some(FaultKind::Denied) => err(ErrorKind::Other, "AccessDenied", "injected denial"),
            Some(FaultKind::Timeout(d)) => {
                tokio::time::sleep(d).await;
                Err(AwsError::local(
                    service,
                    operation,
                    region,
                    ErrorKind::Timeout,
                    "timed out (operation or attempt timeout reached)",
                ))
            }
            Some(FaultKind::Hang) => std::future::pending().await,
        }
    }

    fn handle(&self, region: &str) -> Handle {
        Handle {
            f: self.clone(),
            region: region.to_string(),
        }
    }

    // ---- seeding helpers for tests -----------------------------------------------------

    pub fn add_db(&self, region: &str, id: &str, replica_of: Option<&str>, lag: Option<f64>) {
        let mut w = self.world();
        w.dbs.insert(
            (region.into(), id.into()),
            FakeDb {
                db: DbInstance {
                    id: id.into(),
                    arn: format!("arn:aws:rds:{region}:123456789012:db:{id}"),
                    status: "available".into(),
                    endpoint: Some(format!("{id}.fake.{region}.rds.amazonaws.com")),
                    port: Some(3306),
                    replica_source: replica_of.map(String::from),
                    replicas: vec![],
                    parameter_group: Some(format!("{id}-params")),
                    parameter_apply_status: Some("in-sync".into()),
                    tags: BTreeMap::new(),
                },
                applying: 0,
                pending: None,
                lag,
            },
        );
        w.parameter_groups.insert(
            (region.into(), format!("{id}-params")),
            [("read_only".to_string(), "0".to_string())].into(),
        );
        if let Some(src) = replica_of {
            let arn = format!("arn:aws:rds:{region}:123456789012:db:{id}");
            for d in w.dbs.values_mut() {
                if src.ends_with(&format!(":db:{}", d.db.id)) || src == d.db.id {
                    d.db.replicas.push(arn.clone());
                }
            }
        }
    }

    pub fn add_record(&self, zone: &str, rec: Record) {
        self.world().zones.entry(zone.into()).or_default().push(rec);
    }

    pub fn add_health_check(&self, id: &str, target: &str) {
        self.world().health_checks.insert(
            id.into(),
            FakeHealthCheck {
                check: HealthCheck {
                    id: id.into(),
                    inverted: false,
                    disabled: false,
                    target: Some(target.into()),
                },
                endpoint_up: true,
            },
        );
    }

    /// The checked endpoint goes down (`false`) or comes back.
    pub fn set_endpoint_up(&self, health_check: &str, up: bool) {
        if let Some(h) = self.world().health_checks.get_mut(health_check) {
            h.endpoint_up = up;
        }
    }

    pub fn add_distribution(&self, id: &str, group: &str, members: &[&str]) {
        self.world().distributions.insert(
            id.into(),
            FakeDistribution {
                groups: [(
                    group.into(),
                    members.iter().map(|s| s.to_string()).collect(),
                )]
                .into(),
                etag: 1,
                deploying: 0,
            },
        );
    }

    pub fn add_vault(&self, region: &str, name: &str) -> String {
        let arn = format!("arn:aws:backup:{region}:123456789012:backup-vault:{name}");
        self.world()
            .vaults
            .insert((region.into(), name.into()), (arn.clone(), vec![]));
        arn
    }

    /// An available AMI in `region`, optionally also a COMPLETED recovery point in `vault`.
    pub fn add_image(&self, region: &str, id: &str, created: &str, vault: Option<&str>) {
        let mut w = self.world();
        w.images.insert(
            (region.into(), id.into()),
            (
                Image {
                    id: id.into(),
                    state: "available".into(),
                    name: Some(id.into()),
                    creation_date: Some(created.into()),
                },
                BTreeMap::new(),
            ),
        );
        if let Some(v) = vault {
            let secs = chrono::DateTime::parse_from_rfc3339(created)
                .map(|d| d.timestamp())
                .ok();
            if let Some((_, points)) = w.vaults.get_mut(&(region.to_string(), v.to_string())) {
                points.push(RecoveryPoint {
                    arn: format!("arn:aws:ec2:{region}::image/{id}"),
                    resource_arn: None,
                    resource_type: Some("EC2".into()),
                    status: "COMPLETED".into(),
                    created: secs,
                });
            }
        }
    }

    /// Tag an AMI added with [`FakeAws::add_image`] (what `DescribeImages` filters
    /// `tag:KEY=VALUE` match).
    pub fn tag_image(&self, region: &str, id: &str, key: &str, value: &str) {
        if let Some((_, tags)) = self
            .world()
            .images
            .get_mut(&(region.to_string(), id.to_string()))
        {
            tags.insert(key.into(), value.into());
        }
    }

    pub fn add_template(&self, region: &str, id: &str, image: &str) {
        self.world().templates.insert(
            (region.into(), id.into()),
            FakeTemplate {
                default_version: 1,
                versions: [(1, image.to_string())].into(),
            },
        );
    }

    pub fn add_group(
        &self,
        region: &str,
        name: &str,
        template: &str,
        min: i32,
        desired: i32,
        max: i32,
    ) {
        self.world().groups.insert(
            (region.into(), name.into()),
            Group {
                name: name.into(),
                min,
                max,
                desired,
                in_service: desired,
                launch_template_id: Some(template.into()),
                launch_template_version: Some("$Default".into()),
            },
        );
    }

    pub fn add_target_group(&self, region: &str, arn: &str, healthy: usize) {
        self.world().target_groups.insert(
            (region.into(), arn.into()),
            (0..healthy)
                .map(|i| TargetHealth {
                    id: format!("i-{i:04}"),
                    state: "healthy".into(),
                })
                .collect(),
        );
    }
}

#[async_trait]
impl Aws for FakeAws {
    async fn rds(&self, region: &str) -> Arc<dyn RdsApi> {
        Arc::new(self.handle(region))
    }
    async fn cloudwatch(&self, region: &str) -> Arc<dyn CloudWatchApi> {
        Arc::new(self.handle(region))
    }
    async fn route53(&self) -> Arc<dyn Route53Api> {
        Arc::new(self.handle(GLOBAL_REGION))
    }
    async fn cloudfront(&self) -> Arc<dyn CloudFrontApi> {
        Arc::new(self.handle(GLOBAL_REGION))
    }
    async fn backup(&self, region: &str) -> Arc<dyn BackupApi> {
        Arc::new(self.handle(region))
    }
    async fn ec2(&self, region: &str) -> Arc<dyn Ec2Api> {
        Arc::new(self.handle(region))
    }
    async fn autoscaling(&self, region: &str) -> Arc<dyn AutoScalingApi> {
        Arc::new(self.handle(region))
    }
    async fn elbv2(&self, region: &str) -> Arc<dyn Elbv2Api> {
        Arc::new(self.handle(region))
    }
}

/// One service's view of the fake in one region.
struct Handle {
    f: FakeAws,
    region: String,
}

impl Handle {
    fn not_found<T>(&self, service: &'static str, op: &'static str, what: String) -> AwsResult<T> {
        Err(AwsError::local(
            service,
            op,
            &self.region,
            ErrorKind::NotFound,
            what,
        ))
    }
    fn refuse<T>(
        &self,
        service: &'static str,
        op: &'static str,
        code: &str,
        kind: ErrorKind,
        msg: String,
    ) -> AwsResult<T> {
        let mut e = AwsError::local(service, op, &self.region, kind, msg);
        e.code = Some(code.into());
        Err(e)
    }
    fn key(&self, id: &str) -> (String, String) {
        (self.region.clone(), id.to_string())
    }
}

#[async_trait]
impl RdsApi for Handle {
    async fn describe(&self, id: &str) -> AwsResult<DbInstance> {
        self.f
            .enter("rds", "DescribeDBInstances", &self.region, false)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.dbs.get_mut(&self.key(id)) else {
            return self.not_found("rds", "DescribeDBInstances", format!("no DB instance {id}"));
        };
        if d.applying > 0 {
            d.applying -= 1;
            if d.applying == 0 {
                d.db.parameter_apply_status = Some("in-sync".into());
            }
        }
        if let Some((left, status, unlink)) = d.pending.take() {
            if left <= 1 {
                d.db.status = status;
                if unlink {
                    d.db.replica_source = None;
                }
            } else {
                d.pending = Some((left - 1, status, unlink));
            }
        }
        Ok(d.db.clone())
    }

    async fn promote_read_replica(&self, id: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "PromoteReadReplica", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.dbs.get_mut(&self.key(id)) else {
            return self.not_found("rds", "PromoteReadReplica", format!("no DB instance {id}"));
        };
        if d.db.replica_source.is_none() || d.db.status != "available" {
            return self.refuse(
                "rds",
                "PromoteReadReplica",
                "InvalidDBInstanceState",
                ErrorKind::Conflict,
                format!("{id} is not an available read replica ({})", d.db.status),
            );
        }
        d.db.status = "modifying".into();
        d.pending = Some((SETTLE_READS, "available".into(), true));
        let arn = d.db.arn.clone();
        for other in w.dbs.values_mut() {
            other.db.replicas.retain(|r| r != &arn && r != id);
        }
        Ok(())
    }

    async fn stop(&self, id: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "StopDBInstance", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.dbs.get_mut(&self.key(id)) else {
            return self.not_found("rds", "StopDBInstance", format!("no DB instance {id}"));
        };
        if d.db.status != "available" || d.db.replica_source.is_some() || !d.db.replicas.is_empty()
        {
            return self.refuse(
                "rds",
                "StopDBInstance",
                "InvalidDBInstanceState",
                ErrorKind::Conflict,
                format!(
                    "{id} cannot be stopped: it is {} or has read replicas",
                    d.db.status
                ),
            );
        }
        d.db.status = "stopping".into();
        d.pending = Some((SETTLE_READS, "stopped".into(), false));
        Ok(())
    }

    async fn start(&self, id: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "StartDBInstance", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.dbs.get_mut(&self.key(id)) else {
            return self.not_found("rds", "StartDBInstance", format!("no DB instance {id}"));
        };
        if d.db.status != "stopped" {
            return self.refuse(
                "rds",
                "StartDBInstance",
                "InvalidDBInstanceState",
                ErrorKind::Conflict,
                format!("{id} is {}, not stopped", d.db.status),
            );
        }
        d.db.status = "starting".into();
        d.pending = Some((SETTLE_READS, "available".into(), false));
        Ok(())
    }

    async fn parameter(&self, group: &str, name: &str) -> AwsResult<Option<String>> {
        self.f
            .enter("rds", "DescribeDBParameters", &self.region, false)
            .await?;
        match self.f.world().parameter_groups.get(&self.key(group)) {
            Some(g) => Ok(g.get(name).cloned()),
            None => self.not_found(
                "rds",
                "DescribeDBParameters",
                format!("no DB parameter group {group}"),
            ),
        }
    }

    async fn set_parameter(&self, group: &str, name: &str, value: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "ModifyDBParameterGroup", &self.region, true)
            .await?;
        let mut w = self.f.world();
        if group.starts_with("default.") {
            return self.refuse(
                "rds",
                "ModifyDBParameterGroup",
                "InvalidDBParameterGroupState",
                ErrorKind::Other,
                format!("default parameter group {group} cannot be modified"),
            );
        }
        let Some(g) = w.parameter_groups.get_mut(&self.key(group)) else {
            return self.not_found(
                "rds",
                "ModifyDBParameterGroup",
                format!("no DB parameter group {group}"),
            );
        };
        g.insert(name.into(), value.into());
        for d in w.dbs.values_mut() {
            if d.db.parameter_group.as_deref() == Some(group)
                && d.db.arn.contains(&format!(":{}:", self.region))
            {
                d.db.parameter_apply_status = Some("applying".into());
                d.applying = SETTLE_READS;
            }
        }
        Ok(())
    }

    async fn instances(&self) -> AwsResult<Vec<DbInstance>> {
        self.f
            .enter("rds", "DescribeDBInstances", &self.region, false)
            .await?;
        let ids: Vec<String> = self
            .f
            .world()
            .dbs
            .keys()
            .filter(|(r, _)| *r == self.region)
            .map(|(_, id)| id.clone())
            .collect();
        let mut out = vec![];
        for id in ids {
            out.push(self.describe(&id).await?);
        }
        Ok(out)
    }

    async fn create_read_replica(&self, r: &NewReplica<'_>) -> AwsResult<()> {
        self.f
            .enter("rds", "CreateDBInstanceReadReplica", &self.region, true)
            .await?;
        let source = self
            .f
            .world()
            .dbs
            .values()
            .find(|d| d.db.arn == r.source_arn)
            .map(|d| d.db.clone());
        let Some(src) = source else {
            return self.not_found(
                "rds",
                "CreateDBInstanceReadReplica",
                format!("no DB instance {}", r.source_arn),
            );
        };
        if self.f.world().dbs.contains_key(&self.key(r.id)) {
            return self.refuse(
                "rds",
                "CreateDBInstanceReadReplica",
                "DBInstanceAlreadyExists",
                ErrorKind::Conflict,
                format!("{} already exists", r.id),
            );
        }
        if src.status != "available" || src.replica_source.is_some() {
            return self.refuse(
                "rds",
                "CreateDBInstanceReadReplica",
                "InvalidDBInstanceState",
                ErrorKind::Conflict,
                format!("source {} is {} or a replica", src.id, src.status),
            );
        }
        self.f
            .add_db(&self.region, r.id, Some(r.source_arn), Some(0.0));
        let mut w = self.f.world();
        let d = w.dbs.get_mut(&self.key(r.id)).expect("just added");
        d.db.status = "creating".into();
        d.pending = Some((SETTLE_READS, "available".into(), false));
        d.db.tags = r.tags.iter().cloned().collect();
        if let Some(g) = r.parameter_group {
            d.db.parameter_group = Some(g.into());
        }
        Ok(())
    }

    async fn rename(&self, id: &str, new_id: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "ModifyDBInstance", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(mut d) = w.dbs.remove(&self.key(id)) else {
            return self.not_found("rds", "ModifyDBInstance", format!("no DB instance {id}"));
        };
        if d.db.status != "available" {
            let status = d.db.status.clone();
            w.dbs.insert(self.key(id), d);
            return self.refuse(
                "rds",
                "ModifyDBInstance",
                "InvalidDBInstanceState",
                ErrorKind::Conflict,
                format!("{id} is {status}, not available"),
            );
        }
        let old_arn = d.db.arn.clone();
        d.db.id = new_id.into();
        d.db.arn = old_arn.replace(&format!(":db:{id}"), &format!(":db:{new_id}"));
        let new_arn = d.db.arn.clone();
        w.dbs.insert(self.key(new_id), d);
        for other in w.dbs.values_mut() {
            for r in other.db.replicas.iter_mut() {
                if *r == old_arn {
                    *r = new_arn.clone();
                }
            }
            if other.db.replica_source.as_deref() == Some(old_arn.as_str()) {
                other.db.replica_source = Some(new_arn.clone());
            }
        }
        Ok(())
    }

    async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> AwsResult<()> {
        self.f
            .enter("rds", "AddTagsToResource", &self.region, true)
            .await?;
        let mut w = self.f.world();
        match w.dbs.values_mut().find(|d| d.db.arn == arn) {
            Some(d) => {
                d.db.tags.extend(tags.iter().cloned());
                Ok(())
            }
            None => self.not_found("rds", "AddTagsToResource", format!("no resource {arn}")),
        }
    }

    async fn delete(&self, id: &str) -> AwsResult<()> {
        self.f
            .enter("rds", "DeleteDBInstance", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.dbs.remove(&self.key(id)) else {
            return self.not_found("rds", "DeleteDBInstance", format!("no DB instance {id}"));
        };
        for other in w.dbs.values_mut() {
            other.db.replicas.retain(|r| r != &d.db.arn);
        }
        Ok(())
    }
}

#[async_trait]
impl CloudWatchApi for Handle {
    async fn replica_lag(&self, instance_id: &str, _window: Duration) -> AwsResult<Option<f64>> {
        self.f
            .enter("cloudwatch", "GetMetricStatistics", &self.region, false)
            .await?;
        Ok(self
            .f
            .world()
            .dbs
            .get(&self.key(instance_id))
            .and_then(|d| d.lag))
    }
}

fn zone(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

#[async_trait]
impl Route53Api for Handle {
    async fn records(&self, zone_id: &str, name: &str) -> AwsResult<Vec<Record>> {
        self.f
            .enter("route53", "ListResourceRecordSets", &self.region, false)
            .await?;
        Ok(self
            .f
            .world()
            .zones
            .get(zone(zone_id))
            .map(|v| {
                v.iter()
                    .filter(|r| same_name(&r.name, name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn record(&self, zone_id: &str, name: &str, rtype: &str) -> AwsResult<Option<Record>> {
        Ok(self
            .records(zone_id, name)
            .await?
            .into_iter()
            .find(|r| r.rtype.eq_ignore_ascii_case(rtype) && r.set_identifier.is_none()))
    }

    async fn upsert(&self, zone_id: &str, rec: &Record, _comment: &str) -> AwsResult<String> {
        self.f
            .enter("route53", "ChangeResourceRecordSets", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let recs = w.zones.entry(zone(zone_id).into()).or_default();
        recs.retain(|r| {
            !(same_name(&r.name, &rec.name)
                && r.rtype.eq_ignore_ascii_case(&rec.rtype)
                && r.set_identifier == rec.set_identifier)
        });
        recs.push(rec.clone());
        let id = w.id("C");
        w.changes.insert(id.clone(), SETTLE_READS);
        Ok(format!("/change/{id}"))
    }

    async fn delete(&self, zone_id: &str, rec: &Record, _comment: &str) -> AwsResult<String> {
        self.f
            .enter("route53", "ChangeResourceRecordSets", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let recs = w.zones.entry(zone(zone_id).into()).or_default();
        let before = recs.len();
        recs.retain(|r| r != rec);
        if recs.len() == before {
            return self.refuse(
                "route53",
                "ChangeResourceRecordSets",
                "InvalidChangeBatch",
                ErrorKind::Other,
                format!("record {} {} not found as given", rec.name, rec.rtype),
            );
        }
        let id = w.id("C");
        w.changes.insert(id.clone(), SETTLE_READS);
        Ok(format!("/change/{id}"))
    }

    async fn change_batch(
        &self,
        zone_id: &str,
        changes: &[(ChangeKind, Record)],
        _comment: &str,
    ) -> AwsResult<String> {
        self.f
            .enter("route53", "ChangeResourceRecordSets", &self.region, true)
            .await?;
        let mut w = self.f.world();
        // All or nothing, as Route 53 applies a batch.
        let mut recs = w.zones.get(zone(zone_id)).cloned().unwrap_or_default();
        let same = |a: &Record, b: &Record| {
            same_name(&a.name, &b.name)
                && a.rtype.eq_ignore_ascii_case(&b.rtype)
                && a.set_identifier == b.set_identifier
        };
        for (kind, rec) in changes {
            match kind {
                ChangeKind::Delete => {
                    let before = recs.len();
                    recs.retain(|r| r != rec);
                    if recs.len() == before {
                        return self.refuse(
                            "route53",
                            "ChangeResourceRecordSets",
                            "InvalidChangeBatch",
                            ErrorKind::Other,
                            format!(
                                "Tried to delete resource record set {} {} but it was not found",
                                rec.name, rec.rtype
                            ),
                        );
                    }
                }
                ChangeKind::Create => {
                    if recs.iter().any(|r| same(r, rec)) {
                        return self.refuse(
                            "route53",
                            "ChangeResourceRecordSets",
                            "InvalidChangeBatch",
                            ErrorKind::Other,
                            format!(
                                "Tried to create resource record set {} {} but it already exists",
                                rec.name, rec.rtype
                            ),
                        );
                    }
                    recs.push(rec.clone());
                }
                ChangeKind::Upsert => {
                    recs.retain(|r| !same(r, rec));
                    recs.push(rec.clone());
                }
            }
        }
        w.zones.insert(zone(zone_id).into(), recs);
        let id = w.id("C");
        w.changes.insert(id.clone(), SETTLE_READS);
        Ok(format!("/change/{id}"))
    }

    async fn change_status(&self, change_id: &str) -> AwsResult<String> {
        self.f
            .enter("route53", "GetChange", &self.region, false)
            .await?;
        let mut w = self.f.world();
        let Some(left) = w.changes.get_mut(zone(change_id)) else {
            return self.not_found("route53", "GetChange", format!("no change {change_id}"));
        };
        *left = left.saturating_sub(1);
        Ok(if *left == 0 { "INSYNC" } else { "PENDING" }.into())
    }

    async fn health_check(&self, id: &str) -> AwsResult<HealthCheck> {
        self.f
            .enter("route53", "GetHealthCheck", &self.region, false)
            .await?;
        match self.f.world().health_checks.get(id) {
            Some(h) => Ok(h.check.clone()),
            None => self.not_found("route53", "GetHealthCheck", format!("no health check {id}")),
        }
    }

    async fn health_check_healthy(&self, id: &str) -> AwsResult<Option<bool>> {
        self.f
            .enter("route53", "GetHealthCheckStatus", &self.region, false)
            .await?;
        match self.f.world().health_checks.get(id) {
            Some(h) => Ok(Some(hc_healthy(h))),
            None => self.not_found(
                "route53",
                "GetHealthCheckStatus",
                format!("no health check {id}"),
            ),
        }
    }

    async fn set_inverted(&self, id: &str, inverted: bool) -> AwsResult<()> {
        self.f
            .enter("route53", "UpdateHealthCheck", &self.region, true)
            .await?;
        match self.f.world().health_checks.get_mut(id) {
            Some(h) => {
                h.check.inverted = inverted;
                Ok(())
            }
            None => self.not_found(
                "route53",
                "UpdateHealthCheck",
                format!("no health check {id}"),
            ),
        }
    }

    async fn answer(&self, zone_id: &str, name: &str, rtype: &str) -> AwsResult<Vec<String>> {
        self.f
            .enter("route53", "TestDNSAnswer", &self.region, false)
            .await?;
        Ok(self.f.world().answer(zone(zone_id), name, rtype))
    }
}

#[async_trait]
impl CloudFrontApi for Handle {
    async fn origin_group(&self, distribution_id: &str, group_id: &str) -> AwsResult<OriginGroup> {
        self.f
            .enter("cloudfront", "GetDistributionConfig", &self.region, false)
            .await?;
        let w = self.f.world();
        let Some(d) = w.distributions.get(distribution_id) else {
            return self.not_found(
                "cloudfront",
                "GetDistributionConfig",
                format!("no distribution {distribution_id}"),
            );
        };
        let Some(members) = d.groups.get(group_id) else {
            return self.not_found(
                "cloudfront",
                "GetDistributionConfig",
                format!("distribution {distribution_id} has no origin group {group_id}"),
            );
        };
        Ok(OriginGroup {
            distribution_id: distribution_id.into(),
            group_id: group_id.into(),
            members: members.clone(),
            etag: format!("E{}", d.etag),
        })
    }

    async fn set_member_order(
        &self,
        distribution_id: &str,
        group_id: &str,
        order: &[String],
    ) -> AwsResult<Option<String>> {
        let current = self.origin_group(distribution_id, group_id).await?.members;
        if current == order {
            return Ok(None);
        }
        let (mut a, mut b) = (current.clone(), order.to_vec());
        a.sort();
        b.sort();
        if a != b {
            return self.refuse("cloudfront", "UpdateDistribution", "InvalidArgument", ErrorKind::Other,
                format!("origin group {group_id} has members {current:?}, cannot reorder them to {order:?}"));
        }
        self.f
            .enter("cloudfront", "UpdateDistribution", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let d = w
            .distributions
            .get_mut(distribution_id)
            .expect("read just now");
        d.groups.insert(group_id.into(), order.to_vec());
        d.etag += 1;
        d.deploying = SETTLE_READS;
        Ok(Some(format!("E{}", d.etag)))
    }

    async fn status(&self, distribution_id: &str) -> AwsResult<String> {
        self.f
            .enter("cloudfront", "GetDistribution", &self.region, false)
            .await?;
        let mut w = self.f.world();
        let Some(d) = w.distributions.get_mut(distribution_id) else {
            return self.not_found(
                "cloudfront",
                "GetDistribution",
                format!("no distribution {distribution_id}"),
            );
        };
        d.deploying = d.deploying.saturating_sub(1);
        Ok(if d.deploying == 0 {
            "Deployed"
        } else {
            "InProgress"
        }
        .into())
    }
}

#[async_trait]
impl BackupApi for Handle {
    async fn recovery_points(&self, vault: &str) -> AwsResult<Vec<RecoveryPoint>> {
        self.f
            .enter(
                "backup",
                "ListRecoveryPointsByBackupVault",
                &self.region,
                false,
            )
            .await?;
        match self.f.world().vaults.get(&self.key(vault)) {
            Some((_, points)) => {
                let mut v = points.clone();
                v.sort_by_key(|r| std::cmp::Reverse(r.created.unwrap_or(0)));
                Ok(v)
            }
            None => self.not_found(
                "backup",
                "ListRecoveryPointsByBackupVault",
                format!("no vault {vault}"),
            ),
        }
    }

    async fn vault_arn(&self, vault: &str) -> AwsResult<String> {
        self.f
            .enter("backup", "DescribeBackupVault", &self.region, false)
            .await?;
        match self.f.world().vaults.get(&self.key(vault)) {
            Some((arn, _)) => Ok(arn.clone()),
            None => self.not_found("backup", "DescribeBackupVault", format!("no vault {vault}")),
        }
    }

    async fn start_copy(
        &self,
        recovery_point_arn: &str,
        _source_vault: &str,
        destination_vault_arn: &str,
        _role_arn: &str,
    ) -> AwsResult<String> {
        self.f
            .enter("backup", "StartCopyJob", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(((dest_region, dest_vault), _)) = w
            .vaults
            .iter()
            .find(|(_, (arn, _))| arn == destination_vault_arn)
            .map(|(k, v)| (k.clone(), v.clone()))
        else {
            return self.not_found(
                "backup",
                "StartCopyJob",
                format!("no vault {destination_vault_arn}"),
            );
        };
        let id = w.id("copy-");
        let created = chrono::Utc::now().timestamp() + w.next_id as i64;
        w.copy_jobs.push(FakeCopy {
            job: CopyJob {
                id: id.clone(),
                state: "RUNNING".into(),
                source_recovery_point_arn: Some(recovery_point_arn.into()),
                destination_vault_arn: Some(destination_vault_arn.into()),
                destination_recovery_point_arn: None,
                created: Some(created),
                message: None,
            },
            source_region: self.region.clone(),
            destination_region: dest_region,
            destination_vault: dest_vault,
            reads_left: SETTLE_READS,
        });
        Ok(id)
    }

    async fn copy_job(&self, id: &str) -> AwsResult<CopyJob> {
        self.f
            .enter("backup", "DescribeCopyJob", &self.region, false)
            .await?;
        let mut w = self.f.world();
        let Some(i) = w.copy_jobs.iter().position(|c| c.job.id == id) else {
            return self.not_found("backup", "DescribeCopyJob", format!("no copy job {id}"));
        };
        let c = &mut w.copy_jobs[i];
        c.reads_left = c.reads_left.saturating_sub(1);
        if c.reads_left == 0 && c.job.state == "RUNNING" {
            c.job.state = "COMPLETED".into();
            let src_image = c
                .job
                .source_recovery_point_arn
                .as_deref()
                .and_then(|a| a.rsplit_once(":image/").map(|x| x.1.to_string()))
                .unwrap_or_default();
            let (dest_region, vault) = (c.destination_region.clone(), c.destination_vault.clone());
            let new_id = format!("{src_image}-copy");
            c.job.destination_recovery_point_arn =
                Some(format!("arn:aws:ec2:{dest_region}::image/{new_id}"));
            let job = c.job.clone();
            drop(w);
            self.f.add_image(
                &dest_region,
                &new_id,
                &chrono::Utc::now().to_rfc3339(),
                Some(&vault),
            );
            return Ok(job);
        }
        Ok(c.job.clone())
    }

    async fn copy_jobs(&self) -> AwsResult<Vec<CopyJob>> {
        self.f
            .enter("backup", "ListCopyJobs", &self.region, false)
            .await?;
        let mut v: Vec<CopyJob> = self
            .f
            .world()
            .copy_jobs
            .iter()
            .filter(|c| c.source_region == self.region)
            .map(|c| c.job.clone())
            .collect();
        v.sort_by_key(|j| std::cmp::Reverse(j.created.unwrap_or(0)));
        Ok(v)
    }

    async fn plan_copy_destinations(&self, plan_id: &str) -> AwsResult<Vec<String>> {
        self.f
            .enter("backup", "GetBackupPlan", &self.region, false)
            .await?;
        match self.f.world().plans.get(plan_id) {
            Some(d) => Ok(d.clone()),
            None => self.not_found("backup", "GetBackupPlan", format!("no plan {plan_id}")),
        }
    }
}

#[async_trait]
impl Ec2Api for Handle {
    async fn images(&self, ids: &[String]) -> AwsResult<Vec<Image>> {
        self.f
            .enter("ec2", "DescribeImages", &self.region, false)
            .await?;
        let w = self.f.world();
        Ok(ids
            .iter()
            .filter_map(|id| w.images.get(&self.key(id)).map(|i| i.0.clone()))
            .collect())
    }

    async fn images_tagged(&self, key: &str, value: &str) -> AwsResult<Vec<Image>> {
        self.f
            .enter("ec2", "DescribeImages", &self.region, false)
            .await?;
        Ok(self
            .f
            .world()
            .images
            .iter()
            .filter(|((r, _), (_, tags))| {
                *r == self.region && tags.get(key).map(String::as_str) == Some(value)
            })
            .map(|(_, (i, _))| i.clone())
            .collect())
    }

    async fn launch_template(&self, id: &str) -> AwsResult<LaunchTemplate> {
        self.f
            .enter("ec2", "DescribeLaunchTemplates", &self.region, false)
            .await?;
        match self.f.world().templates.get(&self.key(id)) {
            Some(t) => Ok(LaunchTemplate {
                id: id.into(),
                default_version: t.default_version,
                latest_version: t.versions.keys().copied().max().unwrap_or(1),
                default_image_id: t.versions.get(&t.default_version).cloned(),
            }),
            None => self.not_found(
                "ec2",
                "DescribeLaunchTemplates",
                format!("no launch template {id}"),
            ),
        }
    }

    async fn create_version(
        &self,
        id: &str,
        _source_version: i64,
        image_id: &str,
        _description: &str,
    ) -> AwsResult<i64> {
        self.f
            .enter("ec2", "CreateLaunchTemplateVersion", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(t) = w.templates.get_mut(&self.key(id)) else {
            return self.not_found(
                "ec2",
                "CreateLaunchTemplateVersion",
                format!("no launch template {id}"),
            );
        };
        let v = t.versions.keys().copied().max().unwrap_or(0) + 1;
        t.versions.insert(v, image_id.into());
        Ok(v)
    }

    async fn set_default_version(&self, id: &str, version: i64) -> AwsResult<()> {
        self.f
            .enter("ec2", "ModifyLaunchTemplate", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(t) = w.templates.get_mut(&self.key(id)) else {
            return self.not_found(
                "ec2",
                "ModifyLaunchTemplate",
                format!("no launch template {id}"),
            );
        };
        if !t.versions.contains_key(&version) {
            return self.refuse(
                "ec2",
                "ModifyLaunchTemplate",
                "InvalidLaunchTemplateId.VersionNotFound",
                ErrorKind::NotFound,
                format!("{id} has no version {version}"),
            );
        }
        t.default_version = version;
        Ok(())
    }
}

#[async_trait]
impl AutoScalingApi for Handle {
    async fn group(&self, name: &str) -> AwsResult<Group> {
        self.f
            .enter(
                "autoscaling",
                "DescribeAutoScalingGroups",
                &self.region,
                false,
            )
            .await?;
        match self.f.world().groups.get(&self.key(name)) {
            Some(g) => Ok(g.clone()),
            None => self.not_found(
                "autoscaling",
                "DescribeAutoScalingGroups",
                format!("no Auto Scaling group {name}"),
            ),
        }
    }

    async fn set_sizes(
        &self,
        name: &str,
        min: i32,
        desired: i32,
        max: Option<i32>,
    ) -> AwsResult<()> {
        self.f
            .enter("autoscaling", "UpdateAutoScalingGroup", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let Some(g) = w.groups.get_mut(&self.key(name)) else {
            return self.not_found(
                "autoscaling",
                "UpdateAutoScalingGroup",
                format!("no Auto Scaling group {name}"),
            );
        };
        let max = max.unwrap_or(g.max);
        if desired > max || min > desired {
            return self.refuse(
                "autoscaling",
                "UpdateAutoScalingGroup",
                "ValidationError",
                ErrorKind::Other,
                format!("min {min} <= desired {desired} <= max {max} does not hold"),
            );
        }
        g.min = min;
        g.desired = desired;
        g.max = max;
        // Instances come into service at once here; the sandbox models the wait.
        g.in_service = desired;
        Ok(())
    }
}

#[async_trait]
impl Elbv2Api for Handle {
    async fn target_health(&self, target_group_arn: &str) -> AwsResult<Vec<TargetHealth>> {
        self.f
            .enter("elbv2", "DescribeTargetHealth", &self.region, false)
            .await?;
        let w = self.f.world();
        match w.target_groups.get(&self.key(target_group_arn)) {
            Some(t) => Ok(t.clone()),
            None => self.not_found(
                "elbv2",
                "DescribeTargetHealth",
                format!("no target group {target_group_arn}"),
            ),
        }
    }
}
