//! Game-day drills against the sandbox: an isolated drill changes nothing in production and
//! leaves nothing tagged; a drill killed at several points is cleaned up by `drctl drill
//! cleanup`, and no new drill starts before that; a primary outage mid-drill stops the drill,
//! which tears down and yields the lease to the watch's failover. What is left is asked of the
//! sandbox's AWS APIs directly (boto3), not of drctl.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::sandbox::{python, Sandbox};
use common::{journal, text};
use serde_json::{json, Value};

fn drctl(sb: &Sandbox) -> Command {
    let mut c = common::drctl(sb.dir.path());
    c.args(["--env", "drctl.yaml"]);
    c
}

fn drill(sb: &Sandbox, kill_after_call: Option<usize>) -> Output {
    let mut c = drctl(sb);
    c.args(["drill", "--mode", "isolated", "--yes", "--output", "json"]);
    if let Some(n) = kill_after_call {
        c.env("DRCTL_TEST_KILL_AFTER_MUTATING_CALL", n.to_string());
    }
    common::run(&mut c)
}

/// The drill's JSON ending (the last line of stdout that is one).
fn ending(o: &Output) -> Value {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(|v| v["type"] == "drill")
        })
        .unwrap_or_else(|| panic!("no drill JSON in: {}", text(o)))
}

/// Every resource in the standby region that carries a `drctl:drill` tag and still exists,
/// asked of the sandbox with boto3 (the tagging API, plus listeners, which it does not list).
fn tagged(sb: &Sandbox) -> Vec<String> {
    const PY: &str = r#"
import json, sys, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-west-2",
          aws_access_key_id="test", aws_secret_access_key="test")
ec2, elb = boto3.client("ec2", **kw), boto3.client("elbv2", **kw)
out = []
for page in boto3.client("resourcegroupstaggingapi", **kw).get_paginator("get_resources").paginate(
        TagFilters=[{"Key": "drctl:drill"}]):
    for r in page["ResourceTagMappingList"]:
        arn = r["ResourceARN"]
        if ":instance/" in arn:
            res = ec2.describe_instances(InstanceIds=[arn.split("/")[-1]])["Reservations"]
            if not res or res[0]["Instances"][0]["State"]["Name"] == "terminated":
                continue
        out.append(arn)
for lb in elb.describe_load_balancers()["LoadBalancers"]:
    ls = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    if ls:
        for d in elb.describe_tags(ResourceArns=[l["ListenerArn"] for l in ls])["TagDescriptions"]:
            if any(t["Key"] == "drctl:drill" for t in d["Tags"]):
                out.append(d["ResourceArn"])
print(json.dumps(sorted(set(out))))
"#;
    let out = Command::new(python())
        .args(["-c", PY, &sb.endpoint])
        .stderr(Stdio::inherit())
        .output()
        .expect("python runs");
    assert!(out.status.success(), "boto3 listing failed");
    serde_json::from_slice(&out.stdout).expect("json list")
}

/// `drctl status --output json` without what moves on its own (lag figures, times).
fn status(sb: &Sandbox) -> Value {
    let o = common::run(drctl(sb).args(["status", "--output", "json"]));
    let mut v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("status JSON: {}", text(&o)));
    scrub(&mut v);
    v
}

