//! The watch's HTTP surface: /metrics, /healthz and /status, and the shared state it reads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::policy::Verdict;
use crate::config::env::Role;
use crate::probe::metrics::Metrics;
use crate::probe::state::TargetState;

// ------------------------------------------------------------------------------------------
// Shared state (read by /status and /metrics)
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    pub target: String,
    pub region: String,
    pub role: Option<Role>,
    pub check: String,
    #[serde(flatten)]
    pub state: TargetState,
    pub last_latency_ms: Option<f64>,
    pub last_at: Option<DateTime<Utc>>,
    pub probes: u64,
    pub failures: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct DecisionView {
    pub verdict: Option<Verdict>,
    pub at: Option<DateTime<Utc>>,
    pub primary_down: bool,
    pub standby_healthy: bool,
    pub primary_down_for_ms: Option<u64>,
    pub in_cooldown: bool,
    pub action_running: bool,
    pub last_action: Option<Value>,
}

pub struct Shared {
    pub env: String,
    pub started_at: DateTime<Utc>,
    pub targets: Vec<Mutex<TargetView>>,
    pub decision: Mutex<DecisionView>,
    pub metrics: Metrics,
    /// Last time the decision loop ran (for /healthz).
    pub heartbeat: Mutex<Instant>,
    /// The watchers' quorum, with shared state (None: a watcher alone, or not read yet).
    pub quorum: Mutex<Option<super::quorum::QuorumView>>,
    /// Since when every primary target has been down (by the probes alone, whatever the
    /// policy did about it): what this watcher tells the others.
    pub primary_down_since: Mutex<Option<Instant>>,
}

impl Shared {
    pub fn status(&self) -> Value {
        let targets: Vec<TargetView> = self
            .targets
            .iter()
            .map(|t| t.lock().expect("target view").clone())
            .collect();
        json!({
            "env": self.env,
            "started_at": self.started_at,
            "decision": *self.decision.lock().expect("decision view"),
            "quorum": *self.quorum.lock().expect("quorum view"),
            "targets": targets,
        })
    }

    /// Healthy while the decision loop keeps turning.
    pub fn alive(&self) -> bool {
        self.heartbeat.lock().expect("heartbeat").elapsed() < Duration::from_secs(5)
    }
}

// ------------------------------------------------------------------------------------------
// HTTP surface: /metrics, /healthz, /status
// ------------------------------------------------------------------------------------------

/// Serve the watch's HTTP surface on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;

    let app = axum::Router::new()
        .route(
            "/metrics",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                    (
                        [(header::CONTENT_TYPE, crate::probe::metrics::CONTENT_TYPE)],
                        s.metrics.encode(),
                    )
                },
            ),
        )
        .route(
            "/healthz",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                    if s.alive() {
                        (StatusCode::OK, "ok\n").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "decision loop stalled\n").into_response()
                    }
                },
            ),
        )
        .route(
            "/status",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                    axum::Json(s.status())
                },
            ),
        )
        .with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
