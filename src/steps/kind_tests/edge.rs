//! `cloudfront.promote_origin` and `backup.copy_recovery_point` against the fake.

use serde_json::json;

use super::*;

#[tokio::test(start_paused = true)]
async fn promote_origin_puts_the_standby_origin_first_and_undo_restores_the_order() {
    let fx = Fx::new();
    let cx = fx.cx();
    let seeded = fx.snapshot();
    let s = fx.step(
        "cloudfront.promote_origin",
        "{ role: standby, poll_interval: 100ms }",
    );
    assert_eq!(fx.origin_order(), [ORIGIN_PRIMARY, ORIGIN_STANDBY]);

    let (obs, result) = apply(&fx, &s, &cx).await;
    assert_eq!(
        obs.prior,
        json!({"members": [ORIGIN_PRIMARY, ORIGIN_STANDBY]})
    );
    assert_eq!(result["order"], json!([ORIGIN_STANDBY, ORIGIN_PRIMARY]));
    assert_eq!(fx.mutations(), ["cloudfront:UpdateDistribution"]);
    assert_eq!(fx.origin_order(), [ORIGIN_STANDBY, ORIGIN_PRIMARY]);
    {
        let w = fx.world();
        let d = &w.distributions[DISTRIBUTION];
        assert_eq!(d.deploying, 0, "verify waited until Deployed");
        assert_eq!(result["etag"], format!("E{}", d.etag));
    }

    let again = assert_done(&fx, &s, &cx).await;
    assert_eq!(again.result["first_origin"], ORIGIN_STANDBY);
    assert_execute_again_changes_nothing(&fx, &s, &cx, &again).await;

    undo(&s, &cx, &obs, &result).await;
    assert_eq!(fx.origin_order(), [ORIGIN_PRIMARY, ORIGIN_STANDBY]);
    assert_eq!(
        fx.world().distributions[DISTRIBUTION].deploying,
        0,
        "undo waited until Deployed"
    );
    assert_eq!(
        fx.mutations(),
        [
            "cloudfront:UpdateDistribution",
            "cloudfront:UpdateDistribution"
        ]
    );
    assert_same(&fx.snapshot(), &seeded);

    // The primary's origin is already first: nothing to do.
    let back = fx.step("cloudfront.promote_origin", "{ role: primary }");
    assert_done(&fx, &back, &cx).await;
}

#[tokio::test(start_paused = true)]
async fn copy_recovery_point_copies_the_newest_backup_once_and_keeps_it() {
    let fx = Fx::new();
    let cx = fx.cx();
    let s = fx.step(
        "backup.copy_recovery_point",
        &format!(
            "{{ from: primary, to: standby, iam_role_arn: '{ROLE_ARN}', poll_interval: 100ms }}"
        ),
    );
    assert_eq!(s.step().reversibility(), Reversibility::NothingToUndo);
    let newest = image_arn(PRIMARY, AMI_BACKUP_NEW);
    let copied_ami = format!("{AMI_BACKUP_NEW}-copy");

    // Yesterday's point was copied (the seeded job); today's is not yet.
    let obs = observe(&s, &cx).await;
    assert_eq!(obs.state, Satisfied::NotDone);
    assert!(
        obs.current.contains(&newest) && obs.current.contains("not copied yet"),
        "{}",
        obs.current
    );
    let result = execute(&s, &cx, &obs).await;
    assert_eq!(
        fx.mutations_by_region(),
        ["backup:StartCopyJob@us-east-1"],
        "the copy is started in the source region"
    );
    {
        let w = fx.world();
        let job = w.copy_jobs.last().unwrap();
        assert_eq!(result["copy_job_id"], job.job.id);
        assert_eq!(job.job.state, "RUNNING");
        assert_eq!(job.job.source_recovery_point_arn.as_deref(), Some(&*newest));
        assert_eq!(
            job.job.destination_vault_arn.as_deref(),
            Some(&*w.vaults[&key(STANDBY, &vault(STANDBY))].0)
        );
    }
    verify(&s, &cx, &result).await;
    {
        let w = fx.world();
        assert_eq!(w.copy_jobs.last().unwrap().job.state, "COMPLETED");
        let (_, points) = &w.vaults[&key(STANDBY, &vault(STANDBY))];
        assert!(
            points
                .iter()
                .any(|p| p.arn == image_arn(STANDBY, &copied_ami) && p.status == "COMPLETED"),
            "{points:?}"
        );
        assert!(w.images.contains_key(&key(STANDBY, &copied_ami)));
    }

    let again = assert_done(&fx, &s, &cx).await;
    assert_eq!(
        again.result["destination_recovery_point_arn"],
        image_arn(STANDBY, &copied_ami)
    );
    assert_eq!(fx.mutations(), ["backup:StartCopyJob"]);

    // The copy is what the standby launches from next: the newest AMI in its vault.
    let latest = fx.step("ec2.latest_image", "{ role: standby }");
    let obs = observe(&latest, &cx).await;
    assert_eq!(execute(&latest, &cx, &obs).await["image_id"], copied_ami);
}

