//! Values crossing the boundary: [`Arg`] binds a Rust value to a placeholder without copying it, and
//! [`Col`] reads a column back from a [`Row`] of either engine, converting between the integer widths each
//! uses (range-checked), so the Rust side keeps one type per column whatever the engine stores.

use postgres::types::{IsNull, Type};

use crate::error::{Error, Result};

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
