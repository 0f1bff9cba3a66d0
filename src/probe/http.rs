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

/// Who this process probes as, when it says (`drctl watch --watcher-id`): sent as
/// `X-Drctl-Client` on every probe, so that the sandbox can cut one watcher's network path
/// alone. Set once, before the first client is built.
static CLIENT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Name this process's probes (see [`CLIENT_ID`]); the first name given stays.
pub fn set_client_id(id: &str) {
    let _ = CLIENT_ID.set(id.to_string());
}

fn builder() -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .user_agent(concat!("drctl-probe/", env!("CARGO_PKG_VERSION")));
    if let Some(v) = CLIENT_ID
        .get()
        .and_then(|id| reqwest::header::HeaderValue::from_str(id).ok())
    {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-drctl-client", v);
        b = b.default_headers(h);
    }
    b
}

impl Clients {
    pub fn new() -> Result<Self, ProbeError> {
        Ok(Self {
            shared: builder()
                .build()
                .map_err(|e| ProbeError::Client(e.to_string()))?,
        })
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
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup.as_str(), 0))
                .await?
                .collect();
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
    /// Plain `http://`: probed by [`plain`] (a minimal HTTP/1.1 exchange on one connection),
    /// which costs a fraction of a general-purpose client's CPU per probe.
    plain: Option<Plain>,
}

/// What the plain HTTP/1.1 path needs, prepared once.
#[derive(Debug)]
struct Plain {
    /// Where to connect: a fixed address (`resolve`, or an IP literal) or a name to resolve.
    to: PlainDest,
    /// The whole request, written in one go.
    request: Vec<u8>,
}

#[derive(Debug)]
enum PlainDest {
    Addr(SocketAddr),
    Name(String, u16),
}

