//! Property test of the statistics: random visits (page views, custom events with properties, engaged
//! time), erasures, retention runs, crashes and a time zone change go through the real writer, batch by
//! batch; afterwards every rollup row must equal a brute-force count from the raw rows, and the engine's
//! two ways of answering (rollups, rows) must agree with each other.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::tests::{Harness, consent};
use super::*;
use crate::domain::stats::contribution::{self, kind_of};
use crate::domain::stats::dims::{self, Dimension, EXIT, VISIT_DIMS};
use crate::domain::stats::engine::Source;
use crate::domain::stats::facts::{self, EventKind};
use crate::domain::stats::period::{Period, Zone};
use crate::domain::stats::query::{Condition, Filter, Op as FilterOp};
use crate::domain::stats::results::Acc;
use crate::domain::stats::rollups::{self, RollupRow};
use crate::domain::stats::visitors;
use crate::storage::stats::SqlSource;

#[derive(Debug, Clone)]
enum Step {
    /// visitor, minutes after the previous event of that visitor, kind (0 page view, 1 custom, 2
    /// engaged time), page, property
    Event(u8, u16, u8, u8, u8),
    Erase(u8),
    Purge(u16),
    Flush,
    Crash,
    ChangeZone,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        20 => (0u8..12, 0u16..90, 0u8..3, 0u8..5, 0u8..3)
            .prop_map(|(v, gap, k, p, prop)| Step::Event(v, gap, k, p, prop)),
        1 => (0u8..12).prop_map(Step::Erase),
        1 => (0u16..4000).prop_map(Step::Purge),
        2 => Just(Step::Flush),
        1 => Just(Step::Crash),
        1 => Just(Step::ChangeZone),
    ]
}

const PAGES: [&str; 5] = ["/", "/pricing", "/blog", "/docs/a", "/x"];

fn new_event(name: &str, page: &str, ts: i64, prop: u8, engaged: Option<i64>) -> NewEvent {
    let prop_pairs = match prop {
        1 => vec![("plan".to_string(), "pro".to_string())],
        2 => vec![("plan".to_string(), "free".to_string())],
        _ => Vec::new(),
    };
    NewEvent {
        site: "a".into(),
        ts,
        name: name.into(),
        path: page.into(),
        referrer: (ts % 3 == 0).then(|| "news.example".to_string()),
        source: (ts % 3 == 0).then(|| "News".to_string()),
        utm_source: None,
        utm_medium: None,
        utm_campaign: (ts % 5 == 0).then(|| "spring".to_string()),
        utm_content: None,
        utm_term: None,
        country: (ts % 2 == 0).then(|| "FR".to_string()),
        browser: "Firefox".into(),
        os: "Linux".into(),
        device: "Desktop".into(),
        screen: "Laptop".into(),
        props: (!prop_pairs.is_empty())
            .then(|| serde_json::json!({ "plan": prop_pairs[0].1 }).to_string()),
        prop_pairs,
        engaged_ms: engaged,
    }
}

type Expected = BTreeMap<(i32, u16, String), (Acc, Vec<u32>)>;

