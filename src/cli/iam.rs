//! `drctl iam-policy RUNBOOK|COMMAND`: the least-privilege IAM policy a runbook's steps need
//! (`drctl iam-policy failback`: the runbook `drctl failback` runs in this environment).

use std::path::Path;

use anyhow::Result;

use drctl::exit;

use super::Global;

pub fn iam_policy(g: &Global, runbook: &Path) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let name = drctl::run::failover::runbook_named(&env, &runbook.to_string_lossy());
    let path = drctl::run::failover::resolve_runbook(&g.env_file, Some(&name))?;
    let p = super::run::prepare(g, &path)?;
    let policy = drctl::steps::iam::policy(&p.rb, &p.env, drctl::topology::iam::reads(&p.env));
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(exit::OK)
}
