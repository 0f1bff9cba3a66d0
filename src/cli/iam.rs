//! `drctl iam-policy RUNBOOK`: the least-privilege IAM policy a runbook's steps need.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use drctl::exit;

use super::Global;

pub fn iam_policy(g: &Global, runbook: &Path) -> Result<i32> {
    let p = super::run::prepare(g, runbook)?;
    // Group actions by the resource they act on: one statement per resource set.
    let mut by_resource: BTreeMap<String, std::collections::BTreeSet<&'static str>> =
        BTreeMap::new();
    for s in &p.rb.steps {
        for (action, resource) in s.spec.step().iam(&p.env) {
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
    let statements: Vec<_> = by_actions
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
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({"Version": "2012-10-17", "Statement": statements}))?
    );
    Ok(exit::OK)
}
