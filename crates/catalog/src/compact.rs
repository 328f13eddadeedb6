//! Packing a finished scan's catalog.
//!
//! The scan appends rows in key order, and a clustered (WITHOUT ROWID)
//! table filled row by row leaves its pages partly empty; rebuilt in one
//! pass it is packed. `VACUUM` does that in place but writes every page three times (a
//! temporary copy, the WAL, the file). When no other connection has the
//! catalog open, s3rewind writes one packed copy with `VACUUM INTO` (read
//! through the scan's WAL) and renames it over the catalog instead.
//!
//! A reader — s3rewind, or `sqlite3` on a catalog under review — sees the
//! whole catalog at every instant, wherever the compaction is killed.
//! SQLite finds a file's companions by name (`<catalog>-wal`, `-shm`,
//! `-journal`), not by the file they were made for, and plays a WAL or a
//! hot journal it finds into whatever file has the name. So the old file's
//! WAL may neither stay beside the packed copy (its pages would be read
//! into it) nor go while the old file still has the name (the old file
//! would be read without it: for a scan just finished, without nearly
//! everything). The swap therefore goes:
//!
//! 1. The copy (`<catalog>.packing`) is written, put in WAL mode (its own
//!    header says so: nothing needs writing to the catalog after the
//!    rename), marked compacted, closed (whole on its own) and synced.
//! 2. The compaction's connection to the old file, its last, closes:
//!    SQLite copies the WAL into the file and removes it and the `-shm`
//!    (a checkpoint: a kill in the middle leaves the WAL to be read again).
//!    The old file alone is now the whole catalog.
//! 3. With SQLite's lock bytes held (no connection can start reading), and
//!    only if no companion is left that SQLite would apply to the file of
//!    that name (a WAL: another connection is open; a rollback journal),
//!    the copy is renamed over the catalog: one step of the file system,
//!    the commit point. Before it the name is the old file, after it the
//!    copy; each is whole and has no companion.
//!
//! A copy left by a kill before the rename is cleared away by whoever opens
//! the catalog next ([`finish_swap`]), and the next `scan` packs again
//! (`scans.compacted_at` is only set in the copy).
//!
//! The lock bytes see every connection that has read the catalog in WAL
//! mode (it holds a shared lock until it closes), so such a reader keeps
//! the file where it is (it is packed in place instead); hence only a
//! catalog in WAL mode is swapped. What they cannot see is a connection
//! opened before the rename that reads for the first time after it: it
//! reads the old file, whole, but finds the new one's companions by name,
//! and should be opened again before the catalog is written (SQLite's own
//! warning about renaming a file in use, sqlite.org/howtocorrupt.html).

use std::fs::File;
#[cfg(unix)]
use std::fs::OpenOptions;
use std::path::Path;
#[cfg(unix)]
use std::time::{Duration, Instant};

use crate::files::{open_private, remove_if_there, sibling};
use crate::{Catalog, CatalogError, Result};

/// The packed copy and the companions SQLite may make beside it while it is
/// written: all of them go when a copy is cleared away.
const COPY: [&str; 4] = [
    ".packing",
    ".packing-journal",
    ".packing-wal",
    ".packing-shm",
];

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
        // In rollback-journal mode a reader holds no lock between its
        // reads: nothing would tell that the file is in use.
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if mode != "wal" {
            return Ok(false);
        }
        let io = |e: std::io::Error| CatalogError::Open {
            path: self.path.clone(),
            reason: format!("while compacting: {e}"),
        };
        remove_copy(&self.path).map_err(io)?;
        // VACUUM INTO fills an empty file as it finds it: made private first.
        let copied = open_private(&packing, true)
            .map_err(io)
            .and_then(|_| Ok(self.conn.execute("VACUUM INTO ?1", [&packing_text])?))
            .and_then(|_| {
                let packed = crate::connect(&packing)?;
                // VACUUM INTO writes a rollback-journal file; switched here,
                // the catalog needs no write to its header once renamed.
                packed.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
                mark_compacted(&packed)?;
                // Renamed, it keeps its inode: marked for where it will lie.
                crate::schema::stamp(&packed, &packing)?;
                // Closed, its WAL is copied in and removed with the -shm.
                packed.close().map_err(|(_, e)| CatalogError::from(e))
            })
            .and_then(|_| File::open(&packing).and_then(|f| f.sync_all()).map_err(io));
        if let Err(e) = copied {
            // A partial copy (a full disk, say) is not left behind.
            let _ = remove_copy(&self.path);
            return Err(e);
        }
        crash_point("copied");
        let conn = std::mem::replace(&mut self.conn, rusqlite::Connection::open_in_memory()?);
        conn.close().map_err(|(_, e)| e)?;
        crash_point("closed");
        let swapped = swap_if_alone(&self.path, &packing);
        if !matches!(swapped, Ok(true)) {
            let _ = remove_copy(&self.path);
        }
        let swapped = swapped.map_err(io)?;
        self.conn = crate::connect(&self.path)?;
        Ok(swapped)
    }
}

