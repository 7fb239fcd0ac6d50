//! The database as the commands use it: the same typed operations as the running server's [`super::Store`],
//! synchronous, on one connection of their own. Commands that change data a running server holds in memory
//! move the counters its writer watches (sites through triggers, deletions through `data_generation`).

use std::cell::{RefCell, RefMut};
use std::path::Path;

use rusqlite::Connection;

use crate::args;
use crate::domain::consent::ConsentRecord;
use crate::domain::event::NewEvent;
use crate::domain::site::SiteConfig;
use crate::domain::stats::contribution::{self, Deltas};
use crate::domain::stats::period::Zone;
use crate::domain::stats::visitors;
use crate::domain::visits::VisitState;
use crate::error::{Error, Result};
use crate::storage::engine::{Location, Owned};
use crate::storage::retention::PurgeReport;
use crate::storage::sites::SiteRow;
use crate::storage::sql::{Conn, Engine};
use crate::storage::{
    consents, db, events, postgres, receipts, retention, rollups, scrub, sites, users, visits,
    writer,
};

/// One consent record as `assent consents export` writes it.
#[derive(Debug, serde::Serialize)]
pub struct ConsentLogRow {
    pub record: i64,
    pub consent_id: String,
    pub created_at: i64,
    pub revision: u32,
    pub policy_hash: String,
    /// JSON `{category: bool}` as stored.
    pub choices: String,
    pub action: String,
    pub language: Option<String>,
    pub page_path: Option<String>,
    pub expires_at: i64,
}

/// Commands run on one thread: the connection is borrowed per operation.
pub struct Database {
    conn: RefCell<Owned>,
}

/// How far a purge got, for a command's progress display.
pub enum PurgeStep<'a> {
    /// A slice was applied (or counted): the totals so far.
    Slice(&'a PurgeReport),
    /// Everything is deleted; the unused space of pages is being zeroed.
    Scrubbing,
}

/// Pages a backup copies per step: 4 MiB at the default page size, so progress moves often.
const BACKUP_PAGES_PER_STEP: i32 = 1024;

impl Database {
    /// Opens the database at `path`, creating and migrating it.
    pub fn open(path: &Path) -> Result<Database> {
        Ok(Database {
            conn: RefCell::new(Owned::Lite(db::open_and_migrate(path)?)),
        })
    }

    /// Opens the store at `location`, creating and migrating it.
    pub fn connect(location: &Location) -> Result<Database> {
        match location {
            Location::Sqlite(path) => Database::open(path),
            Location::Postgres(url) => Ok(Database {
                conn: RefCell::new(Owned::Pg(Box::new(postgres::open_and_migrate(
                    url,
                    crate::now(),
                )?))),
            }),
        }
    }

