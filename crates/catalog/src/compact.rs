//! Packing a finished scan's catalog.
//!
//! The scan appends rows in key order, and a clustered (WITHOUT ROWID)
//! table filled row by row leaves its pages partly empty; rebuilt in one
//! pass it is packed. `VACUUM` does that in place but writes every page three times (a
//! temporary copy, the WAL, the file). When no other connection has the
//! catalog open, s3rewind writes one packed copy with `VACUUM INTO` — read
//! through the scan's WAL, which is never copied into the file it replaces —
//! and renames it over the catalog instead.
//!
//! Crash safety rests on one rename. Until `<catalog>.packing` is synced and
//! renamed to `<catalog>.packed`, the catalog and its WAL are untouched; from
//! then on the packed copy *is* the catalog, and whoever opens it next
//! finishes the swap ([`finish_swap`]) before SQLite sees the stale WAL.

use std::fs::File;
#[cfg(unix)]
use std::fs::OpenOptions;
use std::path::Path;
#[cfg(unix)]
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;

use crate::files::{open_private, remove_if_there, sibling};
use crate::{Catalog, CatalogError, Result};

impl Catalog {
    /// Rewrites the catalog file packed, and records that it was (see
    /// [`ScanRecord::compacted_at`](crate::ScanRecord)). Run when a scan
    /// finishes, and by the next scan if a kill cut it short.
    pub fn compact(&mut self) -> Result<()> {
        if self.compact_by_copy()? {
            return Ok(());
        }
        self.conn.execute_batch("VACUUM")?;
        mark_compacted(&self.conn)?;
        Ok(())
    }

    /// Records the catalog as compacted without rewriting it: for a file
    /// written in one pass in key order (an inventory report's), which
    /// packing would shrink a little at the cost of rewriting it
    /// (docs/benchmarks.md, "Inventory ingest", measures how much).
    pub fn mark_compacted(&mut self) -> Result<()> {
        mark_compacted(&self.conn)
    }

    /// `VACUUM INTO` a sibling file and rename it over the catalog, if this
    /// is the only connection. False (and the catalog as it was) otherwise.
    fn compact_by_copy(&mut self) -> Result<bool> {
        if !cfg!(unix) {
            return Ok(false);
        }
        let packing = sibling(&self.path, ".packing");
        // SQLite takes the file name as text.
        let Some(packing_text) = packing.to_str().map(str::to_owned) else {
            return Ok(false);
        };
        let io = |e: std::io::Error| CatalogError::Open {
            path: self.path.clone(),
            reason: format!("while compacting: {e}"),
        };
        remove_if_there(&packing).map_err(io)?;
        remove_if_there(&sibling(&self.path, ".packing-journal")).map_err(io)?;
        // VACUUM INTO fills an empty file as it finds it: made private first.
        let copied = open_private(&packing, true)
            .map_err(io)
            .and_then(|_| Ok(self.conn.execute("VACUUM INTO ?1", [&packing_text])?))
            .and_then(|_| {
                let packed = crate::connect(&packing)?;
                mark_compacted(&packed)?;
                // Renamed, it keeps its inode: marked for where it will lie.
                crate::schema::stamp(&packed, &packing)?;
                packed.close().map_err(|(_, e)| CatalogError::from(e))
            })
            .and_then(|_| File::open(&packing).and_then(|f| f.sync_all()).map_err(io));
        if let Err(e) = copied {
            // A partial copy (a full disk, say) is not left behind.
            let _ = remove_if_there(&packing);
            return Err(e);
        }
        // Copying the WAL into the old file on close would be wasted: the
        // packed copy replaces both. If the swap does not happen, the WAL
        // stays valid and the next connection to close checkpoints it.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        let conn = std::mem::replace(&mut self.conn, rusqlite::Connection::open_in_memory()?);
        conn.close().map_err(|(_, e)| e)?;
        let swapped = swap_if_alone(&self.path, &packing);
        if !matches!(swapped, Ok(true)) {
            let _ = remove_if_there(&packing);
        }
        // On an error past the commit point the next open finishes the swap.
        let swapped = swapped.map_err(io)?;
        self.conn = crate::connect(&self.path)?;
        if swapped {
            // VACUUM INTO writes a rollback-journal file.
            self.conn.pragma_update(None, "journal_mode", "WAL")?;
            return Ok(true);
        }
        Ok(false)
    }
}

