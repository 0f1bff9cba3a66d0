//! `drctl watch`: probe every target on its own schedule, keep each target's verdict, and decide
//! from the verdicts whether the primary is really down; then notify, or run the failover
//! runbook once. Every transition and decision is journaled (fsync'd) under
//! `<state>/watch/<env>.jsonl` and reported to a sink (the CLI prints it).
//!
//! Decision policy ([`Policy`], pure and clock-driven so it is tested under paused time): the
//! primary is down when every primary target is `down`; it is acted on only after it stays down
//! for `confirm_for`, while every standby target is `healthy`, and (with `require_route53`)
//! while Route 53's health check also reports the primary unhealthy. After acting, nothing more
//! is done until the primary has been healthy again and `cooldown` has passed: one outage, one
//! action. Recovery of the primary is reported, never acted on (no automatic failback).
//!
//! The pieces live beside this file: the decision policy (`policy.rs`), the watch journal and
//! its events (`journal.rs`), each target's probe loop (`probe_loop.rs`) and the HTTP surface
//! (`http.rs`).

mod http;
mod journal;
mod policy;
mod probe_loop;
pub mod quorum;
#[cfg(test)]
mod tests;

pub use http::{serve, DecisionView, Shared, TargetView};
pub use journal::{Evidence, TargetEvidence};
pub use journal::{JournalIo, WatchEvent, WatchJournal, WatchRecord, WatchSink};
pub use policy::{Inputs, Policy, Verdict};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::env::{Role, WatchAction, WatchPolicy};
use crate::probe::metrics::{Metrics, OutcomeLabels};
use crate::probe::notify::{Delivery, Message, Notifier};
use crate::probe::state::{Phase, TargetState};
use crate::probe::Target;

use probe_loop::probe_loop;

// ------------------------------------------------------------------------------------------
// Collaborators the CLI provides
// ------------------------------------------------------------------------------------------

/// How the failover action ended.
#[derive(Debug, Clone)]
pub struct ActionReport {
    pub ok: bool,
    pub run_id: Option<String>,
    pub outcome: String,
}

/// Runs the failover runbook the way a human would (lease, journal, engine). The CLI implements
/// it; the watch only decides when.
#[async_trait]
pub trait Actuator: Send + Sync {
    /// `detected_at`: the first failed probe of the primary's outage, journaled with the run
    /// so that its report measures the RTO from there.
    async fn failover(
        &self,
        runbook: &Path,
        why: &str,
        detected_at: Option<DateTime<Utc>>,
        shutdown: CancellationToken,
    ) -> ActionReport;
}

/// Completes a fence that a failover could not finish because the old primary's region was
/// dark, as soon as that region answers again. Protects; never fails back. The run module
/// implements it (the fence runbook, under the environment's lease).
#[async_trait]
pub trait Fencer: Send + Sync {
    /// What to fence now, if a fence is outstanding and its region answers (bounded).
    async fn due(&self) -> Option<String>;
    async fn fence(&self, shutdown: CancellationToken) -> ActionReport;
}

/// Route 53's view of the primary (its health check).
#[async_trait]
pub trait Route53Oracle: Send + Sync {
    /// `Ok(true)` when Route 53 considers the primary unhealthy.
    async fn primary_unhealthy(&self) -> Result<bool, String>;
}

// ------------------------------------------------------------------------------------------
// The watch itself
// ------------------------------------------------------------------------------------------

pub struct WatchConfig {
    pub env: String,
    pub state_dir: PathBuf,
    pub policy: WatchPolicy,
    /// The runbook to run on `failover`, resolved against the environment file's directory.
    pub runbook: Option<PathBuf>,
    pub max_in_flight: usize,
    /// How often the policy is evaluated (besides on every transition).
    pub tick: Duration,
}

pub struct Watch {
    pub cfg: WatchConfig,
    pub targets: Vec<Target>,
    pub shared: Arc<Shared>,
    pub sink: Arc<dyn WatchSink>,
    pub actuator: Option<Arc<dyn Actuator>>,
    pub route53: Option<Arc<dyn Route53Oracle>>,
    pub fencer: Option<Arc<dyn Fencer>>,
    /// The other watchers (shared state): with them, the primary is acted on only with a
    /// quorum ([`quorum`]).
    pub peers: Option<Arc<dyn quorum::Peers>>,
}

