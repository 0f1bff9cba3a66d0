//! `notify`: post a JSON message to a webhook (Slack incoming webhooks accept the same body).
//! Bounded by a timeout; a failed notification is retried by the step's `retries`.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Observation, Reversibility, Satisfied, Step, StepCx, StepError, Text};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Webhook URL. Prefer `${env...}`-free secrets handling: the URL is never journaled.
    #[schemars(with = "String")]
    pub url: Text,
    /// The message text. May use `${...}` references.
    #[schemars(with = "String")]
    pub message: Text,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

#[async_trait]
impl Step for Notify {
    async fn observe(&self, _cx: &StepCx) -> Result<Observation, StepError> {
        Ok(Observation::new(
            Satisfied::NotDone,
            "-",
            "post a webhook message",
        ))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let url = cx.render(&self.url.value)?;
        let text = cx.render(&self.message.value)?;
        let body = json!({
            "text": text,
            "environment": cx.env.name,
            "run_id": cx.run_id,
            "step": cx.step_id,
        });
        let resp = cx
            .http
            .post(&url)
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await
            // The URL may embed a token (Slack): never echo it.
            .map_err(|e| {
                StepError::retryable(format!("webhook post failed: {}", e.without_url()))
            })?;
        if !resp.status().is_success() {
            return Err(StepError::retryable(format!(
                "webhook answered {}",
                resp.status()
            )));
        }
        Ok(json!({ "status": resp.status().as_u16() }))
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["status"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::NothingToUndo
    }

    fn templates(&self) -> Vec<&Text> {
        vec![&self.url, &self.message]
    }
}
