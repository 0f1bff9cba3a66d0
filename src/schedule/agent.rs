//! The loop `drctl agent` drives: decide, act one drill at a time, record, sleep.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{
    due_with, next_slot, Action, Clock, LastRun, ScheduleState, SkipReason, StateError, GRACE,
};
use crate::config::schedule::DrillSchedule;

/// The longest the agent sleeps between two looks at the clock, so that a change of the wall
/// clock (NTP step, suspend and resume) is noticed within it.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// How a drill ended, as the runner tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "why", rename_all = "snake_case")]
pub enum RunOutcome {
    Passed,
    Failed(String),
    /// It did not start: a precondition said no (the lease is held, the standby is not
    /// ready for a full drill, ...).
    Refused(String),
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunOutcome::Passed => f.write_str("passed"),
            RunOutcome::Failed(why) => write!(f, "failed: {why}"),
            RunOutcome::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// What runs the drills (the binary: a drill under the environment's lease, then its report
/// and notifications). The agent calls it for one drill at a time.
#[async_trait]
pub trait DrillRunner: Send + Sync {
    /// Run the drill of `schedule` for `slot` (which may be in the past: it waited its turn,
    /// or is a catch-up) and say how it went. The agent does not cancel a drill it started: a
    /// runner that must stop early on shutdown watches the same token itself.
    async fn run(&self, schedule: &DrillSchedule, slot: DateTime<Utc>) -> RunOutcome;
    /// `slot` of `schedule` will not run, because of `why`.
    async fn skipped(&self, schedule: &DrillSchedule, slot: DateTime<Utc>, why: &SkipReason);
}

/// The scheduler loop over a set of schedules, its state in a file.
pub struct Agent<C: Clock> {
    clock: C,
    schedules: Vec<DrillSchedule>,
    state_path: PathBuf,
    max_sleep: Duration,
}

impl<C: Clock> Agent<C> {
    /// `state_path` is the state file, usually `ScheduleState::path_in(state_dir)`.
    pub fn new(clock: C, schedules: Vec<DrillSchedule>, state_path: PathBuf) -> Self {
        Self {
            clock,
            schedules,
            state_path,
            max_sleep: MAX_SLEEP,
        }
    }

    /// Until `shutdown`: run what is due, one drill at a time, in slot order then name order;
    /// report skipped slots; sleep until the next slot (at most [`MAX_SLEEP`]). A drill in
    /// progress finishes before the loop stops; none starts after `shutdown`. The state is
    /// saved before each drill starts (so a crash never runs a slot twice) and after it ends.
    /// Errors: the state file cannot be read, is corrupt, or cannot be written.
    pub async fn run(
        self,
        runner: Arc<dyn DrillRunner>,
        shutdown: CancellationToken,
    ) -> Result<(), StateError> {
        let path = &self.state_path;
        let mut state = ScheduleState::load(path)?;
        // Remember from when each new schedule is watched, so that its slots passing while
        // the agent is down are known to be missed.
        let now = self.clock.now();
        let mut changed = false;
        for s in &self.schedules {
            if state.cursor(&s.name).is_none() {
                state.mark(&s.name, now - GRACE);
                changed = true;
            }
        }
        if changed {
            state.save(path)?;
        }
        let mut busy_since: Option<DateTime<Utc>> = None;
        while !shutdown.is_cancelled() {
            let now = self.clock.now();
            let mut todo: Vec<_> = due_with(&self.schedules, &state, now, busy_since)
                .into_iter()
                .filter_map(|d| Some((d.action.slot()?, d)))
                .collect();
            todo.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.schedule.cmp(&y.schedule)));
            let mut ran = false;
            for (slot, d) in todo {
                let Some(s) = self.schedules.iter().find(|s| s.name == d.schedule) else {
                    continue;
                };
                if let Some(through) = d.through {
                    state.mark(&s.name, through);
                }
                match &d.action {
                    Action::Skip { why, .. } => {
                        state.save(path)?;
                        tracing::info!(schedule = %s.name, %slot, reason = %why, "scheduled drill skipped");
                        runner.skipped(s, slot, why).await;
                    }
                    Action::Run { .. } if shutdown.is_cancelled() => {
                        // Not started: leave the slot undecided for the next agent.
                        return Ok(());
                    }
                    Action::Run { .. } => {
                        let started = self.clock.now();
                        state.last.insert(
                            s.name.clone(),
                            LastRun {
                                slot,
                                started,
                                finished: None,
                                outcome: "running".into(),
                            },
                        );
                        state.save(path)?;
                        tracing::info!(schedule = %s.name, mode = %s.mode, %slot, %started, "scheduled drill starting");
                        let outcome = runner.run(s, slot).await;
                        tracing::info!(schedule = %s.name, %slot, %outcome, "scheduled drill ended");
                        if let Some(l) = state.last.get_mut(&s.name) {
                            l.finished = Some(self.clock.now());
                            l.outcome = outcome.to_string();
                        }
                        state.save(path)?;
                        ran = true;
                    }
                    Action::Wait { .. } => {}
                }
            }
            if ran {
                // Slots that came while drills ran waited their turn: look again at once.
                busy_since = Some(now);
                continue;
            }
            busy_since = None;
            let now = self.clock.now();
            let wake = self
                .schedules
                .iter()
                .filter_map(|s| next_slot(s, now))
                .min();
            let sleep = wake
                .and_then(|w| (w - now).to_std().ok())
                .unwrap_or(self.max_sleep)
                .min(self.max_sleep);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        Ok(())
    }
}
