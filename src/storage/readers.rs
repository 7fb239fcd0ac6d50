//! The pool of read-only connections, and reads that use several of them at once on one snapshot of the
//! database (a dashboard's queries spread over the cores, see `domain::stats::parallel`).
//!
//! Several connections normally each see the database as of their own first read. SQLite's snapshot
//! interface (built in with `SQLITE_ENABLE_SNAPSHOT`, `.cargo/config.toml`) lets the first connection's
//! read transaction be opened on the others, so what they answer together is what one connection would
//! have answered alone. Where a snapshot cannot be shared (the log was reset in between, which needs a
//! checkpoint in that instant), the read falls back to one connection.

use std::sync::Mutex;

use rusqlite::{Connection, ffi};

use super::engine::{Location, Owned};
use super::sql::{Conn, PgConn};
use crate::error::{Error, Result};

/// Connections kept open for reuse.
const IDLE_MAX: usize = 8;

/// Read-only connections, opened on demand and reused.
pub(super) struct ReadPool {
    pub location: Location,
    idle: Mutex<Vec<Owned>>,
}

impl ReadPool {
    pub fn new(location: Location) -> Self {
        ReadPool {
            location,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self, n: usize) -> Result<Vec<Owned>> {
        let mut conns = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let keep = idle.len().saturating_sub(n);
            idle.split_off(keep)
        };
        // A PostgreSQL connection lost while idle (a server restart) is replaced.
        conns.retain(Owned::is_usable);
        while conns.len() < n {
            conns.push(self.location.open_reader()?);
        }
        Ok(conns)
    }

    fn give_back(&self, conns: Vec<Owned>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        for conn in conns {
            // A connection left inside a transaction (a failed end) is dropped, not reused.
            let reusable = match &conn {
                Owned::Lite(c) => c.is_autocommit(),
                Owned::Pg(p) => !p.client.is_closed(),
            };
            if idle.len() < IDLE_MAX && reusable {
                idle.push(conn);
            }
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut conns = self.take(1)?;
        let out = f(&mut conns[0].conn());
        self.give_back(conns);
        out
    }

    /// Runs `f` on up to `n` SQLite connections reading one snapshot of the database (one connection if
    /// the snapshot cannot be shared).
    pub fn with_sqlite_snapshot<T>(
        &self,
        n: usize,
        f: impl FnOnce(&mut [&mut Connection]) -> Result<T>,
    ) -> Result<T> {
        let mut owned = self.take(n.max(1))?;
        let mut conns: Vec<&mut Connection> = owned
            .iter_mut()
            .filter_map(|o| match o {
                Owned::Lite(c) => Some(c),
                Owned::Pg(_) => None,
            })
            .collect();
        if conns.is_empty() {
            return Err(Error::Internal("not an SQLite store".into()));
        }
        let out = with_snapshot(&mut conns, f);
        self.give_back(owned);
        out
    }
}

impl ReadPool {
    /// Runs `f` on up to `n` connections reading one snapshot of the database, whichever the engine:
    /// SQLite shares its snapshot (see above), PostgreSQL exports the first transaction's
    /// (`pg_export_snapshot`) and opens it in the others' (`SET TRANSACTION SNAPSHOT`).
    pub fn with_snapshot<T>(
        &self,
        n: usize,
        f: impl FnOnce(Vec<Conn<'_>>) -> Result<T>,
    ) -> Result<T> {
        if self.location.sqlite_path().is_some() {
            return self.with_sqlite_snapshot(n, |conns| {
                f(conns.iter_mut().map(|c| Conn::Lite(c)).collect())
            });
        }
        let mut owned = self.take(n.max(1))?;
        let mut pgs: Vec<&mut PgConn> = owned
            .iter_mut()
            .filter_map(|o| match o {
                Owned::Pg(p) => Some(&mut **p),
                Owned::Lite(_) => None,
            })
            .collect();
        let out = match share_pg_snapshot(&mut pgs) {
            Ok(k) => f(pgs.iter_mut().take(k).map(|p| Conn::Pg(p)).collect()),
            Err(e) => Err(e),
        };
        for pg in pgs {
            // A read-only transaction: ending it cannot lose anything. A connection that fails to end it
            // is closed by the server or left in a transaction; the next take replaces a closed one.
            let _ = pg.client.batch_execute("COMMIT");
        }
        self.give_back(owned);
        out
    }
}

/// Opens a repeatable-read transaction on each connection, all on the first one's snapshot; how many
/// connections (from the first) read it.
fn share_pg_snapshot(pgs: &mut [&mut PgConn]) -> Result<usize> {
    const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    let alone = pgs.len() == 1;
    let Some(first) = pgs.first_mut() else {
        return Ok(0);
    };
    first.client.batch_execute(BEGIN)?;
    if alone {
        return Ok(1);
    }
    let id: String = first
        .client
        .query_one("SELECT pg_export_snapshot()", &[])?
        .get(0);
    let mut sharing = 1;
    for pg in pgs.iter_mut().skip(1) {
        // The id is the server's own (hex digits and dashes); quoting it is enough.
        let opened = pg.client.batch_execute(&format!(
            "{BEGIN}; SET TRANSACTION SNAPSHOT '{}'",
            id.replace('\'', "")
        ));
        if opened.is_err() {
            let _ = pg.client.batch_execute("ROLLBACK");
            break;
        }
        sharing += 1;
    }
    Ok(sharing)
}

fn with_snapshot<T>(
    conns: &mut [&mut Connection],
    f: impl FnOnce(&mut [&mut Connection]) -> Result<T>,
) -> Result<T> {
    {
        let shared = share_snapshot(conns);
        let out = match shared {
            Ok(k) => f(&mut conns[..k]),
            Err(e) => Err(e),
        };
        for conn in conns.iter() {
            if !conn.is_autocommit() {
                // Ending a read transaction cannot lose anything; a failure leaves the connection
                // in a transaction, and give_back drops it.
                let _ = conn.execute_batch("COMMIT");
            }
        }
        out
    }
}

/// Opens a read transaction on the first connection and the same snapshot on as many of the others as
/// accept it; how many connections (from the first) read it.
fn share_snapshot(conns: &[&mut Connection]) -> Result<usize> {
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
        let writer = crate::storage::db::open_and_migrate(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let pool = ReadPool::new(Location::Sqlite(path));
        let count = |c: &&mut Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        let seen = pool
            .with_sqlite_snapshot(3, |conns| {
                writer.execute_batch("INSERT INTO t VALUES (2);").unwrap();
                Ok(conns.iter().map(count).collect::<Vec<_>>())
            })
            .unwrap();
        assert_eq!(seen, vec![1, 1, 1]);
        // The transactions were ended: the connections, reused, see the new row.
        let seen = pool
            .with_sqlite_snapshot(3, |conns| Ok(conns.iter().map(count).collect::<Vec<_>>()))
            .unwrap();
        assert_eq!(seen, vec![2, 2, 2]);
        assert_eq!(
            pool.with(|c| c.value::<i64>("SELECT COUNT(*) FROM t", &[]))
                .unwrap(),
            2
        );
    }
}
