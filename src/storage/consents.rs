//! The consent log in SQL: append, read back, and the grants that feed the in-memory consent cache.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::args;
use crate::domain::consent::{Action, ConsentId, ConsentRecord};
use crate::domain::consent_cache::LatestConsent;
use crate::error::{Error, Result};
use crate::storage::sql::{Arg, Conn, Row};

pub fn append(conn: &mut Conn, rec: &ConsentRecord) -> Result<()> {
    let choices =
        serde_json::to_string(&rec.choices).map_err(|e| Error::Internal(e.to_string()))?;
    let id = rec.consent_id.to_string();
    conn.execute(
        "INSERT INTO consents (consent_id, site_id, created_at, revision, policy_hash, choices, grants_analytics,
                               action, language, page_path, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        args![
            &id,
            &rec.site,
            rec.created_at.unix_timestamp(),
            rec.revision,
            &rec.policy_hash,
            &choices,
            rec.grants_analytics(),
            rec.action.as_str(),
            &rec.language,
            &rec.page_path,
            rec.expires_at.unix_timestamp(),
        ],
    )?;
    Ok(())
}

fn ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn from_row(r: &Row) -> Result<ConsentRecord> {
    let id: String = r.get(0)?;
    let choices: String = r.get(5)?;
    let action: String = r.get(6)?;
    let bad = |what: &str| Error::Database(format!("a consent record has an invalid {what}"));
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
pub fn history(conn: &mut Conn, id: ConsentId) -> Result<Vec<ConsentRecord>> {
    conn.rows(
        &format!("SELECT {COLUMNS} FROM consents WHERE consent_id = ?1 ORDER BY id"),
        args![&id.to_string()],
        from_row,
    )
}

pub fn latest(conn: &mut Conn, id: ConsentId) -> Result<Option<ConsentRecord>> {
    conn.row(
        &format!("SELECT {COLUMNS} FROM consents WHERE consent_id = ?1 ORDER BY id DESC LIMIT 1"),
        args![&id.to_string()],
        from_row,
    )
}

pub(crate) const LATEST_STATE: &str =
    "SELECT site_id, revision, grants_analytics, expires_at FROM consents
     WHERE consent_id = ?1 ORDER BY id DESC LIMIT 1";

/// What the consent check needs of an id's latest record, read from the log itself (the writer's look-up
/// when the cache does not know the id; within the writer's transaction it sees the batch's own records).
pub fn latest_state(conn: &mut Conn, id: ConsentId) -> Result<Option<LatestConsent>> {
    conn.row(LATEST_STATE, args![&id.to_string()], |r| {
        Ok(LatestConsent {
            site: r.get(0)?,
            revision: r.get(1)?,
            analytics: r.get(2)?,
            expires_at: r.get(3)?,
        })
    })
}

/// Deletes every record of a consent id; returns how many.
pub(crate) const DELETE_OF: &str = "DELETE FROM consents WHERE consent_id = ?1";

pub fn delete_of(conn: &mut Conn, id: ConsentId) -> Result<usize> {
    conn.execute(DELETE_OF, args![&id.to_string()])
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

/// A filter's conditions with the texts they bind (the arguments borrow them).
struct FilterSql {
    clause: String,
    consent_id: Option<String>,
}

impl LogFilter {
    fn sql(&self) -> FilterSql {
        let mut clauses = vec!["site_id = ?"];
        if self.consent_id.is_some() {
            clauses.push("consent_id = ?");
        }
        if self.from.is_some() {
            clauses.push("created_at >= ?");
        }
        if self.to.is_some() {
            clauses.push("created_at < ?");
        }
        if self.action.is_some() {
            clauses.push("action = ?");
        }
        FilterSql {
            clause: clauses.join(" AND "),
            consent_id: self.consent_id.map(|id| id.to_string()),
        }
    }

    /// The arguments of [`LogFilter::sql`]'s clause, in its order.
    fn args<'a>(&self, site: &'a str, sql: &'a FilterSql) -> Vec<Arg<'a>> {
        let mut values = vec![Arg::Text(site)];
        values.extend(sql.consent_id.as_deref().map(Arg::Text));
        values.extend(self.from.map(Arg::Int));
        values.extend(self.to.map(Arg::Int));
        values.extend(self.action.map(|a| Arg::Text(a.as_str())));
        values
    }
}

/// A page of a site's consent log, newest first, and how many records match in all.
pub fn log(
    conn: &mut Conn,
    site: &str,
    filter: &LogFilter,
    limit: usize,
    offset: usize,
) -> Result<(Vec<ConsentRecord>, u64)> {
    let sql = filter.sql();
    let mut values = filter.args(site, &sql);
    let clause = &sql.clause;
    let total: i64 = conn.value(
        &format!("SELECT COUNT(*) FROM consents WHERE {clause}"),
        &values,
    )?;
    values.push(Arg::from(limit));
    values.push(Arg::from(offset));
    let rows = conn.rows(
        &format!(
            "SELECT {COLUMNS} FROM consents WHERE {clause} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        ),
        &values,
        from_row,
    )?;
    Ok((rows, total.max(0) as u64))
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
    conn: &mut Conn,
    site: &str,
    revision: u32,
) -> Result<Option<RevisionPolicy>> {
    conn.row(
        "SELECT revision, policy_hash, policy, created_at FROM site_revisions
         WHERE site_id = ?1 AND revision = ?2",
        args![site, revision],
        |r| {
            Ok(RevisionPolicy {
                revision: r.get(0)?,
                policy_hash: r.get(1)?,
                policy: r.get(2)?,
                created_at: r.get(3)?,
            })
        },
    )
}

/// The revisions of a site whose policy is stored.
pub fn stored_revisions(conn: &mut Conn, site: &str) -> Result<Vec<u32>> {
    conn.rows(
        "SELECT revision FROM site_revisions WHERE site_id = ?1 ORDER BY revision",
        args![site],
        |r| r.get(0),
    )
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
        let mut lite = crate::storage::db::open_and_migrate(&dir.path().join("g.db")).unwrap();
        let conn = &mut Conn::Lite(&mut lite);
        let now = 1_800_000_000;
        let (withdrawn, regranted, unknown) = (ConsentId(2), ConsentId(3), ConsentId(9));
        append(conn, &record(withdrawn, "a", now - 10, true)).unwrap();
        append(conn, &record(regranted, "a", now - 10, false)).unwrap();
        append(conn, &record(withdrawn, "a", now - 5, false)).unwrap();
        append(conn, &record(regranted, "a", now - 5, true)).unwrap();
        assert!(!latest_state(conn, withdrawn).unwrap().unwrap().analytics);
        assert!(latest_state(conn, regranted).unwrap().unwrap().analytics);
        assert_eq!(latest_state(conn, unknown).unwrap(), None);
        assert_eq!(delete_of(conn, withdrawn).unwrap(), 2);
        assert_eq!(latest_state(conn, withdrawn).unwrap(), None);
        assert_eq!(history(conn, regranted).unwrap().len(), 2);
    }
}
