//! Journal events: what a run did, in order. The intent is journaled before a side effect and
//! the outcome after it. Nothing in here is ever a secret: webhook URLs, `exec` environment values
//! and `${secret.*}` values are never put in an event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The AWS principal a run acts as.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AwsIdentity {
    pub account: String,
    pub arn: String,
}

/// Who ran a command, from where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Operator {
    pub user: String,
    pub host: String,
    pub pid: u32,
}

impl Operator {
    pub fn current() -> Self {
        let user = std::env::var("DRCTL_OPERATOR")
            .or_else(|_| std::env::var("USER"))
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| {
                nix::unistd::User::from_uid(nix::unistd::getuid())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_else(|| "unknown".into())
            });
        Self {
            user,
            host: hostname::get()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            pid: std::process::id(),
        }
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{} (pid {})", self.user, self.host, self.pid)
    }
}

/// What started a run unattended, and when the trouble began: a report measures the RTO
/// from `detected_at`, not from the run's start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trigger {
    /// `drctl watch`.
    pub by: String,
    /// The first failed probe of the primary's outage.
    pub detected_at: DateTime<Utc>,
    /// The decision, in words.
    pub why: String,
}

/// Whether the state a step wants was already there when it was observed (journaled with the
/// intent; steps report it through `steps::Observation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfied {
    /// Target state holds: executing would be a no-op.
    Done,
    /// Target state does not hold: execute would change something.
    NotDone,
    /// This kind cannot tell (e.g. `exec` without a `check` command).
    Unknown,
}

/// The fate of one fence of one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FenceRecord {
    pub region: String,
    pub instance_id: String,
    /// True: it takes no writes now. False: it could not be reached, and may take writes if
    /// its region comes back (an outstanding fence).
    pub fenced: bool,
    /// Why it was not fenced, or how it was.
    pub detail: String,
}

/// A number a step measured that summaries and reports need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Seconds of writes a promotion may have lost: the replica's lag when it was promoted.
    RpoSeconds,
    /// Replication had stopped (ReplicaLag -1) when the replica was promoted: the last lag
    /// measured before it stopped. The loss is at least this; the RPO was not measured.
    RpoLastKnownSeconds,
    /// A drill: seconds from asking for a restore to a writable database.
    DrillDatabaseSeconds,
    /// A drill: seconds from launching instances to the app serving through its listener.
    DrillServingSeconds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The step changed something.
    Changed,
    /// The target state already held; nothing was done.
    AlreadyDone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Aborted,
    RolledBack,
    /// Closed by `drctl abandon` without running or undoing anything more.
    Abandoned,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
            RunStatus::RolledBack => "rolled back",
            RunStatus::Abandoned => "abandoned",
        })
    }
}

