//! The one engine behind the Stats API, the dashboard and CSV exports. It decides how to answer a
//! [`Query`]: from daily rollups when the period is whole local days, there is at most one breakdown
//! dimension besides time (not hours), and the filters are on that dimension only (or, with no breakdown,
//! on one visit dimension); otherwise from the rows themselves. Both paths feed the same sums into the
//! same metric computation, so a question gets the same answer either way.

use std::cell::RefCell;
use std::sync::Arc;

use super::dims::{Dimension, ENTRY, VISIT_DIMS};
use super::facts::{self, Facts, FactsRequest};
use super::period::{Bucket, Period};
use super::query::{Filter, Metric, Query};
use super::results::{self, Acc, Groups, Row, Table, Totals};
use super::rollups::{self, RollupRow};
use super::visitors;
use crate::error::Result;

/// Where the engine reads from (the storage implements it).
pub trait Source {
    /// Rollup rows of a site for one dimension code (and property key) over local days.
    fn rollups(
        &self,
        site: &str,
        code: u16,
        prop_key: Option<&str>,
        first_day: i32,
        last_day: i32,
    ) -> Result<Vec<RollupRow>>;

    /// Visits that started in `[from, to)` (and their events) with what the request asks for.
    fn facts(&self, req: &FactsRequest) -> Result<Arc<Facts>>;
}

/// A source that loads the rows of each period once for a set of queries: the requests of the whole set
/// are planned first and merged per period, so a dashboard's dozen queries read the rows once or twice.
pub struct Cached<'a> {
    inner: &'a dyn Source,
    planned: Vec<FactsRequest>,
    loaded: RefCell<Vec<(FactsRequest, Arc<Facts>)>>,
}

impl<'a> Cached<'a> {
    pub fn new(inner: &'a dyn Source, queries: &[&Query]) -> Self {
        Self::preloaded(inner, plan(queries), Vec::new())
    }

    /// A cache that starts with rows already loaded (by [`super::parallel`]).
    pub fn preloaded(
        inner: &'a dyn Source,
        planned: Vec<FactsRequest>,
        loaded: Vec<(FactsRequest, Arc<Facts>)>,
    ) -> Self {
        Cached {
            inner,
            planned,
            loaded: RefCell::new(loaded),
        }
    }
}

/// The rows a set of queries needs, merged per period: one request per site and period.
pub fn plan(queries: &[&Query]) -> Vec<FactsRequest> {
    let mut planned: Vec<FactsRequest> = Vec::new();
    let periods = queries.iter().flat_map(|q| {
        std::iter::once(q.period)
            .chain(q.comparison)
            .map(move |p| (*q, p))
    });
    for (q, period) in periods {
        let Some(req) = facts_request(q, &period) else {
            continue;
        };
        match planned
            .iter_mut()
            .find(|p| (p.site.as_str(), p.from, p.to) == (req.site.as_str(), req.from, req.to))
        {
            Some(p) => *p = p.merge(&req),
            None => planned.push(req),
        }
    }
    planned
}

impl Source for Cached<'_> {
    fn rollups(
        &self,
        site: &str,
        code: u16,
        prop_key: Option<&str>,
        first_day: i32,
        last_day: i32,
    ) -> Result<Vec<RollupRow>> {
        self.inner
            .rollups(site, code, prop_key, first_day, last_day)
    }

    fn facts(&self, req: &FactsRequest) -> Result<Arc<Facts>> {
        if let Some((_, f)) = self.loaded.borrow().iter().find(|(r, _)| r.covers(req)) {
            return Ok(f.clone());
        }
        let wanted = self
            .planned
            .iter()
            .find(|p| p.covers(req))
            .cloned()
            .unwrap_or_else(|| req.clone());
        let facts = self.inner.facts(&wanted)?;
        self.loaded.borrow_mut().push((wanted, facts.clone()));
        Ok(facts)
    }
}

/// A query's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub table: Table,
    /// Rows of the comparison period, aligned with `table.rows` (by dimension values, or by position for
    /// time buckets).
    pub comparison: Option<Vec<(Vec<String>, Vec<results::Value>)>>,
    pub time_labels: Option<Vec<String>>,
    /// Whether the rollups answered (for tests and benchmarks).
    pub from_rollups: bool,
}

/// How rollups answer a query, if they can.
struct RollupPlan<'a> {
    source: Option<&'a Dimension>,
}

