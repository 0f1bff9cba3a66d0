//! Benchmark helper for benches/probe_bench.sh (not a Criterion bench; `harness = false`).
//!
//! `load_server serve --addrs N --ports-from P --ports M --control ADDR`: M x N tiny HTTP/1.1
//! listeners on 127.1.0.1.. that answer `200 ok` and close, each one switchable to a black hole
//! (connections accepted, never answered) through `GET /blackhole/<ip:port>` and `GET /up/<ip:port>`
//! on the control address.
//!
//! `load_server scrape --exporter ADDR --targets FILE --interval 1s --duration 60s`: Prometheus's
//! part in the yardstick run: every target's `/probe` on the blackbox exporter once per interval,
//! with keep-alive, counting successes. Prints one JSON line of totals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The server gets one worker (it must not starve the prober under test); the scraper, which
    // stands in for Prometheus, as many as there are cores.
    let rt = |workers: usize| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("runtime")
    };
    match args.get(1).map(String::as_str) {
        Some("serve") => rt(1).block_on(serve(&args)),
        Some("scrape") => rt(std::thread::available_parallelism().map_or(2, |n| n.get())).block_on(scrape(&args)),
        // `cargo bench` / `cargo test --all-targets` run this with no mode: do nothing, so the
        // benchmark only ever runs when probe_bench.sh asks for it.
        _ => eprintln!("load_server: a helper of benches/probe_bench.sh; nothing to do without `serve` or `scrape`"),
    }
}

async fn serve(args: &[String]) {
    let addrs: u16 = arg(args, "--addrs", "10").parse().unwrap();
    let from: u16 = arg(args, "--ports-from", "20000").parse().unwrap();
    let ports: u16 = arg(args, "--ports", "100").parse().unwrap();
    let control = arg(args, "--control", "127.0.0.1:19999");
    let mut holes: HashMap<SocketAddr, Arc<AtomicBool>> = HashMap::new();
    for a in 1..=addrs {
        for p in from..from + ports {
            let addr: SocketAddr = format!("127.1.0.{a}:{p}").parse().unwrap();
            let l = TcpListener::bind(addr)
                .await
                .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
            let hole = Arc::new(AtomicBool::new(false));
            holes.insert(addr, hole.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((s, _)) = l.accept().await else {
                        continue;
                    };
                    let hole = hole.clone();
                    tokio::spawn(answer(s, hole));
                }
            });
        }
    }
    let holes = Arc::new(holes);
    let l = TcpListener::bind(&control).await.unwrap();
    println!("ready {} listeners; control {control}", holes.len());
    loop {
        let Ok((mut s, _)) = l.accept().await else {
            continue;
        };
        let holes = holes.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split_whitespace().nth(1).unwrap_or("");
            let (code, body) = match path.split('/').collect::<Vec<_>>().as_slice() {
                ["", mode @ ("blackhole" | "up"), addr] => {
                    match addr.parse::<SocketAddr>().ok().and_then(|a| holes.get(&a)) {
                        Some(h) => {
                            h.store(*mode == "blackhole", Ordering::SeqCst);
                            (200, "done")
                        }
                        None => (404, "no such listener"),
                    }
                }
                _ => (404, "unknown"),
            };
            let _ = s.write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes()).await;
        });
    }
}

async fn answer(mut s: TcpStream, hole: Arc<AtomicBool>) {
    // A black hole holds the connection unanswered (bounded), like a dead target behind a live path.
    let mut held = 0;
    while hole.load(Ordering::Relaxed) && held < 1200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        held += 1;
    }
    if held > 0 {
        return;
    }
    let mut buf = [0u8; 2048];
    let mut got = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf[got..])).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => return,
            Ok(Ok(n)) => got += n,
        }
        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") || got == buf.len() {
            break;
        }
    }
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
    let _ = s.shutdown().await;
}

async fn scrape(args: &[String]) {
    let exporter = arg(args, "--exporter", "127.0.0.1:9115");
    let targets: Vec<String> = std::fs::read_to_string(arg(args, "--targets", "targets.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let interval = humantime::parse_duration(&arg(args, "--interval", "1s")).unwrap();
    let duration = humantime::parse_duration(&arg(args, "--duration", "60s")).unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (ok, failed, errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let missed = Arc::new(AtomicU64::new(0));
    let end = tokio::time::Instant::now() + duration;
    let mut tasks = Vec::new();
    for (i, t) in targets.into_iter().enumerate() {
        let (client, ok, failed, errors, missed) = (
            client.clone(),
            ok.clone(),
            failed.clone(),
            errors.clone(),
            missed.clone(),
        );
        let url = format!("http://{exporter}/probe?module=http_2xx&target={t}");
        // Spread the targets over the interval, as Prometheus does with its scrape offsets.
        let offset = interval.mul_f64((i as f64 * 0.618_033_988_7) % 1.0);
        tasks.push(tokio::spawn(async move {
            let mut next = tokio::time::Instant::now() + offset;
            loop {
                tokio::time::sleep_until(next).await;
                let now = tokio::time::Instant::now();
                if now >= end {
                    return;
                }
                // Like Prometheus, a scrape that overran its slot makes the next slot skip, it
                // does not queue up behind it.
                next += interval;
                while next <= now {
                    next += interval;
                    missed.fetch_add(1, Ordering::Relaxed);
                }
                match client.get(&url).send().await {
                    Ok(r) => match r.text().await {
                        Ok(body) if body.contains("\nprobe_success 1") => {
                            ok.fetch_add(1, Ordering::Relaxed)
                        }
                        Ok(_) => failed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    },
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "{{\"ok\": {}, \"failed\": {}, \"errors\": {}, \"missed\": {}, \"seconds\": {}}}",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        missed.load(Ordering::Relaxed),
        duration.as_secs_f64()
    );
}
