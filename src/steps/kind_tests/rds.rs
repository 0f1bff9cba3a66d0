//! `rds.promote_replica` and `rds.fence_primary` against the fake.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::*;
use crate::aws::fake::{Fault, FaultKind};
use crate::aws::Aws;
use crate::journal::Measure;

/// Whether the instance is a writer (no replication source) and available.
fn is_writer(fx: &Fx, region: &str) -> bool {
    let w = fx.world();
    let d = &w.dbs[&key(region, &db_id(region))].db;
    d.replica_source.is_none() && d.status == "available"
}

fn set_lag(fx: &Fx, lag: Option<f64>) {
    fx.world()
        .dbs
        .get_mut(&key(STANDBY, &db_id(STANDBY)))
        .unwrap()
        .lag = lag;
}

#[tokio::test(start_paused = true)]
async fn promote_replica_makes_the_standby_the_writer_once_and_cannot_be_undone() {
    let fx = Fx::new();
    let cx = fx.cx();
    let s = fx.step(
        "rds.promote_replica",
        "{ role: standby, poll_interval: 100ms }",
    );
    assert!(matches!(
        s.step().reversibility(),
        Reversibility::Irreversible(w) if w.contains("cannot become a replica again")
    ));
    assert!(!is_writer(&fx, STANDBY));

    let obs = observe(&s, &cx).await;
    assert_eq!(obs.state, Satisfied::NotDone);
    assert!(obs.current.contains("lag 2s"), "{}", obs.current);
    assert_eq!(obs.prior["lag_s"], STANDBY_LAG);
    assert!(fx.mutations().is_empty(), "observe is read-only");

    let result = execute(&s, &cx, &obs).await;
    assert_eq!(
        fx.mutations_by_region(),
        ["rds:PromoteReadReplica@us-west-2"]
    );
    {
        // Under way: RDS unlinks the replica from its source at once, the instance settles later.
        let w = fx.world();
        assert_eq!(w.dbs[&key(STANDBY, &db_id(STANDBY))].db.status, "modifying");
        assert!(w.dbs[&key(PRIMARY, &db_id(PRIMARY))].db.replicas.is_empty());
    }
    // The replica's lag at promotion is the run's RPO, reported before the long verify.
    assert!(cx
        .take_reports()
        .contains(&StepReport::Measured(Measure::RpoSeconds, STANDBY_LAG)));
    verify(&s, &cx, &result).await;
    assert!(is_writer(&fx, STANDBY), "the standby is a writer now");
    assert!(
        is_writer(&fx, PRIMARY),
        "promotion does not touch the old primary"
    );
    assert_eq!(result["endpoint"], db_endpoint(STANDBY));
    assert_eq!(result["rpo_estimate_s"], STANDBY_LAG);

    // Done on a re-run, with the endpoint still there for `${steps.promote.endpoint}`.
    let again = assert_done(&fx, &s, &cx).await;
    assert_eq!(again.result["endpoint"], db_endpoint(STANDBY));
    assert_execute_again_changes_nothing(&fx, &s, &cx, &again).await;
    assert_eq!(fx.mutations(), ["rds:PromoteReadReplica"]);
}

/// ReplicaLag -1 with the lag known before it (`last`), on the standby's replica.
fn replication_stopped(fx: &Fx, last: Option<f64>) {
    let mut w = fx.world();
    let d = w.dbs.get_mut(&key(STANDBY, &db_id(STANDBY))).unwrap();
    d.lag = Some(-1.0);
    d.last_known_lag = last;
}

