//! Drill schedules (`drill.schedules` in the environment file): when each drill runs under
//! `drctl agent`. This module is the file's shape and its checks; the scheduler that reads it
//! (pure and clock-driven) is [`crate::schedule`]. Reference: docs/drills-schedules.md.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::notify::Notification;
use super::{Diagnostic, Source};

/// One scheduled drill.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillSchedule {
    /// A name for logs, notifications, the schedule state and `drctl drill --list`: letters,
    /// digits, `-` and `_`.
    pub name: String,
    /// When the drill runs: a cron expression of 5 fields (minute hour day-of-month month
    /// day-of-week), or 6/7 with a leading seconds field (one number) and a trailing year;
    /// `@daily`, `@weekly`, `@monthly` also work. Read in `timezone`.
    pub cron: String,
    /// The IANA time zone `cron` and `blackout` are read in (e.g. `Europe/Berlin`).
    #[serde(default = "defaults::timezone")]
    pub timezone: String,
    /// The kind of drill: readiness, isolated or full.
    pub mode: DrillMode,
    /// Windows in which this drill must not start.
    #[serde(default)]
    pub blackout: Vec<Blackout>,
    /// What to do with slots that passed while the agent was not running.
    #[serde(default)]
    pub missed: MissedPolicy,
    /// With `missed: run_once`: the newest missed slot still runs if it is younger than this.
    #[serde(default = "defaults::catch_up_within", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub catch_up_within: Duration,
    /// Where to report this drill's runs and skips.
    #[serde(default)]
    pub notify: Vec<Notification>,
    /// `false` keeps the schedule in the file but runs nothing (its slots are reported skipped).
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// A full drill moves production: its schedule runs only with this set (the standing
    /// approval an operator gives by writing it).
    #[serde(default)]
    pub approve_production: bool,
}

/// The kind of drill (`drctl drill --mode`, docs/drills.md).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DrillMode {
    /// Checks only: is the standby ready to take production? Changes nothing.
    Readiness,
    /// Builds a copy of the app in the standby region, serves it from the drill load balancer,
    /// checks it, and tears it down. Production is untouched.
    Isolated,
    /// A real failover to the standby, a hold, then reprotect and failback.
    Full,
}

impl DrillMode {
    pub const ALL: [DrillMode; 3] = [DrillMode::Readiness, DrillMode::Isolated, DrillMode::Full];

    pub fn as_str(self) -> &'static str {
        match self {
            DrillMode::Readiness => "readiness",
            DrillMode::Isolated => "isolated",
            DrillMode::Full => "full",
        }
    }
}

impl fmt::Display for DrillMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DrillMode {
    type Err = String;
    /// Case-insensitive, so clap can take it with `value_parser = DrillMode::from_str`.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown drill mode `{s}`: use readiness, isolated or full"))
    }
}

/// What happens to slots that passed while the agent was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// Missed slots do not run; the agent reports them (one report, with how many) and waits
    /// for the next slot.
    #[default]
    Skip,
    /// The newest missed slot runs once, late, if it is younger than `catch_up_within`;
    /// older ones are reported as with `skip`.
    RunOnce,
}

impl fmt::Display for MissedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MissedPolicy::Skip => "skip",
            MissedPolicy::RunOnce => "run_once",
        })
    }
}

/// A day of the week, as written in `blackout.days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    #[serde(alias = "monday")]
    Mon,
    #[serde(alias = "tuesday")]
    Tue,
    #[serde(alias = "wednesday")]
    Wed,
    #[serde(alias = "thursday")]
    Thu,
    #[serde(alias = "friday")]
    Fri,
    #[serde(alias = "saturday")]
    Sat,
    #[serde(alias = "sunday")]
    Sun,
}

impl Day {
    pub fn weekday(self) -> chrono::Weekday {
        use chrono::Weekday::*;
        match self {
            Day::Mon => Mon,
            Day::Tue => Tue,
            Day::Wed => Wed,
            Day::Thu => Thu,
            Day::Fri => Fri,
            Day::Sat => Sat,
            Day::Sun => Sun,
        }
    }
}

