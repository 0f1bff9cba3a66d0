//! The environment's lease for the length of one command: taken before the first journal
//! write, renewed in the background, released on every path out (errors included) when the
//! [`Held`] guard drops.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Context, Hooks, RunError};
use crate::journal::{LeaseError, LeaseRecord, LeaseRequest, LeaseStore};

/// A held lease. Dropping it stops the renewal and releases the lease, on every path out of a
/// command, errors included: a `drctl watch` whose failover failed to start must not keep
/// renewing a lease that locks every human out.
pub struct Held {
    store: Arc<dyn LeaseStore>,
    pub lease: LeaseRecord,
    stop: CancellationToken,
    /// On the shared table (its release is network I/O).
    shared: bool,
}

impl Held {
    pub fn token(&self) -> u64 {
        self.lease.token
    }
}

/// Take the lease of `env` (or say who has it), and renew it in the background until released.
/// A failed renewal cancels `shutdown`: the run stops at its next safe point.
pub(super) async fn take(
    ctx: &Context,
    hooks: &Hooks,
    env: &str,
    run_id: &str,
    shutdown: CancellationToken,
) -> Result<Held, RunError> {
    let store = ctx.state.leases().await;
    let ttl = ctx.state.lease_ttl();
    let req = LeaseRequest {
        env: env.to_string(),
        owner: ctx.operator.user.clone(),
        command: ctx.command.clone(),
        run_id: Some(run_id.to_string()),
        ttl,
    };
    let (lease, replaced) = if hooks.break_lock {
        match store.acquire(&req).await {
            Err(LeaseError::Held(_)) => store.break_and_acquire(&req).await?,
            other => other?,
        }
    } else {
        store.acquire(&req).await?
    };
    if let Some(old) = replaced {
        hooks.progress.notice(&format!(
            "note: took over the lease (token {}) held by {} on {} pid {} since {}: it had expired, its process was gone, or --break-lock",
            old.token,
            old.owner,
            old.host,
            old.pid,
            old.acquired_at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    let stop = CancellationToken::new();
    let (s2, l2, stop2, progress) = (
        store.clone(),
        lease.clone(),
        stop.clone(),
        hooks.progress.clone(),
    );
    tokio::spawn(async move {
        // Until when the lease surely holds, by this process's own clock.
        let mut holds_until = tokio::time::Instant::now() + ttl;
        let mut wait = ttl / 3;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop2.cancelled() => return,
            }
            match s2.renew(&l2, ttl).await {
                Ok(_) => {
                    holds_until = tokio::time::Instant::now() + ttl;
                    wait = ttl / 3;
                }
                // Released at the end of the command while this renewal ran: not an error.
                Err(_) if stop2.is_cancelled() => return,
                // A slow or busy store: tried again while the lease still has time left.
                Err(e @ LeaseError::State(_))
                    if tokio::time::Instant::now() + ttl / 6 < holds_until =>
                {
                    tracing::warn!("lease renewal failed, trying again: {e}");
                    wait = std::time::Duration::from_secs(1).min(ttl / 6);
                }
                Err(e) => {
                    progress.notice(&format!("error: {e}; stopping at the next safe point"));
                    shutdown.cancel();
                    return;
                }
            }
        }
    });
    Ok(Held {
        store,
        lease,
        stop,
        shared: ctx.state.is_shared(),
    })
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.cancel();
        // The file store's release is a short flock'd read-modify-write that never awaits
        // anything, so it can finish here, even while the runtime shuts down. The table's
        // release is network I/O on the runtime: it is waited for where the runtime allows
        // (drctl's is multi-threaded), and otherwise the lease lapses after its TTL.
        let (store, lease) = (self.store.clone(), self.lease.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                let _ = tokio::task::block_in_place(|| h.block_on(store.release(&lease)));
            }
            Ok(_) if self.shared => {
                tracing::warn!(
                    token = lease.token,
                    "lease not released (single-threaded runtime): it lapses at its TTL"
                );
            }
            _ => {
                let _ = futures::executor::block_on(store.release(&lease));
            }
        }
    }
}
