//! The dashboard's panels and the Stats API v2 requests behind them. The HTTP layer hands each body to
//! the same parser the Stats API uses, so a figure on a page is the figure the API gives.

use serde_json::{Value, json};

use super::view::View;

/// A breakdown panel: a top list of one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Its id in URLs (`pages`, `countries`, `prop:plan`...).
    pub id: String,
    pub title: String,
    /// The card it is a tab of.
    pub card: &'static str,
    /// The Stats API dimension.
    pub dim: String,
    /// Visitors, then the panel's second figure.
    pub metrics: [&'static str; 2],
    /// Filters the panel adds to the view's (custom events only; outbound links; downloads).
    pub extra: Vec<Value>,
}

/// The fixed panels: (id, title, card, dimension, second metric).
const FIXED: [(&str, &str, &str, &str, &str); 18] = [
    ("pages", "Top pages", "Pages", "event:page", "pageviews"),
    (
        "entry_pages",
        "Entry pages",
        "Pages",
        "visit:entry_page",
        "visits",
    ),
    (
        "exit_pages",
        "Exit pages",
        "Pages",
        "visit:exit_page",
        "visits",
    ),
    ("sources", "Sources", "Sources", "visit:source", "visits"),
    (
        "referrers",
        "Referrers",
        "Sources",
        "visit:referrer",
        "visits",
    ),
    (
        "utm_source",
        "UTM source",
        "Campaigns",
        "visit:utm_source",
        "visits",
    ),
    (
        "utm_medium",
        "UTM medium",
        "Campaigns",
        "visit:utm_medium",
        "visits",
    ),
    (
        "utm_campaign",
        "UTM campaign",
        "Campaigns",
        "visit:utm_campaign",
        "visits",
    ),
    (
        "utm_content",
        "UTM content",
        "Campaigns",
        "visit:utm_content",
        "visits",
    ),
    (
        "utm_term",
        "UTM term",
        "Campaigns",
        "visit:utm_term",
        "visits",
    ),
    (
        "countries",
        "Countries",
        "Locations",
        "visit:country",
        "visits",
    ),
    ("browsers", "Browsers", "Devices", "visit:browser", "visits"),
    ("os", "Operating systems", "Devices", "visit:os", "visits"),
    ("devices", "Devices", "Devices", "visit:device", "visits"),
    (
        "screens",
        "Screen sizes",
        "Devices",
        "visit:screen",
        "visits",
    ),
    ("events", "Custom events", "Goals", "event:name", "events"),
    (
        "outbound",
        "Outbound links",
        "Goals",
        "event:props:url",
        "events",
    ),
    (
        "downloads",
        "File downloads",
        "Goals",
        "event:props:url",
        "events",
    ),
];

/// The cards, in page order.
pub const CARDS: [&str; 7] = [
    "Pages",
    "Sources",
    "Campaigns",
    "Locations",
    "Devices",
    "Goals",
    "Properties",
];

/// The names the tracker gives outbound-link clicks and file downloads.
pub const OUTBOUND: &str = "Outbound Link: Click";
pub const DOWNLOAD: &str = "File Download";

fn extra_of(id: &str) -> Vec<Value> {
    match id {
        "events" => vec![json!(["is_not", "event:name", ["pageview", "engagement"]])],
        "outbound" => vec![json!(["is", "event:name", [OUTBOUND]])],
        "downloads" => vec![json!(["is", "event:name", [DOWNLOAD]])],
        _ => Vec::new(),
    }
}

/// Every fixed panel, in page order.
pub fn fixed() -> Vec<Panel> {
    FIXED
        .iter()
        .map(|(id, title, card, dim, second)| Panel {
            id: id.to_string(),
            title: title.to_string(),
            card,
            dim: dim.to_string(),
            metrics: ["visitors", second],
            extra: extra_of(id),
        })
        .collect()
}

/// The panel of a custom event property.
pub fn property(key: &str) -> Panel {
    Panel {
        id: format!("prop:{key}"),
        title: format!("Property {key}"),
        card: "Properties",
        dim: format!("event:props:{key}"),
        metrics: ["visitors", "events"],
        extra: vec![json!(["is_not", "event:name", ["pageview", "engagement"]])],
    }
}

/// A panel by its URL id.
pub fn by_id(id: &str) -> Option<Panel> {
    if let Some(key) = id.strip_prefix("prop:") {
        let ok = !key.is_empty()
            && crate::domain::stats::dims::Dimension::parse(&format!("event:props:{key}"))
                .is_some();
        return ok.then(|| property(key));
    }
    fixed().into_iter().find(|p| p.id == id)
}

