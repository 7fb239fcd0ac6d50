//! The [`Store`]'s reads: statistics (a dashboard's set on several connections), the dashboard's and the
//! visitor's look-ups. Each runs on pooled read-only connections on the blocking thread pool; statistics
//! first ask the writer to write what it holds, so every acknowledged event is counted.

use super::sql::{self, Conn};
use super::{Store, VisitorExport, consents, events, sites, stats, users, visits};
use crate::args;
use crate::domain::consent::{ConsentId, ConsentRecord};
use crate::domain::stats::engine::Answer;
use crate::domain::stats::parallel;
use crate::domain::stats::query::Query;
use crate::domain::visits::{VISIT_TIMEOUT_SECS, visitor_key};
use crate::error::{Error, Result};

impl Store {
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
    pub async fn sites_if_changed(&self, known: i64) -> Result<Option<(i64, Vec<sites::SiteRow>)>> {
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
    pub fn sites_blocking(&self) -> Result<(i64, Vec<sites::SiteRow>)> {
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

/// How many connections (and threads) answer one set of statistics queries: one per core, at most four.
/// Read once: on Linux the standard library reads the cgroup's CPU quota from files on every call.
fn stats_workers() -> usize {
    static WORKERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *WORKERS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
}

/// A statistics read frees tens of megabytes at once (a year of visitor numbers, SQLite's pages). SQLite
/// allocates through glibc's malloc (Rust's own allocations go through mimalloc, which returns freed pages
/// itself, see `allocator`), and glibc keeps freed memory in the arena of the thread that used it, raising
/// its threshold for new mappings after such frees: the blocking pool's threads would each keep what their
/// largest read needed. Trimming after each read returns it (a few milliseconds), so the server's size is
/// that of one read at a time (BENCHMARKS.md).
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
