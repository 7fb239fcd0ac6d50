//! Retention (privacy invariant 3): deletes personal data older than the cut-off, site by site so each
//! delete walks an index.

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::error::Result;

#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct PurgeReport {
    pub events: usize,
    pub visits: usize,
    pub consent_records: usize,
}

const KINDS: [(&str, &str); 3] = [
    ("events", "ts"),
    ("visits", "started_at"),
    ("consents", "created_at"),
];

/// Deletes (or, with `dry_run`, counts) rows older than `cutoff` (Unix seconds).
pub fn purge(conn: &Connection, cutoff: i64, dry_run: bool) -> Result<PurgeReport> {
    // `assent site remove` deletes a site's rows with it, so the sites table names every site with data.
    let sites: Vec<String> = conn
        .prepare("SELECT id FROM sites")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut counts = [0usize; 3];
    for site in &sites {
        for (i, (table, column)) in KINDS.iter().enumerate() {
            counts[i] += if dry_run {
                conn.query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE site_id = ?1 AND {column} < ?2"),
                    params![site, cutoff],
                    |r| r.get::<_, i64>(0),
                )? as usize
            } else {
                conn.execute(
                    &format!("DELETE FROM {table} WHERE site_id = ?1 AND {column} < ?2"),
                    params![site, cutoff],
                )?
            };
        }
    }
    Ok(PurgeReport {
        events: counts[0],
        visits: counts[1],
        consent_records: counts[2],
    })
}
