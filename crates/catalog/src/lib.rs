//! The s3rewind catalog: one SQLite file that holds a scanned bucket's
//! versions and delete markers, the per-prefix scan cursors, the plans made
//! from them, and what apply did. This crate owns every table: nothing
//! outside it writes SQL against them, a person's read-only SQL aside
//! ([`user_sql`]).
//!
//! The schema lives in the numbered files of `migrations/` and is applied by
//! `sqlx::migrate!` whenever a catalog is opened, once the file is found to
//! hold exactly what those migrations make (`schema`); no code here
//! creates tables.
//! Reads and small writes use one rusqlite connection ([`Catalog`]); the two
//! hot paths — the scan's bulk inserts ([`ScanWriter`]) and apply's claims
//! and outcomes ([`ActionStore`]) — each own a thread with prepared
//! statements fed by a bounded channel.
//!
//! # Layout
//!
//! - `schema`: a file runs nothing until its schema is exactly what the
//!   migrations make; every connection's defensive settings.
//! - `files`: the catalog file and its companions (`-wal`, `.lock`, …), created private.
//! - `scan_state`: the `scans` row and the key `ranges`, each with its cursor.
//! - `writer`: [`ScanWriter`], a scan's pages appended to `keys` and
//!   `entries`, and its ranges cut.
//! - `insert`: the bulk paths' multi-row INSERTs, binding rows in place.
//! - `compact`: packing a finished scan's file, the packed copy swapped in
//!   so that a reader sees a whole catalog at every instant.
//! - `lock`: [`WorkLock`], one writing command at a time.
//! - `hazards`: what a plan's remaining actions need from the bucket, for `check`.
//! - `inventory`: a catalog built from an S3 Inventory report, a file at a time
//!   (in one pass when the report is in key order), its repeated rows
//!   refused and its ties set aside; where each prefix's entries came from,
//!   and what its report lacked (`sources`).
//! - `history`: every key's entries in listing order, for the plan rules.
//! - `timeline`: entries counted per time slot by what they did to their key.
//! - [`plans`]: plans and their actions: made, listed, reported, exported, dropped.
//! - [`actions`]: [`ActionStore`], claiming and finishing actions for apply,
//!   and what done actions changed written into `entries`.
//! - `changes`: revisions of the catalog after the scan (apply runs, keys
//!   listed again), and which plans they made stale.
//! - `journal`: apply's done copies read back: which versions of a key
//!   hold the same bytes.
//! - `outcomes`: a plan's keys with their scanned history and the plan's actions, for verify.
//! - `rescan`: a plan's keys listed again, their entries brought up to date;
//!   a report's keys whose entries tie on time, listed before its ingest ends.
//! - [`user_sql`]: a person's SQL, compiled read-only.

pub mod actions;
mod changes;
mod compact;
mod files;
mod hazards;
mod history;
mod insert;
mod inventory;
mod journal;
mod lock;
mod outcomes;
pub mod plans;
mod rescan;
mod scan_state;
mod schema;
mod timeline;
pub mod user_sql;
mod writer;

use std::path::{Path, PathBuf};

pub use actions::{
    ActionRow, ActionStore, Claim, Expectations, Expected, Follow, Outcome, Resolution,
};
pub use changes::{Change, ChangeKind, Staleness};
pub use files::{companions, readable_by_others, remove, work_dir};
pub use hazards::{ActionRef, NeededVersion};
pub use history::{HistoryRow, KeyHistory};
pub use inventory::{IngestStart, PrefixListing, ReportRows, Settled, Source};
pub use journal::Copies;
pub use lock::WorkLock;
pub use outcomes::{Intended, KeyAction, PlannedKey, SeenEntry, Top};
pub use scan_state::{Bounds, RangeState, ScanRecord, ScanTotals};
pub use schema::Difference;
pub use timeline::{Slot, TimelineFilter, TIMELINE_SQL};
pub use writer::{Cut, ScanPage, ScanWriter, WriterHandle, WriterStats};

pub use rusqlite;

/// Page size of new catalogs. Four times SQLite's default: a scan writes and
/// compacts a quarter as many pages, rows pack slightly tighter, and
/// apply's commits cost fewer WAL frames. Catalogs made before keep theirs.
const PAGE_SIZE: u32 = 16_384;

