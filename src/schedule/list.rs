//! `drctl drill --list`: one row per schedule, as JSON or a table.

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use super::{Compiled, LastRun, ScheduleState};
use crate::config::schedule::{DrillMode, DrillSchedule, MissedPolicy};

/// One schedule as `drctl drill --list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListRow {
    pub name: String,
    pub mode: DrillMode,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    /// The next slot that will run (blackouts skipped); `None` when disabled, invalid, or
    /// there is none ahead.
    pub next_utc: Option<DateTime<Utc>>,
    /// The same instant on the schedule's wall clock.
    pub next_local: Option<DateTime<FixedOffset>>,
    pub last: Option<LastRun>,
    pub missed: MissedPolicy,
    /// One line per blackout window.
    pub blackout: Vec<String>,
    /// Why the schedule cannot be evaluated, if it cannot.
    pub error: Option<String>,
}

/// The rows of `drctl drill --list` at `now`, in the file's order.
pub fn list(
    schedules: &[DrillSchedule],
    state: &ScheduleState,
    now: DateTime<Utc>,
) -> Vec<ListRow> {
    schedules
        .iter()
        .map(|s| {
            let compiled = Compiled::new(s);
            let next_utc = match &compiled {
                Ok(c) if s.enabled => c.next_run(now),
                _ => None,
            };
            let next_local = match (&compiled, next_utc) {
                (Ok(c), Some(t)) => Some(t.with_timezone(&c.tz).fixed_offset()),
                _ => None,
            };
            ListRow {
                name: s.name.clone(),
                mode: s.mode,
                cron: s.cron.clone(),
                timezone: s.timezone.clone(),
                enabled: s.enabled,
                next_utc,
                next_local,
                last: state.last.get(&s.name).cloned(),
                missed: s.missed,
                blackout: s.blackout.iter().map(|b| b.summary()).collect(),
                error: compiled.err(),
            }
        })
        .collect()
}

/// The rows as a table for a terminal.
pub fn render_table(rows: &[ListRow]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t.set_header(vec![
        "SCHEDULE",
        "MODE",
        "CRON",
        "NEXT (UTC)",
        "NEXT (LOCAL)",
        "LAST",
        "BLACKOUT",
    ]);
    for r in rows {
        let (next_utc, next_local) = match (&r.error, r.enabled, r.next_utc, r.next_local) {
            (Some(e), ..) => (format!("invalid: {e}"), String::new()),
            (None, false, ..) => ("disabled".into(), String::new()),
            (None, true, Some(u), Some(l)) => (
                u.format("%a %Y-%m-%d %H:%M").to_string(),
                format!("{} {}", l.format("%a %Y-%m-%d %H:%M"), r.timezone),
            ),
            _ => ("none".into(), String::new()),
        };
        let last = match &r.last {
            None => "never".to_string(),
            Some(l) => {
                let late = l.started - l.slot;
                let late = if late >= chrono::Duration::minutes(1) {
                    format!(" (started {}m late)", late.num_minutes())
                } else {
                    String::new()
                };
                format!("{} {}{late}", l.slot.format("%Y-%m-%d %H:%M"), l.outcome)
            }
        };
        let blackout = if r.blackout.is_empty() {
            "-".to_string()
        } else {
            r.blackout.join("\n")
        };
        t.add_row(vec![
            r.name.clone(),
            r.mode.to_string(),
            r.cron.clone(),
            next_utc,
            next_local,
            last,
            blackout,
        ]);
    }
    t.to_string()
}
