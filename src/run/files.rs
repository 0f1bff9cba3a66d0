//! `drctl validate`: every problem in every file, read and checked without running anything.
//! Runbooks are checked against the environment when it loads, so references to it are too.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{self, ConfigError, Diagnostic, Environment, Source};
use crate::steps::StepSpec;

/// One file's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    pub file: PathBuf,
    pub ok: bool,
    /// What it is, when it is fine (`runbook `failover`, 15 steps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Diagnostic>,
    /// The error as the terminal shows it (every diagnostic with file:line:column).
    #[serde(skip)]
    pub text: Option<String>,
}

pub struct Validation {
    pub files: Vec<FileCheck>,
    /// The environment file did not load, so runbook references to it went unchecked.
    pub env_unchecked: bool,
}

impl Validation {
    pub fn failed(&self) -> usize {
        self.files.iter().filter(|f| !f.ok).count()
    }
}

fn looks_like_env(src: &Source) -> bool {
    src.text
        .lines()
        .any(|l| l.starts_with("primary_region:") || l.starts_with("standby_region:"))
}

/// The files `validate` checks when none are named: the environment file and runbooks/*.yaml.
pub fn default_files(env_file: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    if env_file.exists() {
        files.push(env_file.to_path_buf());
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
    files
}

pub fn validate(env_file: &Path, files: &[PathBuf]) -> Validation {
    let env: Option<Environment> = env_file
        .exists()
        .then(|| config::load_env(env_file).ok().map(|(_, e)| e))
        .flatten();
    let mut saw_runbook = false;
    let checks = files
        .iter()
        .map(|f| {
            let res = Source::read(f).and_then(|src| {
                if looks_like_env(&src) {
                    config::parse_env(&src).map(|e| format!("environment `{}`", e.name))
                } else {
                    saw_runbook = true;
                    config::parse_runbook::<StepSpec>(&src, env.as_ref())
                        .map(|r| format!("runbook `{}`, {} steps", r.name, r.steps.len()))
                }
            });
            match res {
                Ok(what) => FileCheck {
                    file: f.clone(),
                    ok: true,
                    what: Some(what),
                    errors: vec![],
                    text: None,
                },
                Err(e) => FileCheck {
                    file: f.clone(),
                    ok: false,
                    what: None,
                    errors: match &e {
                        ConfigError::Invalid(d) => d.clone(),
                        other => vec![Diagnostic {
                            file: f.display().to_string(),
                            line: 0,
                            column: 0,
                            message: other.to_string(),
                            hint: None,
                        }],
                    },
                    text: Some(e.to_string()),
                },
            }
        })
        .collect();
    Validation {
        files: checks,
        env_unchecked: env.is_none() && saw_runbook,
    }
}