/// Counts every rollup row from the raw rows, the simple way.
fn brute_force(h: &Harness, zone: Zone) -> Expected {
    let mut conn = h.conn();
    let secret: Vec<u8> = conn
        .query_row("SELECT secret FROM sites WHERE id = 'a'", [], |r| r.get(0))
        .unwrap();
    let salt = visitors::salt_of(&secret);
    let mut out = Expected::new();
    let mut add = |day: i32, code: u16, value: &str, f: &dyn Fn(&mut Acc, &mut Vec<u32>)| {
        let e = out.entry((day, code, value.to_string())).or_default();
        f(&mut e.0, &mut e.1);
    };
    let lite = &mut crate::storage::sql::Conn::Lite(&mut conn);
    let visit_rows = crate::storage::visits::stored_after(lite, "a", 0, i64::MAX).unwrap();
    for v in visit_rows {
        let evs = events::of_visit(lite, v.id, 0, i64::MAX).unwrap();
        assert!(!evs.is_empty(), "a visit without events");
        let day = zone.day(v.started_at);
        let number = visitors::number(salt, v.visitor);
        let pv = evs.iter().filter(|e| e.name == "pageview").count() as u64;
        let ev = evs.iter().filter(|e| e.name != "engagement").count() as u64;
        let engaged: i64 = evs.iter().map(|e| e.engaged_ms).sum();
        let last_at = evs.iter().map(|e| e.ts).max().unwrap();
        let duration = contribution::duration(engaged, v.started_at, last_at) as u64;
        // The row itself is right.
        assert_eq!(
            (v.pageviews as u64, v.events as u64, v.engaged_ms, v.last_at),
            (pv, ev, engaged, last_at),
            "visit row {}",
            v.id
        );
        let exit = evs
            .iter()
            .rev()
            .find(|e| e.name == "pageview")
            .unwrap_or(&evs[0])
            .path
            .clone();
        assert_eq!(v.dims[EXIT], exit, "exit page of visit {}", v.id);
        let bounce = (pv == 1 && ev == 1) as u64;
        let values = std::iter::once((dims::TOTAL, String::new())).chain(
            v.dims
                .iter()
                .enumerate()
                .map(|(i, d)| (i as u16 + 1, d.clone())),
        );
        for (code, value) in values {
            add(day, code, &value, &|a, n| {
                a.visits += 1;
                a.pageviews += pv;
                a.events += ev;
                a.bounces += bounce;
                a.duration += duration;
                n.push(number);
            });
        }
        let mut touched: Vec<(u16, String)> = Vec::new();
        for e in evs.iter().filter(|e| e.name != "engagement") {
            for t in contribution::touched(&e.as_ref()) {
                let first = !touched.contains(&t);
                if first {
                    touched.push(t.clone());
                }
                let is_pv = (kind_of(&e.name) == EventKind::Pageview) as u64;
                add(day, t.0, &t.1, &|a, n| {
                    a.events += 1;
                    a.pageviews += is_pv;
                    if first {
                        a.visits += 1;
                        n.push(number);
                    }
                });
            }
        }
        for e in evs.iter().filter(|e| e.name == "engagement") {
            assert!(
                touched.contains(&(dims::PAGE, e.path.clone())),
                "engaged time on an unviewed page"
            );
            add(day, dims::PAGE, &e.path, &|a, _| {
                a.engaged_ms += e.engaged_ms as u64
            });
        }
    }
    for (_, n) in out.values_mut() {
        n.sort_unstable();
    }
    out
}

fn stored_rollups(h: &Harness) -> Expected {
    let mut conn = h.conn();
    let source = SqlSource::new(crate::storage::sql::Conn::Lite(&mut conn));
    let mut out = Expected::new();
    let codes = [dims::TOTAL, dims::PAGE, dims::NAME, dims::PROP]
        .into_iter()
        .chain((1..=VISIT_DIMS.len()).map(|i| i as u16));
    for code in codes {
        for row in source.rollups("a", code, None, i32::MIN, i32::MAX).unwrap() {
            let RollupRow {
                day,
                value,
                mut acc,
                ..
            } = row;
            let mut numbers = std::mem::take(&mut acc.visitors);
            numbers.sort_unstable();
            out.insert((day, code, value), (acc, numbers));
        }
    }
    out
}

fn run(steps: Vec<Step>) {
    run_checked(steps, false)
}

