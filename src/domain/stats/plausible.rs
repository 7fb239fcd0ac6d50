//! Plausible's Stats API v2 (`POST /api/v2/query`): its request turned into a [`Query`], and an answer
//! shaped as Plausible shapes it (`results`, `meta`, `query`). Every bad parameter gets a message that
//! names it.

use serde_json::{Map, Value, json};

use super::dims::Dimension;
use super::engine::Answer;
use super::period::{self, Bucket, Clock, Flavour, Period};
use super::query::{Condition, Filter, Metric, Op, OrderKey, Query};
use super::results::Value as MetricValue;

/// A parsed v2 request: the query, and what the answer echoes of it.
#[derive(Debug, Clone)]
pub struct Request {
    pub query: Query,
    filters: Value,
    include: Map<String, Value>,
    comparison_mode: Option<Value>,
}

const KEYS: [&str; 8] = [
    "site_id",
    "metrics",
    "date_range",
    "dimensions",
    "filters",
    "order_by",
    "include",
    "pagination",
];

fn object(body: &Value) -> Result<&Map<String, Value>, String> {
    let obj = body
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "#/{k}: Schema does not allow additional properties."
        ));
    }
    Ok(obj)
}

/// The site a v2 request is about (checked before anything else, for the key's access).
pub fn site_id(body: &Value) -> Result<String, String> {
    object(body)?
        .get("site_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "#: Required property site_id was not present.".into())
}

fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("#/{what}/{i}: Type mismatch. Expected String."))
            })
            .collect(),
        Some(_) => Err(format!("#/{what}: Type mismatch. Expected Array.")),
    }
}

/// A date range: a shorthand or a pair of dates or date-times.
pub fn date_range(v: &Value, clock: &Clock, flavour: Flavour) -> Result<Period, String> {
    let bad = || format!("#/date_range: Invalid date range {v}");
    match v {
        Value::String(s) => period::shorthand(s, clock, clock.today(), flavour).ok_or_else(bad),
        Value::Array(pair) if pair.len() == 2 => match (pair[0].as_str(), pair[1].as_str()) {
            (Some(a), Some(b)) => period::pair(a, b, clock.zone).ok_or_else(bad),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn dimension(name: &str, at: &str, period: &Period) -> Result<Dimension, String> {
    if name == "time" {
        return Ok(match Bucket::auto(period) {
            Bucket::Hour => Dimension::Hour,
            Bucket::Day => Dimension::Day,
            Bucket::Week => Dimension::Week,
            Bucket::Month => Dimension::Month,
        });
    }
    Dimension::parse(name).ok_or_else(|| format!("#/{at}: Invalid dimension {name:?}"))
}

/// One filter expression of Plausible's nested array syntax.
pub fn filter(v: &Value, at: &str) -> Result<Filter, String> {
    let bad = |why: &str| format!("#/{at}: Invalid filter {v}: {why}");
    let items = v.as_array().ok_or_else(|| bad("a filter is an array"))?;
    let head = items
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| bad("it starts with an operator"))?;
    match head {
        "and" | "or" => {
            let inner = items
                .get(1)
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty() && items.len() == 2)
                .ok_or_else(|| bad("`and` and `or` take one non-empty list of filters"))?;
            let fs = inner
                .iter()
                .enumerate()
                .map(|(i, f)| filter(f, &format!("{at}/1/{i}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if head == "and" {
                Filter::And(fs)
            } else {
                Filter::Or(fs)
            })
        }
        "not" => {
            let inner = items
                .get(1)
                .filter(|_| items.len() == 2)
                .ok_or_else(|| bad("`not` takes one filter"))?;
            Ok(Filter::Not(Box::new(filter(inner, &format!("{at}/1"))?)))
        }
        op => {
            let op = Op::parse(op).ok_or_else(|| bad("unknown operator"))?;
            let dim_name = items
                .get(1)
                .and_then(Value::as_str)
                .ok_or_else(|| bad("the second item names a dimension"))?;
            let dim = Dimension::parse(dim_name)
                .ok_or_else(|| bad(&format!("unknown dimension {dim_name:?}")))?;
            let values = items
                .get(2)
                .and_then(Value::as_array)
                .ok_or_else(|| bad("the third item is a list of values"))?
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("values are strings"))?;
            let case_sensitive = match items.get(3) {
                None => true,
                Some(m) => {
                    if matches!(op, Op::Matches | Op::MatchesNot) {
                        return Err(bad(
                            "the case_sensitive modifier is not allowed with pattern operators",
                        ));
                    }
                    m.get("case_sensitive")
                        .and_then(Value::as_bool)
                        .filter(|_| m.as_object().is_some_and(|o| o.len() == 1))
                        .ok_or_else(|| bad("the only modifier is {\"case_sensitive\": bool}"))?
                }
            };
            if items.len() > 4 {
                return Err(bad("too many items"));
            }
            if dim == Dimension::Country
                && matches!(op, Op::Is | Op::IsNot)
                && values.iter().any(|c| c.len() != 2)
            {
                return Err(format!(
                    "#/{at}: Invalid visit:country filter, visit:country needs to be a valid 2-letter country code."
                ));
            }
            Condition::new(op, dim, values, case_sensitive)
                .map(Filter::Cond)
                .map_err(|e| bad(&e))
        }
    }
}

fn order_by(
    v: Option<&Value>,
    metrics: &[Metric],
    dims: &[Dimension],
    period: &Period,
) -> Result<Vec<(OrderKey, bool)>, String> {
    let Some(v) = v else {
        let first = OrderKey::Metric(metrics[0]);
        return Ok(match dims.iter().find(|d| d.is_time()) {
            Some(t) => vec![(OrderKey::Dimension(t.clone()), false), (first, true)],
            None => vec![(first, true)],
        });
    };
    let items = v
        .as_array()
        .ok_or("#/order_by: Type mismatch. Expected Array.")?;
    items
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let bad = || format!("#/order_by/{i}: Invalid value in order_by {entry}");
            let pair = entry.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
            let name = pair[0].as_str().ok_or_else(bad)?;
            let desc = match pair[1].as_str() {
                Some("desc") => true,
                Some("asc") => false,
                _ => return Err(bad()),
            };
            let key = match Metric::parse(name) {
                Some(m) => OrderKey::Metric(m),
                None => OrderKey::Dimension(dimension(name, &format!("order_by/{i}"), period)?),
            };
            Ok((key, desc))
        })
        .collect()
}

