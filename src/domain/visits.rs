//! Visitors and visits. A visitor is known only by a pseudonymous key (a hash of the site's secret and the
//! consent id), so erasing a consent id finds its rows while the events table never holds the id itself.
//! A visit ends after 30 minutes without an event, as in Plausible and Matomo.
//!
//! The storage writer keeps the aggregates of open visits here, changed with each event and written to the
//! visit rows in bulk; [`OpenVisits`] is bounded and is only ever a cache of those rows: a visitor missing
//! from it may still have an open visit in the database, which the writer then reads.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::domain::consent::ConsentId;
use crate::domain::event::NewEvent;
use crate::domain::stats::contribution::{Figures, duration};

pub const VISIT_TIMEOUT_SECS: i64 = 30 * 60;

/// The visitor key of a consent id on a site.
pub fn visitor_key(site_secret: &[u8], id: ConsentId) -> i64 {
    let mut h = Sha256::new();
    h.update(site_secret);
    h.update(id.0.to_le_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

/// What the rollups hold of a visit's visit-level figures: written, or waiting in the writer's memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counted {
    pub figures: Figures,
    /// The event whose page was counted as the exit page (0: the row's exit page).
    pub exit_event: i64,
}

/// A visit's aggregates as the writer keeps them. The exit page is kept as the id of the visit's latest
/// page view event (its path is read when the row is written), so an open visit costs a few dozen bytes
/// plus its memory of what it touched.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitState {
    pub id: i64,
    pub started_at: i64,
    /// The local day the visit counts on (the site's time zone).
    pub day: i32,
    /// The number the statistics count its visitor by.
    pub visitor: u32,
    pub first_event: i64,
    pub last_event: i64,
    /// The event whose page is the exit page: the latest page view, or the first event before one.
    pub exit_event: i64,
    pub last_at: i64,
    pub pageviews: i64,
    /// Page views and custom events.
    pub events: i64,
    pub engaged_ms: i64,
    /// Changed since its row was last written.
    pub dirty: bool,
    /// Its visit-level contribution to the rollups so far (None: not counted yet).
    pub counted: Option<Counted>,
    /// Fingerprints of the event dimension values it touched (see `stats::contribution`).
    pub seen: Vec<u64>,
}

impl VisitState {
    /// The state of a visit opened by its first event (stored as `event_id`).
    pub fn first(id: i64, event_id: i64, e: &NewEvent, day: i32, visitor: u32) -> VisitState {
        let pageview = e.name == "pageview";
        VisitState {
            id,
            started_at: e.ts,
            day,
            visitor,
            first_event: event_id,
            last_event: event_id,
            // A visit's exit page is its first event's page until it views a page.
            exit_event: event_id,
            last_at: e.ts,
            pageviews: pageview as i64,
            events: 1,
            engaged_ms: e.engaged_ms.unwrap_or(0),
            dirty: false,
            counted: None,
            seen: Vec::new(),
        }
    }

    /// Whether an event at `ts` belongs to this visit (or starts a new one).
    pub fn continues(&self, ts: i64) -> bool {
        ts - self.last_at < VISIT_TIMEOUT_SECS && ts >= self.last_at - VISIT_TIMEOUT_SECS
    }

    /// Adds an event (stored as `event_id`) that continues the visit.
    pub fn absorb(&mut self, event_id: i64, e: &NewEvent) {
        self.last_at = self.last_at.max(e.ts);
        self.last_event = self.last_event.max(event_id);
        match e.name.as_str() {
            "pageview" => {
                self.pageviews += 1;
                self.events += 1;
                self.exit_event = event_id;
            }
            "engagement" => {}
            _ => self.events += 1,
        }
        self.engaged_ms += e.engaged_ms.unwrap_or(0);
        self.dirty = true;
    }

    /// Whether its row and its figures in the rollups are up to date, so memory may let it go.
    pub fn settled(&self) -> bool {
        !self.dirty
            && self
                .counted
                .is_some_and(|c| c.figures == self.figures() && c.exit_event == self.exit_event)
    }

    pub fn figures(&self) -> Figures {
        Figures {
            pageviews: self.pageviews,
            events: self.events,
            duration: duration(self.engaged_ms, self.started_at, self.last_at),
        }
    }
}

/// A site (as numbered by the writer) and a visitor key.
pub type VisitKey = (u32, i64);

/// Open visits the writer holds in memory at most.
pub const OPEN_VISITS_CAPACITY: usize = 200_000;
/// Values touched (remembered per open visit) the writer holds in memory at most, over all open visits.
pub const SEEN_CAPACITY: usize = 2_000_000;

/// The open visits held in memory, bounded.
pub struct OpenVisits {
    map: HashMap<VisitKey, VisitState>,
    capacity: usize,
    /// Sum of the states' `seen` lengths.
    seen: usize,
    /// Until this time a visitor missing from memory may have an open visit in the database, because
    /// visits were dropped from memory while still open (bounds, a restart, a change made by a command).
    probe_until: i64,
}

impl OpenVisits {
    pub fn new(capacity: usize) -> OpenVisits {
        OpenVisits {
            map: HashMap::new(),
            capacity: capacity.max(1),
            seen: 0,
            probe_until: 0,
        }
    }

    pub fn get(&self, key: &VisitKey) -> Option<&VisitState> {
        self.map.get(key)
    }

    pub fn insert(&mut self, key: VisitKey, state: VisitState) {
        self.seen += state.seen.len();
        if let Some(old) = self.map.insert(key, state) {
            self.seen -= old.seen.len();
        }
    }

