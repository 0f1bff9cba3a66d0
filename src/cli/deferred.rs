//! `drctl deferred [--run]`: the control-plane work a statically stable failover left for
//! later (swapping the records' roles, CloudFront's origin), and doing it now.

use anyhow::Result;

use super::{Global, Mutating};
use drctl::exit;
use drctl::topology::fences::read_all;

/// List the deferred work; with `run`, do it (a run of the `deferred` runbook).
pub async fn deferred(g: &Global, run: bool, m: &Mutating) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let ctx = g.context(g.state_dir(Some(&env))?);
    let journals = ctx.state.journals().await;
    let work = read_all(journals.as_ref(), &env.name).await.deferred;
    if work.is_empty() {
        println!("Nothing is deferred in {}.", env.name);
        return Ok(exit::OK);
    }
    println!(
        "Deferred in {} (their control plane did not answer):",
        env.name
    );
    for w in &work {
        println!(
            "  {:<20} {:<28} since {} (run {})\n  {:<20} {}",
            w.step,
            w.kind,
            w.since.format("%Y-%m-%d %H:%M:%S UTC"),
            w.run_id,
            "",
            w.error
        );
    }
    if !run {
        println!("Next: drctl deferred --run (once the Route 53 and CloudFront APIs answer)");
        return Ok(exit::OK);
    }
    let path = drctl::run::deferred::write_runbook(&ctx.state_dir, &work)?;
    let mut new = super::run::prepare(g, &path)?;
    new.purpose = Some(
        "finish the failover's deferred control-plane work; production stays where it is".into(),
    );
    let s = super::run::start(g, &ctx, &new, m).await?;
    Ok(super::run::finish_as(
        g,
        &s,
        super::run::ending_for(&new.rb.name, &env, &s),
    ))
}
