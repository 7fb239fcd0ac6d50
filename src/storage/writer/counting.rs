//! The writer's part in the statistics: keeping the daily rollups equal to what the rows say. Events add
//! their event-level contribution as they are stored; a visit's visit-level figures are counted when its
//! row is written (what was counted before is taken away, what is now is added); erasure takes a visit's
//! whole contribution away; after a crash, the contribution of the events the rows did not reflect yet is
//! added. All go through `domain::stats::contribution`.

use std::collections::HashMap;

use crate::args;
use crate::storage::sql::Conn;

use super::WriterSite;
use crate::domain::event::NewEvent;
use crate::domain::stats::contribution::{self, Deltas, EventRef, VisitKey, fingerprint};
use crate::domain::stats::dims::{EXIT, PAGE, VISIT_DIMS};
use crate::domain::stats::facts::EventKind;
use crate::domain::stats::visitors;
use crate::domain::visits::{Counted, VisitState};
use crate::error::Result;
use crate::storage::events::{self, StoredEvent};
use crate::storage::rollups;
use crate::storage::visits::{self, StoredVisit};

/// An incoming event as the rollups see it.
pub fn event_ref(e: &NewEvent) -> EventRef<'_> {
    EventRef {
        kind: contribution::kind_of(&e.name),
        name: &e.name,
        page: &e.path,
        props: &e.prop_pairs,
        engaged_ms: e.engaged_ms.unwrap_or(0),
    }
}

/// Whether a visit viewed a page (engaged time is only stored for a page its visit viewed).
pub fn viewed(state: &VisitState, page: &str) -> bool {
    state.seen.contains(&fingerprint(PAGE, page))
}

/// The id of the event whose page is a visit's exit page: its last page view, else its first event.
fn exit_event_of(first_event: i64, events: &[StoredEvent]) -> i64 {
    events
        .iter()
        .rev()
        .find(|e| e.name == "pageview")
        .map(|e| e.id)
        .unwrap_or(first_event)
}

fn seen_of(events: &[StoredEvent]) -> Vec<u64> {
    let mut seen: Vec<u64> = Vec::new();
    for e in events.iter().filter(|e| e.name != "engagement") {
        for (code, value) in contribution::touched(&e.as_ref()) {
            let f = fingerprint(code, &value);
            if !seen.contains(&f) {
                seen.push(f);
            }
        }
    }
    seen
}

/// The state the writer keeps of a visit read back from its row: where and whom it counts for, what the
/// rollups hold of it (its row as it is), and which values it touched.
pub fn state_of(conn: &mut Conn, sv: &StoredVisit, site: &WriterSite) -> Result<VisitState> {
    let evs = events::of_visit(conn, sv.id, sv.first_event, sv.last_event)?;
    let mut state = sv.state();
    state.day = site.zone.day(sv.started_at);
    state.visitor = visitors::number(site.salt, sv.visitor);
    state.exit_event = exit_event_of(sv.first_event, &evs);
    state.counted = Some(Counted {
        figures: state.figures(),
        exit_event: state.exit_event,
    });
    state.seen = seen_of(&evs);
    Ok(state)
}

fn key_of<'a>(
    site: &'a str,
    day: i32,
    visitor: u32,
    dims: &'a [String; VISIT_DIMS.len()],
) -> VisitKey<'a> {
    let mut values = [""; VISIT_DIMS.len()];
    for (i, d) in dims.iter().enumerate() {
        values[i] = d;
    }
    VisitKey {
        site,
        day,
        visitor,
        dims: values,
    }
}

/// Whether a visit's figures changed since they were counted (and [`count_visit`] has work to do).
fn needs_count(v: &VisitState) -> bool {
    v.counted
        != Some(Counted {
            figures: v.figures(),
            exit_event: v.exit_event,
        })
}

/// The exit event a visit was last counted with, when that is no longer its exit: its path is needed to
/// take the old count away.
fn old_exit(v: &VisitState) -> Option<i64> {
    v.counted
        .filter(|then| then.exit_event != v.exit_event)
        .map(|then| then.exit_event)
}

/// What counting visits reads: their rows and the pages of the exit events they were last counted with,
/// read a group per statement (`visits::stored_all`, `events::paths_of`) for all the visits a flush
/// counts rather than one visit at a time.
pub struct ReadAhead {
    rows: HashMap<i64, StoredVisit>,
    exit_paths: HashMap<i64, String>,
}

impl ReadAhead {
    /// Reads what counting `visits` needs; a visit whose figures did not change needs nothing. Their rows
    /// must be written first.
    pub fn read<'v>(
        conn: &mut Conn,
        visits: impl IntoIterator<Item = &'v VisitState>,
    ) -> Result<ReadAhead> {
        let due: Vec<&VisitState> = visits.into_iter().filter(|v| needs_count(v)).collect();
        let ids: Vec<i64> = due.iter().map(|v| v.id).collect();
        let old_exits: Vec<i64> = due.iter().filter_map(|v| old_exit(v)).collect();
        Ok(ReadAhead {
            rows: visits::stored_all(conn, &ids)?,
            exit_paths: events::paths_of(conn, &old_exits)?,
        })
    }
}

