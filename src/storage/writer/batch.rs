//! One batch of the writer: the jobs applied inside one transaction, and what memory must learn of them
//! once it commits. Visits changed by the batch are staged here (copies of the open visits they continue),
//! and consent ids the batch changed are looked up in the log itself, which inside the transaction shows
//! the batch's own records: an event queued behind an erasure or a withdrawal of its id is refused.
//! Rollup changes the batch makes are gathered here too, and written with the visit rows when the batch
//! flushes (see `counting`).

use std::collections::{HashMap, HashSet};

use super::counting;
use super::{EventOutcome, Op, Outcome, WriterSite};
use crate::domain::consent::{ConsentId, ConsentRecord};
use crate::domain::consent_cache::{ConsentCache, LatestConsent, Lookup, Verdict, verdict};
use crate::domain::event::NewEvent;
use crate::domain::stats::contribution::{self, Deltas};
use crate::domain::visits::{OpenVisits, VisitKey, VisitState, visitor_key};
use crate::error::{Error, Result};
use crate::storage::receipts::{self, Receipt};
use crate::storage::retention::SiteCut;
use crate::storage::sql::Conn;
use crate::storage::writer::ErasureReport;
use crate::storage::{consents, events, retention, rollups, scrub, visits};

/// Changes to in-memory state, applied in order once the batch committed.
pub(super) enum Effect {
    /// The latest record of a consent id, newly appended or read from the log.
    Remember(u128, LatestConsent),
    /// An erased consent id and the visit keys it had.
    ForgetConsent(u128, Vec<VisitKey>),
    /// Retention ran: the ids that lost records, and where each site was cut.
    Purged {
        consent_ids: Vec<u128>,
        cuts: Vec<(u32, i64)>,
        now: i64,
    },
}

/// What a committed batch leaves for memory.
pub(super) struct Committed {
    pub staged: HashMap<VisitKey, VisitState>,
    pub effects: Vec<Effect>,
    /// Every open visit's row was written in the batch, and the writer's gathered rollup changes.
    pub flushed: bool,
    /// Every event up to this one is reflected in visit rows and rollups (the last flush's watermark).
    pub flushed_through: Option<i64>,
    /// Rollup changes gathered after the batch's last flush.
    pub deltas: Deltas,
    /// Personal data was deleted (the write-ahead log still holds it until a checkpoint).
    pub deleted: bool,
}

pub(super) struct Batch<'a> {
    conn: Conn<'a>,
    now: i64,
    sites: &'a HashMap<String, WriterSite>,
    cache: &'a ConsentCache,
    open: &'a OpenVisits,
    /// Rollup changes of earlier batches, waiting to be written.
    pending: &'a Deltas,
    /// Rollup changes of this batch, not yet written.
    deltas: Deltas,
    next_event: i64,
    staged: HashMap<VisitKey, VisitState>,
    /// Consent ids whose records this batch appended or deleted: only the log knows their state.
    touched: HashSet<u128>,
    /// Latest records read from the log in this batch, for ids not touched.
    looked_up: HashMap<u128, Option<LatestConsent>>,
    flushed: bool,
    flushed_through: Option<i64>,
    effects: Vec<Effect>,
    /// Personal data was deleted (an erasure or retention): the write-ahead log must be checkpointed.
    deleted: bool,
    /// Events applied but not inserted yet: they are written a group per statement (one round trip on
    /// PostgreSQL instead of one each) before anything in the transaction reads the events table, and
    /// before it commits (see [`Batch::write_events`]).
    unwritten: Vec<events::NewRow<'a>>,
}

