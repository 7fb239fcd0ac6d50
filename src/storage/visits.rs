//! Visit rows in SQL: opened with their first event, written from the writer's in-memory aggregates, read
//! back for a visitor (export, erasure, the writer's look-up of a visit it no longer holds), and repaired
//! from their events after a crash.

use serde::Serialize;

use crate::args;
use crate::domain::event::NewEvent;
use crate::domain::stats::dims::VISIT_DIMS;
use crate::domain::visits::{VISIT_TIMEOUT_SECS, VisitState};
use crate::error::Result;
use crate::storage::groups::{GroupedSql, by_ids, groups, values_list};
use crate::storage::sql::{Conn, Engine, Row};

/// Inserts the row of a visit opened by `e`, stored as event `first_event`; returns the visit id.
pub fn insert(conn: &mut Conn, e: &NewEvent, visitor: i64, first_event: i64) -> Result<i64> {
    let pageview = e.name == "pageview";
    conn.value(
            "INSERT INTO visits (site_id, visitor, started_at, last_at, entry_page, exit_page, pageviews, events, engaged_ms,
                                 referrer, source, utm_source, utm_medium, utm_campaign, utm_content, utm_term,
                                 country, browser, os, device, screen, first_event, last_event)
             VALUES (?1, ?2, ?3, ?3, ?4, ?4, ?5, 1, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?19, ?18, ?18)
             RETURNING id",
        args![
            &e.site,
            visitor,
            e.ts,
            &e.path,
            pageview,
            e.engaged_ms.unwrap_or(0),
            &e.referrer,
            &e.source,
            &e.utm_source,
            &e.utm_medium,
            &e.utm_campaign,
            &e.utm_content,
            &e.utm_term,
            &e.country,
            &e.browser,
            &e.os,
            &e.device,
            first_event,
            &e.screen,
        ],
    )
}

/// Writes a visit's in-memory aggregates to its row; the exit page is the path of its latest page view.
pub fn write(conn: &mut Conn, v: &VisitState) -> Result<()> {
    write_all(conn, &[v])
}

static WRITE: GroupedSql = GroupedSql::new(|rows| {
    format!(
        "UPDATE visits SET last_at = v.column2, last_event = v.column3, pageviews = v.column4,
                           events = v.column5, engaged_ms = v.column6,
                           exit_page = COALESCE((SELECT path FROM events WHERE id = v.column7), visits.exit_page)
         FROM (VALUES {}) AS v
         WHERE visits.id = v.column1",
        values_list(rows, 7, Some("BIGINT"))
    )
});

/// Writes the aggregates of several visits, a group per statement (see `storage::groups`).
pub fn write_all(conn: &mut Conn, states: &[&VisitState]) -> Result<()> {
    for group in groups(states) {
        let sql = WRITE.text(group.len());
        let mut values = Vec::with_capacity(group.len() * 7);
        for v in group {
            values.extend_from_slice(args![
                v.id,
                v.last_at,
                v.last_event,
                v.pageviews,
                v.events,
                v.engaged_ms,
                v.exit_event
            ]);
        }
        conn.execute(&sql, &values)?;
    }
    Ok(())
}

pub(crate) const OPEN_OF: &str =
    "SELECT id FROM visits WHERE site_id = ?1 AND visitor = ?2 AND last_at > ?3
     ORDER BY last_at DESC LIMIT 1";

/// The latest visit of a visitor, if it may still be open at `now`: the writer's look-up of a visit it
/// dropped from memory.
pub fn open_of(conn: &mut Conn, site: &str, visitor: i64, now: i64) -> Result<Option<StoredVisit>> {
    let id: Option<i64> = conn.row(
        OPEN_OF,
        args![site, visitor, now - VISIT_TIMEOUT_SECS],
        |r| r.get(0),
    )?;
    match id {
        Some(id) => stored(conn, id),
        None => Ok(None),
    }
}

/// A visit row, as the writer, erasure and repair read it back.
#[derive(Debug, Clone)]
pub struct StoredVisit {
    pub id: i64,
    pub site: String,
    pub visitor: i64,
    pub started_at: i64,
    pub last_at: i64,
    pub first_event: i64,
    pub last_event: i64,
    pub pageviews: i64,
    pub events: i64,
    pub engaged_ms: i64,
    /// Values of the visit dimensions, in `VISIT_DIMS` order (exit page last).
    pub dims: [String; VISIT_DIMS.len()],
}

