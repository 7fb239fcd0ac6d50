//! "Deleted means gone" inside live pages (privacy invariant 6): zeroes the unused space of b-tree pages,
//! the one place `secure_delete` does not reach.
//!
//! With `secure_delete`, SQLite zeroes a deleted cell where it lies and every page it frees. But when it
//! rebalances a page (on inserts and on deletes) it rebuilds the page's cells from a copy and leaves the old
//! bytes in the gap between the cell pointers and the cell content; a record deleted later can survive there
//! as a stale copy. A VACUUM rewrites every page and removes them, but it holds the write lock for as long
//! as it takes to copy the whole file (seconds per hundred megabytes), stalling ingestion. The scrub does
//! the same for these copies in small steps instead:
//!
//! 1. a plan, on a read connection (no lock held against the writer): the b-tree pages, from `dbstat`, whose
//!    unused space holds any non-zero byte, read from `sqlite_dbpage`, each with a hash of the whole page;
//! 2. the pages zeroed in chunks, each chunk inside a writer transaction among the other writes: a page is
//!    rewritten (through `sqlite_dbpage`, so through the pager, the log and the transaction) only if its
//!    bytes still hash as planned. A page that changed since the plan is not trusted to still be a b-tree
//!    page (it may have been freed and reused for overflow content), so it is planned again;
//! 3. the write-ahead log checkpointed and truncated, so no old page image stays in it.
//!
//! Only the gap and the bodies of free blocks are zeroed: bytes SQLite never reads, so the page means the
//! same before and after. Fragments (runs of at most 3 free bytes between cells) are not tracked by the
//! page format and stay as they are.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::ops::Range;
use std::sync::OnceLock;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::Result;
use crate::storage::db;

/// Pages zeroed per writer job: a few milliseconds of the writer's time, so ingestion is not held up.
pub const CHUNK: usize = 256;

/// Plans made in one run before what still changes under it is left to the next run.
pub const ROUNDS: usize = 4;

/// A b-tree page whose unused space held bytes when the plan read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirtyPage {
    pub number: u32,
    hash: u64,
}

/// What zeroing a chunk did.
#[derive(Debug, Default)]
pub struct Applied {
    pub scrubbed: usize,
    /// Pages that changed since their plan: planned again.
    pub changed: Vec<u32>,
}

/// What a whole scrub did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScrubReport {
    pub scrubbed: usize,
    /// Pages still changing under the last plan, left to the next run.
    pub left: usize,
}

/// Hashes pages with a key chosen at random per process, so page contents cannot be crafted to collide.
fn page_hash(page: &[u8]) -> u64 {
    static KEY: OnceLock<foldhash::quality::RandomState> = OnceLock::new();
    KEY.get_or_init(Default::default).hash_one(page)
}

fn be16(page: &[u8], at: usize) -> usize {
    u16::from_be_bytes([page[at], page[at + 1]]) as usize
}

/// The ranges of a b-tree page that hold no cell: the gap between the cell pointer array and the cell
/// content area, and the free blocks' bodies (after their 4-byte link). None when the page does not parse
/// as a b-tree page of a sane layout, which the scrub then leaves alone.
fn unused_ranges(page: &[u8], number: u32, usable: usize) -> Option<Vec<Range<usize>>> {
    // Page 1 starts with the 100-byte file header.
    let header_at = if number == 1 { 100 } else { 0 };
    let header_len = match *page.get(header_at)? {
        2 | 5 => 12,
        10 | 13 => 8,
        _ => return None,
    };
    if usable > page.len() || header_at + header_len > usable {
        return None;
    }
    let cells = be16(page, header_at + 3);
    let content = match be16(page, header_at + 5) {
        0 => 65_536,
        n => n,
    };
    let gap_start = header_at + header_len + 2 * cells;
    if gap_start > content || content > usable {
        return None;
    }
    let mut ranges = Vec::with_capacity(4);
    ranges.push(gap_start..content);
    // Free blocks lie in the content area, in increasing order; a chain that does not is left alone.
    let mut block = be16(page, header_at + 1);
    let mut floor = content;
    while block != 0 {
        if block < floor || block + 4 > usable {
            return None;
        }
        let size = be16(page, block + 2);
        if size < 4 || block + size > usable {
            return None;
        }
        ranges.push(block + 4..block + size);
        floor = block + size;
        block = be16(page, block);
    }
    Some(ranges)
}

