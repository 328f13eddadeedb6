//! The `scans` row and the key `ranges`: what was scanned, and where the
//! listing of each range stands.

use rusqlite::{params, OptionalExtension, Row};

use model::Location;

use crate::{Catalog, Result};

/// The catalog's `scans` row.
#[derive(Debug, Clone)]
pub struct ScanRecord {
    pub id: i64,
    pub location: Location,
    pub region: Option<String>,
    pub versioning: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// When the finished scan's file was packed; `None` while it is not
    /// (a scan killed while compacting leaves it so, and the next compacts).
    pub compacted_at: Option<String>,
    pub runs: i64,
    /// `I/N` for part I of the location cut in N parts; `None` for all of it.
    pub shard: Option<String>,
    /// Times keys were listed again since (`scan --keys-of`): plans made
    /// at an earlier revision refer to entries that were replaced.
    pub revision: i64,
    pub rescanned_at: Option<String>,
}

/// One `ranges` row: keys `after < key <= upto` under a prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeState {
    pub id: i64,
    /// The listing prefix, relative to the scan's base.
    pub prefix: String,
    /// A full key; `None`: from the prefix's start.
    pub after: Option<String>,
    /// A full key; `None`: to the prefix's end.
    pub upto: Option<String>,
    /// Estimated part of the location's key space.
    pub share: f64,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
    pub pages: i64,
    pub rows: i64,
    pub delete_markers: i64,
    pub done: bool,
}

impl RangeState {
    /// Where the next listing request of the range starts: (key marker,
    /// version id marker).
    pub fn resume_at(&self) -> (Option<String>, Option<String>) {
        match &self.next_key_marker {
            Some(key) => (Some(key.clone()), self.next_version_id_marker.clone()),
            None => (self.after.clone(), None),
        }
    }
}

/// The bounds a new prefix's first range starts with (a shard's part of
/// the location), both full keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounds {
    pub after: Option<String>,
    pub upto: Option<String>,
}

/// Sums over every range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanTotals {
    pub prefixes: i64,
    pub prefixes_done: i64,
    pub ranges: i64,
    pub ranges_done: i64,
    pub pages: i64,
    pub rows: i64,
    pub delete_markers: i64,
    /// Distinct keys listed (ids are dense, so this is cheap).
    pub keys: i64,
}

impl ScanTotals {
    pub fn versions(&self) -> i64 {
        self.rows - self.delete_markers
    }
}

const RANGE_COLUMNS: &str =
    "id, prefix, after, upto, share, next_key_marker, next_version_id_marker, \
     pages, rows, delete_markers, done";

fn range_of(r: &Row<'_>) -> rusqlite::Result<RangeState> {
    Ok(RangeState {
        id: r.get(0)?,
        prefix: r.get(1)?,
        after: r.get(2)?,
        upto: r.get(3)?,
        share: r.get(4)?,
        next_key_marker: r.get(5)?,
        next_version_id_marker: r.get(6)?,
        pages: r.get(7)?,
        rows: r.get(8)?,
        delete_markers: r.get(9)?,
        done: r.get(10)?,
    })
}