/// A window in which a drill must not start, in the schedule's time zone. Two shapes:
///
/// - a time of day: `from: "22:00"`, `to: "06:00"` (HH:MM, `to` may be `24:00`), on every day
///   or on `days` (the day the window starts on). `to` earlier than `from` crosses midnight.
///   `days` alone (no `from`/`to`) is whole days.
/// - a freeze: `from: 2026-12-20`, `to: 2027-01-03` (YYYY-MM-DD), whole days, both included.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    /// Days of the week the window starts on (default: every day). Not with dates.
    #[serde(default)]
    pub days: Vec<Day>,
    /// `HH:MM` (start of a daily window, included) or `YYYY-MM-DD` (first day of a freeze).
    #[serde(default)]
    pub from: Option<String>,
    /// `HH:MM` (end of a daily window, excluded) or `YYYY-MM-DD` (last day of a freeze, included).
    #[serde(default)]
    pub to: Option<String>,
    /// Why, for `drctl drill --list` and skip reports (e.g. "year-end change freeze").
    #[serde(default)]
    pub reason: Option<String>,
}

/// A blackout window, checked and typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlackoutWindow {
    /// From `from` (minutes after midnight, included) to `to` (excluded; 1440 is midnight at
    /// the end of the day). `to <= from` crosses midnight into the next day. `days` empty: every
    /// day; else the days the window starts on.
    Daily {
        days: Vec<chrono::Weekday>,
        from: u32,
        to: u32,
    },
    /// Whole days, both included.
    Dates { from: NaiveDate, to: NaiveDate },
}

impl Blackout {
    /// The typed window, or what is wrong with it.
    pub fn window(&self) -> Result<BlackoutWindow, String> {
        let days: Vec<chrono::Weekday> = self.days.iter().map(|d| d.weekday()).collect();
        match (self.from.as_deref(), self.to.as_deref()) {
            (None, None) if days.is_empty() => {
                Err("a blackout needs `days`, or `from` and `to`".into())
            }
            (None, None) => Ok(BlackoutWindow::Daily {
                days,
                from: 0,
                to: 24 * 60,
            }),
            (Some(_), None) | (None, Some(_)) => {
                Err("a blackout needs both `from` and `to` (or only `days`)".into())
            }
            (Some(f), Some(t)) => {
                if looks_like_date(f) || looks_like_date(t) {
                    let from = parse_date(f)?;
                    let to = parse_date(t)?;
                    if !days.is_empty() {
                        return Err(
                            "a blackout of dates (a freeze) takes no `days`: it covers every day from `from` to `to`".into(),
                        );
                    }
                    if to < from {
                        return Err(format!("blackout: `to` ({to}) is before `from` ({from})"));
                    }
                    Ok(BlackoutWindow::Dates { from, to })
                } else {
                    let from = parse_hhmm(f, false)?;
                    let to = parse_hhmm(t, true)?;
                    if from == to {
                        return Err(format!(
                            "blackout: `from` and `to` are both {f}: the window would be empty"
                        ));
                    }
                    Ok(BlackoutWindow::Daily { days, from, to })
                }
            }
        }
    }

    /// One line for `drctl drill --list` and skip reports.
    pub fn summary(&self) -> String {
        let what = match self.window() {
            Ok(w) => w.to_string(),
            Err(e) => format!("invalid: {e}"),
        };
        match &self.reason {
            Some(r) => format!("{what} ({r})"),
            None => what,
        }
    }
}

impl fmt::Display for BlackoutWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hhmm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        match self {
            BlackoutWindow::Daily { days, from, to } => {
                let on = if days.is_empty() {
                    "daily".to_string()
                } else {
                    days.iter()
                        .map(|d| d.to_string().to_lowercase())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                if *from == 0 && *to == 24 * 60 {
                    write!(f, "{on} all day")
                } else {
                    write!(f, "{on} {}-{}", hhmm(*from), hhmm(*to))
                }
            }
            BlackoutWindow::Dates { from, to } => write!(f, "{from} to {to}"),
        }
    }
}

fn looks_like_date(s: &str) -> bool {
    s.trim().len() >= 8 && s.trim().chars().filter(|c| *c == '-').count() == 2
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("blackout: `{s}` is not a date like 2026-12-20"))
}

