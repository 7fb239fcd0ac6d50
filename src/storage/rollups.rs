//! Daily rollups in SQL: the writer's gathered changes applied to their rows (counts added in place,
//! visitor numbers merged into chunked multisets), retention and site removal, and counting a site's
//! rollups afresh from its rows (after a time zone change, or for data older than the rollups).

use crate::args;
use crate::domain::stats::contribution::{self, Deltas, Figures, Key, VisitKey};
use crate::domain::stats::dims::{self, VISIT_DIMS};
use crate::domain::stats::period::Zone;
use crate::domain::stats::visitors;
use crate::error::Result;
use crate::storage::groups::{GroupedSql, groups, values_list};
use crate::storage::sql::Conn;
use crate::storage::{events, visits};

/// Largest encoded chunk of visitor numbers: a row's numbers are stored in pieces that each fill most of
/// a database page (4 KiB), so a busy day's totals do not rewrite every number with every change and no
/// piece spills onto overflow pages.
const CHUNK_BYTES: usize = 3900;

/// Splits a sorted multiset into pieces whose encoding fits [`CHUNK_BYTES`].
fn pieces(set: &[u32]) -> Vec<&[u32]> {
    let mut out = Vec::new();
    let (mut start, mut bytes, mut prev) = (0, 0, 0u32);
    for (i, &n) in set.iter().enumerate() {
        let gap = n - prev;
        let len = match gap {
            0..0x80 => 1,
            0x80..0x4000 => 2,
            0x4000..0x20_0000 => 3,
            0x20_0000..0x1000_0000 => 4,
            _ => 5,
        };
        if bytes + len > CHUNK_BYTES {
            out.push(&set[start..i]);
            start = i;
            // A piece starts from zero: its first number is encoded whole.
            bytes = 5;
        } else {
            bytes += len;
        }
        prev = n;
    }
    out.push(&set[start..]);
    out
}

/// Every rollup code in use.
fn codes() -> impl Iterator<Item = u16> {
    [dims::TOTAL, dims::PAGE, dims::NAME, dims::PROP]
        .into_iter()
        .chain((1..=VISIT_DIMS.len()).map(|i| i as u16))
}

/// A rollup row's key as the database returns it.
type RowKey = (String, u16, i32, String);

fn row_key(key: &Key) -> RowKey {
    (key.site.clone(), key.dim, key.day, key.value.clone())
}

/// Applies gathered changes, a group of rows per statement: each statement is a round trip to
/// PostgreSQL, and the writer applies a batch's changes on every transaction there.
pub fn apply(conn: &mut Conn, deltas: &Deltas) -> Result<()> {
    let mut rows: Vec<(&Key, contribution::Delta)> = deltas
        .rows
        .iter()
        .map(|(key, d)| {
            let mut d = d.clone();
            d.settle();
            (key, d)
        })
        .filter(|(_, d)| !d.is_noop())
        .collect();
    // In key order, so that neighbouring rows share pages.
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let mut emptied = Vec::new();
    for group in groups(&rows) {
        emptied.extend(add_counts(conn, group)?);
    }
    let adding: Vec<(&Key, &[u32])> = rows
        .iter()
        .filter(|(_, d)| !d.add.is_empty())
        .map(|(key, d)| (*key, d.add.as_slice()))
        .collect();
    for group in groups(&adding) {
        add_numbers(conn, group)?;
    }
    for (key, d) in &rows {
        if !d.remove.is_empty() {
            remove_numbers(conn, key, d.remove.clone())?;
        }
    }
    for (site, dim, day, value) in emptied {
        conn.execute(
            "DELETE FROM rollups WHERE site_id = ?1 AND dim = ?2 AND day = ?3 AND value = ?4",
            args![&site, dim, day, &value],
        )?;
    }
    Ok(())
}

static ADD_COUNTS: GroupedSql = GroupedSql::new(|rows| {
    format!(
        "INSERT INTO rollups (site_id, dim, day, value, visits, pageviews, events, bounces, duration, engaged_ms)
         VALUES {}
         ON CONFLICT (site_id, dim, day, value) DO UPDATE SET
           visits = rollups.visits + excluded.visits, pageviews = rollups.pageviews + excluded.pageviews,
           events = rollups.events + excluded.events, bounces = rollups.bounces + excluded.bounces,
           duration = rollups.duration + excluded.duration,
           engaged_ms = rollups.engaged_ms + excluded.engaged_ms
         RETURNING site_id, dim, day, value, visits, pageviews, events, bounces, duration, engaged_ms",
        values_list(rows, 10, None)
    )
});

