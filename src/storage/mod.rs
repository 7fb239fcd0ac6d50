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
pub mod users;
pub mod visits;
pub mod writer;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::args;
use crate::domain::consent::{ConsentId, ConsentRecord};
use crate::domain::consent_cache::ConsentCache;
use crate::domain::event::NewEvent;
use crate::domain::stats::engine::Answer;
use crate::domain::stats::parallel;
use crate::domain::stats::query::Query;
use crate::domain::visits::{VISIT_TIMEOUT_SECS, visitor_key};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
pub use database::{ConsentLogRow, Database, PurgeStep, Seeder};
use engine::{Location, Owned};
use readers::ReadPool;
use retention::PurgeReport;
use sites::SiteRow;
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

    /// Answers a statistics query. Open visits and gathered rollup changes are written first, so every
    /// event acknowledged before the query is counted in its answer.
    pub async fn stats(&self, query: Query) -> Result<Answer> {
        let answer = self.stats_batch(vec![query]).await?.pop();
        // One query in, one answer out.
        answer.unwrap_or_else(|| Err(Error::Internal("a query went unanswered".into())))
    }

    /// Answers a set of statistics queries (a dashboard's panels), reading the rows of each period once;
    /// one answer or error per query, in order.
    pub async fn stats_batch(&self, queries: Vec<Query>) -> Result<Vec<Result<Answer>>> {
        self.flush().await?;
        let readers = self.readers.clone();
        actix_web::web::block(move || {
            readers.with_snapshot(stats_workers().min(queries.len()), |conns| {
                let mut workers: Vec<stats::SqlSource> =
                    conns.into_iter().map(stats::SqlSource::new).collect();
                let answers = parallel::run_batch(&mut workers, &queries);
                release_freed_memory();
                Ok(answers)
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("blocking read failed: {e}")))?
    }

    /// When a site's first visit started (for the period `all`).
    pub async fn first_visit(&self, site: String) -> Result<Option<i64>> {
        self.read(move |c| {
            c.value(
                "SELECT MIN(started_at) FROM visits WHERE site_id = ?1",
                args![&site],
            )
        })
        .await
    }

    /// The custom property keys of a site's events on local days `first..=last` (which property panels
    /// the dashboard shows; the figures themselves come from the engine), at most `limit`.
    pub async fn prop_keys(
        &self,
        site: String,
        first: i32,
        last: i32,
        limit: usize,
    ) -> Result<Vec<String>> {
        let position = match self.engine() {
            sql::Engine::Sqlite => "instr(value, char(31))",
            sql::Engine::Postgres => "strpos(value, chr(31))",
        };
        self.read(move |c| {
            c.rows(
                &format!(
                    "SELECT DISTINCT substr(value, 1, {position} - 1) AS k FROM rollups
                     WHERE site_id = ?1 AND dim = ?2 AND day BETWEEN ?3 AND ?4 ORDER BY k LIMIT ?5"
                ),
                args![&site, crate::domain::stats::dims::PROP, first, last, limit],
                |r| r.get(0),
            )
        })
        .await
    }

    /// A site's consent records created in `[from, to)`, summed by the groups the dashboard's consent
    /// panel shows (see [`crate::domain::dashboard::consent`]).
    pub async fn consent_groups(
        &self,
        site: String,
        from: i64,
        to: i64,
    ) -> Result<crate::domain::dashboard::consent::ConsentGroups> {
        self.read(move |c| {
            let range = "FROM consents WHERE site_id = ?1 AND created_at >= ?2 AND created_at < ?3";
            let p = args![&site, from, to];
            fn two<A: sql::Col, B: sql::Col>(r: &sql::Row) -> Result<(A, B)> {
                Ok((r.get(0)?, r.get(1)?))
            }
            fn three<A: sql::Col, B: sql::Col, C: sql::Col>(r: &sql::Row) -> Result<(A, B, C)> {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            }
            let by_share = |c: &mut Conn, column: &str, limit: usize| {
                c.rows(
                    &format!(
                        "SELECT COALESCE({column}, ''), CAST(SUM(grants_analytics) AS BIGINT), COUNT(*) {range}
                         GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT {limit}"
                    ),
                    p,
                    three,
                )
            };
            let g = crate::domain::dashboard::consent::ConsentGroups {
                by_time_action: c.rows(
                    &format!(
                        "SELECT created_at / 900 * 900, action, COUNT(*) {range} GROUP BY 1, 2"
                    ),
                    p,
                    three,
                )?,
                by_revision_choices: c.rows(
                    &format!("SELECT revision, choices, COUNT(*) {range} GROUP BY 1, 2"),
                    p,
                    three,
                )?,
                by_language: by_share(c, "language", 50)?,
                by_page: by_share(c, "page_path", 20)?,
                revisions: c.rows(
                    &format!("SELECT revision, MIN(created_at) {range} GROUP BY 1"),
                    p,
                    two,
                )?,
            };
            Ok(g)
        })
        .await
    }

    /// Visitors active since `since` (realtime).
    pub async fn active_visitors(&self, site: String, since: i64) -> Result<u64> {
        self.flush().await?;
        self.read(move |c| {
            c.value(
                "SELECT COUNT(DISTINCT visitor) FROM visits
                 WHERE site_id = ?1 AND started_at >= ?2 AND last_at >= ?3",
                args![&site, since - 86_400, since],
            )
        })
        .await
    }

    /// Who a Stats API key acts for.
    pub async fn key_owner(&self, key: String) -> Result<Option<users::KeyOwner>> {
        self.read(move |c| users::key_owner(c, &key)).await
    }

    /// The latest record of a consent id.
    pub async fn latest_consent(&self, id: ConsentId) -> Result<Option<ConsentRecord>> {
        self.read(move |c| consents::latest(c, id)).await
    }

    /// When a site's policy revision took effect (Unix seconds), for its privacy notice.
    pub async fn revision_started(&self, site: String, revision: u32) -> Result<Option<i64>> {
        self.read(move |c| {
            c.row(
                "SELECT created_at FROM site_revisions WHERE site_id = ?1 AND revision = ?2",
                args![&site, revision],
                |r| r.get(0),
            )
        })
        .await
    }

    /// The sites with the generation they were read at, unless the generation is still `known`.
    pub async fn sites_if_changed(&self, known: i64) -> Result<Option<(i64, Vec<SiteRow>)>> {
        self.read(move |c| {
            let generation = sites::generation(c)?;
            if generation == known {
                return Ok(None);
            }
            Ok(Some((generation, sites::list(c)?)))
        })
        .await
    }

    /// The sites now, for start-up (blocking).
    pub fn sites_blocking(&self) -> Result<(i64, Vec<SiteRow>)> {
        sql::off_runtime(|| {
            self.readers
                .with(|c| Ok((sites::generation(c)?, sites::list(c)?)))
        })
    }

    /// Everything stored about a consent id: its consent history, and on every site the visits of the
    /// visitor key it has there, with their events. Open visits' rows are brought up to date first.
    pub async fn visitor_export(&self, id: ConsentId) -> Result<VisitorExport> {
        self.flush().await?;
        self.read(move |c| {
            let now = crate::now();
            let mut out = VisitorExport {
                consents: consents::history(c, id)?,
                visits: Vec::new(),
                events: Vec::new(),
            };
            for site in sites::keys(c)? {
                let visitor = visitor_key(&site.secret, id);
                out.visits.extend(visits::export_of(c, &site.id, visitor)?);
                for r in visits::ranges_of(c, &site.id, visitor)? {
                    // A visit that may still be open can have events newer than its row says.
                    let last = if now - r.last_at < VISIT_TIMEOUT_SECS {
                        i64::MAX
                    } else {
                        r.last_event
                    };
                    out.events.extend(events::export_of_visit(
                        c,
                        &site.id,
                        r.visit,
                        r.first_event,
                        last,
                    )?);
                }
            }
            Ok(out)
        })
        .await
    }
}

fn unexpected(outcome: Outcome) -> Error {
    Error::Internal(format!("unexpected writer outcome {outcome:?}"))
}

/// How many connections (and threads) answer one set of statistics queries: one per core, at most four.
/// Read once: on Linux the standard library reads the cgroup's CPU quota from files on every call.
fn stats_workers() -> usize {
    static WORKERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *WORKERS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
}

/// A statistics read frees tens of megabytes at once (a year of visitor numbers). glibc keeps freed memory
/// in the arena of the thread that used it, and raises its threshold for new mappings after such frees,
/// so the blocking pool's threads would each keep what their largest read needed; trimming after each read
/// returns it (a few milliseconds), so the server's size is that of one read at a time (BENCHMARKS.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_freed_memory() {
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the system; glibc documents
    // it as callable from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

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
