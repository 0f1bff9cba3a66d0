//! The journals behind a report: one run's (`drctl report RUN`), an environment's runs
//! (`drctl report --history`), and the past durations that predict a plan's RTO. Reports are
//! built from the journals alone, with the runbook and environment copies they carry.

use super::inspect::{latest, outcome, phase_text};
use super::{replay, sources_from_journal, RunError};
use crate::config::env::Targets;
use crate::engine::Plan;
use crate::journal::chain::ChainStatus;
use crate::journal::JournalStore;
use crate::report::{history, model, History, Prediction, Report};

/// The report of run `run` (or the newest, for `latest`).
pub async fn for_run(store: &dyn JournalStore, run: &str) -> Result<Report, RunError> {
    let run = match run {
        "latest" => latest(store).await?,
        r => r.to_string(),
    };
    let (records, _) = store.read(&run).await?;
    let mut r = build(store, &run, &records)?;
    // The chain as `drctl verify` sees it: a report of a damaged journal says so.
    let chain = store.verify_chain(&run).await?;
    r.journal.chain_head = chain.head.clone();
    r.journal.chain_status = match (chain.status(), &chain.broken) {
        (_, Some(b)) => format!("BROKEN: {b}"),
        (ChainStatus::Unchained, _) => "unchained (written before hash chains)".into(),
        (ChainStatus::Empty, _) => "empty".into(),
        _ => "intact".into(),
    };
    Ok(r)
}

fn build(
    store: &dyn JournalStore,
    run: &str,
    records: &[crate::journal::Record],
) -> Result<Report, RunError> {
    let state = replay(run, records)?;
    let (env, rb) = sources_from_journal(&state)?;
    let plan = Plan::new(&rb);
    let mut r = model::build(&model::Inputs {
        records,
        plan: &plan,
        targets: &env.targets,
        journal_path: store.locator(run),
        outcome: (outcome(&state).into(), phase_text(&state.phase)),
    });
    r.direction = super::roundtrip::direction(&rb.name, &env);
    Ok(r)
}

/// Reports of the environment `env`'s runs, oldest first, and the runs that could not be read.
pub async fn reports(
    store: &dyn JournalStore,
    env: &str,
) -> Result<(Vec<Report>, Vec<(String, String)>), RunError> {
    let mut out = vec![];
    let mut bad = vec![];
    for id in store.list().await? {
        let read = match store.read(&id).await {
            Ok((records, _)) => build(store, &id, &records),
            Err(e) => Err(e.into()),
        };
        match read {
            Ok(r) if r.env == env => out.push(r),
            Ok(_) => {}
            Err(e) => bad.push((id, e.to_string())),
        }
    }
    Ok((out, bad))
}

/// `drctl report --history`.
pub async fn history(
    store: &dyn JournalStore,
    env: &str,
    targets: &Targets,
) -> Result<History, RunError> {
    let (reports, bad) = reports(store, env).await?;
    Ok(history::history(
        env,
        &reports,
        targets.rto,
        targets.rpo,
        bad,
    ))
}

