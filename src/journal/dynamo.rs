//! The shared backend: an environment's journals and lease in one DynamoDB table, so that every
//! operator, bastion and watcher sees the same runs and only one of them mutates at a time.
//!
//! One table, keys `pk` and `sk` (strings), items:
//! - the lease: `env#<env>` / `lease`, with the [`LeaseRecord`] as JSON, its `token` and a
//!   `version` that grows on every write. Every change is a conditional put on the version read
//!   (compare-and-swap), so two machines cannot both take it; the token grows on each taking.
//! - a run's index entry: `runs#<env>` / `<run id>`, written once (`attribute_not_exists`).
//! - a journal record: `run#<env>#<run id>` / `e#<seq, 12 digits>`, holding the line the file
//!   journal would write (same JSON, same hash chain), so that reading, checking and `verify` are
//!   the file journal's own code over the same bytes. An append is one TransactWriteItems: a
//!   ConditionCheck that the lease still carries the writer's token, and a put that no record
//!   has that seq. A writer fenced out by a newer lease is refused at its very next append.
//! - a record too large for one item (400 KB; a runbook copy can be big) is stored in parts,
//!   `blob#<sha256>` / `p#<n>`, in the same transaction, and the record item names the blob.
//!
//! Reads that decide anything are strongly consistent. Every call is bounded (the client's
//! timeouts, and a `tokio::time::timeout` over the whole call); what goes wrong is classified
//! ([`StateError`]): a table that cannot be reached is never mistaken for an empty one.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::Utc;

use super::{Event, JournalError, JournalStore, JournalWriter, Record};

mod lease;

/// Records up to this many bytes are stored inline; larger ones in parts of this size.
const INLINE_MAX: usize = 300_000;
/// A transaction holds at most 100 items and 4 MB: a record may have this many parts.
const MAX_PARTS: usize = 12;

pub use super::fault::{StateError, StateFault};

/// Where a run's state is, for messages: `dynamodb://<table>/<env>/<run>`.
pub fn locator(table: &str, env: &str, run: &str) -> String {
    format!("dynamodb://{table}/{env}/{run}")
}

/// One environment's journals and lease in the table.
#[derive(Clone)]
pub struct DynamoState {
    client: Client,
    pub table: String,
    pub region: String,
    /// The environment whose journals this store holds (the lease methods take theirs).
    pub env: String,
    timeout: Duration,
}

