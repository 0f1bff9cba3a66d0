use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::schedule::{Blackout, Day, DrillMode, DrillSchedule, MissedPolicy};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
}

fn sched(name: &str, cron: &str) -> DrillSchedule {
    DrillSchedule {
        name: name.into(),
        cron: cron.into(),
        timezone: "UTC".into(),
        mode: DrillMode::Readiness,
        blackout: vec![],
        missed: MissedPolicy::Skip,
        catch_up_within: Duration::from_secs(3600),
        notify: vec![],
        enabled: true,
        approve_production: false,
    }
}

fn in_zone(mut s: DrillSchedule, tz: &str) -> DrillSchedule {
    s.timezone = tz.into();
    s
}

fn blackout(days: &[Day], from: Option<&str>, to: Option<&str>) -> Blackout {
    Blackout {
        days: days.to_vec(),
        from: from.map(Into::into),
        to: to.map(Into::into),
        reason: None,
    }
}

fn with_blackout(mut s: DrillSchedule, b: Blackout) -> DrillSchedule {
    s.blackout.push(b);
    s
}

fn state_at(name: &str, cursor: DateTime<Utc>) -> ScheduleState {
    let mut st = ScheduleState::default();
    st.mark(name, cursor);
    st
}

fn actions(d: &[Decision]) -> Vec<Action> {
    d.iter().map(|d| d.action.clone()).collect()
}

// ---- next_run ----

#[test]
fn next_run_follows_the_wall_clock_across_dst_in_berlin() {
    let nine = in_zone(sched("s", "0 9 * * *"), "Europe/Berlin");
    // 09:00 CET is 08:00 UTC; after the spring change (29 March 2026) 09:00 CEST is 07:00 UTC.
    assert_eq!(
        next_run(&nine, utc(2026, 3, 27, 12, 0)),
        Some(utc(2026, 3, 28, 8, 0))
    );
    assert_eq!(
        next_run(&nine, utc(2026, 3, 28, 12, 0)),
        Some(utc(2026, 3, 29, 7, 0))
    );
    // And back on 25 October.
    assert_eq!(
        next_run(&nine, utc(2026, 10, 24, 12, 0)),
        Some(utc(2026, 10, 25, 8, 0))
    );

    let half_two = in_zone(sched("s", "30 2 * * *"), "Europe/Berlin");
    // 02:30 does not happen on 29 March (02:00 -> 03:00): the slot is the first minute after
    // the gap, 03:00 CEST = 01:00 UTC; the next day it is 02:30 CEST again.
    let gap = next_run(&half_two, utc(2026, 3, 28, 12, 0)).unwrap();
    assert_eq!(gap, utc(2026, 3, 29, 1, 0));
    assert_eq!(next_run(&half_two, gap), Some(utc(2026, 3, 30, 0, 30)));
    // 02:30 happens twice on 25 October: the drill runs once, at the first (CEST).
    let twice = next_run(&half_two, utc(2026, 10, 24, 12, 0)).unwrap();
    assert_eq!(twice, utc(2026, 10, 25, 0, 30));
    assert_eq!(next_run(&half_two, twice), Some(utc(2026, 10, 26, 1, 30)));
}

#[test]
fn next_run_is_strictly_after() {
    let s = sched("s", "0 9 * * *");
    assert_eq!(
        next_run(&s, utc(2026, 12, 1, 9, 0)),
        Some(utc(2026, 12, 2, 9, 0))
    );
    assert_eq!(
        next_run(&s, utc(2026, 12, 1, 8, 59)),
        Some(utc(2026, 12, 1, 9, 0))
    );
}

#[test]
fn next_run_skips_a_weekend_blackout() {
    let s = with_blackout(
        sched("s", "0 9 * * *"),
        blackout(&[Day::Sat, Day::Sun], None, None),
    );
    // Friday 4 December 2026, after the slot: the next is Monday.
    assert_eq!(
        next_run(&s, utc(2026, 12, 4, 10, 0)),
        Some(utc(2026, 12, 7, 9, 0))
    );
    assert_eq!(
        next_run(&s, utc(2026, 12, 4, 8, 0)),
        Some(utc(2026, 12, 4, 9, 0))
    );
    // The weekend is the schedule's: in Tokyo (UTC+9), Monday 09:00 is Monday 00:00 UTC, and
    // Friday 09:00 UTC is Friday 18:00 there.
    let tokyo = with_blackout(
        in_zone(sched("s", "0 9 * * *"), "Asia/Tokyo"),
        blackout(&[Day::Sat, Day::Sun], None, None),
    );
    assert_eq!(
        next_run(&tokyo, utc(2026, 12, 4, 1, 0)),
        Some(utc(2026, 12, 7, 0, 0))
    );
}

