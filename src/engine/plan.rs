//! The plan: a validated runbook as a DAG, with its parallel levels and critical path.

use std::time::Duration;

use crate::config::validate;
use crate::steps::{Runbook, StepDef};

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub steps: Vec<StepDef>,
    /// deps[i]: indices step i waits for.
    pub deps: Vec<Vec<usize>>,
    /// level[i]: 0 for roots, else 1 + max level of its deps. Steps of one level may run together.
    pub level: Vec<usize>,
    pub max_parallel: usize,
}

pub const DEFAULT_MAX_PARALLEL: usize = 4;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// An approval step's timeout when its runbook gives none: far beyond any gate deadline.
const APPROVAL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

impl Plan {
    /// Build from a runbook that passed validation (so there are no cycles).
    pub fn new(rb: &Runbook) -> Plan {
        let deps = validate::edges(rb);
        let mut level = vec![0; deps.len()];
        // Validation guarantees a DAG; a topological order by repeated relaxation is enough.
        for _ in 0..deps.len() {
            for i in 0..deps.len() {
                level[i] = deps[i].iter().map(|&d| level[d] + 1).max().unwrap_or(0);
            }
        }
        Plan {
            name: rb.name.clone(),
            steps: rb.steps.clone(),
            deps,
            level,
            max_parallel: rb.max_parallel.unwrap_or(DEFAULT_MAX_PARALLEL).max(1),
        }
    }

    pub fn index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id() == id)
    }

    pub fn timeout(&self, i: usize) -> Duration {
        match (&self.steps[i].timeout, &self.steps[i].spec) {
            (Some(t), _) => *t,
            // A gate's wait is bounded by its deadline (engine::gate), not by the step timeout.
            (None, crate::steps::StepSpec::Approval(_)) => APPROVAL_TIMEOUT,
            (None, _) => DEFAULT_TIMEOUT,
        }
    }

    /// Steps grouped by level, in file order within a level.
    pub fn levels(&self) -> Vec<Vec<usize>> {
        let n = self.level.iter().copied().max().map_or(0, |m| m + 1);
        let mut out = vec![Vec::new(); n];
        for (i, &l) in self.level.iter().enumerate() {
            out[l].push(i);
        }
        out
    }

    /// The longest chain by each step's estimate, and its total.
    pub fn critical_path(&self) -> (Vec<usize>, Duration) {
        self.critical_path_by(|i| self.steps[i].spec.step().estimate())
    }

    /// The longest chain when step `i` takes `weight(i)`, and its total (a report predicts
    /// with past durations).
    pub fn critical_path_by(&self, weight: impl Fn(usize) -> Duration) -> (Vec<usize>, Duration) {
        let n = self.steps.len();
        let est: Vec<Duration> = (0..n).map(weight).collect();
        let mut finish = vec![Duration::ZERO; n];
        let mut via: Vec<Option<usize>> = vec![None; n];
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| self.level[i]);
        for &i in &order {
            let best = self.deps[i].iter().copied().max_by_key(|&d| finish[d]);
            finish[i] = best.map_or(Duration::ZERO, |d| finish[d]) + est[i];
            via[i] = best;
        }
        let Some(end) = (0..n).max_by_key(|&i| finish[i]) else {
            return (vec![], Duration::ZERO);
        };
        let mut path = vec![end];
        while let Some(p) = via[*path.last().expect("non-empty")] {
            path.push(p);
        }
        path.reverse();
        (path, finish[end])
    }
}
