//! The scan's bulk writer: one thread, one connection, prepared statements.
//!
//! Pages arrive on a bounded channel, so listing tasks wait when the disk is
//! the bottleneck and memory stays flat. Several queued pages share one
//! transaction (each page still commits together with its cursor), which is
//! what lets appends run at hundreds of thousands of rows a second.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::params;
use tokio::sync::mpsc;

use model::Entry;

use crate::{CatalogError, Result};

/// One ListObjectVersions page of one prefix, and the cursor that follows it.
///
/// `entries` are in listing order: keys ascending, each key's entries newest
/// first. The writer commits the entries and the cursor in one transaction.
#[derive(Debug, Clone, Default)]
pub struct ScanPage {
    /// The cursor's prefix, relative to the scan's base.
    pub prefix: String,
    pub entries: Vec<Entry>,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
    /// True when S3 said this was the last page of the prefix.
    pub done: bool,
}

/// A transaction gathers pages until it holds this many rows…
const ROWS_PER_TRANSACTION: usize = 200_000;
/// …or has been open this long. Big transactions are what make appends
/// fast; waiting for pages inside one (rather than only taking what is
/// queued) keeps them big with a short queue, so memory stays small.
const TRANSACTION_TIME: std::time::Duration = std::time::Duration::from_millis(250);

/// What the writer has committed so far; readable while it runs.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub rows: AtomicU64,
    pub delete_markers: AtomicU64,
    pub pages: AtomicU64,
    pub prefixes_done: AtomicU64,
    pub transactions: AtomicU64,
}

/// Handle to the writer thread. Dropping every sender (via [`ScanWriter::finish`])
/// lets it commit what is queued and stop.
pub struct ScanWriter {
    tx: mpsc::Sender<ScanPage>,
    handle: JoinHandle<Result<()>>,
    stats: Arc<WriterStats>,
}

/// Where a prefix's listing stands, so a key split across pages keeps one id.
#[derive(Default)]
struct PrefixState {
    last_key: Option<String>,
    last_key_id: i64,
    last_seq: i64,
}

impl ScanWriter {
    /// Starts the writer on its own connection to the catalog at `path`.
    /// `capacity` pages may wait in the channel.
    pub fn spawn(path: &Path, capacity: usize) -> Result<ScanWriter> {
        // Appends need little cache; memory stays flat.
        let mut conn = crate::connect_bulk(path, 2_048)?;
        let stats = Arc::new(WriterStats::default());
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let thread_stats = stats.clone();
        let handle = std::thread::Builder::new()
            .name("catalog-writer".into())
            .spawn(move || run(&mut conn, rx, &thread_stats))
            .map_err(|e| CatalogError::WriterGone(e.to_string()))?;
        Ok(ScanWriter { tx, handle, stats })
    }

    pub fn sender(&self) -> mpsc::Sender<ScanPage> {
        self.tx.clone()
    }

    pub fn stats(&self) -> Arc<WriterStats> {
        self.stats.clone()
    }

    /// Waits until everything sent is committed. Blocks: call it off the async
    /// executor (or at the very end).
    pub fn finish(self) -> Result<()> {
        drop(self.tx);
        self.handle
            .join()
            .map_err(|_| CatalogError::WriterGone("the writer thread panicked".into()))?
    }
}

fn run(
    conn: &mut rusqlite::Connection,
    mut rx: mpsc::Receiver<ScanPage>,
    stats: &WriterStats,
) -> Result<()> {
    let mut states = load_states(conn)?;
    let mut next_key_id: i64 =
        conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM keys", [], |r| {
            r.get(0)
        })?;
    // Only to wait for a page with a deadline on this plain thread.
    let clock = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| CatalogError::WriterGone(e.to_string()))?;
    while let Some(first) = rx.blocking_recv() {
        let tx = conn.transaction()?;
        let opened = std::time::Instant::now();
        let mut committed = Committed::default();
        {
            let mut w = Statements::prepare(&tx)?;
            let mut rows = 0;
            let mut page = Some(first);
            while let Some(p) = page.take() {
                rows += p.entries.len();
                let state = states.entry(p.prefix.clone()).or_default();
                committed.add(w.write_page(p, state, &mut next_key_id)?);
                let left = TRANSACTION_TIME.saturating_sub(opened.elapsed());
                if rows < ROWS_PER_TRANSACTION && !left.is_zero() {
                    page = clock
                        .block_on(async { tokio::time::timeout(left, rx.recv()).await })
                        .ok()
                        .flatten();
                }
            }
        }
        tx.commit()?;
        release_free_memory();
        stats.rows.fetch_add(committed.rows, Ordering::Relaxed);
        stats
            .delete_markers
            .fetch_add(committed.delete_markers, Ordering::Relaxed);
        stats.pages.fetch_add(committed.pages, Ordering::Relaxed);
        stats
            .prefixes_done
            .fetch_add(committed.prefixes_done, Ordering::Relaxed);
        stats.transactions.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Hands the heap's free pages back to the OS. glibc keeps what freed
/// pages' rows leave behind in each thread's arena, scattered between live
/// blocks, so without this a long scan's resident memory creeps up with the
/// bucket instead of staying flat. A few times a second, like the commits.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn load_states(conn: &rusqlite::Connection) -> Result<HashMap<String, PrefixState>> {
    let mut stmt =
        conn.prepare("SELECT prefix, next_key_marker, last_key_id, last_seq FROM cursors")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            PrefixState {
                last_key: r.get(1)?,
                last_key_id: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                last_seq: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Default)]
