//! SQLite connections: the pragmas every connection gets, and the embedded migrations.

use std::path::Path;

use rusqlite::Connection;

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

const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The same settings on every connection, writer and readers alike. WAL lets readers work while the
/// writer commits; `synchronous = FULL` makes an acknowledged commit survive a power cut, with group
/// commit keeping the fsyncs few. `secure_delete` overwrites deleted records with zeros inside their pages
/// and zeroes pages that become free (privacy invariant 6): a deletion leaves no copy in the database file
/// once the write-ahead log is checkpointed (see [`checkpoint_truncate`]).
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
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
    let mut conn = open(path)?;
    migrate(&mut conn)?;
    Ok(conn)
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
