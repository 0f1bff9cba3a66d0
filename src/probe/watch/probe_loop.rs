//! One target's probe loop: its own schedule (with jitter), bounded concurrency, its state
//! machine, and a record of every transition.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::probe::state::Transition;
use crate::probe::{probe_once, ProbeResult, Target};

use super::http::Shared;
use super::journal::{WatchEvent, WatchRecord};

/// Probe one target forever: a slot every `interval` (random phase, plus up to `jitter`), the
/// probe bounded by its timeout, the verdict updated, transitions sent to the decision loop.
pub(super) async fn probe_loop(
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
