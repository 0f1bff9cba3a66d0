//! `ec2.latest_image`, `ec2.update_launch_template`, `asg.scale` and `elbv2.wait_healthy`
//! against the fake.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::*;
use crate::aws::elbv2::TargetHealth;

#[tokio::test(start_paused = true)]
async fn latest_image_finds_the_newest_available_ami_in_the_standby_vault_read_only() {
    let fx = Fx::new();
    let cx = fx.cx();
    let s = fx.step("ec2.latest_image", "{ role: standby }");
    assert_eq!(s.step().reversibility(), Reversibility::NothingToUndo);
    let obs = observe(&s, &cx).await;
    assert_eq!(obs.state, Satisfied::NotDone, "a lookup runs every time");
    assert!(obs.current.contains(AMI_COPY_NEW), "{}", obs.current);
    let r = execute(&s, &cx, &obs).await;
    assert_eq!(r["image_id"], AMI_COPY_NEW);
    assert_eq!(r["created"], "2024-05-01T06:00:00Z");

    // Newer, but not usable: a recovery point still being written, an AMI still pending.
    fx.aws.add_image(
        STANDBY,
        "ami-0usw2partial0000001",
        "2024-05-03T00:00:00Z",
        Some(&vault(STANDBY)),
    );
    fx.aws.add_image(
        STANDBY,
        "ami-0usw2pending0000001",
        "2024-05-04T00:00:00Z",
        Some(&vault(STANDBY)),
    );
    {
        let mut w = fx.world();
        let points = &mut w.vaults.get_mut(&key(STANDBY, &vault(STANDBY))).unwrap().1;
        let partial = image_arn(STANDBY, "ami-0usw2partial0000001");
        points.iter_mut().find(|p| p.arn == partial).unwrap().status = "PARTIAL".into();
        w.images
            .get_mut(&key(STANDBY, "ami-0usw2pending0000001"))
            .unwrap()
            .0
            .state = "pending".into();
    }
    assert_eq!(execute(&s, &cx, &obs).await["image_id"], AMI_COPY_NEW);

    // By tag instead of vault.
    fx.aws.add_image(
        STANDBY,
        "ami-0usw2golden00000001",
        "2024-03-01T00:00:00Z",
        None,
    );
    fx.aws
        .tag_image(STANDBY, "ami-0usw2golden00000001", "image", "golden");
    let tagged = fx.step("ec2.latest_image", "{ role: standby, tag: image=golden }");
    let obs = observe(&tagged, &cx).await;
    assert_eq!(
        execute(&tagged, &cx, &obs).await["image_id"],
        "ami-0usw2golden00000001"
    );

    // Nothing found is a permanent error naming where it looked (and observe still answers).
    let none = fx.step("ec2.latest_image", "{ role: standby, tag: image=none }");
    let obs = observe(&none, &cx).await;
    assert!(obs.current.starts_with("none found"), "{}", obs.current);
    let err = none.step().execute(&cx, &obs).await.expect_err("no AMI");
    assert!(
        !err.is_retryable()
            && err
                .to_string()
                .contains("no available AMI tagged image=none"),
        "{err}"
    );
    assert!(fx.mutations().is_empty(), "{:?}", fx.mutations());
}

#[tokio::test(start_paused = true)]
async fn update_launch_template_makes_a_new_default_version_and_undo_restores_the_old_one() {
    let fx = Fx::new();
    let cx = fx.cx();
    let seeded = fx.snapshot();
    let lt = lt_id("frontend", STANDBY);
    fx.set_output("latest_ami", json!({ "image_id": AMI_COPY_NEW }));
    let s = fx.step_after(
        "ec2.update_launch_template",
        "{ role: standby, asg: frontend, image_id: '${steps.latest_ami.image_id}', poll_interval: 100ms }",
        &["latest_ami"],
    );
    assert_eq!(fx.template_image(STANDBY, &lt), AMI_COPY_OLD);

    let (obs, result) = apply(&fx, &s, &cx).await;
    assert_eq!(
        obs.prior,
        json!({"launch_template_id": lt, "default_version": 1, "uses": "$Default", "latest_version": 1})
    );
    assert_eq!(result["version"], 2);
    assert_eq!(result["previous_version"], 1);
    assert_eq!(
        fx.mutations_by_region(),
        [
            "ec2:CreateLaunchTemplateVersion@us-west-2",
            "ec2:ModifyLaunchTemplate@us-west-2"
        ]
    );
    assert_eq!(fx.template_image(STANDBY, &lt), AMI_COPY_NEW);
    assert_eq!(
        fx.template_image(STANDBY, &lt_id("backend", STANDBY)),
        AMI_COPY_OLD,
        "the other tier's template is its own step"
    );

    assert_done(&fx, &s, &cx).await;

    undo(&s, &cx, &obs, &result).await;
    assert_eq!(fx.template_image(STANDBY, &lt), AMI_COPY_OLD);
    // EC2 keeps the version drctl made; only the default moves back.
    assert_eq!(fx.world().templates[&key(STANDBY, &lt)].versions.len(), 2);
    assert_eq!(fx.mutations().len(), 3);
    assert_same(&fx.snapshot(), &seeded);
}