/// A call's outcome: the service's own (modelled) error, kept for the caller to look at, or
/// trouble with the table.
pub(super) enum Failure<E> {
    Service(E),
    State(StateError),
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<u64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

impl DynamoState {
    pub fn new(client: Client, table: &str, region: &str, env: &str, timeout: Duration) -> Self {
        assert!(
            crate::config::safe_name(env),
            "environment name `{env}` reached the state table unchecked"
        );
        Self {
            client,
            table: table.to_string(),
            region: region.to_string(),
            env: env.to_string(),
            timeout,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn lease_key(env: &str) -> HashMap<String, AttributeValue> {
        key(format!("env#{env}"), "lease".into())
    }

    fn run_pk(&self, run: &str) -> String {
        format!("run#{}#{run}", self.env)
    }

    pub fn fault(&self, fault: StateFault, message: impl Into<String>) -> StateError {
        StateError {
            fault,
            table: self.table.clone(),
            region: self.region.clone(),
            message: message.into(),
        }
    }

    /// Run one SDK call under the store's bound and classify what went wrong.
    pub(super) async fn call<T, E, R>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, SdkError<E, R>>>,
    ) -> Result<T, Failure<E>>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        // The client's own timeouts bound each attempt and the whole call; this outer bound
        // also covers what they do not (credential resolution, a stuck connection pool).
        let bound = self.timeout + Duration::from_secs(1);
        let r = match tokio::time::timeout(bound, f).await {
            Err(_) => {
                return Err(Failure::State(self.fault(
                    StateFault::Unreachable,
                    format!(
                        "{what}: no answer within {}",
                        humantime::format_duration(bound)
                    ),
                )))
            }
            Ok(r) => r,
        };
        r.map_err(|e| match e {
            SdkError::ServiceError(se) => {
                let err = se.into_err();
                let code = err.code().unwrap_or("").to_string();
                let fault = match code.as_str() {
                    "ResourceNotFoundException" => StateFault::Missing,
                    "AccessDeniedException"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "ExpiredTokenException"
                    | "MissingAuthenticationTokenException" => StateFault::Denied,
                    "ConditionalCheckFailedException" | "TransactionCanceledException" => {
                        return Failure::Service(err)
                    }
                    _ => StateFault::Other,
                };
                let msg = err.message().unwrap_or("").to_string();
                Failure::State(self.fault(fault, format!("{what}: {code}: {msg}")))
            }
            SdkError::TimeoutError(_) => {
                Failure::State(self.fault(StateFault::Unreachable, format!("{what}: timed out")))
            }
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
                Failure::State(self.fault(
                    StateFault::Unreachable,
                    format!(
                        "{what}: {}",
                        aws_smithy_types::error::display::DisplayErrorContext(
                            &SdkError::<E, R>::DispatchFailure(d)
                        )
                    ),
                ))
            }
            other => {
                let text =
                    aws_smithy_types::error::display::DisplayErrorContext(&other).to_string();
                let fault = if text.to_lowercase().contains("credential") {
                    StateFault::Denied
                } else {
                    StateFault::Other
                };
                Failure::State(self.fault(fault, format!("{what}: {text}")))
            }
        })
    }

    async fn get(
        &self,
        what: &str,
        k: HashMap<String, AttributeValue>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StateError> {
        let req = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(k))
            .consistent_read(true)
            .send();
        match self.call(what, req).await {
            Ok(out) => Ok(out.item),
            Err(Failure::State(e)) => Err(e),
            Err(Failure::Service(e)) => Err(self.fault(StateFault::Other, format!("{what}: {e}"))),
        }
    }

