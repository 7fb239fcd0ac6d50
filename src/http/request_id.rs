//! Request ids: one per request, in the `X-Request-Id` answer header and in every log line written while
//! the request is handled, so an operator can join a client's report, the proxy's log and Assent's.
//!
//! An id a trusted proxy sends along (nginx's `$request_id`, for instance) is kept when it is a sane token:
//! 1-64 of `A-Z a-z 0-9 - _`. Anyone else's is replaced: a client could otherwise write into the log
//! whatever it likes, its own consent id included.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header::HeaderValue;

pub const HEADER: &str = "x-request-id";
pub const MAX_LEN: usize = 64;

/// Whether `v` may be used as a request id (and so written to a log and echoed in a header).
pub fn is_sane(v: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// A new id: a random prefix drawn once per process and a counter. Unique within a run and, by the
/// prefix, across runs; cheaper than drawing random bits for every request. The `-` keeps it from ever
/// looking like a consent id (32 hex digits).
pub fn generate() -> String {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = *PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        // Without randomness the ids are still unique within the run, which is what matters most.
        let _ = getrandom::fill(&mut b);
        u32::from_le_bytes(b)
    });
    format!("{prefix:08x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The id of a request: the one a trusted proxy sent, if sane, else a new one.
pub fn of(sent: Option<&HeaderValue>, from_trusted_proxy: bool) -> String {
    match sent {
        Some(v) if from_trusted_proxy && is_sane(v.as_bytes()) => {
            // Sane bytes are ASCII, so this is the same text.
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        }
        _ => generate(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_from_trusted_proxies_are_kept() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(of(Some(&v("abc-DEF_123")), true), "abc-DEF_123");
        assert_ne!(of(Some(&v("abc-DEF_123")), false), "abc-DEF_123");
        for bad in ["", "a b", "a\"b", "ä", &"x".repeat(65), "a/b", "a\tb"] {
            let Ok(h) = HeaderValue::from_str(bad) else {
                continue;
            };
            assert_ne!(of(Some(&h), true), bad);
        }
        assert!(is_sane("x".repeat(64).as_bytes()));
    }

    #[test]
    fn generated_ids_are_sane_unique_and_never_consent_id_shaped() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(is_sane(id.as_bytes()), "{id}");
            assert!(crate::domain::consent::ConsentId::parse(&id).is_none());
        }
    }
}
