//! SQLite connections: the pragmas every connection gets, and the embedded migrations.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

/// Migrations in order; the version of the database is the number applied (`PRAGMA user_version`).
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../migrations/0001_init.sql")),
    (
        "0002_visit_event_ranges",
        include_str!("../../migrations/0002_visit_event_ranges.sql"),
    ),
    (
        "0003_statistics",
        include_str!("../../migrations/0003_statistics.sql"),
    ),
    (
        "0004_dashboard",
        include_str!("../../migrations/0004_dashboard.sql"),
    ),
    (
        "0005_receipts",
        include_str!("../../migrations/0005_receipts.sql"),
    ),
];

/// Prepared statements each connection keeps (see [`configure`]).
const STATEMENT_CACHE: usize = 128;

const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The same settings on every connection, writer and readers alike. WAL lets readers work while the
/// writer commits; `synchronous = FULL` makes an acknowledged commit survive a power cut, with group
/// commit keeping the fsyncs few. `secure_delete` overwrites deleted records with zeros inside their pages
/// and zeroes pages that become free (privacy invariant 6): a deletion leaves no copy in the database file
/// once the write-ahead log is checkpointed (see [`checkpoint_truncate`]).
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // rusqlite keeps 16 prepared statements by default; the writer alone uses several times that (seven
    // statements are written in groups of seven sizes, each its own text, see `storage::groups`), and one
    // evicted is compiled again on next use.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -8000;
         PRAGMA wal_autocheckpoint = 4000;",
    )
}

/// How long a checkpoint after a deletion waits for readers to finish before it gives up (it is then tried
/// again later).
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Copies every page of the write-ahead log into the database and truncates the log to zero bytes, so that
/// no page image from before a deletion is left in it (the log holds whole old pages until then). Waits
/// for readers at most [`CHECKPOINT_WAIT`]; true when the log is now empty.
pub fn checkpoint_truncate(conn: &Connection) -> rusqlite::Result<bool> {
    conn.busy_timeout(CHECKPOINT_WAIT)?;
    let done = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(done? == 0)
}

pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    Ok(conn)
}

/// Opens the database at `path` (creating its directory), with the migrations applied.
pub fn open_and_migrate(path: &Path) -> crate::error::Result<Connection> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            crate::error::Error::Internal(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let opened = open(path).and_then(|mut conn| migrate(&mut conn).map(|_| conn));
    opened.map_err(|e| match crate::error::Error::from(e) {
        crate::error::Error::Storage(cause) => crate::error::Error::Storage(format!(
            "{}: {cause}. {}",
            path.display(),
            what_to_do(path)
        )),
        other => other,
    })
}

/// Advice for an operator whose database cannot be used.
fn what_to_do(path: &Path) -> String {
    format!(
        "If the disk is full or read-only, free space or make it writable and start again; if the file is damaged, \
         restore the last copy made with `assent backup`, or move {} (with its -wal and -shm files) away to start \
         with an empty database",
        path.display()
    )
}

/// Marks the database in use by a server; if the last server on it did not clear the mark (it was killed, or
/// the machine stopped), first checks the file's structure (`PRAGMA quick_check`, a few seconds per GB): a
/// server never starts writing into a damaged file. [`mark_stopped`] clears the mark.
pub fn check_after_unclean_stop(conn: &Connection, path: &Path) -> crate::error::Result<()> {
    let clean: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'clean_shutdown'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if clean.as_deref() == Some("0") {
        let started = std::time::Instant::now();
        let checked = conn.prepare("PRAGMA quick_check(5)").and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        });
        // A check that cannot even run is a finding too.
        let problems = checked.unwrap_or_else(|e| vec![e.to_string()]);
        if problems != ["ok"] {
            return Err(crate::error::Error::Storage(format!(
                "{}: the database file is damaged ({}). {}",
                path.display(),
                problems.join("; "),
                what_to_do(path)
            )));
        }
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "the last run did not stop cleanly: the database file was checked and is sound"
        );
    }
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('clean_shutdown', '0')",
        [],
    )?;
    Ok(())
}

/// Clears the mark [`check_after_unclean_stop`] set: the server stopped cleanly.
pub fn mark_stopped(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE meta SET value = '1' WHERE key = 'clean_shutdown'",
        [],
    )
    .map(|_| ())
}

/// A read-only connection (for the pool).
pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open(path)?;
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(conn)
}

/// Applies the migrations not yet applied, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<usize> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > MIGRATIONS.len() {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the database is at schema version {current}, newer than this binary knows ({}); upgrade Assent",
            MIGRATIONS.len()
        )));
    }
    for (i, (_name, sql)) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(MIGRATIONS.len() - current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_enforces_append_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("t.db")).unwrap();
        assert_eq!(migrate(&mut c).unwrap(), MIGRATIONS.len());
        assert_eq!(migrate(&mut c).unwrap(), 0);
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        c.execute(
            "INSERT INTO consents (consent_id, site_id, created_at, revision, policy_hash, choices, grants_analytics, action, expires_at)
             VALUES ('x', 's', 1, 1, 'h', '{}', 0, 'reject_all', 2)",
            [],
        )
        .unwrap();
        let err = c
            .execute("UPDATE consents SET action = 'accept_all'", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}
