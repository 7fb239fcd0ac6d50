//! The one writer thread. It owns the only writing connection, takes jobs from a bounded channel, applies
//! as many as are waiting in one transaction (group commit) and answers each job only after that
//! transaction committed.
//!
//! It also makes the decisions that must agree with the log: whether an event's consent lets it in
//! (privacy invariant 2, decided against the consent cache plus the batch's own effects, or the log itself)
//! and which visit it belongs to. The in-memory state it keeps (the consent cache, open visits) is only a
//! copy of committed rows: changes are applied after the commit, and whatever other processes change
//! (`assent site remove`, `assent purge`) is noticed at the start of the next batch, inside its
//! transaction, by counters those commands move.
//!
//! On PostgreSQL several instances may write one database. Their writers take turns: each transaction
//! first takes a lock all writers share (`pg_advisory_xact_lock`), then reads which instance wrote last.
//! If another did, everything this writer holds in memory may be stale (a visit continued there, a
//! consent withdrawn or erased there), so it is dropped and read back from the rows as needed; and every
//! transaction writes its visits and rollups whole, so the rows are all the next writer needs. A
//! decision against the log is therefore as current as on one instance, at the price of one writer at a
//! time across instances (group commit still batches each instance's jobs).

mod batch;
mod catch_up;
mod counting;
mod health;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
mod turns;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::args;
use crate::domain::consent::{ConsentId, ConsentRecord};
use crate::domain::consent_cache::ConsentCache;
use crate::domain::event::NewEvent;
use crate::domain::stats::contribution::Deltas;
use crate::domain::stats::period::Zone;
use crate::domain::visits::{OPEN_VISITS_CAPACITY, OpenVisits};
use crate::error::{Error, Result};
use crate::storage::engine::Owned;
use crate::storage::retention::PurgeReport;
use crate::storage::scrub::{Applied, DirtyPage};
use crate::storage::sites::{self, Generations};
use crate::storage::sql::Conn;
use crate::storage::{db, events};
use batch::{Batch, Committed, Effect};
use health::AliveGuard;
pub use health::WriterHealth;
pub(crate) use turns::{record_turn, wait_for_turn};

/// Most jobs committed in one transaction; bounds the latency a batch adds.
const MAX_BATCH: usize = 1024;
/// How stale a visit row may get while its visit is open.
const FLUSH_SECS: i64 = 5;
/// The advisory lock every instance's writer holds for the length of each transaction on PostgreSQL.
const WRITERS_LOCK: i64 = 0x4153_5345_4e54_5752; // "ASSENTWR"

/// How long writes must keep succeeding after a storage failure before the writer says it is over.
const RECOVERED_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

pub enum Op {
    Consent(ConsentRecord),
    Event {
        consent_id: ConsentId,
        event: Box<NewEvent>,
    },
    Erase(ConsentId),
    /// One slice of retention (see `retention::SLICE`).
    Purge {
        cutoff: i64,
        now: i64,
    },
    /// Stores a receipt (of a retention run).
    Receipt(crate::storage::receipts::Receipt),
    /// Zeroes the unused space of these pages where they are still as planned (see `storage::scrub`).
    Scrub(Vec<DirtyPage>),
    /// Checkpoints the write-ahead log into the database and truncates it, once the batch commits.
    Checkpoint,
    /// Write the aggregates of open visits now.
    Flush,
    /// Commit what is queued before it, then stop.
    Shutdown,
    /// Makes the writer thread panic: how the tests show that a dead writer is reported.
    #[doc(hidden)]
    Crash,
}