/// The predicted RTO of `plan` from the state dir's past runs of environment `env`.
pub async fn predict(
    state: &super::StateStore,
    env: &str,
    plan: &Plan,
    targets: &Targets,
) -> Prediction {
    let store = state.journals().await;
    // A state dir (or table) that cannot be read predicts from the default estimates alone.
    let reports = reports(store.as_ref(), env)
        .await
        .map(|r| r.0)
        .unwrap_or_default();
    history::predict(plan, &history::kind_stats(&reports), targets.rto)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration as D, Utc};
    use serde_json::json;

    use crate::journal::{Event, Measure, Outcome, Record, RunStatus, Trigger};
    use crate::report::model::{build, Inputs, Verdict};
    use crate::steps::kind_tests::{plan, Fx};

    const RB: &str = "name: t\nsteps:\n  - id: gate\n    kind: approval\n  - id: promote\n    kind: rds.promote_replica\n    with: { role: standby }\n  - id: cdn\n    kind: cloudfront.promote_origin\n    with: { role: standby }\n  - id: outside\n    kind: http.check\n    with: { url: \"http://127.0.0.1:9/\" }\n";

    fn rec(seq: u64, secs: i64, event: Event) -> Record {
        Record {
            seq,
            at: Utc::now()
                .date_naive()
                .and_hms_opt(12, 0, 0)
                .unwrap()
                .and_utc()
                + D::seconds(secs),
            token: 1,
            event,
            hash: None,
        }
    }

    fn started(detected: Option<i64>) -> Event {
        let mut e = Event::test_run_started();
        if let Event::RunStarted { trigger, .. } = &mut e {
            *trigger = detected.map(|s| Trigger {
                by: "drctl watch".into(),
                detected_at: rec(
                    0,
                    s,
                    Event::Paused {
                        reason: String::new(),
                    },
                )
                .at,
                why: "primary down".into(),
            });
        }
        e
    }

    fn done(step: &str) -> Event {
        Event::StepSucceeded {
            step: step.into(),
            outcome: Outcome::Changed,
            result: json!({}),
            duration_ms: 1000,
        }
    }

    fn begin(step: &str) -> Event {
        Event::StepStarted {
            step: step.into(),
            attempt: 1,
        }
    }

    /// A watch-started failover that paused after the promotion and was resumed.
    fn journal(finish: bool) -> Vec<Record> {
        let mut e = vec![
            started(Some(-30)),
            begin("gate"),
            done("gate"),
            begin("promote"),
            Event::Measured {
                step: "promote".into(),
                measure: Measure::RpoSeconds,
                value: 2.5,
            },
            done("promote"),
            Event::Paused {
                reason: "signal".into(),
            },
            Event::Resumed {
                operator: crate::journal::Operator {
                    user: "carol".into(),
                    host: "h".into(),
                    pid: 2,
                },
            },
            begin("cdn"),
            done("cdn"),
            begin("outside"),
        ];
        if finish {
            e.push(done("outside"));
            e.push(Event::RunFinished {
                status: RunStatus::Succeeded,
                message: String::new(),
            });
        }
        e.into_iter()
            .enumerate()
            .map(|(i, ev)| rec(i as u64 + 1, 10 * i as i64, ev))
            .collect()
    }

    #[test]
    fn rto_runs_from_detection_to_the_outside_check_and_the_rpo_survives_a_resume() {
        let fx = Fx::new();
        let p = plan(&fx, RB);
        let records = journal(true);
        let r = build(&Inputs {
            records: &records,
            plan: &p,
            targets: &fx.env.targets,
            journal_path: "j".into(),
            outcome: ("succeeded".into(), String::new()),
        });
        assert!(r.recovery);
        assert_eq!(r.rto.from, "detection");
        assert_eq!(r.rto.to.as_deref(), Some("outside"));
        // Detected 30 s before the start; the outside check succeeded at +110 s.
        assert_eq!(r.rto.measured_ms, Some(140_000));
        assert_eq!(r.rto.verdict, Verdict::Pass);
        assert_eq!(
            r.rpo.measured_s,
            Some(2.5),
            "journaled before the pause, kept after"
        );
        assert_eq!(r.rpo.verdict, Verdict::Pass);
        assert_eq!(r.pauses.len(), 1);
        assert_eq!((r.pauses[0].start_ms, r.pauses[0].end_ms), (60_000, 70_000));
        assert_eq!(r.sessions.len(), 1);
        assert_eq!(r.sessions[0].user, "carol");
        assert_eq!(r.phase_after.as_deref(), Some("failed_over"));
        // A tight target fails.
        let mut tight = fx.env.targets.clone();
        tight.rto = std::time::Duration::from_secs(60);
        tight.rpo = std::time::Duration::from_secs(1);
        let r = build(&Inputs {
            records: &records,
            plan: &p,
            targets: &tight,
            journal_path: "j".into(),
            outcome: ("succeeded".into(), String::new()),
        });
        assert_eq!(
            (r.rto.verdict, r.rpo.verdict),
            (Verdict::Fail, Verdict::Fail)
        );
    }

    #[test]
    fn a_run_stopped_before_its_outside_check_is_not_measured_never_passed() {
        let fx = Fx::new();
        let p = plan(&fx, RB);
        let records = journal(false);
        let r = build(&Inputs {
            records: &records,
            plan: &p,
            targets: &fx.env.targets,
            journal_path: "j".into(),
            outcome: ("running".into(), String::new()),
        });
        assert_eq!(r.rto.verdict, Verdict::NotMeasured);
        assert_eq!(r.rto.measured_ms, None);
        assert_eq!(r.phase_after, None);
        let outside = r.steps.iter().find(|s| s.id == "outside").unwrap();
        assert_eq!(outside.state, "running");
    }
}