static PUT_NUMBERS: GroupedSql = GroupedSql::new(|rows| {
    format!(
        "INSERT INTO rollup_visitors (site_id, dim, day, value, chunk, numbers) VALUES {}
         ON CONFLICT (site_id, dim, day, value, chunk) DO UPDATE SET numbers = excluded.numbers",
        values_list(rows, 6, None)
    )
});

/// Adds a group's counts to their rows (created as needed); returns the keys of rows left at zero, which
/// are deleted once their visitor numbers are settled.
fn add_counts(conn: &mut Conn, group: &[(&Key, contribution::Delta)]) -> Result<Vec<RowKey>> {
    let sql = ADD_COUNTS.text(group.len());
    let mut values = Vec::with_capacity(group.len() * 10);
    for (key, d) in group {
        values.extend_from_slice(args![
            &key.site,
            key.dim,
            key.day,
            &key.value,
            d.visits,
            d.pageviews,
            d.events,
            d.bounces,
            d.duration,
            d.engaged_ms
        ]);
    }
    let returned = conn.rows(&sql, &values, |r| {
        let key: RowKey = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let mut left = 0i64;
        for i in 4..10 {
            left |= r.get::<i64>(i)?;
        }
        Ok((key, left))
    })?;
    Ok(returned
        .into_iter()
        .filter(|(_, left)| *left == 0)
        .map(|(key, _)| key)
        .collect())
}

fn write_chunk(conn: &mut Conn, key: &Key, chunk: i64, numbers: &[u32]) -> Result<()> {
    if numbers.is_empty() {
        conn.execute(
            "DELETE FROM rollup_visitors WHERE site_id = ?1 AND dim = ?2 AND day = ?3 AND value = ?4 AND chunk = ?5",
            args![&key.site, key.dim, key.day, &key.value, chunk],
        )?;
    } else {
        conn.execute(
            "INSERT INTO rollup_visitors (site_id, dim, day, value, chunk, numbers) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (site_id, dim, day, value, chunk) DO UPDATE SET numbers = excluded.numbers",
            args![&key.site, key.dim, key.day, &key.value, chunk, &visitors::encode(numbers)],
        )?;
    }
    Ok(())
}

/// Adds numbers to each row's last chunk, starting new chunks as it fills: one statement reads the
/// group's last chunks, one writes every chunk that changed.
fn add_numbers(conn: &mut Conn, group: &[(&Key, &[u32])]) -> Result<()> {
    let wanted: Vec<String> = (0..group.len())
        .map(|i| {
            let p = i * 4;
            format!(
                "(site_id = ?{} AND dim = ?{} AND day = ?{} AND value = ?{})",
                p + 1,
                p + 2,
                p + 3,
                p + 4
            )
        })
        .collect();
    let sql = format!(
        "SELECT site_id, dim, day, value, chunk, numbers FROM rollup_visitors AS r
         WHERE ({})
           AND chunk = (SELECT MAX(chunk) FROM rollup_visitors AS m
                        WHERE m.site_id = r.site_id AND m.dim = r.dim AND m.day = r.day AND m.value = r.value)",
        wanted.join(" OR ")
    );
    let mut keys = Vec::with_capacity(group.len() * 4);
    for (key, _) in group {
        keys.extend_from_slice(args![&key.site, key.dim, key.day, &key.value]);
    }
    let last: std::collections::HashMap<RowKey, (i64, Vec<u8>)> = conn
        .rows(&sql, &keys, |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
                (r.get(4)?, r.get(5)?),
            ))
        })?
        .into_iter()
        .collect();
    // (key, chunk, encoded numbers) of every chunk to write.
    let mut writes: Vec<(&Key, i64, Vec<u8>)> = Vec::new();
    for (key, add) in group {
        let (mut chunk, mut set) = match last.get(&row_key(key)) {
            Some((c, bytes)) => (*c, visitors::decode(bytes)),
            None => (0, Vec::new()),
        };
        set.extend_from_slice(add);
        set.sort_unstable();
        for piece in pieces(&set) {
            writes.push((key, chunk, visitors::encode(piece)));
            chunk += 1;
        }
    }
    for part in groups(&writes) {
        let sql = PUT_NUMBERS.text(part.len());
        let mut values = Vec::with_capacity(part.len() * 6);
        for (key, chunk, numbers) in part {
            values.extend_from_slice(args![
                &key.site,
                key.dim,
                key.day,
                &key.value,
                *chunk,
                numbers.as_slice()
            ]);
        }
        conn.execute(&sql, &values)?;
    }
    Ok(())
}

