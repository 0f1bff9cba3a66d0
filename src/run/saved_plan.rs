//! A saved plan, as Terraform has: `drctl plan ... --out FILE` (or `failover --dry-run --out`)
//! writes what was observed and what each step intends; `drctl failover --plan FILE` and
//! `drctl run --plan FILE` execute exactly that runbook, and refuse, saying what moved, when what
//! they observe now no longer matches the plan. A plan is reviewed in daylight and executed at
//! 3 a.m. only if the world is still the one that was reviewed.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::observe::{PlanView, Seen};
use super::{NewRun, RunError};
use crate::config::{self, Environment, Source};
use crate::steps::StepSpec;

/// What the saved plan says the failover will be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverIntent {
    pub region: String,
    /// `planned` or `unplanned`, as chosen from what was observed (or asked).
    pub mode: String,
    /// The environment's phase when the plan was made.
    pub phase: String,
}

/// A file the runbook and environment were read from, with its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pinned {
    pub name: String,
    pub path: String,
    pub sha256: String,
}

/// One step as planned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedStep {
    pub id: String,
    pub state: Seen,
    pub intended: String,
}

/// The plan file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub schema_version: u32,
    /// Always `drctl_saved_plan`: a plan file is never taken for another document.
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub environment: Pinned,
    pub runbook: Pinned,
    /// The runbook's text: what `--plan` runs, whatever the file on disk says now.
    pub runbook_text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverIntent>,
    pub steps: Vec<PlannedStep>,
    /// The plan as `drctl plan --output json` shows it, for people reading the file.
    pub view: serde_json::Value,
}

const KIND: &str = "drctl_saved_plan";

impl SavedPlan {
    pub fn new(
        run: &NewRun,
        view: &PlanView,
        failover: Option<FailoverIntent>,
        by: &str,
    ) -> SavedPlan {
        SavedPlan {
            schema_version: crate::SCHEMA_VERSION,
            kind: KIND.into(),
            created_at: Utc::now(),
            created_by: by.into(),
            environment: Pinned {
                name: run.env.name.clone(),
                path: run.env_src.path.display().to_string(),
                sha256: run.env_src.sha256.clone(),
            },
            runbook: Pinned {
                name: run.rb.name.clone(),
                path: run.rb_src.path.display().to_string(),
                sha256: run.rb_src.sha256.clone(),
            },
            runbook_text: run.rb_src.text.clone(),
            failover,
            steps: view
                .steps
                .iter()
                .map(|s| PlannedStep {
                    id: s.id.clone(),
                    state: s.state,
                    intended: s.intended.clone(),
                })
                .collect(),
            view: serde_json::to_value(view).unwrap_or_default(),
        }
    }

    /// Write it whole (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<(), RunError> {
        let text = serde_json::to_string_pretty(self).expect("a plan serializes") + "\n";
        let tmp = path.with_extension("drctl-plan.tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                RunError::Refused(format!("cannot write the plan {}: {e}", path.display()))
            })
    }

    /// Read a plan file, refusing what is not one.
    pub fn read(path: &Path) -> Result<SavedPlan, RunError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            RunError::Refused(format!("cannot read the plan {}: {e}", path.display()))
        })?;
        let p: SavedPlan = serde_json::from_str(&text).map_err(|e| {
            RunError::Refused(format!(
                "{}:{}:{}: not a drctl plan file: {e}",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        if p.kind != KIND || p.schema_version != crate::SCHEMA_VERSION {
            return Err(RunError::Refused(format!(
                "{}: not a drctl plan file of this version (kind {:?}, schema_version {}; this drctl writes {KIND} {})",
                path.display(),
                p.kind,
                p.schema_version,
                crate::SCHEMA_VERSION
            )));
        }
        Ok(p)
    }

    /// The run the plan describes: its runbook as planned, against the environment file as it
    /// is now, which must be the one planned against.
    pub fn new_run(&self, env_src: Source, env: Environment) -> Result<NewRun, RunError> {
        if env_src.sha256 != self.environment.sha256 {
            return Err(RunError::Refused(format!(
                "{} changed since the plan was made ({} by {}): make a new plan",
                env_src.path.display(),
                self.created_at.format("%Y-%m-%d %H:%M UTC"),
                self.created_by
            )));
        }
        let rb_src = Source::from_text(
            std::path::Path::new(&self.runbook.path),
            self.runbook_text.clone(),
        );
        let rb = config::parse_runbook::<StepSpec>(&rb_src, Some(&env))?;
        Ok(NewRun::new(env_src, env, rb_src, rb))
    }

    /// What moved between the plan and `now`: one line per difference, empty when none.
    pub fn differences(&self, now: &PlanView, failover: Option<&FailoverIntent>) -> Vec<String> {
        let mut out = vec![];
        if let (Some(was), Some(is)) = (&self.failover, failover) {
            if was.region != is.region {
                out.push(format!(
                    "region: planned {}, asked {}",
                    was.region, is.region
                ));
            }
            if was.mode != is.mode {
                out.push(format!(
                    "mode: planned {}, chosen now {}",
                    was.mode, is.mode
                ));
            }
            if was.phase != is.phase {
                out.push(format!(
                    "the environment: planned while {}, now {}",
                    was.phase, is.phase
                ));
            }
        }
        for s in &self.steps {
            match now.steps.iter().find(|n| n.id == s.id) {
                None => out.push(format!("step `{}`: no longer in the plan", s.id)),
                Some(n) if n.state != s.state => out.push(format!(
                    "step `{}`: planned {} ({}), now {} ({})",
                    s.id, s.state, s.intended, n.state, n.current
                )),
                Some(_) => {}
            }
        }
        out
    }
}
