//! PostgreSQL as the store: connecting, applying the embedded migrations (under an advisory lock, so that
//! instances starting together apply each migration once), and keeping the monthly partitions of events
//! and visits ahead of time.

use time::{Date, Month, OffsetDateTime};

use super::sql::{Conn, PgConn};
use crate::error::{Error, Result};

/// The schema's migrations, in order; names are recorded in `assent_migrations` once applied.
const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_init",
    include_str!("../../migrations/postgres/0001_init.sql"),
)];

/// Held while migrating: the key of a session-level advisory lock no other program uses.
const MIGRATION_LOCK: i64 = 0x4153_5345_4e54; // "ASSENT"

/// The tables partitioned by month, with their partition key.
const PARTITIONED: &[(&str, &str)] = &[("events", "ts"), ("visits", "started_at")];

/// Months ahead of the current one whose partitions exist at any time.
const MONTHS_AHEAD: i32 = 2;

/// Whether a database URL names PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Connects, applies the migrations this database lacks and makes the partitions of the coming months.
pub fn open_and_migrate(url: &str, now: i64) -> Result<PgConn> {
    let mut pg = PgConn::connect(url)?;
    migrate(&mut pg)?;
    ensure_partitions(&mut pg, now)?;
    Ok(pg)
}

/// Applies the migrations not yet applied, each in its own transaction; returns how many. Instances that
/// start together wait for each other on the advisory lock, and the later ones find nothing to do.
pub fn migrate(pg: &mut PgConn) -> Result<usize> {
    pg.client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let applied = apply_missing(pg);
    let unlocked = pg
        .client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

fn apply_missing(pg: &mut PgConn) -> Result<usize> {
    pg.client.batch_execute(
        "CREATE TABLE IF NOT EXISTS assent_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )?;
    let done: Vec<String> = pg
        .client
        .query("SELECT name FROM assent_migrations", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = 0;
    for (name, sql) in MIGRATIONS {
        if done.iter().any(|d| d == name) {
            continue;
        }
        let mut tx = pg.client.transaction()?;
        tx.batch_execute(sql)
            .map_err(|e| Error::Database(format!("migration {name} failed: {e}")))?;
        tx.execute(
            "INSERT INTO assent_migrations (name, applied_at) VALUES ($1, $2)",
            &[name, &crate::now()],
        )?;
        tx.commit()?;
        applied += 1;
    }
    Ok(applied)
}

/// The first instant (Unix seconds, UTC) of the month `offset` months after the one holding `at`.
fn month_start(at: i64, offset: i32) -> Result<(i64, String)> {
    let day = OffsetDateTime::from_unix_timestamp(at)
        .map_err(|e| Error::Internal(format!("time {at}: {e}")))?
        .date();
    let months = day.year() * 12 + (day.month() as i32 - 1) + offset;
    let (year, month0) = (months.div_euclid(12), months.rem_euclid(12));
    let month = Month::try_from(month0 as u8 + 1).map_err(|e| Error::Internal(e.to_string()))?;
    let first =
        Date::from_calendar_date(year, month, 1).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((
        first.midnight().assume_utc().unix_timestamp(),
        format!("y{year:04}m{:02}", month0 + 1),
    ))
}

/// The monthly partitions of `table` with their ranges `[start, end)`, oldest first.
pub fn partitions(conn: &mut Conn, table: &str) -> Result<Vec<(String, i64, i64)>> {
    let names: Vec<String> = conn.rows(
        "SELECT c.relname::text FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
         WHERE p.relname = ?1",
        crate::args![table],
        |r| r.get(0),
    )?;
    let mut out: Vec<(String, i64, i64)> = names
        .into_iter()
        .filter_map(|name| {
            let (start, end) = month_range(name.strip_prefix(&format!("{table}_"))?)?;
            Some((name, start, end))
        })
        .collect();
    out.sort_by_key(|p| p.1);
    Ok(out)
}

/// The range of a partition named `yYYYYmMM` (the default partition and others have none).
fn month_range(suffix: &str) -> Option<(i64, i64)> {
    let (year, month) = suffix.strip_prefix('y')?.split_once('m')?;
    let (year, month): (i32, u8) = (year.parse().ok()?, month.parse().ok()?);
    let first = Date::from_calendar_date(year, Month::try_from(month).ok()?, 1).ok()?;
    let start = first.midnight().assume_utc().unix_timestamp();
    Some((start, month_start(start, 1).ok()?.0))
}

/// The first instant of the month that holds `at` (a month boundary at or before it).
pub fn month_floor(at: i64) -> Result<i64> {
    Ok(month_start(at, 0)?.0)
}

/// Makes the monthly partitions of events and visits from the month of `from` to `MONTHS_AHEAD` months
/// after `now`, moving rows the default partition holds in their range into them.
pub fn ensure_partitions_from(pg: &mut PgConn, from: i64, now: i64) -> Result<usize> {
    let mut made = 0;
    let mut offset = 0;
    loop {
        let (start, name) = month_start(from, offset)?;
        if start > month_start(now, MONTHS_AHEAD)?.0 {
            break;
        }
        let (end, _) = month_start(from, offset + 1)?;
        for (table, key) in PARTITIONED {
            made += make_partition(pg, table, key, &name, start, end)? as usize;
        }
        offset += 1;
    }
    Ok(made)
}

/// The partitions of this month and the next `MONTHS_AHEAD`, and of every month the default partitions
/// hold rows of (rows stored before their month's partition existed move into it).
pub fn ensure_partitions(pg: &mut PgConn, now: i64) -> Result<usize> {
    let oldest: Option<i64> = Conn::Pg(pg).value(
        "SELECT LEAST((SELECT MIN(ts) FROM events_default), (SELECT MIN(started_at) FROM visits_default))",
        &[],
    )?;
    ensure_partitions_from(pg, oldest.unwrap_or(now).min(now), now)
}

fn make_partition(
    pg: &mut PgConn,
    table: &str,
    key: &str,
    name: &str,
    start: i64,
    end: i64,
) -> Result<bool> {
    let partition = format!("{table}_{name}");
    let exists: bool = pg
        .client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&partition])?
        .get(0);
    if exists {
        return Ok(false);
    }
    // Rows of the month already in the default partition would make the new partition's creation fail:
    // they move with it, in one transaction. The lock keeps other instances' inserts out meanwhile.
    let mut conn = Conn::Pg(pg);
    conn.batch(&format!(
        "BEGIN;
         LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;
         CREATE TEMP TABLE moving ON COMMIT DROP AS
             SELECT * FROM {table}_default WHERE {key} >= {start} AND {key} < {end};
         DELETE FROM {table}_default WHERE {key} >= {start} AND {key} < {end};
         CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {table} FOR VALUES FROM ({start}) TO ({end});
         INSERT INTO {table} SELECT * FROM moving;
         COMMIT;"
    ))
    .inspect_err(|_| {
        let _ = conn.batch("ROLLBACK");
    })?;
    Ok(true)
}

/// Creates an empty database for one test on the server an admin URL names, and returns its URL; dropped
/// by [`ScratchDatabase`]'s `Drop`.
#[doc(hidden)]
pub struct ScratchDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl ScratchDatabase {
    pub fn create(admin_url: &str) -> Result<ScratchDatabase> {
        super::sql::off_runtime(|| Self::create_here(admin_url))
    }

    fn create_here(admin_url: &str) -> Result<ScratchDatabase> {
        let mut admin = PgConn::connect(admin_url)?;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| Error::Internal(e.to_string()))?;
        let name = format!("assent_test_{}", hex::encode(random));
        admin
            .client
            .batch_execute(&format!("CREATE DATABASE {name}"))?;
        let mut url =
            url::Url::parse(admin_url).map_err(|e| Error::Internal(format!("admin URL: {e}")))?;
        url.set_path(&name);
        Ok(ScratchDatabase {
            admin_url: admin_url.to_string(),
            name,
            url: url.to_string(),
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        super::sql::off_runtime(|| {
            if let Ok(mut admin) = PgConn::connect(&self.admin_url) {
                let _ = admin.client.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        })
    }
}

/// The admin URL of the PostgreSQL server the tests may use (`ASSENT_TEST_POSTGRES`), if any.
#[doc(hidden)]
pub fn test_server() -> Option<String> {
    std::env::var("ASSENT_TEST_POSTGRES")
        .ok()
        .filter(|u| is_postgres_url(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_years() {
        let nov_2026 = 1_795_000_000; // 2026-11-18
        assert_eq!(month_start(nov_2026, 0).unwrap().1, "y2026m11");
        assert_eq!(month_start(nov_2026, 2).unwrap().1, "y2027m01");
        assert_eq!(month_start(nov_2026, -11).unwrap().1, "y2025m12");
        let (start, _) = month_start(nov_2026, 0).unwrap();
        assert_eq!(start, 1_793_491_200); // 2026-11-01T00:00:00Z
    }

    /// Needs a PostgreSQL server (`ASSENT_TEST_POSTGRES`, as `.ci/run` provides); says so and passes
    /// without one.
    #[test]
    fn instances_starting_together_migrate_once_and_rows_find_their_month() {
        let Some(server) = test_server() else {
            eprintln!("skipped: ASSENT_TEST_POSTGRES is not set");
            return;
        };
        let db = ScratchDatabase::create(&server).unwrap();
        let now = 1_795_000_000;
        let starts: Vec<_> = (0..4)
            .map(|_| {
                let url = db.url.clone();
                std::thread::spawn(move || {
                    let mut pg = PgConn::connect(&url).unwrap();
                    migrate(&mut pg).unwrap()
                })
            })
            .collect();
        let applied: usize = starts.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(applied, MIGRATIONS.len(), "each migration applied once");

        let mut pg = PgConn::connect(&db.url).unwrap();
        // An event of a month without a partition lands in the default one, and moves when its month's
        // partition is made: the next maintenance makes every month from the oldest row's to two ahead.
        let old = now - 200 * 86_400;
        pg.client
            .execute(
                "INSERT INTO events (site_id, visit_id, ts, name, path) VALUES ('s', 1, $1, 'pageview', '/')",
                &[&old],
            )
            .unwrap();
        let months = |from: i64| {
            (0..)
                .take_while(|m| month_start(from, *m).unwrap().0 <= month_start(now, 2).unwrap().0)
                .count()
        };
        assert_eq!(months(now), 3);
        assert_eq!(ensure_partitions(&mut pg, now).unwrap(), 2 * months(old));
        assert_eq!(ensure_partitions(&mut pg, now).unwrap(), 0);
        assert_eq!(ensure_partitions_from(&mut pg, old, now).unwrap(), 0);
        let (_, month) = month_start(old, 0).unwrap();
        let n: i64 = pg
            .client
            .query_one(&format!("SELECT COUNT(*) FROM events_{month}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
        let left: i64 = pg
            .client
            .query_one("SELECT COUNT(*) FROM events_default", &[])
            .unwrap()
            .get(0);
        assert_eq!(left, 0);
    }
}
