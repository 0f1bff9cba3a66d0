//! Test support shared by the integration tests: the real `drctl` binary, temp workspaces, and a
//! two-region sandbox (moto plus our fixes) started by the test itself.
#![allow(dead_code)]

pub mod browser;
pub mod pty;
pub mod sandbox;
pub mod sweep;
pub mod watch;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The compiled binary under test. `DRCTL_BIN` overrides it: engineers sharing one
/// CARGO_TARGET_DIR across worktrees overwrite each other's `target/debug/drctl`, so a test
/// run can pin a copy of its own build.
pub fn drctl_bin() -> PathBuf {
    std::env::var_os("DRCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_drctl")))
}

/// `drctl` with a clean, explicit environment rooted at `dir`.
pub fn drctl(dir: &Path) -> Command {
    let mut c = Command::new(drctl_bin());
    c.current_dir(dir)
        .env_remove("DRCTL_ENV")
        .env_remove("DRCTL_STATE_DIR")
        .env("DRCTL_OPERATOR", "tester")
        .env("DRCTL_PLAIN", "1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL");
    c
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("drctl runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A minimal valid environment file, for tests that need no AWS.
pub const LOCAL_ENV: &str = "name: local\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n  us-west-2: {}\n";

pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("drctl.yaml"), LOCAL_ENV).expect("write env");
    dir
}

/// Journal records of a run, parsed.
pub fn journal(dir: &Path, run_id: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(".drctl/runs").join(run_id).join("journal.jsonl"))
        .expect("journal");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// The single run in a workspace's state dir.
pub fn only_run(dir: &Path) -> String {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join(".drctl/runs"))
        .expect("runs dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1, "expected one run, found {ids:?}");
    ids.pop().unwrap()
}
