//! The shipped failover runbook through the engine against the fake, and rollback of a run
//! that stopped before the promotion.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::aws::fake::{Fault, FaultKind};
use crate::engine::rollback::rollback;
use crate::engine::RunEnd;
use crate::journal::{Measure, Outcome, RunState};

/// A tiny HTTP server on loopback, in the test's runtime, answering every request with 200
/// and `body` (what the standby's ALB and the public name serve after a failover). Returns
/// its URL and a count of requests.
async fn serve(body: &'static str) -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, hits)
}

/// The shipped runbook, read from disk and validated against the fixture's environment.
fn shipped_plan(fx: &Fx) -> Arc<Plan> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/warm-standby-failover.yaml");
    let (_, rb) =
        config::load_runbook::<StepSpec>(&path, Some(&fx.env)).unwrap_or_else(|e| panic!("{e}"));
    Arc::new(Plan::new(&rb))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(start_paused = true)]
async fn shipped_failover_runbook_moves_production_to_the_standby_with_each_change_made_once() {
    let (url, hits) = serve("shop ok region=us-west-2").await;
    let fx = Fx::with_url(&url);
    let plan = shipped_plan(&fx);
    let e = engine(&fx, plan.clone(), auto_approve()).await;
    let end = e.clone().run().await.unwrap();
    assert_eq!(
        end,
        RunEnd::Succeeded {
            continued_failures: vec![]
        }
    );

    // Database: the standby is the writer, the old primary is fenced (read-only, still up),
    // and the standby app's database name points at the promoted instance.
    {
        let w = fx.world();
        let standby = &w.dbs[&key(STANDBY, &db_id(STANDBY))].db;
        assert!(standby.replica_source.is_none() && standby.status == "available");
        assert_eq!(w.dbs[&key(PRIMARY, &db_id(PRIMARY))].db.status, "available");
    }
    assert_eq!(fx.param(PRIMARY, PARAMS, "read_only").as_deref(), Some("1"));
    assert_eq!(
        fx.record(&private_zone(STANDBY), DB_RECORD, "CNAME"),
        Some(vec![db_endpoint(STANDBY)])
    );
    assert_eq!(
        fx.record(&private_zone(PRIMARY), DB_RECORD, "CNAME"),
        Some(vec![db_endpoint(PRIMARY)])
    );
    // Compute: the newest copied AMI in both standby templates, production size, in service.
    for t in TIERS {
        assert_eq!(fx.template_image(STANDBY, &lt_id(t, STANDBY)), AMI_COPY_NEW);
        assert_eq!(fx.sizes(STANDBY, &asg_name(t, STANDBY)), (2, 2, 4, 2));
        assert_eq!(fx.template_image(PRIMARY, &lt_id(t, PRIMARY)), AMI_BASE);
        assert_eq!(fx.sizes(PRIMARY, &asg_name(t, PRIMARY)), (1, 2, 4, 2));
    }
    // Edge and DNS: CloudFront prefers the standby; Route 53 answers the standby although the
    // old primary's health check passes: the records' roles were swapped, so it holds.
    assert_eq!(fx.origin_order(), [ORIGIN_STANDBY, ORIGIN_PRIMARY]);
    assert_eq!(fx.api_answer(), [alb_dns("backend", STANDBY)]);
    // Both http.check steps reached the loopback server.
    assert!(hits.load(Ordering::SeqCst) >= 2, "{hits:?}");

    // Every change was asked for exactly once (nothing retried, nothing repeated).
    assert_eq!(
        sorted(fx.world().mutations()),
        sorted(
            [
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:UpdateAutoScalingGroup",
                "cloudfront:UpdateDistribution",
                "ec2:CreateLaunchTemplateVersion",
                "ec2:CreateLaunchTemplateVersion",
                "ec2:ModifyLaunchTemplate",
                "ec2:ModifyLaunchTemplate",
                "rds:ModifyDBParameterGroup",
                "rds:PromoteReadReplica",
                "route53:ChangeResourceRecordSets",
                "route53:ChangeResourceRecordSets",
            ]
            .map(String::from)
            .to_vec()
        )
    );
    for t in TIERS {
        assert_eq!(
            fx.world().templates[&key(STANDBY, &lt_id(t, STANDBY))]
                .versions
                .len(),
            2,
            "one new version per template"
        );
    }

    // The journal: every step succeeded at its first attempt; the RPO is the replica's lag.
    let recs = e.records().await;
    assert!(
        !recs
            .iter()
            .any(|r| matches!(r.event, Event::StepFailed { .. } | Event::Warning { .. })),
        "{recs:#?}"
    );
    assert!(recs.iter().any(|r| matches!(
        r.event,
        Event::Measured { measure: Measure::RpoSeconds, value, .. } if value == STANDBY_LAG
    )));
    let st = RunState::replay(&recs).unwrap();
    assert_eq!(st.completed.len(), plan.steps.len());
    assert_eq!(
        st.steps["approve_promotion"].approved_by.as_deref(),
        Some("tester")
    );
}

/// An approver who answers "no" after ten minutes.
struct Declined;

