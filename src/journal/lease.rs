//! The single-writer lease: one mutating drctl per environment.
//!
//! Shaped for a conditional-write store. `acquire` is "put if absent, expired, or released";
//! the fencing token is a counter that only grows; `renew` and `release` succeed only for the
//! token that holds the lease. The file backend gets the same atomicity from an exclusive
//! `flock` (std `File::lock`) held for the few microseconds of each read-modify-write.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseRecord {
    pub env: String,
    pub owner: String,
    pub host: String,
    pub pid: u32,
    /// Start time of the holder's process (clock ticks since boot), to tell a reused pid.
    #[serde(default)]
    pub pid_start: Option<u64>,
    /// Which kernel boot and pid namespace `pid` belongs to: a shared table is read from many
    /// machines, and a host name alone does not tell two of them (or two containers) apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_space: Option<String>,
    pub command: String,
    pub run_id: Option<String>,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub token: u64,
    pub released: bool,
}

#[derive(Debug, Clone)]
pub struct LeaseRequest {
    pub env: String,
    pub owner: String,
    pub command: String,
    pub run_id: Option<String>,
    pub ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("environment `{}` is locked by {} on {} (pid {}, `{}`) since {}, lease valid until {}{}",
        .0.env, .0.owner, .0.host, .0.pid, .0.command,
        .0.acquired_at.format("%Y-%m-%d %H:%M:%S UTC"), .0.expires_at.format("%H:%M:%S UTC"),
        .0.run_id.as_ref().map(|r| format!(", run {r}")).unwrap_or_default())]
    Held(Box<LeaseRecord>),
    #[error("lease for `{env}` was lost: token {ours} was replaced by {theirs} (someone broke the lock)")]
    Lost { env: String, ours: u64, theirs: u64 },
    /// The lease file is not a lease: drctl cannot tell whether someone holds it, so it does
    /// not guess (overwriting it would start the fencing token again at 1).
    #[error("lease file {path} is not a drctl lease ({why}). Another drctl may hold the environment: if none runs, move the file aside (`mv {path} {path}.bad`) and try again; the next lease starts a new fencing token")]
    Corrupt { path: String, why: String },
    /// The shared state table could not be used (unreachable, missing, refused).
    #[error(transparent)]
    State(#[from] super::fault::StateError),
    #[error("lease store I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why a lease that is not ours may be taken over without `--break-lock`.
#[derive(Debug, Clone, PartialEq)]
pub enum Staleness {
    Fresh,
    Released,
    Expired,
    /// The holder was on this host and its process is gone.
    HolderGone,
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Take the lease if it is free, released, expired, or its holder is provably gone.
    /// Returns the new record and, when a stale lease was taken over, the record it replaced.
    async fn acquire(
        &self,
        req: &LeaseRequest,
    ) -> Result<(LeaseRecord, Option<LeaseRecord>), LeaseError>;
    /// Take the lease whatever its state (`--break-lock`, after confirmation).
    async fn break_and_acquire(
        &self,
        req: &LeaseRequest,
    ) -> Result<(LeaseRecord, Option<LeaseRecord>), LeaseError>;
    async fn renew(&self, lease: &LeaseRecord, ttl: Duration) -> Result<LeaseRecord, LeaseError>;
    async fn release(&self, lease: &LeaseRecord) -> Result<(), LeaseError>;
    async fn current(&self, env: &str) -> Result<Option<LeaseRecord>, LeaseError>;
}

pub fn staleness(rec: &LeaseRecord, now: DateTime<Utc>) -> Staleness {
    if rec.released {
        return Staleness::Released;
    }
    if rec.expires_at <= now {
        return Staleness::Expired;
    }
    let this_host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Only where the holder's pid can be looked up: this host, this boot, this pid namespace.
    // A lease written without that (by an older drctl) is judged by the host name alone.
    if rec.host == this_host
        && rec
            .pid_space
            .as_ref()
            .is_none_or(|s| Some(s) == pid_space().as_ref())
        && !process_alive(rec.pid, rec.pid_start)
    {
        return Staleness::HolderGone;
    }
    Staleness::Fresh
}

/// This process's kernel boot and pid namespace: `<boot id>/<pid namespace>`, or None where
/// /proc does not say.
pub fn pid_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

fn process_alive(pid: u32, start: Option<u64>) -> bool {
    match (start, process_start_time(pid)) {
        (_, None) => false,
        (Some(want), Some(got)) => want == got,
        (None, Some(_)) => true,
    }
}

/// Field 22 of /proc/PID/stat: when the process started. None if there is no such process.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub struct FileLeaseStore {
    dir: PathBuf,
}

