//! Watchers that agree (shared state): each `drctl watch` publishes its view of the primary
//! and a heartbeat, and reads everyone's. The primary is acted on only when a quorum of *live*
//! watchers has seen it down for `confirm_for`, so a watcher whose own network path to the
//! primary broke cannot fail over alone: the others still see the primary up.
//!
//! Liveness is judged by the reader's own clock (a heartbeat counter that must keep moving),
//! and each watcher reports how long it has seen the primary down as a duration measured by
//! its own monotonic clock: nothing here compares clocks of different machines.
//!
//! Where views are kept is the [`Peers`] seam (the run module gives the DynamoDB table); an
//! answer that does not come, or comes late, is not agreement.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;

/// One watcher's view, as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    pub watcher: String,
    pub host: String,
    /// Grows with every publication: the heartbeat.
    pub beat: u64,
    /// Every primary target is `down` for this watcher.
    pub primary_down: bool,
    /// How long it has seen the primary down (its own clock), while it has.
    pub primary_down_for_ms: Option<u64>,
    pub standby_healthy: bool,
    /// The writer's wall clock, for people only.
    pub at: DateTime<Utc>,
}

/// Where watchers publish and read views.
#[async_trait]
pub trait Peers: Send + Sync {
    /// This watcher's id.
    fn id(&self) -> &str;
    async fn publish(&self, view: &PeerView) -> Result<(), String>;
    /// Every watcher's latest view, this one's included.
    async fn read(&self) -> Result<Vec<PeerView>, String>;
    /// Take this watcher's view out (a clean stop), so that the others stop counting it now
    /// rather than after `peer_timeout`.
    async fn leave(&self) -> Result<(), String>;
}

/// One row of `/status`'s `quorum.watchers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WatcherRow {
    pub id: String,
    pub host: String,
    pub live: bool,
    pub primary_down: bool,
    pub primary_down_for_ms: Option<u64>,
    pub standby_healthy: bool,
    /// Since its heartbeat last moved, by this watcher's clock.
    pub age_ms: u64,
    /// Its view counts toward the quorum now.
    pub agrees: bool,
}

/// The quorum as this watcher sees it (`/status` and the decision).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QuorumView {
    pub watcher: String,
    pub watchers: Vec<WatcherRow>,
    pub live: usize,
    /// Watchers live at some time in the last [`RECENT`]: the default quorum is a majority of
    /// these, so that watchers which lost the table (and so look dead) do not shrink it.
    pub recent: usize,
    pub agreeing: usize,
    pub needed: usize,
    pub reached: bool,
    /// Why the views could not be read or published, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at: Option<DateTime<Utc>>,
    /// When this view was made, by this watcher's clock (not shown).
    #[serde(skip)]
    pub made: Option<Instant>,
}

impl QuorumView {
    /// Reached, and recent enough to act on.
    pub fn holds(&self, now: Instant, max_age: Duration) -> bool {
        self.reached && self.made.is_some_and(|m| now.duration_since(m) <= max_age)
    }
}

/// How long a watcher that stopped being live still counts toward the size of the default
/// quorum. Watchers that lose the table look dead to the others; without this, the one that
/// is left (say, cut off from the primary but not from the table) would be a majority of one.
/// The price: when watchers really die (with the primary's region), the others need a
/// majority of all that were live in this window.
pub const RECENT: Duration = Duration::from_secs(600);

/// When each watcher's heartbeat last moved, by this watcher's clock. A watcher seen for the
/// first time is not live until its heartbeat moves: an item left by a watcher that died
/// (saying whatever it last saw) never counts.
#[derive(Debug, Default)]
pub struct Roster {
    seen: HashMap<String, (u64, Option<Instant>)>,
}

impl Roster {
    pub fn observe(&mut self, views: &[PeerView], now: Instant) {
        for v in views {
            let e = self.seen.entry(v.watcher.clone()).or_insert((v.beat, None));
            if e.0 != v.beat {
                *e = (v.beat, Some(now));
            }
        }
    }

    /// Since its heartbeat last moved; None if it has not moved while this watcher looked.
    fn age(&self, id: &str, now: Instant) -> Option<Duration> {
        self.seen
            .get(id)
            .and_then(|(_, at)| at.map(|at| now.duration_since(at)))
    }
}

