//! A catalog is data, never code: a file runs nothing until its schema is
//! exactly what s3rewind makes.
//!
//! Catalogs are handed around for review, so a file from someone else is
//! hostile input, and SQLite runs SQL stored in the file itself: a trigger
//! fires on s3rewind's own `UPDATE actions`, a view answers the review's
//! queries, and CHECK constraints, DEFAULT values, generated columns and
//! indexes on expressions are evaluated as rows are read or written; a table
//! can be swapped for a view of the same name (sqlite.org/security.html,
//! "Untrusted SQLite Database Files"). So before anything else touches a
//! file, every row of its `sqlite_master` (kind, name, table, SQL text) must
//! be one that s3rewind's migrations make at the version the file records,
//! plus the key index s3rewind adds itself (`sql/key_index.sql`) and the
//! tables SQLite makes of its own accord (`sqlite_sequence`,
//! `sqlite_stat*`); anything added, missing or changed is refused, named.
//! The expected rows are written down nowhere: they are what the embedded
//! migrations ([`MIGRATOR`]) leave in a private in-memory database, run once
//! a process, so a new migration brings its own.
//!
//! Every connection is opened with `trusted_schema` off (what the schema
//! holds may call only functions without side effects) and
//! `SQLITE_DBCONFIG_DEFENSIVE` on (SQL cannot corrupt the file: no
//! `writable_schema`, no `journal_mode = OFF`), both recommended by the same
//! page for files of unknown origin: a second line behind the comparison.
//!
//! The same page says to run `PRAGMA quick_check` on such a file and
//! refuse it if damaged. It reads every page — seconds for millions of
//! versions — so it runs only on a file s3rewind did not make where it
//! lies: s3rewind marks the catalogs it makes with an application id and,
//! as `user_version`, a fingerprint of the file's device and inode
//! ([`stamp`]). A file copied, downloaded or sent has another inode, and is
//! checked once (then marked, if it passes and may be written). It runs
//! after the schema comparison, not before as that page has it: it
//! evaluates the file's CHECK constraints over every row, which must be
//! s3rewind's own by then.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::config::DbConfig;

use crate::{CatalogError, Result, MIGRATOR};

/// `PRAGMA application_id` of the catalogs s3rewind makes ("s3rw").
const APPLICATION_ID: i32 = 0x7333_7277;

/// The tables SQLite makes by itself in any database, with the SQL text it
/// gives them (sqlite.org/fileformat2.html, "Internal Schema Objects"):
/// AUTOINCREMENT's counters and ANALYZE's statistics (a person may run
/// ANALYZE on a catalog with `sqlite3`; stat2 and stat3 are older
/// SQLites'). Plain tables, without constraints: nothing in them runs.
const SQLITE_OWN: [(&str, &str); 5] = [
    ("sqlite_sequence", "CREATE TABLE sqlite_sequence(name,seq)"),
    ("sqlite_stat1", "CREATE TABLE sqlite_stat1(tbl,idx,stat)"),
    (
        "sqlite_stat2",
        "CREATE TABLE sqlite_stat2(tbl,idx,sampleno,sample)",
    ),
    (
        "sqlite_stat3",
        "CREATE TABLE sqlite_stat3(tbl,idx,neq,nlt,ndlt,sample)",
    ),
    (
        "sqlite_stat4",
        "CREATE TABLE sqlite_stat4(tbl,idx,neq,nlt,ndlt,sample)",
    ),
];

/// One row of `sqlite_master`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    /// `table`, `index`, `view` or `trigger`.
    kind: String,
    name: String,
    /// The table an index or trigger belongs to (a table's or view's own name).
    table: String,
    /// The statement that made it; NULL for the indexes SQLite makes for
    /// UNIQUE and PRIMARY KEY constraints.
    sql: Option<String>,
}

impl Object {
    fn sqlite_own(name: &str) -> Option<Object> {
        SQLITE_OWN
            .iter()
            .find(|(own, _)| *own == name)
            .map(|(name, sql)| Object {
                kind: "table".into(),
                name: (*name).into(),
                table: (*name).into(),
                sql: Some((*sql).into()),
            })
    }
}

