//! Exit codes, one per outcome a script may want to branch on. Documented in README.md.

/// Everything asked for was done (or was already in place).
pub const OK: i32 = 0;
/// An unexpected error (I/O, a bug). The message says what.
pub const ERROR: i32 = 1;
/// Bad input: a file that does not validate, a bad flag or argument. Nothing was executed.
pub const INVALID: i32 = 2;
/// Another drctl holds the environment's lease.
pub const LOCKED: i32 = 3;
/// A step failed and the run was aborted (or a check found a FAIL).
pub const FAILED: i32 = 4;
/// The run is paused (a failure with `on_failure: pause`, a signal, or a step needing a human).
/// `drctl resume RUN` continues it.
pub const PAUSED: i32 = 5;
/// The run was rolled back (completely).
pub const ROLLED_BACK: i32 = 6;
/// A rollback stopped at an irreversible step, or an undo failed.
pub const ROLLBACK_INCOMPLETE: i32 = 7;
/// The operator declined a confirmation, or a mutating command had no TTY and no `--yes`.
pub const DECLINED: i32 = 8;
/// `drctl status`: the environment is not protected (failed over and not yet reprotected, no
/// replica, or it could not be observed). Not an alarm by itself; 4 is.
pub const UNPROTECTED: i32 = 9;
/// drctl's own state is damaged: a lease file that is not a lease, a journal that was edited or
/// copied under another run's id, or whose hash chain breaks (`drctl verify` says where).
/// Nothing was changed; the message says what to look at.
pub const DAMAGED: i32 = 10;
/// `drctl verify`: the run's journal has no hash chain (it was written by a drctl before hash
/// chains). It reads as before, but whether it was edited cannot be told.
pub const UNCHAINED: i32 = 11;
/// `drctl drill`: the environment was not ready for a drill (not `protected`, the primary's
/// probes failing, an earlier drill's resources still there). Nothing was created: a scheduler
/// reads it as "skipped", not "failed".
pub const NOT_READY: i32 = 12;
/// `drctl drill` / `drctl drill cleanup`: resources a drill made are still there (teardown did
/// not finish). `drctl drill cleanup` removes them.
pub const LEFTOVERS: i32 = 13;
/// The shared state table (`state: backend: dynamodb`) could not be reached or did not answer
/// in time. A mutating command stops before it acts (or, mid-run, at once, with the run
/// resumable): drctl never falls back to local files that other machines cannot see.
pub const STATE_UNAVAILABLE: i32 = 14;

/// Every exit code with its meaning in one line, for the man page's EXIT STATUS.
pub const MEANINGS: &[(i32, &str)] = &[
    (OK, "done, or already in place"),
    (ERROR, "an unexpected error (I/O, a bug); the message says what"),
    (INVALID, "bad input: a file that does not validate, a bad flag or argument; nothing was executed"),
    (LOCKED, "another drctl holds the environment's lease (or took it over mid-run)"),
    (FAILED, "a step failed and the run was aborted; `check` found a FAIL; `status`: dangerous (split brain, tiers apart, an unfenced old writer, the primary down with nothing moved)"),
    (PAUSED, "the run is paused (a failure, a signal, a gate declined or past its deadline); `drctl resume`"),
    (ROLLED_BACK, "the run was rolled back completely"),
    (ROLLBACK_INCOMPLETE, "a rollback stopped at an irreversible step, or an undo failed"),
    (DECLINED, "a confirmation was declined, or there was no terminal and no --yes"),
    (UNPROTECTED, "`status`: not protected (failed over, no replica, not observable)"),
    (DAMAGED, "drctl's own state is damaged (a lease or journal edited or broken); `report` of such a journal without --allow-broken"),
    (UNCHAINED, "`verify`: the journal has no hash chain (written before hash chains)"),
    (NOT_READY, "`drill`: not ready for a drill; nothing was created"),
    (LEFTOVERS, "`drill` / `drill cleanup`: resources a drill made are still there"),
    (STATE_UNAVAILABLE, "the shared state table could not be reached; nothing falls back to local files"),
];

/// The environment variables drctl reads, for the man page's ENVIRONMENT.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DRCTL_ENV",
        "the environment file (as --env; default drctl.yaml)",
    ),
    (
        "DRCTL_STATE_DIR",
        "where journals and leases live (as --state-dir)",
    ),
    (
        "DRCTL_OPERATOR",
        "the operator's name in journals, leases and approvals (default: USER or LOGNAME)",
    ),
    (
        "DRCTL_WATCHER_ID",
        "this watcher's name among watchers that must agree (as watch --watcher-id)",
    ),
    (
        "DRCTL_LOG",
        "log filter (tracing's EnvFilter syntax; as -v, -vv)",
    ),
    ("NO_COLOR", "no colour in the output (no-color.org)"),
    (
        "AWS_PROFILE, AWS_REGION, AWS_ACCESS_KEY_ID, ...",
        "the AWS SDK's usual credential and configuration sources",
    ),
    (
        "AWS_ENDPOINT_URL",
        "one endpoint for every AWS service (as --endpoint-url; the sandbox)",
    ),
];
