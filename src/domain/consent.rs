//! Consent rules: what a visitor's choice means, how long it lasts, and the record of it that the
//! append-only log keeps. Whether a record lets an event through is in [`crate::domain::consent_cache`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::consent_cache::LatestConsent;
use crate::domain::site::SiteConfig;

/// What the visitor did: `gpc` is a refusal from a Global Privacy Control signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    AcceptAll,
    RejectAll,
    Custom,
    Withdraw,
    Gpc,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::AcceptAll,
        Action::RejectAll,
        Action::Custom,
        Action::Withdraw,
        Action::Gpc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::AcceptAll => "accept_all",
            Action::RejectAll => "reject_all",
            Action::Custom => "custom",
            Action::Withdraw => "withdraw",
            Action::Gpc => "gpc",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        serde_json::from_value(serde_json::Value::from(s)).ok()
    }
}

/// A consent id: 128 random bits, written as 32 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsentId(pub u128);

impl ConsentId {
    pub fn random() -> Result<ConsentId, getrandom::Error> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b)?;
        Ok(ConsentId(u128::from_le_bytes(b)))
    }

    pub fn parse(s: &str) -> Option<ConsentId> {
        if s.len() != 32
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(ConsentId)
    }
}

impl std::fmt::Display for ConsentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// What the script sends to `POST /api/consent`, as decoded from its JSON body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ConsentInput {
    /// The site id.
    pub site: String,
    /// The id of an earlier choice on this site, to keep its history; a new one is issued otherwise.
    #[serde(default)]
    pub consent_id: Option<String>,
    /// The site's current policy revision (409 otherwise: the banner must be shown again).
    pub revision: u32,
    /// `{category: granted}`, for `custom`; `necessary` is always granted.
    #[serde(default)]
    pub choices: BTreeMap<String, bool>,
    pub action: Action,
    /// A language tag such as `en` or `pt-br`.
    #[serde(default)]
    pub language: Option<String>,
    /// The page the choice was made on (its path is recorded).
    #[serde(default)]
    pub url: Option<String>,
}

/// The language a consent record keeps: a tag such as `en` or `pt-br`, lower case.
pub fn language_tag(raw: &str) -> Result<String, String> {
    let l = raw.trim().to_ascii_lowercase();
    if (2..=16).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(l)
    } else {
        Err("language must be a language tag such as \"en\" or \"pt-br\"".into())
    }
}

/// Resolves the per-category choices that an action means for a site. `given` must agree with the action;
/// categories the visitor was not asked about default to refused, required ones are always granted.
pub fn resolve_choices(
    site: &SiteConfig,
    action: Action,
    given: &BTreeMap<String, bool>,
) -> Result<BTreeMap<String, bool>, String> {
    for k in given.keys() {
        if site.category(k).is_none() {
            return Err(format!("unknown category {k:?} for this site"));
        }
    }
    let mut out = BTreeMap::new();
    for c in &site.categories {
        let wanted = given.get(&c.id).copied();
        let value = if c.required {
            if wanted == Some(false) {
                return Err(format!(
                    "category {:?} is required and cannot be refused",
                    c.id
                ));
            }
            true
        } else {
            let implied = match action {
                Action::AcceptAll => Some(true),
                Action::RejectAll | Action::Withdraw | Action::Gpc => Some(false),
                Action::Custom => None,
            };
            match (implied, wanted) {
                (Some(i), Some(w)) if i != w => {
                    return Err(format!(
                        "choices contradict action {}: category {:?} is {w}",
                        action.as_str(),
                        c.id
                    ));
                }
                (Some(i), _) => i,
                (None, w) => w.unwrap_or(false),
            }
        };
        out.insert(c.id.clone(), value);
    }
    Ok(out)
}

/// The page path a consent record keeps of what the script sent as `url`: a path, or an http(s) URL on one
/// of the site's domains, without query or fragment. A proof log holds clean data: control characters,
/// other domains and anything that is not a path (a spreadsheet formula, say) are refused.
pub fn page_path(raw: &str, site: &SiteConfig) -> Result<String, String> {
    const REFUSED: &str = "url must be a page path or an http(s) URL on one of the site's domains";
    if raw.chars().any(char::is_control) {
        return Err("url must not contain control characters".into());
    }
    if raw.len() > 2048 {
        return Err("url is longer than 2048 bytes".into());
    }
    let url = match url::Url::parse(raw) {
        Ok(u) => {
            let on_site = u.host_str().is_some_and(|h| site.allows_host(h));
            if !matches!(u.scheme(), "http" | "https") || !on_site {
                return Err(REFUSED.into());
            }
            u
        }
        Err(_) if raw.starts_with('/') && !raw.starts_with("//") => {
            // Resolved against a placeholder origin only to normalise the path the way browsers do.
            let base = url::Url::parse("https://page.invalid/").map_err(|e| e.to_string())?;
            base.join(raw).map_err(|_| REFUSED.to_string())?
        }
        Err(_) => return Err(REFUSED.into()),
    };
    let path = url.path();
    if path.len() > 1024 {
        return Err("url path is longer than 1024 bytes".into());
    }
    Ok(path.to_string())
}

