//! State backend costs (not a test; `make bench-state`, `harness = false`):
//!
//! 1. lease acquisition (a take after a release) and journal append latency, p50 and p99, on the
//!    file backend and on the sandbox's DynamoDB (the library's own stores, one process);
//! 2. a 15-step failover (`drctl failover`, the shipped switchover runbook) on each backend
//!    against a fresh sandbox with instant AWS delays, so that what differs is drctl's own
//!    time: the median wall time of each and their ratio.
//!
//! `state_bench measure [--n 300] [--failovers 3] [--out benches/results/state.json]`; the sandbox's
//! python is `$SANDBOX_PY` (default .venv/bin/python), drctl is `$DRCTL` (default
//! target/debug/drctl).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drctl::journal::dynamo::DynamoState;
use drctl::journal::file::FileJournalStore;
use drctl::journal::lease::FileLeaseStore;
use drctl::journal::{Event, JournalStore, LeaseRequest, LeaseStore, RunStatus};
use serde_json::json;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    std::env::var_os("SANDBOX_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"))
}

struct Sandbox {
    child: Child,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A seeded sandbox whose replica has caught up (a planned switchover promotes at once).
fn sandbox(profile: &Path) -> Sandbox {
    let mut child = Command::new(python())
        .args(["-m", "drsandbox", "serve", "--port", "0", "--profile"])
        .arg(profile)
        .env("PYTHONPATH", root().join("sandbox"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the sandbox");
    let out = child.stdout.take().unwrap();
    let mut endpoint = String::new();
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        if let Some(u) = line.strip_prefix("listening on ") {
            endpoint = u.trim().to_string();
            break;
        }
    }
    assert!(!endpoint.is_empty(), "the sandbox did not start");
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new(python())
        .args(["-m", "drsandbox", "seed", "--endpoint", &endpoint, "--out"])
        .arg(dir.path())
        .env("PYTHONPATH", root().join("sandbox"))
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "seed failed");
    Sandbox {
        child,
        endpoint,
        dir,
    }
}

fn drctl(dir: &Path) -> Command {
    let bin = std::env::var_os("DRCTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/debug/drctl"));
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env("DRCTL_PLAIN", "1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("DRCTL_ENV")
        .env_remove("DRCTL_STATE_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn use_table(sb: &Sandbox) {
    let path = sb.dir.path().join("drctl.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("state:\n  backend: dynamodb\n  table: drctl-state\n  region: us-east-2\n");
    std::fs::write(&path, text).unwrap();
    assert!(drctl(sb.dir.path())
        .args(["state", "init", "--yes"])
        .status()
        .unwrap()
        .success());
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `n` lease takes (each after a release) and `n` appends, in ms.
async fn latencies(
    leases: &dyn LeaseStore,
    journals: &dyn JournalStore,
    n: usize,
) -> (Vec<f64>, Vec<f64>) {
    let req = LeaseRequest {
        env: "sandbox".into(),
        owner: "bench".into(),
        command: "state_bench".into(),
        run_id: None,
        ttl: Duration::from_secs(60),
    };
    let mut take = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let (l, _) = leases.acquire(&req).await.expect("acquire");
        take.push(ms(t.elapsed()));
        leases.release(&l).await.expect("release");
        last = Some(l);
    }
    // Appends under a held lease, as a run makes them (a step's event is a few hundred bytes).
    let (l, _) = leases.acquire(&req).await.expect("acquire");
    let _ = last;
    let mut w = journals
        .create("20261201-000000-bench")
        .await
        .expect("create");
    let mut append = Vec::with_capacity(n);
    for i in 0..n {
        let e = Event::RunFinished {
            status: RunStatus::Aborted,
            message: format!("{i:>300}"),
        };
        let t = Instant::now();
        w.append(l.token, e).await.expect("append");
        append.push(ms(t.elapsed()));
    }
    leases.release(&l).await.expect("release");
    (take, append)
}

fn summary(v: &mut [f64]) -> serde_json::Value {
    json!({"p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99), "n": v.len()})
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs this binary too: measure only when asked (`make bench-state`).
    if !args.iter().any(|a| a == "measure") {
        eprintln!("state_bench: `make bench-state` runs it (`-- measure`); nothing to do");
        return;
    }
    let n: usize = arg(&args, "--n", "300").parse().unwrap();
    let k: usize = arg(&args, "--failovers", "3").parse().unwrap();
    let out = PathBuf::from(arg(
        &args,
        "--out",
        root().join("benches/results/state.json").to_str().unwrap(),
    ));
    std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
    let prof = tempfile::tempdir().unwrap();
    let profile = prof.path().join("caught-up.json");
    std::fs::write(&profile, r#"{"base": "instant", "replica_catchup_lag": 0}"#).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. Latencies, one process, the library's own stores.
    let sb = sandbox(&profile);
    let (mut f_take, mut f_append, mut d_take, mut d_append) = rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (ft, fa) = latencies(
            &FileLeaseStore::new(dir.path()),
            &FileJournalStore::new(dir.path()),
            n,
        )
        .await;
        let settings = drctl::config::env::AwsSettings {
            endpoint_url: Some(sb.endpoint.clone()),
            ..Default::default()
        };
        let client =
            drctl::aws::state_client(&settings, "us-east-2", None, Duration::from_secs(10)).await;
        let table = DynamoState::new(
            client,
            "drctl-state",
            "us-east-2",
            "sandbox",
            Duration::from_secs(10),
        );
        table
            .create_table(Duration::from_secs(60), |_| {})
            .await
            .expect("create the table");
        let (dt, da) = latencies(&table, &table, n).await;
        (ft, fa, dt, da)
    });
    drop(sb);

    // 2. A 15-step failover on each backend, fresh sandbox each time.
    let mut walls: [Vec<f64>; 2] = [vec![], vec![]];
    for i in 0..k {
        for (b, shared) in [(0, false), (1, true)] {
            let sb = sandbox(&profile);
            if shared {
                use_table(&sb);
            }
            let t = Instant::now();
            let ok = drctl(sb.dir.path())
                .args([
                    "failover",
                    "--region",
                    "us-west-2",
                    "--yes",
                    "--approve-irreversible",
                ])
                .status()
                .unwrap()
                .success();
            assert!(
                ok,
                "failover {i} ({}) failed",
                if shared { "dynamodb" } else { "file" }
            );
            walls[b].push(t.elapsed().as_secs_f64());
        }
    }
    let med = |v: &mut Vec<f64>| pct(v, 0.5);
    let (file_s, dyn_s) = (med(&mut walls[0].clone()), med(&mut walls[1].clone()));
    let result = json!({
        "lease_acquire": {"file": summary(&mut f_take), "dynamodb": summary(&mut d_take)},
        "journal_append": {"file": summary(&mut f_append), "dynamodb": summary(&mut d_append)},
        "failover_15_steps": {
            "file_s": walls[0], "dynamodb_s": walls[1],
            "median_file_s": file_s, "median_dynamodb_s": dyn_s,
            "ratio": dyn_s / file_s,
        },
        "note": "sandbox (moto) DynamoDB on loopback, instant AWS delays; not AWS latency",
    });
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
    std::fs::write(&out, serde_json::to_string_pretty(&result).unwrap() + "\n").unwrap();
    eprintln!("wrote {}", out.display());
}
