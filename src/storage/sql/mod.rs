//! One way to run a statement on either engine. The storage modules write their SQL once, in the dialect
//! both engines share (`?N` placeholders, `ON CONFLICT`, `RETURNING`, `CAST(... AS BIGINT)`), and run it
//! through [`Conn`]: on SQLite as it is, with the connection's statement cache; on PostgreSQL with the
//! placeholders renumbered to `$N` and the statement prepared once per connection.
//!
//! Values cross the boundary as [`Arg`] (borrowed: binding costs no copy) and come back through [`Col`],
//! which converts between the integer widths either engine uses, range-checked, so the Rust side keeps one
//! type per column whatever the engine stores.

use std::collections::HashMap;

use crate::error::{Error, Result};

mod values;
pub use values::{Arg, Col, Row, Value, args};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A PostgreSQL connection with its prepared statements (prepared once per connection and text).
pub struct PgConn {
    pub client: PgClient,
    statements: HashMap<String, postgres::Statement>,
}

/// The synchronous client, which drives a runtime of its own: it may be used only where no other runtime
/// runs (the writer thread, the blocking pool; see [`off_runtime`]), and closing it on a runtime's thread
/// would panic, so there it is closed on a thread of its own.
pub struct PgClient(Option<postgres::Client>);

impl std::ops::Deref for PgClient {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        // Only Drop takes the client out.
        self.0
            .as_ref()
            .expect("the client is present until dropped")
    }
}

impl std::ops::DerefMut for PgClient {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0
            .as_mut()
            .expect("the client is present until dropped")
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            off_runtime(move || drop(client));
        }
    }
}

/// Runs `f` on a scoped thread of its own, where the synchronous PostgreSQL client may block whatever
/// the calling thread is (a thread driving an async runtime cannot, and whether the caller is one cannot
/// be told reliably from inside a runtime's task). For rare calls only: start-up, closing, tests.
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl PgConn {
    pub fn connect(url: &str) -> Result<PgConn> {
        let failed = |e: &dyn std::fmt::Display| {
            Error::Storage(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                redact_url(url)
            ))
        };
        let mut config: postgres::Config = url.parse().map_err(|e| failed(&e))?;
        // The server's notices ("relation already exists, skipping", "no transaction in progress") are
        // expected by the statements that cause them; the client would log each one.
        let client = config
            .notice_callback(|_| {})
            .connect(postgres::NoTls)
            .map_err(|e| failed(&e))?;
        Ok(PgConn {
            client: PgClient(Some(client)),
            statements: HashMap::new(),
        })
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let prepared = self.client.prepare(&numbered_placeholders(sql))?;
        self.statements.insert(sql.to_string(), prepared.clone());
        Ok(prepared)
    }
}

