//! Where an environment's runs and lease live, as runs use them: files in the state dir (the
//! default) or the shared DynamoDB table of `state:` (docs/shared-state.md). Built once per
//! command from the environment file; the DynamoDB client is made on first use.
//!
//! There is no fallback: when the environment says `dynamodb` and the table cannot be reached,
//! a mutating command stops (exit 14) instead of writing local files that no other machine sees.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::env::{AwsSettings, Environment};
use crate::config::state::{StateBackend, StateSettings};
use crate::journal::dynamo::DynamoState;
use crate::journal::file::FileJournalStore;
use crate::journal::lease::FileLeaseStore;
use crate::journal::{JournalStore, LeaseStore};

/// The store of one command.
#[derive(Clone)]
pub struct StateStore {
    dir: PathBuf,
    /// `state.lease_ttl` (either backend).
    lease_ttl: Duration,
    shared: Option<Arc<Shared>>,
}

struct Shared {
    settings: StateSettings,
    aws: AwsSettings,
    env: String,
    table: String,
    region: String,
    store: tokio::sync::OnceCell<DynamoState>,
}

impl StateStore {
    /// Files in `dir`.
    pub fn file(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            lease_ttl: StateSettings::default().lease_ttl,
            shared: None,
        }
    }

    /// What `env` says (`state:`), with `aws` (the environment's settings and the command
    /// line's overrides) for the DynamoDB client. Local files still live in `dir` (approvals'
    /// mailbox, the watch's log, schedules).
    pub fn for_env(dir: &Path, env: &Environment, aws: AwsSettings) -> Self {
        let st = &env.state;
        let shared = match (st.backend, &st.table, &st.region) {
            (StateBackend::Dynamodb, Some(table), Some(region)) => Some(Arc::new(Shared {
                settings: st.clone(),
                aws,
                env: env.name.clone(),
                table: table.clone(),
                region: region.clone(),
                store: tokio::sync::OnceCell::new(),
            })),
            _ => None,
        };
        Self {
            dir: dir.to_path_buf(),
            lease_ttl: st.lease_ttl,
            shared,
        }
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The local state dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// "state dir .drctl" or "DynamoDB table drctl-state in us-west-2", for messages.
    pub fn describe(&self) -> String {
        match &self.shared {
            None => format!("state dir {}", self.dir.display()),
            Some(s) => format!("DynamoDB table {} in {}", s.table, s.region),
        }
    }

    /// How long a lease lasts without renewal.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// The DynamoDB store, when the environment uses one.
    pub async fn dynamo(&self) -> Option<&DynamoState> {
        let s = self.shared.as_ref()?;
        Some(
            s.store
                .get_or_init(|| async {
                    let endpoint = s
                        .settings
                        .endpoint
                        .clone()
                        .or_else(|| s.aws.endpoint_url.clone());
                    let client = crate::aws::state_client(
                        &s.aws,
                        &s.region,
                        endpoint.as_deref(),
                        s.settings.timeout,
                    )
                    .await;
                    DynamoState::new(client, &s.table, &s.region, &s.env, s.settings.timeout)
                })
                .await,
        )
    }

    pub async fn journals(&self) -> Arc<dyn JournalStore> {
        match self.dynamo().await {
            Some(d) => Arc::new(d.clone()),
            None => Arc::new(FileJournalStore::new(&self.dir)),
        }
    }

    pub async fn leases(&self) -> Arc<dyn LeaseStore> {
        match self.dynamo().await {
            Some(d) => Arc::new(d.clone()),
            None => Arc::new(FileLeaseStore::new(&self.dir)),
        }
    }

    /// A run's local directory (the approvals mailbox with the file backend).
    pub fn run_dir(&self, run: &str) -> PathBuf {
        FileJournalStore::new(&self.dir).run_dir(run)
    }
}

