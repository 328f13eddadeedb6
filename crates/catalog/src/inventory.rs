//! A catalog built from an S3 Inventory report, a file at a time, each
//! file committed with its cursor so a killed ingest resumes at the first
//! unfinished file; and where each prefix's entries came from (`sources`).
//!
//! A report in key order (the usual case) goes straight into `keys` and
//! `entries` in one pass, as a listing's pages would, each key's entries
//! put in listing order once all of them are in. Rows out of key order
//! switch the ingest, once, to staging every row in `inventory_rows` and
//! sorting them when all are in. While rows go in, the catalog is in
//! rollback-journal mode (see [`Catalog::report_rows`]).
//!
//! A report is a listing written down, and held to what a listing is: a
//! version listed twice is refused, as the listing path refuses it. What
//! it cannot say is kept apart: a report gives times to the second and no
//! order among a key's versions of one second, so those keys wait in
//! `inventory_ties` to be listed again (`crate::rescan`); and the fields
//! its configuration left out are recorded with its `sources` rows.

use std::cmp::Ordering;
use std::sync::mpsc;

use model::{Entry, EntryRef};
use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};

use crate::insert::{bind_entry, bind_entry_columns, Binder, Insert, KeyInsert, ENTRY_INSERT};
use crate::{Catalog, Result};

const STAGE_INSERT: &str =
    "INSERT OR FAIL INTO inventory_rows (file, key, version_id, is_marker, is_latest, \
     mtime_ms, size, etag, etag_parts, storage_class) VALUES ";

/// Rows gathered between multi-row inserts into `entries`.
const ENTRY_BATCH: usize = 4096;

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
    /// Fields the report lacked (`ETag`, `Size`), allowed by
    /// `--allow-missing`: what the entries it gave cannot say.
    pub missing: Vec<String>,
}

/// Where an ingest stands when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStart {
    /// Per file of the manifest, whether it is in already.
    pub done: Vec<bool>,
    /// The report was found out of key order: its rows are staged and
    /// sorted at the end.
    pub sorted: bool,
}

/// What a finished ingest holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub versions: i64,
    pub delete_markers: i64,
}

/// Inserts a tied key's id into `inventory_ties`.
const TIE_INSERT: &str = "INSERT OR IGNORE INTO inventory_ties (key_id) VALUES (?1)";

/// Which of `prefixes` (full keys, none inside another) `key` is under,
/// trying `was` (the previous key's) first: keys come in order, so most
/// share it. Rows were kept only under a prefix.
fn prefix_of(key: &str, prefixes: &[String], was: usize) -> usize {
    if prefixes
        .get(was)
        .is_some_and(|p| key.starts_with(p.as_str()))
    {
        return was;
    }
    prefixes
        .iter()
        .position(|p| key.starts_with(p.as_str()))
        .unwrap_or(was)
}

/// A report's row: an entry and its time in milliseconds.
type RowRef<'r> = (EntryRef<'r>, i64);

/// `rows` as borrowed rows.
fn refs(rows: &[(Entry, i64)]) -> Vec<RowRef<'_>> {
    rows.iter().map(|(e, ms)| (e.borrowed(), *ms)).collect()
}

/// A key's entries in listing order: the latest first, then newest first
/// (ties as the report gave them, until a listing settles them).
fn listing_order(a: &RowRef<'_>, b: &RowRef<'_>) -> Ordering {
    b.0.is_latest.cmp(&a.0.is_latest).then(b.1.cmp(&a.1))
}

/// Whether two entries of a key, in listing order, are in an order the
/// report cannot tell: both noncurrent (the latest is marked) and of the
/// same second, the most a report's LastModifiedDate says.
fn tie(a: &EntryRef<'_>, b: &EntryRef<'_>) -> bool {
    !a.is_latest && !b.is_latest && a.mtime == b.mtime
}

/// A version id listed more than once among one key's `items`.
fn repeated<'r, T>(items: &'r [T], id: impl Fn(&'r T) -> &'r str) -> Option<&'r str> {
    if items.len() <= 16 {
        // Most keys have a few versions: compared pairwise, nothing allocated.
        return (1..items.len())
            .map(|i| id(&items[i]))
            .enumerate()
            .find(|&(i, later)| items[..=i].iter().any(|e| id(e) == later))
            .map(|(_, twice)| twice);
    }
    let mut sorted: Vec<&str> = items.iter().map(id).collect();
    sorted.sort_unstable();
    sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// One key's version ids, in buffers kept from key to key (no allocation
/// per row once they have grown).
#[derive(Default)]
struct VersionIds {
    ids: Vec<String>,
    used: usize,
}

impl VersionIds {
    fn push(&mut self, id: &str) {
        match self.ids.get_mut(self.used) {
            Some(buffer) => {
                buffer.clear();
                buffer.push_str(id);
            }
            None => self.ids.push(id.to_owned()),
        }
        self.used += 1;
    }

    fn clear(&mut self) {
        self.used = 0;
    }

    fn repeated(&self) -> Option<&str> {
        repeated(&self.ids[..self.used], String::as_str)
    }
}

