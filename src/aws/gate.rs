//! The failover gate's data plane: an ARC routing control set through its cluster's regional
//! endpoints, or a CloudWatch metric drctl writes in a region other than the primary's. Either
//! drives a Route 53 health check, and so the primary's failover record, with no call to
//! Route 53's control plane (us-east-1). See `config::env::Gate`.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StateValue};
use aws_sdk_route53recoverycluster::types::RoutingControlState;

use super::{sdk_err, AwsError, AwsResult};
use crate::config::env::{AlarmGate, RoutingControlGate};

/// Where a gate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateState {
    /// The primary's record may answer (when its ALB is healthy too).
    Open,
    /// The primary's record does not answer: production is held on the standby.
    Closed,
    /// Not known (an alarm with no data keeps Route 53's last known status).
    Unknown,
}

impl fmt::Display for GateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateState::Open => "open",
            GateState::Closed => "closed",
            GateState::Unknown => "unknown",
        })
    }
}

/// What a read of the gate found: its state and, in words, what said so.
#[derive(Debug, Clone, PartialEq)]
pub struct GateReading {
    pub state: GateState,
    pub detail: String,
    /// When the state was last evaluated, for a state that is a last known status (an alarm
    /// with no data: Route 53 keeps what its last evaluation said). `None`: the state is what
    /// the data plane evaluates now.
    pub last_known_since: Option<chrono::DateTime<chrono::Utc>>,
}

#[async_trait]
pub trait GateApi: Send + Sync {
    /// The gate as its data plane says now.
    async fn read(&self) -> AwsResult<GateReading>;
    /// Open or close it. Returns where it was set (`us-west-2 cluster endpoint`).
    async fn set(&self, state: GateState) -> AwsResult<String>;
}

/// An ARC routing control, through one SDK client per cluster endpoint (its URL and region).
pub struct SdkRoutingControl {
    pub arn: String,
    /// (region, client) per cluster endpoint, in the order to try them.
    pub endpoints: Vec<(String, aws_sdk_route53recoverycluster::Client)>,
}

impl SdkRoutingControl {
    /// The endpoints to try: those outside `avoid` (the primary region) first, in the
    /// configured order; `avoid`'s last, as it is the likeliest to be dark.
    pub fn order(gate: &RoutingControlGate, avoid: &str) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = gate
            .cluster_endpoints
            .iter()
            .map(|e| (e.region.clone(), e.url.clone()))
            .collect();
        v.sort_by_key(|(r, _)| r == avoid);
        v
    }
}

#[async_trait]
impl GateApi for SdkRoutingControl {
    async fn read(&self) -> AwsResult<GateReading> {
        let mut last = None;
        for (region, c) in &self.endpoints {
            match c
                .get_routing_control_state()
                .routing_control_arn(&self.arn)
                .send()
                .await
                .map_err(sdk_err!(
                    "route53-recovery-cluster",
                    "GetRoutingControlState",
                    region
                )) {
                Ok(out) => {
                    let state = match out.routing_control_state() {
                        RoutingControlState::On => GateState::Open,
                        RoutingControlState::Off => GateState::Closed,
                        _ => GateState::Unknown,
                    };
                    return Ok(GateReading {
                        last_known_since: None,
                        state,
                        detail: format!(
                            "routing control {} is {} ({region} cluster endpoint)",
                            out.routing_control_name().unwrap_or(&self.arn),
                            out.routing_control_state().as_str()
                        ),
                    });
                }
                // Another endpoint may answer; credentials or permissions will not differ.
                Err(e) if e.is_retryable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| no_endpoint(&self.arn)))
    }

    async fn set(&self, state: GateState) -> AwsResult<String> {
        let want = match state {
            GateState::Open => RoutingControlState::On,
            _ => RoutingControlState::Off,
        };
        let mut last = None;
        for (region, c) in &self.endpoints {
            match c
                .update_routing_control_state()
                .routing_control_arn(&self.arn)
                .routing_control_state(want.clone())
                .send()
                .await
                .map_err(sdk_err!(
                    "route53-recovery-cluster",
                    "UpdateRoutingControlState",
                    region
                )) {
                Ok(_) => return Ok(format!("{region} cluster endpoint")),
                Err(e) if e.is_retryable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| no_endpoint(&self.arn)))
    }
}

fn no_endpoint(arn: &str) -> AwsError {
    AwsError::local(
        "route53-recovery-cluster",
        "UpdateRoutingControlState",
        "-",
        super::ErrorKind::Other,
        format!("routing control {arn} has no cluster endpoints in drctl.yaml"),
    )
}

/// A CloudWatch alarm on a metric drctl writes in the alarm's region: 1 open, 0 closed.
pub struct SdkAlarmGate {
    pub gate: AlarmGate,
    pub c: aws_sdk_cloudwatch::Client,
}

