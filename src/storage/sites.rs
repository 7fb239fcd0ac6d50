//! Site rows: settings as JSON, the policy revision and its history, the per-site secret.

use crate::args;
use crate::domain::site::SiteConfig;
use crate::error::{Error, Result};
use crate::storage::sql::Conn;

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
    conn: &mut Conn,
    id: &str,
    revision: u32,
    config: &SiteConfig,
    now: i64,
) -> Result<()> {
    let policy =
        serde_json::json!({ "categories": config.categories, "texts": config.merged_texts() });
    conn.execute(
        "INSERT INTO site_revisions (site_id, revision, policy_hash, policy, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (site_id, revision) DO UPDATE SET policy_hash = excluded.policy_hash,
             policy = excluded.policy, created_at = excluded.created_at",
        args![id, revision, &config.policy_hash(), &policy.to_string(), now],
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

fn json(config: &SiteConfig) -> Result<String> {
    serde_json::to_string(config).map_err(|e| Error::Internal(e.to_string()))
}

pub fn insert(conn: &mut Conn, id: &str, config: &SiteConfig, now: i64) -> Result<()> {
    conn.transaction(|tx| {
        let exists: bool = tx.value(
            "SELECT EXISTS (SELECT 1 FROM sites WHERE id = ?1)",
            args![id],
        )?;
        if exists {
            return Err(Error::Conflict(format!("site {id:?} already exists")));
        }
        tx.execute(
            "INSERT INTO sites (id, config, revision, secret, created_at, updated_at) VALUES (?1, ?2, 1, ?3, ?4, ?4)",
            args![id, &json(config)?, &random_secret()?, now],
        )?;
        record_revision(tx, id, 1, config, now)
    })
}

const SITE_COLUMNS: &str = "SELECT id, config, revision, secret FROM sites";

pub fn get(conn: &mut Conn, id: &str) -> Result<Option<SiteRow>> {
    conn.row(&format!("{SITE_COLUMNS} WHERE id = ?1"), args![id], |r| {
        row_to_site(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)
    })
}

pub fn list(conn: &mut Conn) -> Result<Vec<SiteRow>> {
    conn.rows(&format!("{SITE_COLUMNS} ORDER BY id"), &[], |r| {
        row_to_site(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)
    })
}

/// Applies new settings. The revision moves when what visitors are asked changed, or when `bump`.
/// Returns the revision now in force.
pub fn update(conn: &mut Conn, id: &str, config: &SiteConfig, bump: bool, now: i64) -> Result<u32> {
    conn.transaction(|tx| {
        let current =
            get(tx, id)?.ok_or_else(|| Error::NotFound(format!("unknown site {id:?}")))?;
        let changed = current.config.policy_hash() != config.policy_hash();
        let revision = if changed || bump {
            current.revision + 1
        } else {
            current.revision
        };
        tx.execute(
            "UPDATE sites SET config = ?2, revision = ?3, updated_at = ?4 WHERE id = ?1",
            args![id, &json(config)?, revision, now],
        )?;
        if revision != current.revision {
            record_revision(tx, id, revision, config, now)?;
        }
        Ok(revision)
    })
}

/// Removes a site and everything collected for it.
pub fn remove(conn: &mut Conn, id: &str) -> Result<bool> {
    conn.transaction(|tx| {
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
            tx.execute(sql, args![id])?;
        }
        Ok(tx.execute("DELETE FROM sites WHERE id = ?1", args![id])? > 0)
    })
}

/// Moves whenever any site changes; servers poll it to reload their in-memory registry.
pub fn generation(conn: &mut Conn) -> Result<i64> {
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

pub fn generations(conn: &mut Conn) -> Result<Generations> {
    // Two lookups by key rather than `key IN (...)`, for which SQLite builds a temporary index on
    // every run: the writer asks on every batch, and that index was most of the question's cost.
    let found = conn.row(
        "SELECT (SELECT value FROM meta WHERE key = 'sites_generation'),
                (SELECT value FROM meta WHERE key = 'data_generation')",
        &[],
        |r| {
            let number =
                |i| -> Result<i64> { Ok(r.opt_str(i)?.and_then(|v| v.parse().ok()).unwrap_or(0)) };
            Ok(Generations {
                sites: number(0)?,
                data: number(1)?,
            })
        },
    )?;
    Ok(found.unwrap_or_default())
}

/// Tells a running server that collected data changed behind its back.
pub fn bump_data_generation(conn: &mut Conn) -> Result<()> {
    conn.execute(
        "UPDATE meta SET value = CAST(value AS BIGINT) + 1 WHERE key = 'data_generation'",
        &[],
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

pub fn keys(conn: &mut Conn) -> Result<Vec<SiteKeys>> {
    conn.rows(
        "SELECT id, secret, revision, config FROM sites ORDER BY id",
        &[],
        |r| {
            let config: serde_json::Value =
                serde_json::from_str(&r.get::<String>(3)?).unwrap_or_default();
            Ok(SiteKeys {
                id: r.get(0)?,
                secret: r.get(1)?,
                revision: r.get(2)?,
                timezone: config["timezone"].as_str().unwrap_or("UTC").to_string(),
            })
        },
    )
}