#[tokio::test(start_paused = true)]
async fn replication_stopped_is_never_caught_up_and_the_rpo_says_its_basis() {
    // Unplanned, the source gone: promoted on the last lag known before replication stopped,
    // recorded as that and not as a measured RPO, never as -1 or 0.
    let fx = Fx::new();
    let cx = fx.cx();
    replication_stopped(&fx, Some(3.0));
    let s = fx.step(
        "rds.promote_replica",
        "{ role: standby, poll_interval: 100ms }",
    );
    let obs = observe(&s, &cx).await;
    assert!(
        obs.current
            .contains("replication not active; last known lag 3s"),
        "{}",
        obs.current
    );
    assert_eq!(obs.prior["lag_s"], serde_json::Value::Null);
    let result = execute(&s, &cx, &obs).await;
    let reports = cx.take_reports();
    assert!(
        reports.contains(&StepReport::Measured(Measure::RpoLastKnownSeconds, 3.0)),
        "{reports:?}"
    );
    assert!(
        !reports
            .iter()
            .any(|r| matches!(r, StepReport::Measured(Measure::RpoSeconds, _))),
        "{reports:?}"
    );
    assert!(
        reports
            .iter()
            .any(|r| matches!(r, StepReport::Warning(w) if w.contains("RPO not measured"))),
        "{reports:?}"
    );
    assert_eq!(result["rpo_estimate_s"], serde_json::Value::Null);

    // Nothing known before it stopped: refused, the loss unknown; `force` promotes, saying so.
    let fx = Fx::new();
    let cx = fx.cx();
    replication_stopped(&fx, None);
    let s = fx.step("rds.promote_replica", "{ role: standby }");
    let Err(err) = s.step().observe(&cx).await else {
        panic!("a -1 with nothing known was not refused")
    };
    assert!(
        !err.is_retryable() && err.to_string().contains("not active"),
        "{err}"
    );
    assert!(fx.mutations().is_empty());
    let forced = fx.step(
        "rds.promote_replica",
        "{ role: standby, force: true, poll_interval: 100ms }",
    );
    let obs = observe(&forced, &cx).await;
    execute(&forced, &cx, &obs).await;
    assert!(cx
        .take_reports()
        .iter()
        .any(|r| matches!(r, StepReport::Warning(w) if w.contains("RPO unknown"))));

    // Planned (catch_up): -1 is never "caught up": nothing is promoted, however long it waits.
    let fx = Fx::new();
    let cx = fx.cx();
    replication_stopped(&fx, Some(0.0));
    let s = fx.step(
        "rds.promote_replica",
        "{ role: standby, catch_up: true, catch_up_timeout: 1m, poll_interval: 1s }",
    );
    let obs = observe(&s, &cx).await;
    let Err(err) = s.step().execute(&cx, &obs).await else {
        panic!("a -1 was taken as caught up")
    };
    assert!(err.to_string().contains("did not catch up"), "{err}");
    assert!(err.to_string().contains("not active"), "{err}");
    assert!(fx.mutations().is_empty(), "promoted on a -1");
}

#[tokio::test(start_paused = true)]
async fn promote_above_max_lag_is_refused_while_observing_and_changes_nothing() {
    let fx = Fx::new();
    let cx = fx.cx();
    let seeded = fx.snapshot();
    set_lag(&fx, Some(900.0));
    let s = fx.step(
        "rds.promote_replica",
        "{ role: standby, max_lag: 5m, poll_interval: 100ms }",
    );
    let err = s
        .step()
        .observe(&cx)
        .await
        .expect_err("lag 900s above 5m refuses");
    assert!(
        !err.is_retryable() && err.to_string().contains("lags 900s"),
        "{err}"
    );
    // The default max_lag is the environment's RPO target (5m): refused too.
    let default = fx.step(
        "rds.promote_replica",
        "{ role: standby, poll_interval: 100ms }",
    );
    assert!(default.step().observe(&cx).await.is_err());
    // No datapoint: the data loss is unknown; refused until one arrives (retryable).
    set_lag(&fx, None);
    let err = s
        .step()
        .observe(&cx)
        .await
        .expect_err("no lag data refuses");
    assert!(
        err.is_retryable() && err.to_string().contains("no ReplicaLag data"),
        "{err}"
    );
    assert!(fx.mutations().is_empty(), "{:?}", fx.mutations());
    set_lag(&fx, Some(STANDBY_LAG));
    assert_same(&fx.snapshot(), &seeded);

    // `force: true` promotes anyway, with a journaled warning and the lag as the RPO.
    set_lag(&fx, Some(900.0));
    let forced = fx.step(
        "rds.promote_replica",
        "{ role: standby, max_lag: 5m, force: true, poll_interval: 100ms }",
    );
    let (_, result) = apply(&fx, &forced, &cx).await;
    assert_eq!(result["rpo_estimate_s"], 900.0);
    let w = warnings(&cx);
    assert!(
        w.iter().any(|w| w.contains("above max_lag (force: true)")),
        "{w:?}"
    );
    assert!(is_writer(&fx, STANDBY));
    assert_eq!(fx.mutations(), ["rds:PromoteReadReplica"]);
}

