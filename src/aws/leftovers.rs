//! Drill resources found by their tag, and their removal in the order AWS allows (listeners
//! before target groups, instances before the target groups they are registered in). Used by a
//! drill's teardown (one run's resources) and by `drctl drill cleanup` (every run's), so the
//! two can never disagree about what a drill leaves behind.

use std::time::Duration;

use serde::Serialize;

use super::drill::{DrillApi, Tags, DRILL_ENV_TAG, DRILL_TAG};
use super::AwsResult;

/// One resource a drill made that still exists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Leftover {
    /// `listener`, `instance`, `target-group`, `db-instance`, `db-snapshot` (removal order).
    pub kind: Kind,
    pub id: String,
    /// The drill run that made it.
    pub run: String,
    /// Instance or database state, where there is one.
    pub state: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Listener,
    Instance,
    TargetGroup,
    DbInstance,
    DbSnapshot,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Listener => "listener",
            Kind::Instance => "instance",
            Kind::TargetGroup => "target group",
            Kind::DbInstance => "DB instance",
            Kind::DbSnapshot => "DB snapshot",
        })
    }
}

/// Which drill resources to look for.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The environment whose drills made them.
    pub env: &'a str,
    /// One run's only (its teardown), or every run's (cleanup).
    pub run: Option<&'a str>,
    /// The drill load balancer, whose listeners are searched.
    pub load_balancer: Option<&'a str>,
}

impl Scope<'_> {
    fn owns(&self, tags: &Tags) -> Option<String> {
        let run = tags.get(DRILL_TAG)?;
        if tags.get(DRILL_ENV_TAG).map(String::as_str) != Some(self.env) {
            return None;
        }
        match self.run {
            Some(r) if r != run => None,
            _ => Some(run.clone()),
        }
    }
}

/// Every drill resource in `scope` that still exists, in removal order.
pub async fn find(api: &dyn DrillApi, scope: Scope<'_>) -> AwsResult<Vec<Leftover>> {
    let mut out = Vec::new();
    if let Some(lb) = scope.load_balancer {
        match api.listeners(lb).await {
            Ok(ls) => out.extend(ls.into_iter().filter_map(|l| {
                Some(Leftover {
                    kind: Kind::Listener,
                    run: scope.owns(&l.tags)?,
                    id: l.arn,
                    state: None,
                })
            })),
            // The drill load balancer itself gone: no listeners to leave behind.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    for i in api.instances_tagged(DRILL_TAG, scope.run).await? {
        if i.state == "terminated" {
            continue;
        }
        if let Some(run) = scope.owns(&i.tags) {
            out.push(Leftover {
                kind: Kind::Instance,
                id: i.id,
                run,
                state: Some(i.state),
            });
        }
    }
    for t in api.target_groups().await? {
        if let Some(run) = scope.owns(&t.tags) {
            out.push(Leftover {
                kind: Kind::TargetGroup,
                id: t.arn,
                run,
                state: None,
            });
        }
    }
    for d in api.db_instances().await? {
        if d.status == "deleting" {
            continue;
        }
        if let Some(run) = scope.owns(&d.tags) {
            out.push(Leftover {
                kind: Kind::DbInstance,
                id: d.id,
                run,
                state: Some(d.status),
            });
        }
    }
    for s in api.snapshots(None).await? {
        // Only the snapshots drctl takes (manual, named after the drill): an automated or AWS
        // Backup snapshot that copied a drill database's tags is not the drill's to delete.
        if s.status == "deleting" || s.kind != "manual" || !s.id.starts_with("drctl-drill-") {
            continue;
        }
        // A snapshot restored from keeps the source's tags only if asked; drill snapshots are
        // the ones drctl made of the replica, tagged by it.
        if let Some(run) = scope.owns(&s.tags) {
            out.push(Leftover {
                kind: Kind::DbSnapshot,
                id: s.id,
                run,
                state: Some(s.status),
            });
        }
    }
    out.sort();
    Ok(out)
}

/// Remove `items` in order. Instances are waited for (bounded by `wait`) until terminated,
/// because a target group they are still registered in cannot be deleted. Returns what was
/// removed and what could not be, with why.
pub async fn remove(
    api: &dyn DrillApi,
    items: &[Leftover],
    wait: Duration,
) -> (Vec<Leftover>, Vec<(Leftover, String)>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let mut sorted = items.to_vec();
    sorted.sort();
    let instances: Vec<String> = sorted
        .iter()
        .filter(|l| l.kind == Kind::Instance)
        .map(|l| l.id.clone())
        .collect();
    for l in &sorted {
        let r = match l.kind {
            Kind::Listener => api.delete_listener(&l.id).await,
            Kind::Instance => {
                // One call for all of them, the first time an instance comes up; if that
                // fails (one id already gone fails the batch), one call each, so each
                // instance's fate is its own.
                if instances.first() == Some(&l.id) && api.terminate(&instances).await.is_ok() {
                    wait_terminated(api, &instances, wait).await;
                }
                let live = api
                    .instances_tagged(DRILL_TAG, Some(&l.run))
                    .await
                    .map(|all| {
                        all.into_iter().any(|i| {
                            i.id == l.id && i.state != "terminated" && i.state != "shutting-down"
                        })
                    });
                match live {
                    Ok(false) => Ok(()),
                    Ok(true) => api.terminate(std::slice::from_ref(&l.id)).await,
                    Err(e) => Err(e),
                }
            }
            Kind::TargetGroup => api.delete_target_group(&l.id).await,
            Kind::DbInstance => delete_db(api, &l.id, wait).await,
            Kind::DbSnapshot => api.delete_snapshot(&l.id).await,
        };
        match r {
            Ok(()) => done.push(l.clone()),
            Err(e) if e.is_not_found() => done.push(l.clone()),
            Err(e) => failed.push((l.clone(), e.to_string())),
        }
    }
    (done, failed)
}

async fn wait_terminated(api: &dyn DrillApi, ids: &[String], wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let live = match api.instances_tagged(DRILL_TAG, None).await {
            Ok(all) => all
                .iter()
                .filter(|i| ids.contains(&i.id) && i.state != "terminated")
                .count(),
            Err(_) => 1,
        };
        if live == 0 || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Delete a DB instance, waiting (bounded) while RDS says it is in a state that cannot be
/// deleted yet (a restore still `creating`, a `modifying` instance).
async fn delete_db(api: &dyn DrillApi, id: &str, wait: Duration) -> AwsResult<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match api.delete_db_instance(id).await {
            Err(e)
                if e.code.as_deref() == Some("InvalidDBInstanceState")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_secs(2)).await
            }
            other => return other,
        }
    }
}