/// The group's launch template version as the fake holds it.
fn group_version(fx: &Fx, tier: &str) -> Option<String> {
    fx.world().groups[&key(STANDBY, &asg_name(tier, STANDBY))]
        .launch_template_version
        .clone()
}

/// Make the standby's frontend group launch from `version` of its template.
fn pin_frontend(fx: &Fx, version: &str) {
    fx.world()
        .groups
        .get_mut(&key(STANDBY, &asg_name("frontend", STANDBY)))
        .unwrap()
        .launch_template_version = Some(version.into());
}

/// The AMI the group's instances launch from: its version of its template.
fn launches(fx: &Fx, tier: &str) -> String {
    let w = fx.world();
    let g = &w.groups[&key(STANDBY, &asg_name(tier, STANDBY))];
    let t = &w.templates[&key(STANDBY, g.launch_template_id.as_ref().unwrap())];
    let v = match g.launch_template_version.as_deref() {
        None | Some("$Default") => t.default_version,
        Some("$Latest") => *t.versions.keys().max().unwrap(),
        Some(n) => n.parse().unwrap(),
    };
    t.versions[&v].clone()
}

#[tokio::test(start_paused = true)]
async fn update_launch_template_moves_a_group_pinned_to_a_version_and_undo_pins_it_back() {
    let fx = Fx::new();
    let cx = fx.cx();
    let lt = lt_id("frontend", STANDBY);
    pin_frontend(&fx, "1");
    let s = fx.step(
        "ec2.update_launch_template",
        &format!(
            "{{ role: standby, asg: frontend, image_id: {AMI_COPY_NEW}, poll_interval: 100ms }}"
        ),
    );
    let (obs, result) = apply(&fx, &s, &cx).await;
    assert_eq!(obs.prior["uses"], "1");
    // A new default would change nothing for a group pinned to version 1 (on AWS it keeps
    // launching the old AMI): the group itself moves to the new version.
    assert_eq!(group_version(&fx, "frontend").as_deref(), Some("2"));
    assert_eq!(launches(&fx, "frontend"), AMI_COPY_NEW);
    assert_eq!(
        fx.template_image(STANDBY, &lt),
        AMI_COPY_OLD,
        "the default is untouched"
    );
    assert_eq!(
        fx.mutations(),
        [
            "ec2:CreateLaunchTemplateVersion",
            "autoscaling:UpdateAutoScalingGroup"
        ]
    );
    assert_done(&fx, &s, &cx).await;
    undo(&s, &cx, &obs, &result).await;
    assert_eq!(group_version(&fx, "frontend").as_deref(), Some("1"));
    assert_eq!(launches(&fx, "frontend"), AMI_COPY_OLD);
}

#[tokio::test(start_paused = true)]
async fn update_launch_template_for_a_group_on_latest_adds_a_version_and_undo_adds_the_old_one_back(
) {
    let fx = Fx::new();
    let cx = fx.cx();
    let lt = lt_id("frontend", STANDBY);
    pin_frontend(&fx, "$Latest");
    let s = fx.step(
        "ec2.update_launch_template",
        &format!(
            "{{ role: standby, asg: frontend, image_id: {AMI_COPY_NEW}, poll_interval: 100ms }}"
        ),
    );
    let (obs, result) = apply(&fx, &s, &cx).await;
    assert_eq!(result["uses"], "$Latest");
    assert_eq!(launches(&fx, "frontend"), AMI_COPY_NEW);
    assert_eq!(fx.mutations(), ["ec2:CreateLaunchTemplateVersion"]);
    assert_done(&fx, &s, &cx).await;
    // Setting the default back would leave $Latest on the new AMI: a copy of version 1
    // becomes the latest instead; undone twice, it is made once.
    undo(&s, &cx, &obs, &result).await;
    assert_eq!(launches(&fx, "frontend"), AMI_COPY_OLD);
    undo(&s, &cx, &obs, &result).await;
    assert_eq!(fx.world().templates[&key(STANDBY, &lt)].versions.len(), 3);
    assert_eq!(
        fx.template_image(STANDBY, &lt),
        AMI_COPY_OLD,
        "the default is untouched"
    );

    // Undo with no journaled result (drctl died right after creating it) finds it too.
    let fx = Fx::new();
    let cx = fx.cx();
    pin_frontend(&fx, "$Latest");
    let (obs, _) = apply(&fx, &s, &cx).await;
    assert_eq!(launches(&fx, "frontend"), AMI_COPY_NEW);
    undo(&s, &cx, &obs, &serde_json::Value::Null).await;
    assert_eq!(launches(&fx, "frontend"), AMI_COPY_OLD);
}

