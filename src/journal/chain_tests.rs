//! Tests of the hash chain on real journals written by the file store. They live beside
//! `chain.rs`, not inside it, so that `chain` never imports `file` (which imports `chain`).

use serde_json::json;

use super::chain::*;
use crate::journal::file::FileJournalStore;
use crate::journal::{
    Event, FenceRecord, JournalError, JournalStore, Measure, Outcome, Record, RunStatus, Satisfied,
};

/// The events of a small real run, of as many shapes as the journal has (nested flatten,
/// floats, JSON values, options).
fn events() -> Vec<Event> {
    vec![
        Event::test_run_started(),
        Event::StepStarted {
            step: "a".into(),
            attempt: 1,
        },
        Event::StepIntent {
            step: "a".into(),
            attempt: 1,
            observed: Satisfied::NotDone,
            current: "writer in us-east-1".into(),
            intended: "promote \"replica\"".into(),
            prior: json!({"old": [1, 2.5, null], "ünï": "✓"}),
        },
        Event::StepSucceeded {
            step: "a".into(),
            outcome: Outcome::Changed,
            result: json!({"id": "db-1"}),
            duration_ms: 1234,
        },
        Event::Measured {
            step: "a".into(),
            measure: Measure::RpoSeconds,
            value: 12.5,
        },
        Event::Fence {
            step: "fence".into(),
            fence: FenceRecord {
                region: "us-east-1".into(),
                instance_id: "db-0".into(),
                fenced: false,
                detail: "unreachable".into(),
            },
        },
        Event::Warning {
            step: None,
            message: "line\nbreak".into(),
        },
        Event::CheckpointReached {
            name: "cp".into(),
            step: "a".into(),
        },
        Event::RunFinished {
            status: RunStatus::Succeeded,
            message: "done".into(),
        },
    ]
}

/// A journal of [`events`] written by the file journal: the store, the records as `append`
/// returned them, and the file's bytes.
async fn real_journal(dir: &std::path::Path) -> (FileJournalStore, Vec<Record>, Vec<u8>) {
    let store = FileJournalStore::new(dir);
    let mut j = store.create("r").await.unwrap();
    let mut recs = vec![];
    for e in events() {
        recs.push(j.append(7, e).await.unwrap());
    }
    drop(j);
    let bytes = std::fs::read(store.journal_path("r")).unwrap();
    (store, recs, bytes)
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|&b| b == b'\n').collect()
}

/// Each line without its hash: what a drctl before hash chains wrote.
fn unchained(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    for l in lines(bytes) {
        out.extend(unseal(l.strip_suffix(b"\n").unwrap()).unwrap().0);
        out.push(b'\n');
    }
    out
}

#[tokio::test]
async fn a_written_journal_is_intact_and_its_head_is_the_last_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (store, recs, bytes) = real_journal(dir.path()).await;
    let r = verify(&bytes);
    assert_eq!(r.status(), ChainStatus::Intact, "{r:?}");
    assert_eq!((r.events, r.chained, r.torn_tail), (9, 9, 0));
    assert_eq!(r.head, recs.last().unwrap().hash);
    let last: serde_json::Value = serde_json::from_slice(lines(&bytes).last().unwrap()).unwrap();
    assert_eq!(r.head.as_deref(), last["hash"].as_str());
    // `hash` is the last key, so a record serializes to exactly its line: `--output json`
    // prints what the journal holds.
    for (l, rec) in lines(&bytes).iter().zip(&recs) {
        assert_eq!(
            std::str::from_utf8(l).unwrap(),
            serde_json::to_string(rec).unwrap() + "\n"
        );
    }
    // And the hash reads back into the record, nested flatten and tag included.
    let (read, warns) = store.read("r").await.unwrap();
    assert!(warns.is_empty());
    assert_eq!(read, recs);
}