impl HttpCheck {
    pub fn new(p: &HttpProbe, clients: &Clients) -> Result<Self, String> {
        let mut url = reqwest::Url::parse(&p.url).map_err(|e| format!("url `{}`: {e}", p.url))?;
        let status = crate::config::parse_status_range(&p.expect_status)?;
        let original_host = url
            .host_str()
            .ok_or_else(|| format!("url `{}` has no host", p.url))?
            .to_string();
        let resolve = p
            .resolve
            .as_deref()
            .map(|r| {
                r.parse::<SocketAddr>()
                    .map_err(|_| format!("resolve `{r}` is not an ip:port"))
            })
            .transpose()?;
        let client = match (&p.sni, resolve) {
            (None, None) => clients.shared.clone(),
            (sni, addr) => {
                // With `sni`, the request URL carries the SNI name (rustls takes the server name
                // from it) and the override sends that name to the original host or `resolve`.
                let name = match sni {
                    Some(s) => {
                        url.set_host(Some(s))
                            .map_err(|e| format!("sni `{s}`: {e}"))?;
                        s.clone()
                    }
                    None => original_host.clone(),
                };
                let to = match addr {
                    Some(a) => Destination::Addr(a),
                    None => Destination::Host(original_host.clone()),
                };
                builder()
                    .dns_resolver(Arc::new(Override { name, to }))
                    .build()
                    .map_err(|e| e.to_string())?
            }
        };
        // Without an explicit Host, an SNI override implies the same name in Host.
        let host = p.host.clone().or_else(|| p.sni.clone());
        let plain = (url.scheme() == "http").then(|| {
            let port = url.port_or_known_default().unwrap_or(80);
            let to = match resolve {
                Some(a) => PlainDest::Addr(a),
                None => match original_host.trim_matches(|c| c == '[' || c == ']').parse::<std::net::IpAddr>() {
                    Ok(ip) => PlainDest::Addr(SocketAddr::new(ip, port)),
                    Err(_) => PlainDest::Name(original_host.clone(), port),
                },
            };
            let host_header = host.clone().unwrap_or_else(|| match url.port() {
                Some(p) => format!("{original_host}:{p}"),
                None => original_host.clone(),
            });
            let path = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            };
            // The id is checked (`A-Za-z0-9-_.`) before it is set: it cannot break the request.
            let client = CLIENT_ID
                .get()
                .map(|id| format!("X-Drctl-Client: {id}\r\n"))
                .unwrap_or_default();
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: drctl-probe/{}\r\n{client}Accept: */*\r\nConnection: close\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
            .into_bytes();
            Plain { to, request }
        });
        Ok(Self {
            url,
            shown: p.url.clone(),
            host,
            status,
            status_text: p.expect_status.clone(),
            body_contains: p.body_contains.clone(),
            client,
            plain,
        })
    }

    pub fn describe(&self) -> String {
        match &self.host {
            Some(h) => format!("GET {} (Host: {h})", self.shown),
            None => format!("GET {}", self.shown),
        }
    }

    pub async fn probe(&self, timeout: Duration) -> ProbeResult {
        if let Some(p) = &self.plain {
            return self.probe_plain(p).await;
        }
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
            return ProbeResult::fail(
                Reason::WrongStatus,
                start.elapsed(),
                format!("status {code}, expected {}", self.status_text),
            );
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
                    return ProbeResult::fail(
                        reason,
                        start.elapsed(),
                        format!("status {code}, body: {why}"),
                    );
                }
            }
        }
        if String::from_utf8_lossy(&body).contains(want.as_str()) {
            ProbeResult::ok(start.elapsed(), format!("status {code}"))
        } else {
            ProbeResult::fail(
                Reason::WrongBody,
                start.elapsed(),
                format!("status {code} but the body lacks {want:?}"),
            )
        }
    }
}

impl HttpCheck {
    /// One HTTP/1.1 GET on a fresh connection, `Connection: close`. The caller's timeout bounds
    /// it; the reads here are bounded in size (headers 16 KiB, body [`MAX_BODY`]).
    async fn probe_plain(&self, p: &Plain) -> ProbeResult {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let start = tokio::time::Instant::now();
        let fail = |reason, detail: String| ProbeResult::fail(reason, start.elapsed(), detail);
        let addr = match &p.to {
            PlainDest::Addr(a) => *a,
            PlainDest::Name(h, port) => match tokio::net::lookup_host((h.as_str(), *port))
                .await
                .map(|mut a| a.next())
            {
                Ok(Some(a)) => a,
                Ok(None) => return fail(Reason::Dns, format!("{h} has no address")),
                Err(e) => return fail(Reason::Dns, format!("{h}: {e}")),
            },
        };
        let mut s = match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => return fail(super::tcp::io_reason(&e), format!("connect to {addr}: {e}")),
        };
        let _ = s.set_nodelay(true);
        if let Err(e) = s.write_all(&p.request).await {
            return fail(
                super::tcp::io_reason(&e),
                format!("sending the request: {e}"),
            );
        }
        const MAX_HEAD: usize = 16 * 1024;
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        // Read the head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_HEAD {
                return fail(Reason::Error, "response head larger than 16 KiB".into());
            }
            match s.read(&mut chunk).await {
                Ok(0) if buf.is_empty() => {
                    return fail(Reason::Reset, "connection closed before an answer".into())
                }
                Ok(0) => {
                    return fail(
                        Reason::Error,
                        "connection closed inside the response head".into(),
                    )
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    return fail(
                        super::tcp::io_reason(&e),
                        format!("reading the answer: {e}"),
                    )
                }
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let code = match head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
        {
            Some(c) if head.starts_with("HTTP/1.") => c,
            _ => {
                return fail(
                    Reason::Error,
                    format!(
                        "not an HTTP/1 answer: {:?}",
                        head.lines().next().unwrap_or("")
                    ),
                )
            }
        };
        if code < self.status.0 || code > self.status.1 {
            return fail(
                Reason::WrongStatus,
                format!("status {code}, expected {}", self.status_text),
            );
        }
        let Some(want) = &self.body_contains else {
            return ProbeResult::ok(start.elapsed(), format!("status {code}"));
        };
        let lower = head.to_ascii_lowercase();
        let length = lower.lines().find_map(|l| {
            l.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        let chunked = lower
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
        let mut body = buf.split_off(head_end);
        let limit = length.unwrap_or(MAX_BODY).min(MAX_BODY);
        while body.len() < limit {
            match s.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    return fail(
                        super::tcp::io_reason(&e),
                        format!("status {code}, reading the body: {e}"),
                    )
                }
            }
        }
        body.truncate(MAX_BODY);
        let text = if chunked {
            dechunk(&body)
        } else {
            String::from_utf8_lossy(&body).into_owned()
        };
        if text.contains(want.as_str()) {
            ProbeResult::ok(start.elapsed(), format!("status {code}"))
        } else {
            ProbeResult::fail(
                Reason::WrongBody,
                start.elapsed(),
                format!("status {code} but the body lacks {want:?}"),
            )
        }
    }
}

/// The data of a chunked body (as much as was read); framing errors end it early.
fn dechunk(mut b: &[u8]) -> String {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..i])
            .ok()
            .and_then(|x| usize::from_str_radix(x.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(n) = size.filter(|n| *n > 0) else {
            break;
        };
        let data = &b[i + 2..];
        out.extend_from_slice(&data[..n.min(data.len())]);
        if data.len() < n + 2 {
            break;
        }
        b = &data[n + 2..];
    }
    String::from_utf8_lossy(&out).into_owned()
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
    let detail = if detail.is_empty() {
        e.without_url_ref()
    } else {
        detail
    };
    let lower = detail.to_lowercase();
    let reason = if let Some(r) = io_reason.filter(|r| *r != Reason::Error) {
        r
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        Reason::Dns
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        Reason::Tls
    } else if lower.contains("connection closed")
        || lower.contains("reset")
        || lower.contains("incomplete message")
    {
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
