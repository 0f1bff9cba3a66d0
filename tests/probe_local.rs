//! Probers against local servers that answer, refuse, hang, slow down, fail with 5xx or send the
//! wrong body; and the Host / resolve overrides. Servers are tokio TcpListeners in the test.
use std::time::Duration;

use drctl::config::env::{HttpProbe, TcpProbe};
use drctl::probe::http::{Clients, HttpCheck};
use drctl::probe::state::Thresholds;
use drctl::probe::tcp::TcpCheck;
use drctl::probe::{probe_once, Check, Reason, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Copy)]
enum Mode {
    Ok,
    Status(u16),
    Hang,
    Slow(u64),
    Body(&'static str),
    /// 200 only when the Host header is this.
    Host(&'static str),
    /// Accept, then close without answering.
    Close,
}

async fn server(mode: Mode) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                let (status, body) = match mode {
                    Mode::Ok => (200, "ok".to_string()),
                    Mode::Status(c) => (c, "error".into()),
                    Mode::Hang => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    Mode::Slow(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        (200, "ok".into())
                    }
                    Mode::Body(b) => (200, b.into()),
                    Mode::Host(h) => {
                        if req.lines().any(|l| {
                            l.trim_end() == format!("host: {h}")
                                || l.starts_with(&format!("host: {h}:"))
                        }) {
                            (200, "ok".into())
                        } else {
                            (421, "misdirected".into())
                        }
                    }
                    Mode::Close => return,
                };
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

/// A port with nothing listening on it.
async fn refused_port() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

fn http_target(url: String, f: impl FnOnce(&mut HttpProbe)) -> Target {
    let mut p = HttpProbe {
        url,
        host: None,
        sni: None,
        resolve: None,
        expect_status: "200-299".into(),
        body_contains: Some("ok".into()),
    };
    f(&mut p);
    let check = HttpCheck::new(&p, &Clients::new().unwrap()).unwrap();
    target(Check::Http(std::sync::Arc::new(check)))
}

fn target(check: Check) -> Target {
    Target {
        name: "t".into(),
        region: "us-east-1".into(),
        role: None,
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        jitter: Duration::ZERO,
        thresholds: Thresholds {
            failure: 3,
            recovery: 2,
        },
        check,
    }
}

#[tokio::test]
async fn a_healthy_server_passes() {
    let a = server(Mode::Ok).await;
    let r = probe_once(&http_target(format!("http://{a}/health"), |_| {})).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "status 200");
}

#[tokio::test]
async fn refused_hang_slow_5xx_and_body_each_fail_with_their_reason() {
    let refused = refused_port().await;
    let r = probe_once(&http_target(format!("http://{refused}/"), |_| {})).await;
    assert_eq!(r.reason, Some(Reason::Refused), "{r:?}");

    let hang = server(Mode::Hang).await;
    let t0 = std::time::Instant::now();
    let r = probe_once(&http_target(format!("http://{hang}/"), |_| {})).await;
    assert_eq!(r.reason, Some(Reason::TimedOut), "{r:?}");
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "a hang is bounded by the timeout: {:?}",
        t0.elapsed()
    );

    let slow = server(Mode::Slow(1500)).await;
    let r = probe_once(&http_target(format!("http://{slow}/"), |_| {})).await;
    assert_eq!(r.reason, Some(Reason::TimedOut), "{r:?}");
    let slow_ok = server(Mode::Slow(100)).await;
    let r = probe_once(&http_target(format!("http://{slow_ok}/"), |_| {})).await;
    assert!(
        r.ok && r.latency >= Duration::from_millis(100),
        "slow but within the timeout: {r:?}"
    );

    let e = server(Mode::Status(503)).await;
    let r = probe_once(&http_target(format!("http://{e}/"), |_| {})).await;
    assert_eq!(r.reason, Some(Reason::WrongStatus), "{r:?}");
    assert!(r.detail.contains("503"), "{r:?}");
    // ...unless 5xx is what the probe expects.
    let r = probe_once(&http_target(format!("http://{e}/"), |p| {
        p.expect_status = "500-599".into();
        p.body_contains = None;
    }))
    .await;
    assert!(r.ok, "{r:?}");

    let b = server(Mode::Body("maintenance")).await;
    let r = probe_once(&http_target(format!("http://{b}/"), |_| {})).await;
    assert_eq!(r.reason, Some(Reason::WrongBody), "{r:?}");

    let c = server(Mode::Close).await;
    let r = probe_once(&http_target(format!("http://{c}/"), |_| {})).await;
    assert_eq!(r.reason, Some(Reason::Reset), "{r:?}");
}

#[tokio::test]
async fn host_header_and_resolve_override_reach_the_alb_for_the_apps_name() {
    let a = server(Mode::Host("app.example.test")).await;
    let r = probe_once(&http_target(format!("http://{a}/"), |p| {
        p.body_contains = None
    }))
    .await;
    assert_eq!(
        r.reason,
        Some(Reason::WrongStatus),
        "without Host the ALB misdirects: {r:?}"
    );
    let r = probe_once(&http_target(format!("http://{a}/"), |p| {
        p.host = Some("app.example.test".into());
        p.body_contains = None;
    }))
    .await;
    assert!(r.ok, "{r:?}");
    // resolve: the URL names the app; the connection goes to the given address.
    let r = probe_once(&http_target(
        format!("http://app.example.test:{}/", a.port()),
        |p| {
            p.resolve = Some(a.to_string());
            p.body_contains = None;
        },
    ))
    .await;
    assert!(r.ok, "{r:?}");
}

#[tokio::test]
async fn tcp_connect_probes() {
    let a = server(Mode::Hang).await;
    let r = probe_once(&target(Check::Tcp(TcpCheck {
        address: a.to_string(),
    })))
    .await;
    assert!(r.ok, "{r:?}");
    let refused = refused_port().await;
    let r = probe_once(&target(Check::Tcp(TcpCheck {
        address: refused.to_string(),
    })))
    .await;
    assert_eq!(r.reason, Some(Reason::Refused), "{r:?}");
    let _ = TcpProbe {
        address: String::new(),
    };
}