/// A connection of either engine, for the length of an operation.
pub enum Conn<'c> {
    Lite(&'c mut rusqlite::Connection),
    Pg(&'c mut PgConn),
}

fn pg_args<'x>(args: &'x [Arg<'x>]) -> Vec<&'x (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| a as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl Conn<'_> {
    pub fn engine(&self) -> Engine {
        match self {
            Conn::Lite(_) => Engine::Sqlite,
            Conn::Pg(_) => Engine::Postgres,
        }
    }

    /// Runs a statement; how many rows it changed.
    pub fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<usize> {
        match self {
            Conn::Lite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(args))?),
            Conn::Pg(c) => {
                let stmt = c.statement(sql)?;
                Ok(c.client.execute(&stmt, &pg_args(args))? as usize)
            }
        }
    }

    /// Calls `each` on every row of the answer, in order.
    pub fn for_each(
        &mut self,
        sql: &str,
        args: &[Arg],
        mut each: impl FnMut(&Row) -> Result<()>,
    ) -> Result<()> {
        match self {
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                while let Some(r) = rows.next()? {
                    each(&Row::Lite(r))?;
                }
                Ok(())
            }
            Conn::Pg(c) => {
                use postgres::fallible_iterator::FallibleIterator;
                let stmt = c.statement(sql)?;
                // Streamed, not collected: a statistics read may return millions of rows.
                let mut rows = c.client.query_raw(&stmt, pg_args(args))?;
                while let Some(r) = rows.next()? {
                    each(&Row::Pg(&r))?;
                }
                Ok(())
            }
        }
    }

    /// Every row of the answer, each made by `make`.
    pub fn rows<T>(
        &mut self,
        sql: &str,
        args: &[Arg],
        mut make: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.for_each(sql, args, |r| {
            out.push(make(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of the answer, if any.
    pub fn row<T>(
        &mut self,
        sql: &str,
        args: &[Arg],
        make: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut make = Some(make);
        let mut out = None;
        self.for_each(sql, args, |r| {
            if let Some(m) = make.take() {
                out = Some(m(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The first column of the first row; an error if there is no row.
    pub fn value<T: Col>(&mut self, sql: &str, args: &[Arg]) -> Result<T> {
        self.row(sql, args, |r| r.get(0))?
            .ok_or_else(|| Error::Database(format!("no row from {sql}")))
    }

    /// A shorter-lived handle on the same connection (to hand to a function that keeps it).
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Lite(c) => Conn::Lite(c),
            Conn::Pg(p) => Conn::Pg(p),
        }
    }

    /// Starts a transaction; on SQLite it takes the write lock at once (`BEGIN IMMEDIATE`).
    pub fn begin(&mut self) -> Result<()> {
        self.control(match self.engine() {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN",
        })
    }

    /// Commits the transaction; if the commit fails, rolls it back, so the connection is usable again.
    pub fn commit(&mut self) -> Result<()> {
        self.control("COMMIT").inspect_err(|_| self.rollback())
    }

    /// Ends the transaction without its changes. A failure here means there was none to end, or the
    /// connection is gone; either way nothing is left to undo.
    pub fn rollback(&mut self) {
        let in_transaction = match self {
            Conn::Lite(c) => !c.is_autocommit(),
            Conn::Pg(_) => true,
        };
        if in_transaction {
            let _ = self.control("ROLLBACK");
        }
    }

    /// Runs `f` in a transaction: committed if it returns Ok, rolled back otherwise. On SQLite the write
    /// lock is taken at the start (`BEGIN IMMEDIATE`), so a transaction never fails half-way for want of it.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        self.begin()?;
        match f(self) {
            Ok(v) => {
                self.commit()?;
                Ok(v)
            }
            Err(e) => {
                // The error that made it roll back is the one to report.
                self.rollback();
                Err(e)
            }
        }
    }

    /// A transaction's `BEGIN`, `COMMIT` or `ROLLBACK`. On SQLite it is kept prepared: the writer runs
    /// two on every batch, and parsing them each time cost it a few percent of its time.
    fn control(&mut self, sql: &str) -> Result<()> {
        match self {
            Conn::Lite(c) => {
                c.prepare_cached(sql)?.execute([])?;
                Ok(())
            }
            Conn::Pg(c) => Ok(c.client.batch_execute(sql)?),
        }
    }

    /// Runs statements without arguments (schema changes, transaction control).
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        match self {
            Conn::Lite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(c) => Ok(c.client.batch_execute(sql)?),
        }
    }
}

/// `?N` placeholders as `$N`, and bare `?` numbered in order, outside quoted text.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push('$');
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        out.push(d);
                    }
                } else {
                    out.push_str(&next.to_string());
                    next += 1;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A connection URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(an unparsable URL)".into(),
    }
}

impl From<postgres::Error> for Error {
    /// A lost or refused connection, a full disk or a read-only server are [`Error::Storage`] (503: retry
    /// later); the rest are bugs or bad data (500).
    fn from(e: postgres::Error) -> Error {
        use postgres::error::SqlState;
        let what = match e.code() {
            Some(c) if *c == SqlState::DISK_FULL => "the database server's disk is full",
            Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => "the database is read-only",
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW => {
                "the database server is shutting down or starting"
            }
            Some(c) if c.code().starts_with("08") => "the connection to the database failed",
            None if e.is_closed() || e.as_db_error().is_none() => {
                "the connection to the database failed"
            }
            _ => return Error::Database(e.to_string()),
        };
        Error::Storage(format!("{what} ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_text() {
        assert_eq!(
            numbered_placeholders("SELECT ?2, ?1, '?' FROM t WHERE a = ? AND b = ?"),
            "SELECT $2, $1, '?' FROM t WHERE a = $1 AND b = $2"
        );
    }

    #[test]
    fn passwords_are_not_shown() {
        let shown = redact_url("postgres://assent:s3cret@db.example:5432/assent");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.example:5432/assent"), "{shown}");
    }

    #[test]
    fn sqlite_round_trips_every_kind_of_value() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        let mut conn = Conn::Lite(&mut c);
        conn.batch("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB)")
            .unwrap();
        let blob = vec![0u8, 255];
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
            args![u32::MAX, 0.5, "é", &blob],
        )
        .unwrap();
        let got = conn
            .row("SELECT i, r, s, b, NULL FROM t", &[], |r| {
                Ok((
                    r.get::<u32>(0)?,
                    r.get::<f64>(1)?,
                    r.get::<String>(2)?,
                    r.get::<Vec<u8>>(3)?,
                    r.get::<Option<i64>>(4)?,
                ))
            })
            .unwrap();
        assert_eq!(got, Some((u32::MAX, 0.5, "é".to_string(), blob, None)));
        // Out of range for the Rust type: an error, not a wrapped number.
        assert!(conn.value::<u16>("SELECT i FROM t", &[]).is_err());
    }
}