impl FileLeaseStore {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("leases"),
        }
    }

    fn path(&self, env: &str) -> PathBuf {
        // Environment names are checked when the environment loads (`config::safe_name`);
        // never let one that was not become a path outside the leases directory.
        assert!(
            crate::config::safe_name(env),
            "environment name `{env}` reached the lease store unchecked"
        );
        self.dir.join(format!("{env}.json"))
    }

    /// Read-modify-write under an exclusive flock. `f` returns the record to store, or None to
    /// leave the file as it is.
    fn with_locked<T>(
        &self,
        env: &str,
        f: impl FnOnce(Option<LeaseRecord>) -> Result<(Option<LeaseRecord>, T), LeaseError>,
    ) -> Result<T, LeaseError> {
        let path = self.path(env);
        let io = |source| LeaseError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        let corrupt = |why: String| LeaseError::Corrupt {
            path: path.display().to_string(),
            why,
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let text = String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8 text".into()))?;
        let current = if text.trim().is_empty() {
            None
        } else {
            let rec: LeaseRecord =
                serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
            if rec.env != env {
                return Err(corrupt(format!("it names environment `{}`", rec.env)));
            }
            Some(rec)
        };
        let (next, out) = f(current)?;
        if let Some(rec) = next {
            let bytes = serde_json::to_vec_pretty(&rec).expect("lease serializes");
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            file.write_all(&bytes).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        // Unlocked when `file` drops.
        Ok(out)
    }
}

/// The record of a new holder, after `prev` (its token one more than `prev`'s).
pub(super) fn new_record(req: &LeaseRequest, prev: &Option<LeaseRecord>) -> LeaseRecord {
    let now = Utc::now();
    let op = crate::journal::Operator::current();
    LeaseRecord {
        env: req.env.clone(),
        owner: req.owner.clone(),
        host: op.host,
        pid: op.pid,
        pid_start: process_start_time(op.pid),
        pid_space: pid_space(),
        command: req.command.clone(),
        run_id: req.run_id.clone(),
        acquired_at: now,
        expires_at: now
            + chrono::Duration::from_std(req.ttl).unwrap_or(chrono::Duration::seconds(60)),
        token: prev.as_ref().map_or(0, |p| p.token) + 1,
        released: false,
    }
}

/// The lease's rules, the same on every backend: each takes the current record and returns the
/// record to store (None: leave it) and the answer. The stores only make them atomic.
pub(super) mod rules {
    use std::time::Duration;

    use chrono::Utc;

    use super::{new_record, staleness, LeaseError, LeaseRecord, LeaseRequest, Staleness};

    type Taken = (Option<LeaseRecord>, (LeaseRecord, Option<LeaseRecord>));

    /// Take it if free, released, expired, or its holder is provably gone.
    pub fn acquire(req: &LeaseRequest, cur: Option<LeaseRecord>) -> Result<Taken, LeaseError> {
        let replaced = match &cur {
            None => None,
            Some(c) => match staleness(c, Utc::now()) {
                Staleness::Fresh => return Err(LeaseError::Held(Box::new(c.clone()))),
                Staleness::Released => None,
                Staleness::Expired | Staleness::HolderGone => Some(c.clone()),
            },
        };
        let rec = new_record(req, &cur);
        Ok((Some(rec.clone()), (rec, replaced)))
    }

    /// Take it whatever its state.
    pub fn break_lock(req: &LeaseRequest, cur: Option<LeaseRecord>) -> Result<Taken, LeaseError> {
        let rec = new_record(req, &cur);
        let replaced = cur.filter(|c| !c.released);
        Ok((Some(rec.clone()), (rec, replaced)))
    }

    /// Extend ours by `ttl`; anything else is lost.
    pub fn renew(
        lease: &LeaseRecord,
        ttl: Duration,
        cur: Option<LeaseRecord>,
    ) -> Result<(Option<LeaseRecord>, LeaseRecord), LeaseError> {
        match cur {
            Some(c) if c.token == lease.token && !c.released => {
                let mut next = c;
                next.expires_at = Utc::now()
                    + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60));
                Ok((Some(next.clone()), next))
            }
            other => Err(LeaseError::Lost {
                env: lease.env.clone(),
                ours: lease.token,
                theirs: other.map_or(0, |c| c.token),
            }),
        }
    }

    /// Mark ours released; someone else's (they broke our lock) is theirs to release.
    pub fn release(
        lease: &LeaseRecord,
        cur: Option<LeaseRecord>,
    ) -> Result<(Option<LeaseRecord>, ()), LeaseError> {
        match cur {
            Some(mut c) if c.token == lease.token && !c.released => {
                c.released = true;
                Ok((Some(c), ()))
            }
            _ => Ok((None, ())),
        }
    }
}

