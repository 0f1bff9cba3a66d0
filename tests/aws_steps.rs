//! Each AWS step kind against a sandbox of its own (instant profile), through the library:
//! observe, execute, verify, idempotency (observe says Done afterwards) and undo, asserting on
//! what the sandbox holds (`/_sandbox/state`, or drctl's adapters over the AWS SDK).
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::sandbox::Sandbox;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use drctl::aws::{Aws, ErrorKind, Sdk};
use drctl::config::{self, Environment, Source};
use drctl::steps::{
    Approval, ApprovalGate, CxParts, Observation, Reversibility, Satisfied, Services, StepCx,
    StepError, StepReport, StepSpec,
};

struct NoApprovals;

#[async_trait]
impl ApprovalGate for NoApprovals {
    async fn request(&self, _s: &str, _m: &str) -> Result<Approval, StepError> {
        Err(StepError::permanent("no approvals in step tests"))
    }
}

struct H {
    sb: Sandbox,
    env: Arc<Environment>,
    aws: Arc<dyn Aws>,
    outputs: Arc<Mutex<BTreeMap<String, Value>>>,
}

fn harness() -> H {
    harness_with(|t| t)
}

/// A sandbox and its environment, after `edit` rewrote the seeded drctl.yaml.
fn harness_with(edit: impl Fn(String) -> String) -> H {
    common::sandbox::sdk_credentials();
    let sb = Sandbox::start();
    let text = edit(std::fs::read_to_string(sb.env_file()).unwrap());
    std::fs::write(sb.env_file(), &text).unwrap();
    let (_, env) = config::load_env(&sb.env_file()).expect("seeded env loads");
    let aws: Arc<dyn Aws> = Arc::new(Sdk::new(env.aws.clone()));
    H {
        sb,
        env: Arc::new(env),
        aws,
        outputs: Arc::new(Mutex::new(BTreeMap::new())),
    }
}

