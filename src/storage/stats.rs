//! What the statistics engine reads: rollup rows with their visitor numbers, and visits with their events
//! for what rollups cannot answer. Implements the engine's [`Source`] over a read-only connection.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::params;

use crate::args;
use crate::domain::event::stored_pairs;
use crate::domain::stats::contribution::kind_of;
use crate::domain::stats::dims::{PROP_SEPARATOR, VISIT_DIMS};
use crate::domain::stats::engine::Source;
use crate::domain::stats::facts::{EventFact, Facts, FactsRequest, VisitFact};
use crate::domain::stats::results::Acc;
use crate::domain::stats::rollups::RollupRow;
use crate::domain::stats::visitors;
use crate::error::{Error, Result};
use crate::storage::sql::{Arg, Conn};

/// The engine's source over one read connection, held exclusively: a parallel batch hands each worker
/// thread a source of its own (a shared reference to a connection cannot cross threads).
pub struct SqlSource<'a> {
    conn: RefCell<Conn<'a>>,
}

impl<'a> SqlSource<'a> {
    pub fn new(conn: Conn<'a>) -> SqlSource<'a> {
        SqlSource {
            conn: RefCell::new(conn),
        }
    }

    fn salt(&self, site: &str) -> Result<u64> {
        let secret: Vec<u8> = self
            .conn
            .borrow_mut()
            .row("SELECT secret FROM sites WHERE id = ?1", args![site], |r| {
                r.get(0)
            })?
            .ok_or_else(|| Error::NotFound(format!("unknown site {site:?}")))?;
        Ok(visitors::salt_of(&secret))
    }
}

/// The column of each of [`VISIT_DIMS`].
const VISIT_COLUMNS: [&str; VISIT_DIMS.len()] = [
    "source",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "country",
    "browser",
    "os",
    "device",
    "screen",
    "entry_page",
    "exit_page",
];

/// Where each visit of a [`Facts`] is, by row id, for joining events to their visits: a table indexed
/// by id when the ids are dense (one site's visits of a period are consecutive, give or take other sites'),
/// else a hash map.
enum VisitIndex {
    Dense { first: i64, at: Vec<u32> },
    Sparse(HashMap<i64, u32, foldhash::fast::RandomState>),
}

impl VisitIndex {
    fn new(ids: &[i64]) -> VisitIndex {
        let (Some(&first), Some(&last)) = (ids.iter().min(), ids.iter().max()) else {
            return VisitIndex::Sparse(HashMap::default());
        };
        let span = (last - first) as u64 + 1;
        if span <= 4 * ids.len() as u64 + 1024 {
            let mut at = vec![u32::MAX; span as usize];
            for (i, id) in ids.iter().enumerate() {
                at[(id - first) as usize] = i as u32;
            }
            VisitIndex::Dense { first, at }
        } else {
            let mut map = HashMap::with_capacity_and_hasher(ids.len(), Default::default());
            for (i, id) in ids.iter().enumerate() {
                map.insert(*id, i as u32);
            }
            VisitIndex::Sparse(map)
        }
    }

