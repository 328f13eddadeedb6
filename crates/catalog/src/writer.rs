//! The scan's bulk writer: one thread, one connection, prepared statements.
//!
//! Pages arrive on a bounded channel, so listing tasks wait when the disk is
//! the bottleneck and memory stays flat. Several queued pages share one
//! transaction (each page still commits together with its cursor), which is
//! what lets appends run at hundreds of thousands of rows a second.
//!
//! Splits of a key range go through the same channel, so the writer holds
//! the one true end of every range: a page is cut where its range ends at
//! the moment it is written, whatever its listing task knew when it sent
//! it, and a range is only cut past what it has written.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::params;
use tokio::sync::{mpsc, oneshot};

use model::{Entry, EntryRef};

use crate::insert::{bind_entry, Insert, KeyInsert, ENTRY_INSERT};
use crate::{CatalogError, RangeState, Result};

/// One ListObjectVersions page of one key range, and the cursor that
/// follows it.
///
/// `entries` are in listing order: keys ascending, each key's entries newest
/// first. The writer commits the entries and the cursor in one transaction.
#[derive(Debug, Clone, Default)]
pub struct ScanPage {
    /// `ranges.id`.
    pub range_id: i64,
    pub entries: Vec<Entry>,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
    /// True when the range's listing reached its end.
    pub done: bool,
}

/// Cut points for a range: its keys after each point go to a new range.
#[derive(Debug, Clone)]
pub struct Cut {
    /// A full key: the range keeps keys up to it, the new range those after.
    pub at: String,
    /// The new range's estimated part of the location's key space.
    pub share: f64,
}

enum Message {
    Page(ScanPage),
    Split {
        range_id: i64,
        /// Ascending.
        cuts: Vec<Cut>,
        kept_share: f64,
        reply: oneshot::Sender<Result<Vec<RangeState>>>,
    },
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
    pub ranges_done: AtomicU64,
    pub transactions: AtomicU64,
}

/// The writer thread. Dropping every [`WriterHandle`] and calling
/// [`ScanWriter::finish`] lets it commit what is queued and stop.
pub struct ScanWriter {
    tx: mpsc::Sender<Message>,
    handle: JoinHandle<Result<()>>,
    stats: Arc<WriterStats>,
}

/// What listing tasks hand the writer through; cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Message>,
}

fn gone<T>(_: T) -> CatalogError {
    CatalogError::WriterGone("it stopped accepting pages".into())
}

impl WriterHandle {
    /// Hands over a page; waits while the writer is behind.
    pub async fn page(&self, page: ScanPage) -> Result<()> {
        self.tx.send(Message::Page(page)).await.map_err(gone)
    }

    /// Cuts range `range_id` at `cuts`, after the pages sent before: the
    /// range keeps its keys up to the first cut (its share becomes
    /// `kept_share`), and a new range takes the keys after each. Cuts at or
    /// before what the range has written already are dropped. Returns the
    /// new ranges, once committed.
    pub async fn split(
        &self,
        range_id: i64,
        cuts: Vec<Cut>,
        kept_share: f64,
    ) -> Result<Vec<RangeState>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Message::Split {
                range_id,
                cuts,
                kept_share,
                reply,
            })
            .await
            .map_err(gone)?;
        rx.await.map_err(gone)?
    }
}

/// Where a range's listing stands, so a key split across pages keeps one
/// id, and where the range ends.
#[derive(Default)]
struct RangeRun {
    prefix: String,
    after: Option<String>,
    upto: Option<String>,
    done: bool,
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

