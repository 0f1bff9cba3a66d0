//! The environment file (`drctl.yaml`): one warm-standby deployment, its two regions and the
//! resources drctl acts on, by name. Runbooks refer to these by role (`primary`, `standby`) and
//! by resource name (`frontend`, `backend`), never by raw id.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A whole environment file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Environment name. The single-writer lease is per environment.
    pub name: String,
    /// The region that serves production in normal operation.
    pub primary_region: String,
    /// The warm standby region that a failover moves production to.
    pub standby_region: String,
    #[serde(default)]
    pub aws: AwsSettings,
    /// Resources per region, keyed by region name. Both regions must be present.
    pub regions: BTreeMap<String, RegionResources>,
    #[serde(default)]
    pub route53: Option<Route53Settings>,
    #[serde(default)]
    pub cloudfront: Option<CloudFrontSettings>,
    #[serde(default)]
    pub backup: Option<BackupSettings>,
    #[serde(default)]
    pub targets: Targets,
    #[serde(default)]
    pub probes: Option<ProbeSettings>,
    /// Where journals and leases live (default `.drctl`, or `--state-dir` / `DRCTL_STATE_DIR`).
    #[serde(default)]
    pub state_dir: Option<String>,
    /// Where runs and the lease live: files in the state dir (default) or a DynamoDB table
    /// shared by every machine (docs/shared-state.md).
    #[serde(default)]
    pub state: super::state::StateSettings,
    #[serde(default)]
    pub approvals: ApprovalSettings,
    /// Game-day drills: what they build and when they run (docs/drills.md).
    #[serde(default)]
    pub drill: super::drill::DrillSettings,
}

/// Who may approve what.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSettings {
    /// The two-person rule: an approval step that stands before an irreversible step (the
    /// promotion) must be approved by someone other than the operator who started the run.
    #[serde(default)]
    pub two_person: bool,
}

