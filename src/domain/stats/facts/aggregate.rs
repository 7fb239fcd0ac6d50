//! The aggregation over the facts: a query's filters resolved to interned ids, each condition's verdict
//! computed once per distinct value, and the visits and events counted into groups keyed by ids.

use super::{EventFact, EventKind, Facts, FastMap, PAGEVIEW, VisitFact};
use crate::domain::stats::dims::{Dimension, ENTRY};
use crate::domain::stats::period::{Bucket, Period};
use crate::domain::stats::query::{Condition, Filter};
use crate::domain::stats::results::{Acc, Groups};

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
