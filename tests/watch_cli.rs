//! `drctl watch` as a user runs it, against local servers: it notices a primary failing, decides,
//! notifies (a hanging webhook delays nothing), serves /metrics that parse as Prometheus text,
//! /status and /healthz, and stops cleanly on SIGTERM. Also `drctl probe`'s table and exit code.
mod common;

use common::watch::{get, webhook, Watcher};

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A blocking HTTP server on a thread: answers 200 `ok`, or 503 while `fail` is set.
fn app_server(fail: Arc<AtomicBool>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let fail = fail.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let (code, body) = if fail.load(Ordering::Relaxed) {
                    (503, "down")
                } else {
                    (200, "ok")
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

// ------------------------------------------------------------------------------------------
// A strict parser of the Prometheus / OpenMetrics text format, enough to check our exposition:
// every sample belongs to a family declared by TYPE (and HELP) before it, names and labels are
// well-formed, values are numbers, histograms are cumulative and end in +Inf == _count.
// ------------------------------------------------------------------------------------------

/// A metric family and a label set: one histogram series.
type Series = (String, BTreeMap<String, String>);

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_' || x == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        if !valid_name(&key) {
            return Err(format!("bad label name {key:?}"));
        }
        if chars.next() != Some('=') || chars.next() != Some('"') {
            return Err(format!("label {key} lacks =\""));
        }
        let mut val = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some(c @ ('\\' | '"')) => val.push(c),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some('"') => break,
                Some(c) => val.push(c),
                None => return Err("unterminated label value".into()),
            }
        }
        if out.insert(key.clone(), val).is_some() {
            return Err(format!("duplicate label {key}"));
        }
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(c) => return Err(format!("unexpected {c:?} after a label")),
        }
    }
    Ok(out)
}

fn parse_exposition(text: &str) -> Result<(HashMap<String, String>, Vec<Sample>), String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    let mut eof = false;
    for (i, line) in text.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", i + 1);
        if eof {
            return Err(at("content after # EOF".into()));
        }
        if line == "# EOF" {
            eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name, arg) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            if !valid_name(name) {
                return Err(at("bad metric name".into()));
            }
            match kw {
                "TYPE" => {
                    if ![
                        "counter",
                        "gauge",
                        "histogram",
                        "summary",
                        "untyped",
                        "unknown",
                        "info",
                        "stateset",
                        "gaugehistogram",
                    ]
                    .contains(&arg)
                    {
                        return Err(at(format!("unknown type {arg}")));
                    }
                    if types.insert(name.into(), arg.into()).is_some() {
                        return Err(at("TYPE declared twice".into()));
                    }
                }
                "HELP" => {
                    helps.insert(name.into(), arg.into());
                }
                "UNIT" => {}
                _ => return Err(at(format!("unknown comment keyword {kw}"))),
            }
            continue;
        }
        if line.is_empty() {
            return Err(at("empty line".into()));
        }
        let (series, value) = match line.find('{') {
            Some(_) => {
                let e = line.rfind('}').ok_or_else(|| at("unclosed {".into()))?;
                (line[..=e].to_string(), line[e + 1..].trim().to_string())
            }
            None => {
                let (n, v) = line.split_once(' ').ok_or_else(|| at("no value".into()))?;
                (n.to_string(), v.trim().to_string())
            }
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (
                n.to_string(),
                parse_labels(l.strip_suffix('}').unwrap()).map_err(at)?,
            ),
            None => (series.clone(), BTreeMap::new()),
        };
        if !valid_name(&name) {
            return Err(at("bad sample name".into()));
        }
        let value_text = value.split_whitespace().next().unwrap_or("");
        let value: f64 = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| at("value is not a number".into()))?,
        };
        // The family this sample belongs to, by the suffixes its type allows.
        let family = types
            .iter()
            .find(|(f, t)| {
                let suffixes: &[&str] = match t.as_str() {
                    "counter" => &["_total", "_created"],
                    "histogram" | "gaugehistogram" => {
                        &["_bucket", "_sum", "_count", "_created", "_gcount", "_gsum"]
                    }
                    "summary" => &["", "_sum", "_count", "_created"],
                    "info" => &["_info"],
                    _ => &[""],
                };
                suffixes.iter().any(|s| name == format!("{f}{s}"))
            })
            .map(|(f, _)| f.clone())
            .ok_or_else(|| at("sample of no declared family (TYPE missing or before it)".into()))?;
        if !helps.contains_key(&family) {
            return Err(at(format!("family {family} has no HELP")));
        }
        if name.ends_with("_bucket") && !labels.contains_key("le") {
            return Err(at("bucket without le".into()));
        }
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    if !eof {
        return Err("no # EOF at the end (OpenMetrics)".into());
    }
    // Histograms: buckets cumulative, +Inf bucket equals _count.
    let mut buckets: HashMap<Series, Vec<(f64, f64)>> = HashMap::new();
    for s in samples.iter().filter(|s| s.name.ends_with("_bucket")) {
        let mut l = s.labels.clone();
        let le = l.remove("le").unwrap();
        let le: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().map_err(|_| format!("bad le {le}"))?
        };
        buckets
            .entry((s.name.trim_end_matches("_bucket").to_string(), l))
            .or_default()
            .push((le, s.value));
    }
    for ((fam, labels), mut b) in buckets {
        b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap());
        if b.windows(2).any(|w| w[1].1 < w[0].1) {
            return Err(format!("{fam} {labels:?}: buckets are not cumulative"));
        }
        let count = samples
            .iter()
            .find(|s| s.name == format!("{fam}_count") && s.labels == labels)
            .ok_or(format!("{fam} has no _count"))?;
        if b.last().map(|x| x.0) != Some(f64::INFINITY) || b.last().unwrap().1 != count.value {
            return Err(format!("{fam} {labels:?}: +Inf bucket != _count"));
        }
    }
    Ok((types, samples))
}

