//! Per-service adapters over the AWS SDK: narrow, typed, bounded by timeouts, with errors that
//! name service, operation, region and request id. Steps talk to these, never to the SDK.

pub mod health_check;

use crate::config::env::AwsSettings;

/// Shared AWS access for one run: settings now, lazily built clients per service and region.
#[derive(Debug, Default)]
pub struct Aws {
    pub settings: AwsSettings,
}

impl Aws {
    pub fn new(settings: AwsSettings) -> Self {
        Self { settings }
    }
}