#[async_trait]
impl LeaseStore for FileLeaseStore {
    async fn acquire(
        &self,
        req: &LeaseRequest,
    ) -> Result<(LeaseRecord, Option<LeaseRecord>), LeaseError> {
        self.with_locked(&req.env, |cur| rules::acquire(req, cur))
    }

    async fn break_and_acquire(
        &self,
        req: &LeaseRequest,
    ) -> Result<(LeaseRecord, Option<LeaseRecord>), LeaseError> {
        self.with_locked(&req.env, |cur| rules::break_lock(req, cur))
    }

    async fn renew(&self, lease: &LeaseRecord, ttl: Duration) -> Result<LeaseRecord, LeaseError> {
        self.with_locked(&lease.env, |cur| rules::renew(lease, ttl, cur))
    }

    async fn release(&self, lease: &LeaseRecord) -> Result<(), LeaseError> {
        self.with_locked(&lease.env, |cur| rules::release(lease, cur))
    }

    async fn current(&self, env: &str) -> Result<Option<LeaseRecord>, LeaseError> {
        if !self.path(env).exists() {
            return Ok(None);
        }
        self.with_locked(env, |cur| Ok((None, cur)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(env: &str) -> LeaseRequest {
        LeaseRequest {
            env: env.into(),
            owner: "alice".into(),
            command: "drctl run".into(),
            run_id: None,
            ttl: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn tokens_grow_and_a_held_lease_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileLeaseStore::new(dir.path());
        let (a, _) = store.acquire(&req("prod")).await.unwrap();
        assert_eq!(a.token, 1);
        let err = store.acquire(&req("prod")).await.unwrap_err();
        assert!(
            matches!(err, LeaseError::Held(ref h) if h.token == 1),
            "{err}"
        );
        assert!(err.to_string().contains("locked by alice"));
        // Another environment is independent.
        store.acquire(&req("staging")).await.unwrap();
        store.release(&a).await.unwrap();
        let (b, replaced) = store.acquire(&req("prod")).await.unwrap();
        assert_eq!(b.token, 2);
        assert!(replaced.is_none());
        // Breaking the lock fences the old holder out.
        let (c, replaced) = store.break_and_acquire(&req("prod")).await.unwrap();
        assert_eq!(c.token, 3);
        assert_eq!(replaced.unwrap().token, 2);
        assert!(matches!(
            store.renew(&b, Duration::from_secs(5)).await,
            Err(LeaseError::Lost {
                ours: 2,
                theirs: 3,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn expired_and_dead_holders_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileLeaseStore::new(dir.path());
        let (mut a, _) = store.acquire(&req("prod")).await.unwrap();
        // Pretend the holder was a process that no longer exists.
        a.pid = 0x3fff_fff0;
        a.pid_start = Some(1);
        std::fs::write(
            dir.path().join("leases/prod.json"),
            serde_json::to_vec(&a).unwrap(),
        )
        .unwrap();
        assert_eq!(staleness(&a, Utc::now()), Staleness::HolderGone);
        let (b, replaced) = store.acquire(&req("prod")).await.unwrap();
        assert_eq!(replaced.unwrap().token, 1);
        assert_eq!(b.token, 2);
        let mut expired = b.clone();
        expired.expires_at = Utc::now() - chrono::Duration::seconds(1);
        assert_eq!(staleness(&expired, Utc::now()), Staleness::Expired);
    }
}
