//! `drctl retired`: the old writers reprotect and failback keep (renamed, tagged, stopped), and
//! removing those past their keep time. A retired instance holds the data of the writer it was;
//! it is deleted only on request, with confirmation, and its data is kept as a final snapshot.
//! RDS starts a stopped instance again after seven days (User Guide, "Stopping an Amazon RDS DB
//! instance temporarily"), so a kept one costs again unless it is removed or stopped anew.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Context, RunError};
use crate::aws::rds::{RETIRED_AT, RETIRED_BY, RETIRED_FROM};
use crate::config::Environment;

/// How long each listing call may take: a dark region is said, not waited for.
const LIST_TIMEOUT: Duration = Duration::from_secs(15);

/// One retired instance.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Retired {
    pub region: String,
    pub id: String,
    pub status: String,
    /// The instance it was (its id before retirement).
    pub retired_from: String,
    pub retired_by: Option<String>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl Retired {
    /// How long it has been kept, if its retirement time is known.
    pub fn kept_for(&self, now: DateTime<Utc>) -> Option<Duration> {
        (now - self.retired_at?).to_std().ok()
    }

    /// The final snapshot its deletion keeps.
    pub fn final_snapshot(&self, now: DateTime<Utc>) -> String {
        format!("{}-final-{}", self.id, now.format("%Y%m%d-%H%M%S"))
    }
}

/// The environment's retired instances in both regions, and the regions that could not be read.
pub async fn list(ctx: &Context, env: &Environment) -> (Vec<Retired>, Vec<String>) {
    let aws = ctx.aws.aws(env);
    let mut out = vec![];
    let mut unread = vec![];
    for region in [&env.primary_region, &env.standby_region] {
        let got = tokio::time::timeout(LIST_TIMEOUT, async {
            aws.rds(region).await.instances().await
        })
        .await;
        match got {
            Ok(Ok(all)) => out.extend(all.into_iter().filter_map(|d| {
                let from = d.tags.get(RETIRED_FROM)?.clone();
                Some(Retired {
                    region: region.clone(),
                    retired_by: d.tags.get(RETIRED_BY).cloned(),
                    retired_at: d
                        .tags
                        .get(RETIRED_AT)
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc)),
                    id: d.id,
                    status: d.status,
                    retired_from: from,
                })
            })),
            Ok(Err(e)) => unread.push(format!("{region}: {e}")),
            Err(_) => unread.push(format!(
                "{region}: no answer within {}",
                humantime::format_duration(LIST_TIMEOUT)
            )),
        }
    }
    (out, unread)
}

/// Those kept longer than `older_than` (an unknown retirement time is never old enough).
pub fn past(items: &[Retired], older_than: Duration, now: DateTime<Utc>) -> Vec<Retired> {
    items
        .iter()
        .filter(|r| r.kept_for(now).is_some_and(|k| k >= older_than))
        .cloned()
        .collect()
}

/// Delete each of `items`, keeping a final snapshot, under the environment's lease (no run may
/// be reprotecting or failing back meanwhile). Returns, per instance, the snapshot kept or why
/// it could not be deleted.
pub async fn delete(
    ctx: &Context,
    env: &Environment,
    items: &[Retired],
) -> Result<Vec<(Retired, Result<String, String>)>, RunError> {
    use crate::journal::LeaseRequest;
    let leases = ctx.state.leases().await;
    let req = LeaseRequest {
        env: env.name.clone(),
        owner: ctx.operator.user.clone(),
        command: ctx.command.clone(),
        run_id: None,
        ttl: ctx.state.lease_ttl(),
    };
    let (lease, _) = leases.acquire(&req).await?;
    let aws = ctx.aws.aws(env);
    let now = Utc::now();
    let mut out = vec![];
    for r in items {
        let snapshot = r.final_snapshot(now);
        let done = aws
            .rds(&r.region)
            .await
            .delete_keeping_snapshot(&r.id, &snapshot)
            .await
            .map(|_| snapshot)
            .map_err(|e| e.to_string());
        out.push((r.clone(), done));
    }
    let _ = leases.release(&lease).await;
    Ok(out)
}