#[derive(Debug)]
pub enum Outcome {
    Done,
    Event(EventOutcome),
    Erased(ErasureReport),
    /// One slice of retention, and whether more is left.
    Purged(PurgeReport, bool),
    Scrubbed(Applied),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Stored,
    /// Engaged time with no open visit to add it to: answered, not stored.
    Dropped,
    Refused(&'static str),
    UnknownSite,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ErasureReport {
    pub consent_records: usize,
    pub events: usize,
    pub visits: usize,
}

impl ErasureReport {
    pub fn is_empty(&self) -> bool {
        self.consent_records == 0 && self.events == 0 && self.visits == 0
    }
}

pub struct Job {
    pub op: Op,
    pub reply: Option<oneshot::Sender<Result<Outcome>>>,
}

/// What the writer knows of a site.
pub(crate) struct WriterSite {
    /// A number of the writer's own, for compact visit keys; a site removed and added again gets a new one.
    num: u32,
    secret: Vec<u8>,
    revision: u32,
    /// The time zone its statistics are counted in, by name and as a zone.
    timezone: String,
    zone: Zone,
    /// The key of its visitor numbers.
    salt: u64,
    /// Whether its rollups were counted in `zone` (false until they are counted afresh).
    counted_in_zone: bool,
}

pub struct Writer {
    conn: Owned,
    cache: Arc<ConsentCache>,
    sites: HashMap<String, WriterSite>,
    next_site_num: u32,
    generations: Generations,
    open: OpenVisits,
    /// Rollup changes of committed batches, written with the next flush.
    pending: Deltas,
    last_flush: i64,
    /// When ended visits were last dropped from memory.
    last_trim: i64,
    /// A checkpoint after a deletion could not complete (readers held the log): tried again with each
    /// flush (every few seconds) until it does.
    checkpoint_owed: bool,
    /// Writes refused since the storage failed (disk full, read-only...), if it is failing: logged once when
    /// it starts and once when it ends, not per write.
    failing: Option<u64>,
    /// Since when writes succeed again while `failing`: a nearly full disk lets some commits through
    /// between failures, so recovery is declared only after [`RECOVERED_AFTER`] without a failure.
    recovering_since: Option<std::time::Instant>,
    pub(crate) metrics: Arc<crate::metrics::WriterMetrics>,
    /// On PostgreSQL: this instance's name among the writers that take turns (see the module's notes).
    instance: Option<String>,
    /// On PostgreSQL: where to connect again when the connection is lost.
    pub(crate) reconnect_to: Option<String>,
}

impl Writer {
    /// Prepares the writer: mends the visit rows the last run left behind, and loads the sites.
    pub fn new(mut conn: Owned, cache: Arc<ConsentCache>, now: i64) -> Result<Writer> {
        let watermark: i64 = conn.conn().value(
            "SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'flushed_event'",
            &[],
        )?;
        let mut writer = Writer {
            conn,
            cache,
            sites: HashMap::new(),
            next_site_num: 0,
            generations: Generations::default(),
            open: OpenVisits::new(OPEN_VISITS_CAPACITY),
            pending: Deltas::default(),
            last_flush: now,
            last_trim: now,
            checkpoint_owed: false,
            failing: None,
            recovering_since: None,
            metrics: Arc::default(),
            instance: None,
            reconnect_to: None,
        };
        if matches!(writer.conn, Owned::Pg(_)) {
            let mut name = [0u8; 8];
            getrandom::fill(&mut name).map_err(|e| Error::Internal(e.to_string()))?;
            writer.instance = Some(hex::encode(name));
        }
        let generations = sites::generations(&mut writer.conn.conn())?;
        writer.load_sites(generations)?;
        let last = events::max_id(&mut writer.conn.conn())?;
        if last > watermark {
            let sites = &writer.sites;
            let repaired = writer.conn.conn().transaction(|tx| {
                let repaired = counting::repair(tx, watermark, sites)?;
                set_watermark(tx, last)?;
                Ok(repaired)
            })?;
            tracing::info!(
                repaired,
                "the last run did not stop cleanly: the visits of events it had not written were recomputed from them"
            );
        }
        writer.count_afresh()?;
        // Visits open before this start are in the database, not in memory.
        writer.open.forget_all(now);
        Ok(writer)
    }

    /// Runs until a `Shutdown` job or until every sender is gone.
    pub fn run(mut self, mut rx: mpsc::Receiver<Job>, health: Arc<WriterHealth>) {
        let _guard = AliveGuard(health);
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if batch.iter().any(|j| matches!(j.op, Op::Crash)) {
                panic!("writer crash requested");
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
                break;
            }
        }
        if let Err(e) = mark_stopped(&mut self.conn.conn()) {
            tracing::warn!(error = %e, "could not mark the database as cleanly stopped");
        }
        tracing::debug!("writer stopped");
    }

    /// Commits a batch in one transaction. If the transaction fails as a whole, each job is retried in a
    /// transaction of its own, so one bad job fails alone; a savepoint per job would cost two statements on
    /// every job of every batch for a case that is rare.
    fn run_batch(&mut self, jobs: Vec<Job>) {
        let now = crate::now();
        // Flush and Shutdown jobs write what is before them where they stand.
        let flush = now - self.last_flush >= FLUSH_SECS || self.open.over_capacity();
        let started = std::time::Instant::now();
        match self.commit(&jobs, now, flush) {
            Ok((answers, batch)) => {
                self.metrics.committed(jobs.len(), started.elapsed());
                if let Some(refused) = self.failing {
                    let since = *self
                        .recovering_since
                        .get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= RECOVERED_AFTER {
                        tracing::warn!(refused, "the database can be written again");
                        self.failing = None;
                        self.recovering_since = None;
                    }
                }
                let deleted = batch.deleted;
                self.apply(batch, now);
                // Before the answers: a 204 to an erasure means the data is gone from the files too.
                let asked = jobs.iter().any(|j| matches!(j.op, Op::Checkpoint));
                if deleted || asked || (self.checkpoint_owed && flush) {
                    self.checkpoint();
                }
                for (job, answer) in jobs.into_iter().zip(answers) {
                    if let Some(reply) = job.reply {
                        let _ = reply.send(answer);
                    }
                }
            }
            // The storage itself fails: every job would fail alike, so none is tried alone.
            Err(Error::Storage(cause)) => {
                self.recovering_since = None;
                match &mut self.failing {
                    Some(refused) => *refused += jobs.len() as u64,
                    None => {
                        tracing::error!(
                            cause,
                            "cannot write the database: answering 503 until it can (free space or make it writable; no restart needed)"
                        );
                        self.failing = Some(jobs.len() as u64);
                    }
                }
                for job in jobs {
                    if let Some(reply) = job.reply {
                        let _ = reply.send(Err(Error::Storage(cause.clone())));
                    }
                }
            }
            Err(e) if jobs.len() > 1 => {
                tracing::warn!(error = %e, jobs = jobs.len(), "batch failed; retrying its jobs one by one");
                for job in jobs {
                    self.run_batch(vec![job]);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "write failed");
                if let Some(reply) = jobs.into_iter().next().and_then(|j| j.reply) {
                    let _ = reply.send(Err(Error::Unavailable(
                        "the write could not be committed".into(),
                    )));
                }
            }
        }
    }

    /// Applies every job in one transaction and commits it; returns each job's answer and what memory must
    /// learn of the batch once it is committed.
    fn commit(
        &mut self,
        jobs: &[Job],
        now: i64,
        flush: bool,
    ) -> Result<(Vec<Result<Outcome>>, Committed)> {
        if !self.conn.is_usable() {
            self.reconnect(now)?;
        }
        for _ in 0..10 {
            self.conn.conn().begin()?;
            let turn = match self.take_turn(now) {
                Ok(t) => t,
                Err(e) => {
                    self.conn.conn().rollback();
                    return Err(e);
                }
            };
            let mut conn = self.conn.conn();
            // Read under the write lock: no other process can change anything until this commits.
            let generations = match sites::generations(&mut conn) {
                Ok(g) => g,
                Err(e) => {
                    conn.rollback();
                    return Err(e);
                }
            };
            if generations != self.generations {
                conn.rollback();
                self.catch_up(generations, now)?;
                continue;
            }
            let applied = (|| {
                let mut batch = Batch::new(
                    conn.reborrow(),
                    now,
                    &self.sites,
                    &self.cache,
                    &self.open,
                    &self.pending,
                )?;
                if flush {
                    batch.flush_all()?;
                }
                let answers = jobs
                    .iter()
                    .map(|job| batch.apply(&job.op))
                    .collect::<Result<Vec<_>>>()?;
                if turn.shared {
                    // The next transaction may be another instance's: it reads the rows.
                    batch.flush_all()?;
                }
                let done = batch.finish()?;
                if let Some(watermark) = done.flushed_through {
                    set_watermark(&mut conn, watermark)?;
                }
                turn.mark(&mut conn)?;
                Ok((answers, done))
            })();
            return match applied {
                Ok(out) => {
                    conn.commit()?;
                    Ok(out)
                }
                Err(e) => {
                    conn.rollback();
                    Err(e)
                }
            };
        }
        Err(Error::Unavailable(
            "the data changed under the writer repeatedly".into(),
        ))
    }

    /// Brings memory in line with a committed batch.
    fn apply(&mut self, done: Committed, now: i64) {
        if done.flushed {
            // Before the staged states go in: those changed after the flush stay dirty.
            self.open.mark_all_clean();
            self.last_flush = now;
            self.pending = Deltas::default();
        }
        self.pending.merge(done.deltas);
        for (key, state) in done.staged {
            self.open.insert(key, state);
        }
        for effect in done.effects {
            match effect {
                Effect::Remember(id, latest) => self.cache.remember(id, &latest),
                Effect::ForgetConsent(id, keys) => {
                    self.cache.forget(id);
                    for k in keys {
                        self.open.remove(&k);
                    }
                }
                Effect::Purged {
                    consent_ids,
                    cuts,
                    now,
                } => {
                    self.cache.forget_all(consent_ids);
                    self.cache.evict_expired(now);
                    for (site, before) in cuts {
                        self.open.forget_started_before(site, before);
                    }
                }
            }
        }
        // On PostgreSQL every transaction flushes; ended visits are trimmed at SQLite's pace (every few
        // seconds, or when memory is over its bounds), not after every transaction.
        let trim_due = self.instance.is_none()
            || now - self.last_trim >= FLUSH_SECS
            || self.open.over_capacity();
        if done.flushed && trim_due {
            self.open.trim(now);
            self.last_trim = now;
        }
    }

    /// Empties the write-ahead log after a deletion (privacy invariant 6): until then it holds the old
    /// images of the pages the deletion changed.
    fn checkpoint(&mut self) {
        let checkpointed = match &self.conn {
            Owned::Lite(c) => db::checkpoint_truncate(c).map_err(Error::from),
            // PostgreSQL's write-ahead log is the server's to recycle (README: what it keeps).
            Owned::Pg(_) => Ok(true),
        };
        match checkpointed {
            Ok(done) => {
                if !done && !self.checkpoint_owed {
                    tracing::warn!(
                        "readers kept the write-ahead log busy; its checkpoint is retried with the next flushes"
                    );
                }
                self.checkpoint_owed = !done;
            }
            Err(e) => {
                if !self.checkpoint_owed && self.failing.is_none() {
                    tracing::error!(error = %e, "checkpoint of the write-ahead log failed; retried with the next flushes");
                }
                self.checkpoint_owed = true;
            }
        }
    }

    /// Writes open visits and gathered rollup changes in a transaction of their own.
    fn flush_now(&mut self, now: i64) -> Result<()> {
        self.conn.conn().begin()?;
        let done = self.take_turn(now).and_then(|turn| {
            let (sites, cache, open, pending) =
                (&self.sites, &self.cache, &self.open, &self.pending);
            let mut tx = self.conn.conn();
            let mut batch = Batch::new(tx.reborrow(), now, sites, cache, open, pending)?;
            batch.flush_all()?;
            let done = batch.finish()?;
            if let Some(watermark) = done.flushed_through {
                set_watermark(&mut tx, watermark)?;
            }
            turn.mark(&mut tx)?;
            tx.commit()?;
            Ok(done)
        });
        let done = done.inspect_err(|_| self.conn.conn().rollback())?;
        self.apply(done, now);
        Ok(())
    }
}

fn set_watermark(conn: &mut Conn, last_event: i64) -> Result<()> {
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'flushed_event'",
        args![&last_event.to_string()],
    )?;
    Ok(())
}

/// Clears the mark of a server at work (see `db::check_after_unclean_stop`): it stopped cleanly.
fn mark_stopped(conn: &mut Conn) -> Result<()> {
    conn.execute(
        "UPDATE meta SET value = '1' WHERE key = 'clean_shutdown'",
        &[],
    )?;
    Ok(())
}
