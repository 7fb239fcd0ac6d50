//! The rows themselves, as the engine reads them for what the rollups cannot answer (several dimensions,
//! filters across dimensions, hours, periods that do not end at midnight): visits and their events in a
//! compact form, strings interned once, and the aggregation over them.
//!
//! The aggregation works on interned ids, never on strings: a group's key is a short list of ids, a
//! filter's verdict is computed once per distinct value, a time label once per quarter hour. Strings come
//! back only for the groups of the answer.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use super::dims::{Dimension, ENTRY, VISIT_DIMS};
use super::period::{Bucket, Period};
use super::query::{Condition, Filter};
pub use super::request::{FactsRequest, VisitIn, pushdown};
use super::results::{Acc, Groups};

type FastMap<K, V> = HashMap<K, V, RandomState>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Pageview,
    Custom,
    /// Engaged time on a page: counts as time on page and visit duration, not as an event.
    Engagement,
}

/// An event, in 24 bytes: a dashboard's month holds a million of them.
#[derive(Debug, Clone)]
pub struct EventFact {
    pub kind: EventKind,
    pub name: u32,
    pub page: u32,
    /// Its properties are `Facts::props[props_first..props_first + props_len]` (none unless the request
    /// asked for properties).
    pub props_first: u32,
    pub props_len: u32,
    pub engaged_ms: u32,
}

/// A visit, in 40 bytes; the values of its visit dimensions are in [`Facts`], only those the request
/// loaded (a month of a large site is hundreds of thousands of visits).
#[derive(Debug, Clone)]
pub struct VisitFact {
    pub start: i64,
    pub visitor: u32,
    pub pageviews: u32,
    /// Page views and custom events (engaged-time pings are not events).
    pub events: u32,
    pub duration: u32,
    /// This visit's events are `events[first..first + len]`.
    pub first: u32,
    pub len: u32,
    /// Its loaded dimension values start at `Facts::dims[dims_at]`.
    pub dims_at: u32,
}

impl VisitFact {
    pub fn bounce(&self) -> bool {
        self.pageviews == 1 && self.events == 1
    }
}

/// Visits and their events, with interned strings (index 0 is the empty string, then the empty labels).
#[derive(Debug)]
pub struct Facts {
    strings: Vec<String>,
    index: FastMap<String, u32>,
    pub visits: Vec<VisitFact>,
    /// Values of the loaded visit dimensions, interned, `stride` per visit.
    dims: Vec<u32>,
    /// Where each of [`VISIT_DIMS`] is among a visit's loaded values (`NOT_LOADED`: it is not).
    slots: [u8; VISIT_DIMS.len()],
    stride: usize,
    pub events: Vec<EventFact>,
    /// Properties of the events, (key, value) interned.
    props: Vec<(u32, u32)>,
    /// Events as read (in id order, visits interleaved), with the index of their visit, until
    /// [`Facts::seal`] groups them by visit.
    pending: Vec<(u32, EventFact)>,
}

/// Ids interned by every [`Facts`] at creation, in this order.
const DIRECT: u32 = 1;
const NOT_SET: u32 = 2;
const NONE: u32 = 3;
const PAGEVIEW: u32 = 4;

const NOT_LOADED: u8 = u8::MAX;

