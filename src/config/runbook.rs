//! Runbook files (`runbooks/*.yaml`): an ordered list of steps that form a DAG.
//!
//! A step is `id`, `kind`, the kind's parameters under `with`, and the engine's controls
//! (`depends_on`, `timeout`, `retries`, `on_failure`, `checkpoint`). Steps are read with a
//! hand-written map visitor instead of `#[serde(flatten)]`: flattening buffers the input and loses
//! every line:column, and an operator at 3 a.m. needs the line.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::env::Environment;

/// The closed set of step kinds and their parameters. Config parses and checks a step's `with`
/// through this trait without knowing any kind: the layer above (`steps::StepSpec`) implements
/// it, so the arrow points one way (config knows nothing of steps).
pub trait StepKinds: Sized + Clone + fmt::Debug + Send + Sync + 'static {
    /// Every kind name, in a stable order.
    fn kinds() -> Vec<&'static str>;
    /// The parameters (`with`) of a step of `kind`.
    fn deserialize_kind<'de, D: Deserializer<'de>>(kind: &str, d: D) -> Result<Self, D::Error>;
    /// JSON Schema of each kind's parameters.
    fn schemas() -> Vec<(&'static str, schemars::Schema)>;
    /// Why a completed step of this kind cannot be undone, if it cannot.
    fn irreversible(&self) -> Option<&'static str>;
    /// An `approval` step: a human gate that may stand before irreversible steps.
    fn is_approval(&self) -> bool;
    /// Strings that may hold `${...}` references, for validation.
    fn templates(&self) -> Vec<&Spanned<String>>;
    /// Kind-specific checks against the environment (resources that must exist).
    fn validate(&self, env: &Environment) -> Vec<Problem>;
    /// The result keys later steps may reference (`${steps.ID.KEY}`); empty: not declared.
    fn outputs(&self) -> &'static [&'static str] {
        &[]
    }

    /// Parameters when a step has no `with`: only kinds whose fields are all optional.
    fn from_empty(kind: &str) -> Result<Self, String> {
        let d = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
            std::iter::empty::<(String, String)>(),
        );
        Self::deserialize_kind(kind, d).map_err(|e| e.to_string())
    }
}

/// A problem found while validating a step's parameters against the environment.
#[derive(Debug, Clone)]
pub struct Problem {
    pub at: Option<serde_saphyr::Location>,
    pub message: String,
}

impl Problem {
    /// A problem with no better location than the step's `kind`.
    pub fn new(message: impl Into<String>) -> Self {
        Problem {
            at: None,
            message: message.into(),
        }
    }
}

/// A parsed runbook. Semantic checks live in `config::validate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: StepKinds"))]
pub struct Runbook<S> {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// How many ready steps may run at once (default 4).
    #[serde(default)]
    pub max_parallel: Option<usize>,
    pub steps: Vec<StepDef<S>>,
}

/// What the engine does when a step has failed its last attempt.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop starting steps, journal a Paused event; `drctl resume` retries the step.
    #[default]
    Pause,
    /// Stop starting steps and end the run as failed. Nothing is undone.
    Abort,
    /// Undo every completed step back to the most recent checkpoint, then end as failed.
    Rollback,
    /// Record the failure and carry on: dependents still run.
    Continue,
    /// For a step that needs a control plane the outage may have taken (Route 53's and
    /// CloudFront's are in us-east-1): when its last attempt fails because the service could
    /// not be reached (a timeout, throttling, a 5xx), record it as deferred work and carry on;
    /// `drctl status` shows it and `drctl deferred --run` or a running `drctl watch` does it
    /// once the service answers. Any other failure (credentials, permissions, configuration)
    /// pauses the run, as `pause` does.
    Defer,
}

/// One step as written.
#[derive(Debug, Clone)]
pub struct StepDef<S> {
    pub id: Spanned<String>,
    pub kind: Spanned<String>,
    pub spec: S,
    pub description: Option<String>,
    /// `None` means "after the previous step in file order"; `Some(vec![])` means "no
    /// dependencies".
    pub depends_on: Option<Vec<Spanned<String>>>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    /// First retry delay; doubles per attempt, with jitter.
    pub backoff: Duration,
    pub on_failure: OnFailure,
    /// A named checkpoint, reached when this step succeeds. `drctl rollback --to NAME` undoes
    /// what completed after it.
    pub checkpoint: Option<Spanned<String>>,
}

