//! Where a run's approvals come from: `--yes` up front, `drctl approve` from another terminal
//! (a file in the run's mailbox), or the operator's own terminal through an
//! [`ApprovalPrompt`]. Whichever answers first wins; a shutdown (Ctrl-C, SIGTERM) ends the wait
//! at once so the run pauses instead of waiting out the step's timeout.
//!
//! Gates that stand before an irreversible step (the promotion) are special: `--yes` alone does
//! not approve them (`--approve-irreversible` does), and under the environment's two-person rule
//! the operator who started the run may not approve them at all.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::Approvals;
use crate::config::StepKinds;
use crate::engine::approval::{ApprovalSource, AutoApprove, FileApprovals};
use crate::engine::Plan;
use crate::journal::Operator;
use crate::steps::{Approval, StepError};

/// What a person at the prompt said.
#[derive(Debug, Clone)]
pub enum Answer {
    Approved(Approval),
    /// "no": the run pauses at the gate (after giving back any writes it holds off).
    Declined {
        by: String,
    },
}

/// Asks a human where they are (the CLI's terminal prompt). `None`: nobody can answer here;
/// the run keeps waiting for `drctl approve`.
#[async_trait]
pub trait ApprovalPrompt: Send + Sync {
    async fn ask(&self, run_id: &str, step: &str, message: &str) -> Option<Answer>;
}

/// Where `drctl approve` leaves approvals: the run's directory, or the shared state table
/// (then an operator on any machine can approve).
enum Mailbox {
    File(FileApprovals),
    Table {
        state: super::StateStore,
        run: String,
    },
}

