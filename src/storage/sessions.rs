//! Dashboard accounts: login sessions (kept as token digests), users and their sites, and Stats API keys as
//! the dashboard manages them. These writes do not go through the event writer: like `assent user add`
//! from another process, they use a connection of their own (SQLite serialises the two writers), so a
//! login never waits behind a batch of events.

use std::sync::{Mutex, OnceLock};

use super::engine::{Location, Owned};
use super::sql::Conn;
use super::{Store, users};
use crate::args;
use crate::domain::dashboard::auth::{self, IDLE_SECS, TOUCH_SECS};
use crate::domain::site::SiteConfig;
use crate::error::{Error, Result};

/// The one connection the dashboard's writes use, opened on first use.
pub struct SideWriter {
    location: Location,
    conn: Mutex<Option<Owned>>,
}

impl SideWriter {
    pub fn new(location: Location) -> SideWriter {
        SideWriter {
            location,
            conn: Mutex::new(None),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if !guard.as_ref().is_some_and(Owned::is_usable) {
            *guard = Some(self.location.open()?);
        }
        let owned = guard
            .as_mut()
            .ok_or_else(|| Error::Internal("no account connection".into()))?;
        f(&mut owned.conn())
    }
}

/// The user of a live session.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub id: i64,
    pub email: String,
    pub admin: bool,
    /// The sites a viewer may read (admins: every site).
    pub sites: Vec<String>,
}

impl SessionUser {
    pub fn may_read(&self, site: &str) -> bool {
        self.admin || self.sites.iter().any(|s| s == site)
    }
}

/// A user as the settings page lists them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub admin: bool,
    pub sites: Vec<String>,
    pub created_at: i64,
}

/// A Stats API key as listed (never the key itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyRow {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

fn sites_of(conn: &mut Conn, user: i64) -> Result<Vec<String>> {
    conn.rows(
        "SELECT site_id FROM user_sites WHERE user_id = ?1 ORDER BY site_id",
        args![user],
        |r| r.get(0),
    )
}

/// Opens a session for a user; returns its token (only its digest is stored).
pub fn create(conn: &mut Conn, user: i64, now: i64) -> Result<String> {
    let token = auth::new_token().ok_or_else(|| Error::Internal("no randomness".into()))?;
    conn.execute(
        "DELETE FROM sessions WHERE last_seen <= ?1",
        args![now - IDLE_SECS],
    )?;
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen) VALUES (?1, ?2, ?3, ?3)",
        args![&auth::token_digest(&token), user, now],
    )?;
    Ok(token)
}