/// How often the watch looks for an outstanding fence to complete, and the most it waits
/// between tries after a failed one.
const FENCE_EVERY: Duration = Duration::from_secs(5);
const FENCE_BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Journal(#[from] JournalIo),
    #[error("{0}")]
    Config(String),
}

impl Watch {
    pub fn new(
        cfg: WatchConfig,
        targets: Vec<Target>,
        sink: Arc<dyn WatchSink>,
    ) -> Result<Self, WatchError> {
        let w = &cfg.policy;
        for (list, field) in [(&w.primary, "primary"), (&w.standby, "standby")] {
            if let Some(n) = list.iter().find(|n| !targets.iter().any(|t| &t.name == *n)) {
                return Err(WatchError::Config(format!(
                    "probes.watch.{field} names `{n}`, which is not a probe target"
                )));
            }
        }
        for (role, list) in [(Role::Primary, &w.primary), (Role::Standby, &w.standby)] {
            if list.is_empty() && !targets.iter().any(|t| t.role == Some(role)) {
                return Err(WatchError::Config(format!(
                    "no probe target stands for the {role}: add targets in its region, or list them under probes.watch.{role}"
                )));
            }
        }
        let metrics = Metrics::new();
        let views = targets
            .iter()
            .map(|t| {
                Mutex::new(TargetView {
                    target: t.name.clone(),
                    region: t.region.clone(),
                    role: t.role,
                    check: t.describe(),
                    state: TargetState::new(t.thresholds),
                    last_latency_ms: None,
                    last_at: None,
                    probes: 0,
                    failures: 0,
                })
            })
            .collect();
        let shared = Arc::new(Shared {
            env: cfg.env.clone(),
            started_at: Utc::now(),
            targets: views,
            decision: Mutex::new(DecisionView::default()),
            metrics,
            heartbeat: Mutex::new(Instant::now()),
            quorum: Mutex::new(None),
            primary_down_since: Mutex::new(None),
        });
        Ok(Self {
            cfg,
            targets,
            shared,
            sink,
            actuator: None,
            route53: None,
            fencer: None,
            peers: None,
        })
    }