    fn owned(&self) -> RefMut<'_, Owned> {
        self.conn.borrow_mut()
    }

    pub fn sites(&self) -> Result<Vec<SiteRow>> {
        sites::list(&mut self.owned().conn())
    }

    pub fn site(&self, id: &str) -> Result<Option<SiteRow>> {
        sites::get(&mut self.owned().conn(), id)
    }

    pub fn add_site(&mut self, id: &str, config: &SiteConfig, now: i64) -> Result<()> {
        sites::insert(&mut self.owned().conn(), id, config, now)
    }

    /// Applies new settings; returns the revision now in force.
    pub fn update_site(
        &mut self,
        id: &str,
        config: &SiteConfig,
        bump: bool,
        now: i64,
    ) -> Result<u32> {
        sites::update(&mut self.owned().conn(), id, config, bump, now)
    }

    /// Removes a site and everything collected for it; false when there was no such site.
    pub fn remove_site(&mut self, id: &str) -> Result<bool> {
        sites::remove(&mut self.owned().conn(), id)
    }

    pub fn count_users(&self) -> Result<i64> {
        users::count_users(&mut self.owned().conn())
    }

    pub fn add_user(&self, email: &str, password: &str, admin: bool, now: i64) -> Result<()> {
        users::add_user(&mut self.owned().conn(), email, password, admin, now)
    }

    pub fn create_key(&self, email: &str, name: &str, now: i64) -> Result<String> {
        users::create_key(&mut self.owned().conn(), email, name, now)
    }

    /// Lets a user who is not an admin read a site.
    pub fn grant_site(&self, email: &str, site: &str) -> Result<()> {
        users::grant_site(&mut self.owned().conn(), email, site)
    }

    /// Applies retention as of a cut-off (or, with `dry_run`, counts what it would delete), slice by slice,
    /// each in a transaction of its own: a running server's writer waits for one slice at most, and learns
    /// from each that data went.
    pub fn purge(&mut self, cutoff: i64, dry_run: bool) -> Result<PurgeReport> {
        self.purge_with(cutoff, dry_run, &mut |_| {})
    }

    /// [`Database::purge`], telling `progress` after each slice and before the rewrite of the file.
    pub fn purge_with(
        &mut self,
        cutoff: i64,
        dry_run: bool,
        progress: &mut dyn FnMut(PurgeStep),
    ) -> Result<PurgeReport> {
        let mut total = PurgeReport::default();
        if let Owned::Pg(pg) = &mut *self.owned()
            && !dry_run
        {
            postgres::ensure_partitions(pg, crate::now())?;
        }
        loop {
            let purged = self.owned().conn().transaction(|tx| {
                if tx.engine() == Engine::Postgres && !dry_run {
                    // Running instances' writers wait meanwhile, and read afresh after (storage::writer).
                    writer::wait_for_turn(tx)?;
                    writer::record_turn(tx, "assent purge")?;
                }
                let cuts: Vec<retention::SiteCut> = sites::list(tx)?
                    .iter()
                    .map(|site| {
                        let zone = Zone::parse(&site.config.timezone).unwrap_or_else(Zone::utc);
                        retention::SiteCut::new(&site.id, zone, cutoff)
                    })
                    .collect();
                let purged = retention::purge(tx, cutoff, &cuts, dry_run)?;
                if !dry_run && purged.report != PurgeReport::default() {
                    sites::bump_data_generation(tx)?;
                }
                Ok(purged)
            })?;
            total.add(purged.report);
            progress(PurgeStep::Slice(&total));
            if dry_run || !purged.more {
                break;
            }
        }
        if !dry_run {
            let now = crate::now();
            let receipt = receipts::Receipt::retention(now, cutoff, &total);
            receipts::insert(&mut self.owned().conn(), &receipt)?;
            if let (false, Owned::Pg(pg)) = (receipt.is_empty(), &mut *self.owned()) {
                // See `Store::purge`: deleted rows' space is marked free for new rows.
                pg.client.batch_execute(
                    "VACUUM consents, visits, events, rollups, rollup_visitors, deletion_receipts",
                )?;
            }
            if let (false, Owned::Lite(conn)) = (receipt.is_empty(), &mut *self.owned()) {
                progress(PurgeStep::Scrubbing);
                // Privacy invariant 6: no stale copy in the pages' unused space, no old page in the
                // write-ahead log.
                let scrubbed = scrub::run(conn)?;
                tracing::info!(
                    pages = scrubbed.scrubbed,
                    left = scrubbed.left,
                    "unused space of pages scrubbed"
                );
            }
        }
        Ok(total)
    }

    /// The consent log of a site as proof (`assent consents export`): every record created in
    /// `[from, to)` (Unix seconds), oldest first, handed to `each` one by one.
    pub fn consent_log(
        &self,
        site: &str,
        from: i64,
        to: i64,
        mut each: impl FnMut(ConsentLogRow) -> Result<()>,
    ) -> Result<usize> {
        let mut n = 0;
        self.owned().conn().for_each(
            "SELECT id, consent_id, created_at, revision, policy_hash, choices, action, language, page_path, expires_at
             FROM consents WHERE site_id = ?1 AND created_at >= ?2 AND created_at < ?3 ORDER BY id",
            args![site, from, to],
            |r| {
            each(ConsentLogRow {
                record: r.get(0)?,
                consent_id: r.get(1)?,
                created_at: r.get(2)?,
                revision: r.get(3)?,
                policy_hash: r.get(4)?,
                choices: r.get(5)?,
                action: r.get(6)?,
                language: r.get(7)?,
                page_path: r.get(8)?,
                expires_at: r.get(9)?,
            })?;
            n += 1;
            Ok(())
        },
        )?;
        Ok(n)
    }

    /// The latest deletion receipts, newest first.
    pub fn receipts(&self, limit: usize) -> Result<Vec<receipts::Receipt>> {
        receipts::latest(&mut self.owned().conn(), limit)
    }

    /// A consistent copy of the database in `file` (SQLite's online backup; safe while a server runs).
    pub fn backup(&self, file: &Path) -> Result<()> {
        self.backup_with(file, &mut |_, _| {})
    }

    /// [`Database::backup`], telling `progress` the pages copied and the pages in all after each step.
    ///
    /// The copy runs inside one read transaction of the source: SQLite restarts a backup whose source
    /// another connection changed between two steps unless the source connection holds its snapshot, and
    /// a busy server changes it every few milliseconds. In WAL mode the read transaction holds up no writer.
    pub fn backup_with(&self, file: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        use rusqlite::backup::{Backup, StepResult};
        let failed = |e: rusqlite::Error| {
            Error::Internal(format!("backup to {} failed: {e}", file.display()))
        };
        let owned = self.owned();
        let Owned::Lite(conn) = &*owned else {
            return Err(Error::bad(
                "`assent backup` copies the SQLite file; back up PostgreSQL with pg_dump (README, \"Backups\")",
            ));
        };
        let snapshot = conn.unchecked_transaction().map_err(failed)?;
        // A deferred transaction takes its snapshot at its first read.
        snapshot
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(failed)?;
        let mut dst = Connection::open(file).map_err(failed)?;
        let backup = Backup::new(&snapshot, &mut dst).map_err(failed)?;
        loop {
            let step = backup.step(BACKUP_PAGES_PER_STEP).map_err(failed)?;
            let p = backup.progress();
            let total = p.pagecount.max(0) as u64;
            progress(total.saturating_sub(p.remaining.max(0) as u64), total);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                // Only the new destination could be locked, by someone else opening it meanwhile.
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        drop(backup);
        snapshot.commit().map_err(failed)
    }

    /// A transaction for bulk synthetic data of a site (`assent seed`).
    pub fn seeder(&mut self, site: &str) -> Result<Seeder<'_>> {
        let owned = self.conn.get_mut();
        let mut tx = owned.conn();
        let row = sites::get(&mut tx, site)?
            .ok_or_else(|| Error::NotFound(format!("unknown site {site:?}")))?;
        tx.begin()?;
        let mut seeder = Seeder {
            tx,
            next_event: 0,
            first_event: 0,
            zone: Zone::parse(&row.config.timezone).unwrap_or_else(Zone::utc),
            salt: visitors::salt_of(&row.secret),
            deltas: Deltas::default(),
            committed: false,
        };
        let tx = &mut seeder.tx;
        if tx.engine() == Engine::Postgres {
            // The ids it gives events are the writers' to give: it takes their turn (storage::writer).
            writer::wait_for_turn(tx)?;
            writer::record_turn(tx, "assent seed")?;
        }
        let next_event = events::next_id(tx)?;
        // A site no server has counted yet, and with no visits, is counted in its zone by the seeder
        // alone: record the zone, or the next server start would count everything again.
        let has_visits: bool = tx.value(
            "SELECT EXISTS (SELECT 1 FROM visits WHERE site_id = ?1)",
            args![site],
        )?;
        if !has_visits && rollups::zone_of(tx, site)?.is_none() {
            tx.execute(
                "INSERT INTO rollup_zones (site_id, timezone) VALUES (?1, ?2)",
                args![site, &row.config.timezone],
            )?;
        }
        seeder.next_event = next_event;
        seeder.first_event = next_event;
        Ok(seeder)
    }
}

