//! Where the database is, and how the store's connections to it are opened: the embedded SQLite file
//! (writer, readers and the account connection on the same file) or a PostgreSQL server.

use std::path::{Path, PathBuf};

use super::db;
use super::sql::{Conn, Engine, PgConn};
use crate::error::Result;

#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    pub fn engine(&self) -> Engine {
        match self {
            Location::Sqlite(_) => Engine::Sqlite,
            Location::Postgres(_) => Engine::Postgres,
        }
    }

    /// The SQLite file, if the store is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// A connection that may write (the account connection, commands).
    pub fn open(&self) -> Result<Owned> {
        Ok(match self {
            Location::Sqlite(p) => Owned::Lite(db::open(p)?),
            Location::Postgres(url) => Owned::Pg(Box::new(PgConn::connect(url)?)),
        })
    }

    /// A connection that only reads (the read pool). On PostgreSQL the session is made read-only, so a
    /// bug cannot write through it.
    pub fn open_reader(&self) -> Result<Owned> {
        Ok(match self {
            Location::Sqlite(p) => Owned::Lite(db::open_reader(p)?),
            Location::Postgres(url) => {
                let mut pg = PgConn::connect(url)?;
                pg.client
                    .batch_execute("SET default_transaction_read_only = on")?;
                Owned::Pg(Box::new(pg))
            }
        })
    }
}

/// A connection the store owns.
pub enum Owned {
    Lite(rusqlite::Connection),
    Pg(Box<PgConn>),
}

impl Owned {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Owned::Lite(c) => Conn::Lite(c),
            Owned::Pg(p) => Conn::Pg(p),
        }
    }

    /// Whether the connection can still be used (a PostgreSQL connection may have been lost).
    pub fn is_usable(&self) -> bool {
        match self {
            Owned::Lite(_) => true,
            Owned::Pg(p) => !p.client.is_closed(),
        }
    }
}
