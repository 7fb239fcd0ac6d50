//! What the engine sums per result row, and how metrics are computed from it: whichever path produced
//! the sums (daily rollups or the rows themselves), the metrics come from here, so both answer alike.

use std::collections::HashMap;

use super::query::{Metric, OrderKey, Query};
use super::visitors;

/// The sums behind one result row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acc {
    pub visits: u64,
    pub pageviews: u64,
    pub events: u64,
    pub bounces: u64,
    /// Seconds, summed over the visits.
    pub duration: u64,
    /// Engaged time on the row's page (event:page rows).
    pub engaged_ms: u64,
    /// Visitor numbers, one per visit counted (duplicates allowed).
    pub visitors: Vec<u32>,
    /// More of them, in the lists they were read in (rollup rows' numbers, taken whole rather than
    /// copied: a year of a dimension is millions of numbers).
    pub visitor_parts: Vec<Vec<u32>>,
}

impl Acc {
    pub fn add(&mut self, other: &Acc) {
        self.visits += other.visits;
        self.pageviews += other.pageviews;
        self.events += other.events;
        self.bounces += other.bounces;
        self.duration += other.duration;
        self.engaged_ms += other.engaged_ms;
        self.visitors.extend_from_slice(&other.visitors);
        self.visitor_parts
            .extend(other.visitor_parts.iter().cloned());
    }

    /// Every visitor number, as slices.
    pub fn visitor_slices(&self) -> impl Iterator<Item = &[u32]> {
        std::iter::once(self.visitors.as_slice())
            .chain(self.visitor_parts.iter().map(Vec::as_slice))
    }
}

/// A metric's value: counts are integers, rates floats, and some may be unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
    Null,
}

impl Value {
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(n as f64),
            Value::Float(f) => Some(f),
            Value::Null => None,
        }
    }

    pub fn to_json(self) -> serde_json::Value {
        match self {
            Value::Int(n) => n.into(),
            Value::Float(f) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Null => serde_json::Value::Null,
        }
    }

    pub fn to_text(self) -> String {
        match self {
            Value::Int(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Null => String::new(),
        }
    }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (x * p).round() / p
}

/// A row's sums, finished: distinct visitors counted, entry-page figures attached.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub dims: Vec<String>,
    pub acc: Acc,
    pub visitors: u64,
    /// Bounces and duration of visits that entered on the row's page (for `event:page` rows).
    pub entry: Option<Acc>,
}

/// Totals a row's metrics may refer to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Visitors of the whole query (for `percentage`).
    pub visitors: u64,
    /// Visitors without the event filters (for `conversion_rate`).
    pub all_visitors: u64,
}

impl Row {
    pub fn new(dims: Vec<String>, mut acc: Acc) -> Row {
        let visitors = if acc.visitor_parts.is_empty() {
            visitors::distinct(&mut acc.visitors)
        } else {
            visitors::distinct_in(&acc.visitor_slices().collect::<Vec<_>>())
        };
        acc.visitors = Vec::new();
        acc.visitor_parts = Vec::new();
        Row {
            dims,
            acc,
            visitors,
            entry: None,
        }
    }

    pub fn metric(&self, m: Metric, totals: &Totals) -> Value {
        let a = &self.acc;
        let session = self.entry.as_ref().unwrap_or(a);
        match m {
            Metric::Visitors => Value::Int(self.visitors),
            Metric::Visits => Value::Int(a.visits),
            Metric::Pageviews => Value::Int(a.pageviews),
            Metric::Events => Value::Int(a.events),
            Metric::ViewsPerVisit => Value::Float(if a.visits == 0 {
                0.0
            } else {
                round_to(a.pageviews as f64 / a.visits as f64, 2)
            }),
            Metric::BounceRate => Value::Int(if session.visits == 0 {
                0
            } else {
                (session.bounces as f64 * 100.0 / session.visits as f64).round() as u64
            }),
            Metric::VisitDuration => {
                if session.visits == 0 {
                    Value::Null
                } else {
                    Value::Int((session.duration as f64 / session.visits as f64).round() as u64)
                }
            }
            Metric::Percentage => {
                if totals.visitors == 0 {
                    Value::Null
                } else {
                    Value::Float(round_to(
                        self.visitors as f64 * 100.0 / totals.visitors as f64,
                        1,
                    ))
                }
            }
            Metric::ConversionRate => Value::Float(if totals.all_visitors == 0 {
                0.0
            } else {
                round_to(self.visitors as f64 * 100.0 / totals.all_visitors as f64, 2)
            }),
            Metric::TimeOnPage => {
                if a.engaged_ms == 0 || a.visits == 0 {
                    Value::Null
                } else {
                    Value::Int((a.engaged_ms as f64 / 1000.0 / a.visits as f64).round() as u64)
                }
            }
        }
    }
}

/// Groups of sums, keyed by their dimension values.
#[derive(Debug, Default)]
pub struct Groups {
    pub rows: HashMap<Vec<String>, Acc>,
    /// Entry-page sums keyed like `rows` (with the entry page in place of the page).
    pub entries: HashMap<Vec<String>, Acc>,
}

impl Groups {
    pub fn into_rows(self) -> Vec<Row> {
        let Groups { rows, mut entries } = self;
        rows.into_iter()
            .map(|(dims, acc)| {
                let entry = entries.remove(&dims).map(|mut e| {
                    e.visitors = Vec::new();
                    e.visitor_parts = Vec::new();
                    e
                });
                Row {
                    entry: Some(entry.unwrap_or_default()),
                    ..Row::new(dims, acc)
                }
            })
            .collect()
    }
}

/// The rows of a result, computed, ordered and paged.
#[derive(Debug, Clone)]
pub struct Table {
    pub rows: Vec<(Vec<String>, Vec<Value>)>,
    pub total_rows: usize,
}

/// Orders rows by the query's `order_by` (then by dimension values, for a stable answer) and pages them.
pub fn finish(query: &Query, mut rows: Vec<Row>, totals: &Totals, with_entry: bool) -> Table {
    if !with_entry {
        for r in &mut rows {
            r.entry = None;
        }
    }
    let computed: Vec<(Vec<String>, Vec<Value>)> = rows
        .into_iter()
        .map(|r| {
            let values = query.metrics.iter().map(|m| r.metric(*m, totals)).collect();
            (r.dims, values)
        })
        .collect();
    let mut computed = computed;
    computed.sort_by(|a, b| {
        for (key, desc) in &query.order_by {
            let ord = match key {
                OrderKey::Metric(m) => {
                    let i = query.metrics.iter().position(|x| x == m).unwrap_or(0);
                    let (x, y) = (a.1[i].as_f64(), b.1[i].as_f64());
                    x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
                }
                OrderKey::Dimension(d) => {
                    let i = query.dimensions.iter().position(|x| x == d).unwrap_or(0);
                    a.0.get(i).cmp(&b.0.get(i))
                }
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        a.0.cmp(&b.0)
    });
    let total_rows = computed.len();
    let rows = computed
        .into_iter()
        .skip(query.offset)
        .take(query.limit)
        .collect();
    Table { rows, total_rows }
}
