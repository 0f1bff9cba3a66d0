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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::metrics::{Metrics, OutcomeLabels};
use super::notify::{Delivery, Message, Notifier};
use super::state::{Phase, TargetState, Transition};
use super::{probe_once, ProbeResult, Reason, Target};
use crate::config::env::{Role, WatchAction, WatchPolicy};

// ------------------------------------------------------------------------------------------
// The decision policy
// ------------------------------------------------------------------------------------------

/// What the policy sees on one evaluation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs {
    /// Every primary target is `down`.
    pub primary_down: bool,
    /// Every primary target is `healthy` (the outage is over).
    pub primary_healthy: bool,
    /// Every standby target is `healthy`.
    pub standby_healthy: bool,
    /// Route 53's verdict on the primary when asked: `Some(true)` = unhealthy too.
    pub route53_unhealthy: Option<bool>,
}

/// What the policy concluded. Only changes are journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing to do (primary up, or down for less than `confirm_for`).
    Nothing,
    /// Confirmed down; Route 53's opinion is needed before acting.
    NeedRoute53,
    /// Act now (notify, or fail over).
    Act,
    /// Confirmed down, but the standby is not healthy: failing over would not help.
    WithheldStandbyUnhealthy,
    /// Confirmed down by drctl, but Route 53 still sees the primary healthy.
    WithheldRoute53Disagrees,
    /// Down again within the cooldown of the last action: nothing is done.
    SuppressedCooldown,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Nothing => "nothing",
            Verdict::NeedRoute53 => "need_route53",
            Verdict::Act => "act",
            Verdict::WithheldStandbyUnhealthy => "withheld_standby_unhealthy",
            Verdict::WithheldRoute53Disagrees => "withheld_route53_disagrees",
            Verdict::SuppressedCooldown => "suppressed_cooldown",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum PolicyState {
    Armed {
        down_since: Option<Instant>,
    },
    Acted {
        at: Instant,
        primary_recovered: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub confirm_for: Duration,
    pub cooldown: Duration,
    pub require_route53: bool,
    state: PolicyState,
}

impl Policy {
    pub fn new(p: &WatchPolicy) -> Self {
        Self {
            confirm_for: p.confirm_for,
            cooldown: p.cooldown,
            require_route53: p.require_route53,
            state: PolicyState::Armed { down_since: None },
        }
    }

    /// Start as if an action was taken `ago` (a restart of the watch within the cooldown).
    pub fn acted_before(&mut self, now: Instant, ago: Duration) {
        let at = now.checked_sub(ago).unwrap_or(now);
        self.state = PolicyState::Acted {
            at,
            primary_recovered: false,
        };
    }

    /// How long the primary has been down, while armed.
    pub fn down_for(&self, now: Instant) -> Option<Duration> {
        match self.state {
            PolicyState::Armed {
                down_since: Some(s),
            } => Some(now - s),
            _ => None,
        }
    }

    pub fn in_cooldown(&self) -> bool {
        matches!(self.state, PolicyState::Acted { .. })
    }

    pub fn evaluate(&mut self, i: &Inputs, now: Instant) -> Verdict {
        if let PolicyState::Acted {
            at,
            primary_recovered,
        } = &mut self.state
        {
            *primary_recovered |= i.primary_healthy;
            if *primary_recovered && now - *at >= self.cooldown {
                self.state = PolicyState::Armed { down_since: None };
            } else if i.primary_down && *primary_recovered {
                return Verdict::SuppressedCooldown;
            } else {
                return Verdict::Nothing;
            }
        }
        let PolicyState::Armed { down_since } = &mut self.state else {
            unreachable!("handled above")
        };
        if !i.primary_down {
            *down_since = None;
            return Verdict::Nothing;
        }
        let since = *down_since.get_or_insert(now);
        if now - since < self.confirm_for {
            return Verdict::Nothing;
        }
        if !i.standby_healthy {
            return Verdict::WithheldStandbyUnhealthy;
        }
        if self.require_route53 {
            match i.route53_unhealthy {
                None => return Verdict::NeedRoute53,
                Some(false) => return Verdict::WithheldRoute53Disagrees,
                Some(true) => {}
            }
        }
        self.state = PolicyState::Acted {
            at: now,
            primary_recovered: false,
        };
        Verdict::Act
    }
}

// ------------------------------------------------------------------------------------------
// What the watch reports and journals
// ------------------------------------------------------------------------------------------

/// One target's state as evidence for a decision.
#[derive(Debug, Clone, Serialize)]
pub struct TargetEvidence {
    pub target: String,
    pub region: String,
    pub state: Phase,
    pub since: Option<DateTime<Utc>>,
    pub last: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub primary: Vec<TargetEvidence>,
    pub standby: Vec<TargetEvidence>,
    /// How long the primary had been down when the decision was made.
    pub primary_down_for_ms: Option<u64>,
    pub route53_unhealthy: Option<bool>,
    pub route53_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    Started {
        env: String,
        targets: usize,
        action: WatchAction,
        confirm_for_ms: u64,
        cooldown_ms: u64,
        require_route53: bool,
        runbook: Option<String>,
    },
    Transition {
        target: String,
        region: String,
        role: Option<Role>,
        from: Phase,
        to: Phase,
        reason: Option<Reason>,
        detail: String,
        streak: u32,
    },
    Decision {
        decision: Verdict,
        action: WatchAction,
        evidence: Evidence,
    },
    ActionStarted {
        action: WatchAction,
        runbook: Option<String>,
    },
    ActionFinished {
        action: WatchAction,
        ok: bool,
        run_id: Option<String>,
        outcome: String,
    },
    Notified {
        delivery: Delivery,
    },
    Stopped {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct WatchRecord {
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub event: WatchEvent,
}

/// Where watch records go besides the journal (the terminal).
pub trait WatchSink: Send + Sync {
    fn record(&self, r: &WatchRecord);
}

/// The watch journal: one JSON record per line, each batch written whole and fsync'd.
pub struct WatchJournal {
    path: PathBuf,
    file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
#[error("watch journal {path}: {source}")]
pub struct JournalIo {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl WatchJournal {
    pub fn path_for(state_dir: &Path, env: &str) -> PathBuf {
        state_dir.join("watch").join(format!("{env}.jsonl"))
    }

    pub fn open(state_dir: &Path, env: &str) -> Result<Self, JournalIo> {
        let path = Self::path_for(state_dir, env);
        let io = |source| JournalIo {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        Ok(Self { path, file })
    }

    pub fn append(&mut self, records: &[WatchRecord]) -> Result<(), JournalIo> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).expect("records serialize");
            buf.push(b'\n');
        }
        let io = |source| JournalIo {
            path: self.path.display().to_string(),
            source,
        };
        self.file.write_all(&buf).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// When the last action was started, if the journal has one (cooldown survives restarts).
    pub fn last_action(state_dir: &Path, env: &str) -> Option<DateTime<Utc>> {
        let text = std::fs::read_to_string(Self::path_for(state_dir, env)).ok()?;
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|v| {
                (v.get("event")?.as_str()? == "action_started")
                    .then(|| v.get("at")?.as_str()?.parse().ok())?
            })
    }
}

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
    async fn failover(
        &self,
        runbook: &Path,
        why: &str,
        shutdown: CancellationToken,
    ) -> ActionReport;
}

/// Route 53's view of the primary (its health check).
#[async_trait]
pub trait Route53Oracle: Send + Sync {
    /// `Ok(true)` when Route 53 considers the primary unhealthy.
    async fn primary_unhealthy(&self) -> Result<bool, String>;
}

// ------------------------------------------------------------------------------------------
// Shared state (read by /status and /metrics)
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    pub target: String,
    pub region: String,
    pub role: Option<Role>,
    pub check: String,
    #[serde(flatten)]
    pub state: TargetState,
    pub last_latency_ms: Option<f64>,
    pub last_at: Option<DateTime<Utc>>,
    pub probes: u64,
    pub failures: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct DecisionView {
    pub verdict: Option<Verdict>,
    pub at: Option<DateTime<Utc>>,
    pub primary_down: bool,
    pub standby_healthy: bool,
    pub primary_down_for_ms: Option<u64>,
    pub in_cooldown: bool,
    pub action_running: bool,
    pub last_action: Option<Value>,
}

pub struct Shared {
    pub env: String,
    pub started_at: DateTime<Utc>,
    pub targets: Vec<Mutex<TargetView>>,
    pub decision: Mutex<DecisionView>,
    pub metrics: Metrics,
    /// Last time the decision loop ran (for /healthz).
    pub heartbeat: Mutex<Instant>,
}

impl Shared {
    pub fn status(&self) -> Value {
        let targets: Vec<TargetView> = self
            .targets
            .iter()
            .map(|t| t.lock().expect("target view").clone())
            .collect();
        json!({
            "env": self.env,
            "started_at": self.started_at,
            "decision": *self.decision.lock().expect("decision view"),
            "targets": targets,
        })
    }

    /// Healthy while the decision loop keeps turning.
    pub fn alive(&self) -> bool {
        self.heartbeat.lock().expect("heartbeat").elapsed() < Duration::from_secs(5)
    }
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
}

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
        });
        Ok(Self {
            cfg,
            targets,
            shared,
            sink,
            actuator: None,
            route53: None,
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

            // Evaluate the policy on the current verdicts.
            let now = Instant::now();
            let (p_down, p_healthy) = all_phases(&shared, &primary);
            let (_, s_healthy) = all_phases(&shared, &standby);
            let mut inputs = Inputs {
                primary_down: p_down,
                primary_healthy: p_healthy,
                standby_healthy: s_healthy,
                route53_unhealthy: None,
            };
            shared.metrics.primary_down.set(i64::from(p_down));
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
            let down_for = policy.down_for(now).or(down_before);
            {
                let mut d = shared.decision.lock().expect("decision view");
                d.primary_down = p_down;
                d.standby_healthy = s_healthy;
                d.primary_down_for_ms = down_for.map(|d| d.as_millis() as u64);
                d.in_cooldown = policy.in_cooldown();
                d.action_running = action.is_some();
            }
            if verdict != last_verdict
                && verdict != Verdict::Nothing
                && verdict != Verdict::NeedRoute53
            {
                let evidence = Evidence {
                    primary: evidence(&shared, &primary),
                    standby: evidence(&shared, &standby),
                    primary_down_for_ms: down_for.map(|d| d.as_millis() as u64),
                    route53_unhealthy: inputs.route53_unhealthy,
                    route53_error,
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
                            runbook: self.cfg.runbook.as_ref().map(|p| p.display().to_string()),
                        },
                    });
                    match (policy_cfg.action, &self.actuator, &self.cfg.runbook) {
                        (WatchAction::Failover, Some(a), Some(rb)) => {
                            // Journal the intent before the side effect.
                            journal.append(&batch)?;
                            batch.drain(..).for_each(|r| self.sink.record(&r));
                            let (a, rb, stop) = (a.clone(), rb.clone(), action_stop.clone());
                            let why = format!(
                                "drctl watch: primary down for {} with the standby healthy",
                                humantime::format_duration(policy.confirm_for)
                            );
                            action =
                                Some(tokio::spawn(
                                    async move { a.failover(&rb, &why, stop).await },
                                ));
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
                            shared
                                .metrics
                                .actions
                                .get_or_create(&OutcomeLabels {
                                    kind: "notify".into(),
                                    outcome: "ok".into(),
                                })
                                .inc();
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
        while probes.join_next().await.is_some() {}
        let mut reason = "signal".to_string();
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
        notifier.send(message(&self.cfg.env, &rec, action));
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
        _ => format!("drctl watch [{env}]"),
    };
    Message {
        text,
        document: json!({ "source": "drctl-watch", "environment": env, "record": rec }),
    }
}

/// Probe one target forever: a slot every `interval` (random phase, plus up to `jitter`), the
/// probe bounded by its timeout, the verdict updated, transitions sent to the decision loop.
async fn probe_loop(
    i: usize,
    t: Target,
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<WatchRecord>,
    wake: mpsc::UnboundedSender<()>,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
) {
    let m = shared.metrics.target(&t);
    let phase = t.interval.mul_f64(rand::rng().random_range(0.0..1.0));
    let mut slot = Instant::now() + phase.min(t.interval);
    loop {
        let jitter = if t.jitter.is_zero() {
            Duration::ZERO
        } else {
            t.jitter.mul_f64(rand::rng().random_range(0.0..1.0))
        };
        tokio::select! {
            _ = tokio::time::sleep_until(slot + jitter) => {}
            _ = stop.cancelled() => return,
        }
        slot += t.interval;
        // The in-flight bound: wait at most until the next slot, else skip this one.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.ok(),
            _ = tokio::time::sleep_until(slot) => None,
            _ = stop.cancelled() => return,
        };
        let Some(_permit) = permit else {
            shared.metrics.skipped.inc();
            continue;
        };
        shared.metrics.in_flight.inc();
        let r: ProbeResult = probe_once(&t).await;
        shared.metrics.in_flight.dec();
        m.observe(&r);
        let now = Utc::now();
        let tr: Option<Transition> = {
            let mut v = shared.targets[i].lock().expect("target view");
            v.probes += 1;
            v.failures += u64::from(!r.ok);
            v.last_latency_ms = Some(r.latency.as_secs_f64() * 1000.0);
            v.last_at = Some(now);
            v.state.observe(&r, now)
        };
        if let Some(tr) = tr {
            m.transition(tr.from, tr.to);
            let _ = tx.send(WatchRecord {
                at: tr.at,
                event: WatchEvent::Transition {
                    target: t.name.clone(),
                    region: t.region.clone(),
                    role: t.role,
                    from: tr.from,
                    to: tr.to,
                    reason: tr.reason,
                    detail: tr.detail,
                    streak: tr.streak,
                },
            });
            let _ = wake.send(());
        }
        // A probe that overran its slot (timeout close to interval) skips the missed slots.
        let now = Instant::now();
        while slot + t.interval <= now {
            slot += t.interval;
            shared.metrics.skipped.inc();
        }
    }
}

