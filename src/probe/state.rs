//! The per-target state machine, pure (no I/O, no clock): results go in, transitions come out.
//!
//! ```text
//!   healthy --fail--> failing --fail x (failure-1)--> down --ok--> recovering --ok x (recovery-1)--> healthy
//!      ^                 |                              ^               |
//!      +-------ok--------+                              +------fail-----+
//! ```
//! A success while `failing` goes straight back to `healthy` and a failure while `recovering`
//! straight back to `down`: only an unbroken run of results changes the verdict, so a flapping
//! target never reaches `down` (nor leaves it).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ProbeResult, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures from `healthy` to `down`.
    pub failure: u32,
    /// Consecutive successes from `down` to `healthy`.
    pub recovery: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not probed yet.
    Unknown,
    Healthy,
    Failing,
    Down,
    Recovering,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Unknown,
        Phase::Healthy,
        Phase::Failing,
        Phase::Down,
        Phase::Recovering,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Unknown => "unknown",
            Phase::Healthy => "healthy",
            Phase::Failing => "failing",
            Phase::Down => "down",
            Phase::Recovering => "recovering",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of phase, with when and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub from: Phase,
    pub to: Phase,
    pub at: DateTime<Utc>,
    /// The failure that caused it (none for transitions on success).
    pub reason: Option<Reason>,
    pub detail: String,
    /// Consecutive results of the same kind that led here.
    pub streak: u32,
}

/// One target's verdict. `observe` is the only way it changes.
#[derive(Debug, Clone, Serialize)]
pub struct TargetState {
    pub phase: Phase,
    /// When the current phase began.
    pub since: Option<DateTime<Utc>>,
    /// Consecutive failures (while failing/down) or successes (while healthy/recovering).
    pub streak: u32,
    pub last_reason: Option<Reason>,
    pub last_detail: String,
    /// The first failed probe of the current outage (kept through failing, down and
    /// recovering; cleared when healthy again): where a report's RTO starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    #[serde(skip)]
    thresholds: Thresholds,
}

