//! Retention (privacy invariant 3): deletes personal data older than the cut-off. A visit is the unit: a
//! visit goes with all its events, so no event is left behind that export and erasure could no longer
//! find. Visits go by whole local days of their site (the day of the cut-off included), so that the daily
//! rollups of the days that go can go whole and still equal the rows; personal data is thus deleted up to
//! a day before it must be, never after. Consent records go by their own time.
//!
//! Deletion runs in slices of at most [`SLICE`] visits (the oldest first) and as many consent records, one
//! transaction each, so that the writer's other work (or, for a command, a running server's writer) waits
//! for one slice at most, never for the whole run.

use serde::Serialize;

use crate::args;
use crate::domain::consent::ConsentId;
use crate::domain::stats::period::{Zone, date_of_day};
use crate::error::Result;
use crate::storage::rollups;
use crate::storage::sql::{Conn, Engine};

/// Where retention cuts one site.
#[derive(Debug, Clone)]
pub struct SiteCut {
    pub site: String,
    /// Visits that started before this instant go (the end of the cut-off's local day).
    pub visits_before: i64,
    /// Rollups of local days up to this one go.
    pub days_through: i32,
}

impl SiteCut {
    pub fn new(site: &str, zone: Zone, cutoff: i64) -> SiteCut {
        let day = zone.day(cutoff);
        SiteCut {
            site: site.to_string(),
            visits_before: zone.start_of(date_of_day(day + 1)),
            days_through: day,
        }
    }
}

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

/// Deletes one slice of what is older than the cut-offs (visits and rollups by `cuts`, one per site;
/// consent records older than `cutoff`, Unix seconds), or, with `dry_run`, counts all of it. `assent site
/// remove` deletes a site's rows with it, so the sites with data are the sites there are; going site by
/// site lets every statement walk a (site, time) index.
pub fn purge(conn: &mut Conn, cutoff: i64, cuts: &[SiteCut], dry_run: bool) -> Result<Purged> {
    let limit = if dry_run { i64::MAX } else { SLICE as i64 };
    let mut dropped = PurgeReport::default();
    if conn.engine() == Engine::Postgres && !dry_run {
        dropped = drop_whole_months(conn, cuts)?;
    }
    conn.batch(match conn.engine() {
        Engine::Sqlite => {
            "CREATE TEMP TABLE IF NOT EXISTS purged_visits (id INTEGER PRIMARY KEY);
             DELETE FROM temp.purged_visits;"
        }
        Engine::Postgres => {
            "CREATE TEMP TABLE IF NOT EXISTS purged_visits (id BIGINT PRIMARY KEY);
             DELETE FROM purged_visits;"
        }
    })?;
    for cut in cuts {
        conn.execute(
            "INSERT INTO purged_visits SELECT id FROM visits WHERE site_id = ?1 AND started_at < ?2
             ORDER BY started_at LIMIT ?3",
            args![&cut.site, cut.visits_before, limit],
        )?;
    }
    // Events only ever follow their visit's first event, so the purged visits' events all lie below the
    // highest last event among them: one range scan from the table's start, which earlier purges emptied.
    let last: i64 = conn.value(
        "SELECT COALESCE(MAX(last_event), 0) FROM visits WHERE id IN (SELECT id FROM purged_visits)",
        &[],
    )?;
    let mut out = Purged {
        report: dropped,
        ..Purged::default()
    };
    let of_purged_visits =
        "FROM events WHERE id <= ?1 AND visit_id IN (SELECT id FROM purged_visits)";
    if dry_run {
        out.report.events =
            conn.value(&format!("SELECT COUNT(*) {of_purged_visits}"), args![last])?;
        out.report.visits = conn.value("SELECT COUNT(*) FROM purged_visits", &[])?;
        for cut in cuts {
            out.report.consent_records += conn.value::<usize>(
                "SELECT COUNT(*) FROM consents WHERE site_id = ?1 AND created_at < ?2",
                args![&cut.site, cutoff],
            )?;
        }
        return Ok(out);
    }
    out.report.events += conn.execute(&format!("DELETE {of_purged_visits}"), args![last])?;
    let visits = conn.execute(
        "DELETE FROM visits WHERE id IN (SELECT id FROM purged_visits)",
        &[],
    )?;
    out.report.visits += visits;
    out.more = visits >= SLICE;
    for cut in cuts {
        let site = &cut.site;
        // The rollups of the days that go (nothing more to do after the first slice).
        rollups::delete_through(conn, site, cut.days_through)?;
        let ids: Vec<String> = conn.rows(
            "DELETE FROM consents WHERE id IN
               (SELECT id FROM consents WHERE site_id = ?1 AND created_at < ?2 ORDER BY created_at LIMIT ?3)
             RETURNING consent_id",
            args![site, cutoff, limit],
            |r| r.get(0),
        )?;
        out.report.consent_records += ids.len();
        out.consent_ids.extend(
            ids.iter()
                .filter_map(|id| ConsentId::parse(id))
                .map(|id| id.0),
        );
        out.more |= ids.len() >= SLICE;
    }
    conn.execute("DELETE FROM purged_visits", &[])?;
    Ok(out)
}

/// PostgreSQL: drops the monthly partitions of events and visits that lie wholly before every site's cut
/// (whole files go, no row is left behind to vacuum), after deleting the rows of later months that belong
/// to the visits going (a visit's events may run past the month it started in). The cut's own month is
/// left to the row deletes of [`purge`].
fn drop_whole_months(conn: &mut Conn, cuts: &[SiteCut]) -> Result<PurgeReport> {
    let mut report = PurgeReport::default();
    let Some(cut) = cuts.iter().map(|c| c.visits_before).min() else {
        return Ok(report);
    };
    let floor = super::postgres::month_floor(cut)?;
    let visits: Vec<String> = super::postgres::partitions(conn, "visits")?
        .into_iter()
        .filter(|(_, _, end)| *end <= floor)
        .map(|(name, _, _)| name)
        .collect();
    let events: Vec<String> = super::postgres::partitions(conn, "events")?
        .into_iter()
        .filter(|(_, _, end)| *end <= floor)
        .map(|(name, _, _)| name)
        .collect();
    for name in &visits {
        report.events += conn.execute(
            &format!("DELETE FROM events WHERE ts >= ?1 AND visit_id IN (SELECT id FROM {name})"),
            args![floor],
        )?;
    }
    for (names, count) in [(&events, &mut report.events), (&visits, &mut report.visits)] {
        for name in names {
            *count += conn.value::<usize>(&format!("SELECT COUNT(*) FROM {name}"), &[])?;
            conn.batch(&format!("DROP TABLE {name}"))?;
        }
    }
    Ok(report)
}
