//! The pool of read-only connections, and reads that use several of them at once on one snapshot of the
//! database (a dashboard's queries spread over the cores, see `domain::stats::parallel`).
//!
//! Several connections normally each see the database as of their own first read. SQLite's snapshot
//! interface (built in with `SQLITE_ENABLE_SNAPSHOT`, `.cargo/config.toml`) lets the first connection's
//! read transaction be opened on the others, so what they answer together is what one connection would
//! have answered alone. Where a snapshot cannot be shared (the log was reset in between, which needs a
//! checkpoint in that instant), the read falls back to one connection.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, ffi};

use super::db;
use crate::error::Result;

/// Connections kept open for reuse.
const IDLE_MAX: usize = 8;

/// Read-only connections, opened on demand and reused.
pub(super) struct ReadPool {
    pub path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub fn new(path: PathBuf) -> Self {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self, n: usize) -> Result<Vec<Connection>> {
        let mut conns = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let keep = idle.len().saturating_sub(n);
            idle.split_off(keep)
        };
        while conns.len() < n {
            conns.push(db::open_reader(&self.path)?);
        }
        Ok(conns)
    }

    fn give_back(&self, conns: Vec<Connection>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        for conn in conns {
            // A connection left inside a transaction (a failed end) is dropped, not reused.
            if idle.len() < IDLE_MAX && conn.is_autocommit() {
                idle.push(conn);
            }
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conns = self.take(1)?;
        let out = f(&conns[0]);
        self.give_back(conns);
        out
    }

    /// Runs `f` on up to `n` connections reading one snapshot of the database (one connection if the
    /// snapshot cannot be shared).
    pub fn with_snapshot<T>(
        &self,
        n: usize,
        f: impl FnOnce(&mut [Connection]) -> Result<T>,
    ) -> Result<T> {
        let mut conns = self.take(n.max(1))?;
        let shared = share_snapshot(&conns);
        let out = match shared {
            Ok(k) => f(&mut conns[..k]),
            Err(e) => Err(e),
        };
        for conn in &conns {
            if !conn.is_autocommit() {
                // Ending a read transaction cannot lose anything; a failure leaves the connection
                // in a transaction, and give_back drops it.
                let _ = conn.execute_batch("COMMIT");
            }
        }
        self.give_back(conns);
        out
    }
}

/// Opens a read transaction on the first connection and the same snapshot on as many of the others as
/// accept it; how many connections (from the first) read it.
fn share_snapshot(conns: &[Connection]) -> Result<usize> {
    let Some(first) = conns.first() else {
        return Ok(0);
    };
    // A read transaction starts at its first read.
    first.execute_batch("BEGIN")?;
    first.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |_| Ok(()))?;
    if conns.len() == 1 {
        return Ok(1);
    }
    let mut snapshot: *mut ffi::sqlite3_snapshot = std::ptr::null_mut();
    // SAFETY: the handle is that of a live connection owned by `first`, used on this thread only; the
    // schema name is a NUL-terminated literal; on success SQLite writes a snapshot it allocated, freed
    // below with sqlite3_snapshot_free.
    let rc = unsafe { ffi::sqlite3_snapshot_get(first.handle(), c"main".as_ptr(), &mut snapshot) };
    if rc != ffi::SQLITE_OK {
        return Ok(1);
    }
    let mut sharing = 1;
    for conn in &conns[1..] {
        conn.execute_batch("BEGIN")?;
        // SAFETY: as above; `snapshot` is valid until freed below, and the connection is in a read
        // transaction that has not read yet, as sqlite3_snapshot_open requires.
        let rc = unsafe { ffi::sqlite3_snapshot_open(conn.handle(), c"main".as_ptr(), snapshot) };
        if rc != ffi::SQLITE_OK {
            conn.execute_batch("COMMIT")?;
            break;
        }
        sharing += 1;
    }
    // SAFETY: allocated by sqlite3_snapshot_get above and not used after this point.
    unsafe { ffi::sqlite3_snapshot_free(snapshot) };
    Ok(sharing)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second connection reads what the first saw when its read began, not what was committed
    /// since: without the shared snapshot it would count the row written in between.
    #[test]
    fn every_connection_reads_the_first_ones_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.db");
        let writer = db::open_and_migrate(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let pool = ReadPool::new(path);
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        let seen = pool
            .with_snapshot(3, |conns| {
                writer.execute_batch("INSERT INTO t VALUES (2);").unwrap();
                Ok(conns.iter().map(count).collect::<Vec<_>>())
            })
            .unwrap();
        assert_eq!(seen, vec![1, 1, 1]);
        // The transactions were ended: the connections, reused, see the new row.
        let seen = pool
            .with_snapshot(3, |conns| Ok(conns.iter().map(count).collect::<Vec<_>>()))
            .unwrap();
        assert_eq!(seen, vec![2, 2, 2]);
        assert_eq!(pool.with(|c| Ok(count(c))).unwrap(), 2);
    }
}