#[test]
fn next_run_skips_a_window_across_midnight() {
    let nightly = with_blackout(
        sched("s", "0 * * * *"),
        blackout(&[], Some("22:00"), Some("06:00")),
    );
    assert_eq!(
        next_run(&nightly, utc(2026, 12, 1, 20, 30)),
        Some(utc(2026, 12, 1, 21, 0))
    );
    assert_eq!(
        next_run(&nightly, utc(2026, 12, 1, 21, 30)),
        Some(utc(2026, 12, 2, 6, 0))
    );
    assert_eq!(
        next_run(&nightly, utc(2026, 12, 2, 3, 0)),
        Some(utc(2026, 12, 2, 6, 0))
    );
    // On given days, the window belongs to the day it starts: Friday night into Saturday.
    let friday_night = with_blackout(
        sched("s", "0 * * * *"),
        blackout(&[Day::Fri], Some("22:00"), Some("06:00")),
    );
    assert_eq!(
        next_run(&friday_night, utc(2026, 12, 4, 21, 30)),
        Some(utc(2026, 12, 5, 6, 0))
    );
    // Saturday night is not blacked out, nor is Thursday night into Friday morning.
    assert_eq!(
        next_run(&friday_night, utc(2026, 12, 5, 21, 30)),
        Some(utc(2026, 12, 5, 22, 0))
    );
    assert_eq!(
        next_run(&friday_night, utc(2026, 12, 4, 2, 30)),
        Some(utc(2026, 12, 4, 3, 0))
    );
}

#[test]
fn next_run_skips_freeze_dates_in_the_schedules_zone() {
    let monthly = with_blackout(
        sched("s", "0 3 1 * *"),
        blackout(&[], Some("2026-12-20"), Some("2027-01-03")),
    );
    assert_eq!(
        next_run(&monthly, utc(2026, 12, 15, 0, 0)),
        Some(utc(2027, 2, 1, 3, 0))
    );
    assert_eq!(
        next_run(&monthly, utc(2026, 11, 15, 0, 0)),
        Some(utc(2026, 12, 1, 3, 0))
    );
    // Midnight in Berlin is 23:00 UTC the day before: the freeze is of Berlin's dates.
    let midnight = with_blackout(
        in_zone(sched("s", "0 0 * * *"), "Europe/Berlin"),
        blackout(&[], Some("2026-12-20"), Some("2026-12-21")),
    );
    assert_eq!(
        next_run(&midnight, utc(2026, 12, 19, 12, 0)),
        Some(utc(2026, 12, 21, 23, 0))
    );
}

#[test]
fn next_run_gives_up_when_every_slot_is_blacked_out_or_the_schedule_is_invalid() {
    let every_day = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];
    let never = with_blackout(sched("s", "0 9 * * *"), blackout(&every_day, None, None));
    assert_eq!(next_run(&never, utc(2026, 12, 1, 0, 0)), None);
    assert_eq!(
        next_run(&sched("s", "not cron"), utc(2026, 12, 1, 0, 0)),
        None
    );
    assert_eq!(
        next_run(
            &in_zone(sched("s", "0 9 * * *"), "Nowhere/Else"),
            utc(2026, 12, 1, 0, 0)
        ),
        None
    );
}

// ---- due ----

#[test]
fn a_slot_on_time_runs_and_one_past_grace_is_missed() {
    let s = sched("daily", "0 9 * * *");
    let st = state_at("daily", utc(2026, 12, 1, 9, 0));
    let slot = utc(2026, 12, 2, 9, 0);
    let at = |secs| slot + chrono::Duration::seconds(secs);
    assert_eq!(
        actions(&due(std::slice::from_ref(&s), &st, at(0))),
        vec![Action::Run { slot }]
    );
    assert_eq!(
        actions(&due(std::slice::from_ref(&s), &st, at(59))),
        vec![Action::Run { slot }]
    );
    assert_eq!(
        actions(&due(std::slice::from_ref(&s), &st, at(61))),
        vec![Action::Skip {
            slot,
            why: SkipReason::Missed {
                count: 1,
                at_least: false
            }
        }]
    );
    // Before the slot: wait for it.
    let d = due(&[s], &st, at(-1));
    assert_eq!(actions(&d), vec![Action::Wait { next: Some(slot) }]);
    assert_eq!(d[0].through, None);
}

