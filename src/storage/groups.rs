//! Statements that write a group of rows at once. On PostgreSQL each statement is a round trip, and the
//! writer writes a batch's visits and rollups on every transaction there; a group of rows per statement
//! keeps a transaction to a few round trips. Groups come in the powers of two up to 64, so that a statement has
//! one of seven texts (prepared once per connection on PostgreSQL, kept in SQLite's statement cache) and any
//! number of rows under 128 takes at most seven statements (three on average under 64; sizes of 64, 16, 4 and
//! 1 took four and a half).

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::error::Result;
use crate::storage::sql::{Arg, Conn, Row};

/// The sizes groups are cut to, largest first.
pub const GROUP_SIZES: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// Cuts `items` into slices of the sizes in [`GROUP_SIZES`], in order.
pub fn groups<T>(mut items: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    while !items.is_empty() {
        let size = GROUP_SIZES
            .into_iter()
            .find(|&n| n <= items.len())
            .unwrap_or(1);
        let (group, rest) = items.split_at(size);
        out.push(group);
        items = rest;
    }
    out
}

/// The texts of one grouped statement, one per group size, each built on first use. Building a text
/// (up to 640 numbered placeholders) for every statement cost the writer more than SQLite's insert of
/// the rows: a profile under load put formatting, and hashing and comparing the new text in the
/// statement cache, at a tenth of the writer's time.
pub struct GroupedSql {
    build: fn(usize) -> String,
    texts: [OnceLock<String>; GROUP_SIZES.len()],
}

impl GroupedSql {
    /// `build(rows)` gives the statement's text for a group of `rows` rows.
    pub const fn new(build: fn(usize) -> String) -> GroupedSql {
        GroupedSql {
            build,
            texts: [const { OnceLock::new() }; GROUP_SIZES.len()],
        }
    }

    /// The text for a group of `rows` rows (a size [`groups`] cuts to; another size is built afresh).
    pub fn text(&self, rows: usize) -> Cow<'_, str> {
        match GROUP_SIZES.iter().position(|&n| n == rows) {
            Some(i) => Cow::Borrowed(self.texts[i].get_or_init(|| (self.build)(rows))),
            None => Cow::Owned((self.build)(rows)),
        }
    }
}

/// `(?1, ?2, ...), (...)`: placeholders for `rows` rows of `width` values, each inside `CAST(... AS
/// type)` when a type is given (PostgreSQL types a `VALUES` list from its values, not from where its
/// columns are used, and takes a bare placeholder there for text).
pub fn values_list(rows: usize, width: usize, cast: Option<&str>) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=width)
                .map(|c| {
                    let p = format!("?{}", r * width + c);
                    match cast {
                        Some(t) => format!("CAST({p} AS {t})"),
                        None => p,
                    }
                })
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows `select` (a `SELECT ... FROM table` with no `WHERE`) gives for the rows whose `id` is in
/// `ids`, a group per statement (`WHERE id IN (...)`); ids without a row are left out.
pub fn by_ids<T>(
    conn: &mut Conn,
    select: &str,
    ids: &[i64],
    mut f: impl FnMut(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(ids.len());
    for group in groups(ids) {
        let values: Vec<Arg> = group.iter().map(|&id| id.into()).collect();
        let sql = format!("{select} WHERE id IN {}", values_list(1, group.len(), None));
        out.extend(conn.rows(&sql, &values, &mut f)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_every_row_in_order_in_the_set_sizes() {
        for n in [0usize, 1, 3, 4, 5, 63, 64, 65, 100, 211] {
            let items: Vec<usize> = (0..n).collect();
            let cut = groups(&items);
            assert!(cut.iter().all(|g| GROUP_SIZES.contains(&g.len())), "{n}");
            assert_eq!(cut.concat(), items);
        }
        // 100 rows: one statement of 64, one of 32, one of 4; 23 rows: 16, 4, 2, 1.
        let sizes: Vec<usize> = groups(&[0u8; 100]).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [64, 32, 4]);
        let sizes: Vec<usize> = groups(&[0u8; 23]).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [16, 4, 2, 1]);
    }

    #[test]
    fn grouped_texts_are_built_once_per_size_and_match_a_fresh_build() {
        fn build(rows: usize) -> String {
            format!("INSERT INTO t (a, b) VALUES {}", values_list(rows, 2, None))
        }
        static TEXTS: GroupedSql = GroupedSql::new(build);
        for rows in [1, 2, 4, 8, 16, 32, 64, 3, 100] {
            assert_eq!(TEXTS.text(rows), build(rows), "{rows}");
        }
        // A size groups cut to is kept: the second call lends the same string.
        assert!(matches!(TEXTS.text(16), Cow::Borrowed(_)));
        assert!(std::ptr::eq(
            TEXTS.text(16).as_ref(),
            TEXTS.text(16).as_ref()
        ));
        assert!(matches!(TEXTS.text(3), Cow::Owned(_)));
    }

    #[test]
    fn values_lists_number_placeholders_row_by_row() {
        assert_eq!(values_list(2, 3, None), "(?1, ?2, ?3), (?4, ?5, ?6)");
        assert_eq!(
            values_list(1, 2, Some("BIGINT")),
            "(CAST(?1 AS BIGINT), CAST(?2 AS BIGINT))"
        );
    }
}
