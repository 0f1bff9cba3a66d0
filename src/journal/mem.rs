//! An in-memory journal, for engine unit tests only (the real ones are files).

use async_trait::async_trait;
use chrono::Utc;

use super::{Event, JournalError, JournalWriter, Record};

#[derive(Default)]
pub struct MemJournal {
    pub records: Vec<Record>,
}

#[async_trait]
impl JournalWriter for MemJournal {
    async fn append(&mut self, token: u64, event: Event) -> Result<Record, JournalError> {
        let r = Record {
            seq: self.records.len() as u64 + 1,
            at: Utc::now(),
            token,
            event,
            // Nothing to chain: the chain is a property of the bytes in a file.
            hash: None,
        };
        self.records.push(r.clone());
        Ok(r)
    }

    fn records(&self) -> &[Record] {
        &self.records
    }
}
