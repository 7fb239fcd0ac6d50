//! Retention (privacy invariant 3): deletes personal data older than the cut-off. A visit is the unit: a
//! visit that started before the cut-off goes with all its events, so no event is left behind that export
//! and erasure could no longer find. Consent records go by their own time.
//!
//! Deletion runs in slices of at most [`SLICE`] visits (the oldest first) and as many consent records, one
//! transaction each, so that the writer's other work (or, for a command, a running server's writer) waits
//! for one slice at most, never for the whole run.

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::domain::consent::ConsentId;
use crate::error::Result;

#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct PurgeReport {
    pub events: usize,
    pub visits: usize,
    pub consent_records: usize,
}

impl PurgeReport {
    pub fn add(&mut self, other: PurgeReport) {
        self.events += other.events;
        self.visits += other.visits;
        self.consent_records += other.consent_records;
    }
}

/// Visits (and consent records) one slice deletes at most.
pub const SLICE: usize = 250;

/// What a slice removed: its counts, the consent ids that lost records (for the consent cache), and
/// whether more is left to delete.
#[derive(Debug, Default)]
pub struct Purged {
    pub report: PurgeReport,
    pub consent_ids: Vec<u128>,
    pub more: bool,
}

/// Deletes one slice of what is older than `cutoff` (Unix seconds), or, with `dry_run`, counts all of it.
pub fn purge(conn: &Connection, cutoff: i64, dry_run: bool) -> Result<Purged> {
    let limit = if dry_run { -1 } else { SLICE as i64 };
    // `assent site remove` deletes a site's rows with it, so the sites table names every site with data;
    // going site by site lets every statement walk a (site, time) index.
    let sites: Vec<String> = conn
        .prepare_cached("SELECT id FROM sites")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS purged_visits (id INTEGER PRIMARY KEY);
         DELETE FROM temp.purged_visits;",
    )?;
    for site in &sites {
        conn.prepare_cached(
            "INSERT INTO temp.purged_visits SELECT id FROM visits WHERE site_id = ?1 AND started_at < ?2
             ORDER BY started_at LIMIT ?3",
        )?
        .execute(params![site, cutoff, limit])?;
    }
    // Events only ever follow their visit's first event, so the purged visits' events all lie below the
    // highest last event among them: one range scan from the table's start, which earlier purges emptied.
    let last: i64 = conn.query_row(
        "SELECT COALESCE(MAX(last_event), 0) FROM visits WHERE id IN (SELECT id FROM temp.purged_visits)",
        [],
        |r| r.get(0),
    )?;
    let mut out = Purged::default();
    let of_purged_visits =
        "FROM events WHERE id <= ?1 AND visit_id IN (SELECT id FROM temp.purged_visits)";
    // Events whose visit row is gone (none should be) are still deleted by age.
    let orphans = "FROM events WHERE site_id = ?1 AND ts < ?2
                   AND NOT EXISTS (SELECT 1 FROM visits WHERE visits.id = events.visit_id)";
    if dry_run {
        out.report.events = conn.query_row(
            &format!("SELECT COUNT(*) {of_purged_visits}"),
            [last],
            |r| r.get::<_, i64>(0),
        )? as usize;
        for site in &sites {
            out.report.events += conn.query_row(
                &format!("SELECT COUNT(*) {orphans}"),
                params![site, cutoff],
                |r| r.get::<_, i64>(0),
            )? as usize;
        }
        out.report.visits = conn.query_row("SELECT COUNT(*) FROM temp.purged_visits", [], |r| {
            r.get::<_, i64>(0)
        })? as usize;
        for site in &sites {
            out.report.consent_records += conn.query_row(
                "SELECT COUNT(*) FROM consents WHERE site_id = ?1 AND created_at < ?2",
                params![site, cutoff],
                |r| r.get::<_, i64>(0),
            )? as usize;
        }
        return Ok(out);
    }
    out.report.events = conn.execute(&format!("DELETE {of_purged_visits}"), [last])?;
    out.report.visits = conn.execute(
        "DELETE FROM visits WHERE id IN (SELECT id FROM temp.purged_visits)",
        [],
    )?;
    out.more = out.report.visits >= SLICE;
    for site in &sites {
        // Orphans are none or few; they go whole once the visits are done.
        if !out.more {
            out.report.events +=
                conn.execute(&format!("DELETE {orphans}"), params![site, cutoff])?;
        }
        let mut stmt = conn.prepare_cached(
            "DELETE FROM consents WHERE id IN
               (SELECT id FROM consents WHERE site_id = ?1 AND created_at < ?2 ORDER BY created_at LIMIT ?3)
             RETURNING consent_id",
        )?;
        let ids = stmt.query_map(params![site, cutoff, limit], |r| r.get::<_, String>(0))?;
        let before = out.report.consent_records;
        for id in ids {
            out.report.consent_records += 1;
            if let Some(id) = ConsentId::parse(&id?) {
                out.consent_ids.push(id.0);
            }
        }
        out.more |= out.report.consent_records - before >= SLICE;
    }
    conn.execute("DELETE FROM temp.purged_visits", [])?;
    Ok(out)
}