/// `at` moved by `delta` calendar months, the day clamped to the target month's length.
fn shift_months(at: OffsetDateTime, delta: i32) -> OffsetDateTime {
    let total = at.year() * 12 + (at.month() as i32 - 1) + delta;
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
    // month0 is in 0..12 by rem_euclid, so the conversion cannot fail.
    let month = time::Month::try_from(month0 as u8 + 1).expect("month in 1..=12");
    let last = time::util::days_in_month(month, year);
    let date = time::Date::from_calendar_date(year, month, at.day().min(last)).unwrap_or(at.date());
    at.replace_date(date)
}

/// When a choice made at `at` expires.
pub fn add_months(at: OffsetDateTime, months: u32) -> OffsetDateTime {
    shift_months(at, months as i32)
}

/// The retention cut-off for `now`.
pub fn sub_months(at: OffsetDateTime, months: u32) -> OffsetDateTime {
    shift_months(at, -(months as i32))
}

/// One entry of the consent log: enough to prove what was shown and chosen, and nothing about the
/// visitor's address or device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentRecord {
    #[serde(serialize_with = "ser_id")]
    pub consent_id: ConsentId,
    pub site: String,
    #[serde(with = "time::serde::timestamp")]
    pub created_at: OffsetDateTime,
    pub revision: u32,
    pub policy_hash: String,
    pub choices: BTreeMap<String, bool>,
    pub action: Action,
    pub language: Option<String>,
    pub page_path: Option<String>,
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

fn ser_id<S: serde::Serializer>(id: &ConsentId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

impl ConsentRecord {
    pub fn grants_analytics(&self) -> bool {
        self.choices.get("analytics").copied().unwrap_or(false)
    }

    /// What the consent check needs of this record once it is an id's latest.
    pub fn latest(&self) -> LatestConsent {
        LatestConsent {
            site: self.site.clone(),
            revision: self.revision,
            analytics: self.grants_analytics(),
            expires_at: self.expires_at.unix_timestamp(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn site() -> SiteConfig {
        SiteConfig::new_default("x", vec!["example.com".into()])
    }

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = ConsentId::random().unwrap();
        assert_eq!(ConsentId::parse(&id.to_string()), Some(id));
        assert_eq!(id.to_string().len(), 32);
        assert!(ConsentId::parse("xyz").is_none());
        assert!(ConsentId::parse(&"A".repeat(32)).is_none());
        assert!(ConsentId::parse(&"0".repeat(33)).is_none());
    }

    #[test]
    fn actions_imply_choices() {
        let s = site();
        let none = BTreeMap::new();
        let all = resolve_choices(&s, Action::AcceptAll, &none).unwrap();
        assert!(all.values().all(|v| *v));
        let rej = resolve_choices(&s, Action::RejectAll, &none).unwrap();
        assert!(rej["necessary"]);
        assert!(!rej["analytics"]);
        let mut given = BTreeMap::new();
        given.insert("analytics".to_string(), true);
        let custom = resolve_choices(&s, Action::Custom, &given).unwrap();
        assert!(custom["analytics"]);
        assert!(!custom["marketing"]);
        assert!(resolve_choices(&s, Action::RejectAll, &given).is_err());
        given.insert("nope".into(), true);
        assert!(resolve_choices(&s, Action::Custom, &given).is_err());
        let mut nec = BTreeMap::new();
        nec.insert("necessary".to_string(), false);
        assert!(resolve_choices(&s, Action::Custom, &nec).is_err());
    }

    #[test]
    fn page_paths_are_clean() {
        let s = site();
        assert_eq!(page_path("/shop?x=1#y", &s).unwrap(), "/shop");
        assert_eq!(
            page_path("https://www.example.com/a/b?q", &s).unwrap(),
            "/a/b"
        );
        for bad in [
            "=HYPERLINK(\"https://evil.example\")",
            "https://evil.example/x",
            "//evil.example/x",
            "javascript:alert(1)",
            "/a\u{0}b",
            "/a\r\nb",
            "relative/path",
        ] {
            assert!(page_path(bad, &s).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn month_arithmetic_clamps() {
        assert_eq!(
            add_months(datetime!(2026-01-31 10:00 UTC), 1),
            datetime!(2026-02-28 10:00 UTC)
        );
        assert_eq!(
            add_months(datetime!(2026-11-30 00:00 UTC), 13),
            datetime!(2027-12-30 00:00 UTC)
        );
        assert_eq!(
            sub_months(datetime!(2026-03-31 00:00 UTC), 13),
            datetime!(2025-02-28 00:00 UTC)
        );
    }
}
