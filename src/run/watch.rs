//! The watch's side of a run: its unattended failover (an [`Actuator`]), the completion of an
//! outstanding fence (a [`Fencer`]), and its Route 53 oracle, through the same preflight,
//! lease, journal and engine as a person's `drctl run`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::failover::resolve_runbook;
use super::roundtrip::{fence_preflight, observe_within, FENCE_RUNBOOK};
use super::summary::RunOutcome;
use super::{Approvals, Context, Hooks, NewRun, Operation, RunError};
use crate::aws::Aws;
use crate::config::env::WatchAction;
use crate::engine::progress::ProgressSink;
use crate::journal::{LeaseError, Trigger};
use crate::probe::watch::{
    ActionReport, Actuator, Fencer, Route53Oracle, Watch, WatchConfig, WatchSink,
};
use crate::probe::Probers;
use crate::topology::fences;

/// How long an unattended failover waits for a drill to yield the lease.
pub const DRILL_YIELD_WAIT: Duration = Duration::from_secs(10 * 60);

/// Runs the failover runbook as `drctl run RUNBOOK --yes` would, under the environment's lease.
pub struct RunbookActuator {
    pub ctx: Context,
    pub env_file: PathBuf,
    pub progress: Arc<dyn ProgressSink>,
    /// The watch's cooldown: with shared state, a failover another watcher started within it
    /// is this outage's, and this watcher stands by.
    pub cooldown: Duration,
}

/// A lease taken by `drctl watch` (its command line has the word `watch`).
fn is_watch(command: &str) -> bool {
    command.split_whitespace().any(|w| w == "watch")
}

impl RunbookActuator {
    /// The runbook of the run a lease holder runs (None: unknown, or unreadable now).
    async fn holder_runbook(&self, h: &crate::journal::LeaseRecord) -> Option<String> {
        let id = h.run_id.as_ref()?;
        let (records, _) = self.ctx.state.journals().await.read(id).await.ok()?;
        match records.first().map(|r| &r.event) {
            Some(crate::journal::Event::RunStarted { runbook_name, .. }) => {
                Some(runbook_name.clone())
            }
            _ => None,
        }
    }

    /// The lease, when a drill that yields to a failover holds it now.
    async fn drill_holding(&self) -> Option<crate::journal::LeaseRecord> {
        use crate::journal::lease::{staleness, Staleness};
        let env = crate::config::load_env(&self.env_file).ok()?.1;
        let l = self
            .ctx
            .state
            .leases()
            .await
            .current(&env.name)
            .await
            .ok()??;
        (staleness(&l, Utc::now()) == Staleness::Fresh && super::drill::yields(&l.command))
            .then_some(l)
    }
}

