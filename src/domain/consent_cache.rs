//! The consent rule of privacy invariant 2 and the bounded in-memory cache that serves it.
//!
//! An event may be stored only when its consent id's latest record is for the event's site, grants
//! `analytics`, has not expired and was given for the site's current policy revision. [`verdict`] states
//! that rule over the latest record; [`ConsentCache`] remembers the latest record of recently seen ids.
//!
//! The cache is only ever a copy of the log: the storage writer fills it after the records it copies are
//! committed, and a miss means "ask the log", never "refused". It is bounded (two generations of at most
//! half the capacity each: a lookup finds an entry in either, a full current generation replaces the older
//! one), so hostile traffic that mints consent ids cannot grow the server's memory without limit.

use std::collections::HashMap;
use std::sync::RwLock;

/// What the consent check needs of an id's latest consent record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestConsent {
    pub site: String,
    pub revision: u32,
    pub analytics: bool,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Granted,
    Refused(&'static str),
}

/// Privacy invariant 2, over the latest record of a consent id (None: the id has no record).
pub fn verdict(
    latest: Option<&LatestConsent>,
    site: &str,
    current_revision: u32,
    now: i64,
) -> Verdict {
    let Some(l) = latest else {
        return Verdict::Refused("no consent to analytics for this consent id");
    };
    check(
        l.site == site,
        l.analytics,
        l.expires_at,
        l.revision,
        current_revision,
        now,
    )
}

fn check(
    same_site: bool,
    analytics: bool,
    expires_at: i64,
    revision: u32,
    current_revision: u32,
    now: i64,
) -> Verdict {
    if !same_site {
        Verdict::Refused("this consent id belongs to another site")
    } else if !analytics {
        Verdict::Refused("the consent does not grant analytics (refused or withdrawn)")
    } else if expires_at <= now {
        Verdict::Refused("the consent has expired")
    } else if revision != current_revision {
        Verdict::Refused(
            "the consent was given for an older policy revision: the visitor must be asked again",
        )
    } else {
        Verdict::Granted
    }
}

/// What the cache knows of an id: its latest record's verdict, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Known(Verdict),
    Unknown,
}

/// 24 bytes, site ids interned; with its key and the map's spare room, 40 to 90 bytes an entry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    site: u32,
    revision: u32,
    analytics: bool,
    expires_at: i64,
}

#[derive(Default)]
struct Generations {
    current: HashMap<u128, Entry>,
    previous: HashMap<u128, Entry>,
    sites: Vec<String>,
}

impl Generations {
    fn get(&self, id: u128) -> Option<&Entry> {
        self.current.get(&id).or_else(|| self.previous.get(&id))
    }

    fn site_index(&mut self, site: &str) -> u32 {
        match self.sites.iter().position(|s| s == site) {
            Some(i) => i as u32,
            None => {
                self.sites.push(site.to_string());
                (self.sites.len() - 1) as u32
            }
        }
    }
}

pub struct ConsentCache {
    inner: RwLock<Generations>,
    /// Most entries held at once (both generations together).
    capacity: usize,
}

/// Entries the cache holds at most by default: under 10 MB with the hash maps' spare room. A site with more
/// visitors active at once than this answers the others from the database (an index look-up each).
pub const DEFAULT_CAPACITY: usize = 100_000;

impl Default for ConsentCache {
    fn default() -> Self {
        ConsentCache::with_capacity(DEFAULT_CAPACITY)
    }
}

