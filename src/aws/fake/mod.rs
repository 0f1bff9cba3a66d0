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

mod backup;
mod cloudfront;
mod compute;
mod ec2;
mod rds;
mod route53;

use crate::aws::autoscaling::{AutoScalingApi, Group};
use crate::aws::backup::{BackupApi, CopyJob, RecoveryPoint};
use crate::aws::cloudfront::CloudFrontApi;
use crate::aws::cloudwatch::CloudWatchApi;
use crate::aws::ec2::{Ec2Api, Image};
use crate::aws::elbv2::{Elbv2Api, TargetHealth};
use crate::aws::rds::{DbInstance, RdsApi};
use crate::aws::route53::{same_name, HealthCheck, Record, Route53Api};
use crate::aws::{Aws, AwsError, AwsResult, ErrorKind, GLOBAL_REGION};

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
    /// ReplicaLag datapoint, if any (-1: replication not active).
    pub lag: Option<f64>,
    /// With a lag of -1: the lag measured three minutes before, when replication still ran.
    pub last_known_lag: Option<f64>,
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
    /// (version, client token) of each CreateLaunchTemplateVersion.
    pub tokens: Vec<(i64, String)>,
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
            Some(FaultKind::Denied) => err(ErrorKind::Denied, "AccessDenied", "injected denial"),
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
                last_known_lag: None,
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
                    kind: "HTTP".into(),
                    ..Default::default()
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
                tokens: vec![],
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
    async fn identity(&self, region: &str) -> AwsResult<crate::aws::CallerIdentity> {
        self.enter("sts", "GetCallerIdentity", region, false)
            .await?;
        Ok(crate::aws::CallerIdentity {
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/fake".into(),
            user_id: "AIDAFAKE".into(),
        })
    }

    async fn elbv2(&self, region: &str) -> Arc<dyn Elbv2Api> {
        Arc::new(self.handle(region))
    }
}

/// One service's view of the fake in one region.
pub(crate) struct Handle {
    pub(crate) f: FakeAws,
    pub(crate) region: String,
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
