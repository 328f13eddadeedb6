//! Packing a finished scan's catalog.
//!
//! The scan appends rows in key order, and a clustered table filled row by
//! row keeps its pages about a tenth empty; rebuilt in one pass it is
//! packed. `VACUUM` does that in place but writes every page three times (a
//! temporary copy, the WAL, the file). When no other connection has the
//! catalog open, s3rewind writes one packed copy with `VACUUM INTO` and
//! renames it over the catalog instead: a page written once, not three
//! times, and as safe against a crash (the copy is synced before the
//! rename; until then the catalog is untouched).

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::{sibling, Catalog, CatalogError, Result};

impl Catalog {
    /// Rewrites the catalog file packed. Run when a scan finishes.
    pub fn compact(&mut self) -> Result<()> {
        if self.compact_by_copy()? {
            return Ok(());
        }
        self.conn.execute_batch("VACUUM")?;
        Ok(())
    }

    /// `VACUUM INTO` a sibling file and rename it over the catalog, if this
    /// is the only connection. False (and the catalog as it was) otherwise.
    fn compact_by_copy(&mut self) -> Result<bool> {
        if !cfg!(unix) {
            return Ok(false);
        }
        let packed = sibling(&self.path, ".packing");
        // SQLite takes the file name as text.
        let Some(packed_text) = packed.to_str().map(str::to_owned) else {
            return Ok(false);
        };
        let io = |e: std::io::Error| CatalogError::Open {
            path: self.path.clone(),
            reason: format!("while compacting: {e}"),
        };
        remove_if_there(&packed).map_err(io)?;
        let copied = self
            .conn
            .execute("VACUUM INTO ?1", [packed_text])
            .map_err(CatalogError::from)
            .and_then(|_| File::open(&packed).and_then(|f| f.sync_all()).map_err(io));
        if let Err(e) = copied {
            // A partial copy (a full disk, say) is not left behind.
            let _ = remove_if_there(&packed);
            return Err(e);
        }
        // Closing the last connection checkpoints the WAL and removes it.
        let conn = std::mem::replace(&mut self.conn, rusqlite::Connection::open_in_memory()?);
        conn.close().map_err(|(_, e)| e)?;
        let swapped = swap_if_alone(&self.path, &packed);
        self.conn = crate::connect(&self.path)?;
        match swapped {
            Ok(true) => {
                // VACUUM INTO writes a rollback-journal file.
                self.conn.pragma_update(None, "journal_mode", "WAL")?;
                Ok(true)
            }
            Ok(false) => {
                remove_if_there(&packed).map_err(io)?;
                Ok(false)
            }
            Err(e) => {
                let _ = remove_if_there(&packed);
                Err(io(e))
            }
        }
    }
}

pub(crate) fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Renames `packed` over the catalog at `path` when no connection has it
/// open, keeping new ones out meanwhile. False if another is open.
#[cfg(unix)]
fn swap_if_alone(path: &Path, packed: &Path) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    let wal = sibling(path, "-wal");
    // Another connection still open keeps the WAL the last one to close removes.
    if wal.exists() {
        return Ok(false);
    }
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    // SQLite's lock bytes: PENDING, RESERVED and the 510 SHARED bytes. An
    // open connection holds a shared lock there; holding them all for
    // writing fails if one does, and keeps new ones waiting until the
    // rename is done (they retry for their busy timeout).
    // SAFETY: a zeroed flock is valid; the fields that matter are set.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = 0x4000_0000;
    lock.l_len = 512;
    // SAFETY: fcntl on an open descriptor with a valid flock.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) } != 0 || wal.exists() {
        return Ok(false);
    }
    remove_if_there(&sibling(path, "-shm"))?;
    std::fs::rename(packed, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()?;
    // Whoever opened the old file and waits for the lock finds it empty,
    // not a stale copy.
    file.set_len(0)?;
    Ok(true)
}

#[cfg(not(unix))]
fn swap_if_alone(_: &Path, _: &Path) -> std::io::Result<bool> {
    Ok(false)
}
