//! What the rows path reads for a set of queries over one period: the columns they need, and the
//! conditions every counted row satisfies (pushed down to the storage, so it skips the other rows).

use super::dims::{Dimension, VISIT_DIMS};
use super::query::{Condition, Filter, Op};

/// What to read from the rows for a set of queries over one period: the columns they need, and the
/// conditions every counted row satisfies, so the storage can skip the others.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FactsRequest {
    pub site: String,
    pub from: i64,
    pub to: i64,
    /// Which of [`VISIT_DIMS`] to load.
    pub visit_dims: [bool; VISIT_DIMS.len()],
    pub events: bool,
    pub props: bool,
    /// Visits whose dimension (index into [`VISIT_DIMS`]) holds one of these stored values; an empty
    /// string stands for an unset value.
    pub visit_in: VisitIn,
    /// Events whose path is one of these (an empty string: no path).
    pub page_in: Option<Vec<String>>,
}

impl FactsRequest {
    /// Whether `self` holds everything `other` needs (same rows or more, and its columns).
    pub fn covers(&self, other: &FactsRequest) -> bool {
        self.site == other.site
            && self.from == other.from
            && self.to == other.to
            && (self.visit_in.is_empty() || self.visit_in == other.visit_in)
            && (self.page_in.is_none() || self.page_in == other.page_in)
            && self
                .visit_dims
                .iter()
                .zip(&other.visit_dims)
                .all(|(a, b)| *a || !*b)
            && (self.events || !other.events)
            && (self.props || !other.props)
    }

    /// One request answering both (the rows of either, the columns of both).
    pub fn merge(&self, other: &FactsRequest) -> FactsRequest {
        let mut visit_dims = self.visit_dims;
        for (a, b) in visit_dims.iter_mut().zip(&other.visit_dims) {
            *a |= *b;
        }
        FactsRequest {
            site: self.site.clone(),
            from: self.from,
            to: self.to,
            visit_dims,
            events: self.events || other.events,
            props: self.props || other.props,
            visit_in: if self.visit_in == other.visit_in {
                self.visit_in.clone()
            } else {
                Vec::new()
            },
            page_in: if self.page_in == other.page_in {
                self.page_in.clone()
            } else {
                None
            },
        }
    }
}

/// Visit dimensions (indexes into [`VISIT_DIMS`]) and the stored values they must hold.
pub type VisitIn = Vec<(usize, Vec<String>)>;

/// The stored values whose shown value is one of `values` (an unset value is shown as the dimension's
/// empty label), for pushing a case-sensitive `is` condition down to the storage.
fn stored_values(c: &Condition) -> Option<Vec<String>> {
    if c.op != Op::Is || !c.case_sensitive {
        return None;
    }
    let mut stored = c.values.clone();
    if c.values.iter().any(|v| v == c.dim.empty_label()) {
        stored.push(String::new());
    }
    Some(stored)
}

/// What to load for a query's filters: for each required condition on a visit dimension, the values that
/// can match; for a required `event:page is` condition, the pages (only when `events_pushdown`: the
/// percentage and conversion-rate totals need the events the filter leaves out).
pub fn pushdown(filters: &[Filter], events_pushdown: bool) -> (VisitIn, Option<Vec<String>>) {
    let all = Filter::And(filters.to_vec());
    let mut visit_in = Vec::new();
    let mut page_in: Option<Vec<String>> = None;
    for c in all.required() {
        let Some(values) = stored_values(c) else {
            continue;
        };
        if let Some(i) = c.dim.visit_index() {
            visit_in.push((i, values));
        } else if c.dim == Dimension::Page && events_pushdown && page_in.is_none() {
            page_in = Some(values);
        }
    }
    visit_in.sort();
    (visit_in, page_in)
}
