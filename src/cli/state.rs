//! `drctl state init|migrate|show`: the shared state table of `state: backend: dynamodb`.
//! The library does the work (`drctl::run::state`); this file asks and shows.

use anyhow::Result;
use serde_json::json;

use drctl::exit;
use drctl::journal::Init;
use drctl::run::state;

use super::{confirm, Global, Output};

/// `drctl state init`: create the table (asks first; `--dry-run` only says what it would do).
pub async fn init(g: &Global, yes: bool, dry_run: bool) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    let st = &ctx.state;
    let Some(table) = st.dynamo().await else {
        // The library's refusal says what to put in drctl.yaml.
        state::init(st, |_| {}).await?;
        unreachable!("init refuses the file backend");
    };
    let status = table
        .table_status()
        .await
        .map_err(drctl::journal::JournalError::State)?;
    if g.output != Output::Json {
        match &status {
            Some(s) => println!("table {} in {}: exists ({s})", table.table, table.region),
            None => println!(
                "table {} in {}: not there; would create it with keys pk (HASH) and sk (RANGE), on-demand billing",
                table.table, table.region
            ),
        }
    }
    if dry_run || status.as_deref() == Some("ACTIVE") {
        if g.output == Output::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"table": table.table, "region": table.region, "status": status, "created": false})
                )?
            );
        }
        return Ok(exit::OK);
    }
    // A table being created (by someone else, or an init that was stopped) is waited for.
    if status.is_none() {
        confirm(
            &format!("Create DynamoDB table {} in {}?", table.table, table.region),
            yes,
        )?;
    }
    let quiet = g.output == Output::Json;
    let done = state::init(st, |s| {
        if !quiet {
            eprintln!("  waiting for the table: {s}");
        }
    })
    .await?;
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"table": table.table, "region": table.region, "status": "ACTIVE", "created": done == Init::Created})
            )?
        );
    } else {
        println!(
            "table {} in {} is ACTIVE{}. Every drctl with this drctl.yaml now keeps runs and the lease there; `drctl state migrate` copies this directory's runs in",
            table.table,
            table.region,
            if done == Init::Created { " (created)" } else { "" }
        );
    }
    Ok(exit::OK)
}

/// `drctl state migrate`: copy this state dir's runs of the environment into the table.
pub async fn migrate(g: &Global, yes: bool, dry_run: bool) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    if !dry_run {
        let plan = state::migrate(&ctx.state, &env.name, true).await?;
        if plan.copied.is_empty() {
            println!(
                "nothing to copy from {} ({} run(s) already in the table)",
                ctx.state_dir.display(),
                plan.present.len()
            );
        } else {
            confirm(
                &format!(
                    "Copy {} run(s) from {} into {}?",
                    plan.copied.len(),
                    ctx.state_dir.display(),
                    ctx.state.describe()
                ),
                yes,
            )?;
        }
    }
    let m = state::migrate(&ctx.state, &env.name, dry_run).await?;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        let verb = if dry_run { "would copy" } else { "copied" };
        for id in &m.copied {
            println!("{verb} {id}");
        }
        for id in &m.present {
            println!("already in the table: {id}");
        }
        for id in &m.other_env {
            println!("skipped {id} (another environment)");
        }
        for (id, why) in &m.refused {
            println!("NOT COPIED {id}: {why}");
        }
        if let Some(t) = m.lease_token {
            println!("the table's lease starts after fencing token {t} (the file lease's)");
        }
        println!(
            "{} run(s) {verb}, {} already there, {} not copied",
            m.copied.len(),
            m.present.len(),
            m.refused.len()
        );
    }
    Ok(if m.refused.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}

/// `drctl state show`: the backend, and who holds the lease.
pub async fn show(g: &Global) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    let lease = ctx.state.leases().await.current(&env.name).await?;
    let runs = ctx.state.journals().await.list().await?;
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "backend": if ctx.state.is_shared() { "dynamodb" } else { "file" },
                "where": ctx.state.describe(),
                "runs": runs.len(),
                "lease": lease,
            }))?
        );
        return Ok(exit::OK);
    }
    println!("environment {}: {}", env.name, ctx.state.describe());
    println!("runs: {}", runs.len());
    match lease {
        None => println!("lease: never taken"),
        Some(l) if l.released => println!("lease: free (last fencing token {})", l.token),
        Some(l) => println!(
            "lease: token {} held by {} on {} (pid {}, `{}`), valid until {}",
            l.token,
            l.owner,
            l.host,
            l.pid,
            l.command,
            l.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
    }
    Ok(exit::OK)
}
