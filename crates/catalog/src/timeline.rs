//! What was written when: entries counted per time slot by what they did
//! to their key (`s3rewind timeline`, the report's chart).

use crate::{user_sql, Catalog, Result};

/// The entries written in one time slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    /// The slot's first second (Unix time).
    pub start: i64,
    /// Versions of a key that had none, or whose newest entry was a delete marker.
    pub writes: u64,
    /// Versions written on top of another version.
    pub overwrites: u64,
    /// Delete markers.
    pub deletes: u64,
}

impl Slot {
    pub fn total(&self) -> u64 {
        self.writes + self.overwrites + self.deletes
    }
}

/// Which entries a timeline counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimelineFilter<'a> {
    /// A person's SQL expression over `key_history`'s columns.
    pub where_expr: Option<&'a str>,
    /// Only entries written at or after this second.
    pub since: Option<i64>,
    /// Only entries written at or before this second.
    pub until: Option<i64>,
}

/// The SQL of [`Catalog::timeline`], with `{where}` and the slot width as
/// `?3`: what the report shows beside its chart.
pub const TIMELINE_SQL: &str = "SELECT (h.last_modified_unix - ?1) / ?3 AS slot, \
       sum(h.is_marker = 0 AND coalesce(o.is_marker, 1) = 1) AS writes, \
       sum(h.is_marker = 0 AND coalesce(o.is_marker, 1) = 0) AS overwrites, \
       sum(h.is_marker) AS deletes \
     FROM key_history h LEFT JOIN entries o ON o.key_id = h.key_id AND o.seq = h.seq + 1 \
     WHERE h.last_modified_unix BETWEEN ?1 AND ?2 AND ({where}) \
     GROUP BY slot ORDER BY slot";

impl Catalog {
    /// The first and last second an entry was written, and how many
    /// entries there are, among those `filter` selects; `None` if none.
    pub fn time_span(&self, filter: &TimelineFilter<'_>) -> Result<Option<(i64, i64, u64)>> {
        // Without an expression the keys' names are not needed: no join.
        let sql = match filter.where_expr {
            None => "SELECT min(mtime), max(mtime), count(*) FROM entries \
                     WHERE mtime BETWEEN ?1 AND ?2"
                .to_owned(),
            Some(expr) => format!(
                "SELECT min(h.last_modified_unix), max(h.last_modified_unix), count(*) \
                 FROM key_history h WHERE h.last_modified_unix BETWEEN ?1 AND ?2 AND ({})",
                self.checked_where(Some(expr))?
            ),
        };
        let mut stmt = user_sql::prepare(&self.conn, &sql, "--where")?;
        let (lo, hi) = bounds(filter);
        let row = stmt
            .query_row([lo, hi], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| user_sql::run_error("--where", &e))?;
        Ok(match row {
            (Some(first), Some(last), n) => Some((first, last, n as u64)),
            _ => None,
        })
    }

    /// Entries per slot of `width` seconds from `origin` on (slots with
    /// nothing written included), among those `filter` selects.
    pub fn timeline(
        &self,
        filter: &TimelineFilter<'_>,
        origin: i64,
        width: i64,
    ) -> Result<Vec<Slot>> {
        let width = width.max(1);
        let sql = TIMELINE_SQL.replace("{where}", &self.checked_where(filter.where_expr)?);
        let mut stmt = user_sql::prepare(&self.conn, &sql, "--where")?;
        let (lo, hi) = bounds(filter);
        let lo = lo.max(origin);
        let rows = stmt
            .query_map([lo, hi, width], |r| {
                Ok(Slot {
                    start: r.get::<_, i64>(0)?,
                    writes: r.get::<_, i64>(1)? as u64,
                    overwrites: r.get::<_, i64>(2)? as u64,
                    deletes: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(|e| user_sql::run_error("--where", &e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| user_sql::run_error("--where", &e))?;
        // Slots are numbered from `lo`; gaps become empty slots.
        let mut out: Vec<Slot> = Vec::new();
        for row in rows {
            let index = row.start;
            while (out.len() as i64) < index {
                let start = lo + out.len() as i64 * width;
                out.push(Slot {
                    start,
                    ..Slot::default()
                });
            }
            out.push(Slot {
                start: lo + index * width,
                ..row
            });
        }
        Ok(out)
    }

    /// `expr` checked to be one read-only expression, ready to splice in.
    fn checked_where(&self, expr: Option<&str>) -> Result<String> {
        match expr {
            Some(expr) => {
                user_sql::check_where(&self.conn, expr)?;
                Ok(user_sql::parenthesised(expr))
            }
            None => Ok("1".to_owned()),
        }
    }
}

fn bounds(filter: &TimelineFilter<'_>) -> (i64, i64) {
    (
        filter.since.unwrap_or(i64::MIN),
        filter.until.unwrap_or(i64::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{catalog_with, entry};

    #[test]
    fn counts_writes_overwrites_and_deletes_per_slot() {
        // a: written at 100, overwritten at 130, deleted at 250;
        // b: written at 110, deleted at 120, written again at 260.
        let (_dir, catalog) = catalog_with(vec![
            entry("a", "a3", true, 250),
            entry("a", "a2", false, 130),
            entry("a", "a1", false, 100),
            entry("b", "b3", false, 260),
            entry("b", "b2", true, 120),
            entry("b", "b1", false, 110),
        ]);
        let all = TimelineFilter::default();
        assert_eq!(catalog.time_span(&all).unwrap(), Some((100, 260, 6)));
        let slots = catalog.timeline(&all, 100, 60).unwrap();
        let got: Vec<_> = slots
            .iter()
            .map(|s| (s.start, s.writes, s.overwrites, s.deletes))
            .collect();
        assert_eq!(
            got,
            [(100, 2, 1, 1), (160, 0, 0, 0), (220, 1, 0, 1)],
            "{slots:?}"
        );

        let only_a = TimelineFilter {
            where_expr: Some("key = 'a'"),
            since: Some(120),
            until: None,
        };
        assert_eq!(catalog.time_span(&only_a).unwrap(), Some((130, 250, 2)));
        let slots = catalog.timeline(&only_a, 120, 60).unwrap();
        assert_eq!(slots[0].overwrites, 1);
        assert_eq!(slots.iter().map(Slot::total).sum::<u64>(), 2);

        let bad = TimelineFilter {
            where_expr: Some("1); DROP TABLE keys; --"),
            ..all
        };
        assert!(catalog.time_span(&bad).is_err());
    }
}
