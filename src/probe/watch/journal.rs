//! What the watch reports and journals: its events, the sink the CLI prints them to, and the
//! watch journal (`<state>/watch/<env>.jsonl`, each batch written whole and fsync'd).

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::config::env::{Role, WatchAction};
use crate::probe::notify::Delivery;
use crate::probe::state::Phase;
use crate::probe::Reason;

use super::policy::Verdict;

// ------------------------------------------------------------------------------------------
// What the watch reports and journals
// ------------------------------------------------------------------------------------------

/// One target's state as evidence for a decision.
#[derive(Debug, Clone, Serialize)]
pub struct TargetEvidence {
    pub target: String,
    pub region: String,
    pub state: Phase,
    pub since: Option<DateTime<Utc>>,
    /// The first failed probe of its current outage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failed_at: Option<DateTime<Utc>>,
    pub last: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub primary: Vec<TargetEvidence>,
    pub standby: Vec<TargetEvidence>,
    /// How long the primary had been down when the decision was made.
    pub primary_down_for_ms: Option<u64>,
    pub route53_unhealthy: Option<bool>,
    pub route53_error: Option<String>,
    /// The watchers' quorum when it was asked (shared state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<super::quorum::QuorumView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    Started {
        env: String,
        targets: usize,
        action: WatchAction,
        confirm_for_ms: u64,
        cooldown_ms: u64,
        require_route53: bool,
        runbook: Option<String>,
    },
    Transition {
        target: String,
        region: String,
        role: Option<Role>,
        from: Phase,
        to: Phase,
        reason: Option<Reason>,
        detail: String,
        streak: u32,
    },
    Decision {
        decision: Verdict,
        action: WatchAction,
        evidence: Evidence,
    },
    ActionStarted {
        action: WatchAction,
        runbook: Option<String>,
    },
    ActionFinished {
        action: WatchAction,
        ok: bool,
        run_id: Option<String>,
        outcome: String,
    },
    /// An outstanding fence is being completed (its region answers again).
    FenceStarted {
        what: String,
    },
    FenceFinished {
        ok: bool,
        run_id: Option<String>,
        outcome: String,
    },
    Notified {
        delivery: Delivery,
    },
    Stopped {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct WatchRecord {
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub event: WatchEvent,
}

/// Where watch records go besides the journal (the terminal).
pub trait WatchSink: Send + Sync {
    fn record(&self, r: &WatchRecord);
}

/// The watch journal: one JSON record per line, each batch written whole and fsync'd.
pub struct WatchJournal {
    path: PathBuf,
    file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
#[error("watch journal {path}: {source}")]
pub struct JournalIo {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl WatchJournal {
    pub fn path_for(state_dir: &Path, env: &str) -> PathBuf {
        state_dir.join("watch").join(format!("{env}.jsonl"))
    }

    pub fn open(state_dir: &Path, env: &str) -> Result<Self, JournalIo> {
        let path = Self::path_for(state_dir, env);
        let io = |source| JournalIo {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        Ok(Self { path, file })
    }

    pub fn append(&mut self, records: &[WatchRecord]) -> Result<(), JournalIo> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).expect("records serialize");
            buf.push(b'\n');
        }
        let io = |source| JournalIo {
            path: self.path.display().to_string(),
            source,
        };
        self.file.write_all(&buf).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// When the last action was started, if the journal has one (cooldown survives restarts).
    pub fn last_action(state_dir: &Path, env: &str) -> Option<DateTime<Utc>> {
        let text = std::fs::read_to_string(Self::path_for(state_dir, env)).ok()?;
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|v| {
                (v.get("event")?.as_str()? == "action_started")
                    .then(|| v.get("at")?.as_str()?.parse().ok())?
            })
    }
}

impl WatchEvent {
    /// What happened, in one line for people.
    pub fn describe(&self) -> String {
        match self {
                WatchEvent::Started { env, targets, action, confirm_for_ms, cooldown_ms, require_route53, runbook } => format!(
                    "watching `{env}`: {targets} targets; on a confirmed primary outage ({}): {}{}{}; cooldown {}",
                    humantime::format_duration(std::time::Duration::from_millis(*confirm_for_ms)),
                    match action {
                        WatchAction::Notify => "notify".to_string(),
                        WatchAction::Failover => "FAIL OVER".to_string(),
                    },
                    runbook.as_ref().map(|r| format!(" with {r}")).unwrap_or_default(),
                    if *require_route53 { " (Route 53 must agree)" } else { "" },
                    humantime::format_duration(std::time::Duration::from_millis(*cooldown_ms)),
                ),
                WatchEvent::Transition { target, role, from, to, reason, detail, streak, .. } => format!(
                    "{target}{}: {from} -> {to}{} ({detail}; {streak} in a row)",
                    role.map(|r: Role| format!(" [{r}]")).unwrap_or_default(),
                    reason.map(|x| format!(", {x}")).unwrap_or_default()
                ),
                WatchEvent::Decision { decision, evidence, .. } => format!(
                    "DECISION {}: primary [{}], standby [{}]{}{}{}",
                    decision.as_str(),
                    evidence.primary.iter().map(|t| format!("{} {}", t.target, t.state)).collect::<Vec<_>>().join(", "),
                    evidence.standby.iter().map(|t| format!("{} {}", t.target, t.state)).collect::<Vec<_>>().join(", "),
                    evidence.route53_unhealthy.map(|u| format!(", route53 {}", if u { "unhealthy" } else { "healthy" })).unwrap_or_default(),
                    evidence.route53_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default(),
                    evidence.quorum.as_ref().map(|q| format!(
                        ", watchers agreeing {}/{} live (needs {}){}",
                        q.agreeing, q.live, q.needed,
                        q.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
                    )).unwrap_or_default(),
                ),
                WatchEvent::ActionStarted { action, runbook } => format!("ACTION {action:?} started{}", runbook.as_ref().map(|r| format!(": {r}")).unwrap_or_default()),
                WatchEvent::ActionFinished { action, ok, run_id, outcome } => format!(
                    "ACTION {action:?} {}: {outcome}{}",
                    if *ok { "finished" } else { "FAILED" },
                    run_id.as_ref().map(|r| format!(" (drctl status {r})")).unwrap_or_default()
                ),
                // The completer also does deferred control-plane work; its words say which.
                WatchEvent::FenceStarted { what } if what.starts_with("deferred work") => format!("DEFERRED {what}"),
                WatchEvent::FenceStarted { what } => format!("FENCE outstanding, its region answers again: {what}"),
                WatchEvent::FenceFinished { ok, run_id, outcome } => format!(
                    "{} {}: {outcome}{}",
                    if outcome.starts_with("deferred work") { "DEFERRED" } else { "FENCE" },
                    if *ok { "completed" } else { "FAILED" },
                    run_id.as_ref().map(|r| format!(" (drctl status {r})")).unwrap_or_default()
                ),
                WatchEvent::Notified { delivery } => match &delivery.error {
                    None => format!("notified {} ({} attempt(s))", delivery.sink, delivery.attempts),
                    Some(e) => format!("notification to {} FAILED after {} attempt(s): {e}", delivery.sink, delivery.attempts),
                },
                WatchEvent::Stopped { reason } => format!("stopped: {reason}"),
            }
    }
}