/// How a file's schema differs from the one s3rewind makes, one object at
/// a time, for [`CatalogError::Untrusted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// An object s3rewind never makes (a trigger, an index, a view…).
    Added { kind: String, name: String },
    /// An object of the schema that the file lacks.
    Missing { kind: String, name: String },
    /// An object of the right name but another kind, table or SQL text (a
    /// view redefined, a table swapped for a view, a default changed).
    Changed {
        kind: String,
        name: String,
        expected_kind: String,
    },
    /// The record of migrations run (`_sqlx_migrations`) is not one
    /// s3rewind's migrations leave.
    Record(String),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Added { kind, name } => {
                write!(f, "{kind} `{name}`, which s3rewind never makes")
            }
            Difference::Missing { kind, name } => write!(f, "no {kind} `{name}`"),
            Difference::Changed {
                kind,
                name,
                expected_kind,
            } if kind != expected_kind => {
                write!(
                    f,
                    "`{name}` as a {kind}, where s3rewind makes a {expected_kind}"
                )
            }
            Difference::Changed { kind, name, .. } => {
                write!(
                    f,
                    "{kind} `{name}` defined otherwise than s3rewind defines it"
                )
            }
            Difference::Record(what) => f.write_str(what),
        }
    }
}

/// The differences, for the error's message: the first few, and how many
/// more; then what to do.
pub(crate) fn describe(differences: &[Difference]) -> String {
    const SHOWN: usize = 5;
    let mut text: Vec<String> = differences
        .iter()
        .take(SHOWN)
        .map(|d| d.to_string())
        .collect();
    if differences.len() > SHOWN {
        text.push(format!("and {} more", differences.len() - SHOWN));
    }
    let drops: Vec<String> = differences
        .iter()
        .map_while(|d| match d {
            Difference::Added { kind, name } => Some(format!(
                "DROP {} \"{}\";",
                kind.to_uppercase(),
                name.replace('"', "\"\"")
            )),
            _ => None,
        })
        .collect();
    let hint = if drops.len() == differences.len() {
        format!(
            "if you added {} yourself, drop {} with sqlite3 (`{}`) and run the command again; \
             a catalog someone else sent you: scan the bucket into a catalog of your own \
             (`s3rewind scan s3://BUCKET --catalog mine.db`) and make the plan there",
            if drops.len() == 1 { "it" } else { "them" },
            if drops.len() == 1 { "it" } else { "them" },
            drops.join(" ")
        )
    } else {
        "scan the bucket into a catalog of your own (`s3rewind scan s3://BUCKET --catalog mine.db`) \
         and make the plan there; to review someone's plan, ask for a catalog s3rewind made"
            .into()
    };
    format!("it holds {}\n  hint: {hint}", text.join("; "))
}

/// What s3rewind's migrations make, at every version.
pub(crate) struct Schemas {
    /// `sqlite_master` after the migrations up to each version, sorted by
    /// name; version 0 holds only the migrations' own record.
    at: BTreeMap<i64, Vec<Object>>,
    /// The objects s3rewind adds outside the migrations, when it needs them.
    optional: Vec<Object>,
    /// Each migration's version and checksum, in order.
    migrations: Vec<(i64, Vec<u8>)>,
}

static SCHEMAS: tokio::sync::OnceCell<Schemas> = tokio::sync::OnceCell::const_new();