/// Takes one occurrence of each number out of a row's chunks, newest first (a visit's entries were
/// mostly added recently).
fn remove_numbers(conn: &mut Conn, key: &Key, mut gone: Vec<u32>) -> Result<()> {
    let chunks: Vec<(i64, Vec<u8>)> = conn.rows(
        "SELECT chunk, numbers FROM rollup_visitors WHERE site_id = ?1 AND dim = ?2 AND day = ?3 AND value = ?4
         ORDER BY chunk DESC",
        args![&key.site, key.dim, key.day, &key.value],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (chunk, bytes) in chunks {
        if gone.is_empty() {
            break;
        }
        let mut set = visitors::decode(&bytes);
        let before = set.len();
        let mut still = Vec::new();
        for g in gone {
            if visitors::remove_each(&mut set, &[g]) == 0 {
                still.push(g);
            }
        }
        gone = still;
        if set.len() != before {
            write_chunk(conn, key, chunk, &set)?;
        }
    }
    Ok(())
}

/// Deletes a site's rollups of local days up to `last_day` (retention).
pub fn delete_through(conn: &mut Conn, site: &str, last_day: i32) -> Result<()> {
    for code in codes() {
        for table in ["rollups", "rollup_visitors"] {
            conn.execute(
                &format!("DELETE FROM {table} WHERE site_id = ?1 AND dim = ?2 AND day <= ?3"),
                args![site, code, last_day],
            )?;
        }
    }
    Ok(())
}

/// Deletes every rollup of a site (removal, or before counting afresh).
pub fn delete_site(conn: &mut Conn, site: &str) -> Result<()> {
    for table in ["rollups", "rollup_visitors", "rollup_zones"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE site_id = ?1"),
            args![site],
        )?;
    }
    Ok(())
}

/// The time zone a site's rollups were counted in (None: never counted).
pub fn zone_of(conn: &mut Conn, site: &str) -> Result<Option<String>> {
    conn.row(
        "SELECT timezone FROM rollup_zones WHERE site_id = ?1",
        args![site],
        |r| r.get(0),
    )
}

/// The rollup key and figures of a stored visit.
pub fn visit_key<'a>(v: &'a visits::StoredVisit, zone: Zone, salt: u64) -> (VisitKey<'a>, Figures) {
    let mut dims_: [&str; VISIT_DIMS.len()] = [""; VISIT_DIMS.len()];
    for (i, d) in v.dims.iter().enumerate() {
        dims_[i] = d;
    }
    (
        VisitKey {
            site: &v.site,
            day: zone.day(v.started_at),
            visitor: visitors::number(salt, v.visitor),
            dims: dims_,
        },
        Figures {
            pageviews: v.pageviews,
            events: v.events,
            duration: contribution::duration(v.engaged_ms, v.started_at, v.last_at),
        },
    )
}

/// Counts a site's rollups afresh from its visits and events, in the given time zone. Returns the visits
/// counted.
pub fn rebuild(
    conn: &mut Conn,
    site: &str,
    zone: Zone,
    timezone: &str,
    salt: u64,
) -> Result<usize> {
    delete_site(conn, site)?;
    let (mut after, mut counted) = (0, 0);
    loop {
        let batch = visits::stored_after(conn, site, after, 2000)?;
        let Some(last) = batch.last() else {
            break;
        };
        after = last.id;
        let mut deltas = Deltas::default();
        for v in &batch {
            let events = events::of_visit(conn, v.id, v.first_event, v.last_event)?;
            let refs: Vec<_> = events.iter().map(|e| e.as_ref()).collect();
            let (key, figures) = visit_key(v, zone, salt);
            contribution::whole_visit(&mut deltas, &key, figures, &refs, 1);
        }
        counted += batch.len();
        apply(conn, &deltas)?;
    }
    conn.execute(
        "INSERT INTO rollup_zones (site_id, timezone) VALUES (?1, ?2)
         ON CONFLICT (site_id) DO UPDATE SET timezone = excluded.timezone",
        args![site, timezone],
    )?;
    Ok(counted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_fit_a_page_and_keep_every_number() {
        let set: Vec<u32> = (0..20_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let mut set = set;
        set.sort_unstable();
        let parts = pieces(&set);
        assert!(parts.len() > 1);
        assert!(
            parts
                .iter()
                .all(|p| visitors::encode(p).len() <= CHUNK_BYTES)
        );
        assert_eq!(parts.concat(), set);
        assert_eq!(pieces(&[]).len(), 1);
    }
}
