//! Taking turns with other instances' writers on PostgreSQL (see the module notes of `writer`): the lock
//! each transaction takes, who wrote last, what a writer drops when another did, and opening the
//! connection again after it was lost. On SQLite, where one writer is alone, a turn is always its own.

use crate::args;
use crate::domain::stats::contribution::Deltas;
use crate::error::Result;
use crate::storage::engine::Owned;
use crate::storage::sql::Conn;

use super::{WRITERS_LOCK, Writer};

impl Writer {
    /// Opens the PostgreSQL connection again after it was lost (a server restart, a network cut). Until
    /// it opens, every job is answered 503 and nothing is stored. Whether the transaction the loss cut
    /// short committed is unknown, so memory is read afresh from the rows.
    pub(super) fn reconnect(&mut self, now: i64) -> Result<()> {
        let Some(url) = &self.reconnect_to else {
            return Ok(());
        };
        let pg = crate::storage::sql::PgConn::connect(url)?;
        self.conn = Owned::Pg(Box::new(pg));
        self.open.forget_all(now);
        self.cache.clear();
        self.pending = Deltas::default();
        tracing::warn!(
            "the connection to PostgreSQL is open again; the writer reads its state afresh"
        );
        Ok(())
    }

    /// On PostgreSQL, inside a transaction just begun: waits for the writers' turn and, if another
    /// instance wrote since this one did, drops what memory holds (open visits, consent entries; rollup
    /// changes were all written). On SQLite, where one writer is alone, does nothing.
    pub(super) fn take_turn(&mut self, now: i64) -> Result<Turn> {
        let Some(me) = self.instance.clone() else {
            return Ok(Turn {
                mark_as: None,
                shared: false,
            });
        };
        let last = wait_for_turn(&mut self.conn.conn())?;
        if last == me {
            return Ok(Turn {
                mark_as: None,
                shared: true,
            });
        }
        self.open.forget_all(now);
        self.cache.clear();
        self.pending = Deltas::default();
        Ok(Turn {
            mark_as: Some(me),
            shared: true,
        })
    }
}

/// A writer's turn on PostgreSQL: whom to record as the last writer when the transaction commits (no one
/// when it already is this instance, or on SQLite).
pub(super) struct Turn {
    pub(super) mark_as: Option<String>,
    /// Other instances may write the same database (PostgreSQL).
    pub(super) shared: bool,
}

impl Turn {
    pub(super) fn mark(&self, conn: &mut Conn) -> Result<()> {
        match &self.mark_as {
            Some(me) => record_turn(conn, me),
            None => Ok(()),
        }
    }
}

/// PostgreSQL, inside a transaction: waits until no other writer (an instance's, or a command's that
/// changes rows the writers hold) is in a transaction, for as long as this one lasts; returns who wrote
/// last.
pub(crate) fn wait_for_turn(conn: &mut Conn) -> Result<String> {
    conn.batch(&format!("SELECT pg_advisory_xact_lock({WRITERS_LOCK})"))?;
    conn.value("SELECT value FROM meta WHERE key = 'last_writer'", &[])
}

/// Records `who` as the last writer when the transaction commits: the next instance to take the turn reads
/// its state afresh.
pub(crate) fn record_turn(conn: &mut Conn, who: &str) -> Result<()> {
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'last_writer'",
        args![who],
    )?;
    Ok(())
}
