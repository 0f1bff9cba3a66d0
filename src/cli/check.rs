//! `drctl check`: the environment's state, then the readiness of the region a failover would
//! go to, read-only, as a PASS/WARN/FAIL table.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use drctl::exit;
use drctl::readiness::{check_environment, Status};
use drctl::run::roundtrip::observe_within;

use super::render::{status_cell, table};
use super::{Global, Output};

pub async fn check(g: &Global, limit: Duration) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    let services = g.aws_source().services(&env);
    let t = observe_within(&ctx, &env, limit).await;
    let checks = check_environment(services.aws.as_ref(), &env, &services.http, limit, &t).await;
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    let passive = t
        .active_role()
        .map(|r| env.region_of(drctl::topology::other(r)).to_string())
        .unwrap_or_else(|| env.standby_region.clone());
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "environment": env.name, "phase": t.phase, "active_region": t.active,
                "passive_region": passive, "standby_region": passive,
                "checks": checks, "failed": failed, "warnings": warned,
            }))?
        );
    } else {
        println!(
            "Readiness of `{}`: {}; a failover would go to {passive}\n",
            env.name, t.phase
        );
        let mut tb = table(&["status", "check", "reason"]);
        if super::render::colour() {
            // Styled cells only on a terminal that takes colour (comfy-table's own check is
            // of stdout, which may be piped while colour was asked for).
            tb.enforce_styling();
        }
        for c in &checks {
            tb.add_row(vec![
                status_cell(c.status),
                comfy_table::Cell::new(&c.name),
                comfy_table::Cell::new(&c.reason),
            ]);
        }
        println!("{tb}");
        let region_fails = checks
            .iter()
            .filter(|c| c.status == Status::Fail && c.name != "environment")
            .count();
        println!(
            "\n{} checks: {} pass, {warned} warn, {failed} fail{}",
            checks.len(),
            checks.len() - failed - warned,
            if region_fails > 0 {
                format!(": {passive} is NOT ready to take production")
            } else if failed > 0 {
                ": the environment needs attention (see `drctl status`)".to_string()
            } else {
                String::new()
            }
        );
    }
    Ok(if failed > 0 { exit::FAILED } else { exit::OK })
}