#[test]
fn missed_skip_reports_once_with_the_count() {
    let s = sched("daily", "0 9 * * *");
    let st = state_at("daily", utc(2026, 12, 1, 9, 0));
    let d = due(&[s], &st, utc(2026, 12, 4, 10, 0));
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].action,
        Action::Skip {
            slot: utc(2026, 12, 4, 9, 0),
            why: SkipReason::Missed {
                count: 3,
                at_least: false
            }
        }
    );
    assert_eq!(d[0].through, Some(utc(2026, 12, 4, 9, 0)));
    if let Action::Skip { why, .. } = &d[0].action {
        assert_eq!(
            why.to_string(),
            "missed 3 slots while the agent was not running"
        );
    }
}

#[test]
fn missed_run_once_catches_up_the_newest_slot_only_while_young() {
    let mut s = sched("daily", "0 9 * * *");
    s.missed = MissedPolicy::RunOnce;
    let st = state_at("daily", utc(2026, 12, 1, 9, 0));
    // 50 minutes after the newest missed slot, within the default hour.
    let d = due(std::slice::from_ref(&s), &st, utc(2026, 12, 4, 9, 50));
    assert_eq!(
        actions(&d),
        vec![Action::Run {
            slot: utc(2026, 12, 4, 9, 0)
        }]
    );
    assert_eq!(d[0].through, Some(utc(2026, 12, 4, 9, 0)));
    // Two hours after it: too old, skipped as with `skip`.
    assert_eq!(
        actions(&due(std::slice::from_ref(&s), &st, utc(2026, 12, 4, 11, 0))),
        vec![Action::Skip {
            slot: utc(2026, 12, 4, 9, 0),
            why: SkipReason::Missed {
                count: 3,
                at_least: false
            }
        }]
    );
    // A catch-up does not start inside a blackout.
    let s = with_blackout(s, blackout(&[], Some("09:30"), Some("10:00")));
    assert!(matches!(
        actions(&due(&[s], &st, utc(2026, 12, 4, 9, 40)))[..],
        [Action::Skip {
            why: SkipReason::Missed { .. },
            ..
        }]
    ));
}

#[test]
fn missed_slots_then_a_slot_on_time_skip_then_run() {
    let s = sched("daily", "0 9 * * *");
    let st = state_at("daily", utc(2026, 12, 1, 9, 0));
    let now = utc(2026, 12, 4, 9, 0) + chrono::Duration::seconds(10);
    let d = due(&[s], &st, now);
    assert_eq!(
        actions(&d),
        vec![
            Action::Skip {
                slot: utc(2026, 12, 3, 9, 0),
                why: SkipReason::Missed {
                    count: 2,
                    at_least: false
                }
            },
            Action::Run {
                slot: utc(2026, 12, 4, 9, 0)
            },
        ]
    );
    assert_eq!(d[0].through, Some(utc(2026, 12, 3, 9, 0)));
    assert_eq!(d[1].through, Some(utc(2026, 12, 4, 9, 0)));
}

#[test]
fn a_new_schedule_does_not_count_its_past_as_missed() {
    let s = sched("new", "0 9 * * *");
    let st = ScheduleState::default();
    let slot = utc(2026, 12, 2, 9, 0);
    assert_eq!(
        actions(&due(
            std::slice::from_ref(&s),
            &st,
            slot + chrono::Duration::seconds(30)
        )),
        vec![Action::Run { slot }]
    );
    assert_eq!(
        actions(&due(&[s], &st, slot + chrono::Duration::minutes(5))),
        vec![Action::Wait {
            next: Some(utc(2026, 12, 3, 9, 0))
        }]
    );
}

