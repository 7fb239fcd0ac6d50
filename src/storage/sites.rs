//! Site rows: settings as JSON, the policy revision and its history, the per-site secret.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::site::SiteConfig;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct SiteRow {
    pub id: String,
    pub config: SiteConfig,
    pub revision: u32,
    pub secret: Vec<u8>,
}

fn random_secret() -> Result<Vec<u8>> {
    let mut s = vec![0u8; 32];
    getrandom::fill(&mut s).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(s)
}

fn record_revision(
    conn: &Connection,
    id: &str,
    revision: u32,
    config: &SiteConfig,
    now: i64,
) -> Result<()> {
    let policy =
        serde_json::json!({ "categories": config.categories, "texts": config.merged_texts() });
    conn.execute(
        "INSERT OR REPLACE INTO site_revisions (site_id, revision, policy_hash, policy, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, revision, config.policy_hash(), policy.to_string(), now],
    )?;
    Ok(())
}

fn row_to_site(id: String, config: String, revision: u32, secret: Vec<u8>) -> Result<SiteRow> {
    let config: SiteConfig = serde_json::from_str(&config).map_err(|e| {
        Error::Internal(format!(
            "stored settings of site {id:?} are unreadable: {e}"
        ))
    })?;
    Ok(SiteRow {
        id,
        config,
        revision,
        secret,
    })
}

pub fn insert(conn: &mut Connection, id: &str, config: &SiteConfig, now: i64) -> Result<()> {
    let tx = conn.transaction()?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sites WHERE id = ?1)",
        [id],
        |r| r.get(0),
    )?;
    if exists {
        return Err(Error::Conflict(format!("site {id:?} already exists")));
    }
    tx.execute(
        "INSERT INTO sites (id, config, revision, secret, created_at, updated_at) VALUES (?1, ?2, 1, ?3, ?4, ?4)",
        params![id, serde_json::to_string(config).map_err(|e| Error::Internal(e.to_string()))?, random_secret()?, now],
    )?;
    record_revision(&tx, id, 1, config, now)?;
    tx.commit()?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<SiteRow>> {
    let row = conn
        .query_row(
            "SELECT id, config, revision, secret FROM sites WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    row.map(|(i, c, r, s)| row_to_site(i, c, r, s)).transpose()
}

pub fn list(conn: &Connection) -> Result<Vec<SiteRow>> {
    let mut stmt = conn.prepare("SELECT id, config, revision, secret FROM sites ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (i, c, r, s) = row?;
        out.push(row_to_site(i, c, r, s)?);
    }
    Ok(out)
}

/// Applies new settings. The revision moves when what visitors are asked changed, or when `bump`.
/// Returns the revision now in force.
pub fn update(
    conn: &mut Connection,
    id: &str,
    config: &SiteConfig,
    bump: bool,
    now: i64,
) -> Result<u32> {
    let tx = conn.transaction()?;
    let current = get(&tx, id)?.ok_or_else(|| Error::NotFound(format!("unknown site {id:?}")))?;
    let changed = current.config.policy_hash() != config.policy_hash();
    let revision = if changed || bump {
        current.revision + 1
    } else {
        current.revision
    };
    tx.execute(
        "UPDATE sites SET config = ?2, revision = ?3, updated_at = ?4 WHERE id = ?1",
        params![
            id,
            serde_json::to_string(config).map_err(|e| Error::Internal(e.to_string()))?,
            revision,
            now
        ],
    )?;
    if revision != current.revision {
        record_revision(&tx, id, revision, config, now)?;
    }
    tx.commit()?;
    Ok(revision)
}

/// Removes a site and everything collected for it.
pub fn remove(conn: &mut Connection, id: &str) -> Result<bool> {
    let tx = conn.transaction()?;
    for sql in [
        "DELETE FROM events WHERE site_id = ?1",
        "DELETE FROM visits WHERE site_id = ?1",
        "DELETE FROM consents WHERE site_id = ?1",
        "DELETE FROM site_revisions WHERE site_id = ?1",
        "DELETE FROM rollups WHERE site_id = ?1",
        "DELETE FROM rollup_visitors WHERE site_id = ?1",
        "DELETE FROM rollup_zones WHERE site_id = ?1",
        "DELETE FROM user_sites WHERE site_id = ?1",
    ] {
        tx.execute(sql, [id])?;
    }
    let n = tx.execute("DELETE FROM sites WHERE id = ?1", [id])?;
    tx.commit()?;
    Ok(n > 0)
}

/// Moves whenever any site changes; servers poll it to reload their in-memory registry.
pub fn generation(conn: &Connection) -> Result<i64> {
    Ok(generations(conn)?.sites)
}

/// The counters that tell a running server what other processes changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Generations {
    /// Moves with any change to the sites table (a trigger).
    pub sites: i64,
    /// Moves when a command deleted collected data (`assent purge`).
    pub data: i64,
}

pub fn generations(conn: &Connection) -> Result<Generations> {
    let mut g = Generations::default();
    let mut stmt = conn.prepare_cached(
        "SELECT key, value FROM meta WHERE key IN ('sites_generation', 'data_generation')",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let value: i64 = r.get::<_, String>(1)?.parse().unwrap_or(0);
        match r.get_ref(0)?.as_str().unwrap_or("") {
            "sites_generation" => g.sites = value,
            _ => g.data = value,
        }
    }
    Ok(g)
}

/// Tells a running server that collected data changed behind its back.
pub fn bump_data_generation(conn: &Connection) -> Result<()> {
    conn.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_generation'",
        [],
    )?;
    Ok(())
}

/// What the writer needs of each site: the key of its visitor hash, its current revision and the time
/// zone its statistics are counted in.
pub struct SiteKeys {
    pub id: String,
    pub secret: Vec<u8>,
    pub revision: u32,
    pub timezone: String,
}

pub fn keys(conn: &Connection) -> Result<Vec<SiteKeys>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, secret, revision, COALESCE(json_extract(config, '$.timezone'), 'UTC') FROM sites ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SiteKeys {
            id: r.get(0)?,
            secret: r.get(1)?,
            revision: r.get(2)?,
            timezone: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