fn listed_twice(key: &str, version_id: &str) -> crate::CatalogError {
    crate::CatalogError::ListedTwice {
        key: key.to_owned(),
        version_id: version_id.to_owned(),
    }
}

/// Stages `rows` of file `file` in `inventory_rows`.
fn stage(insert: &mut Insert<'_>, file: i64, rows: &[RowRef<'_>]) -> Result<()> {
    insert.run(rows, |b, at, (e, ms)| {
        b.int(at, file)?;
        b.text(at + 1, e.key)?;
        bind_entry_columns(b, at + 2, e, *ms)
    })
}

/// The staged rows, as [`stage`] wrote them.
fn staged(conn: &rusqlite::Connection) -> Result<Vec<(Entry, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT key, version_id, is_marker, is_latest, mtime_ms, size, etag, etag_parts, storage_class
         FROM inventory_rows ORDER BY rowid",
    )?;
    let rows = stmt.query_map([], |r| {
        let ms: i64 = r.get(4)?;
        Ok((
            Entry {
                key: r.get(0)?,
                version_id: r.get(1)?,
                is_marker: r.get(2)?,
                is_latest: r.get(3)?,
                mtime: ms.div_euclid(1000),
                size: r.get(5)?,
                etag: crate::insert::etag_text(r.get_ref(6)?, r.get(7)?),
                storage_class: r.get(8)?,
            },
            ms,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes the catalog file's dirty pages to disk on a thread of its own,
/// every 20 ms, while an ingest writes it: each file's commit then finds
/// little left to sync, and the writer, which is what bounds an ingest,
/// hardly waits for the disk. (Every 200 ms, the commits still waited
/// for most of what the last 200 ms had written.)
struct Flusher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(path: &std::path::Path) -> Result<Flusher> {
        let file = std::fs::File::open(path).map_err(|e| crate::CatalogError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("catalog-flush".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(std::time::Duration::from_millis(20))
                {
                    // Only ever early: the commits sync what they need.
                    let _ = file.sync_data();
                }
            })
            .map_err(|e| crate::CatalogError::WriterGone(e.to_string()))?;
        Ok(Flusher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A report's rows going into the catalog, committed as each file is
/// finished ([`ReportRows::file_done`]). Dropped before, it rolls back
/// what the unfinished file wrote.
///
/// In key order, a key's entries are written once all are in: the rows of
/// the last key seen wait in `carried`, and are staged with the file's
/// commit, since the next file may hold more of them.
pub struct ReportRows<'c> {
    conn: &'c rusqlite::Connection,
    inserts: Inserts<'c>,
    sorted: bool,
    /// The scan's prefixes, relative and as full keys.
    prefixes: Vec<String>,
    full: Vec<String>,
    /// The rows of the last key seen, not yet written.
    carried: Vec<(Entry, i64)>,
    /// The last key written (the one with the highest id).
    last_key: Option<String>,
    next_key_id: i64,
    /// Rows and delete markers per prefix since the last commit.
    counts: Vec<(i64, i64)>,
    /// Keys whose entries tie on time since the last commit.
    ties: Vec<i64>,
    under: usize,
    /// Set while the catalog is out of WAL mode.
    flusher: Option<Flusher>,
}

/// An ingest's bulk statements, prepared once.
struct Inserts<'c> {
    keys: KeyInsert<'c>,
    entries: Insert<'c>,
    stage: Insert<'c>,
    ties: rusqlite::Statement<'c>,
}

/// Keys and entries waiting for a multi-row insert.
#[derive(Default)]
struct Pending<'r> {
    keys: Vec<(i64, &'r str)>,
    entries: Vec<(i64, i64, EntryRef<'r>)>,
}

impl Pending<'_> {
    /// Made once per batch: grown row by row instead, its vectors would
    /// be reallocated (and, this size, mapped afresh) a dozen times each.
    fn for_batch() -> Self {
        Pending {
            keys: Vec::with_capacity(ENTRY_BATCH),
            entries: Vec::with_capacity(ENTRY_BATCH),
        }
    }

    fn write(&mut self, inserts: &mut Inserts<'_>) -> Result<()> {
        inserts.keys.run(&self.keys)?;
        inserts.entries.run(&self.entries, |b, at, (id, seq, e)| {
            bind_entry(b, at, *id, *seq, e)
        })?;
        self.keys.clear();
        self.entries.clear();
        Ok(())
    }
}

impl ReportRows<'_> {
    /// Takes rows of file `file` (its place in the manifest). False when
    /// they are out of key order: then call [`ReportRows::sort_instead`]
    /// and start over.
    pub fn push(&mut self, file: i64, rows: &[RowRef<'_>]) -> Result<bool> {
        if self.sorted {
            stage(&mut self.inserts.stage, file, rows)?;
            return Ok(true);
        }
        let mut rest = rows;
        if let Some((first, _)) = self.carried.first() {
            let more = rest.iter().take_while(|(e, _)| e.key == first.key).count();
            self.carried
                .extend(rest[..more].iter().map(|(e, ms)| (e.to_entry(), *ms)));
            rest = &rest[more..];
            if rest.is_empty() {
                return Ok(true);
            }
            if !self.write_carried()? {
                return Ok(false);
            }
        }
        let mut pending = Pending::for_batch();
        while let Some((first, _)) = rest.first() {
            let run = rest.iter().take_while(|(e, _)| e.key == first.key).count();
            if run == rest.len() {
                // More of the key may follow.
                self.carried = rest.iter().map(|(e, ms)| (e.to_entry(), *ms)).collect();
                break;
            }
            if !self.write_key(&rest[..run], &mut pending)? {
                return Ok(false);
            }
            rest = &rest[run..];
            if pending.entries.len() >= ENTRY_BATCH {
                pending.write(&mut self.inserts)?;
            }
        }
        pending.write(&mut self.inserts)?;
        Ok(true)
    }

    fn write_carried(&mut self) -> Result<bool> {
        let carried = std::mem::take(&mut self.carried);
        let rows = refs(&carried);
        let mut pending = Pending::default();
        let in_order = self.write_key(&rows, &mut pending)?;
        pending.write(&mut self.inserts)?;
        Ok(in_order)
    }

    /// Adds all of one key's entries to `pending`, in listing order; false
    /// if the key is not after the last one written.
    fn write_key<'r>(&mut self, rows: &[RowRef<'r>], pending: &mut Pending<'r>) -> Result<bool> {
        let Some((first, _)) = rows.first() else {
            return Ok(true);
        };
        let key = first.key;
        if self.last_key.as_deref().is_some_and(|last| last >= key) {
            return Ok(false);
        }
        let sorted_rows;
        let rows = if rows.windows(2).all(|w| listing_order(&w[0], &w[1]).is_le()) {
            rows
        } else {
            let mut copy = rows.to_vec();
            copy.sort_by(listing_order);
            sorted_rows = copy;
            &sorted_rows[..]
        };
        let key_id = self.next_key_id;
        if rows.len() > 1 {
            if let Some(twice) = repeated(rows, |(e, _)| e.version_id) {
                return Err(listed_twice(key, twice));
            }
            if rows.windows(2).any(|w| tie(&w[0].0, &w[1].0)) {
                self.ties.push(key_id);
            }
        }
        self.next_key_id += 1;
        self.under = prefix_of(key, &self.full, self.under);
        pending.keys.push((key_id, key));
        let last = self.last_key.get_or_insert_with(String::new);
        last.clear();
        last.push_str(key);
        let count = &mut self.counts[self.under];
        for (seq, &(entry, _)) in rows.iter().enumerate() {
            count.0 += 1;
            count.1 += i64::from(entry.is_marker);
            pending.entries.push((key_id, seq as i64, entry));
        }
        Ok(true)
    }

    /// Adds the rows written since the last commit to their ranges, and
    /// records the keys whose entries tie.
    fn record_progress(&mut self) -> Result<()> {
        let mut range = self.conn.prepare_cached(
            "UPDATE ranges SET rows = rows + ?2, delete_markers = delete_markers + ?3 WHERE prefix = ?1",
        )?;
        for (prefix, (rows, markers)) in self.prefixes.iter().zip(&mut self.counts) {
            range.execute(params![prefix, *rows, *markers])?;
            (*rows, *markers) = (0, 0);
        }
        for key_id in self.ties.drain(..) {
            self.inserts.ties.execute([key_id])?;
        }
        Ok(())
    }

    /// Marks file `file` read whole, with its `rows`, and commits it with
    /// the cursor and the rows of its last key (staged: the next file may
    /// hold more of them).
    pub fn file_done(&mut self, file: i64, rows: u64) -> Result<()> {
        if !self.sorted {
            self.conn.execute("DELETE FROM inventory_rows", [])?;
            stage(&mut self.inserts.stage, file, &refs(&self.carried))?;
            self.record_progress()?;
        }
        self.conn.execute(
            "UPDATE inventory_files SET done = 1, rows = ?2 WHERE id = ?1",
            params![file, rows as i64],
        )?;
        self.conn.execute_batch("COMMIT; BEGIN")?;
        Ok(())
    }

    /// Drops what was written (the report is out of key order) and makes
    /// every file to be read again, staged this time.
    pub fn sort_instead(self) -> Result<()> {
        self.conn.execute_batch(
            "ROLLBACK;
             BEGIN;
             DELETE FROM entries;
             DELETE FROM keys;
             DELETE FROM inventory_rows;
             DELETE FROM inventory_ties;
             UPDATE ranges SET rows = 0, delete_markers = 0;
             UPDATE inventory_files SET done = 0, rows = 0;
             UPDATE inventory_ingest SET sorted = 1;
             COMMIT",
        )?;
        Ok(())
    }

    /// Ends a run whose files are all done: the last key's rows are
    /// written. False if they are out of key order (see [`ReportRows::push`]).
    pub fn finish(&mut self) -> Result<bool> {
        if !self.sorted {
            if !self.write_carried()? {
                return Ok(false);
            }
            self.conn.execute("DELETE FROM inventory_rows", [])?;
            self.record_progress()?;
        }
        self.conn.execute_batch("COMMIT")?;
        Ok(true)
    }
}

/// Rolls back the transaction `conn` is in, if any: on the drop of
/// something unfinished, nothing of it stays.
fn roll_back_unfinished(conn: &rusqlite::Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

impl Drop for ReportRows<'_> {
    fn drop(&mut self) {
        roll_back_unfinished(self.conn);
        if self.flusher.take().is_some() {
            // What every other connection expects.
            let _ = crate::back_to_wal(self.conn);
        }
    }
}

/// A prefix being listed again (`scan --rescan PREFIX`): its keys'
/// entries replaced, in one transaction, by what S3 lists now.
pub struct PrefixListing<'c> {
    conn: &'c rusqlite::Connection,
    keys: KeyInsert<'c>,
    entries: Insert<'c>,
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
        let mut new_keys = Vec::new();
        let mut rows = Vec::with_capacity(entries.len());
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
                        new_keys.push((self.next_id, e.key.as_str()));
                        self.next_id
                    }
                };
                self.current = Some((e.key.clone(), id, 0));
            }
            let (_, id, seq) = self.current.as_mut().expect("set above");
            rows.push((*id, *seq, e.borrowed()));
            *seq += 1;
            self.rows += 1;
            self.markers += i64::from(e.is_marker);
        }
        self.keys.run(&new_keys)?;
        self.entries
            .run(&rows, |b, at, (id, seq, e)| bind_entry(b, at, *id, *seq, e))
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
        roll_back_unfinished(self.conn);
    }
}

