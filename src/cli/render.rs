//! Showing a run as it happens: a live step table on a TTY, plain timestamped lines otherwise,
//! JSON lines with `--output json`. All progress goes to stderr except JSON, which is stdout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use drctl::engine::progress::ProgressSink;
pub use drctl::journal::describe::fmt_ms;
use drctl::journal::{Event, Outcome, Record};

/// One line per event, for logs and pipes.
pub struct Plain;

impl ProgressSink for Plain {
    fn record(&self, r: &Record) {
        eprintln!("{} {}", r.at.format("%H:%M:%S"), r.event.describe());
    }
    fn note(&self, step: &str, message: &str) {
        eprintln!(
            "{} {step}: {message}",
            chrono::Utc::now().format("%H:%M:%S")
        );
    }
    fn notice(&self, message: &str) {
        eprintln!("{message}");
    }
}

/// JSON lines on stdout: every journal record and every note.
pub struct JsonLines;

impl ProgressSink for JsonLines {
    fn record(&self, r: &Record) {
        println!("{}", serde_json::to_string(r).expect("records serialize"));
    }
    fn note(&self, step: &str, message: &str) {
        println!(
            "{}",
            serde_json::json!({"type": "note", "step": step, "message": message})
        );
    }
    /// Messages for people stay on stderr: stdout is JSON only.
    fn notice(&self, message: &str) {
        eprintln!("{message}");
    }
}

/// A live table: one row per step with a spinner and its elapsed time while it runs.
pub struct Live {
    multi: MultiProgress,
    rows: Mutex<HashMap<String, ProgressBar>>,
    width: usize,
    /// While a prompt holds the screen: the steps that ended meanwhile, said once it is given
    /// back (a hidden table loses what finished while it was hidden).
    held: Mutex<Option<Vec<String>>>,
}

impl Live {
    pub fn new(step_ids: &[String]) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = step_ids.iter().map(|s| s.len()).max().unwrap_or(8).max(8);
        Self {
            multi,
            rows: Mutex::new(HashMap::new()),
            width,
            held: Mutex::new(None),
        }
    }

    fn row(&self, step: &str) -> ProgressBar {
        let mut rows = self.rows.lock().expect("rows");
        rows.entry(step.to_string())
            .or_insert_with(|| {
                let pb = self.multi.add(ProgressBar::new_spinner());
                let tpl = format!(
                    "{{spinner:.cyan}} {{prefix:<{}}} {{elapsed:>4}}  {{wide_msg}}",
                    self.width
                );
                pb.set_style(
                    ProgressStyle::with_template(&tpl)
                        .expect("template")
                        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✓"),
                );
                pb.set_prefix(step.to_string());
                pb.enable_steady_tick(Duration::from_millis(120));
                pb
            })
            .clone()
    }

    fn finish(&self, step: &str, mark: &str, msg: String) {
        if let Some(missed) = self.held.lock().expect("held").as_mut() {
            missed.push(format!("{mark} {step:<w$}  {msg}", w = self.width));
        }
        let pb = self.row(step);
        let tpl = format!(
            "{mark} {{prefix:<{}}} {{elapsed:>4}}  {{wide_msg}}",
            self.width
        );
        pb.set_style(ProgressStyle::with_template(&tpl).expect("template"));
        pb.finish_with_message(msg);
    }

    pub fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

impl ProgressSink for Live {
    fn record(&self, r: &Record) {
        match &r.event {
            Event::StepStarted { step, attempt } => {
                self.row(step).set_message(if *attempt > 1 {
                    format!("attempt {attempt}")
                } else {
                    "observing".into()
                });
            }
            Event::StepIntent { step, intended, .. } => {
                self.row(step).set_message(intended.clone())
            }
            Event::StepSucceeded {
                step,
                outcome: Outcome::AlreadyDone,
                ..
            } => self.finish(step, "=", "already done".into()),
            Event::StepSucceeded { step, result, .. } => {
                match drctl::journal::describe::skipped(result) {
                    // Ended without doing its work: never a tick beside "skipped" in the summary.
                    Some(why) => self.finish(step, "-", format!("skipped: {why}")),
                    None => self.finish(step, "✓", "done".into()),
                }
            }
            Event::StepFailed {
                step,
                error,
                retry_in_ms: Some(ms),
                ..
            } => self
                .row(step)
                .set_message(format!("retry in {}: {error}", fmt_ms(*ms))),
            Event::StepFailed {
                step,
                error,
                retry_in_ms: None,
                ..
            } => self.finish(step, "✗", format!("FAILED: {error}")),
            Event::StepSkipped { step, reason, .. } => {
                self.finish(step, "-", format!("skipped: {reason}"))
            }
            Event::UndoStarted { step } => self.row(&format!("undo {step}")).set_message("undoing"),
            Event::Undone { step } => self.finish(&format!("undo {step}"), "↺", "undone".into()),
            Event::UndoFailed { step, error } => self.finish(
                &format!("undo {step}"),
                "✗",
                format!("UNDO FAILED: {error}"),
            ),
            other => self.println(&other.describe()),
        }
    }

    fn notice(&self, message: &str) {
        self.println(message);
    }

    fn hold(&self) {
        *self.held.lock().expect("held") = Some(vec![]);
        self.multi.set_draw_target(ProgressDrawTarget::hidden());
    }

    fn release(&self) {
        let missed = self.held.lock().expect("held").take().unwrap_or_default();
        self.multi.set_draw_target(ProgressDrawTarget::stderr());
        // What ended while the question held the screen, so the table never shows it running.
        for line in missed {
            self.println(&format!("{line} (while the gate waited)"));
        }
    }

    fn note(&self, step: &str, message: &str) {
        let rows = self.rows.lock().expect("rows");
        match rows.get(step) {
            Some(pb) => pb.set_message(message.to_string()),
            None => {
                drop(rows);
                self.println(&format!("{step}: {message}"));
            }
        }
    }
}

/// A table in the terminal's width.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t.set_header(header.to_vec());
    t
}

/// Colour for stdout: only on a terminal, and never when NO_COLOR is set (no-color.org).
pub fn colour() -> bool {
    use std::io::IsTerminal;
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
    })
}

/// `text` in bold red when `alarm` (and colour is on), else as it is.
pub fn paint(text: &str, alarm: bool) -> String {
    if alarm && colour() {
        format!("\x1b[1;31m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A PASS/WARN/FAIL word as a table cell, in its colour: the table styles it after laying it
/// out, so colour never counts as width (raw escape codes in a cell would misalign the table).
pub fn status_cell(s: drctl::readiness::Status) -> comfy_table::Cell {
    use comfy_table::{Attribute, Cell, Color};
    use drctl::readiness::Status;
    let cell = Cell::new(s.to_string());
    if !colour() {
        return cell;
    }
    match s {
        Status::Fail => cell.fg(Color::Red).add_attribute(Attribute::Bold),
        Status::Warn => cell.fg(Color::Yellow),
        Status::Pass => cell.fg(Color::Green),
    }
}

/// A PASS/WARN/FAIL word in its colour (in running text, never in a table: `status_cell`).
pub fn status_word(s: drctl::readiness::Status) -> String {
    use drctl::readiness::Status;
    if !colour() {
        return s.to_string();
    }
    match s {
        Status::Fail => format!("\x1b[1;31m{s}\x1b[0m"),
        Status::Warn => format!("\x1b[33m{s}\x1b[0m"),
        Status::Pass => format!("\x1b[32m{s}\x1b[0m"),
    }
}
