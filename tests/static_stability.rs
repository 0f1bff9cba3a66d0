//! Static stability against the harsh sandbox: with us-east-1 dark *and* the Route 53,
//! CloudFront and IAM APIs dark with it, a failover of an environment with a failover gate
//! ends with users served from us-west-2 through the standby region's APIs and data planes
//! only (the call log says so); the gate holds production there when us-east-1 returns; what
//! needs a control plane is deferred, shown by `status`, refused for by `reprotect`, and done
//! by `drctl deferred --run` once the APIs answer.

mod common;

use std::time::{Duration, Instant};

use common::sandbox::Sandbox;
use serde_json::{json, Value};

fn drctl(sb: &Sandbox) -> std::process::Command {
    let mut c = common::drctl(sb.dir.path());
    c.args(["--env", "drctl.yaml"]);
    c
}

/// A sandbox seeded with `gate`, serving DNS on a UDP port (drctl asks it as the zone's name
/// server), with short AWS timeouts so a dark endpoint costs seconds.
fn gated(gate: &str) -> Sandbox {
    let sb = Sandbox::start_seeded(
        &["--profile", "instant", "--dns-port", "0"],
        &["--gate", gate],
    );
    let p = sb.env_file();
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains("gate:"), "seed --gate wrote no gate:\n{text}");
    assert!(
        text.contains("name_servers:"),
        "seed wrote no name_servers:\n{text}"
    );
    let text = text
        .replace("operation_timeout: 30s", "operation_timeout: 3s")
        .replace("attempt_timeout: 10s", "attempt_timeout: 1s")
        .replace("max_attempts: 3", "max_attempts: 2");
    std::fs::write(&p, text).unwrap();
    sb
}

fn wait_state(sb: &Sandbox, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let st = sb.state();
        if pred(&st) {
            return st;
        }
        assert!(
            t.elapsed() < limit,
            "{what} did not happen within {limit:?}; state: {st:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn step_time(journal: &[Value], step: &str) -> f64 {
    let r = journal
        .iter()
        .find(|r| r["type"] == "step_succeeded" && r["step"] == step)
        .unwrap_or_else(|| panic!("{step} did not succeed: {journal:#?}"));
    chrono::DateTime::parse_from_rfc3339(r["at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis() as f64
        / 1000.0
}

fn failover_with_the_control_planes_dark(gate: &str) {
    let sb = gated(gate);
    if gate == "alarm" {
        // As in production, where nobody has written the gate's metric for days: the alarm
        // has no data, and Route 53 keeps the check's last known status.
        wait_state(
            &sb,
            "the gate's alarm to have no data",
            Duration::from_secs(60),
            |_| {
                sb.control("GET", "/_sandbox/health", None)["alarms"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["state"] == "INSUFFICIENT_DATA"))
            },
        );
    }
    sb.control("DELETE", "/_sandbox/calls", None);
    sb.fault(json!({"region": "us-east-1", "kind": "outage", "control_planes": true}));
    wait_state(
        &sb,
        "the primary's ALB check to fail",
        Duration::from_secs(60),
        |st| {
            st["route53"]["answer_region"] == "us-west-2"
                || st["route53"]["health_checks"][0]["healthy"] == false
        },
    );

    let out = common::run(drctl(&sb).args([
        "failover",
        "--region",
        "us-west-2",
        "--yes",
        "--approve-irreversible",
    ]));
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");

    // Users are served from us-west-2 through the public name (DNS answers the standby).
    let st = sb.state();
    assert_eq!(st["route53"]["answer_region"], "us-west-2", "{st:#}");
    let run = common::only_run(sb.dir.path());
    let j = common::journal(sb.dir.path(), &run);
    assert_eq!(j.last().unwrap()["status"], "succeeded", "{j:#?}");

    // The path to "served" called only us-west-2 (and the fence, off the path, us-east-1's
    // RDS): every call answered before `public_serves` succeeded.
    let served = step_time(&j, "public_serves");
    // The gate is closed once Route 53 can act on it: for an alarm, once it has evaluated the
    // 0 drctl wrote (ALARM), never on the written value alone.
    let closed = j
        .iter()
        .find(|r| r["type"] == "step_succeeded" && r["step"] == "close_gate")
        .unwrap_or_else(|| panic!("close_gate did not succeed: {j:#?}"));
    if gate == "alarm" {
        let detail = closed["result"]["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("is ALARM"),
            "closed before the alarm evaluated: {closed}"
        );
    }
    // The report judges the RTO to that outside check, after the gate moved the traffic.
    let out = common::run(drctl(&sb).args(["report", &run, "--format", "json"]));
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", common::text(&out)));
    assert_eq!(report["rto"]["to"], "public_serves", "{:#}", report["rto"]);
    assert!(
        report["rto"]["measured_ms"].as_u64().is_some(),
        "{:#}",
        report["rto"]
    );
    let calls = sb.control("GET", "/_sandbox/calls", None);
    let before: Vec<&Value> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["time"].as_f64().unwrap() <= served)
        .collect();
    assert!(!before.is_empty(), "no calls logged: {calls:#}");
    for c in &before {
        let region = c["region"].as_str().unwrap_or("?");
        let service = c["service"].as_str().unwrap_or("?");
        let fence = service == "rds" && region == "us-east-1";
        assert!(
            region != "us-east-1" || fence,
            "a call to us-east-1 on the path to served: {c}"
        );
        assert!(
            !["route53", "cloudfront", "iam"].contains(&service),
            "a global control-plane call on the path to served: {c}"
        );
    }

    // The control-plane work is deferred, not skipped.
    let mut deferred: Vec<&str> = j
        .iter()
        .filter(|r| r["type"] == "deferred")
        .map(|r| r["step"].as_str().unwrap())
        .collect();
    deferred.sort();
    assert_eq!(deferred, ["cloudfront_origin", "hold_dns"], "{j:#?}");
    assert!(
        text.contains("DEFERRED"),
        "the run says what it deferred:\n{text}"
    );

    // The app's writes reach the promoted database, through the public name.
    let url = format!("{}/write", public_url(&sb));
    let w = common::sandbox::mini_http::Client
        .request("POST".into(), &url)
        .send()
        .unwrap();
    let code = w.status();
    let body = w.text().unwrap();
    assert!(code.is_success(), "{url}: {code} {body}");
    assert!(body.contains("shop-db-usw2"), "{body}");
    let status = common::run(drctl(&sb).args(["status"]));
    let status_text = common::text(&status);
    assert!(status_text.contains("deferred"), "{status_text}");
    assert!(
        status_text.contains("drctl deferred --run"),
        "{status_text}"
    );
    let listed = common::run(drctl(&sb).args(["deferred"]));
    assert!(
        common::text(&listed).contains("hold_dns"),
        "{}",
        common::text(&listed)
    );

    // us-east-1 returns: the gate holds production on us-west-2.
    sb.clear_faults();
    sb.control(
        "POST",
        "/_sandbox/clock/step",
        Some(json!({"seconds": 120})),
    );
    let st = sb.state();
    assert_eq!(
        st["route53"]["answer_region"], "us-west-2",
        "the gate did not hold: {st:#}"
    );

    // The old writer could not be fenced while its region was dark: now it is.
    let fence = common::run(drctl(&sb).args(["fence", "--yes"]));
    assert!(fence.status.success(), "{}", common::text(&fence));

    // Reprotect refuses while work is deferred, and says why.
    let re = common::run(drctl(&sb).args(["reprotect", "--yes"]));
    let re_text = common::text(&re);
    assert_eq!(re.status.code(), Some(2), "{re_text}");
    assert!(re_text.contains("deferred"), "{re_text}");

    // The deferred work, done by hand now that the APIs answer.
    let done = common::run(drctl(&sb).args(["deferred", "--run", "--yes"]));
    let done_text = common::text(&done);
    assert!(done.status.success(), "{done_text}");
    let again = common::run(drctl(&sb).args(["deferred"]));
    assert!(
        common::text(&again).contains("Nothing is deferred"),
        "{}",
        common::text(&again)
    );
    let st = sb.state();
    assert_eq!(st["route53"]["answer_region"], "us-west-2", "{st:#}");
    let status = common::run(drctl(&sb).args(["status"]));
    let status_text = common::text(&status);
    assert!(status_text.contains("FAILED_OVER"), "{status_text}");
    assert!(
        !status_text.contains("only because"),
        "the gate holds it:\n{status_text}"
    );
    assert!(!status_text.contains("deferred since"), "{status_text}");
}

fn public_url(sb: &Sandbox) -> String {
    let text = std::fs::read_to_string(sb.env_file()).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("public_url:"))
        .map(|u| {
            u.split('#')
                .next()
                .unwrap()
                .trim()
                .trim_matches('"')
                .to_string()
        })
        .expect("public_url in drctl.yaml")
}

