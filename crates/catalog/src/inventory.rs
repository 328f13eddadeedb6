//! A catalog built from an S3 Inventory report: its files' rows staged a
//! file at a time (a killed ingest resumes at the first unfinished file),
//! then turned into `keys` and `entries` in listing order in one
//! transaction; and where each prefix's entries came from (`sources`).

use model::Entry;
use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};

use crate::writer::{Etag, Insert, ENTRY_INSERT, KEY_INSERT};

const STAGE_INSERT: &str =
    "INSERT OR FAIL INTO inventory_rows (file, key, version_id, is_marker, is_latest, \
     mtime_ms, size, etag, etag_parts, storage_class) VALUES ";

/// Rows ordered into `entries` between multi-row inserts.
const SETTLE_BATCH: usize = 4096;
use crate::{Catalog, Result};

/// Where a prefix's entries came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Relative to the scan's base; '' for all of it.
    pub prefix: String,
    /// `inventory` or `listing`.
    pub kind: String,
    /// RFC 3339, UTC: the report's creation time, or the listing's.
    pub as_of: String,
    pub manifest: Option<String>,
}

/// Rows being staged, committed as each file is finished.
pub struct Staging<'c> {
    conn: &'c rusqlite::Connection,
}

impl Staging<'_> {
    /// Stages rows of file `file` (its place in the manifest): each entry
    /// with its time in milliseconds.
    pub fn push<'e>(
        &mut self,
        file: i64,
        rows: impl IntoIterator<Item = (&'e Entry, i64)>,
    ) -> Result<()> {
        let rows: Vec<(&Entry, i64)> = rows.into_iter().collect();
        let mut insert = Insert::prepare(self.conn, STAGE_INSERT, 10)?;
        insert.run(&rows, |s, at, &(e, ms)| {
            let etag = e.etag.as_deref().map(Etag::new);
            s.raw_bind_parameter(at, file)?;
            s.raw_bind_parameter(at + 1, e.key.as_str())?;
            s.raw_bind_parameter(at + 2, e.version_id.as_str())?;
            s.raw_bind_parameter(at + 3, e.is_marker)?;
            s.raw_bind_parameter(at + 4, e.is_latest)?;
            s.raw_bind_parameter(at + 5, ms)?;
            s.raw_bind_parameter(at + 6, e.size)?;
            s.raw_bind_parameter(at + 7, etag)?;
            s.raw_bind_parameter(at + 8, etag.and_then(|t| t.parts))?;
            s.raw_bind_parameter(at + 9, e.storage_class.as_deref())
        })
    }

    /// Marks file `file` read whole, with its `rows`, and commits. (Rows
    /// of other files committed with it are dropped on a resume unless
    /// their file is finished too.)
    pub fn file_done(&mut self, file: i64, rows: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE inventory_files SET done = 1, rows = ?2 WHERE id = ?1",
            params![file, rows as i64],
        )?;
        self.conn.execute_batch("COMMIT; BEGIN")?;
        Ok(())
    }

    /// Commits what is staged.
    pub fn finish(self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }
}

/// A prefix being listed again (`scan --rescan PREFIX`): its keys'
/// entries replaced, in one transaction, by what S3 lists now.
pub struct PrefixListing<'c> {
    conn: &'c rusqlite::Connection,
    /// The key being written, its id and the next seq.
    current: Option<(String, i64, i64)>,
    next_id: i64,
    pub rows: i64,
    pub markers: i64,
    old: (i64, i64),
    relative: String,
}