fn run_checked(steps: Vec<Step>, check_each: bool) {
    let mut h = Harness::new();
    let now = crate::now();
    h.writer().open = OpenVisits::new(4);
    let mut zone = Zone::utc();
    let ids: Vec<ConsentId> = (1..=12).map(|i| ConsentId(1000 + i)).collect();
    h.batch(
        ids.iter()
            .map(|id| consent(*id, "a", 1, true, now))
            .collect(),
    );
    let start = now - 20 * 86_400;
    let mut clock: Vec<i64> = vec![start; ids.len()];
    let mut pending: Vec<Op> = Vec::new();
    for s in steps {
        match s.clone() {
            Step::Event(v, gap, kind, page, prop) => {
                let i = v as usize;
                clock[i] += gap as i64 * 60 + 7;
                let (name, engaged) = match kind {
                    0 => ("pageview", None),
                    1 => ("Signup", None),
                    _ => ("engagement", Some(1000 + gap as i64 * 100)),
                };
                pending.push(Op::Event {
                    consent_id: ids[i],
                    event: Box::new(new_event(
                        name,
                        PAGES[page as usize],
                        clock[i],
                        prop,
                        engaged,
                    )),
                });
                if pending.len() >= 3 {
                    h.batch(std::mem::take(&mut pending));
                }
            }
            Step::Erase(v) => {
                let id = ids[v as usize];
                pending.push(Op::Erase(id));
                // The visitor comes back and consents again.
                pending.push(consent(id, "a", current_revision(&h), true, now));
                h.batch(std::mem::take(&mut pending));
            }
            Step::Purge(minutes) => {
                pending.push(Op::Purge {
                    cutoff: start + minutes as i64 * 60,
                    now,
                });
                h.batch(std::mem::take(&mut pending));
            }
            Step::Flush => {
                pending.push(Op::Flush);
                h.batch(std::mem::take(&mut pending));
            }
            Step::Crash => {
                h.batch(std::mem::take(&mut pending));
                h.restart(crate::now());
                h.writer().open = OpenVisits::new(4);
            }
            Step::ChangeZone => {
                h.batch(std::mem::take(&mut pending));
                let next = if zone == Zone::utc() {
                    "Europe/Paris"
                } else {
                    "UTC"
                };
                let mut db = h.db();
                let mut cfg = db.site("a").unwrap().unwrap().config;
                cfg.timezone = next.into();
                db.update_site("a", &cfg, false, now).unwrap();
                zone = Zone::parse(next).unwrap();
            }
        }
        if check_each {
            pending.push(Op::Flush);
            h.batch(std::mem::take(&mut pending));
            let expected = brute_force(&h, zone);
            let stored = stored_rollups(&h);
            assert_eq!(stored, expected, "after {s:?}");
        }
    }
    pending.push(Op::Flush);
    h.batch(pending);
    let expected = brute_force(&h, zone);
    let stored = stored_rollups(&h);
    for k in expected.keys().filter(|k| !stored.contains_key(k)) {
        eprintln!("missing {k:?}");
    }
    for k in stored.keys().filter(|k| !expected.contains_key(k)) {
        eprintln!("extra {k:?} {:?}", stored[k]);
    }
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the rollup rows"
    );
    for (key, want) in &expected {
        assert_eq!(&stored[key], want, "rollup row {key:?}");
    }
    // The engine's two paths agree on every dimension over the whole period.
    let mut conn = h.conn();
    let source = SqlSource::new(crate::storage::sql::Conn::Lite(&mut conn));
    let period = Period::instants(start - 86_400, now + 86_400, zone);
    let period = Period::days(
        crate::domain::stats::period::date_of_day(period.first_day()),
        crate::domain::stats::period::date_of_day(period.last_day()),
        zone,
    );
    let all = source
        .facts(&crate::domain::stats::facts::FactsRequest {
            site: "a".into(),
            from: period.from,
            to: period.to,
            visit_dims: [true; VISIT_DIMS.len()],
            events: true,
            props: true,
            visit_in: Vec::new(),
            page_in: None,
        })
        .unwrap();
    let mut dims_: Vec<Option<Dimension>> =
        vec![None, Some(Dimension::Page), Some(Dimension::Name)];
    dims_.push(Some(Dimension::Prop("plan".into())));
    dims_.extend(VISIT_DIMS.iter().cloned().map(Some));
    for d in dims_ {
        let dimensions: Vec<Dimension> = d.iter().cloned().collect();
        let from_rows = facts::aggregate(
            &all,
            &facts::Spec {
                dimensions: &dimensions,
                filters: &[],
                period: &period,
                bucket: None,
                entries: false,
            },
        );
        let spec = rollups::Spec {
            dimensions: &dimensions,
            filters: &[],
            source: d.as_ref(),
            period: &period,
            bucket: None,
        };
        let rows = source
            .rollups("a", spec.code(), spec.prop_key(), i32::MIN, i32::MAX)
            .unwrap();
        let from_rollups = rollups::aggregate(&spec, &rows, &[]);
        let mut a: Vec<_> = from_rows
            .into_rows()
            .into_iter()
            .map(|r| {
                (
                    r.dims,
                    r.acc.visits,
                    r.acc.pageviews,
                    r.acc.events,
                    r.acc.bounces,
                    r.acc.duration,
                    r.visitors,
                )
            })
            .collect();
        let mut b: Vec<_> = from_rollups
            .into_rows()
            .into_iter()
            .map(|r| {
                (
                    r.dims,
                    r.acc.visits,
                    r.acc.pageviews,
                    r.acc.events,
                    r.acc.bounces,
                    r.acc.duration,
                    r.visitors,
                )
            })
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "rows and rollups disagree on {d:?}");
    }
    // Loading only the rows a filter can match (pushed down to SQL) sums the same as filtering them all.
    let cond = |op, dim: Dimension, value: &str| {
        Filter::Cond(Condition::new(op, dim, vec![value.to_string()], true).unwrap())
    };
    let filter_sets: Vec<Vec<Filter>> = vec![
        vec![cond(FilterOp::Is, Dimension::Country, "FR")],
        vec![cond(FilterOp::Is, Dimension::Country, "(not set)")],
        vec![cond(FilterOp::Is, Dimension::Source, "Direct / None")],
        vec![cond(FilterOp::Is, Dimension::Page, "/pricing")],
        vec![
            cond(FilterOp::Is, Dimension::Country, "FR"),
            cond(FilterOp::Is, Dimension::Page, "/blog"),
        ],
        vec![Filter::Or(vec![
            cond(FilterOp::Is, Dimension::Country, "FR"),
            cond(FilterOp::Is, Dimension::Page, "/x"),
        ])],
    ];
    let groupings: Vec<Vec<Dimension>> = vec![
        vec![],
        vec![Dimension::Page],
        vec![Dimension::Source],
        vec![Dimension::Prop("plan".into())],
        vec![Dimension::Country, Dimension::Name],
    ];
    for filters in &filter_sets {
        let (visit_in, page_in) = facts::pushdown(filters, true);
        let narrow = source
            .facts(&crate::domain::stats::facts::FactsRequest {
                site: "a".into(),
                from: period.from,
                to: period.to,
                visit_dims: [true; VISIT_DIMS.len()],
                events: true,
                props: true,
                visit_in,
                page_in,
            })
            .unwrap();
        for dimensions in &groupings {
            let spec = facts::Spec {
                dimensions,
                filters,
                period: &period,
                bucket: None,
                entries: dimensions.contains(&Dimension::Page),
            };
            let summed = |f: &facts::Facts| {
                let g = facts::aggregate(f, &spec);
                let mut rows: Vec<_> = g.rows.into_iter().collect();
                let mut entries: Vec<_> = g.entries.into_iter().collect();
                rows.sort_by(|a, b| a.0.cmp(&b.0));
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                (rows, entries)
            };
            assert_eq!(
                summed(&narrow),
                summed(&all),
                "pushdown of {filters:?} by {dimensions:?}"
            );
        }
    }
}

