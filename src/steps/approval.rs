//! `approval`: stop until a human says yes. Gates irreversible steps; the journal records who
//! approved, how, and when.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Observation, Reversibility, Satisfied, Step, StepCx, StepError, Text};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStep {
    /// What the approver is agreeing to. May use `${...}` references.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub message: Option<Text>,
    /// How long the gate waits for a person before the run pauses (`drctl resume` asks again).
    /// Default: 5m when a fence before it has taken writes away (then the fence is undone
    /// first, so production is never left without a writer), else the step's `timeout`, else
    /// 15m.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub deadline: Option<std::time::Duration>,
}

/// A gate's deadline when its runbook gives none: short while writes are off (a fence before
/// the gate took them away), long enough for a person to be paged otherwise.
pub const DEADLINE_WRITES_OFF: std::time::Duration = std::time::Duration::from_secs(5 * 60);
pub const DEADLINE_WRITES_ON: std::time::Duration = std::time::Duration::from_secs(15 * 60);

#[async_trait]
impl Step for ApprovalStep {
    async fn observe(&self, _cx: &StepCx) -> Result<Observation, StepError> {
        Ok(Observation::new(
            Satisfied::NotDone,
            "not approved",
            "wait for a human approval",
        ))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let message = match &self.message {
            Some(m) => cx.render(&m.value)?,
            None => format!("approve step {} to continue", cx.step_id),
        };
        let a = cx.approvals.request(&cx.step_id, &message).await?;
        Ok(json!({ "approved_by": a.by, "via": a.via, "comment": a.comment }))
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["approved_by", "via", "comment"]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::NothingToUndo
    }

    fn templates(&self) -> Vec<&Text> {
        self.message.iter().collect()
    }
}
