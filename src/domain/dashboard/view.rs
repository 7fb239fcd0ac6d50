//! A dashboard view as its URL says it, so that a link reproduces it:
//!
//! - `period`: `day` (today), `yesterday`, `7d`, `30d` (default), `month` (this month), `last_month`,
//!   `year` (this year), `12mo`, `all`, or `custom` with `from` and `to` (`YYYY-MM-DD`, inclusive);
//! - `compare`: `previous_period` (default), `year_over_year` or `none`;
//! - `metric`: the chart's metric (`visitors`, `visits`, `pageviews`, `views_per_visit`, `bounce_rate`,
//!   `visit_duration`);
//! - `f`, repeatable, all must hold: `DIMENSION|OPERATOR|VALUE` with a Stats API dimension name
//!   (`visit:country`, `event:page`, `event:props:plan`...), an operator `is`, `is_not`, `contains` or
//!   `contains_not`, and the value: everything after the second `|` (so a value may hold `|`; a property
//!   key may not). Example: `f=visit:country|is|FR&f=event:page|contains|/blog`. A form without script
//!   adds one filter as three fields, `fd` (dimension), `fo` (operator) and `fv` (value); links always
//!   use `f`.

use serde_json::{Value, json};
use time::{Date, Duration, Month};

use crate::domain::stats::dims::Dimension;
use crate::domain::stats::period::format_date;

/// The periods the picker offers, with their labels.
pub const PERIODS: [(&str, &str); 10] = [
    ("day", "Today"),
    ("yesterday", "Yesterday"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("month", "This month"),
    ("last_month", "Last month"),
    ("year", "This year"),
    ("12mo", "Last 12 months"),
    ("all", "All time"),
    ("custom", "Custom range"),
];

pub const COMPARISONS: [(&str, &str); 3] = [
    ("previous_period", "Previous period"),
    ("year_over_year", "Year over year"),
    ("none", "No comparison"),
];

/// The headline metrics, in order, with their labels.
pub const METRICS: [(&str, &str); 6] = [
    ("visitors", "Unique visitors"),
    ("visits", "Total visits"),
    ("pageviews", "Total pageviews"),
    ("views_per_visit", "Views per visit"),
    ("bounce_rate", "Bounce rate"),
    ("visit_duration", "Visit duration"),
];

pub const OPERATORS: [(&str, &str); 4] = [
    ("is", "is"),
    ("is_not", "is not"),
    ("contains", "contains"),
    ("contains_not", "does not contain"),
];

/// Most filters a view may carry.
pub const MAX_FILTERS: usize = 20;

/// One filter of the URL.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlFilter {
    pub dim: String,
    pub op: String,
    pub value: String,
}

impl UrlFilter {
    /// Parses `DIMENSION|OPERATOR|VALUE`.
    pub fn parse(s: &str) -> Result<UrlFilter, String> {
        let mut parts = s.splitn(3, '|');
        let (Some(dim), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("filter {s:?}: expected DIMENSION|OPERATOR|VALUE"));
        };
        let d = Dimension::parse(dim).ok_or_else(|| format!("filter {s:?}: unknown dimension"))?;
        if d.is_time() {
            return Err(format!("filter {s:?}: time cannot be filtered"));
        }
        if !OPERATORS.iter().any(|(o, _)| *o == op) {
            return Err(format!("filter {s:?}: unknown operator {op:?}"));
        }
        if value.is_empty() || value.len() > 2000 {
            return Err(format!("filter {s:?}: the value must be 1 to 2000 bytes"));
        }
        Ok(UrlFilter {
            dim: dim.to_string(),
            op: op.to_string(),
            value: value.to_string(),
        })
    }

    pub fn encode(&self) -> String {
        format!("{}|{}|{}", self.dim, self.op, self.value)
    }

    /// The Stats API v2 filter (`contains` ignores case, as a search box would).
    pub fn to_v2(&self) -> Value {
        if self.op.starts_with("contains") {
            json!([self.op, self.dim, [self.value], {"case_sensitive": false}])
        } else {
            json!([self.op, self.dim, [self.value]])
        }
    }

    /// How a chip shows it: "Country is FR".
    pub fn label(&self) -> (String, String) {
        let op = OPERATORS
            .iter()
            .find(|(o, _)| *o == self.op)
            .map(|(_, l)| *l)
            .unwrap_or("is");
        (dimension_label(&self.dim), op.to_string())
    }
}

