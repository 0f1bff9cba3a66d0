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
}

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
