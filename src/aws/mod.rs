//! Per-service adapters over the AWS SDK: narrow, typed, bounded by timeouts, with errors that
//! name service, operation, region and request id. Steps talk to these, never to the SDK.
//!
//! One [`Aws`] per run holds the settings and, lazily, one SDK client per service per region.
//! Credentials come from aws-config's default chain (environment, profiles, SSO, IMDS), loaded
//! once and shared by every client, so a run resolves credentials once and not per region.

// AwsError is large (it names service, operation, region, request id, code, message) but only
// ever travels on the cold error path; boxing it would only add noise to every adapter.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;

pub mod health_check;

use crate::config::env::AwsSettings;
use crate::steps::StepError;

pub mod autoscaling;
pub mod backup;
pub mod cloudfront;
pub mod cloudwatch;
pub mod ec2;
pub mod elbv2;
pub mod rds;
pub mod route53;

/// Route 53 and CloudFront are global services whose control plane lives in us-east-1.
pub const GLOBAL_REGION: &str = "us-east-1";

/// What kind of failure an AWS call ended in: decides whether a step may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The call (or every attempt) ran out of time: the region may be down.
    Timeout,
    /// The service asked us to slow down, after the SDK's own retries.
    Throttled,
    /// The resource does not exist.
    NotFound,
    /// The resource is in a state that forbids the call now, or a concurrent change won
    /// (PreconditionFailed, InvalidDBInstanceState, PriorRequestNotComplete).
    Conflict,
    /// The service could not be reached or answered 5xx.
    Unavailable,
    Other,
}

/// An AWS call that failed, naming everything an operator needs to look it up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} {operation} in {region} failed: {message}{}{}", code.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default(), request_id.as_ref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    pub region: String,
    pub request_id: Option<String>,
    pub code: Option<String>,
    pub message: String,
    pub kind: ErrorKind,
}

impl AwsError {
    /// An error found by drctl itself (a missing field in an answer, a resource not found).
    pub fn local(
        service: &'static str,
        operation: &'static str,
        region: &str,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            service,
            operation,
            region: region.to_string(),
            request_id: None,
            code: None,
            message: message.into(),
            kind,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Timeout
                | ErrorKind::Throttled
                | ErrorKind::Unavailable
                | ErrorKind::Conflict
        )
    }

    /// Whether the region looks unreachable (as opposed to answering "no").
    pub fn is_unreachable(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout | ErrorKind::Unavailable)
    }

    pub(crate) fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        region: &str,
        e: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let request_id = e.request_id().map(String::from);
        let (kind, code, message) = match &e {
            SdkError::TimeoutError(_) => (
                ErrorKind::Timeout,
                None,
                "timed out (operation or attempt timeout reached)".to_string(),
            ),
            SdkError::DispatchFailure(d) => {
                let kind = if d.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Unavailable
                };
                (
                    kind,
                    None,
                    format!("request not delivered: {}", source_chain(&e)),
                )
            }
            SdkError::ResponseError(_) => (
                ErrorKind::Unavailable,
                None,
                format!("unreadable response: {}", source_chain(&e)),
            ),
            SdkError::ServiceError(se) => {
                let err = se.err();
                let code = err.code().map(String::from);
                let status = se.raw().status().as_u16();
                let msg = err
                    .message()
                    .map(String::from)
                    .unwrap_or_else(|| source_chain(&e));
                (classify(code.as_deref(), status), code, msg)
            }
            _ => (ErrorKind::Other, None, source_chain(&e)),
        };
        Self {
            service,
            operation,
            region: region.to_string(),
            request_id,
            code,
            message,
            kind,
        }
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Map an AWS error code (and HTTP status) to a kind.
pub fn classify(code: Option<&str>, status: u16) -> ErrorKind {
    let c = code.unwrap_or("");
    if matches!(
        c,
        "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "ThrottledException"
            | "SlowDown"
    ) || status == 429
    {
        return ErrorKind::Throttled;
    }
    if c.contains("NotFound") || c.starts_with("NoSuch") || c == "ResourceNotFoundException" {
        return ErrorKind::NotFound;
    }
    if matches!(
        c,
        "PreconditionFailed"
            | "PriorRequestNotComplete"
            | "ConcurrentModification"
            | "InvalidDBInstanceState"
            | "InvalidDBInstanceStateFault"
            | "ScalingActivityInProgress"
            | "ResourceInUse"
    ) || status == 409
        || status == 412
    {
        return ErrorKind::Conflict;
    }
    if status >= 500 {
        return ErrorKind::Unavailable;
    }
    ErrorKind::Other
}

