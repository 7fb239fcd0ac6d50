//! `assent migrate-to`: copies an SQLite data directory's database into an empty PostgreSQL database, in
//! one transaction (a failed copy leaves the target as it was), then checks that every table holds as
//! many rows on both sides.

use super::postgres;
use super::sql::{Arg, Conn, PgConn, Value};
use crate::error::{Error, Result};

/// The tables copied, in an order that keeps references valid, with their columns (the same names on both
/// engines). The consent log keeps its record ids: they order it, and the exports name them.
const TABLES: &[(&str, &[&str])] = &[
    (
        "sites",
        &[
            "id",
            "config",
            "revision",
            "secret",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "site_revisions",
        &["site_id", "revision", "policy_hash", "policy", "created_at"],
    ),
    (
        "consents",
        &[
            "id",
            "consent_id",
            "site_id",
            "created_at",
            "revision",
            "policy_hash",
            "choices",
            "grants_analytics",
            "action",
            "language",
            "page_path",
            "expires_at",
        ],
    ),
    (
        "visits",
        &[
            "id",
            "site_id",
            "visitor",
            "started_at",
            "last_at",
            "entry_page",
            "exit_page",
            "pageviews",
            "events",
            "engaged_ms",
            "referrer",
            "source",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_content",
            "utm_term",
            "country",
            "browser",
            "os",
            "device",
            "first_event",
            "last_event",
            "screen",
        ],
    ),
    (
        "events",
        &[
            "id",
            "site_id",
            "visit_id",
            "ts",
            "name",
            "path",
            "props",
            "engaged_ms",
        ],
    ),
    (
        "users",
        &["id", "email", "password_hash", "is_admin", "created_at"],
    ),
    (
        "api_keys",
        &["id", "user_id", "name", "key_hash", "created_at"],
    ),
    ("user_sites", &["user_id", "site_id"]),
    (
        "sessions",
        &["token_hash", "user_id", "created_at", "last_seen"],
    ),
    (
        "rollups",
        &[
            "site_id",
            "dim",
            "day",
            "value",
            "visits",
            "pageviews",
            "events",
            "bounces",
            "duration",
            "engaged_ms",
        ],
    ),
    (
        "rollup_visitors",
        &["id", "site_id", "dim", "day", "value", "chunk", "numbers"],
    ),
    ("rollup_zones", &["site_id", "timezone"]),
    (
        "deletion_receipts",
        &[
            "id",
            "created_at",
            "kind",
            "site_id",
            "cutoff",
            "consent_records",
            "visits",
            "events",
        ],
    ),
];

/// The sequences that give ids on PostgreSQL, moved past the copied ids.
const SEQUENCES: &[(&str, &str)] = &[
    ("consents_id_seq", "consents"),
    ("visits_id_seq", "visits"),
    ("events_id_seq", "events"),
    ("users_id_seq", "users"),
    ("api_keys_id_seq", "api_keys"),
    ("rollup_visitors_id_seq", "rollup_visitors"),
    ("deletion_receipts_id_seq", "deletion_receipts"),
];

/// Rows per INSERT statement: few round trips, far below PostgreSQL's 65535 arguments a statement.
const ROWS_PER_INSERT: usize = 500;

/// Rows per table on both sides after a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub table: &'static str,
    pub source: u64,
    pub target: u64,
}

/// How many rows the copy will move in all (for a progress bar).
pub fn rows_to_copy(source: &mut Conn) -> Result<u64> {
    let mut total = 0;
    for (table, _) in TABLES {
        total += source.value::<u64>(&format!("SELECT COUNT(*) FROM {table}"), &[])?;
    }
    Ok(total)
}

