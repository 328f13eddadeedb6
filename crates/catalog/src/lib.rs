//! The s3rewind catalog: one SQLite file that holds a scanned bucket's versions
//! and delete markers, the per-prefix scan cursors, and the plans made from them.
//!
//! The schema lives in the numbered files of `migrations/` and is applied by
//! `sqlx::migrate!` whenever a catalog is opened; no code here creates tables.
//! Reads and small writes use one rusqlite connection ([`Catalog`]); the scan's
//! bulk inserts go through [`ScanWriter`], a dedicated thread with prepared
//! statements fed by a bounded channel.

pub mod actions;
mod compact;
mod lock;
mod rows;
mod scan_state;
mod writer;

use std::path::{Path, PathBuf};

pub use actions::{ActionKind, ActionRow, ActionStore, Outcome};
pub use lock::WorkLock;
pub use rows::{EntryRow, ScanPage};
pub use scan_state::{CursorState, Location, ScanRecord, ScanTotals};
pub use writer::{ScanWriter, WriterStats};

pub use rusqlite;

/// Page size of new catalogs. Four times SQLite's default: a scan writes and
/// compacts a quarter as many pages, rows pack slightly tighter, and
/// apply's commits cost fewer WAL frames. Catalogs made before keep theirs.
const PAGE_SIZE: u32 = 16_384;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no catalog at {0} (run `s3rewind scan s3://BUCKET` first, or pass --catalog PATH)")]
    NotFound(PathBuf),
    #[error("cannot open the catalog at {path}: {reason} (pass --catalog with a path in a writable directory)")]
    Open { path: PathBuf, reason: String },
    #[error("cannot bring the catalog at {path} up to date: {reason}")]
    Migrate { path: PathBuf, reason: String },
    #[error("catalog: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the catalog {path} is in use by {holder} (it holds {lock_file}); wait for it to finish, or stop it, and run this again")]
    Busy {
        path: PathBuf,
        holder: String,
        lock_file: PathBuf,
    },
    #[error("the catalog writer stopped: {0}")]
    WriterGone(String),
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// An open catalog file.
pub struct Catalog {
    path: PathBuf,
    conn: rusqlite::Connection,
}

impl Catalog {
    /// Opens an existing catalog, applying any migrations it lacks.
    pub async fn open(path: &Path) -> Result<Catalog> {
        if !path.exists() {
            return Err(CatalogError::NotFound(path.to_owned()));
        }
        Self::open_or_create(path).await
    }

    /// Opens the catalog at `path`, creating an empty one if there is none.
    pub async fn open_or_create(path: &Path) -> Result<Catalog> {
        compact::finish_swap(path).map_err(|e| CatalogError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        migrate(path).await?;
        let conn = connect(path)?;
        Ok(Catalog {
            path: path.to_owned(),
            conn,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &rusqlite::Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut rusqlite::Connection {
        &mut self.conn
    }
}

/// Removes a catalog file and its WAL companions (for `scan --fresh`).
pub fn remove(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm", ".packing", ".packed"] {
        compact::remove_if_there(&sibling(path, suffix))?;
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name (`catalog.db-wal`).
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

async fn migrate(path: &Path) -> Result<()> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::Connection;
    let open_err = |e: sqlx::Error| CatalogError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .page_size(PAGE_SIZE)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(std::time::Duration::from_secs(10));
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(open_err)?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| CatalogError::Migrate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    conn.close().await.map_err(open_err)
}

/// A rusqlite connection with the settings every s3rewind connection uses.
pub(crate) fn connect(path: &Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path).map_err(|e| CatalogError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// A connection for a thread that writes in bulk: WAL checkpoints every
/// 16,384 pages (256 MiB at the 16 KiB pages of new catalogs) instead of
/// every 1,000, so pages changed again and again (apply rewrites each
/// action twice) are copied back once; and a page cache of `cache_kib`.
pub(crate) fn connect_bulk(path: &Path, cache_kib: i64) -> Result<rusqlite::Connection> {
    let conn = connect(path)?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "wal_autocheckpoint", 16_384)?; // pages
    Ok(conn)
}

/// Now, as the RFC 3339 text the catalog stores.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
