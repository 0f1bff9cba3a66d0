//! The round trip on the two-region sandbox, through the real binary: an unplanned failover
//! that holds when the old region returns, the fence a running `drctl watch` completes by
//! itself, a planned switchover that loses nothing, reprotect and failback back to the seeded
//! roles, with a sampler that watches for two writable databases that traffic can reach.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::sandbox::Sandbox;
use common::watch::Watcher;
use serde_json::{json, Value};

fn drctl(sb: &Sandbox) -> std::process::Command {
    let mut c = common::drctl(sb.dir.path());
    c.args(["--env", "drctl.yaml"]);
    c
}

fn ok(sb: &Sandbox, args: &[&str]) -> String {
    let out = common::run(drctl(sb).args(args));
    let t = common::text(&out);
    assert!(out.status.success(), "drctl {args:?}: {t}");
    t
}

/// `drctl status --output json`: (exit code, the environment).
fn status(sb: &Sandbox) -> (i32, Value) {
    let out = common::run(drctl(sb).args(["status", "--output", "json"]));
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status json: {e}: {}", common::text(&out)));
    (out.status.code().unwrap_or(-1), v)
}

fn findings(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["status"].as_str().unwrap(),
                f["text"].as_str().unwrap()
            )
        })
        .collect()
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

fn db<'a>(st: &'a Value, region: &str, id: &str) -> &'a Value {
    st["regions"][region]["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {region}: {st:#}"))
}

/// Reads the sandbox every 200 ms and keeps every state in which traffic could reach two
/// writable databases.
struct Sampler {
    stop: Arc<AtomicBool>,
    bad: Arc<Mutex<Vec<Value>>>,
    samples: Arc<Mutex<usize>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(endpoint: &str) -> Sampler {
        let (stop, bad, samples) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(Mutex::new(vec![])),
            Arc::new(Mutex::new(0)),
        );
        let (s2, b2, n2, ep) = (
            stop.clone(),
            bad.clone(),
            samples.clone(),
            endpoint.to_string(),
        );
        let handle = std::thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                let addr = ep.trim_start_matches("http://");
                if let Ok((200, _, body)) =
                    std::panic::catch_unwind(|| common::watch::get(addr, "/_sandbox/state"))
                {
                    if let Ok(v) = serde_json::from_str::<Value>(&body) {
                        *n2.lock().unwrap() += 1;
                        if v["split_brain"] == true {
                            b2.lock().unwrap().push(v);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Sampler {
            stop,
            bad,
            samples,
            handle: Some(handle),
        }
    }

    /// (samples taken, states with two reachable writers).
    fn finish(mut self) -> (usize, Vec<Value>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let n = *self.samples.lock().unwrap();
        let bad = self.bad.lock().unwrap().clone();
        (n, bad)
    }
}

#[test]
fn an_unplanned_failover_holds_when_the_region_returns_and_the_watch_fences_the_old_primary() {
    let sb = Sandbox::start();
    let hc_interval = sb.state()["profile"]["seconds"]["health_check_interval"]
        .as_f64()
        .unwrap();
    // The ungated layout moves traffic through Route 53's API: spare the global control planes (a gated failover is tested with them dark in static_stability.rs).
    sb.fault(json!({"region": "us-east-1", "kind": "outage", "control_planes": false}));
    let t = ok(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ],
    );
    assert!(t.contains("unplanned"), "the mode is said, and why: {t}");
    let (code, v) = status(&sb);
    assert_eq!(v["phase"], "failed_over", "{v:#}");
    assert_eq!(code, 4, "an outstanding fence is dangerous: {v:#}");
    assert!(
        findings(&v)
            .iter()
            .any(|f| f.starts_with("fail") && f.contains("`shop-db-use1` unfenced")),
        "{v:#}"
    );
    // `drctl fence` cannot fence a dark region, and says why (nothing written).
    let out = common::run(drctl(&sb).args(["fence", "--yes", "--approve-irreversible"]));
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("does not answer"),
        "{}",
        common::text(&out)
    );