#[test]
fn the_parser_rejects_what_it_should() {
    assert!(parse_exposition("# HELP a x\n# TYPE a gauge\na 1\n# EOF\n").is_ok());
    assert!(
        parse_exposition("a 1\n# EOF\n").is_err(),
        "sample without TYPE"
    );
    assert!(
        parse_exposition("# HELP a x\n# TYPE a gauge\na{b=\"1} 1\n# EOF\n").is_err(),
        "unterminated label"
    );
    assert!(
        parse_exposition("# HELP a x\n# TYPE a counter\na 1\n# EOF\n").is_err(),
        "counter sample without _total"
    );
    assert!(
        parse_exposition("# HELP a x\n# TYPE a gauge\na one\n# EOF\n").is_err(),
        "value not a number"
    );
}

// ------------------------------------------------------------------------------------------

fn env_file(primary: &str, standby: &str, hooks: &[String]) -> String {
    let hooks: String = if hooks.is_empty() {
        " []\n".into()
    } else {
        format!(
            "\n{}",
            hooks
                .iter()
                .map(|h| format!("      - webhook: http://{h}/hook\n"))
                .collect::<String>()
        )
    };
    format!(
        "{}probes:\n  interval: 200ms\n  timeout: 150ms\n  jitter: 20ms\n  failure_threshold: 2\n  recovery_threshold: 2\n  targets:\n    - name: primary-app\n      region: us-east-1\n      http: {{url: 'http://{primary}/health', host: app.example.test, body_contains: ok}}\n    - name: standby-app\n      region: us-west-2\n      http: {{url: 'http://{standby}/health'}}\n    - name: standby-tcp\n      region: us-west-2\n      tcp: {{address: '{standby}'}}\n  watch:\n    confirm_for: 300ms\n    action: notify\n    notify_timeout: 300ms\n    notify_attempts: 2\n    notifications:{hooks}",
        common::LOCAL_ENV
    )
}