/// How drctl talks to AWS. Every call is bounded by both timeouts.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// One endpoint for every service (the sandbox). `--endpoint-url` and `AWS_ENDPOINT_URL` win.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Named profile from ~/.aws/config. `--profile` wins.
    #[serde(default)]
    pub profile: Option<String>,
    /// Bound on a whole call, retries included.
    #[serde(default = "defaults::operation_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub operation_timeout: Duration,
    /// Bound on one HTTP attempt.
    #[serde(default = "defaults::attempt_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub attempt_timeout: Duration,
    /// Attempts per call under the SDK's standard retry mode.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// Regions newer than drctl's list of AWS regions, admitted by name.
    #[serde(default)]
    pub extra_regions: Vec<String>,
    /// The region whose STS endpoint issues assumed-role and web-identity credentials
    /// (default: the standby region). STS is regional: a role assumed through us-east-1
    /// (the global endpoint, `sts.amazonaws.com`) fails with us-east-1, so the recovery path
    /// authenticates in a region it does not depend on (IAM User Guide, "Manage AWS STS in an
    /// AWS Region"; Fault Isolation Boundaries whitepaper, "AWS STS").
    #[serde(default)]
    pub sts_region: Option<String>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            profile: None,
            operation_timeout: defaults::operation_timeout(),
            attempt_timeout: defaults::attempt_timeout(),
            max_attempts: defaults::max_attempts(),
            extra_regions: vec![],
            sts_region: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionResources {
    #[serde(default)]
    pub albs: BTreeMap<String, Alb>,
    #[serde(default)]
    pub asgs: BTreeMap<String, Asg>,
    #[serde(default)]
    pub database: Option<Database>,
    #[serde(default)]
    pub backup_vault: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alb {
    pub arn: String,
    pub dns_name: String,
    #[serde(default)]
    pub target_group_arn: Option<String>,
    /// How drctl reaches this ALB over HTTP (on AWS: `https://<dns_name>`).
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Asg {
    pub name: String,
    #[serde(default)]
    pub launch_template_id: Option<String>,
    /// Desired capacity when this region serves production.
    pub production_size: u32,
    /// Desired capacity while this region is the warm standby (default 1): what a failback
    /// scales the region it leaves back down to.
    #[serde(default = "defaults::warm_size")]
    pub warm_size: u32,
    #[serde(default)]
    pub max_size: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// RDS instance in this region (the writer in the primary, the read replica in the standby).
    pub instance_id: String,
    /// Private hosted zone of this region.
    #[serde(default)]
    pub private_zone_id: Option<String>,
    /// The CNAME the app uses to find its database.
    #[serde(default)]
    pub record_name: Option<String>,
    /// The DB parameter group the instance uses, its own: the `read_only` fence sets
    /// `read_only = 1` in it. Names the group in the IAM policy (else `pg:*`).
    #[serde(default)]
    pub parameter_group: Option<String>,
    /// The KMS key (ARN, id or alias of this region) a replica built here is encrypted with.
    /// A cross-region replica of an encrypted source needs one of its own region
    /// (CreateDBInstanceReadReplica API reference, KmsKeyId).
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// The DB subnet group a replica built here goes in: without one RDS creates it outside
    /// any VPC ("If no DB subnet group is specified, then the new DB instance isn't created
    /// in a VPC", CreateDBInstanceReadReplica API reference, DBSubnetGroupName).
    #[serde(default)]
    pub subnet_group: Option<String>,
    /// The VPC security groups of a replica built here (default: the VPC's default group).
    #[serde(default)]
    pub security_group_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route53Settings {
    pub public_zone_id: String,
    pub record_name: String,
    #[serde(default = "defaults::primary_id")]
    pub primary_set_identifier: String,
    #[serde(default = "defaults::secondary_id")]
    pub secondary_set_identifier: String,
    pub health_check_id: String,
    /// How drctl reaches the public name over HTTP.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The failover gate: what makes the primary's failover record stop answering without
    /// Route 53's control plane (see [`Gate`]). Without one, a failover swaps the records
    /// through the Route 53 API, which is hosted in us-east-1, and `drctl check` warns.
    #[serde(default)]
    pub gate: Option<Gate>,
    /// Name servers (`host` or `host:port`) drctl asks for the public name on the data plane:
    /// the hosted zone's own (`ns-123.awsdns-45.com`), so an answer is Route 53's and not a
    /// resolver's cached one. Empty: the system's resolver.
    #[serde(default)]
    pub name_servers: Vec<String>,
}

/// A failover gate drctl opens and closes from outside us-east-1, on data planes only. The
/// primary's failover record carries a CALCULATED health check over {its ALB's check, the
/// gate's check} with HealthThreshold 2, so it answers only while both are healthy (Route 53
/// Developer Guide, "Monitoring other health checks (calculated health checks)"). Route 53's
/// health checks and DNS answers keep working while its control plane does not ("AWS Fault
/// Isolation Boundaries", Appendix B, Amazon Route 53: "you should not rely on the Route 53
/// control plane in your recovery path"). Exactly one of `routing_control` and `alarm`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// The CALCULATED check on the PRIMARY record.
    pub calculated_health_check_id: String,
    /// The gate's own check (RECOVERY_CONTROL or CLOUDWATCH_METRIC), a child of the calculated.
    pub gate_health_check_id: String,
    #[serde(default)]
    pub routing_control: Option<RoutingControlGate>,
    #[serde(default)]
    pub alarm: Option<AlarmGate>,
}

/// An ARC routing control: On = open. Changed through any of the cluster's regional
/// endpoints, tried in turn (ARC Developer Guide, "Getting and updating routing control states
/// using the ARC API": "If the endpoint is unavailable, you can try connecting to another one
/// of your cluster endpoints").
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingControlGate {
    pub arn: String,
    /// The cluster's endpoints (DescribeCluster's ClusterEndpoints), kept here so that closing
    /// the gate needs no control plane.
    pub cluster_endpoints: Vec<ClusterEndpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterEndpoint {
    pub region: String,
    pub url: String,
}

/// A CloudWatch alarm in a region that is not the primary's, on a metric drctl writes there:
/// 1 open, 0 closed (the alarm is in ALARM below 1). The cheap gate: no cluster to pay for.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmGate {
    pub region: String,
    pub name: String,
    pub namespace: String,
    pub metric: String,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
}

impl Route53Settings {
    /// The health check the primary's failover record carries: the gate's calculated check
    /// when there is a gate (the ALB's check and the gate together), else the ALB's.
    pub fn primary_check(&self) -> &str {
        self.gate
            .as_ref()
            .map_or(&self.health_check_id, |g| &g.calculated_health_check_id)
    }
}

impl Gate {
    /// `routing control` or `alarm`, for messages.
    pub fn kind(&self) -> &'static str {
        if self.routing_control.is_some() {
            "routing control"
        } else {
            "alarm"
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudFrontSettings {
    pub distribution_id: String,
    pub origin_group_id: String,
    /// Origin id per region.
    pub origins: BTreeMap<String, String>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupSettings {
    pub plan_id: String,
    /// The IAM role AWS Backup assumes to copy recovery points between regions
    /// (`${env.backup.iam_role_arn}` in runbooks).
    #[serde(default)]
    pub iam_role_arn: Option<String>,
}

/// Recovery objectives, used by `check`, drills and reports.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default = "defaults::rto", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub rto: Duration,
    #[serde(default = "defaults::rpo", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub rpo: Duration,
    #[serde(default = "defaults::max_ami_age", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub max_ami_age: Duration,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            rto: defaults::rto(),
            rpo: defaults::rpo(),
            max_ami_age: defaults::max_ami_age(),
        }
    }
}

/// Health probes and the watch policy. Interpreted by `drctl probe` and `drctl watch`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSettings {
    /// Time between two probes of one target.
    #[serde(default = "defaults::probe_interval", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// Bound on one probe: connect, TLS, request and body together.
    #[serde(default = "defaults::probe_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Each probe starts up to this much later than its slot, so that many targets (and many
    /// watchers) do not fire in lock-step.
    #[serde(default = "defaults::probe_jitter", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub jitter: Duration,
    /// Consecutive failures that take a target to `down`.
    #[serde(default = "defaults::failure_threshold")]
    pub failure_threshold: u32,
    /// Consecutive successes that take a `down` target back to `healthy`.
    #[serde(default = "defaults::recovery_threshold")]
    pub recovery_threshold: u32,
    /// Most probes in flight at once (bounds sockets and memory when many targets hang).
    #[serde(default = "defaults::max_in_flight")]
    pub max_in_flight: usize,
    #[serde(default)]
    pub targets: Vec<ProbeTarget>,
    /// What `drctl watch` decides, and does, when the primary is down.
    #[serde(default)]
    pub watch: WatchPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeTarget {
    pub name: String,
    pub region: String,
    /// Overrides of the settings above, for this target only.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    #[serde(default)]
    pub recovery_threshold: Option<u32>,
    #[serde(default)]
    pub http: Option<HttpProbe>,
    #[serde(default)]
    pub tcp: Option<TcpProbe>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    /// `http://` or `https://` URL to GET.
    pub url: String,
    /// Host header (and the name the app is served under), when the URL names the ALB.
    #[serde(default)]
    pub host: Option<String>,
    /// TLS server name to send and verify, when it differs from the URL's host (an ALB's DNS
    /// name probed for the app's certificate). The connection still goes to the URL's host.
    #[serde(default)]
    pub sni: Option<String>,
    /// Connect to this `ip:port` instead of resolving the URL's host (curl's `--resolve`).
    #[serde(default)]
    pub resolve: Option<String>,
    /// Inclusive status range such as `200-299`, or one code.
    #[serde(default = "defaults::status_range")]
    pub expect_status: String,
    /// The first 64 KiB of the body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpProbe {
    /// `host:port` to connect to.
    pub address: String,
}

/// The decision policy of `drctl watch`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchPolicy {
    /// How long the primary must stay `down` before drctl acts on it.
    #[serde(default = "defaults::confirm_for", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub confirm_for: Duration,
    /// `notify` (the default) tells people; `failover` also runs `runbook`.
    #[serde(default)]
    pub action: WatchAction,
    /// The failover runbook, relative to the environment file. Required for `failover`.
    #[serde(default)]
    pub runbook: Option<String>,
    /// Also require Route 53's health check of the primary to report unhealthy.
    #[serde(default)]
    pub require_route53: bool,
    /// After acting, no further action for this long (and never until the primary recovered).
    #[serde(default = "defaults::cooldown", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub cooldown: Duration,
    /// Probe targets that stand for the primary (default: every target in the primary region).
    /// The primary is down when all of them are down.
    #[serde(default)]
    pub primary: Vec<String>,
    /// Probe targets that stand for the standby (default: every target in the standby region).
    /// All of them must be healthy before drctl acts.
    #[serde(default)]
    pub standby: Vec<String>,
    /// Where decisions are sent.
    #[serde(default)]
    pub notifications: Vec<Notification>,
    /// Bound on one webhook post.
    #[serde(default = "defaults::notify_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub notify_timeout: Duration,
    /// Posts per message before giving up (with backoff between them).
    #[serde(default = "defaults::notify_attempts")]
    pub notify_attempts: u32,
    /// With shared state (`state: backend: dynamodb`): how many live watchers must have seen
    /// the primary down for `confirm_for` before any of them acts. Default: a majority of the
    /// live watchers (docs/shared-state.md).
    #[serde(default)]
    pub quorum: Option<u32>,
    /// With shared state: how often each watcher publishes its view and heartbeat.
    #[serde(default = "defaults::heartbeat", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub heartbeat: Duration,
    /// With shared state: a watcher whose heartbeat has not moved for this long (by the
    /// reader's own clock) is not live and does not count.
    #[serde(default = "defaults::peer_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub peer_timeout: Duration,
}

impl Default for WatchPolicy {
    fn default() -> Self {
        Self {
            confirm_for: defaults::confirm_for(),
            action: WatchAction::default(),
            runbook: None,
            require_route53: false,
            cooldown: defaults::cooldown(),
            primary: Vec::new(),
            standby: Vec::new(),
            notifications: Vec::new(),
            notify_timeout: defaults::notify_timeout(),
            notify_attempts: defaults::notify_attempts(),
            quorum: None,
            heartbeat: defaults::heartbeat(),
            peer_timeout: defaults::peer_timeout(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WatchAction {
    /// Tell people; change nothing.
    #[default]
    Notify,
    /// Tell people and run the failover runbook (once, under the environment's lease).
    Failover,
}

pub use super::notify::Notification;

/// Which side of the pair a step acts on. Runbooks are written in roles so one failover
/// runbook serves any environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Standby,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        })
    }
}

impl Environment {
    pub fn region_of(&self, role: Role) -> &str {
        match role {
            Role::Primary => &self.primary_region,
            Role::Standby => &self.standby_region,
        }
    }

    /// Resources of the region playing `role`. Validation guarantees both exist.
    pub fn resources(&self, role: Role) -> &RegionResources {
        static EMPTY: std::sync::OnceLock<RegionResources> = std::sync::OnceLock::new();
        self.regions
            .get(self.region_of(role))
            .unwrap_or_else(|| EMPTY.get_or_init(RegionResources::default))
    }
}

mod defaults {
    use std::time::Duration;
    pub fn operation_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn attempt_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn max_attempts() -> u32 {
        3
    }
    pub fn primary_id() -> String {
        "primary".into()
    }
    pub fn secondary_id() -> String {
        "secondary".into()
    }
    pub fn warm_size() -> u32 {
        1
    }
    pub fn rto() -> Duration {
        Duration::from_secs(15 * 60)
    }
    pub fn rpo() -> Duration {
        Duration::from_secs(5 * 60)
    }
    pub fn max_ami_age() -> Duration {
        Duration::from_secs(7 * 24 * 3600)
    }
    pub fn probe_interval() -> Duration {
        Duration::from_secs(1)
    }
    pub fn probe_timeout() -> Duration {
        Duration::from_millis(800)
    }
    pub fn failure_threshold() -> u32 {
        3
    }
    pub fn recovery_threshold() -> u32 {
        2
    }
    pub fn probe_jitter() -> Duration {
        Duration::from_millis(100)
    }
    pub fn max_in_flight() -> usize {
        4096
    }
    pub fn confirm_for() -> Duration {
        Duration::from_secs(2)
    }
    pub fn cooldown() -> Duration {
        Duration::from_secs(3600)
    }
    pub fn heartbeat() -> Duration {
        Duration::from_secs(1)
    }
    pub fn peer_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn notify_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn notify_attempts() -> u32 {
        3
    }
    pub fn status_range() -> String {
        "200-299".into()
    }
}