// ------------------------------------------------------------------------------------------
// HTTP surface: /metrics, /healthz, /status
// ------------------------------------------------------------------------------------------

/// Serve the watch's HTTP surface on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;

    let app = axum::Router::new()
        .route(
            "/metrics",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                    (
                        [(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)],
                        s.metrics.encode(),
                    )
                },
            ),
        )
        .route(
            "/healthz",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                    if s.alive() {
                        (StatusCode::OK, "ok\n").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "decision loop stalled\n").into_response()
                    }
                },
            ),
        )
        .route(
            "/status",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                    axum::Json(s.status())
                },
            ),
        )
        .with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(confirm: u64, cooldown: u64, r53: bool) -> Policy {
        Policy::new(&WatchPolicy {
            confirm_for: Duration::from_secs(confirm),
            cooldown: Duration::from_secs(cooldown),
            require_route53: r53,
            ..WatchPolicy::default()
        })
    }
    const DOWN: Inputs = Inputs {
        primary_down: true,
        primary_healthy: false,
        standby_healthy: true,
        route53_unhealthy: None,
    };
    const UP: Inputs = Inputs {
        primary_down: false,
        primary_healthy: true,
        standby_healthy: true,
        route53_unhealthy: None,
    };

    #[tokio::test(start_paused = true)]
    async fn acts_only_after_confirm_for_and_then_once() {
        let mut p = policy(3, 60, false);
        let t0 = Instant::now();
        assert_eq!(p.evaluate(&DOWN, t0), Verdict::Nothing);
        tokio::time::advance(Duration::from_millis(2900)).await;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Nothing);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Act);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert_eq!(
                p.evaluate(&DOWN, Instant::now()),
                Verdict::Nothing,
                "at most once per outage"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_blip_shorter_than_confirm_for_resets() {
        let mut p = policy(3, 60, false);
        for _ in 0..20 {
            assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Nothing);
            tokio::time::advance(Duration::from_secs(2)).await;
            assert_eq!(p.evaluate(&UP, Instant::now()), Verdict::Nothing);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn withheld_while_the_standby_is_unhealthy_or_route53_disagrees() {
        let mut p = policy(0, 60, true);
        let sick = Inputs {
            standby_healthy: false,
            ..DOWN
        };
        assert_eq!(
            p.evaluate(&sick, Instant::now()),
            Verdict::WithheldStandbyUnhealthy
        );
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::NeedRoute53);
        assert_eq!(
            p.evaluate(
                &Inputs {
                    route53_unhealthy: Some(false),
                    ..DOWN
                },
                Instant::now()
            ),
            Verdict::WithheldRoute53Disagrees
        );
        assert_eq!(
            p.evaluate(
                &Inputs {
                    route53_unhealthy: Some(true),
                    ..DOWN
                },
                Instant::now()
            ),
            Verdict::Act
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_outage_in_the_cooldown_is_suppressed_then_rearmed_after_it() {
        let mut p = policy(1, 600, false);
        p.evaluate(&DOWN, Instant::now());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Act);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(p.evaluate(&UP, Instant::now()), Verdict::Nothing);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            p.evaluate(&DOWN, Instant::now()),
            Verdict::SuppressedCooldown
        );
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(
            p.evaluate(&UP, Instant::now()),
            Verdict::Nothing,
            "re-armed after cooldown and recovery"
        );
        p.evaluate(&DOWN, Instant::now());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Act);
    }

    #[tokio::test(start_paused = true)]
    async fn never_rearms_while_the_primary_stays_down() {
        let mut p = policy(0, 10, false);
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Act);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Nothing);
    }
}