/// How long a connection waits for another to let go of the catalog.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// What can go wrong with a catalog. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no catalog at {0} (run `s3rewind scan s3://BUCKET` first, or pass --catalog PATH)")]
    NotFound(PathBuf),
    #[error("cannot open the catalog at {path}: {reason}\n  hint: pass --catalog with a path in a directory you can write to")]
    Open { path: PathBuf, reason: String },
    #[error("{path} is not an s3rewind catalog ({reason})\n  hint: pass --catalog with the catalog's path; to start a new catalog, choose a path where no file is")]
    NotACatalog { path: PathBuf, reason: String },
    #[error("the catalog {path} was written by a newer s3rewind (its schema is version {found}, this s3rewind knows up to {known})\n  hint: use that newer s3rewind, or scan into a new catalog")]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// A file whose schema is not exactly what s3rewind's migrations make:
    /// something added, missing or changed (a trigger, a view redefined, a
    /// table swapped for a view, a default changed). SQL stored in a file
    /// runs inside s3rewind's own statements, so such a file is refused
    /// before anything runs on it or writes to it.
    #[error("{path} is not a catalog s3rewind made, and s3rewind runs nothing from it (the file is left as it was): {}", schema::describe(differences))]
    Untrusted {
        path: PathBuf,
        differences: Vec<Difference>,
    },
    /// A catalog that s3rewind did not make where it lies (copied, sent)
    /// and that fails SQLite's quick check.
    #[error("the catalog {path} is damaged: SQLite's quick check found {problems}\n  hint: use another copy of it if you have one; otherwise scan the bucket into a new catalog (`s3rewind scan s3://BUCKET --catalog new.db`)")]
    Damaged { path: PathBuf, problems: String },
    #[error("cannot bring the catalog at {path} up to date: {reason}")]
    Migrate { path: PathBuf, reason: String },
    #[error("catalog: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A person's SQL that does not compile; `what` names it (`--where`, `the query`).
    #[error("{what} is not valid SQL: {reason}")]
    BadSql { what: String, reason: String },
    /// A person's SQL that asks to change something.
    #[error("{what} may only read the catalog, but it asks for {denied}; nothing was changed")]
    Denied { what: String, denied: String },
    #[error("the catalog {path} is in use by {holder} (it holds {lock_file}); wait for it to finish, or stop it, and run this again")]
    Busy {
        path: PathBuf,
        holder: String,
        lock_file: PathBuf,
    },
    /// Keys did not get the ids a writer handed out (`given`: the last
    /// id SQLite gave; none when the ids handed out did not follow one
    /// another): something else wrote `keys` meanwhile.
    #[error("{}\n  hint: make sure one s3rewind at a time writes this catalog, and run the command again", match given {
        Some(given) => format!("the catalog gave its new keys ids up to {given} where up to {expected} were expected: something else wrote to it meanwhile"),
        None => format!("new keys up to id {expected} were handed ids that do not follow one another"),
    })]
    KeyIds { expected: i64, given: Option<i64> },
    #[error("the catalog writer stopped: {0}")]
    WriterGone(String),
    /// A command that would mix what the catalog holds with something else
    /// (a listing with an inventory report, two reports); says what to do.
    #[error("{0}")]
    Refused(String),
    /// An inventory report that lists one version of a key twice: a listing
    /// names each version once, and one row would become two entries.
    #[error("the inventory report lists version {version_id} of key {key:?} twice, which no listing does: the report is damaged\n  hint: use another day's report, or build the catalog by listing the bucket (`scan --fresh` without --inventory)")]
    ListedTwice { key: String, version_id: String },
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

    /// Opens the catalog at `path`, creating an empty one (readable by its
    /// owner only) if there is none.
    pub async fn open_or_create(path: &Path) -> Result<Catalog> {
        let open_err = |e: std::io::Error| CatalogError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        compact::finish_swap(path).map_err(open_err)?;
        files::create_private(path).map_err(open_err)?;
        let schemas = schema::Schemas::get().await?;
        // Before anything runs on the file or writes to it.
        let found = schema::check(path, schemas)?;
        let migrated = found.version < schemas.latest();
        // A catalog that is up to date is not opened through the migrator,
        // whose connection sets WAL mode: that takes the file to itself,
        // which an inventory ingest (in rollback-journal mode while it runs)
        // would refuse to a `status` looking on.
        if migrated {
            migrate(path).await?;
        }
        let conn = connect(path)?;
        if migrated {
            schema::check_migrated(&conn, path, schemas)?;
        }
        if !found.marked {
            schema::stamp(&conn, path)?;
        }
        let catalog = Catalog {
            path: path.to_owned(),
            conn,
        };
        catalog.back_to_wal()?;
        Ok(catalog)
    }

    /// Puts the catalog back in WAL mode, which every command expects, if
    /// an inventory ingest left it in rollback-journal mode (its connection
    /// could not switch back: another one was open) and is not running: no
    /// file of a report is waiting.
    fn back_to_wal(&self) -> Result<()> {
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        let ingesting: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM inventory_files WHERE done = 0)",
            [],
            |r| r.get(0),
        )?;
        if mode != "wal" && !ingesting {
            // Best effort: with another connection open it waits, then fails; the next open tries again.
            let _ = back_to_wal(&self.conn);
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &rusqlite::Connection {
        &self.conn
    }

    /// An index of keys by name, which joins on `key` need (a person's SQL,
    /// `plan sql`). Not part of the schema: it would add a third to the
    /// size of a catalog that nobody joins that way. Built on first use;
    /// returns whether it was built now.
    pub fn index_keys(&self) -> Result<bool> {
        let exists: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'index' AND name = 'keys_by_key'",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            self.conn.execute_batch(include_str!("sql/key_index.sql"))?;
        }
        Ok(!exists)
    }
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
        .page_size(PAGE_SIZE)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(open_err)?;
    schema::harden_sqlx(&mut conn).await.map_err(open_err)?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| CatalogError::Migrate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    conn.close().await.map_err(open_err)
}

