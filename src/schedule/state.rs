//! What the agent remembers between runs: per schedule, the newest slot decided and the last
//! run. `schedules.json` in the state dir, written whole to a temp file and renamed, so a
//! crash leaves the old file or the new one, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The file's name in the state dir.
pub const STATE_FILE: &str = "schedules.json";

/// The agent's memory of its schedules, by schedule name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleState {
    /// The newest slot each schedule ran (or is running).
    #[serde(default)]
    pub last: BTreeMap<String, LastRun>,
    /// The newest slot each schedule decided: ran, skipped, or passed before the agent began
    /// to watch the schedule. Slots after it are still to be decided.
    #[serde(default)]
    pub handled: BTreeMap<String, DateTime<Utc>>,
}

/// One run of a scheduled drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastRun {
    /// The slot it ran for.
    pub slot: DateTime<Utc>,
    /// When it started: later than `slot` when it waited for another drill, or caught up.
    pub started: DateTime<Utc>,
    /// When it ended; `None` while it runs (or if the agent stopped during it).
    #[serde(default)]
    pub finished: Option<DateTime<Utc>>,
    /// `running`, then what the runner said (`passed`, `failed: ...`, `refused: ...`).
    pub outcome: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the schedule state {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the schedule state {path} is corrupt ({source}); move it aside to start afresh (each schedule then waits for its next slot)")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the schedule state {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ScheduleState {
    /// `schedules.json` in `state_dir`.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(STATE_FILE)
    }

    /// The state in `path`; empty if there is no file yet. A file that does not parse is an
    /// error naming it, never silently reset (that would re-run or forget drills).
    pub fn load(path: &Path) -> Result<Self, StateError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Write to `path` atomically: a temp file beside it, flushed to disk, then renamed.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let err = |source| StateError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(STATE_FILE);
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            let mut text = serde_json::to_vec_pretty(self).expect("state serializes");
            text.push(b'\n');
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            // The rename itself is durable once the directory is synced.
            std::fs::File::open(dir).and_then(|d| d.sync_all())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }

    /// The newest slot of `name` already decided, if the agent has seen it.
    pub fn cursor(&self, name: &str) -> Option<DateTime<Utc>> {
        let last = self.last.get(name).map(|l| l.slot);
        let handled = self.handled.get(name).copied();
        last.max(handled)
    }

    /// Record that every slot of `name` up to `through` is decided.
    pub fn mark(&mut self, name: &str, through: DateTime<Utc>) {
        let e = self.handled.entry(name.to_string()).or_insert(through);
        *e = (*e).max(through);
    }
}
