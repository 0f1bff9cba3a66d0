//! Tests of drill schedules: cron and time zones, blackouts, missed-run policies, and the
//! file:line:column of each problem (kept beside `schedule.rs` so that file stays small).
use std::path::Path;

use super::*;
use crate::config::{parse_env, ConfigError, Source};

const ENV: &str = "name: t\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n  us-west-2: {}\n";

fn env_with(schedules: &str) -> Result<crate::config::Environment, Vec<Diagnostic>> {
    let text = format!("{ENV}drill:\n  schedules:\n{schedules}");
    let src = Source::from_text(Path::new("drctl.yaml"), text);
    parse_env(&src).map_err(|e| match e {
        ConfigError::Invalid(d) => d,
        other => panic!("{other}"),
    })
}

fn schedule(name: &str, cron: &str, mode: DrillMode) -> DrillSchedule {
    DrillSchedule {
        name: name.into(),
        cron: cron.into(),
        timezone: "UTC".into(),
        mode,
        blackout: vec![],
        missed: MissedPolicy::Skip,
        catch_up_within: Duration::from_secs(3600),
        notify: vec![],
        enabled: true,
        approve_production: false,
    }
}

#[test]
fn a_week_of_drills_parses_with_defaults_and_unquoted_times_and_dates() {
    let env = env_with(
        "    - name: readiness-daily\n      cron: \"0 6 * * *\"\n      mode: readiness\n\
         \x20   - name: isolated_twice\n      cron: 30 2 * * tue,thu\n      timezone: Europe/Berlin\n      mode: isolated\n      missed: run_once\n      catch_up_within: 2h\n      blackout:\n        - days: [sat, sun]\n        - from: 22:00\n          to: 06:00\n          reason: nightly batch\n\
         \x20   - name: full-monthly\n      cron: 0 3 1 * *\n      mode: full\n      enabled: false\n      notify:\n        - slack: https://hooks.example/x\n      blackout:\n        - from: 2026-12-20\n          to: 2027-01-03\n",
    )
    .unwrap_or_else(|d| panic!("{d:?}"));
    let s = &env.drill.schedules;
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].timezone, "UTC");
    assert_eq!(s[0].missed, MissedPolicy::Skip);
    assert_eq!(s[0].catch_up_within, Duration::from_secs(3600));
    assert!(s[0].enabled);
    assert_eq!(s[1].missed, MissedPolicy::RunOnce);
    assert_eq!(s[1].catch_up_within, Duration::from_secs(7200));
    assert_eq!(
        s[1].windows().unwrap(),
        vec![
            BlackoutWindow::Daily {
                days: vec![chrono::Weekday::Sat, chrono::Weekday::Sun],
                from: 0,
                to: 1440
            },
            BlackoutWindow::Daily {
                days: vec![],
                from: 22 * 60,
                to: 6 * 60
            },
        ]
    );
    assert_eq!(
        s[1].blackout[1].summary(),
        "daily 22:00-06:00 (nightly batch)"
    );
    assert_eq!(
        s[2].windows().unwrap(),
        vec![BlackoutWindow::Dates {
            from: NaiveDate::from_ymd_opt(2026, 12, 20).unwrap(),
            to: NaiveDate::from_ymd_opt(2027, 1, 3).unwrap(),
        }]
    );
    assert_eq!(s[2].mode, DrillMode::Full);
    assert!(!s[2].enabled);
}

#[test]
fn bad_cron_timezone_and_name_are_reported_at_their_lines() {
    let d = env_with(
        "    - name: ok\n      cron: 0 6 * * *\n      mode: readiness\n\
         \x20   - name: bad/name\n      cron: 0 6 * *\n      timezone: europe/berlin\n      mode: isolated\n",
    )
    .unwrap_err();
    let find = |needle: &str| {
        d.iter()
            .find(|x| x.message.contains(needle))
            .unwrap_or_else(|| panic!("no diagnostic about {needle}: {d:?}"))
    };
    // Lines: 7 drill, 8 schedules, 9 first item, 12 second item's name.
    let name = find("not a safe name");
    assert_eq!((name.line, name.column), (12, 7));
    let cron = find("has 4 fields");
    assert_eq!((cron.line, cron.column), (13, 7));
    let tz = find("is not an IANA time zone");
    assert_eq!((tz.line, tz.column), (14, 7));
    assert!(
        tz.message.contains("did you mean `Europe/Berlin`"),
        "{}",
        tz.message
    );
    assert_eq!(d.len(), 3, "{d:?}");
}

#[test]
fn duplicate_names_are_refused_at_the_second() {
    let d = env_with(
        "    - name: a\n      cron: 0 6 * * *\n      mode: readiness\n    - name: a\n      cron: 0 7 * * *\n      mode: readiness\n",
    )
    .unwrap_err();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].message.contains("defined twice"));
    assert_eq!(d[0].line, 12);
}

#[test]
fn unknown_fields_and_modes_are_refused_by_the_parser() {
    let d = env_with("    - name: a\n      cron: 0 6 * * *\n      mode: weekly\n").unwrap_err();
    assert!(d[0].message.contains("weekly"), "{d:?}");
    let d = env_with("    - name: a\n      cron: 0 6 * * *\n      mode: full\n      when: now\n")
        .unwrap_err();
    assert!(d[0].message.contains("unknown field"), "{d:?}");
}

