//! Health probes: what a target is, how one probe of it ends, and the pieces `drctl probe` and
//! `drctl watch` are built from (HTTP and TCP probers, the per-target state machine, the watch
//! loop and its decision policy, metrics, notifications).
//!
//! Nothing here knows about the terminal: results and events are values; the CLI renders them.

pub mod http;
pub mod metrics;
pub mod notify;
pub mod state;
pub mod tcp;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::env::{Environment, ProbeSettings, ProbeTarget, Role};

/// Why a probe failed. Kept coarse on purpose: these are label values and journal fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The connection was refused (nothing listens: the port or host is down).
    Refused,
    /// No answer within the timeout (a black hole, an overloaded host, a dead route).
    TimedOut,
    /// The connection was reset or closed before an answer.
    Reset,
    /// The name did not resolve.
    Dns,
    /// TLS handshake or certificate failure.
    Tls,
    /// An answer, but its status is outside the expected range.
    WrongStatus,
    /// The expected status, but the body lacks the expected text.
    WrongBody,
    /// Anything else (malformed answer, local resource exhaustion).
    Error,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Refused => "refused",
            Reason::TimedOut => "timed_out",
            Reason::Reset => "reset",
            Reason::Dns => "dns",
            Reason::Tls => "tls",
            Reason::WrongStatus => "wrong_status",
            Reason::WrongBody => "wrong_body",
            Reason::Error => "error",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one probe ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    pub ok: bool,
    /// `None` on success.
    pub reason: Option<Reason>,
    /// For people: `status 200`, `status 503, expected 200-299`, `connection refused`.
    pub detail: String,
    pub latency: Duration,
}

impl ProbeResult {
    pub fn ok(latency: Duration, detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            reason: None,
            detail: detail.into(),
            latency,
        }
    }
    pub fn fail(reason: Reason, latency: Duration, detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            reason: Some(reason),
            detail: detail.into(),
            latency,
        }
    }
}

/// What to probe, with its own settings resolved (target overrides over the defaults).
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub region: String,
    /// Primary or standby, from the target's region; `None` for a third region.
    pub role: Option<Role>,
    pub interval: Duration,
    pub timeout: Duration,
    pub jitter: Duration,
    pub thresholds: state::Thresholds,
    pub check: Check,
}

#[derive(Clone)]
pub enum Check {
    Http(Arc<http::HttpCheck>),
    Tcp(tcp::TcpCheck),
    /// A probe computed by a function: for tests and for embedding drctl's watch elsewhere.
    Scripted(Arc<dyn Fn() -> ProbeResult + Send + Sync>),
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Http(h) => h.fmt(f),
            Check::Tcp(t) => t.fmt(f),
            Check::Scripted(_) => f.write_str("Scripted"),
        }
    }
}

impl Target {
    pub fn describe(&self) -> String {
        match &self.check {
            Check::Http(h) => h.describe(),
            Check::Tcp(t) => format!("tcp {}", t.address),
            Check::Scripted(_) => "scripted".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the environment has no `probes:` section (see docs/watch.md)")]
    NoProbes,
    #[error("probe `{target}`: {message}")]
    Target { target: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The probers built from an environment file: targets plus shared HTTP machinery.
pub struct Probers {
    pub settings: ProbeSettings,
    pub targets: Vec<Target>,
    pub http: http::Clients,
}

impl Probers {
    pub fn from_env(env: &Environment) -> Result<Self, ProbeError> {
        let settings = env.probes.clone().ok_or(ProbeError::NoProbes)?;
        let http = http::Clients::new()?;
        let targets = settings
            .targets
            .iter()
            .map(|t| resolve_target(env, &settings, t, &http))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            settings,
            targets,
            http,
        })
    }

    /// Probe one target once, bounded by its timeout whatever happens inside.
    pub async fn probe(&self, t: &Target) -> ProbeResult {
        probe_once(t).await
    }

    /// One round: every target once, concurrently.
    pub async fn round(&self) -> Vec<ProbeResult> {
        futures::future::join_all(self.targets.iter().map(probe_once)).await
    }
}

/// Probe one target once. The outer timeout is the guarantee; inner ones only sharpen reasons.
pub async fn probe_once(t: &Target) -> ProbeResult {
    let start = tokio::time::Instant::now();
    let fut = async {
        match &t.check {
            Check::Http(h) => h.probe(t.timeout).await,
            Check::Tcp(c) => c.probe(t.timeout).await,
            Check::Scripted(f) => f(),
        }
    };
    match tokio::time::timeout(t.timeout, fut).await {
        Ok(mut r) => {
            r.latency = start.elapsed();
            r
        }
        Err(_) => ProbeResult::fail(
            Reason::TimedOut,
            start.elapsed(),
            format!("no answer within {}", humantime::format_duration(t.timeout)),
        ),
    }
}

fn resolve_target(
    env: &Environment,
    s: &ProbeSettings,
    t: &ProbeTarget,
    clients: &http::Clients,
) -> Result<Target, ProbeError> {
    let role = if t.region == env.primary_region {
        Some(Role::Primary)
    } else if t.region == env.standby_region {
        Some(Role::Standby)
    } else {
        None
    };
    let err = |message: String| ProbeError::Target {
        target: t.name.clone(),
        message,
    };
    let check = match (&t.http, &t.tcp) {
        (Some(h), None) => Check::Http(Arc::new(http::HttpCheck::new(h, clients).map_err(err)?)),
        (None, Some(c)) => Check::Tcp(tcp::TcpCheck {
            address: c.address.clone(),
        }),
        _ => return Err(err("needs exactly one of `http` or `tcp`".into())),
    };
    Ok(Target {
        name: t.name.clone(),
        region: t.region.clone(),
        role,
        interval: t.interval.unwrap_or(s.interval),
        timeout: t.timeout.unwrap_or(s.timeout),
        jitter: s.jitter,
        thresholds: state::Thresholds {
            failure: t.failure_threshold.unwrap_or(s.failure_threshold).max(1),
            recovery: t.recovery_threshold.unwrap_or(s.recovery_threshold).max(1),
        },
        check,
    })
}