/// The page with its unused space zeroed, or None when there is nothing to zero (or it does not parse).
fn scrubbed(page: &[u8], number: u32, usable: usize) -> Option<Vec<u8>> {
    let ranges = unused_ranges(page, number, usable)?;
    if ranges
        .iter()
        .all(|r| page[r.clone()].iter().all(|&b| b == 0))
    {
        return None;
    }
    let mut clean = page.to_vec();
    for r in ranges {
        clean[r].fill(0);
    }
    Some(clean)
}

/// Usable bytes per page: the page size less the bytes reserved at the end of each page (byte 20 of the
/// file header).
fn usable_size(conn: &Connection) -> rusqlite::Result<usize> {
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let header: Vec<u8> = conn.query_row(
        "SELECT substr(data, 1, 100) FROM sqlite_dbpage WHERE pgno = 1",
        [],
        |r| r.get(0),
    )?;
    let reserved = header.get(20).copied().unwrap_or(0);
    Ok(page_size as usize - reserved as usize)
}

/// Reads the pages to scrub (all b-tree pages, or those of `only`), in one read transaction so that the
/// page types from `dbstat` and the bytes from `sqlite_dbpage` come from the same snapshot.
pub fn plan(conn: &Connection, only: Option<&HashSet<u32>>) -> Result<Vec<DirtyPage>> {
    let tx = conn.unchecked_transaction()?;
    let usable = usable_size(&tx)?;
    let mut btree: Vec<u32> = tx
        .prepare("SELECT pageno FROM dbstat WHERE pagetype IN ('internal', 'leaf')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if let Some(only) = only {
        btree.retain(|n| only.contains(n));
    }
    btree.sort_unstable();
    let mut dirty = Vec::new();
    let mut check = |number: u32, page: &[u8]| {
        if scrubbed(page, number, usable).is_some() {
            dirty.push(DirtyPage {
                number,
                hash: page_hash(page),
            });
        }
    };
    if only.is_some() {
        let mut stmt = tx.prepare("SELECT data FROM sqlite_dbpage WHERE pgno = ?1")?;
        for &number in &btree {
            let page: Vec<u8> = stmt.query_row([number], |r| r.get(0))?;
            check(number, &page);
        }
    } else {
        // One pass over the file in page order, checking the b-tree pages among them.
        let mut stmt = tx.prepare("SELECT pgno, data FROM sqlite_dbpage")?;
        let mut rows = stmt.query([])?;
        let mut next = btree.iter().peekable();
        while let Some(row) = rows.next()? {
            let number: u32 = row.get(0)?;
            while next.next_if(|&&n| n < number).is_some() {}
            if next.next_if_eq(&&number).is_some() {
                check(
                    number,
                    row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?,
                );
            }
        }
    }
    tx.finish()?;
    Ok(dirty)
}

