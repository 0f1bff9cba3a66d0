//! Setting up the shared table: `drctl state init` creates it (on-demand billing, keys `pk` and
//! `sk`), and `drctl state migrate` copies an environment's file journals into it.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};

use super::dynamo::{DynamoState, Failure, StateError, StateFault};
use super::{LeaseRecord, LeaseStore};

/// What `drctl state init` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Init {
    /// The table was created and is ACTIVE.
    Created,
    /// A table of that name with drctl's keys was there already.
    Existed,
}

impl DynamoState {
    /// The table's status (`ACTIVE`, `CREATING`, ...), or None if there is no such table. A
    /// table whose keys are not drctl's is refused: drctl would misread its items.
    pub async fn table_status(&self) -> Result<Option<String>, StateError> {
        let req = self
            .client()
            .describe_table()
            .table_name(&self.table)
            .send();
        let out = match self.call("describe the table", req).await {
            Ok(o) => o,
            Err(Failure::State(e)) if e.fault == StateFault::Missing => return Ok(None),
            Err(Failure::State(e)) => return Err(e),
            Err(Failure::Service(e)) => {
                return Err(self.fault(StateFault::Other, format!("describe the table: {e}")))
            }
        };
        let Some(t) = out.table else {
            return Ok(None);
        };
        let keys: Vec<(String, String)> = t
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_string(),
                    k.key_type().as_str().to_string(),
                )
            })
            .collect();
        let want = vec![
            ("pk".to_string(), "HASH".to_string()),
            ("sk".to_string(), "RANGE".to_string()),
        ];
        if keys != want {
            return Err(self.fault(
                StateFault::Config,
                format!(
                    "the table exists with keys {keys:?}, not drctl's (pk HASH, sk RANGE): give state.table another name"
                ),
            ));
        }
        Ok(t.table_status().map(|s| s.as_str().to_string()))
    }

    /// Create the table (on-demand billing) and wait, up to `wait`, until it is ACTIVE,
    /// calling `waiting` with its status every few seconds.
    pub async fn create_table(
        &self,
        wait: Duration,
        waiting: impl Fn(&str),
    ) -> Result<Init, StateError> {
        let existed = match self.table_status().await? {
            Some(s) if s == "ACTIVE" => return Ok(Init::Existed),
            Some(_) => true,
            None => false,
        };
        if !existed {
            let attr = |n: &str| {
                AttributeDefinition::builder()
                    .attribute_name(n)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("name and type are set")
            };
            let key = |n: &str, t: KeyType| {
                KeySchemaElement::builder()
                    .attribute_name(n)
                    .key_type(t)
                    .build()
                    .expect("name and type are set")
            };
            let req = self
                .client()
                .create_table()
                .table_name(&self.table)
                .attribute_definitions(attr("pk"))
                .attribute_definitions(attr("sk"))
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .billing_mode(BillingMode::PayPerRequest)
                .send();
            match self.call("create the table", req).await {
                Ok(_) => {}
                Err(Failure::State(e)) => return Err(e),
                // Someone else is creating it: wait for it like for ours.
                Err(Failure::Service(e))
                    if aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e)
                        == Some("ResourceInUseException") => {}
                Err(Failure::Service(e)) => {
                    return Err(self.fault(StateFault::Other, format!("create the table: {e}")))
                }
            }
        }
        let start = Instant::now();
        loop {
            match self.table_status().await? {
                Some(s) if s == TableStatus::Active.as_str() => {
                    return Ok(if existed {
                        Init::Existed
                    } else {
                        Init::Created
                    })
                }
                Some(s) => waiting(&s),
                None => waiting("not visible yet"),
            }
            if start.elapsed() > wait {
                return Err(self.fault(
                    StateFault::Unreachable,
                    format!(
                        "the table did not become ACTIVE within {}",
                        humantime::format_duration(wait)
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// After a migration: if the table has no lease yet, start its fencing tokens after
    /// `token` (the file lease's), released, so tokens keep growing across the move.
    pub async fn seed_lease(&self, env: &str, token: u64) -> Result<bool, super::LeaseError> {
        if token == 0 || self.current(env).await?.is_some() {
            return Ok(false);
        }
        let now = chrono::Utc::now();
        let op = super::Operator::current();
        let rec = LeaseRecord {
            env: env.to_string(),
            owner: op.user,
            host: op.host,
            pid: op.pid,
            pid_start: None,
            pid_space: None,
            command: "drctl state migrate".into(),
            run_id: None,
            acquired_at: now,
            expires_at: now,
            token,
            released: true,
        };
        self.put_seed(&rec).await
    }
}

impl DynamoState {
    /// Publish one watcher's view of the environment (`drctl watch` with shared state): item
    /// `watch#<env>` / `<watcher>`, overwritten on every heartbeat.
    pub async fn put_watcher(&self, watcher: &str, view: &str) -> Result<(), StateError> {
        let mut item = std::collections::HashMap::from([
            (
                "pk".to_string(),
                super::dynamo::s(format!("watch#{}", self.env)),
            ),
            ("sk".to_string(), super::dynamo::s(watcher)),
        ]);
        item.insert("view".into(), super::dynamo::s(view));
        let req = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send();
        match self.call("publish the watcher's view", req).await {
            Ok(_) => Ok(()),
            Err(Failure::State(e)) => Err(e),
            Err(Failure::Service(e)) => Err(self.fault(
                StateFault::Other,
                format!("publish the watcher's view: {e}"),
            )),
        }
    }

    /// Take a watcher's view out (it stopped cleanly).
    pub async fn remove_watcher(&self, watcher: &str) -> Result<(), StateError> {
        let req = self
            .client()
            .delete_item()
            .table_name(&self.table)
            .key("pk", super::dynamo::s(format!("watch#{}", self.env)))
            .key("sk", super::dynamo::s(watcher))
            .send();
        match self.call("remove the watcher's view", req).await {
            Ok(_) => Ok(()),
            Err(Failure::State(e)) => Err(e),
            Err(Failure::Service(e)) => {
                Err(self.fault(StateFault::Other, format!("remove the watcher's view: {e}")))
            }
        }
    }

    /// Every watcher's latest view of the environment (strongly consistent).
    pub async fn watchers(&self) -> Result<Vec<String>, StateError> {
        let items = self
            .query_all("read the watchers' views", &format!("watch#{}", self.env))
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| i.get("view").and_then(|v| v.as_s().ok()).cloned())
            .collect())
    }
}

impl DynamoState {
    fn approval_key(
        &self,
        run: &str,
        step: &str,
    ) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
        std::collections::HashMap::from([
            (
                "pk".to_string(),
                super::dynamo::s(format!("appr#{}#{run}", self.env)),
            ),
            ("sk".to_string(), super::dynamo::s(step)),
        ])
    }

    /// Record an approval of `step` of `run` (`drctl approve` on any machine).
    pub async fn put_approval(&self, run: &str, step: &str, json: &str) -> Result<(), StateError> {
        let mut item = self.approval_key(run, step);
        item.insert("approval".into(), super::dynamo::s(json));
        let req = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send();
        match self.call("record the approval", req).await {
            Ok(_) => Ok(()),
            Err(Failure::State(e)) => Err(e),
            Err(Failure::Service(e)) => {
                Err(self.fault(StateFault::Other, format!("record the approval: {e}")))
            }
        }
    }

    /// The approval of `step` of `run`, if one was recorded (strongly consistent).
    pub async fn get_approval(&self, run: &str, step: &str) -> Result<Option<String>, StateError> {
        let req = self
            .client()
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.approval_key(run, step)))
            .consistent_read(true)
            .send();
        match self.call("read the approvals", req).await {
            Ok(out) => Ok(out
                .item
                .and_then(|i| i.get("approval").and_then(|v| v.as_s().ok()).cloned())),
            Err(Failure::State(e)) => Err(e),
            Err(Failure::Service(e)) => {
                Err(self.fault(StateFault::Other, format!("read the approvals: {e}")))
            }
        }
    }

    /// Take an approval out (one the two-person rule does not accept).
    pub async fn remove_approval(&self, run: &str, step: &str) -> Result<(), StateError> {
        let req = self
            .client()
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.approval_key(run, step)))
            .send();
        match self.call("remove the approval", req).await {
            Ok(_) => Ok(()),
            Err(Failure::State(e)) => Err(e),
            Err(Failure::Service(e)) => {
                Err(self.fault(StateFault::Other, format!("remove the approval: {e}")))
            }
        }
    }
}
