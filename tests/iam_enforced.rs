//! IAM that is enough, proven: with the sandbox enforcing IAM (`serve --iam enforce`, every
//! request authenticated and authorized as AWS does, sandbox/README.md "IAM enforcement"), each
//! of drctl's operations runs as a user whose only policy is what `drctl iam-policy` prints for
//! that operation's runbook: an isolated drill, a readiness drill, an unplanned failover, the
//! fence, reprotect and failback. Each must pass; a refusal names the action and the resource
//! the printed policy lacks.

mod common;

use std::time::{Duration, Instant};

use common::sandbox::Sandbox;
use serde_json::{json, Value};

fn drctl(sb: &Sandbox) -> std::process::Command {
    let mut c = common::drctl(sb.dir.path());
    c.args(["--env", "drctl.yaml"]);
    c
}

/// Boto3 as the sandbox's admin user: make user `name` with `policy` as its only (inline)
/// policy and one access key; print the key as JSON.
const MAKE_USER: &str = r#"
import json, sys, boto3
endpoint, key, secret, name, policy = sys.argv[1:6]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id=key, aws_secret_access_key=secret)
iam.create_user(UserName=name)
iam.put_user_policy(UserName=name, PolicyName="drctl", PolicyDocument=policy)
k = iam.create_access_key(UserName=name)["AccessKey"]
print(json.dumps({"key": k["AccessKeyId"], "secret": k["SecretAccessKey"]}))
"#;

/// The credentials of a new user whose only policy is `drctl iam-policy RUNBOOK`.
fn user_for(sb: &Sandbox, runbook: &str) -> (String, String, Value) {
    let out = common::run(drctl(sb).args(["iam-policy", runbook]));
    assert!(
        out.status.success(),
        "iam-policy {runbook}: {}",
        common::text(&out)
    );
    let policy = String::from_utf8(out.stdout).unwrap();
    let admin = &sb.control("POST", "/_sandbox/iam/admin", Some(json!({})))["admin"];
    static USERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "drctl-{}-{}",
        runbook.trim_end_matches(".yaml").replace('/', "-"),
        USERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let out = std::process::Command::new(common::sandbox::python())
        .args(["-c", MAKE_USER, &sb.endpoint])
        .arg(admin["access_key_id"].as_str().unwrap())
        .arg(admin["secret_access_key"].as_str().unwrap())
        .arg(&name)
        .arg(&policy)
        .output()
        .expect("python");
    assert!(out.status.success(), "make user: {}", common::text(&out));
    let k: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        k["key"].as_str().unwrap().to_string(),
        k["secret"].as_str().unwrap().to_string(),
        serde_json::from_str(&policy).unwrap(),
    )
}

/// Run drctl `args` as a user holding only `runbook`'s printed policy; it must succeed.
fn run_as(sb: &Sandbox, runbook: &str, args: &[&str]) -> String {
    run_with(sb, runbook, user_for(sb, runbook), args)
}

/// Run drctl `args` with `user` (made by [`user_for`] for `runbook`); it must succeed.
fn run_with(
    sb: &Sandbox,
    runbook: &str,
    (key, secret, policy): (String, String, Value),
    args: &[&str],
) -> String {
    sb.control("DELETE", "/_sandbox/calls", None);
    let out = common::run(
        drctl(sb)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret),
    );
    let text = common::text(&out);
    let calls = sb.control("GET", "/_sandbox/calls", None);
    let refused: Vec<String> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            let s = c["status"].as_u64().unwrap_or(0);
            (s == 401 || s == 403 || s == 400) && c["faulted"] != true
        })
        .map(|c| {
            format!(
                "{} {} {} -> {}",
                c["region"], c["service"], c["operation"], c["status"]
            )
        })
        .collect();
    // On failure: the refusals drctl met (each names the action and resource), not the
    // whole output.
    let why: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("not authorized") || l.contains("error"))
        .take(8)
        .collect();
    assert!(
        out.status.success(),
        "drctl {args:?} as a user with only `iam-policy {runbook}`: exit {:?}\n{}\n\
         calls refused (or 400): {refused:#?}\npolicy: {policy:#}",
        out.status.code(),
        why.join("\n")
    );
    // A user that holds exactly the printed policy was authorized for every call it made: an
    // operation that only worked around a refusal (a retry, a fallback) fails here too.
    let denied: Vec<&String> = refused
        .iter()
        .filter(|r| r.ends_with("-> 403") || r.ends_with("-> 401"))
        .collect();
    assert!(
        denied.is_empty(),
        "drctl {args:?} succeeded but was refused: {denied:#?}\n{text}\npolicy: {policy:#}"
    );
    text
}

