//! The statistics engine's hand-built dataset (four visitors, five visits, 5-7 October 2026 on the
//! "shop" site in Europe/Paris), whose right answers `tests/stats/hand_built.rs` asserts, shared with
//! the dashboard tests: the events as the writer receives them, and the same data written into a data directory
//! before a server starts (for the browser tests against the real binary).
#![allow(dead_code)]

use std::collections::BTreeMap;

use assent::domain::consent::{Action, ConsentId, ConsentRecord, add_months};
use assent::domain::event::NewEvent;
use serde_json::json;

/// An event of the dataset: (UTC time, name, page, property, engaged ms).
pub type Hit<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<(&'a str, &'a str)>,
    Option<i64>,
);

pub struct Visit<'a> {
    pub source: Option<&'a str>,
    pub referrer: Option<&'a str>,
    pub utm: Option<(&'a str, &'a str, &'a str)>,
    pub country: Option<&'a str>,
    pub client: (&'a str, &'a str, &'a str, &'a str),
    /// (UTC time "2026-10-05T08:00:00Z", name, page, props, engaged ms)
    pub events: Vec<Hit<'a>>,
}

pub fn ts(s: &str) -> i64 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// Four visitors, five visits, 5-7 October 2026 in Europe/Paris (UTC+2 then).
pub fn dataset() -> Vec<(u128, Visit<'static>)> {
    let windows = ("Chrome", "Windows", "Desktop", "Desktop");
    vec![
        (
            1,
            Visit {
                source: Some("Google"),
                referrer: Some("google.com"),
                utm: None,
                country: Some("FR"),
                client: windows,
                events: vec![
                    ("2026-10-05T08:00:00Z", "pageview", "/", None, None),
                    ("2026-10-05T08:02:00Z", "pageview", "/pricing", None, None),
                    (
                        "2026-10-05T08:03:00Z",
                        "Signup",
                        "/pricing",
                        Some(("plan", "pro")),
                        None,
                    ),
                    (
                        "2026-10-05T08:04:00Z",
                        "engagement",
                        "/pricing",
                        None,
                        Some(30_000),
                    ),
                ],
            },
        ),
        // 00:30 on 7 October in Paris, still 6 October in UTC.
        (
            1,
            Visit {
                source: None,
                referrer: None,
                utm: None,
                country: Some("FR"),
                client: windows,
                events: vec![
                    ("2026-10-06T22:30:00Z", "pageview", "/blog", None, None),
                    ("2026-10-06T22:45:00Z", "pageview", "/blog/post", None, None),
                ],
            },
        ),
        (
            2,
            Visit {
                source: Some("Newsletter"),
                referrer: None,
                utm: Some(("newsletter", "email", "spring")),
                country: Some("DE"),
                client: ("Firefox", "Linux", "Desktop", "Laptop"),
                events: vec![("2026-10-05T12:00:00Z", "pageview", "/", None, None)],
            },
        ),
        (
            3,
            Visit {
                source: Some("Hacker News"),
                referrer: Some("news.ycombinator.com"),
                utm: None,
                country: Some("FR"),
                client: ("Safari", "iOS", "Mobile", "Mobile"),
                events: vec![
                    ("2026-10-06T07:00:00Z", "pageview", "/pricing", None, None),
                    (
                        "2026-10-06T07:01:00Z",
                        "Signup",
                        "/pricing",
                        Some(("plan", "free")),
                        None,
                    ),
                ],
            },
        ),
        (
            4,
            Visit {
                source: None,
                referrer: None,
                utm: None,
                country: None,
                client: ("Edge", "Windows", "Laptop", "Laptop"),
                events: vec![
                    ("2026-10-06T10:00:00Z", "pageview", "/", None, None),
                    ("2026-10-06T10:01:00Z", "pageview", "/", None, None),
                ],
            },
        ),
    ]
}

/// The period of the dataset, and its headline as `tests/stats/hand_built.rs` asserts it (its first test):
/// visitors, visits, pageviews, events, bounce rate (%), visit duration (s), views per visit.
pub const PERIOD: [&str; 2] = ["2026-10-05", "2026-10-07"];
pub const HEADLINE: (u64, u64, u64, u64, u64, u64, f64) = (4, 5, 8, 10, 20, 210, 1.6);

/// The events of a visit of the dataset, for `site`.
pub fn events(site: &str, v: &Visit) -> Vec<NewEvent> {
    v.events
        .iter()
        .map(|(at, name, page, prop, engaged)| NewEvent {
            site: site.into(),
            ts: ts(at),
            name: name.to_string(),
            path: page.to_string(),
            referrer: v.referrer.map(String::from),
            source: v.source.map(String::from),
            utm_source: v.utm.map(|u| u.0.to_string()),
            utm_medium: v.utm.map(|u| u.1.to_string()),
            utm_campaign: v.utm.map(|u| u.2.to_string()),
            utm_content: None,
            utm_term: None,
            country: v.country.map(String::from),
            browser: v.client.0.into(),
            os: v.client.1.into(),
            device: v.client.2.into(),
            screen: v.client.3.into(),
            props: prop.map(|(k, val)| json!({ k: val }).to_string()),
            prop_pairs: prop
                .map(|(k, val)| vec![(k.to_string(), val.to_string())])
                .unwrap_or_default(),
            engaged_ms: *engaged,
        })
        .collect()
}

/// Adds the "shop" site (Europe/Paris) and writes the dataset into it, with an analytics grant per
/// visitor, as a server would have stored them (the seeder of `assent seed`).
pub fn seed_shop(db: &mut assent::storage::Database) {
    let mut cfg = assent::domain::site::SiteConfig::new_default("Shop", vec!["shop.test".into()]);
    cfg.timezone = "Europe/Paris".into();
    db.add_site("shop", &cfg, assent::now()).expect("add shop");
    let row = db.site("shop").expect("read shop").expect("shop");
    let now = time::OffsetDateTime::now_utc();
    let mut seeder = db.seeder("shop").expect("seeder");
    for n in 1..=4u128 {
        seeder
            .consent(&ConsentRecord {
                consent_id: ConsentId(n),
                site: "shop".into(),
                created_at: now,
                revision: 1,
                policy_hash: row.config.policy_hash(),
                choices: BTreeMap::from([("analytics".into(), true)]),
                action: Action::AcceptAll,
                language: None,
                page_path: None,
                expires_at: add_months(now, 13),
            })
            .expect("consent");
    }
    let visits: Vec<(i64, Vec<NewEvent>)> = dataset()
        .iter()
        .map(|(who, v)| {
            (
                assent::domain::visits::visitor_key(&row.secret, ConsentId(*who)),
                events("shop", v),
            )
        })
        .collect();
    seeder.visits(&visits).expect("visits");
    seeder.commit().expect("commit");
}
