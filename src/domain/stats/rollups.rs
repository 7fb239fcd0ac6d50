//! Daily rollups: for each local day, dimension and value, the sums of the visits that started that day
//! (for visit dimensions, one value per visit) or of their events (for event dimensions), with the
//! visitor numbers behind them. Whole days of a period with at most one breakdown dimension, and filters
//! on that dimension only, are answered from them.

use super::dims::{self, Dimension, PROP_SEPARATOR};
use super::period::{Bucket, Period};
use super::query::Filter;
use super::results::{Acc, Groups};

/// One rollup row as read back.
#[derive(Debug, Clone)]
pub struct RollupRow {
    pub day: i32,
    pub dim: u16,
    pub value: String,
    pub acc: Acc,
}

/// The stored value of a property row: key and value.
pub fn prop_value(key: &str, value: &str) -> String {
    format!("{key}{PROP_SEPARATOR}{value}")
}

/// What a rollup query reads, and how it groups.
pub struct Spec<'a> {
    /// Dimensions of the query: the time dimension (if any) and at most one other.
    pub dimensions: &'a [Dimension],
    /// Filters, all on `filter_dim`.
    pub filters: &'a [Filter],
    /// The dimension whose rows are read: the breakdown's, the filter's, or none (per-visit totals).
    pub source: Option<&'a Dimension>,
    pub period: &'a Period,
    pub bucket: Option<Bucket>,
}

impl Spec<'_> {
    pub fn code(&self) -> u16 {
        self.source
            .and_then(Dimension::rollup_code)
            .unwrap_or(dims::TOTAL)
    }

    pub fn prop_key(&self) -> Option<&str> {
        match self.source {
            Some(Dimension::Prop(k)) => Some(k),
            _ => None,
        }
    }
}

/// The shown value of a row of `source`, or None for a row of another property key.
fn shown(source: Option<&Dimension>, stored: &str) -> Option<String> {
    match source {
        None => Some(String::new()),
        Some(d @ Dimension::Prop(key)) => {
            let (k, v) = stored.split_once(PROP_SEPARATOR)?;
            (k == key).then(|| d.display(v).to_string())
        }
        Some(d) => Some(d.display(stored).to_string()),
    }
}

/// Groups rollup rows by the query's dimensions. `entries` are entry-page rows, summed alike into
/// `Groups::entries` (for bounce rate and duration of `event:page` rows; their visitors are not needed).
pub fn aggregate(spec: &Spec, rows: &[RollupRow], entries: &[RollupRow]) -> Groups {
    let mut groups = Groups::default();
    for row in rows {
        if let Some(key) = key_of(spec, row, spec.source) {
            groups.rows.entry(key).or_default().add(&row.acc);
        }
    }
    add_entries(spec, entries, &mut groups);
    groups
}

/// [`aggregate`], taking the rows' visitor numbers instead of copying them: a year of a dimension holds
/// millions, and the lists are counted where they are (see [`Acc::visitor_parts`]).
pub fn aggregate_owned(spec: &Spec, rows: Vec<RollupRow>, entries: &[RollupRow]) -> Groups {
    let mut groups = Groups::default();
    for mut row in rows {
        let Some(key) = key_of(spec, &row, spec.source) else {
            continue;
        };
        let acc = groups.rows.entry(key).or_default();
        add_figures(acc, &row.acc);
        if !row.acc.visitors.is_empty() {
            acc.visitor_parts
                .push(std::mem::take(&mut row.acc.visitors));
        }
    }
    add_entries(spec, entries, &mut groups);
    groups
}

/// The visitor numbers of the rows that fall in the period and pass the filters, for a total over them
/// (counted in place by [`super::visitors::distinct_in`], not copied into one list first).
pub fn matching_visitors<'r>(spec: &Spec, rows: &'r [RollupRow]) -> Vec<&'r [u32]> {
    rows.iter()
        .filter(|row| key_of(spec, row, spec.source).is_some())
        .map(|row| row.acc.visitors.as_slice())
        .collect()
}

fn add_entries(spec: &Spec, entries: &[RollupRow], groups: &mut Groups) {
    for row in entries {
        if let Some(key) = key_of(spec, row, Some(&Dimension::EntryPage)) {
            add_figures(groups.entries.entry(key).or_default(), &row.acc);
        }
    }
}

fn add_figures(acc: &mut Acc, other: &Acc) {
    acc.visits += other.visits;
    acc.pageviews += other.pageviews;
    acc.events += other.events;
    acc.bounces += other.bounces;
    acc.duration += other.duration;
    acc.engaged_ms += other.engaged_ms;
}

/// The group key of a row of `source` (None: outside the period, or the filters leave it out).
fn key_of(spec: &Spec, row: &RollupRow, source: Option<&Dimension>) -> Option<Vec<String>> {
    if !(spec.period.first_day()..=spec.period.last_day()).contains(&row.day) {
        return None;
    }
    let value = shown(source, &row.value)?;
    if let Some(fd) = spec.source {
        let at = |d: &Dimension| (d == fd).then(|| value.clone());
        if !spec.filters.iter().all(|f| f.eval(&at)) {
            return None;
        }
    }
    Some(
        spec.dimensions
            .iter()
            .map(|d| {
                if d.is_time() {
                    spec.bucket
                        .map(|b| b.day_label(row.day, spec.period))
                        .unwrap_or_default()
                } else {
                    value.clone()
                }
            })
            .collect(),
    )
}
