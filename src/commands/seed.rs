//! `assent seed SITE --events N [--days D]`: realistic synthetic traffic for demos and benchmarks. Each
//! synthetic visitor makes a consent choice (about a third refuse, and send nothing); those who accept make
//! visits of a few page views and the odd custom event, with sources, campaigns, countries and devices
//! drawn from plausible distributions, some of them coming back on later days. Days are generated in
//! order, busier by day than by night and on weekdays than at weekends, and each day's events are stored
//! in time order, interleaved across visits, as a live server would have stored them.

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

/// Traffic by hour of day (UTC), lower at night.
const HOURS: [u64; 24] = [
    2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 7, 8, 8, 7, 6, 6, 6, 5, 4, 3, 2,
];

/// What stays the same across a synthetic visitor's visits.
struct Visitor {
    key: i64,
    client: [&'static str; 3],
    country: &'static str,
}

/// A visit to make on a later day.
struct Planned {
    visitor: std::rc::Rc<Visitor>,
    start: i64,
}

struct Generator<'a> {
    rng: Rng,
    site: &'a str,
    domain: String,
}

impl Generator<'_> {
    /// A time in the day starting at `day_start`, following [`HOURS`].
    fn time_in_day(&mut self, day_start: i64) -> i64 {
        let mut r = self.rng.below(HOURS.iter().sum());
        let mut hour = 0;
        for (h, w) in HOURS.iter().enumerate() {
            if r < *w {
                hour = h as i64;
                break;
            }
            r -= w;
        }
        day_start + hour * 3600 + self.rng.below(3600) as i64
    }

    /// The events of one visit starting at `start`, at most `room` of them.
    fn visit(&mut self, who: &Visitor, start: i64, room: u64) -> Vec<NewEvent> {
        let referrer = self.rng.pick(SOURCES);
        let campaign = self.rng.pick(CAMPAIGNS);
        let pages = (1 + self.rng.below(5)).min(room);
        let mut ts = start;
        let mut out = Vec::new();
        for p in 0..pages {
            let custom = p > 0 && self.rng.below(10) == 0;
            out.push(NewEvent {
                site: self.site.to_string(),
                ts,
                name: if custom {
                    self.rng.pick(CUSTOM).to_string()
                } else {
                    "pageview".into()
                },
                path: self.rng.pick(PAGES).to_string(),
                referrer: (!referrer.is_empty()).then(|| referrer.to_string()),
                source: (!referrer.is_empty())
                    .then(|| crate::domain::referrer::source_of_host(referrer))
                    .or_else(|| (!campaign.is_empty()).then(|| "Newsletter".to_string())),
                utm_source: (!campaign.is_empty()).then(|| "newsletter".into()),
                utm_medium: (!campaign.is_empty()).then(|| "email".into()),
                utm_campaign: (!campaign.is_empty()).then(|| campaign.to_string()),
                utm_content: None,
                utm_term: None,
                country: (!who.country.is_empty()).then(|| who.country.to_string()),
                browser: who.client[0].into(),
                os: who.client[1].into(),
                device: who.client[2].into(),
                props: custom.then(|| format!("{{\"url\":\"https://{}/x\"}}", self.domain)),
                prop_pairs: if custom {
                    vec![("url".to_string(), format!("https://{}/x", self.domain))]
                } else {
                    Vec::new()
                },
                screen: who.client[2].to_string(),
                engaged_ms: None,
            });
            ts += 5 + self.rng.below(120) as i64;
        }
        out
    }
}

