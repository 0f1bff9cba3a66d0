//! The eleven AWS step kinds against the in-process fake ([`FakeAws`]), under paused tokio
//! time: the fast, unit-level counterpart of `tests/aws_steps.rs` (which runs the same kinds
//! against the Python sandbox). Every test asserts on what the fake *world* holds afterwards
//! (instances, parameter groups, records, health checks, origin order, vaults, templates,
//! groups) and on the mutating calls it saw, not only on what a step returns.
//!
//! - `deployment`: the seeded world, shaped like the sandbox's (us-east-1 the primary,
//!   us-west-2 the warm standby), and its environment file;
//! - `rds`: the per-kind tests of `rds.promote_replica` and `rds.fence_primary`;
//! - `route53`: `route53.upsert_record`, `route53.force_failover`, `route53.verify_failover`;
//! - `edge`: `cloudfront.promote_origin` and `backup.copy_recovery_point`;
//! - `compute`: `ec2.latest_image`, `ec2.update_launch_template`, `asg.scale`,
//!   `elbv2.wait_healthy`;
//! - `faults`: injected throttling, timeouts and hangs, through the engine's retries and timeouts;
//! - `engine`: the shipped failover runbook end to end, and rollback.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    Approval, ApprovalGate, CxParts, Observation, Reversibility, Satisfied, Services, StepCx,
    StepError, StepReport, StepSpec,
};
use crate::aws::fake::{FakeAws, World};
use crate::config::{self, Environment, Source};
use crate::engine::approval::{ApprovalSource, AutoApprove};
use crate::engine::progress::Silent;
use crate::engine::{Engine, EngineParts, Plan};
use crate::journal::mem::MemJournal;
use crate::journal::{Event, JournalWriter, Operator};

mod compute;
mod deployment;
mod edge;
mod engine;
mod faults;
mod rds;
mod route53;

pub use deployment::*;

// ---- the fixture ------------------------------------------------------------------------------

