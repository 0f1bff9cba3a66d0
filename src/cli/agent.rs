//! `drctl agent`: the long-running daemon that runs `drill.schedules` (docs/drills-schedules.md).
//! The scheduling is the library's (`drctl::schedule`), the drills too (`drctl::run::agent`);
//! this file reads the environment, installs the signals and prints.

use std::sync::Arc;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::render::Plain;
use super::Global;
use drctl::exit;
use drctl::run::agent::ScheduledRunner;
use drctl::schedule::{Agent, OffsetClock, ScheduleState, SystemClock};

/// `drctl agent`.
pub async fn agent(g: &Global) -> Result<i32> {
    let (_, env) = g.load_env()?;
    let state_dir = g.state_dir(Some(&env))?;
    drctl::config::schedule::validate_all(&env.drill.schedules).map_err(super::Usage)?;
    if env.drill.schedules.is_empty() {
        return Err(super::Usage(format!(
            "no drill.schedules in {}: nothing to run (docs/drills-schedules.md)",
            g.env_file.display()
        ))
        .into());
    }
    let ctx = g.context(state_dir.clone());
    let shutdown = CancellationToken::new();
    super::run::on_signals(
        shutdown.clone(),
        "\nstopping: no new drill starts; a running drill stops and tears down first (signal again to quit at once; then `drctl drill cleanup`)",
        Some("quitting now: run `drctl drill cleanup` if a drill was running"),
    );
    let runner = Arc::new(ScheduledRunner {
        ctx,
        env_file: g.env_file.clone(),
        progress: Arc::new(Plain),
        shutdown: shutdown.clone(),
    });
    let path = ScheduleState::path_in(&state_dir);
    let state = ScheduleState::load(&path)?;
    let rows = drctl::schedule::list(&env.drill.schedules, &state, chrono::Utc::now());
    eprintln!(
        "drctl agent: {} drill schedule(s); state in {}",
        rows.len(),
        path.display()
    );
    // Tests (and rehearsals) start the clock at a chosen time: DRCTL_TEST_CLOCK=RFC 3339.
    let start = std::env::var("DRCTL_TEST_CLOCK").ok().map(|v| {
        chrono::DateTime::parse_from_rfc3339(&v)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| super::Usage(format!("DRCTL_TEST_CLOCK `{v}`: {e}")))
    });
    let schedules = env.drill.schedules.clone();
    match start.transpose()? {
        Some(t) => {
            eprintln!("drctl agent: clock starts at {t} (DRCTL_TEST_CLOCK)");
            Agent::new(OffsetClock::new(t), schedules, path)
                .run(runner, shutdown)
                .await?
        }
        None => {
            Agent::new(SystemClock, schedules, path)
                .run(runner, shutdown)
                .await?
        }
    }
    eprintln!("drctl agent: stopped");
    Ok(exit::OK)
}
