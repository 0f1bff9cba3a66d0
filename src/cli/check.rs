//! `drctl check`: readiness of the standby region, read-only, as a PASS/WARN/FAIL table.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use drctl::exit;
use drctl::readiness::{check_standby, Status};

use super::render::table;
use super::{Global, Output};

pub async fn check(g: &Global, limit: Duration) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let services = g.aws_source().services(&env);
    let checks = check_standby(services.aws.as_ref(), &env, &services.http, limit).await;
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"environment": env.name, "standby_region": env.standby_region, "checks": checks, "failed": failed, "warnings": warned})
            )?
        );
    } else {
        println!(
            "Readiness of `{}`: standby {} (primary {})\n",
            env.name, env.standby_region, env.primary_region
        );
        let mut t = table(&["status", "check", "reason"]);
        for c in &checks {
            t.add_row(vec![c.status.to_string(), c.name.clone(), c.reason.clone()]);
        }
        println!("{t}");
        println!(
            "\n{} checks: {} pass, {warned} warn, {failed} fail{}",
            checks.len(),
            checks.len() - failed - warned,
            if failed > 0 {
                ": the standby is NOT ready to take production"
            } else {
                ""
            }
        );
    }
    Ok(if failed > 0 { exit::FAILED } else { exit::OK })
}