/// Zeroes the planned pages that are still as planned, inside the caller's transaction.
pub fn apply(conn: &Connection, pages: &[DirtyPage]) -> Result<Applied> {
    let usable = usable_size(conn)?;
    let mut read = conn.prepare_cached("SELECT data FROM sqlite_dbpage WHERE pgno = ?1")?;
    let mut write =
        conn.prepare_cached("INSERT INTO sqlite_dbpage (pgno, data) VALUES (?1, ?2)")?;
    let mut applied = Applied::default();
    for page in pages {
        let Some(bytes) = read
            .query_row([page.number], |r| r.get::<_, Vec<u8>>(0))
            .map(Some)
            .or_else(|e| match e {
                // The file shrank under the plan: nothing left to scrub there.
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?
        else {
            continue;
        };
        if page_hash(&bytes) != page.hash {
            applied.changed.push(page.number);
            continue;
        }
        if let Some(clean) = scrubbed(&bytes, page.number, usable) {
            write.execute(rusqlite::params![page.number, clean])?;
            applied.scrubbed += 1;
        }
    }
    Ok(applied)
}

/// The whole scrub on a connection of its own (`assent purge`): chunks in short write transactions, so a
/// running server's writer gets the lock in between, then the log truncated.
pub fn run(conn: &mut Connection) -> Result<ScrubReport> {
    let mut report = ScrubReport::default();
    let mut only: Option<HashSet<u32>> = None;
    for _ in 0..ROUNDS {
        let planned = plan(conn, only.as_ref())?;
        let mut changed = Vec::new();
        for chunk in planned.chunks(CHUNK) {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let applied = apply(&tx, chunk)?;
            tx.commit()?;
            report.scrubbed += applied.scrubbed;
            changed.extend(applied.changed);
        }
        report.left = changed.len();
        if changed.is_empty() {
            break;
        }
        only = Some(changed.into_iter().collect());
    }
    if !db::checkpoint_truncate(conn)? {
        tracing::warn!(
            "readers kept the write-ahead log busy; a running server checkpoints it with its next writes"
        );
    }
    Ok(report)
}

/// How many b-tree pages hold non-zero bytes in their unused space (what a scrub would rewrite).
pub fn dirty_pages(conn: &Connection) -> Result<usize> {
    Ok(plan(conn, None)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table leaf page (flag 13) with two cells at the end, a free block, and garbage in the gap.
    fn leaf() -> Vec<u8> {
        let mut page = vec![0u8; 512];
        page[0] = 13;
        page[1..3].copy_from_slice(&300u16.to_be_bytes()); // first free block
        page[3..5].copy_from_slice(&2u16.to_be_bytes()); // cells
        page[5..7].copy_from_slice(&300u16.to_be_bytes()); // content starts with the free block
        page[8..10].copy_from_slice(&400u16.to_be_bytes());
        page[10..12].copy_from_slice(&450u16.to_be_bytes());
        page[300..302].copy_from_slice(&0u16.to_be_bytes()); // last free block
        page[302..304].copy_from_slice(&100u16.to_be_bytes()); // of 100 bytes
        page[304..400].fill(b'F'); // stale bytes in the free block
        page[400..512].fill(b'C'); // live cells
        page[12..300].fill(b'G'); // stale bytes in the gap
        page
    }

    #[test]
    fn zeroes_the_gap_and_free_blocks_and_nothing_else() {
        let page = leaf();
        let clean = scrubbed(&page, 2, 512).expect("garbage to zero");
        assert!(clean[12..300].iter().all(|&b| b == 0));
        assert!(clean[304..400].iter().all(|&b| b == 0));
        assert_eq!(&clean[..12], &page[..12], "header and cell pointers kept");
        assert_eq!(&clean[300..304], &page[300..304], "free block link kept");
        assert_eq!(&clean[400..], &page[400..], "cells kept");
        assert_eq!(scrubbed(&clean, 2, 512), None, "nothing left to zero");
    }

    #[test]
    fn leaves_pages_that_do_not_parse_alone() {
        let mut page = leaf();
        page[0] = 7; // not a b-tree page type
        assert_eq!(scrubbed(&page, 2, 512), None);
        let mut page = leaf();
        page[3..5].copy_from_slice(&200u16.to_be_bytes()); // cell pointers past the content start
        assert_eq!(scrubbed(&page, 2, 512), None);
        let mut page = leaf();
        page[300..302].copy_from_slice(&310u16.to_be_bytes()); // a free block inside the previous one
        assert_eq!(scrubbed(&page, 2, 512), None);
        let mut page = leaf();
        page[302..304].copy_from_slice(&2u16.to_be_bytes()); // a free block smaller than its link
        assert_eq!(scrubbed(&page, 2, 512), None);
    }

    #[test]
    fn page_one_is_read_after_the_file_header() {
        let mut page = vec![0u8; 612];
        page[..100].fill(b'H');
        page[100..].copy_from_slice(&leaf()[..512]);
        // offsets on page 1 count from the page's start, so move the layout by 100
        page[101..103].copy_from_slice(&0u16.to_be_bytes());
        page[105..107].copy_from_slice(&500u16.to_be_bytes());
        let clean = scrubbed(&page, 1, 612).expect("garbage to zero");
        assert_eq!(&clean[..100], &page[..100], "file header kept");
        assert!(clean[112..500].iter().all(|&b| b == 0));
        assert_eq!(&clean[500..], &page[500..]);
    }
}