#[tokio::test(start_paused = true)]
async fn fence_read_only_sets_read_only_in_the_primarys_own_group_and_undo_clears_it() {
    let fx = Fx::new();
    let cx = fx.cx();
    let seeded = fx.snapshot();
    let s = fx.step(
        "rds.fence_primary",
        "{ role: primary, method: read_only, poll_interval: 100ms }",
    );
    assert_eq!(s.step().reversibility(), Reversibility::Reversible);

    let (obs, result) = apply(&fx, &s, &cx).await;
    assert_eq!(
        obs.prior,
        json!({"status": "available", "parameter_group": PARAMS, "read_only": "0"})
    );
    assert_eq!(result["fenced"], true);
    assert_eq!(
        fx.mutations_by_region(),
        ["rds:ModifyDBParameterGroup@us-east-1"]
    );
    assert_eq!(fx.param(PRIMARY, PARAMS, "read_only").as_deref(), Some("1"));
    // Only the primary's group: the standby's group of the same name (another region) and
    // the unused read-only group are untouched.
    assert_eq!(fx.param(STANDBY, PARAMS, "read_only").as_deref(), Some("0"));
    {
        let w = fx.world();
        let d = &w.dbs[&key(PRIMARY, &db_id(PRIMARY))].db;
        assert_eq!(d.status, "available", "a read-only fence keeps it up");
        assert_eq!(
            d.parameter_apply_status.as_deref(),
            Some("in-sync"),
            "verify waited for the value to be in effect"
        );
    }

    let again = assert_done(&fx, &s, &cx).await;
    assert_execute_again_changes_nothing(&fx, &s, &cx, &again).await;

    undo(&s, &cx, &obs, &result).await;
    assert_eq!(fx.param(PRIMARY, PARAMS, "read_only").as_deref(), Some("0"));
    assert_eq!(
        fx.mutations(),
        ["rds:ModifyDBParameterGroup", "rds:ModifyDBParameterGroup"]
    );
    assert_same(&fx.snapshot(), &seeded);
}

