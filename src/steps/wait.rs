//! `wait`: pause the run for a fixed time (let DNS caches drain, let a deployment settle).

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::{Observation, Reversibility, Satisfied, Step, StepCx, StepError};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// How long to wait, e.g. `30s`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub duration: Duration,
}

#[async_trait]
impl Step for Wait {
    async fn observe(&self, _cx: &StepCx) -> Result<Observation, StepError> {
        Ok(Observation::new(
            Satisfied::NotDone,
            "-",
            format!("wait {}", humantime::format_duration(self.duration)),
        ))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        cx.note(&format!(
            "waiting {}",
            humantime::format_duration(self.duration)
        ));
        cx.sleep(self.duration).await?;
        Ok(Value::Null)
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::NothingToUndo
    }

    fn estimate(&self) -> Duration {
        self.duration
    }
}