/// The whole watch (probe loops, state machines, policy, journal) against scripted targets, in
/// paused time: detection latency and anti-flap are exact, not sampled.
#[cfg(test)]
mod loop_tests {
    use super::*;
    use crate::config::env::WatchPolicy;
    use crate::probe::state::Thresholds;
    use crate::probe::{Check, ProbeResult, Reason, Target};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    struct Collect(Mutex<Vec<(Instant, WatchRecord)>>);
    impl WatchSink for Collect {
        fn record(&self, r: &WatchRecord) {
            self.0.lock().unwrap().push((Instant::now(), r.clone()));
        }
    }

    fn target(name: &str, role: Role, f: impl Fn() -> bool + Send + Sync + 'static) -> Target {
        Target {
            name: name.into(),
            region: if role == Role::Primary {
                "us-east-1".into()
            } else {
                "us-west-2".into()
            },
            role: Some(role),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(800),
            jitter: Duration::from_millis(100),
            thresholds: Thresholds {
                failure: 3,
                recovery: 2,
            },
            check: Check::Scripted(Arc::new(move || {
                if f() {
                    ProbeResult::ok(Duration::from_millis(1), "status 200")
                } else {
                    ProbeResult::fail(Reason::TimedOut, Duration::from_millis(800), "timed out")
                }
            })),
        }
    }