struct Committed {
    rows: u64,
    delete_markers: u64,
    pages: u64,
    prefixes_done: u64,
}

impl Committed {
    fn add(&mut self, other: Committed) {
        self.rows += other.rows;
        self.delete_markers += other.delete_markers;
        self.pages += other.pages;
        self.prefixes_done += other.prefixes_done;
    }
}

/// Rows per execution of the multi-row INSERTs, largest first. Executing a
/// statement has a fixed cost (cursor opened, root-to-leaf seek, reset)
/// that one row at a time paid for every row; within one execution SQLite
/// appends to the b-tree's last page without searching it again.
const BATCHES: [usize; 3] = [64, 8, 1];

/// One INSERT prepared for each size in [`BATCHES`].
struct Insert<'c> {
    columns: usize,
    statements: Vec<(usize, rusqlite::CachedStatement<'c>)>,
}

impl<'c> Insert<'c> {
    fn prepare(conn: &'c rusqlite::Connection, head: &str, columns: usize) -> Result<Self> {
        let row = format!("({})", vec!["?"; columns].join(","));
        let statements = BATCHES
            .iter()
            .map(|&rows| {
                Ok((
                    rows,
                    conn.prepare_cached(&format!("{head}{}", vec![row.as_str(); rows].join(",")))?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Insert {
            columns,
            statements,
        })
    }

    /// Inserts `rows`, as many at a time as the prepared sizes allow.
    fn run<T>(
        &mut self,
        mut rows: &[T],
        bind: impl Fn(&mut rusqlite::Statement<'_>, usize, &T) -> rusqlite::Result<()>,
    ) -> Result<()> {
        for (size, statement) in &mut self.statements {
            while rows.len() >= *size {
                let (now, rest) = rows.split_at(*size);
                for (i, row) in now.iter().enumerate() {
                    bind(statement, 1 + i * self.columns, row)?;
                }
                statement.raw_execute()?;
                rows = rest;
            }
        }
        Ok(())
    }
}

struct Statements<'c> {
    keys: Insert<'c>,
    entries: Insert<'c>,
    cursor: rusqlite::CachedStatement<'c>,
}

// OR FAIL rather than the default ABORT: a multi-row statement that may
// abort has SQLite copy every page it touches to a statement journal first.
// Nothing is lost: any error rolls the whole transaction back.
const KEY_INSERT: &str = "INSERT OR FAIL INTO keys (id, key) VALUES ";
const ENTRY_INSERT: &str =
    "INSERT OR FAIL INTO entries (key_id, seq, version_id, is_marker, is_latest, \
     mtime, size, etag, etag_parts, storage_class) VALUES ";

impl<'c> Statements<'c> {
    fn prepare(conn: &'c rusqlite::Connection) -> Result<Self> {
        Ok(Statements {
            keys: Insert::prepare(conn, KEY_INSERT, 2)?,
            entries: Insert::prepare(conn, ENTRY_INSERT, 10)?,
            cursor: conn.prepare_cached(
                "UPDATE cursors SET next_key_marker = ?2, next_version_id_marker = ?3, \
                 last_key_id = ?4, last_seq = ?5, pages = pages + 1, rows = rows + ?6, \
                 delete_markers = delete_markers + ?7, done = ?8, updated_at = ?9 \
                 WHERE prefix = ?1",
            )?,
        })
    }

    fn write_page(
        &mut self,
        page: ScanPage,
        state: &mut PrefixState,
        next_key_id: &mut i64,
    ) -> Result<Committed> {
        let mut done = Committed {
            pages: 1,
            prefixes_done: page.done as u64,
            ..Committed::default()
        };
        let mut keys: Vec<(i64, &str)> = Vec::with_capacity(page.entries.len());
        let mut rows: Vec<(i64, i64, &Entry)> = Vec::with_capacity(page.entries.len());
        let mut last_key = state.last_key.as_deref();
        for entry in &page.entries {
            if last_key == Some(entry.key.as_str()) {
                state.last_seq += 1;
            } else {
                state.last_key_id = *next_key_id;
                *next_key_id += 1;
                keys.push((state.last_key_id, &entry.key));
                last_key = Some(&entry.key);
                state.last_seq = 0;
            }
            rows.push((state.last_key_id, state.last_seq, entry));
            done.rows += 1;
            done.delete_markers += entry.is_marker as u64;
        }
        state.last_key = last_key.map(str::to_owned);
        self.keys.run(&keys, |s, at, &(id, key)| {
            s.raw_bind_parameter(at, id)?;
            s.raw_bind_parameter(at + 1, key)
        })?;
        self.entries.run(&rows, |s, at, &(key_id, seq, e)| {
            let etag = e.etag.as_deref().map(Etag::new);
            s.raw_bind_parameter(at, key_id)?;
            s.raw_bind_parameter(at + 1, seq)?;
            s.raw_bind_parameter(at + 2, e.version_id.as_str())?;
            s.raw_bind_parameter(at + 3, e.is_marker)?;
            s.raw_bind_parameter(at + 4, e.is_latest)?;
            s.raw_bind_parameter(at + 5, e.mtime)?;
            s.raw_bind_parameter(at + 6, e.size)?;
            s.raw_bind_parameter(at + 7, etag)?;
            s.raw_bind_parameter(at + 8, etag.and_then(|t| t.parts))?;
            s.raw_bind_parameter(at + 9, e.storage_class.as_deref())
        })?;
        let changed = self.cursor.execute(params![
            page.prefix,
            page.next_key_marker,
            page.next_version_id_marker,
            state.last_key_id,
            state.last_seq,
            done.rows as i64,
            done.delete_markers as i64,
            page.done,
            model::time::now_text(),
        ])?;
        if changed != 1 {
            return Err(CatalogError::WriterGone(format!(
                "page for prefix {:?}, which has no cursor",
                page.prefix
            )));
        }
        Ok(done)
    }
}

/// An ETag as stored: 16 bytes when it is an MD5 in lower-case hex
/// (optionally `-N` for multipart, N going to `etag_parts`), else its text.
#[derive(Debug, Clone, Copy)]
struct Etag<'a> {
    md5: Option<[u8; 16]>,
    text: &'a str,
    parts: Option<i64>,
}

impl<'a> Etag<'a> {
    fn new(etag: &'a str) -> Etag<'a> {
        let text = Etag {
            md5: None,
            text: etag,
            parts: None,
        };
        let (hex, parts) = match etag.split_once('-') {
            Some((h, n)) => match n.parse::<i64>() {
                Ok(n) => (h, Some(n)),
                Err(_) => return text,
            },
            None => (etag, None),
        };
        // Upper case would not come back identical from the views' lower(hex()).
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        if hex.len() != 32 {
            return text;
        }
        let mut md5 = [0u8; 16];
        for (byte, pair) in md5.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => *byte = hi << 4 | lo,
                _ => return text,
            }
        }
        Etag {
            md5: Some(md5),
            text: etag,
            parts,
        }
    }
}

impl rusqlite::ToSql for Etag<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match &self.md5 {
            Some(md5) => ValueRef::Blob(md5),
            None => ValueRef::Text(self.text.as_bytes()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::Etag;

    #[test]
    fn etags_round_trip_through_their_compact_form() {
        let t = Etag::new("d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(t.md5.map(|m| m[0]), Some(0xd4));
        assert_eq!(t.parts, None);
        let t = Etag::new("d41d8cd98f00b204e9800998ecf8427e-12");
        assert!(t.md5.is_some());
        assert_eq!(t.parts, Some(12));
        // Upper case would not come back identical from the view: keep as text.
        let t = Etag::new("D41D8CD98F00B204E9800998ECF8427E");
        assert!(t.md5.is_none());
        let t = Etag::new("abc-def");
        assert!(t.md5.is_none() && t.text == "abc-def" && t.parts.is_none());
    }
}
