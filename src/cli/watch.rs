//! `drctl watch`: the long-running watcher. Wires the library's watch loop to the terminal
//! (one line per transition and decision), to the HTTP surface, to signals, and to the failover
//! action, which runs the runbook through the same path as `drctl run` (lease, journal, engine).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;

use drctl::exit;
use drctl::probe::watch::{WatchJournal, WatchRecord, WatchSink};
use drctl::run::watch::setup;

use super::render::Plain;
use super::{Global, Output};

/// Lines on stderr for people, or JSON lines on stdout with `--output json`.
struct Printer {
    json: bool,
}

impl WatchSink for Printer {
    fn record(&self, r: &WatchRecord) {
        if self.json {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
            return;
        }
        let at = r.at.format("%H:%M:%S%.3f");
        let line = r.event.describe();
        eprintln!("{at} {line}");
    }
}

pub async fn watch(
    g: &Global,
    listen: &str,
    notify_only: bool,
    watcher_id: Option<String>,
) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let state_dir = g.state_dir(Some(&env))?;
    let sink = Arc::new(Printer {
        json: g.output == Output::Json,
    });
    // Runs it starts print plain lines, never a live table over the watch's own output.
    let w = setup(
        &g.context(state_dir.clone()),
        &g.env_file,
        &env,
        notify_only,
        sink,
        Arc::new(Plain),
        watcher_id,
    )?;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "http://{addr}/metrics  /status  /healthz; journal {}",
        WatchJournal::path_for(&state_dir, &env.name).display()
    );

    let shutdown = CancellationToken::new();
    let http_stop = CancellationToken::new();
    let server = tokio::spawn(drctl::probe::watch::serve(
        listener,
        w.shared.clone(),
        http_stop.clone(),
    ));
    super::run::on_signals(
        shutdown.clone(),
        "stopping: probes stop now; a running failover pauses at a safe point (signal again to quit at once)",
        None,
    );
    let res = w.run(shutdown).await;
    http_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    res?;
    Ok(exit::OK)
}
