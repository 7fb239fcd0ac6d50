//! Storage: the boundary between Assent and its database. Everything above this module talks to [`Store`]
//! (the running server: typed, asynchronous operations) or [`Database`] (commands: the same, synchronous);
//! everything SQL lives below it. Writes go through the single writer thread (group commit, answered after
//! commit); reads run on a pool of read-only connections on the blocking thread pool, never on the async
//! runtime. A second engine implements the same operations.

pub mod consents;
mod database;
pub mod db;
pub mod engine;
pub mod events;
mod groups;
pub mod migrate;
pub mod postgres;
mod readers;
pub mod receipts;
pub mod retention;
pub mod rollups;
pub mod scrub;
pub mod sessions;
pub mod sites;
pub mod sql;
pub mod stats;
mod store_reads;
pub mod users;
pub mod visits;
pub mod writer;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::domain::consent::{ConsentId, ConsentRecord};
use crate::domain::consent_cache::ConsentCache;
use crate::domain::event::NewEvent;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
pub use database::{ConsentLogRow, Database, PurgeStep, Seeder};
use engine::{Location, Owned};
use readers::ReadPool;
use retention::PurgeReport;
use sql::Conn;
use writer::{ErasureReport, EventOutcome, Job, Op, Outcome, Writer, WriterHealth};

impl From<rusqlite::Error> for Error {
    /// Failures of the storage itself (no space, read-only, I/O, a damaged file) become [`Error::Storage`]
    /// (503: retry later); the rest are bugs or bad data (500).
    fn from(e: rusqlite::Error) -> Error {
        use rusqlite::ErrorCode::*;
        let what = match e.sqlite_error_code() {
            Some(DiskFull) => "the disk is full",
            Some(ReadOnly) => "the database is read-only",
            Some(SystemIoFailure) => "the disk failed a read or a write",
            Some(CannotOpen) => "the database file cannot be opened",
            // Another process (a long `assent backup` or `assent purge`, a manual session) holds the write lock
            // past the busy timeout: every job would wait the same, so all are answered 503.
            Some(DatabaseBusy | DatabaseLocked) => {
                "another process holds the database's write lock"
            }
            Some(DatabaseCorrupt | NotADatabase) => "the database file is damaged",
            _ => return Error::Database(e.to_string()),
        };
        Error::Storage(format!("{what} ({e})"))
    }
}

/// What `GET /api/visitor/{id}` shows.
pub struct VisitorExport {
    pub consents: Vec<ConsentRecord>,
    pub visits: Vec<visits::VisitExport>,
    pub events: Vec<events::EventExport>,
}

impl VisitorExport {
    pub fn is_empty(&self) -> bool {
        self.consents.is_empty() && self.visits.is_empty() && self.events.is_empty()
    }
}

/// Jobs that may wait for the writer; past this the server is saturated and answers 503 at once.
const QUEUE_DEPTH: usize = 8192;

#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    readers: Arc<ReadPool>,
    health: Arc<WriterHealth>,
    /// The dashboard's account writes (see [`sessions`]).
    side: Arc<sessions::SideWriter>,
    /// An erasure deleted rows since the last scrub: the next retention run scrubs even if it deletes
    /// nothing itself (stale copies of rebalanced cells live an hour at most).
    scrub_owed: Arc<std::sync::atomic::AtomicBool>,
    metrics: Arc<Metrics>,
}

/// Joins the writer thread once it has committed everything queued.
pub struct WriterGuard {
    store: Store,
    thread: Option<JoinHandle<()>>,
}

impl WriterGuard {
    /// Commits what is queued and stops the writer.
    pub async fn shutdown(mut self) {
        let _ = self
            .store
            .jobs
            .send(Job {
                op: Op::Shutdown,
                reply: None,
            })
            .await;
        if let Some(t) = self.thread.take() {
            let _ = actix_web::web::block(move || t.join()).await;
        }
    }
}

impl Store {
    /// Opens the database (creating and migrating it), mends what an unclean stop left and starts the
    /// writer thread.
    pub fn start(
        location: &Location,
        cache: Arc<ConsentCache>,
        metrics: Arc<Metrics>,
    ) -> Result<(Store, WriterGuard)> {
        let conn = match location {
            Location::Sqlite(path) => {
                let conn = db::open_and_migrate(path)?;
                db::check_after_unclean_stop(&conn, path)?;
                Owned::Lite(conn)
            }
            Location::Postgres(url) => Owned::Pg(Box::new(sql::off_runtime(|| {
                postgres::open_and_migrate(url, crate::now())
            })?)),
        };
        let mut writer = sql::off_runtime(|| Writer::new(conn, cache, crate::now()))?;
        writer.metrics = metrics.writer.clone();
        if let Location::Postgres(url) = location {
            writer.reconnect_to = Some(url.clone());
        }
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let health = Arc::new(WriterHealth::running());
        let thread_health = health.clone();
        let thread = std::thread::Builder::new()
            .name("assent-writer".into())
            .spawn(move || writer.run(rx, thread_health))
            .map_err(|e| Error::Internal(format!("cannot start the writer thread: {e}")))?;
        let store = Store {
            jobs: tx,
            readers: Arc::new(ReadPool::new(location.clone())),
            health,
            side: Arc::new(sessions::SideWriter::new(location.clone())),
            scrub_owed: Arc::default(),
            metrics,
        };
        Ok((
            store.clone(),
            WriterGuard {
                store,
                thread: Some(thread),
            },
        ))
    }

