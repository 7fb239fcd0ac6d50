//! Receipts of deletions (privacy invariants 5 and 6, for the operator): each erasure stores, per site it
//! removed rows of, the time and the rows removed per kind; each retention run stores its cut-off and
//! counts. A receipt holds no personal data: no consent id, visitor key, page or address.

use serde::Serialize;

use crate::args;
use crate::error::Result;
use crate::storage::sql::Conn;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// Unix seconds.
    pub created_at: i64,
    /// `erasure` or `retention`.
    pub kind: &'static str,
    /// The site an erasure removed rows of; none for a retention run (every site).
    pub site: Option<String>,
    /// A retention run's cut-off, Unix seconds.
    pub cutoff: Option<i64>,
    pub consent_records: usize,
    pub visits: usize,
    pub events: usize,
}

impl Receipt {
    pub fn erasure(
        at: i64,
        site: &str,
        consent_records: usize,
        visits: usize,
        events: usize,
    ) -> Receipt {
        Receipt {
            created_at: at,
            kind: "erasure",
            site: Some(site.to_string()),
            cutoff: None,
            consent_records,
            visits,
            events,
        }
    }

    pub fn retention(at: i64, cutoff: i64, report: &super::retention::PurgeReport) -> Receipt {
        Receipt {
            created_at: at,
            kind: "retention",
            site: None,
            cutoff: Some(cutoff),
            consent_records: report.consent_records,
            visits: report.visits,
            events: report.events,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.consent_records == 0 && self.visits == 0 && self.events == 0
    }
}

pub fn insert(conn: &mut Conn, r: &Receipt) -> Result<()> {
    conn.execute(
        "INSERT INTO deletion_receipts (created_at, kind, site_id, cutoff, consent_records, visits, events)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        args![
            r.created_at,
            r.kind,
            &r.site,
            r.cutoff,
            r.consent_records,
            r.visits,
            r.events
        ],
    )?;
    Ok(())
}

/// The latest receipts, newest first.
pub fn latest(conn: &mut Conn, limit: usize) -> Result<Vec<Receipt>> {
    conn.rows(
        "SELECT created_at, kind, site_id, cutoff, consent_records, visits, events FROM deletion_receipts
         ORDER BY id DESC LIMIT ?1",
        args![limit],
        |r| {
            let kind: String = r.get(1)?;
            Ok(Receipt {
                created_at: r.get(0)?,
                kind: if kind == "erasure" {
                    "erasure"
                } else {
                    "retention"
                },
                site: r.get(2)?,
                cutoff: r.get(3)?,
                consent_records: r.get(4)?,
                visits: r.get(5)?,
                events: r.get(6)?,
            })
        },
    )
}

/// Deletes the consent records of `id`, per site: (site, records removed).
pub fn delete_consents_by_site(
    conn: &mut Conn,
    id: crate::domain::consent::ConsentId,
) -> Result<Vec<(String, usize)>> {
    let mut by_site: Vec<(String, usize)> = Vec::new();
    conn.for_each(
        &format!("{} RETURNING site_id", super::consents::DELETE_OF),
        args![&id.to_string()],
        |r| {
            let site: String = r.get(0)?;
            match by_site.iter_mut().find(|(s, _)| *s == site) {
                Some((_, n)) => *n += 1,
                None => by_site.push((site, 1)),
            }
            Ok(())
        },
    )?;
    Ok(by_site)
}
