//! A drill's figures, folded from its journal: the measured times (to a writable database, to
//! serving compute), every resource it made with when it was created and removed, and the
//! instance-minutes as a cost figure. The report shows them; `drctl drill` prints them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::journal::{Event, Measure, Record};

/// The prefix of a drill runbook's name.
pub const DRILL_PREFIX: &str = "drill-";

/// Step kinds a drill may use: its own, and ones that only read.
const DRILL_KINDS: &[&str] = &["ec2.latest_image", "wait", "http.check", "notify"];

/// Whether a journaled run is a drill's: a `drill-` runbook whose steps are all drill steps or
/// read-only ones (a runbook merely named so that changes production is not a drill).
pub fn is_drill(runbook_name: &str, runbook_text: &str) -> bool {
    static KIND: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = KIND.get_or_init(|| {
        regex::Regex::new(r"(?m)^\s*-?\s*kind:\s*([A-Za-z0-9_.]+)").expect("a valid regex")
    });
    runbook_name.starts_with(DRILL_PREFIX)
        && re.captures_iter(runbook_text).all(|c| {
            let k = &c[1];
            k.starts_with("drill.") || DRILL_KINDS.contains(&k)
        })
}

/// How a drill's run is closed when its teardown removed everything (the run module writes it;
/// the report reads it).
pub const CLOSED_CLEAN: &str = "drill torn down; its resources were removed";

/// What a drill measured and made.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DrillFigures {
    /// Seconds from asking for the restore to a writable drill database.
    pub database_s: Option<f64>,
    /// Seconds from launching instances to the app serving through the drill listener.
    pub serving_s: Option<f64>,
    pub resources: Vec<Resource>,
    /// Instances x the minutes each existed.
    pub instance_minutes: f64,
}

/// One resource a drill made.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Resource {
    /// `DB instance`, `instance`, `target group`, `listener`.
    pub kind: String,
    pub id: String,
    /// When the step that made it began acting.
    pub created_at: Option<DateTime<Utc>>,
    /// When its step was undone; else when the drill's run was closed after a clean sweep by
    /// tag; `None`: not known to be removed.
    pub removed_at: Option<DateTime<Utc>>,
}

/// The figures of a drill's journal (`None` when no step made drill resources or measured).
pub fn figures(records: &[Record]) -> Option<DrillFigures> {
    let mut f = DrillFigures::default();
    let mut started: HashMap<&str, DateTime<Utc>> = HashMap::new();
    let mut undone: HashMap<&str, DateTime<Utc>> = HashMap::new();
    let mut closed_at = None;
    for r in records {
        match &r.event {
            Event::Measured {
                measure: Measure::DrillDatabaseSeconds,
                value,
                ..
            } => f.database_s = Some(*value),
            Event::Measured {
                measure: Measure::DrillServingSeconds,
                value,
                ..
            } => f.serving_s = Some(*value),
            Event::StepIntent { step, .. } => {
                started.entry(step.as_str()).or_insert(r.at);
            }
            Event::Undone { step } => {
                undone.insert(step.as_str(), r.at);
            }
            // Closed after a clean sweep by tag: what no undo removed went then.
            Event::RunFinished { message, .. } if message.starts_with(CLOSED_CLEAN) => {
                closed_at = Some(r.at)
            }
            _ => {}
        }
    }
    for r in records {
        let Event::StepSucceeded { step, result, .. } = &r.event else {
            continue;
        };
        let created = started.get(step.as_str()).copied();
        let removed = undone.get(step.as_str()).copied().or(closed_at);
        let mut add = |kind: &str, id: &str| {
            f.resources.push(Resource {
                kind: kind.to_string(),
                id: id.to_string(),
                created_at: created,
                removed_at: removed,
            })
        };
        if let Some(id) = result["db_instance_id"].as_str() {
            add("DB instance", id);
        }
        if let Some(ids) = result["instance_ids"].as_array() {
            for id in ids.iter().filter_map(|v| v.as_str()) {
                add("instance", id);
                let end = removed.unwrap_or_else(|| records.last().map(|l| l.at).unwrap_or(r.at));
                if let Some(c) = created {
                    f.instance_minutes += (end - c).num_milliseconds().max(0) as f64 / 60_000.0;
                }
            }
        }
        if let Some(id) = result["target_group_arn"].as_str() {
            add("target group", id);
        }
        if let Some(id) = result["listener_arn"].as_str() {
            add("listener", id);
        }
    }
    (f.database_s.is_some() || f.serving_s.is_some() || !f.resources.is_empty()).then_some(f)
}
