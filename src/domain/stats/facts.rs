//! The rows themselves, as the engine reads them for what the rollups cannot answer (several dimensions,
//! filters across dimensions, hours, periods that do not end at midnight): visits and their events in a
//! compact form, strings interned once, and the aggregation over them.
//!
//! The aggregation works on interned ids, never on strings: a group's key is a short list of ids, a
//! filter's verdict is computed once per distinct value, a time label once per quarter hour. Strings come
//! back only for the groups of the answer.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use super::dims::{Dimension, VISIT_DIMS};
pub use super::request::{FactsRequest, VisitIn, pushdown};

type FastMap<K, V> = HashMap<K, V, RandomState>;

mod aggregate;
pub use aggregate::{Spec, aggregate};

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
