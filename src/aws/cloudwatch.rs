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

/// CloudWatch: replica lag.
#[async_trait]
pub trait CloudWatchApi: Send + Sync {
    /// The newest `AWS/RDS ReplicaLag` datapoint (seconds) of a replica within `window`, if
    /// any. Maximum per minute: the conservative reading when deciding whether promotion
    /// loses data.
    async fn replica_lag(&self, instance_id: &str, window: Duration) -> AwsResult<Option<f64>>;
}

#[derive(Debug, Clone)]
pub struct SdkCloudWatch {
    pub(crate) c: aws_sdk_cloudwatch::Client,
    pub region: String,
}

#[async_trait]
impl CloudWatchApi for SdkCloudWatch {
    async fn replica_lag(&self, instance_id: &str, window: Duration) -> AwsResult<Option<f64>> {
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
            .send()
            .await
            .map_err(sdk_err!("cloudwatch", "GetMetricStatistics", self.region))?;
        let newest = out
            .datapoints()
            .iter()
            .filter(|d| d.maximum().is_some())
            .max_by_key(|d| {
                d.timestamp()
                    .map(|t| (t.secs(), t.subsec_nanos()))
                    .unwrap_or((0, 0))
            });
        Ok(newest.and_then(|d| d.maximum()))
    }
}