    async fn run_for(
        targets: Vec<Target>,
        confirm: Duration,
        secs: u64,
        during: impl FnOnce() + Send + 'static,
        at: u64,
    ) -> (tempfile::TempDir, Vec<(Instant, WatchRecord)>, Instant) {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Collect(Mutex::new(Vec::new())));
        let cfg = WatchConfig {
            env: "t".into(),
            state_dir: dir.path().to_path_buf(),
            policy: WatchPolicy {
                confirm_for: confirm,
                ..WatchPolicy::default()
            },
            runbook: None,
            max_in_flight: 16,
            tick: Duration::from_millis(100),
        };
        let w = Watch::new(cfg, targets, sink.clone()).unwrap();
        let stop = CancellationToken::new();
        let t0 = Instant::now();
        let h = tokio::spawn(w.run(stop.clone()));
        tokio::time::sleep(Duration::from_secs(at)).await;
        let fault_at = Instant::now();
        during();
        tokio::time::sleep(Duration::from_secs(secs - at)).await;
        stop.cancel();
        h.await.unwrap().unwrap();
        let _ = t0;
        let recs = sink.0.lock().unwrap().clone();
        (dir, recs, fault_at)
    }

    fn transitions_to(recs: &[(Instant, WatchRecord)], name: &str, to: Phase) -> Vec<Instant> {
        recs.iter()
            .filter(|(_, r)| matches!(&r.event, WatchEvent::Transition { target, to: t, .. } if target == name && *t == to))
            .map(|(at, _)| *at)
            .collect()
    }

    fn decisions(recs: &[(Instant, WatchRecord)]) -> Vec<(Instant, Verdict)> {
        recs.iter()
            .filter_map(|(at, r)| match &r.event {
                WatchEvent::Decision { decision, .. } => Some((*at, *decision)),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn alternating_success_and_failure_never_reaches_down() {
        let n = Arc::new(AtomicU64::new(0));
        let p = target("primary", Role::Primary, move || {
            n.fetch_add(1, Ordering::Relaxed).is_multiple_of(2)
        });
        let s = target("standby", Role::Standby, || true);
        let (_d, recs, _) = run_for(vec![p, s], Duration::ZERO, 600, || {}, 1).await;
        assert!(
            transitions_to(&recs, "primary", Phase::Down).is_empty(),
            "flapped to down"
        );
        assert!(decisions(&recs).is_empty());
        assert!(
            transitions_to(&recs, "primary", Phase::Failing).len() > 100,
            "the target did flap"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn n_failures_reach_down_within_the_bound_and_the_decision_follows_confirm_for() {
        let dead = Arc::new(AtomicBool::new(false));
        let d2 = dead.clone();
        let p = target("primary", Role::Primary, move || {
            !d2.load(Ordering::Relaxed)
        });
        let s = target("standby", Role::Standby, || true);
        let confirm = Duration::from_secs(2);
        let (dir, recs, fault_at) = run_for(
            vec![p, s],
            confirm,
            30,
            move || dead.store(true, Ordering::Relaxed),
            10,
        )
        .await;
        let down = transitions_to(&recs, "primary", Phase::Down);
        assert_eq!(down.len(), 1, "{recs:#?}");
        let took = down[0] - fault_at;
        // threshold x interval + jitter: the first failing probe lands within one interval (plus
        // jitter), and the third comes two slots later (less a jitter).
        assert!(
            took <= Duration::from_millis(3 * 1000 + 100),
            "down after {took:?}"
        );
        assert!(
            took >= Duration::from_millis(2000 - 100),
            "down after only {took:?}"
        );
        let d = decisions(&recs);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].1, Verdict::Act);
        let after = d[0].0 - down[0];
        assert!(
            after >= confirm && after <= confirm + Duration::from_millis(200),
            "decided {after:?} after down"
        );
        // Journaled, fsync'd, in order.
        let text = std::fs::read_to_string(WatchJournal::path_for(dir.path(), "t")).unwrap();
        let kinds: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(kinds.first().map(String::as_str), Some("started"));
        assert_eq!(kinds.last().map(String::as_str), Some("stopped"));
        assert!(
            kinds.iter().any(|k| k == "decision") && kinds.iter().any(|k| k == "action_started")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_action_while_the_standby_is_down_too() {
        let p = target("primary", Role::Primary, || false);
        let s = target("standby", Role::Standby, || false);
        let (_d, recs, _) = run_for(vec![p, s], Duration::from_secs(1), 20, || {}, 1).await;
        let d = decisions(&recs);
        assert_eq!(
            d.iter().map(|x| x.1).collect::<Vec<_>>(),
            vec![Verdict::WithheldStandbyUnhealthy]
        );
    }
}