/// Events per day: weekends quieter, and traffic growing a little over the period.
fn daily_targets(n_events: u64, days: u32, first_day: i64) -> Vec<u64> {
    let weights: Vec<f64> = (0..days)
        .map(|d| {
            // 1970-01-01 was a Thursday: day numbers 2 and 3 (mod 7) are Saturday and Sunday.
            let weekday = (first_day + d as i64).rem_euclid(7);
            let weekend = if matches!(weekday, 2 | 3) { 0.7 } else { 1.0 };
            weekend * (1.0 + 0.3 * d as f64 / days as f64)
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = 0.0;
    let mut given = 0u64;
    weights
        .iter()
        .map(|w| {
            cumulative += w;
            let upto = ((cumulative / total) * n_events as f64).round() as u64;
            let today = upto.saturating_sub(given);
            given = upto.max(given);
            today
        })
        .collect()
}

pub fn run(settings: &Settings, site_id: &str, n_events: u64, days: u32) -> anyhow::Result<()> {
    if days == 0 {
        bail!("--days must be at least 1");
    }
    let mut db = super::open(settings)?;
    let site = db
        .site(site_id)?
        .with_context(|| format!("unknown site {site_id:?}"))?;
    let hash = site.config.policy_hash();
    let now = crate::now();
    // Whole days, the last of them today.
    let first_day = now.div_euclid(86_400) - days as i64 + 1;
    let mut g = Generator {
        rng: Rng(0x9E37_79B9_7F4A_7C15 ^ now as u64),
        site: &site.id,
        domain: site.config.domains.first().cloned().unwrap_or_default(),
    };
    let (mut made, mut visitors, mut refusals) = (0u64, 0u64, 0u64);
    let mut progress = super::progress::Progress::new("seed", "events", Some(n_events));
    let mut planned: BTreeMap<i64, Vec<Planned>> = BTreeMap::new();
    for (d, target) in daily_targets(n_events, days, first_day)
        .into_iter()
        .enumerate()
    {
        let day_start = (first_day + d as i64) * 86_400;
        let mut consents = Vec::new();
        let mut visits: Vec<(i64, Vec<NewEvent>)> = Vec::new();
        let mut today = 0u64;
        // Visitors coming back, then new ones until the day has its traffic.
        for p in planned.remove(&(first_day + d as i64)).unwrap_or_default() {
            let events = g.visit(&p.visitor, p.start, n_events - made);
            today += events.len() as u64;
            made += events.len() as u64;
            if !events.is_empty() {
                visits.push((p.visitor.key, events));
            }
        }
        while today < target && made < n_events {
            let id = ConsentId::random().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let start = g.time_in_day(day_start);
            let refuse = g.rng.below(100) < 32;
            let choices: BTreeMap<String, bool> = site
                .config
                .categories
                .iter()
                .map(|c| (c.id.clone(), c.required || !refuse))
                .collect();
            let at = OffsetDateTime::from_unix_timestamp(start)?;
            consents.push(ConsentRecord {
                consent_id: id,
                site: site.id.clone(),
                created_at: at,
                revision: site.revision,
                policy_hash: hash.clone(),
                choices,
                action: if refuse {
                    Action::RejectAll
                } else {
                    Action::AcceptAll
                },
                language: Some("en".into()),
                page_path: Some("/".into()),
                expires_at: add_months(at, settings.consent_months),
            });
            if refuse {
                refusals += 1;
                continue;
            }
            visitors += 1;
            let client: Vec<&'static str> = g.rng.pick(CLIENTS).split('|').collect();
            let who = std::rc::Rc::new(Visitor {
                key: visitor_key(&site.secret, id),
                client: [client[0], client[1], client[2]],
                country: g.rng.pick(COUNTRIES),
            });
            let events = g.visit(&who, start, n_events - made);
            today += events.len() as u64;
            made += events.len() as u64;
            visits.push((who.key, events));
            // Some come back hours or days later.
            let mut next = start;
            for _ in 0..g.rng.below(3) {
                next += 3600 + g.rng.below(5 * 86_400) as i64;
                planned
                    .entry(next.div_euclid(86_400))
                    .or_default()
                    .push(Planned {
                        visitor: who.clone(),
                        start: next,
                    });
            }
        }
        consents.sort_by_key(|c| c.created_at);
        let mut seeder = db.seeder(&site.id)?;
        for c in &consents {
            seeder.consent(c)?;
        }
        seeder.visits(&visits)?;
        seeder.commit()?;
        progress.set(made, None);
    }
    progress.finish();
    println!(
        "Seeded site {site_id}: {made} events from {visitors} consenting visitors ({refusals} refusals) over {days} days."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_targets_add_up_and_weekends_are_quieter() {
        let t = daily_targets(100_000, 28, 0);
        assert_eq!(t.iter().sum::<u64>(), 100_000);
        // Day 2 (a Saturday) is quieter than day 1 (a Friday).
        assert!(t[2] < t[1], "{t:?}");
    }
}