impl From<AwsError> for StepError {
    fn from(e: AwsError) -> Self {
        if e.is_retryable() {
            StepError::Retryable(e.to_string())
        } else {
            StepError::Permanent(e.to_string())
        }
    }
}

pub type AwsResult<T> = Result<T, AwsError>;

/// A cached SDK client of some service (downcast by [`Aws::client`]).
type AnyClient = Box<dyn std::any::Any + Send + Sync>;

/// Shared AWS access for one run: settings now, lazily built clients per service and region.
#[derive(Debug, Default)]
pub struct Aws {
    pub settings: AwsSettings,
    base: tokio::sync::OnceCell<SdkConfig>,
    clients: Mutex<HashMap<(&'static str, String), AnyClient>>,
}

impl Aws {
    pub fn new(settings: AwsSettings) -> Self {
        Self {
            settings,
            base: tokio::sync::OnceCell::new(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The shared configuration: credentials chain, profile, endpoint, timeouts, retries.
    async fn base(&self) -> &SdkConfig {
        self.base
            .get_or_init(|| async {
                let s = &self.settings;
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(GLOBAL_REGION))
                    .timeout_config(
                        TimeoutConfig::builder()
                            .operation_timeout(s.operation_timeout)
                            .operation_attempt_timeout(s.attempt_timeout)
                            .connect_timeout(
                                s.attempt_timeout.min(std::time::Duration::from_secs(5)),
                            )
                            .build(),
                    )
                    .retry_config(RetryConfig::standard().with_max_attempts(s.max_attempts.max(1)));
                if let Some(p) = &s.profile {
                    loader = loader.profile_name(p);
                }
                if let Some(e) = &s.endpoint_url {
                    loader = loader.endpoint_url(e);
                }
                loader.load().await
            })
            .await
    }

    /// One client per service per region, built on first use and kept for the run.
    async fn client<C: Clone + Send + Sync + 'static>(
        &self,
        service: &'static str,
        region: &str,
        build: impl FnOnce(&SdkConfig, Region) -> C,
    ) -> C {
        let key = (service, region.to_string());
        if let Some(c) = self
            .clients
            .lock()
            .expect("clients lock")
            .get(&key)
            .and_then(|b| b.downcast_ref::<C>())
        {
            return c.clone();
        }
        let base = self.base().await;
        let c = build(base, Region::new(region.to_string()));
        self.clients
            .lock()
            .expect("clients lock")
            .entry(key)
            .or_insert_with(|| Box::new(c.clone()));
        c
    }

    pub async fn rds(&self, region: &str) -> rds::Rds {
        let c = self
            .client("rds", region, |b, r| {
                aws_sdk_rds::Client::from_conf(
                    aws_sdk_rds::config::Builder::from(b).region(r).build(),
                )
            })
            .await;
        rds::Rds {
            c,
            region: region.to_string(),
        }
    }

    pub async fn cloudwatch(&self, region: &str) -> cloudwatch::CloudWatch {
        let c = self
            .client("cloudwatch", region, |b, r| {
                aws_sdk_cloudwatch::Client::from_conf(
                    aws_sdk_cloudwatch::config::Builder::from(b)
                        .region(r)
                        .build(),
                )
            })
            .await;
        let creds = self.base().await.credentials_provider();
        cloudwatch::CloudWatch {
            c,
            region: region.to_string(),
            creds,
            settings: self.settings.clone(),
        }
    }

    pub async fn route53(&self) -> route53::Route53 {
        let c = self
            .client("route53", GLOBAL_REGION, |b, r| {
                aws_sdk_route53::Client::from_conf(
                    aws_sdk_route53::config::Builder::from(b).region(r).build(),
                )
            })
            .await;
        route53::Route53 { c }
    }

    pub async fn cloudfront(&self) -> cloudfront::CloudFront {
        let c = self
            .client("cloudfront", GLOBAL_REGION, |b, r| {
                aws_sdk_cloudfront::Client::from_conf(
                    aws_sdk_cloudfront::config::Builder::from(b)
                        .region(r)
                        .build(),
                )
            })
            .await;
        cloudfront::CloudFront { c }
    }

    pub async fn backup(&self, region: &str) -> backup::Backup {
        let c = self
            .client("backup", region, |b, r| {
                aws_sdk_backup::Client::from_conf(
                    aws_sdk_backup::config::Builder::from(b).region(r).build(),
                )
            })
            .await;
        backup::Backup {
            c,
            region: region.to_string(),
        }
    }

    pub async fn ec2(&self, region: &str) -> ec2::Ec2 {
        let c = self
            .client("ec2", region, |b, r| {
                aws_sdk_ec2::Client::from_conf(
                    aws_sdk_ec2::config::Builder::from(b).region(r).build(),
                )
            })
            .await;
        ec2::Ec2 {
            c,
            region: region.to_string(),
        }
    }

    pub async fn autoscaling(&self, region: &str) -> autoscaling::AutoScaling {
        let c = self
            .client("autoscaling", region, |b, r| {
                aws_sdk_autoscaling::Client::from_conf(
                    aws_sdk_autoscaling::config::Builder::from(b)
                        .region(r)
                        .build(),
                )
            })
            .await;
        autoscaling::AutoScaling {
            c,
            region: region.to_string(),
        }
    }

    pub async fn elbv2(&self, region: &str) -> elbv2::Elbv2 {
        let c = self
            .client("elbv2", region, |b, r| {
                aws_sdk_elasticloadbalancingv2::Client::from_conf(
                    aws_sdk_elasticloadbalancingv2::config::Builder::from(b)
                        .region(r)
                        .build(),
                )
            })
            .await;
        elbv2::Elbv2 {
            c,
            region: region.to_string(),
        }
    }
}

/// `map_err` helper for adapters: `.map_err(err!("rds", "PromoteReadReplica", region))`.
macro_rules! sdk_err {
    ($svc:literal, $op:literal, $region:expr) => {
        |e| $crate::aws::AwsError::from_sdk($svc, $op, &$region, e)
    };
}
pub(crate) use sdk_err;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes() {
        assert_eq!(classify(Some("Throttling"), 400), ErrorKind::Throttled);
        assert_eq!(
            classify(Some("RequestLimitExceeded"), 503),
            ErrorKind::Throttled
        );
        assert_eq!(
            classify(Some("DBInstanceNotFound"), 404),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify(Some("NoSuchHealthCheck"), 404),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify(Some("PreconditionFailed"), 412),
            ErrorKind::Conflict
        );
        assert_eq!(
            classify(Some("ServiceUnavailable"), 503),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Some("InvalidParameterValue"), 400),
            ErrorKind::Other
        );
        let e = AwsError::local(
            "rds",
            "DescribeDBInstances",
            "us-west-2",
            ErrorKind::Throttled,
            "slow down",
        );
        assert!(StepError::from(e.clone()).is_retryable());
        assert!(e
            .to_string()
            .contains("rds DescribeDBInstances in us-west-2"));
    }
}
