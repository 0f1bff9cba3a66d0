//! The checks before each step of the round trip (failover, fence, reprotect, failback), made
//! from the environment as observed (`topology`), never from drctl.yaml's roles alone. Each
//! refuses, with the reason and what to do instead, anything that does not fit the phase the
//! environment is in, before the lease is taken or anything is written.

use std::time::Duration;

use serde::Serialize;

use super::{Context, RunError};
use crate::config::env::{Environment, Role};
use crate::topology::{self, Phase, Topology};

/// The shipped runbooks of the round trip (names under `runbooks/`).
pub const UNPLANNED_RUNBOOK: &str = "warm-standby-failover";
pub const PLANNED_RUNBOOK: &str = "warm-standby-switchover";
pub const FENCE_RUNBOOK: &str = "fence";
pub const REPROTECT_RUNBOOK: &str = "reprotect";
pub const FAILBACK_RUNBOOK: &str = "failback";

/// How long observing the environment may take, per part.
pub const OBSERVE_TIMEOUT: Duration = Duration::from_secs(15);
/// The bound before a failover: a dark region must not cost its whole timeout before the run
/// starts (it only decides planned or unplanned, and "already failed over").
pub const FAILOVER_OBSERVE_TIMEOUT: Duration = Duration::from_secs(4);

/// The environment as it is now, with the state dir's outstanding fences.
pub async fn observe(ctx: &Context, env: &Environment) -> Topology {
    observe_within(ctx, env, OBSERVE_TIMEOUT).await
}

pub async fn observe_within(ctx: &Context, env: &Environment, limit: Duration) -> Topology {
    let aws = ctx.aws.aws(env);
    let store = ctx.state.journals().await;
    topology::observe(aws.as_ref(), env, Some(store.as_ref()), limit).await
}

/// Planned (ARC's "graceful": the primary answers, so fence it first and lose no write) or
/// unplanned ("ungraceful": the primary is in trouble; the fence is tried on the side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Planned,
    Unplanned,
}

impl Mode {
    pub fn runbook(self) -> &'static str {
        match self {
            Mode::Planned => PLANNED_RUNBOOK,
            Mode::Unplanned => UNPLANNED_RUNBOOK,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Planned => "planned",
            Mode::Unplanned => "unplanned",
        })
    }
}

/// Where a round-trip runbook moves production, for headers: failover and switchover go from
/// the primary to the standby, failback back. Other runbooks move nothing by their name.
pub fn direction(runbook: &str, env: &crate::config::Environment) -> Option<String> {
    match runbook {
        UNPLANNED_RUNBOOK | PLANNED_RUNBOOK => {
            Some(format!("{} → {}", env.primary_region, env.standby_region))
        }
        FAILBACK_RUNBOOK => Some(format!("{} → {}", env.standby_region, env.primary_region)),
        _ => None,
    }
}

/// The mode to fail over in, and why: as asked, or from what was observed.
pub fn choose_mode(t: &Topology, asked: Option<Mode>) -> (Mode, String) {
    let p = &t.primary;
    let db = p.database.as_ref();
    let answers = p.reachable && db.is_some_and(|d| d.role == "writer" && d.status == "available");
    let seen = if !p.reachable {
        format!(
            "{} does not answer ({})",
            p.region,
            p.error.as_deref().unwrap_or("no answer")
        )
    } else {
        match db {
            Some(d) => format!("{} in {} is {} ({})", d.id, p.region, d.role, d.status),
            None => format!("no primary database seen in {}", p.region),
        }
    };
    match (asked, answers) {
        (Some(m), _) => (m, format!("--mode {m} ({seen})")),
        (None, true) => (
            Mode::Planned,
            format!("{seen}: a planned switchover, fenced first, no write lost"),
        ),
        (None, false) => (
            Mode::Unplanned,
            format!("{seen}: an unplanned failover, the fence tried on the side"),
        ),
    }
}

/// `failover` has nothing to do: production already runs in the standby.
pub fn already_failed_over(t: &Topology) -> bool {
    matches!(t.phase, Phase::FailedOver | Phase::Reprotected)
}

/// What `drctl fence` should do.
#[derive(Debug, PartialEq)]
pub enum FenceNeed {
    /// Nothing: the old primary takes no writes (the reason says what was seen).
    Nothing(String),
    Fence,
}

