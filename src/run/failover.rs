//! `drctl failover --region R`: the checks before a failover starts. The region must be the
//! environment's standby; a failover already done is observed (read-only, bounded) and
//! reported as such, without taking the lease or creating a run; otherwise the mode (planned
//! or unplanned) is chosen from what was observed, unless asked for.

use std::path::{Path, PathBuf};

use super::roundtrip::{
    already_failed_over, choose_mode, observe_within, Mode, FAILOVER_OBSERVE_TIMEOUT,
};
use super::{Context, RunError};
use crate::config::env::Role;
use crate::config::Environment;
use crate::topology::Topology;

pub const DEFAULT_RUNBOOK: &str = super::roundtrip::UNPLANNED_RUNBOOK;

/// Refuse any region but the environment's standby, saying why.
pub fn check_region(env: &Environment, region: &str) -> Result<(), RunError> {
    if region == env.standby_region {
        return Ok(());
    }
    let why = if region == env.primary_region {
        // Said without observing where production runs now: a failover only ever goes to the
        // standby; the way back to the primary region is reprotect, then failback.
        format!(
            "{region} is the primary region of `{}`, and a failover goes to its standby. To bring \
             production back to {region} after a failover: `drctl reprotect`, then `drctl failback \
             --region {region}`; `drctl status` shows where production runs now",
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
    look(ctx, env, asked).await
}

/// The preflight of a dry run: the same look, beside an unfinished run too (a dry run changes
/// nothing; the caller says what stands in the way).
pub async fn dry_run_preflight(
    ctx: &Context,
    env: &Environment,
    region: &str,
    asked: Option<Mode>,
) -> Result<Preflight, RunError> {
    check_region(env, region)?;
    look(ctx, env, asked).await
}

async fn look(
    ctx: &Context,
    env: &Environment,
    asked: Option<Mode>,
) -> Result<Preflight, RunError> {
    // Credentials first: without them every region looks silent, and a failover that
    // guessed "unplanned" from that would skip the fence.
    let _identity_or_note = super::check_identity(ctx, env).await?;
    let t = observe_within(ctx, env, FAILOVER_OBSERVE_TIMEOUT).await;
    // AWS answered "no" (permissions): a configuration error, not an outage. The primary's
    // may be overridden by an explicit --mode; the standby's never (the run needs it).
    for r in [&t.standby, &t.primary] {
        if r.refused && (r.role == Role::Standby || asked.is_none()) {
            return Err(RunError::Credentials(format!(
                "AWS refused to describe the database in {} ({} region): {}. Nothing was changed. \
                 A permissions error is not an outage: fix the role's permissions (`drctl iam-policy` prints \
                 what drctl needs){}",
                r.region,
                r.role,
                r.error.as_deref().unwrap_or("access denied"),
                if r.role == Role::Primary {
                    ", or pass --mode planned|unplanned to decide without looking at the primary"
                } else {
                    ""
                }
            )));
        }
    }
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

/// The shipped runbook to use for `name` in `env`: its gated variant (`gated/NAME`, the
/// statically stable one that moves traffic with the failover gate) when drctl.yaml has a
/// `route53.gate` and one ships, else `name`.
pub fn shipped_for(env: &crate::config::Environment, name: &str) -> String {
    const GATED: [&str; 2] = [
        super::roundtrip::UNPLANNED_RUNBOOK,
        super::roundtrip::FAILBACK_RUNBOOK,
    ];
    let gated = env.route53.as_ref().is_some_and(|r| r.gate.is_some());
    if gated && GATED.contains(&name) {
        format!("gated/{name}")
    } else {
        name.to_string()
    }
}

/// The runbook `drctl iam-policy NAME` means: a file as given; else a command's name
/// (`failover`, `switchover`, `fence`, `reprotect`, `failback`, `drill`) or a shipped runbook's
/// name, as that command would run it in `env` (the gated variant with a `route53.gate`).
pub fn runbook_named(env: &crate::config::Environment, given: &str) -> String {
    if Path::new(given).is_file() {
        return given.to_string();
    }
    let name = given
        .strip_suffix(".yaml")
        .or_else(|| given.strip_suffix(".yml"))
        .unwrap_or(given);
    let name = match name {
        "failover" => super::roundtrip::UNPLANNED_RUNBOOK,
        "switchover" => super::roundtrip::PLANNED_RUNBOOK,
        "drill" => super::drill::ISOLATED_RUNBOOK,
        other => other,
    };
    shipped_for(env, name)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::{Fault, FaultKind};
    use crate::journal::Operator;
    use crate::run::AwsSource;
    use crate::steps::kind_tests::Fx;

    fn ctx(fx: &Fx, dir: &Path) -> Context {
        Context {
            state_dir: dir.to_path_buf(),
            state: crate::run::StateStore::file(dir),
            aws: AwsSource::Given(std::sync::Arc::new(fx.aws.clone())),
            operator: Operator {
                user: "tester".into(),
                host: "h".into(),
                pid: 1,
            },
            command: "drctl failover".into(),
        }
    }

    #[tokio::test]
    async fn a_permission_error_is_a_configuration_error_not_an_outage() {
        let dir = tempfile::tempdir().unwrap();
        let standby = {
            let fx = Fx::new();
            fx.env.standby_region.clone()
        };
        // The seeded world answers: a planned switchover.
        let fx = Fx::new();
        match preflight(&ctx(&fx, dir.path()), &fx.env, &standby, None).await {
            Ok(Preflight::Proceed { mode, .. }) => assert_eq!(mode, Mode::Planned),
            Ok(Preflight::AlreadyDone(_)) => panic!("seeded as protected"),
            Err(e) => panic!("{e}"),
        }
        // AccessDenied on the primary's database is not "the primary is down": no unplanned
        // failover (which would skip the fence) is chosen from it.
        let fx = Fx::new();
        fx.aws.inject(
            Fault::new(FaultKind::Denied)
                .service("rds")
                .operation("DescribeDBInstances")
                .region(&fx.env.primary_region.clone()),
        );
        let err = match preflight(&ctx(&fx, dir.path()), &fx.env, &standby, None).await {
            Err(e) => e,
            Ok(_) => panic!("a denied primary must not decide the mode"),
        };
        assert!(matches!(err, RunError::Credentials(_)), "{err}");
        assert!(err.to_string().contains("--mode"), "{err}");
        // The operator may decide without looking: --mode unplanned goes on.
        let asked = preflight(
            &ctx(&fx, dir.path()),
            &fx.env,
            &standby,
            Some(Mode::Unplanned),
        )
        .await;
        assert!(matches!(
            asked,
            Ok(Preflight::Proceed {
                mode: Mode::Unplanned,
                ..
            })
        ));
        // Denied in the standby stops it whatever the mode.
        let fx = Fx::new();
        fx.aws.inject(
            Fault::new(FaultKind::Denied)
                .service("rds")
                .region(&standby),
        );
        let err = preflight(
            &ctx(&fx, dir.path()),
            &fx.env,
            &standby,
            Some(Mode::Unplanned),
        )
        .await;
        assert!(matches!(err, Err(RunError::Credentials(_))));
        // No credentials at all stop it before anything is observed.
        let fx = Fx::new();
        fx.aws.inject(Fault::new(FaultKind::Denied).service("sts"));
        let before = fx.world().calls.len();
        let err = preflight(&ctx(&fx, dir.path()), &fx.env, &standby, None).await;
        assert!(matches!(err, Err(RunError::Credentials(_))));
        let calls: Vec<_> = fx.world().calls[before..]
            .iter()
            .map(|c| c.service)
            .collect();
        assert_eq!(
            calls,
            ["sts"],
            "nothing observed after the credentials failed"
        );
    }
}
