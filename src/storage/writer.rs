//! The one writer thread. It owns the only writing connection, takes jobs from a bounded channel, applies
//! as many as are waiting in one transaction (group commit, one savepoint per job so a bad job fails
//! alone) and answers each job only after that transaction committed. Changes to in-memory state (the
//! consent cache, open visits) are applied after the commit too, so memory never runs ahead of disk.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::domain::consent::{ConsentCache, ConsentId, ConsentRecord};
use crate::domain::event::NewEvent;
use crate::domain::visits::{self, OpenVisit, VISIT_TIMEOUT_SECS};
use crate::error::{Error, Result};
use crate::storage::retention::{self, PurgeReport};
use crate::storage::{consents, events, sites};

/// Most jobs committed in one transaction; bounds the latency a batch adds.
const MAX_BATCH: usize = 1024;

pub enum Op {
    Consent(ConsentRecord),
    Event(Box<NewEvent>),
    Erase(ConsentId),
    Purge {
        cutoff: i64,
        now: i64,
    },
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

enum Effect {
    Grant {
        id: ConsentId,
        site: String,
        analytics: bool,
        expires_at: i64,
    },
    Visit {
        key: (String, i64),
        open: OpenVisit,
    },
    Forget {
        id: ConsentId,
        keys: Vec<(String, i64)>,
    },
    Reload {
        now: i64,
    },
}

pub struct Writer {
    conn: Connection,
    cache: Arc<ConsentCache>,
    open_visits: HashMap<(String, i64), OpenVisit>,
    batches: u64,
}

impl Writer {
    pub fn new(conn: Connection, cache: Arc<ConsentCache>, now: i64) -> Result<Writer> {
        cache.replace_all(consents::load_grants(&conn, now)?);
        let open_visits = events::load_open_visits(&conn, now - VISIT_TIMEOUT_SECS)?;
        Ok(Writer {
            conn,
            cache,
            open_visits,
            batches: 0,
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
                // Jobs that raced the shutdown are still committed.
                let rest: Vec<Job> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
                if !rest.is_empty() {
                    self.run_batch(rest);
                }
                break;
            }
        }
        tracing::debug!("writer stopped");
    }

    /// Commits a batch in one transaction. If the transaction fails as a whole (one job's error aborts
    /// it), each job is retried in a transaction of its own, so one bad job fails alone; savepoints per
    /// job would cost two statements on every job of every batch for a case that is rare.
    fn run_batch(&mut self, jobs: Vec<Job>) {
        let outcome = match self.commit(&jobs) {
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
                let outcome = match e {
                    Error::Database(_) | Error::Internal(_) => Err(Error::Unavailable(
                        "the write could not be committed".into(),
                    )),
                    other => Err(other),
                };
                if let Some(reply) = jobs.into_iter().next().and_then(|j| j.reply) {
                    let _ = reply.send(outcome);
                }
                return;
            }
        };
        let (results, effects) = outcome;
        for effect in effects {
            self.apply_effect(effect);
        }
        self.batches += 1;
        if self.batches.is_multiple_of(256) {
            let now = crate::now();
            self.open_visits
                .retain(|_, v| now - v.last_at < VISIT_TIMEOUT_SECS);
        }
        for (job, result) in jobs.into_iter().zip(results) {
            if let Some(reply) = job.reply {
                let _ = reply.send(Ok(result));
            }
        }
    }

    /// Applies and commits every job; the in-memory effects are returned, to be applied after the commit.
    fn commit(&mut self, jobs: &[Job]) -> Result<(Vec<Outcome>, Vec<Effect>)> {
        let tx = self.conn.transaction()?;
        let mut effects: Vec<Effect> = Vec::new();
        let mut results = Vec::with_capacity(jobs.len());
        // Visits opened or extended earlier in this batch.
        let mut staged: HashMap<(String, i64), OpenVisit> = HashMap::new();
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
                if let Effect::Visit { key, open } = e {
                    staged.insert(key.clone(), *open);
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
            Effect::Visit { key, open } => {
                self.open_visits.insert(key, open);
            }
            Effect::Forget { id, keys } => {
                self.cache.forget(id);
                for k in keys {
                    self.open_visits.remove(&k);
                }
            }
            Effect::Reload { now } => {
                // Purge may have removed the records behind grants and open visits.
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
    open_visits: &HashMap<(String, i64), OpenVisit>,
    staged: &HashMap<(String, i64), OpenVisit>,
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
            let visit_id = if visits::continues(open, e.ts) {
                // continues() is only true for Some.
                let v = open.map(|v| v.id).unwrap_or_default();
                events::extend_visit(conn, v, e)?;
                v
            } else if e.name == "engagement" {
                // Engaged time belongs to a page view's visit; alone it makes no visit.
                return Ok(Outcome::Stored(false));
            } else {
                events::open_visit(conn, e)?
            };
            events::insert_event(conn, visit_id, e)?;
            let last_at = open.map_or(e.ts, |v| v.last_at.max(e.ts));
            effects.push(Effect::Visit {
                key,
                open: OpenVisit {
                    id: visit_id,
                    last_at,
                },
            });
            Ok(Outcome::Stored(true))
        }
        Op::Erase(id) => {
            let mut report = ErasureReport::default();
            let mut keys = Vec::new();
            for site in consents::sites_of(conn, *id)? {
                if let Some(row) = sites::get(conn, &site)? {
                    let visitor = visits::visitor_key(&row.secret, *id);
                    let (e, v) = events::erase_visitor(conn, &site, visitor)?;
                    report.events += e;
                    report.visits += v;
                    keys.push((site, visitor));
                }
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
            effects.push(Effect::Reload { now: *now });
            Ok(Outcome::Purged(report))
        }
        Op::Shutdown => Ok(Outcome::Done),
    }
}
