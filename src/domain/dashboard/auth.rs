//! The arithmetic of dashboard logins: session tokens (random, kept as digests), their idle expiry, the
//! CSRF tokens that forms carry, and comparisons that take the same time whatever the input.

use sha2::{Digest, Sha256};

/// A session ends after this long without a request (14 days).
pub const IDLE_SECS: i64 = 14 * 86_400;

/// A session's last use is written at most this often, so that browsing does not write on every page.
pub const TOUCH_SECS: i64 = 300;

/// The cookie holding the session token.
pub const SESSION_COOKIE: &str = "assent_session";

/// The cookie holding the login form's CSRF token (before there is a session).
pub const LOGIN_COOKIE: &str = "assent_login";

/// Login attempts: per client network, per second refill and burst; per account the same.
pub const LOGIN_RATE_PER_NET: (f64, f64) = (1.0 / 30.0, 10.0);
pub const LOGIN_RATE_PER_ACCOUNT: (f64, f64) = (1.0 / 60.0, 5.0);

/// `N` random bytes as lower-case hex; None when the system has no randomness to give.
pub fn random_hex<const N: usize>() -> Option<String> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).ok()?;
    Some(hex::encode(b))
}

/// A new session token: 256 random bits.
pub fn new_token() -> Option<String> {
    random_hex::<32>()
}

/// What the database keeps of a token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The CSRF token of a session: derived from its token (which a page of another site cannot read), with
/// a label of its own so that it reveals nothing of the token or its digest.
pub fn csrf_of(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"assent dashboard csrf\0");
    h.update(session_token.as_bytes());
    hex::encode(h.finalize())
}

/// Equality in a time that depends on the lengths only.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A token as it may arrive in a cookie or a form: 64 lower-case hex digits.
pub fn well_formed(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether a session last used at `last_seen` is still open at `now`.
pub fn alive(last_seen: i64, now: i64) -> bool {
    now - last_seen < IDLE_SECS
}

/// A per-account key for the login limiter: a digest of the normalised e-mail, so memory holds no address.
pub fn account_key(email: &str) -> u64 {
    let d = Sha256::digest(email.trim().to_ascii_lowercase().as_bytes());
    u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_digests_and_csrf() {
        let t = new_token().unwrap();
        assert!(well_formed(&t));
        assert_ne!(t, new_token().unwrap());
        assert!(well_formed(&token_digest(&t)));
        assert_ne!(token_digest(&t), csrf_of(&t));
        assert!(same(&csrf_of(&t), &csrf_of(&t)));
        assert!(!same(&csrf_of(&t), &csrf_of(&token_digest(&t))));
        assert!(!same("ab", "abc"));
        assert!(!well_formed("ABCD"));
        assert!(alive(0, IDLE_SECS - 1));
        assert!(!alive(0, IDLE_SECS));
        assert_eq!(account_key(" A@b.c"), account_key("a@b.c"));
    }
}
