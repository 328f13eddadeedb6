//! One command at a time changes a catalog.
//!
//! Two scans of one catalog would hand out the same key ids, and two applies
//! would each take the other's in-flight actions for a crashed run's
//! leftovers. Commands that write (`scan`, `apply`, making or dropping a
//! plan) hold an exclusive `flock` on `<catalog>.lock` for as long as they
//! run; reading commands do not need it (SQLite's WAL lets them read while
//! a writer works).
//!
//! The lock file stays beside a catalog. A command that made no catalog
//! (it failed first) removes it on the way out: a holder unlinks it before
//! it unlocks, and whoever locks a file checks afterwards that it is still
//! the one at that path, so two commands never hold two files of one name.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::files::{open_private, sibling};
use crate::{CatalogError, Result};

/// Held while a command changes the catalog; released when dropped (or when
/// the process ends, however it ends).
#[derive(Debug)]
pub struct WorkLock {
    /// Holds the lock until dropped (after `Drop::drop`, so after the unlink).
    _file: File,
    catalog: PathBuf,
    lock_path: PathBuf,
}

impl WorkLock {
    /// Locks the catalog at `path` for `command` (named in the error another
    /// command gets meanwhile), or says who holds it.
    pub fn take(path: &Path, command: &str) -> Result<WorkLock> {
        let lock_path = sibling(path, ".lock");
        let open_err = |e: std::io::Error| CatalogError::Open {
            path: path.to_owned(),
            reason: format!("cannot create its lock file {}: {e}", lock_path.display()),
        };
        let mut file = loop {
            let mut file = open_private(&lock_path, false).map_err(open_err)?;
            if !try_lock(&file).map_err(open_err)? {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(CatalogError::Busy {
                    path: path.to_owned(),
                    holder: match holder.trim() {
                        "" => "another s3rewind command".to_owned(),
                        h => h.to_owned(),
                    },
                    lock_file: lock_path,
                });
            }
            // Its holder may have removed it between our open and our lock.
            if same_file(&file, &lock_path) {
                break file;
            }
        };
        // Who holds it, for the message the next command gets.
        let holder = format!(
            "`s3rewind {command}` (pid {}, since {})",
            std::process::id(),
            model::time::now_text()
        );
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(holder.as_bytes()))
            .map_err(open_err)?;
        Ok(WorkLock {
            _file: file,
            catalog: path.to_owned(),
            lock_path,
        })
    }
}

impl Drop for WorkLock {
    fn drop(&mut self) {
        if !self.catalog.exists() {
            let _ = std::fs::remove_file(&self.lock_path);
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, _: &Path) -> bool {
    true
}

#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor this function's caller keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_told_who_holds_it_and_no_lock_outlives_a_catalog_never_made() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("c.db");
        let lock = WorkLock::take(&catalog, "scan").unwrap();
        match WorkLock::take(&catalog, "apply") {
            Err(CatalogError::Busy { holder, .. }) => assert!(holder.contains("s3rewind scan")),
            other => panic!("{other:?}"),
        }
        drop(lock);
        assert!(!sibling(&catalog, ".lock").exists());
        std::fs::write(&catalog, b"").unwrap();
        drop(WorkLock::take(&catalog, "scan").unwrap());
        assert!(sibling(&catalog, ".lock").exists());
    }
}