#[async_trait]
impl Actuator for RunbookActuator {
    async fn failover(
        &self,
        runbook: &Path,
        why: &str,
        detected_at: Option<DateTime<Utc>>,
        shutdown: CancellationToken,
    ) -> ActionReport {
        self.progress
            .notice(&format!("{why}: running {}", runbook.display()));
        let not_started = |e: &dyn std::fmt::Display| ActionReport {
            ok: false,
            run_id: None,
            outcome: format!("runbook not started: {e}"),
        };
        let mut run = match NewRun::prepare(&self.env_file, runbook) {
            Ok(r) => r,
            Err(e) => return not_started(&e),
        };
        // Always say the watch started it; without a first failed probe (never expected), the
        // outage is taken to begin now, and the report says "detection" from here.
        run.trigger = Some(Trigger {
            by: "drctl watch".into(),
            detected_at: detected_at.unwrap_or_else(Utc::now),
            why: why.to_string(),
        });
        // Several watchers share the state: the first to take the lease fails over; the others
        // find its run under the lease and stand by (one outage, one failover).
        if self.ctx.state.is_shared() && !self.cooldown.is_zero() {
            run.once_since = chrono::Duration::from_std(self.cooldown)
                .ok()
                .map(|c| Utc::now() - c);
        }
        // The policy is the approval: `action: failover` in drctl.yaml is the operator's
        // standing yes. Never break another holder's lease: a human at work wins.
        let hooks = Hooks {
            progress: self.progress.clone(),
            approvals: Approvals::Auto { gates: None },
            prompter: None,
            break_lock: false,
        };
        // A drill holding the lease yields it within seconds of the primary going down (it
        // watches the primary too, stops and tears down); wait for that, bounded. Anyone else
        // holding it is a person at work: not waited for.
        let deadline = tokio::time::Instant::now() + DRILL_YIELD_WAIT;
        let mut said = false;
        let result = loop {
            // Wait on the lease itself (file or table item) while a yielding drill holds it (cheap: no STS,
            // no journals), then try; a drill that took the lease in between is waited for too.
            let waiting = tokio::time::Instant::now() < deadline && !shutdown.is_cancelled();
            let holder = match self.drill_holding().await {
                Some(h) if waiting => h,
                _ => match run.execute(&self.ctx, &hooks, shutdown.clone()).await {
                    Err(RunError::Lease(LeaseError::Held(h)))
                        if waiting && super::drill::yields(&h.command) =>
                    {
                        *h
                    }
                    // A watcher's other run (a fence, this watcher's own included) is short:
                    // waited for, like a drill.
                    Err(RunError::Lease(LeaseError::Held(h)))
                        if waiting
                            && is_watch(&h.command)
                            && self.holder_runbook(&h).await.as_deref() != Some(&run.rb.name) =>
                    {
                        *h
                    }
                    // Another watcher's failover holds the lease: this outage is in hand.
                    Err(RunError::Lease(LeaseError::Held(h)))
                        if self.ctx.state.is_shared() && is_watch(&h.command) =>
                    {
                        return ActionReport {
                            ok: true,
                            run_id: h.run_id.clone(),
                            outcome: format!(
                                "stood by: the watcher on {} (pid {}) holds the lease and runs the failover{}",
                                h.host,
                                h.pid,
                                h.run_id.as_ref().map(|r| format!(", run {r}")).unwrap_or_default()
                            ),
                        };
                    }
                    Err(RunError::Superseded(done)) => {
                        return ActionReport {
                            ok: true,
                            run_id: Some(done.clone()),
                            outcome: format!(
                                "stood by: run {done}, started by another watcher, already failed over for this outage"
                            ),
                        };
                    }
                    other => break other,
                },
            };
            if !said {
                self.progress.notice(&format!(
                    "a drill or another of the watch's runs holds the lease (run {}): waiting up to {} for it to end or yield",
                    holder.run_id.as_deref().unwrap_or("?"),
                    humantime::format_duration(DRILL_YIELD_WAIT)
                ));
                said = true;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        };
        match result {
            Ok(s) => {
                let (ok, outcome) = match s.outcome {
                    RunOutcome::Succeeded if s.continued_failures.is_empty() => {
                        (true, "succeeded".to_string())
                    }
                    RunOutcome::Succeeded => (
                        true,
                        format!(
                            "completed; failed but continued: {}",
                            s.continued_failures.join(", ")
                        ),
                    ),
                    RunOutcome::Paused => (
                        false,
                        format!(
                            "paused: {}; `drctl resume {}`",
                            s.reason.as_deref().unwrap_or(""),
                            s.run_id
                        ),
                    ),
                    RunOutcome::Aborted => (
                        false,
                        format!(
                            "aborted at `{}`: {}",
                            s.aborted_at.as_deref().unwrap_or("?"),
                            s.reason.as_deref().unwrap_or("")
                        ),
                    ),
                    RunOutcome::RolledBack | RunOutcome::RollbackIncomplete => {
                        (false, "rolled back".to_string())
                    }
                    RunOutcome::Abandoned => (false, "abandoned".to_string()),
                };
                // The notification carries the verdicts and where the report is.
                let outcome = format!(
                    "{outcome}{}; report: drctl report {} --out {}.html",
                    verdicts(&s),
                    s.run_id,
                    s.run_id
                );
                ActionReport {
                    ok,
                    run_id: Some(s.run_id),
                    outcome,
                }
            }
            Err(e) => not_started(&e),
        }
    }
}

/// "; RTO 42s PASS (target 15m), RPO 0s PASS (target 5m)", for a recovery run.
fn verdicts(s: &super::RunSummary) -> String {
    let d = crate::report::svg::dur;
    let mut out = String::new();
    if let Some(r) = &s.rto {
        out.push_str(&format!(
            "; RTO {} {} (target {})",
            r.measured_ms
                .map(d)
                .unwrap_or_else(|| "not measured".into()),
            r.verdict.word(),
            d(r.target_ms)
        ));
    }
    if let Some(r) = &s.rpo {
        out.push_str(&format!(
            ", RPO {} {} (target {})",
            r.measured_s
                .map(|v| format!("{v:.0}s"))
                .unwrap_or_else(|| "not measured".into()),
            r.verdict.word(),
            d((r.target_s * 1000.0) as u64)
        ));
    }
    out
}

/// Route 53's view of the primary: its health check, read through the one AWS door.
pub struct HealthCheckOracle {
    pub aws: Arc<dyn Aws>,
    pub health_check_id: String,
}

#[async_trait]
impl Route53Oracle for HealthCheckOracle {
    async fn primary_unhealthy(&self) -> Result<bool, String> {
        let id = &self.health_check_id;
        match self.aws.route53().await.health_check_healthy(id).await {
            Ok(Some(healthy)) => Ok(!healthy),
            Ok(None) => Err(format!(
                "route53 GetHealthCheckStatus ({id}): no observations yet"
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Completes what a failover left outstanding as soon as it can be done: a fence of the old
/// primary once its region answers (the `fence` runbook, as `drctl fence --yes` would), and
/// deferred control-plane work once its control plane answers (the `deferred` runbook, as
/// `drctl deferred --run --yes` would). Each under the lease, journaled.
pub struct FenceCompleter {
    pub ctx: Context,
    pub env_file: PathBuf,
    pub progress: Arc<dyn ProgressSink>,
    /// What `due` found: the deferred work to do (None: the fence).
    pub deferred: std::sync::Mutex<Option<Vec<fences::DeferredWork>>>,
}

impl FenceCompleter {
    pub fn new(ctx: Context, env_file: PathBuf, progress: Arc<dyn ProgressSink>) -> Self {
        Self {
            ctx,
            env_file,
            progress,
            deferred: std::sync::Mutex::new(None),
        }
    }

    /// Run `path` under the lease as the watch does its action, with no cooldown: work that
    /// is still outstanding is still due.
    async fn run(&self, path: &Path, why: &str, shutdown: CancellationToken) -> ActionReport {
        RunbookActuator {
            ctx: self.ctx.clone(),
            env_file: self.env_file.clone(),
            progress: self.progress.clone(),
            cooldown: Duration::ZERO,
        }
        .failover(path, why, None, shutdown)
        .await
    }

    /// Whether the control planes `work` needs answer now (a read of each, bounded).
    async fn control_planes_answer(
        &self,
        env: &crate::config::Environment,
        work: &[fences::DeferredWork],
    ) -> bool {
        let aws = self.ctx.aws.services(env).aws;
        let route53 = async {
            match (
                &env.route53,
                work.iter().any(|w| w.kind.starts_with("route53.")),
            ) {
                (Some(r), true) => aws
                    .route53()
                    .await
                    .records(&r.public_zone_id, &r.record_name)
                    .await
                    .is_ok(),
                _ => true,
            }
        };
        let cloudfront = async {
            match (
                &env.cloudfront,
                work.iter().any(|w| w.kind.starts_with("cloudfront.")),
            ) {
                (Some(c), true) => aws
                    .cloudfront()
                    .await
                    .origin_group(&c.distribution_id, &c.origin_group_id)
                    .await
                    .is_ok(),
                _ => true,
            }
        };
        tokio::time::timeout(DUE_TIMEOUT, async {
            let (a, b) = tokio::join!(route53, cloudfront);
            a && b
        })
        .await
        .unwrap_or(false)
    }
}

#[async_trait]
impl Fencer for FenceCompleter {
    async fn due(&self) -> Option<String> {
        let (_, env) = crate::config::load_env(&self.env_file).ok()?;
        let store = self.ctx.state.journals().await;
        // Cheap first: the journals say whether any fence of the primary is outstanding.
        let facts = fences::read_all(store.as_ref(), &env.name).await;
        *self.deferred.lock().expect("deferred") = None;
        if let Some(f) = facts
            .fences
            .into_iter()
            .find(|f| f.region == env.primary_region)
        {
            // Then AWS: the region must answer, and its writer must not be the one serving.
            let t = observe_within(&self.ctx, &env, DUE_TIMEOUT).await;
            if fence_preflight(&t).is_ok() {
                return Some(format!(
                    "{} in {} (outstanding since run {})",
                    f.instance_id, f.region, f.run_id
                ));
            }
        }
        if facts.deferred.is_empty() || !self.control_planes_answer(&env, &facts.deferred).await {
            return None;
        }
        let what = format!(
            "deferred work {} (its control plane answers again)",
            facts
                .deferred
                .iter()
                .map(|d| format!("{} ({})", d.step, d.kind))
                .collect::<Vec<_>>()
                .join(", ")
        );
        *self.deferred.lock().expect("deferred") = Some(facts.deferred);
        Some(what)
    }

    async fn fence(&self, shutdown: CancellationToken) -> ActionReport {
        let deferred = self.deferred.lock().expect("deferred").take();
        if let Some(work) = deferred {
            let path = match super::deferred::write_runbook(&self.ctx.state_dir, &work) {
                Ok(p) => p,
                Err(e) => {
                    return ActionReport {
                        ok: false,
                        run_id: None,
                        outcome: format!("deferred work not started: {e}"),
                    }
                }
            };
            let mut r = self
                .run(
                    &path,
                    "drctl watch: completing deferred control-plane work",
                    shutdown,
                )
                .await;
            r.outcome = format!("deferred work: {}", r.outcome);
            return r;
        }
        let path = match resolve_runbook(&self.env_file, Some(FENCE_RUNBOOK)) {
            Ok(p) => p,
            Err(e) => {
                return ActionReport {
                    ok: false,
                    run_id: None,
                    outcome: format!("fence not started: {e}"),
                }
            }
        };
        self.run(
            &path,
            "drctl watch: completing an outstanding fence",
            shutdown,
        )
        .await
    }
}

/// Bound on the look before completing a fence.
const DUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything `drctl watch` needs, assembled and checked before probing starts: the probers,
/// the policy (`notify_only` overrides its action), the failover runbook (read now, not in the
/// middle of an outage), the actuator, the fence completer and the Route 53 oracle.
pub fn setup(
    ctx: &Context,
    env_file: &Path,
    env: &crate::config::Environment,
    notify_only: bool,
    sink: Arc<dyn WatchSink>,
    progress: Arc<dyn ProgressSink>,
    watcher_id: Option<String>,
) -> Result<Watch, RunError> {
    // With shared state this watcher has a name among the others; its probes carry it (set
    // before the probe clients are built).
    let watcher_id = if ctx.state.is_shared() {
        let id = watcher_id.unwrap_or_else(super::peers::default_id);
        if !super::peers::id_ok(&id) {
            return Err(RunError::Refused(format!(
                "watcher id `{id}` is not usable: use 1-64 letters, digits, `-`, `_` and `.`"
            )));
        }
        crate::probe::http::set_client_id(&id);
        Some(id)
    } else {
        None
    };
    let probers = Probers::from_env(env).map_err(|e| RunError::Refused(e.to_string()))?;
    let mut policy = probers.settings.watch.clone();
    if notify_only {
        policy.action = WatchAction::Notify;
    }
    let base = env_file.parent().map(Path::to_path_buf).unwrap_or_default();
    let runbook: Option<PathBuf> = policy.runbook.as_ref().map(|r| base.join(r));
    if policy.action == WatchAction::Failover {
        let rb = runbook.as_ref().ok_or_else(|| {
            RunError::Refused("probes.watch.action is failover but no runbook is set".into())
        })?;
        super::load_runbook(rb, env)?;
    }
    let cfg = WatchConfig {
        env: env.name.clone(),
        state_dir: ctx.state_dir.clone(),
        policy: policy.clone(),
        runbook,
        max_in_flight: probers.settings.max_in_flight,
        tick: std::time::Duration::from_millis(100),
    };
    let mut w =
        Watch::new(cfg, probers.targets, sink).map_err(|e| RunError::Refused(e.to_string()))?;
    if policy.action == WatchAction::Failover {
        w.actuator = Some(Arc::new(RunbookActuator {
            ctx: ctx.clone(),
            env_file: env_file.to_path_buf(),
            progress: progress.clone(),
            cooldown: policy.cooldown,
        }));
    }
    // Whatever the action, an old primary left unfenced by a failover is fenced as soon as
    // its region answers: protecting is not failing back.
    w.fencer = Some(Arc::new(FenceCompleter::new(
        ctx.clone(),
        env_file.to_path_buf(),
        progress,
    )));
    if let Some(id) = watcher_id {
        w.peers = Some(Arc::new(super::peers::TablePeers::new(
            ctx.state.clone(),
            id,
        )));
    }
    if policy.require_route53 {
        let r53 = env.route53.as_ref().ok_or_else(|| {
            RunError::Refused(
                "probes.watch.require_route53 is set but the environment has no `route53:` section"
                    .into(),
            )
        })?;
        w.route53 = Some(Arc::new(HealthCheckOracle {
            aws: ctx.aws.aws(env),
            health_check_id: r53.health_check_id.clone(),
        }));
    }
    Ok(w)
}