/// `HH:MM` as minutes after midnight; `24:00` only where `end` allows it.
fn parse_hhmm(s: &str, end: bool) -> Result<u32, String> {
    let bad = || format!("blackout: `{s}` is not a time like 22:00 (HH:MM, 00:00 to 23:59)");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    match (h, m) {
        (24, 0) if end => Ok(24 * 60),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

/// One problem with a schedule: the schedule's own key it is about, and what to say.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleProblem {
    /// The key in the schedule the problem is about (`cron`, `timezone`, `blackout`, ...).
    pub field: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

impl DrillSchedule {
    /// The time zone, or why `timezone` is not one.
    pub fn tz(&self) -> Result<Tz, String> {
        self.timezone.parse::<Tz>().map_err(|_| {
            let close = chrono_tz::TZ_VARIANTS
                .iter()
                .find(|z| z.name().eq_ignore_ascii_case(self.timezone.trim()));
            match close {
                Some(z) => format!(
                    "timezone `{}` is not an IANA time zone name: did you mean `{}`?",
                    self.timezone,
                    z.name()
                ),
                None => format!(
                    "timezone `{}` is not an IANA time zone name (like UTC or Europe/Berlin)",
                    self.timezone
                ),
            }
        })
    }

    /// The cron expression, parsed, or why it does not parse.
    pub fn parsed_cron(&self) -> Result<Cron, String> {
        let c = self.cron.trim();
        let fields: Vec<&str> = c.split_whitespace().collect();
        if !c.starts_with('@') && !(5..=7).contains(&fields.len()) {
            return Err(format!(
                "cron `{}` has {} fields: write 5 (minute hour day-of-month month day-of-week)",
                self.cron,
                fields.len()
            ));
        }
        // With 6 or 7 fields the first is seconds: a drill is scheduled to the minute, so it
        // must be one second of the minute, not several.
        if fields.len() >= 6 && !fields[0].parse::<u8>().is_ok_and(|s| s < 60) {
            return Err(format!(
                "cron `{}`: the seconds field `{}` must be one number (0-59): drills are scheduled to the minute",
                self.cron, fields[0]
            ));
        }
        Cron::from_str(c).map_err(|e| format!("cron `{}` is not a cron expression: {e}", self.cron))
    }

    /// The blackout windows, typed, or the first that is wrong.
    pub fn windows(&self) -> Result<Vec<BlackoutWindow>, String> {
        self.blackout.iter().map(Blackout::window).collect()
    }

    /// Everything wrong with this schedule on its own (not duplicate names: see
    /// [`validate_all`]).
    pub fn problems(&self) -> Vec<ScheduleProblem> {
        let mut out = Vec::new();
        let mut push = |field, message: String, hint: Option<&str>| {
            out.push(ScheduleProblem {
                field,
                message: format!("schedule `{}`: {message}", self.name),
                hint: hint.map(str::to_string),
            })
        };
        if !safe_identifier(&self.name) {
            push(
                "name",
                format!("name `{}` is not a safe name", self.name),
                Some("use letters, digits, `-` and `_`, at most 64 (it names state and report files)"),
            );
        }
        let tz = self.tz();
        if let Err(m) = &tz {
            push(
                "timezone",
                m.clone(),
                Some("`timedatectl list-timezones` lists them"),
            );
        }
        let cron = self.parsed_cron();
        if let Err(m) = &cron {
            push(
                "cron",
                m.clone(),
                Some("e.g. `0 3 * * 1-5` (03:00 on weekdays); see docs/drills-schedules.md"),
            );
        }
        for b in &self.blackout {
            if let Err(m) = b.window() {
                push(
                    "blackout",
                    m,
                    Some("a time window `{ days: [sat, sun], from: \"00:00\", to: \"24:00\" }` or a freeze `{ from: 2026-12-20, to: 2027-01-03 }`"),
                );
            }
        }
        if self.catch_up_within < Duration::from_secs(60) {
            push(
                "catch_up_within",
                format!(
                    "catch_up_within is {}: it must be at least 1m",
                    humantime::format_duration(self.catch_up_within)
                ),
                Some("a slot is only missed once it is a minute old"),
            );
        }
        for n in &self.notify {
            let (Notification::Webhook(u) | Notification::Slack(u)) = n;
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                push(
                    "notify",
                    "a notify URL must start with http:// or https://".into(),
                    None,
                );
            }
        }
        if let (Ok(cron), Ok(tz)) = (&cron, &tz) {
            match first_slots(cron, tz) {
                None => push(
                    "cron",
                    format!("cron `{}` never matches a time", self.cron),
                    Some("check the day of month against the month (e.g. 30 2 is 30 February)"),
                ),
                Some(slots) if self.mode == DrillMode::Full => {
                    // Full drills fail production over: at most one a day, in the
                    // schedule's zone (so 23h and 25h days around DST still count as one).
                    let days: Vec<NaiveDate> = slots.iter().map(|t| t.date_naive()).collect();
                    if days.windows(2).any(|w| w[0] == w[1]) {
                        push(
                            "cron",
                            format!(
                                "cron `{}` runs a full drill more than once a day: full drills fail production over and may run at most daily",
                                self.cron
                            ),
                            Some("schedule full drills weekly or monthly (e.g. `0 3 1 * *`); use isolated drills for anything more often"),
                        );
                    }
                }
                Some(_) => {}
            }
        }
        out
    }

    /// `Ok` or every problem of this schedule, one per line.
    pub fn validate(&self) -> Result<(), String> {
        join(self.problems().into_iter().map(|p| p.message).collect())
    }
}

fn join(msgs: Vec<String>) -> Result<(), String> {
    if msgs.is_empty() {
        Ok(())
    } else {
        Err(msgs.join("\n"))
    }
}

/// The first slots of a cron from a fixed instant (so the checks do not depend on today),
/// over at most a year and 1000 slots; `None` if it never matches.
fn first_slots(cron: &Cron, tz: &Tz) -> Option<Vec<chrono::DateTime<Tz>>> {
    let start = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()?
        .with_timezone(tz);
    let first = cron.find_next_occurrence(&start, true).ok()?;
    let limit = first + chrono::Duration::days(366);
    let mut out = vec![first];
    while out.len() < 1000 {
        match cron.find_next_occurrence(out.last()?, false) {
            Ok(t) if t <= limit => out.push(t),
            _ => break,
        }
    }
    Some(out)
}

/// A schedule name: it goes into file names. Letters, digits, `-`, `_`, starting with a letter
/// or digit, at most 64 characters.
pub fn safe_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// Every problem of a list of schedules (each one's own, and duplicate names), or `Ok`.
pub fn validate_all(schedules: &[DrillSchedule]) -> Result<(), String> {
    join(
        all_problems(schedules)
            .into_iter()
            .map(|(_, p)| p.message)
            .collect(),
    )
}

/// Problems with the index of the schedule they are in.
fn all_problems(schedules: &[DrillSchedule]) -> Vec<(usize, ScheduleProblem)> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, s) in schedules.iter().enumerate() {
        if !seen.insert(s.name.as_str()) {
            out.push((
                i,
                ScheduleProblem {
                    field: "name",
                    message: format!("schedule `{}` is defined twice", s.name),
                    hint: Some(
                        "schedule names must be unique: the agent keeps its state by name".into(),
                    ),
                },
            ));
        }
        out.extend(s.problems().into_iter().map(|p| (i, p)));
    }
    out
}

