//! The consent figures only Assent can show: decisions per day by action, the opt-in rate overall, per
//! category, per language, per page and per policy revision, and the estimated total audience. Counted
//! per decision (each consent record of the period), from groups the storage sums; the arithmetic here.

use std::collections::BTreeMap;

use crate::domain::stats::period::{Period, date_of_day, format_date};

/// The actions a decision can be, in the order charts stack them, with their labels.
pub const ACTIONS: [(&str, &str); 5] = [
    ("accept_all", "Accept all"),
    ("custom", "Custom"),
    ("reject_all", "Reject all"),
    ("gpc", "GPC signal"),
    ("withdraw", "Withdrawn"),
];

/// Sums of a site's consent records in a period, as the storage groups them. Times are 15-minute
/// buckets (their first instant), fine enough for any time zone's days.
#[derive(Debug, Clone, Default)]
pub struct ConsentGroups {
    /// (bucket start, action, records)
    pub by_time_action: Vec<(i64, String, u64)>,
    /// (revision, choices as stored JSON, records)
    pub by_revision_choices: Vec<(u32, String, u64)>,
    /// (language or "", records granting analytics, records)
    pub by_language: Vec<(String, u64, u64)>,
    /// (page or "", records granting analytics, records), most records first
    pub by_page: Vec<(String, u64, u64)>,
    /// (revision, its first record's time)
    pub revisions: Vec<(u32, i64)>,
}

/// A share in percent, one decimal; None without decisions.
pub fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 1000.0).round() / 10.0)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub decisions: u64,
    /// Decisions granting analytics.
    pub analytics: u64,
    /// Local days of the period, each with its counts per action (in [`ACTIONS`] order).
    pub days: Vec<(String, [u64; 5])>,
    /// (category, granted, of decisions), by category name.
    pub categories: Vec<(String, u64, u64)>,
    /// (revision, first day it was seen in the period, granting analytics, decisions)
    pub revisions: Vec<(u32, String, u64, u64)>,
    pub languages: Vec<(String, u64, u64)>,
    pub pages: Vec<(String, u64, u64)>,
}

impl Summary {
    pub fn opt_in(&self) -> Option<f64> {
        rate(self.analytics, self.decisions)
    }
}

/// The summary of a period's groups.
pub fn summarize(g: &ConsentGroups, period: &Period) -> Summary {
    let first = period.first_day();
    let last = period.last_day().max(first);
    let mut days: Vec<(String, [u64; 5])> = (first..=last)
        .map(|d| (format_date(date_of_day(d)), [0; 5]))
        .collect();
    let mut decisions = 0;
    for (ts, action, n) in &g.by_time_action {
        decisions += n;
        let day = period.zone.day(*ts);
        if let (Some(row), Some(a)) = (
            days.get_mut((day - first).max(0) as usize),
            ACTIONS.iter().position(|(id, _)| id == action),
        ) {
            row.1[a] += n;
        }
    }
    let mut categories: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut revisions: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut analytics = 0;
    for (revision, choices, n) in &g.by_revision_choices {
        let parsed: BTreeMap<String, bool> = serde_json::from_str(choices).unwrap_or_default();
        let grants = parsed.get("analytics").copied().unwrap_or(false);
        for (category, on) in &parsed {
            let e = categories.entry(category.clone()).or_default();
            e.1 += n;
            if *on {
                e.0 += n;
            }
        }
        let r = revisions.entry(*revision).or_default();
        r.1 += n;
        if grants {
            r.0 += n;
            analytics += n;
        }
    }
    let first_seen: BTreeMap<u32, i64> = g.revisions.iter().copied().collect();
    Summary {
        decisions,
        analytics,
        days,
        categories: categories
            .into_iter()
            .map(|(c, (on, of))| (c, on, of))
            .collect(),
        revisions: revisions
            .into_iter()
            .map(|(r, (on, of))| {
                let seen = first_seen
                    .get(&r)
                    .map(|ts| format_date(period.zone.date(*ts)))
                    .unwrap_or_default();
                (r, seen, on, of)
            })
            .collect(),
        languages: g.by_language.clone(),
        pages: g.by_page.clone(),
    }
}

/// The estimated audience: counted visitors divided by the share of decisions that allowed counting.
pub fn estimated_audience(visitors: f64, opt_in_percent: Option<f64>) -> Option<f64> {
    opt_in_percent
        .filter(|p| *p > 0.0)
        .map(|p| (visitors / (p / 100.0)).round())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::stats::period::Zone;
    use time::macros::date;

    #[test]
    fn sums_rates_and_the_estimate() {
        let period = Period::days(date!(2026 - 10 - 05), date!(2026 - 10 - 06), Zone::utc());
        let day2 = period.from + 86_400;
        let g = ConsentGroups {
            by_time_action: vec![
                (period.from, "accept_all".into(), 3),
                (day2, "reject_all".into(), 1),
            ],
            by_revision_choices: vec![
                (1, r#"{"analytics":true,"marketing":true}"#.into(), 3),
                (2, r#"{"analytics":false,"marketing":false}"#.into(), 1),
            ],
            revisions: vec![(1, period.from), (2, day2)],
            ..ConsentGroups::default()
        };
        let s = summarize(&g, &period);
        assert_eq!(s.decisions, 4);
        assert_eq!(s.opt_in(), Some(75.0));
        assert_eq!(s.days[0], ("2026-10-05".into(), [3, 0, 0, 0, 0]));
        assert_eq!(s.days[1].1[2], 1);
        assert_eq!(s.categories[1], ("marketing".into(), 3, 4));
        assert_eq!(s.revisions[1], (2, "2026-10-06".into(), 0, 1));
        assert_eq!(estimated_audience(30.0, s.opt_in()), Some(40.0));
        assert_eq!(estimated_audience(30.0, Some(0.0)), None);
    }
}