/// What `drctl state migrate` did with each run of the state dir.
#[derive(Debug, Default, serde::Serialize)]
pub struct Migration {
    /// Copied into the table.
    pub copied: Vec<String>,
    /// Already in the table (an earlier migration): left as they are.
    pub present: Vec<String>,
    /// Runs of other environments, left alone.
    pub other_env: Vec<String>,
    /// Runs whose journal is damaged or unreadable: not copied (`drctl verify RUN`).
    pub refused: Vec<(String, String)>,
    /// The table's lease starts after this fencing token (the file lease's), if it had none.
    pub lease_token: Option<u64>,
}

/// `drctl state migrate`: copy the environment's file journals into its table, line for line
/// (the hash chains and their heads stay the same). Refused while a drctl holds the file
/// lease: a run writing files now would be split between the two. With `dry_run`, says what
/// it would copy and writes nothing.
pub async fn migrate(
    state: &StateStore,
    env: &str,
    dry_run: bool,
) -> Result<Migration, super::RunError> {
    use crate::journal::lease::{staleness, Staleness};
    let Some(table) = state.dynamo().await else {
        return Err(super::RunError::Refused(
            "state.backend is `file`: set `state: {backend: dynamodb, table: ..., region: ...}` in drctl.yaml and run `drctl state init` first".into(),
        ));
    };
    let files = FileJournalStore::new(&state.dir);
    let file_lease = FileLeaseStore::new(&state.dir).current(env).await?;
    if let Some(l) = &file_lease {
        if staleness(l, chrono::Utc::now()) == Staleness::Fresh {
            return Err(crate::journal::LeaseError::Held(Box::new(l.clone())).into());
        }
    }
    if table
        .table_status()
        .await
        .map_err(crate::journal::JournalError::State)?
        .is_none()
    {
        return Err(crate::journal::JournalError::State(
            table.fault(crate::journal::dynamo::StateFault::Missing, "no such table"),
        )
        .into());
    }
    let mut out = Migration::default();
    let in_table = table.list().await?;
    let mut max_token = file_lease.map_or(0, |l| l.token);
    for id in files.list().await? {
        // Another environment's runs are left alone, whatever state they are in.
        if let Ok((rs, _)) = files.read(&id).await {
            if let Some(crate::journal::Event::RunStarted { env_name, .. }) =
                rs.first().map(|r| &r.event)
            {
                if env_name != env {
                    out.other_env.push(id);
                    continue;
                }
            }
        }
        let records = match files.read_intact(&id).await {
            Ok((r, _)) => r,
            Err(e) => {
                out.refused.push((id, e.to_string()));
                continue;
            }
        };
        if crate::journal::RunState::replay(&records).is_err() {
            out.refused.push((id, "its journal does not replay".into()));
            continue;
        }
        max_token = max_token.max(records.iter().map(|r| r.token).max().unwrap_or(0));
        if in_table.contains(&id) {
            out.present.push(id);
            continue;
        }
        if dry_run {
            out.copied.push(id);
            continue;
        }
        let (_, bytes) = files.read_bytes(&id)?;
        let text = String::from_utf8_lossy(&bytes);
        // Whole lines only: a torn tail is not part of the run (as a reader sees it).
        let lines: Vec<&str> = text
            .split_inclusive('\n')
            .filter_map(|l| l.strip_suffix('\n'))
            .take(records.len())
            .collect();
        if table.import(&id, &lines).await? {
            out.copied.push(id);
        } else {
            out.present.push(id);
        }
    }
    if !dry_run && table.seed_lease(env, max_token).await? {
        out.lease_token = Some(max_token);
    }
    Ok(out)
}

/// `drctl state init`: create the table if it is not there, and wait until it is ACTIVE.
pub async fn init(
    state: &StateStore,
    waiting: impl Fn(&str),
) -> Result<crate::journal::Init, super::RunError> {
    let Some(table) = state.dynamo().await else {
        return Err(super::RunError::Refused(
            "state.backend is `file`: there is no table to create. Set `state: {backend: dynamodb, table: ..., region: ...}` in drctl.yaml (docs/shared-state.md)".into(),
        ));
    };
    Ok(table
        .create_table(Duration::from_secs(300), waiting)
        .await
        .map_err(crate::journal::JournalError::State)?)
}
