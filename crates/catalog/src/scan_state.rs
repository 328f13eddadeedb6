//! The `scans` row and the per-prefix `cursors`: what was scanned, and where
//! each prefix's listing stands.

use rusqlite::{params, OptionalExtension};

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
}

/// One `cursors` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorState {
    pub prefix: String,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
    pub pages: i64,
    pub rows: i64,
    pub delete_markers: i64,
    pub done: bool,
}

/// Sums over every cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanTotals {
    pub prefixes: i64,
    pub prefixes_done: i64,
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

impl Catalog {
    /// The scan this catalog holds, if any.
    pub fn scan_record(&self) -> Result<Option<ScanRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, bucket, base_prefix, endpoint, region, versioning, started_at, \
                 finished_at, compacted_at, runs FROM scans ORDER BY id DESC LIMIT 1",
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
                    })
                },
            )
            .optional()?)
    }

    /// Records that a scan of `location` starts or resumes, and adds a cursor
    /// for each prefix not yet known. One transaction.
    pub fn begin_scan(
        &mut self,
        location: &Location,
        region: Option<&str>,
        versioning: &str,
        new_prefixes: &[String],
    ) -> Result<ScanRecord> {
        let tx = self.conn.transaction()?;
        let updated = tx.execute(
            "UPDATE scans SET runs = runs + 1, versioning = ?1, region = coalesce(?2, region) \
             WHERE id = (SELECT max(id) FROM scans)",
            params![versioning, region],
        )?;
        if updated == 0 {
            tx.execute(
                "INSERT INTO scans (bucket, base_prefix, endpoint, region, versioning, started_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    location.bucket,
                    location.base_prefix,
                    location.endpoint,
                    region,
                    versioning,
                    model::time::now_text()
                ],
            )?;
        }
        {
            let mut insert = tx.prepare("INSERT OR IGNORE INTO cursors (prefix) VALUES (?1)")?;
            for prefix in new_prefixes {
                insert.execute([prefix])?;
            }
        }
        tx.execute(
            "UPDATE scans SET finished_at = NULL, compacted_at = NULL WHERE EXISTS (SELECT 1 FROM cursors WHERE done = 0)",
            [],
        )?;
        tx.commit()?;
        Ok(self.scan_record()?.expect("inserted above"))
    }

    /// Every cursor, in prefix order.
    pub fn cursors(&self) -> Result<Vec<CursorState>> {
        let mut stmt = self.conn.prepare(
            "SELECT prefix, next_key_marker, next_version_id_marker, pages, rows, \
             delete_markers, done FROM cursors ORDER BY prefix",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(CursorState {
                prefix: r.get(0)?,
                next_key_marker: r.get(1)?,
                next_version_id_marker: r.get(2)?,
                pages: r.get(3)?,
                rows: r.get(4)?,
                delete_markers: r.get(5)?,
                done: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks the scan finished if every cursor is done; returns whether it is.
    pub fn finish_scan(&self) -> Result<bool> {
        // A finished scan is compacted next, from the WAL: copying the WAL
        // into the file first (this commit would trigger it) is wasted work.
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let changed = self.conn.execute(
            "UPDATE scans SET finished_at = ?1 WHERE id = (SELECT max(id) FROM scans) \
             AND NOT EXISTS (SELECT 1 FROM cursors WHERE done = 0)",
            [model::time::now_text()],
        )?;
        Ok(changed > 0)
    }

    pub fn scan_totals(&self) -> Result<ScanTotals> {
        Ok(self.conn.query_row(
            "SELECT count(*), coalesce(sum(done), 0), coalesce(sum(pages), 0), \
             coalesce(sum(rows), 0), coalesce(sum(delete_markers), 0), \
             (SELECT coalesce(max(id), 0) FROM keys) FROM cursors",
            [],
            |r| {
                Ok(ScanTotals {
                    prefixes: r.get(0)?,
                    prefixes_done: r.get(1)?,
                    pages: r.get(2)?,
                    rows: r.get(3)?,
                    delete_markers: r.get(4)?,
                    keys: r.get(5)?,
                })
            },
        )?)
    }
}