fn rollup_plan(q: &Query) -> Option<RollupPlan<'_>> {
    if !q.period.whole_days || q.time_dimension() == Some(&Dimension::Hour) {
        return None;
    }
    let breakdown: Vec<&Dimension> = q.dimensions.iter().filter(|d| !d.is_time()).collect();
    if breakdown.len() > 1 {
        return None;
    }
    let filter_dim = if q.filters.is_empty() {
        None
    } else {
        let all = Filter::And(q.filters.clone());
        Some(all.single_dimension()?.clone())
    };
    match (breakdown.first(), filter_dim) {
        (b, None) => Some(RollupPlan { source: b.copied() }),
        (Some(b), Some(f)) if **b == f => Some(RollupPlan { source: Some(*b) }),
        // With no breakdown, a filter on one visit dimension sums that dimension's matching rows: each
        // visit has exactly one value, so nothing counts twice.
        (None, Some(f)) if !f.is_event() => {
            let source = q.filter_dimensions().into_iter().next()?;
            Some(RollupPlan {
                source: Some(source),
            })
        }
        _ => None,
    }
}

fn bucket_of(q: &Query) -> Option<Bucket> {
    q.time_dimension().map(|d| match d {
        Dimension::Hour => Bucket::Hour,
        Dimension::Day => Bucket::Day,
        Dimension::Week => Bucket::Week,
        _ => Bucket::Month,
    })
}

fn wants_entries(q: &Query) -> bool {
    q.dimensions.contains(&Dimension::Page)
        && q.metrics
            .iter()
            .any(|m| matches!(m, Metric::BounceRate | Metric::VisitDuration))
}

/// Filters without event conditions at the top level: the divisor of `conversion_rate`.
fn without_goals(filters: &[Filter]) -> Vec<Filter> {
    filters
        .iter()
        .filter(|f| !f.conditions().iter().any(|c| c.dim.is_event()))
        .cloned()
        .collect()
}

fn distinct_visitors(groups: Groups) -> u64 {
    let parts: Vec<&[u32]> = groups.rows.values().flat_map(Acc::visitor_slices).collect();
    super::visitors::distinct_in(&parts)
}

fn needs_totals(q: &Query) -> bool {
    q.metrics
        .iter()
        .any(|m| matches!(m, Metric::Percentage | Metric::ConversionRate))
}

/// What the rows path reads for a query over a period (`None`: the rollups answer it).
fn facts_request(q: &Query, period: &Period) -> Option<FactsRequest> {
    if rollup_plan(q).is_some() {
        return None;
    }
    Some(rows_request(q, period))
}

fn rows_request(q: &Query, period: &Period) -> FactsRequest {
    let conditions: Vec<&Dimension> = q
        .filters
        .iter()
        .flat_map(|f| f.conditions())
        .map(|c| &c.dim)
        .collect();
    let named = || q.dimensions.iter().chain(conditions.iter().copied());
    let mut visit_dims = [false; VISIT_DIMS.len()];
    for i in named().filter_map(Dimension::visit_index) {
        visit_dims[i] = true;
    }
    visit_dims[ENTRY] |= wants_entries(q);
    // The totals of percentage and conversion rate count visits the event filters leave out.
    let (visit_in, page_in) = if needs_totals(q) {
        facts::pushdown(&without_goals(&q.filters), false)
    } else {
        facts::pushdown(&q.filters, true)
    };
    FactsRequest {
        site: q.site.clone(),
        from: period.from,
        to: period.to,
        visit_dims,
        events: named().any(Dimension::is_event),
        props: named().any(|d| matches!(d, Dimension::Prop(_))),
        visit_in,
        page_in,
    }
}

/// Runs a query for one period: its rows and the totals its metrics refer to.
fn rows_for(source: &dyn Source, q: &Query, period: &Period) -> Result<(Vec<Row>, Totals, bool)> {
    let bucket = bucket_of(q);
    let needs_totals = needs_totals(q);
    if let Some(plan) = rollup_plan(q) {
        let spec = rollups::Spec {
            dimensions: &q.dimensions,
            filters: &q.filters,
            source: plan.source,
            period,
            bucket,
        };
        let (first, last) = (period.first_day(), period.last_day());
        let mut totals = Totals::default();
        // Every visit counts once under each visit dimension (and the totals are the TOTAL rows
        // themselves): only an event dimension's rows leave visitors out of the all-visitors figure.
        // Counted before the breakdown's rows are read, so that both are never held at once.
        let event_source = plan.source.is_some_and(Dimension::is_event);
        if needs_totals && event_source {
            let all = source.rollups(&q.site, super::dims::TOTAL, None, first, last)?;
            let total = rollups::Spec {
                dimensions: &[],
                filters: &[],
                source: None,
                period,
                bucket: None,
            };
            totals.all_visitors = visitors::distinct_in(&rollups::matching_visitors(&total, &all));
        }
        let rows = source.rollups(&q.site, spec.code(), spec.prop_key(), first, last)?;
        let entries = if wants_entries(q) {
            let code = Dimension::EntryPage.rollup_code().unwrap_or_default();
            source.rollups(&q.site, code, None, first, last)?
        } else {
            Vec::new()
        };
        if needs_totals {
            let flat = rollups::Spec {
                dimensions: &[],
                ..spec
            };
            totals.visitors = visitors::distinct_in(&rollups::matching_visitors(&flat, &rows));
            if !event_source {
                totals.all_visitors = totals.visitors;
            }
        }
        let groups = rollups::aggregate_owned(&spec, rows, &entries);
        return Ok((groups.into_rows(), totals, true));
    }
    let facts_ = source.facts(&rows_request(q, period))?;
    let spec = facts::Spec {
        dimensions: &q.dimensions,
        filters: &q.filters,
        period,
        bucket,
        entries: wants_entries(q),
    };
    let mut totals = Totals::default();
    if needs_totals {
        let flat = facts::Spec {
            dimensions: &[],
            entries: false,
            ..spec
        };
        totals.visitors = distinct_visitors(facts::aggregate(&facts_, &flat));
        let open = without_goals(&q.filters);
        let all = facts::Spec {
            dimensions: &[],
            filters: &open,
            period,
            bucket: None,
            entries: false,
        };
        totals.all_visitors = distinct_visitors(facts::aggregate(&facts_, &all));
    }
    let groups = facts::aggregate(&facts_, &spec);
    Ok((groups.into_rows(), totals, false))
}