#[tokio::test(start_paused = true)]
async fn fence_stop_is_refused_while_the_primary_has_a_replica_and_undone_by_a_start() {
    let fx = Fx::new();
    let cx = fx.cx();
    let stop = fx.step(
        "rds.fence_primary",
        "{ role: primary, method: stop, poll_interval: 100ms }",
    );
    let obs = observe(&stop, &cx).await;
    assert_eq!(obs.state, Satisfied::NotDone);
    let err = stop
        .step()
        .execute(&cx, &obs)
        .await
        .expect_err("RDS refuses to stop an instance with a read replica");
    assert!(err.to_string().contains("InvalidDBInstanceState"), "{err}");
    assert!(is_writer(&fx, PRIMARY), "refused: still available");

    // After the promotion unlinked the replica, stopping is allowed.
    let promote = fx.step(
        "rds.promote_replica",
        "{ role: standby, poll_interval: 100ms }",
    );
    apply(&fx, &promote, &cx).await;
    let (obs, result) = apply(&fx, &stop, &cx).await;
    assert_eq!(result["method"], "stop");
    // Verify accepts `stopping` as fenced (the stop is under way); it settles to `stopped`.
    let status = fx.world().dbs[&key(PRIMARY, &db_id(PRIMARY))]
        .db
        .status
        .clone();
    assert!(
        matches!(status.as_str(), "stopping" | "stopped"),
        "{status}"
    );
    let again = assert_done(&fx, &stop, &cx).await;
    assert_execute_again_changes_nothing(&fx, &stop, &cx, &again).await;
    assert_eq!(
        fx.world().dbs[&key(PRIMARY, &db_id(PRIMARY))].db.status,
        "stopped"
    );

    undo(&stop, &cx, &obs, &result).await;
    // StartDBInstance was asked; the instance comes back after a few reads.
    let rds = fx.aws.rds(PRIMARY).await;
    let mut status = String::new();
    for _ in 0..5 {
        status = rds.describe(&db_id(PRIMARY)).await.unwrap().status;
    }
    assert_eq!(status, "available");
    assert_eq!(
        fx.mutations(),
        [
            "rds:StopDBInstance",
            "rds:PromoteReadReplica",
            "rds:StopDBInstance",
            "rds:StartDBInstance"
        ],
        "the refused stop is a call too, but it changed nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn fence_of_a_hanging_primary_region_is_skipped_with_a_warning_within_reach_timeout() {
    let fx = Fx::new();
    let cx = fx.cx();
    let seeded = fx.snapshot();
    fx.aws
        .inject(Fault::new(FaultKind::Hang).service("rds").region(PRIMARY));
    let s = fx.step(
        "rds.fence_primary",
        "{ role: primary, reach_timeout: 15s, poll_interval: 100ms }",
    );
    let t = Instant::now();
    let obs = observe(&s, &cx).await;
    assert_eq!(
        t.elapsed(),
        Duration::from_secs(15),
        "bounded by reach_timeout"
    );
    assert_eq!(obs.state, Satisfied::NotDone);
    assert!(
        obs.prior["unreachable"]
            .as_str()
            .is_some_and(|w| w.contains("no answer within 15s")),
        "{obs:?}"
    );
    let result = execute(&s, &cx, &obs).await;
    assert_eq!(
        t.elapsed(),
        Duration::from_secs(15),
        "execute does not spend reach_timeout a second time"
    );
    assert_eq!(result["fenced"], false);
    assert_eq!(result["skipped"], "primary unreachable");
    let w = warnings(&cx);
    assert!(
        w.len() == 1 && w[0].starts_with("fence skipped: primary unreachable"),
        "{w:?}"
    );
    verify(&s, &cx, &result).await;
    let calls = fx.world().calls.len();
    undo(&s, &cx, &obs, &result).await;
    assert_eq!(fx.world().calls.len(), calls, "nothing to undo: no call");
    assert!(fx.mutations().is_empty());
    assert!(fx.world().calls.iter().all(|c| c.region == PRIMARY));
    assert_same(&fx.snapshot(), &seeded);
}

#[tokio::test(start_paused = true)]
async fn fence_reachability_timeouts_count_as_unreachable_denials_do_not() {
    let s_with = "{ role: primary, reach_timeout: 15s, poll_interval: 100ms }";
    // The SDK's own operation timeout (3s) ends the call first: unreachable after 3s.
    let fx = Fx::new();
    fx.aws.inject(
        Fault::new(FaultKind::Timeout(Duration::from_secs(3)))
            .service("rds")
            .region(PRIMARY),
    );
    let (s, cx) = (fx.step("rds.fence_primary", s_with), fx.cx());
    let t = Instant::now();
    let obs = observe(&s, &cx).await;
    assert_eq!(t.elapsed(), Duration::from_secs(3));
    assert!(
        obs.prior["unreachable"]
            .as_str()
            .is_some_and(|w| w.contains("timed out")),
        "{obs:?}"
    );
    // A call slower than reach_timeout is cut at reach_timeout.
    let fx = Fx::new();
    fx.aws.inject(
        Fault::new(FaultKind::Timeout(Duration::from_secs(60)))
            .service("rds")
            .region(PRIMARY),
    );
    let (s, cx) = (fx.step("rds.fence_primary", s_with), fx.cx());
    let t = Instant::now();
    observe(&s, &cx).await;
    assert_eq!(t.elapsed(), Duration::from_secs(15));
    // A 503 from the region is unreachable too.
    let fx = Fx::new();
    fx.aws.inject(
        Fault::new(FaultKind::Unavailable)
            .service("rds")
            .region(PRIMARY),
    );
    let (s, cx) = (fx.step("rds.fence_primary", s_with), fx.cx());
    let obs = observe(&s, &cx).await;
    assert!(obs.prior.get("unreachable").is_some(), "{obs:?}");
    // AccessDenied is an answer, not a dark region: the fence fails instead of being skipped.
    let fx = Fx::new();
    fx.aws
        .inject(Fault::new(FaultKind::Denied).service("rds").region(PRIMARY));
    let (s, cx) = (fx.step("rds.fence_primary", s_with), fx.cx());
    let err = s.step().observe(&cx).await.expect_err("denied");
    assert!(
        !err.is_retryable() && err.to_string().contains("AccessDenied"),
        "{err}"
    );
    assert!(warnings(&cx).is_empty());
}

#[tokio::test(start_paused = true)]
async fn promote_waits_out_a_replica_that_is_backing_up_and_then_promotes_it_once() {
    let fx = Fx::new();
    let cx = fx.cx();
    {
        // The replica's automated backup is running: PromoteReadReplica would be refused
        // (InvalidDBInstanceState; API reference: "a read replica cannot be promoted ... when
        // it is in the backing-up status"). It ends after three reads.
        let mut w = fx.world();
        let d = w.dbs.get_mut(&key(STANDBY, &db_id(STANDBY))).unwrap();
        d.db.status = "backing-up".into();
        d.pending = Some((3, "available".into(), false));
    }
    let s = fx.step(
        "rds.promote_replica",
        "{ role: standby, poll_interval: 100ms }",
    );
    let obs = observe(&s, &cx).await;
    assert_eq!(obs.state, Satisfied::NotDone);
    assert!(obs.current.contains("backing-up"), "{}", obs.current);
    let result = execute(&s, &cx, &obs).await;
    // Waited, then promoted once, with the lag measured once it was available.
    assert_eq!(fx.mutations(), ["rds:PromoteReadReplica"]);
    assert!(cx
        .take_reports()
        .contains(&StepReport::Measured(Measure::RpoSeconds, STANDBY_LAG)));
    verify(&s, &cx, &result).await;
    assert!(is_writer(&fx, STANDBY));
}
