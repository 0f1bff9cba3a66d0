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

use super::render::table;
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
    };
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(exit::OK)
}

pub async fn plan(g: &Global, runbook: &Path) -> Result<i32> {
    let run = super::run::prepare(g, runbook)?;
    print_plan(g, &run).await?;
    Ok(exit::OK)
}

pub async fn print_plan(g: &Global, run: &NewRun) -> Result<()> {
    let (env, plan) = (&run.env, &run.plan);
    let v = PlanView::build(&g.aws_source().services(env), env, plan)
        .await
        .with_prediction(&g.context(g.state_dir(Some(env))?).state, env, plan)
        .await;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "Plan for `{}` on `{}` ({} -> {}): nothing will be changed.\n",
        v.runbook, v.environment, env.primary_region, env.standby_region
    );
    let mut t = table(&[
        "#", "step", "kind", "after", "state", "now", "would", "undo",
    ]);
    for s in &v.steps {
        t.add_row(vec![
            format!("{}{}", s.level + 1, if s.critical { "*" } else { "" }),
            s.id.clone(),
            s.kind.clone(),
            s.depends_on.join(", "),
            s.state.clone(),
            s.current.clone(),
            s.intended.clone(),
            s.reversibility.to_string(),
        ]);
    }
    println!("{t}");
    println!(
        "Steps with the same # run in parallel (at most {} at once).",
        v.max_parallel
    );
    println!(
        "Critical path (*, about {}): {}",
        humantime::format_duration(std::time::Duration::from_secs(v.critical_path_estimate_s)),
        v.critical_path.join(" -> ")
    );
    if let Some(p) = &v.predicted_rto {
        println!("{}", drctl::report::render::prediction_line(p));
    }
    Ok(())
}
