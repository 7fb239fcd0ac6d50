//! Visitors and visits. A visitor is known only by a pseudonymous key (a hash of the site's secret and the
//! consent id), so erasing a consent id finds its rows while the events table never holds the id itself.
//! A visit ends after 30 minutes without an event, as in Plausible and Matomo.

use sha2::{Digest, Sha256};

use crate::domain::consent::ConsentId;
use crate::domain::event::NewEvent;

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

/// The part of an open visit that decides whether the next event continues it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenVisit {
    pub id: i64,
    pub last_at: i64,
}

/// Whether an event at `ts` belongs to `open` (or starts a new visit).
pub fn continues(open: Option<&OpenVisit>, ts: i64) -> bool {
    open.is_some_and(|v| {
        ts - v.last_at < VISIT_TIMEOUT_SECS && ts >= v.last_at - VISIT_TIMEOUT_SECS
    })
}

/// What the writer keeps of an open visit: its aggregates, changed in memory with each event and written
/// to the visit row in bulk (`dirty` until then). Events are durable on their own; a visit row is derived
/// from its events and repaired from them after a crash.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitState {
    pub open: OpenVisit,
    pub exit_page: String,
    pub pageviews: i64,
    pub events: i64,
    pub engaged_ms: i64,
    pub dirty: bool,
}

impl VisitState {
    /// The state of a visit opened by its first event.
    pub fn first(id: i64, e: &NewEvent) -> VisitState {
        VisitState {
            open: OpenVisit { id, last_at: e.ts },
            exit_page: e.path.clone(),
            pageviews: (e.name == "pageview") as i64,
            events: 1,
            engaged_ms: e.engaged_ms.unwrap_or(0),
            dirty: false,
        }
    }

    /// Adds an event that continues the visit.
    pub fn absorb(&mut self, e: &NewEvent) {
        self.open.last_at = self.open.last_at.max(e.ts);
        if e.name == "pageview" {
            self.pageviews += 1;
            self.exit_page = e.path.clone();
        }
        self.events += 1;
        self.engaged_ms += e.engaged_ms.unwrap_or(0);
        self.dirty = true;
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

    #[test]
    fn thirty_minutes_end_a_visit() {
        let v = OpenVisit {
            id: 1,
            last_at: 1000,
        };
        assert!(continues(Some(&v), 1000 + 29 * 60));
        assert!(!continues(Some(&v), 1000 + 30 * 60));
        assert!(!continues(None, 1000));
    }
}