#[test]
fn blacked_out_and_disabled_slots_are_skipped_with_their_reason() {
    let mut b = blackout(&[Day::Sat, Day::Sun], None, None);
    b.reason = Some("weekend".into());
    let weekend = with_blackout(sched("w", "0 9 * * *"), b);
    let sat = utc(2026, 12, 5, 9, 0);
    let st = state_at("w", utc(2026, 12, 4, 9, 0));
    assert_eq!(
        actions(&due(
            std::slice::from_ref(&weekend),
            &st,
            sat + chrono::Duration::seconds(5)
        )),
        vec![Action::Skip {
            slot: sat,
            why: SkipReason::Blackout {
                window: "sat,sun all day (weekend)".into()
            }
        }]
    );
    // Waiting on Friday: the next run is Monday's.
    assert_eq!(
        actions(&due(&[weekend], &st, utc(2026, 12, 4, 12, 0))),
        vec![Action::Wait {
            next: Some(utc(2026, 12, 7, 9, 0))
        }]
    );

    let mut off = sched("off", "0 9 * * *");
    off.enabled = false;
    let st = state_at("off", utc(2026, 12, 1, 9, 0));
    assert_eq!(
        actions(&due(
            std::slice::from_ref(&off),
            &st,
            utc(2026, 12, 2, 9, 0)
        )),
        vec![Action::Skip {
            slot: utc(2026, 12, 2, 9, 0),
            why: SkipReason::Disabled
        }]
    );
    assert_eq!(
        actions(&due(&[off], &st, utc(2026, 12, 1, 12, 0))),
        vec![Action::Wait { next: None }]
    );
}

#[test]
fn a_slot_that_waited_for_a_running_drill_runs_late_instead_of_being_missed() {
    let s = sched("half", "30 9 * * *");
    let st = state_at("half", utc(2026, 12, 1, 9, 30));
    let slot = utc(2026, 12, 2, 9, 30);
    let now = utc(2026, 12, 2, 10, 30);
    // Busy with another drill since 09:00: the 09:30 slot waited its turn.
    assert_eq!(
        actions(&due_with(
            std::slice::from_ref(&s),
            &st,
            now,
            Some(utc(2026, 12, 2, 9, 0))
        )),
        vec![Action::Run { slot }]
    );
    // Idle (down) instead: missed.
    assert!(matches!(
        actions(&due(std::slice::from_ref(&s), &st, now))[..],
        [Action::Skip {
            why: SkipReason::Missed { count: 1, .. },
            ..
        }]
    ));
    // It does not start late into a blackout.
    let s = with_blackout(s, blackout(&[], Some("10:00"), Some("11:00")));
    assert!(matches!(
        actions(&due_with(&[s], &st, now, Some(utc(2026, 12, 2, 9, 0))))[..],
        [Action::Skip {
            why: SkipReason::Blackout { .. },
            ..
        }]
    ));
}

#[test]
fn the_count_of_missed_slots_is_bounded() {
    let s = sched("minutely", "* * * * *");
    let st = state_at("minutely", utc(2026, 1, 1, 0, 0));
    let d = due(&[s], &st, utc(2026, 12, 1, 0, 0));
    assert!(matches!(
        &d[0].action,
        Action::Skip {
            why: SkipReason::Missed { at_least: true, .. },
            ..
        }
    ));
    assert_eq!(d[0].through, Some(utc(2026, 11, 30, 23, 59)));
    // Every minute has a slot on time too.
    assert_eq!(
        d[1].action,
        Action::Run {
            slot: utc(2026, 12, 1, 0, 0)
        }
    );
    assert_eq!(d.len(), 2);
}

// ---- state ----

#[test]
fn state_round_trips_through_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = ScheduleState::path_in(&dir.path().join("nested"));
    assert_eq!(
        ScheduleState::load(&path).unwrap(),
        ScheduleState::default()
    );
    let mut st = state_at("a", utc(2026, 12, 1, 9, 0));
    st.last.insert(
        "b".into(),
        LastRun {
            slot: utc(2026, 12, 1, 9, 0),
            started: utc(2026, 12, 1, 9, 10),
            finished: Some(utc(2026, 12, 1, 9, 40)),
            outcome: "passed".into(),
        },
    );
    st.save(&path).unwrap();
    assert_eq!(ScheduleState::load(&path).unwrap(), st);
    assert_eq!(st.cursor("b"), Some(utc(2026, 12, 1, 9, 0)));
    assert_eq!(st.cursor("c"), None);
    // Nothing but the file is left beside it.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![STATE_FILE.to_string()]);
}

