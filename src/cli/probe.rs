//! `drctl probe`: probe every target once, concurrently, and print a table (or JSON). The exit
//! code says whether everything answered as expected.

use anyhow::Result;
use serde_json::json;

use drctl::exit;
use drctl::probe::{ProbeError, Probers};

use super::render::table;
use super::{Global, Output, Usage};

pub fn probers(env: &drctl::config::Environment) -> Result<Probers> {
    Probers::from_env(env).map_err(|e| match e {
        e @ (ProbeError::NoProbes | ProbeError::Target { .. }) => Usage(e.to_string()).into(),
        e => e.into(),
    })
}

pub async fn probe(g: &Global, only: &[String]) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let mut p = probers(&env)?;
    if !only.is_empty() {
        if let Some(n) = only
            .iter()
            .find(|n| !p.targets.iter().any(|t| &t.name == *n))
        {
            anyhow::bail!(Usage(format!("no probe target named `{n}`")));
        }
        p.targets.retain(|t| only.contains(&t.name));
    }
    let results = p.round().await;
    let failed = results.iter().filter(|r| !r.ok).count();
    if g.output == Output::Json {
        let rows: Vec<_> = p
            .targets
            .iter()
            .zip(&results)
            .map(|(t, r)| {
                json!({
                    "target": t.name, "region": t.region, "role": t.role, "check": t.describe(),
                    "ok": r.ok, "reason": r.reason, "detail": r.detail,
                    "latency_ms": (r.latency.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"env": env.name, "failed": failed, "targets": rows})
            )?
        );
    } else {
        let mut t = table(&[
            "target", "region", "role", "check", "result", "latency", "detail",
        ]);
        for (tg, r) in p.targets.iter().zip(&results) {
            t.add_row(vec![
                tg.name.clone(),
                tg.region.clone(),
                tg.role.map_or("-".into(), |r| r.to_string()),
                tg.describe(),
                if r.ok {
                    "ok".into()
                } else {
                    format!("FAIL ({})", r.reason.map_or("error", |x| x.as_str()))
                },
                format!("{:.1}ms", r.latency.as_secs_f64() * 1000.0),
                r.detail.clone(),
            ]);
        }
        println!("{t}");
        if failed == 0 {
            println!("all {} targets answered as expected", results.len());
        } else {
            println!("{failed} of {} targets failed", results.len());
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::FAILED })
}
