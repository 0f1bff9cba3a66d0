//! The watch's decision policy, pure and clock-driven so it is tested under paused time: the
//! primary is down when every primary target is `down`; it is acted on only after it stays
//! down for `confirm_for`, while every standby target is `healthy`, and (with
//! `require_route53`) while Route 53's health check also reports the primary unhealthy. After
//! acting, nothing more is done until the primary has been healthy again and `cooldown` has
//! passed: one outage, one action.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::env::WatchPolicy;

// ------------------------------------------------------------------------------------------
// The decision policy
// ------------------------------------------------------------------------------------------

/// What the policy sees on one evaluation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs {
    /// Every primary target is `down`.
    pub primary_down: bool,
    /// Every primary target is `healthy` (the outage is over).
    pub primary_healthy: bool,
    /// Every standby target is `healthy`.
    pub standby_healthy: bool,
    /// Route 53's verdict on the primary when asked: `Some(true)` = unhealthy too.
    pub route53_unhealthy: Option<bool>,
    /// The other watchers' verdict when asked (shared state): `Some(true)` = a quorum of live
    /// watchers has seen the primary down for `confirm_for`.
    pub quorum: Option<bool>,
}

/// What the policy concluded. Only changes are journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing to do (primary up, or down for less than `confirm_for`).
    Nothing,
    /// Confirmed down; Route 53's opinion is needed before acting.
    NeedRoute53,
    /// Act now (notify, or fail over).
    Act,
    /// Confirmed down, but the standby is not healthy: failing over would not help.
    WithheldStandbyUnhealthy,
    /// Confirmed down by drctl, but Route 53 still sees the primary healthy.
    WithheldRoute53Disagrees,
    /// Confirmed down here; the quorum of watchers is needed before acting.
    NeedQuorum,
    /// Confirmed down here, but too few live watchers see it down (this watcher's own network
    /// path may be what broke), or the other watchers could not be read.
    WithheldNoQuorum,
    /// Down again within the cooldown of the last action: nothing is done.
    SuppressedCooldown,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Nothing => "nothing",
            Verdict::NeedRoute53 => "need_route53",
            Verdict::Act => "act",
            Verdict::WithheldStandbyUnhealthy => "withheld_standby_unhealthy",
            Verdict::WithheldRoute53Disagrees => "withheld_route53_disagrees",
            Verdict::NeedQuorum => "need_quorum",
            Verdict::WithheldNoQuorum => "withheld_no_quorum",
            Verdict::SuppressedCooldown => "suppressed_cooldown",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum PolicyState {
    Armed {
        down_since: Option<Instant>,
    },
    Acted {
        at: Instant,
        primary_recovered: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub confirm_for: Duration,
    pub cooldown: Duration,
    pub require_route53: bool,
    /// Shared state: watchers must agree (see [`Inputs::quorum`]).
    pub require_quorum: bool,
    state: PolicyState,
}

impl Policy {
    pub fn new(p: &WatchPolicy) -> Self {
        Self {
            confirm_for: p.confirm_for,
            cooldown: p.cooldown,
            require_route53: p.require_route53,
            require_quorum: false,
            state: PolicyState::Armed { down_since: None },
        }
    }

    /// Start as if an action was taken `ago` (a restart of the watch within the cooldown).
    pub fn acted_before(&mut self, now: Instant, ago: Duration) {
        let at = now.checked_sub(ago).unwrap_or(now);
        self.state = PolicyState::Acted {
            at,
            primary_recovered: false,
        };
    }

    /// How long the primary has been down, while armed.
    pub fn down_for(&self, now: Instant) -> Option<Duration> {
        match self.state {
            PolicyState::Armed {
                down_since: Some(s),
            } => Some(now - s),
            _ => None,
        }
    }

    pub fn in_cooldown(&self) -> bool {
        matches!(self.state, PolicyState::Acted { .. })
    }

    pub fn evaluate(&mut self, i: &Inputs, now: Instant) -> Verdict {
        if let PolicyState::Acted {
            at,
            primary_recovered,
        } = &mut self.state
        {
            *primary_recovered |= i.primary_healthy;
            if *primary_recovered && now - *at >= self.cooldown {
                self.state = PolicyState::Armed { down_since: None };
            } else if i.primary_down && *primary_recovered {
                return Verdict::SuppressedCooldown;
            } else {
                return Verdict::Nothing;
            }
        }
        let PolicyState::Armed { down_since } = &mut self.state else {
            unreachable!("handled above")
        };
        if !i.primary_down {
            *down_since = None;
            return Verdict::Nothing;
        }
        let since = *down_since.get_or_insert(now);
        if now - since < self.confirm_for {
            return Verdict::Nothing;
        }
        if !i.standby_healthy {
            return Verdict::WithheldStandbyUnhealthy;
        }
        if self.require_route53 {
            match i.route53_unhealthy {
                None => return Verdict::NeedRoute53,
                Some(false) => return Verdict::WithheldRoute53Disagrees,
                Some(true) => {}
            }
        }
        if self.require_quorum {
            match i.quorum {
                None => return Verdict::NeedQuorum,
                Some(false) => return Verdict::WithheldNoQuorum,
                Some(true) => {}
            }
        }
        self.state = PolicyState::Acted {
            at: now,
            primary_recovered: false,
        };
        Verdict::Act
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(confirm: u64, cooldown: u64, r53: bool) -> Policy {
        Policy::new(&WatchPolicy {
            confirm_for: Duration::from_secs(confirm),
            cooldown: Duration::from_secs(cooldown),
            require_route53: r53,
            ..WatchPolicy::default()
        })
    }
    const DOWN: Inputs = Inputs {
        primary_down: true,
        primary_healthy: false,
        standby_healthy: true,
        route53_unhealthy: None,
        quorum: None,
    };
    const UP: Inputs = Inputs {
        primary_down: false,
        primary_healthy: true,
        standby_healthy: true,
        route53_unhealthy: None,
        quorum: None,
    };

    #[tokio::test(start_paused = true)]
    async fn acts_only_after_confirm_for_and_then_once() {
        let mut p = policy(3, 60, false);
        let t0 = Instant::now();
        assert_eq!(p.evaluate(&DOWN, t0), Verdict::Nothing);
        tokio::time::advance(Duration::from_millis(2900)).await;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Nothing);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Act);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert_eq!(
                p.evaluate(&DOWN, Instant::now()),
                Verdict::Nothing,
                "at most once per outage"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_blip_shorter_than_confirm_for_resets() {
        let mut p = policy(3, 60, false);
        for _ in 0..20 {
            assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Nothing);
            tokio::time::advance(Duration::from_secs(2)).await;
            assert_eq!(p.evaluate(&UP, Instant::now()), Verdict::Nothing);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn withheld_while_the_standby_is_unhealthy_or_route53_disagrees() {
        let mut p = policy(0, 60, true);
        let sick = Inputs {
            standby_healthy: false,
            ..DOWN
        };
        assert_eq!(
            p.evaluate(&sick, Instant::now()),
            Verdict::WithheldStandbyUnhealthy
        );
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::NeedRoute53);
        assert_eq!(
            p.evaluate(
                &Inputs {
                    route53_unhealthy: Some(false),
                    ..DOWN
                },
                Instant::now()
            ),
            Verdict::WithheldRoute53Disagrees
        );
        assert_eq!(
            p.evaluate(
                &Inputs {
                    route53_unhealthy: Some(true),
                    ..DOWN
                },
                Instant::now()
            ),
            Verdict::Act
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_shared_state_a_watcher_acts_only_with_a_quorum() {
        let mut p = policy(0, 60, false);
        p.require_quorum = true;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::NeedQuorum);
        let alone = Inputs {
            quorum: Some(false),
            ..DOWN
        };
        // Withheld as long as the others do not agree; still armed, so it acts once they do.
        for _ in 0..5 {
            assert_eq!(
                p.evaluate(&alone, Instant::now()),
                Verdict::WithheldNoQuorum
            );
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let agreed = Inputs {
            quorum: Some(true),
            ..DOWN
        };
        assert_eq!(p.evaluate(&agreed, Instant::now()), Verdict::Act);
        assert_eq!(p.evaluate(&agreed, Instant::now()), Verdict::Nothing);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_outage_in_the_cooldown_is_suppressed_then_rearmed_after_it() {
        let mut p = policy(1, 600, false);
        p.evaluate(&DOWN, Instant::now());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Act);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(p.evaluate(&UP, Instant::now()), Verdict::Nothing);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            p.evaluate(&DOWN, Instant::now()),
            Verdict::SuppressedCooldown
        );
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(
            p.evaluate(&UP, Instant::now()),
            Verdict::Nothing,
            "re-armed after cooldown and recovery"
        );
        p.evaluate(&DOWN, Instant::now());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Act);
    }

    #[tokio::test(start_paused = true)]
    async fn never_rearms_while_the_primary_stays_down() {
        let mut p = policy(0, 10, false);
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Act);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(p.evaluate(&DOWN, Instant::now()), Verdict::Nothing);
    }
}
