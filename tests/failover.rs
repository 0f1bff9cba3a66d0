//! `drctl failover` and `drctl check` end to end: the real binary against a sandbox started by
//! each test (instant profile), asserting on what the sandbox holds afterwards, what the journal
//! recorded and what the operator was shown.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::sandbox::Sandbox;
use serde_json::{json, Value};

fn drctl(sb: &Sandbox) -> std::process::Command {
    let mut c = common::drctl(sb.dir.path());
    c.args(["--env", "drctl.yaml"]);
    c
}

fn runbook() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runbooks/warm-standby-failover.yaml")
        .display()
        .to_string()
}

/// `drctl failover` as an operator types it: the mode (and so the shipped runbook) is chosen
/// from what drctl observes.
fn failover(sb: &Sandbox) -> std::process::Output {
    common::run(drctl(sb).args([
        "failover",
        "--region",
        "us-west-2",
        "--yes",
        "--approve-irreversible",
    ]))
}

/// Poll the sandbox's state until `pred` holds, or panic after `limit`.
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

fn region<'a>(st: &'a Value, r: &str) -> &'a Value {
    &st["regions"][r]
}

/// The sandbox after a failover: standby DB writer, standby ASGs at production size,
/// CloudFront first origin and Route 53 answer in the standby region.
fn assert_failed_over(st: &Value) {
    let west = region(st, "us-west-2");
    assert_eq!(
        west["writer"],
        json!(["shop-db-usw2"]),
        "standby DB is the writer: {st:#}"
    );
    assert!(
        st["replica_links"].as_array().unwrap().is_empty(),
        "no replica link left: {st:#}"
    );
    for asg in west["asgs"].as_array().unwrap() {
        assert!(
            asg["desired"].as_i64().unwrap() >= 2 && asg["in_service"].as_i64().unwrap() >= 2,
            "standby ASG at production size: {asg}"
        );
    }
    assert_eq!(
        st["cloudfront"]["first_origin_region"], "us-west-2",
        "{st:#}"
    );
    assert_eq!(st["route53"]["answer_region"], "us-west-2", "{st:#}");
}

fn step_events<'a>(journal: &'a [Value], step: &str, ty: &str) -> Vec<&'a Value> {
    journal
        .iter()
        .filter(|r| r["type"] == ty && r["step"] == step)
        .collect()
}

fn set_aws_timeouts(sb: &Sandbox, op: &str, attempt: &str, attempts: u32) {
    let p = sb.env_file();
    let text = std::fs::read_to_string(&p).unwrap();
    let text = text
        .replace(
            "operation_timeout: 30s",
            &format!("operation_timeout: {op}"),
        )
        .replace(
            "attempt_timeout: 10s",
            &format!("attempt_timeout: {attempt}"),
        )
        .replace("max_attempts: 3", &format!("max_attempts: {attempts}"));
    assert!(
        text.contains(&format!("operation_timeout: {op}")),
        "seeded drctl.yaml changed shape"
    );
    std::fs::write(&p, text).unwrap();
}

