//! CloudWatch: the one metric drctl reads, RDS ReplicaLag.
//!
//! The SDK speaks CloudWatch's newest wire protocol (Smithy RPCv2 CBOR), which AWS and the
//! sandbox both answer. (An earlier hand-signed Query-protocol fallback for endpoints that only
//! spoke XML was removed once the sandbox learned CBOR: nothing drctl talks to needs it.)

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_smithy_types::DateTime;

use super::{sdk_err, AwsResult};

/// What `AWS/RDS ReplicaLag` says about a replica. RDS publishes it once a minute, and -1 when
/// replication is not active (RDS User Guide, "Monitoring read replication": "If the
/// ReplicaLag metric returns -1, then replication is currently not active"). A per-minute
/// Maximum hides a -1 whenever the minute also held a 0 or more, so each minute is read with
/// its Minimum too: a minute whose Minimum is below 0 had replication stopped in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    /// The newest datapoint's minute.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Its lag in seconds (the minute's maximum), when replication ran all of that minute;
    /// `None`: it was not active (-1) in it.
    pub seconds: Option<f64>,
    /// The newest minute in which replication ran at least part of the time, and its lag (the
    /// minute's maximum, so the larger of what was measured): the last known lag when
    /// replication has stopped since. A minute that held both a lag and a -1 counts: the lag
    /// was measured in it, and a minute is all the resolution RDS publishes.
    pub last_known: Option<(chrono::DateTime<chrono::Utc>, f64)>,
}

impl Lag {
    /// Replication is not active in the newest minute.
    pub fn stopped(&self) -> bool {
        self.seconds.is_none()
    }

    /// The lag as said to people: `3s`, or `replication not active (-1) since HH:MM:SS`.
    pub fn describe(&self) -> String {
        match self.seconds {
            Some(l) => format!("lag {l:.0}s"),
            None => format!(
                "replication not active (ReplicaLag -1 at {})",
                self.at.format("%H:%M:%S UTC")
            ),
        }
    }

    /// A datapoint of one minute, built from its maximum and minimum (tests, fakes).
    pub fn from_point(at: chrono::DateTime<chrono::Utc>, max: f64, min: f64) -> Lag {
        let seconds = (min >= 0.0).then_some(max);
        Lag {
            at,
            seconds,
            last_known: (max >= 0.0).then_some((at, max)),
        }
    }
}

/// CloudWatch: replica lag.
#[async_trait]
pub trait CloudWatchApi: Send + Sync {
    /// The newest `AWS/RDS ReplicaLag` reading of a replica within `window`, if any.
    async fn replica_lag(&self, instance_id: &str, window: Duration) -> AwsResult<Option<Lag>>;
}

#[derive(Debug, Clone)]
pub struct SdkCloudWatch {
    pub(crate) c: aws_sdk_cloudwatch::Client,
    pub region: String,
}

#[async_trait]
impl CloudWatchApi for SdkCloudWatch {
    async fn replica_lag(&self, instance_id: &str, window: Duration) -> AwsResult<Option<Lag>> {
        let now = SystemTime::now();
        let out = self
            .c
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name("ReplicaLag")
            .dimensions(
                Dimension::builder()
                    .name("DBInstanceIdentifier")
                    .value(instance_id)
                    .build(),
            )
            .start_time(DateTime::from(now - window))
            .end_time(DateTime::from(now + Duration::from_secs(60)))
            .period(60)
            .statistics(Statistic::Maximum)
            .statistics(Statistic::Minimum)
            .send()
            .await
            .map_err(sdk_err!("cloudwatch", "GetMetricStatistics", self.region))?;
        let mut points: Vec<(chrono::DateTime<chrono::Utc>, f64, f64)> = out
            .datapoints()
            .iter()
            .filter_map(|d| {
                let t = d.timestamp()?;
                let at = chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())?;
                let max = d.maximum()?;
                Some((at, max, d.minimum().unwrap_or(max)))
            })
            .collect();
        points.sort_by_key(|p| p.0);
        Ok(fold_points(&points))
    }
}

/// The reading from a replica's datapoints, oldest first: (minute, maximum, minimum).
pub fn fold_points(points: &[(chrono::DateTime<chrono::Utc>, f64, f64)]) -> Option<Lag> {
    let &(at, max, min) = points.last()?;
    let mut lag = Lag::from_point(at, max, min);
    lag.last_known = points
        .iter()
        .rev()
        .find(|(_, max, _)| *max >= 0.0)
        .map(|&(at, max, _)| (at, max));
    Some(lag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_with_a_minus_one_is_replication_stopped_whatever_its_maximum() {
        let t = |m: i64| chrono::DateTime::from_timestamp(1_800_000_000 + m * 60, 0).unwrap();
        // Running, then a minute that held both 0 and -1 (Maximum alone says 0), then -1.
        let lag = fold_points(&[(t(0), 4.0, 2.0), (t(1), 0.0, -1.0), (t(2), -1.0, -1.0)]).unwrap();
        assert!(lag.stopped());
        assert_eq!(lag.seconds, None);
        assert_eq!(
            lag.last_known,
            Some((t(1), 0.0)),
            "the minute that measured 0"
        );
        assert!(lag.describe().contains("not active"));
        let lag = fold_points(&[(t(0), 4.0, 2.0), (t(1), 0.0, -1.0)]).unwrap();
        assert!(lag.stopped(), "a 0 beside a -1 is not caught up");
        let lag = fold_points(&[(t(0), 4.0, 2.0), (t(1), -1.0, -1.0)]).unwrap();
        assert_eq!(lag.last_known, Some((t(0), 4.0)));
        let lag = fold_points(&[(t(1), -1.0, -1.0)]).unwrap();
        assert_eq!(lag.last_known, None, "nothing measured");
        let lag = fold_points(&[(t(0), 3.0, 0.0)]).unwrap();
        assert_eq!(lag.seconds, Some(3.0));
        assert_eq!(fold_points(&[]), None);
    }
}
