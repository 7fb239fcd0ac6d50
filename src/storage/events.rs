//! Events and visits in SQL: insertion (a visit row is opened or extended with each event), the
//! per-visitor export, erasure by visitor key and deletion by age.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::domain::event::NewEvent;
use crate::domain::visits::{OpenVisit, VisitState};
use crate::error::Result;

pub fn open_visit(conn: &Connection, e: &NewEvent) -> Result<i64> {
    let pageview = e.name == "pageview";
    let id = conn
        .prepare_cached(
            "INSERT INTO visits (site_id, visitor, started_at, last_at, entry_page, exit_page, pageviews, events, engaged_ms,
                                 referrer, source, utm_source, utm_medium, utm_campaign, utm_content, utm_term,
                                 country, browser, os, device)
             VALUES (?1, ?2, ?3, ?3, ?4, ?4, ?5, 1, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             RETURNING id",
        )?
        .query_row(
            params![
                e.site,
                e.visitor,
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
                e.device
            ],
            |r| r.get(0),
        )?;
    Ok(id)
}

/// Writes a visit's in-memory aggregates to its row.
pub fn flush_visit(conn: &Connection, v: &VisitState) -> Result<()> {
    conn.prepare_cached(
        "UPDATE visits SET last_at = ?2, exit_page = ?3, pageviews = ?4, events = ?5, engaged_ms = ?6 WHERE id = ?1",
    )?
    .execute(params![v.open.id, v.open.last_at, v.exit_page, v.pageviews, v.events, v.engaged_ms])?;
    Ok(())
}

/// Recomputes the aggregates of visits started after `since` from their events: after a crash, a visit
/// row may lag the events the writer had not yet folded into it. One pass over each site's recent events.
pub fn repair_visits(conn: &Connection, since: i64) -> Result<usize> {
    let sites: Vec<String> = conn
        .prepare("SELECT DISTINCT site_id FROM visits WHERE started_at >= ?1")?
        .query_map([since], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut repaired = 0;
    for site in sites {
        repaired += conn.execute(
            "UPDATE visits SET last_at = a.last_at, pageviews = a.pageviews, events = a.events,
                               engaged_ms = a.engaged_ms, exit_page = COALESCE(a.exit_page, visits.exit_page)
             FROM (SELECT visit_id, MAX(ts) AS last_at, SUM(name = 'pageview') AS pageviews, COUNT(*) AS events,
                          COALESCE(SUM(engaged_ms), 0) AS engaged_ms,
                          substr(MAX(CASE WHEN name = 'pageview' THEN printf('%020d', id) || path END), 21) AS exit_page
                   FROM events WHERE site_id = ?1 AND ts >= ?2 GROUP BY visit_id) AS a
             WHERE visits.id = a.visit_id AND visits.site_id = ?1 AND visits.started_at >= ?2",
            params![site, since],
        )?;
    }
    Ok(repaired)
}

/// How far an event's time may lie outside its visit's recorded span (server clock steps).
const SPAN_SLACK_SECS: i64 = 3600;

pub fn insert_event(conn: &Connection, visit_id: i64, e: &NewEvent) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (site_id, visit_id, visitor, ts, name, path, props, engaged_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        e.site,
        visit_id,
        e.visitor,
        e.ts,
        e.name,
        e.path,
        e.props,
        e.engaged_ms
    ])?;
    Ok(())
}

/// Visits still open at `since` (last event after it), to resume visit tracking after a restart.
pub fn load_open_visits(
    conn: &Connection,
    since: i64,
) -> Result<HashMap<(String, i64), VisitState>> {
    let mut stmt = conn.prepare(
        "SELECT site_id, visitor, id, last_at, exit_page, pageviews, events, engaged_ms FROM visits WHERE last_at > ?1",
    )?;
    let rows = stmt.query_map([since], |r| {
        Ok((
            (r.get(0)?, r.get(1)?),
            VisitState {
                open: OpenVisit {
                    id: r.get(2)?,
                    last_at: r.get(3)?,
                },
                exit_page: r.get(4)?,
                pageviews: r.get(5)?,
                events: r.get(6)?,
                engaged_ms: r.get(7)?,
                dirty: false,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<HashMap<_, _>>>()?)
}

#[derive(Debug, Serialize)]
pub struct EventExport {
    pub site: String,
    pub ts: i64,
    pub name: String,
    pub path: String,
    pub props: Option<serde_json::Value>,
    pub engaged_ms: Option<i64>,
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

pub fn events_of(conn: &Connection, site: &str, visitor: i64) -> Result<Vec<EventExport>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.ts, e.name, e.path, e.props, e.engaged_ms FROM visits v
         JOIN events e ON e.site_id = v.site_id AND e.ts BETWEEN v.started_at - ?3 AND v.last_at + ?3 AND e.visit_id = v.id
         WHERE v.site_id = ?1 AND v.visitor = ?2 ORDER BY e.id",
    )?;
    let rows = stmt.query_map(params![site, visitor, SPAN_SLACK_SECS], |r| {
        let props: Option<String> = r.get(3)?;
        Ok(EventExport {
            site: site.to_string(),
            ts: r.get(0)?,
            name: r.get(1)?,
            path: r.get(2)?,
            props: props.and_then(|p| serde_json::from_str(&p).ok()),
            engaged_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn visits_of(conn: &Connection, site: &str, visitor: i64) -> Result<Vec<VisitExport>> {
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

/// Deletes a visitor's events and visits on one site; returns (events, visits) deleted.
pub fn erase_visitor(conn: &Connection, site: &str, visitor: i64) -> Result<(usize, usize)> {
    let e = conn.execute(
        "DELETE FROM events WHERE site_id = ?1 AND visitor = ?2",
        params![site, visitor],
    )?;
    let v = conn.execute(
        "DELETE FROM visits WHERE site_id = ?1 AND visitor = ?2",
        params![site, visitor],
    )?;
    Ok((e, v))
}
