//! The scheduled side of drills: what `drctl agent` runs for each due schedule. A drill under
//! the environment's lease like a person's (`drctl drill`), then its result, with the RTO/RPO
//! verdicts and the report's location, to the schedule's `notify` sinks. A drill the
//! environment is not ready for (not `protected`, the primary failing, leftovers) is skipped
//! and said so; a skipped slot (missed, blackout) is notified too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::drill_modes::{execute, prepare, refused};
use super::{Approvals, Context, Hooks};
use crate::config::schedule::DrillSchedule;
use crate::engine::progress::ProgressSink;
use crate::probe::notify::{send_now, Message};
use crate::schedule::{DrillRunner, RunOutcome, SkipReason};

/// Bound on one notification post, and posts per message.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
const NOTIFY_ATTEMPTS: u32 = 3;

pub struct ScheduledRunner {
    pub ctx: Context,
    pub env_file: PathBuf,
    pub progress: Arc<dyn ProgressSink>,
    /// The agent's: a signal stops a running drill, which then tears down.
    pub shutdown: CancellationToken,
}

/// Tell `sinks` how a drill went (bounded: a dead webhook delays the end by at most
/// attempts x timeout); failed deliveries are noted, never fatal. URLs are never printed.
pub async fn notify(
    sinks: &[crate::config::env::Notification],
    progress: &dyn ProgressSink,
    text: String,
    document: serde_json::Value,
) {
    let m = Message { text, document };
    for d in send_now(sinks, &m, NOTIFY_TIMEOUT, NOTIFY_ATTEMPTS).await {
        if !d.ok {
            progress.notice(&format!(
                "notification to {} failed after {} attempt(s): {}",
                d.sink,
                d.attempts,
                d.error.unwrap_or_default()
            ));
        }
    }
}

impl ScheduledRunner {
    async fn tell(&self, s: &DrillSchedule, text: String, document: serde_json::Value) {
        self.progress.notice(&text);
        notify(&s.notify, self.progress.as_ref(), text, document).await;
    }
}

#[async_trait]
impl DrillRunner for ScheduledRunner {
    async fn run(&self, s: &DrillSchedule, slot: DateTime<Utc>) -> RunOutcome {
        let mut ctx = self.ctx.clone();
        // The lease names it a drill: a watch's failover waits for a drill to yield.
        ctx.command = format!(
            "drctl agent: drill {} {}",
            s.name,
            super::drill::lease_label(s.mode.as_str())
        );
        if s.mode == crate::config::schedule::DrillMode::Full && !s.approve_production {
            let why = "a scheduled full drill moves production: it needs `approve_production: true` on its schedule".to_string();
            self.tell(
                s,
                format!("drill {} (full) refused: {why}", s.name),
                json!({"type": "drill", "schedule": s.name, "refused": [why.clone()]}),
            )
            .await;
            return RunOutcome::Refused(why);
        }
        let hooks = Hooks {
            progress: self.progress.clone(),
            // The schedule in drctl.yaml is the operator's standing approval.
            approvals: Approvals::Auto { gates: None },
            prompter: None,
            break_lock: false,
        };
        let base =
            json!({"type": "drill", "schedule": s.name, "mode": s.mode.to_string(), "slot": slot});
        let p = match prepare(&ctx, &self.env_file, s.mode).await {
            Ok(p) => p,
            Err(e) => {
                let why = e.to_string();
                let mut doc = base.clone();
                doc["error"] = json!(why);
                self.tell(
                    s,
                    format!("drill {} ({}) could not start: {why}", s.name, s.mode),
                    doc,
                )
                .await;
                return RunOutcome::Failed(why);
            }
        };
        if let Some(why) = refused(&p) {
            let mut doc = base.clone();
            doc["refused"] = json!(p.preflight.refusals);
            self.tell(
                s,
                format!(
                    "drill {} ({}) skipped, the environment is not ready: {why}",
                    s.name, s.mode
                ),
                doc,
            )
            .await;
            return RunOutcome::Refused(why);
        }
        match execute(&ctx, &hooks, &self.env_file, &p, self.shutdown.clone()).await {
            Ok(o) => {
                let mut doc = serde_json::to_value(&o).unwrap_or_default();
                if let (Some(d), Some(b)) = (doc.as_object_mut(), base.as_object()) {
                    d.extend(b.clone());
                }
                let text = format!("drill {}: {}", s.name, o.headline());
                self.tell(s, text.clone(), doc).await;
                if o.passed {
                    RunOutcome::Passed
                } else {
                    RunOutcome::Failed(text)
                }
            }
            Err(e) => {
                let why = e.to_string();
                let mut doc = base;
                doc["error"] = json!(why);
                self.tell(
                    s,
                    format!("drill {} ({}) failed: {why}", s.name, s.mode),
                    doc,
                )
                .await;
                RunOutcome::Failed(why)
            }
        }
    }

    async fn skipped(&self, s: &DrillSchedule, slot: DateTime<Utc>, why: &SkipReason) {
        self.tell(
            s,
            format!("drill {} ({}) skipped for {slot}: {why}", s.name, s.mode),
            json!({"type": "drill_skipped", "schedule": s.name, "mode": s.mode.to_string(), "slot": slot, "why": why.to_string()}),
        )
        .await;
    }
}
