//! Dashboard users and Stats API keys. Passwords are stored as Argon2id hashes, API keys as SHA-256
//! digests: neither can be read back.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use sha2::{Digest, Sha256};

use crate::args;
use crate::error::{Error, Result};
use crate::storage::sql::Conn;

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(b)
}

/// A random password of 20 URL-safe characters for generated logins.
pub fn generate_password() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    Ok(random_bytes::<20>()?
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| Error::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
}

pub fn add_user(conn: &mut Conn, email: &str, password: &str, admin: bool, now: i64) -> Result<()> {
    let email = email.trim().to_ascii_lowercase();
    if !valid_email(&email) {
        return Err(Error::bad(format!("invalid email address {email:?}")));
    }
    if password.chars().count() < 10 {
        return Err(Error::bad("the password must be at least 10 characters"));
    }
    let exists: bool = conn.value(
        "SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1)",
        args![&email],
    )?;
    if exists {
        return Err(Error::Conflict(format!("user {email:?} already exists")));
    }
    conn.execute(
        "INSERT INTO users (email, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)",
        args![&email, &hash_password(password)?, admin, now],
    )?;
    Ok(())
}

pub fn count_users(conn: &mut Conn) -> Result<i64> {
    conn.value("SELECT COUNT(*) FROM users", &[])
}

/// Checks a login; returns the user id.
pub fn check_login(conn: &mut Conn, email: &str, password: &str) -> Result<Option<i64>> {
    let row: Option<(i64, String)> = conn.row(
        "SELECT id, password_hash FROM users WHERE email = ?1",
        args![&email.trim().to_ascii_lowercase()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(row
        .filter(|(_, h)| verify_password(password, h))
        .map(|(id, _)| id))
}

fn key_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates a Stats API key for a user and returns it; only its digest is kept.
pub fn create_key(conn: &mut Conn, email: &str, name: &str, now: i64) -> Result<String> {
    let user: Option<i64> = conn.row(
        "SELECT id FROM users WHERE email = ?1",
        args![&email.trim().to_ascii_lowercase()],
        |r| r.get(0),
    )?;
    let user = user.ok_or_else(|| Error::NotFound(format!("no user {email:?}")))?;
    let key = format!("assent_{}", hex::encode(random_bytes::<24>()?));
    conn.execute(
        "INSERT INTO api_keys (user_id, name, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        args![user, name, &key_digest(&key), now],
    )?;
    Ok(key)
}

/// The user a Stats API key belongs to.
pub fn user_of_key(conn: &mut Conn, key: &str) -> Result<Option<i64>> {
    Ok(key_owner(conn, key)?.map(|k| k.user))
}

/// Who a Stats API key acts for, and which sites they may read (None: every site, an admin).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyOwner {
    pub key: i64,
    pub user: i64,
    pub sites: Option<Vec<String>>,
}

pub fn key_owner(conn: &mut Conn, key: &str) -> Result<Option<KeyOwner>> {
    let row: Option<(i64, i64, bool)> = conn.row(
        "SELECT k.id, u.id, u.is_admin FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?1",
        args![&key_digest(key)],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let Some((key, user, admin)) = row else {
        return Ok(None);
    };
    let sites = if admin {
        None
    } else {
        Some(conn.rows(
            "SELECT site_id FROM user_sites WHERE user_id = ?1 ORDER BY site_id",
            args![user],
            |r| r.get(0),
        )?)
    };
    Ok(Some(KeyOwner { key, user, sites }))
}

/// Lets a (viewer) user read a site.
pub fn grant_site(conn: &mut Conn, email: &str, site: &str) -> Result<()> {
    let email = email.trim().to_ascii_lowercase();
    let n = conn.execute(
        "INSERT INTO user_sites (user_id, site_id) SELECT id, ?2 FROM users WHERE email = ?1
         ON CONFLICT DO NOTHING",
        args![&email, site],
    )?;
    if n == 0
        && !conn.value::<bool>(
            "SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1)",
            args![&email],
        )?
    {
        return Err(Error::NotFound(format!("no user {email:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut lite = crate::storage::db::open_and_migrate(&dir.path().join("a.db")).unwrap();
        let conn = &mut Conn::Lite(&mut lite);
        add_user(conn, "Admin@Example.com", "correct horse battery", true, 1).unwrap();
        assert!(add_user(conn, "admin@example.com", "another password", false, 1).is_err());
        assert!(add_user(conn, "not-an-email", "long enough password", false, 1).is_err());
        assert!(
            check_login(conn, "admin@example.com", "correct horse battery")
                .unwrap()
                .is_some()
        );
        assert!(
            check_login(conn, "admin@example.com", "wrong")
                .unwrap()
                .is_none()
        );
        let key = create_key(conn, "admin@example.com", "ci", 1).unwrap();
        assert!(user_of_key(conn, &key).unwrap().is_some());
        assert!(user_of_key(conn, "assent_nope").unwrap().is_none());
        let stored: String = conn.value("SELECT key_hash FROM api_keys", &[]).unwrap();
        assert!(!stored.contains(&key));
    }
}