fn wait(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_operation_runs_with_only_the_policy_iam_policy_prints() {
    let sb = Sandbox::start_with(&["--profile", "instant", "--iam", "enforce"]);
    assert_eq!(sb.control("GET", "/_sandbox/iam", None)["mode"], "enforce");
    // Credentials of no user are refused: enforcement is on for drctl's own calls.
    let out = common::run(drctl(&sb).args(["status", "--output", "json"]));
    assert_ne!(out.status.code(), Some(0), "{}", common::text(&out));

    // Drills on the protected environment.
    run_as(
        &sb,
        "drill-readiness.yaml",
        &["drill", "--mode", "readiness", "--output", "json"],
    );
    run_as(
        &sb,
        "drill-isolated.yaml",
        &["drill", "--mode", "isolated", "--yes", "--output", "json"],
    );

    // The round trip: an unplanned failover with us-east-1 dark, the fence once it returns,
    // reprotect and failback back to the seeded roles.
    // The ungated layout moves traffic through Route 53's API: spare the global control planes (a gated failover is tested with them dark in static_stability.rs).
    sb.fault(json!({"region": "us-east-1", "kind": "outage", "control_planes": false}));
    run_as(
        &sb,
        "warm-standby-failover.yaml",
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ],
    );
    assert_eq!(sb.state()["route53"]["answer_region"], "us-west-2");
    sb.clear_faults();
    wait("us-east-1 to answer again", Duration::from_secs(30), || {
        sb.state()["regions"]["us-east-1"]["dark"] == false
    });
    run_as(
        &sb,
        "fence.yaml",
        &["fence", "--yes", "--approve-irreversible"],
    );
    run_as(
        &sb,
        "reprotect.yaml",
        &["reprotect", "--yes", "--approve-irreversible"],
    );
    // The new replica is built as drctl.yaml says: encrypted with us-east-1's key, in its
    // subnet group (a VPC) with its security groups.
    let st = sb.state();
    let topo = sb.topology();
    let conf = &topo["regions"]["us-east-1"]["database"];
    let db = st["regions"]["us-east-1"]["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "shop-db-use1")
        .unwrap_or_else(|| panic!("no new replica: {st:#}"));
    assert_eq!(db["role"], "replica", "{db:#}");
    assert_eq!(db["in_vpc"], true, "{db:#}");
    assert_eq!(db["storage_encrypted"], true, "{db:#}");
    assert_eq!(
        db["kms_key_id"].as_str(),
        conf["kms_key_id"].as_str(),
        "{db:#}"
    );
    assert_eq!(
        db["db_subnet_group"].as_str(),
        conf["subnet_group"].as_str(),
        "{db:#}"
    );
    assert_eq!(
        db["vpc_security_groups"],
        json!([conf["security_group_ids"][0].as_str().unwrap()]),
        "{db:#}"
    );
    run_as(
        &sb,
        "failback.yaml",
        &[
            "failback",
            "--region",
            "us-east-1",
            "--yes",
            "--approve-irreversible",
        ],
    );
    let st = sb.state();
    assert_eq!(st["route53"]["answer_region"], "us-east-1", "{st:#}");
    assert_eq!(st["reachable_writers"], json!(["shop-db-use1"]), "{st:#}");
}

/// STS is regional: credentials from an assumed role come from the standby region's STS
/// endpoint, never from us-east-1 (the global endpoint), which fails with the primary.
#[test]
fn an_assumed_role_is_assumed_through_the_standby_regions_sts() {
    let sb = Sandbox::start();
    let cfg = sb.dir.path().join("aws-config");
    std::fs::write(
        &cfg,
        "[profile base]\naws_access_key_id = base\naws_secret_access_key = base\n\n\
         [profile oncall]\nrole_arn = arn:aws:iam::123456789012:role/drctl-oncall\n\
         source_profile = base\nrole_session_name = oncall\n",
    )
    .unwrap();
    sb.control("DELETE", "/_sandbox/calls", None);
    let out = common::run(
        drctl(&sb)
            .args(["--profile", "oncall", "status", "--output", "json"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_CONFIG_FILE", &cfg)
            .env("AWS_SHARED_CREDENTIALS_FILE", sb.dir.path().join("none"))
            .env("AWS_ENDPOINT_URL_STS", &sb.endpoint),
    );
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let calls = sb.control("GET", "/_sandbox/calls", None);
    let sts: Vec<(String, String)> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["service"] == "sts")
        .map(|c| {
            (
                c["operation"].as_str().unwrap_or("?").to_string(),
                c["region"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    assert!(
        sts.contains(&("AssumeRole".into(), "us-west-2".into())),
        "the role was not assumed through us-west-2: {sts:?}\n{text}"
    );
    assert!(
        sts.iter().all(|(_, r)| r != "us-east-1"),
        "an STS call went to us-east-1: {sts:?}"
    );
}

/// The statically stable failover (an alarm gate, Route 53's and CloudFront's APIs dark with
/// us-east-1) runs with only `drctl iam-policy failover`, which names the gate's actions.
#[test]
fn a_gated_failover_runs_with_only_its_printed_policy() {
    let sb = Sandbox::start_seeded(
        &[
            "--profile",
            "instant",
            "--iam",
            "enforce",
            "--dns-port",
            "0",
        ],
        &["--gate", "alarm"],
    );
    let p = sb.env_file();
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replace("operation_timeout: 30s", "operation_timeout: 3s")
            .replace("attempt_timeout: 10s", "attempt_timeout: 1s")
            .replace("max_attempts: 3", "max_attempts: 2"),
    )
    .unwrap();
    // The user is made before the outage: IAM's control plane is in us-east-1 too.
    let user = user_for(&sb, "failover");
    let text = user.2.to_string();
    for action in ["cloudwatch:PutMetricData", "cloudwatch:DescribeAlarms"] {
        assert!(text.contains(action), "{action} missing: {:#}", user.2);
    }
    sb.fault(json!({"region": "us-east-1", "kind": "outage", "control_planes": true}));
    wait(
        "the primary's check to fail",
        Duration::from_secs(60),
        || sb.state()["route53"]["health_checks"][0]["healthy"] == false,
    );
    run_with(
        &sb,
        "failover",
        user,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ],
    );
    assert_eq!(sb.state()["route53"]["answer_region"], "us-west-2");
}
