//! Plausible's legacy Stats API v1 (`/api/v1/stats/aggregate|timeseries|breakdown`), a thin layer over
//! the same engine: its query-string parameters become a [`Query`], the answer is shaped as v1 shapes it.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::dims::Dimension;
use super::engine::Answer;
use super::period::{self, Bucket, Clock, Flavour, Period};
use super::plausible::change;
use super::query::{Condition, Filter, Metric, Op, OrderKey, Query};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Aggregate,
    Timeseries,
    Breakdown,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub query: Query,
    pub endpoint: Endpoint,
}

/// Most breakdown rows v1 returns per page.
const MAX_V1_LIMIT: usize = 1000;

fn period_of(params: &HashMap<String, String>, clock: &Clock) -> Result<Period, String> {
    let name = params.get("period").map(String::as_str).unwrap_or("30d");
    let date = params.get("date").map(String::as_str);
    if name == "custom" {
        let (a, b) = date
            .and_then(|d| d.split_once(','))
            .ok_or("date: a custom period needs date=YYYY-MM-DD,YYYY-MM-DD")?;
        return period::pair(a.trim(), b.trim(), clock.zone)
            .filter(|p| p.whole_days)
            .ok_or_else(|| format!("date: invalid custom range {a:?},{b:?}"));
    }
    let today = match date {
        None => clock.today(),
        Some(d) => time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
            .map_err(|_| format!("date: invalid date {d:?}, expected YYYY-MM-DD"))?,
    };
    if ![
        "day", "7d", "30d", "month", "6mo", "12mo", "year", "all", "28d", "91d",
    ]
    .contains(&name)
    {
        return Err(format!(
            "period: invalid period {name:?}; use day, 7d, 30d, month, 6mo, 12mo or custom"
        ));
    }
    period::shorthand(name, clock, today, Flavour::V1)
        .ok_or_else(|| format!("period: invalid period {name:?}"))
}

/// A v1 filter value with `*` wildcards as an anchored pattern (`*` and `**` both match anything).
fn wildcard(value: &str) -> String {
    let joined = value
        .split('*')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*");
    format!("^{}$", joined.replace(".*.*", ".*"))
}

/// `event:page==/blog/**;visit:country==FR|DE;visit:browser!=Safari`
pub fn filters(raw: &str) -> Result<Vec<Filter>, String> {
    raw.split(';')
        .filter(|c| !c.trim().is_empty())
        .map(|clause| {
            let (dim, negated, values) = if let Some((d, v)) = clause.split_once("!=") {
                (d, true, v)
            } else if let Some((d, v)) = clause.split_once("==") {
                (d, false, v)
            } else {
                return Err(format!(
                    "filters: invalid filter {clause:?}; use dimension==value or dimension!=value"
                ));
            };
            let dim = Dimension::parse(dim.trim())
                .ok_or_else(|| format!("filters: unknown dimension {:?}", dim.trim()))?;
            let values: Vec<String> = values.split('|').map(|v| v.trim().to_string()).collect();
            let wild = values.iter().any(|v| v.contains('*'));
            let (op, values) = match (wild, negated) {
                (true, false) => (Op::Matches, values.iter().map(|v| wildcard(v)).collect()),
                (true, true) => (Op::MatchesNot, values.iter().map(|v| wildcard(v)).collect()),
                (false, false) => (Op::Is, values),
                (false, true) => (Op::IsNot, values),
            };
            Condition::new(op, dim, values, true)
                .map(Filter::Cond)
                .map_err(|e| format!("filters: {e}"))
        })
        .collect()
}

