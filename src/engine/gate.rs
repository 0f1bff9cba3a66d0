//! Approval gates that hold production: what a gate tells the person it waits for, how long it
//! waits, and what happens when nobody answers.
//!
//! A gate that waits after a fence waits with writes off: production has no writer until the
//! promotion behind the gate. Such a gate says so, has a short deadline, and when the deadline
//! passes (or the approver says no) the engine undoes the fence before the run pauses, so that
//! no gate ever leaves production without a writer. A gate before the fence shows what the fence
//! and the promotion will do, with the replica's lag as observed now: the data at stake, before
//! the answer, not after it.

use std::time::Duration;

use super::plan::Plan;
use crate::config::validate::ancestors;
use crate::journal::{Outcome, RunState, StepPhase};
use crate::steps::{approval, Reversibility, StepSpec};

/// How long observing the gated steps for the prompt may take: the prompt is not held up by a
/// slow region (it says what could not be seen).
pub const OBSERVE_LIMIT: Duration = Duration::from_secs(5);

/// Whether step `id` may have changed something in this run and not been undone.
fn acted(state: &RunState, id: &str) -> bool {
    matches!(
        state.step(id),
        StepPhase::Succeeded {
            outcome: Outcome::Changed,
            ..
        } | StepPhase::InFlight { .. }
            | StepPhase::Failed { prior: Some(_), .. }
            | StepPhase::UndoFailed { .. }
    )
}

/// The fences before gate `i` that took writes away in this run and still hold.
pub fn writes_off(plan: &Plan, state: &RunState, i: usize) -> Vec<String> {
    let anc = &ancestors(&plan.deps)[i];
    let mut out: Vec<String> = anc
        .iter()
        .map(|&a| &plan.steps[a])
        .filter(|s| s.spec.step().stops_writes() && acted(state, s.id()))
        .map(|s| s.id().to_string())
        .collect();
    out.sort();
    out
}

/// An irreversible step (a promotion) may have acted: from then on a fence must never be
/// undone, or two databases would take writes.
pub fn promoted(plan: &Plan, state: &RunState) -> bool {
    plan.steps.iter().any(|s| {
        matches!(
            s.spec.step().reversibility(),
            Reversibility::Irreversible(_)
        ) && acted(state, s.id())
    })
}

/// The fences to undo before a run pauses: those held by a gate that failed (no approval
/// before its deadline, or declined), unless a promotion has acted since.
pub fn fences_to_undo(plan: &Plan, state: &RunState) -> Vec<String> {
    if promoted(plan, state) {
        return vec![];
    }
    let mut out = vec![];
    for (i, s) in plan.steps.iter().enumerate() {
        let failed_gate = matches!(s.spec, StepSpec::Approval(_))
            && matches!(
                state.step(s.id()),
                StepPhase::Failed {
                    will_retry: false,
                    ..
                }
            );
        if failed_gate {
            for f in writes_off(plan, state, i) {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
    }
    out
}

/// Gate `i`'s deadline: the runbook's `deadline`, else the default for writes on or off (with
/// writes on, a `timeout` the runbook gave the step stands for it, as it did before deadlines).
pub fn deadline(plan: &Plan, i: usize, writes_off: bool) -> Duration {
    let given = match &plan.steps[i].spec {
        StepSpec::Approval(a) => a.deadline,
        _ => None,
    };
    match (given, writes_off, plan.steps[i].timeout) {
        (Some(d), _, _) => d,
        (None, true, _) => approval::DEADLINE_WRITES_OFF,
        (None, false, Some(t)) => t,
        (None, false, None) => approval::DEADLINE_WRITES_ON,
    }
}

/// Steps after gate `i` that stop writes or cannot be undone: what the approver agrees to.
pub fn gated(plan: &Plan, i: usize) -> Vec<usize> {
    let anc = ancestors(&plan.deps);
    (0..plan.steps.len())
        .filter(|&d| anc[d].contains(&i))
        .filter(|&d| {
            let step = plan.steps[d].spec.step();
            step.stops_writes() || matches!(step.reversibility(), Reversibility::Irreversible(_))
        })
        .collect()
}

/// What gate `i` says beyond the runbook's message before the steps behind it are observed:
/// that writes are off (and until when), or how long it waits.
pub fn first_line(off: &[String], deadline: Duration) -> String {
    if off.is_empty() {
        format!(
            "without an answer within {} the run pauses (`drctl resume` asks again); nothing behind this gate has run",
            humantime::format_duration(deadline)
        )
    } else {
        format!(
            "WRITES ARE OFF NOW: {} made production's writer read-only. Without an approval within {}, the fence is undone (writes on again) and the run pauses",
            off.join(", "),
            humantime::format_duration(deadline)
        )
    }
}

/// The approvals of steps observed or undone where no one is asked: any request is an error.
pub(super) struct NoApprovals;

#[async_trait::async_trait]
impl crate::steps::ApprovalGate for NoApprovals {
    async fn request(
        &self,
        step: &str,
        _m: &str,
    ) -> Result<crate::steps::Approval, crate::steps::StepError> {
        Err(crate::steps::StepError::permanent(format!(
            "step `{step}` asked for approval where no one is asked (a rollback, or a gate's look ahead)"
        )))
    }
}
