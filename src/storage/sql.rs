//! One way to run a statement on either engine. The storage modules write their SQL once, in the dialect
//! both engines share (`?N` placeholders, `ON CONFLICT`, `RETURNING`, `CAST(... AS BIGINT)`), and run it
//! through [`Conn`]: on SQLite as it is, with the connection's statement cache; on PostgreSQL with the
//! placeholders renumbered to `$N` and the statement prepared once per connection.
//!
//! Values cross the boundary as [`Arg`] (borrowed: binding costs no copy) and come back through [`Col`],
//! which converts between the integer widths either engine uses, range-checked, so the Rust side keeps one
//! type per column whatever the engine stores.

use std::collections::HashMap;

use postgres::types::{IsNull, Type};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg<'_> {
            fn from(v: $t) -> Self {
                Arg::Int(v as i64)
            }
        }
    )*};
}
// u64 and usize above i64::MAX do not occur here: counts, ids and limits are far below it.
int_arg!(i64, i32, u32, u16, u8, u64, usize);

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Int(v as i64)
    }
}

impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::Real(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Blob(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Blob(v)
    }
}

impl<'a, T> From<Option<T>> for Arg<'a>
where
    T: Into<Arg<'a>>,
{
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().into()
    }
}

/// The arguments of a statement: `args![a, b]` is `&[Arg::from(a), Arg::from(b)]`.
#[macro_export]
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        &[$($crate::storage::sql::Arg::from($value)),*][..]
    };
}
pub use args;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Null => ValueRef::Null,
            Arg::Int(v) => ValueRef::Integer(v),
            Arg::Real(v) => ValueRef::Real(v),
            Arg::Text(v) => ValueRef::Text(v.as_bytes()),
            Arg::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl postgres::types::ToSql for Arg<'_> {
    /// Binds to whatever type PostgreSQL inferred for the placeholder, as SQLite would store it.
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound to {ty}").into()),
            },
            Arg::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                _ => Err(format!("a real number cannot be bound to {ty}").into()),
            },
            Arg::Text(v) => v.to_sql(ty, out),
            Arg::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// One row of an answer.
pub enum Row<'a, 'b> {
    Lite(&'a rusqlite::Row<'b>),
    Pg(&'a postgres::Row),
}

impl Row<'_, '_> {
    pub fn get<T: Col>(&self, index: usize) -> Result<T> {
        match self {
            Row::Lite(r) => T::from_value(lite_value(r, index)?),
            Row::Pg(r) => T::from_value(pg_value(r, index)?),
        }
    }