impl H {
    /// A validated step of `kind` with `with` (YAML flow map), behind an approval so that
    /// irreversible kinds validate.
    fn step(&self, kind: &str, with: &str) -> StepSpec {
        let text = format!("name: t\nsteps:\n  - id: ok\n    kind: approval\n  - id: s\n    kind: {kind}\n    with: {with}\n    depends_on: [ok]\n");
        let rb = config::parse_runbook::<StepSpec>(
            &Source::from_text(Path::new("t.yaml"), text),
            Some(&self.env),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        rb.steps.into_iter().nth(1).unwrap().spec
    }

    fn cx(&self) -> StepCx {
        StepCx::new(
            &Services::new(self.aws.clone()),
            "s",
            CxParts {
                run_id: "test".into(),
                env: self.env.clone(),
                approvals: Arc::new(NoApprovals),
                shutdown: CancellationToken::new(),
                outputs: self.outputs.clone(),
                notes: Arc::new(|_, _| {}),
            },
        )
    }

    fn state(&self) -> Value {
        self.sb.state()
    }

    /// Poll the sandbox's state until `pred` holds (bounded).
    fn wait_state(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let t = Instant::now();
        loop {
            let st = self.state();
            if pred(&st) {
                return st;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{what} did not happen; state: {st:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const BOUND: Duration = Duration::from_secs(30);

async fn observe(s: &StepSpec, cx: &StepCx) -> Observation {
    tokio::time::timeout(BOUND, s.step().observe(cx))
        .await
        .expect("observe bounded")
        .expect("observe")
}

/// observe (NotDone) -> execute -> verify, then observe again must say Done.
async fn apply(s: &StepSpec, cx: &StepCx) -> (Observation, Value) {
    let obs = observe(s, cx).await;
    assert_eq!(
        obs.state,
        Satisfied::NotDone,
        "{} before: {obs:?}",
        s.kind()
    );
    let result = tokio::time::timeout(BOUND, s.step().execute(cx, &obs))
        .await
        .expect("execute bounded")
        .unwrap_or_else(|e| panic!("{} execute: {e}", s.kind()));
    tokio::time::timeout(BOUND, s.step().verify(cx, &result))
        .await
        .expect("verify bounded")
        .unwrap_or_else(|e| panic!("{} verify: {e}", s.kind()));
    (obs, result)
}

async fn assert_done(s: &StepSpec, cx: &StepCx) -> Observation {
    let again = observe(s, cx).await;
    assert_eq!(
        again.state,
        Satisfied::Done,
        "{} is idempotent: observe after execute says Done: {again:?}",
        s.kind()
    );
    again
}

async fn undo(s: &StepSpec, cx: &StepCx, obs: &Observation, result: &Value) {
    assert_eq!(s.step().reversibility(), Reversibility::Reversible);
    tokio::time::timeout(BOUND, s.step().undo(cx, &obs.prior, result))
        .await
        .expect("undo bounded")
        .unwrap_or_else(|e| panic!("{} undo: {e}", s.kind()));
}

fn db<'a>(st: &'a Value, region: &str) -> &'a Value {
    &st["regions"][region]["databases"][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_fence_then_promote_with_lag_guard() {
    let h = harness();
    let cx = h.cx();

    // Fence: the old primary turns read-only while it keeps its replica; idempotent; undo
    // makes it writable again.
    assert_eq!(db(&h.state(), "us-east-1")["writable"], true);
    let fence = h.step(
        "rds.fence_primary",
        "{ role: primary, method: read_only, poll_interval: 100ms }",
    );
    let (obs, result) = apply(&fence, &cx).await;
    assert_eq!(result["fenced"], true);
    let st = h.state();
    assert_eq!(db(&st, "us-east-1")["writable"], false, "{st:#}");
    assert_eq!(db(&st, "us-east-1")["status"], "available");
    assert_done(&fence, &cx).await;
    undo(&fence, &cx, &obs, &result).await;
    h.wait_state("the primary to take writes again", |st| {
        db(st, "us-east-1")["writable"] == true
    });

    // Stopping is refused by RDS while the primary has a read replica, as on AWS.
    let stop = h.step("rds.fence_primary", "{ role: primary, method: stop }");
    let obs = observe(&stop, &cx).await;
    let err = stop
        .step()
        .execute(&cx, &obs)
        .await
        .expect_err("an instance with a read replica cannot be stopped");
    assert!(err.to_string().contains("InvalidDBInstanceState"), "{err}");
    assert_eq!(db(&h.state(), "us-east-1")["status"], "available");

    // Promote refuses above max_lag, and records nothing.
    h.sb.control(
        "POST",
        "/_sandbox/replica-lag",
        Some(json!({"region": "us-west-2", "instance_id": "shop-db-usw2", "seconds": 900})),
    );
    let promote = h.step(
        "rds.promote_replica",
        "{ role: standby, max_lag: 5m, poll_interval: 100ms }",
    );
    assert!(matches!(
        promote.step().reversibility(),
        Reversibility::Irreversible(_)
    ));
    // Refused while observing, before any intent would be journaled.
    let err = promote
        .step()
        .observe(&cx)
        .await
        .expect_err("lag 900s > 5m must refuse");
    assert!(
        !err.is_retryable() && err.to_string().contains("lags 900s"),
        "{err}"
    );
    assert_eq!(
        db(&h.state(), "us-west-2")["role"],
        "replica",
        "refusal changed nothing"
    );

    // With force: promoted, the lag recorded as the RPO estimate, a warning raised.
    let forced = h.step(
        "rds.promote_replica",
        "{ role: standby, max_lag: 5m, force: true, poll_interval: 100ms }",
    );
    let (_, result) = apply(&forced, &cx).await;
    assert_eq!(result["rpo_estimate_s"], 900.0);
    assert!(
        cx.reports
            .lock()
            .unwrap()
            .iter()
            .any(|r| matches!(r, StepReport::Warning(w) if w.contains("above max_lag"))),
        "{:?}",
        cx.reports
    );
    let st = h.state();
    assert_eq!(
        st["regions"]["us-west-2"]["writer"],
        json!(["shop-db-usw2"])
    );
    assert_eq!(db(&st, "us-west-2")["status"], "available");
    // Done on a re-run, with the endpoint still available to later steps.
    let again = assert_done(&promote, &cx).await;
    assert!(
        again.result["endpoint"]
            .as_str()
            .is_some_and(|e| e.contains("shop-db-usw2")),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route53_upsert_force_and_verify() {
    let h = harness();
    let cx = h.cx();
    let zone = h.env.regions["us-west-2"]
        .database
        .as_ref()
        .unwrap()
        .private_zone_id
        .clone()
        .unwrap();
    let r53 = h.aws.route53().await;
    let before = r53
        .record(&zone, "db.shop.internal.", "CNAME")
        .await
        .unwrap()
        .expect("seeded CNAME");

    // upsert: the CNAME moves, INSYNC is awaited, a re-run is a no-op, undo restores it.
    let up = h.step(
        "route53.upsert_record",
        "{ role: standby, value: new-writer.example.internal, poll_interval: 100ms }",
    );
    let (obs, result) = apply(&up, &cx).await;
    assert!(result["change_id"].as_str().is_some_and(|c| !c.is_empty()));
    let now = r53
        .record(&zone, "db.shop.internal.", "CNAME")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.values, vec!["new-writer.example.internal".to_string()]);
    assert_done(&up, &cx).await;
    undo(&up, &cx, &obs, &result).await;
    assert_eq!(
        r53.record(&zone, "db.shop.internal.", "CNAME")
            .await
            .unwrap()
            .unwrap()
            .values,
        before.values
    );

    // verify_failover waits for the standby answer: bounded here, it does not come yet.
    let verify = h.step(
        "route53.verify_failover",
        "{ expect: standby, poll_interval: 100ms }",
    );
    let vobs = observe(&verify, &cx).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(2), verify.step().execute(&cx, &vobs))
            .await
            .is_err(),
        "answered standby before failover"
    );

    // force_failover: the primary's check reports unhealthy, Route 53 answers the standby.
    let force = h.step("route53.force_failover", "{ poll_interval: 100ms }");
    let (fobs, fresult) = apply(&force, &cx).await;
    assert_eq!(fresult["inverted"], true);
    let st = h.wait_state("Route 53 to answer the standby", |st| {
        st["route53"]["answer_region"] == "us-west-2"
    });
    assert_eq!(st["route53"]["failover"], "SECONDARY");
    assert_done(&force, &cx).await;
    let vres = tokio::time::timeout(BOUND, verify.step().execute(&cx, &vobs))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        vres["expected"],
        "shop-backend-usw2-1.us-west-2.elb.amazonaws.com"
    );

    // Undo: not inverted again; Route 53 answers the primary again.
    undo(&force, &cx, &fobs, &fresult).await;
    assert!(
        !r53.health_check(&h.env.route53.as_ref().unwrap().health_check_id)
            .await
            .unwrap()
            .inverted
    );
    h.wait_state("Route 53 to answer the primary again", |st| {
        st["route53"]["answer_region"] == "us-east-1"
    });
    let back = h.step(
        "route53.verify_failover",
        "{ expect: primary, poll_interval: 100ms }",
    );
    let bobs = observe(&back, &cx).await;
    tokio::time::timeout(BOUND, back.step().execute(&cx, &bobs))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudfront_promote_origin_and_undo() {
    let h = harness();
    let cx = h.cx();
    let s = h.step(
        "cloudfront.promote_origin",
        "{ role: standby, poll_interval: 100ms }",
    );
    let (obs, result) = apply(&s, &cx).await;
    assert_eq!(
        result["order"],
        json!(["standby-frontend", "primary-frontend"])
    );
    let st = h.state();
    assert_eq!(st["cloudfront"]["first_origin_region"], "us-west-2");
    assert_eq!(
        st["cloudfront"]["status"], "Deployed",
        "verify waited for Deployed"
    );
    assert_done(&s, &cx).await;
    undo(&s, &cx, &obs, &result).await;
    let st = h.state();
    assert_eq!(st["cloudfront"]["first_origin_region"], "us-east-1");
    assert_eq!(st["cloudfront"]["status"], "Deployed");
    // Concurrent writers: each update carries the ETag it read; the losers get
    // PreconditionFailed from the service, re-read and try again, so none fails.
    let dist = h.env.cloudfront.as_ref().unwrap().distribution_id.clone();
    let orders = [
        ["standby-frontend", "primary-frontend"],
        ["primary-frontend", "standby-frontend"],
    ];
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let cf = h.aws.clone();
            let dist = dist.clone();
            let order: Vec<String> = orders[i % 2].iter().map(|s| s.to_string()).collect();
            tokio::spawn(async move {
                cf.cloudfront()
                    .await
                    .set_member_order(&dist, "shop-frontend-group", &order)
                    .await
            })
        })
        .collect();
    for w in writers {
        w.await
            .unwrap()
            .expect("no writer fails on a concurrent update");
    }
    let g = h
        .aws
        .cloudfront()
        .await
        .origin_group(&dist, "shop-frontend-group")
        .await
        .unwrap();
    assert_eq!(g.members.len(), 2, "{g:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_image_launch_template_scale_and_health() {
    let h = harness();
    let cx = h.cx();
    let seeded_ami = h.sb.topology()["regions"]["us-west-2"]["asgs"]["frontend"]["ami_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Names the environment does not define are validation errors naming what exists.
    let text =
        "name: t\nsteps:\n  - id: s\n    kind: asg.scale\n    with: { role: standby, asg: nope }\n";
    let err = config::parse_runbook::<StepSpec>(
        &Source::from_text(Path::new("t.yaml"), text.into()),
        Some(&h.env),
    )
    .expect_err("undefined ASG");
    assert!(
        err.to_string()
            .contains("no ASG named `nope` (defined: backend, frontend)"),
        "{err}"
    );

    // latest_image: the AMI AWS Backup copied into the standby vault.
    let img = h.step("ec2.latest_image", "{ role: standby }");
    let obs = observe(&img, &cx).await;
    let r = img.step().execute(&cx, &obs).await.unwrap();
    assert_eq!(r["image_id"], seeded_ami.as_str());

    // update_launch_template to another available AMI (moto's Amazon Linux 2 image).
    let lt_id = h.env.regions["us-west-2"].asgs["frontend"]
        .launch_template_id
        .clone()
        .unwrap();
    let lt = h.step(
        "ec2.update_launch_template",
        "{ role: standby, asg: frontend, image_id: ami-04681a1dbd79675a5, poll_interval: 100ms }",
    );
    let (obs, result) = apply(&lt, &cx).await;
    let ec2 = h.aws.ec2("us-west-2").await;
    // The seeded group launches from `$Latest` (as moto and AWS read it): the new version is
    // the latest, and the default is left alone.
    let group = h
        .aws
        .autoscaling("us-west-2")
        .await
        .group("shop-frontend-usw2")
        .await
        .unwrap();
    assert_eq!(group.launch_template_version.as_deref(), Some("$Latest"));
    assert_eq!(obs.prior["uses"], "$Latest");
    let (latest, image) = ec2.version_image(&lt_id, "$Latest").await.unwrap();
    assert_eq!(image.as_deref(), Some("ami-04681a1dbd79675a5"));
    assert_eq!(latest, result["version"].as_i64().unwrap());
    assert_eq!(
        ec2.launch_template(&lt_id).await.unwrap().default_image_id,
        Some(seeded_ami.clone()),
        "the default version is not what the group runs: untouched"
    );
    assert_done(&lt, &cx).await;
    // Undo adds a copy of the version that was latest: `$Latest` is the seeded AMI again.
    undo(&lt, &cx, &obs, &result).await;
    assert_eq!(
        ec2.version_image(&lt_id, "$Latest").await.unwrap().1,
        Some(seeded_ami.clone())
    );

    // asg.scale to production size, waiting for InService; undo restores the warm minimum.
    let scale = h.step(
        "asg.scale",
        "{ role: standby, asg: frontend, poll_interval: 100ms }",
    );
    let (obs, result) = apply(&scale, &cx).await;
    assert_eq!(result["desired"], 2);
    let asg = |st: &Value| {
        st["regions"]["us-west-2"]["asgs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "shop-frontend-usw2")
            .cloned()
            .unwrap()
    };
    let a = asg(&h.state());
    assert_eq!(
        (
            a["min"].as_i64(),
            a["desired"].as_i64(),
            a["in_service"].as_i64()
        ),
        (Some(2), Some(2), Some(2))
    );
    assert_done(&scale, &cx).await;
    undo(&scale, &cx, &obs, &result).await;
    h.wait_state("the ASG back at its warm size", |st| {
        let a = asg(st);
        a["desired"] == 1 && a["min"] == 1 && a["in_service"] == 1
    });

    // elbv2.wait_healthy: both standby target groups have a healthy target.
    let wh = h.step(
        "elbv2.wait_healthy",
        "{ role: standby, min_healthy: 1, poll_interval: 100ms }",
    );
    let obs = observe(&wh, &cx).await;
    assert_eq!(obs.state, Satisfied::Done, "{obs:?}");
    let r = wh.step().execute(&cx, &obs).await.unwrap();
    assert!(
        r["healthy"]["frontend"].as_u64().unwrap() >= 1
            && r["healthy"]["backend"].as_u64().unwrap() >= 1,
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copy_recovery_point_is_copied_once() {
    let h = harness();
    let cx = h.cx();
    let s = h.step("backup.copy_recovery_point", "{ from: primary, to: standby, iam_role_arn: 'arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole', poll_interval: 100ms }");
    let before = h
        .aws
        .backup("us-west-2")
        .await
        .recovery_points("shop-vault-usw2")
        .await
        .unwrap()
        .len();
    // The seed already copied the newest point once: observe says Done.
    assert_done(&s, &cx).await;
    // Executing anyway (as a resume would after drctl died before journaling the copy) starts
    // one more copy job, which completes; nothing is lost or duplicated in the source vault.
    let jobs = h
        .aws
        .backup("us-east-1")
        .await
        .copy_jobs()
        .await
        .unwrap()
        .len();
    let obs = Observation::new(Satisfied::NotDone, "forced", "copy again");
    let result = s.step().execute(&cx, &obs).await.unwrap();
    s.step().verify(&cx, &result).await.unwrap();
    let job = h
        .aws
        .backup("us-east-1")
        .await
        .copy_job(result["copy_job_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(job.state, "COMPLETED");
    assert_eq!(
        h.aws
            .backup("us-east-1")
            .await
            .copy_jobs()
            .await
            .unwrap()
            .len(),
        jobs + 1
    );
    assert!(
        h.aws
            .backup("us-west-2")
            .await
            .recovery_points("shop-vault-usw2")
            .await
            .unwrap()
            .len()
            >= before
    );
    assert_eq!(s.step().reversibility(), Reversibility::NothingToUndo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_errors_name_the_call_and_are_bounded() {
    let h = harness_with(|t| {
        t.replace("operation_timeout: 30s", "operation_timeout: 2s")
            .replace("attempt_timeout: 10s", "attempt_timeout: 500ms")
            .replace("max_attempts: 3", "max_attempts: 1")
    });
    h.sb.fault(json!({"region": "us-west-2", "service": "rds", "kind": "errors", "rate": 1.0, "error": "throttle"}));
    let e = h
        .aws
        .rds("us-west-2")
        .await
        .describe("shop-db-usw2")
        .await
        .expect_err("throttled");
    assert_eq!(
        (e.service, e.operation, e.region.as_str(), e.kind),
        (
            "rds",
            "DescribeDBInstances",
            "us-west-2",
            ErrorKind::Throttled
        ),
        "{e}"
    );
    assert!(
        e.request_id.is_some() && e.code.as_deref() == Some("Throttling"),
        "{e:?}"
    );
    assert!(StepError::from(e.clone()).is_retryable());
    assert!(
        e.to_string()
            .contains("rds DescribeDBInstances in us-west-2")
            && e.to_string().contains("request id"),
        "{e}"
    );

    h.sb.fault(json!({"region": "us-east-1", "kind": "outage"}));
    let t = Instant::now();
    let e = h
        .aws
        .autoscaling("us-east-1")
        .await
        .group("shop-frontend-use1")
        .await
        .expect_err("outage");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.is_unreachable() && StepError::from(e).is_retryable());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "bounded by the operation timeout: {:?}",
        t.elapsed()
    );

    // Not found is permanent and says so.
    h.sb.clear_faults();
    let e = h
        .aws
        .rds("us-west-2")
        .await
        .describe("no-such-db")
        .await
        .expect_err("missing");
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(!StepError::from(e).is_retryable());
}
