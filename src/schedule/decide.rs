//! What to do now, per schedule: the pure decision the agent acts on.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Compiled, ScheduleState, GRACE, MAX_SLOTS};
use crate::config::schedule::{DrillSchedule, MissedPolicy};

/// One thing to do (or not) for one schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub schedule: String,
    #[serde(flatten)]
    pub action: Action,
    /// Every slot of the schedule up to this one is decided once the action is taken (the
    /// agent records it in [`ScheduleState::handled`]). `None` for `Wait`.
    pub through: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Run the drill for this slot now.
    Run { slot: DateTime<Utc> },
    /// This slot does not run, for this reason (reported, not retried).
    Skip {
        slot: DateTime<Utc>,
        why: SkipReason,
    },
    /// Nothing to do; the next run is then (`None`: disabled, invalid, or none ahead).
    Wait { next: Option<DateTime<Utc>> },
}

impl Action {
    /// The slot a `Run` or `Skip` is about.
    pub fn slot(&self) -> Option<DateTime<Utc>> {
        match self {
            Action::Run { slot } | Action::Skip { slot, .. } => Some(*slot),
            Action::Wait { .. } => None,
        }
    }
}

/// Why a slot did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// `count` slots (the newest is the skipped one) passed while the agent was not running,
    /// and the missed policy did not run them (`skip`, or `run_once` past `catch_up_within`
    /// or inside a blackout). `at_least`: there were more than drctl counts.
    Missed { count: usize, at_least: bool },
    /// The slot, or the late start of a waiting or catch-up run, falls in this window.
    Blackout { window: String },
    /// The schedule has `enabled: false`.
    Disabled,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Missed { count, at_least } => write!(
                f,
                "missed {}{count} slot{} while the agent was not running",
                if *at_least { "at least " } else { "" },
                if *count == 1 { "" } else { "s" }
            ),
            SkipReason::Blackout { window } => write!(f, "in blackout window {window}"),
            SkipReason::Disabled => f.write_str("the schedule is disabled"),
        }
    }
}

/// What each schedule does at `now`, given what `state` says is already decided. Every
/// schedule gets at least one decision: a `Wait`, a `Run` or a `Skip`; one that comes back
/// while the agent was down may get a `Skip` (missed) then a `Run` (a slot on time now).
/// Slots older than [`GRACE`] count as missed: this is [`due_with`] for an agent that was idle.
pub fn due(
    schedules: &[DrillSchedule],
    state: &ScheduleState,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    due_with(schedules, state, now, None)
}

/// [`due`], for an agent that has been busy running drills since `busy_since`: slots after it
/// waited their turn and run late rather than count as missed.
pub fn due_with(
    schedules: &[DrillSchedule],
    state: &ScheduleState,
    now: DateTime<Utc>,
    busy_since: Option<DateTime<Utc>>,
) -> Vec<Decision> {
    schedules
        .iter()
        .flat_map(|s| decide(s, state, now, busy_since))
        .collect()
}

fn decide(
    s: &DrillSchedule,
    state: &ScheduleState,
    now: DateTime<Utc>,
    busy_since: Option<DateTime<Utc>>,
) -> Vec<Decision> {
    let one = |action, through| {
        vec![Decision {
            schedule: s.name.clone(),
            action,
            through,
        }]
    };
    let Ok(c) = Compiled::new(s) else {
        return one(Action::Wait { next: None }, None);
    };
    // Not seen before: only a slot on time now counts; older ones predate the schedule's
    // arrival under the agent and are neither run nor missed.
    let cursor = state.cursor(&s.name).unwrap_or(now - GRACE);
    let on_time = |t: DateTime<Utc>| t > now - GRACE || busy_since.is_some_and(|b| t > b);

    // The slots in (cursor, now], newest first.
    let mut newest: Option<DateTime<Utc>> = None;
    let mut fresh: Option<DateTime<Utc>> = None;
    let mut missed: Option<DateTime<Utc>> = None;
    let mut missed_count = 0usize;
    let mut blacked: Option<(DateTime<Utc>, String)> = None;
    let mut at_least = false;
    let mut t = c.slot_before(now, true);
    let mut seen = 0;
    while let Some(slot) = t.filter(|x| *x > cursor) {
        seen += 1;
        if seen > MAX_SLOTS {
            at_least = true;
            break;
        }
        newest.get_or_insert(slot);
        match c.blackout(slot) {
            Some((w, _)) => {
                blacked.get_or_insert_with(|| (slot, w.to_string()));
            }
            None if on_time(slot) => {
                fresh.get_or_insert(slot);
            }
            None => {
                missed.get_or_insert(slot);
                missed_count += 1;
            }
        }
        t = c.slot_before(slot, false);
    }
    let Some(through) = newest else {
        let next = s.enabled.then(|| c.next_run(now)).flatten();
        return one(Action::Wait { next }, None);
    };
    if !s.enabled {
        return one(
            Action::Skip {
                slot: through,
                why: SkipReason::Disabled,
            },
            Some(through),
        );
    }
    // A drill never starts inside a blackout: not on time, not late, not as a catch-up.
    let now_blacked = c.blackout(now).map(|(w, _)| w.to_string());
    let mut out = Vec::new();
    let mut push = |action, through| {
        out.push(Decision {
            schedule: s.name.clone(),
            action,
            through: Some(through),
        })
    };
    let skip_missed = |slot| Action::Skip {
        slot,
        why: SkipReason::Missed {
            count: missed_count,
            at_least,
        },
    };
    match (fresh, missed) {
        (Some(f), m) => {
            if let Some(m) = m {
                push(skip_missed(m), m);
            }
            match now_blacked {
                Some(window) => push(
                    Action::Skip {
                        slot: f,
                        why: SkipReason::Blackout { window },
                    },
                    through,
                ),
                None => push(Action::Run { slot: f }, through),
            }
        }
        (None, Some(m)) => {
            let young =
                chrono::Duration::from_std(s.catch_up_within).is_ok_and(|within| now - m <= within);
            if s.missed == MissedPolicy::RunOnce && young && now_blacked.is_none() {
                push(Action::Run { slot: m }, through);
            } else {
                push(skip_missed(m), through);
            }
        }
        (None, None) => {
            let (slot, window) =
                blacked.expect("a slot that is neither fresh nor missed is blacked out");
            push(
                Action::Skip {
                    slot,
                    why: SkipReason::Blackout { window },
                },
                through,
            );
        }
    }
    out
}
