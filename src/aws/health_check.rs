//! Route 53 health check status: the one read `drctl watch` makes to ask whether Route 53 agrees
//! that the primary is down. Narrow, bounded by the environment's timeouts.

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;

use crate::config::env::AwsSettings;

/// Route 53 calls a check healthy while more than 18% of its checkers report success.
const HEALTHY_FRACTION: f64 = 0.18;

#[derive(Debug, thiserror::Error)]
#[error("route53 GetHealthCheckStatus ({health_check_id}): {message}")]
pub struct HealthCheckError {
    pub health_check_id: String,
    pub message: String,
}

pub struct HealthCheck {
    client: aws_sdk_route53::Client,
    id: String,
}

impl HealthCheck {
    pub async fn new(settings: &AwsSettings, id: &str) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            // Route 53 is global; its API lives in us-east-1.
            .region(aws_config::Region::new("us-east-1"))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(settings.operation_timeout)
                    .operation_attempt_timeout(settings.attempt_timeout)
                    .build(),
            )
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(settings.max_attempts.max(1)),
            );
        if let Some(e) = &settings.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        if let Some(p) = &settings.profile {
            loader = loader.profile_name(p);
        }
        let conf = loader.load().await;
        Self {
            client: aws_sdk_route53::Client::new(&conf),
            id: id.to_string(),
        }
    }

    /// `Ok(true)` when Route 53 considers the checked endpoint unhealthy.
    pub async fn unhealthy(&self) -> Result<bool, HealthCheckError> {
        let out = self
            .client
            .get_health_check_status()
            .health_check_id(&self.id)
            .send()
            .await
            .map_err(|e| HealthCheckError {
                health_check_id: self.id.clone(),
                message: aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
            })?;
        let obs = out.health_check_observations();
        if obs.is_empty() {
            return Err(HealthCheckError {
                health_check_id: self.id.clone(),
                message: "no observations yet".into(),
            });
        }
        let ok = obs
            .iter()
            .filter(|o| {
                o.status_report()
                    .and_then(|r| r.status())
                    .is_some_and(|s| s.starts_with("Success"))
            })
            .count();
        Ok((ok as f64) / (obs.len() as f64) <= HEALTHY_FRACTION)
    }
}