impl ConsentCache {
    pub fn with_capacity(capacity: usize) -> ConsentCache {
        ConsentCache {
            inner: RwLock::new(Generations::default()),
            capacity: capacity.max(2),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Generations> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Generations> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The verdict for an event of `site` under `id`, if the cache knows the id's latest record.
    pub fn lookup(&self, id: u128, site: &str, current_revision: u32, now: i64) -> Lookup {
        let g = self.read();
        match g.get(id) {
            None => Lookup::Unknown,
            Some(e) => Lookup::Known(check(
                g.sites[e.site as usize] == site,
                e.analytics,
                e.expires_at,
                e.revision,
                current_revision,
                now,
            )),
        }
    }

    /// Records the latest (committed) record of an id.
    pub fn remember(&self, id: u128, latest: &LatestConsent) {
        let mut g = self.write();
        let entry = Entry {
            site: g.site_index(&latest.site),
            revision: latest.revision,
            analytics: latest.analytics,
            expires_at: latest.expires_at,
        };
        g.previous.remove(&id);
        g.current.insert(id, entry);
        if g.current.len() >= self.capacity / 2 {
            g.previous = std::mem::take(&mut g.current);
        }
    }

    pub fn forget(&self, id: u128) {
        let mut g = self.write();
        g.current.remove(&id);
        g.previous.remove(&id);
    }

    pub fn forget_all(&self, ids: impl IntoIterator<Item = u128>) {
        let mut g = self.write();
        for id in ids {
            g.current.remove(&id);
            g.previous.remove(&id);
        }
    }

    /// Drops every entry of a site (removed, or removed and added again).
    pub fn forget_site(&self, site: &str) {
        let mut g = self.write();
        if let Some(i) = g.sites.iter().position(|s| s == site) {
            let i = i as u32;
            g.current.retain(|_, e| e.site != i);
            g.previous.retain(|_, e| e.site != i);
        }
    }

    pub fn clear(&self) {
        let mut g = self.write();
        g.current.clear();
        g.previous.clear();
    }

    /// Drops entries that can no longer grant anything.
    pub fn evict_expired(&self, now: i64) {
        let mut g = self.write();
        g.current.retain(|_, e| e.expires_at > now);
        g.previous.retain(|_, e| e.expires_at > now);
    }

    pub fn len(&self) -> usize {
        let g = self.read();
        g.current.len() + g.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest(site: &str, revision: u32, analytics: bool, expires_at: i64) -> LatestConsent {
        LatestConsent {
            site: site.into(),
            revision,
            analytics,
            expires_at,
        }
    }

    #[test]
    fn the_rule() {
        let granted = latest("a", 2, true, 100);
        assert_eq!(verdict(Some(&granted), "a", 2, 50), Verdict::Granted);
        assert_ne!(verdict(None, "a", 2, 50), Verdict::Granted);
        assert_ne!(verdict(Some(&granted), "b", 2, 50), Verdict::Granted);
        assert_ne!(verdict(Some(&granted), "a", 2, 100), Verdict::Granted);
        assert_ne!(
            verdict(Some(&granted), "a", 3, 50),
            Verdict::Granted,
            "a grant from an older revision"
        );
        assert_ne!(
            verdict(Some(&latest("a", 2, false, 100)), "a", 2, 50),
            Verdict::Granted
        );
    }

    #[test]
    fn cache_agrees_with_the_rule_and_forgets() {
        let c = ConsentCache::default();
        assert_eq!(c.lookup(7, "a", 1, 0), Lookup::Unknown);
        c.remember(7, &latest("a", 1, true, 100));
        assert_eq!(c.lookup(7, "a", 1, 50), Lookup::Known(Verdict::Granted));
        assert!(matches!(
            c.lookup(7, "b", 1, 50),
            Lookup::Known(Verdict::Refused(_))
        ));
        assert!(matches!(
            c.lookup(7, "a", 2, 50),
            Lookup::Known(Verdict::Refused(_))
        ));
        c.remember(7, &latest("a", 1, false, 200));
        assert!(matches!(
            c.lookup(7, "a", 1, 50),
            Lookup::Known(Verdict::Refused(_))
        ));
        c.remember(8, &latest("b", 1, true, 100));
        c.forget_site("a");
        assert_eq!(c.lookup(7, "a", 1, 50), Lookup::Unknown);
        assert_eq!(c.lookup(8, "b", 1, 50), Lookup::Known(Verdict::Granted));
        c.evict_expired(100);
        assert!(c.is_empty());
    }

    #[test]
    fn cache_is_bounded() {
        let c = ConsentCache::with_capacity(1000);
        for id in 0..100_000u128 {
            c.remember(id, &latest("a", 1, true, 100));
            assert!(c.len() <= 1000);
        }
        // The most recent entries are still found.
        assert_eq!(c.lookup(99_999, "a", 1, 0), Lookup::Known(Verdict::Granted));
        assert_eq!(c.lookup(0, "a", 1, 0), Lookup::Unknown);
    }
}