#[tokio::test]
async fn every_single_byte_edit_breaks_the_chain_at_that_event() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, bytes) = real_journal(dir.path()).await;
    let mut line_of = vec![];
    for (i, l) in lines(&bytes).iter().enumerate() {
        line_of.extend(std::iter::repeat_n(i + 1, l.len()));
    }
    // Every position: the content, the hash, the braces, the newlines (the last one too).
    for pos in 0..bytes.len() {
        for flip in [0x01u8, 0x20] {
            let mut edited = bytes.clone();
            edited[pos] ^= flip;
            let r = verify(&edited);
            let b = r
                .broken
                .as_ref()
                .unwrap_or_else(|| panic!("byte {pos} ^ {flip:#x} went unnoticed: {r:?}"));
            assert_eq!(b.line, line_of[pos], "byte {pos} ^ {flip:#x}: {b:?}");
            assert_eq!(r.status(), ChainStatus::Broken);
            assert_eq!(r.head, None, "no head for a broken chain");
        }
    }
}

#[tokio::test]
async fn an_edit_names_the_event_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, bytes) = real_journal(dir.path()).await;
    let text = String::from_utf8(bytes).unwrap();
    let edited = text.replacen("\"duration_ms\":1234", "\"duration_ms\":1284", 1);
    let b = verify(edited.as_bytes()).broken.unwrap();
    assert_eq!((b.line, b.seq, b.why), (4, Some(4), BreakWhy::HashMismatch));
    assert_eq!(
        b.to_string(),
        "event 4 (line 4) does not match its hash: it was changed after it was written"
    );
}

#[tokio::test]
async fn an_edit_with_its_hash_recomputed_breaks_the_next_event() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recs, bytes) = real_journal(dir.path()).await;
    let mut ls: Vec<Vec<u8>> = lines(&bytes).iter().map(|l| l.to_vec()).collect();
    // Line 4 gets a new duration and a hash that matches it (chained to line 3).
    let reseal = |prev: &str, line: &[u8], from: &str, to: &str| {
        let (content, _) = unseal(line.strip_suffix(b"\n").unwrap()).unwrap();
        let content = String::from_utf8(content).unwrap().replacen(from, to, 1);
        let (l, hash) = seal(prev, &content);
        (format!("{l}\n").into_bytes(), hash)
    };
    let prev = recs[2].hash.clone().unwrap();
    ls[3] = reseal(&prev, &ls[3], "1234", "1284").0;
    let r = verify(&ls.concat());
    let b = r.broken.unwrap();
    assert_eq!((b.line, b.why), (5, BreakWhy::HashMismatch));

    // On the last line, a recomputed hash holds: only the head, kept elsewhere, shows it.
    let mut ls: Vec<Vec<u8>> = lines(&bytes).iter().map(|l| l.to_vec()).collect();
    let prev = recs[7].hash.clone().unwrap();
    let (l, hash) = reseal(&prev, &ls[8], "\"done\"", "\"fine\"");
    ls[8] = l;
    let r = verify(&ls.concat());
    assert_eq!(r.status(), ChainStatus::Intact);
    assert_eq!(r.head.as_deref(), Some(hash.as_str()));
    assert_ne!(r.head, recs[8].hash);
}

#[tokio::test]
async fn a_journal_hashed_on_some_lines_only_breaks_at_the_first_without() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, bytes) = real_journal(dir.path()).await;
    let old = unchained(&bytes);
    let mut mixed: Vec<u8> = lines(&bytes)[..3].concat();
    mixed.extend(lines(&old)[3..].concat());
    let b = verify(&mixed).broken.unwrap();
    assert_eq!((b.line, b.why), (4, BreakWhy::HashMissing));
    // Old lines first: not a journal from before hash chains, whatever its first line says.
    let mut mixed: Vec<u8> = lines(&old)[..3].concat();
    mixed.extend(lines(&bytes)[3..].concat());
    let b = verify(&mixed).broken.unwrap();
    assert_eq!((b.line, b.why), (1, BreakWhy::HashMissing));
    // A hash that is there but not as the writer writes it (re-serialized, keys sorted).
    let mut ls: Vec<Vec<u8>> = lines(&bytes).iter().map(|l| l.to_vec()).collect();
    let v: serde_json::Value = serde_json::from_slice(&ls[1]).unwrap();
    ls[1] = format!("{v}\n").into_bytes();
    let b = verify(&ls.concat()).broken.unwrap();
    assert_eq!(
        (b.line, b.seq, b.why),
        (2, Some(2), BreakWhy::HashMalformed)
    );
}