/// A dimension's name for people.
pub fn dimension_label(dim: &str) -> String {
    let known = match dim {
        "event:page" => "Page",
        "event:name" => "Event",
        "visit:entry_page" => "Entry page",
        "visit:exit_page" => "Exit page",
        "visit:source" => "Source",
        "visit:referrer" => "Referrer",
        "visit:utm_source" => "UTM source",
        "visit:utm_medium" => "UTM medium",
        "visit:utm_campaign" => "UTM campaign",
        "visit:utm_content" => "UTM content",
        "visit:utm_term" => "UTM term",
        "visit:country" => "Country",
        "visit:browser" => "Browser",
        "visit:os" => "Operating system",
        "visit:device" => "Device",
        "visit:screen" => "Screen size",
        other => {
            return match other.strip_prefix("event:props:") {
                Some(k) => format!("Property {k}"),
                None => other.to_string(),
            };
        }
    };
    known.to_string()
}

/// Everything a dashboard URL says.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub period: String,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub compare: String,
    pub metric: String,
    pub filters: Vec<UrlFilter>,
}

impl Default for View {
    fn default() -> Self {
        View {
            period: "30d".into(),
            from: None,
            to: None,
            compare: "previous_period".into(),
            metric: "visitors".into(),
            filters: Vec::new(),
        }
    }
}

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

fn first_of_month(d: Date) -> Date {
    d.replace_day(1).unwrap_or(d)
}

impl View {
    /// The view of a query string's pairs; what is not understood is an error naming it (a 400).
    pub fn parse(pairs: &[(String, String)]) -> Result<View, String> {
        let mut v = View::default();
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, x)| x.as_str())
        };
        if let (Some(d), Some(o), Some(x)) = (field("fd"), field("fo"), field("fv"))
            && !x.trim().is_empty()
        {
            let f = UrlFilter::parse(&format!("{d}|{o}|{}", x.trim()))?;
            v.filters.push(f);
        }
        for (k, val) in pairs {
            match k.as_str() {
                "period" => {
                    let p = if val == "today" { "day" } else { val.as_str() };
                    if !PERIODS.iter().any(|(id, _)| *id == p) {
                        return Err(format!("period: unknown period {val:?}"));
                    }
                    v.period = p.to_string();
                }
                "from" if !val.is_empty() => {
                    v.from = Some(parse_date(val).ok_or("from: expected YYYY-MM-DD")?)
                }
                "to" if !val.is_empty() => {
                    v.to = Some(parse_date(val).ok_or("to: expected YYYY-MM-DD")?)
                }
                "compare" => {
                    if !COMPARISONS.iter().any(|(id, _)| id == val) {
                        return Err(format!("compare: unknown comparison {val:?}"));
                    }
                    v.compare = val.clone();
                }
                "metric" => {
                    if !METRICS.iter().any(|(id, _)| id == val) {
                        return Err(format!("metric: unknown metric {val:?}"));
                    }
                    v.metric = val.clone();
                }
                "f" => {
                    if v.filters.len() >= MAX_FILTERS {
                        return Err(format!("f: at most {MAX_FILTERS} filters"));
                    }
                    v.filters.push(UrlFilter::parse(val)?);
                }
                _ => {}
            }
        }
        if v.period == "custom" {
            match (v.from, v.to) {
                (Some(a), Some(b)) if a <= b => {}
                (Some(_), Some(_)) => return Err("from: must not be after to".into()),
                _ => return Err("period custom needs from and to (YYYY-MM-DD)".into()),
            }
        }
        Ok(v)
    }

    /// The v2 `date_range` of the period, relative to the site's `today`.
    pub fn date_range(&self, today: Date) -> Value {
        let pair = |a: Date, b: Date| json!([format_date(a), format_date(b)]);
        match self.period.as_str() {
            "yesterday" => {
                let y = today - Duration::days(1);
                pair(y, y)
            }
            "last_month" => {
                let last = first_of_month(today) - Duration::days(1);
                pair(first_of_month(last), last)
            }
            "custom" => pair(self.from.unwrap_or(today), self.to.unwrap_or(today)),
            p => json!(p),
        }
    }

    /// The v2 comparison mode, if any.
    pub fn comparison(&self) -> Option<Value> {
        (self.compare != "none").then(|| json!({ "mode": self.compare }))
    }

    pub fn v2_filters(&self) -> Vec<Value> {
        self.filters.iter().map(UrlFilter::to_v2).collect()
    }

    pub fn period_label(&self) -> String {
        if self.period == "custom"
            && let (Some(a), Some(b)) = (self.from, self.to)
        {
            return format!("{} to {}", format_date(a), format_date(b));
        }
        PERIODS
            .iter()
            .find(|(id, _)| *id == self.period)
            .map(|(_, l)| l.to_string())
            .unwrap_or_default()
    }

    /// The query string of this view (without `?`).
    pub fn query_string(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("period", &self.period);
        if self.period == "custom" {
            if let Some(a) = self.from {
                s.append_pair("from", &format_date(a));
            }
            if let Some(b) = self.to {
                s.append_pair("to", &format_date(b));
            }
        }
        s.append_pair("compare", &self.compare);
        if self.metric != "visitors" {
            s.append_pair("metric", &self.metric);
        }
        for f in &self.filters {
            s.append_pair("f", &f.encode());
        }
        s.finish()
    }

    pub fn with_metric(&self, metric: &str) -> View {
        View {
            metric: metric.to_string(),
            ..self.clone()
        }
    }

    /// This view with one more filter (replacing an `is` filter on the same dimension).
    pub fn with_filter(&self, f: UrlFilter) -> View {
        let mut v = self.clone();
        if f.op == "is" {
            v.filters.retain(|x| !(x.dim == f.dim && x.op == "is"));
        }
        if !v.filters.contains(&f) && v.filters.len() < MAX_FILTERS {
            v.filters.push(f);
        }
        v
    }

    pub fn without_filter(&self, i: usize) -> View {
        let mut v = self.clone();
        if i < v.filters.len() {
            v.filters.remove(i);
        }
        v
    }

    /// Whether the view filters on the page (then `views_per_visit` cannot be asked).
    pub fn filters_page(&self) -> bool {
        self.filters.iter().any(|f| f.dim == "event:page")
    }
}

