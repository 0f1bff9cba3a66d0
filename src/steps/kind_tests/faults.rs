//! Injected failures through the engine: throttling is retryable and the engine's retry
//! succeeds (one test per service family), and hung or slow calls are bounded by the step's
//! or the engine's timeouts, in paused time.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::*;
use crate::aws::fake::{Fault, FaultKind};
use crate::engine::RunEnd;

/// The first error of observe -> execute -> verify.
async fn first_error(s: &StepSpec, cx: &StepCx) -> StepError {
    let obs = match s.step().observe(cx).await {
        Ok(o) => o,
        Err(e) => return e,
    };
    let r = match s.step().execute(cx, &obs).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    match s.step().verify(cx, &r).await {
        Ok(()) => panic!("{} did not fail", s.kind()),
        Err(e) => e,
    }
}

fn throttle(service: &'static str, operation: &'static str, region: &str) -> Fault {
    Fault::new(FaultKind::Throttle)
        .service(service)
        .operation(operation)
        .region(region)
        .times(1)
}

/// A step of `kind` whose `service` `operation` in `region` is throttled once: the step's
/// error is retryable and names the call, the engine retries after its backoff, and the
/// call that finally changes something happens exactly once. Returns the fixture of the
/// engine run, for the caller's assertions on the world.
async fn throttled_once(
    kind: &str,
    with: &str,
    service: &'static str,
    operation: &'static str,
    region: &str,
) -> Fx {
    let fx = Fx::new();
    let seeded = fx.snapshot();
    let (s, cx) = (fx.step(kind, with), fx.cx());
    fx.aws.inject(throttle(service, operation, region));
    let err = first_error(&s, &cx).await;
    assert!(err.is_retryable(), "{kind}: {err}");
    assert!(
        err.to_string().contains(&format!(
            "{service} {operation} in {region} failed: Rate exceeded [ThrottlingException]"
        )),
        "{kind}: {err}"
    );
    assert!(fx.mutations().is_empty(), "{kind}: {:?}", fx.mutations());
    assert_same(&fx.snapshot(), &seeded);

    let fx = Fx::new();
    fx.aws.inject(throttle(service, operation, region));
    let e = engine(
        &fx,
        plan(
            &fx,
            &one_step(kind, with, "    retries: 2\n    backoff: 1s\n"),
        ),
        auto_approve(),
    )
    .await;
    let t = Instant::now();
    let end = e.clone().run().await.unwrap();
    assert!(matches!(end, RunEnd::Succeeded { .. }), "{kind}: {end:?}");
    let failed = failures(&e, "s").await;
    assert_eq!(failed.len(), 1, "{kind}: {failed:?}");
    assert!(
        failed[0].0.contains("ThrottlingException") && failed[0].1.is_some(),
        "{kind}: {failed:?}"
    );
    // Backoff 1s with +-25% jitter, then the retry.
    assert!(
        t.elapsed() >= Duration::from_millis(750),
        "{kind}: {:?}",
        t.elapsed()
    );
    let faulted: Vec<_> = fx
        .world()
        .calls
        .iter()
        .filter(|c| c.faulted)
        .cloned()
        .collect();
    assert_eq!(faulted.len(), 1, "{kind}: {faulted:?}");
    assert_eq!(
        (faulted[0].service, faulted[0].operation),
        (service, operation)
    );
    if faulted[0].mutating {
        let n = fx
            .mutations()
            .iter()
            .filter(|m| **m == format!("{service}:{operation}"))
            .count();
        assert_eq!(n, 1, "{kind}: {:?}", fx.mutations());
    }
    fx
}