/// The session of a token: its user and when it was last used, if it is still open.
pub fn lookup(conn: &mut Conn, token: &str, now: i64) -> Result<Option<(SessionUser, i64)>> {
    let row: Option<(i64, String, bool, i64)> = conn.row(
        "SELECT u.id, u.email, u.is_admin, s.last_seen FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1",
        args![&auth::token_digest(token)],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let Some((id, email, admin, last_seen)) = row else {
        return Ok(None);
    };
    if !auth::alive(last_seen, now) {
        return Ok(None);
    }
    let sites = if admin {
        Vec::new()
    } else {
        sites_of(conn, id)?
    };
    Ok(Some((
        SessionUser {
            id,
            email,
            admin,
            sites,
        },
        last_seen,
    )))
}

pub fn list_users(conn: &mut Conn) -> Result<Vec<UserRow>> {
    let rows: Vec<(i64, String, bool, i64)> = conn.rows(
        "SELECT id, email, is_admin, created_at FROM users ORDER BY email",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    rows.into_iter()
        .map(|(id, email, admin, created_at)| {
            Ok(UserRow {
                id,
                sites: if admin {
                    Vec::new()
                } else {
                    sites_of(conn, id)?
                },
                email,
                admin,
                created_at,
            })
        })
        .collect()
}

pub fn list_keys(conn: &mut Conn, user: i64) -> Result<Vec<KeyRow>> {
    conn.rows(
        "SELECT id, name, created_at FROM api_keys WHERE user_id = ?1 ORDER BY created_at, id",
        args![user],
        |r| {
            Ok(KeyRow {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
            })
        },
    )
}

/// Checks a login in about the same time whether or not the address has an account (an unknown address
/// is checked against a decoy hash), so that timing does not tell which addresses have one.
pub fn check_login_evenly(conn: &mut Conn, email: &str, password: &str) -> Result<Option<i64>> {
    static DECOY: OnceLock<String> = OnceLock::new();
    let row: Option<(i64, String)> = conn.row(
        "SELECT id, password_hash FROM users WHERE email = ?1",
        args![&email.trim().to_ascii_lowercase()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    match row {
        Some((id, hash)) => Ok(users::verify_password(password, &hash).then_some(id)),
        None => {
            let decoy =
                DECOY.get_or_init(|| users::hash_password("assent decoy").unwrap_or_default());
            users::verify_password(password, decoy);
            Ok(None)
        }
    }
}

fn email_of(conn: &mut Conn, user: i64) -> Result<String> {
    conn.row("SELECT email FROM users WHERE id = ?1", args![user], |r| {
        r.get(0)
    })?
    .ok_or_else(|| Error::NotFound("no such user".into()))
}

impl Store {
    pub(super) async fn accounts<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T> + Send + 'static,
    {
        let side = self.side.clone();
        actix_web::web::block(move || side.with(f))
            .await
            .map_err(|e| Error::Internal(format!("blocking account write failed: {e}")))?
    }

    /// Checks a login (Argon2id, off the async runtime); the user's id when it is right.
    pub async fn check_login(&self, email: String, password: String) -> Result<Option<i64>> {
        self.read(move |c| check_login_evenly(c, &email, &password))
            .await
    }

    /// A new session for a user; its token.
    pub async fn open_session(&self, user: i64, now: i64) -> Result<String> {
        self.accounts(move |c| create(c, user, now)).await
    }

    /// The user of a session token, if the session is open; its last use is recorded (every few minutes).
    pub async fn session(&self, token: String, now: i64) -> Result<Option<SessionUser>> {
        let digest = auth::token_digest(&token);
        let found = self.read(move |c| lookup(c, &token, now)).await?;
        let Some((user, last_seen)) = found else {
            return Ok(None);
        };
        if now - last_seen >= TOUCH_SECS {
            self.accounts(move |c| {
                c.execute(
                    "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1",
                    args![&digest, now],
                )?;
                Ok(())
            })
            .await?;
        }
        Ok(Some(user))
    }

    /// Ends one session.
    pub async fn close_session(&self, token: String) -> Result<()> {
        self.accounts(move |c| {
            c.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                args![&auth::token_digest(&token)],
            )?;
            Ok(())
        })
        .await
    }

    /// Changes a user's password after checking the current one, ends every session of the user and opens
    /// a new one for the caller; its token. Forbidden when the current password is wrong.
    pub async fn change_password(
        &self,
        user: i64,
        current: String,
        new: String,
        now: i64,
    ) -> Result<String> {
        if new.chars().count() < 10 {
            return Err(Error::bad(
                "the new password must be at least 10 characters",
            ));
        }
        let email = self.read(move |c| email_of(c, user)).await?;
        if self.check_login(email, current).await?.is_none() {
            return Err(Error::Forbidden("the current password is not right".into()));
        }
        let hash = users::hash_password(&new)?;
        self.accounts(move |c| {
            c.transaction(|tx| {
                tx.execute(
                    "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                    args![user, &hash],
                )?;
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", args![user])?;
                create(tx, user, now)
            })
        })
        .await
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        self.read(list_users).await
    }

    /// Adds a user (a viewer of `sites`, or an admin).
    pub async fn add_user(
        &self,
        email: String,
        password: String,
        admin: bool,
        sites: Vec<String>,
        now: i64,
    ) -> Result<()> {
        if password.chars().count() < 10 {
            return Err(Error::bad("the password must be at least 10 characters"));
        }
        self.accounts(move |c| {
            c.transaction(|tx| {
                users::add_user(tx, &email, &password, admin, now)?;
                for site in &sites {
                    users::grant_site(tx, &email, site)?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Removes a user, with their sessions, keys and grants; false when there was none.
    pub async fn remove_user(&self, user: i64) -> Result<bool> {
        self.accounts(move |c| {
            c.transaction(|tx| {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", args![user])?;
                Ok(tx.execute("DELETE FROM users WHERE id = ?1", args![user])? > 0)
            })
        })
        .await
    }

    pub async fn keys(&self, user: i64) -> Result<Vec<KeyRow>> {
        self.read(move |c| list_keys(c, user)).await
    }

    /// A new Stats API key for a user; the key, shown once.
    pub async fn create_key_for(&self, user: i64, name: String, now: i64) -> Result<String> {
        self.accounts(move |c| {
            let email = email_of(c, user)?;
            users::create_key(c, &email, &name, now)
        })
        .await
    }

    /// Revokes one of a user's keys; false when they have no such key.
    pub async fn revoke_key(&self, user: i64, key: i64) -> Result<bool> {
        self.accounts(move |c| {
            Ok(c.execute(
                "DELETE FROM api_keys WHERE id = ?1 AND user_id = ?2",
                args![key, user],
            )? > 0)
        })
        .await
    }
}

/// A site's settings as the dashboard changes them: written on the account connection (like `assent site
/// add/update/remove` from another process), so the sites table's trigger moves the generation that the
/// writer and the server's registry watch (see [`crate::state::AppState::refresh_sites`]).
impl Store {
    /// The stored row of a site (settings, revision).
    pub async fn site_row(&self, id: String) -> Result<Option<super::sites::SiteRow>> {
        self.read(move |c| super::sites::get(c, &id)).await
    }

    /// Adds a site with the given (validated) settings.
    pub async fn add_site(&self, id: String, config: SiteConfig, now: i64) -> Result<()> {
        self.accounts(move |c| super::sites::insert(c, &id, &config, now))
            .await
    }

    /// Applies new (validated) settings, as `assent site update` does; the revision now in force.
    pub async fn update_site(
        &self,
        id: String,
        config: SiteConfig,
        bump: bool,
        now: i64,
    ) -> Result<u32> {
        self.accounts(move |c| super::sites::update(c, &id, &config, bump, now))
            .await
    }

    /// Removes a site and everything collected for it, as `assent site remove` does.
    pub async fn remove_site(&self, id: String) -> Result<bool> {
        self.accounts(move |c| super::sites::remove(c, &id)).await
    }

    /// A page of a site's consent log, newest first, and the number of matching records.
    pub async fn consent_log(
        &self,
        site: String,
        filter: super::consents::LogFilter,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<crate::domain::consent::ConsentRecord>, u64)> {
        self.read(move |c| super::consents::log(c, &site, &filter, limit, offset))
            .await
    }

    /// The stored policy of a revision of a site.
    pub async fn revision_policy(
        &self,
        site: String,
        revision: u32,
    ) -> Result<Option<super::consents::RevisionPolicy>> {
        self.read(move |c| super::consents::revision_policy(c, &site, revision))
            .await
    }

    /// The revisions of a site whose policy is stored.
    pub async fn stored_revisions(&self, site: String) -> Result<Vec<u32>> {
        self.read(move |c| super::consents::stored_revisions(c, &site))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_follow_their_user() {
        let dir = tempfile::tempdir().unwrap();
        let mut lite = crate::storage::db::open_and_migrate(&dir.path().join("s.db")).unwrap();
        let conn = &mut Conn::Lite(&mut lite);
        users::add_user(conn, "v@example.com", "a long password", false, 1).unwrap();
        users::grant_site(conn, "v@example.com", "demo").unwrap();
        let token = create(conn, 1, 1000).unwrap();
        let (user, _) = lookup(conn, &token, 1000 + IDLE_SECS - 1).unwrap().unwrap();
        assert_eq!(user.sites, ["demo"]);
        assert!(user.may_read("demo") && !user.may_read("other"));
        assert!(lookup(conn, &token, 1000 + IDLE_SECS).unwrap().is_none());
        assert!(lookup(conn, "nope", 1000).unwrap().is_none());
        assert_eq!(
            check_login_evenly(conn, " V@example.com", "a long password").unwrap(),
            Some(1)
        );
        assert_eq!(
            check_login_evenly(conn, "v@example.com", "wrong").unwrap(),
            None
        );
        assert_eq!(
            check_login_evenly(conn, "x@example.com", "a long password").unwrap(),
            None
        );
        let stored: String = conn.value("SELECT token_hash FROM sessions", &[]).unwrap();
        assert_ne!(stored, token);
        conn.execute("DELETE FROM users", &[]).unwrap();
        assert_eq!(
            conn.value::<i64>("SELECT COUNT(*) FROM sessions", &[])
                .unwrap(),
            0
        );
    }
}