fn counting_ref(e: &NewEvent) -> contribution::EventRef<'_> {
    contribution::EventRef {
        kind: contribution::kind_of(&e.name),
        name: &e.name,
        page: &e.path,
        props: &e.prop_pairs,
        engaged_ms: e.engaged_ms.unwrap_or(0),
    }
}

/// Writes synthetic consent records and whole visits of one site in one transaction, counted in its
/// rollups as the writer would count them.
pub struct Seeder<'a> {
    tx: Conn<'a>,
    next_event: i64,
    first_event: i64,
    zone: Zone,
    salt: u64,
    deltas: Deltas,
    committed: bool,
}

impl Drop for Seeder<'_> {
    /// A seeder dropped without `commit` (an error on the way) leaves nothing behind.
    fn drop(&mut self) {
        if !self.committed {
            self.tx.rollback();
        }
    }
}

impl Seeder<'_> {
    pub fn consent(&mut self, rec: &ConsentRecord) -> Result<()> {
        consents::append(&mut self.tx, rec)
    }

    /// Stores a visit made of `visit_events` (in order) by `visitor`.
    pub fn visit(&mut self, visitor: i64, visit_events: &[NewEvent]) -> Result<()> {
        self.visits(&[(visitor, visit_events.to_vec())])
    }

    /// Stores visits, each `(visitor, its events in order)`, with their events interleaved in time order,
    /// as a live server would have stored them.
    pub fn visits(&mut self, all: &[(i64, Vec<NewEvent>)]) -> Result<()> {
        let mut order: Vec<(i64, usize, usize)> = all
            .iter()
            .enumerate()
            .flat_map(|(v, (_, evs))| evs.iter().enumerate().map(move |(i, e)| (e.ts, v, i)))
            .collect();
        order.sort_unstable();
        let mut states: Vec<Option<VisitState>> = vec![None; all.len()];
        for (_, v, i) in order {
            let (visitor, evs) = &all[v];
            let e = &evs[i];
            let id = self.next_event;
            self.next_event += 1;
            match &mut states[v] {
                Some(state) => {
                    events::insert(&mut self.tx, id, state.id, e)?;
                    state.absorb(id, e);
                }
                None => {
                    let visit = visits::insert(&mut self.tx, e, *visitor, id)?;
                    events::insert(&mut self.tx, id, visit, e)?;
                    let (day, number) =
                        (self.zone.day(e.ts), visitors::number(self.salt, *visitor));
                    states[v] = Some(VisitState::first(visit, id, e, day, number));
                }
            }
        }
        for (state, (_, evs)) in states.iter().zip(all) {
            let Some(state) = state else {
                continue;
            };
            visits::write(&mut self.tx, state)?;
            // Counted from the events in hand, as the writer would count them from the rows.
            let first = &evs[0];
            let exit = evs
                .iter()
                .rev()
                .find(|e| e.name == "pageview")
                .unwrap_or(first);
            let values = [
                first.source.as_deref().unwrap_or(""),
                first.referrer.as_deref().unwrap_or(""),
                first.utm_source.as_deref().unwrap_or(""),
                first.utm_medium.as_deref().unwrap_or(""),
                first.utm_campaign.as_deref().unwrap_or(""),
                first.utm_content.as_deref().unwrap_or(""),
                first.utm_term.as_deref().unwrap_or(""),
                first.country.as_deref().unwrap_or(""),
                &first.browser,
                &first.os,
                &first.device,
                &first.screen,
                &first.path,
                &exit.path,
            ];
            let key = contribution::VisitKey {
                site: &first.site,
                day: state.day,
                visitor: state.visitor,
                dims: values,
            };
            let refs: Vec<_> = evs.iter().map(counting_ref).collect();
            contribution::whole_visit(&mut self.deltas, &key, state.figures(), &refs, 1);
        }
        Ok(())
    }

    /// Commits. The seeded visit rows are complete, so the watermark of complete rows moves past their
    /// events, unless a server has events of its own that its rows do not reflect yet.
    pub fn commit(mut self) -> Result<()> {
        rollups::apply(&mut self.tx, &self.deltas)?;
        self.tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'flushed_event' AND CAST(value AS BIGINT) = ?2",
            args![&(self.next_event - 1).to_string(), self.first_event - 1],
        )?;
        self.committed = true;
        self.tx.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another connection writes between every two steps of the copy (as a busy server does): the backup
    /// still ends, in a few steps, with the database as it was when it began.
    #[test]
    fn backup_finishes_under_concurrent_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("assent.db");
        let db = Database::open(&path).unwrap();
        let other = db::open_and_migrate(&path).unwrap();
        other
            .execute_batch(
                "CREATE TABLE filler (b BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
                 INSERT INTO filler SELECT zeroblob(4000) FROM n;",
            )
            .unwrap();
        let copy = dir.path().join("copy.db");
        let mut steps = 0;
        let mut last = (0, 0);
        db.backup_with(&copy, &mut |done, total| {
            steps += 1;
            assert!(steps < 50, "the backup keeps restarting");
            last = (done, total);
            other
                .execute("INSERT INTO filler VALUES (zeroblob(4000))", [])
                .unwrap();
        })
        .unwrap();
        assert!(steps >= 3, "{steps} steps: the test needs several");
        assert_eq!(last.0, last.1);
        let rows: i64 = Connection::open(&copy)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM filler", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3000, "the copy is the snapshot the backup began with");
    }
}
