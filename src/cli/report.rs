//! `drctl report RUN` and `drctl report --history`: render what the library folded from the
//! journals, as Markdown, one HTML file or JSON, to stdout or `--out FILE`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::ValueEnum;

use drctl::exit;
use drctl::report::render;

use super::{Global, Output, Usage};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Md,
    Html,
    Json,
}

/// `--format`, else the `--out` file's extension, else the global `--output`, else Markdown.
fn format(g: &Global, asked: Option<Format>, out: Option<&Path>) -> Format {
    if let Some(f) = asked {
        return f;
    }
    match out.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
        Some("html" | "htm") => Format::Html,
        Some("json") => Format::Json,
        Some("md") => Format::Md,
        _ if g.output == Output::Json => Format::Json,
        _ => Format::Md,
    }
}

/// Write `text` to `out` whole (a temporary file renamed into place), or print it.
fn emit(text: &str, out: Option<&Path>) -> Result<()> {
    let Some(path) = out else {
        print!("{text}");
        return Ok(());
    };
    if path.is_dir() {
        return Err(Usage(format!(
            "--out {}: is a directory; give a file name",
            path.display()
        ))
        .into());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Whole or not at all: a sibling temporary file renamed into place. It is created like
    // any file the user writes (0666 less the umask), not private like a tempfile.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.drctl-{}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, text.as_bytes()).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    eprintln!("report written to {}", path.display());
    Ok(())
}

/// How the report is asked for.
pub struct Asked<'a> {
    pub format: Option<Format>,
    pub out: Option<&'a Path>,
    pub allow_broken: bool,
}

pub async fn report(g: &Global, run: Option<&str>, history: bool, a: Asked<'_>) -> Result<i32> {
    let Asked {
        format: asked,
        out,
        allow_broken,
    } = a;
    let fmt = format(g, asked, out);
    if history {
        if run.is_some() {
            return Err(Usage("give a run or --history, not both".into()).into());
        }
        let (_, env) = g.load_env()?;
        let store = g.context(g.state_dir(Some(&env))?).state.journals().await;
        let h = drctl::run::report::history(store.as_ref(), &env.name, &env.targets).await?;
        let text = match fmt {
            Format::Md => render::history_markdown(&h),
            Format::Html => render::history_html(&h),
            Format::Json => serde_json::to_string_pretty(&h)? + "\n",
        };
        emit(&text, out)?;
        return Ok(exit::OK);
    }
    let run = run.unwrap_or("latest");
    let store = g.journals().await?;
    let r = drctl::run::report::for_run(store.as_ref(), run).await?;
    // A journal that fails `verify` is not the record drctl wrote: its report is refused (exit
    // 10, as `verify` exits) unless asked for, and then carries the banner.
    if let Some(why) = r.journal.chain_status.strip_prefix("BROKEN: ") {
        eprintln!(
            "BROKEN JOURNAL: run {}'s journal was changed after drctl wrote it ({why}). `drctl verify {}` says where.",
            r.run_id, r.run_id
        );
        if !allow_broken {
            eprintln!(
                "no report written: pass --allow-broken to write it anyway, under this banner"
            );
            return Ok(exit::DAMAGED);
        }
    }
    let text = match fmt {
        Format::Md => render::markdown(&r),
        Format::Html => render::html(&r),
        Format::Json => serde_json::to_string_pretty(&r)? + "\n",
    };
    emit(&text, out)?;
    Ok(exit::OK)
}
