//! The environment's phase, decided from what was observed (pure: no AWS here, so every case
//! is unit-tested). VMware SRM's recovery plan states are the model:
//!
//! ```text
//! protected --failover--> failed-over --reprotect--> reprotected --failback--> protected
//!     \--outage--> primary-down --failover--> failed-over
//! split-brain / mixed: two writers, or tiers in different regions: always an alarm
//! ```

use serde::Serialize;

use crate::config::env::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The primary serves; the standby holds a replica of its writer.
    Protected,
    /// The primary serves, but nothing protects it (no replica in the standby).
    Unprotected,
    /// The primary is down (its region does not answer, or Route 53 already answers the
    /// standby because the primary's health check fails) and nothing has moved: the standby
    /// still holds a replica, CloudFront and the records are as before. `drctl failover` is
    /// what to do.
    PrimaryDown,
    /// The standby serves; nothing protects it yet (`drctl reprotect`).
    FailedOver,
    /// The standby serves, and a replica of its writer in the old primary protects it
    /// (`drctl failback` when ready).
    Reprotected,
    /// Two databases take writes.
    SplitBrain,
    /// Tiers point at different regions (DNS one way, CloudFront the other, or traffic
    /// where no writer is).
    Mixed,
    /// Not enough could be observed to say.
    Unknown,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Protected => "protected",
            Phase::Unprotected => "unprotected",
            Phase::PrimaryDown => "primary-down",
            Phase::FailedOver => "failed-over",
            Phase::Reprotected => "reprotected",
            Phase::SplitBrain => "split-brain",
            Phase::Mixed => "mixed",
            Phase::Unknown => "unknown",
        }
    }

    /// An alarm: users may be hurt now (split brain, tiers apart, the primary down).
    pub fn dangerous(self) -> bool {
        matches!(self, Phase::SplitBrain | Phase::Mixed | Phase::PrimaryDown)
    }

    /// Safe, and protected by a replica in the other region.
    pub fn protected(self) -> bool {
        matches!(self, Phase::Protected | Phase::Reprotected)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One region's database as the phase needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DbFacts {
    /// It could be read at all.
    pub seen: bool,
    /// An available instance that is not a replica.
    pub writer: bool,
    /// A writer that takes writes now (not read-only, not stopped). `None`: unknown.
    pub writable: Option<bool>,
    /// A replica of the other region's writer.
    pub replicates_other: bool,
}

/// What the phase is decided from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    pub primary: DbFacts,
    pub standby: DbFacts,
    /// The region Route 53 answers for the public name.
    pub dns: Option<Role>,
    /// The region of CloudFront's first origin.
    pub cdn: Option<Role>,
    /// The primary region's APIs did not answer.
    pub primary_dark: bool,
    /// Route 53's records were swapped to hold the standby (a failover's doing, not a health
    /// check's).
    pub dns_held_on_standby: bool,
}

impl Facts {
    fn db(&self, r: Role) -> &DbFacts {
        match r {
            Role::Primary => &self.primary,
            Role::Standby => &self.standby,
        }
    }

    /// The region serving users: where DNS and CloudFront agree (or the one that is known).
    pub fn active(&self) -> Option<Role> {
        match (self.dns, self.cdn) {
            (Some(a), Some(b)) if a == b => Some(a),
            (Some(_), Some(_)) => None,
            (a, b) => a.or(b),
        }
    }
}

pub fn other(r: Role) -> Role {
    match r {
        Role::Primary => Role::Standby,
        Role::Standby => Role::Primary,
    }
}

/// The primary is down and nothing has moved: the standby's database is still a replica,
/// CloudFront still prefers the primary (or cannot be read), the records were not swapped, and
/// either the primary's region does not answer or Route 53 answers the standby because the
/// primary's health check fails.
fn primary_down_nothing_moved(f: &Facts) -> bool {
    let standby_is_replica = f.standby.seen && !f.standby.writer;
    let moved = f.cdn == Some(Role::Standby) || f.dns_held_on_standby;
    let primary_down = f.primary_dark || f.dns == Some(Role::Standby);
    standby_is_replica && !moved && primary_down
}