impl Mailbox {
    async fn wait(&self, step: &str, message: &str) -> Result<Approval, StepError> {
        match self {
            Mailbox::File(f) => f.wait(step, message).await,
            Mailbox::Table { state, run } => loop {
                if let Some(t) = state.dynamo().await {
                    // A table that does not answer is asked again; the step's own timeout
                    // bounds the wait.
                    match t.get_approval(run, step).await {
                        Ok(Some(text)) => match serde_json::from_str(&text) {
                            Ok(a) => return Ok(a),
                            Err(e) => tracing::warn!(step, "an approval that is not one: {e}"),
                        },
                        Ok(None) => {}
                        Err(e) => tracing::warn!(step, "reading approvals: {e}"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            },
        }
    }

    /// Throw away an approval that is not accepted.
    async fn discard(&self, step: &str) {
        match self {
            Mailbox::File(f) => {
                let _ = std::fs::remove_file(
                    crate::engine::approval::approvals_dir(&f.run_dir).join(format!("{step}.json")),
                );
            }
            Mailbox::Table { state, run } => {
                if let Some(t) = state.dynamo().await {
                    let _ = t.remove_approval(run, step).await;
                }
            }
        }
    }
}

/// The mailbox and the prompt, raced, and cut short by shutdown.
struct Asked {
    mailbox: Mailbox,
    prompt: Arc<dyn ApprovalPrompt>,
    run_id: String,
    shutdown: CancellationToken,
    /// Under the two-person rule: who may not approve the gates (the run's starter).
    not_by: Option<String>,
}

#[async_trait]
impl ApprovalSource for Asked {
    async fn wait(&self, step: &str, message: &str) -> Result<Approval, StepError> {
        loop {
            let a = tokio::select! {
                a = self.mailbox.wait(step, message) => Answer::Approved(a?),
                Some(a) = async {
                    // The starter's own terminal cannot give a second person's approval.
                    if self.not_by.is_some() { None } else { self.prompt.ask(&self.run_id, step, message).await }
                } => a,
                _ = self.shutdown.cancelled() => return Err(StepError::Interrupted),
            };
            let a = match a {
                Answer::Approved(a) => a,
                Answer::Declined { by } => {
                    return Err(StepError::permanent(format!(
                        "declined by {by} at the prompt; nothing behind the gate ran"
                    )))
                }
            };
            match &self.not_by {
                Some(who) if &a.by == who => {
                    // `drctl approve` refuses this too; one put there by hand is not obeyed.
                    self.mailbox.discard(step).await;
                    tracing::warn!(step, by = %who, "two-person rule: the run's starter cannot approve this gate");
                }
                _ => return Ok(a),
            }
        }
    }
}

/// Irreversible gates go one way, the other approval steps another.
struct Routed {
    gates: HashSet<String>,
    for_gates: Box<dyn ApprovalSource>,
    for_others: Box<dyn ApprovalSource>,
}

#[async_trait]
impl ApprovalSource for Routed {
    async fn wait(&self, step: &str, message: &str) -> Result<Approval, StepError> {
        if self.gates.contains(step) {
            self.for_gates.wait(step, message).await
        } else {
            self.for_others.wait(step, message).await
        }
    }

    fn asks_a_person(&self, step: &str) -> bool {
        if self.gates.contains(step) {
            self.for_gates.asks_a_person(step)
        } else {
            self.for_others.asks_a_person(step)
        }
    }
}

/// The approval steps that stand before an irreversible step: the gates `--yes` alone does not
/// open.
pub fn irreversible_gates(plan: &Plan) -> HashSet<String> {
    let anc = crate::config::validate::ancestors(&plan.deps);
    let mut gates = HashSet::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if StepKinds::irreversible(&s.spec).is_some() {
            for &a in &anc[i] {
                if StepKinds::is_approval(&plan.steps[a].spec) {
                    gates.insert(plan.steps[a].id().to_string());
                }
            }
        }
    }
    gates
}

/// What a run's approvals need, checked before the run starts.
pub(super) struct Gatekeeping<'a> {
    pub approvals: &'a Approvals,
    /// The operator acting now (the approver for `--yes`).
    pub operator: &'a Operator,
    /// Who started the run (for resume and rollback: the original starter).
    pub starter: &'a str,
    pub two_person: bool,
    pub gates: HashSet<String>,
}

impl Gatekeeping<'_> {
    /// Refuse up front what the two-person rule forbids.
    pub fn check(&self) -> Result<(), super::RunError> {
        if self.two_person
            && !self.gates.is_empty()
            && matches!(self.approvals, Approvals::Auto { gates: None })
            && self.operator.user == self.starter
        {
            return Err(super::RunError::Refused(format!(
                "two-person rule: {} starts this run, so {} cannot also approve its irreversible gate(s) ({}). \
                 Leave out --approve-irreversible and have another operator run `drctl approve RUN STEP`",
                self.starter,
                self.starter,
                self.gates.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    pub fn source(
        &self,
        run_id: &str,
        state: &super::StateStore,
        shutdown: CancellationToken,
    ) -> Arc<dyn ApprovalSource> {
        let mailbox = || {
            if state.is_shared() {
                Mailbox::Table {
                    state: state.clone(),
                    run: run_id.to_string(),
                }
            } else {
                Mailbox::File(FileApprovals {
                    run_dir: state.run_dir(run_id),
                    poll: Duration::from_millis(300),
                })
            }
        };
        let not_by = self.two_person.then(|| self.starter.to_string());
        let asked = |prompt: Arc<dyn ApprovalPrompt>, not_by: Option<String>| Asked {
            mailbox: mailbox(),
            prompt,
            run_id: run_id.to_string(),
            shutdown: shutdown.clone(),
            not_by,
        };
        let auto = AutoApprove {
            operator: self.operator.clone(),
        };
        let (for_gates, for_others): (Box<dyn ApprovalSource>, Box<dyn ApprovalSource>) =
            match self.approvals {
                Approvals::Auto { gates: None } => return Arc::new(auto),
                Approvals::Auto {
                    gates: Some(prompt),
                } => (Box::new(asked(prompt.clone(), not_by)), Box::new(auto)),
                Approvals::Ask(prompt) => (
                    Box::new(asked(prompt.clone(), not_by)),
                    Box::new(asked(prompt.clone(), None)),
                ),
            };
        Arc::new(Routed {
            gates: self.gates.clone(),
            for_gates,
            for_others,
        })
    }
}
