//! The consent log in SQL: append, read back, and the grants that feed the in-memory consent cache.

use std::collections::BTreeMap;

use rusqlite::{Connection, Row, params};
use time::OffsetDateTime;

use crate::domain::consent::{Action, ConsentId, ConsentRecord, GrantSet};
use crate::domain::visits;
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

/// The consent ids whose latest record grants analytics and has not expired at `now`. Streams the log in
/// index order (consent id, then record), keeping only the latest record of each id, so loading needs no
/// temporary table however long the log is.
pub fn load_grants(conn: &Connection, now: i64) -> Result<GrantSet> {
    let mut stmt =
        conn.prepare("SELECT consent_id, site_id, expires_at, grants_analytics FROM consents ORDER BY consent_id, id")?;
    let mut rows = stmt.query([])?;
    let mut set = GrantSet::default();
    // The latest record seen of the current consent id: (id, site, expires_at, grants).
    let mut current: Option<(String, String, i64, bool)> = None;
    let emit = |c: &(String, String, i64, bool), set: &mut GrantSet| {
        if c.3
            && c.2 > now
            && let Some(id) = ConsentId::parse(&c.0)
        {
            set.insert(id, &c.1, c.2);
        }
    };
    while let Some(r) = rows.next()? {
        let id = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        let site = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        let (expires_at, grants): (i64, bool) = (r.get(2)?, r.get(3)?);
        match &mut current {
            Some(c) if c.0 == id => {
                c.1.clear();
                c.1.push_str(site);
                c.2 = expires_at;
                c.3 = grants;
            }
            _ => {
                if let Some(c) = &current {
                    emit(c, &mut set);
                }
                current = Some((id.to_string(), site.to_string(), expires_at, grants));
            }
        }
    }
    if let Some(c) = &current {
        emit(c, &mut set);
    }
    Ok(set)
}

/// The pseudonymous visitor key a consent id has on each site it has records on: how every row derived
/// from the id (events, visits) is found, for export and erasure.
pub fn visitor_keys(conn: &Connection, id: ConsentId) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.secret FROM sites s WHERE s.id IN (SELECT DISTINCT site_id FROM consents WHERE consent_id = ?1)",
    )?;
    let rows = stmt.query_map([id.to_string()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut keys = Vec::new();
    for row in rows {
        let (site, secret) = row?;
        keys.push((site, visits::visitor_key(&secret, id)));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consent::{ConsentCache, Verdict, add_months};

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
    fn grants_come_from_each_ids_latest_record() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::storage::open_db(&dir.path().join("g.db")).unwrap();
        let now = 1_800_000_000;
        let (granted, withdrawn, regranted, expired, other) = (
            ConsentId(1),
            ConsentId(2),
            ConsentId(3),
            ConsentId(4),
            ConsentId(5),
        );
        append(&conn, &record(granted, "a", now - 10, true)).unwrap();
        append(&conn, &record(withdrawn, "a", now - 10, true)).unwrap();
        append(&conn, &record(regranted, "a", now - 10, false)).unwrap();
        append(&conn, &record(withdrawn, "a", now - 5, false)).unwrap();
        append(&conn, &record(regranted, "a", now - 5, true)).unwrap();
        append(&conn, &record(expired, "a", now - 60 * 86_400, true)).unwrap();
        append(&conn, &record(other, "b", now - 10, true)).unwrap();
        let cache = ConsentCache::default();
        cache.replace_all(load_grants(&conn, now).unwrap());
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.check(granted, "a", now), Verdict::Granted);
        assert_eq!(cache.check(regranted, "a", now), Verdict::Granted);
        assert_eq!(cache.check(other, "b", now), Verdict::Granted);
        assert_ne!(cache.check(other, "a", now), Verdict::Granted);
        assert_ne!(cache.check(withdrawn, "a", now), Verdict::Granted);
        assert_ne!(cache.check(expired, "a", now), Verdict::Granted);
    }
}