impl StoredVisit {
    /// The state the writer keeps of it; `day`, `visitor`, `counted` and `seen` are the caller's to fill.
    pub fn state(&self) -> VisitState {
        VisitState {
            id: self.id,
            started_at: self.started_at,
            day: 0,
            visitor: 0,
            first_event: self.first_event,
            last_event: self.last_event,
            exit_event: 0,
            last_at: self.last_at,
            pageviews: self.pageviews,
            events: self.events,
            engaged_ms: self.engaged_ms,
            dirty: false,
            counted: None,
            seen: Vec::new(),
        }
    }
}

const STORED: &str = "SELECT id, site_id, visitor, started_at, last_at, first_event, last_event, pageviews, events,
            engaged_ms, COALESCE(source, ''), COALESCE(referrer, ''), COALESCE(utm_source, ''),
            COALESCE(utm_medium, ''), COALESCE(utm_campaign, ''), COALESCE(utm_content, ''),
            COALESCE(utm_term, ''), COALESCE(country, ''), browser, os, device, screen, entry_page, exit_page
     FROM visits";

fn stored_from(r: &Row) -> Result<StoredVisit> {
    let mut dims: [String; VISIT_DIMS.len()] = Default::default();
    for (i, d) in dims.iter_mut().enumerate() {
        *d = r.get(10 + i)?;
    }
    Ok(StoredVisit {
        id: r.get(0)?,
        site: r.get(1)?,
        visitor: r.get(2)?,
        started_at: r.get(3)?,
        last_at: r.get(4)?,
        first_event: r.get(5)?,
        last_event: r.get(6)?,
        pageviews: r.get(7)?,
        events: r.get(8)?,
        engaged_ms: r.get(9)?,
        dims,
    })
}

pub fn stored(conn: &mut Conn, id: i64) -> Result<Option<StoredVisit>> {
    conn.row(&format!("{STORED} WHERE id = ?1"), args![id], stored_from)
}