    /// Every item under `pk`, in key order, strongly consistent, all pages.
    pub(super) async fn query_all(
        &self,
        what: &str,
        pk: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StateError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let req = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send();
            let page = match self.call(what, req).await {
                Ok(p) => p,
                Err(Failure::State(e)) => return Err(e),
                Err(Failure::Service(e)) => {
                    return Err(self.fault(StateFault::Other, format!("{what}: {e}")))
                }
            };
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// The items of one run, in seq order (blob parts joined), as the bytes of the file journal.
    async fn read_bytes(&self, run: &str) -> Result<Vec<u8>, JournalError> {
        if !crate::config::safe_name(run) {
            return Err(JournalError::BadRunId(run.into()));
        }
        let items = self
            .query_all("read the journal", &self.run_pk(run))
            .await?;
        if items.is_empty() {
            return Err(JournalError::NoSuchRun(run.into()));
        }
        let mut bytes = Vec::new();
        for item in items {
            let line = match (get_s(&item, "line"), get_s(&item, "blob")) {
                (Some(l), _) => l.to_string(),
                (None, Some(sha)) => self.read_blob(sha).await?,
                (None, None) => {
                    return Err(JournalError::Corrupt {
                        path: locator(&self.table, &self.env, run),
                        line: bytes.iter().filter(|b| **b == b'\n').count() + 1,
                        why: "an item with neither a line nor a blob".into(),
                    })
                }
            };
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        Ok(bytes)
    }

    async fn read_blob(&self, sha: &str) -> Result<String, JournalError> {
        use sha2::{Digest, Sha256};
        let parts = self
            .query_all("read a large record", &format!("blob#{sha}"))
            .await?;
        let text: String = parts
            .iter()
            .filter_map(|p| get_s(p, "data"))
            .collect::<Vec<_>>()
            .concat();
        if hex::encode(Sha256::digest(text.as_bytes())) != sha {
            return Err(JournalError::Tampered {
                path: format!("dynamodb://{}/blob/{sha}", self.table),
                why: "a large record's parts do not hash to the name they are stored under".into(),
            });
        }
        Ok(text)
    }

    fn path(&self, run: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(locator(&self.table, &self.env, run))
    }

    /// Records and their bytes, checked like a file journal's (integrity; the chain if `chain`).
    async fn load(
        &self,
        run: &str,
        chain: bool,
    ) -> Result<(Vec<Record>, Vec<u8>, Option<super::chain::ChainReport>), JournalError> {
        let bytes = self.read_bytes(run).await?;
        let path = self.path(run);
        let (records, good, _) = super::file::parse(&path, &bytes)?;
        if good < bytes.len() {
            return Err(JournalError::Corrupt {
                path: path.display().to_string(),
                line: records.len() + 1,
                why: "a record that is not a whole JSON record".into(),
            });
        }
        super::file::check_integrity(&path, run, &records)?;
        let report = if chain {
            Some(super::file::check_chain(&path, &bytes)?)
        } else {
            None
        };
        Ok((records, bytes, report))
    }

    /// Put a run's index entry; false if it is there already.
    async fn put_index(&self, run: &str) -> Result<bool, JournalError> {
        let mut item = key(format!("runs#{}", self.env), run.to_string());
        item.insert("created".into(), s(Utc::now().to_rfc3339()));
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send();
        match self.call("create the run", req).await {
            Ok(_) => Ok(true),
            Err(Failure::Service(e)) if e.is_conditional_check_failed_exception() => Ok(false),
            Err(Failure::Service(e)) => Err(self
                .fault(StateFault::Other, format!("create the run: {e}"))
                .into()),
            Err(Failure::State(e)) => Err(e.into()),
        }
    }

    /// Copy a file journal's whole lines into the table as run `run` (`drctl state migrate`).
    /// Lines are copied byte for byte, so the hash chain (and its head) is the same. The run's
    /// index entry is written last: a copy that was interrupted is not listed, and the next
    /// migration goes on with it (records already there, as copied, are kept). Returns false,
    /// copying nothing, if the run is already complete in the table.
    pub async fn import(&self, run: &str, lines: &[&str]) -> Result<bool, JournalError> {
        use sha2::{Digest, Sha256};
        let index = key(format!("runs#{}", self.env), run.to_string());
        if self.get("look for the run", index).await?.is_some() {
            return Ok(false);
        }
        for (i, line) in lines.iter().enumerate() {
            let seq = i as u64 + 1;
            let (items, k) = self.record_items(run, seq, line)?;
            let mut tx = self.client.transact_write_items();
            for it in items {
                tx = tx.transact_items(it);
            }
            match self.call("copy a record", tx.send()).await {
                Ok(_) => {}
                Err(Failure::State(e)) => return Err(e.into()),
                Err(Failure::Service(_)) => {
                    // Copied by an earlier, interrupted migration: it must be the same line.
                    let item = self.get("read back a record", k).await?;
                    let same = item.as_ref().is_some_and(|it| {
                        get_s(it, "line") == Some(*line)
                            || get_s(it, "blob")
                                == Some(hex::encode(Sha256::digest(line.as_bytes())).as_str())
                    });
                    if !same {
                        return Err(JournalError::Exists(format!(
                            "{run} (the table's record {seq} differs from the file's)"
                        )));
                    }
                }
            }
        }
        self.put_index(run).await
    }

    /// The transaction items that store one record line at `seq` (the record, and its parts if
    /// it is large), and the record item's key.
    fn record_items(
        &self,
        run: &str,
        seq: u64,
        line: &str,
    ) -> Result<(Vec<TransactWriteItem>, HashMap<String, AttributeValue>), JournalError> {
        use sha2::{Digest, Sha256};
        let k = key(self.run_pk(run), format!("e#{seq:012}"));
        let mut item = k.clone();
        let mut out = Vec::new();
        if line.len() <= INLINE_MAX {
            item.insert("line".into(), s(line));
        } else {
            let sha = hex::encode(Sha256::digest(line.as_bytes()));
            let parts = split_utf8(line, INLINE_MAX);
            if parts.len() > MAX_PARTS {
                return Err(self
                    .fault(
                        StateFault::Config,
                        format!(
                            "a journal record of {} bytes is larger than the state table takes ({} bytes): shorten the runbook or environment file",
                            line.len(),
                            INLINE_MAX * MAX_PARTS
                        ),
                    )
                    .into());
            }
            for (i, p) in parts.iter().enumerate() {
                let mut part = key(format!("blob#{sha}"), format!("p#{i:04}"));
                part.insert("data".into(), s(*p));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(part))
                    .build()
                    .expect("table and item are set");
                out.push(TransactWriteItem::builder().put(put).build());
            }
            item.insert("blob".into(), s(sha));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table, item and condition are set");
        out.push(TransactWriteItem::builder().put(put).build());
        Ok((out, k))
    }
}

/// Cut `text` into pieces of at most `max` bytes, on character boundaries.
fn split_utf8(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (a, b) = rest.split_at(cut);
        out.push(a);
        rest = b;
    }
    out
}

/// An open journal in the table, appending under the lease token it is given.
struct DynamoJournal {
    store: DynamoState,
    run: String,
    records: Vec<Record>,
    /// As the file journal's: where the hash chain goes on (None: an unchained journal).
    prev: Option<String>,
}

impl DynamoJournal {
    /// Why a transaction was cancelled: the record landed after all (Ok(true)); the lease's
    /// token moved on (fenced out) or the seq is taken (errors); or neither, a conflict with a
    /// lease renewal or throttling (Ok(false): try again). Read back, since the cancellation
    /// reasons are not always given.
    async fn refused(&self, token: u64, seq: u64, line: &str) -> Result<bool, JournalError> {
        use sha2::{Digest, Sha256};
        let k = key(self.store.run_pk(&self.run), format!("e#{seq:012}"));
        if let Some(item) = self.store.get("read back a record", k).await? {
            // Our own earlier attempt, answered too late: the record is there, as written.
            let ours = match (get_s(&item, "line"), get_s(&item, "blob")) {
                (Some(l), _) => l == line,
                (None, Some(sha)) => sha == hex::encode(Sha256::digest(line.as_bytes())),
                _ => false,
            };
            if ours {
                return Ok(true);
            }
            return Err(JournalError::Exists(format!(
                "{} (record {seq} was written by another writer)",
                self.run
            )));
        }
        let (lease, _) = self
            .store
            .read_lease(&self.store.env)
            .await
            .map_err(|e| self.store.fault(StateFault::Other, e.to_string()))?;
        if lease.as_ref().is_some_and(|l| l.token == token) {
            return Ok(false);
        }
        Err(JournalError::Fenced {
            run: self.run.clone(),
            ours: token,
            theirs: lease.map_or(0, |l| l.token),
        })
    }
}

#[async_trait]
impl JournalWriter for DynamoJournal {
    async fn append(&mut self, token: u64, event: Event) -> Result<Record, JournalError> {
        use sha2::{Digest, Sha256};
        let mut record = Record {
            seq: self.records.last().map_or(1, |r| r.seq + 1),
            at: Utc::now(),
            token,
            event,
            hash: None,
        };
        let content = serde_json::to_string(&record).expect("records serialize");
        let (line, hash) = match &self.prev {
            Some(prev) => {
                let (line, hash) = super::chain::seal(prev, &content);
                (line, Some(hash))
            }
            None => (content, None),
        };
        let st = &self.store;
        let (items, _) = st.record_items(&self.run, record.seq, &line)?;
        // The fence: the lease must still carry this writer's token when the record lands.
        let check = ConditionCheck::builder()
            .table_name(&st.table)
            .set_key(Some(DynamoState::lease_key(&st.env)))
            .condition_expression("#t = :t")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":t", n(token))
            .build()
            .expect("table, key and condition are set");
        // A retry of an append that landed is answered as a success, not as a conflict; the
        // record's own hash is in the token, so a different record can never be taken for it.
        let mut attempt = 0u32;
        loop {
            // One token per attempt: the SDK's own retries of an attempt share it; an attempt
            // after a cancellation is a new request.
            let request_token = hex::encode(Sha256::digest(
                format!(
                    "{}/{}/{}/{token}/{attempt}/{line}",
                    st.env, self.run, record.seq
                )
                .as_bytes(),
            ))[..32]
                .to_string();
            let mut tx = st
                .client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .condition_check(check.clone())
                        .build(),
                )
                .client_request_token(&request_token);
            for it in items.iter().cloned() {
                tx = tx.transact_items(it);
            }
            match st.call("append to the journal", tx.send()).await {
                Ok(_) => break,
                Err(Failure::Service(_)) => {
                    if self.refused(token, record.seq, &line).await? {
                        break;
                    }
                    // Cancelled by a conflict (a renewal of our own lease) or throttling.
                    attempt += 1;
                    if attempt >= 5 {
                        return Err(st
                            .fault(
                                StateFault::Other,
                                "append to the journal: cancelled five times by conflicting writes",
                            )
                            .into());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                }
                Err(Failure::State(e)) => return Err(e.into()),
            }
        }
        super::file::after_append(self.records.len() + 1, &record);
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

#[async_trait]
impl JournalStore for DynamoState {
    async fn create(&self, run_id: &str) -> Result<Box<dyn JournalWriter>, JournalError> {
        if !crate::config::safe_name(run_id) {
            return Err(JournalError::BadRunId(run_id.into()));
        }
        if !self.put_index(run_id).await? {
            return Err(JournalError::Exists(run_id.into()));
        }
        Ok(Box::new(DynamoJournal {
            store: self.clone(),
            run: run_id.to_string(),
            records: Vec::new(),
            prev: Some(String::new()),
        }))
    }

