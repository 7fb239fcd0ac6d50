//! The consent log in SQL: append, read back, and the grants that feed the in-memory consent cache.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use crate::domain::consent::{Action, ConsentId, ConsentRecord};
use crate::domain::consent_cache::LatestConsent;
use crate::error::{Error, Result};

pub fn append(conn: &Connection, rec: &ConsentRecord) -> Result<()> {
    let choices =
        serde_json::to_string(&rec.choices).map_err(|e| Error::Internal(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO consents (consent_id, site_id, created_at, revision, policy_hash, choices, grants_analytics,
                               action, language, page_path, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        rec.consent_id.to_string(),
        rec.site,
        rec.created_at.unix_timestamp(),
        rec.revision,
        rec.policy_hash,
        choices,
        rec.grants_analytics(),
        rec.action.as_str(),
        rec.language,
        rec.page_path,
        rec.expires_at.unix_timestamp(),
    ])?;
    Ok(())
}

fn ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn from_row(r: &Row) -> rusqlite::Result<ConsentRecord> {
    let id: String = r.get(0)?;
    let choices: String = r.get(5)?;
    let action: String = r.get(6)?;
    let bad = |what: &str| {
        rusqlite::Error::InvalidColumnType(0, what.to_string(), rusqlite::types::Type::Text)
    };
    Ok(ConsentRecord {
        consent_id: ConsentId::parse(&id).ok_or_else(|| bad("consent_id"))?,
        site: r.get(1)?,
        created_at: ts(r.get(2)?),
        revision: r.get(3)?,
        policy_hash: r.get(4)?,
        choices: serde_json::from_str::<BTreeMap<String, bool>>(&choices)
            .map_err(|_| bad("choices"))?,
        action: Action::parse(&action).ok_or_else(|| bad("action"))?,
        language: r.get(7)?,
        page_path: r.get(8)?,
        expires_at: ts(r.get(9)?),
    })
}

const COLUMNS: &str = "consent_id, site_id, created_at, revision, policy_hash, choices, action, language, page_path, expires_at";

/// Every record of a consent id, oldest first.
pub fn history(conn: &Connection, id: ConsentId) -> Result<Vec<ConsentRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM consents WHERE consent_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([id.to_string()], from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn latest(conn: &Connection, id: ConsentId) -> Result<Option<ConsentRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM consents WHERE consent_id = ?1 ORDER BY id DESC LIMIT 1"
    ))?;
    let mut rows = stmt.query_map([id.to_string()], from_row)?;
    Ok(rows.next().transpose()?)
}

pub(crate) const LATEST_STATE: &str =
    "SELECT site_id, revision, grants_analytics, expires_at FROM consents
     WHERE consent_id = ?1 ORDER BY id DESC LIMIT 1";

/// What the consent check needs of an id's latest record, read from the log itself (the writer's look-up
/// when the cache does not know the id; within the writer's transaction it sees the batch's own records).
pub fn latest_state(conn: &Connection, id: ConsentId) -> Result<Option<LatestConsent>> {
    Ok(conn
        .prepare_cached(LATEST_STATE)?
        .query_row([id.to_string()], |r| {
            Ok(LatestConsent {
                site: r.get(0)?,
                revision: r.get(1)?,
                analytics: r.get(2)?,
                expires_at: r.get(3)?,
            })
        })
        .optional()?)
}

/// Deletes every record of a consent id; returns how many.
pub(crate) const DELETE_OF: &str = "DELETE FROM consents WHERE consent_id = ?1";

pub fn delete_of(conn: &Connection, id: ConsentId) -> Result<usize> {
    Ok(conn.prepare_cached(DELETE_OF)?.execute([id.to_string()])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consent::add_months;

    fn record(id: ConsentId, site: &str, at: i64, analytics: bool) -> ConsentRecord {
        let at = ts(at);
        ConsentRecord {
            consent_id: id,
            site: site.into(),
            created_at: at,
            revision: 1,
            policy_hash: "h".into(),
            choices: [
                ("necessary".to_string(), true),
                ("analytics".to_string(), analytics),
            ]
            .into(),
            action: if analytics {
                Action::AcceptAll
            } else {
                Action::Withdraw
            },
            language: None,
            page_path: None,
            expires_at: add_months(at, 1),
        }
    }

    #[test]
    fn the_latest_record_decides() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::storage::db::open_and_migrate(&dir.path().join("g.db")).unwrap();
        let now = 1_800_000_000;
        let (withdrawn, regranted, unknown) = (ConsentId(2), ConsentId(3), ConsentId(9));
        append(&conn, &record(withdrawn, "a", now - 10, true)).unwrap();
        append(&conn, &record(regranted, "a", now - 10, false)).unwrap();
        append(&conn, &record(withdrawn, "a", now - 5, false)).unwrap();
        append(&conn, &record(regranted, "a", now - 5, true)).unwrap();
        assert!(!latest_state(&conn, withdrawn).unwrap().unwrap().analytics);
        assert!(latest_state(&conn, regranted).unwrap().unwrap().analytics);
        assert_eq!(latest_state(&conn, unknown).unwrap(), None);
        assert_eq!(delete_of(&conn, withdrawn).unwrap(), 2);
        assert_eq!(latest_state(&conn, withdrawn).unwrap(), None);
        assert_eq!(history(&conn, regranted).unwrap().len(), 2);
    }
}
