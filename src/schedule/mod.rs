//! The drill scheduler: when each `drill.schedules` entry runs, pure and clock-driven so that
//! tests control time. Reference: docs/drills-schedules.md.
//!
//! - [`next_run`]: the next cron slot, in the schedule's zone, that is not blacked out.
//! - [`due`]: what to do now, per schedule: run a slot, skip one (missed, blackout,
//!   disabled) or wait; from the persistent [`ScheduleState`] (`schedules.json`).
//! - [`Agent`]: the loop `drctl agent` drives. Drills run one at a time, in slot order.
//! - [`list`]: the rows of `drctl drill --list`.
//!
//! A slot is the instant a cron expression names. Slots up to a schedule's cursor (the newest
//! slot decided) are done; a slot after it is run when it comes, or is missed if it is older
//! than [`GRACE`] when the agent first looks at it (the agent was down).

mod agent;
mod decide;
mod list;
mod state;
mod window;

#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::config::schedule::{BlackoutWindow, DrillSchedule};

pub use agent::{Agent, DrillRunner, RunOutcome, MAX_SLEEP};
pub use decide::{due, due_with, Action, Decision, SkipReason};
pub use list::{list, render_table, ListRow};
pub use state::{LastRun, ScheduleState, StateError, STATE_FILE};

/// How old a slot may be when the agent first sees it and still run on time. Older, and the
/// agent was not running at the slot: the slot is missed.
pub const GRACE: chrono::Duration = chrono::Duration::seconds(60);

/// Most slots looked at in one decision or search; beyond it a search gives up (a schedule
/// whose every slot for years is blacked out has no next run).
const MAX_SLOTS: usize = 10_000;

/// The time, for the scheduler. Tests use [`ManualClock`].
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that tests set. [`ManualClock::new`] stands still until set or advanced;
/// [`ManualClock::following_tokio`] also moves with tokio's clock, so that under
/// `tokio::time::pause` a sleeping agent wakes to the time it slept until, without real waiting.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<Manual>>,
}

#[derive(Debug)]
struct Manual {
    at: DateTime<Utc>,
    /// The tokio instant at which the clock read `at`, when it follows tokio's clock.
    since: Option<tokio::time::Instant>,
}

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Manual { at, since: None })),
        }
    }

    pub fn following_tokio(at: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Manual {
                at,
                since: Some(tokio::time::Instant::now()),
            })),
        }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        let mut m = self.inner.lock().expect("clock");
        m.at = at;
        if m.since.is_some() {
            m.since = Some(tokio::time::Instant::now());
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        let now = self.now();
        self.set(now + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let m = self.inner.lock().expect("clock");
        match m.since {
            Some(since) => {
                let moved = tokio::time::Instant::now().saturating_duration_since(since);
                m.at + chrono::Duration::from_std(moved).unwrap_or(chrono::Duration::MAX)
            }
            None => m.at,
        }
    }
}

/// A schedule ready to evaluate: cron, zone and windows parsed.
pub(crate) struct Compiled {
    cron: Cron,
    tz: Tz,
    windows: Vec<BlackoutWindow>,
    summaries: Vec<String>,
}

impl Compiled {
    pub(crate) fn new(s: &DrillSchedule) -> Result<Self, String> {
        Ok(Self {
            cron: s.parsed_cron()?,
            tz: s.tz()?,
            windows: s.windows()?,
            summaries: s.blackout.iter().map(|b| b.summary()).collect(),
        })
    }

    /// The first slot after `t` (or at `t`, when `inclusive`).
    fn slot_from(&self, t: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), inclusive)
            .ok()
            .map(|x| x.with_timezone(&Utc))
    }

    /// The newest slot before `t` (or at `t`, when `inclusive`).
    fn slot_before(&self, t: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), inclusive)
            .ok()
            .map(|x| x.with_timezone(&Utc))
    }

    /// The blackout window `t` is in, if any: its summary and when it ends.
    fn blackout(&self, t: DateTime<Utc>) -> Option<(&str, DateTime<Utc>)> {
        window::covering(&self.windows, &self.tz, t)
            .map(|(i, end)| (self.summaries[i].as_str(), end))
    }

    fn next_run(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut t = self.slot_from(after, false)?;
        for _ in 0..MAX_SLOTS {
            match self.blackout(t) {
                None => return Some(t),
                // Jump to the window's end rather than walk every slot inside it.
                Some((_, end)) if end > t => t = self.slot_from(end, true)?,
                Some(_) => t = self.slot_from(t, false)?,
            }
        }
        None
    }
}

/// The next slot of `s` strictly after `after` that is not in a blackout window; `None` if the
/// schedule is invalid or has no such slot within a bounded search.
pub fn next_run(s: &DrillSchedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Compiled::new(s).ok()?.next_run(after)
}

/// The next slot of `s` strictly after `after`, blacked out or not: when the agent must look
/// at the schedule again (a blacked-out slot is reported skipped at its time).
pub fn next_slot(s: &DrillSchedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Compiled::new(s).ok()?.slot_from(after, false)
}

/// Parse a time zone name (for callers that print times in a schedule's zone).
pub fn zone(name: &str) -> Option<Tz> {
    Tz::from_str(name).ok()
}

/// A clock that starts at a chosen time and runs at the real rate from there: `drctl agent`
/// under `DRCTL_TEST_CLOCK` (tests put a cron slot a few seconds ahead without waiting for it).
#[derive(Debug, Clone)]
pub struct OffsetClock {
    start: DateTime<Utc>,
    since: std::time::Instant,
}

impl OffsetClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            start,
            since: std::time::Instant::now(),
        }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.since.elapsed()).unwrap_or_default()
    }
}
