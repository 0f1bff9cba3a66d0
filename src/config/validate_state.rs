//! drctl.yaml checks of where drctl keeps and gets what outlives the primary: the shared state
//! table (`state:`), the STS region credentials come from (`aws.sts_region`), and what a
//! replica built in a region is created with (`regions.*.database`).

use super::env::Environment;
use super::{Diagnostic, Source};

/// The `state:` section: a DynamoDB table needs a name and a region that is not the primary;
/// so does STS (`aws.sts_region`).
pub(super) fn state(src: &Source, env: &Environment, d: &mut Vec<Diagnostic>) {
    use super::state::{table_name_ok, StateBackend};
    let st = &env.state;
    let at = |path: &[&str], m: String, h: &str| Diagnostic::at_key(src, path, m).hint(h);
    for (region, r) in &env.regions {
        if let Some(db) = r.database.as_ref() {
            // RDS refuses VPC security groups for an instance outside a VPC, which is what an
            // instance without a DB subnet group is (CreateDBInstanceReadReplica API reference).
            if !db.security_group_ids.is_empty() && db.subnet_group.is_none() {
                d.push(at(&["regions", region, "database", "security_group_ids"], format!("regions.{region}.database has security_group_ids but no subnet_group: a replica built there would be outside any VPC, where security groups cannot apply"), "add the DB subnet group the replica goes in"));
            }
        }
    }
    match &env.aws.sts_region {
        Some(r) if *r == env.primary_region => d.push(at(&["aws", "sts_region"], format!("aws.sts_region `{r}` is the primary region: credentials from assumed roles would fail with it, when a failover needs them"), "use the standby region (the default)")),
        Some(r) if !(super::AWS_REGIONS.contains(&r.as_str()) || env.aws.extra_regions.iter().any(|x| x == r)) => d.push(at(&["aws", "sts_region"], format!("aws.sts_region `{r}` is not an AWS region"), "use an AWS region name like us-west-2")),
        _ => {}
    }
    if st.backend == StateBackend::Dynamodb {
        match &st.table {
            None => d.push(at(
                &["state", "backend"],
                "state.backend is `dynamodb` but state.table is missing".into(),
                "name the table (`drctl state init` creates it), e.g. `table: drctl-state`",
            )),
            Some(t) if !table_name_ok(t) => d.push(at(
                &["state", "table"],
                format!("state.table `{t}` is not a DynamoDB table name"),
                "use 3-255 letters, digits, `_`, `-` and `.`",
            )),
            Some(_) => {}
        }
        match &st.region {
            None => d.push(at(&["state", "backend"], "state.backend is `dynamodb` but state.region is missing".into(), "put the table in the standby region or a third region, never the primary")),
            Some(r) if *r == env.primary_region => d.push(at(&["state", "region"], format!("state.region `{r}` is the primary region: the table must outlive the primary's outage, which is when drctl needs it most"), "use the standby region or a third region")),
            Some(r) if !(super::AWS_REGIONS.contains(&r.as_str()) || env.aws.extra_regions.iter().any(|x| x == r)) => d.push(at(&["state", "region"], format!("state.region `{r}` is not an AWS region"), "use an AWS region name like us-west-2")),
            Some(_) => {}
        }
    } else {
        for key in ["table", "region", "endpoint"] {
            let set = match key {
                "table" => st.table.is_some(),
                "region" => st.region.is_some(),
                _ => st.endpoint.is_some(),
            };
            if set {
                d.push(at(&["state", key], format!("state.{key} is set but state.backend is `file`: the table would be ignored"), "add `backend: dynamodb`, or remove the key"));
            }
        }
    }
    if let Some(w) = env.probes.as_ref().map(|p| &p.watch) {
        let path = |k: &'static str| ["probes", "watch", k];
        if w.quorum == Some(0) {
            d.push(at(
                &path("quorum"),
                "probes.watch.quorum is 0: no watcher would need to agree".into(),
                "leave it out for a majority of the live watchers, or give a count such as 2",
            ));
        }
        if w.heartbeat < std::time::Duration::from_millis(100) {
            d.push(at(
                &path("heartbeat"),
                "probes.watch.heartbeat must be at least 100ms".into(),
                "e.g. `heartbeat: 1s`",
            ));
        }
        if w.peer_timeout < w.heartbeat * 2 {
            d.push(at(&path("peer_timeout"), format!("probes.watch.peer_timeout ({}) is less than twice the heartbeat ({}): live watchers would flicker out of the quorum", humantime::format_duration(w.peer_timeout), humantime::format_duration(w.heartbeat)), "e.g. `peer_timeout: 5s` with `heartbeat: 1s`"));
        }
    }
    for (key, v) in [("lease_ttl", st.lease_ttl), ("timeout", st.timeout)] {
        if v < std::time::Duration::from_secs(1) {
            d.push(at(
                &["state", key],
                format!("state.{key} must be at least 1s"),
                "e.g. `lease_ttl: 60s`, `timeout: 10s`",
            ));
        }
    }
    if st.backend == StateBackend::Dynamodb
        && st.lease_ttl < st.timeout * 3
        && st.lease_ttl >= std::time::Duration::from_secs(1)
    {
        d.push(at(&["state", "lease_ttl"], format!("state.lease_ttl ({}) is less than 3 x state.timeout ({}): one slow renewal could let the lease lapse", humantime::format_duration(st.lease_ttl), humantime::format_duration(st.timeout)), "raise lease_ttl or lower timeout"));
    }
}
