//! The one door to AWS: a small trait per service ([`rds::RdsApi`], [`route53::Route53Api`],
//! ...) with only the calls drctl makes, in drctl's own types, and errors that name service,
//! operation, region and request id, classified so a step knows whether to try again.
//!
//! [`Aws`] hands out those per-service handles. Two implementations: [`Sdk`] (the official AWS
//! SDK for Rust, one loader, timeouts on every call) and [`fake::FakeAws`] (in memory, with
//! failure injection, for unit tests of step logic and rollback). Steps talk to the traits,
//! never to the SDK.

// AwsError is large (it names service, operation, region, request id, code, message) but only
// ever travels on the cold error path; boxing it would only add noise to every adapter.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use async_trait::async_trait;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;

pub mod autoscaling;
pub mod backup;
pub mod cloudfront;
pub mod cloudwatch;
pub mod dns;
pub mod drill;
pub mod ec2;
pub mod elbv2;
pub mod fake;
pub mod gate;
pub mod leftovers;
pub mod rds;
pub mod route53;
mod sdk;

pub use sdk::{state_client, Sdk};

/// Per-service handles, one per region where the service is regional. Cheap to call: the SDK
/// implementation builds each client once and keeps it.
#[async_trait]
pub trait Aws: Send + Sync {
    async fn rds(&self, region: &str) -> Arc<dyn rds::RdsApi>;
    async fn cloudwatch(&self, region: &str) -> Arc<dyn cloudwatch::CloudWatchApi>;
    /// Route 53 is global; its control plane lives in us-east-1.
    async fn route53(&self) -> Arc<dyn route53::Route53Api>;
    /// CloudFront is global; its control plane lives in us-east-1.
    async fn cloudfront(&self) -> Arc<dyn cloudfront::CloudFrontApi>;
    async fn backup(&self, region: &str) -> Arc<dyn backup::BackupApi>;
    async fn ec2(&self, region: &str) -> Arc<dyn ec2::Ec2Api>;
    async fn autoscaling(&self, region: &str) -> Arc<dyn autoscaling::AutoScalingApi>;
    async fn elbv2(&self, region: &str) -> Arc<dyn elbv2::Elbv2Api>;
    /// Who these credentials are (STS GetCallerIdentity, at `region`'s regional endpoint so a
    /// dark us-east-1 does not take it down): resolves and proves them before a run acts.
    async fn identity(&self, region: &str) -> AwsResult<CallerIdentity>;
    /// The failover gate's data plane: ARC cluster endpoints (outside `primary_region`
    /// first) or CloudWatch in the alarm's region. Never Route 53's control plane.
    async fn gate(
        &self,
        _gate: &crate::config::env::Gate,
        _primary_region: &str,
    ) -> Arc<dyn gate::GateApi> {
        Arc::new(gate::Unsupported)
    }
    /// DNS answers from `servers` (Route 53's data plane); the system resolver when empty.
    async fn dns(&self, servers: &[String]) -> AwsResult<Arc<dyn dns::DnsApi>> {
        Ok(Arc::new(
            dns::HickoryDns::new(servers, std::time::Duration::from_secs(2)).await?,
        ))
    }
    /// What game-day drills call in `region` (the in-process fakes do not drill).
    async fn drill(&self, _region: &str) -> Arc<dyn drill::DrillApi> {
        Arc::new(drill::Unsupported)
    }
}

/// The AWS identity a run acts as.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

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
    /// No usable credentials, or they were refused (expired, invalid signature, unknown key).
    Credentials,
    /// The credentials work but may not do this (AccessDenied, UnauthorizedOperation).
    Denied,
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

    /// Credentials or permissions: configuration, which no retry and no other region fixes.
    pub fn is_configuration(&self) -> bool {
        matches!(self.kind, ErrorKind::Credentials | ErrorKind::Denied)
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
                // Only a real network failure or timeout means "unreachable"; a request that
                // never left (no credentials to sign it with) is not a dark region.
                let kind = if d.is_timeout() {
                    ErrorKind::Timeout
                } else if d.is_io() {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Credentials
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
    if matches!(
        c,
        "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidSignatureException"
            | "MissingAuthenticationToken"
            | "AuthFailure"
            | "IncompleteSignature"
    ) {
        return ErrorKind::Credentials;
    }
    if matches!(
        c,
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "Forbidden"
    ) || (status == 403 && c.is_empty())
    {
        return ErrorKind::Denied;
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

pub type AwsResult<T> = Result<T, AwsError>;

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
        assert!(e.is_retryable());
        assert!(e
            .to_string()
            .contains("rds DescribeDBInstances in us-west-2"));
    }
}