impl SdkAlarmGate {
    /// The values written to the gate's metric in the last day, oldest first: each minute's
    /// Minimum (a 0 anywhere in the minute closed the gate), and the minute.
    async fn written(&self) -> AwsResult<Vec<(chrono::DateTime<chrono::Utc>, f64)>> {
        use aws_sdk_cloudwatch::types::Statistic;
        let g = &self.gate;
        let now = std::time::SystemTime::now();
        let out = self
            .c
            .get_metric_statistics()
            .namespace(&g.namespace)
            .metric_name(&g.metric)
            .set_dimensions(Some(
                g.dimensions
                    .iter()
                    .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                    .collect(),
            ))
            .start_time(aws_smithy_types::DateTime::from(
                now - std::time::Duration::from_secs(24 * 3600),
            ))
            .end_time(aws_smithy_types::DateTime::from(
                now + std::time::Duration::from_secs(60),
            ))
            .period(60)
            .statistics(Statistic::Minimum)
            .send()
            .await
            .map_err(sdk_err!("cloudwatch", "GetMetricStatistics", g.region))?;
        let mut points: Vec<_> = out
            .datapoints()
            .iter()
            .filter_map(|d| {
                let t = d.timestamp()?;
                Some((
                    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())?,
                    d.minimum()?,
                ))
            })
            .collect();
        points.sort_by_key(|(at, _)| *at);
        Ok(points)
    }
}

#[async_trait]
impl GateApi for SdkAlarmGate {
    async fn read(&self) -> AwsResult<GateReading> {
        let g = &self.gate;
        let out = self
            .c
            .describe_alarms()
            .alarm_names(&g.name)
            .send()
            .await
            .map_err(sdk_err!("cloudwatch", "DescribeAlarms", g.region))?;
        let Some(alarm) = out.metric_alarms().first() else {
            return Err(AwsError::local(
                "cloudwatch",
                "DescribeAlarms",
                &g.region,
                super::ErrorKind::NotFound,
                format!("the gate's alarm {} does not exist", g.name),
            ));
        };
        let value = alarm.state_value();
        // The alarm is in ALARM when the metric is below 1: the gate is closed.
        let state = match value {
            Some(StateValue::Alarm) => GateState::Closed,
            Some(StateValue::Ok) => GateState::Open,
            _ => GateState::Unknown,
        };
        let detail = format!(
            "alarm {} is {} ({})",
            g.name,
            value.map(|v| v.as_str()).unwrap_or("?"),
            g.region
        );
        if state != GateState::Unknown {
            return Ok(GateReading {
                state,
                detail,
                last_known_since: None,
            });
        }
        // No data (drctl writes only when it changes the gate; missing data is `missing`):
        // Route 53 keeps the check's last known status (HealthCheckConfig
        // InsufficientDataHealthStatus LastKnownStatus): what the data the alarm evaluated
        // before it went INSUFFICIENT_DATA made it. A value written after that has not been
        // evaluated yet: Route 53 acts on it only after the alarm's next evaluation, so it
        // does not move the gate until then (a close is not claimed before it holds).
        let since = alarm
            .state_updated_timestamp()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
        let points = self.written().await?;
        let evaluated = points
            .iter()
            .rev()
            .find(|(at, _)| since.is_none_or(|u| *at <= u));
        let pending = points
            .last()
            .filter(|(at, _)| since.is_some_and(|u| *at > u));
        let shown = |v: f64| {
            if v < 1.0 {
                GateState::Closed
            } else {
                GateState::Open
            }
        };
        let mut detail = match evaluated {
            Some((at, v)) => format!(
                "{detail}: no data since {}, Route 53 keeps its last known status ({}/{} = {v} then)",
                at.format("%H:%M UTC"),
                g.namespace,
                g.metric
            ),
            None => detail,
        };
        if let Some((at, v)) = pending {
            detail.push_str(&format!(
                "; {v} written at {} is not evaluated yet (Route 53 acts on it after the alarm's next evaluation)",
                at.format("%H:%M UTC")
            ));
        }
        Ok(GateReading {
            state: evaluated.map_or(GateState::Unknown, |(_, v)| shown(*v)),
            detail,
            last_known_since: since,
        })
    }

    async fn set(&self, state: GateState) -> AwsResult<String> {
        let g = &self.gate;
        let value = if state == GateState::Open { 1.0 } else { 0.0 };
        let datum = MetricDatum::builder()
            .metric_name(&g.metric)
            .set_dimensions(Some(
                g.dimensions
                    .iter()
                    .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                    .collect(),
            ))
            .value(value)
            .build();
        self.c
            .put_metric_data()
            .namespace(&g.namespace)
            .metric_data(datum)
            .send()
            .await
            .map_err(sdk_err!("cloudwatch", "PutMetricData", g.region))?;
        Ok(format!(
            "{}/{} = {value} in {}",
            g.namespace, g.metric, g.region
        ))
    }
}

/// Where no gate can be reached (the in-process fakes unless a test gives one).
pub struct Unsupported;

#[async_trait]
impl GateApi for Unsupported {
    async fn read(&self) -> AwsResult<GateReading> {
        Err(unsupported("read"))
    }
    async fn set(&self, _state: GateState) -> AwsResult<String> {
        Err(unsupported("set"))
    }
}

fn unsupported(op: &'static str) -> AwsError {
    AwsError::local(
        "gate",
        op,
        "-",
        super::ErrorKind::Other,
        "no failover gate here",
    )
}