fn mark_compacted(conn: &rusqlite::Connection) -> Result<()> {
    conn.execute(
        "UPDATE scans SET compacted_at = ?1 WHERE id = (SELECT max(id) FROM scans)",
        [model::time::now_text()],
    )?;
    Ok(())
}

/// Renames `packing` over the catalog at `path` when no connection has it
/// open, keeping new ones out meanwhile. False if another is open.
#[cfg(unix)]
fn swap_if_alone(path: &Path, packing: &Path) -> std::io::Result<bool> {
    let Some(old) = lock_out_connections(path, Duration::ZERO)? else {
        return Ok(false);
    };
    let packed = sibling(path, ".packed");
    std::fs::rename(packing, &packed)?;
    sync_dir(path)?;
    replace_with_packed(path, &packed, &old)?;
    Ok(true)
}

#[cfg(not(unix))]
fn swap_if_alone(_: &Path, _: &Path) -> std::io::Result<bool> {
    Ok(false)
}

/// Completes a swap that a compaction committed to but did not finish
/// (`<catalog>.packed` is there), or clears away the copy of one cut short
/// before its commit point. Run before anything opens the catalog.
#[cfg(unix)]
pub(crate) fn finish_swap(path: &Path) -> std::io::Result<()> {
    let packed = sibling(path, ".packed");
    if !packed.exists() {
        return clear_unfinished_copy(path);
    }
    // The compaction that made it may still be swapping.
    let Some(old) = lock_out_connections(path, Duration::from_secs(10))? else {
        return Err(std::io::Error::other(format!(
            "{} holds a compacted copy of the catalog, but another program has the catalog open; \
             close it and run the command again",
            packed.display()
        )));
    };
    if packed.exists() {
        replace_with_packed(path, &packed, &old)?;
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn finish_swap(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// A `.packing` copy (and its journal) left by a compaction killed before
/// its commit point is only a partial copy: removed, unless a compaction
/// is writing it right now (it holds the catalog open, so its lock bytes
/// cannot be taken).
#[cfg(unix)]
fn clear_unfinished_copy(path: &Path) -> std::io::Result<()> {
    let packing = sibling(path, ".packing");
    let journal = sibling(path, ".packing-journal");
    if !(packing.exists() || journal.exists()) || !path.exists() {
        return Ok(());
    }
    if lock_out_connections(path, Duration::ZERO)?.is_some() {
        remove_if_there(&packing)?;
        remove_if_there(&journal)?;
    }
    Ok(())
}

/// The WAL belongs to the old file: it goes first, so that SQLite never
/// applies it to the packed one. `old` is the old file, locked.
#[cfg(unix)]
fn replace_with_packed(path: &Path, packed: &Path, old: &File) -> std::io::Result<()> {
    remove_if_there(&sibling(path, "-wal"))?;
    remove_if_there(&sibling(path, "-shm"))?;
    std::fs::rename(packed, path)?;
    sync_dir(path)?;
    // Whoever opened the old file and waits for the lock finds it empty,
    // not a stale copy.
    old.set_len(0)
}

/// Opens the catalog file and takes SQLite's lock bytes — PENDING, RESERVED
/// and the 510 SHARED bytes — for writing, trying for up to `wait`. A
/// connection in WAL mode holds a shared lock there from its first read
/// until it closes, so this fails (`None`) while another is open, and keeps
/// new ones waiting (they retry for their busy timeout) until the returned
/// file is closed.
#[cfg(unix)]
fn lock_out_connections(path: &Path, wait: Duration) -> std::io::Result<Option<File>> {
    use std::os::unix::io::AsRawFd;
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    // SAFETY: a zeroed flock is valid; the fields that matter are set.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = 0x4000_0000;
    lock.l_len = 512;
    let deadline = Instant::now() + wait;
    loop {
        // SAFETY: fcntl on an open descriptor with a valid flock.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) } == 0 {
            return Ok(Some(file));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}