#[test]
fn watch_decides_notifies_serves_metrics_and_stops_on_sigterm() {
    let fail = Arc::new(AtomicBool::new(false));
    let primary = app_server(fail.clone());
    let standby = app_server(Arc::new(AtomicBool::new(false)));
    let got = Arc::new(Mutex::new(Vec::new()));
    let hang = webhook(true, got.clone());
    let good = webhook(false, got.clone());
    let dir = common::workspace();
    std::fs::write(
        dir.path().join("drctl.yaml"),
        env_file(&primary, &standby, &[hang, good]),
    )
    .unwrap();

    let w = Watcher::start(dir.path(), &dir.path().join("drctl.yaml"));
    w.wait_for(
        "primary-app [primary]: unknown -> healthy",
        Duration::from_secs(5),
    );
    w.wait_for(
        "standby-tcp [standby]: unknown -> healthy",
        Duration::from_secs(5),
    );
    let (code, _, body) = get(&w.addr, "/healthz");
    assert_eq!((code, body.as_str()), (200, "ok\n"));

    fail.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    let down = w.wait_for(
        "primary-app [primary]: failing -> down, wrong_status",
        Duration::from_secs(5),
    );
    let decided = w.wait_for("DECISION act", Duration::from_secs(5));
    // Order and the policy's floor: down first, and the decision no sooner than confirm_for
    // after it (how soon detection happens is measured in benches/, not asserted here).
    assert!(t0 <= down && down <= decided);
    assert!(
        decided - down >= Duration::from_millis(250),
        "decided {:?} after down (confirm_for 300ms)",
        decided - down
    );
    // The good webhook hears the decision although the first sink hangs.
    let t1 = Instant::now();
    while got.lock().unwrap().is_empty() && t1.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let msgs = got.lock().unwrap().clone();
    assert!(
        msgs.iter()
            .any(|m| m.contains("PRIMARY DOWN") && m.contains("\"decision\":\"act\"")),
        "{msgs:?}"
    );
    // Probing goes on while a webhook hangs: the standby keeps being probed.
    let (_, _, status) = get(&w.addr, "/status");
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    let standby_probes = st["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "standby-app")
        .unwrap()["probes"]
        .as_u64()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let (_, _, status) = get(&w.addr, "/status");
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    let later = st["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "standby-app")
        .unwrap()["probes"]
        .as_u64()
        .unwrap();
    assert!(
        later >= standby_probes + 2,
        "probing stalled: {standby_probes} -> {later}"
    );
    assert_eq!(st["decision"]["verdict"], "act");
    assert_eq!(st["decision"]["primary_down"], true);
    // After acting, still down: /status says for how long, and what the action did.
    assert!(
        st["decision"]["primary_down_for_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 0),
        "{:#}",
        st["decision"]
    );
    let last = &st["decision"]["last_action"];
    assert_eq!(last["event"], "action_finished", "{last:#}");
    assert!(last.to_string().contains("notified 2 sink(s)"), "{last:#}");
    assert_eq!(
        w.count("ACTION Notify started: "),
        0,
        "a notification names no runbook"
    );

    let (code, ctype, metrics) = get(&w.addr, "/metrics");
    assert_eq!(code, 200);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let (types, samples) = parse_exposition(&metrics).unwrap_or_else(|e| panic!("{e}\n{metrics}"));
    assert_eq!(
        samples
            .iter()
            .filter(|x| x.name == "drctl_watch_phase" && x.value == 1.0)
            .map(|x| x.labels.get("phase").cloned().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["cooldown"],
        "acted: the watch is in its cooldown"
    );
    for (fam, ty) in [
        ("drctl_probe_duration_seconds", "histogram"),
        ("drctl_probe_up", "gauge"),
        ("drctl_target_state", "gauge"),
        ("drctl_target_transitions", "counter"),
        ("drctl_watch_decisions", "counter"),
    ] {
        assert_eq!(types.get(fam).map(String::as_str), Some(ty), "{fam}");
    }
    let find = |name: &str, l: &[(&str, &str)]| {
        samples
            .iter()
            .find(|s| {
                s.name == name
                    && l.iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    };
    assert_eq!(
        find(
            "drctl_target_transitions_total",
            &[
                ("target", "primary-app"),
                ("from", "failing"),
                ("to", "down")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        find(
            "drctl_target_state",
            &[("target", "primary-app"), ("state", "down")]
        ),
        Some(1.0)
    );
    assert_eq!(
        find("drctl_probe_up", &[("target", "primary-app")]),
        Some(0.0)
    );
    assert_eq!(
        find("drctl_watch_decisions_total", &[("decision", "act")]),
        Some(1.0)
    );
    assert!(
        find(
            "drctl_probe_duration_seconds_count",
            &[("target", "standby-app")]
        )
        .unwrap()
            >= 3.0
    );

    let (status, lines) = w.sigterm();
    assert!(status.success(), "exit {status:?}\n{}", lines.join("\n"));
    let journal = std::fs::read_to_string(dir.path().join(".drctl/watch/local.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "stopped", "{journal}");
    assert!(journal.contains("\"decision\":\"act\""));
}

#[test]
fn probe_prints_a_table_and_exits_4_when_a_target_fails() {
    let fail = Arc::new(AtomicBool::new(false));
    let primary = app_server(fail.clone());
    let standby = app_server(Arc::new(AtomicBool::new(false)));
    let dir = common::workspace();
    std::fs::write(
        dir.path().join("drctl.yaml"),
        env_file(&primary, &standby, &[]),
    )
    .unwrap();
    let out = common::run(common::drctl(dir.path()).args(["probe"]));
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    assert!(common::text(&out).contains("all 3 targets answered as expected"));
    fail.store(true, Ordering::Relaxed);
    let out = common::run(common::drctl(dir.path()).args(["probe", "--output", "json"]));
    assert_eq!(out.status.code(), Some(4), "{}", common::text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failed"], 1);
    assert_eq!(v["targets"][0]["reason"], "wrong_status");
    let out = common::run(common::drctl(dir.path()).args(["probe", "--target", "nope"]));
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
}