/// How a full breakdown is ordered: by visitors or by the value, either way.
pub const SORTS: [(&str, &str); 4] = [
    ("visitors_desc", "Most visitors"),
    ("visitors_asc", "Fewest visitors"),
    ("name_asc", "Name A-Z"),
    ("name_desc", "Name Z-A"),
];

/// A page of a breakdown: rows, search (a case-insensitive `contains`), order.
#[derive(Debug, Clone, Default)]
pub struct Slice {
    pub limit: usize,
    pub offset: usize,
    pub search: Option<String>,
    pub sort: Option<String>,
}

fn base(site: &str, view: &View, today: time::Date) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("site_id".into(), json!(site));
    m.insert("date_range".into(), view.date_range(today));
    m.insert("filters".into(), Value::Array(view.v2_filters()));
    m
}

/// The headline figures with their comparison. `views_per_visit` is left out when the view filters on
/// the page (the engine cannot answer it then, as Plausible cannot).
pub fn headline(site: &str, view: &View, today: time::Date) -> Value {
    let mut m = base(site, view, today);
    let metrics: Vec<&str> = super::view::METRICS
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != "views_per_visit" || !view.filters_page())
        .collect();
    m.insert("metrics".into(), json!(metrics));
    if let Some(c) = view.comparison() {
        m.insert("include".into(), json!({ "comparisons": c }));
    }
    Value::Object(m)
}

/// The metrics a time series can carry (`views_per_visit` cannot be split by time; the chart derives it
/// from page views and visits).
pub const SERIES_METRICS: [&str; 5] = [
    "visitors",
    "visits",
    "pageviews",
    "bounce_rate",
    "visit_duration",
];

/// The time series, every bucket labelled, with the comparison's.
pub fn timeseries(site: &str, view: &View, today: time::Date) -> Value {
    let mut m = base(site, view, today);
    m.insert("metrics".into(), json!(SERIES_METRICS));
    m.insert("dimensions".into(), json!(["time"]));
    let mut include = json!({ "time_labels": true });
    if let Some(c) = view.comparison() {
        include["comparisons"] = c;
    }
    m.insert("include".into(), include);
    Value::Object(m)
}

/// A panel's rows.
pub fn breakdown(
    site: &str,
    view: &View,
    today: time::Date,
    panel: &Panel,
    slice: &Slice,
) -> Value {
    let mut m = base(site, view, today);
    m.insert("metrics".into(), json!(panel.metrics));
    m.insert("dimensions".into(), json!([panel.dim]));
    if let Value::Array(filters) = &mut m["filters"] {
        filters.extend(panel.extra.iter().cloned());
        if let Some(q) = slice.search.as_deref().filter(|q| !q.is_empty()) {
            filters.push(json!(["contains", panel.dim, [q], {"case_sensitive": false}]));
        }
    }
    let order = match slice.sort.as_deref() {
        Some("visitors_asc") => json!([["visitors", "asc"]]),
        Some("name_asc") => json!([[panel.dim, "asc"]]),
        Some("name_desc") => json!([[panel.dim, "desc"]]),
        _ => json!([["visitors", "desc"]]),
    };
    m.insert("order_by".into(), order);
    m.insert(
        "pagination".into(),
        json!({"limit": slice.limit.max(1), "offset": slice.offset}),
    );
    m.insert("include".into(), json!({"total_rows": true}));
    Value::Object(m)
}

/// Today's visitors of a site (for the list of sites).
pub fn today_visitors(site: &str) -> Value {
    json!({"site_id": site, "metrics": ["visitors"], "date_range": "day"})
}

/// Visitors per day over the last 30 days (the sparkline).
pub fn sparkline(site: &str) -> Value {
    json!({"site_id": site, "metrics": ["visitors"], "date_range": "30d", "dimensions": ["time:day"], "include": {"time_labels": true}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_and_bodies() {
        assert!(by_id("countries").is_some());
        assert_eq!(by_id("prop:plan").unwrap().dim, "event:props:plan");
        assert!(by_id("prop:").is_none() && by_id("nope").is_none());
        let today = time::macros::date!(2026 - 10 - 08);
        let v = View::default();
        let b = breakdown(
            "s",
            &v,
            today,
            &by_id("events").unwrap(),
            &Slice {
                limit: 10,
                offset: 20,
                search: Some("sign".into()),
                sort: Some("name_asc".into()),
            },
        );
        assert_eq!(b["filters"].as_array().unwrap().len(), 2);
        assert_eq!(b["order_by"], json!([["event:name", "asc"]]));
        assert_eq!(b["pagination"], json!({"limit": 10, "offset": 20}));
        let h = headline("s", &v, today);
        assert_eq!(h["metrics"].as_array().unwrap().len(), 6);
    }
}
