//! What one visit contributes to the daily rollups, and changes to rollup rows gathered in memory before
//! they are written. The writer adds contributions as visits change, erasure subtracts a visit's whole
//! contribution, crash repair and rebuilds recompute it from the rows: all through these functions, so
//! the rollups always equal what the rows say.
//!
//! A visit counts on the local day it started: once in the totals and once under each visit dimension
//! (visits, page views, events, bounces, duration and its visitor number); under each event dimension
//! value it touched (page, event name, property) once for visits and visitors, and per event for page
//! views and events; engaged time counts on its page.

use std::collections::HashMap;

use super::dims::{self, Dimension, NAME, PAGE, PROP, VISIT_DIMS};
use super::facts::EventKind;
use super::rollups::prop_value;
use super::visitors;

/// Figures of a whole visit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub pageviews: i64,
    /// Page views and custom events.
    pub events: i64,
    pub duration: i64,
}

impl Figures {
    pub fn bounce(&self) -> bool {
        self.pageviews == 1 && self.events == 1
    }
}

/// Which rollup row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub site: String,
    pub day: i32,
    pub dim: u16,
    pub value: String,
}

/// Changes to one rollup row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    pub visits: i64,
    pub pageviews: i64,
    pub events: i64,
    pub bounces: i64,
    pub duration: i64,
    pub engaged_ms: i64,
    pub add: Vec<u32>,
    pub remove: Vec<u32>,
}

impl Delta {
    /// Cancels numbers both added and removed (a visit whose figures were replaced).
    pub fn settle(&mut self) {
        if self.add.is_empty() || self.remove.is_empty() {
            return;
        }
        self.add.sort_unstable();
        self.remove.sort_unstable();
        let removed = std::mem::take(&mut self.remove);
        for r in removed {
            match self.add.binary_search(&r) {
                Ok(i) => {
                    self.add.remove(i);
                }
                Err(_) => self.remove.push(r),
            }
        }
    }

    pub fn is_noop(&self) -> bool {
        self.visits == 0
            && self.pageviews == 0
            && self.events == 0
            && self.bounces == 0
            && self.duration == 0
            && self.engaged_ms == 0
            && self.add.is_empty()
            && self.remove.is_empty()
    }
}

/// Changes to rollup rows, gathered until they are written.
#[derive(Debug, Default)]
pub struct Deltas {
    pub rows: HashMap<Key, Delta>,
}

impl Deltas {
    pub fn at(&mut self, site: &str, day: i32, dim: u16, value: &str) -> &mut Delta {
        let key = Key {
            site: site.to_string(),
            day,
            dim,
            value: value.to_string(),
        };
        self.rows.entry(key).or_default()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds another set of changes to this one.
    pub fn merge(&mut self, other: Deltas) {
        for (k, d) in other.rows {
            let e = self.rows.entry(k).or_default();
            e.visits += d.visits;
            e.pageviews += d.pageviews;
            e.events += d.events;
            e.bounces += d.bounces;
            e.duration += d.duration;
            e.engaged_ms += d.engaged_ms;
            e.add.extend(d.add);
            e.remove.extend(d.remove);
        }
    }
}

/// A visit as the rollups see it: where it counts, who, and its visit dimension values (exit page
/// included).
#[derive(Debug, Clone)]
pub struct VisitKey<'a> {
    pub site: &'a str,
    pub day: i32,
    pub visitor: u32,
    pub dims: [&'a str; VISIT_DIMS.len()],
}

/// Adds (`sign` 1) or takes away (`sign` -1) a visit's visit-level contribution: the totals and every
/// visit dimension.
pub fn visit(deltas: &mut Deltas, v: &VisitKey, figures: Figures, sign: i64) {
    let codes = std::iter::once((dims::TOTAL, "")).chain(
        VISIT_DIMS
            .iter()
            .enumerate()
            .map(|(i, _)| (i as u16 + 1, v.dims[i])),
    );
    for (code, value) in codes {
        let d = deltas.at(v.site, v.day, code, value);
        d.visits += sign;
        d.pageviews += sign * figures.pageviews;
        d.events += sign * figures.events;
        d.bounces += sign * figures.bounce() as i64;
        d.duration += sign * figures.duration;
        if sign > 0 {
            d.add.push(v.visitor);
        } else {
            d.remove.push(v.visitor);
        }
    }
}

/// An event as the rollups see it.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub kind: EventKind,
    pub name: &'a str,
    pub page: &'a str,
    pub props: &'a [(String, String)],
    pub engaged_ms: i64,
}

/// The event dimension values an event touches: (rollup code, stored value).
pub fn touched(e: &EventRef) -> Vec<(u16, String)> {
    let mut out = vec![(PAGE, e.page.to_string()), (NAME, e.name.to_string())];
    for (k, v) in e.props {
        out.push((PROP, prop_value(k, v)));
    }
    out
}

