//! `validate`, `schema` and `plan`: commands that read files and change nothing.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use drctl::config::{self, ConfigError, Environment, Source};
use drctl::exit;
use drctl::run::observe::observe_plan;
use drctl::run::NewRun;
use drctl::steps::{Reversibility, StepSpec};

use super::render::table;
use super::{Global, Output, SchemaKind};

fn looks_like_env(src: &Source) -> bool {
    src.text
        .lines()
        .any(|l| l.starts_with("primary_region:") || l.starts_with("standby_region:"))
}

/// `drctl validate [FILES]`: every problem in every file, then exit 2 if there was any.
pub fn validate(g: &Global, files: &[PathBuf]) -> Result<i32> {
    let mut files = files.to_vec();
    if files.is_empty() {
        if g.env_file.exists() {
            files.push(g.env_file.clone());
        }
        if let Ok(rd) = std::fs::read_dir("runbooks") {
            let mut rbs: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            rbs.sort();
            files.extend(rbs);
        }
        if files.is_empty() {
            eprintln!(
                "error: nothing to validate: no {} and no runbooks/*.yaml here; name the files",
                g.env_file.display()
            );
            return Ok(exit::INVALID);
        }
    }
    // The environment, when it loads, lets runbook references to it be checked.
    let env: Option<Environment> = g
        .env_file
        .exists()
        .then(|| config::load_env(&g.env_file).ok().map(|(_, e)| e))
        .flatten();
    let mut bad = 0;
    let mut report = Vec::new();
    for f in &files {
        let res = Source::read(f).and_then(|src| {
            if looks_like_env(&src) {
                config::parse_env(&src).map(|e| format!("environment `{}`", e.name))
            } else {
                config::parse_runbook::<StepSpec>(&src, env.as_ref())
                    .map(|r| format!("runbook `{}`, {} steps", r.name, r.steps.len()))
            }
        });
        match res {
            Ok(what) => {
                report.push(json!({"file": f, "ok": true, "what": what}));
                if g.output == Output::Text {
                    println!("{}: ok ({what})", f.display());
                }
            }
            Err(e) => {
                bad += 1;
                let diags = match &e {
                    ConfigError::Invalid(d) => d.iter().map(|d| json!({"file": d.file, "line": d.line, "column": d.column, "message": d.message, "hint": d.hint})).collect(),
                    other => vec![json!({"file": f, "message": other.to_string()})],
                };
                report.push(json!({"file": f, "ok": false, "errors": diags}));
                if g.output == Output::Text {
                    eprintln!("{e}");
                }
            }
        }
    }
    if env.is_none() && g.output == Output::Text && files.iter().any(|f| f != &g.env_file) {
        eprintln!(
            "note: no loadable environment file ({}), so references to it were not checked",
            g.env_file.display()
        );
    }
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"files": report}))?
        );
    }
    Ok(if bad > 0 { exit::INVALID } else { exit::OK })
}

pub fn schema(which: SchemaKind) -> Result<i32> {
    let s = match which {
        SchemaKind::Env => config::schema::environment(),
        SchemaKind::Runbook => config::schema::runbook::<StepSpec>(),
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
    let observed = observe_plan(&g.aws_source().services(env), env, plan).await;
    let (critical, total) = plan.critical_path();
    let levels = plan.levels();
    if g.output == Output::Json {
        let steps: Vec<_> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "id": s.id(), "kind": s.kind.value, "level": plan.level[i],
                    "depends_on": plan.deps[i].iter().map(|&d| plan.steps[d].id()).collect::<Vec<_>>(),
                    "state": observed[i].seen.to_string(), "current": observed[i].current, "intended": observed[i].intended,
                    "reversibility": rev_text(s.spec.step().reversibility()),
                    "critical": critical.contains(&i),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "runbook": plan.name, "environment": env.name, "steps": steps,
                "critical_path": critical.iter().map(|&i| plan.steps[i].id()).collect::<Vec<_>>(),
                "critical_path_estimate_s": total.as_secs(),
            }))?
        );
        return Ok(());
    }
    println!(
        "Plan for `{}` on `{}` ({} -> {}): nothing will be changed.\n",
        plan.name, env.name, env.primary_region, env.standby_region
    );
    let mut t = table(&[
        "#", "step", "kind", "after", "state", "now", "would", "undo",
    ]);
    for (n, level) in levels.iter().enumerate() {
        for &i in level {
            let s = &plan.steps[i];
            let mark = if critical.contains(&i) { "*" } else { "" };
            t.add_row(vec![
                format!("{}{mark}", n + 1),
                s.id().to_string(),
                s.kind.value.clone(),
                plan.deps[i]
                    .iter()
                    .map(|&d| plan.steps[d].id())
                    .collect::<Vec<_>>()
                    .join(", "),
                observed[i].seen.to_string(),
                observed[i].current.clone(),
                observed[i].intended.clone(),
                rev_text(s.spec.step().reversibility()),
            ]);
        }
    }
    println!("{t}");
    println!(
        "Steps with the same # run in parallel (at most {} at once).",
        plan.max_parallel
    );
    println!(
        "Critical path (*, about {}): {}",
        humantime::format_duration(total),
        critical
            .iter()
            .map(|&i| plan.steps[i].id())
            .collect::<Vec<_>>()
            .join(" -> ")
    );
    Ok(())
}

fn rev_text(r: Reversibility) -> String {
    match r {
        Reversibility::Reversible => "undoable".into(),
        Reversibility::NothingToUndo => "-".into(),
        Reversibility::Irreversible(_) => "IRREVERSIBLE".into(),
    }
}
