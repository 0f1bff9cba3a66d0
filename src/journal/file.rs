//! File journal: `<state>/runs/<run-id>/journal.jsonl`, one JSON record per line, each line
//! written whole and fsync'd before `append` returns.
//!
//! A process killed mid-write can leave a partial last line. On open for writing it is cut back
//! to the last whole record, with a warning; readers skip it (the writer may still be writing).
//! A bad line anywhere else is corruption, and is refused, never skipped.
//!
//! Each line ends with its link in the journal's hash chain (see [`super::chain`]). A writer
//! continues the chain of the journal it opens, and refuses one whose chain does not hold:
//! resuming or undoing from events that were edited would act on a history drctl never wrote.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::Utc;

use super::chain::{self, ChainReport};
use super::{Event, JournalError, JournalStore, JournalWriter, Record};

pub struct FileJournalStore {
    root: PathBuf,
}

impl FileJournalStore {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.join("runs"),
        }
    }

    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join(run_id)
    }

    /// The run's journal file (whether or not it exists).
    pub fn journal_path(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join("journal.jsonl")
    }

    /// Check the run's hash chain (`drctl verify`, the report's chain head), reading the file
    /// without modifying it. What is wrong with the chain is in the report, not an error.
    pub fn verify(&self, run_id: &str) -> Result<(PathBuf, ChainReport), JournalError> {
        let (path, bytes) = self.read_bytes(run_id)?;
        Ok((path, chain::verify(&bytes)))
    }

    /// Read a run to go on with it (`resume`, `rollback`): as [`JournalStore::read`], and the
    /// hash chain must hold too. Other readers (`status`, `history`) read a journal whose chain
    /// is broken, so that a damaged run can still be looked at; `drctl verify` says where.
    pub async fn read_intact(
        &self,
        run_id: &str,
    ) -> Result<(Vec<Record>, Vec<String>), JournalError> {
        let (path, bytes) = self.read_bytes(run_id)?;
        let (records, good, warn) = parse(&path, &bytes)?;
        check_integrity(&path, run_id, &records)?;
        check_chain(&path, &bytes[..good])?;
        Ok((records, warn.into_iter().collect()))
    }

    /// The journal file's bytes as they are (`drctl state migrate` copies them line for line).
    pub fn read_bytes(&self, run_id: &str) -> Result<(PathBuf, Vec<u8>), JournalError> {
        check_id(run_id)?;
        let path = self.journal_path(run_id);
        match std::fs::read(&path) {
            Ok(b) => Ok((path, b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(JournalError::NoSuchRun(run_id.into()))
            }
            Err(e) => Err(io(&path)(e)),
        }
    }
}

/// Run ids become directory names: only safe names (no `/`, no `..`) get that far.
fn check_id(run_id: &str) -> Result<(), JournalError> {
    if crate::config::safe_name(run_id) {
        Ok(())
    } else {
        Err(JournalError::BadRunId(run_id.into()))
    }
}

/// What a journal says about itself must hold: it is the run its directory names, and the
/// runbook and environment it carries are the ones whose SHA-256 it recorded. An edited copy,
/// or another run's journal copied under a new id, is refused rather than resumed or undone.
pub(super) fn check_integrity(
    path: &Path,
    run_id: &str,
    records: &[Record],
) -> Result<(), JournalError> {
    use sha2::{Digest, Sha256};
    let Some(Event::RunStarted {
        run_id: id,
        runbook_text,
        runbook_sha256,
        env_text,
        env_sha256,
        ..
    }) = records.first().map(|r| &r.event)
    else {
        return Ok(()); // replay says what is wrong with a journal that does not start right
    };
    let tampered = |why: String| {
        Err(JournalError::Tampered {
            path: path.display().to_string(),
            why,
        })
    };
    if id != run_id {
        return tampered(format!("it is the journal of run {id}, not of {run_id}"));
    }
    for (what, text, sha) in [
        ("runbook", runbook_text, runbook_sha256),
        ("environment", env_text, env_sha256),
    ] {
        // Journals of tests and old drctls may carry no hash; a hash that is there must match.
        if !sha.is_empty() && hex::encode(Sha256::digest(text.as_bytes())) != *sha {
            return tampered(format!(
                "the {what} copy does not match its recorded SHA-256 {sha}: it was edited"
            ));
        }
    }
    Ok(())
}

