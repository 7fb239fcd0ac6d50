//! What the statistics engine reads: rollup rows with their visitor numbers, and visits with their events
//! for what rollups cannot answer. Implements the engine's [`Source`] over a read-only connection.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use crate::domain::event::stored_pairs;
use crate::domain::stats::contribution::kind_of;
use crate::domain::stats::dims::{PROP_SEPARATOR, VISIT_DIMS};
use crate::domain::stats::engine::Source;
use crate::domain::stats::facts::{EventFact, Facts, VisitFact};
use crate::domain::stats::results::Acc;
use crate::domain::stats::rollups::RollupRow;
use crate::domain::stats::visitors;
use crate::error::{Error, Result};

pub struct SqlSource<'a> {
    pub conn: &'a Connection,
}

impl SqlSource<'_> {
    fn salt(&self, site: &str) -> Result<u64> {
        let secret: Vec<u8> = self
            .conn
            .prepare_cached("SELECT secret FROM sites WHERE id = ?1")?
            .query_row([site], |r| r.get(0))
            .map_err(|_| Error::NotFound(format!("unknown site {site:?}")))?;
        Ok(visitors::salt_of(&secret))
    }
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
        let mut numbers: HashMap<(i32, String), Vec<u32>> = HashMap::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT day, value, numbers FROM rollup_visitors
                 WHERE site_id = ?1 AND dim = ?2 AND day BETWEEN ?3 AND ?4 AND value >= ?5 AND value < ?6",
            )?;
            let mut rows = stmt.query(params![site, code, first_day, last_day, low, high])?;
            while let Some(r) = rows.next()? {
                let key = (r.get::<_, i32>(0)?, r.get::<_, String>(1)?);
                let bytes = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
                visitors::decode_into(bytes, numbers.entry(key).or_default());
            }
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT day, value, visits, pageviews, events, bounces, duration, engaged_ms FROM rollups
             WHERE site_id = ?1 AND dim = ?2 AND day BETWEEN ?3 AND ?4 AND value >= ?5 AND value < ?6",
        )?;
        let rows = stmt.query_map(params![site, code, first_day, last_day, low, high], |r| {
            Ok((
                r.get::<_, i32>(0)?,
                r.get::<_, String>(1)?,
                Acc {
                    visits: r.get::<_, i64>(2)?.max(0) as u64,
                    pageviews: r.get::<_, i64>(3)?.max(0) as u64,
                    events: r.get::<_, i64>(4)?.max(0) as u64,
                    bounces: r.get::<_, i64>(5)?.max(0) as u64,
                    duration: r.get::<_, i64>(6)?.max(0) as u64,
                    engaged_ms: r.get::<_, i64>(7)?.max(0) as u64,
                    visitors: Vec::new(),
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (day, value, mut acc) = row?;
            acc.visitors = numbers.remove(&(day, value.clone())).unwrap_or_default();
            out.push(RollupRow {
                day,
                dim: code,
                value,
                acc,
            });
        }
        Ok(out)
    }

    fn facts(&self, site: &str, from: i64, to: i64, with_events: bool) -> Result<Facts> {
        let salt = self.salt(site)?;
        let mut facts = Facts::default();
        let mut by_visit: HashMap<i64, usize> = HashMap::new();
        let (mut low, mut high) = (i64::MAX, i64::MIN);
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, started_at, visitor, pageviews, events, engaged_ms, last_at, first_event, last_event,
                        COALESCE(source, ''), COALESCE(referrer, ''), COALESCE(utm_source, ''),
                        COALESCE(utm_medium, ''), COALESCE(utm_campaign, ''), COALESCE(utm_content, ''),
                        COALESCE(utm_term, ''), COALESCE(country, ''), browser, os, device, screen,
                        entry_page, exit_page
                 FROM visits WHERE site_id = ?1 AND started_at >= ?2 AND started_at < ?3 ORDER BY id",
            )?;
            let mut rows = stmt.query(params![site, from, to])?;
            while let Some(r) = rows.next()? {
                let mut dims = [0u32; VISIT_DIMS.len()];
                for (i, d) in dims.iter_mut().enumerate() {
                    let s = r.get_ref(9 + i)?.as_str().map_err(rusqlite::Error::from)?;
                    *d = facts.intern(s);
                }
                let (started, engaged, last_at): (i64, i64, i64) =
                    (r.get(1)?, r.get(5)?, r.get(6)?);
                let (first_event, last_event): (i64, i64) = (r.get(7)?, r.get(8)?);
                low = low.min(first_event);
                high = high.max(last_event);
                by_visit.insert(r.get(0)?, facts.visits.len());
                facts.visits.push(VisitFact {
                    start: started,
                    visitor: visitors::number(salt, r.get(2)?),
                    dims,
                    pageviews: r.get::<_, i64>(3)?.max(0) as u64,
                    events: r.get::<_, i64>(4)?.max(0) as u64,
                    duration: crate::domain::stats::contribution::duration(
                        engaged, started, last_at,
                    )
                    .max(0) as u64,
                    first: 0,
                    len: 0,
                });
            }
        }
        if !with_events || facts.visits.is_empty() {
            return Ok(facts);
        }
        let mut per_visit: Vec<Vec<EventFact>> = vec![Vec::new(); facts.visits.len()];
        let mut stmt = self.conn.prepare_cached(
            "SELECT visit_id, name, path, props, COALESCE(engaged_ms, 0) FROM events
             WHERE id BETWEEN ?1 AND ?2 ORDER BY id",
        )?;
        let mut rows = stmt.query(params![low, high])?;
        while let Some(r) = rows.next()? {
            let Some(&i) = by_visit.get(&r.get::<_, i64>(0)?) else {
                continue;
            };
            let name = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            let kind = kind_of(name);
            let name = facts.intern(name);
            let page = facts.intern(r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?);
            let props: Option<String> = r.get(3)?;
            let props = stored_pairs(props.as_deref())
                .into_iter()
                .map(|(k, v)| (facts.intern(&k), facts.intern(&v)))
                .collect();
            per_visit[i].push(EventFact {
                kind,
                name,
                page,
                props,
                engaged_ms: r.get::<_, i64>(4)?.max(0) as u64,
            });
        }
        for (i, events) in per_visit.into_iter().enumerate() {
            facts.visits[i].first = facts.events.len();
            facts.visits[i].len = events.len();
            facts.events.extend(events);
        }
        Ok(facts)
    }
}
