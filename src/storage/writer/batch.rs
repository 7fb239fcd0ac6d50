//! One batch of the writer: the jobs applied inside one transaction, and what memory must learn of them
//! once it commits. Visits changed by the batch are staged here (copies of the open visits they continue),
//! and consent ids the batch changed are looked up in the log itself, which inside the transaction shows
//! the batch's own records: an event queued behind an erasure or a withdrawal of its id is refused.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use super::{EventOutcome, Op, Outcome, WriterSite};
use crate::domain::consent::{ConsentId, ConsentRecord};
use crate::domain::consent_cache::{ConsentCache, LatestConsent, Lookup, Verdict, verdict};
use crate::domain::event::NewEvent;
use crate::domain::visits::{OpenVisits, VisitKey, VisitState, visitor_key};
use crate::error::{Error, Result};
use crate::storage::writer::ErasureReport;
use crate::storage::{consents, events, retention, visits};

/// Changes to in-memory state, applied in order once the batch committed.
pub(super) enum Effect {
    /// The latest record of a consent id, newly appended or read from the log.
    Remember(u128, LatestConsent),
    /// An erased consent id and the visit keys it had.
    ForgetConsent(u128, Vec<VisitKey>),
    /// Retention ran: the ids that lost records, and the cut-off.
    Purged {
        consent_ids: Vec<u128>,
        cutoff: i64,
        now: i64,
    },
}

/// What a committed batch leaves for memory.
pub(super) struct Committed {
    pub staged: HashMap<VisitKey, VisitState>,
    pub effects: Vec<Effect>,
    /// Every open visit's row was written in the batch.
    pub flushed: bool,
    pub last_event: i64,
}

pub(super) struct Batch<'a> {
    conn: &'a Connection,
    now: i64,
    sites: &'a HashMap<String, WriterSite>,
    cache: &'a ConsentCache,
    open: &'a OpenVisits,
    next_event: i64,
    staged: HashMap<VisitKey, VisitState>,
    /// Consent ids whose records this batch appended or deleted: only the log knows their state.
    touched: HashSet<u128>,
    /// Latest records read from the log in this batch, for ids not touched.
    looked_up: HashMap<u128, Option<LatestConsent>>,
    flushed: bool,
    effects: Vec<Effect>,
}