// RunStarted carries the runbook and environment copies; it is written once per run, so its
// size does not matter next to the small, frequent events.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        runbook_name: String,
        runbook_path: String,
        runbook_text: String,
        runbook_sha256: String,
        env_name: String,
        env_path: String,
        env_text: String,
        env_sha256: String,
        operator: Operator,
        /// The command line, for the report ("drctl failover --region us-west-2 --yes").
        command: String,
        /// The AWS identity the run acts as (STS GetCallerIdentity), when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aws_identity: Option<AwsIdentity>,
        /// The environment's phase as observed just before the run (round-trip commands).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phase_before: Option<String>,
        /// What started the run when it was not a person at a terminal (`drctl watch`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trigger: Option<Trigger>,
    },
    Resumed {
        operator: Operator,
    },
    StepStarted {
        step: String,
        attempt: u32,
    },
    /// Written after observe and before execute: the intent, and what undo needs.
    StepIntent {
        step: String,
        attempt: u32,
        observed: Satisfied,
        current: String,
        intended: String,
        prior: Value,
    },
    StepSucceeded {
        step: String,
        outcome: Outcome,
        result: Value,
        duration_ms: u64,
    },
    StepFailed {
        step: String,
        attempt: u32,
        error: String,
        /// Set when the engine will try again after this delay.
        retry_in_ms: Option<u64>,
    },
    StepSkipped {
        step: String,
        reason: String,
        by: String,
    },
    ApprovalGranted {
        step: String,
        by: String,
        via: String,
        comment: Option<String>,
    },
    CheckpointReached {
        name: String,
        step: String,
    },
    /// Something an operator should know that did not fail the run (a fence that was skipped).
    Warning {
        step: Option<String>,
        message: String,
    },
    /// A measurement a step made (the replica lag at promotion), journaled as soon as the
    /// step's side effect is done, so a resumed run keeps it.
    Measured {
        step: String,
        measure: Measure,
        value: f64,
    },
    /// What a fence step did to a database: fenced it, or could not reach it. The latest of
    /// these per instance, across the environment's runs, says whether a fence is outstanding.
    Fence {
        step: String,
        #[serde(flatten)]
        fence: FenceRecord,
    },
    /// A step whose control plane did not answer was left as deferred work (`on_failure:
    /// defer`); a later successful run of the same step in the environment's `deferred`
    /// runbook completes it. The step's definition is in this run's `run_started`.
    Deferred {
        step: String,
        error: String,
    },
    Paused {
        reason: String,
    },
    RunFinished {
        status: RunStatus,
        message: String,
    },
    RollbackStarted {
        to: Option<String>,
        operator: Operator,
        /// The run pauses after this rollback instead of finishing: a gate whose deadline
        /// passed with writes off undid its fence, and waits for `drctl resume`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        then_pause: bool,
    },
    UndoStarted {
        step: String,
    },
    Undone {
        step: String,
    },
    UndoFailed {
        step: String,
        error: String,
    },
    /// Rollback stopped here: this step cannot be undone.
    RollbackStopped {
        step: String,
        reason: String,
    },
    RollbackFinished {
        undone: Vec<String>,
        complete: bool,
    },
    /// `drctl abandon`: who closed the run unfinished, why, and what it leaves changed (the
    /// steps that may have acted, in words). `RunFinished` (abandoned) follows.
    Abandoned {
        operator: Operator,
        reason: String,
        left_changed: Vec<String>,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::Resumed { .. } => "resumed",
            Event::StepStarted { .. } => "step_started",
            Event::StepIntent { .. } => "step_intent",
            Event::StepSucceeded { .. } => "step_succeeded",
            Event::StepFailed { .. } => "step_failed",
            Event::StepSkipped { .. } => "step_skipped",
            Event::ApprovalGranted { .. } => "approval_granted",
            Event::CheckpointReached { .. } => "checkpoint_reached",
            Event::Warning { .. } => "warning",
            Event::Measured { .. } => "measured",
            Event::Fence { .. } => "fence",
            Event::Deferred { .. } => "deferred",
            Event::Paused { .. } => "paused",
            Event::RunFinished { .. } => "run_finished",
            Event::RollbackStarted { .. } => "rollback_started",
            Event::UndoStarted { .. } => "undo_started",
            Event::Undone { .. } => "undone",
            Event::UndoFailed { .. } => "undo_failed",
            Event::RollbackStopped { .. } => "rollback_stopped",
            Event::RollbackFinished { .. } => "rollback_finished",
            Event::Abandoned { .. } => "abandoned",
        }
    }
}

#[cfg(test)]
impl Event {
    /// A minimal `RunStarted` for unit tests (operator `tester`).
    pub fn test_run_started() -> Event {
        Event::RunStarted {
            run_id: "r".into(),
            runbook_name: "rb".into(),
            runbook_path: "rb.yaml".into(),
            runbook_text: String::new(),
            runbook_sha256: String::new(),
            env_name: "t".into(),
            env_path: "drctl.yaml".into(),
            env_text: String::new(),
            env_sha256: String::new(),
            operator: Operator {
                user: "tester".into(),
                host: "h".into(),
                pid: 1,
            },
            command: "drctl run".into(),
            aws_identity: None,
            phase_before: None,
            trigger: None,
        }
    }
}

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// 1, 2, 3, ... with no gaps.
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// Fencing token of the lease the writer held.
    pub token: u64,
    #[serde(flatten)]
    pub event: Event,
    /// The hash chain link (see `journal::chain`): hex SHA-256 of the previous line's hash and
    /// this record as serialized without it. Last, so that it is the line's last key, which is
    /// what lets `chain::verify` check the bytes on disk without re-serializing them. None in
    /// journals written before hash chains, and for records not (yet) written to a file. No
    /// event may have a field of its own named `hash`: this one would take it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}
