//! The consent log in SQL: append, read back, and the grants that feed the in-memory consent cache.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, Row, params};
use time::OffsetDateTime;

use crate::domain::consent::{Action, ConsentId, ConsentRecord, Grant};
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

/// The consent ids whose latest record grants analytics and has not expired at `now`.
pub fn load_grants(conn: &Connection, now: i64) -> Result<HashMap<u128, Grant>> {
    let mut stmt = conn.prepare(
        "SELECT c.consent_id, c.site_id, c.expires_at FROM consents c
         JOIN (SELECT MAX(id) AS id FROM consents GROUP BY consent_id) latest ON latest.id = c.id
         WHERE c.grants_analytics = 1 AND c.expires_at > ?1",
    )?;
    let mut out = HashMap::new();
    let rows = stmt.query_map([now], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (id, site, expires_at) = row?;
        if let Some(id) = ConsentId::parse(&id) {
            out.insert(id.0, Grant { site, expires_at });
        }
    }
    Ok(out)
}

/// The sites a consent id has records on.
pub fn sites_of(conn: &Connection, id: ConsentId) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT site_id FROM consents WHERE consent_id = ?1")?;
    let rows = stmt.query_map([id.to_string()], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}
