//! The shared table's lease: one item per environment, changed only by compare-and-swap on its
//! version (a conditional PutItem), with the same rules as the file lease (`super::super::lease::rules`).
//! The journal store is the parent module; this is the other half, as the file backend splits
//! its lease from its journal.

use std::time::Duration;

use async_trait::async_trait;

use super::super::lease::rules;
use super::super::{LeaseError, LeaseRecord, LeaseRequest, LeaseStore};
use super::*;

impl DynamoState {
    /// The lease item: its record and version (0: there is none).
    pub(in crate::journal) async fn read_lease(
        &self,
        env: &str,
    ) -> Result<(Option<LeaseRecord>, u64), LeaseError> {
        let item = self.get("read the lease", Self::lease_key(env)).await?;
        let Some(item) = item else {
            return Ok((None, 0));
        };
        let corrupt = |why: String| LeaseError::Corrupt {
            path: locator(&self.table, env, "lease"),
            why,
        };
        let version = get_n(&item, "version").ok_or_else(|| corrupt("no version".into()))?;
        let text = get_s(&item, "lease").ok_or_else(|| corrupt("no lease record".into()))?;
        let rec: LeaseRecord = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        if rec.env != env {
            return Err(corrupt(format!("it names environment `{}`", rec.env)));
        }
        Ok((Some(rec), version))
    }

    /// Write a first lease record (none may be there yet): `state migrate` carries the file
    /// lease's token over.
    pub(in crate::journal) async fn put_seed(&self, rec: &LeaseRecord) -> Result<bool, LeaseError> {
        self.put_lease(rec, 0).await
    }

    /// Write the lease if its version is still `version`; false if someone wrote it first.
    async fn put_lease(&self, rec: &LeaseRecord, version: u64) -> Result<bool, LeaseError> {
        let mut item = Self::lease_key(&rec.env);
        item.insert(
            "lease".into(),
            s(serde_json::to_string(rec).expect("lease serializes")),
        );
        item.insert("token".into(), n(rec.token));
        item.insert("version".into(), n(version + 1));
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        req = if version == 0 {
            req.condition_expression("attribute_not_exists(pk)")
        } else {
            req.condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", n(version))
        };
        match self.call("write the lease", req.send()).await {
            Ok(_) => Ok(true),
            Err(Failure::Service(e)) if e.is_conditional_check_failed_exception() => Ok(false),
            Err(Failure::Service(e)) => Err(self
                .fault(StateFault::Other, format!("write the lease: {e}"))
                .into()),
            Err(Failure::State(e)) => Err(e.into()),
        }
    }

    /// Compare-and-swap on the lease: read, decide, write if nobody wrote in between; a few
    /// tries when another machine wins a race to a lease that `decide` would still change.
    async fn cas<T>(
        &self,
        env: &str,
        mut decide: impl FnMut(Option<LeaseRecord>) -> Result<(Option<LeaseRecord>, T), LeaseError>,
    ) -> Result<T, LeaseError> {
        for _ in 0..5 {
            let (cur, version) = self.read_lease(env).await?;
            let (next, out) = decide(cur)?;
            match next {
                None => return Ok(out),
                Some(rec) => {
                    if self.put_lease(&rec, version).await? {
                        return Ok(out);
                    }
                }
            }
        }
        Err(self
            .fault(
                StateFault::Other,
                "the lease kept changing under five attempts to write it",
            )
            .into())
    }
}

#[async_trait]
impl LeaseStore for DynamoState {
    async fn acquire(
        &self,
        req: &LeaseRequest,
    ) -> Result<(LeaseRecord, Option<LeaseRecord>), LeaseError> {
        self.cas(&req.env, |cur| rules::acquire(req, cur)).await
    }

    async fn break_and_acquire(
        &self,
        req: &LeaseRequest,
    ) -> Result<(LeaseRecord, Option<LeaseRecord>), LeaseError> {
        self.cas(&req.env, |cur| rules::break_lock(req, cur)).await
    }

    async fn renew(&self, lease: &LeaseRecord, ttl: Duration) -> Result<LeaseRecord, LeaseError> {
        self.cas(&lease.env, |cur| rules::renew(lease, ttl, cur))
            .await
    }

    async fn release(&self, lease: &LeaseRecord) -> Result<(), LeaseError> {
        self.cas(&lease.env, |cur| rules::release(lease, cur)).await
    }

    async fn current(&self, env: &str) -> Result<Option<LeaseRecord>, LeaseError> {
        Ok(self.read_lease(env).await?.0)
    }
}
