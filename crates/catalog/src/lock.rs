//! One command at a time changes a catalog.
//!
//! Two scans of one catalog would hand out the same key ids, and two applies
//! would each take the other's in-flight actions for a crashed run's
//! leftovers. Commands that write (`scan`, `apply`, making or dropping a
//! plan) hold an exclusive `flock` on `<catalog>.lock` for as long as they
//! run; reading commands do not need it (SQLite's WAL lets them read while
//! a writer works). The lock file stays behind: removing it could let two
//! processes each lock a different file of that name.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::{sibling, CatalogError, Result};

/// Held while a command changes the catalog; released when dropped (or when
/// the process ends, however it ends).
#[derive(Debug)]
pub struct WorkLock {
    _file: File,
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
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(open_err)?;
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
        // Who holds it, for the message the next command gets.
        let holder = format!(
            "`s3rewind {command}` (pid {}, since {})",
            std::process::id(),
            crate::now_rfc3339()
        );
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(holder.as_bytes()))
            .map_err(open_err)?;
        Ok(WorkLock { _file: file })
    }
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