    /// How many columns the row has.
    pub fn len(&self) -> usize {
        match self {
            Row::Lite(r) => r.as_ref().column_count(),
            Row::Pg(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A text column, borrowed from the row (no copy: the statistics read millions of them).
    #[inline]
    pub fn str(&self, index: usize) -> Result<&str> {
        self.opt_str(index)?
            .ok_or_else(|| bad_column(index, "text expected, NULL found"))
    }

    /// A text column that may be NULL, borrowed from the row.
    #[inline]
    pub fn opt_str(&self, index: usize) -> Result<Option<&str>> {
        match self {
            Row::Lite(r) => Ok(r
                .get_ref(index)?
                .as_str_or_null()
                .map_err(rusqlite::Error::from)?),
            Row::Pg(r) => Ok(r.try_get::<_, Option<&str>>(index)?),
        }
    }

    /// A bytes column that may be NULL, borrowed from the row.
    #[inline]
    pub fn opt_blob(&self, index: usize) -> Result<Option<&[u8]>> {
        match self {
            Row::Lite(r) => Ok(r
                .get_ref(index)?
                .as_blob_or_null()
                .map_err(rusqlite::Error::from)?),
            Row::Pg(r) => Ok(r.try_get::<_, Option<&[u8]>>(index)?),
        }
    }
}

/// A column's value as either engine returned it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

fn lite_value(r: &rusqlite::Row, index: usize) -> Result<Value> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(index)? {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Real(v) => Value::Real(v),
        ValueRef::Text(v) => Value::Text(
            String::from_utf8(v.to_vec()).map_err(|_| bad_column(index, "text is not UTF-8"))?,
        ),
        ValueRef::Blob(v) => Value::Blob(v.to_vec()),
    })
}

fn pg_value(r: &postgres::Row, index: usize) -> Result<Value> {
    let ty = r
        .columns()
        .get(index)
        .ok_or_else(|| bad_column(index, "no such column"))?
        .type_()
        .clone();
    fn get<'r, T: postgres::types::FromSql<'r>>(
        r: &'r postgres::Row,
        index: usize,
    ) -> Result<Option<T>> {
        r.try_get::<_, Option<T>>(index).map_err(Error::from)
    }
    let value = match ty {
        Type::INT8 => get::<i64>(r, index)?.map(Value::Int),
        Type::INT4 => get::<i32>(r, index)?.map(|v| Value::Int(v.into())),
        Type::INT2 => get::<i16>(r, index)?.map(|v| Value::Int(v.into())),
        Type::BOOL => get::<bool>(r, index)?.map(|v| Value::Int(v.into())),
        Type::FLOAT8 => get::<f64>(r, index)?.map(Value::Real),
        Type::FLOAT4 => get::<f32>(r, index)?.map(|v| Value::Real(v.into())),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            get::<String>(r, index)?.map(Value::Text)
        }
        Type::BYTEA => get::<Vec<u8>>(r, index)?.map(Value::Blob),
        _ => {
            return Err(bad_column(
                index,
                &format!("type {ty} is not read here (cast it in the SQL)"),
            ));
        }
    };
    Ok(value.unwrap_or(Value::Null))
}

fn bad_column(index: usize, why: &str) -> Error {
    Error::Database(format!("column {index}: {why}"))
}

/// A Rust type a column converts to.
pub trait Col: Sized {
    fn from_value(v: Value) -> Result<Self>;
}

fn wrong(v: &Value, want: &str) -> Error {
    Error::Database(format!("expected {want}, found {v:?}"))
}

macro_rules! int_col {
    ($($t:ty),*) => {$(
        impl Col for $t {
            fn from_value(v: Value) -> Result<Self> {
                match v {
                    Value::Int(i) => <$t>::try_from(i).map_err(|_| wrong(&v, stringify!($t))),
                    _ => Err(wrong(&v, stringify!($t))),
                }
            }
        }
    )*};
}
int_col!(i64, i32, u32, u16, u8, u64, usize);

impl Col for bool {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Int(i) => Ok(i != 0),
            _ => Err(wrong(&v, "a flag")),
        }
    }
}

impl Col for f64 {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Real(r) => Ok(r),
            Value::Int(i) => Ok(i as f64),
            _ => Err(wrong(&v, "a number")),
        }
    }
}

impl Col for String {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Text(s) => Ok(s),
            _ => Err(wrong(&v, "text")),
        }
    }
}

impl Col for Vec<u8> {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Blob(b) => Ok(b),
            _ => Err(wrong(&v, "bytes")),
        }
    }
}

impl Col for Value {
    fn from_value(v: Value) -> Result<Self> {
        Ok(v)
    }
}

impl<T: Col> Col for Option<T> {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
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
        self.batch(match self.engine() {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN",
        })
    }

    /// Commits the transaction; if the commit fails, rolls it back, so the connection is usable again.
    pub fn commit(&mut self) -> Result<()> {
        self.batch("COMMIT").inspect_err(|_| self.rollback())
    }

    /// Ends the transaction without its changes. A failure here means there was none to end, or the
    /// connection is gone; either way nothing is left to undo.
    pub fn rollback(&mut self) {
        let in_transaction = match self {
            Conn::Lite(c) => !c.is_autocommit(),
            Conn::Pg(_) => true,
        };
        if in_transaction {
            let _ = self.batch("ROLLBACK");
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