impl Schemas {
    /// The schemas, made on first use (a few milliseconds).
    pub(crate) async fn get() -> Result<&'static Schemas> {
        SCHEMAS
            .get_or_try_init(|| async {
                Schemas::run().await.map_err(|e| CatalogError::Migrate {
                    path: ":memory:".into(),
                    reason: format!("running the migrations into an empty database: {e}"),
                })
            })
            .await
    }

    /// Runs the migrations one at a time into a private in-memory database,
    /// through the same migrator and settings as a catalog's.
    async fn run() -> Result<Schemas, sqlx::Error> {
        use sqlx::sqlite::SqliteConnectOptions;
        use sqlx::Connection;
        let mut conn =
            sqlx::SqliteConnection::connect_with(&SqliteConnectOptions::new().in_memory(true))
                .await?;
        harden_sqlx(&mut conn).await?;
        let migrations: Vec<(i64, Vec<u8>)> = MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect();
        let mut at = BTreeMap::new();
        for version in std::iter::once(0).chain(migrations.iter().map(|m| m.0)) {
            MIGRATOR.run_to(version, &mut conn).await?;
            at.insert(version, master_sqlx(&mut conn).await?);
        }
        let last = at.values().next_back().cloned().unwrap_or_default();
        sqlx::raw_sql(include_str!("sql/key_index.sql"))
            .execute(&mut conn)
            .await?;
        let optional = master_sqlx(&mut conn)
            .await?
            .into_iter()
            .filter(|o| !last.contains(o))
            .collect();
        conn.close().await?;
        Ok(Schemas {
            at,
            optional,
            migrations,
        })
    }

    /// The newest version this s3rewind knows.
    pub(crate) fn latest(&self) -> i64 {
        self.migrations.last().map_or(0, |m| m.0)
    }

    /// How `found` (a file's `sqlite_master`) differs from the schema at
    /// `version`, sorted by name; empty when it is that schema.
    fn differences(&self, version: i64, found: &[Object]) -> Vec<Difference> {
        let expected = self.at.get(&version).map_or(&[][..], Vec::as_slice);
        let mut differences = Vec::new();
        for object in found {
            let known = expected
                .iter()
                .chain(self.optional.iter().filter(|o| {
                    // The key index, where its table exists.
                    expected
                        .iter()
                        .any(|t| t.kind == "table" && t.name == o.table)
                }))
                .find(|o| o.name == object.name)
                .cloned()
                .or_else(|| Object::sqlite_own(&object.name));
            match known {
                None => differences.push(Difference::Added {
                    kind: object.kind.clone(),
                    name: object.name.clone(),
                }),
                Some(known) if known != *object => differences.push(Difference::Changed {
                    kind: object.kind.clone(),
                    name: object.name.clone(),
                    expected_kind: known.kind,
                }),
                Some(_) => {}
            }
        }
        for object in expected {
            if !found.iter().any(|f| f.name == object.name) {
                differences.push(Difference::Missing {
                    kind: object.kind.clone(),
                    name: object.name.clone(),
                });
            }
        }
        differences.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        differences
    }

    /// The version a file's record of migrations says it is at, if that
    /// record is one s3rewind's migrations leave: each of its migrations,
    /// in order, with the same checksum, none failed. A version past the
    /// newest known is a newer s3rewind's, returned as is.
    fn recorded_version(&self, record: &[(i64, bool, Vec<u8>)]) -> Result<i64, Difference> {
        let mut known = self.migrations.iter();
        let mut version = 0;
        for (found, success, checksum) in record {
            if *found > self.latest() {
                // Ordered by version: the newest is last.
                return Ok(record.last().map_or(*found, |r| r.0));
            }
            let problem = match known.next() {
                _ if !success => format!("a record of migration {found} as failed"),
                Some((v, sum)) if v == found && sum == checksum => {
                    version = *found;
                    continue;
                }
                Some((v, _)) if v == found => {
                    format!(
                        "a record of migration {found} that is not s3rewind's migration {found}"
                    )
                }
                _ => {
                    format!("a record of migrations s3rewind never ran in that order (at {found})")
                }
            };
            return Err(Difference::Record(problem));
        }
        Ok(version)
    }
}

fn name_of(d: &Difference) -> &str {
    match d {
        Difference::Added { name, .. }
        | Difference::Missing { name, .. }
        | Difference::Changed { name, .. } => name,
        Difference::Record(_) => "",
    }
}

const MASTER: &str = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name";

async fn master_sqlx(conn: &mut sqlx::SqliteConnection) -> Result<Vec<Object>, sqlx::Error> {
    let rows: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as(MASTER).fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(kind, name, table, sql)| Object {
            kind,
            name,
            table,
            sql,
        })
        .collect())
}