pub const STEP_FIELDS: &[&str] = &[
    "id",
    "kind",
    "with",
    "description",
    "depends_on",
    "timeout",
    "retries",
    "backoff",
    "on_failure",
    "checkpoint",
];

impl<'de, S: StepKinds> Deserialize<'de> for StepDef<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StepVisitor(PhantomData))
    }
}

struct StepVisitor<S>(PhantomData<S>);

#[derive(Deserialize)]
struct DurationValue(#[serde(with = "humantime_serde")] Duration);

impl<'de, S: StepKinds> Visitor<'de> for StepVisitor<S> {
    type Value = StepDef<S>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a step: a map with `id`, `kind` and the kind's parameters under `with`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StepDef<S>, A::Error> {
        let mut id: Option<Spanned<String>> = None;
        let mut kind: Option<Spanned<String>> = None;
        let mut spec: Option<S> = None;
        let mut description = None;
        let mut depends_on = None;
        let mut timeout = None;
        let mut retries = None;
        let mut backoff = None;
        let mut on_failure = None;
        let mut checkpoint = None;

        while let Some(key) = map.next_key::<String>()? {
            macro_rules! once {
                ($slot:ident, $name:literal) => {{
                    if $slot.is_some() {
                        return Err(de::Error::duplicate_field($name));
                    }
                    $slot = Some(map.next_value()?);
                }};
            }
            match key.as_str() {
                "id" => once!(id, "id"),
                "kind" => {
                    if kind.is_some() {
                        return Err(de::Error::duplicate_field("kind"));
                    }
                    let k: Spanned<String> = map.next_value()?;
                    let kinds = S::kinds();
                    if !kinds.contains(&k.value.as_str()) {
                        // A custom error is placed at the enclosing map; carry the kind's own
                        // place in the message (see `config::yaml_error`).
                        return Err(de::Error::custom(format!(
                            "@{}:{} unknown step kind `{}`; known kinds: {}",
                            k.referenced.line(),
                            k.referenced.column(),
                            k.value,
                            kinds.join(", ")
                        )));
                    }
                    kind = Some(k);
                }
                "with" => {
                    let Some(k) = &kind else {
                        return Err(de::Error::custom(
                            "`with` comes before `kind`; write `kind:` first so the parameters can be checked against it",
                        ));
                    };
                    if spec.is_some() {
                        return Err(de::Error::duplicate_field("with"));
                    }
                    spec = Some(map.next_value_seed(SpecSeed(&k.value, PhantomData))?);
                }
                "description" => once!(description, "description"),
                "depends_on" => once!(depends_on, "depends_on"),
                "timeout" => {
                    let v: DurationValue = map.next_value()?;
                    timeout = Some(v.0);
                }
                "retries" => once!(retries, "retries"),
                "backoff" => {
                    let v: DurationValue = map.next_value()?;
                    backoff = Some(v.0);
                }
                "on_failure" => once!(on_failure, "on_failure"),
                "checkpoint" => once!(checkpoint, "checkpoint"),
                other => return Err(de::Error::unknown_field(other, STEP_FIELDS)),
            }
        }
        let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        let spec = match spec {
            Some(s) => s,
            // No `with`: the kind's parameters must all be optional.
            None => S::from_empty(&kind.value).map_err(|e| {
                de::Error::custom(format!("step `{}` (kind {}): {e}", id.value, kind.value))
            })?,
        };
        Ok(StepDef {
            id,
            kind,
            spec,
            description,
            depends_on,
            timeout,
            retries: retries.unwrap_or(0),
            backoff: backoff.unwrap_or(Duration::from_secs(1)),
            on_failure: on_failure.unwrap_or_default(),
            checkpoint,
        })
    }
}

struct SpecSeed<'a, S>(&'a str, PhantomData<S>);

impl<'de, S: StepKinds> DeserializeSeed<'de> for SpecSeed<'_, S> {
    type Value = S;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S, D::Error> {
        S::deserialize_kind(self.0, d)
    }
}

impl<S> StepDef<S> {
    pub fn id(&self) -> &str {
        &self.id.value
    }
}
