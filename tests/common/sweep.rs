//! Which kill points a crash sweep tries. `make test` tries a sample, `make test-all` all of them.
//!
//! A sweep has points 1..=n (kill after the nth journal event, or the nth mutating call). Trying
//! them all takes most of an hour, so by default a sweep tries every `stride`th point, starting at
//! an offset that moves by one with every commit (`git rev-list --count HEAD`). Any `stride`
//! consecutive commits together try every point, and a given commit always tries the same ones,
//! so a failure reproduces.
//!
//! - `DRCTL_CRASH_STRIDE=N`: every Nth point (`1`: all of them, as `make test-all` does).
//! - `DRCTL_CRASH_OFFSET=K`: start at the (K mod N)th residue instead of the commit count's.
//! - `DRCTL_CRASH_POINTS=3,17`: exactly these points (to re-run a failure).

/// The default stride of `make test`: an eighth of each sweep's points. (It was 5; a planned
/// switchover now waits for a ReplicaLag datapoint newer than its fence, which RDS publishes
/// once a minute, so each planned trial costs up to a minute more.)
pub const DEFAULT_STRIDE: usize = 8;

/// How the points were chosen, said in the test's output and in a failure.
#[derive(Debug)]
pub struct Sample {
    pub points: Vec<usize>,
    pub how: String,
}

/// The points of 1..=n this run tries.
pub fn sample(n: usize) -> Sample {
    if let Ok(list) = std::env::var("DRCTL_CRASH_POINTS") {
        let points: Vec<usize> = list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("DRCTL_CRASH_POINTS: {s:?} is not a number"))
            })
            .filter(|p| (1..=n).contains(p))
            .collect();
        return Sample {
            how: format!("DRCTL_CRASH_POINTS={list} of {n} points"),
            points,
        };
    }
    let stride = env_number("DRCTL_CRASH_STRIDE")
        .unwrap_or(DEFAULT_STRIDE)
        .max(1);
    let (offset, from) = match env_number("DRCTL_CRASH_OFFSET") {
        Some(k) => (k, "DRCTL_CRASH_OFFSET"),
        None => (commit_count(), "the commit count"),
    };
    let first = offset % stride + 1;
    let points: Vec<usize> = (first..=n).step_by(stride).collect();
    Sample {
        how: format!(
            "{} of {n} points: every {stride} from {first} (offset {offset} from {from}; \
             DRCTL_CRASH_STRIDE=1 tries all, DRCTL_CRASH_POINTS=a,b re-runs some)",
            points.len()
        ),
        points,
    }
}

fn env_number(var: &str) -> Option<usize> {
    let v = std::env::var(var).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}: {v:?} is not a number")),
    )
}

/// Commits reachable from HEAD in this checkout; 0 outside git.
fn commit_count() -> usize {
    std::process::Command::new("git")
        .args(["rev-list", "--count", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}
