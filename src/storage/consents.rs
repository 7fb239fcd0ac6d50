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

/// Which records of a site's consent log to list (the dashboard's consent log): all given conditions hold.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub consent_id: Option<ConsentId>,
    /// Created at or after (UTC seconds).
    pub from: Option<i64>,
    /// Created before (UTC seconds).
    pub to: Option<i64>,
    pub action: Option<Action>,
}

impl LogFilter {
    fn sql(&self) -> (String, Vec<rusqlite::types::Value>) {
        use rusqlite::types::Value as V;
        let mut clauses = vec!["site_id = ?".to_string()];
        let mut values: Vec<V> = Vec::new();
        if let Some(id) = self.consent_id {
            clauses.push("consent_id = ?".into());
            values.push(V::Text(id.to_string()));
        }
        if let Some(from) = self.from {
            clauses.push("created_at >= ?".into());
            values.push(V::Integer(from));
        }
        if let Some(to) = self.to {
            clauses.push("created_at < ?".into());
            values.push(V::Integer(to));
        }
        if let Some(a) = self.action {
            clauses.push("action = ?".into());
            values.push(V::Text(a.as_str().into()));
        }
        (clauses.join(" AND "), values)
    }
}

/// A page of a site's consent log, newest first, and how many records match in all.
pub fn log(
    conn: &Connection,
    site: &str,
    filter: &LogFilter,
    limit: usize,
    offset: usize,
) -> Result<(Vec<ConsentRecord>, u64)> {
    let (clause, values) = filter.sql();
    let mut params: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Text(site.into())];
    params.extend(values);
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM consents WHERE {clause}"))?
        .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))?;
    params.push(rusqlite::types::Value::Integer(limit as i64));
    params.push(rusqlite::types::Value::Integer(offset as i64));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM consents WHERE {clause} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), from_row)?;
    Ok((
        rows.collect::<rusqlite::Result<Vec<_>>>()?,
        total.max(0) as u64,
    ))
}

/// What visitors were shown at a revision of a site, as stored when the revision began: the hash the
/// consent records carry, the policy (categories and texts, JSON) and when it began.
#[derive(Debug, Clone)]
pub struct RevisionPolicy {
    pub revision: u32,
    pub policy_hash: String,
    pub policy: String,
    pub created_at: i64,
}

/// The stored policy of one revision of a site.
pub fn revision_policy(
    conn: &Connection,
    site: &str,
    revision: u32,
) -> Result<Option<RevisionPolicy>> {
    Ok(conn
        .prepare_cached(
            "SELECT revision, policy_hash, policy, created_at FROM site_revisions
             WHERE site_id = ?1 AND revision = ?2",
        )?
        .query_row(params![site, revision], |r| {
            Ok(RevisionPolicy {
                revision: r.get(0)?,
                policy_hash: r.get(1)?,
                policy: r.get(2)?,
                created_at: r.get(3)?,
            })
        })
        .optional()?)
}

/// The revisions of a site whose policy is stored.
pub fn stored_revisions(conn: &Connection, site: &str) -> Result<Vec<u32>> {
    Ok(conn
        .prepare_cached("SELECT revision FROM site_revisions WHERE site_id = ?1 ORDER BY revision")?
        .query_map([site], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<u32>>>()?)
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