fn scrub(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k.contains("lag") || k.ends_with("_at") || k == "age_s" {
                    *x = Value::Null;
                } else {
                    scrub(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

fn mutating_calls(sb: &Sandbox) -> Value {
    for _ in 0..600 {
        let c = sb.control("GET", "/_sandbox/calls", None);
        if c["in_flight"] == 0 && c["connections"].as_u64().is_some_and(|n| n <= 1) {
            return c["mutating"].clone();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the sandbox kept requests in flight for 30 s");
}

/// Wait (bounded) until a drill's restore is under way: its journal has the `database` step's
/// intent.
fn wait_for_restore(dir: &std::path::Path) {
    let t0 = Instant::now();
    loop {
        let restoring = std::fs::read_dir(dir.join(".drctl/runs"))
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.path().join("journal.jsonl"))
                    .is_ok_and(|j| j.contains("\"step\":\"database\"") && j.contains("step_intent"))
            });
        if restoring {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the drill never started its restore"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_isolated_drill_proves_the_copy_serves_and_leaves_production_as_it_was() {
    let sb = Sandbox::start();
    let state_before = sb.state();
    let status_before = status(&sb);
    assert_eq!(status_before["phase"], "protected", "{status_before}");

    // A runbook whose steps make drill resources only runs as a drill (preflight, guard,
    // teardown): `drctl run` refuses it and makes no run.
    let rb = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/drill-isolated.yaml");
    let o = common::run(drctl(&sb).arg("run").arg(&rb).arg("--yes"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("drctl drill --mode isolated"),
        "{}",
        text(&o)
    );
    assert!(
        !sb.dir.path().join(".drctl/runs").exists(),
        "no run was made"
    );

    let o = drill(&sb, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let d = ending(&o);
    assert_eq!(d["passed"], true, "{d}");
    assert!(d["database_s"].as_f64().is_some(), "{d}");
    assert!(d["serving_s"].as_f64().is_some(), "{d}");
    let kinds: Vec<&str> = d["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for k in ["DB instance", "instance", "target group", "listener"] {
        assert!(kinds.contains(&k), "no {k} among {kinds:?}");
    }
    for r in d["resources"].as_array().unwrap() {
        assert!(r["removed_at"].is_string(), "not removed: {r}");
    }
    assert_eq!(d["leftovers"], json!([]));

    // The journal holds the proof and the teardown.
    let id = d["run_id"].as_str().unwrap();
    let j = journal(sb.dir.path(), id);
    let app = j
        .iter()
        .find(|r| r["type"] == "step_succeeded" && r["step"] == "app")
        .expect("app succeeded");
    let db = j
        .iter()
        .find(|r| r["type"] == "step_succeeded" && r["step"] == "database")
        .unwrap();
    let db_id = db["result"]["db_instance_id"].as_str().unwrap();
    assert!(
        app["result"]["db_check"]
            .as_str()
            .unwrap()
            .contains(&format!("database={db_id}")),
        "the app did not report the drill database: {app}"
    );
    for step in ["app", "database"] {
        assert!(
            j.iter().any(|r| r["type"] == "undone" && r["step"] == step),
            "{step} was not undone"
        );
    }
    let measures: Vec<&str> = j
        .iter()
        .filter(|r| r["type"] == "measured")
        .map(|r| r["measure"].as_str().unwrap())
        .collect();
    assert!(
        measures.contains(&"drill_database_seconds") && measures.contains(&"drill_serving_seconds"),
        "{measures:?}"
    );

    // The drill's verdict in every view: the journal, history, the report's JSON and the HTML
    // badge in Chromium. Never "rolled back".
    let last = j.last().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["status"].as_str()),
        (Some("run_finished"), Some("succeeded")),
        "{last}"
    );
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("the drill passed"),
        "{last}"
    );
    let h = common::run(drctl(&sb).args(["history", "--output", "json"]));
    let rows: Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(rows[0]["outcome"], "passed", "{rows}");
    let r = common::run(drctl(&sb).args(["report", id, "--format", "json"]));
    let rep: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(rep["outcome"], "passed");
    let html = sb.dir.path().join("drill.html");
    let r = common::run(drctl(&sb).args(["report", id, "--out"]).arg(&html));
    assert!(r.status.success(), "{}", text(&r));
    let dom = common::browser::dom(&html);
    let badge = &dom[dom.find("id=\"outcome\"").expect("badge")..];
    let badge = &badge[..badge.find("</span>").unwrap()];
    assert!(
        badge.contains("pass") && badge.contains("PASSED"),
        "{badge}"
    );
    assert!(
        !dom.contains("rolled back"),
        "the HTML calls the drill rolled back"
    );

    // Production as it was; nothing tagged left.
    assert_eq!(tagged(&sb), Vec::<String>::new());
    assert_eq!(status(&sb), status_before);
    assert_eq!(sb.state(), state_before);
}

#[test]
fn a_killed_drill_blocks_new_drills_until_cleanup_removes_everything() {
    // Mutating calls of a drill: CreateDBSnapshot, RestoreDBInstanceFromDBSnapshot,
    // CreateTargetGroup, RunInstances, RegisterTargets, CreateListener.
    let mut sb = Sandbox::start();
    sb.snapshot("seeded");
    for n in [2, 4, 6] {
        sb.restore("seeded");
        let state_before = sb.state();
        let o = drill(&sb, Some(n));
        assert_eq!(
            o.status.signal(),
            Some(9),
            "call {n}: not killed: {}",
            text(&o)
        );
        let left = tagged(&sb);
        assert!(
            !left.is_empty(),
            "call {n}: the killed drill left nothing to clean up"
        );

        // A new drill refuses, creates nothing, and says what to do.
        let before = mutating_calls(&sb);
        let again = drill(&sb, None);
        assert_eq!(again.status.code(), Some(12), "call {n}: {}", text(&again));
        assert!(
            text(&again).contains("drctl drill cleanup"),
            "{}",
            text(&again)
        );
        assert_eq!(
            mutating_calls(&sb),
            before,
            "call {n}: a refused drill changed AWS"
        );
        // `drctl status` shows them.
        let st = common::run(drctl(&sb).args(["status"]));
        assert!(text(&st).contains("drctl drill cleanup"), "{}", text(&st));

        // `drctl resume` of a drill tears it down, as `drctl drill cleanup` does.
        let c = if n == 4 {
            let id = common::only_run(sb.dir.path());
            common::run(drctl(&sb).args(["resume", &id, "--yes"]))
        } else {
            common::run(drctl(&sb).args(["drill", "cleanup", "--yes"]))
        };
        assert_eq!(c.status.code(), Some(0), "call {n}: {}", text(&c));
        assert_eq!(tagged(&sb), Vec::<String>::new(), "call {n}: {}", text(&c));
        assert_eq!(sb.state(), state_before, "call {n}: production changed");
        // The crashed run is closed, and the next drill runs.
        let crashed = common::only_run(sb.dir.path());
        assert_eq!(
            journal(sb.dir.path(), &crashed).last().unwrap()["type"],
            "run_finished",
            "call {n}: the crashed drill's run is still open"
        );
        let next = drill(&sb, None);
        assert_eq!(next.status.code(), Some(0), "call {n}: {}", text(&next));
        assert_eq!(tagged(&sb), Vec::<String>::new());
    }
}

#[test]
fn a_primary_outage_stops_the_drill_which_cleans_up_and_the_watch_fails_over() {
    // A restore slow enough for the outage to land mid-drill.
    let profile = tempfile::tempdir().unwrap();
    let pf = profile.path().join("slow-restore.json");
    std::fs::write(
        &pf,
        r#"{"base": "instant", "rds_restore": 120, "replica_catchup_lag": 0}"#,
    )
    .unwrap();
    let sb = Sandbox::start_with(&["--profile", pf.to_str().unwrap()]);
    let dir = sb.dir.path();
    let mut env: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(sb.env_file()).unwrap()).unwrap();
    env["probes"]["watch"]["action"] = json!("failover");
    env["probes"]["watch"]["confirm_for"] = json!("1s");
    std::fs::write(sb.env_file(), serde_saphyr::to_string(&env).unwrap()).unwrap();

    let w = common::watch::Watcher::start(dir, &sb.env_file());
    w.wait_for(
        "primary-backend [primary]: unknown -> healthy",
        Duration::from_secs(20),
    );
    let child = drctl(&sb)
        .args(["drill", "--mode", "isolated", "--yes", "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the restore is under way, then take the primary region down.
    wait_for_restore(dir);
    std::thread::sleep(Duration::from_millis(500));
    // The ungated layout moves traffic through Route 53's API: spare the global control planes (a gated failover is tested with them dark in static_stability.rs).
    sb.fault(json!({"kind": "outage", "region": "us-east-1", "control_planes": false}));

    let o = child.wait_with_output().unwrap();
    let d = ending(&o);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(d["passed"], false);
    assert!(
        d["stopped"]
            .as_str()
            .unwrap_or("")
            .contains("primary went down"),
        "{d}"
    );
    assert_eq!(d["leftovers"], json!([]), "{d}");
    assert_eq!(tagged(&sb), Vec::<String>::new());

    // The watch's failover went ahead once the drill let go.
    w.wait_for(
        "ACTION Failover finished: succeeded",
        Duration::from_secs(240),
    );
    // The drill let go without closing its run (closing needs the lease the failover wanted);
    // the open run blocked nothing, and `drctl drill cleanup` closes it afterwards.
    let drill_run = d["run_id"].as_str().unwrap();
    assert_eq!(journal(dir, drill_run).last().unwrap()["type"], "paused");
    let _ = w.sigterm();
    let c = common::run(drctl(&sb).args(["drill", "cleanup", "--yes"]));
    assert_eq!(c.status.code(), Some(0), "{}", text(&c));
    assert_eq!(
        journal(dir, drill_run).last().unwrap()["type"],
        "run_finished"
    );
}

#[test]
fn scheduled_drills_fire_at_their_cron_time_one_after_the_other_and_notify() {
    use std::io::{BufRead, BufReader};
    use std::sync::{Arc, Mutex};
    let sb = Sandbox::start();
    let dir = sb.dir.path();
    let got = Arc::new(Mutex::new(Vec::new()));
    let hook = format!("http://{}/hook", common::watch::webhook(false, got.clone()));
    let mut env: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(sb.env_file()).unwrap()).unwrap();
    // Both due at 03:00 UTC: 03:00 in UTC, and 04:00 in Berlin (UTC+1 in December).
    env["drill"]["schedules"] = json!([
        {"name": "nightly-isolated", "cron": "0 3 * * *", "timezone": "UTC", "mode": "isolated",
         "notify": [{"webhook": hook}]},
        {"name": "nightly-readiness", "cron": "0 4 * * *", "timezone": "Europe/Berlin",
         "mode": "readiness", "notify": [{"webhook": hook}]},
    ]);
    std::fs::write(sb.env_file(), serde_saphyr::to_string(&env).unwrap()).unwrap();

    // `drill --list` names the next run of each, and runs nothing.
    let l = common::run(drctl(&sb).args(["drill", "--list", "--output", "json"]));
    let rows: Value = serde_json::from_slice(&l.stdout).unwrap_or_else(|_| panic!("{}", text(&l)));
    for r in rows.as_array().unwrap() {
        let next = r["next_utc"]
            .as_str()
            .unwrap_or_else(|| panic!("no next run: {r}"));
        assert!(next.contains("T03:00:00"), "{r}");
    }
    assert!(!dir.join(".drctl/runs").exists(), "--list ran something");

    // The agent's clock starts a few seconds before 03:00.
    let mut child = drctl(&sb)
        .arg("agent")
        .env("DRCTL_TEST_CLOCK", "2026-12-02T02:59:57Z")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (l2, err) = (lines.clone(), child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(line);
        }
    });
    let t0 = Instant::now();
    while got.lock().unwrap().len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "two drills did not report within 180 s:\n{}",
            lines.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0), "{}", lines.lock().unwrap().join("\n"));

    // One after the other, in order, each notified with its result and report.
    let msgs: Vec<Value> = got
        .lock()
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    assert_eq!(msgs[0]["schedule"], "nightly-isolated", "{msgs:?}");
    assert_eq!(msgs[1]["schedule"], "nightly-readiness", "{msgs:?}");
    for m in &msgs {
        assert_eq!(m["passed"], true, "{m}");
        assert!(m["text"].as_str().unwrap().contains("drctl report"), "{m}");
        assert_eq!(m["slot"], "2026-12-02T03:00:00Z", "{m}");
    }
    let run_of = |m: &Value| journal(dir, m["run_id"].as_str().unwrap());
    let (first, second) = (run_of(&msgs[0]), run_of(&msgs[1]));
    let ended = first.last().unwrap()["at"].as_str().unwrap().to_string();
    let began = second[0]["at"].as_str().unwrap().to_string();
    assert!(
        began >= ended,
        "the second drill began {began}, before the first ended {ended}"
    );
    assert!(first[0]["command"]
        .as_str()
        .unwrap()
        .contains("drill nightly-isolated"));
    // The state file says both ran for the slot.
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.join(".drctl/schedules.json")).unwrap()).unwrap();
    for n in ["nightly-isolated", "nightly-readiness"] {
        assert_eq!(state["last"][n]["outcome"], "passed", "{state}");
    }
    assert_eq!(tagged(&sb), Vec::<String>::new());
    // Webhook URLs carry tokens: no journal holds them.
    let port = hook
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for e in std::fs::read_dir(dir.join(".drctl/runs"))
        .unwrap()
        .flatten()
    {
        let j = std::fs::read_to_string(e.path().join("journal.jsonl")).unwrap();
        assert!(
            !j.contains(&format!("127.0.0.1:{port}")),
            "a journal holds the webhook URL"
        );
        assert!(
            j.contains("redacted.invalid"),
            "the journaled environment was not redacted"
        );
    }
}