#[test]
fn an_alarm_gated_failover_serves_the_standby_with_the_control_planes_dark() {
    failover_with_the_control_planes_dark("alarm");
}

#[test]
fn a_routing_control_gated_failover_serves_the_standby_with_the_control_planes_dark() {
    failover_with_the_control_planes_dark("arc");
}

/// `drctl check` verifies how the gate is wired, from Route 53's answers: a calculated check
/// that stays healthy with one child would never stop the PRIMARY answer when the gate closes.
#[test]
fn check_verifies_that_the_gate_is_wired_to_stop_the_primary_answer() {
    let sb = gated("alarm");
    let row = |sb: &Sandbox| -> (Option<i32>, String, String) {
        let out = common::run(drctl(sb).args(["check", "--output", "json", "--timeout", "10s"]));
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", common::text(&out)));
        let c = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "failover gate (data plane)")
            .unwrap_or_else(|| panic!("no gate row: {v:#}"))
            .clone();
        (
            out.status.code(),
            c["status"].as_str().unwrap().to_string(),
            c["reason"].as_str().unwrap().to_string(),
        )
    };
    let (_, status, reason) = row(&sb);
    assert_eq!(status, "pass", "{reason}");

    // Loosen the calculated check: healthy with 1 of its 2 children.
    let env = std::fs::read_to_string(sb.env_file()).unwrap();
    let calc = env
        .lines()
        .find_map(|l| l.trim().strip_prefix("calculated_health_check_id:"))
        .expect("calculated_health_check_id in drctl.yaml")
        .trim()
        .trim_matches('"')
        .to_string();
    let out = std::process::Command::new(common::sandbox::python())
        .args([
            "-c",
            "import sys, boto3; boto3.client('route53', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='t', aws_secret_access_key='t').update_health_check(HealthCheckId=sys.argv[2], HealthThreshold=1)",
            &sb.endpoint,
            &calc,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let (code, status, reason) = row(&sb);
    assert_eq!((code, status.as_str()), (Some(4), "fail"), "{reason}");
    assert!(
        reason.contains("healthy with 1 of its 2 children"),
        "{reason}"
    );
}