/// Puts `conn`'s catalog in WAL mode, by way of DELETE mode: from PERSIST
/// straight to WAL, SQLite would leave the rollback journal's file behind.
pub(crate) fn back_to_wal(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
}

/// Ids as a JSON array, for `IN (SELECT value FROM json_each(?))`: one
/// bound parameter however many ids.
pub(crate) fn json_ids(ids: &[i64]) -> String {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("[{}]", list.join(","))
}

/// A rusqlite connection with the settings every s3rewind connection uses,
/// [`schema::harden`]'s first.
pub(crate) fn connect(path: &Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path).map_err(|e| CatalogError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    schema::harden(&conn)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
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

/// Catalogs made without a network, for tests and examples: the rows a
/// scan would write, through the catalog's own writer.
pub mod fixture {
    use std::path::Path;

    use model::{Entry, Location};

    use super::*;

    /// Writes a finished scan of `location` holding `entries` (keys
    /// ascending, each key newest first) into a new catalog at `path`.
    /// Call it outside an async runtime.
    pub fn write_finished_scan(
        path: &Path,
        location: &Location,
        entries: Vec<Entry>,
    ) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CatalogError::WriterGone(e.to_string()))?;
        runtime.block_on(async {
            let mut catalog = Catalog::open_or_create(path).await?;
            catalog.begin_scan(
                location,
                Some("us-east-1"),
                "Enabled",
                &[String::new()],
                None,
            )?;
            let range_id = catalog.ranges()?[0].id;
            let writer = ScanWriter::spawn(path, 2)?;
            let page = ScanPage {
                range_id,
                entries,
                next_key_marker: None,
                next_version_id_marker: None,
                done: true,
            };
            let sent = writer.handle().page(page).await;
            tokio::task::spawn_blocking(move || writer.finish())
                .await
                .map_err(|e| CatalogError::WriterGone(e.to_string()))??;
            sent?;
            catalog.finish_scan()?;
            Ok(())
        })
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Catalogs for the tests beside the queries.

    use model::Entry;

    use super::*;

    /// A new catalog in a temporary directory holding a finished scan of
    /// `entries` (keys ascending, each key newest first).
    pub fn catalog_with(entries: Vec<Entry>) -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let location = model::Location {
            bucket: "b".into(),
            base_prefix: String::new(),
            endpoint: None,
        };
        fixture::write_finished_scan(&path, &location, entries).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let catalog = rt.block_on(Catalog::open(&path)).unwrap();
        (dir, catalog)
    }

    /// An action of [`plan_with`]: kind, key, key id, the version acted
    /// on, the key's newest when scanned.
    pub type TestAction<'a> = (
        model::ActionKind,
        &'a str,
        i64,
        Option<&'a str>,
        Option<&'a str>,
    );

    /// A plan named `p` of `actions`; returns its id.
    pub fn plan_with(catalog: &Catalog, actions: &[TestAction<'_>]) -> i64 {
        let plan = crate::plans::NewPlan {
            name: "p",
            rule: "sql",
            parameters: "{}",
            scan_id: 1,
        };
        catalog
            .insert_plan::<CatalogError>(&plan, |w| {
                for &(kind, key, key_id, version_id, expected_latest) in actions {
                    w.push(&crate::plans::NewAction {
                        kind,
                        key,
                        key_id,
                        version_id,
                        seq: None,
                        size: None,
                        storage_class: None,
                        why: String::new(),
                        expected_latest,
                    })?;
                }
                Ok(())
            })
            .unwrap();
        catalog.plan_id("p").unwrap().expect("just made")
    }

    /// An entry of `key` at `mtime`; `marker` for a delete marker.
    pub fn entry(key: &str, version: &str, marker: bool, mtime: i64) -> Entry {
        Entry {
            key: key.into(),
            version_id: version.into(),
            is_marker: marker,
            is_latest: false,
            mtime,
            size: (!marker).then_some(10),
            etag: (!marker).then(|| "d41d8cd98f00b204e9800998ecf8427e".into()),
            storage_class: None,
        }
    }
}