/// The phase these facts mean.
pub fn decide(f: &Facts) -> Phase {
    let writable: Vec<Role> = [Role::Primary, Role::Standby]
        .into_iter()
        .filter(|r| f.db(*r).writable == Some(true))
        .collect();
    if writable.len() > 1 {
        return Phase::SplitBrain;
    }
    if primary_down_nothing_moved(f) {
        return Phase::PrimaryDown;
    }
    if let (Some(a), Some(b)) = (f.dns, f.cdn) {
        if a != b {
            return Phase::Mixed;
        }
    }
    let Some(active) = f.active() else {
        return Phase::Unknown;
    };
    // Traffic goes where the writer is not: its app writes to a replica, or to nothing.
    if writable.first().is_some_and(|w| *w != active) || f.db(active).seen && !f.db(active).writer {
        return Phase::Mixed;
    }
    if !f.db(active).seen {
        return Phase::Unknown;
    }
    let protected = f.db(other(active)).replicates_other;
    match (active, protected) {
        (Role::Primary, true) => Phase::Protected,
        (Role::Primary, false) => Phase::Unprotected,
        (Role::Standby, true) => Phase::Reprotected,
        (Role::Standby, false) => Phase::FailedOver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITER: DbFacts = DbFacts {
        seen: true,
        writer: true,
        writable: Some(true),
        replicates_other: false,
    };
    const FENCED: DbFacts = DbFacts {
        seen: true,
        writer: true,
        writable: Some(false),
        replicates_other: false,
    };
    const REPLICA: DbFacts = DbFacts {
        seen: true,
        writer: false,
        writable: None,
        replicates_other: true,
    };
    const DARK: DbFacts = DbFacts {
        seen: false,
        writer: false,
        writable: None,
        replicates_other: false,
    };

    fn facts(p: DbFacts, s: DbFacts, dns: Role, cdn: Role) -> Facts {
        Facts {
            primary: p,
            standby: s,
            dns: Some(dns),
            cdn: Some(cdn),
            primary_dark: !p.seen,
            dns_held_on_standby: false,
        }
    }

    #[test]
    fn the_round_trip_names_each_phase() {
        use Role::*;
        assert_eq!(
            decide(&facts(WRITER, REPLICA, Primary, Primary)),
            Phase::Protected
        );
        // After an unplanned failover with the primary dark.
        assert_eq!(
            decide(&facts(DARK, WRITER, Standby, Standby)),
            Phase::FailedOver
        );
        // The region is back and the fence completed.
        assert_eq!(
            decide(&facts(FENCED, WRITER, Standby, Standby)),
            Phase::FailedOver
        );
        assert_eq!(
            decide(&facts(REPLICA, WRITER, Standby, Standby)),
            Phase::Reprotected
        );
        assert_eq!(
            decide(&facts(WRITER, REPLICA, Primary, Primary)),
            Phase::Protected
        );
    }

    #[test]
    fn alarms() {
        use Role::*;
        // The old primary came back writable after a failover: two writers.
        assert_eq!(
            decide(&facts(WRITER, WRITER, Standby, Standby)),
            Phase::SplitBrain
        );
        // DNS and CloudFront disagree.
        assert_eq!(
            decide(&facts(FENCED, WRITER, Primary, Standby)),
            Phase::Mixed
        );
        // Traffic on the standby while its database is still a replica.
        assert_eq!(
            decide(&facts(WRITER, REPLICA, Standby, Standby)),
            Phase::Mixed
        );
        // The writer is fenced everywhere: the active region's writer is read-only, which is
        // not mixed, but nothing is protected either.
        assert_eq!(
            decide(&facts(FENCED, DARK, Primary, Primary)),
            Phase::Unprotected
        );
        assert!(Phase::SplitBrain.dangerous() && Phase::Mixed.dangerous());
        assert!(!Phase::FailedOver.dangerous());
    }

    #[test]
    fn unknown_when_traffic_cannot_be_placed() {
        let f = Facts {
            primary: WRITER,
            standby: REPLICA,
            dns: None,
            cdn: None,
            primary_dark: false,
            dns_held_on_standby: false,
        };
        assert_eq!(decide(&f), Phase::Unknown);
        // One tier known is enough.
        let f = Facts {
            dns: Some(Role::Primary),
            ..f
        };
        assert_eq!(decide(&f), Phase::Protected);
    }

    /// Each moment of an outage of the primary region, before and during a failover.
    #[test]
    fn an_outage_is_primary_down_until_something_moves() {
        use Role::*;
        let dark = |dns, cdn| Facts {
            primary_dark: true,
            ..facts(DARK, REPLICA, dns, cdn)
        };
        // The first seconds: the region does not answer, Route 53's check has not flipped yet.
        assert_eq!(decide(&dark(Primary, Primary)), Phase::PrimaryDown);
        // Route 53's health check flipped: it answers the standby, whose database is still a
        // replica. Nothing drctl did: not "mixed".
        assert_eq!(decide(&dark(Standby, Primary)), Phase::PrimaryDown);
        // CloudFront cannot be read either: still the outage, not unknown.
        let f = Facts {
            cdn: None,
            ..dark(Primary, Primary)
        };
        assert_eq!(decide(&f), Phase::PrimaryDown);
        // The primary's app fails its health check while its region answers.
        assert_eq!(
            decide(&facts(WRITER, REPLICA, Standby, Primary)),
            Phase::PrimaryDown
        );
        // During the failover: the replica was promoted, CloudFront not yet moved.
        assert_eq!(
            decide(&dark(Standby, Primary).with_standby(WRITER)),
            Phase::Mixed
        );
        // After it: everything on the standby.
        assert_eq!(
            decide(&dark(Standby, Standby).with_standby(WRITER)),
            Phase::FailedOver
        );
        // Records held on the standby but the database not promoted: a move, half done.
        let f = Facts {
            dns_held_on_standby: true,
            ..dark(Standby, Primary)
        };
        assert_eq!(decide(&f), Phase::Mixed);
        // The primary answers and serves: protected, whatever else.
        assert_eq!(
            decide(&facts(WRITER, REPLICA, Primary, Primary)),
            Phase::Protected
        );
    }

    impl Facts {
        fn with_standby(self, s: DbFacts) -> Facts {
            Facts { standby: s, ..self }
        }
    }
}
