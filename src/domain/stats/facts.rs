//! The rows themselves, as the engine reads them for what the rollups cannot answer (several dimensions,
//! filters across dimensions, hours, periods that do not end at midnight): visits and their events in a
//! compact form, strings interned once, and the aggregation over them.

use std::collections::{HashMap, HashSet};

use super::dims::{Dimension, ENTRY, VISIT_DIMS};
use super::period::{Bucket, Period};
use super::query::Filter;
use super::results::{Acc, Groups};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Pageview,
    Custom,
    /// Engaged time on a page: counts as time on page and visit duration, not as an event.
    Engagement,
}

#[derive(Debug, Clone)]
pub struct EventFact {
    pub kind: EventKind,
    pub name: u32,
    pub page: u32,
    /// (key, value), interned.
    pub props: Vec<(u32, u32)>,
    pub engaged_ms: u64,
}

#[derive(Debug, Clone)]
pub struct VisitFact {
    pub start: i64,
    pub visitor: u32,
    /// Values of [`VISIT_DIMS`], interned.
    pub dims: [u32; VISIT_DIMS.len()],
    pub pageviews: u64,
    /// Page views and custom events (engaged-time pings are not events).
    pub events: u64,
    pub duration: u64,
    /// This visit's events are `events[first..first + len]`.
    pub first: usize,
    pub len: usize,
}

impl VisitFact {
    pub fn bounce(&self) -> bool {
        self.pageviews == 1 && self.events == 1
    }
}

/// Visits and their events, with interned strings (index 0 is the empty string).
#[derive(Debug)]
pub struct Facts {
    pub strings: Vec<String>,
    index: HashMap<String, u32>,
    pub visits: Vec<VisitFact>,
    pub events: Vec<EventFact>,
}

impl Default for Facts {
    fn default() -> Self {
        let mut f = Facts {
            strings: Vec::new(),
            index: HashMap::new(),
            visits: Vec::new(),
            events: Vec::new(),
        };
        f.intern("");
        f
    }
}

impl Facts {
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    pub fn str(&self, i: u32) -> &str {
        self.strings
            .get(i as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    fn prop(&self, e: &EventFact, key: &str) -> Option<&str> {
        e.props
            .iter()
            .find(|(k, _)| self.str(*k) == key)
            .map(|(_, v)| self.str(*v))
    }

    /// The shown value of a visit dimension for a visit.
    fn visit_value(&self, v: &VisitFact, d: &Dimension) -> Option<String> {
        d.visit_index()
            .map(|i| d.display(self.str(v.dims[i])).to_string())
    }

    /// The shown value of any non-time dimension for an event of a visit.
    fn event_value(&self, v: &VisitFact, e: &EventFact, d: &Dimension) -> Option<String> {
        match d {
            Dimension::Page => Some(d.display(self.str(e.page)).to_string()),
            Dimension::Name => Some(d.display(self.str(e.name)).to_string()),
            Dimension::Prop(k) => Some(d.display(self.prop(e, k).unwrap_or("")).to_string()),
            _ => self.visit_value(v, d),
        }
    }
}

/// What to group by, and under which filters.
pub struct Spec<'a> {
    pub dimensions: &'a [Dimension],
    pub filters: &'a [Filter],
    pub period: &'a Period,
    pub bucket: Option<Bucket>,
    /// Also sum visits by entry page (for bounce rate and duration of `event:page` rows).
    pub entries: bool,
}

/// Counts a visit in a group. Groups of event dimension values take visits and visitors only: their
/// bounces and durations are those of visits entering on the page (`Groups::entries`).
fn add_visit(acc: &mut Acc, v: &VisitFact, whole: bool) {
    acc.visits += 1;
    if whole {
        acc.bounces += v.bounce() as u64;
        acc.duration += v.duration;
    }
    acc.visitors.push(v.visitor);
}

/// Sums the visits that started in the period, grouped by the dimensions. With event dimensions or
/// filters, a visit counts in a group when at least one of its events does, and event figures (page views,
/// events, time on page) count the matching events only.
pub fn aggregate(facts: &Facts, spec: &Spec) -> Groups {
    let mut groups = Groups::default();
    let by_event = spec.dimensions.iter().any(Dimension::is_event)
        || spec
            .filters
            .iter()
            .flat_map(|f| f.conditions())
            .any(|c| c.dim.is_event());
    let page_pos = spec.dimensions.iter().position(|d| d == &Dimension::Page);
    let whole_visits = !spec.dimensions.iter().any(Dimension::is_event);
    for v in facts
        .visits
        .iter()
        .filter(|v| spec.period.contains(v.start))
    {
        let time = spec.bucket.map(|b| b.label(v.start, spec.period));
        let key_of = |value: &dyn Fn(&Dimension) -> Option<String>| -> Vec<String> {
            spec.dimensions
                .iter()
                .map(|d| {
                    if d.is_time() {
                        time.clone().unwrap_or_default()
                    } else {
                        value(d).unwrap_or_default()
                    }
                })
                .collect()
        };
        if !by_event {
            let value = |d: &Dimension| facts.visit_value(v, d);
            if !spec.filters.iter().all(|f| f.eval(&value)) {
                continue;
            }
            let acc = groups.rows.entry(key_of(&value)).or_default();
            add_visit(acc, v, true);
            acc.pageviews += v.pageviews;
            acc.events += v.events;
            continue;
        }
        let events = &facts.events[v.first..v.first + v.len];
        let mut touched: HashSet<Vec<String>> = HashSet::new();
        for e in events.iter().filter(|e| e.kind != EventKind::Engagement) {
            // A property breakdown has rows for the events that carry the property only.
            let carries = |d: &Dimension| match d {
                Dimension::Prop(k) => facts.prop(e, k).is_some(),
                _ => true,
            };
            if !spec.dimensions.iter().all(carries) {
                continue;
            }
            let value = |d: &Dimension| facts.event_value(v, e, d);
            if !spec.filters.iter().all(|f| f.eval(&value)) {
                continue;
            }
            let key = key_of(&value);
            let acc = groups.rows.entry(key.clone()).or_default();
            acc.pageviews += (e.kind == EventKind::Pageview) as u64;
            acc.events += 1;
            if touched.insert(key) {
                add_visit(acc, v, whole_visits);
            }
        }
        if touched.is_empty() {
            continue;
        }
        // Engaged time on a page goes to the groups this visit counts in that are about that page.
        for e in events.iter().filter(|e| e.kind == EventKind::Engagement) {
            let as_pageview = |d: &Dimension| match d {
                Dimension::Name => Some("pageview".to_string()),
                _ => facts.event_value(v, e, d),
            };
            if !spec.filters.iter().all(|f| f.eval(&as_pageview)) {
                continue;
            }
            let key = key_of(&as_pageview);
            if touched.contains(&key)
                && let Some(acc) = groups.rows.get_mut(&key)
            {
                acc.engaged_ms += e.engaged_ms;
            }
        }
        if spec.entries
            && let Some(pos) = page_pos
        {
            let entry = Dimension::Page
                .display(facts.str(v.dims[ENTRY]))
                .to_string();
            let mut key = key_of(&|d: &Dimension| facts.visit_value(v, d));
            key[pos] = entry;
            add_visit(groups.entries.entry(key).or_default(), v, true);
        }
    }
    groups
}