/// Kills the process, as `kill -9` would, at the named step of the
/// compaction when `S3REWIND_CRASH_AT` names it: for the tests that check
/// that every step leaves a whole catalog. Only in builds with the
/// `crash-points` feature (the workspace's tests turn it on).
fn crash_point(step: &str) {
    #[cfg(feature = "crash-points")]
    if std::env::var_os("S3REWIND_CRASH_AT").is_some_and(|at| at == step) {
        // SAFETY: raise has no preconditions.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    #[cfg(not(feature = "crash-points"))]
    let _ = step;
}

fn mark_compacted(conn: &rusqlite::Connection) -> Result<()> {
    conn.execute(
        "UPDATE scans SET compacted_at = ?1 WHERE id = (SELECT max(id) FROM scans)",
        [model::time::now_text()],
    )?;
    Ok(())
}

/// Removes the packed copy of the catalog at `path` and what SQLite made
/// beside it.
fn remove_copy(path: &Path) -> std::io::Result<()> {
    for suffix in COPY {
        remove_if_there(&sibling(path, suffix))?;
    }
    Ok(())
}

/// Whether a companion SQLite would apply to the file named `path` is
/// there: a WAL (a connection still has the file open, in this process or
/// another, or one was killed and what it wrote is part of the catalog)
/// or a rollback journal.
#[cfg(unix)]
fn has_log(path: &Path) -> bool {
    sibling(path, "-wal").exists() || sibling(path, "-journal").exists()
}

/// Renames `packing` over the catalog at `path` when no connection has it
/// open and nothing beside it would be read into the copy, keeping new
/// connections out meanwhile. False, and the old file stays, otherwise.
#[cfg(unix)]
fn swap_if_alone(path: &Path, packing: &Path) -> std::io::Result<bool> {
    // Checked first without the lock too: a connection of this process
    // keeps the WAL, and its locks are ones this process's own lock would
    // not see (and closing the lock's file would release them).
    if has_log(path) {
        return Ok(false);
    }
    let Some(_old) = lock_out_connections(path, Duration::ZERO)? else {
        return Ok(false);
    };
    if has_log(path) {
        return Ok(false);
    }
    // Without a WAL no connection uses it: the old file's, left by a
    // connection killed while closing. The copy starts with none.
    remove_if_there(&sibling(path, "-shm"))?;
    // The commit point. A connection that opened the old file before it
    // and waits for the lock reads the old file after it, whole (see the
    // module's last paragraph).
    match std::fs::rename(packing, path) {
        // Another command's open took it for a copy cut short (between the
        // close above and the lock, nothing held the catalog).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        other => other?,
    }
    crash_point("renamed");
    sync_dir(path)?;
    Ok(true)
}

#[cfg(not(unix))]
fn swap_if_alone(_: &Path, _: &Path) -> std::io::Result<bool> {
    Ok(false)
}

/// Clears away the copy of a compaction cut short before its commit point,
/// or completes a swap that an older s3rewind committed to but did not
/// finish (`<catalog>.packed` is there: the copy was the catalog from then
/// on, the old file perhaps already without its WAL). Run before anything
/// opens the catalog.
#[cfg(unix)]
pub(crate) fn finish_swap(path: &Path) -> std::io::Result<()> {
    let packed = sibling(path, ".packed");
    if !packed.exists() {
        return clear_unfinished_copy(path);
    }
    // An older s3rewind's compaction may still be swapping.
    let Some(_old) = lock_out_connections(path, crate::BUSY_TIMEOUT)? else {
        return Err(std::io::Error::other(format!(
            "{} holds a compacted copy of the catalog, but another program has the catalog open; \
             close it and run the command again",
            packed.display()
        )));
    };
    if packed.exists() {
        replace_with_packed(path, &packed)?;
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn finish_swap(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// A `.packing` copy (and what SQLite made beside it) left by a compaction
/// killed before its commit point is not the catalog: removed, unless a
/// compaction is writing it right now (it holds the catalog open, so its
/// lock bytes cannot be taken).
#[cfg(unix)]
fn clear_unfinished_copy(path: &Path) -> std::io::Result<()> {
    let left = COPY.iter().any(|suffix| sibling(path, suffix).exists());
    if !left || !path.exists() {
        return Ok(());
    }
    if lock_out_connections(path, Duration::ZERO)?.is_some() {
        remove_copy(path)?;
    }
    Ok(())
}

/// The WAL belongs to the old file: it goes first, so that SQLite never
/// applies it to the packed one. The old file is kept whole (not emptied)
/// for a reader that opened it before: SQLite would take a file of no
/// pages for a new database, and delete the WAL found beside it.
#[cfg(unix)]
fn replace_with_packed(path: &Path, packed: &Path) -> std::io::Result<()> {
    remove_if_there(&sibling(path, "-wal"))?;
    remove_if_there(&sibling(path, "-shm"))?;
    std::fs::rename(packed, path)?;
    sync_dir(path)
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
