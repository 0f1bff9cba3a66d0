//! What the observed environment says and what to do next: the findings `drctl status` and
//! `check` show (split brain, an unfenced old writer, unprotected, deferred work, ...) and the
//! next commands, each naming a run only if one exists.

use super::*;

pub(super) fn findings(t: &Topology, facts: &phase::Facts) -> Vec<Finding> {
    let mut out = vec![];
    let mut add = |status, text: String| out.push(Finding { status, text });
    let writers: Vec<String> = [&t.primary, &t.standby]
        .into_iter()
        .filter_map(|v| {
            let d = v.database.as_ref()?;
            (d.writable == Some(true)).then(|| format!("{} in {}", d.id, v.region))
        })
        .collect();
    if t.phase == Phase::SplitBrain {
        add(
            Status::Fail,
            format!(
                "split brain: two databases take writes: {}",
                writers.join(" and ")
            ),
        );
    }
    for f in &t.outstanding_fences {
        add(
            Status::Fail,
            format!(
                "old writer `{}` unfenced: split-brain risk (its region {} could not be fenced by run {}: {}); `drctl fence` completes it",
                f.instance_id, f.region, f.run_id, f.detail
            ),
        );
    }
    if t.phase == Phase::Mixed {
        let place = |r: Option<Role>| {
            r.map(|r| t.region(r).region.clone())
                .unwrap_or_else(|| "?".into())
        };
        add(
            Status::Fail,
            format!(
                "tiers in different regions: Route 53 answers {}, CloudFront prefers {}, writer: {}",
                place(facts.dns),
                place(facts.cdn),
                if writers.is_empty() { "none writable".into() } else { writers.join(", ") }
            ),
        );
    }
    for v in [&t.primary, &t.standby] {
        if !v.reachable {
            add(
                Status::Warn,
                format!(
                    "{} ({}) unreachable: {}",
                    v.region,
                    v.role,
                    v.error.as_deref().unwrap_or("no answer")
                ),
            );
        }
    }
    // Retired instances: one line, however many (`drctl retired` lists them).
    let retired: Vec<&RetiredView> = [&t.primary, &t.standby]
        .into_iter()
        .flat_map(|v| v.retired.iter())
        .collect();
    if !retired.is_empty() {
        let oldest = retired
            .iter()
            .filter_map(|r| r.retired_at.as_deref())
            .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .min()
            .map(|t| format!(", the oldest since {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        add(
            Status::Warn,
            format!(
                "{} retired instance(s) kept ({}){oldest}: `drctl retired` lists them; `drctl retired --delete --older-than 7d` removes those past their keep time (a final snapshot is kept). RDS starts a stopped instance again after 7 days",
                retired.len(),
                retired.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if let Ok(d) = &t.dns {
        if t.active_role() == Some(Role::Standby) && !d.held_on_standby {
            add(
                Status::Warn,
                format!(
                    "Route 53 answers {} only because {}'s health check fails: it will answer {} again when that recovers (hold it with route53.hold_failover)",
                    t.standby.region, t.primary.region, t.primary.region
                ),
            );
        }
    }
    for w in &t.deferred {
        add(
            Status::Warn,
            format!(
                "deferred since {} (run {}): {} ({}) did not run because its control plane did not answer: {}; `drctl deferred --run` does it once it answers",
                w.since.format("%H:%M:%S UTC"),
                w.run_id,
                w.step,
                w.kind,
                w.error
            ),
        );
    }
    match t.phase {
        Phase::FailedOver => add(
            Status::Warn,
            format!(
                "unprotected: nothing replicates {}'s writer; `drctl reprotect` builds a replica in {}",
                t.standby.region, t.primary.region
            ),
        ),
        Phase::Unprotected => add(
            Status::Warn,
            format!(
                "unprotected: no replica of {}'s writer in {}",
                t.primary.region, t.standby.region
            ),
        ),
        Phase::Unknown => add(
            Status::Warn,
            "cannot tell which region serves (Route 53 and CloudFront could not be read, or the database of the region they point at could not be)".into(),
        ),
        Phase::PrimaryDown => add(
            Status::Fail,
            format!(
                "the primary is down and nothing has moved: {}; {}'s database is still a replica",
                if !t.primary.reachable {
                    format!("{} does not answer", t.primary.region)
                } else {
                    format!(
                        "Route 53 answers {} because {}'s health check fails",
                        t.standby.region, t.primary.region
                    )
                },
                t.standby.region
            ),
        ),
        _ => {}
    }
    out.sort_by_key(|f| match f.status {
        Status::Fail => 0,
        Status::Warn => 1,
        Status::Pass => 2,
    });
    out
}

pub(super) fn next_steps(t: &Topology) -> Vec<String> {
    let mut n = vec![];
    if !t.outstanding_fences.is_empty() || t.phase == Phase::SplitBrain {
        n.push("fence the old writer now: drctl fence".into());
    }
    // A hint names a run only when one exists.
    let open: Vec<String> = t
        .open_runs
        .iter()
        .map(|r| format!("run {} ({}, {})", r.run_id, r.runbook, r.state))
        .collect();
    if !t.deferred.is_empty() {
        let steps: Vec<&str> = t.deferred.iter().map(|d| d.step.as_str()).collect();
        n.push(format!(
            "finish the deferred work ({}) once its control plane answers: drctl deferred --run (a running `drctl watch` does it by itself)",
            steps.join(", ")
        ));
    }
    match t.phase {
        Phase::FailedOver
            if t.outstanding_fences.is_empty() && t.primary.reachable && t.deferred.is_empty() =>
        {
            n.push(format!(
                "protect {} again: drctl reprotect",
                t.standby.region
            ))
        }
        Phase::FailedOver if t.outstanding_fences.is_empty() && t.primary.reachable => {}
        Phase::FailedOver => n.push(format!(
            "wait for {} to answer, then: drctl fence, drctl reprotect",
            t.primary.region
        )),
        Phase::Reprotected => n.push(format!(
            "when ready, go back (planned): drctl failback --region {}",
            t.primary.region
        )),
        Phase::PrimaryDown => {
            if let Some(r) = t.open_runs.first() {
                n.push(format!(
                    "{} has not finished: `drctl resume {id}` if it is the failover, else `drctl abandon {id} --reason TEXT` (or `drctl failover --abandon-unfinished`)",
                    open[0],
                    id = r.run_id
                ));
            }
            n.push(format!(
                "fail over: drctl failover --region {} (`drctl probe` shows whether users are still served)",
                t.standby.region
            ));
        }
        Phase::Mixed if !open.is_empty() => {}
        Phase::Mixed => {
            let writer = [&t.primary, &t.standby].into_iter().find(|v| {
                v.database
                    .as_ref()
                    .is_some_and(|d| d.role == "writer" && d.writable != Some(false))
            });
            n.push(match writer {
                Some(w) if w.role == Role::Standby => format!(
                    "no drctl run is unfinished, and the writer is in {}: complete the move there: drctl failover --region {}",
                    w.region, w.region
                ),
                Some(w) => format!(
                    "no drctl run is unfinished: the tiers were moved outside drctl; the writer is in {}: point Route 53 and CloudFront back at it",
                    w.region
                ),
                None => "no drctl run is unfinished and no writer takes writes: find out what moved (drctl history, the AWS console)".into(),
            });
        }
        _ => {}
    }
    // An unfinished run comes first, whatever the phase: it may be half way through a move.
    if t.phase != Phase::PrimaryDown {
        if let Some(r) = t.open_runs.first() {
            n.insert(
                0,
                format!(
                    "finish the unfinished {}: drctl status {id}, then drctl resume {id} (or drctl rollback {id}, or drctl abandon {id} --reason TEXT)",
                    open.join("; "),
                    id = r.run_id
                ),
            );
        }
    }
    n
}