/// Writes the staged rows, sorted into listing order (keys ascending; a
/// key's entries the latest first, then newest first, then as the report
/// gave them), as `keys` (ids after `first`) and `entries`, the keys whose
/// entries tie in `inventory_ties`; returns, per prefix of `prefixes`
/// (full keys), the rows and delete markers under it. Refuses a version
/// listed twice.
fn order_rows(
    tx: &rusqlite::Transaction<'_>,
    first: i64,
    prefixes: &[String],
) -> Result<Vec<(i64, i64)>> {
    let mut counts = vec![(0i64, 0i64); prefixes.len().max(1)];
    let mut under = 0;
    // SQLite's sorter spills to disk: memory stays flat.
    let mut read = tx.prepare(
        "SELECT key, version_id, is_marker, is_latest, mtime_ms, size, etag, etag_parts, storage_class
         FROM inventory_rows ORDER BY key, is_latest DESC, mtime_ms DESC, file, rowid",
    )?;
    let mut keys = KeyInsert::prepare(tx)?;
    let mut entries = Insert::prepare(tx, ENTRY_INSERT, 10)?;
    let mut ties = tx.prepare(TIE_INSERT)?;
    let mut new_keys: Vec<(i64, String)> = Vec::new();
    let mut batch: Vec<(i64, i64, [Value; 8])> = Vec::with_capacity(ENTRY_BATCH);
    let (mut key_id, mut seq) = (first, 0i64);
    let mut last: Option<String> = None;
    // The key's version ids so far, and the last entry's (is latest, second).
    let mut versions = VersionIds::default();
    let mut before: Option<(bool, i64)> = None;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        if last.as_ref() != Some(&key) {
            if let Some((last, twice)) = last.as_ref().zip(versions.repeated()) {
                return Err(listed_twice(last, twice));
            }
            versions.clear();
            before = None;
            key_id += 1;
            seq = 0;
            under = prefix_of(&key, prefixes, under);
            new_keys.push((key_id, key.clone()));
            last = Some(key);
        }
        versions.push(r.get_ref(1)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
        })?);
        let latest: bool = r.get(3)?;
        let second = r.get::<_, i64>(4)?.div_euclid(1000);
        if before.is_some_and(|(was_latest, was)| !was_latest && !latest && was == second) {
            ties.execute([key_id])?;
        }
        before = Some((latest, second));
        let marker: bool = r.get(2)?;
        counts[under].0 += 1;
        counts[under].1 += i64::from(marker);
        let value = |i: usize| r.get::<_, Value>(i);
        batch.push((
            key_id,
            seq,
            [
                value(1)?,
                Value::Integer(i64::from(marker)),
                value(3)?,
                Value::Integer(r.get::<_, i64>(4)?.div_euclid(1000)),
                value(5)?,
                value(6)?,
                value(7)?,
                value(8)?,
            ],
        ));
        seq += 1;
        if batch.len() == ENTRY_BATCH {
            keys.run(&new_keys)?;
            entries.run(&batch, bind_values)?;
            new_keys.clear();
            batch.clear();
        }
    }
    if let Some((last, twice)) = last.as_ref().zip(versions.repeated()) {
        return Err(listed_twice(last, twice));
    }
    keys.run(&new_keys)?;
    entries.run(&batch, bind_values)?;
    Ok(counts)
}

