//! Multi-row INSERTs for the bulk paths (a scan's pages, a report's rows),
//! on SQLite's C API.
//!
//! rusqlite copies every text and blob it binds (SQLITE_TRANSIENT): one
//! allocation, copy and free for each key, version id and ETag. Here they
//! are bound in place (SQLITE_STATIC): the rows outlive the statement's
//! executions, and every binding is cleared before [`Insert::run`] returns,
//! so the statement never holds a pointer past them.

use std::ffi::{c_int, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

use model::{EntryRef, Etag};
use rusqlite::ffi;
use rusqlite::types::Value;

use crate::{CatalogError, Result};

/// Rows per execution, largest first. Executing a statement has a fixed
/// cost (cursor opened, root-to-leaf seek, reset) that one row at a time
/// paid for every row; within one execution SQLite appends to the b-tree's
/// last page without searching it again.
const BATCHES: [usize; 3] = [64, 8, 1];

// OR FAIL rather than the default ABORT: a multi-row statement that may
// abort has SQLite copy every page it touches to a statement journal first.
// Nothing is lost: any error rolls the whole transaction back.
pub(crate) const ENTRY_INSERT: &str =
    "INSERT OR FAIL INTO entries (key_id, seq, version_id, is_marker, is_latest, \
     mtime, size, etag, etag_parts, storage_class) VALUES ";

/// One INSERT prepared for each size in [`BATCHES`], on the connection
/// it borrows.
pub(crate) struct Insert<'c> {
    conn: &'c rusqlite::Connection,
    columns: usize,
    statements: Vec<(usize, Statement)>,
}

/// A prepared statement, finalized on drop, with what each of its
/// parameters holds.
struct Statement {
    stmt: NonNull<ffi::sqlite3_stmt>,
    bound: Vec<Bound>,
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: prepared by `Insert::prepare` and finalized only here.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// What a parameter holds, as far as binding it again may be skipped:
/// bindings outlive an execution, and most rows repeat the row before
/// them in a few columns (no delete marker, no storage class, no parts).
/// Each binding call costs more than the comparison, and rows bind ten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Null,
    Int(i64),
    Other,
}

/// The error SQLite holds for connection `db` after `code`.
fn failure(db: *mut ffi::sqlite3, code: c_int) -> rusqlite::Error {
    // SAFETY: a live connection's handle; errmsg's text is read before any
    // other call on it.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(db);
        (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), message)
}

impl<'c> Insert<'c> {
    /// Prepares `head` (`INSERT ... VALUES `) followed by rows of
    /// `columns` parameters.
    pub(crate) fn prepare(
        conn: &'c rusqlite::Connection,
        head: &str,
        columns: usize,
    ) -> Result<Self> {
        let row = format!("({})", vec!["?"; columns].join(","));
        let mut statements = Vec::with_capacity(BATCHES.len());
        for rows in BATCHES {
            let sql = format!("{head}{}", vec![row.as_str(); rows].join(","));
            let mut stmt = std::ptr::null_mut();
            // SAFETY: `sql` is valid for its length; the handle is the live
            // connection's, which outlives the statement (lifetime 'c).
            let code = unsafe {
                ffi::sqlite3_prepare_v3(
                    conn.handle(),
                    sql.as_ptr().cast(),
                    sql.len() as c_int,
                    ffi::SQLITE_PREPARE_PERSISTENT as _,
                    &mut stmt,
                    std::ptr::null_mut(),
                )
            };
            let Some(stmt) = NonNull::new(stmt).filter(|_| code == ffi::SQLITE_OK) else {
                // SAFETY: as above.
                return Err(failure(unsafe { conn.handle() }, code).into());
            };
            statements.push((
                rows,
                Statement {
                    stmt,
                    // A statement's parameters start NULL.
                    bound: vec![Bound::Null; rows * columns],
                },
            ));
        }
        Ok(Insert {
            conn,
            columns,
            statements,
        })
    }

    /// Inserts `rows`, as many at a time as the prepared sizes allow; `bind`
    /// binds one row's columns from the parameter it is given on.
    pub(crate) fn run<'r, T>(
        &mut self,
        mut rows: &'r [T],
        bind: impl Fn(&mut Binder<'r>, usize, &'r T) -> rusqlite::Result<()>,
    ) -> Result<()> {
        // SAFETY: the live connection's handle, only used while it is.
        let db = unsafe { self.conn.handle() };
        for (size, statement) in &mut self.statements {
            let mut binder = Binder {
                db,
                stmt: statement.stmt.as_ptr(),
                bound: std::mem::take(&mut statement.bound),
                rows: PhantomData,
            };
            let ran = (|| {
                while rows.len() >= *size {
                    let (now, rest) = rows.split_at(*size);
                    for (i, row) in now.iter().enumerate() {
                        bind(&mut binder, 1 + i * self.columns, row)?;
                    }
                    binder.execute()?;
                    rows = rest;
                }
                Ok::<_, rusqlite::Error>(())
            })();
            // SAFETY: a live statement; after this it points at none of `rows`.
            unsafe { ffi::sqlite3_clear_bindings(binder.stmt) };
            binder.bound.fill(Bound::Null);
            statement.bound = binder.bound;
            ran?;
        }
        Ok(())
    }
}

