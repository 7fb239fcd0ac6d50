//! Visit rows in SQL: opened with their first event, written from the writer's in-memory aggregates, read
//! back for a visitor (export, erasure, the writer's look-up of a visit it no longer holds), and repaired
//! from their events after a crash.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::domain::event::NewEvent;
use crate::domain::stats::dims::VISIT_DIMS;
use crate::domain::visits::{VISIT_TIMEOUT_SECS, VisitState};
use crate::error::Result;

/// Inserts the row of a visit opened by `e`, stored as event `first_event`; returns the visit id.
pub fn insert(conn: &Connection, e: &NewEvent, visitor: i64, first_event: i64) -> Result<i64> {
    let pageview = e.name == "pageview";
    let id = conn
        .prepare_cached(
            "INSERT INTO visits (site_id, visitor, started_at, last_at, entry_page, exit_page, pageviews, events, engaged_ms,
                                 referrer, source, utm_source, utm_medium, utm_campaign, utm_content, utm_term,
                                 country, browser, os, device, screen, first_event, last_event)
             VALUES (?1, ?2, ?3, ?3, ?4, ?4, ?5, 1, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?19, ?18, ?18)
             RETURNING id",
        )?
        .query_row(
            params![
                e.site,
                visitor,
                e.ts,
                e.path,
                pageview as i64,
                e.engaged_ms.unwrap_or(0),
                e.referrer,
                e.source,
                e.utm_source,
                e.utm_medium,
                e.utm_campaign,
                e.utm_content,
                e.utm_term,
                e.country,
                e.browser,
                e.os,
                e.device,
                first_event,
                e.screen,
            ],
            |r| r.get(0),
        )?;
    Ok(id)
}

/// Writes a visit's in-memory aggregates to its row; the exit page is the path of its latest page view.
pub fn write(conn: &Connection, v: &VisitState) -> Result<()> {
    conn.prepare_cached(
        "UPDATE visits SET last_at = ?2, last_event = ?3, pageviews = ?4, events = ?5, engaged_ms = ?6,
                           exit_page = COALESCE((SELECT path FROM events WHERE id = ?7), exit_page)
         WHERE id = ?1",
    )?
    .execute(params![
        v.id,
        v.last_at,
        v.last_event,
        v.pageviews,
        v.events,
        v.engaged_ms,
        v.exit_event
    ])?;
    Ok(())
}

pub(crate) const OPEN_OF: &str =
    "SELECT id FROM visits WHERE site_id = ?1 AND visitor = ?2 AND last_at > ?3
     ORDER BY last_at DESC LIMIT 1";

/// The latest visit of a visitor, if it may still be open at `now`: the writer's look-up of a visit it
/// dropped from memory.
pub fn open_of(
    conn: &Connection,
    site: &str,
    visitor: i64,
    now: i64,
) -> Result<Option<StoredVisit>> {
    let id: Option<i64> = conn
        .prepare_cached(OPEN_OF)?
        .query_row(params![site, visitor, now - VISIT_TIMEOUT_SECS], |r| {
            r.get(0)
        })
        .optional()?;
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

fn stored_from(r: &rusqlite::Row) -> rusqlite::Result<StoredVisit> {
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

pub fn stored(conn: &Connection, id: i64) -> Result<Option<StoredVisit>> {
    Ok(conn
        .prepare_cached(&format!("{STORED} WHERE id = ?1"))?
        .query_row([id], stored_from)
        .optional()?)
}

/// The visits of a visitor on a site.
pub fn stored_of_visitor(conn: &Connection, site: &str, visitor: i64) -> Result<Vec<StoredVisit>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{STORED} WHERE site_id = ?1 AND visitor = ?2 ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![site, visitor], stored_from)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Visits in id order from a point: a walk along the table's own b-tree (`+site_id` keeps the planner
/// off the site's indexes, which would sort every later visit of the site for each page of the walk:
/// quadratic, an hour at ten million events).
pub(crate) const AFTER_IN_ORDER: &str = "WHERE +site_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";

/// Every visit of a site after id `after`, at most `limit`, in id order (for counting statistics afresh).
pub fn stored_after(
    conn: &Connection,
    site: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredVisit>> {
    let mut stmt = conn.prepare_cached(&format!("{STORED} {AFTER_IN_ORDER}"))?;
    let rows = stmt.query_map(params![site, after, limit], stored_from)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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
pub fn ranges_of(conn: &Connection, site: &str, visitor: i64) -> Result<Vec<EventRange>> {
    let mut stmt = conn.prepare_cached(RANGES_OF)?;
    let rows = stmt.query_map(params![site, visitor], |r| {
        Ok(EventRange {
            visit: r.get(0)?,
            first_event: r.get(1)?,
            last_event: r.get(2)?,
            last_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) const DELETE_OF_VISITOR: &str = "DELETE FROM visits WHERE site_id = ?1 AND visitor = ?2";

pub fn delete_of_visitor(conn: &Connection, site: &str, visitor: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached(DELETE_OF_VISITOR)?
        .execute(params![site, visitor])?)
}

/// Recomputes, from their events, the visits of every event after `watermark` (the events not yet
/// reflected in visit rows when the last writer stopped without writing them). Returns the visits mended.
/// Each visit's events are read in the id range from its first event to its last one after the watermark.
pub fn repair_after(conn: &Connection, watermark: i64) -> Result<usize> {
    let visits: Vec<(i64, i64, i64)> = conn
        .prepare(
            "SELECT v.id, v.first_event, late.last_event FROM visits v
             JOIN (SELECT visit_id, MAX(id) AS last_event FROM events WHERE id > ?1 GROUP BY visit_id) AS late
               ON late.visit_id = v.id",
        )?
        .query_map([watermark], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (visit, first_event, last_event) in &visits {
        conn.execute(
            "UPDATE visits SET last_at = a.last_at, last_event = a.last_event, pageviews = a.pageviews,
                               events = a.events, engaged_ms = a.engaged_ms,
                               exit_page = COALESCE(a.exit_page, visits.exit_page)
             FROM (SELECT MAX(ts) AS last_at, MAX(id) AS last_event, SUM(name = 'pageview') AS pageviews,
                          SUM(name <> 'engagement') AS events, COALESCE(SUM(engaged_ms), 0) AS engaged_ms,
                          (SELECT path FROM events WHERE id BETWEEN ?2 AND ?3 AND visit_id = ?1
                           AND name = 'pageview' ORDER BY id DESC LIMIT 1) AS exit_page
                   FROM events WHERE id BETWEEN ?2 AND ?3 AND visit_id = ?1) AS a
             WHERE visits.id = ?1",
            params![visit, first_event, last_event],
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

pub fn export_of(conn: &Connection, site: &str, visitor: i64) -> Result<Vec<VisitExport>> {
    let mut stmt = conn.prepare_cached(
        "SELECT started_at, last_at, entry_page, exit_page, pageviews, events, engaged_ms, referrer, source,
                utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, browser, os, device
         FROM visits WHERE site_id = ?1 AND visitor = ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![site, visitor], |r| {
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
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
