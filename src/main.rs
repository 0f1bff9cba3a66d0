//! The `drctl` binary: parse arguments, set up logging, call the command, and map how it ended
//! to an exit code (see `drctl::exit`).

mod cli;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command, LogFormat};
use drctl::exit;
use drctl::journal::{JournalError, LeaseError};

fn init_logging(g: &cli::Global) {
    let level = match g.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("drctl={level}")));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match g.log_format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.init(),
    }
}

/// Distinct exit codes for the errors a script may want to tell apart.
fn code_for(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<drctl::config::ConfigError>().is_some()
        || e.downcast_ref::<cli::Usage>().is_some()
    {
        return exit::INVALID;
    }
    if let Some(r) = e.downcast_ref::<drctl::run::RunError>() {
        return r.exit_code();
    }
    if let Some(drctl::journal::LeaseError::Held(_)) =
        e.downcast_ref::<drctl::journal::LeaseError>()
    {
        return exit::LOCKED;
    }
    if e.downcast_ref::<cli::Declined>().is_some() {
        return exit::DECLINED;
    }
    match e.downcast_ref::<drctl::journal::JournalError>() {
        Some(JournalError::State(s)) => return s.exit_code(),
        Some(JournalError::Fenced { .. }) => return exit::LOCKED,
        Some(JournalError::NoSuchRun(_) | JournalError::BadRunId(_)) => return exit::INVALID,
        Some(JournalError::Tampered { .. } | JournalError::Corrupt { .. }) => return exit::DAMAGED,
        _ => {}
    }
    match e.downcast_ref::<LeaseError>() {
        Some(LeaseError::Corrupt { .. }) => return exit::DAMAGED,
        Some(LeaseError::State(s)) => return s.exit_code(),
        _ => {}
    }
    if let Some(s) = e.downcast_ref::<drctl::journal::dynamo::StateError>() {
        return s.exit_code();
    }
    if let Some(drctl::engine::EngineError::UnknownCheckpoint(..)) =
        e.downcast_ref::<drctl::engine::EngineError>()
    {
        return exit::INVALID;
    }
    exit::ERROR
}