/// `keys` rows, each key with the id it is known by. SQLite gives each
/// key the id one past the highest itself: given an explicit id, it would
/// first search the table for it, root to leaf, for every key. The ids it
/// gave are checked against the ones expected.
pub(crate) struct KeyInsert<'c>(Insert<'c>);

impl<'c> KeyInsert<'c> {
    pub(crate) fn prepare(conn: &'c rusqlite::Connection) -> Result<Self> {
        Ok(KeyInsert(Insert::prepare(
            conn,
            "INSERT OR FAIL INTO keys (key) VALUES ",
            1,
        )?))
    }

    /// Inserts `keys` (id, name), whose ids follow one another from one
    /// past the table's highest.
    pub(crate) fn run<K: AsRef<str>>(&mut self, keys: &[(i64, K)]) -> Result<()> {
        let (Some(&(first, _)), Some(&(last, _))) = (keys.first(), keys.last()) else {
            return Ok(());
        };
        let mismatch = |given| CatalogError::KeyIds {
            expected: last,
            given,
        };
        if !(0..).zip(keys).all(|(i, (id, _))| *id == first + i) {
            return Err(mismatch(None));
        }
        self.0
            .run(keys, |b, at, (_, key)| b.text(at, key.as_ref()))?;
        // SAFETY: the live connection's handle.
        let given = unsafe { ffi::sqlite3_last_insert_rowid(self.0.conn.handle()) };
        match given == last {
            true => Ok(()),
            false => Err(mismatch(Some(given))),
        }
    }
}

/// Binds values that live as long as `'r` (the rows being inserted) to
/// one statement's parameters, by number (1-based).
pub(crate) struct Binder<'r> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    /// Per parameter (from 1 on), what it holds.
    bound: Vec<Bound>,
    rows: PhantomData<&'r ()>,
}

impl<'r> Binder<'r> {
    fn check(&self, code: c_int) -> rusqlite::Result<()> {
        match code {
            ffi::SQLITE_OK => Ok(()),
            code => Err(failure(self.db, code)),
        }
    }

    fn execute(&mut self) -> rusqlite::Result<()> {
        // SAFETY: a live statement with every parameter bound to values
        // that outlive this call.
        let code = unsafe { ffi::sqlite3_step(self.stmt) };
        // SAFETY: as above; reset returns the step's error, if any.
        let reset = unsafe { ffi::sqlite3_reset(self.stmt) };
        match (code, reset) {
            (ffi::SQLITE_DONE, _) => Ok(()),
            (_, ffi::SQLITE_OK) => Err(failure(self.db, code)),
            _ => Err(failure(self.db, reset)),
        }
    }

    /// Records that parameter `at` now holds `now`; false if it did already.
    fn holds(&mut self, at: usize, now: Bound) -> bool {
        match self.bound.get_mut(at.wrapping_sub(1)) {
            Some(was) if *was == now && now != Bound::Other => false,
            Some(was) => {
                *was = now;
                true
            }
            // Out of range: SQLite says so.
            None => true,
        }
    }

    pub(crate) fn int(&mut self, at: usize, v: i64) -> rusqlite::Result<()> {
        if !self.holds(at, Bound::Int(v)) {
            return Ok(());
        }
        // SAFETY: a live statement; SQLite checks `at`.
        self.check(unsafe { ffi::sqlite3_bind_int64(self.stmt, at as c_int, v) })
    }

    pub(crate) fn null(&mut self, at: usize) -> rusqlite::Result<()> {
        if !self.holds(at, Bound::Null) {
            return Ok(());
        }
        // SAFETY: as for `int`.
        self.check(unsafe { ffi::sqlite3_bind_null(self.stmt, at as c_int) })
    }

    pub(crate) fn opt_int(&mut self, at: usize, v: Option<i64>) -> rusqlite::Result<()> {
        match v {
            Some(v) => self.int(at, v),
            None => self.null(at),
        }
    }