#[tokio::test(start_paused = true)]
async fn copy_recovery_point_refuses_an_empty_source_vault() {
    let fx = Fx::new();
    let cx = fx.cx();
    fx.world()
        .vaults
        .get_mut(&key(PRIMARY, &vault(PRIMARY)))
        .unwrap()
        .1
        .clear();
    let s = fx.step(
        "backup.copy_recovery_point",
        &format!("{{ iam_role_arn: '{ROLE_ARN}' }}"),
    );
    let err = s.step().observe(&cx).await.expect_err("nothing to copy");
    assert!(
        !err.is_retryable() && err.to_string().contains("no completed recovery point"),
        "{err}"
    );
    assert!(fx.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn copy_recovery_point_executed_again_while_its_copy_runs_waits_for_that_copy() {
    let fx = Fx::new();
    let cx = fx.cx();
    let s = fx.step(
        "backup.copy_recovery_point",
        &format!("{{ iam_role_arn: '{ROLE_ARN}', poll_interval: 100ms }}"),
    );
    let obs = observe(&s, &cx).await;
    let first = execute(&s, &cx, &obs).await;
    // drctl dies before verify; on resume the copy is still running: observe cannot call it
    // done, and executing again must not start a second copy of the same point.
    let obs = observe(&s, &cx).await;
    assert_eq!(obs.state, Satisfied::NotDone);
    assert!(obs.current.contains("under way"), "{}", obs.current);
    let second = execute(&s, &cx, &obs).await;
    assert_eq!(second["copy_job_id"], first["copy_job_id"]);
    assert_eq!(fx.mutations(), ["backup:StartCopyJob"]);
    verify(&s, &cx, &second).await;
    assert_done(&fx, &s, &cx).await;
    assert_eq!(
        fx.world().copy_jobs.len(),
        2,
        "the seeded copy and this one"
    );
}

#[tokio::test(start_paused = true)]
async fn copy_recovery_point_stops_waiting_on_a_partial_copy() {
    let fx = Fx::new();
    let cx = fx.cx();
    let s = fx.step(
        "backup.copy_recovery_point",
        &format!("{{ iam_role_arn: '{ROLE_ARN}', poll_interval: 100ms }}"),
    );
    let obs = observe(&s, &cx).await;
    let result = execute(&s, &cx, &obs).await;
    // A composite copy some of whose children failed ends PARTIAL, a final state (AWS Backup
    // API reference, "CopyJob"): the wait ends with an error that says so, not at the timeout.
    fx.world().copy_jobs.last_mut().unwrap().job.state = "PARTIAL".into();
    let err = s
        .step()
        .verify(&cx, &result)
        .await
        .expect_err("a PARTIAL copy is not a copy");
    assert!(
        !err.is_retryable() && err.to_string().contains("PARTIAL"),
        "{err}"
    );
    assert_eq!(fx.mutations(), ["backup:StartCopyJob"]);
}
