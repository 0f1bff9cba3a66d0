//! Files users write: the environment (`drctl.yaml`) and runbooks. Loading gives typed values
//! plus the source text and its hash (a run journals both). Every error names
//! file:line:column and says what to do.

pub mod drill;
pub mod env;
pub mod locate;
pub mod notify;
pub mod runbook;
pub mod schedule;
pub mod schema;
pub mod state;
pub mod template;
pub mod validate;
mod validate_gate;
mod validate_state;

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use env::Environment;
pub use runbook::{Problem, Runbook, StepKinds};

/// The largest runbook or environment file drctl reads.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A file as read, kept so the journal can record exactly what ran.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    pub sha256: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let io = |e| ConfigError::Io {
            path: path.display().to_string(),
            source: e,
        };
        // A runbook or environment is a few kilobytes; a huge file is a mistake (or an attack on
        // the parser), refused before it is read.
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_FILE_BYTES {
            return Err(ConfigError::Invalid(vec![Diagnostic {
                file: path.display().to_string(),
                line: 1,
                column: 1,
                message: format!(
                    "the file is {len} bytes, more than drctl reads ({MAX_FILE_BYTES}): is it the right file?"
                ),
                hint: None,
            }]));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            ConfigError::Invalid(vec![Diagnostic {
                file: path.display().to_string(),
                line: 1,
                column: 1,
                message: format!(
                    "the file is not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
                hint: Some("save it as UTF-8".into()),
            }])
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

    pub fn at_line(src: &Source, line: u64, column: u64, message: impl Into<String>) -> Self {
        Self {
            file: src.name(),
            line: line.max(1),
            column: column.max(1),
            message: message.into(),
            hint: None,
        }
    }

    /// At the key `path` of the file, found in its text (1:1 when it cannot be found).
    pub fn at_key(src: &Source, path: &[&str], message: impl Into<String>) -> Self {
        let (line, column) = locate::locate(&src.text, path).unwrap_or((1, 1));
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

/// The AWS regions drctl knows (commercial, GovCloud, China). A name that is not here is a
/// typo until proven otherwise: `aws.extra_regions` in drctl.yaml admits a region newer than
/// this list.
pub const AWS_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "cn-north-1",
    "cn-northwest-1",
];

/// A name drctl may use in a path (environment names, run ids, step ids): letters, digits,
/// `-`, `_`, `.`, starting with a letter or digit, no `..`, at most 64 characters.
pub fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.contains("..")
}

/// The known region closest to a mistyped one, if any is close.
pub fn closest_region(r: &str) -> Option<&'static str> {
    fn dist(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for i in 1..=a.len() {
            let mut cur = vec![i; b.len() + 1];
            for j in 1..=b.len() {
                let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
                cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }
    AWS_REGIONS
        .iter()
        .map(|k| (dist(r, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

/// The environment file's text with the value of every `webhook:` and `slack:` key (their URLs
/// carry tokens) replaced by a placeholder URL, for copies that are kept (journals): the text
/// still parses, and no token is written.
pub fn redact_secrets(text: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r#"(?m)\b(webhook|slack)(\s*:\s*)("[^"]*"|'[^']*'|[^\s,}\]#]+)"#)
            .expect("a valid regex")
    });
    re.replace_all(text, "$1$2\"https://redacted.invalid/\"")
        .into_owned()
}

#[cfg(test)]
mod redact_tests {
    #[test]
    fn webhook_and_slack_urls_are_replaced_and_the_rest_kept() {
        let t = "notify:\n  - webhook: https://hooks.example.com/T0/SECRET\n  - slack: 'https://hooks.slack.com/services/A/B/C'\nnotifications: [{webhook: http://x/y?token=z}]\nname: webhook-env\n";
        let r = super::redact_secrets(t);
        for secret in ["SECRET", "services/A", "token=z"] {
            assert!(!r.contains(secret), "{r}");
        }
        assert_eq!(r.matches("https://redacted.invalid/").count(), 3, "{r}");
        assert!(r.contains("name: webhook-env"), "{r}");
    }
}
