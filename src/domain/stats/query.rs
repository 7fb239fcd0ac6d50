//! The query model of the statistics engine: metrics, dimensions, filters, order, paging and an optional
//! comparison period, with the rules that say which combinations make sense (Plausible's). The Stats API
//! (v2 and v1), the dashboard and CSV exports all build a [`Query`]; one engine answers it.

use regex::Regex;

use super::dims::Dimension;
use super::period::Period;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Visitors,
    Visits,
    Pageviews,
    ViewsPerVisit,
    BounceRate,
    VisitDuration,
    Events,
    Percentage,
    ConversionRate,
    TimeOnPage,
}

pub const ALL_METRICS: [Metric; 10] = [
    Metric::Visitors,
    Metric::Visits,
    Metric::Pageviews,
    Metric::ViewsPerVisit,
    Metric::BounceRate,
    Metric::VisitDuration,
    Metric::Events,
    Metric::Percentage,
    Metric::ConversionRate,
    Metric::TimeOnPage,
];

impl Metric {
    pub fn parse(s: &str) -> Option<Metric> {
        ALL_METRICS.iter().copied().find(|m| m.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Visitors => "visitors",
            Metric::Visits => "visits",
            Metric::Pageviews => "pageviews",
            Metric::ViewsPerVisit => "views_per_visit",
            Metric::BounceRate => "bounce_rate",
            Metric::VisitDuration => "visit_duration",
            Metric::Events => "events",
            Metric::Percentage => "percentage",
            Metric::ConversionRate => "conversion_rate",
            Metric::TimeOnPage => "time_on_page",
        }
    }

    /// Figures of whole visits, which an event dimension cannot split (except `event:page`, which then
    /// means the entry page).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Metric::BounceRate | Metric::VisitDuration | Metric::ViewsPerVisit
        )
    }

    /// Figures of events, which the entry and exit page cannot split.
    pub fn is_event(self) -> bool {
        matches!(
            self,
            Metric::Pageviews | Metric::Events | Metric::TimeOnPage
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Is,
    IsNot,
    Contains,
    ContainsNot,
    Matches,
    MatchesNot,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "is" => Op::Is,
            "is_not" => Op::IsNot,
            "contains" => Op::Contains,
            "contains_not" => Op::ContainsNot,
            "matches" => Op::Matches,
            "matches_not" => Op::MatchesNot,
            _ => return None,
        })
    }

    fn negated(self) -> bool {
        matches!(self, Op::IsNot | Op::ContainsNot | Op::MatchesNot)
    }
}

/// One condition on one dimension: true when any of its values matches (negated operators: when none
/// does). Values are compared with what the dimension shows (an empty source is "Direct / None").
#[derive(Debug, Clone)]
pub struct Condition {
    pub op: Op,
    pub dim: Dimension,
    pub values: Vec<String>,
    pub case_sensitive: bool,
    patterns: Vec<Regex>,
}

/// Longest pattern a `matches` filter may use; the regex engine runs in linear time, this bounds its size.
const MAX_PATTERN: usize = 1000;

impl Condition {
    pub fn new(
        op: Op,
        dim: Dimension,
        values: Vec<String>,
        case_sensitive: bool,
    ) -> Result<Condition, String> {
        if dim.is_time() {
            return Err(format!("time dimension {} cannot be filtered", dim.name()));
        }
        if values.is_empty() {
            return Err(format!("filter on {} needs at least one value", dim.name()));
        }
        let patterns = if matches!(op, Op::Matches | Op::MatchesNot) {
            values
                .iter()
                .map(|v| {
                    if v.len() > MAX_PATTERN {
                        return Err(format!("pattern for {} is too long", dim.name()));
                    }
                    regex::RegexBuilder::new(v)
                        .case_insensitive(!case_sensitive)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| format!("invalid pattern {v:?} for {}: {e}", dim.name()))
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        let values = if case_sensitive {
            values
        } else {
            values.iter().map(|v| v.to_lowercase()).collect()
        };
        Ok(Condition {
            op,
            dim,
            values,
            case_sensitive,
            patterns,
        })
    }

    /// Whether a shown value satisfies the condition.
    pub fn accepts(&self, shown: &str) -> bool {
        let lowered;
        let value = if self.case_sensitive {
            shown
        } else {
            lowered = shown.to_lowercase();
            &lowered
        };
        let any = match self.op {
            Op::Is | Op::IsNot => self.values.iter().any(|v| v == value),
            Op::Contains | Op::ContainsNot => {
                self.values.iter().any(|v| value.contains(v.as_str()))
            }
            Op::Matches | Op::MatchesNot => self.patterns.iter().any(|p| p.is_match(shown)),
        };
        any != self.op.negated()
    }
}

#[derive(Debug, Clone)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cond(Condition),
}

impl Filter {
    /// Evaluates the filter; `value` gives the shown value of a dimension (None: this dimension has no
    /// value here, e.g. an event dimension when looking at a visit alone; then the condition holds).
    pub fn eval(&self, value: &dyn Fn(&Dimension) -> Option<String>) -> bool {
        match self {
            Filter::And(fs) => fs.iter().all(|f| f.eval(value)),
            Filter::Or(fs) => fs.iter().any(|f| f.eval(value)),
            Filter::Not(f) => !f.eval(value),
            Filter::Cond(c) => value(&c.dim).is_none_or(|v| c.accepts(&v)),
        }
    }