/// A month's short English name, for chart labels.
pub fn month_name(m: Month) -> &'static str {
    match m {
        Month::January => "Jan",
        Month::February => "Feb",
        Month::March => "Mar",
        Month::April => "Apr",
        Month::May => "May",
        Month::June => "Jun",
        Month::July => "Jul",
        Month::August => "Aug",
        Month::September => "Sep",
        Month::October => "Oct",
        Month::November => "Nov",
        Month::December => "Dec",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn urls_round_trip() {
        let q = "period=custom&from=2026-10-05&to=2026-10-07&compare=year_over_year&metric=pageviews&f=visit%3Acountry%7Cis%7CFR&f=event%3Apage%7Ccontains%7C%2Fa%7Cb";
        let v = View::parse(&pairs(q)).unwrap();
        assert_eq!(v.filters[1].value, "/a|b");
        assert_eq!(View::parse(&pairs(&v.query_string())).unwrap(), v);
        assert_eq!(
            v.date_range(date!(2026 - 11 - 30)),
            json!(["2026-10-05", "2026-10-07"])
        );
        assert_eq!(v.filters[1].to_v2()[3], json!({"case_sensitive": false}));
        assert!(View::parse(&pairs("period=8d")).is_err());
        assert!(View::parse(&pairs("period=custom&from=2026-10-07&to=2026-10-05")).is_err());
        assert!(View::parse(&pairs("f=visit:city|is|x")).is_err());
        assert!(View::parse(&pairs("f=visit:country|like|x")).is_err());
        assert!(View::parse(&pairs("f=visit:country|is|")).is_err());
        let form = View::parse(&pairs(
            "fd=event:page&fo=contains&fv=%2Fblog&f=visit:os|is|iOS",
        ))
        .unwrap();
        assert_eq!(form.filters.len(), 2);
        assert_eq!(form.filters[0].encode(), "event:page|contains|/blog");
    }

    #[test]
    fn periods_and_filters() {
        let today = date!(2026 - 03 - 01);
        let v = |p: &str| View {
            period: p.into(),
            ..View::default()
        };
        assert_eq!(
            v("yesterday").date_range(today),
            json!(["2026-02-28", "2026-02-28"])
        );
        assert_eq!(
            v("last_month").date_range(today),
            json!(["2026-02-01", "2026-02-28"])
        );
        assert_eq!(v("7d").date_range(today), json!("7d"));
        let fr = UrlFilter::parse("visit:country|is|FR").unwrap();
        let de = UrlFilter::parse("visit:country|is|DE").unwrap();
        let w = View::default().with_filter(fr).with_filter(de.clone());
        assert_eq!(w.filters, [de]);
        assert!(w.without_filter(0).filters.is_empty());
        assert_eq!(
            View::default().comparison(),
            Some(json!({"mode": "previous_period"}))
        );
    }
}