impl<'a> Batch<'a> {
    pub fn new(
        mut conn: Conn<'a>,
        now: i64,
        sites: &'a HashMap<String, WriterSite>,
        cache: &'a ConsentCache,
        open: &'a OpenVisits,
        pending: &'a Deltas,
    ) -> Result<Batch<'a>> {
        let next_event = events::next_id(&mut conn)?;
        Ok(Batch {
            conn,
            now,
            sites,
            cache,
            open,
            pending,
            deltas: Deltas::default(),
            next_event,
            staged: HashMap::new(),
            touched: HashSet::new(),
            looked_up: HashMap::new(),
            flushed: false,
            flushed_through: None,
            effects: Vec::new(),
            deleted: false,
            unwritten: Vec::new(),
        })
    }

    /// Inserts the events applied so far. Called before every read of the events table in the batch (the
    /// visit rows' exit pages, a visit's events read back, erasure, retention) and by [`Batch::finish`].
    fn write_events(&mut self) -> Result<()> {
        if !self.unwritten.is_empty() {
            events::insert_all(&mut self.conn, &self.unwritten)?;
            self.unwritten.clear();
        }
        Ok(())
    }

    pub fn last_event(&self) -> i64 {
        self.next_event - 1
    }

    fn site_name(&self, num: u32) -> &str {
        self.sites
            .iter()
            .find(|(_, s)| s.num == num)
            .map(|(n, _)| n.as_str())
            .unwrap_or("")
    }

    /// Writes every changed visit's row, counts their visit-level figures, and writes every gathered
    /// rollup change.
    pub fn flush_all(&mut self) -> Result<()> {
        self.flush_where(|_| true)?;
        if !self.flushed {
            rollups::apply(&mut self.conn, self.pending)?;
        }
        rollups::apply(&mut self.conn, &self.deltas)?;
        self.deltas = Deltas::default();
        self.flushed = true;
        self.flushed_through = Some(self.last_event());
        Ok(())
    }

    /// Writes the rows of the changed visits that `which` selects and counts their figures; the states
    /// are staged (clean) so memory learns it once the batch commits.
    fn flush_where(&mut self, which: impl Fn(&VisitState) -> bool) -> Result<()> {
        // The rows' exit pages and the counts read the events.
        self.write_events()?;
        let needs = |v: &VisitState| v.dirty || v.counted.is_none_or(|c| c.figures != v.figures());
        let mut from_open = Vec::new();
        for (key, v) in self.open.iter() {
            if !self.staged.contains_key(key) && needs(v) && which(v) {
                from_open.push((*key, v.clone()));
            }
        }
        self.staged.extend(from_open);
        let keys: Vec<VisitKey> = self
            .staged
            .iter()
            .filter(|(_, v)| needs(v) && which(v))
            .map(|(k, _)| *k)
            .collect();
        // Rows first, a group per statement; then each visit's figures, counted from its row.
        let dirty: Vec<&VisitState> = keys
            .iter()
            .filter_map(|k| self.staged.get(k))
            .filter(|v| v.dirty)
            .collect();
        visits::write_all(&mut self.conn, &dirty)?;
        let read = counting::ReadAhead::read(
            &mut self.conn,
            keys.iter().filter_map(|k| self.staged.get(k)),
        )?;
        for key in keys {
            let site = self.site_name(key.0).to_string();
            let Some(v) = self.staged.get_mut(&key) else {
                continue;
            };
            v.dirty = false;
            counting::count_visit(&mut self.deltas, &site, v, &read);
        }
        Ok(())
    }

    /// Writes what is left to write and says what memory must learn once the transaction commits.
    pub fn finish(mut self) -> Result<Committed> {
        self.write_events()?;
        Ok(Committed {
            flushed_through: self.flushed_through,
            staged: self.staged,
            effects: self.effects,
            flushed: self.flushed,
            deltas: self.deltas,
            deleted: self.deleted,
        })
    }

    /// Applies one job. The outer error aborts the batch (the database failed); the inner one is the
    /// job's own answer (a 4xx).
    pub fn apply(&mut self, op: &'a Op) -> Result<Result<Outcome>> {
        // Only events leave their rows unwritten: every other job finds the events table complete.
        if !matches!(op, Op::Event { .. }) {
            self.write_events()?;
        }
        match op {
            Op::Consent(rec) => self.consent(rec),
            Op::Event { consent_id, event } => {
                Ok(Ok(Outcome::Event(self.event(*consent_id, event)?)))
            }
            Op::Erase(id) => Ok(Ok(Outcome::Erased(self.erase(*id)?))),
            Op::Purge { cutoff, now } => {
                // Everything counted is written first: retention then deletes rows and rollups alike.
                self.flush_all()?;
                let cuts: Vec<SiteCut> = self
                    .sites
                    .iter()
                    .map(|(name, s)| SiteCut::new(name, s.zone, *cutoff))
                    .collect();
                let purged = retention::purge(&mut self.conn, *cutoff, &cuts, false)?;
                let by_num: Vec<(u32, i64)> = cuts
                    .iter()
                    .filter_map(|c| self.sites.get(&c.site).map(|s| (s.num, c.visits_before)))
                    .collect();
                self.staged.retain(|(num, _), v| {
                    by_num
                        .iter()
                        .all(|(n, before)| n != num || v.started_at >= *before)
                });
                if purged.report != retention::PurgeReport::default() {
                    self.deleted = true;
                }
                self.touched.extend(purged.consent_ids.iter().copied());
                self.effects.push(Effect::Purged {
                    consent_ids: purged.consent_ids,
                    cuts: by_num,
                    now: *now,
                });
                Ok(Ok(Outcome::Purged(purged.report, purged.more)))
            }
            // Whatever was stored before this job, in this batch or earlier, is written.
            Op::Flush | Op::Shutdown => {
                self.flush_all()?;
                Ok(Ok(Outcome::Done))
            }
            Op::Receipt(receipt) => {
                receipts::insert(&mut self.conn, receipt)?;
                Ok(Ok(Outcome::Done))
            }
            // Pages are SQLite's: PostgreSQL gets no scrub jobs (see `Store::purge`).
            Op::Scrub(pages) => Ok(Ok(Outcome::Scrubbed(match &self.conn {
                Conn::Lite(c) => scrub::apply(c, pages)?,
                Conn::Pg(_) => scrub::Applied::default(),
            }))),
            // The checkpoint follows the commit (see `Writer::run_batch`).
            Op::Checkpoint => Ok(Ok(Outcome::Done)),
            Op::Crash => Ok(Ok(Outcome::Done)),
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
        consents::append(&mut self.conn, rec)?;
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
        let latest = consents::latest_state(&mut self.conn, id)?;
        if !touched {
            if let Some(l) = &latest {
                self.effects.push(Effect::Remember(id.0, l.clone()));
            }
            self.looked_up.insert(id.0, latest.clone());
        }
        Ok(verdict(latest.as_ref(), site, revision, self.now))
    }

    fn event(&mut self, consent_id: ConsentId, e: &'a NewEvent) -> Result<EventOutcome> {
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
                match visits::open_of(&mut self.conn, &e.site, visitor, self.now)? {
                    Some(sv) => {
                        // Its state is read back from its events. None of them is this batch's (the
                        // visit would be staged), but no read of the events table runs ahead of the
                        // batch's inserts: the rule stays simple to check.
                        self.write_events()?;
                        Some(counting::state_of(&mut self.conn, &sv, site)?)
                    }
                    None => None,
                }
            }
            None => None,
        };
        let event_id = self.next_event;
        let mut state = match current {
            Some(mut v) if v.continues(e.ts) => {
                // Engaged time counts for a page its visit viewed; any other is not stored.
                if counting::is_engagement(e) && !counting::viewed(&v, &e.path) {
                    return Ok(EventOutcome::Dropped);
                }
                v.absorb(event_id, e);
                self.unwritten.push((event_id, v.id, e));
                v
            }
            // Engaged time belongs to a page view's visit; alone it makes no visit.
            _ if counting::is_engagement(e) => return Ok(EventOutcome::Dropped),
            ended => {
                // The visit this one follows leaves memory: its row and figures are written first.
                if let Some(mut old) = ended {
                    // Its row's exit page and its count read its events.
                    self.write_events()?;
                    if old.dirty {
                        visits::write(&mut self.conn, &old)?;
                        old.dirty = false;
                    }
                    let read = counting::ReadAhead::read(&mut self.conn, [&old])?;
                    counting::count_visit(&mut self.deltas, &e.site, &mut old, &read);
                }
                let visit = visits::insert(&mut self.conn, e, visitor, event_id)?;
                self.unwritten.push((event_id, visit, e));
                let day = site.zone.day(e.ts);
                let number = contribution::visitor_number(site.salt, visitor);
                VisitState::first(visit, event_id, e, day, number)
            }
        };
        contribution::event(
            &mut self.deltas,
            &e.site,
            state.day,
            state.visitor,
            &counting::event_ref(e),
            &mut state.seen,
            1,
        );
        self.next_event += 1;
        self.staged.insert(key, state);
        Ok(EventOutcome::Stored)
    }

    /// Erases every row derived from a consent id (privacy invariant 5): on every site, the visits of the
    /// visitor key the id has there and the events in those visits' ranges, then the consent records.
    fn erase(&mut self, id: ConsentId) -> Result<ErasureReport> {
        // The rollups are brought up to date with the rows, and what the erased visits counted is taken out
        // of them in this same transaction: a crash right after cannot bring any of it back.
        self.flush_all()?;
        let mut gone = Deltas::default();
        let mut report = ErasureReport::default();
        let mut keys = Vec::new();
        // Rows removed per site, for the receipts: (site, consent records, visits, events).
        let mut per_site: Vec<(&str, usize, usize, usize)> = Vec::new();
        for (name, site) in self.sites {
            let before = (report.visits, report.events);
            let visitor = visitor_key(&site.secret, id);
            let key = (site.num, visitor);
            // An open visit's row may not show its latest events yet; memory does.
            let held = self
                .staged
                .get(&key)
                .or_else(|| self.open.get(&key))
                .cloned();
            for sv in visits::stored_of_visitor(&mut self.conn, name, visitor)? {
                let held = held.as_ref().filter(|v| v.id == sv.id);
                let last = held.map_or(sv.last_event, |v| v.last_event.max(sv.last_event));
                let evs = events::of_visit(&mut self.conn, sv.id, sv.first_event, last)?;
                counting::uncount_visit(&mut gone, &sv, site, held, &evs)?;
                report.events +=
                    events::delete_of_visit(&mut self.conn, sv.id, sv.first_event, last)?;
            }
            report.visits += visits::delete_of_visitor(&mut self.conn, name, visitor)?;
            self.staged.remove(&key);
            keys.push(key);
            per_site.push((name, 0, report.visits - before.0, report.events - before.1));
        }
        rollups::apply(&mut self.conn, &gone)?;
        for (site, records) in receipts::delete_consents_by_site(&mut self.conn, id)? {
            report.consent_records += records;
            match per_site.iter_mut().find(|s| s.0 == site) {
                Some(s) => s.1 += records,
                // Records of a site removed since: still counted, under its name.
                None => receipts::insert(
                    &mut self.conn,
                    &Receipt::erasure(self.now, &site, records, 0, 0),
                )?,
            }
        }
        for (site, records, visits, events) in per_site {
            let receipt = Receipt::erasure(self.now, site, records, visits, events);
            if !receipt.is_empty() {
                receipts::insert(&mut self.conn, &receipt)?;
            }
        }
        if !report.is_empty() {
            self.deleted = true;
        }
        self.touched.insert(id.0);
        self.effects.push(Effect::ForgetConsent(id.0, keys));
        Ok(report)
    }
}
