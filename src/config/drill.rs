//! The `drill:` section of the environment file: what game-day drills build in the standby
//! region (docs/drills.md), and when they run (`schedules`, see [`super::schedule`]).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schedule::DrillSchedule;

/// Game-day drills: `drctl drill --mode readiness|isolated|full`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillSettings {
    /// The load balancer an isolated drill serves its copy of the app from: an ALB in the
    /// standby region with no listeners of its own (drctl adds one for the drill and removes
    /// it). Required for `--mode isolated`.
    #[serde(default)]
    pub load_balancer: Option<DrillLoadBalancer>,
    /// Instances an isolated drill launches from the newest copied AMI.
    #[serde(default = "defaults::instances")]
    pub instances: u32,
    /// The port of the listener the drill adds to its load balancer.
    #[serde(default = "defaults::listener_port")]
    pub listener_port: u16,
    /// The instance class of the restored drill database (default: the replica's).
    #[serde(default)]
    pub db_instance_class: Option<String>,
    /// Full drills: how long the standby serves production before reprotect and failback.
    #[serde(default = "defaults::hold", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub hold: Duration,
    /// Bound on the whole isolated drill before it tears down (restore, launch, serve).
    #[serde(default = "defaults::timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Drills that run on a calendar under `drctl agent`.
    #[serde(default)]
    pub schedules: Vec<DrillSchedule>,
}

impl Default for DrillSettings {
    fn default() -> Self {
        Self {
            load_balancer: None,
            instances: defaults::instances(),
            listener_port: defaults::listener_port(),
            db_instance_class: None,
            hold: defaults::hold(),
            timeout: defaults::timeout(),
            schedules: Vec::new(),
        }
    }
}

/// The drill's load balancer in the standby region.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillLoadBalancer {
    pub arn: String,
    /// How drctl reaches it (on AWS: `http://<dns_name>:<listener_port>`, from inside the VPC).
    pub url: String,
}

mod defaults {
    use std::time::Duration;
    pub fn instances() -> u32 {
        1
    }
    pub fn listener_port() -> u16 {
        8080
    }
    pub fn hold() -> Duration {
        Duration::from_secs(600)
    }
    pub fn timeout() -> Duration {
        Duration::from_secs(45 * 60)
    }
}