/// Count the live watchers and those that have seen the primary down for `confirm_for`.
/// `quorum`: how many must agree (None: a majority of the live ones).
pub fn tally(
    me: &str,
    views: &[PeerView],
    roster: &Roster,
    now: Instant,
    peer_timeout: Duration,
    confirm_for: Duration,
    quorum: Option<u32>,
) -> QuorumView {
    let confirm_ms = confirm_for.as_millis() as u64;
    let mut rows: Vec<WatcherRow> = views
        .iter()
        // Items of watchers that never moved while this one looked (gone before it started)
        // are not shown: they would only grow the list with every restart.
        .filter(|v| v.watcher == me || roster.age(&v.watcher, now).is_some())
        .map(|v| {
            let age = roster.age(&v.watcher, now).unwrap_or_default();
            // This watcher is live by definition: it is the one counting.
            let live = v.watcher == me || age <= peer_timeout;
            let agrees =
                live && v.primary_down && v.primary_down_for_ms.is_some_and(|d| d >= confirm_ms);
            WatcherRow {
                id: v.watcher.clone(),
                host: v.host.clone(),
                live,
                primary_down: v.primary_down,
                primary_down_for_ms: v.primary_down_for_ms,
                standby_healthy: v.standby_healthy,
                age_ms: age.as_millis().min(u64::MAX as u128) as u64,
                agrees,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    let live = rows.iter().filter(|r| r.live).count();
    let recent = rows
        .iter()
        .filter(|r| r.live || Duration::from_millis(r.age_ms) <= RECENT)
        .count();
    let agreeing = rows.iter().filter(|r| r.agrees).count();
    let needed = match quorum {
        Some(n) => n.max(1) as usize,
        None => live.max(recent) / 2 + 1,
    };
    QuorumView {
        watcher: me.to_string(),
        // Without our own view in the table we cannot tell what the others would count.
        reached: rows.iter().any(|r| r.id == me) && agreeing >= needed,
        watchers: rows,
        live,
        recent,
        agreeing,
        needed,
        error: None,
        at: Some(Utc::now()),
        made: Some(now),
    }
}

/// What `peers_loop` needs to know.
pub struct PeerSettings {
    pub primary: Vec<usize>,
    pub standby: Vec<usize>,
    pub heartbeat: Duration,
    pub peer_timeout: Duration,
    pub confirm_for: Duration,
    pub quorum: Option<u32>,
}

/// Publish this watcher's view every heartbeat, read everyone's, and keep the tally in
/// `shared` (the decision loop reads it; it never waits on the table itself).
pub async fn peers_loop(
    shared: Arc<Shared>,
    peers: Arc<dyn Peers>,
    s: PeerSettings,
    stop: CancellationToken,
) {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut roster = Roster::default();
    let mut beat = 0u64;
    let mut tick = tokio::time::interval(s.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(3), peers.leave()).await;
                return;
            }
            _ = tick.tick() => {}
        }
        beat += 1;
        let (down, _) = super::all_phases(&shared, &s.primary);
        let (_, standby_healthy) = super::all_phases(&shared, &s.standby);
        // The probes' own view, not the policy's: a watcher that has acted (or is cooling
        // down) still says what it sees, so that the others can still make their quorum.
        let down_for = shared
            .primary_down_since
            .lock()
            .expect("down since")
            .map(|s| Instant::now().duration_since(s).as_millis() as u64);
        let mine = PeerView {
            watcher: peers.id().to_string(),
            host: host.clone(),
            beat,
            primary_down: down,
            primary_down_for_ms: if down { down_for } else { None },
            standby_healthy,
            at: Utc::now(),
        };
        // Bounded by the store's own timeouts; a slow table makes the view old, and an old
        // view is not acted on.
        let result = match peers.publish(&mine).await {
            Err(e) => Err(format!("publishing this watcher's view: {e}")),
            Ok(()) => peers
                .read()
                .await
                .map_err(|e| format!("reading the watchers' views: {e}")),
        };
        let now = Instant::now();
        let view = match result {
            Ok(views) => {
                roster.observe(&views, now);
                tally(
                    peers.id(),
                    &views,
                    &roster,
                    now,
                    s.peer_timeout,
                    s.confirm_for,
                    s.quorum,
                )
            }
            Err(e) => QuorumView {
                watcher: peers.id().to_string(),
                error: Some(e),
                at: Some(Utc::now()),
                made: Some(now),
                ..QuorumView::default()
            },
        };
        shared.metrics.watchers_live.set(view.live as i64);
        shared.metrics.watchers_agreeing.set(view.agreeing as i64);
        shared.metrics.quorum_needed.set(view.needed as i64);
        *shared.quorum.lock().expect("quorum view") = Some(view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, beat: u64, down_ms: Option<u64>) -> PeerView {
        PeerView {
            watcher: id.into(),
            host: "h".into(),
            beat,
            primary_down: down_ms.is_some(),
            primary_down_for_ms: down_ms,
            standby_healthy: true,
            at: Utc::now(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_watcher_cut_off_alone_is_outvoted_and_all_three_agreeing_is_a_quorum() {
        let mut r = Roster::default();
        let confirm = Duration::from_secs(2);
        let timeout = Duration::from_secs(5);
        // Seen once: b and c are not live until their heartbeats move.
        r.observe(
            &[v("a", 0, None), v("b", 0, None), v("c", 0, None)],
            Instant::now(),
        );
        let first = tally(
            "a",
            &[v("a", 0, None), v("b", 0, None)],
            &r,
            Instant::now(),
            timeout,
            confirm,
            None,
        );
        assert_eq!(first.live, 1);
        let alone = [v("a", 1, Some(3000)), v("b", 1, None), v("c", 1, None)];
        r.observe(&alone, Instant::now());
        let q = tally("a", &alone, &r, Instant::now(), timeout, confirm, None);
        assert_eq!((q.live, q.agreeing, q.needed, q.reached), (3, 1, 2, false));
        // Down, but not yet for confirm_for, does not count.
        let early = [v("a", 2, Some(3000)), v("b", 2, Some(500)), v("c", 2, None)];
        r.observe(&early, Instant::now());
        assert!(!tally("a", &early, &r, Instant::now(), timeout, confirm, None).reached);
        let all = [
            v("a", 3, Some(4000)),
            v("b", 3, Some(2500)),
            v("c", 3, Some(2000)),
        ];
        r.observe(&all, Instant::now());
        let q = tally("a", &all, &r, Instant::now(), timeout, confirm, None);
        assert_eq!((q.live, q.agreeing, q.reached), (3, 3, true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_watcher_stops_counting_and_a_fixed_quorum_is_a_count() {
        let mut r = Roster::default();
        let (confirm, timeout) = (Duration::from_secs(1), Duration::from_secs(5));
        r.observe(
            &[v("a", 0, None), v("b", 0, None), v("c", 6, None)],
            Instant::now(),
        );
        let first = [
            v("a", 1, Some(2000)),
            v("b", 1, Some(2000)),
            v("c", 7, None),
        ];
        r.observe(&first, Instant::now());
        tokio::time::advance(Duration::from_secs(6)).await;
        // c's heartbeat has not moved for 6 s: it is not live; a and b are a majority of two.
        let later = [
            v("a", 2, Some(8000)),
            v("b", 2, Some(8000)),
            v("c", 7, None),
        ];
        r.observe(&later, Instant::now());
        let q = tally("a", &later, &r, Instant::now(), timeout, confirm, None);
        assert_eq!((q.live, q.agreeing, q.needed, q.reached), (2, 2, 2, true));
        // One left of three (the other two lost the table): a majority of the three it saw.
        let lone = [
            v("a", 3, Some(9000)),
            v("b", 2, Some(8000)),
            v("c", 7, None),
        ];
        tokio::time::advance(Duration::from_secs(6)).await;
        r.observe(&lone, Instant::now());
        let q = tally("a", &lone, &r, Instant::now(), timeout, confirm, None);
        assert_eq!((q.live, q.recent, q.needed, q.reached), (1, 3, 2, false));
        // Long silent: c no longer counts toward the size either.
        tokio::time::advance(RECENT).await;
        let much_later = [
            v("a", 5, Some(9000)),
            v("b", 5, Some(9000)),
            v("c", 7, None),
        ];
        r.observe(&much_later, Instant::now());
        let q = tally("a", &much_later, &r, Instant::now(), timeout, confirm, None);
        assert_eq!((q.live, q.recent, q.needed), (2, 2, 2));
        // quorum: 3 asks for three, which two cannot give.
        assert!(!tally("a", &later, &r, Instant::now(), timeout, confirm, Some(3)).reached);
        // Our own view missing from the table: never reached.
        let without_me = [v("b", 3, Some(9000)), v("c", 8, Some(9000))];
        // A watcher that was there before this one started and never moved: not even shown.
        r.observe(&[v("old", 1, Some(99_000))], Instant::now());
        let q = tally(
            "a",
            &[v("a", 4, None), v("old", 1, Some(99_000))],
            &r,
            Instant::now(),
            timeout,
            confirm,
            None,
        );
        assert!(q.watchers.iter().all(|w| w.id != "old"), "{q:?}");
        r.observe(&without_me, Instant::now());
        assert!(!tally("a", &without_me, &r, Instant::now(), timeout, confirm, None).reached);
    }
}
