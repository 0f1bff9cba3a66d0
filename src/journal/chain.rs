//! Tamper evidence for run journals: a hash chain over the journal's lines, and its check
//! (`drctl verify`, and before `resume` or `rollback` appends to a journal).
//!
//! The file journal ends every line with a `hash` field, written as the line's last key:
//! `hash_n = hex(sha256(hash_{n-1} || content_n))`, where `hash_0` is the empty string and
//! `content_n` is the record exactly as serialized without its hash (the line with
//! `,"hash":"<64 hex>"}` replaced by `}`). The check works on the bytes as they are on disk, never
//! on a re-serialization, so it does not depend on how serde orders keys or prints numbers: edit
//! any byte of a line and its own hash no longer matches; recompute that hash too and the next
//! line's no longer does.
//!
//! Journals written before hash chains have no `hash` at all: they read as before, and verify
//! as "unchained". A journal is hashed on every line or on none: one from before hash chains
//! that is resumed stays without hashes. A chain that started in the middle would make a line
//! whose `hash` key was edited look like an old line, so an edit could no longer be placed.
//!
//! What this does not do: the hash is not keyed, so someone who can write the file can rewrite
//! it and recompute every hash. The head (the last hash) is what catches that, compared with a
//! copy kept elsewhere (the run report prints it). Cutting events off the end is caught the
//! same way only.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// What the writer puts in place of a record's closing `}`: `,"hash":"` + 64 hex + `"}`.
const OPEN: &[u8] = b",\"hash\":\"";
const HEX_LEN: usize = 64;
const SUFFIX_LEN: usize = OPEN.len() + HEX_LEN + 2;

/// The link after `prev` for a line's `content`: hex(sha256(prev || content)).
pub fn link(prev: &str, content: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(content);
    hex::encode(h.finalize())
}

/// Seal one serialized record (JSON text ending in `}`, without a hash) into the line the writer
/// writes (without its newline), chained after `prev`. Returns the line and its hash.
pub fn seal(prev: &str, content: &str) -> (String, String) {
    let body = content
        .strip_suffix('}')
        .expect("a serialized record ends with `}`");
    let hash = link(prev, content.as_bytes());
    let line = format!("{body},\"hash\":\"{hash}\"}}");
    (line, hash)
}

/// The content a sealed line's hash covers, and that hash; None if the line does not end the
/// way [`seal`] ends lines.
pub(super) fn unseal(line: &[u8]) -> Option<(Vec<u8>, &str)> {
    // At least `{` before the suffix: a sealed record is never empty.
    if line.len() <= SUFFIX_LEN {
        return None;
    }
    let (body, tail) = line.split_at(line.len() - SUFFIX_LEN);
    let hex = &tail[OPEN.len()..OPEN.len() + HEX_LEN];
    // Lowercase only: that is what the writer writes, so anything else was written by someone else.
    let is_hex = hex
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    if !tail.starts_with(OPEN) || !tail.ends_with(b"\"}") || !is_hex {
        return None;
    }
    let mut content = body.to_vec();
    content.push(b'}');
    Some((
        content,
        std::str::from_utf8(hex).expect("checked: ASCII hex"),
    ))
}

/// Whether `tail` starts with a whole sealed line and goes on after it.
fn overruns_a_sealed_line(tail: &[u8]) -> bool {
    (SUFFIX_LEN..tail.len().saturating_sub(1))
        .any(|end| tail[end - 1..=end] == *b"\"}" && unseal(&tail[..=end]).is_some())
}

/// Why a chain breaks at a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakWhy {
    /// The line's content does not hash to its hash (with the hash before it).
    HashMismatch,
    /// No hash, in a journal whose other lines have one: the writer hashes every line or none.
    HashMissing,
    /// A `hash` key, but not where or how the writer writes it (the line was rewritten).
    HashMalformed,
    /// A whole line (it has its newline) that is not JSON.
    NotJson,
}

/// Where a chain breaks: the first line that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// 1-based line number in the file.
    pub line: usize,
    /// The line's `seq`, when it has one that can be read.
    pub seq: Option<u64>,
    pub why: BreakWhy,
}

impl Break {
    /// "event 7 (line 7)", or "line 7" when the line's seq cannot be read.
    pub fn at(&self) -> String {
        match self.seq {
            Some(seq) => format!("event {seq} (line {})", self.line),
            None => format!("line {}", self.line),
        }
    }
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self.at();
        match self.why {
            BreakWhy::HashMismatch => {
                write!(f, "{at} does not match its hash: it was changed after it was written")
            }
            BreakWhy::HashMissing => write!(
                f,
                "{at} has no hash, but the other lines of this journal do: it was added or rewritten by something other than drctl"
            ),
            BreakWhy::HashMalformed => write!(
                f,
                "{at} has a hash that is not as drctl writes it: the line was rewritten after it was written"
            ),
            BreakWhy::NotJson => {
                write!(f, "{at} is not JSON: it was changed after it was written")
            }
        }
    }
}