/// Counts a visit's visit-level figures after its row was written: what was counted goes, what is now
/// comes. `read` holds what it needs (see [`ReadAhead::read`]). Returns whether anything changed.
pub fn count_visit(deltas: &mut Deltas, site: &str, v: &mut VisitState, read: &ReadAhead) -> bool {
    let figures = v.figures();
    let now = Counted {
        figures,
        exit_event: v.exit_event,
    };
    if v.counted == Some(now) {
        return false;
    }
    // A visit whose row is gone (erased in this batch) is not counted.
    let Some(row) = read.rows.get(&v.id) else {
        return false;
    };
    let mut dims = row.dims.clone();
    if let Some(then) = v.counted {
        if let Some(path) = old_exit(v).and_then(|id| read.exit_paths.get(&id)) {
            dims[EXIT] = path.clone();
        }
        contribution::visit(
            deltas,
            &key_of(site, v.day, v.visitor, &dims),
            then.figures,
            -1,
        );
    }
    contribution::visit(
        deltas,
        &key_of(site, v.day, v.visitor, &row.dims),
        figures,
        1,
    );
    v.counted = Some(now);
    true
}

/// Takes a visit's whole contribution away (erasure): the visit-level figures as counted (`held`, its
/// state in memory, or else its row) and every event's contribution.
pub fn uncount_visit(
    deltas: &mut Deltas,
    sv: &StoredVisit,
    site: &WriterSite,
    held: Option<&VisitState>,
    evs: &[StoredEvent],
) -> Result<()> {
    let day = site.zone.day(sv.started_at);
    let visitor = visitors::number(site.salt, sv.visitor);
    let counted = match held {
        Some(state) => state.counted,
        None => {
            let (_, figures) = rollups::visit_key(sv, site.zone, site.salt);
            Some(Counted {
                figures,
                exit_event: 0,
            })
        }
    };
    if let Some(c) = counted {
        let mut dims = sv.dims.clone();
        if c.exit_event != 0
            && let Some(e) = evs.iter().find(|e| e.id == c.exit_event)
        {
            dims[EXIT] = e.path.clone();
        }
        contribution::visit(
            deltas,
            &key_of(&sv.site, day, visitor, &dims),
            c.figures,
            -1,
        );
    }
    let mut seen = Vec::new();
    for e in evs {
        contribution::event(deltas, &sv.site, day, visitor, &e.as_ref(), &mut seen, -1);
    }
    Ok(())
}

/// After an unclean stop: recomputes the rows of the visits of events after `watermark`, and adds to the
/// rollups what those events change (sites whose rollups are to be counted afresh are skipped). Returns
/// the visits mended.
pub fn repair(
    conn: &mut Conn,
    watermark: i64,
    sites: &HashMap<String, WriterSite>,
) -> Result<usize> {
    let affected: Vec<i64> = conn.rows(
        "SELECT DISTINCT visit_id FROM events WHERE id > ?1",
        args![watermark],
        |r| r.get(0),
    )?;
    let mut before: Vec<(StoredVisit, Vec<StoredEvent>)> = Vec::new();
    for id in &affected {
        if let Some(sv) = visits::stored(conn, *id)? {
            let evs = events::of_visit(conn, sv.id, sv.first_event, i64::MAX)?;
            before.push((sv, evs));
        }
    }
    let repaired = visits::repair_after(conn, watermark)?;
    let mut deltas = Deltas::default();
    for (old, evs) in before {
        let Some(site) = sites.get(&old.site).filter(|s| s.counted_in_zone) else {
            continue;
        };
        let Some(new) = visits::stored(conn, old.id)? else {
            continue;
        };
        let day = site.zone.day(old.started_at);
        let visitor = visitors::number(site.salt, old.visitor);
        // What the rollups held: the visit as its events up to the watermark made it (at that flush every
        // visit was counted), if it had any.
        let held: Vec<&StoredEvent> = evs.iter().filter(|e| e.id <= watermark).collect();
        if let Some(last) = held.last() {
            let refs: Vec<_> = held.iter().map(|e| e.as_ref()).collect();
            let figures = contribution::figures_of(
                &refs,
                old.started_at,
                held.iter().map(|e| e.ts).max().unwrap_or(last.ts),
            );
            let mut dims = old.dims.clone();
            dims[EXIT] = held
                .iter()
                .rev()
                .find(|e| e.name == "pageview")
                .unwrap_or(&held[0])
                .path
                .clone();
            contribution::whole_visit(
                &mut deltas,
                &key_of(&old.site, day, visitor, &dims),
                figures,
                &refs,
                -1,
            );
        }
        let (_, figures) = rollups::visit_key(&new, site.zone, site.salt);
        let refs: Vec<_> = evs.iter().map(StoredEvent::as_ref).collect();
        contribution::whole_visit(
            &mut deltas,
            &key_of(&new.site, day, visitor, &new.dims),
            figures,
            &refs,
            1,
        );
    }
    rollups::apply(conn, &deltas)?;
    Ok(repaired)
}

/// Whether an event is engaged time.
pub fn is_engagement(e: &NewEvent) -> bool {
    contribution::kind_of(&e.name) == EventKind::Engagement
}