fn bind_values<'r>(
    b: &mut Binder<'r>,
    at: usize,
    e: &'r (i64, i64, [Value; 8]),
) -> rusqlite::Result<()> {
    b.int(at, e.0)?;
    b.int(at + 1, e.1)?;
    for (i, v) in e.2.iter().enumerate() {
        b.value(at + 2 + i, v)?;
    }
    Ok(())
}

/// The first text after every text that starts with `prefix` (`None`: no
/// such bound, every text from `prefix` on starts with it): its last
/// character moved up by one, after dropping trailing U+10FFFF, the last
/// character there is. SQLite compares text as UTF-8 bytes, in the order
/// of code points, so the keys under `prefix` are exactly those from
/// `prefix` up to, not including, this one. (A bound of `prefix` followed
/// by U+10FFFF missed the keys that go on with that character.)
fn past_prefix(prefix: &str) -> Option<String> {
    let mut bound = prefix.trim_end_matches(char::MAX).to_owned();
    let last = bound.pop()?;
    // The code point after `last`, past the surrogates no text holds.
    let next = (u32::from(last) + 1..=u32::from(char::MAX))
        .find_map(char::from_u32)
        .expect("a character before U+10FFFF has one after it");
    bound.push(next);
    Some(bound)
}

impl Catalog {
    /// Starts listing `prefix` (relative to the scan's base `base`) again:
    /// the entries of every key under it are dropped, in a transaction
    /// that [`PrefixListing::finish`] commits.
    pub fn list_prefix_again(&mut self, base: &str, prefix: &str) -> Result<PrefixListing<'_>> {
        // Keys are looked up by name only here: the index is made the first time.
        self.index_keys()?;
        self.conn.execute_batch("BEGIN")?;
        let full = format!("{base}{prefix}");
        // Both bounds in the index search: a prefix near the start of the
        // bucket must not walk every key after it.
        let bounds: Vec<String> = std::iter::once(full.clone())
            .chain(past_prefix(&full))
            .collect();
        let under = match bounds.len() {
            1 => "SELECT id FROM keys INDEXED BY keys_by_key WHERE key >= ?1",
            _ => "SELECT id FROM keys INDEXED BY keys_by_key WHERE key >= ?1 AND key < ?2",
        };
        let bounds = rusqlite::params_from_iter(&bounds);
        let old: (i64, i64) = self.conn.query_row(
            &format!("SELECT count(*), coalesce(sum(is_marker), 0) FROM entries WHERE key_id IN ({under})"),
            bounds.clone(),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        self.conn.execute(
            &format!("DELETE FROM entries WHERE key_id IN ({under})"),
            bounds,
        )?;
        let next_id: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM keys", [], |r| r.get(0))?;
        Ok(PrefixListing {
            conn: &self.conn,
            keys: KeyInsert::prepare(&self.conn)?,
            entries: Insert::prepare(&self.conn, ENTRY_INSERT, 10)?,
            current: None,
            next_id,
            rows: 0,
            markers: 0,
            old,
            relative: prefix.to_owned(),
        })
    }