impl PrefixListing<'_> {
    /// Adds a page of entries (in listing order).
    pub fn push(&mut self, entries: &[Entry]) -> Result<()> {
        let mut find = self
            .conn
            .prepare_cached("SELECT id FROM keys INDEXED BY keys_by_key WHERE key = ?1")?;
        let mut new_key = self
            .conn
            .prepare_cached("INSERT INTO keys (id, key) VALUES (?1, ?2)")?;
        let mut insert = self.conn.prepare_cached(crate::writer::INSERT_ENTRY)?;
        for e in entries {
            let same = self.current.as_ref().is_some_and(|(k, _, _)| *k == e.key);
            if !same {
                let id = match find
                    .query_row([&e.key], |r| r.get::<_, i64>(0))
                    .optional()?
                {
                    Some(id) => id,
                    None => {
                        self.next_id += 1;
                        new_key.execute(params![self.next_id, e.key])?;
                        self.next_id
                    }
                };
                self.current = Some((e.key.clone(), id, 0));
            }
            let (_, id, seq) = self.current.as_mut().expect("set above");
            crate::writer::insert_entry(&mut insert, *id, *seq, e)?;
            *seq += 1;
            self.rows += 1;
            self.markers += i64::from(e.is_marker);
        }
        Ok(())
    }

    /// Commits: the prefix's source is now this listing, the range that
    /// holds it keeps its counts true, and the scan's revision moves on
    /// (plans made before refer to replaced entries). Returns the new
    /// revision.
    pub fn finish(self) -> Result<i64> {
        let now = model::time::now_text();
        self.conn.execute(
            "INSERT OR REPLACE INTO sources (prefix, kind, as_of, manifest) VALUES (?1, 'listing', ?2, NULL)",
            params![self.relative, now],
        )?;
        self.conn.execute(
            "UPDATE ranges SET rows = rows + ?2, delete_markers = delete_markers + ?3
             WHERE id = (SELECT id FROM ranges WHERE substr(?1, 1, length(prefix)) = prefix
                         ORDER BY length(prefix) DESC, id LIMIT 1)",
            params![
                self.relative,
                self.rows - self.old.0,
                self.markers - self.old.1
            ],
        )?;
        self.conn.execute(
            "UPDATE scans SET revision = revision + 1, rescanned_at = ?1 WHERE id = (SELECT max(id) FROM scans)",
            [&now],
        )?;
        let revision: i64 = self.conn.query_row(
            "SELECT revision FROM scans ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )?;
        self.conn.execute_batch("COMMIT")?;
        Ok(revision)
    }
}

impl Drop for PrefixListing<'_> {
    fn drop(&mut self) {
        // Not finished: nothing of it stays.
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Writes the staged rows, read in `order`, as `keys` (ids after `first`)
/// and `entries`; returns, per prefix of `prefixes` (full keys), the rows
/// and delete markers under it. With `verify`, stops and returns `None` at
/// the first row out of listing order (a key before the one above it; a
/// key's entry not after the one above it: latest first, then newest first).
fn order_rows(
    tx: &rusqlite::Transaction<'_>,
    order: &str,
    first: i64,
    prefixes: &[String],
    verify: bool,
) -> Result<Option<Vec<(i64, i64)>>> {
    let mut counts = vec![(0i64, 0i64); prefixes.len().max(1)];
    let mut under = 0;
    let mut read = tx.prepare(&format!(
        "SELECT key, version_id, is_marker, is_latest, mtime_ms, size, etag, etag_parts, storage_class
         FROM inventory_rows ORDER BY {order}"
    ))?;
    let mut keys = Insert::prepare(tx, KEY_INSERT, 2)?;
    let mut entries = Insert::prepare(tx, ENTRY_INSERT, 10)?;
    let mut new_keys: Vec<(i64, String)> = Vec::new();
    let mut batch: Vec<(i64, i64, [Value; 8])> = Vec::with_capacity(SETTLE_BATCH);
    let (mut key_id, mut seq) = (first, 0i64);
    let mut last: Option<(String, bool, i64)> = None;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let (latest, ms): (bool, i64) = (r.get(3)?, r.get(4)?);
        let same = match &last {
            Some((k, was_latest, was_ms)) if *k == key => {
                if verify && (latest || (!*was_latest && *was_ms < ms)) {
                    return Ok(None);
                }
                true
            }
            Some((k, _, _)) if verify && *k > key => return Ok(None),
            _ => false,
        };
        if !same {
            key_id += 1;
            seq = 0;
            // Staged rows are under one of the prefixes (the rest were not kept).
            under = prefixes
                .iter()
                .position(|p| key.starts_with(p.as_str()))
                .unwrap_or(under);
            new_keys.push((key_id, key.clone()));
        }
        let marker: bool = r.get(2)?;
        counts[under].0 += 1;
        counts[under].1 += i64::from(marker);
        last = Some((key, latest, ms));
        let value = |i: usize| r.get::<_, Value>(i);
        batch.push((
            key_id,
            seq,
            [
                value(1)?,
                Value::Integer(i64::from(marker)),
                Value::Integer(i64::from(latest)),
                Value::Integer(ms.div_euclid(1000)),
                value(5)?,
                value(6)?,
                value(7)?,
                value(8)?,
            ],
        ));
        seq += 1;
        if batch.len() == SETTLE_BATCH {
            keys.run(&new_keys, bind_key)?;
            entries.run(&batch, bind_entry)?;
            new_keys.clear();
            batch.clear();
        }
    }
    keys.run(&new_keys, bind_key)?;
    entries.run(&batch, bind_entry)?;
    Ok(Some(counts))
}

fn bind_key(s: &mut rusqlite::Statement<'_>, at: usize, k: &(i64, String)) -> rusqlite::Result<()> {
    s.raw_bind_parameter(at, k.0)?;
    s.raw_bind_parameter(at + 1, k.1.as_str())
}

