//! Is an instant inside a blackout window, and when does that window end? Read on the wall
//! clock of the schedule's zone.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::config::schedule::BlackoutWindow;

/// The first window covering `t`: its index and the instant it ends (UTC).
pub(super) fn covering(
    windows: &[BlackoutWindow],
    tz: &Tz,
    t: DateTime<Utc>,
) -> Option<(usize, DateTime<Utc>)> {
    let local = t.with_timezone(tz);
    let date = local.date_naive();
    let second = local.time().num_seconds_from_midnight();
    windows.iter().enumerate().find_map(|(i, w)| {
        let end = match w {
            BlackoutWindow::Daily { days, from, to } => {
                let on = |d: NaiveDate| days.is_empty() || days.contains(&d.weekday());
                let (from_s, to_s) = (from * 60, to * 60);
                if from < to {
                    if on(date) && (from_s..to_s).contains(&second) {
                        at(tz, date, *to)
                    } else {
                        None
                    }
                } else if on(date) && second >= from_s {
                    // Crosses midnight: started today, ends tomorrow.
                    at(tz, date.succ_opt()?, *to)
                } else if second < to_s && date.pred_opt().is_some_and(on) {
                    // Crosses midnight: started yesterday, ends today.
                    at(tz, date, *to)
                } else {
                    None
                }
            }
            BlackoutWindow::Dates { from, to } if (*from..=*to).contains(&date) => {
                at(tz, to.succ_opt()?, 0)
            }
            BlackoutWindow::Dates { .. } => None,
        }?;
        Some((i, end))
    })
}

/// `minutes` after the start of `date` on the zone's wall clock, as an instant. A wall time
/// that happens twice (clocks going back) is its first; one that never happens (clocks going
/// forward) is the first real minute after it.
fn at(tz: &Tz, date: NaiveDate, minutes: u32) -> Option<DateTime<Utc>> {
    let mut naive: NaiveDateTime =
        date.and_hms_opt(0, 0, 0)? + chrono::Duration::minutes(minutes.into());
    for _ in 0..=24 * 60 {
        if let Some(t) = tz.from_local_datetime(&naive).earliest() {
            return Some(t.with_timezone(&Utc));
        }
        naive += chrono::Duration::minutes(1);
    }
    None
}
