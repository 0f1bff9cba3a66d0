//! `drctl iam-policy RUNBOOK`: the least-privilege IAM policy a runbook's steps need.

use std::path::Path;

use anyhow::Result;

use drctl::exit;

use super::Global;

pub fn iam_policy(g: &Global, runbook: &Path) -> Result<i32> {
    let p = super::run::prepare(g, runbook)?;
    let policy = drctl::steps::iam::policy(&p.rb, &p.env);
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(exit::OK)
}
