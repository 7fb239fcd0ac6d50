//! Events in SQL. The table is append-only with one index, on (site, time), which grows at its end; a
//! visit's events are found by the id range its row records (see `migrations/0002_visit_event_ranges.sql`).

use serde::Serialize;

use crate::args;
use crate::domain::event::{NewEvent, stored_pairs};
use crate::domain::stats::contribution::{self, EventRef};
use crate::error::Result;
use crate::storage::groups::{GroupedSql, by_ids, groups, values_list};
use crate::storage::sql::Conn;

/// The highest event id in use (0 for none).
pub fn max_id(conn: &mut Conn) -> Result<i64> {
    conn.value("SELECT COALESCE(MAX(id), 0) FROM events", &[])
}

/// The id the next event gets: above every id in use and above the watermark of rows written, so that an
/// id freed by erasure or retention is never used again (events after the watermark are the ones a
/// restart after a crash recounts). One statement: on PostgreSQL each is a round trip, and every writer
/// transaction asks.
pub fn next_id(conn: &mut Conn) -> Result<i64> {
    conn.value(
        "SELECT CASE WHEN used > written THEN used ELSE written END + 1
         FROM (SELECT COALESCE((SELECT MAX(id) FROM events), 0) AS used,
                      (SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'flushed_event') AS written) AS ids",
        &[],
    )
}

/// An event to append: its id, its visit's id, the event.
pub type NewRow<'a> = (i64, i64, &'a NewEvent);

static INSERT: GroupedSql = GroupedSql::new(|rows| {
    format!(
        "INSERT INTO events (id, site_id, visit_id, ts, name, path, props, engaged_ms) VALUES {}",
        values_list(rows, 8, None)
    )
});

/// Appends events with the ids the writer gave them, a group per statement (see `storage::groups`).
pub fn insert_all(conn: &mut Conn, rows: &[NewRow]) -> Result<()> {
    for group in groups(rows) {
        let sql = INSERT.text(group.len());
        let mut values = Vec::with_capacity(group.len() * 8);
        for &(id, visit_id, e) in group {
            values.extend_from_slice(args![
                id,
                &e.site,
                visit_id,
                e.ts,
                &e.name,
                &e.path,
                &e.props,
                e.engaged_ms
            ]);
        }
        conn.execute(&sql, &values)?;
    }
    Ok(())
}

/// Appends an event with the id the writer gave it.
pub fn insert(conn: &mut Conn, id: i64, visit_id: i64, e: &NewEvent) -> Result<()> {
    insert_all(conn, &[(id, visit_id, e)])
}

pub(crate) const DELETE_OF_VISIT: &str =
    "DELETE FROM events WHERE id BETWEEN ?2 AND ?3 AND visit_id = ?1";

/// Deletes a visit's events, which lie between `first` and `last` (event ids).
pub fn delete_of_visit(conn: &mut Conn, visit: i64, first: i64, last: i64) -> Result<usize> {
    conn.execute(DELETE_OF_VISIT, args![visit, first, last])
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

pub(crate) const EXPORT_OF_VISIT: &str = "SELECT ts, name, path, props, engaged_ms FROM events
     WHERE id BETWEEN ?2 AND ?3 AND visit_id = ?1 ORDER BY id";

/// A visit's events, which lie between `first` and `last` (event ids).
pub fn export_of_visit(
    conn: &mut Conn,
    site: &str,
    visit: i64,
    first: i64,
    last: i64,
) -> Result<Vec<EventExport>> {
    conn.rows(EXPORT_OF_VISIT, args![visit, first, last], |r| {
        let props: Option<String> = r.get(3)?;
        Ok(EventExport {
            site: site.to_string(),
            ts: r.get(0)?,
            name: r.get(1)?,
            path: r.get(2)?,
            props: props.and_then(|p| serde_json::from_str(&p).ok()),
            engaged_ms: r.get(4)?,
        })
    })
}

/// An event as the statistics read it back.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: i64,
    pub ts: i64,
    pub name: String,
    pub path: String,
    pub props: Vec<(String, String)>,
    pub engaged_ms: i64,
}

impl StoredEvent {
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            kind: contribution::kind_of(&self.name),
            name: &self.name,
            page: &self.path,
            props: &self.props,
            engaged_ms: self.engaged_ms,
        }
    }
}

/// A visit's events, which lie between `first` and `last` (event ids), in order.
pub fn of_visit(conn: &mut Conn, visit: i64, first: i64, last: i64) -> Result<Vec<StoredEvent>> {
    conn.rows(
        "SELECT id, ts, name, path, props, COALESCE(engaged_ms, 0) FROM events
         WHERE id BETWEEN ?2 AND ?3 AND visit_id = ?1 ORDER BY id",
        args![visit, first, last],
        |r| {
            let props: Option<String> = r.get(4)?;
            Ok(StoredEvent {
                id: r.get(0)?,
                ts: r.get(1)?,
                name: r.get(2)?,
                path: r.get(3)?,
                props: stored_pairs(props.as_deref()),
                engaged_ms: r.get(5)?,
            })
        },
    )
}

/// The paths of several events by id, a group per statement (see `storage::groups`); ids without a row
/// are left out.
pub fn paths_of(conn: &mut Conn, ids: &[i64]) -> Result<std::collections::HashMap<i64, String>> {
    let rows = by_ids(conn, "SELECT id, path FROM events", ids, |r| {
        Ok((r.get::<i64>(0)?, r.get::<String>(1)?))
    })?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use crate::storage::sql::Conn;

    /// The next id is above both the highest id in use and the watermark, and stays there when the
    /// events above the watermark are deleted: an erased id is never handed out again.
    #[test]
    fn the_next_id_is_above_ids_in_use_and_the_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = crate::storage::db::open_and_migrate(&dir.path().join("ids.db")).unwrap();
        let mut conn = Conn::Lite(&mut db);
        let watermark = |conn: &mut Conn, value: i64| {
            conn.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'flushed_event'",
                crate::args![&value.to_string()],
            )
            .unwrap();
        };
        watermark(&mut conn, 0);
        assert_eq!(super::next_id(&mut conn).unwrap(), 1);
        conn.batch(
            "INSERT INTO events (id, site_id, visit_id, ts, name, path) VALUES (7, 's', 1, 0, 'pageview', '/')",
        )
        .unwrap();
        assert_eq!(super::next_id(&mut conn).unwrap(), 8);
        watermark(&mut conn, 12);
        assert_eq!(super::next_id(&mut conn).unwrap(), 13);
        conn.batch("DELETE FROM events").unwrap();
        assert_eq!(super::next_id(&mut conn).unwrap(), 13);
        watermark(&mut conn, 3);
        conn.batch(
            "INSERT INTO events (id, site_id, visit_id, ts, name, path) VALUES (20, 's', 1, 0, 'pageview', '/')",
        )
        .unwrap();
        assert_eq!(super::next_id(&mut conn).unwrap(), 21);
    }
}