/// Adds empty rows for the time buckets without data (a time-only breakdown).
fn fill_buckets(q: &Query, period: &Period, rows: &mut Vec<Row>) {
    let only_time = q.dimensions.len() == 1 && q.dimensions[0].is_time();
    if !only_time {
        return;
    }
    if let Some(bucket) = bucket_of(q) {
        for label in bucket.labels(period) {
            if !rows.iter().any(|r| r.dims[0] == label) {
                rows.push(Row::new(vec![label], Default::default()));
            }
        }
    }
}

/// Answers a set of queries, reading the rows of each period once.
pub fn run_batch(source: &dyn Source, queries: &[Query]) -> Vec<Result<Answer>> {
    let all: Vec<&Query> = queries.iter().collect();
    let cached = Cached::new(source, &all);
    queries.iter().map(|q| answer(&cached, q)).collect()
}

pub(super) fn answer(source: &dyn Source, q: &Query) -> Result<Answer> {
    let (mut rows, totals, from_rollups) = rows_for(source, q, &q.period)?;
    // An aggregate has exactly one row, zeros when nothing matched.
    if q.dimensions.is_empty() && rows.is_empty() {
        rows.push(Row::new(Vec::new(), Default::default()));
    }
    let entry = wants_entries(q);
    if q.all_buckets || q.comparison.is_some() {
        fill_buckets(q, &q.period, &mut rows);
    }
    let table = results::finish(q, rows, &totals, entry);
    let time_labels = bucket_of(q)
        .filter(|_| q.all_buckets)
        .map(|b| b.labels(&q.period));
    let comparison = match &q.comparison {
        None => None,
        Some(period) => {
            let (mut rows, totals, _) = rows_for(source, q, period)?;
            if q.dimensions.is_empty() && rows.is_empty() {
                rows.push(Row::new(Vec::new(), Default::default()));
            }
            fill_buckets(q, period, &mut rows);
            let everything = Query {
                offset: 0,
                limit: usize::MAX,
                ..q.clone()
            };
            let other = results::finish(&everything, rows, &totals, entry);
            Some(align(q, &table, other, period))
        }
    };
    Ok(Answer {
        table,
        comparison,
        time_labels,
        from_rollups,
    })
}

/// The comparison row of each row: the same dimension values, or for a time breakdown the bucket at the
/// same position. Missing rows get zeros (unknown for durations and times).
fn align(
    q: &Query,
    table: &Table,
    other: Table,
    period: &Period,
) -> Vec<(Vec<String>, Vec<results::Value>)> {
    let time_pos = q.dimensions.iter().position(Dimension::is_time);
    let labels_now = bucket_of(q).map(|b| b.labels(&q.period));
    let labels_then = bucket_of(q).map(|b| b.labels(period));
    table
        .rows
        .iter()
        .map(|(dims, _)| {
            let mut want = dims.clone();
            if let (Some(pos), Some(now), Some(then)) = (time_pos, &labels_now, &labels_then)
                && let Some(i) = now.iter().position(|l| *l == dims[pos])
            {
                want[pos] = then.get(i).cloned().unwrap_or_default();
            }
            other
                .rows
                .iter()
                .find(|(d, _)| *d == want)
                .cloned()
                .unwrap_or_else(|| {
                    let zeros = q
                        .metrics
                        .iter()
                        .map(|m| match m {
                            Metric::VisitDuration | Metric::TimeOnPage => results::Value::Null,
                            Metric::ViewsPerVisit | Metric::Percentage | Metric::ConversionRate => {
                                results::Value::Float(0.0)
                            }
                            _ => results::Value::Int(0),
                        })
                        .collect();
                    (want, zeros)
                })
        })
        .collect()
}