fn current_revision(h: &Harness) -> u32 {
    h.db().site("a").unwrap().unwrap().revision
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rollups_equal_the_rows(steps in proptest::collection::vec(step(), 1..120)) {
        run(steps);
    }
}

#[test]
fn a_fixed_mix() {
    let mut steps = Vec::new();
    for i in 0..60u16 {
        steps.push(Step::Event(
            (i % 7) as u8,
            (i * 13) % 50,
            (i % 3) as u8,
            (i % 5) as u8,
            (i % 3) as u8,
        ));
        if i % 17 == 0 {
            steps.push(Step::Erase((i % 7) as u8));
        }
        if i == 30 {
            steps.push(Step::Crash);
            steps.push(Step::ChangeZone);
        }
        if i == 45 {
            steps.push(Step::Purge(600));
        }
    }
    run(steps);
}

/// `assent seed` counts its visits in the rollups as the writer would.
#[test]
fn seeded_rollups_equal_the_rows() {
    let h = Harness::new();
    let now = crate::now();
    let mut db = h.db();
    let mut seeder = db.seeder("a").unwrap();
    let t = now - 3 * 86_400;
    seeder
        .visits(&[
            (
                1,
                vec![
                    new_event("Signup", "/pricing", t, 1, None),
                    new_event("pageview", "/", t + 60, 0, None),
                    new_event("engagement", "/", t + 90, 0, Some(12_000)),
                ],
            ),
            (2, vec![new_event("pageview", "/blog", t + 30, 2, None)]),
            (
                1,
                vec![
                    new_event("pageview", "/docs/a", t + 7200, 0, None),
                    new_event("pageview", "/x", t + 7300, 0, None),
                ],
            ),
        ])
        .unwrap();
    seeder.commit().unwrap();
    let expected = brute_force(&h, Zone::utc());
    assert!(!expected.is_empty());
    assert_eq!(stored_rollups(&h), expected);
}

/// A site seeded before any server counted it records the zone it was counted in, so that the next
/// server start does not count it all again (minutes at ten million events).
#[test]
fn seeding_a_new_site_records_its_zone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("assent.db");
    let mut db = crate::storage::Database::open(&file).unwrap();
    let mut cfg = crate::domain::site::SiteConfig::new_default("A", vec!["a.test".into()]);
    cfg.timezone = "Europe/Paris".into();
    db.add_site("a", &cfg, crate::now()).unwrap();
    let mut seeder = db.seeder("a").unwrap();
    let t = crate::now() - 86_400;
    seeder
        .visits(&[(1, vec![new_event("pageview", "/", t, 0, None)])])
        .unwrap();
    seeder.commit().unwrap();
    let mut conn = rusqlite::Connection::open(&file).unwrap();
    assert_eq!(
        crate::storage::rollups::zone_of(&mut crate::storage::sql::Conn::Lite(&mut conn), "a")
            .unwrap()
            .as_deref(),
        Some("Europe/Paris")
    );
}