/// Parses a v2 request for a site whose clock is `clock`.
pub fn parse(body: &Value, clock: &Clock) -> Result<Request, String> {
    let obj = object(body)?;
    let missing: Vec<&str> = ["site_id", "metrics", "date_range"]
        .into_iter()
        .filter(|k| !obj.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "#: Required properties {} were not present.",
            missing.join(", ")
        ));
    }
    let metric_names = strings(obj.get("metrics"), "metrics")?;
    if metric_names.is_empty() {
        return Err("#/metrics: Expected a minimum of 1 items but got 0.".into());
    }
    let mut metrics = Vec::new();
    for (i, name) in metric_names.iter().enumerate() {
        let m =
            Metric::parse(name).ok_or_else(|| format!("#/metrics/{i}: Invalid metric {name:?}"))?;
        if metrics.contains(&m) {
            return Err("#/metrics: Expected items to be unique but they were not.".into());
        }
        metrics.push(m);
    }
    let period = date_range(&obj["date_range"], clock, Flavour::V2)?;
    let dimensions = strings(obj.get("dimensions"), "dimensions")?
        .iter()
        .enumerate()
        .map(|(i, d)| dimension(d, &format!("dimensions/{i}"), &period))
        .collect::<Result<Vec<_>, _>>()?;
    let filters_json = obj.get("filters").cloned().unwrap_or(json!([]));
    let filters = filters_json
        .as_array()
        .ok_or("#/filters: Type mismatch. Expected Array.")?
        .iter()
        .enumerate()
        .map(|(i, f)| filter(f, &format!("filters/{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let include = match obj.get("include") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err("#/include: Type mismatch. Expected Object.".into()),
    };
    if let Some(k) = include
        .keys()
        .find(|k| !["time_labels", "total_rows", "imports", "comparisons"].contains(&k.as_str()))
    {
        return Err(format!(
            "#/include/{k}: Schema does not allow additional properties."
        ));
    }
    let flag = |k: &str| include.get(k).and_then(Value::as_bool).unwrap_or(false);
    let has_time = dimensions.iter().any(Dimension::is_time);
    if flag("time_labels") && !has_time {
        return Err("include: Invalid include.time_labels: requires a time dimension.".into());
    }
    let comparison_mode = include.get("comparisons").cloned();
    let comparison =
        match &comparison_mode {
            None | Some(Value::Null) => None,
            Some(c) => Some(match c.get("mode").and_then(Value::as_str) {
                Some("previous_period") => period.previous(),
                Some("year_over_year") => period.year_before(),
                Some("custom") => date_range(
                    c.get("date_range").unwrap_or(&Value::Null),
                    clock,
                    Flavour::V2,
                )
                .map_err(|e| e.replace("#/date_range", "#/include/comparisons/date_range"))?,
                _ => return Err(
                    "#/include/comparisons: mode must be previous_period, year_over_year or custom"
                        .into(),
                ),
            }),
        };
    let (limit, offset) = match obj.get("pagination") {
        None => (super::query::MAX_LIMIT, 0),
        Some(p) => {
            let num = |k: &str, default: u64| match p.get(k) {
                None => Ok(default),
                Some(v) => v
                    .as_u64()
                    .ok_or_else(|| format!("#/pagination/{k}: Type mismatch. Expected Integer.")),
            };
            if let Some(k) = p
                .as_object()
                .and_then(|o| o.keys().find(|k| *k != "limit" && *k != "offset"))
            {
                return Err(format!(
                    "#/pagination/{k}: Schema does not allow additional properties."
                ));
            }
            let limit = num("limit", super::query::MAX_LIMIT as u64)?;
            if !(1..=super::query::MAX_LIMIT as u64).contains(&limit) {
                return Err(format!(
                    "#/pagination/limit: Expected the value to be between 1 and {}",
                    super::query::MAX_LIMIT
                ));
            }
            (limit as usize, num("offset", 0)? as usize)
        }
    };
    let order = order_by(obj.get("order_by"), &metrics, &dimensions, &period)?;
    let query = Query {
        site: site_id(body)?,
        period,
        metrics,
        dimensions,
        filters,
        order_by: order,
        limit,
        offset,
        comparison,
        all_buckets: flag("time_labels") || comparison_mode.is_some(),
    };
    query.validate()?;
    Ok(Request {
        query,
        filters: filters_json,
        include,
        comparison_mode,
    })
}

/// How a metric changed against the comparison (Plausible's rules).
pub fn change(m: Metric, now: MetricValue, then: MetricValue) -> Value {
    let (Some(new), Some(old)) = (now.as_f64(), then.as_f64()) else {
        return Value::Null;
    };
    match m {
        Metric::BounceRate => {
            if old > 0.0 {
                json!((new - old).round() as i64)
            } else {
                Value::Null
            }
        }
        Metric::ConversionRate => json!(((new - old) * 10.0).round() / 10.0),
        _ => {
            if old == 0.0 {
                json!(if new > 0.0 { 100 } else { 0 })
            } else {
                json!(((new - old) / old * 100.0).round() as i64)
            }
        }
    }
}

fn values(v: &[MetricValue]) -> Vec<Value> {
    v.iter().map(|x| x.to_json()).collect()
}

/// The answer in Plausible's shape.
pub fn response(req: &Request, answer: &Answer) -> Value {
    let q = &req.query;
    let results: Vec<Value> = answer
        .table
        .rows
        .iter()
        .enumerate()
        .map(|(i, (dims, metrics))| {
            let mut row = json!({"metrics": values(metrics), "dimensions": dims});
            if let Some(cmp) = answer.comparison.as_ref().and_then(|c| c.get(i)) {
                let change: Vec<Value> = q
                    .metrics
                    .iter()
                    .enumerate()
                    .map(|(j, m)| change(*m, metrics[j], cmp.1[j]))
                    .collect();
                row["comparison"] =
                    json!({"dimensions": cmp.0, "metrics": values(&cmp.1), "change": change});
            }
            row
        })
        .collect();
    let mut meta = Map::new();
    let flag = |k: &str| req.include.get(k).and_then(Value::as_bool).unwrap_or(false);
    if flag("time_labels")
        && let Some(labels) = &answer.time_labels
    {
        meta.insert("time_labels".into(), json!(labels));
    }
    if flag("total_rows") {
        meta.insert("total_rows".into(), json!(answer.table.total_rows));
    }
    if flag("imports") {
        meta.insert("imports_included".into(), json!(false));
    }
    let mut include = Map::new();
    for (k, v) in &req.include {
        if v.as_bool() == Some(true) {
            include.insert(k.clone(), v.clone());
        }
    }
    if let Some(c) = &req.comparison_mode {
        include.insert("comparisons".into(), c.clone());
    }
    let order: Vec<Value> = q
        .order_by
        .iter()
        .map(|(k, desc)| {
            let name = match k {
                OrderKey::Metric(m) => m.name().to_string(),
                OrderKey::Dimension(d) => d.name(),
            };
            json!([name, if *desc { "desc" } else { "asc" }])
        })
        .collect();
    json!({
        "results": results,
        "meta": meta,
        "query": {
            "site_id": q.site,
            "metrics": q.metrics.iter().map(|m| m.name()).collect::<Vec<_>>(),
            "date_range": q.period.echo(),
            "filters": req.filters,
            "dimensions": q.dimensions.iter().map(Dimension::name).collect::<Vec<_>>(),
            "order_by": order,
            "include": include,
            "pagination": {"offset": q.offset, "limit": q.limit},
        }
    })
}