    async fn open_writer(
        &self,
        run_id: &str,
    ) -> Result<(Box<dyn JournalWriter>, Vec<String>), JournalError> {
        let (records, _, report) = self.load(run_id, true).await?;
        let prev = report
            .as_ref()
            .and_then(|r| r.continue_from().map(String::from));
        Ok((
            Box::new(DynamoJournal {
                store: self.clone(),
                run: run_id.to_string(),
                records,
                prev,
            }),
            vec![],
        ))
    }

    async fn read(&self, run_id: &str) -> Result<(Vec<Record>, Vec<String>), JournalError> {
        let (records, _, _) = self.load(run_id, false).await?;
        Ok((records, vec![]))
    }

    async fn read_intact(&self, run_id: &str) -> Result<(Vec<Record>, Vec<String>), JournalError> {
        let (records, _, _) = self.load(run_id, true).await?;
        Ok((records, vec![]))
    }

    async fn list(&self) -> Result<Vec<String>, JournalError> {
        let items = self
            .query_all("list the runs", &format!("runs#{}", self.env))
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| get_s(i, "sk").map(String::from))
            .collect())
    }

    async fn verify_chain(&self, run_id: &str) -> Result<super::chain::ChainReport, JournalError> {
        let bytes = self.read_bytes(run_id).await?;
        Ok(super::chain::verify(&bytes))
    }

    fn locator(&self, run_id: &str) -> String {
        locator(&self.table, &self.env, run_id)
    }
}

#[cfg(test)]
mod tests {
    use super::split_utf8;

    #[test]
    fn parts_cut_on_character_boundaries_and_join_back() {
        let text = "ab€cd€€e".repeat(100);
        let parts = split_utf8(&text, 7);
        assert!(parts.iter().all(|p| p.len() <= 7 && !p.is_empty()));
        assert_eq!(parts.concat(), text);
    }
}