    fn get(&self, id: i64) -> Option<u32> {
        match self {
            VisitIndex::Dense { first, at } => {
                let i = usize::try_from(id.checked_sub(*first)?).ok()?;
                at.get(i).copied().filter(|v| *v != u32::MAX)
            }
            VisitIndex::Sparse(map) => map.get(&id).copied(),
        }
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The visits a request reads: the site's in the period, narrowed by its pushed-down conditions; the
/// condition and its arguments.
fn visits_where(req: &FactsRequest) -> (String, Vec<Arg<'_>>) {
    let mut sql = String::from("site_id = ? AND started_at >= ? AND started_at < ?");
    let mut args = vec![Arg::Text(&req.site), Arg::Int(req.from), Arg::Int(req.to)];
    for (i, values) in &req.visit_in {
        let column = VISIT_COLUMNS[*i];
        let unset = if values.iter().any(String::is_empty) {
            format!(" OR {column} IS NULL")
        } else {
            String::new()
        };
        sql.push_str(&format!(
            " AND ({column} IN ({}){unset})",
            placeholders(values.len())
        ));
        args.extend(values.iter().map(|v| Arg::Text(v)));
    }
    (sql, args)
}

/// The value range of one property key's rows.
fn prop_bounds(key: &str) -> (String, String) {
    let low = format!("{key}{PROP_SEPARATOR}");
    let high = format!(
        "{key}{}",
        char::from_u32(PROP_SEPARATOR as u32 + 1).unwrap_or('~')
    );
    (low, high)
}

impl Source for SqlSource<'_> {
    fn rollups(
        &self,
        site: &str,
        code: u16,
        prop_key: Option<&str>,
        first_day: i32,
        last_day: i32,
    ) -> Result<Vec<RollupRow>> {
        let (low, high) = match prop_key {
            Some(k) => prop_bounds(k),
            // Every value is >= "" and < a string of U+10FFFF.
            None => (String::new(), char::MAX.to_string()),
        };
        let mut conn = self.conn.borrow_mut();
        let conn = match &mut *conn {
            Conn::Lite(c) => &**c,
            pg => return rollups_joined(pg, site, code, first_day, last_day, &low, &high),
        };
        // Both tables are read in (day, value) order, their primary key's, and joined as they go: no
        // sort, no map of the visitor numbers.
        let mut numbers_stmt = conn.prepare_cached(
            "SELECT day, value, numbers FROM rollup_visitors
             WHERE site_id = ?1 AND dim = ?2 AND day BETWEEN ?3 AND ?4 AND value >= ?5 AND value < ?6
             ORDER BY day, value, chunk",
        )?;
        let mut numbers =
            numbers_stmt.query(params![site, code, first_day, last_day, low, high])?;
        let mut pending = numbers.next()?;
        let mut stmt = conn.prepare_cached(
            "SELECT day, value, visits, pageviews, events, bounces, duration, engaged_ms FROM rollups
             WHERE site_id = ?1 AND dim = ?2 AND day BETWEEN ?3 AND ?4 AND value >= ?5 AND value < ?6
             ORDER BY day, value",
        )?;
        let mut rows = stmt.query(params![site, code, first_day, last_day, low, high])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let day: i32 = r.get(0)?;
            let value: String = r.get(1)?;
            let mut acc = Acc {
                visits: r.get::<_, i64>(2)?.max(0) as u64,
                pageviews: r.get::<_, i64>(3)?.max(0) as u64,
                events: r.get::<_, i64>(4)?.max(0) as u64,
                bounces: r.get::<_, i64>(5)?.max(0) as u64,
                duration: r.get::<_, i64>(6)?.max(0) as u64,
                engaged_ms: r.get::<_, i64>(7)?.max(0) as u64,
                visitors: Vec::with_capacity(r.get::<_, i64>(2)?.clamp(0, 1 << 20) as usize),
                visitor_parts: Vec::new(),
            };
            while let Some(n) = pending {
                let key = (
                    n.get::<_, i32>(0)?,
                    n.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?,
                );
                match key.cmp(&(day, value.as_str())) {
                    std::cmp::Ordering::Greater => break,
                    std::cmp::Ordering::Equal => {
                        let bytes = n.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
                        visitors::decode_into(bytes, &mut acc.visitors);
                    }
                    // Numbers without figures cannot be: skipped.
                    std::cmp::Ordering::Less => {}
                }
                pending = numbers.next()?;
            }
            out.push(RollupRow {
                day,
                dim: code,
                value,
                acc,
            });
        }
        Ok(out)
    }