/// The overall verdict of [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStatus {
    /// Every line has a hash, and each matches.
    Intact,
    /// No line has a hash: written by a drctl before hash chains. It reads, but cannot be checked.
    Unchained,
    /// See [`ChainReport::broken`].
    Broken,
    /// No events at all, so nothing to check: a run that stopped as its journal was created, or
    /// a journal cut to nothing (which no chain can tell from the first).
    Empty,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Whole lines, each one event (a torn last line is not counted).
    pub events: usize,
    /// How many of them carry a hash.
    pub chained: usize,
    /// The hash of the last event, when the chain holds up to it and that event has one. Compare
    /// it with a copy kept elsewhere: it is what catches a journal rewritten with new hashes.
    pub head: Option<String>,
    /// The first line where the chain does not hold.
    pub broken: Option<Break>,
    /// Bytes after the last whole event that are not one: a line torn by a crash mid-write
    /// (the next writer cuts it back), or an edit that removed the last newline. 0 if none.
    pub torn_tail: usize,
    /// The last link: where the writer continues the chain.
    #[serde(skip)]
    tip: String,
}

impl ChainReport {
    pub fn status(&self) -> ChainStatus {
        if self.broken.is_some() {
            ChainStatus::Broken
        } else if self.events == 0 {
            ChainStatus::Empty
        } else if self.chained == 0 {
            ChainStatus::Unchained
        } else {
            ChainStatus::Intact
        }
    }

    /// What a writer appending to this (intact) journal chains its next line to: None for a
    /// journal from before hash chains, which stays without hashes.
    pub(super) fn continue_from(&self) -> Option<&str> {
        (self.events == 0 || self.chained > 0).then_some(self.tip.as_str())
    }
}

/// One whole line of a journal, looked at once.
struct Line<'a> {
    json: Option<serde_json::Value>,
    sealed: Option<(Vec<u8>, &'a str)>,
}

impl Line<'_> {
    /// Whether this line says the journal is chained: it has a hash, whole or not.
    fn has_hash(&self) -> bool {
        self.sealed.is_some() || self.json.as_ref().is_some_and(|v| v.get("hash").is_some())
    }
}

/// Check the hash chain of a journal's bytes. Never fails: what is wrong is in the report.
pub fn verify(bytes: &[u8]) -> ChainReport {
    let mut r = ChainReport {
        events: 0,
        chained: 0,
        head: None,
        broken: None,
        torn_tail: 0,
        tip: String::new(),
    };
    let mut lines = vec![];
    let mut raws = bytes.split_inclusive(|&b| b == b'\n').peekable();
    while let Some(raw) = raws.next() {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let json = serde_json::from_slice::<serde_json::Value>(line).ok();
        // A last line without its newline that is not JSON is a torn write, as the reader
        // sees it: not an event. One that is JSON is kept by the reader, so it is checked.
        // So is one that goes on past the end of a whole hashed line: a crash leaves a prefix
        // of `line\n`, never a line followed by something else (the last newline was edited).
        if !raw.ends_with(b"\n")
            && raws.peek().is_none()
            && json.is_none()
            && !overruns_a_sealed_line(raw)
        {
            r.torn_tail = raw.len();
            break;
        }
        lines.push(Line {
            json,
            sealed: unseal(line),
        });
    }
    r.events = lines.len();
    r.chained = lines.iter().filter(|l| l.sealed.is_some()).count();
    let chained = lines.iter().any(Line::has_hash);
    for (i, l) in lines.iter().enumerate() {
        let why = match (&l.json, &l.sealed) {
            (None, _) => Some(BreakWhy::NotJson),
            (Some(_), _) if !chained => None,
            (Some(_), Some((content, hash))) => {
                r.tip = link(&r.tip, content);
                (r.tip != *hash).then_some(BreakWhy::HashMismatch)
            }
            (Some(_), None) if l.has_hash() => Some(BreakWhy::HashMalformed),
            (Some(_), None) => Some(BreakWhy::HashMissing),
        };
        if let Some(why) = why {
            r.broken = Some(Break {
                line: i + 1,
                seq: l
                    .json
                    .as_ref()
                    .and_then(|v| v.get("seq"))
                    .and_then(|s| s.as_u64()),
                why,
            });
            break;
        }
    }
    if chained && r.broken.is_none() && r.events > 0 {
        r.head = Some(r.tip.clone());
    }
    r
}