fn master(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<Object>> {
    let mut stmt = conn.prepare(MASTER)?;
    let rows = stmt.query_map([], |r| {
        Ok(Object {
            kind: r.get(0)?,
            name: r.get(1)?,
            table: r.get(2)?,
            sql: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// What [`check`] found in a file that may be opened.
pub(crate) struct Found {
    /// The schema version it is at (0: an empty file).
    pub version: i64,
    /// Whether it carries the mark of a catalog s3rewind made where it lies.
    pub marked: bool,
}

/// Checks the file at `path` before anything runs on it or writes to it:
/// a SQLite database, empty or holding exactly the schema s3rewind's
/// migrations make at the version it records, not newer than this
/// s3rewind's, and — unless s3rewind made it where it lies — whole.
pub(crate) fn check(path: &Path, schemas: &Schemas) -> Result<Found> {
    use rusqlite::OpenFlags;
    let not_catalog = |reason: String| CatalogError::NotACatalog {
        path: path.to_owned(),
        reason,
    };
    // Read-write (creating nothing) where it can: a catalog whose last
    // writer was killed mid-transaction in rollback-journal mode (an
    // inventory ingest) has a hot journal, which only a writer can roll back.
    let conn = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .or_else(|_| rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY))
        .map_err(|e| not_catalog(e.to_string()))?;
    harden(&conn)?;
    conn.busy_timeout(crate::BUSY_TIMEOUT)?;
    let found = match master(&conn) {
        Ok(found) => found,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(
                e.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
        {
            return Err(not_catalog(
                "it is not a SQLite database, or it is damaged".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if found.is_empty() {
        return Ok(Found {
            version: 0,
            marked: false,
        });
    }
    let untrusted = |differences: Vec<Difference>| CatalogError::Untrusted {
        path: path.to_owned(),
        differences,
    };
    let is_table = |name: &str| found.iter().any(|o| o.kind == "table" && o.name == name);
    if !is_table("_sqlx_migrations") || !is_table("scans") {
        return Err(not_catalog(
            "it is a SQLite database of another program".into(),
        ));
    }
    // The record is read only once it is the table the migrator makes.
    let differences = schemas.differences(0, &found);
    if differences.iter().any(|d| name_of(d) == "_sqlx_migrations") {
        return Err(untrusted(differences));
    }
    let record: Vec<(i64, bool, Vec<u8>)> = conn
        .prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let version = schemas
        .recorded_version(&record)
        .map_err(|d| untrusted(vec![d]))?;
    if version > schemas.latest() {
        return Err(CatalogError::NewerSchema {
            path: path.to_owned(),
            found: version,
            known: schemas.latest(),
        });
    }
    let differences = schemas.differences(version, &found);
    if !differences.is_empty() {
        return Err(untrusted(differences));
    }
    let marked = is_marked(&conn, path)?;
    if !marked {
        quick_check(&conn, path)?;
    }
    Ok(Found { version, marked })
}

/// Checks a catalog after migrating it: the schema is the newest one.
pub(crate) fn check_migrated(
    conn: &rusqlite::Connection,
    path: &Path,
    schemas: &Schemas,
) -> Result<()> {
    let differences = schemas.differences(schemas.latest(), &master(conn)?);
    if differences.is_empty() {
        return Ok(());
    }
    Err(CatalogError::Untrusted {
        path: path.to_owned(),
        differences,
    })
}

/// SQLite's own check of every page and row (not of indexes against their
/// tables): refuses a damaged file, or one altered outside SQLite.
fn quick_check(conn: &rusqlite::Connection, path: &Path) -> Result<()> {
    let problems: Vec<String> = conn
        .prepare("PRAGMA quick_check(3)")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if problems.iter().all(|p| p == "ok") {
        return Ok(());
    }
    Err(CatalogError::Damaged {
        path: path.to_owned(),
        problems: problems.join("; "),
    })
}

/// The fingerprint of the file at `path` where it lies: its device and inode
/// folded into the 32 bits of `user_version`. None where there are no inodes.
fn fingerprint(path: &Path) -> Option<i32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        let both = meta.ino() ^ meta.dev().rotate_left(32);
        Some((both ^ (both >> 32)) as u32 as i32)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Whether the file carries s3rewind's mark for the file at `path`.
fn is_marked(conn: &rusqlite::Connection, path: &Path) -> Result<bool> {
    let Some(fingerprint) = fingerprint(path) else {
        return Ok(false);
    };
    let (id, version): (i32, i32) = conn.query_row(
        "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(id == APPLICATION_ID && version == fingerprint)
}

/// Marks the file that `conn` has open, at `path`, as a catalog s3rewind
/// made there (or checked whole there), so that opening it skips the
/// quick check. Nothing happens where the file is read-only.
pub(crate) fn stamp(conn: &rusqlite::Connection, path: &Path) -> Result<()> {
    let Some(fingerprint) = fingerprint(path) else {
        return Ok(());
    };
    // PRAGMAs take no parameters; both values are numbers.
    let set = conn.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {fingerprint};"
    ));
    match set {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ReadOnly => {
            Ok(())
        }
        other => Ok(other?),
    }
}

/// The settings every connection gets before its first statement: SQL that
/// the file holds may call only functions without side effects, and no SQL
/// may corrupt the file.
pub(crate) fn harden(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    Ok(())
}

/// [`harden`] for the connection sqlx opens to run the migrations (sqlx has
/// no setting for `sqlite3_db_config`; its handle is borrowed for it).
pub(crate) async fn harden_sqlx(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let raw = handle.as_raw_handle().as_ptr();
    // SAFETY: `raw` is sqlx's open connection, which `handle` keeps from
    // sqlx's worker thread meanwhile; a connection made with `from_handle`
    // never closes the handle it borrows.
    let borrowed = unsafe { rusqlite::Connection::from_handle(raw) }
        .map_err(|e| sqlx::Error::Configuration(Box::new(e)))?;
    harden(&borrowed).map_err(|e| sqlx::Error::Configuration(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn bytes(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    #[test]
    fn the_schemas_come_from_the_migrations_and_sqlites_own_tables_from_sqlite() {
        let rt = runtime();
        let schemas = rt.block_on(Schemas::get()).unwrap();
        let newest = MIGRATOR.iter().map(|m| m.version).max().unwrap();
        assert_eq!(schemas.latest(), newest);
        assert_eq!(schemas.at.len() as i64, newest + 1);
        let names =
            |v: i64| -> Vec<&str> { schemas.at[&v].iter().map(|o| o.name.as_str()).collect() };
        assert!(names(0).contains(&"_sqlx_migrations"));
        assert!(!names(0).contains(&"scans"));
        // Migration 5 turned the table `cursors` into a view.
        let cursors = |v: i64| {
            schemas.at[&v]
                .iter()
                .find(|o| o.name == "cursors")
                .unwrap()
                .kind
                .clone()
        };
        assert_eq!(
            (cursors(4).as_str(), cursors(5).as_str()),
            ("table", "view")
        );
        assert_eq!(schemas.optional.len(), 1);
        assert_eq!(schemas.optional[0].name, "keys_by_key");
        // SQLite's own tables, as this SQLite makes them.
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x); INSERT INTO t (x) VALUES (1); \
             CREATE INDEX t_x ON t (x); ANALYZE;",
        )
        .unwrap();
        let own: Vec<Object> = master(&conn)
            .unwrap()
            .into_iter()
            .filter(|o| o.name.starts_with("sqlite_"))
            .collect();
        assert!(own.len() >= 2, "{own:?}");
        for object in own {
            assert_eq!(Some(&object), Object::sqlite_own(&object.name).as_ref());
        }
    }

    #[test]
    fn a_catalog_made_at_an_older_version_is_checked_migrated_checked_again_and_marked() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        rt.block_on(async {
            use sqlx::sqlite::SqliteConnectOptions;
            use sqlx::Connection;
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            MIGRATOR.run_to(5, &mut conn).await.unwrap();
            sqlx::raw_sql(
                "INSERT INTO scans (bucket, base_prefix, versioning, started_at) \
                 VALUES ('b', '', 'Enabled', '2024-05-01T00:00:00Z')",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        });
        let catalog = rt.block_on(Catalog::open(&path)).unwrap();
        let schemas = rt.block_on(Schemas::get()).unwrap();
        check_migrated(catalog.conn(), &path, schemas).unwrap();
        assert!(is_marked(catalog.conn(), &path).unwrap());
        let bucket: String = catalog
            .conn()
            .query_row("SELECT bucket FROM scans", [], |r| r.get(0))
            .unwrap();
        assert_eq!(bucket, "b");
        drop(catalog);
        // Opened again: as it was, nothing to migrate, marked.
        let found = check(&path, schemas).unwrap();
        assert_eq!((found.version, found.marked), (schemas.latest(), true));
    }

    #[test]
    fn an_added_changed_or_missing_object_is_named_and_the_file_left_as_it_was() {
        let rt = runtime();
        let (dir, catalog) =
            crate::testing::catalog_with(vec![crate::testing::entry("k", "v1", false, 1)]);
        let path = catalog.path().to_owned();
        drop(catalog);
        let original = dir.path().join("original.db");
        std::fs::copy(&path, &original).unwrap();
        let cases: [(&str, &str, &str); 6] = [
            (
                "CREATE TRIGGER copies_into_deletes AFTER UPDATE OF status ON actions \
                 BEGIN UPDATE actions SET kind = 'delete_version' WHERE plan_id = NEW.plan_id; END",
                "trigger `copies_into_deletes`, which s3rewind never makes",
                "DROP TRIGGER \"copies_into_deletes\";",
            ),
            (
                "DROP VIEW plan_review; CREATE VIEW plan_review AS SELECT * FROM actions WHERE 0",
                "view `plan_review` defined otherwise",
                "ask for a catalog s3rewind made",
            ),
            (
                "DROP INDEX actions_by_key",
                "no index `actions_by_key`",
                "scan the bucket into a catalog of your own",
            ),
            (
                "DROP VIEW cursors; CREATE TABLE cursors (prefix TEXT)",
                "`cursors` as a table, where s3rewind makes a view",
                "scan the bucket",
            ),
            (
                "CREATE INDEX keys_by_key ON keys (key COLLATE NOCASE)",
                "index `keys_by_key` defined otherwise",
                "scan the bucket",
            ),
            (
                "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 3",
                "migration 3 that is not s3rewind's migration 3",
                "scan the bucket",
            ),
        ];
        for (change, named, hint) in cases {
            std::fs::copy(&original, &path).unwrap();
            rusqlite::Connection::open(&path)
                .unwrap()
                .execute_batch(change)
                .unwrap();
            let before = bytes(&path);
            let err = rt.block_on(Catalog::open(&path)).err().unwrap();
            assert!(
                matches!(err, CatalogError::Untrusted { .. }),
                "{change}: {err}"
            );
            let message = err.to_string();
            assert!(message.contains(named), "{change}: {message}");
            assert!(message.contains(hint), "{change}: {message}");
            assert!(message.contains("not a catalog s3rewind made"), "{message}");
            assert!(bytes(&path) == before, "{change}: the file changed");
        }
        // The key index as s3rewind makes it is welcome.
        std::fs::copy(&original, &path).unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(include_str!("sql/key_index.sql"))
            .unwrap();
        rt.block_on(Catalog::open(&path)).unwrap();
    }

    #[test]
    fn a_copy_is_checked_whole_once_and_a_damaged_one_refused() {
        let rt = runtime();
        let entries = (0..3000)
            .map(|i| crate::testing::entry(&format!("key/{i:05}"), "v1", false, i))
            .collect();
        let (dir, catalog) = crate::testing::catalog_with(entries);
        let path = catalog.path().to_owned();
        assert!(is_marked(catalog.conn(), &path).unwrap());
        drop(catalog);
        let schemas = rt.block_on(Schemas::get()).unwrap();
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        // Another inode: not marked, checked, then marked.
        assert!(!check(&copy, schemas).unwrap().marked);
        drop(rt.block_on(Catalog::open(&copy)).unwrap());
        assert!(check(&copy, schemas).unwrap().marked);
        // A copy with a page of `entries` scribbled over.
        let damaged = dir.path().join("damaged.db");
        let mut data = bytes(&path);
        let page = 16_384;
        assert!(data.len() > 4 * page, "{}", data.len());
        let last = data.len() / page - 1;
        data[last * page + 8..last * page + 200].fill(0x5a);
        std::fs::write(&damaged, &data).unwrap();
        let err = rt.block_on(Catalog::open(&damaged)).err().unwrap();
        assert!(matches!(err, CatalogError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("quick check"), "{err}");
        assert!(bytes(&damaged) == data);
    }

    #[test]
    fn every_connection_refuses_what_could_corrupt_the_file_or_call_out() {
        let (_dir, catalog) = crate::testing::catalog_with(vec![]);
        let err = catalog
            .conn()
            .execute_batch("PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = sql")
            .unwrap_err();
        assert!(err.to_string().contains("sqlite_master"), "{err}");
        assert!(!catalog
            .conn()
            .db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA)
            .unwrap());
    }
}