    fn facts(&self, req: &FactsRequest) -> Result<Arc<Facts>> {
        let salt = self.salt(&req.site)?;
        let mut facts = Facts::default();
        let (visits_where, mut args) = visits_where(req);
        let loaded: Vec<usize> = (0..VISIT_DIMS.len())
            .filter(|i| req.visit_dims[*i])
            .collect();
        facts.load_dims(&loaded);
        // Row ids of the visits, in the order of `facts.visits`, to join their events.
        let mut ids: Vec<i64> = Vec::new();
        let (mut low, mut high) = (i64::MAX, i64::MIN);
        {
            let columns: String = loaded
                .iter()
                .map(|i| format!(", COALESCE({}, '')", VISIT_COLUMNS[*i]))
                .collect();
            let sql = format!(
                "SELECT id, started_at, visitor, pageviews, events, engaged_ms, last_at, first_event, last_event
                        {columns}
                 FROM visits WHERE {visits_where}"
            );
            let mut dims = vec![0u32; loaded.len()];
            self.conn.borrow_mut().for_each(&sql, &args, |r| {
                for (column, slot) in dims.iter_mut().enumerate() {
                    *slot = facts.intern(r.str(9 + column)?);
                }
                let (started, engaged, last_at): (i64, i64, i64) =
                    (r.get(1)?, r.get(5)?, r.get(6)?);
                let (first_event, last_event): (i64, i64) = (r.get(7)?, r.get(8)?);
                low = low.min(first_event);
                high = high.max(last_event);
                ids.push(r.get(0)?);
                let visit = VisitFact {
                    start: started,
                    visitor: visitors::number(salt, r.get(2)?),
                    pageviews: r.get::<i64>(3)?.clamp(0, u32::MAX as i64) as u32,
                    events: r.get::<i64>(4)?.clamp(0, u32::MAX as i64) as u32,
                    duration: crate::domain::stats::contribution::duration(
                        engaged, started, last_at,
                    )
                    .clamp(0, u32::MAX as i64) as u32,
                    first: 0,
                    len: 0,
                    dims_at: 0,
                };
                facts.add_visit(visit, &dims);
                Ok(())
            })?;
        }
        if !req.events || facts.visits.is_empty() {
            return Ok(Arc::new(facts));
        }
        let by_visit = VisitIndex::new(&ids);
        drop(ids);
        // Events lie in their visits' id ranges; with fewer visits than the period holds, the storage
        // skips the others' events before reading their columns.
        let mut events_where = String::from("id BETWEEN ? AND ?");
        let mut event_args = vec![Arg::Int(low), Arg::Int(high)];
        if !req.visit_in.is_empty() {
            events_where.push_str(&format!(
                " AND visit_id IN (SELECT id FROM visits WHERE {visits_where})"
            ));
            event_args.append(&mut args);
        }
        if let Some(pages) = &req.page_in {
            events_where.push_str(&format!(" AND path IN ({})", placeholders(pages.len())));
            event_args.extend(pages.iter().map(|p| Arg::Text(p)));
        }
        let props = if req.props { "props" } else { "NULL" };
        let sql = format!(
            "SELECT visit_id, name, path, {props}, COALESCE(engaged_ms, 0) FROM events WHERE {events_where}"
        );
        self.conn.borrow_mut().for_each(&sql, &event_args, |r| {
            let Some(visit) = by_visit.get(r.get(0)?) else {
                return Ok(());
            };
            let name = r.str(1)?;
            let kind = kind_of(name);
            let name = facts.intern(name);
            let page = facts.intern(r.str(2)?);
            let (props_first, props_len) = match r.opt_str(3)? {
                Some(stored) => facts.add_props(&stored_pairs(Some(stored))),
                None => (0, 0),
            };
            let engaged: i64 = r.get(4)?;
            facts.add_event(
                visit,
                EventFact {
                    kind,
                    name,
                    page,
                    props_first,
                    props_len,
                    engaged_ms: engaged.clamp(0, u32::MAX as i64) as u32,
                },
            );
            Ok(())
        })?;
        facts.seal();
        if req.page_in.is_some() {
            // Only events on the required pages were read: the other visits cannot count.
            facts.keep_visits_with_events();
        }
        Ok(Arc::new(facts))
    }
}

/// The rollup rows of one code with their visitor numbers in one statement (PostgreSQL: one connection
/// streams one statement at a time), in (day, value) order; a row repeats once per chunk of numbers.
fn rollups_joined(
    conn: &mut Conn,
    site: &str,
    code: u16,
    first_day: i32,
    last_day: i32,
    low: &str,
    high: &str,
) -> Result<Vec<RollupRow>> {
    let mut out: Vec<RollupRow> = Vec::new();
    conn.for_each(
        "SELECT r.day, r.value, r.visits, r.pageviews, r.events, r.bounces, r.duration, r.engaged_ms, v.numbers
         FROM rollups r LEFT JOIN rollup_visitors v
           ON v.site_id = r.site_id AND v.dim = r.dim AND v.day = r.day AND v.value = r.value
         WHERE r.site_id = ?1 AND r.dim = ?2 AND r.day BETWEEN ?3 AND ?4 AND r.value >= ?5 AND r.value < ?6
         ORDER BY r.day, r.value, v.chunk",
        args![site, code, first_day, last_day, low, high],
        |r| {
            let day: i32 = r.get(0)?;
            let value = r.str(1)?;
            let same = out
                .last()
                .is_some_and(|last| last.day == day && last.value == value);
            if !same {
                let figure = |i| -> Result<u64> { Ok(r.get::<i64>(i)?.max(0) as u64) };
                out.push(RollupRow {
                    day,
                    dim: code,
                    value: value.to_string(),
                    acc: Acc {
                        visits: figure(2)?,
                        pageviews: figure(3)?,
                        events: figure(4)?,
                        bounces: figure(5)?,
                        duration: figure(6)?,
                        engaged_ms: figure(7)?,
                        visitors: Vec::with_capacity(figure(2)?.min(1 << 20) as usize),
                        visitor_parts: Vec::new(),
                    },
                });
            }
            if let (Some(row), Some(numbers)) = (out.last_mut(), r.opt_blob(8)?) {
                visitors::decode_into(numbers, &mut row.acc.visitors);
            }
            Ok(())
        },
    )?;
    Ok(out)
}
