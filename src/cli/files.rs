//! `validate`, `schema` and `plan`: commands that read files and change nothing.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use drctl::config;
use drctl::exit;
use drctl::run::files::{self as run_files, default_files};
use drctl::run::observe::PlanView;
use drctl::run::NewRun;
use drctl::steps::StepSpec;

use super::{Global, Output, SchemaKind};

/// `drctl validate [FILES]`: every problem in every file, then exit 2 if there was any.
pub fn validate(g: &Global, files: &[PathBuf]) -> Result<i32> {
    let files = if files.is_empty() {
        default_files(&g.env_file)
    } else {
        files.to_vec()
    };
    if files.is_empty() {
        eprintln!(
            "error: nothing to validate: no {} and no runbooks/*.yaml here; name the files",
            g.env_file.display()
        );
        return Ok(exit::INVALID);
    }
    let v = run_files::validate(&g.env_file, &files);
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"files": v.files}))?
        );
    } else {
        for f in &v.files {
            match (&f.what, &f.text) {
                (Some(what), _) => println!("{}: ok ({what})", f.file.display()),
                (_, Some(text)) => eprintln!("{text}"),
                _ => {}
            }
        }
        if v.env_unchecked {
            eprintln!(
                "note: no loadable environment file ({}), so references to it were not checked",
                g.env_file.display()
            );
        }
    }
    Ok(if v.failed() > 0 {
        exit::INVALID
    } else {
        exit::OK
    })
}

pub fn schema(which: SchemaKind) -> Result<i32> {
    let s = match which {
        SchemaKind::Env => config::schema::environment(),
        SchemaKind::Runbook => config::schema::runbook::<StepSpec>(),
        SchemaKind::Report => serde_json::to_value(schemars::schema_for!(drctl::report::Report))?,
        SchemaKind::History => serde_json::to_value(schemars::schema_for!(drctl::report::History))?,
        SchemaKind::Status => {
            serde_json::to_value(schemars::schema_for!(drctl::topology::Topology))?
        }
        SchemaKind::Plan => {
            serde_json::to_value(schemars::schema_for!(drctl::run::observe::PlanView))?
        }
        SchemaKind::Summary => serde_json::to_value(schemars::schema_for!(drctl::run::RunSummary))?,
    };
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(exit::OK)
}

/// `drctl plan RUNBOOK [--out FILE]`: a path, or a name under runbooks/ as `failover
/// --runbook` takes it.
pub async fn plan(g: &Global, runbook: &Path, out: Option<&Path>) -> Result<i32> {
    let path =
        drctl::run::failover::resolve_runbook(&g.env_file, Some(&runbook.to_string_lossy()))?;
    let run = super::run::prepare(g, &path)?;
    let view = print_plan(g, &run).await?;
    if let Some(out) = out {
        save_plan(&run, &view, None, out)?;
    }
    Ok(exit::OK)
}

/// Write the plan for `run --plan` / `failover --plan`, and say how to use it.
pub fn save_plan(
    run: &NewRun,
    view: &drctl::run::observe::PlanView,
    failover: Option<drctl::run::saved_plan::FailoverIntent>,
    out: &Path,
) -> Result<()> {
    let is_failover = failover.is_some();
    let by = drctl::journal::Operator::current().user;
    drctl::run::saved_plan::SavedPlan::new(run, view, failover, &by).write(out)?;
    eprintln!(
        "plan saved to {}: `drctl {} --plan {}` runs exactly this plan, and refuses if what it observes then differs",
        out.display(),
        if is_failover { "failover --region REGION" } else { "run" },
        out.display()
    );
    Ok(())
}

/// A plan fits a 100-column terminal, words unbroken.
const PLAN_WIDTH: usize = 100;

/// `text` in lines: the first fits after a `first` column head in `width`, the rest in `rest`;
/// broken only at spaces (a word longer than a line stands alone on its line).
pub(super) fn wrap(text: &str, rest: usize, first: usize, width: usize) -> Vec<String> {
    let mut lines = vec![];
    let mut cur = String::new();
    let mut room = width.saturating_sub(first).max(20);
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > room {
            lines.push(std::mem::take(&mut cur));
            room = rest;
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    lines.push(cur);
    lines
}

/// Print `text` wrapped to the plan's width, later lines indented by two.
pub(super) fn say(text: &str) {
    for (i, line) in wrap(text, PLAN_WIDTH - 2, 0, PLAN_WIDTH)
        .into_iter()
        .enumerate()
    {
        if i == 0 {
            println!("{line}");
        } else {
            println!("  {line}");
        }
    }
}

pub async fn print_plan(g: &Global, run: &NewRun) -> Result<drctl::run::observe::PlanView> {
    let (env, plan) = (&run.env, &run.plan);
    let v = PlanView::build(&g.aws_source().services(env), env, plan)
        .await
        .with_prediction(&g.context(g.state_dir(Some(env))?).state, env, plan)
        .await;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(v);
    }
    let w = PLAN_WIDTH;
    say(&format!(
        "Plan for `{}` on `{}` ({}): nothing will be changed now.",
        v.runbook,
        v.environment,
        run.purpose.clone().unwrap_or_else(|| format!(
            "primary {}, standby {}",
            env.primary_region, env.standby_region
        ))
    ));
    say(&v.counts.line());
    println!();
    let id_w = v
        .steps
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(4)
        .min(24);
    let mut level = usize::MAX;
    for s in &v.steps {
        if s.level != level {
            level = s.level;
            println!(
                "{}",
                if level == 0 {
                    "at once:".to_string()
                } else {
                    format!("then (level {}):", level + 1)
                }
            );
        }
        let mark = match (s.state, s.reversibility) {
            (drctl::run::observe::Seen::AlreadyDone, _) => "=",
            (_, "IRREVERSIBLE") => "!",
            (_, "undoable") => "~",
            _ => " ",
        };
        let mut text = match s.state {
            drctl::run::observe::Seen::AlreadyDone => format!("already done: {}", s.current),
            drctl::run::observe::Seen::Unknown => s.current.clone(),
            _ => format!("will {} (now: {})", s.intended, s.current),
        };
        if !s.depends_on.is_empty() {
            text.push_str(&format!(" [after {}]", s.depends_on.join(", ")));
        }
        if s.reversibility == "IRREVERSIBLE" {
            text.push_str(" IRREVERSIBLE");
        }
        let head = format!(
            "  {mark}{} {:<id_w$} {} ",
            if s.critical { "*" } else { " " },
            s.id,
            s.kind
        );
        for (i, line) in wrap(&text, w.saturating_sub(8).max(40), head.chars().count(), w)
            .into_iter()
            .enumerate()
        {
            if i == 0 {
                println!("{head}{line}");
            } else {
                println!("        {line}");
            }
        }
    }
    println!();
    say("= already done   ~ will change (undoable)   ! will change (cannot be undone)   * critical path");
    say(&format!(
        "Steps of one level run in parallel (at most {} at once).",
        v.max_parallel
    ));
    let path = format!(
        "Critical path (*, about {}): {}",
        humantime::format_duration(std::time::Duration::from_secs(
            v.critical_path_estimate_ms / 1000
        )),
        v.critical_path.join(" -> ")
    );
    say(&path);
    if let Some(p) = &v.predicted_rto {
        say(&drctl::report::render::prediction_line(p));
    }
    Ok(v)
}
