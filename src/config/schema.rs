//! JSON Schemas for the two files users write, for editors (`drctl schema env|runbook`).
//! The runbook schema is composed by hand because a step's `with` depends on its `kind`.

use serde_json::{json, Value};

use super::env::Environment;
use super::runbook::{OnFailure, StepKinds};

pub fn environment() -> Value {
    serde_json::to_value(schemars::schema_for!(Environment)).expect("schema serializes")
}

pub fn runbook<S: StepKinds>() -> Value {
    let on_failure = serde_json::to_value(schemars::schema_for!(OnFailure)).expect("schema");
    let variants: Vec<Value> = S::schemas()
        .into_iter()
        .map(|(kind, schema)| {
            let mut with = serde_json::to_value(schema).expect("schema");
            if let Value::Object(m) = &mut with {
                m.remove("$schema");
            }
            json!({
                "type": "object",
                "properties": { "kind": { "const": kind }, "with": with },
                "required": ["kind"],
            })
        })
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "drctl runbook",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "steps"],
        "properties": {
            "name": { "type": "string" },
            "description": { "type": "string" },
            "max_parallel": { "type": "integer", "minimum": 1, "description": "How many ready steps may run at once (default 4)" },
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "kind"],
                    "properties": {
                        "id": { "type": "string", "pattern": "^[A-Za-z0-9_-]+$" },
                        "kind": { "enum": S::kinds() },
                        "with": { "type": "object", "description": "The kind's parameters" },
                        "description": { "type": "string" },
                        "depends_on": { "type": "array", "items": { "type": "string" }, "description": "Default: the previous step. [] runs at the start." },
                        "timeout": { "type": "string", "description": "e.g. 30s, 10m" },
                        "retries": { "type": "integer", "minimum": 0 },
                        "backoff": { "type": "string", "description": "First retry delay; doubles, with jitter" },
                        "on_failure": on_failure,
                        "checkpoint": { "type": "string", "description": "Name a checkpoint reached when this step succeeds" }
                    },
                    "additionalProperties": false,
                    "allOf": [ { "oneOf": variants } ]
                }
            }
        }
    })
}

#[cfg(test)]
mod schedule_tests {
    #[test]
    fn the_environment_schema_describes_schedules() {
        let schema = super::environment().to_string();
        for want in [
            "catch_up_within",
            "run_once",
            "readiness",
            "blackout",
            "\"sat\"",
            "approve_production",
        ] {
            assert!(schema.contains(want), "no {want} in the schema");
        }
    }
}
