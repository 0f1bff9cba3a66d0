//! The environment's lease for the length of one command: taken before the first journal
//! write, renewed in the background, released on every path out (errors included) when the
//! [`Held`] guard drops.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Context, Hooks, RunError};
use crate::journal::lease::FileLeaseStore;
use crate::journal::{LeaseError, LeaseRecord, LeaseRequest, LeaseStore};

const LEASE_TTL: Duration = Duration::from_secs(60);

/// A held lease. Dropping it stops the renewal and releases the lease, on every path out of a
/// command, errors included: a `drctl watch` whose failover failed to start must not keep
/// renewing a lease that locks every human out.
pub struct Held {
    store: Arc<FileLeaseStore>,
    pub lease: LeaseRecord,
    stop: CancellationToken,
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
    let store = Arc::new(FileLeaseStore::new(&ctx.state_dir));
    let req = LeaseRequest {
        env: env.to_string(),
        owner: ctx.operator.user.clone(),
        command: ctx.command.clone(),
        run_id: Some(run_id.to_string()),
        ttl: LEASE_TTL,
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
        loop {
            tokio::select! {
                _ = tokio::time::sleep(LEASE_TTL / 3) => {}
                _ = stop2.cancelled() => return,
            }
            if let Err(e) = s2.renew(&l2, LEASE_TTL).await {
                progress.notice(&format!("error: {e}; stopping at the next safe point"));
                shutdown.cancel();
                return;
            }
        }
    });
    Ok(Held { store, lease, stop })
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.cancel();
        // The file store's release is a short flock'd read-modify-write that never awaits
        // anything, so it can finish here, even while the runtime shuts down.
        let _ = futures::executor::block_on(self.store.release(&self.lease));
    }
}
