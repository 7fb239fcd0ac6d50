//! The one writer thread. It owns the only writing connection, takes jobs from a bounded channel, applies
//! as many as are waiting in one transaction (group commit) and answers each job only after that
//! transaction committed. Changes to in-memory state (the consent cache, open visits) are applied after
//! the commit too, so memory never runs ahead of disk.
//!
//! Events are appended; the aggregates of open visits (exit page, counts, last event) are kept here and
//! written to their rows every few seconds, at shutdown and before a purge. Updating a visit row with
//! every event would dirty a random page per event; a visit row is derived data that start-up repairs
//! from the events if the process died before writing it.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::domain::consent::{ConsentCache, ConsentId, ConsentRecord};
use crate::domain::event::NewEvent;
use crate::domain::visits::{self, VISIT_TIMEOUT_SECS, VisitState};
use crate::error::{Error, Result};
use crate::storage::retention::{self, PurgeReport};
use crate::storage::{consents, events};

/// Most jobs committed in one transaction; bounds the latency a batch adds.
const MAX_BATCH: usize = 1024;
/// How stale a visit row may get while its visit is open.
const FLUSH_SECS: i64 = 5;
/// Visits started this recently are repaired from their events after an unclean stop.
const REPAIR_SECS: i64 = 2 * 86_400;

pub enum Op {
    Consent(ConsentRecord),
    Event(Box<NewEvent>),
    Erase(ConsentId),
    Purge {
        cutoff: i64,
        now: i64,
    },
    /// Write the aggregates of open visits now.
    Flush,
    /// Commit what is queued before it, then stop.
    Shutdown,
}

#[derive(Debug)]
pub enum Outcome {
    Done,
    /// Whether the event was stored (an engagement ping with no open visit is not).
    Stored(bool),
    Erased(ErasureReport),
    Purged(PurgeReport),
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ErasureReport {
    pub consent_records: usize,
    pub events: usize,
    pub visits: usize,
}

pub struct Job {
    pub op: Op,
    pub reply: Option<oneshot::Sender<Result<Outcome>>>,
}

type VisitKey = (String, i64);

enum Effect {
    Grant {
        id: ConsentId,
        site: String,
        analytics: bool,
        expires_at: i64,
    },
    Visit {
        key: VisitKey,
        state: VisitState,
    },
    Forget {
        id: ConsentId,
        keys: Vec<VisitKey>,
    },
    Reload {
        now: i64,
    },
}

pub struct Writer {
    conn: Connection,
    cache: Arc<ConsentCache>,
    open_visits: HashMap<VisitKey, VisitState>,
    last_flush: i64,
}

impl Writer {
    pub fn new(conn: Connection, cache: Arc<ConsentCache>, now: i64) -> Result<Writer> {
        let clean: String = conn.query_row(
            "SELECT value FROM meta WHERE key = 'clean_shutdown'",
            [],
            |r| r.get(0),
        )?;
        if clean != "1" {
            let repaired = events::repair_visits(&conn, now - REPAIR_SECS)?;
            tracing::info!(
                repaired,
                "the last run did not stop cleanly; recent visits recomputed from their events"
            );
        }
        conn.execute(
            "UPDATE meta SET value = '0' WHERE key = 'clean_shutdown'",
            [],
        )?;
        cache.replace_all(consents::load_grants(&conn, now)?);
        let open_visits = events::load_open_visits(&conn, now - VISIT_TIMEOUT_SECS)?;
        Ok(Writer {
            conn,
            cache,
            open_visits,
            last_flush: now,
        })
    }