    /// Evaluates the filter with a verdict per condition (the rows path, which caches verdicts by value).
    pub fn eval_with(&self, verdict: &mut dyn FnMut(&Condition) -> bool) -> bool {
        match self {
            Filter::And(fs) => fs.iter().all(|f| f.eval_with(verdict)),
            Filter::Or(fs) => fs.iter().any(|f| f.eval_with(verdict)),
            Filter::Not(f) => !f.eval_with(verdict),
            Filter::Cond(c) => verdict(c),
        }
    }

    /// The conditions every match must satisfy (those joined by `and` at the top), for loading only the
    /// rows that can match.
    pub fn required(&self) -> Vec<&Condition> {
        match self {
            Filter::And(fs) => fs.iter().flat_map(|f| f.required()).collect(),
            Filter::Cond(c) => vec![c],
            Filter::Or(_) | Filter::Not(_) => Vec::new(),
        }
    }

    pub fn conditions(&self) -> Vec<&Condition> {
        match self {
            Filter::And(fs) | Filter::Or(fs) => fs.iter().flat_map(|f| f.conditions()).collect(),
            Filter::Not(f) => f.conditions(),
            Filter::Cond(c) => vec![c],
        }
    }

    /// The one dimension every condition of the filter is on, if there is one.
    pub fn single_dimension(&self) -> Option<&Dimension> {
        let conds = self.conditions();
        let first = &conds.first()?.dim;
        conds.iter().all(|c| &c.dim == first).then_some(first)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrderKey {
    Metric(Metric),
    Dimension(Dimension),
}

/// A question to the engine, fully resolved (periods in instants, defaults applied).
#[derive(Debug, Clone)]
pub struct Query {
    pub site: String,
    pub period: Period,
    pub metrics: Vec<Metric>,
    pub dimensions: Vec<Dimension>,
    /// All must hold.
    pub filters: Vec<Filter>,
    /// (key, descending)
    pub order_by: Vec<(OrderKey, bool)>,
    pub limit: usize,
    pub offset: usize,
    pub comparison: Option<Period>,
    /// Return every time bucket, including empty ones (with comparisons and `time_labels`).
    pub all_buckets: bool,
}

/// Most rows a query returns at once.
pub const MAX_LIMIT: usize = 10_000;

fn names<T>(items: &[T], name: impl Fn(&T) -> String) -> String {
    items
        .iter()
        .map(|i| format!("`{}`", name(i)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Query {
    pub fn filter_dimensions(&self) -> Vec<&Dimension> {
        let mut dims: Vec<&Dimension> = self
            .filters
            .iter()
            .flat_map(|f| f.conditions())
            .map(|c| &c.dim)
            .collect();
        dims.dedup();
        dims
    }

    pub fn has_event_filter(&self) -> bool {
        self.filter_dimensions().iter().any(|d| d.is_event())
    }

    pub fn time_dimension(&self) -> Option<&Dimension> {
        self.dimensions.iter().find(|d| d.is_time())
    }

    /// Plausible's rules on what may be asked together. Messages name the parameter at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.metrics.is_empty() {
            return Err("metrics: at least one metric is needed".into());
        }
        if self.dimensions.iter().filter(|d| d.is_time()).count() > 1 {
            return Err("dimensions: at most one time dimension".into());
        }
        let event_dims: Vec<Dimension> = self
            .dimensions
            .iter()
            .filter(|d| d.is_event())
            .cloned()
            .collect();
        let session_dims: Vec<Dimension> = self
            .dimensions
            .iter()
            .filter(|d| matches!(d, Dimension::EntryPage | Dimension::ExitPage))
            .cloned()
            .collect();
        let session: Vec<Metric> = self
            .metrics
            .iter()
            .copied()
            .filter(|m| m.is_session())
            .collect();
        let event: Vec<Metric> = self
            .metrics
            .iter()
            .copied()
            .filter(|m| m.is_event())
            .collect();
        if self.metrics.contains(&Metric::ViewsPerVisit) {
            if !self.dimensions.is_empty() {
                return Err(
                    "metrics: Metric `views_per_visit` cannot be queried with `dimensions`.".into(),
                );
            }
            if self.filter_dimensions().contains(&&Dimension::Page) {
                return Err("metrics: Metric `views_per_visit` cannot be queried with a filter on `event:page`.".into());
            }
        }
        if !session.is_empty() && !event_dims.is_empty() && event_dims != [Dimension::Page] {
            return Err(format!(
                "metrics: Session metric(s) {} cannot be queried along with event dimension(s) {}",
                names(&session, |m| m.name().to_string()),
                names(&event_dims, |d| d.name())
            ));
        }
        if !event.is_empty() && !session_dims.is_empty() {
            return Err(format!(
                "metrics: Event metric(s) {} cannot be queried along with session dimension(s) {}",
                names(&event, |m| m.name().to_string()),
                names(&session_dims, |d| d.name())
            ));
        }
        let page_anywhere = self.dimensions.contains(&Dimension::Page)
            || self.filter_dimensions().contains(&&Dimension::Page);
        if self.metrics.contains(&Metric::TimeOnPage) && !page_anywhere {
            return Err("metrics: Metric `time_on_page` can only be queried with event:page filters or dimensions.".into());
        }
        if self.metrics.contains(&Metric::ConversionRate) {
            let goal_dim = self
                .dimensions
                .iter()
                .any(|d| matches!(d, Dimension::Name | Dimension::Page));
            let goal_filter = self
                .filters
                .iter()
                .any(|f| matches!(f, Filter::Cond(c) if matches!(c.dim, Dimension::Name | Dimension::Page)));
            if !goal_dim && !goal_filter {
                return Err("metrics: Metric `conversion_rate` can only be queried with event:name or event:page filters or dimensions (Assent's goals).".into());
            }
        }
        for (key, _) in &self.order_by {
            let queried = match key {
                OrderKey::Metric(m) => self.metrics.contains(m),
                OrderKey::Dimension(d) => self.dimensions.contains(d),
            };
            if !queried {
                return Err("order_by: Entry is not a queried metric or dimension.".into());
            }
        }
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(format!(
                "pagination: limit must be between 1 and {MAX_LIMIT}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(op: Op, values: &[&str], case_sensitive: bool) -> Condition {
        Condition::new(
            op,
            Dimension::Page,
            values.iter().map(|s| s.to_string()).collect(),
            case_sensitive,
        )
        .unwrap()
    }

    #[test]
    fn operators() {
        assert!(cond(Op::Is, &["/a", "/b"], true).accepts("/b"));
        assert!(!cond(Op::IsNot, &["/a", "/b"], true).accepts("/b"));
        assert!(cond(Op::Contains, &["blog"], false).accepts("/BLOG/x"));
        assert!(!cond(Op::Contains, &["blog"], true).accepts("/BLOG/x"));
        assert!(cond(Op::ContainsNot, &["blog"], true).accepts("/docs"));
        assert!(cond(Op::Matches, &["^/blog/\\d+$"], true).accepts("/blog/12"));
        assert!(cond(Op::MatchesNot, &["^/blog"], true).accepts("/docs"));
        assert!(Condition::new(Op::Matches, Dimension::Page, vec!["(".into()], true).is_err());
        assert!(Condition::new(Op::Is, Dimension::Day, vec!["x".into()], true).is_err());
    }

    #[test]
    fn trees() {
        let f = Filter::Or(vec![
            Filter::Not(Box::new(Filter::Cond(cond(Op::Is, &["/a"], true)))),
            Filter::Cond(
                Condition::new(Op::Is, Dimension::Country, vec!["FR".into()], true).unwrap(),
            ),
        ]);
        let at = |page: &'static str, country: &'static str| {
            move |d: &Dimension| match d {
                Dimension::Page => Some(page.to_string()),
                Dimension::Country => Some(country.to_string()),
                _ => None,
            }
        };
        assert!(f.eval(&at("/b", "DE")));
        assert!(f.eval(&at("/a", "FR")));
        assert!(!f.eval(&at("/a", "DE")));
    }
}