/// The problems of `drill.schedules`, each at its place in the file (the schedule's key, else
/// its list item, else `drill.schedules`).
pub fn diagnostics(src: &Source, schedules: &[DrillSchedule]) -> Vec<Diagnostic> {
    all_problems(schedules)
        .into_iter()
        .map(|(i, p)| {
            let (line, column) = place(&src.text, i, p.field).unwrap_or((1, 1));
            let d = Diagnostic::at_line(src, line, column, p.message);
            match p.hint {
                Some(h) => d.hint(h),
                None => d,
            }
        })
        .collect()
}

/// The 1-based place of `field` in the `index`-th item of `drill.schedules` (block style).
fn place(text: &str, index: usize, field: &str) -> Option<(u64, u64)> {
    let (key_line, key_col) = super::locate::locate(text, &["drill", "schedules"])?;
    let lines: Vec<&str> = text.lines().collect();
    let key_indent = key_col as usize - 1;
    let indent = |l: &str| l.len() - l.trim_start().len();
    // The list items: lines starting "- " at one indent, at least the key's.
    let mut items: Vec<usize> = Vec::new();
    let mut item_indent = None;
    let mut end = lines.len();
    for (n, l) in lines.iter().enumerate().skip(key_line as usize) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let ind = indent(l);
        let is_item = t == "-" || t.starts_with("- ");
        if ind < key_indent || (ind == key_indent && !is_item) {
            end = n;
            break;
        }
        if is_item && item_indent.is_none_or(|i| i == ind) {
            item_indent = Some(ind);
            items.push(n);
        }
    }
    let Some(&start) = items.get(index) else {
        return Some((key_line, key_col));
    };
    let stop = items.get(index + 1).copied().unwrap_or(end);
    for (n, l) in lines.iter().enumerate().take(stop).skip(start) {
        let mut body = l.trim_start();
        let mut col = indent(l);
        while let Some(rest) = body.strip_prefix("- ") {
            col += 2 + (rest.len() - rest.trim_start().len());
            body = rest.trim_start();
        }
        if body
            .strip_prefix(field)
            .is_some_and(|r| r.trim_start().starts_with(':'))
        {
            return Some((n as u64 + 1, col as u64 + 1));
        }
    }
    Some((start as u64 + 1, indent(lines[start]) as u64 + 1))
}

mod defaults {
    use std::time::Duration;
    pub fn timezone() -> String {
        "UTC".into()
    }
    pub fn catch_up_within() -> Duration {
        Duration::from_secs(3600)
    }
    pub fn enabled() -> bool {
        true
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