    /// Records the report's files (key, MD5) on the first run; on a resumed
    /// one, checks they are the same files and drops the staged rows of
    /// those not finished.
    pub fn begin_inventory(&mut self, files: &[(String, String)]) -> Result<IngestStart> {
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
            tx.execute(
                "INSERT OR REPLACE INTO inventory_ingest (id, sorted) VALUES (1, 0)",
                [],
            )?;
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
        let sorted: bool = tx.query_row("SELECT sorted FROM inventory_ingest", [], |r| r.get(0))?;
        tx.commit()?;
        Ok(IngestStart { done, sorted })
    }

    /// Starts taking the report's rows for the scan's `prefixes`
    /// (relative to `base`), going on from where an earlier run stopped.
    /// Until the [`ReportRows`] is dropped the catalog is in rollback-journal
    /// mode (WAL again after), unless another connection has it open.
    pub fn report_rows(&mut self, base: &str, prefixes: &[String]) -> Result<ReportRows<'_>> {
        let sorted: bool = self
            .conn
            .query_row("SELECT sorted FROM inventory_ingest", [], |r| r.get(0))?;
        // The last key written is the one with the highest id.
        let last: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT id, key FROM keys ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let next_key_id = last.as_ref().map_or(1, |(id, _)| id + 1);
        let (carried, last_key) = match sorted {
            true => (Vec::new(), None),
            false => (staged(&self.conn)?, last.map(|(_, key)| key)),
        };
        // Appends need no WAL: with a rollback journal each page is written
        // once, into the file, and only the few pages a commit changes are
        // journaled; a kill still rolls back to the last file's commit. The
        // journal's file is kept from one commit to the next (PERSIST: its
        // header zeroed): deleted and made again, it cost each commit a
        // file's creation and removal. It takes the catalog to itself:
        // with another connection open (a `status` in another terminal),
        // the ingest stays in WAL mode.
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = PERSIST", [], |r| r.get(0))
            .unwrap_or_default();
        let flusher = match mode.as_str() {
            "persist" => Some(Flusher::start(&self.path)?),
            _ => None,
        };
        self.conn.execute_batch("BEGIN")?;
        let inserts = Inserts {
            keys: KeyInsert::prepare(&self.conn)?,
            entries: Insert::prepare(&self.conn, ENTRY_INSERT, 10)?,
            stage: Insert::prepare(&self.conn, STAGE_INSERT, 10)?,
            ties: self.conn.prepare(TIE_INSERT)?,
        };
        Ok(ReportRows {
            conn: &self.conn,
            inserts,
            sorted,
            prefixes: prefixes.to_vec(),
            full: prefixes.iter().map(|p| format!("{base}{p}")).collect(),
            carried,
            last_key,
            next_key_id,
            counts: vec![(0, 0); prefixes.len().max(1)],
            ties: Vec::new(),
            under: 0,
            flusher,
        })
    }

    /// Settles the rows of a report whose files are all in: staged rows (a
    /// report out of key order) are sorted into `keys` and `entries`, the
    /// ranges of `prefixes` (relative to `base`) given their counts, the
    /// tied keys recorded. Returns whether the rows were staged. Run again
    /// after a kill, it finds nothing staged and changes nothing.
    pub fn settle_inventory(&mut self, base: &str, prefixes: &[String]) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let sorted: bool = tx.query_row("SELECT sorted FROM inventory_ingest", [], |r| r.get(0))?;
        let staged: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM inventory_rows)", [], |r| {
                r.get(0)
            })?;
        if sorted && staged {
            let first: i64 =
                tx.query_row("SELECT coalesce(max(id), 0) FROM keys", [], |r| r.get(0))?;
            let full: Vec<String> = prefixes.iter().map(|p| format!("{base}{p}")).collect();
            let counts = order_rows(&tx, first, &full)?;
            let mut range =
                tx.prepare("UPDATE ranges SET rows = ?2, delete_markers = ?3 WHERE prefix = ?1")?;
            for (prefix, (rows, markers)) in prefixes.iter().zip(&counts) {
                range.execute(params![prefix, rows, markers])?;
            }
            drop(range);
            tx.execute("DELETE FROM inventory_rows", [])?;
        }
        tx.commit()?;
        Ok(sorted)
    }

    /// Ends an ingest whose rows are settled and whose tied keys are
    /// listed: the scan's ranges are marked done, and the report recorded
    /// as the source of `prefixes`, with the fields it lacked (`missing`).
    pub fn close_inventory(
        &mut self,
        prefixes: &[String],
        manifest: &str,
        as_of: &str,
        missing: &[&str],
    ) -> Result<Settled> {
        let tx = self.conn.transaction()?;
        let now = model::time::now_text();
        let missing = (!missing.is_empty()).then(|| missing.join(","));
        {
            let mut range =
                tx.prepare("UPDATE ranges SET done = 1, updated_at = ?2 WHERE prefix = ?1")?;
            let mut source = tx.prepare(
                "INSERT OR REPLACE INTO sources (prefix, kind, as_of, manifest, missing) VALUES (?1, 'inventory', ?2, ?3, ?4)",
            )?;
            for prefix in prefixes {
                range.execute(params![prefix, now])?;
                source.execute(params![prefix, as_of, manifest, missing])?;
            }
        }
        let (rows, markers): (i64, i64) = tx.query_row(
            "SELECT coalesce(sum(rows), 0), coalesce(sum(delete_markers), 0) FROM ranges",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.commit()?;
        Ok(Settled {
            versions: rows - markers,
            delete_markers: markers,
        })
    }

    /// The keys of the report whose entries tie on time, not yet listed
    /// again: (key id, key), by key.
    pub fn tied_keys(&self) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT k.id, k.key FROM inventory_ties t JOIN keys k ON k.id = t.key_id ORDER BY k.key",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many of the report's data files are in, of how many, when the
    /// catalog is (being) built from an inventory report.
    pub fn report_files(&self) -> Result<Option<(i64, i64)>> {
        let (done, all): (i64, i64) = self.conn.query_row(
            "SELECT coalesce(sum(done), 0), count(*) FROM inventory_files",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((all > 0).then_some((done, all)))
    }

    /// Where each prefix's entries came from, by prefix.
    pub fn sources(&self) -> Result<Vec<Source>> {
        let mut stmt = self.conn.prepare(
            "SELECT prefix, kind, as_of, manifest, missing FROM sources ORDER BY prefix",
        )?;
        let rows = stmt.query_map([], |r| {
            let missing: Option<String> = r.get(4)?;
            Ok(Source {
                prefix: r.get(0)?,
                kind: r.get(1)?,
                as_of: r.get(2)?,
                manifest: r.get(3)?,
                missing: missing
                    .iter()
                    .flat_map(|m| m.split(','))
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::entry;

    fn catalog_at(dir: &std::path::Path) -> Catalog {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut catalog = rt
            .block_on(Catalog::open_or_create(&dir.join("c.db")))
            .unwrap();
        let location = model::Location {
            bucket: "b".into(),
            base_prefix: String::new(),
            endpoint: None,
        };
        catalog
            .begin_scan(&location, None, "Enabled", &[String::new()], None)
            .unwrap();
        catalog
    }

    fn latest(mut e: Entry) -> Entry {
        e.is_latest = true;
        e
    }

    fn listed(catalog: &Catalog) -> Vec<(i64, i64, String)> {
        catalog
            .conn
            .prepare("SELECT key_id, seq, version_id FROM entries ORDER BY key_id, seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap()
    }

    /// Settles and closes the ingest: (versions, delete markers, sorted).
    fn settle(catalog: &mut Catalog) -> (i64, i64, bool) {
        let sorted = catalog.settle_inventory("", &[String::new()]).unwrap();
        let settled = catalog
            .close_inventory(&[String::new()], "m.json", "2024-01-01T00:00:00Z", &[])
            .unwrap();
        (settled.versions, settled.delete_markers, sorted)
    }

    /// Takes each file's rows and marks it done, then finishes: false
    /// when the rows were out of key order.
    fn take(catalog: &mut Catalog, files: &[(i64, &[(Entry, i64)])]) -> bool {
        let mut rows = catalog.report_rows("", &[String::new()]).unwrap();
        for (file, taken) in files {
            assert!(rows.push(*file, &refs(taken)).unwrap());
            rows.file_done(*file, taken.len() as u64).unwrap();
        }
        let in_order = rows.finish().unwrap();
        if !in_order {
            rows.sort_instead().unwrap();
        }
        in_order
    }

    fn staged(catalog: &Catalog) -> i64 {
        catalog
            .conn
            .query_row("SELECT count(*) FROM inventory_rows", [], |r| r.get(0))
            .unwrap()
    }

    fn files() -> Vec<(String, String)> {
        vec![
            ("f0".to_owned(), "m0".to_owned()),
            ("f1".to_owned(), "m1".to_owned()),
        ]
    }

    #[test]
    fn a_report_in_key_order_is_written_in_one_pass_and_a_resume_goes_on_from_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = catalog_at(dir.path());
        let start = catalog.begin_inventory(&files()).unwrap();
        assert_eq!((start.done, start.sorted), (vec![false, false], false));
        // A key's versions oldest first, and key k running on into file 1.
        let file0 = vec![
            (entry("a", "a1", false, 5), 5_000),
            (entry("k", "v1", false, 10), 10_000),
            (latest(entry("k", "v3", false, 30)), 30_000),
        ];
        let file1 = vec![
            (entry("k", "v0", true, 8), 8_000),
            (latest(entry("m", "x", false, 7)), 7_000),
        ];
        let mut rows = catalog.report_rows("", &[String::new()]).unwrap();
        assert!(rows.push(0, &refs(&file0)).unwrap());
        rows.file_done(0, 3).unwrap();
        // Someone looking on (`status`) opens the catalog, and leaves the
        // ingest's journal mode alone.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let onlooker = rt
            .block_on(Catalog::open(&dir.path().join("c.db")))
            .unwrap();
        assert_eq!(onlooker.report_files().unwrap(), Some((1, 2)));
        drop(onlooker);
        let mode: String = rusqlite::Connection::open(dir.path().join("c.db"))
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        // Still a rollback journal (a new connection says DELETE: a file
        // records WAL mode only).
        assert_eq!(mode, "delete");
        assert!(rows.push(1, &refs(&file1)).unwrap());
        // A kill before file 1 is done: k's rows wait, staged, for more of
        // them in file 1.
        drop(rows);
        assert_eq!(listed(&catalog), [(1, 0, "a1".into())]);
        assert_eq!(staged(&catalog), 2);

        let start = catalog.begin_inventory(&files()).unwrap();
        assert_eq!(start.done, [true, false]);
        assert!(take(&mut catalog, &[(1, &file1)]));
        assert_eq!(settle(&mut catalog), (4, 1, false));
        assert_eq!(
            listed(&catalog),
            [
                (1, 0, "a1".into()),
                (2, 0, "v3".into()),
                (2, 1, "v1".into()),
                (2, 2, "v0".into()),
                (3, 0, "x".into())
            ]
        );
        assert_eq!(catalog.sources().unwrap()[0].kind, "inventory");
        let wrong = vec![("f0".to_owned(), "other".to_owned())];
        assert!(catalog.begin_inventory(&wrong).is_err());
        // Left in rollback-journal mode (the switch back was refused), the
        // finished catalog is put back in WAL mode by the next open.
        catalog
            .conn
            .query_row("PRAGMA journal_mode = PERSIST", [], |_| Ok(()))
            .unwrap();
        catalog
            .conn
            .execute_batch("BEGIN; DELETE FROM inventory_rows; COMMIT")
            .unwrap();
        let journal = dir.path().join("c.db-journal");
        assert!(journal.exists());
        drop(catalog);
        let again = rt
            .block_on(Catalog::open(&dir.path().join("c.db")))
            .unwrap();
        let mode: String = again
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // and its rollback journal is gone.
        assert!(!journal.exists());
    }

    fn tied(catalog: &Catalog) -> Vec<String> {
        catalog
            .tied_keys()
            .unwrap()
            .into_iter()
            .map(|(_, k)| k)
            .collect()
    }

    #[test]
    fn keys_whose_entries_tie_are_set_aside_in_either_path() {
        // a: two noncurrent entries of one second (ms apart): a tie. b: the
        // latest and a noncurrent one of one second: the latest is marked.
        // c: one second apart.
        let rows = [
            (latest(entry("a", "a3", false, 30)), 30_000),
            (entry("a", "a2", false, 10), 10_700),
            (entry("a", "a1", true, 10), 10_200),
            (latest(entry("b", "b2", false, 10)), 10_000),
            (entry("b", "b1", false, 10), 10_000),
            (latest(entry("c", "c2", false, 11)), 11_000),
            (entry("c", "c1", false, 10), 10_000),
        ];
        for out_of_order in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut catalog = catalog_at(dir.path());
            catalog.begin_inventory(&files()).unwrap();
            let (first, second) = match out_of_order {
                // "a" after the rest: staged and sorted.
                true => ([&rows[3..], &rows[..3]].concat(), vec![]),
                false => (rows[..4].to_vec(), rows[4..].to_vec()),
            };
            let in_order = take(&mut catalog, &[(0, &first), (1, &second)]);
            assert_eq!(in_order, !out_of_order);
            if out_of_order {
                catalog.begin_inventory(&files()).unwrap();
                assert!(take(&mut catalog, &[(0, &first), (1, &second)]));
            }
            assert_eq!(settle(&mut catalog), (6, 1, out_of_order));
            assert_eq!(tied(&catalog), ["a"], "out of order: {out_of_order}");
        }
    }

    #[test]
    fn a_version_listed_twice_is_refused_in_either_path() {
        let twice = vec![
            (latest(entry("k", "v2", false, 20)), 20_000),
            (entry("k", "v1", false, 10), 10_000),
            (entry("k", "v1", false, 10), 10_000),
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = catalog_at(dir.path());
        catalog.begin_inventory(&files()).unwrap();
        let mut rows = catalog.report_rows("", &[String::new()]).unwrap();
        rows.push(0, &refs(&twice)).unwrap();
        rows.file_done(0, 3).unwrap();
        let err = rows.finish().unwrap_err();
        assert!(
            matches!(err, crate::CatalogError::ListedTwice { .. }),
            "{err}"
        );
        drop(rows);
        assert!(listed(&catalog).is_empty());
        // Far apart, out of key order: found as the staged rows are sorted.
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = catalog_at(dir.path());
        catalog.begin_inventory(&files()).unwrap();
        let file0 = vec![(latest(entry("k", "v1", false, 10)), 10_000)];
        let file1 = vec![
            (latest(entry("m", "m1", false, 10)), 10_000),
            (entry("k", "v1", false, 10), 10_000),
        ];
        assert!(!take(&mut catalog, &[(0, &file0), (1, &file1)]));
        catalog.begin_inventory(&files()).unwrap();
        assert!(take(&mut catalog, &[(0, &file0), (1, &file1)]));
        let err = catalog.settle_inventory("", &[String::new()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("lists version v1 of key \"k\" twice"),
            "{err}"
        );
        assert!(listed(&catalog).is_empty());
    }

    #[test]
    fn the_bound_past_a_prefix_holds_every_key_under_it() {
        assert_eq!(past_prefix("p/").as_deref(), Some("p0"));
        assert_eq!(past_prefix("p\u{10FFFF}").as_deref(), Some("q"));
        assert_eq!(past_prefix("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(past_prefix("\u{10FFFF}"), None);
        assert_eq!(past_prefix(""), None);
        let bound = past_prefix("a/é").unwrap();
        for key in ["a/é", "a/é\u{10FFFF}", "a/é\u{10FFFF}\u{10FFFF}z"] {
            assert!(key < bound.as_str(), "{key:?}");
        }
        assert!("a/ê" >= bound.as_str());
    }

    #[test]
    fn a_report_out_of_key_order_is_staged_and_sorted_instead() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = catalog_at(dir.path());
        catalog.begin_inventory(&files()).unwrap();
        let file0 = vec![(latest(entry("k", "v2", false, 20)), 20_000)];
        let file1 = vec![
            (entry("k", "v1", true, 10), 10_000),
            (latest(entry("a", "x", false, 5)), 5_000),
        ];
        // "a" after "k", found once a's rows are all in
        assert!(!take(&mut catalog, &[(0, &file0), (1, &file1)]));
        assert!(listed(&catalog).is_empty());

        let start = catalog.begin_inventory(&files()).unwrap();
        assert_eq!((start.done, start.sorted), (vec![false, false], true));
        assert!(take(&mut catalog, &[(0, &file0), (1, &file1)]));
        assert_eq!(settle(&mut catalog), (2, 1, true));
        assert_eq!(
            listed(&catalog),
            [(1, 0, "x".into()), (2, 0, "v2".into()), (2, 1, "v1".into())]
        );
        assert_eq!(staged(&catalog), 0);
    }
}