#[test]
fn a_corrupt_state_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = ScheduleState::path_in(dir.path());
    std::fs::write(&path, "{\"last\": {\"a\": ").unwrap();
    let e = ScheduleState::load(&path).unwrap_err();
    assert!(matches!(e, StateError::Corrupt { .. }));
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    // And it was left as it was.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"last\": {\"a\": "
    );
}

// ---- list ----

#[test]
fn list_shows_next_runs_in_utc_and_local_the_last_run_and_blackouts() {
    let mut b = blackout(&[], Some("2026-12-20"), Some("2027-01-03"));
    b.reason = Some("freeze".into());
    let mut full = with_blackout(
        in_zone(sched("full-monthly", "0 3 1 * *"), "Europe/Berlin"),
        b,
    );
    full.mode = DrillMode::Full;
    let mut off = sched("off", "0 9 * * *");
    off.enabled = false;
    let mut st = ScheduleState::default();
    st.last.insert(
        "full-monthly".into(),
        LastRun {
            slot: utc(2026, 12, 1, 2, 0),
            started: utc(2026, 12, 1, 2, 10),
            finished: Some(utc(2026, 12, 1, 3, 0)),
            outcome: "passed".into(),
        },
    );
    let rows = list(&[full, off], &st, utc(2026, 12, 10, 0, 0));
    assert_eq!(rows.len(), 2);
    // 1 January is frozen; 1 February 03:00 CET is 02:00 UTC.
    assert_eq!(rows[0].next_utc, Some(utc(2027, 2, 1, 2, 0)));
    assert_eq!(
        rows[0].next_local.unwrap().to_rfc3339(),
        "2027-02-01T03:00:00+01:00"
    );
    assert_eq!(rows[0].blackout, vec!["2026-12-20 to 2027-01-03 (freeze)"]);
    assert_eq!(rows[0].last.as_ref().unwrap().outcome, "passed");
    assert_eq!(rows[1].next_utc, None);
    let json = serde_json::to_value(&rows).unwrap();
    assert_eq!(json[0]["mode"], "full");
    assert_eq!(json[0]["next_utc"], "2027-02-01T02:00:00Z");
    let table = render_table(&rows);
    for want in [
        "full-monthly",
        "started 10m late",
        "passed",
        "disabled",
        "(freeze)",
        "Europe/Berlin",
    ] {
        assert!(table.contains(want), "no {want} in\n{table}");
    }
}

// ---- the agent ----

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Ran {
        name: String,
        slot: DateTime<Utc>,
    },
    Skipped {
        name: String,
        slot: DateTime<Utc>,
        why: SkipReason,
    },
}

/// Records calls; each drill "takes" `takes` on the manual clock, and fails if another drill
/// is running at the same time.
struct FakeRunner {
    clock: ManualClock,
    takes: chrono::Duration,
    running: AtomicBool,
    overlapped: AtomicBool,
    events: Mutex<Vec<Event>>,
    tx: mpsc::UnboundedSender<Event>,
}

impl FakeRunner {
    fn new(
        clock: ManualClock,
        takes: chrono::Duration,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let r = Self {
            clock,
            takes,
            running: AtomicBool::new(false),
            overlapped: AtomicBool::new(false),
            events: Mutex::new(vec![]),
            tx,
        };
        (Arc::new(r), rx)
    }

    fn record(&self, e: Event) {
        self.events.lock().unwrap().push(e.clone());
        let _ = self.tx.send(e);
    }
}

#[async_trait]
impl DrillRunner for FakeRunner {
    async fn run(&self, schedule: &DrillSchedule, slot: DateTime<Utc>) -> RunOutcome {
        if self.running.swap(true, Ordering::SeqCst) {
            self.overlapped.store(true, Ordering::SeqCst);
        }
        // Give anything else a chance to run meanwhile (paused time: no real wait).
        tokio::time::sleep(Duration::from_secs(5)).await;
        self.clock.advance(self.takes);
        self.running.store(false, Ordering::SeqCst);
        self.record(Event::Ran {
            name: schedule.name.clone(),
            slot,
        });
        if schedule.name == "fails" {
            RunOutcome::Failed("the drill URL answered 503".into())
        } else {
            RunOutcome::Passed
        }
    }