    pub fn handle(&self) -> WriterHandle {
        WriterHandle {
            tx: self.tx.clone(),
        }
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
    mut rx: mpsc::Receiver<Message>,
    stats: &WriterStats,
) -> Result<()> {
    let mut runs = load_runs(conn)?;
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
        let mut replies = Vec::new();
        {
            let mut w = Statements::prepare(&tx)?;
            let mut rows = 0;
            let mut message = Some(first);
            while let Some(m) = message.take() {
                match m {
                    Message::Page(p) => {
                        rows += p.entries.len();
                        committed.add(w.write_page(p, &mut runs, &mut next_key_id)?);
                    }
                    Message::Split {
                        range_id,
                        cuts,
                        kept_share,
                        reply,
                    } => {
                        let result = split(&tx, &mut runs, range_id, cuts, kept_share);
                        let failed = result.as_ref().err().map(|e| e.to_string());
                        replies.push((reply, result));
                        if let Some(e) = failed {
                            return Err(CatalogError::WriterGone(e));
                        }
                        // Its listing task waits for it: committed now.
                        break;
                    }
                }
                let left = TRANSACTION_TIME.saturating_sub(opened.elapsed());
                if rows < ROWS_PER_TRANSACTION && !left.is_zero() {
                    message = clock
                        .block_on(async { tokio::time::timeout(left, rx.recv()).await })
                        .ok()
                        .flatten();
                }
            }
        }
        tx.commit()?;
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
        release_free_memory();
        stats.rows.fetch_add(committed.rows, Ordering::Relaxed);
        stats
            .delete_markers
            .fetch_add(committed.delete_markers, Ordering::Relaxed);
        stats.pages.fetch_add(committed.pages, Ordering::Relaxed);
        stats
            .ranges_done
            .fetch_add(committed.ranges_done, Ordering::Relaxed);
        stats.transactions.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Cuts a range (see [`WriterHandle::split`]) inside the open transaction.
fn split(
    conn: &rusqlite::Connection,
    runs: &mut HashMap<i64, RangeRun>,
    range_id: i64,
    cuts: Vec<Cut>,
    kept_share: f64,
) -> Result<Vec<RangeState>> {
    let Some(run) = runs.get_mut(&range_id).filter(|r| !r.done) else {
        return Ok(Vec::new());
    };
    let floor = run.last_key.clone().or_else(|| run.after.clone());
    let cuts: Vec<Cut> = cuts
        .into_iter()
        .filter(|c| floor.as_deref().is_none_or(|f| c.at.as_str() > f))
        .filter(|c| run.upto.as_deref().is_none_or(|u| c.at.as_str() < u))
        .collect();
    if cuts.is_empty() || cuts.windows(2).any(|w| w[0].at >= w[1].at) {
        return Ok(Vec::new());
    }
    let (prefix, end) = (run.prefix.clone(), run.upto.take());
    run.upto = Some(cuts[0].at.clone());
    conn.execute(
        "UPDATE ranges SET upto = ?2, share = ?3 WHERE id = ?1",
        params![range_id, cuts[0].at, kept_share],
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO ranges (prefix, after, upto, share, split_from) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut made = Vec::with_capacity(cuts.len());
    for (i, cut) in cuts.iter().enumerate() {
        let upto = cuts
            .get(i + 1)
            .map(|c| c.at.clone())
            .or_else(|| end.clone());
        insert.execute(params![prefix, cut.at, upto, cut.share, range_id])?;
        let id = conn.last_insert_rowid();
        runs.insert(
            id,
            RangeRun {
                prefix: prefix.clone(),
                after: Some(cut.at.clone()),
                upto: upto.clone(),
                ..RangeRun::default()
            },
        );
        made.push(RangeState {
            id,
            prefix: prefix.clone(),
            after: Some(cut.at.clone()),
            upto,
            share: cut.share,
            next_key_marker: None,
            next_version_id_marker: None,
            pages: 0,
            rows: 0,
            delete_markers: 0,
            done: false,
        });
    }
    Ok(made)
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

fn load_runs(conn: &rusqlite::Connection) -> Result<HashMap<i64, RangeRun>> {
    let mut stmt = conn.prepare(
        "SELECT id, prefix, after, upto, done, next_key_marker, last_key_id, last_seq FROM ranges",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            RangeRun {
                prefix: r.get(1)?,
                after: r.get(2)?,
                upto: r.get(3)?,
                done: r.get(4)?,
                last_key: r.get(5)?,
                last_key_id: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
                last_seq: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
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
    ranges_done: u64,
}

impl Committed {
    fn add(&mut self, other: Committed) {
        self.rows += other.rows;
        self.delete_markers += other.delete_markers;
        self.pages += other.pages;
        self.ranges_done += other.ranges_done;
    }
}

struct Statements<'c> {
    keys: KeyInsert<'c>,
    entries: Insert<'c>,
    cursor: rusqlite::CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c rusqlite::Connection) -> Result<Self> {
        Ok(Statements {
            keys: KeyInsert::prepare(conn)?,
            entries: Insert::prepare(conn, ENTRY_INSERT, 10)?,
            cursor: conn.prepare_cached(
                "UPDATE ranges SET next_key_marker = ?2, next_version_id_marker = ?3, \
                 last_key_id = ?4, last_seq = ?5, pages = pages + 1, rows = rows + ?6, \
                 delete_markers = delete_markers + ?7, done = ?8, updated_at = ?9 \
                 WHERE id = ?1",
            )?,
        })
    }

    /// Writes a page of a range, cut where the range ends now; a page of a
    /// range that has ended already is dropped.
    fn write_page(
        &mut self,
        mut page: ScanPage,
        runs: &mut HashMap<i64, RangeRun>,
        next_key_id: &mut i64,
    ) -> Result<Committed> {
        let Some(state) = runs.get_mut(&page.range_id) else {
            return Err(CatalogError::WriterGone(format!(
                "a page for range {}, which is not in the catalog",
                page.range_id
            )));
        };
        if state.done {
            return Ok(Committed::default());
        }
        if let Some(upto) = &state.upto {
            if let Some(past) = page
                .entries
                .iter()
                .position(|e| e.key.as_str() > upto.as_str())
            {
                page.entries.truncate(past);
                page.done = true;
                if let Some(last) = page.entries.last() {
                    page.next_key_marker = Some(last.key.clone());
                    page.next_version_id_marker = Some(last.version_id.clone());
                }
            }
        }
        state.done = page.done;
        let mut done = Committed {
            pages: 1,
            ranges_done: page.done as u64,
            ..Committed::default()
        };
        let mut keys: Vec<(i64, &str)> = Vec::with_capacity(page.entries.len());
        let mut rows: Vec<(i64, i64, EntryRef<'_>)> = Vec::with_capacity(page.entries.len());
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
            rows.push((state.last_key_id, state.last_seq, entry.borrowed()));
            done.rows += 1;
            done.delete_markers += entry.is_marker as u64;
        }
        state.last_key = last_key.map(str::to_owned);
        self.keys.run(&keys)?;
        self.entries.run(&rows, |b, at, (key_id, seq, e)| {
            bind_entry(b, at, *key_id, *seq, e)
        })?;
        self.cursor.execute(params![
            page.range_id,
            page.next_key_marker,
            page.next_version_id_marker,
            state.last_key_id,
            state.last_seq,
            done.rows as i64,
            done.delete_markers as i64,
            page.done,
            model::time::now_text(),
        ])?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::entry;
    use crate::Catalog;

    fn page(range_id: i64, keys: &[&str], done: bool) -> ScanPage {
        let entries: Vec<Entry> = keys.iter().map(|k| entry(k, "v", false, 1)).collect();
        let last = entries.last().map(|e| e.key.clone());
        ScanPage {
            range_id,
            entries,
            next_key_marker: last,
            next_version_id_marker: Some("v".into()),
            done,
        }
    }

    #[test]
    fn a_cut_range_keeps_what_it_wrote_and_drops_what_lies_past_its_new_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut catalog = Catalog::open_or_create(&path).await.unwrap();
            let location = model::Location {
                bucket: "b".into(),
                base_prefix: String::new(),
                endpoint: None,
            };
            catalog
                .begin_scan(&location, None, "Enabled", &[String::new()], None)
                .unwrap();
            let first = catalog.ranges().unwrap()[0].id;
            let writer = ScanWriter::spawn(&path, 4).unwrap();
            let w = writer.handle();
            w.page(page(first, &["a", "b"], false)).await.unwrap();
            // Not at or before what is written: refused.
            assert!(w
                .split(
                    first,
                    vec![Cut {
                        at: "a".into(),
                        share: 0.5
                    }],
                    0.5
                )
                .await
                .unwrap()
                .is_empty());
            let made = w
                .split(
                    first,
                    vec![
                        Cut {
                            at: "m".into(),
                            share: 0.25,
                        },
                        Cut {
                            at: "t".into(),
                            share: 0.25,
                        },
                    ],
                    0.5,
                )
                .await
                .unwrap();
            assert_eq!(made.len(), 2);
            assert_eq!(
                (made[0].after.as_deref(), made[0].upto.as_deref()),
                (Some("m"), Some("t"))
            );
            assert_eq!(
                (made[1].after.as_deref(), made[1].upto.as_deref()),
                (Some("t"), None)
            );
            // The first range's task did not know yet: its page is cut at "m".
            w.page(page(first, &["c", "m", "n", "z"], false))
                .await
                .unwrap();
            w.page(page(first, &["zz"], true)).await.unwrap();
            w.page(page(made[0].id, &["n", "s"], true)).await.unwrap();
            w.page(page(made[1].id, &["z", "zz"], true)).await.unwrap();
            drop(w);
            tokio::task::spawn_blocking(move || writer.finish())
                .await
                .unwrap()
                .unwrap();
            let keys: Vec<String> = catalog
                .conn()
                .prepare("SELECT key FROM keys ORDER BY key")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<std::result::Result<_, _>>()
                .unwrap();
            assert_eq!(keys, ["a", "b", "c", "m", "n", "s", "z", "zz"]);
            assert!(catalog.ranges().unwrap().iter().all(|r| r.done));
            assert!(catalog.finish_scan().unwrap());
        });
    }
}