fn bind_entry(
    s: &mut rusqlite::Statement<'_>,
    at: usize,
    e: &(i64, i64, [Value; 8]),
) -> rusqlite::Result<()> {
    s.raw_bind_parameter(at, e.0)?;
    s.raw_bind_parameter(at + 1, e.1)?;
    for (i, v) in e.2.iter().enumerate() {
        s.raw_bind_parameter(at + 2 + i, v)?;
    }
    Ok(())
}

impl Catalog {
    /// Starts listing `prefix` (relative to the scan's base `base`) again:
    /// the entries of every key under it are dropped, in a transaction
    /// that [`PrefixListing::finish`] commits.
    pub fn list_prefix_again(&mut self, base: &str, prefix: &str) -> Result<PrefixListing<'_>> {
        // Keys are looked up by name only here: the index is made the first time.
        self.conn
            .execute_batch("CREATE INDEX IF NOT EXISTS keys_by_key ON keys (key)")?;
        self.conn.execute_batch("BEGIN")?;
        let full = format!("{base}{prefix}");
        let under = "SELECT id FROM keys INDEXED BY keys_by_key
                     WHERE key >= ?1 AND key < ?1 || char(1114111) AND substr(key, 1, length(?1)) = ?1";
        let old: (i64, i64) = self.conn.query_row(
            &format!("SELECT count(*), coalesce(sum(is_marker), 0) FROM entries WHERE key_id IN ({under})"),
            [&full],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        self.conn.execute(
            &format!("DELETE FROM entries WHERE key_id IN ({under})"),
            [&full],
        )?;
        let next_id: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM keys", [], |r| r.get(0))?;
        Ok(PrefixListing {
            conn: &self.conn,
            current: None,
            next_id,
            rows: 0,
            markers: 0,
            old,
            relative: prefix.to_owned(),
        })
    }

    /// Records the report's files (key, MD5) on the first run; on a resumed
    /// one, checks they are the same files and drops the rows of those not
    /// finished. Returns, per file, whether it is done.
    pub fn begin_inventory(&mut self, files: &[(String, String)]) -> Result<Vec<bool>> {
        let tx = self.conn.transaction()?;
        let known: i64 = tx.query_row("SELECT count(*) FROM inventory_files", [], |r| r.get(0))?;
        let listed: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM keys)", [], |r| r.get(0))?;
        if known == 0 && listed {
            return Err(crate::CatalogError::Refused(
                "this catalog already holds a listing of the bucket: a report's rows would mix with it\n  hint: `scan --fresh --inventory MANIFEST` builds the catalog from the report instead, or `scan --rescan PREFIX` lists parts of it again".into(),
            ));
        }
        if known == 0 {
            let mut insert =
                tx.prepare("INSERT INTO inventory_files (id, key, md5) VALUES (?1, ?2, ?3)")?;
            for (i, (key, md5)) in files.iter().enumerate() {
                insert.execute(params![i as i64, key, md5])?;
            }
        } else {
            let mut same = tx.prepare("SELECT key, md5 FROM inventory_files ORDER BY id")?;
            let had: Vec<(String, String)> = same
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if had != files {
                return Err(crate::CatalogError::Refused(
                    "this catalog is being built from another inventory report: finish that one (run the same scan again), or start over with `scan --fresh --inventory MANIFEST`".into(),
                ));
            }
        }
        tx.execute(
            "DELETE FROM inventory_rows WHERE file IN (SELECT id FROM inventory_files WHERE done = 0)",
            [],
        )?;
        let done: Vec<bool> = {
            let mut stmt = tx.prepare("SELECT done FROM inventory_files ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        tx.commit()?;
        Ok(done)
    }

    /// Starts staging rows.
    pub fn staging(&mut self) -> Result<Staging<'_>> {
        self.conn.execute_batch("BEGIN")?;
        Ok(Staging { conn: &self.conn })
    }