#[tokio::test]
async fn a_journal_from_before_hash_chains_reads_and_verifies_as_unchained() {
    let dir = tempfile::tempdir().unwrap();
    let (store, recs, bytes) = real_journal(dir.path()).await;
    let old = unchained(&bytes);
    std::fs::write(store.journal_path("r"), &old).unwrap();
    let r = verify(&old);
    assert_eq!(r.status(), ChainStatus::Unchained);
    assert_eq!((r.events, r.chained, r.head), (9, 0, None));
    let (read, _) = store.read("r").await.unwrap();
    assert_eq!(read.len(), recs.len());
    assert!(read.iter().all(|r| r.hash.is_none()));
    assert_eq!(read[3].event, recs[3].event);
    store.read_intact("r").await.unwrap();
}

#[tokio::test]
async fn a_resumed_old_journal_stays_unchained() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, bytes) = real_journal(dir.path()).await;
    std::fs::write(store.journal_path("r"), unchained(&bytes)).unwrap();
    let (mut j, _) = store.open_writer("r").await.unwrap();
    let rec = j
        .append(8, Event::Paused { reason: "x".into() })
        .await
        .unwrap();
    drop(j);
    assert_eq!(rec.hash, None);
    let after = std::fs::read(store.journal_path("r")).unwrap();
    let r = verify(&after);
    assert_eq!(r.status(), ChainStatus::Unchained);
    assert_eq!((r.events, r.chained), (10, 0));
    assert_eq!(
        lines(&after).last().unwrap(),
        &(serde_json::to_string(&rec).unwrap() + "\n").as_bytes()
    );
}

#[tokio::test]
async fn appending_after_a_reopen_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (store, recs, _) = real_journal(dir.path()).await;
    // Reopened twice, once after a crash left half a line.
    let (mut j, _) = store.open_writer("r").await.unwrap();
    let r10 = j
        .append(8, Event::Paused { reason: "x".into() })
        .await
        .unwrap();
    drop(j);
    let path = store.journal_path("r");
    let mut bytes = std::fs::read(&path).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(br#"{"seq":11,"at":"2026-"#);
    std::fs::write(&path, &bytes).unwrap();
    let r = verify(&bytes);
    assert_eq!(
        r.status(),
        ChainStatus::Intact,
        "a torn tail is not an edit"
    );
    assert_eq!((r.events, r.torn_tail), (10, bytes.len() - whole));
    let (mut j, warns) = store.open_writer("r").await.unwrap();
    assert!(warns[0].contains("torn last line"), "{warns:?}");
    let r11 = j
        .append(
            9,
            Event::Resumed {
                operator: crate::journal::Operator {
                    user: "u".into(),
                    host: "h".into(),
                    pid: 2,
                },
            },
        )
        .await
        .unwrap();
    drop(j);
    let r = verify(&std::fs::read(&path).unwrap());
    assert_eq!(r.status(), ChainStatus::Intact, "{r:?}");
    assert_eq!((r.events, r.chained, r.torn_tail), (11, 11, 0));
    assert_eq!(r.head, r11.hash);
    // Each reopen picked the chain up where it was: line 10 links to line 9.
    let line10 = lines(&bytes)[9].strip_suffix(b"\n").unwrap();
    let (content, hash) = unseal(line10).unwrap();
    assert_eq!(Some(hash), r10.hash.as_deref());
    assert_eq!(link(recs[8].hash.as_deref().unwrap(), &content), hash);
}

#[tokio::test]
async fn a_writer_refuses_a_broken_chain_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, bytes) = real_journal(dir.path()).await;
    let path = store.journal_path("r");
    let edited = String::from_utf8(bytes).unwrap().replacen(
        "\"duration_ms\":1234",
        "\"duration_ms\":1284",
        1,
    );
    std::fs::write(&path, &edited).unwrap();
    let err = store.open_writer("r").await.err().expect("refused");
    assert!(
        matches!(&err, JournalError::Tampered { why, .. } if why.contains("event 4 (line 4) does not match its hash")),
        "{err}"
    );
    assert!(matches!(
        store.read_intact("r").await,
        Err(JournalError::Tampered { .. })
    ));
    // Looking at it is still allowed.
    assert_eq!(store.read("r").await.unwrap().0.len(), 9);
    assert_eq!(std::fs::read(&path).unwrap(), edited.as_bytes());
}