impl<'a> Batch<'a> {
    pub fn new(
        conn: &'a Connection,
        now: i64,
        sites: &'a HashMap<String, WriterSite>,
        cache: &'a ConsentCache,
        open: &'a OpenVisits,
    ) -> Result<Batch<'a>> {
        Ok(Batch {
            conn,
            now,
            sites,
            cache,
            open,
            next_event: events::max_id(conn)? + 1,
            staged: HashMap::new(),
            touched: HashSet::new(),
            looked_up: HashMap::new(),
            flushed: false,
            effects: Vec::new(),
        })
    }

    pub fn last_event(&self) -> i64 {
        self.next_event - 1
    }

    /// Writes every changed visit's aggregates to its row.
    pub fn flush_all(&mut self) -> Result<()> {
        for v in self.staged.values_mut().filter(|v| v.dirty) {
            visits::write(self.conn, v)?;
            v.dirty = false;
        }
        for (key, v) in self.open.dirty() {
            if !self.staged.contains_key(key) {
                visits::write(self.conn, v)?;
            }
        }
        self.flushed = true;
        Ok(())
    }

    /// Writes the changed visits that started before `cutoff`.
    fn flush_started_before(&mut self, cutoff: i64) -> Result<()> {
        for v in self.staged.values_mut() {
            if v.dirty && v.started_at < cutoff {
                visits::write(self.conn, v)?;
                v.dirty = false;
            }
        }
        let mut written = Vec::new();
        for (key, v) in self.open.dirty() {
            if v.started_at < cutoff && !self.staged.contains_key(key) {
                visits::write(self.conn, v)?;
                written.push((*key, v.clone()));
            }
        }
        // Staged clean, so memory knows they were written once the batch commits.
        for (key, mut v) in written {
            v.dirty = false;
            self.staged.insert(key, v);
        }
        Ok(())
    }

    pub fn finish(self) -> Committed {
        Committed {
            last_event: self.last_event(),
            staged: self.staged,
            effects: self.effects,
            flushed: self.flushed,
        }
    }

    /// Applies one job. The outer error aborts the batch (the database failed); the inner one is the
    /// job's own answer (a 4xx).
    pub fn apply(&mut self, op: &Op) -> Result<Result<Outcome>> {
        match op {
            Op::Consent(rec) => self.consent(rec),
            Op::Event { consent_id, event } => {
                Ok(Ok(Outcome::Event(self.event(*consent_id, event)?)))
            }
            Op::Erase(id) => Ok(Ok(Outcome::Erased(self.erase(*id)?))),
            Op::Purge { cutoff, now } => {
                // The rows of visits about to go must show where their events end.
                self.flush_started_before(*cutoff)?;
                let purged = retention::purge(self.conn, *cutoff, false)?;
                self.staged.retain(|_, v| v.started_at >= *cutoff);
                self.touched.extend(purged.consent_ids.iter().copied());
                self.effects.push(Effect::Purged {
                    consent_ids: purged.consent_ids,
                    cutoff: *cutoff,
                    now: *now,
                });
                Ok(Ok(Outcome::Purged(purged.report, purged.more)))
            }
            Op::Flush | Op::Shutdown | Op::Crash => Ok(Ok(Outcome::Done)),
        }
    }

    fn consent(&mut self, rec: &ConsentRecord) -> Result<Result<Outcome>> {
        let Some(site) = self.sites.get(&rec.site) else {
            return Ok(Err(Error::NotFound(format!("unknown site {:?}", rec.site))));
        };
        if rec.revision != site.revision {
            return Ok(Err(Error::Conflict(format!(
                "revision {} is not the site's current policy revision {}: show the current banner",
                rec.revision, site.revision
            ))));
        }
        consents::append(self.conn, rec)?;
        let id = rec.consent_id.0;
        self.touched.insert(id);
        self.effects.push(Effect::Remember(id, rec.latest()));
        Ok(Ok(Outcome::Done))
    }

    /// Privacy invariant 2 for an event of `site` under `id`.
    fn verdict(&mut self, id: ConsentId, site: &str, revision: u32) -> Result<Verdict> {
        let touched = self.touched.contains(&id.0);
        if !touched {
            if let Lookup::Known(v) = self.cache.lookup(id.0, site, revision, self.now) {
                return Ok(v);
            }
            if let Some(latest) = self.looked_up.get(&id.0) {
                return Ok(verdict(latest.as_ref(), site, revision, self.now));
            }
        }
        let latest = consents::latest_state(self.conn, id)?;
        if !touched {
            if let Some(l) = &latest {
                self.effects.push(Effect::Remember(id.0, l.clone()));
            }
            self.looked_up.insert(id.0, latest.clone());
        }
        Ok(verdict(latest.as_ref(), site, revision, self.now))
    }

    fn event(&mut self, consent_id: ConsentId, e: &NewEvent) -> Result<EventOutcome> {
        let Some(site) = self.sites.get(&e.site) else {
            return Ok(EventOutcome::UnknownSite);
        };
        if let Verdict::Refused(why) = self.verdict(consent_id, &e.site, site.revision)? {
            return Ok(EventOutcome::Refused(why));
        }
        let visitor = visitor_key(&site.secret, consent_id);
        let key = (site.num, visitor);
        let current = match self.staged.get(&key).or_else(|| self.open.get(&key)) {
            Some(v) => Some(v.clone()),
            None if self.open.must_probe(self.now) => {
                visits::open_of(self.conn, &e.site, visitor, self.now)?
            }
            None => None,
        };
        let event_id = self.next_event;
        let state = match current {
            Some(mut v) if v.continues(e.ts) => {
                v.absorb(event_id, e);
                events::insert(self.conn, event_id, v.id, visitor, e)?;
                v
            }
            // Engaged time belongs to a page view's visit; alone it makes no visit.
            _ if e.name == "engagement" => return Ok(EventOutcome::Dropped),
            _ => {
                let visit = visits::insert(self.conn, e, visitor, event_id)?;
                events::insert(self.conn, event_id, visit, visitor, e)?;
                VisitState::first(visit, event_id, e)
            }
        };
        self.next_event += 1;
        self.staged.insert(key, state);
        Ok(EventOutcome::Stored)
    }

    /// Erases every row derived from a consent id (privacy invariant 5): on every site, the visits of the
    /// visitor key the id has there and the events in those visits' ranges, then the consent records.
    fn erase(&mut self, id: ConsentId) -> Result<ErasureReport> {
        let mut report = ErasureReport::default();
        let mut keys = Vec::new();
        for (name, site) in self.sites {
            let visitor = visitor_key(&site.secret, id);
            let key = (site.num, visitor);
            // An open visit's row may not show its latest events yet; memory does.
            let held = self.staged.get(&key).or_else(|| self.open.get(&key));
            for r in visits::ranges_of(self.conn, name, visitor)? {
                let last = match held {
                    Some(v) if v.id == r.visit => v.last_event.max(r.last_event),
                    _ => r.last_event,
                };
                report.events += events::delete_of_visit(self.conn, r.visit, r.first_event, last)?;
            }
            report.visits += visits::delete_of_visitor(self.conn, name, visitor)?;
            self.staged.remove(&key);
            keys.push(key);
        }
        report.consent_records = consents::delete_of(self.conn, id)?;
        self.touched.insert(id.0);
        self.effects.push(Effect::ForgetConsent(id.0, keys));
        Ok(report)
    }
}
