//! `drctl failover --region R`: the checks before a failover starts. The region must be the
//! environment's standby; a failover already done is observed (read-only, bounded) and
//! reported as such, without taking the lease or creating a run; otherwise the mode (planned
//! or unplanned) is chosen from what was observed, unless asked for.

use std::path::{Path, PathBuf};

use super::roundtrip::{
    already_failed_over, choose_mode, observe_within, Mode, FAILOVER_OBSERVE_TIMEOUT,
};
use super::{Context, RunError};
use crate::config::Environment;
use crate::topology::Topology;

pub const DEFAULT_RUNBOOK: &str = super::roundtrip::UNPLANNED_RUNBOOK;

/// Refuse any region but the environment's standby, saying why.
pub fn check_region(env: &Environment, region: &str) -> Result<(), RunError> {
    if region == env.standby_region {
        return Ok(());
    }
    let why = if region == env.primary_region {
        format!(
            "{region} is the primary region of `{}`: production already runs there",
            env.name
        )
    } else {
        format!("{region} is not a region of `{}`", env.name)
    };
    Err(RunError::Refused(format!(
        "refusing to fail over to {region}: {why}. The standby region is {}",
        env.standby_region
    )))
}

/// What the preflight observed.
pub enum Preflight {
    /// Production already runs in the standby region: nothing to do.
    AlreadyDone(Box<Topology>),
    /// Go ahead in `mode`, for the reason given.
    Proceed {
        topology: Box<Topology>,
        mode: Mode,
        why: String,
    },
}

/// The region guard, then a read-only look at the environment: already failed over, or the
/// mode to fail over in.
pub async fn preflight(
    ctx: &Context,
    env: &Environment,
    region: &str,
    asked: Option<Mode>,
) -> Result<Preflight, RunError> {
    check_region(env, region)?;
    // An interrupted failover is finished, not answered with "already failed over".
    super::refuse_if_unfinished(ctx, &env.name).await?;
    let t = observe_within(ctx, env, FAILOVER_OBSERVE_TIMEOUT).await;
    if already_failed_over(&t) {
        return Ok(Preflight::AlreadyDone(Box::new(t)));
    }
    let (mode, why) = choose_mode(&t, asked);
    Ok(Preflight::Proceed {
        topology: Box::new(t),
        mode,
        why,
    })
}

/// A path as given, else `runbooks/NAME[.yaml]` beside the environment file, in the current
/// directory, in the install's share dir (`<prefix>/share/drctl/runbooks`), and finally in the
/// source tree this binary was built from.
pub fn resolve_runbook(env_file: &Path, given: Option<&str>) -> Result<PathBuf, RunError> {
    let name = given.unwrap_or(DEFAULT_RUNBOOK);
    let p = PathBuf::from(name);
    if given.is_some() && p.is_file() {
        return Ok(p);
    }
    let file = if name.ends_with(".yaml") || name.ends_with(".yml") {
        name.to_string()
    } else {
        format!("{name}.yaml")
    };
    let mut dirs: Vec<PathBuf> = vec![];
    if let Some(d) = env_file.parent() {
        dirs.push(if d.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            d.to_path_buf()
        });
    }
    dirs.push(PathBuf::from("."));
    if let Some(prefix) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().and_then(|b| b.parent()).map(Path::to_path_buf))
    {
        dirs.push(prefix.join("share/drctl"));
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let tried: Vec<PathBuf> = dirs
        .iter()
        .map(|d| d.join("runbooks").join(&file))
        .collect();
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(RunError::Refused(format!(
        "runbook `{name}` not found; looked in: {}",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