    fn members(&self, role: Role) -> Vec<usize> {
        let names = match role {
            Role::Primary => &self.cfg.policy.primary,
            Role::Standby => &self.cfg.policy.standby,
        };
        self.targets
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                if names.is_empty() {
                    t.role == Some(role)
                } else {
                    names.contains(&t.name)
                }
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Run until `shutdown`; returns once every task has stopped and the journal says so.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WatchError> {
        let mut journal = WatchJournal::open(&self.cfg.state_dir, &self.cfg.env)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<WatchRecord>();
        let shared = self.shared.clone();
        let policy_cfg = self.cfg.policy.clone();

        // Notifications report back through the same channel, so deliveries are journaled too.
        let (tx2, sh2) = (tx.clone(), shared.clone());
        let notifier = Notifier::start(
            policy_cfg.notifications.clone(),
            policy_cfg.notify_timeout,
            policy_cfg.notify_attempts,
            Arc::new(move |d: Delivery| {
                let outcome = if d.ok { "ok" } else { "failed" };
                sh2.metrics
                    .notifications
                    .get_or_create(&OutcomeLabels {
                        kind: d.sink.clone(),
                        outcome: outcome.into(),
                    })
                    .inc();
                let _ = tx2.send(WatchRecord {
                    at: Utc::now(),
                    event: WatchEvent::Notified { delivery: d },
                });
            }),
        );

        let primary = self.members(Role::Primary);
        let standby = self.members(Role::Standby);
        let mut policy = Policy::new(&policy_cfg);
        let peer_stop = CancellationToken::new();
        if let Some(p) = &self.peers {
            policy.require_quorum = true;
            tokio::spawn(quorum::peers_loop(
                shared.clone(),
                p.clone(),
                quorum::PeerSettings {
                    primary: primary.clone(),
                    standby: standby.clone(),
                    heartbeat: policy_cfg.heartbeat,
                    peer_timeout: policy_cfg.peer_timeout,
                    confirm_for: policy_cfg.confirm_for,
                    quorum: policy_cfg.quorum,
                },
                peer_stop.clone(),
            ));
        }
        if let Some(at) = WatchJournal::last_action(&self.cfg.state_dir, &self.cfg.env) {
            let ago = (Utc::now() - at).to_std().unwrap_or_default();
            if ago < policy.cooldown {
                policy.acted_before(Instant::now(), ago);
            }
        }
        let started = WatchRecord {
            at: Utc::now(),
            event: WatchEvent::Started {
                env: self.cfg.env.clone(),
                targets: self.targets.len(),
                action: policy_cfg.action,
                confirm_for_ms: policy_cfg.confirm_for.as_millis() as u64,
                cooldown_ms: policy_cfg.cooldown.as_millis() as u64,
                require_route53: policy_cfg.require_route53,
                runbook: self.cfg.runbook.as_ref().map(|p| p.display().to_string()),
            },
        };
        journal.append(std::slice::from_ref(&started))?;
        self.sink.record(&started);
        if policy_cfg.action == WatchAction::Notify && policy_cfg.notifications.is_empty() {
            tracing::warn!(
                "probes.watch.action is notify and probes.watch.notifications is empty: a confirmed outage is only journaled and shown on /status; nobody is told"
            );
        }

        // One task per target: its own schedule, its own state machine.
        let permits = Arc::new(Semaphore::new(self.cfg.max_in_flight.max(1)));
        let (ttx, mut trx) = mpsc::unbounded_channel::<()>();
        let mut probes = tokio::task::JoinSet::new();
        for (i, t) in self.targets.iter().cloned().enumerate() {
            let (shared, tx, ttx, permits, stop) = (
                shared.clone(),
                tx.clone(),
                ttx.clone(),
                permits.clone(),
                shutdown.clone(),
            );
            probes.spawn(probe_loop(i, t, shared, tx, ttx, permits, stop));
        }
        drop(ttx);

        let mut tick = tokio::time::interval(self.cfg.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_verdict = Verdict::Nothing;
        let mut route53_cache: Option<(Instant, Result<bool, String>)> = None;
        let mut action: Option<tokio::task::JoinHandle<ActionReport>> = None;
        let action_stop = CancellationToken::new();
        let mut batch: Vec<WatchRecord> = Vec::new();
        let mut fence_task: Option<tokio::task::JoinHandle<Option<ActionReport>>> = None;
        let mut fence_failures = 0u32;
        let mut next_fence = Instant::now();

        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(r) = rx.recv() => {
                    batch.push(r);
                    // Drain what is already queued: one write and one fsync for a burst.
                    while let Ok(r) = rx.try_recv() {
                        batch.push(r);
                        if batch.len() >= 4096 { break; }
                    }
                }
                Some(()) = trx.recv() => { while trx.try_recv().is_ok() {} }
                _ = tick.tick() => {}
            }
            *shared.heartbeat.lock().expect("heartbeat") = Instant::now();

            // Collect the action's end, if it has ended.
            if action.as_ref().is_some_and(|h| h.is_finished()) {
                let report = action
                    .take()
                    .expect("checked")
                    .await
                    .unwrap_or(ActionReport {
                        ok: false,
                        run_id: None,
                        outcome: "the action task panicked".into(),
                    });
                batch.push(self.action_finished(&report, &notifier));
            }

            // An outstanding fence: complete it as soon as its region answers, never while a
            // failover runs, one at a time, backing off after a failed try.
            if fence_task.as_ref().is_some_and(|h| h.is_finished()) {
                let report = fence_task.take().expect("checked").await.ok().flatten();
                if let Some(r) = report {
                    fence_failures = if r.ok { 0 } else { fence_failures + 1 };
                    let rec = WatchRecord {
                        at: Utc::now(),
                        event: WatchEvent::FenceFinished {
                            ok: r.ok,
                            run_id: r.run_id,
                            outcome: r.outcome,
                        },
                    };
                    notifier.send(message(&self.cfg.env, &rec, policy_cfg.action));
                    batch.push(rec);
                }
                let wait = FENCE_EVERY.saturating_mul(1 << fence_failures.min(6));
                next_fence = Instant::now() + wait.min(FENCE_BACKOFF_MAX);
            }
            if let Some(f) = &self.fencer {
                if fence_task.is_none() && action.is_none() && Instant::now() >= next_fence {
                    let (f, tx, stop) = (f.clone(), tx.clone(), action_stop.clone());
                    fence_task = Some(tokio::spawn(async move {
                        let what = f.due().await?;
                        let _ = tx.send(WatchRecord {
                            at: Utc::now(),
                            event: WatchEvent::FenceStarted { what },
                        });
                        Some(f.fence(stop).await)
                    }));
                }
            }

            // Evaluate the policy on the current verdicts.
            let now = Instant::now();
            let (p_down, p_healthy) = all_phases(&shared, &primary);
            let (_, s_healthy) = all_phases(&shared, &standby);
            let mut inputs = Inputs {
                primary_down: p_down,
                primary_healthy: p_healthy,
                standby_healthy: s_healthy,
                route53_unhealthy: None,
                quorum: None,
            };
            shared.metrics.primary_down.set(i64::from(p_down));
            {
                let mut since = shared.primary_down_since.lock().expect("down since");
                *since = if p_down {
                    Some(since.unwrap_or(now))
                } else {
                    None
                };
            }
            shared.metrics.standby_healthy.set(i64::from(s_healthy));
            let down_before = policy.down_for(now);
            let mut verdict = policy.evaluate(&inputs, now);
            let mut route53_error = None;
            if verdict == Verdict::NeedRoute53 {
                let fresh = route53_cache
                    .as_ref()
                    .is_some_and(|(at, _)| now - *at < Duration::from_secs(2));
                if !fresh {
                    let res = match &self.route53 {
                        Some(o) => {
                            tokio::time::timeout(Duration::from_secs(5), o.primary_unhealthy())
                                .await
                                .unwrap_or_else(|_| Err("Route 53 did not answer within 5s".into()))
                        }
                        None => Err(
                            "require_route53 is set but no Route 53 health check is configured"
                                .into(),
                        ),
                    };
                    route53_cache = Some((Instant::now(), res));
                }
                let res = route53_cache
                    .as_ref()
                    .map(|(_, r)| r.clone())
                    .expect("just set");
                match res {
                    Ok(v) => inputs.route53_unhealthy = Some(v),
                    // Unknown is not agreement: an unreachable Route 53 API withholds the action.
                    Err(e) => {
                        inputs.route53_unhealthy = Some(false);
                        route53_error = Some(e);
                    }
                }
                verdict = policy.evaluate(&inputs, now);
            }
            let mut quorum_view = None;
            if verdict == Verdict::NeedQuorum {
                let q = shared.quorum.lock().expect("quorum view").clone();
                // A view older than two heartbeats is not acted on: the table may be slow or
                // out of reach, and unknown is not agreement.
                let max_age = policy_cfg.heartbeat * 2 + Duration::from_millis(500);
                inputs.quorum = Some(q.as_ref().is_some_and(|q| q.holds(now, max_age)));
                quorum_view = q;
                verdict = policy.evaluate(&inputs, now);
            }
            let down_for = policy.down_for(now).or(down_before);
            {
                // How long the primary has been down, whatever the policy's state: after an
                // action it is still down, and /status says for how long.
                let since = *shared.primary_down_since.lock().expect("down since");
                let mut d = shared.decision.lock().expect("decision view");
                d.primary_down = p_down;
                d.standby_healthy = s_healthy;
                d.primary_down_for_ms = since.map(|s| (now - s).as_millis() as u64);
                d.in_cooldown = policy.in_cooldown();
                d.action_running = action.is_some();
            }
            shared.metrics.set_watch_phase(if action.is_some() {
                "acting"
            } else if policy.in_cooldown() {
                "cooldown"
            } else {
                "armed"
            });
            if verdict != last_verdict
                && verdict != Verdict::Nothing
                && verdict != Verdict::NeedRoute53
                && verdict != Verdict::NeedQuorum
            {
                let evidence = Evidence {
                    primary: evidence(&shared, &primary),
                    standby: evidence(&shared, &standby),
                    primary_down_for_ms: down_for.map(|d| d.as_millis() as u64),
                    route53_unhealthy: inputs.route53_unhealthy,
                    route53_error,
                    quorum: quorum_view,
                };
                shared.metrics.decision(verdict.as_str());
                let rec = WatchRecord {
                    at: Utc::now(),
                    event: WatchEvent::Decision {
                        decision: verdict,
                        action: policy_cfg.action,
                        evidence: evidence.clone(),
                    },
                };
                {
                    let mut d = shared.decision.lock().expect("decision view");
                    d.verdict = Some(verdict);
                    d.at = Some(rec.at);
                }
                notifier.send(message(&self.cfg.env, &rec, policy_cfg.action));
                batch.push(rec);
                if verdict == Verdict::Act {
                    batch.push(WatchRecord {
                        at: Utc::now(),
                        event: WatchEvent::ActionStarted {
                            action: policy_cfg.action,
                            // A notification runs no runbook: naming one would mislead.
                            runbook: match policy_cfg.action {
                                WatchAction::Failover => {
                                    self.cfg.runbook.as_ref().map(|p| p.display().to_string())
                                }
                                WatchAction::Notify => None,
                            },
                        },
                    });
                    match (policy_cfg.action, &self.actuator, &self.cfg.runbook) {
                        (WatchAction::Failover, Some(a), Some(rb)) => {
                            // Journal the intent before the side effect.
                            journal.append(&batch)?;
                            batch.drain(..).for_each(|r| self.sink.record(&r));
                            let (a, rb, stop) = (a.clone(), rb.clone(), action_stop.clone());
                            let detected_at = evidence
                                .primary
                                .iter()
                                .filter_map(|e| e.first_failed_at)
                                .min();
                            let why = format!(
                                "drctl watch: primary down for {} with the standby healthy",
                                humantime::format_duration(policy.confirm_for)
                            );
                            action = Some(tokio::spawn(async move {
                                a.failover(&rb, &why, detected_at, stop).await
                            }));
                        }
                        (WatchAction::Failover, _, _) => {
                            batch.push(self.action_finished(
                                &ActionReport {
                                    ok: false,
                                    run_id: None,
                                    outcome: "no failover runbook or runner configured".into(),
                                },
                                &notifier,
                            ));
                        }
                        (WatchAction::Notify, _, _) => {
                            // The decision's message went to every sink above; say how many,
                            // and that nothing was sent when there is none.
                            let sinks = policy_cfg.notifications.len();
                            batch.push(self.action_finished(
                                &ActionReport {
                                    ok: sinks > 0,
                                    run_id: None,
                                    outcome: if sinks > 0 {
                                        format!("notified {sinks} sink(s) (deliveries journaled as they end)")
                                    } else {
                                        "NOTHING SENT: probes.watch.notifications is empty; the outage is only in this journal and on /status".into()
                                    },
                                },
                                &notifier,
                            ));
                        }
                    }
                }
            }
            last_verdict = verdict;
            if !batch.is_empty() {
                journal.append(&batch)?;
                batch.drain(..).for_each(|r| self.sink.record(&r));
            }
        }

        // Shutdown: stop probing, let a running failover reach a safe point (the engine pauses
        // and journals it; `drctl resume` continues), then close the journal.
        probes.abort_all();
        peer_stop.cancel();
        while probes.join_next().await.is_some() {}
        let mut reason = "signal".to_string();
        if let Some(h) = fence_task.take() {
            action_stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(30), h).await;
        }
        if let Some(h) = action.take() {
            action_stop.cancel();
            match tokio::time::timeout(Duration::from_secs(120), h).await {
                Ok(Ok(report)) => batch.push(self.action_finished(&report, &notifier)),
                _ => reason = "signal; the failover run did not reach a safe point within 120s (see `drctl status`)".into(),
            }
        }
        while let Ok(r) = rx.try_recv() {
            batch.push(r);
        }
        batch.push(WatchRecord {
            at: Utc::now(),
            event: WatchEvent::Stopped { reason },
        });
        journal.append(&batch)?;
        batch.drain(..).for_each(|r| self.sink.record(&r));
        Ok(())
    }

    fn action_finished(&self, report: &ActionReport, notifier: &Notifier) -> WatchRecord {
        let action = self.cfg.policy.action;
        let outcome = if report.ok { "ok" } else { "failed" };
        self.shared
            .metrics
            .actions
            .get_or_create(&OutcomeLabels {
                kind: format!("{action:?}").to_lowercase(),
                outcome: outcome.into(),
            })
            .inc();
        let rec = WatchRecord {
            at: Utc::now(),
            event: WatchEvent::ActionFinished {
                action,
                ok: report.ok,
                run_id: report.run_id.clone(),
                outcome: report.outcome.clone(),
            },
        };
        self.shared
            .decision
            .lock()
            .expect("decision view")
            .last_action = serde_json::to_value(&rec).ok();
        // A notification's own message was the decision: no second one saying it was sent.
        if action != WatchAction::Notify {
            notifier.send(message(&self.cfg.env, &rec, action));
        }
        rec
    }
}