#[tokio::test(start_paused = true)]
async fn rds_throttled_promotion_and_fence_are_retried_to_success() {
    let fx = throttled_once(
        "rds.promote_replica",
        "{ role: standby, poll_interval: 100ms }",
        "rds",
        "PromoteReadReplica",
        STANDBY,
    )
    .await;
    let promoted = fx.world().dbs[&key(STANDBY, &db_id(STANDBY))]
        .db
        .replica_source
        .is_none();
    assert!(promoted);

    let fx = throttled_once(
        "rds.fence_primary",
        "{ role: primary, poll_interval: 100ms }",
        "rds",
        "ModifyDBParameterGroup",
        PRIMARY,
    )
    .await;
    assert_eq!(fx.param(PRIMARY, PARAMS, "read_only").as_deref(), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn cloudwatch_throttled_lag_read_is_retried_before_promoting() {
    let fx = throttled_once(
        "rds.promote_replica",
        "{ role: standby, poll_interval: 100ms }",
        "cloudwatch",
        "GetMetricStatistics",
        STANDBY,
    )
    .await;
    assert_eq!(fx.mutations(), ["rds:PromoteReadReplica"]);
}

#[tokio::test(start_paused = true)]
async fn route53_throttled_changes_are_retried_to_success() {
    let fx = throttled_once(
        "route53.upsert_record",
        "{ role: standby, value: new-writer.example.internal, poll_interval: 100ms }",
        "route53",
        "ChangeResourceRecordSets",
        PRIMARY,
    )
    .await;
    assert_eq!(
        fx.record(&private_zone(STANDBY), DB_RECORD, "CNAME"),
        Some(vec!["new-writer.example.internal".to_string()])
    );

    let fx = throttled_once(
        "route53.force_failover",
        "{ poll_interval: 100ms }",
        "route53",
        "UpdateHealthCheck",
        PRIMARY,
    )
    .await;
    assert_eq!(fx.api_answer(), [alb_dns("backend", STANDBY)]);
}

#[tokio::test(start_paused = true)]
async fn cloudfront_throttled_update_is_retried_to_success() {
    let fx = throttled_once(
        "cloudfront.promote_origin",
        "{ role: standby, poll_interval: 100ms }",
        "cloudfront",
        "UpdateDistribution",
        PRIMARY,
    )
    .await;
    assert_eq!(fx.origin_order(), [ORIGIN_STANDBY, ORIGIN_PRIMARY]);
}

#[tokio::test(start_paused = true)]
async fn backup_throttled_copy_is_retried_to_success() {
    let fx = throttled_once(
        "backup.copy_recovery_point",
        &format!("{{ iam_role_arn: '{ROLE_ARN}', poll_interval: 100ms }}"),
        "backup",
        "StartCopyJob",
        PRIMARY,
    )
    .await;
    let w = fx.world();
    let jobs: Vec<_> = w
        .copy_jobs
        .iter()
        .filter(|c| c.job.source_recovery_point_arn == Some(image_arn(PRIMARY, AMI_BACKUP_NEW)))
        .collect();
    assert!(
        jobs.len() == 1 && jobs[0].job.state == "COMPLETED",
        "{jobs:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn ec2_throttled_template_version_is_retried_to_success() {
    let fx = throttled_once(
        "ec2.update_launch_template",
        &format!(
            "{{ role: standby, asg: backend, image_id: {AMI_COPY_NEW}, poll_interval: 100ms }}"
        ),
        "ec2",
        "CreateLaunchTemplateVersion",
        STANDBY,
    )
    .await;
    let lt = lt_id("backend", STANDBY);
    assert_eq!(fx.template_image(STANDBY, &lt), AMI_COPY_NEW);
    assert_eq!(
        fx.world().templates[&key(STANDBY, &lt)].versions.len(),
        2,
        "one new version, not two"
    );
}

#[tokio::test(start_paused = true)]
async fn autoscaling_throttled_update_is_retried_to_success() {
    let fx = throttled_once(
        "asg.scale",
        "{ role: standby, asg: frontend, poll_interval: 100ms }",
        "autoscaling",
        "UpdateAutoScalingGroup",
        STANDBY,
    )
    .await;
    assert_eq!(
        fx.sizes(STANDBY, &asg_name("frontend", STANDBY)),
        (2, 2, 4, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn elbv2_throttled_health_read_is_retried_to_success() {
    let fx = throttled_once(
        "elbv2.wait_healthy",
        "{ role: standby, min_healthy: 1, poll_interval: 100ms }",
        "elbv2",
        "DescribeTargetHealth",
        STANDBY,
    )
    .await;
    assert!(fx.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_hung_call_is_ended_by_the_step_timeout_and_the_retry_succeeds() {
    let fx = Fx::new();
    fx.aws.inject(
        Fault::new(FaultKind::Hang)
            .service("autoscaling")
            .operation("UpdateAutoScalingGroup")
            .times(1),
    );
    let yaml = one_step(
        "asg.scale",
        "{ role: standby, asg: frontend, poll_interval: 100ms }",
        "    timeout: 1m\n    retries: 1\n    backoff: 1s\n",
    );
    let e = engine(&fx, plan(&fx, &yaml), auto_approve()).await;
    let t = Instant::now();
    let end = e.clone().run().await.unwrap();
    assert!(matches!(end, RunEnd::Succeeded { .. }), "{end:?}");
    let failed = failures(&e, "s").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].0.contains("timed out after 1m"), "{failed:?}");
    // The timeout, the journaled backoff (whole milliseconds), and an instant retry.
    let expected = Duration::from_secs(60) + Duration::from_millis(failed[0].1.unwrap());
    assert!(
        t.elapsed().abs_diff(expected) <= Duration::from_millis(2),
        "{:?} vs {expected:?}",
        t.elapsed()
    );
    assert_eq!(
        fx.sizes(STANDBY, &asg_name("frontend", STANDBY)),
        (2, 2, 4, 2)
    );
    assert_eq!(fx.mutations(), ["autoscaling:UpdateAutoScalingGroup"]);
}

#[tokio::test(start_paused = true)]
async fn a_region_that_never_answers_aborts_the_run_after_every_attempt_timed_out() {
    let fx = Fx::new();
    let seeded = fx.snapshot();
    fx.aws
        .inject(Fault::new(FaultKind::Hang).service("cloudfront"));
    let yaml = one_step(
        "cloudfront.promote_origin",
        "{ role: standby }",
        "    timeout: 2m\n    retries: 2\n    backoff: 10s\n    on_failure: abort\n",
    );
    let e = engine(&fx, plan(&fx, &yaml), auto_approve()).await;
    let t = Instant::now();
    let end = e.clone().run().await.unwrap();
    assert!(
        matches!(&end, RunEnd::Aborted { step, error } if step == "s" && error.contains("timed out after 2m")),
        "{end:?}"
    );
    let failed = failures(&e, "s").await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    let backoffs: u64 = failed.iter().filter_map(|f| f.1).sum();
    let expected = Duration::from_secs(3 * 120) + Duration::from_millis(backoffs);
    assert!(
        t.elapsed().abs_diff(expected) <= Duration::from_millis(3),
        "{:?} vs {expected:?}",
        t.elapsed()
    );
    assert!(fx.mutations().is_empty());
    assert_same(&fx.snapshot(), &seeded);
}

#[tokio::test(start_paused = true)]
async fn an_operation_timeout_fails_the_attempt_retryably_and_the_retry_succeeds() {
    let fx = Fx::new();
    let fault = Fault::new(FaultKind::Timeout(Duration::from_secs(30)))
        .service("ec2")
        .operation("CreateLaunchTemplateVersion")
        .times(1);
    let with = format!(
        "{{ role: standby, asg: frontend, image_id: {AMI_COPY_NEW}, poll_interval: 100ms }}"
    );
    // The step's error after the SDK's operation timeout: retryable, naming the call.
    fx.aws.inject(fault.clone());
    let (s, cx) = (fx.step("ec2.update_launch_template", &with), fx.cx());
    let t = Instant::now();
    let err = first_error(&s, &cx).await;
    assert_eq!(t.elapsed(), Duration::from_secs(30));
    assert!(
        err.is_retryable() && err.to_string().contains("CreateLaunchTemplateVersion"),
        "{err}"
    );

    let fx = Fx::new();
    fx.aws.inject(fault);
    let yaml = one_step(
        "ec2.update_launch_template",
        &with,
        "    timeout: 2m\n    retries: 1\n    backoff: 1s\n",
    );
    let e = engine(&fx, plan(&fx, &yaml), auto_approve()).await;
    let end = e.clone().run().await.unwrap();
    assert!(matches!(end, RunEnd::Succeeded { .. }), "{end:?}");
    assert_eq!(failures(&e, "s").await.len(), 1);
    assert_eq!(
        fx.template_image(STANDBY, &lt_id("frontend", STANDBY)),
        AMI_COPY_NEW
    );
    assert_eq!(
        fx.mutations(),
        [
            "ec2:CreateLaunchTemplateVersion",
            "ec2:ModifyLaunchTemplate"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_dark_primary_region_is_journaled_as_a_warning_and_the_fence_succeeds() {
    let fx = Fx::new();
    fx.aws
        .inject(Fault::new(FaultKind::Hang).service("rds").region(PRIMARY));
    let yaml = one_step(
        "rds.fence_primary",
        "{ role: primary, reach_timeout: 15s }",
        "    timeout: 2m\n",
    );
    let e = engine(&fx, plan(&fx, &yaml), auto_approve()).await;
    let t = Instant::now();
    let end = e.clone().run().await.unwrap();
    assert!(matches!(end, RunEnd::Succeeded { .. }), "{end:?}");
    assert_eq!(t.elapsed(), Duration::from_secs(15));
    let recs = e.records().await;
    let warned: Vec<&String> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::Warning {
                step: Some(s),
                message,
            } if s == "s" => Some(message),
            _ => None,
        })
        .collect();
    assert!(
        warned.len() == 1 && warned[0].contains("fence skipped: primary unreachable"),
        "{warned:?}"
    );
    let result = recs.iter().find_map(|r| match &r.event {
        Event::StepSucceeded { step, result, .. } if step == "s" => Some(result.clone()),
        _ => None,
    });
    assert_eq!(result.map(|r| r["fenced"].clone()), Some(json!(false)));
    assert!(fx.mutations().is_empty());
}
