//! `drctl watch`: the long-running watcher. Wires the library's watch loop to the terminal
//! (one line per transition and decision), to the HTTP surface, to signals, and to the failover
//! action, which runs the runbook through the same path as `drctl run` (lease, journal, engine).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;

use drctl::config::env::{Role, WatchAction};
use drctl::exit;
use drctl::probe::watch::{Watch, WatchConfig, WatchEvent, WatchJournal, WatchRecord, WatchSink};
use drctl::run::watch::{FenceCompleter, HealthCheckOracle, RunbookActuator};

use super::render::Plain;
use super::{Global, Output, Usage};

/// Lines on stderr for people, or JSON lines on stdout with `--output json`.
struct Printer {
    json: bool,
}

impl WatchSink for Printer {
    fn record(&self, r: &WatchRecord) {
        if self.json {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
            return;
        }
        let at = r.at.format("%H:%M:%S%.3f");
        let line = match &r.event {
            WatchEvent::Started { env, targets, action, confirm_for_ms, cooldown_ms, require_route53, runbook } => format!(
                "watching `{env}`: {targets} targets; on a confirmed primary outage ({}): {}{}{}; cooldown {}",
                humantime::format_duration(Duration::from_millis(*confirm_for_ms)),
                match action {
                    WatchAction::Notify => "notify".to_string(),
                    WatchAction::Failover => "FAIL OVER".to_string(),
                },
                runbook.as_ref().map(|r| format!(" with {r}")).unwrap_or_default(),
                if *require_route53 { " (Route 53 must agree)" } else { "" },
                humantime::format_duration(Duration::from_millis(*cooldown_ms)),
            ),
            WatchEvent::Transition { target, role, from, to, reason, detail, streak, .. } => format!(
                "{target}{}: {from} -> {to}{} ({detail}; {streak} in a row)",
                role.map(|r: Role| format!(" [{r}]")).unwrap_or_default(),
                reason.map(|x| format!(", {x}")).unwrap_or_default()
            ),
            WatchEvent::Decision { decision, evidence, .. } => format!(
                "DECISION {}: primary [{}], standby [{}]{}{}",
                decision.as_str(),
                evidence.primary.iter().map(|t| format!("{} {}", t.target, t.state)).collect::<Vec<_>>().join(", "),
                evidence.standby.iter().map(|t| format!("{} {}", t.target, t.state)).collect::<Vec<_>>().join(", "),
                evidence.route53_unhealthy.map(|u| format!(", route53 {}", if u { "unhealthy" } else { "healthy" })).unwrap_or_default(),
                evidence.route53_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default(),
            ),
            WatchEvent::ActionStarted { action, runbook } => format!("ACTION {action:?} started{}", runbook.as_ref().map(|r| format!(": {r}")).unwrap_or_default()),
            WatchEvent::ActionFinished { action, ok, run_id, outcome } => format!(
                "ACTION {action:?} {}: {outcome}{}",
                if *ok { "finished" } else { "FAILED" },
                run_id.as_ref().map(|r| format!(" (drctl status {r})")).unwrap_or_default()
            ),
            WatchEvent::FenceStarted { what } => format!("FENCE outstanding, its region answers again: {what}"),
            WatchEvent::FenceFinished { ok, run_id, outcome } => format!(
                "FENCE {}: {outcome}{}",
                if *ok { "completed" } else { "FAILED" },
                run_id.as_ref().map(|r| format!(" (drctl status {r})")).unwrap_or_default()
            ),
            WatchEvent::Notified { delivery } => match &delivery.error {
                None => format!("notified {} ({} attempt(s))", delivery.sink, delivery.attempts),
                Some(e) => format!("notification to {} FAILED after {} attempt(s): {e}", delivery.sink, delivery.attempts),
            },
            WatchEvent::Stopped { reason } => format!("stopped: {reason}"),
        };
        eprintln!("{at} {line}");
    }
}

pub async fn watch(g: &Global, listen: &str, notify_only: bool) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let probers = super::probe::probers(&env)?;
    let mut policy = probers.settings.watch.clone();
    if notify_only {
        policy.action = WatchAction::Notify;
    }
    let base = g
        .env_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let runbook: Option<PathBuf> = policy.runbook.as_ref().map(|r| base.join(r));
    if policy.action == WatchAction::Failover {
        let rb = runbook
            .as_ref()
            .ok_or_else(|| Usage("probes.watch.action is failover but no runbook is set".into()))?;
        // Fail now, not in the middle of an outage.
        drctl::run::load_runbook(rb, &env)
            .with_context(|| format!("the failover runbook {}", rb.display()))?;
    }
    let state_dir = g.state_dir(Some(&env));
    let cfg = WatchConfig {
        env: env.name.clone(),
        state_dir: state_dir.clone(),
        policy: policy.clone(),
        runbook,
        max_in_flight: probers.settings.max_in_flight,
        tick: Duration::from_millis(100),
    };
    let sink = Arc::new(Printer {
        json: g.output == Output::Json,
    });
    let mut w = Watch::new(cfg, probers.targets, sink).map_err(|e| Usage(e.to_string()))?;
    if policy.action == WatchAction::Failover {
        // Runs it starts print plain lines, never a live table over the watch's own output.
        w.actuator = Some(Arc::new(RunbookActuator {
            ctx: g.context(state_dir.clone()),
            env_file: g.env_file.clone(),
            progress: Arc::new(Plain),
        }));
    }
    // Whatever the action, an old primary left unfenced by a failover is fenced as soon as
    // its region answers: protecting is not failing back.
    w.fencer = Some(Arc::new(FenceCompleter {
        ctx: g.context(state_dir.clone()),
        env_file: g.env_file.clone(),
        progress: Arc::new(Plain),
    }));
    if policy.require_route53 {
        let r53 = env.route53.as_ref().ok_or_else(|| {
            Usage(
                "probes.watch.require_route53 is set but the environment has no `route53:` section"
                    .into(),
            )
        })?;
        w.route53 = Some(Arc::new(HealthCheckOracle {
            aws: g.aws_source().aws(&env),
            health_check_id: r53.health_check_id.clone(),
        }));
    }

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "http://{addr}/metrics  /status  /healthz; journal {}",
        WatchJournal::path_for(&state_dir, &env.name).display()
    );

    let shutdown = CancellationToken::new();
    let http_stop = CancellationToken::new();
    let server = tokio::spawn(drctl::probe::watch::serve(
        listener,
        w.shared.clone(),
        http_stop.clone(),
    ));
    super::run::on_signals(
        shutdown.clone(),
        "stopping: probes stop now; a running failover pauses at a safe point (signal again to quit at once)",
        None,
    );
    let res = w.run(shutdown).await;
    http_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    res?;
    Ok(exit::OK)
}