#[test]
fn planned_switchover_fences_promotes_and_a_second_failover_is_a_no_op() {
    let sb = Sandbox::start();
    // The wrong region is refused before anything happens.
    let out = common::run(drctl(&sb).args([
        "failover",
        "--region",
        "us-east-1",
        "--yes",
        "--approve-irreversible",
        "--runbook",
        &runbook(),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("standby region is us-west-2"),
        "{}",
        common::text(&out)
    );
    // The dry run is the plan and changes nothing.
    let out = common::run(drctl(&sb).args([
        "failover",
        "--region",
        "us-west-2",
        "--dry-run",
        "--runbook",
        &runbook(),
    ]));
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("promote_replica")
            && common::text(&out).contains("IRREVERSIBLE")
            && common::text(&out).contains("predicted RTO: "),
        "{}",
        common::text(&out)
    );
    // It fits a 100-column terminal, counts what will change, and never shows a template.
    let t = common::text(&out);
    for line in t.lines() {
        assert!(
            line.chars().count() <= 100,
            "wider than 100 columns: {line:?}"
        );
    }
    assert!(
        t.contains("Plan: ") && t.contains("steps will change (1 IRREVERSIBLE)"),
        "{t}"
    );
    assert!(!t.contains("${"), "an unresolved template: {t}");
    assert!(
        !sb.dir.path().join(".drctl/runs").exists(),
        "dry run created a run"
    );
    assert_eq!(region(&sb.state(), "us-west-2")["writer"], json!([]));

    let t = Instant::now();
    let out = failover(&sb);
    let took = t.elapsed();
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    let st = sb.state();
    assert_failed_over(&st);
    // Fenced: the old primary is read-only (it kept its replica until the promotion, so RDS
    // would not stop it), so there are never two writers taking traffic.
    let east_db = &region(&st, "us-east-1")["databases"][0];
    assert_eq!(east_db["writable"], false, "old primary fenced: {st:#}");
    assert_eq!(st["split_brain"], false, "{st:#}");

    let run = common::only_run(sb.dir.path());
    let j = common::journal(sb.dir.path(), &run);
    let fence = step_events(&j, "fence_primary", "step_succeeded");
    assert_eq!(fence[0]["result"]["fenced"], true, "{:#?}", fence);
    let promote = step_events(&j, "promote_replica", "step_succeeded");
    assert_eq!(promote[0]["outcome"], "changed");
    assert!(
        promote[0]["result"]["rpo_estimate_s"].is_number(),
        "RPO recorded: {:#?}",
        promote
    );
    assert!(j
        .iter()
        .any(|r| r["type"] == "approval_granted" && r["step"] == "approve_promotion"));
    assert!(j
        .iter()
        .any(|r| r["type"] == "checkpoint_reached" && r["name"] == "before-promotion"));
    assert_eq!(j.last().unwrap()["status"], "succeeded");
    // The summary: durations, RTO, RPO, next steps.
    for want in [
        "Failover to us-west-2",
        "RTO: ",
        "PASS (target 15m",
        "RPO: 0s PASS",
        "Next:",
        "promote_replica",
        &format!("Report: drctl report {run}"),
    ] {
        assert!(text.contains(want), "summary lacks {want:?}:\n{text}");
    }
    eprintln!("planned switchover took {took:?}");

    // Its report, from the journal alone: verdicts, identity, fences, phases.
    let out = common::run(drctl(&sb).args(["report", &run, "--format", "json"]));
    assert!(out.status.success(), "{}", common::text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["recovery"], true);
    assert_eq!(r["rto"]["verdict"], "pass", "{:#}", r["rto"]);
    // A person started it: the outage begins when the fence took writes away (its intent,
    // journaled just before the side effect), not at the gate before it.
    assert_eq!(r["rto"]["from"], "fence");
    assert_eq!(
        r["rto"]["to"], "public_serves",
        "the first outside check ends the outage"
    );
    let at = |r: &serde_json::Value| {
        r["at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    let served = step_events(&j, "public_serves", "step_succeeded");
    let fence_intent = step_events(&j, "fence_primary", "step_intent");
    let gate = step_events(&j, "approve_promotion", "step_succeeded");
    assert!(
        at(gate[0]) <= at(fence_intent[0]),
        "the approval comes before the fence"
    );
    // The report keeps step spans in whole milliseconds from the run's start: the two ends
    // are each rounded once.
    let rto = r["rto"]["measured_ms"].as_i64().unwrap();
    let want = (at(served[0]) - at(fence_intent[0])).num_milliseconds();
    assert!(
        (rto - want).abs() <= 1,
        "RTO {rto} ms, fence to served {want} ms"
    );
    assert_eq!(
        r["rpo"]["measured_s"],
        promote[0]["result"]["rpo_estimate_s"]
    );
    assert_eq!(r["rpo"]["verdict"], "pass");
    assert_eq!(r["phase_before"], "protected");
    assert_eq!(r["phase_after"], "failed_over");
    assert_eq!(r["fences"][0]["fenced"], true);
    assert!(
        r["started_by"]["aws_arn"]
            .as_str()
            .unwrap_or("")
            .starts_with("arn:aws:"),
        "{:#}",
        r["started_by"]
    );
    // The HTML in a browser: one bar per step, the verdicts shown.
    let html = sb.dir.path().join("failover.html");
    let out = common::run(drctl(&sb).args(["report", &run, "--out"]).arg(&html));
    assert!(out.status.success(), "{}", common::text(&out));
    let dom = common::browser::dom(&html);
    for s in r["steps"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        assert_eq!(common::browser::bars(&dom, id), 1, "one bar for {id}");
    }
    assert!(
        dom.contains(r#"id="rto" class="verdict pass" data-verdict="pass""#),
        "RTO verdict shown"
    );
    assert!(
        dom.contains(r#"id="rpo" class="verdict pass""#),
        "RPO verdict shown"
    );
    // What a reader looks for: where production went, in the header.
    let h1 = &dom[dom.find("<h1").unwrap()..dom.find("</h1>").unwrap()];
    assert!(h1.contains("us-east-1 → us-west-2"), "{h1}");
    // Every bar says how long it took, sub-second ones too.
    for s in r["steps"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        if s["span"].is_object() {
            assert!(
                dom.contains(&format!(r#"class="dur" data-step="{id}""#)),
                "no duration label for {id}"
            );
        }
    }
    // The time axis ends within a tick of the run's end, not far beyond it, and the RTO
    // target is shown (a line, or said at the edge when it is beyond the run).
    let gantt = &dom[dom.find(r#"class="gantt""#).unwrap()..];
    let gantt = &gantt[..gantt.find("</svg>").unwrap()];
    assert!(
        gantt.contains(r#"id="rto-target""#),
        "no RTO target in the chart"
    );
    let ticks: Vec<f64> = gantt
        .split(r#"text-anchor="middle">"#)
        .skip(1)
        .filter_map(|t| t.split('<').next())
        .filter_map(|l| {
            let l = l.trim();
            if let Some(sec) = l.strip_suffix('s').filter(|x| !x.contains('m')) {
                sec.parse().ok()
            } else {
                let (m, sec) = l.split_once('m')?;
                Some(
                    m.parse::<f64>().ok()? * 60.0
                        + sec.trim_end_matches('s').parse::<f64>().ok()?,
                )
            }
        })
        .collect();
    let last_tick = ticks.iter().cloned().fold(0.0, f64::max);
    let run_s = r["duration_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        last_tick >= run_s && last_tick <= run_s * 2.5 + 1.0,
        "axis to {last_tick}s for a {run_s}s run: {ticks:?}"
    );
    common::browser::screenshot(&html, "report-failover");

    // Again: observed as done, no lease taken, no run created.
    let out = failover(&sb);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("already failed over"),
        "{}",
        common::text(&out)
    );
    assert_eq!(
        common::only_run(sb.dir.path()),
        run,
        "a second failover created a run"
    );
}

#[test]
fn failover_completes_with_the_primary_region_down_and_skips_the_fence() {
    let sb = Sandbox::start();
    set_aws_timeouts(&sb, "3s", "1s", 2);
    // The ungated layout moves traffic through Route 53's API: spare the global control planes (a gated failover is tested with them dark in static_stability.rs).
    sb.fault(json!({"region": "us-east-1", "kind": "outage", "control_planes": false}));
    // An operator fails over because the primary is down: wait until Route 53 sees it.
    wait_state(
        &sb,
        "the primary's health check to fail",
        Duration::from_secs(30),
        |st| st["route53"]["health_checks"][0]["healthy"] == false,
    );

    let t = Instant::now();
    let out = failover(&sb);
    let took = t.elapsed();
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(took < Duration::from_secs(90), "took {took:?}");
    assert_failed_over(&sb.state());

    let run = common::only_run(sb.dir.path());
    let j = common::journal(sb.dir.path(), &run);
    let fence = step_events(&j, "fence_primary", "step_succeeded");
    assert_eq!(fence[0]["result"]["fenced"], false, "{fence:#?}");
    assert_eq!(fence[0]["result"]["skipped"], "primary unreachable");
    // Bounded: the unreachable region cost about one operation timeout, not a hang.
    assert!(
        fence[0]["duration_ms"].as_u64().unwrap() < 15_000,
        "{fence:#?}"
    );
    let warn = j
        .iter()
        .find(|r| r["type"] == "warning" && r["step"] == "fence_primary")
        .expect("fence warning journaled");
    assert!(
        warn["message"]
            .as_str()
            .unwrap()
            .contains("primary unreachable"),
        "{warn}"
    );
    assert!(
        text.contains("skipped: primary unreachable"),
        "summary shows the skipped fence:\n{text}"
    );
    assert!(text.contains("WARNING fence_primary"), "{text}");
    // The skipped fence is never shown as done beside its warning.
    assert!(!text.contains("fence_primary: done"), "{text}");
    assert!(
        text.contains("fence_primary: skipped: primary unreachable"),
        "{text}"
    );
    eprintln!("failover with us-east-1 down took {took:?}");
}

#[test]
fn failover_completes_under_30_percent_throttling_in_the_standby_region() {
    let sb = Sandbox::start();
    sb.fault(json!({"region": "us-west-2", "kind": "errors", "rate": 0.3, "error": "throttle"}));
    let t = Instant::now();
    let out = failover(&sb);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    sb.clear_faults();
    assert_failed_over(&sb.state());
    let run = common::only_run(sb.dir.path());
    assert_eq!(
        common::journal(sb.dir.path(), &run).last().unwrap()["status"],
        "succeeded"
    );
    eprintln!("failover under throttling took {:?}", t.elapsed());
}

fn check_json(sb: &Sandbox) -> (Option<i32>, Value) {
    let out = common::run(drctl(sb).args(["check", "--output", "json", "--timeout", "10s"]));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", common::text(&out)));
    (out.status.code(), v)
}

fn status_of<'a>(v: &'a Value, name: &str) -> (&'a str, &'a str) {
    let c = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {v:#}"));
    (c["status"].as_str().unwrap(), c["reason"].as_str().unwrap())
}

#[test]
fn check_passes_on_a_ready_standby_and_fails_on_a_missing_replica_or_stale_ami() {
    let sb = Sandbox::start();
    let (code, v) = check_json(&sb);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["failed"], 0, "{v:#}");

    // On a colour terminal the table is as a person sees it: every row's column borders line
    // up (colour is never counted as width).
    let mut cmd = drctl(&sb);
    cmd.args(["check"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    let (mut child, seen, _keys) = common::pty::spawn(cmd);
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(60), "check hung");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let raw = seen.lock().unwrap().clone();
    assert!(
        raw.windows(2).any(|w| w == b"\x1b["),
        "no colour on a terminal"
    );
    let lines = common::pty::screen(&raw, 200);
    let rows: Vec<&String> = lines.iter().filter(|l| l.starts_with('│')).collect();
    assert!(rows.len() >= 5, "{lines:#?}");
    let borders = |l: &str| -> Vec<usize> {
        l.chars()
            .enumerate()
            .filter(|(_, c)| matches!(c, '│' | '┆'))
            .map(|(i, _)| i)
            .collect()
    };
    let first = borders(rows[0]);
    for r in &rows {
        assert_eq!(borders(r), first, "misaligned:\n{}", lines.join("\n"));
    }

    // The runbook's least-privilege policy names the actions and the resources of this env.
    let out = common::run(drctl(&sb).args(["iam-policy", &runbook()]));
    assert!(out.status.success(), "{}", common::text(&out));
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stmts = policy["Statement"].as_array().unwrap();
    let grants = |action: &str, resource: &str| {
        stmts.iter().any(|st| {
            st["Action"].as_array().unwrap().iter().any(|a| a == action)
                && (st["Resource"] == resource
                    || st["Resource"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|x| x == resource)))
        })
    };
    assert!(
        grants(
            "rds:PromoteReadReplica",
            "arn:aws:rds:us-west-2:*:db:shop-db-usw2"
        ),
        "{policy:#}"
    );
    assert!(
        grants(
            "rds:ModifyDBParameterGroup",
            "arn:aws:rds:us-east-1:*:pg:shop-mysql"
        ),
        "{policy:#}"
    );
    assert!(grants("autoscaling:UpdateAutoScalingGroup", "arn:aws:autoscaling:us-west-2:*:autoScalingGroup:*:autoScalingGroupName/shop-frontend-usw2"), "{policy:#}");
    assert!(
        !grants("rds:PromoteReadReplica", "*"),
        "promotion is not granted on every instance: {policy:#}"
    );
    let out = common::run(drctl(&sb).args(["check"]));
    assert!(
        common::text(&out).contains("PASS") && common::text(&out).contains("database replica"),
        "{}",
        common::text(&out)
    );

    // A stale AMI: tighten max_ami_age below the seeded AMI's age.
    let p = sb.env_file();
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("max_ami_age: 7d", "max_ami_age: 1s")).unwrap();
    let t = Instant::now();
    let v = loop {
        let (code, v) = check_json(&sb);
        if status_of(&v, "standby AMI").0 == "fail" {
            assert_eq!(code, Some(4), "{v:#}");
            break v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "AMI never turned stale: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        status_of(&v, "standby AMI").1.contains("above max_ami_age"),
        "{v:#}"
    );
    std::fs::write(&p, text).unwrap();

    // A missing replica: delete it through the RDS API.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conf = aws_sdk_rds::Config::builder()
            .behavior_version(aws_sdk_rds::config::BehaviorVersion::latest())
            .region(aws_sdk_rds::config::Region::new("us-west-2"))
            .endpoint_url(&sb.endpoint)
            .credentials_provider(aws_sdk_rds::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .build();
        let res = aws_sdk_rds::Client::from_conf(conf)
            .delete_db_instance()
            .db_instance_identifier("shop-db-usw2")
            .skip_final_snapshot(true)
            .send()
            .await;
        res.expect("deleting a cross-region replica succeeds (the sandbox unlinks it)");
    });
    let (code, v) = check_json(&sb);
    assert_eq!(code, Some(4), "{v:#}");
    let (status, reason) = status_of(&v, "database replica");
    assert_eq!(status, "fail", "{v:#}");
    assert!(
        reason.contains("shop-db-usw2") && reason.contains("does not exist"),
        "{reason}"
    );
}

#[test]
fn check_reports_a_hung_region_as_timed_out() {
    let sb = Sandbox::start();
    set_aws_timeouts(&sb, "30s", "30s", 1);
    sb.fault(json!({"region": "us-west-2", "service": "rds", "kind": "outage"}));
    let t = Instant::now();
    let out = common::run(drctl(&sb).args(["check", "--output", "json", "--timeout", "2s"]));
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "check hung: {:?}",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(4), "{}", common::text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (status, reason) = status_of(&v, "database replica");
    assert_eq!((status, reason), ("fail", "timed out after 2s"), "{v:#}");
    sb.clear_faults();
}

#[test]
fn a_lagging_replica_pauses_the_run_before_promotion_and_a_rollback_puts_everything_back() {
    let sb = Sandbox::start();
    sb.control(
        "POST",
        "/_sandbox/replica-lag",
        Some(json!({"region": "us-west-2", "instance_id": "shop-db-usw2", "seconds": 900})),
    );
    // Unplanned: the lag guard is what stands between the operator and lost writes (a planned
    // switchover would wait for the replica to catch up instead).
    let out = common::run(drctl(&sb).args([
        "failover",
        "--region",
        "us-west-2",
        "--yes",
        "--approve-irreversible",
        "--mode",
        "unplanned",
    ]));
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(5), "paused: {text}");
    assert!(
        text.contains("lags 900s") && text.contains("force: true"),
        "{text}"
    );
    assert!(
        text.contains("drctl resume") && text.contains("drctl rollback"),
        "says what to do next: {text}"
    );
    let st = sb.state();
    assert_eq!(db_role(&st), "replica", "nothing promoted: {st:#}");

    // The refusal came before any intent: the journal shows no promotion was attempted.
    let run = common::only_run(sb.dir.path());
    let j = common::journal(sb.dir.path(), &run);
    assert!(
        step_events(&j, "promote_replica", "step_intent").is_empty(),
        "no promotion intent journaled"
    );

    // Roll back: everything done so far is undone, and nothing stops at the promotion.
    let out = common::run(drctl(&sb).args(["rollback", &run, "--yes", "--approve-irreversible"]));
    assert_eq!(
        out.status.code(),
        Some(6),
        "rolled back: {}",
        common::text(&out)
    );
    let st = sb.state();
    assert_eq!(
        region(&st, "us-east-1")["databases"][0]["status"],
        "available",
        "fence undone: {st:#}"
    );
    assert_eq!(
        st["cloudfront"]["first_origin_region"], "us-east-1",
        "{st:#}"
    );
    for asg in region(&st, "us-west-2")["asgs"].as_array().unwrap() {
        assert_eq!(asg["desired"], 1, "standby back at its warm size: {asg}");
    }
    assert_eq!(st["route53"]["answer_region"], "us-east-1");
}

fn db_role(st: &Value) -> &str {
    region(st, "us-west-2")["databases"][0]["role"]
        .as_str()
        .unwrap_or("?")
}