impl Catalog {
    /// The scan this catalog holds, if any.
    pub fn scan_record(&self) -> Result<Option<ScanRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, bucket, base_prefix, endpoint, region, versioning, started_at, \
                 finished_at, compacted_at, runs, shard, revision, rescanned_at \
                 FROM scans ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(ScanRecord {
                        id: r.get(0)?,
                        location: Location {
                            bucket: r.get(1)?,
                            base_prefix: r.get(2)?,
                            endpoint: r.get(3)?,
                        },
                        region: r.get(4)?,
                        versioning: r.get(5)?,
                        started_at: r.get(6)?,
                        finished_at: r.get(7)?,
                        compacted_at: r.get(8)?,
                        runs: r.get(9)?,
                        shard: r.get(10)?,
                        revision: r.get(11)?,
                        rescanned_at: r.get(12)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records that a scan of `location` (its part `shard`, if any) starts
    /// or resumes, and adds a range for each prefix not yet known, with
    /// `bounds`. One transaction.
    pub fn begin_scan(
        &mut self,
        location: &Location,
        region: Option<&str>,
        versioning: &str,
        new_prefixes: &[String],
        shard: Option<(&str, &Bounds)>,
    ) -> Result<ScanRecord> {
        let tx = self.conn.transaction()?;
        let updated = tx.execute(
            "UPDATE scans SET runs = runs + 1, versioning = ?1, region = coalesce(?2, region) \
             WHERE id = (SELECT max(id) FROM scans)",
            params![versioning, region],
        )?;
        if updated == 0 {
            tx.execute(
                "INSERT INTO scans (bucket, base_prefix, endpoint, region, versioning, started_at, shard) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    location.bucket,
                    location.base_prefix,
                    location.endpoint,
                    region,
                    versioning,
                    model::time::now_text(),
                    shard.map(|s| s.0),
                ],
            )?;
        }
        {
            let bounds = shard.map(|s| s.1.clone()).unwrap_or_default();
            let mut known = tx.prepare("SELECT 1 FROM ranges WHERE prefix = ?1 LIMIT 1")?;
            let mut insert =
                tx.prepare("INSERT INTO ranges (prefix, after, upto) VALUES (?1, ?2, ?3)")?;
            for prefix in new_prefixes {
                if !known.exists([prefix])? {
                    insert.execute(params![prefix, bounds.after, bounds.upto])?;
                }
            }
        }
        tx.execute(
            "UPDATE scans SET finished_at = NULL, compacted_at = NULL WHERE EXISTS (SELECT 1 FROM ranges WHERE done = 0)",
            [],
        )?;
        tx.commit()?;
        Ok(self.scan_record()?.expect("inserted above"))
    }

    /// Every range, in prefix and key order.
    pub fn ranges(&self) -> Result<Vec<RangeState>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {RANGE_COLUMNS} FROM ranges ORDER BY prefix, after IS NOT NULL, after"
        ))?;
        let rows = stmt.query_map([], range_of)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The prefixes listed, in order.
    pub fn prefixes(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT prefix FROM ranges ORDER BY prefix")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The first key (in key order) the catalog holds under `prefix`, if
    /// any (for `--into`).
    pub fn first_key_under(&self, prefix: &str) -> Result<Option<String>> {
        // substr and length both count characters, so the prefix compares
        // exactly whatever its bytes; a scan of `keys`, at plan time only.
        // min(), not the first row: keys' ids follow the order in which the
        // scan's ranges were written, which varies from run to run.
        Ok(self.conn.query_row(
            "SELECT min(key) FROM keys WHERE substr(key, 1, length(?1)) = ?1",
            [prefix],
            |r| r.get(0),
        )?)
    }

    /// A key the catalog holds that goes on from `prefix` with another
    /// character than `not`, if any (for `--into`).
    pub fn first_key_continuing(&self, prefix: &str, not: char) -> Result<Option<String>> {
        Ok(self.conn.query_row(
            "SELECT min(key) FROM keys WHERE substr(key, 1, length(?1)) = ?1
               AND length(key) > length(?1) AND substr(key, length(?1) + 1, 1) != ?2",
            rusqlite::params![prefix, not.to_string()],
            |r| r.get(0),
        )?)
    }

    /// Marks the scan finished if every range is done; returns whether it is.
    pub fn finish_scan(&self) -> Result<bool> {
        // A finished scan is compacted next, reading through the WAL, which
        // is copied into the file once, when the compaction closes the file
        // (this commit's checkpoint would only copy it earlier).
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let changed = self.conn.execute(
            "UPDATE scans SET finished_at = ?1 WHERE id = (SELECT max(id) FROM scans) \
             AND NOT EXISTS (SELECT 1 FROM ranges WHERE done = 0)",
            [model::time::now_text()],
        )?;
        Ok(changed > 0)
    }

    pub fn scan_totals(&self) -> Result<ScanTotals> {
        Ok(self.conn.query_row(
            "SELECT (SELECT count(*) FROM cursors), (SELECT count(*) FROM cursors WHERE done = 1), \
             count(*), coalesce(sum(done), 0), coalesce(sum(pages), 0), \
             coalesce(sum(rows), 0), coalesce(sum(delete_markers), 0), \
             (SELECT coalesce(max(id), 0) FROM keys) FROM ranges",
            [],
            |r| {
                Ok(ScanTotals {
                    prefixes: r.get(0)?,
                    prefixes_done: r.get(1)?,
                    ranges: r.get(2)?,
                    ranges_done: r.get(3)?,
                    pages: r.get(4)?,
                    rows: r.get(5)?,
                    delete_markers: r.get(6)?,
                    keys: r.get(7)?,
                })
            },
        )?)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{catalog_with, entry};

    #[test]
    fn the_first_key_under_a_prefix_is_the_first_in_key_order_whatever_its_id() {
        // Ranges listed in parallel give keys ids in the order they were
        // written: here `new/` got its id before `img/`.
        let (_dir, catalog) = catalog_with(vec![entry("new/0.txt", "v1", false, 1)]);
        catalog
            .conn()
            .execute("INSERT INTO keys (id, key) VALUES (2, 'img/000.jpg')", [])
            .unwrap();
        let first = |prefix: &str| catalog.first_key_under(prefix).unwrap();
        assert_eq!(first("").as_deref(), Some("img/000.jpg"));
        assert_eq!(first("new/").as_deref(), Some("new/0.txt"));
        assert_eq!(first("old/"), None);
    }
}