    async fn skipped(&self, schedule: &DrillSchedule, slot: DateTime<Utc>, why: &SkipReason) {
        self.record(Event::Skipped {
            name: schedule.name.clone(),
            slot,
            why: why.clone(),
        });
    }
}

/// The next `n` events, or a failure if the agent goes quiet (in paused time: no real wait).
async fn next_events(rx: &mut mpsc::UnboundedReceiver<Event>, n: usize) -> Vec<Event> {
    let mut out = vec![];
    for _ in 0..n {
        let e = tokio::time::timeout(Duration::from_secs(6 * 3600), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the agent went quiet after {out:?}"))
            .expect("runner alive");
        out.push(e);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn drills_due_together_run_one_at_a_time_in_slot_then_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = ScheduleState::path_in(dir.path());
    let clock = ManualClock::new(utc(2026, 12, 1, 9, 0));
    let schedules = vec![
        sched("beta", "0 9 * * *"),
        sched("fails", "0 9 * * *"),
        sched("zeta", "30 59 8 * * *"), // 08:59:30: the oldest slot goes first
    ];
    let (runner, mut rx) = FakeRunner::new(clock.clone(), chrono::Duration::minutes(10));
    let stop = CancellationToken::new();
    let agent = Agent::new(clock.clone(), schedules, path.clone());
    let task = tokio::spawn(agent.run(runner.clone(), stop.clone()));
    let events = next_events(&mut rx, 3).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    let nine = utc(2026, 12, 1, 9, 0);
    assert_eq!(
        events,
        vec![
            Event::Ran {
                name: "zeta".into(),
                slot: nine - chrono::Duration::seconds(30)
            },
            Event::Ran {
                name: "beta".into(),
                slot: nine
            },
            Event::Ran {
                name: "fails".into(),
                slot: nine
            },
        ]
    );
    assert!(
        !runner.overlapped.load(Ordering::SeqCst),
        "two drills ran at once"
    );
    // The records show who waited.
    let st = ScheduleState::load(&path).unwrap();
    let zeta = &st.last["zeta"];
    let beta = &st.last["beta"];
    let fails = &st.last["fails"];
    assert_eq!(beta.slot, nine);
    assert!(
        beta.started > beta.slot && fails.started > beta.started,
        "{st:?}"
    );
    assert!(zeta.started <= beta.started);
    assert_eq!(beta.outcome, "passed");
    assert_eq!(fails.outcome, "failed: the drill URL answered 503");
    assert!(fails.finished.is_some());
}

#[tokio::test(start_paused = true)]
async fn the_agent_sleeps_until_the_slot_then_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::following_tokio(utc(2026, 12, 1, 8, 57));
    let (runner, mut rx) = FakeRunner::new(clock.clone(), chrono::Duration::minutes(1));
    let stop = CancellationToken::new();
    let agent = Agent::new(
        clock.clone(),
        vec![sched("daily", "0 9 * * *")],
        ScheduleState::path_in(dir.path()),
    );
    let task = tokio::spawn(agent.run(runner.clone(), stop.clone()));
    let events = next_events(&mut rx, 1).await;
    assert_eq!(
        events,
        vec![Event::Ran {
            name: "daily".into(),
            slot: utc(2026, 12, 1, 9, 0)
        }]
    );
    // Then it waits for tomorrow, until told to stop.
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(runner.events.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_slot_that_comes_during_a_long_drill_waits_and_is_not_missed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 12, 1, 9, 0));
    // Each drill takes 90 minutes; `half` is due at 09:30, while `long` runs.
    let (runner, mut rx) = FakeRunner::new(clock.clone(), chrono::Duration::minutes(90));
    let stop = CancellationToken::new();
    let agent = Agent::new(
        clock.clone(),
        vec![sched("long", "0 9 * * *"), sched("half", "30 9 * * *")],
        ScheduleState::path_in(dir.path()),
    );
    let task = tokio::spawn(agent.run(runner.clone(), stop.clone()));
    let events = next_events(&mut rx, 2).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        events,
        vec![
            Event::Ran {
                name: "long".into(),
                slot: utc(2026, 12, 1, 9, 0)
            },
            Event::Ran {
                name: "half".into(),
                slot: utc(2026, 12, 1, 9, 30)
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn slots_missed_while_the_agent_was_down_are_reported_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = ScheduleState::path_in(dir.path());
    state_at("daily", utc(2026, 11, 30, 9, 0))
        .save(&path)
        .unwrap();
    let clock = ManualClock::new(utc(2026, 12, 3, 12, 0));
    let (runner, mut rx) = FakeRunner::new(clock.clone(), chrono::Duration::minutes(1));
    let stop = CancellationToken::new();
    let agent = Agent::new(
        clock.clone(),
        vec![sched("daily", "0 9 * * *")],
        path.clone(),
    );
    let task = tokio::spawn(agent.run(runner.clone(), stop.clone()));
    let events = next_events(&mut rx, 1).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        events,
        vec![Event::Skipped {
            name: "daily".into(),
            slot: utc(2026, 12, 3, 9, 0),
            why: SkipReason::Missed {
                count: 3,
                at_least: false
            }
        }]
    );
    // Reported once: the cursor moved past it.
    let st = ScheduleState::load(&path).unwrap();
    assert_eq!(st.cursor("daily"), Some(utc(2026, 12, 3, 9, 0)));
    assert_eq!(runner.events.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_agent_refuses_a_corrupt_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = ScheduleState::path_in(dir.path());
    std::fs::write(&path, "not json").unwrap();
    let clock = ManualClock::new(utc(2026, 12, 1, 9, 0));
    let (runner, _rx) = FakeRunner::new(clock.clone(), chrono::Duration::minutes(1));
    let agent = Agent::new(clock, vec![sched("daily", "0 9 * * *")], path);
    let e = agent
        .run(runner.clone(), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, StateError::Corrupt { .. }), "{e}");
    assert!(runner.events.lock().unwrap().is_empty());
}

#[test]
fn manual_clock_is_settable() {
    let c = ManualClock::new(utc(2026, 12, 1, 9, 0));
    assert_eq!(c.now(), utc(2026, 12, 1, 9, 0));
    c.advance(chrono::Duration::minutes(5));
    assert_eq!(c.now(), utc(2026, 12, 1, 9, 5));
    c.set(utc(2027, 1, 1, 0, 0));
    assert_eq!(c.now(), utc(2027, 1, 1, 0, 0));
}

/// The examples in docs/drills-schedules.md parse and pass the checks.
#[test]
fn the_documented_examples_are_valid() {
    #[derive(serde::Deserialize)]
    struct Doc {
        drill: crate::config::drill::DrillSettings,
    }
    #[derive(serde::Deserialize)]
    struct Windows {
        blackout: Vec<Blackout>,
    }
    let doc = include_str!("../../docs/drills-schedules.md");
    let blocks: Vec<&str> = doc
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let week: Doc = serde_saphyr::from_str(blocks[0]).expect("the week of drills parses");
    let s = &week.drill.schedules;
    assert_eq!(s.len(), 3);
    crate::config::schedule::validate_all(s).unwrap();
    let w: Windows = serde_saphyr::from_str(blocks[1]).expect("the blackout examples parse");
    assert_eq!(w.blackout.len(), 4);
    for b in &w.blackout {
        b.window().unwrap();
    }
    // What the page says about them.
    let now = utc(2026, 12, 10, 12, 0);
    let mut st = ScheduleState::default();
    st.last.insert(
        "readiness-daily".into(),
        LastRun {
            slot: utc(2026, 12, 10, 5, 0),
            started: utc(2026, 12, 10, 5, 0),
            finished: Some(utc(2026, 12, 10, 5, 2)),
            outcome: "passed".into(),
        },
    );
    st.last.insert(
        "isolated-tue-thu".into(),
        LastRun {
            slot: utc(2026, 12, 10, 1, 30),
            started: utc(2026, 12, 10, 1, 42),
            finished: Some(utc(2026, 12, 10, 2, 20)),
            outcome: "failed: drill URL answered 503".into(),
        },
    );
    let rows = list(s, &st, now);
    assert_eq!(rows[2].next_utc, Some(utc(2027, 2, 6, 2, 0)));
    assert!(render_table(&rows).contains("started 12m late"));
}