#[async_trait]
impl ApprovalSource for Declined {
    async fn wait(&self, _step: &str, _message: &str) -> Result<Approval, StepError> {
        tokio::time::sleep(Duration::from_secs(600)).await;
        Err(StepError::permanent("declined by the incident commander"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_paused_before_the_promotion_rolls_back_to_the_seeded_world() {
    let (url, _) = serve("shop ok region=us-west-2").await;
    let fx = Fx::with_url(&url);
    let seeded = fx.snapshot();
    let e = engine(&fx, shipped_plan(&fx), Arc::new(Declined)).await;
    let end = e.clone().run().await.unwrap();
    assert!(
        matches!(&end, RunEnd::Paused { reason } if reason.contains("approve_promotion") && reason.contains("declined")),
        "{end:?}"
    );
    // The branches that need no approval ran; nothing irreversible did.
    let st = e.state().await.unwrap();
    let mut done = st.completed.clone();
    done.sort();
    assert_eq!(
        done,
        [
            "cloudfront_origin",
            "fence_primary",
            "latest_ami",
            "lt_backend",
            "lt_frontend",
            "scale_backend",
            "scale_frontend",
            "standby_healthy",
            "standby_serves"
        ]
    );
    assert!(!fx
        .mutations()
        .contains(&"rds:PromoteReadReplica".to_string()));
    assert_eq!(fx.param(PRIMARY, PARAMS, "read_only").as_deref(), Some("1"));
    assert_eq!(fx.origin_order(), [ORIGIN_STANDBY, ORIGIN_PRIMARY]);
    assert_eq!(
        fx.sizes(STANDBY, &asg_name("frontend", STANDBY)),
        (2, 2, 4, 2)
    );

    let report = rollback(&e, None, "promotion declined").await.unwrap();
    assert!(report.complete(), "{report:?}");
    let mut undone = report.undone.clone();
    undone.sort();
    assert_eq!(
        undone,
        [
            "cloudfront_origin",
            "fence_primary",
            "lt_backend",
            "lt_frontend",
            "scale_backend",
            "scale_frontend"
        ]
    );
    let mut passed = report.passed.clone();
    passed.sort();
    // The declined approval failed after its intent, so it is visited too: nothing to undo.
    assert_eq!(
        passed,
        [
            "approve_promotion",
            "latest_ami",
            "standby_healthy",
            "standby_serves"
        ]
    );
    assert!(report.left_in_place.is_empty(), "{report:?}");
    assert_same(&fx.snapshot(), &seeded);
    // Undone newest first: the scale-downs come before the templates they launched from.
    let pos = |id: &str| report.undone.iter().position(|u| u == id).unwrap();
    assert!(pos("scale_frontend") < pos("lt_frontend"));
    assert!(pos("scale_backend") < pos("lt_backend"));
}

#[tokio::test(start_paused = true)]
async fn a_promotion_refused_for_lag_journals_no_intent_and_leaves_nothing_to_roll_back() {
    let fx = Fx::new();
    fx.world()
        .dbs
        .get_mut(&key(STANDBY, &db_id(STANDBY)))
        .unwrap()
        .lag = Some(900.0);
    let yaml = one_step(
        "rds.promote_replica",
        "{ role: standby, max_lag: 5m }",
        "    retries: 3\n",
    );
    let e = engine(&fx, plan(&fx, &yaml), auto_approve()).await;
    let end = e.clone().run().await.unwrap();
    assert!(
        matches!(&end, RunEnd::Paused { reason } if reason.contains("lags 900s")),
        "{end:?}"
    );
    let failed = failures(&e, "s").await;
    assert!(
        failed.len() == 1 && failed[0].1.is_none(),
        "a refusal is not retried: {failed:?}"
    );
    let recs = e.records().await;
    assert!(!recs
        .iter()
        .any(|r| matches!(&r.event, Event::StepIntent { step, .. } if step == "s")));
    assert!(fx.mutations().is_empty());
    // Nothing was attempted, so rollback does not stop at the irreversible step.
    let report = rollback(&e, None, "refused").await.unwrap();
    assert!(
        report.complete() && report.undone.is_empty() && report.stopped_at.is_none(),
        "{report:?}"
    );
}

/// A step that acted, then failed its verify and was retried: the retry observes its own
/// change as Done. Rollback must undo from the state before the *first* attempt, not from
/// what the retry saw (or from nothing).
#[tokio::test(start_paused = true)]
async fn rollback_after_a_retried_step_restores_the_state_from_before_its_first_attempt() {
    let fx = Fx::new();
    let seeded = fx.snapshot();
    // Route 53 stops answering GetChange once: verify hangs until the step times out.
    fx.aws.inject(
        Fault::new(FaultKind::Hang)
            .service("route53")
            .operation("GetChange")
            .times(1),
    );
    let yaml = one_step(
        "route53.upsert_record",
        "{ role: standby, value: new-writer.example.internal, poll_interval: 100ms }",
        "    timeout: 1m\n    retries: 1\n    backoff: 1s\n",
    );
    let e = engine(&fx, plan(&fx, &yaml), auto_approve()).await;
    let end = e.clone().run().await.unwrap();
    assert!(matches!(end, RunEnd::Succeeded { .. }), "{end:?}");
    assert_eq!(failures(&e, "s").await.len(), 1);
    assert_eq!(
        fx.record(&private_zone(STANDBY), DB_RECORD, "CNAME"),
        Some(vec!["new-writer.example.internal".to_string()])
    );
    let st = e.state().await.unwrap();
    match st.step("s") {
        crate::journal::StepPhase::Succeeded { outcome, prior, .. } => {
            assert_eq!(outcome, Outcome::Changed);
            assert_eq!(
                prior["record"]["values"],
                serde_json::json!([db_endpoint(PRIMARY)]),
                "the prior of the first attempt"
            );
        }
        other => panic!("{other:?}"),
    }

    let report = rollback(&e, None, "test").await.unwrap();
    assert!(report.complete(), "{report:?}");
    assert_eq!(report.undone, ["s"]);
    assert_eq!(
        fx.record(&private_zone(STANDBY), DB_RECORD, "CNAME"),
        Some(vec![db_endpoint(PRIMARY)]),
        "the record is back, not deleted"
    );
    assert_same(&fx.snapshot(), &seeded);
}