    /// Binds `v` in place: it lives as long as the rows.
    pub(crate) fn text(&mut self, at: usize, v: &'r str) -> rusqlite::Result<()> {
        self.holds(at, Bound::Other);
        // SAFETY: `v` outlives every execution of the statement with this
        // binding (lifetime 'r; cleared at the end of `Insert::run`).
        self.check(unsafe {
            ffi::sqlite3_bind_text64(
                self.stmt,
                at as c_int,
                v.as_ptr().cast(),
                v.len() as u64,
                ffi::SQLITE_STATIC(),
                ffi::SQLITE_UTF8 as _,
            )
        })
    }

    pub(crate) fn opt_text(&mut self, at: usize, v: Option<&'r str>) -> rusqlite::Result<()> {
        match v {
            Some(v) => self.text(at, v),
            None => self.null(at),
        }
    }

    /// Binds `v` in place: it lives as long as the rows.
    pub(crate) fn blob(&mut self, at: usize, v: &'r [u8]) -> rusqlite::Result<()> {
        // SAFETY: as for `text`.
        unsafe { self.bytes(at, v, ffi::SQLITE_STATIC()) }
    }

    /// Binds a copy of `v`, which may not outlive this call.
    pub(crate) fn blob_copy(&mut self, at: usize, v: &[u8]) -> rusqlite::Result<()> {
        // SAFETY: SQLite copies `v` before returning (SQLITE_TRANSIENT).
        unsafe { self.bytes(at, v, ffi::SQLITE_TRANSIENT()) }
    }

    /// Binds `v` as a blob, kept as `keep` says.
    ///
    /// # Safety
    ///
    /// With SQLITE_STATIC, `v` must outlive every execution with this binding.
    unsafe fn bytes(
        &mut self,
        at: usize,
        v: &[u8],
        keep: ffi::sqlite3_destructor_type,
    ) -> rusqlite::Result<()> {
        self.holds(at, Bound::Other);
        self.check(ffi::sqlite3_bind_blob64(
            self.stmt,
            at as c_int,
            v.as_ptr().cast(),
            v.len() as u64,
            keep,
        ))
    }

    pub(crate) fn value(&mut self, at: usize, v: &'r Value) -> rusqlite::Result<()> {
        match v {
            Value::Null => self.null(at),
            Value::Integer(i) => self.int(at, *i),
            // SAFETY: as for `int`.
            Value::Real(f) => {
                self.holds(at, Bound::Other);
                self.check(unsafe { ffi::sqlite3_bind_double(self.stmt, at as c_int, *f) })
            }
            Value::Text(t) => self.text(at, t),
            Value::Blob(b) => self.blob_copy(at, b),
        }
    }
}

/// Binds `e`, entry `seq` of key `key_id`, to the ten parameters of an
/// `entries` row from `at` on.
pub(crate) fn bind_entry<'r>(
    b: &mut Binder<'r>,
    at: usize,
    key_id: i64,
    seq: i64,
    e: &'r EntryRef<'r>,
) -> rusqlite::Result<()> {
    b.int(at, key_id)?;
    b.int(at + 1, seq)?;
    bind_entry_columns(b, at + 2, e, e.mtime)
}

/// Binds `e`'s own eight columns, `version_id` to `storage_class`, from
/// `at` on, with `time` as its time (`entries` keeps seconds; a report's
/// staged rows milliseconds).
pub(crate) fn bind_entry_columns<'r>(
    b: &mut Binder<'r>,
    at: usize,
    e: &'r EntryRef<'r>,
    time: i64,
) -> rusqlite::Result<()> {
    b.text(at, e.version_id)?;
    b.int(at + 1, i64::from(e.is_marker))?;
    b.int(at + 2, i64::from(e.is_latest))?;
    b.int(at + 3, time)?;
    b.opt_int(at + 4, e.size)?;
    match &e.etag {
        Some(Etag {
            md5: Some(md5),
            parts,
            ..
        }) => {
            b.blob(at + 5, md5)?;
            b.opt_int(at + 6, *parts)?;
        }
        Some(etag) => {
            b.text(at + 5, etag.text)?;
            b.null(at + 6)?;
        }
        None => {
            b.null(at + 5)?;
            b.null(at + 6)?;
        }
    }
    b.opt_text(at + 7, e.storage_class)
}