/// A short fingerprint of an event dimension value, for a visit's memory of what it touched.
pub fn fingerprint(code: u16, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ code as u64;
    for b in value.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Adds one event of a visit. `seen` holds the fingerprints of the values the visit touched before: the
/// first touch of a value counts the visit and its visitor there. Engaged time counts on its page only
/// once the visit viewed that page (the writer stores no other).
pub fn event(
    deltas: &mut Deltas,
    site: &str,
    day: i32,
    visitor: u32,
    e: &EventRef,
    seen: &mut Vec<u64>,
    sign: i64,
) {
    if e.kind == EventKind::Engagement {
        if seen.contains(&fingerprint(PAGE, e.page)) {
            deltas.at(site, day, PAGE, e.page).engaged_ms += sign * e.engaged_ms;
        }
        return;
    }
    for (code, value) in touched(e) {
        let first = {
            let f = fingerprint(code, &value);
            if seen.contains(&f) {
                false
            } else {
                seen.push(f);
                true
            }
        };
        let d = deltas.at(site, day, code, &value);
        d.events += sign;
        d.pageviews += sign * (e.kind == EventKind::Pageview) as i64;
        if first {
            d.visits += sign;
            if sign > 0 {
                d.add.push(visitor);
            } else {
                d.remove.push(visitor);
            }
        }
    }
}

/// A visit's whole contribution, from its row and its events in order.
pub fn whole_visit(
    deltas: &mut Deltas,
    v: &VisitKey,
    figures: Figures,
    events: &[EventRef],
    sign: i64,
) {
    visit(deltas, v, figures, sign);
    let mut seen = Vec::new();
    for e in events {
        event(deltas, v.site, v.day, v.visitor, e, &mut seen, sign);
    }
}

/// The visitor number of a visitor key on a site.
pub fn visitor_number(salt: u64, visitor_key: i64) -> u32 {
    visitors::number(salt, visitor_key)
}

/// Figures of a visit from its events.
pub fn figures_of(events: &[EventRef], started_at: i64, last_at: i64) -> Figures {
    let pageviews = events
        .iter()
        .filter(|e| e.kind == EventKind::Pageview)
        .count() as i64;
    let all = events
        .iter()
        .filter(|e| e.kind != EventKind::Engagement)
        .count() as i64;
    let engaged: i64 = events.iter().map(|e| e.engaged_ms).sum();
    Figures {
        pageviews,
        events: all,
        duration: duration(engaged, started_at, last_at),
    }
}

/// Visit duration in seconds: the engaged time the tracker reported, else last minus first event.
pub fn duration(engaged_ms: i64, started_at: i64, last_at: i64) -> i64 {
    if engaged_ms > 0 {
        (engaged_ms + 500) / 1000
    } else {
        (last_at - started_at).max(0)
    }
}

/// The kind of a stored event by its name.
pub fn kind_of(name: &str) -> EventKind {
    match name {
        "pageview" => EventKind::Pageview,
        "engagement" => EventKind::Engagement,
        _ => EventKind::Custom,
    }
}

/// Which dimension a rollup code is, for reading rows back (properties by their key).
pub fn dimension_of(code: u16, value: &str) -> Option<Dimension> {
    match code {
        PAGE => Some(Dimension::Page),
        NAME => Some(Dimension::Name),
        PROP => value
            .split_once(dims::PROP_SEPARATOR)
            .map(|(k, _)| Dimension::Prop(k.to_string())),
        c if c >= 1 && (c as usize) <= VISIT_DIMS.len() => Some(VISIT_DIMS[c as usize - 1].clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(kind: EventKind, page: &str) -> EventRef<'_> {
        EventRef {
            kind,
            name: match kind {
                EventKind::Pageview => "pageview",
                EventKind::Engagement => "engagement",
                EventKind::Custom => "Signup",
            },
            page,
            props: &[],
            engaged_ms: if kind == EventKind::Engagement {
                4000
            } else {
                0
            },
        }
    }

    #[test]
    fn a_visit_added_and_taken_away_leaves_nothing() {
        let dims_ = [
            "", "", "", "", "", "", "", "FR", "Firefox", "Linux", "Desktop", "Desktop", "/a", "/b",
        ];
        let v = VisitKey {
            site: "s",
            day: 100,
            visitor: 7,
            dims: dims_,
        };
        let events = [
            page(EventKind::Pageview, "/a"),
            page(EventKind::Engagement, "/a"),
            page(EventKind::Pageview, "/b"),
            page(EventKind::Custom, "/b"),
            page(EventKind::Pageview, "/a"),
        ];
        let figures = figures_of(&events, 0, 60);
        assert_eq!(
            figures,
            Figures {
                pageviews: 3,
                events: 4,
                duration: 4
            }
        );
        let mut d = Deltas::default();
        whole_visit(&mut d, &v, figures, &events, 1);
        let a = &d.rows[&Key {
            site: "s".into(),
            day: 100,
            dim: PAGE,
            value: "/a".into(),
        }];
        assert_eq!(
            (a.visits, a.pageviews, a.events, a.engaged_ms),
            (1, 2, 2, 4000)
        );
        assert_eq!(a.add, [7]);
        whole_visit(&mut d, &v, figures, &events, -1);
        for delta in d.rows.values_mut() {
            delta.settle();
            assert!(delta.is_noop(), "{delta:?}");
        }
    }
}