pub fn parse(
    endpoint: Endpoint,
    params: &HashMap<String, String>,
    clock: &Clock,
) -> Result<Request, String> {
    let site = params
        .get("site_id")
        .cloned()
        .ok_or("site_id: missing (the site's id)")?;
    let period = period_of(params, clock)?;
    let metrics = params
        .get("metrics")
        .map(String::as_str)
        .unwrap_or("visitors")
        .split(',')
        .map(|m| {
            Metric::parse(m.trim()).ok_or_else(|| format!("metrics: unknown metric {:?}", m.trim()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let filters = filters(params.get("filters").map(String::as_str).unwrap_or(""))?;
    let mut dimensions = Vec::new();
    let mut limit = super::query::MAX_LIMIT;
    let mut offset = 0;
    match endpoint {
        Endpoint::Aggregate => {}
        Endpoint::Timeseries => {
            let name = params.get("period").map(String::as_str).unwrap_or("30d");
            let bucket = match params.get("interval").map(String::as_str) {
                None if name == "day" => Bucket::Hour,
                None if matches!(name, "6mo" | "12mo" | "year") => Bucket::Month,
                None | Some("date") | Some("day") => Bucket::Day,
                Some("hour") => Bucket::Hour,
                Some("week") => Bucket::Week,
                Some("month") => Bucket::Month,
                Some(other) => {
                    return Err(format!(
                        "interval: invalid interval {other:?}; use date or month"
                    ));
                }
            };
            dimensions.push(match bucket {
                Bucket::Hour => Dimension::Hour,
                Bucket::Day => Dimension::Day,
                Bucket::Week => Dimension::Week,
                Bucket::Month => Dimension::Month,
            });
        }
        Endpoint::Breakdown => {
            let property = params
                .get("property")
                .ok_or("property: missing; e.g. property=event:page")?;
            let dim = Dimension::parse(property)
                .filter(|d| !d.is_time())
                .ok_or_else(|| format!("property: unknown property {property:?}"))?;
            dimensions.push(dim);
            limit = match params.get("limit") {
                None => 100,
                Some(l) => l
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_V1_LIMIT).contains(n))
                    .ok_or_else(|| {
                        format!("limit: must be a number between 1 and {MAX_V1_LIMIT}")
                    })?,
            };
            let page = match params.get("page") {
                None => 1,
                Some(p) => p
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or("page: must be a number from 1")?,
            };
            offset = (page - 1) * limit;
        }
    }
    let comparison = match params.get("compare").map(String::as_str) {
        None => None,
        Some("previous_period") => Some(period.previous()),
        Some(other) => {
            return Err(format!(
                "compare: invalid value {other:?}; use previous_period"
            ));
        }
    };
    let order_by = match dimensions.first() {
        Some(d) if d.is_time() => vec![(OrderKey::Dimension(d.clone()), false)],
        _ => vec![(OrderKey::Metric(metrics[0]), true)],
    };
    let query = Query {
        site,
        period,
        metrics,
        dimensions,
        filters,
        order_by,
        limit,
        offset,
        comparison: comparison.filter(|_| endpoint == Endpoint::Aggregate),
        all_buckets: endpoint == Endpoint::Timeseries,
    };
    query.validate()?;
    Ok(Request { query, endpoint })
}

pub fn response(req: &Request, answer: &Answer) -> Value {
    let q = &req.query;
    match req.endpoint {
        Endpoint::Aggregate => {
            let mut results = Map::new();
            if let Some((_, values)) = answer.table.rows.first() {
                for (i, m) in q.metrics.iter().enumerate() {
                    let mut entry = json!({"value": values[i].to_json()});
                    if let Some((_, then)) = answer.comparison.as_ref().and_then(|c| c.first()) {
                        entry["change"] = change(*m, values[i], then[i]);
                        entry["comparison_value"] = then[i].to_json();
                    }
                    results.insert(m.name().to_string(), entry);
                }
            }
            json!({ "results": results })
        }
        Endpoint::Timeseries | Endpoint::Breakdown => {
            let key = match req.endpoint {
                Endpoint::Timeseries => "date".to_string(),
                _ => q.dimensions[0].v1_key(),
            };
            let rows: Vec<Value> = answer
                .table
                .rows
                .iter()
                .map(|(dims, values)| {
                    let mut row = Map::new();
                    row.insert(key.clone(), json!(dims[0]));
                    for (i, m) in q.metrics.iter().enumerate() {
                        row.insert(m.name().to_string(), values[i].to_json());
                    }
                    Value::Object(row)
                })
                .collect();
            json!({ "results": rows })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_filters() {
        let f = filters("event:page==/blog/**;visit:country==FR|DE;visit:browser!=Safari").unwrap();
        assert_eq!(f.len(), 3);
        let value = |page: &'static str, country: &'static str, browser: &'static str| {
            move |d: &Dimension| match d {
                Dimension::Page => Some(page.to_string()),
                Dimension::Country => Some(country.to_string()),
                Dimension::Browser => Some(browser.to_string()),
                _ => None,
            }
        };
        let all = |v: &dyn Fn(&Dimension) -> Option<String>| f.iter().all(|x| x.eval(v));
        assert!(all(&value("/blog/a/b", "DE", "Chrome")));
        assert!(!all(&value("/docs", "DE", "Chrome")));
        assert!(!all(&value("/blog/x", "US", "Chrome")));
        assert!(!all(&value("/blog/x", "FR", "Safari")));
        assert!(filters("visit:city==Paris").is_err());
        assert!(filters("event:page=/a").is_err());
        assert_eq!(wildcard("/a*b.c"), "^/a.*b\\.c$");
    }
}
