//! The least-privilege IAM policy a runbook needs: every step kind names the actions it calls
//! and the resources it calls them on (`Step::iam`); statements group actions by resource.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::Runbook;
use crate::config::env::Environment;

/// An IAM policy document (JSON) for running `rb` against `env`, with `reads`: the
/// (action, resource) pairs of what the command reads around its steps.
pub fn policy(rb: &Runbook, env: &Environment, reads: Vec<(&'static str, String)>) -> Value {
    // Group actions by the resource they act on: one statement per resource set.
    let mut by_resource: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for (action, resource) in reads {
        by_resource.entry(resource).or_default().insert(action);
    }
    for s in &rb.steps {
        for (action, resource) in s.spec.step().iam(env) {
            by_resource.entry(resource).or_default().insert(action);
        }
    }
    let mut by_actions: BTreeMap<Vec<&'static str>, Vec<String>> = BTreeMap::new();
    for (resource, actions) in by_resource {
        by_actions
            .entry(actions.into_iter().collect())
            .or_default()
            .push(resource);
    }
    let statements: Vec<Value> = by_actions
        .into_iter()
        .enumerate()
        .map(|(i, (actions, resources))| {
            json!({
                "Sid": format!("Drctl{}", i + 1),
                "Effect": "Allow",
                "Action": actions,
                "Resource": if resources.len() == 1 { json!(resources[0]) } else { json!(resources) },
            })
        })
        .collect();
    let mut statements = statements;
    // The shared state table: the lease, journals, approvals and watchers' views
    // (`drctl state init` also needs dynamodb:CreateTable, once).
    if let (crate::config::state::StateBackend::Dynamodb, Some(t), Some(r)) =
        (env.state.backend, &env.state.table, &env.state.region)
    {
        statements.push(json!({
            "Sid": "DrctlStateTable",
            "Effect": "Allow",
            "Action": [
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem",
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
            ],
            "Resource": format!("arn:aws:dynamodb:{r}:*:table/{t}"),
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}