/// An ETag's text from its stored form (see [`model::Etag`]).
pub(crate) fn etag_text(
    stored: rusqlite::types::ValueRef<'_>,
    parts: Option<i64>,
) -> Option<String> {
    use rusqlite::types::ValueRef;
    match stored {
        ValueRef::Blob(md5) => Some(match parts {
            Some(n) => format!("{}-{n}", hex::encode(md5)),
            None => hex::encode(md5),
        }),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::ValueRef;

    fn keys_table() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE keys (id INTEGER PRIMARY KEY, key TEXT NOT NULL)")
            .unwrap();
        conn
    }

    fn keys(conn: &rusqlite::Connection) -> Vec<(i64, String)> {
        conn.prepare("SELECT id, key FROM keys ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn rows_go_in_by_every_batch_size_and_a_failure_is_sqlites_error() {
        let conn = keys_table();
        // 64 + 8 + 1 + 1: each prepared size is used.
        let rows: Vec<(i64, String)> = (1..=74).map(|i| (i, format!("key {i} é"))).collect();
        let mut insert =
            Insert::prepare(&conn, "INSERT OR FAIL INTO keys (id, key) VALUES ", 2).unwrap();
        fn bind<'r>(b: &mut Binder<'r>, at: usize, row: &'r (i64, String)) -> rusqlite::Result<()> {
            b.int(at, row.0)?;
            b.text(at + 1, &row.1)
        }
        insert.run(&rows, bind).unwrap();
        assert_eq!(keys(&conn), rows);

        let again = vec![(75, "new".to_string()), (3, "taken".to_string())];
        let err = insert.run(&again, bind).unwrap_err().to_string();
        assert!(err.contains("UNIQUE constraint failed: keys.id"), "{err}");
        // The statement was reset: the connection takes the next one.
        insert.run(&[(76, "after".to_string())], bind).unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 76);
    }

    #[test]
    fn a_parameter_bound_as_before_keeps_its_value_and_any_other_is_rebound() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER, a, b)")
            .unwrap();
        let mut insert = Insert::prepare(&conn, "INSERT INTO t (n, a, b) VALUES ", 3).unwrap();
        // Each value in turn the same as the one bound before it, NULL,
        // an integer, a text: over executions of every size, and runs.
        let values = [
            Value::Null,
            Value::Integer(7),
            Value::Integer(7),
            Value::Null,
        ];
        let rows: Vec<(i64, Value, Value)> = (0..150)
            .map(|n| {
                let a = match n % 5 {
                    4 => Value::Text(format!("t{n}")),
                    i => values[i as usize % 4].clone(),
                };
                (n, a, values[(n as usize / 64) % 4].clone())
            })
            .collect();
        fn bind<'r>(
            b: &mut Binder<'r>,
            at: usize,
            row: &'r (i64, Value, Value),
        ) -> rusqlite::Result<()> {
            b.int(at, row.0)?;
            b.value(at + 1, &row.1)?;
            b.value(at + 2, &row.2)
        }
        for part in rows.chunks(75) {
            insert.run(part, bind).unwrap();
        }
        let back: Vec<(i64, Value, Value)> = conn
            .prepare("SELECT n, a, b FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(back, rows);
    }

    #[test]
    fn keys_get_the_ids_expected_or_an_error_says_they_did_not() {
        let conn = keys_table();
        let mut insert = KeyInsert::prepare(&conn).unwrap();
        let first: Vec<(i64, String)> = (1..=3).map(|i| (i, format!("k{i}"))).collect();
        insert.run(&first).unwrap();
        assert_eq!(keys(&conn), first);

        // The ids a failed run expected and was given.
        let ids = |err: CatalogError| match err {
            CatalogError::KeyIds { expected, given } => (expected, given),
            other => panic!("not a KeyIds error: {other}"),
        };

        // Ids that do not follow one another: refused before any is written.
        let gaps = [(4, "a"), (6, "b")];
        assert_eq!(ids(insert.run(&gaps).unwrap_err()), (6, None));
        assert_eq!(keys(&conn).len(), 3);

        // Ids after a key someone else wrote: SQLite's ids are not these.
        conn.execute("INSERT INTO keys (id, key) VALUES (4, 'other')", [])
            .unwrap();
        let late = [(4, "c"), (5, "d")];
        let err = insert.run(&late).unwrap_err();
        assert!(err.to_string().contains("something else wrote"), "{err}");
        assert_eq!(ids(err), (5, Some(6)));
    }

    #[test]
    fn etags_round_trip_through_their_compact_form() {
        for text in [
            "d41d8cd98f00b204e9800998ecf8427e",
            "d41d8cd98f00b204e9800998ecf8427e-12",
            "D41D8CD98F00B204E9800998ECF8427E",
            "abc-def",
        ] {
            let t = Etag::parse(text);
            let stored = match &t.md5 {
                Some(md5) => ValueRef::Blob(md5),
                None => ValueRef::Text(t.text.as_bytes()),
            };
            assert_eq!(etag_text(stored, t.parts).as_deref(), Some(text));
        }
    }
}
