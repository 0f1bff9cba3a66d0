//! `drctl verify RUN`: is a run's journal as drctl wrote it? Checks its hash chain and names
//! the first event where it breaks. The library checks (`drctl::journal::chain`); this file
//! shows the verdict and gives it an exit code: 0 intact, 10 broken or empty, 11 unchained.

use anyhow::Result;
use serde_json::json;

use drctl::exit;
use drctl::journal::chain::ChainStatus;
use drctl::run::inspect;

use super::{Global, Output};

pub async fn verify(g: &Global, run: &str) -> Result<i32> {
    let store = g.journals().await?;
    let run = match run {
        "latest" => inspect::latest(store.as_ref()).await?,
        r => r.to_string(),
    };
    let r = store.verify_chain(&run).await?;
    let path = store.locator(&run);
    let status = r.status();
    let code = match status {
        ChainStatus::Intact => exit::OK,
        // Not an error: it reads as before. Its own code, so that a script checking journals
        // kept from before hash chains can tell "cannot tell" from "changed".
        ChainStatus::Unchained => exit::UNCHAINED,
        ChainStatus::Broken | ChainStatus::Empty => exit::DAMAGED,
    };
    if g.output == Output::Json {
        let brk = r
            .broken
            .as_ref()
            .map(|b| json!({"line": b.line, "seq": b.seq, "why": b.why, "message": b.to_string()}));
        let out = json!({
            "run_id": run,
            "journal": path,
            "status": status,
            "intact": status == ChainStatus::Intact,
            "events": r.events,
            "chained": r.chained,
            "head": r.head,
            "torn_tail_bytes": r.torn_tail,
            "break": brk,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(code);
    }
    let n = r.events;
    match (status, &r.broken) {
        (ChainStatus::Broken, Some(b)) => {
            println!("journal of run {run} is not intact: {b}");
            println!("journal: {}", path);
        }
        (ChainStatus::Unchained, _) => println!(
            "journal of run {run}: {n} events, unchained (written by a drctl before hash chains): it reads, but whether it was changed cannot be told"
        ),
        (ChainStatus::Empty, _) => {
            println!("journal of run {run} has no events: nothing to verify (a run that stopped as it was created, or a journal cut to nothing)");
            println!("journal: {}", path);
        }
        _ => println!(
            "journal of run {run}: {n} events, hash chain intact, head {}",
            r.head.as_deref().unwrap_or_default()
        ),
    }
    // A crash mid-write is not an edit, but the operator should know the bytes are there.
    if r.torn_tail > 0 && status != ChainStatus::Broken {
        println!(
            "note: the last line is torn ({} bytes after event {n}, a crash while it was written): it is not an event, and `drctl resume` cuts it back",
            r.torn_tail
        );
    }
    Ok(code)
}
