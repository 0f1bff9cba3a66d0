//! `route53.upsert_record`, `route53.force_failover` and `route53.verify_failover` against the
//! fake.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::*;

#[tokio::test(start_paused = true)]
async fn upsert_record_points_the_db_cname_at_the_promoted_writer_and_undo_restores_it() {
    let fx = Fx::new();
    let cx = fx.cx();
    let seeded = fx.snapshot();
    let zone = private_zone(STANDBY);
    fx.set_output("promote", json!({ "endpoint": db_endpoint(STANDBY) }));
    let s = fx.step_after(
        "route53.upsert_record",
        "{ role: standby, value: '${steps.promote.endpoint}', poll_interval: 100ms }",
        &["promote"],
    );
    assert_eq!(
        fx.record(&zone, DB_RECORD, "CNAME"),
        Some(vec![db_endpoint(PRIMARY)])
    );

    let (obs, result) = apply(&fx, &s, &cx).await;
    assert_eq!(obs.prior["zone_id"], zone);
    assert_eq!(obs.prior["record"]["values"], json!([db_endpoint(PRIMARY)]));
    assert_eq!(fx.mutations(), ["route53:ChangeResourceRecordSets"]);
    assert_eq!(
        fx.record(&zone, DB_RECORD, "CNAME"),
        Some(vec![db_endpoint(STANDBY)])
    );
    // The primary region's zone has a record of the same name; it is not touched.
    assert_eq!(
        fx.record(&private_zone(PRIMARY), DB_RECORD, "CNAME"),
        Some(vec![db_endpoint(PRIMARY)])
    );
    // Verify waited until Route 53 reported the change INSYNC.
    let change = result["change_id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(fx.world().changes[change], 0, "{result}");

    // A re-run observes Done and changes nothing. (Execute itself UPSERTs unconditionally:
    // same value, so harmless; the engine never calls it once observe says Done.)
    assert_done(&fx, &s, &cx).await;

    undo(&s, &cx, &obs, &result).await;
    assert_eq!(
        fx.record(&zone, DB_RECORD, "CNAME"),
        Some(vec![db_endpoint(PRIMARY)])
    );
    assert_eq!(
        fx.mutations(),
        [
            "route53:ChangeResourceRecordSets",
            "route53:ChangeResourceRecordSets"
        ]
    );
    assert_same(&fx.snapshot(), &seeded);
}

#[tokio::test(start_paused = true)]
async fn upsert_of_a_new_record_is_deleted_by_undo() {
    let fx = Fx::new();
    let cx = fx.cx();
    let seeded = fx.snapshot();
    let zone = private_zone(STANDBY);
    let s = fx.step(
        "route53.upsert_record",
        "{ role: standby, name: replica.shop.internal., value: replica.example.internal, ttl: 30, poll_interval: 100ms }",
    );
    let (obs, result) = apply(&fx, &s, &cx).await;
    assert_eq!(obs.prior["record"], Value::Null);
    assert_eq!(
        fx.record(&zone, "replica.shop.internal.", "CNAME"),
        Some(vec!["replica.example.internal".to_string()])
    );
    assert_done(&fx, &s, &cx).await;
    undo(&s, &cx, &obs, &result).await;
    assert_eq!(fx.record(&zone, "replica.shop.internal.", "CNAME"), None);
    assert_same(&fx.snapshot(), &seeded);
    // Undone twice (a rollback resumed after a crash): nothing left to delete, no call.
    let before = fx.mutations().len();
    undo(&s, &cx, &obs, &result).await;
    assert_eq!(fx.mutations().len(), before);
}

#[tokio::test(start_paused = true)]
async fn force_failover_inverts_the_primary_check_so_route53_answers_the_secondary() {
    let fx = Fx::new();
    let cx = fx.cx();
    let seeded = fx.snapshot();
    let s = fx.step("route53.force_failover", "{ poll_interval: 100ms }");
    assert_eq!(fx.api_answer(), [alb_dns("backend", PRIMARY)]);

    let (obs, result) = apply(&fx, &s, &cx).await;
    assert_eq!(
        obs.prior,
        json!({"health_check_id": HEALTH_CHECK, "inverted": false})
    );
    assert_eq!(result["inverted"], true);
    assert_eq!(fx.mutations(), ["route53:UpdateHealthCheck"]);
    assert!(fx.world().health_checks[HEALTH_CHECK].check.inverted);
    assert_eq!(fx.api_answer(), [alb_dns("backend", STANDBY)]);

    assert_done(&fx, &s, &cx).await;
    assert!(warnings(&cx).is_empty(), "our own inversion is no news");

    undo(&s, &cx, &obs, &result).await;
    assert!(!fx.world().health_checks[HEALTH_CHECK].check.inverted);
    assert_eq!(fx.api_answer(), [alb_dns("backend", PRIMARY)]);
    assert_eq!(
        fx.mutations(),
        ["route53:UpdateHealthCheck", "route53:UpdateHealthCheck"]
    );
    assert_same(&fx.snapshot(), &seeded);
}

#[tokio::test(start_paused = true)]
async fn force_failover_never_inverts_a_check_whose_target_is_already_down() {
    let fx = Fx::new();
    let cx = fx.cx();
    let s = fx.step("route53.force_failover", "{ poll_interval: 100ms }");
    // The primary is down: Route 53 already answers the SECONDARY. Inverting now would make
    // the dead primary "healthy" and send users back to it.
    fx.aws.set_endpoint_up(HEALTH_CHECK, false);
    assert_eq!(fx.api_answer(), [alb_dns("backend", STANDBY)]);
    let obs = observe(&s, &cx).await;
    assert_eq!(obs.state, Satisfied::Done);
    let w = warnings(&cx);
    assert!(
        w.len() == 1 && w[0].contains("already reports the primary unhealthy"),
        "{w:?}"
    );
    assert!(fx.mutations().is_empty());

    // Inverted earlier, then the primary died: inverted + down reads healthy, so Route 53
    // answers the dead primary. Execute un-inverts; undo inverts again.
    fx.world()
        .health_checks
        .get_mut(HEALTH_CHECK)
        .unwrap()
        .check
        .inverted = true;
    assert_eq!(fx.api_answer(), [alb_dns("backend", PRIMARY)]);
    let (obs, result) = apply(&fx, &s, &cx).await;
    assert_eq!(result["inverted"], false);
    assert_eq!(fx.api_answer(), [alb_dns("backend", STANDBY)]);
    assert_done(&fx, &s, &cx).await;
    undo(&s, &cx, &obs, &result).await;
    assert!(fx.world().health_checks[HEALTH_CHECK].check.inverted);
}

#[tokio::test(start_paused = true)]
async fn verify_failover_waits_for_the_standby_answer_and_changes_nothing() {
    let fx = Fx::new();
    let cx = fx.cx();
    let s = fx.step(
        "route53.verify_failover",
        "{ expect: standby, max_ttl: 60, poll_interval: 1s }",
    );
    assert_eq!(s.step().reversibility(), Reversibility::NothingToUndo);
    // Read-only: observe never claims Done, the check runs each time.
    let obs = observe(&s, &cx).await;
    assert_eq!(obs.state, Satisfied::NotDone);
    assert!(
        obs.current.contains(&alb_dns("backend", PRIMARY)),
        "{}",
        obs.current
    );
    // Still answering the primary: it keeps waiting (here cut after 30s).
    assert!(
        tokio::time::timeout(Duration::from_secs(30), s.step().execute(&cx, &obs))
            .await
            .is_err(),
        "answered standby before the failover"
    );
    // The primary's check fails 10s into the next wait: the answer follows, and so does verify.
    let aws = fx.aws.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        aws.set_endpoint_up(HEALTH_CHECK, false);
    });
    let t = Instant::now();
    let result = execute(&s, &cx, &obs).await;
    assert!(
        (Duration::from_secs(10)..=Duration::from_secs(11)).contains(&t.elapsed()),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(result["expected"], alb_dns("backend", STANDBY));
    assert_eq!(result["answer"], json!([alb_dns("backend", STANDBY)]));
    assert!(fx.mutations().is_empty(), "{:?}", fx.mutations());

    // Expecting the primary (a failback check) on the seeded world passes at once.
    let fx = Fx::new();
    let cx = fx.cx();
    let back = fx.step("route53.verify_failover", "{ expect: primary }");
    let obs = observe(&back, &cx).await;
    let t = Instant::now();
    let result = execute(&back, &cx, &obs).await;
    assert_eq!(t.elapsed(), Duration::ZERO);
    assert_eq!(result["expected"], alb_dns("backend", PRIMARY));
}

#[tokio::test(start_paused = true)]
async fn verify_failover_refuses_records_that_cannot_fail_over() {
    let fx = Fx::new();
    let cx = fx.cx();
    // The PRIMARY record lost its health check: Route 53 would never fail over.
    for r in fx.world().zones.get_mut(PUBLIC_ZONE).unwrap() {
        r.health_check_id = None;
    }
    let s = fx.step("route53.verify_failover", "{ expect: standby }");
    let obs = observe(&s, &cx).await;
    assert!(
        obs.current
            .contains("the PRIMARY record has no health check"),
        "{}",
        obs.current
    );
    let err = s.step().execute(&cx, &obs).await.expect_err("refused");
    assert!(
        !err.is_retryable() && err.to_string().contains("not set up for failover"),
        "{err}"
    );
}
