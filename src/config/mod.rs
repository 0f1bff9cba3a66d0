//! Files users write: the environment (`drctl.yaml`) and runbooks. Loading gives typed values
//! plus the source text and its hash (a run journals both). Every error names
//! file:line:column and says what to do.

pub mod env;
pub mod runbook;
pub mod schema;
pub mod template;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use env::Environment;
pub use runbook::{Problem, Runbook, StepKinds};

/// A file as read, kept so the journal can record exactly what ran.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    pub sha256: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Ok(Self::from_text(path, text))
    }

    pub fn from_text(path: &Path, text: String) -> Self {
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        Self {
            path: path.to_path_buf(),
            text,
            sha256,
        }
    }

    pub fn name(&self) -> String {
        self.path.display().to_string()
    }
}

/// One problem in a file, at a place.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn at(
        src: &Source,
        loc: Option<serde_saphyr::Location>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = loc.map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
        Self {
            file: src.name(),
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

fn yaml_error(src: &Source, e: &serde_saphyr::Error) -> Diagnostic {
    let loc = e.location();
    // The library's own text repeats the position and a snippet; keep its first line.
    let full = e.without_snippet().to_string();
    let msg = full.lines().next().unwrap_or("invalid YAML").to_string();
    let msg = strip_position(&msg);
    // `@LINE:COL rest`: a visitor's own, more precise place for the error.
    if let Some((place, rest)) = msg.strip_prefix('@').and_then(|m| m.split_once(' ')) {
        if let Some((l, c)) = place.split_once(':') {
            if let (Ok(line), Ok(column)) = (l.parse(), c.parse()) {
                let d = Diagnostic {
                    file: src.name(),
                    line,
                    column,
                    message: rest.to_string(),
                    hint: None,
                };
                return d.hint("`drctl schema runbook` lists the kinds and their parameters");
            }
        }
    }
    let hint = if msg.contains("unknown field") {
        "check the spelling; `drctl schema` prints every field this file may have"
    } else if msg.contains("unknown step kind") {
        "`drctl schema runbook` lists the kinds and their parameters"
    } else if msg.contains("missing field") {
        "add the field; `drctl schema` shows which fields are required"
    } else {
        "fix the YAML at this place"
    };
    Diagnostic::at(src, loc, msg).hint(hint)
}

/// saphyr appends " at line N column M" to some messages; the diagnostic prefix already says it.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

pub fn parse_env(src: &Source) -> Result<Environment, ConfigError> {
    let env: Environment = serde_saphyr::from_str(&src.text)
        .map_err(|e| ConfigError::Invalid(vec![yaml_error(src, &e)]))?;
    let diags = validate::environment(src, &env);
    if diags.is_empty() {
        Ok(env)
    } else {
        Err(ConfigError::Invalid(diags))
    }
}

/// Parse a runbook and check its shape; `env` adds the checks of references to it.
pub fn parse_runbook<S: StepKinds>(
    src: &Source,
    env: Option<&Environment>,
) -> Result<Runbook<S>, ConfigError> {
    let rb: Runbook<S> = serde_saphyr::from_str(&src.text)
        .map_err(|e| ConfigError::Invalid(vec![yaml_error(src, &e)]))?;
    let diags = validate::runbook(src, &rb, env);
    if diags.is_empty() {
        Ok(rb)
    } else {
        Err(ConfigError::Invalid(diags))
    }
}

pub fn load_env(path: &Path) -> Result<(Source, Environment), ConfigError> {
    let src = Source::read(path)?;
    let env = parse_env(&src)?;
    Ok((src, env))
}

pub fn load_runbook<S: StepKinds>(
    path: &Path,
    env: Option<&Environment>,
) -> Result<(Source, Runbook<S>), ConfigError> {
    let src = Source::read(path)?;
    let rb = parse_runbook(&src, env)?;
    Ok((src, rb))
}

/// An HTTP status expectation as written (`200`, `200-299`): the inclusive range it means.
/// Shared by `http.check` steps and probe targets.
pub fn parse_status_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("status `{s}` is not a code or a range like 200-299");
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        ),
        None => {
            let c = s.trim().parse().map_err(|_| bad())?;
            (c, c)
        }
    };
    if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}
