//! Journal events in words: one line each, for the terminal, logs, reports and notifications.

use super::event::{Event, Measure, Outcome};

/// A duration in milliseconds, short and exact enough for people: `850ms`, `12.3s`, `4m05s`.
pub fn fmt_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// Why a step that ended well did not do its work (a fence of an unreachable region): the
/// `skipped` its result carries.
pub fn skipped(result: &serde_json::Value) -> Option<&str> {
    result.get("skipped").and_then(|v| v.as_str())
}

impl Event {
    /// What happened, in one line for people (terminal, logs, reports, notifications).
    pub fn describe(&self) -> String {
        match self {
            Event::RunStarted {
                run_id,
                runbook_name,
                env_name,
                operator,
                ..
            } => {
                format!("run {run_id} started: runbook {runbook_name} on {env_name} by {operator}")
            }
            Event::Resumed { operator } => format!("resumed by {operator}"),
            Event::StepStarted { step, attempt } if *attempt > 1 => {
                format!("{step}: attempt {attempt}")
            }
            Event::StepStarted { step, .. } => format!("{step}: started"),
            Event::StepIntent {
                step,
                current,
                intended,
                ..
            } => format!("{step}: {intended} (now: {current})"),
            Event::StepSucceeded { step, result, .. } if skipped(result).is_some() => {
                format!("{step}: skipped: {}", skipped(result).unwrap_or_default())
            }
            Event::StepSucceeded {
                step,
                outcome: Outcome::AlreadyDone,
                ..
            } => format!("{step}: already done, nothing changed"),
            Event::StepSucceeded {
                step, duration_ms, ..
            } => {
                format!(
                    "{step}: done in {}",
                    crate::journal::describe::fmt_ms(*duration_ms)
                )
            }
            Event::StepFailed {
                step,
                error,
                retry_in_ms: Some(ms),
                ..
            } => format!(
                "{step}: failed ({error}); retrying in {}",
                crate::journal::describe::fmt_ms(*ms)
            ),
            Event::StepFailed {
                step,
                error,
                retry_in_ms: None,
                ..
            } => format!("{step}: FAILED: {error}"),
            Event::StepSkipped { step, reason, by } => format!("{step}: skipped by {by}: {reason}"),
            Event::ApprovalGranted { step, by, via, .. } => {
                format!("{step}: approved by {by} ({via})")
            }
            Event::CheckpointReached { name, .. } => format!("checkpoint `{name}` reached"),
            Event::Deferred { step, error } => format!(
                "{step}: DEFERRED: its control plane did not answer ({error}); `drctl deferred --run` does it later"
            ),
            Event::Warning { step, message } => format!(
                "WARNING {}{message}",
                step.as_ref().map(|s| format!("{s}: ")).unwrap_or_default()
            ),
            Event::Measured {
                step,
                measure: Measure::RpoSeconds,
                value,
            } => format!("{step}: RPO {value:.0}s (replica lag when promoted)"),
            Event::Measured {
                step,
                measure: Measure::RpoLastKnownSeconds,
                value,
            } => format!(
                "{step}: RPO not measured (replication had stopped); at least {value:.0}s, the last lag known"
            ),
            Event::Measured {
                step,
                measure: Measure::DrillDatabaseSeconds,
                value,
            } => format!("{step}: drill database writable after {value:.1}s"),
            Event::Measured {
                step,
                measure: Measure::DrillServingSeconds,
                value,
            } => format!("{step}: drill app serving after {value:.1}s"),
            Event::Fence { step, fence } if fence.fenced => format!(
                "{step}: {} in {} fenced ({})",
                fence.instance_id, fence.region, fence.detail
            ),
            Event::Fence { step, fence } => format!(
                "{step}: FENCE OUTSTANDING: {} in {} ({})",
                fence.instance_id, fence.region, fence.detail
            ),
            Event::Paused { reason } => format!("run paused: {reason}"),
            Event::RunFinished { status, message } => format!("run {status}: {message}"),
            Event::RollbackStarted { to, operator, .. } => format!(
                "rollback started by {operator}{}",
                to.as_ref()
                    .map(|t| format!(" (to checkpoint `{t}`)"))
                    .unwrap_or_default()
            ),
            Event::UndoStarted { step } => format!("{step}: undoing"),
            Event::Undone { step } => format!("{step}: undone"),
            Event::UndoFailed { step, error } => format!("{step}: UNDO FAILED: {error}"),
            Event::RollbackStopped { reason, .. } => format!("rollback stopped: {reason}"),
            Event::RollbackFinished { undone, complete } => format!(
                "rollback {}: undid {}",
                if *complete { "finished" } else { "INCOMPLETE" },
                if undone.is_empty() {
                    "nothing".into()
                } else {
                    undone.join(", ")
                }
            ),
            Event::Abandoned {
                operator,
                reason,
                left_changed,
            } => format!(
                "abandoned by {operator}: {reason}{}",
                if left_changed.is_empty() {
                    " (it changed nothing)".to_string()
                } else {
                    format!("; left changed: {}", left_changed.join("; "))
                }
            ),
        }
    }
}
