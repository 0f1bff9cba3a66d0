//! A run's report, folded from its journal alone (so it works offline, and years later): the
//! outcome, who started and who approved, a timeline of steps, the RTO and RPO against the
//! environment's targets, warnings, fences and the phase before and after. Every value is a
//! machine value (durations in `_ms`/`_s` keys, times RFC 3339); `drctl schema report` prints
//! the JSON Schema of this type.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::env::Targets;
use crate::engine::Plan;
use crate::journal::{Event, Measure, Outcome, Record, RunStatus};

/// The schema id of the JSON report; bumped when a field changes meaning or goes away.
pub const SCHEMA: &str = "drctl.report/v1";

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Report {
    /// Always `drctl.report/v1` for this shape.
    pub schema: String,
    pub run_id: String,
    pub runbook: String,
    pub env: String,
    /// The command line that started the run.
    pub command: String,
    /// succeeded, failed, aborted, rolled_back, paused, running or rolling_back.
    pub outcome: String,
    /// The outcome in words, with the reason.
    pub outcome_text: String,
    /// The run restores service (it promotes a database or moves traffic), so its RTO and
    /// RPO are judged against the targets.
    pub recovery: bool,
    pub started_at: DateTime<Utc>,
    /// The run's last journal event.
    pub last_event_at: DateTime<Utc>,
    pub finished: bool,
    /// From the first journal event to the last.
    pub duration_ms: u64,
    pub started_by: Person,
    /// What started the run unattended, if anything did (`drctl watch`).
    pub trigger: Option<TriggerInfo>,
    /// Later sessions: resumes and rollbacks, who and when.
    pub sessions: Vec<Session>,
    pub approvals: Vec<ApprovalRow>,
    /// Every step of the runbook, in file order, with its place on the timeline.
    pub steps: Vec<StepBar>,
    /// Times the run stopped and waited for a person (paused), relative to its start.
    pub pauses: Vec<Span>,
    /// The chain of steps that decided how long the run took, as it ran.
    pub critical_path: Vec<String>,
    pub rto: Rto,
    pub rpo: Rpo,
    pub warnings: Vec<String>,
    pub fences: Vec<FenceRow>,
    /// The environment's phase as observed before the run (round-trip commands only).
    /// Where the run moved production, when it is a round-trip runbook ("us-east-1 →
    /// us-west-2"); what a reader looks for first.
    #[serde(default)]
    pub direction: Option<String>,
    pub phase_before: Option<String>,
    /// The phase the run's outcome leaves (derived, not observed: `drctl status` observes).
    pub phase_after: Option<String>,
    /// A game-day drill's measured times, resources and instance-minutes.
    #[serde(default)]
    pub drill: Option<super::drill::DrillFigures>,
    pub journal: JournalInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Person {
    /// The OS user (or `DRCTL_OPERATOR`).
    pub user: String,
    pub host: String,
    /// The AWS caller identity the run acted as (STS GetCallerIdentity at the start).
    pub aws_account: Option<String>,
    pub aws_arn: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TriggerInfo {
    pub by: String,
    pub detected_at: DateTime<Utc>,
    pub why: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Session {
    /// resume or rollback.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub user: String,
    pub host: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ApprovalRow {
    pub step: String,
    pub by: String,
    /// How it was given: `prompt` (typed at the run's terminal), `cli` (`drctl approve` from
    /// another terminal), `--yes` (the flag, or a watch's standing policy), `journal` (found
    /// approved when the run was resumed).
    pub via: String,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
    /// How long the gate waited for it.
    pub waited_ms: Option<u64>,
}

/// Milliseconds from the run's start.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct StepBar {
    pub id: String,
    pub kind: String,
    /// done, already_done, skipped, failed, running, not_started, undone, undo_failed.
    pub state: String,
    /// Why it was skipped or failed.
    pub detail: Option<String>,
    /// From its first start to its end (or to the last event while unfinished).
    pub span: Option<Span>,
    pub duration_ms: Option<u64>,
    pub attempts: u32,
    /// When a failed attempt was retried, from the run's start.
    pub retries_at_ms: Vec<u64>,
    /// An approval or a wait: time spent waiting, not working.
    pub wait: bool,
    pub critical: bool,
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// The run did not get as far as the measure (it stopped first, or never promoted).
    NotMeasured,
    /// Not a recovery run.
    NotApplicable,
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotMeasured => "NOT MEASURED",
            Verdict::NotApplicable => "n/a",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Rto {
    pub verdict: Verdict,
    pub measured_ms: Option<u64>,
    pub target_ms: u64,
    /// detection (the watch's first failed probe), fence (when a fence took writes away, for a
    /// run a person started) or run_start.
    pub from: String,
    pub from_at: DateTime<Utc>,
    /// The step whose success ends the outage (the first outside check), or `end of run`.
    pub to: Option<String>,
    pub to_at: Option<DateTime<Utc>>,
    /// How it was measured, in words.
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Rpo {
    pub verdict: Verdict,
    /// The replica's lag when it was promoted: the writes the run may have lost.
    pub measured_s: Option<f64>,
    /// When replication had stopped at the promotion: the last lag known before (a lower
    /// bound of the loss; `measured_s` is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_s: Option<f64>,
    pub target_s: f64,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FenceRow {
    pub step: String,
    pub region: String,
    pub instance_id: String,
    pub fenced: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct JournalInfo {
    pub path: String,
    pub events: u64,
    /// The hash of the last event (the chain's head); compare it with a copy kept elsewhere.
    pub chain_head: Option<String>,
    /// Whether every event carries its link in the hash chain.
    pub chained: bool,
    /// What `drctl verify` says of the chain: intact, unchained (written before hash chains),
    /// or where it breaks.
    pub chain_status: String,
}

/// What the report is built from: the journal's records and the runbook and targets it ran
/// with (both from the journal's own copies).
pub struct Inputs<'a> {
    pub records: &'a [Record],
    pub plan: &'a Plan,
    pub targets: &'a Targets,
    pub journal_path: String,
    /// `succeeded`, `paused`, ... and its words (from the run's replayed phase).
    pub outcome: (String, String),
}

fn ms(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    (to - from).num_milliseconds().max(0) as u64
}

#[derive(Default)]
struct StepAcc {
    first_start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    state: Option<(&'static str, Option<String>)>,
    duration_ms: Option<u64>,
    attempts: u32,
    retries: Vec<DateTime<Utc>>,
}

/// Fold the journal into a report.
pub fn build(i: &Inputs) -> Report {
    let first = &i.records[0];
    let last = i.records.last().expect("a journal has a first event");
    let t0 = first.at;
    let mut r = Report {
        schema: SCHEMA.into(),
        run_id: String::new(),
        runbook: i.plan.name.clone(),
        env: String::new(),
        command: String::new(),
        outcome: i.outcome.0.clone(),
        outcome_text: i.outcome.1.clone(),
        recovery: is_recovery(i.plan),
        started_at: t0,
        last_event_at: last.at,
        finished: false,
        duration_ms: ms(t0, last.at),
        started_by: Person {
            user: String::new(),
            host: String::new(),
            aws_account: None,
            aws_arn: None,
        },
        trigger: None,
        sessions: vec![],
        approvals: vec![],
        steps: vec![],
        pauses: vec![],
        critical_path: vec![],
        rto: Rto {
            verdict: Verdict::NotApplicable,
            measured_ms: None,
            target_ms: i.targets.rto.as_millis() as u64,
            from: "run_start".into(),
            from_at: t0,
            to: None,
            to_at: None,
            note: String::new(),
        },
        rpo: Rpo {
            verdict: Verdict::NotApplicable,
            measured_s: None,
            last_known_s: None,
            target_s: i.targets.rpo.as_secs_f64(),
            note: String::new(),
        },
        warnings: vec![],
        fences: vec![],
        direction: None,
        phase_before: None,
        phase_after: None,
        drill: super::drill::figures(i.records),
        journal: JournalInfo {
            path: i.journal_path.clone(),
            events: i.records.len() as u64,
            chain_head: last.hash.clone(),
            chained: i.records.iter().all(|r| r.hash.is_some()),
            chain_status: "not verified".into(),
        },
    };
    let mut acc: BTreeMap<String, StepAcc> = BTreeMap::new();
    let mut paused_at: Option<DateTime<Utc>> = None;
    for rec in i.records {
        match &rec.event {
            Event::RunStarted {
                run_id,
                env_name,
                operator,
                command,
                aws_identity,
                phase_before,
                trigger,
                ..
            } => {
                r.run_id = run_id.clone();
                r.env = env_name.clone();
                r.command = command.clone();
                r.started_by = Person {
                    user: operator.user.clone(),
                    host: operator.host.clone(),
                    aws_account: aws_identity.as_ref().map(|a| a.account.clone()),
                    aws_arn: aws_identity.as_ref().map(|a| a.arn.clone()),
                };
                r.phase_before = phase_before.clone();
                r.trigger = trigger.as_ref().map(|t| TriggerInfo {
                    by: t.by.clone(),
                    detected_at: t.detected_at,
                    why: t.why.clone(),
                });
            }
            Event::Resumed { operator } | Event::RollbackStarted { operator, .. } => {
                if let Some(p) = paused_at.take() {
                    r.pauses.push(Span {
                        start_ms: ms(t0, p),
                        end_ms: ms(t0, rec.at).max(ms(t0, p)),
                    });
                }
                r.sessions.push(Session {
                    kind: if matches!(rec.event, Event::Resumed { .. }) {
                        "resume"
                    } else {
                        "rollback"
                    }
                    .into(),
                    at: rec.at,
                    user: operator.user.clone(),
                    host: operator.host.clone(),
                });
            }
            Event::StepStarted { step, attempt } => {
                let a = acc.entry(step.clone()).or_default();
                a.first_start.get_or_insert(rec.at);
                a.attempts = a.attempts.max(*attempt);
                a.state = Some(("running", None));
                a.end = None;
            }
            Event::StepSucceeded {
                step,
                outcome,
                result,
                duration_ms,
            } => {
                let a = acc.entry(step.clone()).or_default();
                a.first_start.get_or_insert(rec.at);
                a.end = Some(rec.at);
                a.duration_ms = Some(*duration_ms);
                a.state = Some(
                    match (outcome, result.get("skipped").and_then(|v| v.as_str())) {
                        (_, Some(why)) => ("skipped", Some(why.to_string())),
                        (Outcome::AlreadyDone, None) => ("already_done", None),
                        (Outcome::Changed, None) => ("done", None),
                    },
                );
            }
            Event::StepFailed {
                step,
                error,
                retry_in_ms,
                ..
            } => {
                let a = acc.entry(step.clone()).or_default();
                a.first_start.get_or_insert(rec.at);
                if retry_in_ms.is_some() {
                    a.retries.push(rec.at);
                } else {
                    a.end = Some(rec.at);
                    a.state = Some(("failed", Some(error.clone())));
                }
            }
            Event::StepSkipped { step, reason, by } => {
                let a = acc.entry(step.clone()).or_default();
                a.end = Some(rec.at);
                a.state = Some(("skipped", Some(format!("{reason} (by {by})"))));
            }
            Event::Undone { step } => {
                if let Some(a) = acc.get_mut(step) {
                    a.state = Some(("undone", None));
                }
            }
            Event::UndoFailed { step, error } => {
                if let Some(a) = acc.get_mut(step) {
                    a.state = Some(("undo_failed", Some(error.clone())));
                }
            }
            Event::RollbackStopped { step, reason } => r
                .warnings
                .push(format!("rollback stopped at {step}: {reason}")),
            Event::ApprovalGranted {
                step,
                by,
                via,
                comment,
            } => r.approvals.push(ApprovalRow {
                step: step.clone(),
                by: by.clone(),
                via: via.clone(),
                comment: comment.clone(),
                at: rec.at,
                waited_ms: acc
                    .get(step)
                    .and_then(|a| a.first_start)
                    .map(|s| ms(s, rec.at)),
            }),
            Event::Warning { step, message } => r.warnings.push(format!(
                "{}{message}",
                step.as_ref().map(|s| format!("{s}: ")).unwrap_or_default()
            )),
            // A lag is never negative: -1 is CloudWatch's "replication not active", which
            // is not a measurement of anything.
            Event::Measured {
                measure: Measure::RpoSeconds,
                value,
                ..
            } if *value >= 0.0 => r.rpo.measured_s = Some(*value),
            Event::Measured {
                measure: Measure::RpoLastKnownSeconds,
                value,
                ..
            } if *value >= 0.0 => r.rpo.last_known_s = Some(*value),
            Event::Fence { step, fence } => r.fences.push(FenceRow {
                step: step.clone(),
                region: fence.region.clone(),
                instance_id: fence.instance_id.clone(),
                fenced: fence.fenced,
                detail: fence.detail.clone(),
            }),
            Event::Paused { .. } => paused_at = Some(rec.at),
            Event::RunFinished { .. } | Event::RollbackFinished { .. } => r.finished = true,
            _ => {}
        }
    }
    if let Some(p) = paused_at {
        r.pauses.push(Span {
            start_ms: ms(t0, p),
            end_ms: ms(t0, last.at).max(ms(t0, p)),
        });
    }
    r.steps = i
        .plan
        .steps
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let id = s.id().to_string();
            let a = acc.remove(&id).unwrap_or_default();
            let kind = s.kind.value.clone();
            // A clock that stepped back (NTP, a resume on another host) must not make a span
            // end before it starts.
            let span = a.first_start.map(|st| {
                let start_ms = ms(t0, st);
                Span {
                    start_ms,
                    end_ms: ms(t0, a.end.unwrap_or(last.at)).max(start_ms),
                }
            });
            let (state, detail) = a.state.unwrap_or(("not_started", None));
            StepBar {
                wait: kind == "approval" || kind == "wait",
                id,
                kind,
                state: state.into(),
                detail,
                span,
                duration_ms: a.duration_ms.or(span.map(|s| s.end_ms - s.start_ms)),
                attempts: a.attempts,
                retries_at_ms: a.retries.iter().map(|t| ms(t0, *t)).collect(),
                critical: false,
                depends_on: i.plan.deps[n]
                    .iter()
                    .map(|&d| i.plan.steps[d].id().to_string())
                    .collect(),
            }
        })
        .collect();
    r.critical_path = observed_critical_path(i.plan, &r.steps);
    for s in r.steps.iter_mut() {
        s.critical = r.critical_path.contains(&s.id);
    }
    judge(&mut r, i);
    r.phase_after = phase_after(&r, i.records);
    r
}

/// Whether a plan restores service: it promotes a database or moves traffic.
pub fn is_recovery(plan: &Plan) -> bool {
    plan.steps.iter().any(|s| s.spec.step().recovers_service())
}

/// The outside checks: `http.check` steps that come after a step that moves traffic.
pub fn outside_checks(plan: &Plan) -> Vec<usize> {
    let n = plan.steps.len();
    let mut after_traffic = vec![false; n];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| plan.level[i]);
    for &i in &order {
        after_traffic[i] = plan.deps[i]
            .iter()
            .any(|&d| after_traffic[d] || plan.steps[d].spec.step().moves_traffic());
    }
    (0..n)
        .filter(|&i| after_traffic[i] && plan.steps[i].kind.value == "http.check")
        .collect()
}

/// Walk back from the step that ended last, each time to the dependency that ended last
/// (the one it waited for): the steps that decided the run's length, as it ran.
fn observed_critical_path(plan: &Plan, steps: &[StepBar]) -> Vec<String> {
    let end = |i: usize| steps[i].span.map(|s| s.end_ms);
    let Some(mut cur) = (0..steps.len())
        .filter(|&i| end(i).is_some())
        .max_by_key(|&i| (end(i), std::cmp::Reverse(i)))
    else {
        return vec![];
    };
    let mut path = vec![steps[cur].id.clone()];
    while let Some(prev) = plan.deps[cur]
        .iter()
        .copied()
        .filter(|&d| end(d).is_some())
        .max_by_key(|&d| end(d))
    {
        path.push(steps[prev].id.clone());
        cur = prev;
    }
    path.reverse();
    path
}

/// When a fence of this run took writes away: the intent of the first step whose fence held
/// (journaled just before its side effect).
fn writes_stopped(records: &[Record]) -> Option<DateTime<Utc>> {
    let step = records.iter().find_map(|r| match &r.event {
        Event::Fence { step, fence } if fence.fenced => Some(step.clone()),
        _ => None,
    })?;
    records.iter().find_map(|r| match &r.event {
        Event::StepIntent { step: s, .. } if *s == step => Some(r.at),
        _ => None,
    })
}

/// RTO and RPO against the targets.
fn judge(r: &mut Report, i: &Inputs) {
    if let Some(t) = &r.trigger {
        r.rto.from = "detection".into();
        r.rto.from_at = t.detected_at.min(r.started_at);
    } else if let Some(at) = writes_stopped(i.records) {
        // A person started it: users were served until a fence took writes away (time spent
        // at a gate before the fence is not downtime; a gate after it is).
        r.rto.from = "fence".into();
        r.rto.from_at = at;
    }
    let checks = outside_checks(i.plan);
    let first_check = checks
        .iter()
        .filter_map(|&n| {
            let s = &r.steps[n];
            // An undone check no longer stands: a rolled-back failover restored nothing.
            (matches!(s.state.as_str(), "done" | "already_done") && r.outcome != "rolled_back")
                .then(|| s.span.map(|sp| (sp.end_ms, s.id.clone())))
                .flatten()
        })
        .min();
    let from_label = match r.rto.from.as_str() {
        "detection" => format!(
            "from detection ({}'s first failed probe)",
            r.trigger.as_ref().map_or("the watch", |t| t.by.as_str())
        ),
        "fence" => "from the fence, when writes stopped (a person started the run)".to_string(),
        _ => "from the run's start (no detection time: a person started it)".to_string(),
    };
    let run_ok = r.outcome == "succeeded";
    let end = match first_check {
        Some((end_ms, id)) => Some((
            r.started_at + chrono::Duration::milliseconds(end_ms as i64),
            id,
        )),
        None if checks.is_empty() && run_ok => Some((r.last_event_at, "end of run".to_string())),
        None => None,
    };
    if !r.recovery {
        r.rto.note = "not a recovery run (it neither promotes a database nor moves traffic)".into();
        r.rpo.note = r.rto.note.clone();
        return;
    }
    match end {
        Some((at, id)) => {
            let m = ms(r.rto.from_at, at);
            r.rto.measured_ms = Some(m);
            r.rto.to = Some(id.clone());
            r.rto.to_at = Some(at);
            r.rto.verdict = if m <= r.rto.target_ms {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            r.rto.note = if id == "end of run" {
                format!("{from_label} to the end of the run (the runbook has no outside check after a traffic step)")
            } else {
                format!("{from_label} to the first successful outside check, `{id}`")
            };
        }
        None => {
            r.rto.verdict = Verdict::NotMeasured;
            r.rto.note = format!("{from_label}; the run has not reached its outside check");
        }
    }
    match r.rpo.measured_s {
        Some(lag) => {
            r.rpo.verdict = if lag <= r.rpo.target_s {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            r.rpo.note = "the replica's lag when it was promoted".into();
        }
        None => {
            r.rpo.verdict = Verdict::NotMeasured;
            r.rpo.note = match r.rpo.last_known_s {
                Some(l) => format!(
                    "not measured: replication had stopped when the replica was promoted; at least {l:.0}s (the last lag known) plus the writes since"
                ),
                None => "no promotion measured a replica lag in this run".into(),
            };
        }
    }
}

/// The phase a finished run leaves, from its runbook and outcome. Only for the shipped
/// round-trip shapes; anything else is for `drctl status` to observe.
fn phase_after(r: &Report, records: &[Record]) -> Option<String> {
    let finished_ok = records.iter().any(|x| {
        matches!(
            x.event,
            Event::RunFinished {
                status: RunStatus::Succeeded,
                ..
            }
        )
    }) && r.outcome == "succeeded";
    if !finished_ok {
        return None;
    }
    let has = |k: &str| r.steps.iter().any(|s| s.kind == k);
    let outstanding = r.fences.iter().any(|f| !f.fenced);
    let suffix = if outstanding {
        " (a fence is outstanding)"
    } else {
        ""
    };
    if has("rds.promote_replica") && has("rds.create_replica") {
        Some("protected".into())
    } else if has("rds.promote_replica") {
        Some(format!("failed_over{suffix}"))
    } else if has("rds.create_replica") {
        Some("reprotected".into())
    } else {
        None
    }
}