/// The seeded fake and its environment.
pub struct Fx {
    pub aws: FakeAws,
    pub env: Arc<Environment>,
    pub outputs: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl Fx {
    /// ALBs and the public name at a port nothing listens on (step tests do not call them).
    pub fn new() -> Self {
        Self::with_url("http://127.0.0.1:9")
    }

    pub fn with_url(url: &str) -> Self {
        let aws = FakeAws::new();
        seed(&aws);
        let env = config::parse_env(&Source::from_text(Path::new("drctl.yaml"), env_yaml(url)))
            .unwrap_or_else(|e| panic!("fixture environment: {e}"));
        Fx {
            aws,
            env: Arc::new(env),
            outputs: Arc::default(),
        }
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.aws.world()
    }

    /// The fake, and an HTTP client that never goes through a proxy (only loopback is used).
    pub fn services(&self) -> Services {
        Services {
            aws: Arc::new(self.aws.clone()),
            http: reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            checks: None,
        }
    }

    /// A validated step `s` of `kind`, behind an approval (so irreversible kinds validate).
    pub fn step(&self, kind: &str, with: &str) -> StepSpec {
        self.step_after(kind, with, &[])
    }

    /// Like [`Fx::step`], after steps named `inputs` whose outputs `${steps.X.Y}` may use
    /// (set them with [`Fx::set_output`]).
    pub fn step_after(&self, kind: &str, with: &str, inputs: &[&str]) -> StepSpec {
        let mut text = String::from("name: t\nsteps:\n  - id: ok\n    kind: approval\n");
        for i in inputs {
            text += &format!(
                "  - id: {i}\n    kind: test.step\n    with: {{ key: inputs }}\n    depends_on: []\n"
            );
        }
        let deps: Vec<&str> = std::iter::once("ok")
            .chain(inputs.iter().copied())
            .collect();
        text += &format!(
            "  - id: s\n    kind: {kind}\n    with: {with}\n    depends_on: [{}]\n",
            deps.join(", ")
        );
        let rb = config::parse_runbook::<StepSpec>(
            &Source::from_text(Path::new("t.yaml"), text),
            Some(&self.env),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        rb.steps.into_iter().last().expect("step s").spec
    }

    pub fn set_output(&self, step: &str, v: Value) {
        self.outputs.lock().unwrap().insert(step.into(), v);
    }

    pub fn cx(&self) -> StepCx {
        StepCx::new(
            &self.services(),
            "s",
            CxParts {
                run_id: "test".into(),
                env: self.env.clone(),
                approvals: Arc::new(NoApprovals),
                shutdown: CancellationToken::new(),
                outputs: self.outputs.clone(),
                notes: Arc::new(|_, _| {}),
            },
        )
    }

    pub fn mutations(&self) -> Vec<String> {
        self.world().mutations()
    }

    /// Mutating calls as `service:Operation@region`.
    pub fn mutations_by_region(&self) -> Vec<String> {
        self.world()
            .calls
            .iter()
            .filter(|c| c.mutating && !c.faulted)
            .map(|c| format!("{}:{}@{}", c.service, c.operation, c.region))
            .collect()
    }

    pub fn snapshot(&self) -> BTreeMap<String, String> {
        snapshot(&self.world())
    }

    /// Parameter `name` of `group` in `region`.
    pub fn param(&self, region: &str, group: &str, name: &str) -> Option<String> {
        self.world().parameter_groups[&key(region, group)]
            .get(name)
            .cloned()
    }

    /// The values of the simple record `name`/`rtype` in `zone`.
    pub fn record(&self, zone: &str, name: &str, rtype: &str) -> Option<Vec<String>> {
        self.world().zones.get(zone).and_then(|v| {
            v.iter()
                .find(|r| r.name == name && r.rtype == rtype && r.set_identifier.is_none())
                .map(|r| r.values.clone())
        })
    }

    /// What Route 53 answers for the public API name now.
    pub fn api_answer(&self) -> Vec<String> {
        self.world().answer(PUBLIC_ZONE, API_RECORD, "A")
    }

    pub fn origin_order(&self) -> Vec<String> {
        self.world().distributions[DISTRIBUTION].groups[ORIGIN_GROUP].clone()
    }

    /// (min, desired, max, in service) of an ASG.
    pub fn sizes(&self, region: &str, name: &str) -> (i32, i32, i32, i32) {
        let w = self.world();
        let g = &w.groups[&key(region, name)];
        (g.min, g.desired, g.max, g.in_service)
    }

    /// The AMI of a launch template's default version.
    pub fn template_image(&self, region: &str, id: &str) -> String {
        let w = self.world();
        let t = &w.templates[&key(region, id)];
        t.versions[&t.default_version].clone()
    }
}

/// What the deployment looks like, resource by resource, leaving out what only says how a
/// change got there (ETags, settle counters, change ids, copy jobs, non-default template
/// versions, parameter apply status) so that "undone" compares equal to "as seeded".
pub fn snapshot(w: &World) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    for ((r, id), d) in &w.dbs {
        let mut replicas = d.db.replicas.clone();
        replicas.sort();
        s.insert(
            format!("rds {r} {id}"),
            format!(
                "{} source={:?} replicas={replicas:?} group={:?}",
                d.db.status, d.db.replica_source, d.db.parameter_group
            ),
        );
    }
    for ((r, g), p) in &w.parameter_groups {
        s.insert(format!("parameters {r} {g}"), format!("{p:?}"));
    }
    for (z, recs) in &w.zones {
        let mut v: Vec<String> = recs.iter().map(|r| format!("{r:?}")).collect();
        v.sort();
        s.insert(format!("zone {z}"), v.join("\n"));
    }
    for (id, h) in &w.health_checks {
        s.insert(
            format!("health check {id}"),
            format!(
                "inverted={} disabled={} endpoint_up={}",
                h.check.inverted, h.check.disabled, h.endpoint_up
            ),
        );
    }
    for (id, d) in &w.distributions {
        s.insert(format!("distribution {id}"), format!("{:?}", d.groups));
    }
    for ((r, v), (_, points)) in &w.vaults {
        let mut arns: Vec<&str> = points.iter().map(|p| p.arn.as_str()).collect();
        arns.sort();
        s.insert(format!("vault {r} {v}"), format!("{arns:?}"));
    }
    for ((r, id), (i, _)) in &w.images {
        s.insert(format!("image {r} {id}"), i.state.clone());
    }
    for ((r, id), t) in &w.templates {
        s.insert(
            format!("launch template {r} {id}"),
            format!(
                "default {} runs {:?}",
                t.default_version,
                t.versions.get(&t.default_version)
            ),
        );
    }
    for ((r, n), g) in &w.groups {
        s.insert(
            format!("asg {r} {n}"),
            format!(
                "min {} desired {} max {} in service {}",
                g.min, g.desired, g.max, g.in_service
            ),
        );
    }
    for ((r, a), t) in &w.target_groups {
        s.insert(format!("target group {r} {a}"), format!("{t:?}"));
    }
    s
}

/// `a == b`, naming the resources that differ.
pub fn assert_same(now: &BTreeMap<String, String>, seeded: &BTreeMap<String, String>) {
    let keys: std::collections::BTreeSet<&String> = now.keys().chain(seeded.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| now.get(*k) != seeded.get(*k))
        .map(|k| {
            format!(
                "{k}:\n  now:    {:?}\n  seeded: {:?}",
                now.get(k),
                seeded.get(k)
            )
        })
        .collect();
    assert!(
        diff.is_empty(),
        "the world differs from the seed:\n{}",
        diff.join("\n")
    );
}

struct NoApprovals;

#[async_trait]
impl ApprovalGate for NoApprovals {
    async fn request(&self, _s: &str, _m: &str) -> Result<Approval, StepError> {
        Err(StepError::permanent("no approvals in step tests"))
    }
}

// ---- driving one step -------------------------------------------------------------------------

/// Generous, in paused time: only a step that never ends reaches it.
const BOUND: Duration = Duration::from_secs(3600);

pub async fn observe(s: &StepSpec, cx: &StepCx) -> Observation {
    tokio::time::timeout(BOUND, s.step().observe(cx))
        .await
        .expect("observe bounded")
        .unwrap_or_else(|e| panic!("{} observe: {e}", s.kind()))
}

pub async fn execute(s: &StepSpec, cx: &StepCx, obs: &Observation) -> Value {
    tokio::time::timeout(BOUND, s.step().execute(cx, obs))
        .await
        .expect("execute bounded")
        .unwrap_or_else(|e| panic!("{} execute: {e}", s.kind()))
}

pub async fn verify(s: &StepSpec, cx: &StepCx, result: &Value) {
    tokio::time::timeout(BOUND, s.step().verify(cx, result))
        .await
        .expect("verify bounded")
        .unwrap_or_else(|e| panic!("{} verify: {e}", s.kind()))
}

/// observe (NotDone, and read-only: no mutating call) -> execute -> verify.
pub async fn apply(fx: &Fx, s: &StepSpec, cx: &StepCx) -> (Observation, Value) {
    let before = fx.mutations().len();
    let obs = observe(s, cx).await;
    assert_eq!(
        obs.state,
        Satisfied::NotDone,
        "{} before: {obs:?}",
        s.kind()
    );
    assert_eq!(
        fx.mutations().len(),
        before,
        "{} observe changed something",
        s.kind()
    );
    let result = execute(s, cx, &obs).await;
    verify(s, cx, &result).await;
    (obs, result)
}

/// Observe says Done: a re-run (the engine re-observes first) makes no call that changes
/// anything.
pub async fn assert_done(fx: &Fx, s: &StepSpec, cx: &StepCx) -> Observation {
    let before = fx.mutations();
    let again = observe(s, cx).await;
    assert_eq!(
        again.state,
        Satisfied::Done,
        "{} is idempotent: observe after execute says Done: {again:?}",
        s.kind()
    );
    assert_eq!(
        fx.mutations(),
        before,
        "{} observe changed something",
        s.kind()
    );
    again
}

/// Executing again, as a resume would if it did not trust observe, asks AWS for nothing more.
pub async fn assert_execute_again_changes_nothing(
    fx: &Fx,
    s: &StepSpec,
    cx: &StepCx,
    obs: &Observation,
) {
    let before = fx.mutations();
    let r = execute(s, cx, obs).await;
    verify(s, cx, &r).await;
    assert_eq!(
        fx.mutations(),
        before,
        "{} executed again made a mutating call",
        s.kind()
    );
}

pub async fn undo(s: &StepSpec, cx: &StepCx, obs: &Observation, result: &Value) {
    assert_eq!(s.step().reversibility(), Reversibility::Reversible);
    tokio::time::timeout(BOUND, s.step().undo(cx, &obs.prior, result))
        .await
        .expect("undo bounded")
        .unwrap_or_else(|e| panic!("{} undo: {e}", s.kind()));
}

pub fn warnings(cx: &StepCx) -> Vec<String> {
    cx.take_reports()
        .into_iter()
        .filter_map(|r| match r {
            StepReport::Warning(w) => Some(w),
            _ => None,
        })
        .collect()
}

// ---- driving the engine -----------------------------------------------------------------------

pub fn operator() -> Operator {
    Operator {
        user: "tester".into(),
        host: "h".into(),
        pid: 1,
    }
}

pub fn auto_approve() -> Arc<dyn ApprovalSource> {
    Arc::new(AutoApprove {
        operator: operator(),
    })
}

/// A runbook of one step `s` of `kind` behind an approval; `ctl` adds step lines
/// (`    retries: 2\n`).
pub fn one_step(kind: &str, with: &str, ctl: &str) -> String {
    format!(
        "name: t\nsteps:\n  - id: ok\n    kind: approval\n  - id: s\n    kind: {kind}\n    with: {with}\n    depends_on: [ok]\n{ctl}"
    )
}

pub fn plan(fx: &Fx, yaml: &str) -> Arc<Plan> {
    let rb = config::parse_runbook::<StepSpec>(
        &Source::from_text(Path::new("rb.yaml"), yaml.into()),
        Some(&fx.env),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(Plan::new(&rb))
}

/// An engine over an in-memory journal and the fixture's fake.
pub async fn engine(fx: &Fx, plan: Arc<Plan>, approvals: Arc<dyn ApprovalSource>) -> Arc<Engine> {
    let mut j = MemJournal::default();
    j.append(1, Event::test_run_started()).await.unwrap();
    Engine::new(EngineParts {
        plan,
        run_id: "r".into(),
        journal: Box::new(j),
        token: 1,
        env: fx.env.clone(),
        services: fx.services(),
        shutdown: CancellationToken::new(),
        progress: Arc::new(Silent),
        approvals,
        prompter: None,
        operator: operator(),
        rerun: HashSet::new(),
    })
}

/// The journaled failures of `step`: (error, retry delay if retried).
pub async fn failures(e: &Engine, step: &str) -> Vec<(String, Option<u64>)> {
    e.records()
        .await
        .into_iter()
        .filter_map(|r| match r.event {
            Event::StepFailed {
                step: s,
                error,
                retry_in_ms,
                ..
            } if s == step => Some((error, retry_in_ms)),
            _ => None,
        })
        .collect()
}
