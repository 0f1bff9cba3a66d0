//! `test.step` (test builds only): a counting step for engine unit tests. Its behaviour comes
//! from its parameters and its counters live in a registry keyed by `key`, so a test can inject
//! failures, slowness and pre-existing state, then assert on exactly what ran and when.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Observation, Reversibility, Satisfied, Step, StepCx, StepError};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestStep {
    /// Registry key shared by the steps of one test.
    pub key: String,
    /// Fail this many executions before succeeding.
    #[serde(default)]
    pub fail_times: u32,
    /// Failures are permanent instead of retryable.
    #[serde(default)]
    pub permanent: bool,
    /// How long execute takes.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub duration: Option<Duration>,
    /// The target state already holds before the run.
    #[serde(default)]
    pub done_initially: bool,
    /// Observe cannot tell (like `exec` without `check`).
    #[serde(default)]
    pub unobservable: bool,
    #[serde(default)]
    pub irreversible: bool,
    /// Undo fails.
    #[serde(default)]
    pub undo_fails: bool,
    /// Raise this warning (`StepCx::warn`) while executing.
    #[serde(default)]
    pub warn: Option<String>,
    /// Stands for a fence: done, production has no writer (`Step::stops_writes`).
    #[serde(default)]
    pub stops_writes: bool,
}

/// What happened, in order, for one key.
#[derive(Debug, Default, Clone)]
pub struct Log {
    /// (step, event, tokio time since the log was created): event is "start", "end" or "undo".
    pub events: Vec<(String, &'static str, Duration)>,
    pub executions: HashMap<String, u32>,
    pub done: HashMap<String, bool>,
    pub running: u32,
    pub max_running: u32,
    pub origin: Option<tokio::time::Instant>,
}

fn registry() -> &'static Mutex<HashMap<String, Log>> {
    static R: OnceLock<Mutex<HashMap<String, Log>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

pub fn log(key: &str) -> Log {
    registry()
        .lock()
        .unwrap()
        .get(key)
        .cloned()
        .unwrap_or_default()
}

pub fn reset(key: &str) {
    registry().lock().unwrap().insert(
        key.into(),
        Log {
            origin: Some(tokio::time::Instant::now()),
            ..Default::default()
        },
    );
}

fn with<T>(key: &str, f: impl FnOnce(&mut Log) -> T) -> T {
    let mut r = registry().lock().unwrap();
    let l = r.entry(key.into()).or_default();
    f(l)
}

fn now(l: &Log) -> Duration {
    l.origin.map(|o| o.elapsed()).unwrap_or_default()
}

#[async_trait]
impl Step for TestStep {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let done = with(&self.key, |l| {
            l.done
                .get(&cx.step_id)
                .copied()
                .unwrap_or(self.done_initially)
        });
        let state = if done {
            Satisfied::Done
        } else if self.unobservable {
            Satisfied::Unknown
        } else {
            Satisfied::NotDone
        };
        let obs = Observation::new(state, if done { "done" } else { "not done" }, "do it")
            .with_prior(json!({"was_done": done}));
        // Already done: report a result as a re-run would need it for `${steps.ID.KEY}`.
        Ok(if done {
            obs.with_result(json!({"observed": true}))
        } else {
            obs
        })
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let id = cx.step_id.clone();
        if let Some(w) = &self.warn {
            cx.warn(w);
        }
        let n = with(&self.key, |l| {
            let t = now(l);
            l.events.push((id.clone(), "start", t));
            l.running += 1;
            l.max_running = l.max_running.max(l.running);
            let n = l.executions.entry(id.clone()).or_default();
            *n += 1;
            *n
        });
        let slept = match self.duration {
            Some(d) => cx.sleep(d).await,
            None => Ok(()),
        };
        with(&self.key, |l| {
            l.running -= 1;
            let t = now(l);
            l.events.push((id.clone(), "end", t));
        });
        slept?;
        if n <= self.fail_times {
            let msg = format!("injected failure {n}/{}", self.fail_times);
            return Err(if self.permanent {
                StepError::permanent(msg)
            } else {
                StepError::retryable(msg)
            });
        }
        with(&self.key, |l| l.done.insert(id, true));
        Ok(json!({ "execution": n }))
    }

    async fn undo(&self, cx: &StepCx, _prior: &Value, _result: &Value) -> Result<(), StepError> {
        if self.undo_fails {
            return Err(StepError::permanent("injected undo failure"));
        }
        let id = cx.step_id.clone();
        with(&self.key, |l| {
            let t = now(l);
            l.events.push((id.clone(), "undo", t));
            l.done.insert(id, false);
        });
        Ok(())
    }

    fn reversibility(&self) -> Reversibility {
        if self.irreversible {
            Reversibility::Irreversible("test step marked irreversible")
        } else {
            Reversibility::Reversible
        }
    }

    fn estimate(&self) -> Duration {
        self.duration.unwrap_or(Duration::from_secs(1))
    }

    fn stops_writes(&self) -> bool {
        self.stops_writes
    }
}

/// Services over the in-process fake AWS, for engine tests that never reach AWS.
pub fn fake_services() -> super::Services {
    super::Services::new(std::sync::Arc::new(crate::aws::fake::FakeAws::new()))
}