#[test]
fn a_failing_primary_refuses_a_drill_and_sigterm_stops_one_which_tears_down() {
    let profile = tempfile::tempdir().unwrap();
    let pf = profile.path().join("slow-restore.json");
    std::fs::write(&pf, r#"{"base": "instant", "rds_restore": 120}"#).unwrap();
    let sb = Sandbox::start_with(&["--profile", pf.to_str().unwrap()]);
    let dir = sb.dir.path();
    let state_before = sb.state();

    // The primary's frontend refuses connections: no drill, nothing made.
    let alb = sb.topology()["regions"]["us-east-1"]["albs"]["frontend"]["dns_name"]
        .as_str()
        .unwrap()
        .to_string();
    sb.control(
        "POST",
        "/_sandbox/listeners",
        Some(json!({"name": alb, "mode": "down"})),
    );
    let before = mutating_calls(&sb);
    let o = drill(&sb, None);
    assert_eq!(o.status.code(), Some(12), "{}", text(&o));
    assert!(text(&o).contains("primary-frontend"), "{}", text(&o));
    assert_eq!(mutating_calls(&sb), before, "a refused drill changed AWS");
    assert!(
        !dir.join(".drctl/runs").exists(),
        "a refused drill wrote a run"
    );
    sb.control(
        "POST",
        "/_sandbox/listeners",
        Some(json!({"name": alb, "mode": "up"})),
    );

    // SIGTERM while the restore is under way: the drill stops, removes what it made, ends 4.
    let child = drctl(&sb)
        .args(["drill", "--mode", "isolated", "--yes", "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_restore(dir);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!tagged(&sb).is_empty(), "the restore made nothing yet");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let d = ending(&o);
    assert_eq!(d["passed"], false, "{d}");
    assert!(
        d["stopped"].as_str().unwrap_or("").contains("signal"),
        "{d}"
    );
    assert_eq!(d["leftovers"], json!([]), "{d}");
    assert_eq!(tagged(&sb), Vec::<String>::new());
    let j = journal(dir, d["run_id"].as_str().unwrap());
    assert_eq!(
        j.last().unwrap()["type"],
        "run_finished",
        "the drill's run was left open"
    );
    assert_eq!(sb.state(), state_before, "production changed");
}

#[test]
fn a_readiness_drill_changes_nothing_and_a_full_drill_ends_protected_with_rto_and_rpo() {
    let profile = tempfile::tempdir().unwrap();
    let pf = profile.path().join("caught-up.json");
    std::fs::write(&pf, r#"{"base": "instant", "replica_catchup_lag": 0}"#).unwrap();
    let sb = Sandbox::start_with(&["--profile", pf.to_str().unwrap()]);
    let mut env: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(sb.env_file()).unwrap()).unwrap();
    env["drill"]["hold"] = json!("2s");
    std::fs::write(sb.env_file(), serde_saphyr::to_string(&env).unwrap()).unwrap();

    // Readiness: a run with a journal, the checks and the plan; no mutating AWS call.
    let before = mutating_calls(&sb);
    let o = common::run(drctl(&sb).args(["drill", "--mode", "readiness", "--output", "json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let d = ending(&o);
    assert_eq!(d["passed"], true, "{d}");
    assert!(d["checks"].as_array().is_some_and(|c| c.len() >= 5), "{d}");
    assert!(d["plan"]["predicted_rto"]["predicted_ms"].is_u64(), "{d}");
    assert_eq!(mutating_calls(&sb), before, "a readiness drill changed AWS");
    let j = journal(sb.dir.path(), d["run_id"].as_str().unwrap());
    assert_eq!(j.last().unwrap()["status"], "succeeded");

    // Full: --yes alone does not approve it, and nothing happens.
    let no = common::run(drctl(&sb).args(["drill", "--mode", "full", "--yes"]));
    assert_eq!(no.status.code(), Some(8), "{}", text(&no));
    assert!(text(&no).contains("--approve-production"), "{}", text(&no));
    assert_eq!(
        mutating_calls(&sb),
        before,
        "a declined full drill changed AWS"
    );

    let o = common::run(drctl(&sb).args([
        "drill",
        "--mode",
        "full",
        "--yes",
        "--approve-production",
        "--output",
        "json",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let d = ending(&o);
    assert_eq!(d["passed"], true, "{d}");
    assert_eq!(d["phase_after"], "protected", "{d}");
    assert_eq!(d["runs"].as_array().unwrap().len(), 3, "{d}");
    assert_eq!(d["rto"]["verdict"], "pass", "{d}");
    assert!(d["rto"]["measured_ms"].is_u64(), "{d}");
    assert_eq!(d["rpo"]["verdict"], "pass", "{d}");
    // Observed, not derived: the environment is protected again, served from the primary.
    let st = status(&sb);
    assert_eq!(st["phase"], "protected", "{st}");
    assert_eq!(st["active"], "us-east-1", "{st}");
}
