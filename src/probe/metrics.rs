//! Prometheus metrics of probing and of the watch's decisions, in the OpenMetrics text format
//! that Prometheus scrapes (`/metrics`). Handles are created once per target, so a probe only
//! touches atomics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::state::Phase;
use super::{ProbeResult, Target};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub target: String,
    pub region: String,
    pub role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

impl Metrics {
    /// Set the watch's phase gauge: 1 for `phase`, 0 for the others.
    pub fn set_watch_phase(&self, phase: &str) {
        for p in ["armed", "acting", "cooldown"] {
            self.watch_phase
                .get_or_create(&PhaseLabels { phase: p.into() })
                .set(i64::from(p == phase));
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub target: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub target: String,
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub target: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub kind: String,
    pub outcome: String,
}

type HistFamily = Family<TargetLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~8 s: loopback probes on one end, a probe that hits its timeout on the other.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// Every metric drctl exports while watching.
pub struct Metrics {
    pub registry: Registry,
    duration: HistFamily,
    up: Family<TargetLabels, Gauge>,
    state: Family<StateLabels, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    pub decisions: Family<DecisionLabels, Counter>,
    pub actions: Family<OutcomeLabels, Counter>,
    pub notifications: Family<OutcomeLabels, Counter>,
    pub primary_down: Gauge,
    pub standby_healthy: Gauge,
    /// 1 for the watch's phase now: `armed` (watching, will act), `acting` (its action runs),
    /// `cooldown` (acted; nothing more until the primary recovered and the cooldown passed).
    pub watch_phase: Family<PhaseLabels, Gauge>,
    /// Shared state: live watchers, those that see the primary down, and how many must.
    pub watchers_live: Gauge,
    pub watchers_agreeing: Gauge,
    pub quorum_needed: Gauge,
    pub in_flight: Gauge,
    pub skipped: Counter,
}

/// The handles one target's probe loop updates.
#[derive(Clone)]
pub struct TargetMetrics {
    name: String,
    duration: Histogram,
    up: Gauge,
    states: Vec<(Phase, Gauge)>,
    failures: Family<FailureLabels, Counter>,
    transitions: Family<TransitionLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("drctl");
        let duration = HistFamily::new_with_constructor(latency_histogram);
        let up = Family::<TargetLabels, Gauge>::default();
        let state = Family::<StateLabels, Gauge>::default();
        let transitions = Family::<TransitionLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        let actions = Family::<OutcomeLabels, Counter>::default();
        let notifications = Family::<OutcomeLabels, Counter>::default();
        let primary_down = Gauge::default();
        let standby_healthy = Gauge::default();
        let watch_phase = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "watch_phase",
            "1 for the watch's phase now (armed, acting, cooldown), 0 for the others",
            watch_phase.clone(),
        );
        let in_flight = Gauge::default();
        let skipped = Counter::default();
        registry.register(
            "probe_duration_seconds",
            "Time one probe took, to its answer or its timeout",
            duration.clone(),
        );
        registry.register(
            "probe_up",
            "1 if the last probe of the target succeeded, else 0",
            up.clone(),
        );
        registry.register(
            "target_state",
            "1 for the target's current state (unknown, healthy, failing, down, recovering)",
            state.clone(),
        );
        registry.register(
            "target_transitions",
            "State changes of a target",
            transitions.clone(),
        );
        registry.register(
            "probe_failures",
            "Failed probes, by reason",
            failures.clone(),
        );
        registry.register(
            "watch_decisions",
            "Decisions of the watch policy (act, withheld_*, suppressed_cooldown)",
            decisions.clone(),
        );
        registry.register(
            "watch_actions",
            "Actions the watch started (notify, failover) and how they ended",
            actions.clone(),
        );
        registry.register(
            "notifications",
            "Webhook and Slack posts, by sink and outcome",
            notifications.clone(),
        );
        registry.register(
            "watch_primary_down",
            "1 while every primary target is down",
            primary_down.clone(),
        );
        registry.register(
            "watch_standby_healthy",
            "1 while every standby target is healthy",
            standby_healthy.clone(),
        );
        let (watchers_live, watchers_agreeing, quorum_needed) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        for (name, help, g) in [
            (
                "watch_watchers_live",
                "Shared state: watchers whose heartbeat is moving",
                &watchers_live,
            ),
            (
                "watch_watchers_agreeing",
                "Shared state: live watchers that have seen the primary down for confirm_for",
                &watchers_agreeing,
            ),
            (
                "watch_quorum_needed",
                "Shared state: how many watchers must agree before one acts",
                &quorum_needed,
            ),
        ] {
            registry.register(name, help, g.clone());
        }
        registry.register("probes_in_flight", "Probes running now", in_flight.clone());
        registry.register(
            "probes_skipped",
            "Probe slots skipped because the previous probe or the in-flight bound overran them",
            skipped.clone(),
        );
        Self {
            registry,
            duration,
            up,
            state,
            transitions,
            failures,
            decisions,
            actions,
            notifications,
            primary_down,
            standby_healthy,
            watch_phase,
            watchers_live,
            watchers_agreeing,
            quorum_needed,
            in_flight,
            skipped,
        }
    }

    pub fn target(&self, t: &Target) -> TargetMetrics {
        let labels = TargetLabels {
            target: t.name.clone(),
            region: t.region.clone(),
            role: t.role.map_or("other".into(), |r| r.to_string()),
        };
        let states = Phase::ALL
            .iter()
            .map(|p| {
                let g = self
                    .state
                    .get_or_create(&StateLabels {
                        target: t.name.clone(),
                        state: p.as_str().into(),
                    })
                    .clone();
                g.set(i64::from(*p == Phase::Unknown));
                (*p, g)
            })
            .collect();
        TargetMetrics {
            name: t.name.clone(),
            duration: self.duration.get_or_create(&labels).clone(),
            up: self.up.get_or_create(&labels).clone(),
            states,
            failures: self.failures.clone(),
            transitions: self.transitions.clone(),
        }
    }

    pub fn decision(&self, d: &str) {
        self.decisions
            .get_or_create(&DecisionLabels { decision: d.into() })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry)
            .expect("writing to a String cannot fail");
        s
    }
}

impl TargetMetrics {
    pub fn observe(&self, r: &ProbeResult) {
        self.duration.observe(r.latency.as_secs_f64());
        self.up.set(i64::from(r.ok));
        if let Some(reason) = r.reason {
            self.failures
                .get_or_create(&FailureLabels {
                    target: self.name.clone(),
                    reason: reason.as_str().into(),
                })
                .inc();
        }
    }

    pub fn transition(&self, from: Phase, to: Phase) {
        for (p, g) in &self.states {
            g.set(i64::from(*p == to));
        }
        self.transitions
            .get_or_create(&TransitionLabels {
                target: self.name.clone(),
                from: from.as_str().into(),
                to: to.as_str().into(),
            })
            .inc();
    }
}

/// The content type of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
