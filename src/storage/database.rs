//! The database as the commands use it: the same typed operations as the running server's [`super::Store`],
//! synchronous, on one connection of their own. Commands that change data a running server holds in memory
//! move the counters its writer watches (sites through triggers, deletions through `data_generation`).

use std::path::Path;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::domain::consent::ConsentRecord;
use crate::domain::event::NewEvent;
use crate::domain::site::SiteConfig;
use crate::domain::visits::VisitState;
use crate::error::{Error, Result};
use crate::storage::retention::PurgeReport;
use crate::storage::sites::SiteRow;
use crate::storage::{consents, db, events, retention, sites, users, visits};

pub struct Database {
    conn: Connection,
}

impl Database {
    /// Opens the database at `path`, creating and migrating it.
    pub fn open(path: &Path) -> Result<Database> {
        Ok(Database {
            conn: db::open_and_migrate(path)?,
        })
    }

    pub fn sites(&self) -> Result<Vec<SiteRow>> {
        sites::list(&self.conn)
    }

    pub fn site(&self, id: &str) -> Result<Option<SiteRow>> {
        sites::get(&self.conn, id)
    }

    pub fn add_site(&mut self, id: &str, config: &SiteConfig, now: i64) -> Result<()> {
        sites::insert(&mut self.conn, id, config, now)
    }

    /// Applies new settings; returns the revision now in force.
    pub fn update_site(
        &mut self,
        id: &str,
        config: &SiteConfig,
        bump: bool,
        now: i64,
    ) -> Result<u32> {
        sites::update(&mut self.conn, id, config, bump, now)
    }

    /// Removes a site and everything collected for it; false when there was no such site.
    pub fn remove_site(&mut self, id: &str) -> Result<bool> {
        sites::remove(&mut self.conn, id)
    }

    pub fn count_users(&self) -> Result<i64> {
        users::count_users(&self.conn)
    }

    pub fn add_user(&self, email: &str, password: &str, admin: bool, now: i64) -> Result<()> {
        users::add_user(&self.conn, email, password, admin, now)
    }

    pub fn create_key(&self, email: &str, name: &str, now: i64) -> Result<String> {
        users::create_key(&self.conn, email, name, now)
    }

    /// Applies retention as of a cut-off (or, with `dry_run`, counts what it would delete).
    pub fn purge(&mut self, cutoff: i64, dry_run: bool) -> Result<PurgeReport> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let purged = retention::purge(&tx, cutoff, dry_run)?;
        if !dry_run && purged.report != PurgeReport::default() {
            sites::bump_data_generation(&tx)?;
        }
        tx.commit()?;
        Ok(purged.report)
    }

    /// A consistent copy of the database in `file` (SQLite's online backup; safe while a server runs).
    pub fn backup(&self, file: &Path) -> Result<()> {
        self.conn
            .backup(rusqlite::MAIN_DB, file, None)
            .map_err(|e| Error::Internal(format!("backup to {} failed: {e}", file.display())))
    }

    /// A transaction for bulk synthetic data (`assent seed`).
    pub fn seeder(&mut self) -> Result<Seeder<'_>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let next_event = events::max_id(&tx)? + 1;
        Ok(Seeder { tx, next_event })
    }
}

/// Writes synthetic consent records and whole visits in one transaction.
pub struct Seeder<'a> {
    tx: Transaction<'a>,
    next_event: i64,
}

impl Seeder<'_> {
    pub fn consent(&mut self, rec: &ConsentRecord) -> Result<()> {
        consents::append(&self.tx, rec)
    }

    /// Stores a visit made of `events` (at least one, in order) by `visitor`.
    pub fn visit(&mut self, visitor: i64, visit_events: &[NewEvent]) -> Result<()> {
        let Some((first, rest)) = visit_events.split_first() else {
            return Ok(());
        };
        let first_id = self.next_event;
        let visit = visits::insert(&self.tx, first, visitor, first_id)?;
        events::insert(&self.tx, first_id, visit, visitor, first)?;
        let mut state = VisitState::first(visit, first_id, first);
        for e in rest {
            self.next_event += 1;
            events::insert(&self.tx, self.next_event, visit, visitor, e)?;
            state.absorb(self.next_event, e);
        }
        self.next_event += 1;
        visits::write(&self.tx, &state)
    }

    pub fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}
