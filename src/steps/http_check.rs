//! `http.check`: prove from the outside that an endpoint serves what it should. Polls until the
//! status and body match, or its attempts run out. Read-only.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Observation, Reversibility, Satisfied, Step, StepCx, StepError, Text};
use crate::config::parse_status_range;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// URL to GET. May use `${...}` references, e.g. `${standby.albs.frontend.url}/health`.
    #[schemars(with = "String")]
    pub url: Text,
    /// Host header to send (an ALB probed for the app's host name).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub host: Option<Text>,
    /// Inclusive status range like `200-299`, or one code.
    #[serde(default = "default_status")]
    pub status: String,
    /// The body must contain this text.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body_contains: Option<Text>,
    /// Bound on one request.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Further requests after a failed one before the step fails.
    #[serde(default)]
    pub retries: u32,
    /// Pause between requests.
    #[serde(default = "default_interval", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub interval: Duration,
}

fn default_status() -> String {
    "200-299".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_interval() -> Duration {
    Duration::from_secs(1)
}

impl HttpCheck {
    async fn once(&self, cx: &StepCx) -> Result<String, String> {
        let url = cx.render(&self.url.value).map_err(|e| e.to_string())?;
        let (lo, hi) = parse_status_range(&self.status)?;
        let mut req = cx.http.get(&url).timeout(self.timeout);
        if let Some(h) = &self.host {
            req = req.header(
                reqwest::header::HOST,
                cx.render(&h.value).map_err(|e| e.to_string())?,
            );
        }
        let resp = req.send().await.map_err(|e| describe(&url, &e))?;
        let code = resp.status().as_u16();
        let body = tokio::time::timeout(self.timeout, resp.text())
            .await
            .map_err(|_| format!("{url}: body not received within {:?}", self.timeout))?
            .map_err(|e| describe(&url, &e))?;
        if code < lo || code > hi {
            return Err(format!("{url}: status {code}, expected {}", self.status));
        }
        if let Some(want) = &self.body_contains {
            let want = cx.render(&want.value).map_err(|e| e.to_string())?;
            if !body.contains(&want) {
                return Err(format!("{url}: status {code} but body lacks {want:?}"));
            }
        }
        Ok(format!("{url}: status {code}"))
    }
}

fn describe(url: &str, e: &reqwest::Error) -> String {
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("{url}: {why} ({e})")
}

#[async_trait]
impl Step for HttpCheck {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let current = match self.once(cx).await {
            Ok(s) => s,
            Err(e) => e,
        };
        // The URL as it will be asked, not its template.
        let url = cx
            .render(&self.url.value)
            .unwrap_or_else(|_| self.url.value.clone());
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!("check {url}"),
        ))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                cx.note(&format!("retrying: {last}"));
                cx.sleep(self.interval).await?;
            }
            match self.once(cx).await {
                Ok(s) => return Ok(json!({ "result": s })),
                Err(e) => last = e,
            }
        }
        Err(StepError::retryable(last))
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["result"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::NothingToUndo
    }

    fn templates(&self) -> Vec<&Text> {
        let mut v = vec![&self.url];
        v.extend(self.host.iter());
        v.extend(self.body_contains.iter());
        v
    }

    fn validate(&self, _env: &crate::config::env::Environment) -> Vec<super::Problem> {
        match parse_status_range(&self.status) {
            Ok(_) => vec![],
            Err(m) => vec![super::Problem {
                at: Some(self.url.referenced),
                message: m,
            }],
        }
    }

    fn estimate(&self) -> Duration {
        self.timeout
    }
}