impl Default for Facts {
    fn default() -> Self {
        let mut f = Facts {
            strings: Vec::new(),
            index: FastMap::default(),
            visits: Vec::new(),
            dims: Vec::new(),
            slots: [NOT_LOADED; VISIT_DIMS.len()],
            stride: 0,
            events: Vec::new(),
            props: Vec::new(),
            pending: Vec::new(),
        };
        for s in ["", "Direct / None", "(not set)", "(none)", "pageview"] {
            f.intern(s);
        }
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

    /// Which visit dimensions (indexes into [`VISIT_DIMS`], in order) visits will carry.
    pub fn load_dims(&mut self, loaded: &[usize]) {
        self.slots = [NOT_LOADED; VISIT_DIMS.len()];
        for (slot, i) in loaded.iter().enumerate() {
            self.slots[*i] = slot as u8;
        }
        self.stride = loaded.len();
    }

    /// Adds a visit with the interned values of the loaded dimensions, in [`Facts::load_dims`] order.
    pub fn add_visit(&mut self, mut visit: VisitFact, dims: &[u32]) {
        visit.dims_at = self.dims.len() as u32;
        self.dims.extend(dims.iter().take(self.stride));
        self.dims.resize(visit.dims_at as usize + self.stride, 0);
        self.visits.push(visit);
    }

    /// A visit's stored value of one of [`VISIT_DIMS`] (0, the empty string, when it was not loaded).
    pub fn dim(&self, v: &VisitFact, i: usize) -> u32 {
        match self.slots.get(i) {
            Some(&slot) if slot != NOT_LOADED => self
                .dims
                .get(v.dims_at as usize + slot as usize)
                .copied()
                .unwrap_or(0),
            _ => 0,
        }
    }

    pub fn str(&self, i: u32) -> &str {
        self.strings
            .get(i as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The id of what a stored value is shown as.
    fn shown(d: &Dimension, stored: u32) -> u32 {
        if stored != 0 {
            return stored;
        }
        match d.empty_label() {
            "Direct / None" => DIRECT,
            "(none)" => NONE,
            _ => NOT_SET,
        }
    }

    fn prop(&self, e: &EventFact, key: u32) -> Option<u32> {
        let first = e.props_first as usize;
        self.props
            .get(first..first + e.props_len as usize)
            .unwrap_or_default()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// Interns an event's properties; (first, len) for its [`EventFact`].
    pub fn add_props(&mut self, pairs: &[(String, String)]) -> (u32, u32) {
        let first = self.props.len() as u32;
        for (k, v) in pairs {
            let pair = (self.intern(k), self.intern(v));
            self.props.push(pair);
        }
        (first, pairs.len() as u32)
    }

    /// Adds an event of visit number `visit` (an index into `visits`), in any order.
    pub fn add_event(&mut self, visit: u32, event: EventFact) {
        self.pending.push((visit, event));
    }

    /// Groups the added events by visit (keeping their order within each), and points each visit at its
    /// events. A counting sort: two passes, one allocation.
    pub fn seal(&mut self) {
        let mut counts = vec![0u32; self.visits.len() + 1];
        for (visit, _) in &self.pending {
            counts[*visit as usize + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        for (v, visit) in self.visits.iter_mut().enumerate() {
            visit.first = counts[v];
            visit.len = counts[v + 1] - counts[v];
        }
        let pending = std::mem::take(&mut self.pending);
        let mut slots: Vec<Option<EventFact>> = vec![None; pending.len()];
        for (visit, event) in pending {
            let at = &mut counts[visit as usize];
            slots[*at as usize] = Some(event);
            *at += 1;
        }
        self.events = slots.into_iter().flatten().collect();
    }

    /// Keeps only the visits with at least one event (after [`Facts::seal`]): when the storage loaded
    /// only the events a required condition accepts, the other visits cannot count.
    pub fn keep_visits_with_events(&mut self) {
        let stride = self.stride;
        let mut kept = 0;
        for v in 0..self.visits.len() {
            if self.visits[v].len == 0 {
                continue;
            }
            let from = self.visits[v].dims_at as usize;
            let to = kept * stride;
            self.dims.copy_within(from..from + stride, to);
            let mut visit = self.visits[v].clone();
            visit.dims_at = to as u32;
            self.visits[kept] = visit;
            kept += 1;
        }
        self.visits.truncate(kept);
        self.visits.shrink_to_fit();
        self.dims.truncate(kept * stride);
        self.dims.shrink_to_fit();
    }

    /// The events of a visit.
    pub fn events_of(&self, v: &VisitFact) -> &[EventFact] {
        let first = v.first as usize;
        self.events
            .get(first..first + v.len as usize)
            .unwrap_or_default()
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
        acc.duration += u64::from(v.duration);
    }
    acc.visitors.push(v.visitor);
}

/// Groups keyed by ids, in the order they were first seen.
#[derive(Default)]
struct IdGroups {
    index: FastMap<Vec<u32>, usize>,
    rows: Vec<(Vec<u32>, Acc)>,
}

impl IdGroups {
    fn slot(&mut self, key: &[u32]) -> usize {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let i = self.rows.len();
        self.rows.push((key.to_vec(), Acc::default()));
        self.index.insert(key.to_vec(), i);
        i
    }
}

/// The aggregation's state: the facts, the query's parts resolved to ids, and caches.
struct Aggregator<'a> {
    facts: &'a Facts,
    spec: &'a Spec<'a>,
    /// Interned ids of property keys the query names (`None`: no event carries it).
    prop_keys: FastMap<&'a str, Option<u32>>,
    /// Each condition's verdict per shown value id (0: not yet known, 1: no, 2: yes), by the condition's
    /// address.
    verdicts: FastMap<usize, Vec<u8>>,
    /// Time labels, and the label of each quarter hour seen (offsets are whole quarter hours).
    time_labels: Vec<String>,
    time_ids: FastMap<i64, u32>,
}

/// What an event looks like to the filters and groups: the event itself, or an engaged-time ping taken
/// as the page view it belongs to.
#[derive(Clone, Copy)]
enum Seen<'e> {
    Visit,
    Event(&'e EventFact),
    AsPageview(&'e EventFact),
}

impl<'a> Aggregator<'a> {
    fn new(facts: &'a Facts, spec: &'a Spec<'a>) -> Self {
        let mut prop_keys = FastMap::default();
        let conditions = spec.filters.iter().flat_map(|f| f.conditions());
        for d in spec.dimensions.iter().chain(conditions.map(|c| &c.dim)) {
            if let Dimension::Prop(k) = d {
                prop_keys.insert(k.as_str(), facts.index.get(k.as_str()).copied());
            }
        }
        Aggregator {
            facts,
            spec,
            prop_keys,
            verdicts: FastMap::default(),
            time_labels: Vec::new(),
            time_ids: FastMap::default(),
        }
    }

    /// The shown value id of a non-time dimension (`None`: an event dimension with only the visit seen).
    fn value(
        facts: &Facts,
        prop_keys: &FastMap<&str, Option<u32>>,
        v: &VisitFact,
        seen: Seen,
        d: &Dimension,
    ) -> Option<u32> {
        if let Some(i) = d.visit_index() {
            return Some(Facts::shown(d, facts.dim(v, i)));
        }
        let e = match seen {
            Seen::Visit => return None,
            Seen::Event(e) | Seen::AsPageview(e) => e,
        };
        let stored = match d {
            Dimension::Page => e.page,
            Dimension::Name if matches!(seen, Seen::AsPageview(_)) => PAGEVIEW,
            Dimension::Name => e.name,
            Dimension::Prop(k) => prop_keys
                .get(k.as_str())
                .copied()
                .flatten()
                .and_then(|key| facts.prop(e, key))
                .unwrap_or(0),
            _ => 0,
        };
        Some(Facts::shown(d, stored))
    }

    fn accepts(&mut self, v: &VisitFact, seen: Seen) -> bool {
        let (facts, prop_keys, verdicts) = (self.facts, &self.prop_keys, &mut self.verdicts);
        let mut verdict = |c: &Condition| -> bool {
            let Some(id) = Self::value(facts, prop_keys, v, seen, &c.dim) else {
                return true;
            };
            let cache = verdicts.entry(c as *const Condition as usize).or_default();
            let slot = id as usize;
            if cache.len() <= slot {
                cache.resize(slot + 1, 0);
            }
            if cache[slot] == 0 {
                cache[slot] = 1 + c.accepts(facts.str(id)) as u8;
            }
            cache[slot] == 2
        };
        self.spec.filters.iter().all(|f| f.eval_with(&mut verdict))
    }

    fn time_id(&mut self, ts: i64) -> u32 {
        let Some(bucket) = self.spec.bucket else {
            return 0;
        };
        let quarter = ts.div_euclid(900);
        if let Some(&id) = self.time_ids.get(&quarter) {
            return id;
        }
        let label = bucket.label(ts, self.spec.period);
        let id = match self.time_labels.iter().position(|l| *l == label) {
            Some(i) => i as u32,
            None => {
                self.time_labels.push(label);
                self.time_labels.len() as u32 - 1
            }
        };
        self.time_ids.insert(quarter, id);
        id
    }

    fn key(&self, v: &VisitFact, seen: Seen, time: u32, key: &mut Vec<u32>) {
        key.clear();
        for d in self.spec.dimensions {
            key.push(if d.is_time() {
                time
            } else {
                // An event dimension with only the visit seen is the empty value.
                Self::value(self.facts, &self.prop_keys, v, seen, d).unwrap_or(0)
            });
        }
    }

    fn into_groups(self, rows: IdGroups, entries: IdGroups) -> Groups {
        let strings = |key: Vec<u32>| -> Vec<String> {
            key.into_iter()
                .zip(self.spec.dimensions)
                .map(|(id, d)| {
                    if d.is_time() {
                        self.time_labels
                            .get(id as usize)
                            .cloned()
                            .unwrap_or_default()
                    } else {
                        self.facts.str(id).to_string()
                    }
                })
                .collect()
        };
        Groups {
            rows: rows
                .rows
                .into_iter()
                .map(|(k, a)| (strings(k), a))
                .collect(),
            entries: entries
                .rows
                .into_iter()
                .map(|(k, a)| (strings(k), a))
                .collect(),
        }
    }
}

/// Sums the visits that started in the period, grouped by the dimensions. With event dimensions or
/// filters, a visit counts in a group when at least one of its events does, and event figures (page views,
/// events, time on page) count the matching events only.
pub fn aggregate(facts: &Facts, spec: &Spec) -> Groups {
    let mut agg = Aggregator::new(facts, spec);
    let (mut rows, mut entries) = (IdGroups::default(), IdGroups::default());
    let by_event = spec.dimensions.iter().any(Dimension::is_event)
        || spec
            .filters
            .iter()
            .flat_map(|f| f.conditions())
            .any(|c| c.dim.is_event());
    let page_pos = spec.dimensions.iter().position(|d| d == &Dimension::Page);
    let whole_visits = !spec.dimensions.iter().any(Dimension::is_event);
    let required_props: Vec<Option<u32>> = spec
        .dimensions
        .iter()
        .filter_map(|d| match d {
            Dimension::Prop(k) => Some(agg.prop_keys.get(k.as_str()).copied().flatten()),
            _ => None,
        })
        .collect();
    let mut key = Vec::with_capacity(spec.dimensions.len());
    let mut touched: Vec<usize> = Vec::new();
    for v in facts
        .visits
        .iter()
        .filter(|v| spec.period.contains(v.start))
    {
        let time = agg.time_id(v.start);
        if !by_event {
            if !agg.accepts(v, Seen::Visit) {
                continue;
            }
            agg.key(v, Seen::Visit, time, &mut key);
            let slot = rows.slot(&key);
            let acc = &mut rows.rows[slot].1;
            add_visit(acc, v, true);
            acc.pageviews += u64::from(v.pageviews);
            acc.events += u64::from(v.events);
            continue;
        }
        let events = facts.events_of(v);
        touched.clear();
        for e in events.iter().filter(|e| e.kind != EventKind::Engagement) {
            // A property breakdown has rows for the events that carry the property only.
            let carries = required_props
                .iter()
                .all(|k| k.is_some_and(|k| facts.prop(e, k).is_some()));
            if !carries || !agg.accepts(v, Seen::Event(e)) {
                continue;
            }
            agg.key(v, Seen::Event(e), time, &mut key);
            let slot = rows.slot(&key);
            let acc = &mut rows.rows[slot].1;
            acc.pageviews += (e.kind == EventKind::Pageview) as u64;
            acc.events += 1;
            if !touched.contains(&slot) {
                touched.push(slot);
                add_visit(acc, v, whole_visits);
            }
        }
        if touched.is_empty() {
            continue;
        }
        // Engaged time on a page goes to the groups this visit counts in that are about that page.
        for e in events.iter().filter(|e| e.kind == EventKind::Engagement) {
            if !agg.accepts(v, Seen::AsPageview(e)) {
                continue;
            }
            agg.key(v, Seen::AsPageview(e), time, &mut key);
            if let Some(&slot) = rows.index.get(key.as_slice())
                && touched.contains(&slot)
            {
                rows.rows[slot].1.engaged_ms += u64::from(e.engaged_ms);
            }
        }
        if spec.entries
            && let Some(pos) = page_pos
        {
            agg.key(v, Seen::Visit, time, &mut key);
            key[pos] = Facts::shown(&Dimension::Page, facts.dim(v, ENTRY));
            let slot = entries.slot(&key);
            add_visit(&mut entries.rows[slot].1, v, true);
        }
    }
    agg.into_groups(rows, entries)
}
