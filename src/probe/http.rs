//! HTTP(S) GET probes: expected status range, optional body text, Host header, and SNI or
//! address overrides so that an ALB can be probed, by its own DNS name or address, for the app's
//! host name and certificate.
//!
//! Connections are never reused: every probe opens its own, so a refused port or a black hole is
//! seen on the probe that meets it, not hidden behind a pooled keep-alive connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{ProbeError, ProbeResult, Reason};
use crate::config::env::HttpProbe;

/// Read at most this much of a body: a probe has a bounded cost, whatever the target sends.
pub const MAX_BODY: usize = 64 * 1024;

/// HTTP clients shared by the targets that need no override.
#[derive(Clone)]
pub struct Clients {
    shared: reqwest::Client,
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .user_agent(concat!("drctl-probe/", env!("CARGO_PKG_VERSION")))
}

impl Clients {
    pub fn new() -> Result<Self, ProbeError> {
        Ok(Self { shared: builder().build().map_err(|e| ProbeError::Client(e.to_string()))? })
    }
}

/// Resolves one name to somewhere else: a fixed address (`resolve`), or another host's addresses
/// (`sni`: the request names the app, the connection goes to the ALB). Other names resolve
/// normally.
struct Override {
    name: String,
    to: Destination,
}

enum Destination {
    Addr(SocketAddr),
    Host(String),
}

impl Resolve for Override {
    fn resolve(&self, name: Name) -> Resolving {
        let asked = name.as_str().to_string();
        let fixed = match &self.to {
            Destination::Addr(a) if asked.eq_ignore_ascii_case(&self.name) => Some(*a),
            _ => None,
        };
        let lookup = match &self.to {
            Destination::Host(h) if asked.eq_ignore_ascii_case(&self.name) => h.clone(),
            _ => asked,
        };
        Box::pin(async move {
            if let Some(a) = fixed {
                return Ok(Box::new(std::iter::once(a)) as Addrs);
            }
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// One HTTP target, ready to probe.
#[derive(Debug)]
pub struct HttpCheck {
    /// The URL as requested (host replaced by the SNI name when `sni` is set).
    url: reqwest::Url,
    /// The URL as written, for people.
    shown: String,
    host: Option<String>,
    status: (u16, u16),
    status_text: String,
    body_contains: Option<String>,
    client: reqwest::Client,
}

impl HttpCheck {
    pub fn new(p: &HttpProbe, clients: &Clients) -> Result<Self, String> {
        let mut url = reqwest::Url::parse(&p.url).map_err(|e| format!("url `{}`: {e}", p.url))?;
        let status = crate::steps::http_check::parse_status_range(&p.expect_status)?;
        let original_host = url.host_str().ok_or_else(|| format!("url `{}` has no host", p.url))?.to_string();
        let resolve = p.resolve.as_deref().map(|r| r.parse::<SocketAddr>().map_err(|_| format!("resolve `{r}` is not an ip:port"))).transpose()?;
        let client = match (&p.sni, resolve) {
            (None, None) => clients.shared.clone(),
            (sni, addr) => {
                // With `sni`, the request URL carries the SNI name (rustls takes the server name
                // from it) and the override sends that name to the original host or `resolve`.
                let name = match sni {
                    Some(s) => {
                        url.set_host(Some(s)).map_err(|e| format!("sni `{s}`: {e}"))?;
                        s.clone()
                    }
                    None => original_host.clone(),
                };
                let to = match addr {
                    Some(a) => Destination::Addr(a),
                    None => Destination::Host(original_host.clone()),
                };
                builder().dns_resolver(Arc::new(Override { name, to })).build().map_err(|e| e.to_string())?
            }
        };
        // Without an explicit Host, an SNI override implies the same name in Host.
        let host = p.host.clone().or_else(|| p.sni.clone());
        Ok(Self {
            url,
            shown: p.url.clone(),
            host,
            status,
            status_text: p.expect_status.clone(),
            body_contains: p.body_contains.clone(),
            client,
        })
    }

    pub fn describe(&self) -> String {
        match &self.host {
            Some(h) => format!("GET {} (Host: {h})", self.shown),
            None => format!("GET {}", self.shown),
        }
    }

    pub async fn probe(&self, timeout: Duration) -> ProbeResult {
        let start = tokio::time::Instant::now();
        let mut req = self.client.get(self.url.clone()).timeout(timeout);
        if let Some(h) = &self.host {
            req = req.header(reqwest::header::HOST, h);
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let (reason, why) = classify(&e);
                return ProbeResult::fail(reason, start.elapsed(), why);
            }
        };
        let code = resp.status().as_u16();
        if code < self.status.0 || code > self.status.1 {
            return ProbeResult::fail(Reason::WrongStatus, start.elapsed(), format!("status {code}, expected {}", self.status_text));
        }
        let Some(want) = &self.body_contains else {
            return ProbeResult::ok(start.elapsed(), format!("status {code}"));
        };
        // Read in chunks up to MAX_BODY; the request timeout still bounds the whole exchange.
        let mut body: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&c[..c.len().min(room)]);
                    if body.len() >= MAX_BODY {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let (reason, why) = classify(&e);
                    return ProbeResult::fail(reason, start.elapsed(), format!("status {code}, body: {why}"));
                }
            }
        }
        if String::from_utf8_lossy(&body).contains(want.as_str()) {
            ProbeResult::ok(start.elapsed(), format!("status {code}"))
        } else {
            ProbeResult::fail(Reason::WrongBody, start.elapsed(), format!("status {code} but the body lacks {want:?}"))
        }
    }
}

/// A reason and a short text for a request error. Walks the source chain for the I/O error
/// underneath, because reqwest reports a refused port and a TLS failure alike as "connect".
fn classify(e: &reqwest::Error) -> (Reason, String) {
    if e.is_timeout() {
        return (Reason::TimedOut, "timed out".into());
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut io_reason = None;
    let mut text = Vec::new();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_reason.get_or_insert(super::tcp::io_reason(io));
        }
        let t = s.to_string();
        if !t.is_empty() && !text.iter().any(|x: &String| x.contains(&t)) {
            text.push(t);
        }
        src = s.source();
    }
    // The URL is in reqwest's own text; keep the innermost, most specific causes.
    let detail = text.iter().skip(1).cloned().collect::<Vec<_>>().join(": ");
    let detail = if detail.is_empty() { e.without_url_ref() } else { detail };
    let lower = detail.to_lowercase();
    let reason = if let Some(r) = io_reason.filter(|r| *r != Reason::Error) {
        r
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        Reason::Dns
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        Reason::Tls
    } else if lower.contains("connection closed") || lower.contains("reset") || lower.contains("incomplete message") {
        Reason::Reset
    } else {
        Reason::Error
    };
    (reason, detail)
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(u) = self.url() {
            s = s.replace(&format!(" ({u})"), "").replace(u.as_str(), "");
        }
        s
    }
}