    /// Turns the staged rows into `keys` and `entries` — a key's entries
    /// ordered as a listing gives them: the latest first, then newest
    /// first, then as the report gave them — marks the scan's ranges done
    /// with their counts, and records the report as the source of
    /// `prefixes` (relative to `base`). One transaction. Returns (versions,
    /// delete markers).
    pub fn settle_inventory(
        &mut self,
        base: &str,
        prefixes: &[String],
        manifest: &str,
        as_of: &str,
    ) -> Result<(i64, i64)> {
        let tx = self.conn.transaction()?;
        let first: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM keys", [], |r| r.get(0))?;
        // Reports list keys in order, and a key's entries newest first, as
        // a listing does: then the staged rows are in order already and
        // one pass writes them. Otherwise, SQLite's sorter (spilling to
        // disk: memory stays flat) orders them.
        let full: Vec<String> = prefixes.iter().map(|p| format!("{base}{p}")).collect();
        let started = std::time::Instant::now();
        let in_order = order_rows(&tx, "rowid", first, &full, true)?;
        tracing::info!(
            in_order = in_order.is_some(),
            seconds = started.elapsed().as_secs_f64(),
            "report rows read in the order staged"
        );
        let counts = match in_order {
            Some(counts) => counts,
            None => {
                tx.execute("DELETE FROM entries WHERE key_id > ?1", [first])?;
                tx.execute("DELETE FROM keys WHERE id > ?1", [first])?;
                let order = "key, is_latest DESC, mtime_ms DESC, file, rowid";
                order_rows(&tx, order, first, &full, false)?.expect("not verified")
            }
        };
        {
            let mut range = tx.prepare(
                "UPDATE ranges SET done = 1, rows = ?2, delete_markers = ?3, updated_at = ?4 WHERE prefix = ?1",
            )?;
            let mut source = tx.prepare(
                "INSERT OR REPLACE INTO sources (prefix, kind, as_of, manifest) VALUES (?1, 'inventory', ?2, ?3)",
            )?;
            let now = model::time::now_text();
            for (prefix, (rows, markers)) in prefixes.iter().zip(&counts) {
                range.execute(params![prefix, rows, markers, now])?;
                source.execute(params![prefix, as_of, manifest])?;
            }
        }
        let (rows, markers) = counts
            .iter()
            .fold((0, 0), |(r, m), (rows, markers)| (r + rows, m + markers));
        tx.execute("DELETE FROM inventory_rows", [])?;
        tx.commit()?;
        Ok((rows - markers, markers))
    }

    /// Where each prefix's entries came from, by prefix.
    pub fn sources(&self) -> Result<Vec<Source>> {
        let mut stmt = self
            .conn
            .prepare("SELECT prefix, kind, as_of, manifest FROM sources ORDER BY prefix")?;
        let rows = stmt.query_map([], |r| {
            Ok(Source {
                prefix: r.get(0)?,
                kind: r.get(1)?,
                as_of: r.get(2)?,
                manifest: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::entry;

    #[test]
    fn staged_rows_become_entries_in_listing_order_and_a_resume_drops_unfinished_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut catalog = rt.block_on(Catalog::open_or_create(&path)).unwrap();
        let location = model::Location {
            bucket: "b".into(),
            base_prefix: String::new(),
            endpoint: None,
        };
        catalog
            .begin_scan(&location, None, "Enabled", &[String::new()], None)
            .unwrap();
        let files = vec![
            ("f0".to_owned(), "m0".to_owned()),
            ("f1".to_owned(), "m1".to_owned()),
        ];
        assert_eq!(catalog.begin_inventory(&files).unwrap(), [false, false]);
        let mut latest = entry("k", "v3", false, 30);
        latest.is_latest = true;
        let rows0 = [(entry("k", "v1", false, 10), 10_000), (latest, 30_000)];
        let rows1 = [
            (entry("k", "v2", true, 20), 20_000),
            (entry("a", "x", false, 5), 5_000),
        ];
        let mut s = catalog.staging().unwrap();
        s.push(0, rows0.iter().map(|(e, ms)| (e, *ms))).unwrap();
        s.file_done(0, 2).unwrap();
        // file 1 staged but never marked done: a kill
        s.push(1, rows1.iter().map(|(e, ms)| (e, *ms))).unwrap();
        s.finish().unwrap();
        assert_eq!(catalog.begin_inventory(&files).unwrap(), [true, false]);
        let staged: i64 = catalog
            .conn
            .query_row("SELECT count(*) FROM inventory_rows", [], |r| r.get(0))
            .unwrap();
        assert_eq!(staged, 2);
        let mut s = catalog.staging().unwrap();
        s.push(1, rows1.iter().map(|(e, ms)| (e, *ms))).unwrap();
        s.file_done(1, 2).unwrap();
        s.finish().unwrap();
        let wrong = vec![("f0".to_owned(), "other".to_owned())];
        assert!(catalog.begin_inventory(&wrong).is_err());

        let totals = catalog
            .settle_inventory("", &[String::new()], "m.json", "2024-01-01T00:00:00Z")
            .unwrap();
        assert_eq!(totals, (3, 1));
        let order: Vec<(i64, i64, String)> = catalog
            .conn
            .prepare("SELECT key_id, seq, version_id FROM entries ORDER BY key_id, seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        // keys in key order; the latest first, then newest first
        assert_eq!(
            order,
            [
                (1, 0, "x".into()),
                (2, 0, "v3".into()),
                (2, 1, "v2".into()),
                (2, 2, "v1".into())
            ]
        );
        assert_eq!(catalog.sources().unwrap()[0].kind, "inventory");
    }
}