pub fn fence_preflight(t: &Topology) -> Result<FenceNeed, RunError> {
    let p = &t.primary;
    if t.active_role() == Some(Role::Primary) {
        return Err(RunError::Refused(format!(
            "{} serves production: fencing its writer would stop production. `drctl fence` fences the old primary after a failover",
            p.region
        )));
    }
    if !p.reachable {
        return Err(RunError::Refused(format!(
            "{} does not answer ({}): the fence can complete only when it does; `drctl watch` completes it by itself as soon as it answers",
            p.region,
            p.error.as_deref().unwrap_or("no answer")
        )));
    }
    match &p.database {
        Some(d) if d.role == "writer" && d.writable != Some(false) => Ok(FenceNeed::Fence),
        Some(d) => Ok(FenceNeed::Nothing(format!(
            "{} in {} takes no writes ({}{})",
            d.id,
            p.region,
            d.role,
            if d.writable == Some(false) {
                ", read-only or stopped"
            } else {
                ""
            }
        ))),
        None => Ok(FenceNeed::Nothing(format!(
            "no primary database in {}",
            p.region
        ))),
    }
}

fn phase_refusal(t: &Topology, wanted: &str, what: &str) -> RunError {
    let mut why = format!(
        "{what} needs the environment `{wanted}`; it is `{}`",
        t.phase
    );
    for f in t.failures() {
        why.push_str(&format!("\n  FAIL {}", f.text));
    }
    for n in &t.next {
        why.push_str(&format!("\n  next: {n}"));
    }
    RunError::Refused(why)
}

/// Refused while a failover's control-plane work is deferred: building on a half-made
/// failover (records not swapped, CloudFront not moved) would leave it half-made for good.
fn deferred_refusal(t: &Topology, what: &str) -> Result<(), RunError> {
    if t.deferred.is_empty() {
        return Ok(());
    }
    let steps: Vec<String> = t
        .deferred
        .iter()
        .map(|d| format!("{} ({}, deferred by run {})", d.step, d.kind, d.run_id))
        .collect();
    Err(RunError::Refused(format!(
        "refusing to {what}: the failover's control-plane work is still deferred: {}. Finish it first: drctl deferred --run (it needs the Route 53 and CloudFront APIs to answer)",
        steps.join(", ")
    )))
}

pub fn reprotect_preflight(t: &Topology) -> Result<(), RunError> {
    deferred_refusal(t, "reprotect")?;
    if t.phase != Phase::FailedOver {
        return Err(phase_refusal(t, "failed_over", "reprotect"));
    }
    if !t.primary.reachable {
        return Err(RunError::Refused(format!(
            "{} does not answer: a replica can be built there only when it does",
            t.primary.region
        )));
    }
    if !t.outstanding_fences.is_empty()
        || t.primary
            .database
            .as_ref()
            .is_some_and(|d| d.role == "writer" && d.writable != Some(false))
    {
        return Err(RunError::Refused(format!(
            "the old primary in {} may still take writes: fence it first (`drctl fence`)",
            t.primary.region
        )));
    }
    Ok(())
}

/// The region check of `failback`, before anything is observed.
pub fn failback_region(env: &Environment, region: &str) -> Result<(), RunError> {
    if region != env.primary_region {
        return Err(RunError::Refused(format!(
            "refusing to fail back to {region}: failback returns production to the primary region, {}",
            env.primary_region
        )));
    }
    Ok(())
}

pub fn failback_preflight(t: &Topology, env: &Environment, region: &str) -> Result<(), RunError> {
    failback_region(env, region)?;
    deferred_refusal(t, "fail back")?;
    if t.phase != Phase::Reprotected {
        return Err(phase_refusal(t, "reprotected", "failback"));
    }
    let rpo = env.targets.rpo.as_secs_f64();
    match t.primary.database.as_ref().map(|d| (d.id.clone(), d.lag_s)) {
        Some((id, Some(lag))) if lag > rpo => Err(RunError::Refused(format!(
            "replica {id} in {} lags {lag:.0}s, above the RPO target {}s: wait for it to catch up",
            t.primary.region, rpo
        ))),
        Some((id, None)) => Err(RunError::Refused(format!(
            "replica {id} in {} reports no ReplicaLag yet: wait until it replicates",
            t.primary.region
        ))),
        _ => Ok(()),
    }
}