    /// Runs until a `Shutdown` job or until every sender is gone.
    pub fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let stop = batch.iter().any(|j| matches!(j.op, Op::Shutdown));
            self.run_batch(batch);
            if stop {
                rx.close();
                // Jobs that raced the shutdown are still committed, and the visits written.
                let mut rest: Vec<Job> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
                rest.push(Job {
                    op: Op::Flush,
                    reply: None,
                });
                self.run_batch(rest);
                if let Err(e) = self.conn.execute(
                    "UPDATE meta SET value = '1' WHERE key = 'clean_shutdown'",
                    [],
                ) {
                    tracing::error!(error = %e, "could not record the clean stop");
                }
                break;
            }
        }
        tracing::debug!("writer stopped");
    }

    /// Commits a batch in one transaction. If the transaction fails as a whole (one job's error aborts
    /// it), each job is retried in a transaction of its own, so one bad job fails alone; a savepoint per
    /// job would cost two statements on every job of every batch for a case that is rare.
    fn run_batch(&mut self, jobs: Vec<Job>) {
        let now = crate::now();
        let flush = now - self.last_flush >= FLUSH_SECS
            || jobs.iter().any(|j| {
                matches!(
                    j.op,
                    Op::Flush | Op::Erase(_) | Op::Purge { .. } | Op::Shutdown
                )
            });
        let (results, effects) = match self.commit(&jobs, flush) {
            Ok(done) => done,
            Err(e) if jobs.len() > 1 => {
                tracing::warn!(error = %e, jobs = jobs.len(), "batch failed; retrying its jobs one by one");
                for job in jobs {
                    self.run_batch(vec![job]);
                }
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "write failed");
                let answer = match e {
                    Error::Database(_) | Error::Internal(_) => Err(Error::Unavailable(
                        "the write could not be committed".into(),
                    )),
                    other => Err(other),
                };
                if let Some(reply) = jobs.into_iter().next().and_then(|j| j.reply) {
                    let _ = reply.send(answer);
                }
                return;
            }
        };
        if flush {
            self.last_flush = now;
            for v in self.open_visits.values_mut() {
                v.dirty = false;
            }
            // Ended visits are written; they need no tracking any more.
            self.open_visits
                .retain(|_, v| now - v.open.last_at < VISIT_TIMEOUT_SECS);
        }
        for effect in effects {
            self.apply_effect(effect);
        }
        for (job, result) in jobs.into_iter().zip(results) {
            if let Some(reply) = job.reply {
                let _ = reply.send(Ok(result));
            }
        }
    }

    /// Applies and commits every job; the in-memory effects are returned, to be applied after the commit.
    fn commit(&mut self, jobs: &[Job], flush: bool) -> Result<(Vec<Outcome>, Vec<Effect>)> {
        let tx = self.conn.transaction()?;
        if flush {
            for v in self.open_visits.values().filter(|v| v.dirty) {
                events::flush_visit(&tx, v)?;
            }
        }
        let mut effects: Vec<Effect> = Vec::new();
        let mut results = Vec::with_capacity(jobs.len());
        // Visits opened or extended earlier in this batch.
        let mut staged: HashMap<VisitKey, VisitState> = HashMap::new();
        for job in jobs {
            let before = effects.len();
            results.push(apply(
                &tx,
                &job.op,
                &self.open_visits,
                &staged,
                &mut effects,
            )?);
            for e in &effects[before..] {
                if let Effect::Visit { key, state } = e {
                    staged.insert(key.clone(), state.clone());
                }
            }
        }
        tx.commit()?;
        Ok((results, effects))
    }

    fn apply_effect(&mut self, effect: Effect) {
        match effect {
            Effect::Grant {
                id,
                site,
                analytics,
                expires_at,
            } => self.cache.apply(id, &site, analytics, expires_at),
            Effect::Visit { key, state } => {
                self.open_visits.insert(key, state);
            }
            Effect::Forget { id, keys } => {
                self.cache.forget(id);
                for k in keys {
                    self.open_visits.remove(&k);
                }
            }
            Effect::Reload { now } => {
                // Purge may have removed the records behind grants and open visits (all were written
                // before it ran).
                match consents::load_grants(&self.conn, now) {
                    Ok(g) => self.cache.replace_all(g),
                    Err(e) => {
                        tracing::error!(error = %e, "reloading consent grants after purge failed")
                    }
                }
                match events::load_open_visits(&self.conn, now - VISIT_TIMEOUT_SECS) {
                    Ok(v) => self.open_visits = v,
                    Err(e) => {
                        tracing::error!(error = %e, "reloading open visits after purge failed")
                    }
                }
            }
        }
    }
}

fn apply(
    conn: &Connection,
    op: &Op,
    open_visits: &HashMap<VisitKey, VisitState>,
    staged: &HashMap<VisitKey, VisitState>,
    effects: &mut Vec<Effect>,
) -> Result<Outcome> {
    match op {
        Op::Consent(rec) => {
            consents::append(conn, rec)?;
            effects.push(Effect::Grant {
                id: rec.consent_id,
                site: rec.site.clone(),
                analytics: rec.grants_analytics(),
                expires_at: rec.expires_at.unix_timestamp(),
            });
            Ok(Outcome::Done)
        }
        Op::Event(e) => {
            let key = (e.site.clone(), e.visitor);
            let open = staged.get(&key).or_else(|| open_visits.get(&key));
            let state = match open {
                Some(v) if visits::continues(Some(&v.open), e.ts) => {
                    let mut v = v.clone();
                    v.absorb(e);
                    v
                }
                // Engaged time belongs to a page view's visit; alone it makes no visit.
                _ if e.name == "engagement" => return Ok(Outcome::Stored(false)),
                _ => VisitState::first(events::open_visit(conn, e)?, e),
            };
            events::insert_event(conn, state.open.id, e)?;
            effects.push(Effect::Visit { key, state });
            Ok(Outcome::Stored(true))
        }
        Op::Erase(id) => {
            let mut report = ErasureReport::default();
            let keys = consents::visitor_keys(conn, *id)?;
            for (site, visitor) in &keys {
                let (e, v) = events::erase_visitor(conn, site, *visitor)?;
                report.events += e;
                report.visits += v;
            }
            report.consent_records = conn.execute(
                "DELETE FROM consents WHERE consent_id = ?1",
                [id.to_string()],
            )?;
            effects.push(Effect::Forget { id: *id, keys });
            Ok(Outcome::Erased(report))
        }
        Op::Purge { cutoff, now } => {
            let report = retention::purge(conn, *cutoff, false)?;
            if report != PurgeReport::default() {
                effects.push(Effect::Reload { now: *now });
            }
            Ok(Outcome::Purged(report))
        }
        Op::Flush | Op::Shutdown => Ok(Outcome::Done),
    }
}