    // A watch runs (its seeded policy only notifies); then the region comes back.
    let w = Watcher::start(sb.dir.path(), &sb.env_file());
    sb.clear_faults();
    let back = Instant::now();
    // For ten health-check intervals Route 53 keeps answering the standby, though the old
    // primary's health check passes again.
    let hold = Duration::from_secs_f64(hc_interval * 10.0);
    while back.elapsed() < hold {
        let st = sb.state();
        assert_eq!(
            st["route53"]["answer_region"],
            "us-west-2",
            "Route 53 went back to the old primary {:?} after the outage: {st:#}",
            back.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let st = sb.state();
    assert!(
        st["route53"]["health_checks"][0]["healthy"] == true,
        "the old primary's check passes again: {st:#}"
    );
    // The watch fenced the old primary by itself, and journaled it.
    w.wait_for("FENCE completed", Duration::from_secs(60));
    let st = sb.state();
    assert_eq!(
        db(&st, "us-east-1", "shop-db-use1")["writable"],
        false,
        "{st:#}"
    );
    let wj = std::fs::read_to_string(sb.dir.path().join(".drctl/watch/sandbox.jsonl")).unwrap();
    assert!(wj.contains("\"fence_started\"") && wj.contains("\"fence_finished\""));
    let (code, v) = status(&sb);
    assert_eq!(v["phase"], "failed_over", "{v:#}");
    assert_eq!(code, 9, "unprotected, no longer dangerous: {v:#}");
    assert!(!findings(&v).iter().any(|f| f.starts_with("fail")), "{v:#}");
    let (st, _) = w.sigterm();
    assert!(st.success());

    // check now judges the old primary's region, and says it is unprotected.
    let out = common::run(drctl(&sb).args(["check", "--output", "json"]));
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["passive_region"], "us-east-1", "{c:#}");
    let replica = c["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "database replica")
        .unwrap();
    assert_eq!(replica["status"], "fail", "{c:#}");
    assert!(
        c["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["status"] == "warn" && x["reason"].as_str().unwrap().contains("unprotected")),
        "{c:#}"
    );
}

#[test]
fn the_whole_round_trip_ends_in_the_seeded_roles_and_never_has_two_reachable_writers() {
    let sb = Sandbox::start();
    let sampler = Sampler::start(&sb.endpoint);
    let (code, v) = status(&sb);
    assert_eq!((code, v["phase"].as_str()), (0, Some("protected")), "{v:#}");

    // Failback is refused before a failover and before a reprotect, changing nothing.
    let out = common::run(drctl(&sb).args([
        "failback",
        "--region",
        "us-east-1",
        "--yes",
        "--approve-irreversible",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    assert!(common::text(&out).contains("needs the environment `reprotected`"));
    assert!(
        !sb.dir.path().join(".drctl/runs").exists(),
        "no run was made"
    );

    // Unplanned failover with us-east-1 dark, then the region returns.
    sb.fault(json!({"region": "us-east-1", "kind": "outage", "control_planes": false}));
    ok(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ],
    );
    assert_eq!(status(&sb).1["phase"], "failed_over");
    // Reprotect is refused while the old primary cannot be reached or fenced.
    let out = common::run(drctl(&sb).args(["reprotect", "--yes", "--approve-irreversible"]));
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    sb.clear_faults();
    wait("us-east-1 to answer again", Duration::from_secs(30), || {
        sb.state()["regions"]["us-east-1"]["dark"] == false
    });
    let out = common::run(drctl(&sb).args([
        "failback",
        "--region",
        "us-east-1",
        "--yes",
        "--approve-irreversible",
    ]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "failback before reprotect: {}",
        common::text(&out)
    );
    let out = common::run(drctl(&sb).args(["reprotect", "--yes", "--approve-irreversible"]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "reprotect before the fence: {}",
        common::text(&out)
    );
    assert!(
        common::text(&out).contains("drctl fence"),
        "{}",
        common::text(&out)
    );
    ok(&sb, &["fence", "--yes", "--approve-irreversible"]);
    let (code, v) = status(&sb);
    assert_eq!(
        (code, v["phase"].as_str()),
        (9, Some("failed_over")),
        "{v:#}"
    );

    ok(&sb, &["reprotect", "--yes", "--approve-irreversible"]);
    let (code, v) = status(&sb);
    assert_eq!(
        (code, v["phase"].as_str()),
        (0, Some("reprotected")),
        "{v:#}"
    );
    // The old primary is kept, renamed and stopped, and reported.
    let st = sb.state();
    let kept: Vec<&Value> = st["regions"]["us-east-1"]["databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["id"].as_str().unwrap().starts_with("shop-db-use1-old-"))
        .collect();
    assert_eq!(kept.len(), 1, "{st:#}");
    assert_eq!(kept[0]["status"], "stopped");
    assert!(findings(&v)
        .iter()
        .any(|f| f.contains("1 retired instance(s) kept (shop-db-use1-old-")));

    // Failback is refused while the new replica lags above the RPO target.
    sb.control(
        "POST",
        "/_sandbox/replica-lag",
        Some(json!({"region": "us-east-1", "instance_id": "shop-db-use1", "seconds": 900})),
    );
    let out = common::run(drctl(&sb).args([
        "failback",
        "--region",
        "us-east-1",
        "--yes",
        "--approve-irreversible",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("lags 900s"),
        "{}",
        common::text(&out)
    );
    sb.control(
        "POST",
        "/_sandbox/replica-lag",
        Some(json!({"region": "us-east-1", "instance_id": "shop-db-use1", "seconds": null})),
    );
    // CloudWatch keeps the minute's maximum: the 900 s datapoint ages out within a minute.
    wait(
        "the replica's lag to drop below the target",
        Duration::from_secs(150),
        || {
            status(&sb).1["primary"]["database"]["lag_s"]
                .as_f64()
                .is_some_and(|l| l < 300.0)
        },
    );

    ok(
        &sb,
        &[
            "failback",
            "--region",
            "us-east-1",
            "--yes",
            "--approve-irreversible",
        ],
    );
    let (code, v) = status(&sb);
    assert_eq!((code, v["phase"].as_str()), (0, Some("protected")), "{v:#}");

    // The seeded roles: us-east-1 writer, a replica of it in us-west-2, Route 53 and
    // CloudFront on us-east-1, us-west-2 at its warm size.
    let st = sb.state();
    assert_eq!(st["regions"]["us-east-1"]["app_database"], "shop-db-use1");
    assert_eq!(db(&st, "us-east-1", "shop-db-use1")["role"], "writer");
    assert_eq!(db(&st, "us-east-1", "shop-db-use1")["writable"], true);
    let usw2 = db(&st, "us-west-2", "shop-db-usw2");
    assert_eq!(usw2["role"], "replica", "{st:#}");
    assert!(
        usw2["source"]
            .as_str()
            .unwrap()
            .ends_with(":db:shop-db-use1"),
        "{st:#}"
    );
    assert_eq!(st["route53"]["answer_region"], "us-east-1");
    assert_eq!(st["route53"]["failover"], "PRIMARY");
    assert_eq!(st["cloudfront"]["first_origin_region"], "us-east-1");
    for g in st["regions"]["us-west-2"]["asgs"].as_array().unwrap() {
        assert_eq!(g["desired"], 1, "warm size: {st:#}");
    }
    for g in st["regions"]["us-east-1"]["asgs"].as_array().unwrap() {
        assert_eq!(g["desired"], 2, "production size: {st:#}");
    }

    let (samples, bad) = sampler.finish();
    assert!(samples > 20, "the sampler ran ({samples} samples)");
    assert!(
        bad.is_empty(),
        "{} of {samples} samples saw two writable databases traffic can reach; first: {:#}",
        bad.len(),
        bad[0]
    );
}

#[test]
fn a_planned_failover_fences_first_and_promotes_at_lag_zero() {
    let sb = Sandbox::start();
    let t = ok(
        &sb,
        &[
            "failover",
            "--region",
            "us-west-2",
            "--yes",
            "--approve-irreversible",
        ],
    );
    assert!(t.contains("planned"), "{t}");
    let run = common::only_run(sb.dir.path());
    let j = common::journal(sb.dir.path(), &run);
    let pos = |pred: &dyn Fn(&Value) -> bool| j.iter().position(pred);
    let fenced = pos(&|r| r["type"] == "fence" && r["fenced"] == true).expect("fence journaled");
    let promote = pos(&|r| r["type"] == "step_intent" && r["step"] == "promote_replica")
        .expect("promotion intent");
    assert!(
        fenced < promote,
        "the old primary was read-only before the promotion began"
    );
    let rpo: Vec<f64> = j
        .iter()
        .filter(|r| r["type"] == "measured" && r["measure"] == "rpo_seconds")
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(rpo, [0.0], "promoted at lag 0: {j:#?}");
    let st = sb.state();
    assert_eq!(db(&st, "us-east-1", "shop-db-use1")["writable"], false);
    assert_eq!(db(&st, "us-west-2", "shop-db-usw2")["writable"], true);
    assert_eq!(st["split_brain"], false);
    assert_eq!(status(&sb).1["phase"], "failed_over");
}