/// Copies every table of `source` (SQLite) into `target` (migrated, holding no site and no event) in one
/// transaction; `progress` hears the rows copied so far. Fails, leaving the target unchanged, if any
/// table's count differs afterwards.
pub fn copy(
    source: &mut Conn,
    target: &mut PgConn,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<Counted>> {
    let mut pg = Conn::Pg(target);
    let present: i64 = pg.value(
        "SELECT (SELECT COUNT(*) FROM sites) + (SELECT COUNT(*) FROM events)
              + (SELECT COUNT(*) FROM consents) + (SELECT COUNT(*) FROM users)",
        &[],
    )?;
    if present > 0 {
        return Err(Error::Conflict(
            "the PostgreSQL database already holds Assent data; migrate into an empty one".into(),
        ));
    }
    // Partitions for every month the data covers, made before the copy's transaction (each is a
    // transaction of its own).
    let oldest: Option<i64> = source.value(
        "SELECT MIN(t) FROM (SELECT MIN(ts) AS t FROM events UNION ALL SELECT MIN(started_at) FROM visits)",
        &[],
    )?;
    if let (Some(oldest), Conn::Pg(target)) = (oldest, &mut pg) {
        postgres::ensure_partitions_from(target, oldest, crate::now())?;
    }
    pg.transaction(|pg| {
        let mut copied = 0;
        for (table, columns) in TABLES {
            copy_table(source, pg, table, columns, &mut |n| {
                copied += n;
                progress(copied)
            })?;
        }
        for (sequence, table) in SEQUENCES {
            pg.batch(&format!(
                "SELECT setval('{sequence}', (SELECT COALESCE(MAX(id), 0) FROM {table}) + 1, false)"
            ))?;
        }
        // The watermark of events reflected in visit rows and rollups, as the source left it; the
        // generations move, so servers already running on the target read everything afresh.
        let watermark: String =
            source.value("SELECT value FROM meta WHERE key = 'flushed_event'", &[])?;
        pg.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'flushed_event'",
            crate::args![&watermark],
        )?;
        pg.execute(
            "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT)
             WHERE key IN ('sites_generation', 'data_generation')",
            &[],
        )?;
        let mut counts = Vec::new();
        for (table, _) in TABLES {
            let count = format!("SELECT COUNT(*) FROM {table}");
            let c = Counted {
                table,
                source: source.value(&count, &[])?,
                target: pg.value(&count, &[])?,
            };
            if c.source != c.target {
                return Err(Error::Internal(format!(
                    "{table}: {} rows in SQLite but {} copied; nothing was kept",
                    c.source, c.target
                )));
            }
            counts.push(c);
        }
        Ok(counts)
    })
}

/// Copies one table in statements of [`ROWS_PER_INSERT`] rows, in its rowid order.
fn copy_table(
    source: &mut Conn,
    target: &mut Conn,
    table: &str,
    columns: &[&str],
    copied: &mut dyn FnMut(u64),
) -> Result<()> {
    let list = columns.join(", ");
    let mut rows: Vec<Vec<Value>> = Vec::with_capacity(ROWS_PER_INSERT);
    let mut flush = |rows: &mut Vec<Vec<Value>>| -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut sql = format!("INSERT INTO {table} ({list}) VALUES ");
        let mut args: Vec<Arg> = Vec::with_capacity(rows.len() * columns.len());
        for (r, row) in rows.iter().enumerate() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for (c, value) in row.iter().enumerate() {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push('?');
                args.push(match value {
                    Value::Null => Arg::Null,
                    Value::Int(v) => Arg::Int(*v),
                    Value::Real(v) => Arg::Real(*v),
                    Value::Text(v) => Arg::Text(v),
                    Value::Blob(v) => Arg::Blob(v),
                });
            }
            sql.push(')');
        }
        target.execute(&sql, &args)?;
        copied(rows.len() as u64);
        rows.clear();
        Ok(())
    };
    source.for_each(&format!("SELECT {list} FROM {table}"), &[], |r| {
        rows.push(
            (0..columns.len())
                .map(|i| r.get(i))
                .collect::<Result<_>>()?,
        );
        if rows.len() == ROWS_PER_INSERT {
            flush(&mut rows)?;
        }
        Ok(())
    })?;
    flush(&mut rows)
}
