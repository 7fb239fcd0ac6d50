//! `assent seed SITE --events N [--days D]`: realistic synthetic traffic for demos and benchmarks. Each
//! synthetic visitor makes a consent choice (about a third refuse, and send nothing); those who accept make
//! visits of a few page views and the odd custom event, with sources, campaigns, countries and devices
//! drawn from plausible distributions.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use time::OffsetDateTime;

use crate::domain::consent::{Action, ConsentId, ConsentRecord, add_months};
use crate::domain::event::NewEvent;
use crate::domain::visits::visitor_key;
use crate::settings::Settings;

/// xorshift64*: fast, seedable, good enough for synthetic traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Picks from (value, weight) pairs.
    fn pick<'a>(&mut self, items: &[(&'a str, u64)]) -> &'a str {
        let total: u64 = items.iter().map(|(_, w)| w).sum();
        let mut r = self.below(total);
        for (v, w) in items {
            if r < *w {
                return v;
            }
            r -= w;
        }
        items[0].0
    }
}

const PAGES: &[(&str, u64)] = &[
    ("/", 40),
    ("/pricing", 15),
    ("/blog", 12),
    ("/blog/privacy-first-analytics", 8),
    ("/blog/consent-that-converts", 6),
    ("/docs", 10),
    ("/docs/install", 6),
    ("/about", 4),
    ("/contact", 3),
    ("/signup", 5),
];
const SOURCES: &[(&str, u64)] = &[
    ("", 40),
    ("google.com", 30),
    ("duckduckgo.com", 5),
    ("bing.com", 4),
    ("t.co", 4),
    ("news.ycombinator.com", 3),
    ("facebook.com", 4),
    ("linkedin.com", 3),
    ("blog.example.org", 2),
];
const CAMPAIGNS: &[(&str, u64)] = &[("", 85), ("spring-sale", 8), ("newsletter-42", 7)];
const COUNTRIES: &[(&str, u64)] = &[
    ("US", 25),
    ("DE", 14),
    ("FR", 12),
    ("GB", 10),
    ("NL", 6),
    ("ES", 5),
    ("IT", 5),
    ("CA", 4),
    ("SE", 3),
    ("JP", 3),
    ("BR", 3),
    ("IN", 4),
    ("", 6),
];
const CLIENTS: &[(&str, u64)] = &[
    ("Chrome|Windows 10|Desktop", 30),
    ("Chrome|Android|Mobile", 20),
    ("Safari|iPhone|Mobile", 18),
    ("Safari|Mac OSX|Laptop", 10),
    ("Firefox|Windows 10|Desktop", 8),
    ("Edge|Windows 10|Laptop", 7),
    ("Firefox|Linux|Desktop", 4),
    ("Safari|iPad|Tablet", 3),
];
const CUSTOM: &[(&str, u64)] = &[
    ("Signup", 3),
    ("Outbound Link: Click", 4),
    ("File Download", 2),
    ("Newsletter", 1),
];

pub fn run(settings: &Settings, site_id: &str, n_events: u64, days: u32) -> anyhow::Result<()> {
    if days == 0 {
        bail!("--days must be at least 1");
    }
    let mut db = super::open(settings)?;
    let site = db
        .site(site_id)?
        .with_context(|| format!("unknown site {site_id:?}"))?;
    let hash = site.config.policy_hash();
    let domain = site.config.domains.first().cloned().unwrap_or_default();
    let now = crate::now();
    let span = days as i64 * 86_400;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ now as u64);
    let (mut made, mut visitors, mut refusals) = (0u64, 0u64, 0u64);
    while made < n_events {
        let mut seeder = db.seeder()?;
        let chunk_end = (made + 5000).min(n_events);
        while made < chunk_end {
            let id = ConsentId::random().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let mut ts = now - span + rng.below(span as u64) as i64;
            let refuse = rng.below(100) < 32;
            let action = if refuse {
                Action::RejectAll
            } else {
                Action::AcceptAll
            };
            let choices: BTreeMap<String, bool> = site
                .config
                .categories
                .iter()
                .map(|c| (c.id.clone(), c.required || !refuse))
                .collect();
            let at = OffsetDateTime::from_unix_timestamp(ts)?;
            seeder.consent(&ConsentRecord {
                consent_id: id,
                site: site.id.clone(),
                created_at: at,
                revision: site.revision,
                policy_hash: hash.clone(),
                choices,
                action,
                language: Some("en".into()),
                page_path: Some("/".into()),
                expires_at: add_months(at, settings.consent_months),
            })?;
            if refuse {
                refusals += 1;
                continue;
            }
            visitors += 1;
            let visitor = visitor_key(&site.secret, id);
            let client: Vec<&str> = rng.pick(CLIENTS).split('|').collect();
            let referrer = rng.pick(SOURCES);
            let campaign = rng.pick(CAMPAIGNS);
            let country = rng.pick(COUNTRIES);
            for _visit in 0..1 + rng.below(3) {
                let pages = 1 + rng.below(5);
                let mut visit = Vec::new();
                for p in 0..pages {
                    if made >= n_events {
                        break;
                    }
                    let custom = p > 0 && rng.below(10) == 0;
                    visit.push(NewEvent {
                        site: site.id.clone(),
                        ts,
                        name: if custom {
                            rng.pick(CUSTOM).to_string()
                        } else {
                            "pageview".into()
                        },
                        path: rng.pick(PAGES).to_string(),
                        referrer: (!referrer.is_empty()).then(|| referrer.to_string()),
                        source: (!referrer.is_empty())
                            .then(|| crate::domain::referrer::source_of_host(referrer))
                            .or_else(|| (!campaign.is_empty()).then(|| "Newsletter".to_string())),
                        utm_source: (!campaign.is_empty()).then(|| "newsletter".into()),
                        utm_medium: (!campaign.is_empty()).then(|| "email".into()),
                        utm_campaign: (!campaign.is_empty()).then(|| campaign.to_string()),
                        utm_content: None,
                        utm_term: None,
                        country: (!country.is_empty()).then(|| country.to_string()),
                        browser: client[0].into(),
                        os: client[1].into(),
                        device: client[2].into(),
                        props: custom.then(|| format!("{{\"url\":\"https://{domain}/x\"}}")),
                        engaged_ms: None,
                    });
                    made += 1;
                    ts += 5 + rng.below(120) as i64;
                }
                seeder.visit(visitor, &visit)?;
                // The next visit of this visitor starts hours or days later.
                ts += 3600 + rng.below(5 * 86_400) as i64;
            }
        }
        seeder.commit()?;
    }
    println!(
        "Seeded site {site_id}: {made} events from {visitors} consenting visitors ({refusals} refusals) over {days} days."
    );
    Ok(())
}
