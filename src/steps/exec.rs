//! `exec`: run a local command, with an optional `check` (is it already done?) and `undo`.
//!
//! The child gets only the environment the runbook passes (plus PATH), so a secret in the
//! operator's shell never leaks into a script by accident. Values passed in `env` are redacted
//! from any output drctl records.

use std::collections::BTreeMap;
use std::process::Stdio;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Observation, Reversibility, Satisfied, Step, StepCx, StepError, Text};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The program and its arguments (no shell; write `[sh, -c, "..."]` for one).
    #[schemars(with = "Vec<String>")]
    pub command: Vec<Text>,
    /// Exits 0 if the change is already in place. Makes the step idempotent and lets a resumed
    /// run know whether an interrupted command took effect.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub check: Option<Vec<Text>>,
    /// Puts the change back, for `drctl rollback`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub undo: Option<Vec<Text>>,
    /// Environment for the child, passed explicitly. Values are redacted from records.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub env: BTreeMap<String, Text>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Marks the command as impossible to undo, with the reason (e.g. "deletes the old
    /// snapshots"). Validation then requires an approval before it, and rollback stops here.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub irreversible: Option<Reason>,
}

/// `Reversibility::Irreversible` carries a `&'static str` so built-in kinds can name their reason
/// without allocating. A runbook's own reason is leaked once when the file is parsed: a few bytes
/// per loaded runbook, for the life of a short-lived process.
#[derive(Debug, Clone, Copy)]
pub struct Reason(pub &'static str);

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Reason(Box::leak(s.into_boxed_str())))
    }
}

struct Ran {
    code: Option<i32>,
    output: String,
}

impl Exec {
    async fn run(&self, cx: &StepCx, argv: &[Text]) -> Result<Ran, StepError> {
        let argv: Vec<String> = argv
            .iter()
            .map(|a| cx.render(&a.value))
            .collect::<Result<_, _>>()?;
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| StepError::permanent("empty command"))?;
        let mut env = Vec::new();
        for (k, v) in &self.env {
            env.push((k.clone(), cx.render(&v.value)?));
        }
        let mut cmd = tokio::process::Command::new(prog);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A step timeout drops this future; the child must not outlive it.
            .kill_on_drop(true);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let out = cmd
            .output()
            .await
            .map_err(|e| StepError::permanent(format!("cannot start `{prog}`: {e}")))?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        for (_, v) in &env {
            if v.len() >= 4 {
                text = text.replace(v.as_str(), "***");
            }
        }
        let skip = text.chars().count().saturating_sub(2000);
        let tail: String = text.chars().skip(skip).collect();
        Ok(Ran {
            code: out.status.code(),
            output: tail.trim_end().to_string(),
        })
    }

    fn shown(argv: &[Text]) -> String {
        argv.iter()
            .map(|a| a.value.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[async_trait]
impl Step for Exec {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let intended = format!("run `{}`", Self::shown(&self.command));
        let Some(check) = &self.check else {
            return Ok(Observation::new(
                Satisfied::Unknown,
                "no check command",
                intended,
            ));
        };
        let ran = self.run(cx, check).await?;
        Ok(if ran.code == Some(0) {
            Observation::new(Satisfied::Done, "check passed: already done", intended)
        } else {
            Observation::new(
                Satisfied::NotDone,
                format!(
                    "check exited {}",
                    ran.code.map_or("by signal".into(), |c| c.to_string())
                ),
                intended,
            )
        })
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let ran = self.run(cx, &self.command).await?;
        match ran.code {
            Some(0) => Ok(json!({ "exit_code": 0 })),
            code => Err(StepError::retryable(format!(
                "`{}` exited {}{}",
                Self::shown(&self.command),
                code.map_or("by signal".to_string(), |c| c.to_string()),
                if ran.output.is_empty() {
                    String::new()
                } else {
                    format!(": {}", ran.output)
                }
            ))),
        }
    }

    async fn verify(&self, cx: &StepCx, _result: &Value) -> Result<(), StepError> {
        if let Some(check) = &self.check {
            let ran = self.run(cx, check).await?;
            if ran.code != Some(0) {
                return Err(StepError::retryable(format!(
                    "command succeeded but check `{}` still fails",
                    Self::shown(check)
                )));
            }
        }
        Ok(())
    }

    async fn undo(&self, cx: &StepCx, _prior: &Value, _result: &Value) -> Result<(), StepError> {
        let Some(undo) = &self.undo else {
            return Ok(());
        };
        let ran = self.run(cx, undo).await?;
        match ran.code {
            Some(0) => Ok(()),
            code => Err(StepError::retryable(format!(
                "undo `{}` exited {code:?}: {}",
                Self::shown(undo),
                ran.output
            ))),
        }
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["exit_code"]
    }

    fn reversibility(&self) -> Reversibility {
        if let Some(Reason(why)) = self.irreversible {
            Reversibility::Irreversible(why)
        } else if self.undo.is_some() {
            Reversibility::Reversible
        } else {
            Reversibility::NothingToUndo
        }
    }

    fn templates(&self) -> Vec<&Text> {
        let mut v: Vec<&Text> = self.command.iter().collect();
        v.extend(self.check.iter().flatten());
        v.extend(self.undo.iter().flatten());
        v.extend(self.env.values());
        v
    }

    fn validate(&self, _env: &crate::config::env::Environment) -> Vec<super::Problem> {
        if self.command.is_empty() {
            return vec![super::Problem {
                at: None,
                message: "`command` is empty".into(),
            }];
        }
        vec![]
    }
}
