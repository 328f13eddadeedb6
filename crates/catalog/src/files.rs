//! The catalog file and its companions on disk.
//!
//! A catalog lists every key of a bucket, so it is created readable by its
//! owner only, and so is every file made beside it: SQLite gives its `-wal`,
//! `-shm` and journals the permissions of the file they belong to, and the
//! files s3rewind makes itself (`.lock`, `.packing`) are created 0600.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// What follows a catalog's file name in the names of its companions.
const SUFFIXES: [&str; 10] = [
    "-wal",
    "-shm",
    "-journal",
    ".lock",
    ".packing",
    ".packing-journal",
    ".packing-wal",
    ".packing-shm",
    // What an older s3rewind's compaction, cut short, could leave.
    ".packed",
    ".packed-journal",
];

/// `path` with `suffix` appended to its file name (`catalog.db-wal`).
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A directory beside the catalog at `path`, readable by its owner only,
/// for the files a command downloads (an inventory report's).
pub fn work_dir(path: &Path) -> std::io::Result<PathBuf> {
    let dir = sibling(path, ".inventory");
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// The catalog at `path` and every file that may be made beside it: what a
/// command must never write over.
pub fn companions(path: &Path) -> Vec<PathBuf> {
    std::iter::once(path.to_owned())
        .chain(SUFFIXES.iter().map(|s| sibling(path, s)))
        .collect()
}

/// Removes a catalog file and its companions (for `scan --fresh`); the
/// `.lock` stays, as the command removing the rest holds it.
pub fn remove(path: &Path) -> std::io::Result<()> {
    for file in companions(path) {
        if file != sibling(path, ".lock") {
            remove_if_there(&file)?;
        }
    }
    Ok(())
}

pub(crate) fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Opens `path` for writing, creating it readable by its owner only.
pub(crate) fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Creates an empty catalog file, owner-only, unless one exists (an empty
/// file is an empty SQLite database).
pub(crate) fn create_private(path: &Path) -> std::io::Result<()> {
    if !path.exists() {
        open_private(path, false)?;
    }
    Ok(())
}

/// Whether users other than the owner may read the catalog (`status` says so).
pub fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}
