//! Build script: stamp the commit into `drctl --version`, so a binary found on a bastion host
//! says exactly what it is. Outside a git checkout (a source tarball) the commit is "unknown".

fn main() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let date = git(&["log", "-1", "--format=%cs"]).unwrap_or_default();
    println!("cargo:rustc-env=DRCTL_COMMIT={commit}");
    println!("cargo:rustc-env=DRCTL_COMMIT_DATE={date}");
    // A new commit moves HEAD or the branch it names: watch exactly those files (not every
    // branch: a commit on another worktree's branch must not rebuild this one).
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for file in watch {
        // A file that does not exist would make cargo rerun this script on every build.
        if let Some(path) =
            git(&["rev-parse", "--git-path", &file]).filter(|p| std::path::Path::new(p).exists())
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