    pub fn remove(&mut self, key: &VisitKey) {
        if let Some(old) = self.map.remove(key) {
            self.seen -= old.seen.len();
        }
    }

    fn recount(&mut self) {
        self.seen = self.map.values().map(|v| v.seen.len()).sum();
    }

    /// Every state, for writing them all (erasure and retention look some up by their key).
    pub fn iter(&self) -> impl Iterator<Item = (&VisitKey, &VisitState)> {
        self.map.iter()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether a visitor missing from memory must be looked up in the database at `now`.
    pub fn must_probe(&self, now: i64) -> bool {
        now < self.probe_until
    }

    /// Forgets everything (rows are current or gone); visitors are looked up for a visit's length.
    pub fn forget_all(&mut self, now: i64) {
        self.map.clear();
        self.seen = 0;
        self.probe_until = now + VISIT_TIMEOUT_SECS;
    }

    /// Drops the visits of a site (whose rows are gone, or whose statistics are counted afresh); they are
    /// read back from the database if they continue.
    pub fn forget_site(&mut self, site: u32, now: i64) {
        self.map.retain(|(s, _), _| *s != site);
        self.recount();
        self.probe_until = now + VISIT_TIMEOUT_SECS;
    }

    /// Drops visits of a site that started before `cutoff` (retention deleted their rows).
    pub fn forget_started_before(&mut self, site: u32, cutoff: i64) {
        self.map
            .retain(|(s, _), v| *s != site || v.started_at >= cutoff);
        self.recount();
    }

    pub fn over_capacity(&self) -> bool {
        self.map.len() > self.capacity || self.seen > SEEN_CAPACITY
    }

    pub fn dirty(&self) -> impl Iterator<Item = (&VisitKey, &VisitState)> {
        self.map.iter().filter(|(_, v)| v.dirty)
    }

    pub fn mark_all_clean(&mut self) {
        for v in self.map.values_mut() {
            v.dirty = false;
        }
    }

    /// After the rows were written: drops visits that have ended and, past the bounds, the least
    /// recently active ones (down to 90% of them, so trimming is not repeated with every batch). Visits
    /// not settled (changed since their row and figures were written) stay.
    pub fn trim(&mut self, now: i64) {
        self.map
            .retain(|_, v| !v.settled() || now - v.last_at < VISIT_TIMEOUT_SECS);
        self.recount();
        if !self.over_capacity() {
            return;
        }
        // Keep the most recently active settled visits while they fit in 90% of both bounds.
        let mut settled: Vec<(i64, VisitKey, usize)> = self
            .map
            .iter()
            .filter(|(_, v)| v.settled())
            .map(|(k, v)| (v.last_at, *k, v.seen.len()))
            .collect();
        settled.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        let unsettled = self.map.len() - settled.len();
        let mut seen: usize = self
            .map
            .values()
            .filter(|v| !v.settled())
            .map(|v| v.seen.len())
            .sum();
        let mut fits = settled.len();
        for (i, (_, _, n)) in settled.iter().enumerate() {
            if unsettled + i + 1 > self.capacity * 9 / 10 || seen + n > SEEN_CAPACITY * 9 / 10 {
                fits = i;
                break;
            }
            seen += n;
        }
        for (_, key, _) in &settled[fits..] {
            self.map.remove(key);
        }
        self.recount();
        self.probe_until = now + VISIT_TIMEOUT_SECS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_site_and_id() {
        let a = visitor_key(b"secret-a", ConsentId(1));
        assert_eq!(a, visitor_key(b"secret-a", ConsentId(1)));
        assert_ne!(a, visitor_key(b"secret-b", ConsentId(1)));
        assert_ne!(a, visitor_key(b"secret-a", ConsentId(2)));
    }

    /// A settled state: its row and figures written.
    fn state(id: i64, last_at: i64) -> VisitState {
        let mut v = VisitState {
            id,
            started_at: last_at,
            day: 0,
            visitor: 0,
            first_event: id,
            last_event: id,
            exit_event: id,
            last_at,
            pageviews: 1,
            events: 1,
            engaged_ms: 0,
            dirty: false,
            counted: None,
            seen: Vec::new(),
        };
        v.counted = Some(Counted {
            figures: v.figures(),
            exit_event: v.exit_event,
        });
        v
    }

    #[test]
    fn thirty_minutes_end_a_visit() {
        let v = state(1, 1000);
        assert!(v.continues(1000 + 29 * 60));
        assert!(!v.continues(1000 + 30 * 60));
    }

    #[test]
    fn open_visits_are_bounded_and_then_probed() {
        let mut open = OpenVisits::new(100);
        let now = 1_000_000;
        for i in 0..150 {
            open.insert((0, i), state(i, now - 150 + i));
        }
        open.insert((0, 999), state(999, now - VISIT_TIMEOUT_SECS - 1));
        assert!(open.over_capacity());
        assert!(!open.must_probe(now));
        open.trim(now);
        assert!(open.len() <= 90, "{}", open.len());
        assert!(open.get(&(0, 149)).is_some(), "the most recent stay");
        assert!(open.get(&(0, 0)).is_none(), "the least recent go");
        assert!(open.get(&(0, 999)).is_none(), "ended visits go");
        assert!(open.must_probe(now), "dropped open visits are looked up");
        assert!(!open.must_probe(now + VISIT_TIMEOUT_SECS));
    }
}