#[tokio::test(start_paused = true)]
async fn asg_scale_brings_the_standby_to_production_size_and_undo_to_its_warm_size() {
    let fx = Fx::new();
    let cx = fx.cx();
    let seeded = fx.snapshot();
    let name = asg_name("frontend", STANDBY);
    let s = fx.step(
        "asg.scale",
        "{ role: standby, asg: frontend, poll_interval: 100ms }",
    );
    assert_eq!(fx.sizes(STANDBY, &name), (1, 1, 4, 1));

    let (obs, result) = apply(&fx, &s, &cx).await;
    assert_eq!(
        obs.prior,
        json!({"name": name, "min": 1, "desired": 1, "max": 4})
    );
    assert_eq!(result, json!({"name": name, "min": 2, "desired": 2}));
    assert_eq!(
        fx.mutations_by_region(),
        ["autoscaling:UpdateAutoScalingGroup@us-west-2"]
    );
    assert_eq!(fx.sizes(STANDBY, &name), (2, 2, 4, 2));
    assert_eq!(
        fx.sizes(STANDBY, &asg_name("backend", STANDBY)),
        (1, 1, 4, 1)
    );
    assert_done(&fx, &s, &cx).await;

    undo(&s, &cx, &obs, &result).await;
    assert_eq!(fx.sizes(STANDBY, &name), (1, 1, 4, 1));
    assert_same(&fx.snapshot(), &seeded);

    // Above the group's max: max is raised (with a warning), and undo puts it back.
    let big = fx.step(
        "asg.scale",
        "{ role: standby, asg: frontend, desired: 6, min: 3, poll_interval: 100ms }",
    );
    let (obs, result) = apply(&fx, &big, &cx).await;
    assert_eq!(fx.sizes(STANDBY, &name), (3, 6, 6, 6));
    let w = warnings(&cx);
    assert!(w.len() == 1 && w[0].contains("raising max to 6"), "{w:?}");
    undo(&big, &cx, &obs, &result).await;
    assert_same(&fx.snapshot(), &seeded);

    // Never shrinks: a group already bigger than asked is Done as it is.
    let small = fx.step(
        "asg.scale",
        "{ role: primary, asg: frontend, desired: 1, poll_interval: 100ms }",
    );
    assert_done(&fx, &small, &cx).await;
}

#[tokio::test(start_paused = true)]
async fn wait_healthy_waits_for_enough_healthy_targets_and_changes_nothing() {
    let fx = Fx::new();
    let cx = fx.cx();
    // The warm standby has one healthy target per group: enough for min_healthy 1.
    let one = fx.step("elbv2.wait_healthy", "{ role: standby, min_healthy: 1 }");
    assert_eq!(one.step().reversibility(), Reversibility::NothingToUndo);
    let obs = observe(&one, &cx).await;
    assert_eq!(obs.state, Satisfied::Done);
    assert_eq!(obs.result["healthy"], json!({"backend": 1, "frontend": 1}));

    // Two per group: not yet. The new instances pass their health checks 20s in.
    let two = fx.step(
        "elbv2.wait_healthy",
        "{ role: standby, albs: [frontend, backend], min_healthy: 2, poll_interval: 1s }",
    );
    let obs = observe(&two, &cx).await;
    assert_eq!(obs.state, Satisfied::NotDone);
    assert!(
        obs.current.contains("frontend: 1 healthy"),
        "{}",
        obs.current
    );
    let aws = fx.aws.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        // One more target registers but is still failing its checks...
        for t in TIERS {
            let mut w = aws.world();
            let tg = w.target_groups.get_mut(&key(STANDBY, &tg_arn(t, STANDBY)));
            tg.unwrap().push(TargetHealth {
                id: "i-new".into(),
                state: "unhealthy".into(),
            });
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        // ...then passes them.
        for t in TIERS {
            aws.add_target_group(STANDBY, &tg_arn(t, STANDBY), 2);
        }
    });
    let t = Instant::now();
    let r = execute(&two, &cx, &obs).await;
    assert!(
        (Duration::from_secs(20)..=Duration::from_secs(21)).contains(&t.elapsed()),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r["healthy"], json!({"backend": 2, "frontend": 2}));
    assert_eq!(observe(&two, &cx).await.state, Satisfied::Done);
    assert!(fx.mutations().is_empty(), "{:?}", fx.mutations());
}