    /// Whether writes can be stored (the writer thread runs).
    pub fn writer_alive(&self) -> bool {
        self.health.is_alive()
    }

    /// Writes waiting for the writer thread.
    pub fn queue_depth(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }

    /// Bytes of the database: on SQLite its file and write-ahead log, on PostgreSQL what the server
    /// reports for the database.
    pub async fn database_bytes(&self) -> Result<u64> {
        let Some(db) = self.readers.location.sqlite_path() else {
            return self
                .read(|c| c.value("SELECT pg_database_size(current_database())", &[]))
                .await;
        };
        let mut wal = db.to_path_buf().into_os_string();
        wal.push("-wal");
        Ok([db, Path::new(&wal)]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum())
    }

    /// Which engine stores the data.
    pub fn engine(&self) -> sql::Engine {
        self.readers.location.engine()
    }

    /// Resolves when the writer thread ended.
    pub async fn writer_stopped(&self) {
        self.health.stopped().await
    }

    async fn write(&self, op: Op) -> Result<Outcome> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job {
                op,
                reply: Some(reply),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    Error::Unavailable("the server is saturated, retry shortly".into())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    Error::Unavailable("the server cannot store anything now".into())
                }
            })?;
        answer
            .await
            .map_err(|_| Error::Unavailable("the writer stopped before committing".into()))?
    }

    /// Runs a read on a pooled connection, off the async runtime.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        actix_web::web::block(move || readers.with(f))
            .await
            .map_err(|e| Error::Internal(format!("blocking read failed: {e}")))?
    }

    pub async fn append_consent(&self, rec: ConsentRecord) -> Result<()> {
        self.write(Op::Consent(rec)).await.map(|_| ())
    }

    /// Stores an event if its consent lets it in (privacy invariant 2, decided by the writer); Ok(false)
    /// when it was answered but not stored (engaged time without an open visit).
    pub async fn record_event(&self, consent_id: ConsentId, event: NewEvent) -> Result<bool> {
        let op = Op::Event {
            consent_id,
            event: Box::new(event),
        };
        match self.write(op).await? {
            Outcome::Event(EventOutcome::Stored) => Ok(true),
            Outcome::Event(EventOutcome::Dropped) => Ok(false),
            Outcome::Event(EventOutcome::Refused(why)) => {
                Err(Error::Forbidden(format!("not stored: {why}")))
            }
            Outcome::Event(EventOutcome::UnknownSite) => {
                Err(Error::NotFound("unknown site".into()))
            }
            other => Err(unexpected(other)),
        }
    }

    /// Erases every row derived from a consent id (privacy invariant 5).
    pub async fn erase(&self, id: ConsentId) -> Result<ErasureReport> {
        match self.write(Op::Erase(id)).await? {
            Outcome::Erased(r) => {
                if !r.is_empty() {
                    self.scrub_owed
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                self.metrics.erased(&r);
                Ok(r)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Writes the aggregates of open visits to their rows (they lag by a few seconds otherwise).
    pub async fn flush(&self) -> Result<()> {
        self.write(Op::Flush).await.map(|_| ())
    }

    /// Deletes personal data older than `cutoff`; `now` is when it runs (for the cache's expiry). Slice by
    /// slice, each its own writer job, so events keep being stored in between.
    /// The run's receipt is stored, and when anything went (or an erasure since the last run) the
    /// unused space of the database's pages is scrubbed (privacy invariant 6).
    pub async fn purge(&self, cutoff: i64, now: i64) -> Result<PurgeReport> {
        if self.engine() == sql::Engine::Postgres {
            // The coming months' partitions are made ahead of their events (each run keeps two ahead).
            self.accounts(move |c| match c {
                Conn::Pg(pg) => postgres::ensure_partitions(pg, now).map(|_| ()),
                Conn::Lite(_) => Ok(()),
            })
            .await?;
        }
        let mut total = PurgeReport::default();
        loop {
            match self.write(Op::Purge { cutoff, now }).await? {
                Outcome::Purged(r, more) => {
                    total.add(r);
                    if !more {
                        break;
                    }
                }
                other => return Err(unexpected(other)),
            }
        }
        let receipt = receipts::Receipt::retention(now, cutoff, &total);
        let deleted = !receipt.is_empty();
        self.write(Op::Receipt(receipt)).await?;
        let owed = self
            .scrub_owed
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        self.metrics.retention(&total);
        if (deleted || owed) && self.engine() == sql::Engine::Postgres {
            // Deleted rows stay in their pages until VACUUM marks the space free for new rows (README,
            // "PostgreSQL"); whole months went with their files.
            let started = std::time::Instant::now();
            let vacuumed = self
                .accounts(|c| {
                    c.batch("VACUUM consents, visits, events, rollups, rollup_visitors, deletion_receipts")
                })
                .await;
            if let Err(e) = vacuumed {
                self.scrub_owed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(e);
            }
            tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                "tables vacuumed after deletions"
            );
        }
        if (deleted || owed) && self.engine() == sql::Engine::Sqlite {
            let started = std::time::Instant::now();
            match self.scrub().await {
                Ok(r) => tracing::info!(
                    pages = r.scrubbed,
                    left = r.left,
                    ms = started.elapsed().as_millis() as u64,
                    "unused space of pages scrubbed after deletions"
                ),
                Err(e) => {
                    self.scrub_owed
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        Ok(total)
    }

    /// Zeroes the unused space of every b-tree page that holds bytes there (see [`scrub`]): planned on a
    /// read connection, zeroed chunk by chunk among the writer's other jobs, then the log truncated.
    pub async fn scrub(&self) -> Result<scrub::ScrubReport> {
        let mut report = scrub::ScrubReport::default();
        let mut only: Option<Arc<std::collections::HashSet<u32>>> = None;
        for _ in 0..scrub::ROUNDS {
            let planned = self
                .read(move |c| match c {
                    Conn::Lite(c) => scrub::plan(c, only.as_deref()),
                    Conn::Pg(_) => Ok(Vec::new()),
                })
                .await?;
            let mut changed = Vec::new();
            for chunk in planned.chunks(scrub::CHUNK) {
                match self.write(Op::Scrub(chunk.to_vec())).await? {
                    Outcome::Scrubbed(applied) => {
                        report.scrubbed += applied.scrubbed;
                        changed.extend(applied.changed);
                    }
                    other => return Err(unexpected(other)),
                }
            }
            report.left = changed.len();
            if changed.is_empty() {
                break;
            }
            only = Some(Arc::new(changed.into_iter().collect()));
        }
        if report.left > 0 {
            // Still changing under every plan: hot pages; the next run takes them.
            self.scrub_owed
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.write(Op::Checkpoint).await?;
        Ok(report)
    }

    /// Makes the writer thread panic. Only the tests call it, to show how a dead writer is reported.
    #[doc(hidden)]
    pub async fn crash_writer(&self) {
        let _ = self
            .jobs
            .send(Job {
                op: Op::Crash,
                reply: None,
            })
            .await;
    }
}

fn unexpected(outcome: Outcome) -> Error {
    Error::Internal(format!("unexpected writer outcome {outcome:?}"))
}

#[cfg(test)]
mod tests {
    /// What erasure, export and the writer's look-ups run per consent id must cost the same whatever the
    /// size of the tables: each narrows its search to one visitor's rows (a rowid range for events, the
    /// visitor's index entries for visits, the id's for consent records), never a whole site or table.
    #[test]
    fn per_visitor_statements_never_scan_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::db::open_and_migrate(&dir.path().join("plan.db")).unwrap();
        let by_range = "SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)";
        let by_visitor = "USING INDEX visits_by_visitor (site_id=? AND visitor=?)";
        let by_id = "USING INDEX consents_by_consent_id (consent_id=?)";
        for (sql, expected) in [
            (super::events::DELETE_OF_VISIT, by_range),
            (super::events::EXPORT_OF_VISIT, by_range),
            (super::visits::RANGES_OF, by_visitor),
            (super::visits::OPEN_OF, by_visitor),
            (super::visits::DELETE_OF_VISITOR, by_visitor),
            (super::consents::LATEST_STATE, by_id),
            (super::consents::DELETE_OF, by_id),
            (
                &format!("SELECT id FROM visits {}", super::visits::AFTER_IN_ORDER),
                "SEARCH visits USING INTEGER PRIMARY KEY (rowid>?)",
            ),
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let params: Vec<i64> = (1..=stmt.parameter_count() as i64).collect();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .map(Result::unwrap)
                .filter(|step| !step.starts_with("USE TEMP B-TREE"))
                .collect();
            assert_eq!(plan.len(), 1, "{sql}: {plan:?}");
            assert!(plan[0].contains(expected), "{sql}\n  plans {:?}", plan[0]);
        }
    }
}