/// The rows of several visits by id, a group per statement (see `storage::groups`); ids without a row
/// are left out.
pub fn stored_all(
    conn: &mut Conn,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, StoredVisit>> {
    let rows = by_ids(conn, STORED, ids, stored_from)?;
    Ok(rows.into_iter().map(|v| (v.id, v)).collect())
}

/// The visits of a visitor on a site.
pub fn stored_of_visitor(conn: &mut Conn, site: &str, visitor: i64) -> Result<Vec<StoredVisit>> {
    conn.rows(
        &format!("{STORED} WHERE site_id = ?1 AND visitor = ?2 ORDER BY id"),
        args![site, visitor],
        stored_from,
    )
}

/// Visits in id order from a point: a walk along the table's own b-tree (`+site_id` keeps the planner
/// off the site's indexes, which would sort every later visit of the site for each page of the walk:
/// quadratic, an hour at ten million events). PostgreSQL has no such hint, nor needs it (its planner
/// weighs the id index against the sort).
pub(crate) const AFTER_IN_ORDER: &str = "WHERE +site_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
const AFTER_IN_ORDER_PG: &str = "WHERE site_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";

/// Every visit of a site after id `after`, at most `limit`, in id order (for counting statistics afresh).
pub fn stored_after(
    conn: &mut Conn,
    site: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredVisit>> {
    let order = match conn.engine() {
        Engine::Sqlite => AFTER_IN_ORDER,
        Engine::Postgres => AFTER_IN_ORDER_PG,
    };
    conn.rows(
        &format!("{STORED} {order}"),
        args![site, after, limit],
        stored_from,
    )
}

/// Where a visit's events lie.
#[derive(Debug, Clone, Copy)]
pub struct EventRange {
    pub visit: i64,
    pub first_event: i64,
    pub last_event: i64,
    pub last_at: i64,
}

pub(crate) const RANGES_OF: &str = "SELECT id, first_event, last_event, last_at FROM visits
     WHERE site_id = ?1 AND visitor = ?2 ORDER BY id";

/// The visits of a visitor on a site, with the id range of their events.
pub fn ranges_of(conn: &mut Conn, site: &str, visitor: i64) -> Result<Vec<EventRange>> {
    conn.rows(RANGES_OF, args![site, visitor], |r| {
        Ok(EventRange {
            visit: r.get(0)?,
            first_event: r.get(1)?,
            last_event: r.get(2)?,
            last_at: r.get(3)?,
        })
    })
}

pub(crate) const DELETE_OF_VISITOR: &str = "DELETE FROM visits WHERE site_id = ?1 AND visitor = ?2";

pub fn delete_of_visitor(conn: &mut Conn, site: &str, visitor: i64) -> Result<usize> {
    conn.execute(DELETE_OF_VISITOR, args![site, visitor])
}

/// Recomputes, from their events, the visits of every event after `watermark` (the events not yet
/// reflected in visit rows when the last writer stopped without writing them). Returns the visits mended.
/// Each visit's events are read in the id range from its first event to its last one after the watermark.
pub fn repair_after(conn: &mut Conn, watermark: i64) -> Result<usize> {
    let visits: Vec<(i64, i64, i64)> = conn.rows(
        "SELECT v.id, v.first_event, late.last_event FROM visits v
         JOIN (SELECT visit_id, MAX(id) AS last_event FROM events WHERE id > ?1 GROUP BY visit_id) AS late
           ON late.visit_id = v.id",
        args![watermark],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (visit, first_event, last_event) in &visits {
        conn.execute(
            "UPDATE visits SET last_at = a.last_at, last_event = a.last_event, pageviews = a.pageviews,
                               events = a.events, engaged_ms = a.engaged_ms,
                               exit_page = COALESCE(a.exit_page, visits.exit_page)
             FROM (SELECT MAX(ts) AS last_at, MAX(id) AS last_event,
                          SUM(CASE WHEN name = 'pageview' THEN 1 ELSE 0 END) AS pageviews,
                          SUM(CASE WHEN name <> 'engagement' THEN 1 ELSE 0 END) AS events,
                          CAST(COALESCE(SUM(engaged_ms), 0) AS BIGINT) AS engaged_ms,
                          (SELECT path FROM events WHERE id BETWEEN ?2 AND ?3 AND visit_id = ?1
                           AND name = 'pageview' ORDER BY id DESC LIMIT 1) AS exit_page
                   FROM events WHERE id BETWEEN ?2 AND ?3 AND visit_id = ?1) AS a
             WHERE visits.id = ?1",
            args![*visit, *first_event, *last_event],
        )?;
    }
    Ok(visits.len())
}

#[derive(Debug, Serialize)]
pub struct VisitExport {
    pub site: String,
    pub started_at: i64,
    pub last_at: i64,
    pub entry_page: String,
    pub exit_page: String,
    pub pageviews: i64,
    pub events: i64,
    pub engaged_ms: i64,
    pub referrer: Option<String>,
    pub source: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_content: Option<String>,
    pub utm_term: Option<String>,
    pub country: Option<String>,
    pub browser: String,
    pub os: String,
    pub device: String,
}

pub fn export_of(conn: &mut Conn, site: &str, visitor: i64) -> Result<Vec<VisitExport>> {
    conn.rows(
        "SELECT started_at, last_at, entry_page, exit_page, pageviews, events, engaged_ms, referrer, source,
                utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, browser, os, device
         FROM visits WHERE site_id = ?1 AND visitor = ?2 ORDER BY id",
        args![site, visitor],
        |r| {
        Ok(VisitExport {
            site: site.to_string(),
            started_at: r.get(0)?,
            last_at: r.get(1)?,
            entry_page: r.get(2)?,
            exit_page: r.get(3)?,
            pageviews: r.get(4)?,
            events: r.get(5)?,
            engaged_ms: r.get(6)?,
            referrer: r.get(7)?,
            source: r.get(8)?,
            utm_source: r.get(9)?,
            utm_medium: r.get(10)?,
            utm_campaign: r.get(11)?,
            utm_content: r.get(12)?,
            utm_term: r.get(13)?,
            country: r.get(14)?,
            browser: r.get(15)?,
            os: r.get(16)?,
            device: r.get(17)?,
        })
        },
    )
}
