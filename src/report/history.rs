//! Reports over many runs: RTO and RPO per recovery run against the targets (a trend), per step
//! kind the p50 and p90 of past durations, and the predicted RTO of a plan: its critical path
//! weighed with those past durations where there are any, and each kind's documented default
//! estimate where there are none.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{Report, Verdict};
use crate::engine::Plan;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct HistoryRow {
    pub run_id: String,
    pub runbook: String,
    pub started_at: DateTime<Utc>,
    pub outcome: String,
    pub recovery: bool,
    pub rto_s: Option<f64>,
    pub rto_verdict: Verdict,
    pub rpo_s: Option<f64>,
    pub rpo_verdict: Verdict,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct KindStats {
    pub kind: String,
    /// Steps of this kind that did their work (not skipped, not already done).
    pub samples: usize,
    pub p50_ms: u64,
    pub p90_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct History {
    pub schema: String,
    pub env: String,
    pub rto_target_s: f64,
    pub rpo_target_s: f64,
    /// Oldest first.
    pub runs: Vec<HistoryRow>,
    pub kinds: Vec<KindStats>,
    /// Runs whose journal could not be read, and why.
    pub unreadable: Vec<(String, String)>,
}

pub const HISTORY_SCHEMA: &str = "drctl.history/v1";

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Per step kind, the durations of steps that did their work.
pub fn kind_stats(reports: &[Report]) -> Vec<KindStats> {
    let mut by: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in reports {
        for s in &r.steps {
            if s.state == "done" || s.state == "undone" {
                if let Some(d) = s.duration_ms {
                    by.entry(s.kind.clone()).or_default().push(d);
                }
            }
        }
    }
    by.into_iter()
        .map(|(kind, mut v)| {
            v.sort_unstable();
            KindStats {
                kind,
                samples: v.len(),
                p50_ms: percentile(&v, 50.0),
                p90_ms: percentile(&v, 90.0),
            }
        })
        .collect()
}

fn rejudge(v: &Verdict, measured: Option<f64>, target: f64) -> Verdict {
    match (v, measured) {
        (Verdict::Pass | Verdict::Fail, Some(m)) if m <= target => Verdict::Pass,
        (Verdict::Pass | Verdict::Fail, Some(_)) => Verdict::Fail,
        _ => v.clone(),
    }
}

pub fn history(
    env: &str,
    reports: &[Report],
    rto_target: Duration,
    rpo_target: Duration,
    unreadable: Vec<(String, String)>,
) -> History {
    History {
        schema: HISTORY_SCHEMA.into(),
        env: env.into(),
        rto_target_s: rto_target.as_secs_f64(),
        rpo_target_s: rpo_target.as_secs_f64(),
        runs: reports
            .iter()
            .map(|r| HistoryRow {
                run_id: r.run_id.clone(),
                runbook: r.runbook.clone(),
                started_at: r.started_at,
                outcome: r.outcome.clone(),
                recovery: r.recovery,
                rto_s: r.rto.measured_ms.map(|m| m as f64 / 1000.0),
                // Judged again against the targets the chart draws (today's), not the ones
                // each run's journal carried, so that a point and its verdict agree.
                rto_verdict: rejudge(
                    &r.rto.verdict,
                    r.rto.measured_ms.map(|m| m as f64 / 1000.0),
                    rto_target.as_secs_f64(),
                ),
                rpo_s: r.rpo.measured_s,
                rpo_verdict: rejudge(&r.rpo.verdict, r.rpo.measured_s, rpo_target.as_secs_f64()),
            })
            .collect(),
        kinds: kind_stats(reports),
        unreadable,
    }
}

/// The predicted length of a plan's critical path, and where each step's figure came from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Prediction {
    pub predicted_ms: u64,
    pub target_ms: u64,
    pub verdict: Verdict,
    pub path: Vec<PredictedStep>,
    /// How many of the path's steps had past durations to go by.
    pub from_history: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct PredictedStep {
    pub id: String,
    pub kind: String,
    pub ms: u64,
    /// `p50 of N past runs` or `default estimate`.
    pub source: String,
}

/// The longest chain that ends at an outside check (the measured RTO ends there too: steps
/// after it, such as a failback's new replica, are not part of the outage), or of the whole
/// plan when it has none.
fn rto_path(plan: &Plan, weight: impl Fn(usize) -> Duration) -> (Vec<usize>, Duration) {
    let ends = super::model::outside_checks(plan);
    if ends.is_empty() {
        return plan.critical_path_by(weight);
    }
    let n = plan.steps.len();
    let w: Vec<Duration> = (0..n).map(weight).collect();
    let mut finish = vec![Duration::ZERO; n];
    let mut via: Vec<Option<usize>> = vec![None; n];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| plan.level[i]);
    for &i in &order {
        let best = plan.deps[i].iter().copied().max_by_key(|&d| finish[d]);
        finish[i] = best.map_or(Duration::ZERO, |d| finish[d]) + w[i];
        via[i] = best;
    }
    // The outage ends at the first outside check to succeed: the earliest of them.
    let end = *ends.iter().min_by_key(|&&i| finish[i]).expect("not empty");
    let mut path = vec![end];
    while let Some(p) = via[*path.last().expect("non-empty")] {
        path.push(p);
    }
    path.reverse();
    (path, finish[end])
}

/// Weigh each step with the p50 of its kind's past durations (or its default estimate), and
/// take the longest chain.
pub fn predict(plan: &Plan, kinds: &[KindStats], target: Duration) -> Prediction {
    let past = |k: &str| kinds.iter().find(|s| s.kind == k && s.samples > 0);
    let est = |i: usize| {
        let s = &plan.steps[i];
        match past(&s.kind.value) {
            Some(k) => Duration::from_millis(k.p50_ms),
            None => s.spec.step().estimate(),
        }
    };
    let (path, total) = rto_path(plan, est);
    let steps: Vec<PredictedStep> = path
        .iter()
        .map(|&i| {
            let s = &plan.steps[i];
            let (ms, source) = match past(&s.kind.value) {
                Some(k) => (k.p50_ms, format!("p50 of {} past runs", k.samples)),
                None => (
                    s.spec.step().estimate().as_millis() as u64,
                    "default estimate".into(),
                ),
            };
            PredictedStep {
                id: s.id().to_string(),
                kind: s.kind.value.clone(),
                ms,
                source,
            }
        })
        .collect();
    let predicted_ms = total.as_millis() as u64;
    let target_ms = target.as_millis() as u64;
    Prediction {
        predicted_ms,
        target_ms,
        verdict: if predicted_ms <= target_ms {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        from_history: steps
            .iter()
            .filter(|s| s.source != "default estimate")
            .count(),
        path: steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50.0), 5);
        assert_eq!(percentile(&v, 90.0), 9);
        assert_eq!(percentile(&[7], 90.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