/// (all down, all healthy) over some targets. An empty set is neither down nor healthy.
fn all_phases(shared: &Shared, idx: &[usize]) -> (bool, bool) {
    if idx.is_empty() {
        return (false, false);
    }
    let phases: Vec<Phase> = idx
        .iter()
        .map(|&i| shared.targets[i].lock().expect("target view").state.phase)
        .collect();
    (
        phases.iter().all(|p| *p == Phase::Down),
        phases.iter().all(|p| *p == Phase::Healthy),
    )
}

fn evidence(shared: &Shared, idx: &[usize]) -> Vec<TargetEvidence> {
    idx.iter()
        .map(|&i| {
            let v = shared.targets[i].lock().expect("target view");
            TargetEvidence {
                target: v.target.clone(),
                region: v.region.clone(),
                state: v.state.phase,
                since: v.state.since,
                first_failed_at: v.state.failing_since,
                last: v.state.last_detail.clone(),
            }
        })
        .collect()
}

fn message(env: &str, rec: &WatchRecord, action: WatchAction) -> Message {
    let text = match &rec.event {
        WatchEvent::Decision {
            decision: Verdict::Act,
            evidence,
            ..
        } => {
            let what = match action {
                WatchAction::Notify => {
                    "notifying only (action: notify); a human decides on failover"
                }
                WatchAction::Failover => "starting the failover runbook",
            };
            let down: Vec<String> = evidence
                .primary
                .iter()
                .map(|t| format!("{} ({})", t.target, t.last))
                .collect();
            format!("drctl watch [{env}]: PRIMARY DOWN, confirmed; standby healthy; {what}. Evidence: {}", down.join(", "))
        }
        WatchEvent::Decision { decision, .. } => format!(
            "drctl watch [{env}]: primary down, action withheld: {}",
            decision.as_str()
        ),
        WatchEvent::ActionFinished {
            ok,
            run_id,
            outcome,
            ..
        } => {
            format!(
                "drctl watch [{env}]: failover {} ({outcome}){}",
                if *ok { "finished" } else { "did NOT finish" },
                run_id
                    .as_ref()
                    .map(|r| format!(", run {r}"))
                    .unwrap_or_default()
            )
        }
        WatchEvent::FenceFinished {
            ok,
            run_id,
            outcome,
            ..
        } => format!(
            "drctl watch [{env}]: old primary {} ({outcome}){}",
            if *ok {
                "fenced: it takes no writes"
            } else {
                "NOT fenced yet: split-brain risk"
            },
            run_id
                .as_ref()
                .map(|r| format!(", run {r}"))
                .unwrap_or_default()
        ),
        _ => format!("drctl watch [{env}]"),
    };
    Message {
        text,
        document: json!({ "source": "drctl-watch", "environment": env, "record": rec }),
    }
}