#[test]
fn cron_forms_accepted_and_refused() {
    let ok = |c: &str| schedule("s", c, DrillMode::Readiness).validate();
    ok("0 6 * * *").unwrap();
    ok("0 0 6 * * *").unwrap(); // seconds
    ok("0 0 6 * * * 2030").unwrap(); // seconds and year
    ok("@weekly").unwrap();
    ok("30 2 * * tue,thu").unwrap();
    let e = ok("* * * * * *").unwrap_err();
    assert!(e.contains("seconds field"), "{e}");
    let e = ok("0 25 * * *").unwrap_err();
    assert!(e.contains("is not a cron expression"), "{e}");
    let e = ok("every day").unwrap_err();
    assert!(e.contains("has 2 fields"), "{e}");
    let e = ok("0 0 30 2 *").unwrap_err();
    assert!(e.contains("never matches"), "{e}");
}

#[test]
fn full_drills_run_at_most_daily() {
    let full = |c: &str, tz: &str| {
        let mut s = schedule("f", c, DrillMode::Full);
        s.timezone = tz.into();
        s.validate()
    };
    full("0 3 1 * *", "UTC").unwrap();
    // Daily in a zone with DST: 23- and 25-hour days are still one slot a day.
    full("30 2 * * *", "Europe/Berlin").unwrap();
    let e = full("0 */12 * * *", "UTC").unwrap_err();
    assert!(e.contains("more than once a day"), "{e}");
    let e = full("0 3,4 1 * *", "America/New_York").unwrap_err();
    assert!(e.contains("more than once a day"), "{e}");
    // The same expressions are fine for isolated drills.
    let mut s = schedule("i", "0 */12 * * *", DrillMode::Isolated);
    s.validate().unwrap();
    s.mode = DrillMode::Full;
    assert!(s.validate().is_err());
}

#[test]
fn blackout_shapes() {
    let b = |days: Vec<Day>, from: Option<&str>, to: Option<&str>| Blackout {
        days,
        from: from.map(Into::into),
        to: to.map(Into::into),
        reason: None,
    };
    let w = b(vec![], Some("09:30"), Some("24:00")).window().unwrap();
    assert_eq!(
        w,
        BlackoutWindow::Daily {
            days: vec![],
            from: 570,
            to: 1440
        }
    );
    assert_eq!(w.to_string(), "daily 09:30-24:00");
    let e = |x: Blackout| x.window().unwrap_err();
    assert!(e(b(vec![], None, None)).contains("needs `days`"));
    assert!(e(b(vec![], Some("22:00"), None)).contains("both `from` and `to`"));
    assert!(e(b(vec![], Some("25:00"), Some("06:00"))).contains("not a time"));
    assert!(e(b(vec![], Some("24:00"), Some("06:00"))).contains("not a time"));
    assert!(e(b(vec![], Some("7:5"), Some("06:00"))).contains("not a time"));
    assert!(e(b(vec![], Some("06:00"), Some("06:00"))).contains("empty"));
    assert!(e(b(vec![], Some("2026-12-20"), Some("2026-12-01"))).contains("before"));
    assert!(e(b(vec![], Some("2026-12-20"), Some("22:00"))).contains("not a date"));
    assert!(e(b(vec![], Some("2026-02-30"), Some("2026-03-01"))).contains("not a date"));
    assert!(e(b(vec![Day::Sat], Some("2026-12-20"), Some("2027-01-03"))).contains("no `days`"));
    // Problems name the schedule and the key.
    let mut s = schedule("n", "0 6 * * *", DrillMode::Readiness);
    s.blackout.push(b(vec![], Some("9"), Some("10:00")));
    let p = s.problems();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].field, "blackout");
    assert!(
        p[0].message.starts_with("schedule `n`: blackout:"),
        "{}",
        p[0].message
    );
}

#[test]
fn catch_up_within_and_notify_urls_are_checked() {
    let mut s = schedule("n", "0 6 * * *", DrillMode::Readiness);
    s.catch_up_within = Duration::from_secs(10);
    s.notify
        .push(Notification::Webhook("hooks.example/x".into()));
    let fields: Vec<_> = s.problems().into_iter().map(|p| p.field).collect();
    assert_eq!(fields, vec!["catch_up_within", "notify"]);
}

#[test]
fn drill_mode_reads_and_prints() {
    for m in DrillMode::ALL {
        assert_eq!(m.to_string().parse::<DrillMode>().unwrap(), m);
    }
    assert_eq!("FULL".parse::<DrillMode>().unwrap(), DrillMode::Full);
    assert!("weekly"
        .parse::<DrillMode>()
        .unwrap_err()
        .contains("readiness, isolated or full"));
}

#[test]
fn names_are_safe_identifiers() {
    for ok in ["a", "nightly-readiness", "full_monthly", "2x"] {
        assert!(safe_identifier(ok), "{ok}");
    }
    for bad in ["", "-a", "a.b", "a/b", "a b", "é", &"x".repeat(65)] {
        assert!(!safe_identifier(bad), "{bad}");
    }
}

#[test]
fn validate_all_lists_every_problem() {
    let a = schedule("a", "0 6 * * *", DrillMode::Readiness);
    let mut b = schedule("a", "nope", DrillMode::Readiness);
    b.timezone = "Mars/Olympus".into();
    let e = validate_all(&[a, b]).unwrap_err();
    assert_eq!(e.lines().count(), 3, "{e}");
    assert!(e.contains("defined twice") && e.contains("Mars/Olympus") && e.contains("nope"));
}