impl TargetState {
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            phase: Phase::Unknown,
            since: None,
            streak: 0,
            last_reason: None,
            last_detail: String::new(),
            failing_since: None,
            thresholds: Thresholds {
                failure: thresholds.failure.max(1),
                recovery: thresholds.recovery.max(1),
            },
        }
    }

    /// Feed one probe result; returns the transition if the phase changed.
    pub fn observe(&mut self, r: &ProbeResult, now: DateTime<Utc>) -> Option<Transition> {
        self.last_reason = r.reason;
        self.last_detail = r.detail.clone();
        let t = self.thresholds;
        let (next, streak) = match (self.phase, r.ok) {
            // A first success is believed at once: there is no verdict yet to protect.
            (Phase::Unknown, true) => (Phase::Healthy, 1),
            (Phase::Unknown | Phase::Healthy, false) => Self::failing_or_down(1, t),
            (Phase::Healthy, true) => (Phase::Healthy, self.streak + 1),
            (Phase::Failing, false) => Self::failing_or_down(self.streak + 1, t),
            (Phase::Failing, true) => (Phase::Healthy, 1),
            (Phase::Down, false) => (Phase::Down, self.streak + 1),
            (Phase::Down, true) | (Phase::Recovering, true) => {
                let n = if self.phase == Phase::Down {
                    1
                } else {
                    self.streak + 1
                };
                if n >= t.recovery {
                    (Phase::Healthy, n)
                } else {
                    (Phase::Recovering, n)
                }
            }
            (Phase::Recovering, false) => (Phase::Down, 1),
        };
        self.streak = streak;
        if next == Phase::Healthy {
            self.failing_since = None;
        } else if !r.ok && self.failing_since.is_none() {
            self.failing_since = Some(now);
        }
        if next == self.phase {
            return None;
        }
        let tr = Transition {
            from: self.phase,
            to: next,
            at: now,
            reason: r.reason,
            detail: r.detail.clone(),
            streak,
        };
        self.phase = next;
        self.since = Some(now);
        Some(tr)
    }

    fn failing_or_down(n: u32, t: Thresholds) -> (Phase, u32) {
        if n >= t.failure {
            (Phase::Down, n)
        } else {
            (Phase::Failing, n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ok() -> ProbeResult {
        ProbeResult::ok(Duration::from_millis(1), "status 200")
    }
    fn fail() -> ProbeResult {
        ProbeResult::fail(
            Reason::Refused,
            Duration::from_millis(1),
            "connection refused",
        )
    }
    fn st(f: u32, r: u32) -> TargetState {
        TargetState::new(Thresholds {
            failure: f,
            recovery: r,
        })
    }

    #[test]
    fn n_failures_reach_down_and_recovery_needs_m_successes() {
        let mut s = st(3, 2);
        let now = Utc::now();
        assert_eq!(s.observe(&ok(), now).map(|t| t.to), Some(Phase::Healthy));
        assert_eq!(s.observe(&fail(), now).map(|t| t.to), Some(Phase::Failing));
        assert_eq!(s.observe(&fail(), now), None);
        let down = s.observe(&fail(), now).expect("third failure");
        assert_eq!(
            (down.from, down.to, down.reason, down.streak),
            (Phase::Failing, Phase::Down, Some(Reason::Refused), 3)
        );
        assert_eq!(s.observe(&ok(), now).map(|t| t.to), Some(Phase::Recovering));
        assert_eq!(s.observe(&ok(), now).map(|t| t.to), Some(Phase::Healthy));
    }

    #[test]
    fn an_outage_starts_at_its_first_failed_probe_until_healthy_again() {
        let mut s = st(3, 2);
        let base = Utc::now();
        let t = |secs| base + chrono::Duration::seconds(secs);
        s.observe(&ok(), t(0));
        assert_eq!(s.failing_since, None);
        s.observe(&fail(), t(1));
        s.observe(&fail(), t(2));
        s.observe(&fail(), t(3)); // down
        s.observe(&ok(), t(4)); // recovering
        s.observe(&fail(), t(5)); // down again: the same outage
        assert_eq!(s.phase, Phase::Down);
        assert_eq!(
            s.failing_since,
            Some(t(1)),
            "the first failure, not a later one"
        );
        s.observe(&ok(), t(6));
        s.observe(&ok(), t(7)); // healthy
        assert_eq!(s.failing_since, None);
    }

    #[test]
    fn alternating_results_never_reach_down() {
        let mut s = st(2, 2);
        let now = Utc::now();
        for i in 0..1000 {
            s.observe(&if i % 2 == 0 { ok() } else { fail() }, now);
            assert_ne!(s.phase, Phase::Down, "flapped to down at result {i}");
        }
    }

    #[test]
    fn a_failure_while_recovering_goes_back_to_down() {
        let mut s = st(1, 3);
        let now = Utc::now();
        s.observe(&fail(), now);
        assert_eq!(s.phase, Phase::Down);
        s.observe(&ok(), now);
        s.observe(&ok(), now);
        assert_eq!(s.phase, Phase::Recovering);
        assert_eq!(s.observe(&fail(), now).map(|t| t.to), Some(Phase::Down));
        for _ in 0..2 {
            s.observe(&ok(), now);
        }
        assert_eq!(
            s.phase,
            Phase::Recovering,
            "the streak restarted after the failure"
        );
        s.observe(&ok(), now);
        assert_eq!(s.phase, Phase::Healthy);
    }

    proptest::proptest! {
        /// Down is reached exactly when the last `failure` results were all failures (once
        /// healthy), and never otherwise.
        #[test]
        fn down_only_after_an_unbroken_run(results in proptest::collection::vec(proptest::bool::ANY, 1..200), f in 1u32..5, r in 1u32..5) {
            let mut s = st(f, r);
            let now = Utc::now();
            let mut run = 0u32;
            for ok_ in results {
                let was_down = matches!(s.phase, Phase::Down | Phase::Recovering);
                s.observe(&if ok_ { ok() } else { fail() }, now);
                run = if ok_ { 0 } else { run + 1 };
                if !was_down {
                    proptest::prop_assert_eq!(s.phase == Phase::Down, run >= f);
                }
            }
        }
    }
}
