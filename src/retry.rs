//! One retry policy for all of drctl: exponential backoff with jitter, capped. The engine's
//! step retries, CloudFront's ETag races and the watch's notifications all space their
//! attempts with [`Backoff`]; [`retry`] drives an operation whose caller has nothing to record
//! between attempts (the engine journals each failure, so it asks `Backoff` for the delay and
//! sleeps on its own, cancellable by shutdown).

use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// Delay before the n-th retry: `base * 2^(n-1)`, capped at `max`, then spread by ±`jitter`
/// (a fraction) so that writers that collided once do not collide again in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub jitter: f64,
}

impl Backoff {
    /// `base` doubling per retry, up to five minutes, ±25%.
    pub const fn new(base: Duration) -> Self {
        Self {
            base,
            max: Duration::from_secs(300),
            jitter: 0.25,
        }
    }

    pub const fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    pub const fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// The delay after `failures` failed attempts (1 = before the first retry).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let capped = exp.min(self.max);
        if self.jitter <= 0.0 {
            return capped;
        }
        let spread = rand::rng().random_range((1.0 - self.jitter)..(1.0 + self.jitter));
        capped.mul_f64(spread)
    }
}

/// Run `op` up to `attempts` times while it fails with an error `retryable` accepts, sleeping
/// `policy.delay(n)` between attempts. Returns the last result.
pub async fn retry<T, E, F, Fut>(
    policy: Backoff,
    attempts: u32,
    retryable: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let attempts = attempts.max(1);
    let mut n = 1;
    loop {
        match op(n).await {
            Err(e) if n < attempts && retryable(&e) => {
                tokio::time::sleep(policy.delay(n)).await;
                n += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_jitter_and_caps() {
        let b = Backoff::new(Duration::from_secs(1)).max(Duration::from_secs(10));
        for (n, want) in [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (4, 8.0),
            (5, 10.0),
            (30, 10.0),
        ] {
            let d = b.delay(n).as_secs_f64();
            assert!(
                d >= want * 0.75 && d <= want * 1.25,
                "retry {n}: {d}s, want {want}s ±25%"
            );
        }
        assert_eq!(
            Backoff::new(Duration::from_millis(100))
                .jitter(0.0)
                .delay(3),
            Duration::from_millis(400)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_what_is_retryable_and_stops_at_the_budget() {
        let policy = Backoff::new(Duration::from_millis(10));
        let mut calls = 0;
        let r: Result<(), &str> = retry(
            policy,
            3,
            |e| *e == "again",
            |_| {
                calls += 1;
                async { Err("again") }
            },
        )
        .await;
        assert_eq!((r, calls), (Err("again"), 3));

        let mut calls = 0;
        let r: Result<(), &str> = retry(
            policy,
            3,
            |e| *e == "again",
            |_| {
                calls += 1;
                async { Err("fatal") }
            },
        )
        .await;
        assert_eq!((r, calls), (Err("fatal"), 1));

        let r: Result<u32, &str> = retry(
            policy,
            5,
            |_| true,
            |n| async move {
                if n < 3 {
                    Err("again")
                } else {
                    Ok(n)
                }
            },
        )
        .await;
        assert_eq!(r, Ok(3));
    }
}