/// The sections clap does not write: EXIT STATUS and ENVIRONMENT (roff).
fn man_sections() -> String {
    let esc = |t: &str| t.replace('\\', "\\\\").replace('-', "\\-");
    let mut s = String::from(".SH \"EXIT STATUS\"\n");
    for (code, what) in exit::MEANINGS {
        s.push_str(&format!(".TP\n{code}\n{}\n", esc(what)));
    }
    s.push_str(".SH ENVIRONMENT\n");
    for (var, what) in exit::ENVIRONMENT {
        s.push_str(&format!(".TP\n{}\n{}\n", esc(var), esc(what)));
    }
    s
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let g = &cli.global;
    match cli.command {
        Command::Validate { files } => cli::files::validate(g, &files),
        Command::Schema { which } => cli::files::schema(which),
        Command::Plan { runbook, out } => cli::files::plan(g, &runbook, out.as_deref()).await,
        Command::Run { runbook, plan, m } => match (runbook, plan) {
            (_, Some(plan)) => cli::run::run_plan(g, &plan, &m).await,
            (Some(runbook), None) => cli::run::run(g, &runbook, &m).await,
            (None, None) => unreachable!("clap requires a runbook or --plan"),
        },
        Command::Resume { run, m, rerun } => cli::run::resume(g, &run, &m, &rerun).await,
        Command::Rollback { run, to, m } => cli::run::rollback(g, &run, to.as_deref(), &m).await,
        Command::Abandon { run, reason, yes } => cli::run::abandon(g, &run, &reason, yes).await,
        Command::Status { run: None } => cli::env::status(g).await,
        Command::Status { run: Some(run) } => cli::inspect::status(g, &run).await,
        Command::History { limit } => cli::inspect::history(g, limit).await,
        Command::Verify { run } => cli::verify::verify(g, &run).await,
        Command::Report {
            run,
            history,
            format,
            out,
            allow_broken,
        } => {
            let asked = cli::report::Asked {
                format,
                out: out.as_deref(),
                allow_broken,
            };
            cli::report::report(g, run.as_deref(), history, asked).await
        }
        Command::Approve { run, step, comment } => {
            cli::inspect::approve(g, &run, &step, comment).await
        }
        Command::Probe { targets } => cli::probe::probe(g, &targets).await,
        Command::Watch {
            listen,
            notify_only,
            watcher_id,
        } => cli::watch::watch(g, &listen, notify_only, watcher_id).await,
        Command::Failover {
            region,
            runbook,
            dry_run,
            mode,
            abandon_unfinished,
            out,
            plan,
            m,
        } => {
            let a = cli::failover::Asked {
                region: &region,
                runbook: runbook.as_deref(),
                dry_run,
                mode,
                abandon_unfinished,
                out: out.as_deref(),
                plan: plan.as_deref(),
            };
            cli::failover::failover(g, a, &m).await
        }
        Command::Fence { m } => cli::env::fence(g, &m).await,
        Command::Deferred { run, m } => cli::deferred::deferred(g, run, &m).await,
        Command::Reprotect { dry_run, m } => cli::env::reprotect(g, dry_run, &m).await,
        Command::Failback { region, dry_run, m } => {
            cli::env::failback(g, &region, dry_run, &m).await
        }
        Command::Drill {
            action: Some(cli::DrillAction::Cleanup { m }),
            ..
        } => cli::drill::cleanup(g, &m).await,
        Command::Drill { list: true, .. } => cli::drill::list(g),
        Command::Drill {
            mode,
            m,
            approve_production,
            ..
        } => cli::drill::drill(g, mode, &m, approve_production).await,
        Command::Agent => cli::agent::agent(g).await,
        Command::State { action } => match action {
            cli::StateAction::Init { yes, dry_run } => cli::state::init(g, yes, dry_run).await,
            cli::StateAction::Migrate { yes, dry_run } => {
                cli::state::migrate(g, yes, dry_run).await
            }
            cli::StateAction::Show => cli::state::show(g).await,
        },
        Command::Check { timeout } => cli::check::check(g, timeout).await,
        Command::Retired {
            delete,
            older_than,
            yes,
        } => cli::inspect::retired(g, delete, older_than, yes).await,
        Command::IamPolicy { runbook } => cli::iam::iam_policy(g, &runbook),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "drctl", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man { dir: None } => {
            let mut page = vec![];
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            page.extend(man_sections().into_bytes());
            std::io::Write::write_all(&mut std::io::stdout(), &page)?;
            Ok(exit::OK)
        }
        Command::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(Cli::command(), &dir)?;
            let main = dir.join("drctl.1");
            let mut page = std::fs::read_to_string(&main)?;
            page.push_str(&man_sections());
            std::fs::write(&main, page)?;
            println!("wrote the man pages to {}", dir.display());
            Ok(exit::OK)
        }
    }
}

/// Output that cannot be written is not a bug: a reader that went away (`drctl status | head
/// -1`) ends drctl quietly, as it does any Unix tool (SIGPIPE's default action); a full disk or
/// a closed stdout is an error message and exit 1, never a panic with exit 101.
fn output_errors_are_not_panics() {
    // Rust ignores SIGPIPE so that writes fail with EPIPE; take the default back.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(why) = msg.strip_prefix("failed printing to stdout: ") {
            eprintln!("error: cannot write the output: {why}");
            std::process::exit(exit::ERROR);
        }
        default(info);
    }));
}

fn main() {
    output_errors_are_not_panics();
    let cli = Cli::parse();
    init_logging(&cli.global);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            let code = code_for(&e);
            // Config errors already carry file:line:column on each line.
            if e.downcast_ref::<drctl::config::ConfigError>().is_some()
                || matches!(
                    e.downcast_ref::<drctl::run::RunError>(),
                    Some(drctl::run::RunError::Config(_))
                )
            {
                eprintln!("{e}");
            } else {
                eprintln!("error: {e:#}");
            }
            code
        }
    };
    // Lingering blocking reads (a prompt nobody answered) must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}