/// The whole-record prefix of a journal must hold its hash chain, if it has one. A torn tail is
/// left out by the caller (it is cut back, not checked); a journal from before hash chains (no
/// hashes at all) passes. Returns the report, which says how the writer goes on.
pub(super) fn check_chain(path: &Path, whole: &[u8]) -> Result<ChainReport, JournalError> {
    let report = chain::verify(whole);
    match &report.broken {
        Some(b) => Err(JournalError::Tampered {
            path: path.display().to_string(),
            why: format!("its hash chain breaks: {b}; `drctl verify` says more"),
        }),
        None => Ok(report),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Parse journal bytes. Returns the records, the byte length of the whole-record prefix, and
/// a warning if a torn tail was found.
pub fn parse(
    path: &Path,
    bytes: &[u8],
) -> Result<(Vec<Record>, usize, Option<String>), JournalError> {
    let mut records = Vec::new();
    let mut pos = 0;
    let mut line_no = 0;
    while pos < bytes.len() {
        line_no += 1;
        let end = bytes[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i);
        let line = &bytes[pos..end.unwrap_or(bytes.len())];
        match (serde_json::from_slice::<Record>(line), end) {
            (Ok(r), Some(e)) => {
                records.push(r);
                pos = e + 1;
            }
            // A whole record whose newline did not make it: keep it, the newline is repaired.
            (Ok(r), None) => {
                records.push(r);
                let warn = format!(
                    "{}: last record had no trailing newline; kept it ({} records)",
                    path.display(),
                    records.len()
                );
                return Ok((records, bytes.len(), Some(warn)));
            }
            (Err(e), None) => {
                let warn = format!(
                    "{}: torn last line ({} bytes, {e}) cut back to the last whole event (#{})",
                    path.display(),
                    line.len(),
                    records.len()
                );
                return Ok((records, pos, Some(warn)));
            }
            (Err(e), Some(_)) => {
                return Err(JournalError::Corrupt {
                    path: path.display().to_string(),
                    line: line_no,
                    why: e.to_string(),
                })
            }
        }
    }
    Ok((records, pos, None))
}

struct FileJournal {
    path: PathBuf,
    file: std::fs::File,
    records: Vec<Record>,
    /// The hash the next line chains to ("" for the first line of a journal); None for a
    /// journal from before hash chains, which goes on without them (see `chain`).
    prev: Option<String>,
}

#[async_trait]
impl JournalWriter for FileJournal {
    async fn append(&mut self, token: u64, event: Event) -> Result<Record, JournalError> {
        let mut record = Record {
            seq: self.records.last().map_or(1, |r| r.seq + 1),
            at: Utc::now(),
            token,
            event,
            hash: None,
        };
        // The hash covers the record exactly as serialized without it, and goes on as the last
        // key, so that verification can take it off the bytes on disk (see `chain`).
        let content = serde_json::to_string(&record).expect("records serialize");
        let (line, hash) = match &self.prev {
            Some(prev) => {
                let (line, hash) = chain::seal(prev, &content);
                (line, Some(hash))
            }
            None => (content, None),
        };
        let mut line = line.into_bytes();
        line.push(b'\n');
        // One write of the whole line, then fsync: a crash leaves a prefix of this line at worst.
        self.file.write_all(&line).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        test_hooks::after_append(self.records.len() + 1, &record);
        if hash.is_some() {
            record.hash.clone_from(&hash);
            self.prev = hash;
        }
        self.records.push(record.clone());
        Ok(record)
    }

    fn records(&self) -> &[Record] {
        &self.records
    }
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

#[async_trait]
impl JournalStore for FileJournalStore {
    async fn create(&self, run_id: &str) -> Result<Box<dyn JournalWriter>, JournalError> {
        check_id(run_id)?;
        let dir = self.run_dir(run_id);
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(JournalError::Exists(run_id.into()))
            }
            Err(e) => return Err(io(&dir)(e)),
        }
        let path = self.journal_path(run_id);
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        sync_dir(&dir)?;
        sync_dir(&self.root)?;
        Ok(Box::new(FileJournal {
            path,
            file,
            records: Vec::new(),
            prev: Some(String::new()),
        }))
    }

    async fn open_writer(
        &self,
        run_id: &str,
    ) -> Result<(Box<dyn JournalWriter>, Vec<String>), JournalError> {
        let (path, bytes) = self.read_bytes(run_id)?;
        let (records, good, warn) = parse(&path, &bytes)?;
        check_integrity(&path, run_id, &records)?;
        // After the torn tail is set aside: a crash mid-write is not an edit.
        let chained = check_chain(&path, &bytes[..good])?;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if good < bytes.len() {
            file.set_len(good as u64).map_err(io(&path))?;
            file.sync_data().map_err(io(&path))?;
        } else if !bytes.is_empty() && bytes[bytes.len() - 1] != b'\n' {
            file.write_all(b"\n").map_err(io(&path))?;
            file.sync_data().map_err(io(&path))?;
        }
        Ok((
            Box::new(FileJournal {
                path,
                file,
                records,
                prev: chained.continue_from().map(String::from),
            }),
            warn.into_iter().collect(),
        ))
    }

    async fn read(&self, run_id: &str) -> Result<(Vec<Record>, Vec<String>), JournalError> {
        let (path, bytes) = self.read_bytes(run_id)?;
        let (records, _, warn) = parse(&path, &bytes)?;
        check_integrity(&path, run_id, &records)?;
        Ok((records, warn.into_iter().collect()))
    }

    async fn read_intact(&self, run_id: &str) -> Result<(Vec<Record>, Vec<String>), JournalError> {
        let (path, bytes) = self.read_bytes(run_id)?;
        let (records, good, warn) = parse(&path, &bytes)?;
        check_integrity(&path, run_id, &records)?;
        check_chain(&path, &bytes[..good])?;
        Ok((records, warn.into_iter().collect()))
    }

    async fn verify_chain(&self, run_id: &str) -> Result<ChainReport, JournalError> {
        Ok(self.verify(run_id)?.1)
    }

    fn locator(&self, run_id: &str) -> String {
        self.journal_path(run_id).display().to_string()
    }

    async fn list(&self) -> Result<Vec<String>, JournalError> {
        let mut ids = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(io(&self.root)(e)),
        };
        for entry in entries.flatten() {
            if entry.path().join("journal.jsonl").exists() {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        // Run ids start with a UTC timestamp, so name order is time order.
        ids.sort();
        Ok(ids)
    }
}

/// The crash-test hook after a record is durable, for the other backend too.
pub(super) fn after_append(n: usize, record: &Record) {
    test_hooks::after_append(n, record);
}

/// Crash-test hook: `DRCTL_TEST_KILL_AFTER_EVENT=N` makes the process SIGKILL itself right after
/// its Nth journal record is durable; `DRCTL_TEST_KILL_AFTER_EVENT=step_succeeded:STEP` right
/// after that step's success is. Used by the crash tests against the real binary; inert unless
/// the variable is set.
mod test_hooks {
    use std::sync::OnceLock;

    use crate::journal::{Event, Record};

    pub fn after_append(nth: usize, record: &Record) {
        static AT: OnceLock<Option<String>> = OnceLock::new();
        let Some(at) = AT.get_or_init(|| std::env::var("DRCTL_TEST_KILL_AFTER_EVENT").ok()) else {
            return;
        };
        let hit = match at.split_once(':') {
            Some(("step_succeeded", step)) => {
                matches!(&record.event, Event::StepSucceeded { step: s, .. } if s == step)
            }
            _ => at.parse() == Ok(nth),
        };
        if hit {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;

    fn ev(reason: &str) -> Event {
        Event::Paused {
            reason: reason.into(),
        }
    }

    #[tokio::test]
    async fn torn_tail_is_cut_back_and_whole_events_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileJournalStore::new(dir.path());
        let mut j = store.create("r1").await.unwrap();
        j.append(1, ev("a")).await.unwrap();
        j.append(1, ev("b")).await.unwrap();
        drop(j);
        let path = dir.path().join("runs/r1/journal.jsonl");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(br#"{"seq":3,"at":"2026-"#);
        std::fs::write(&path, &bytes).unwrap();

        // A reader skips the tail without touching the file.
        let (recs, warns) = store.read("r1").await.unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(warns.len(), 1);
        assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len());

        // A writer cuts it back, warns, and continues the sequence.
        let (mut j, warns) = store.open_writer("r1").await.unwrap();
        assert!(warns[0].contains("torn last line"), "{warns:?}");
        let r = j.append(1, ev("c")).await.unwrap();
        assert_eq!(r.seq, 3);
        let (recs, warns) = store.read("r1").await.unwrap();
        assert!(warns.is_empty());
        assert_eq!(
            recs.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[tokio::test]
    async fn whole_record_without_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileJournalStore::new(dir.path());
        let mut j = store.create("r1").await.unwrap();
        j.append(1, ev("a")).await.unwrap();
        drop(j);
        let path = dir.path().join("runs/r1/journal.jsonl");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let (mut j, warns) = store.open_writer("r1").await.unwrap();
        assert_eq!(warns.len(), 1);
        j.append(1, ev("b")).await.unwrap();
        let (recs, _) = store.read("r1").await.unwrap();
        assert_eq!(recs.len(), 2);
    }

    #[tokio::test]
    async fn corrupt_middle_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileJournalStore::new(dir.path());
        let mut j = store.create("r1").await.unwrap();
        j.append(1, ev("a")).await.unwrap();
        drop(j);
        let path = dir.path().join("runs/r1/journal.jsonl");
        let mut bytes = b"garbage\n".to_vec();
        bytes.extend(std::fs::read(&path).unwrap());
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            store.open_writer("r1").await,
            Err(JournalError::Corrupt { line: 1, .. })
        ));
    }
}
