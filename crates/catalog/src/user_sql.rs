//! A person's SQL, compiled read-only.
//!
//! `--where` expressions, `plan sql` queries and `s3rewind sql` are the only
//! places where text a person typed becomes SQL. Each is compiled as exactly
//! one statement while a SQLite authorizer is installed that denies every
//! write, schema change, ATTACH, transaction and state-changing PRAGMA; an
//! attempt fails at compile time, before anything runs. It runs on the
//! catalog's own connection, opened like every other (`crate::connect`:
//! `trusted_schema` off, defensive mode on).

use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

use crate::CatalogError;

/// PRAGMAs that only read, and may name a table or index.
const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "database_list",
    "collation_list",
    "function_list",
    "pragma_list",
    "compile_options",
];

/// PRAGMAs that only read when given no value.
const READ_SETTINGS: &[&str] = &[
    "page_count",
    "page_size",
    "freelist_count",
    "user_version",
    "application_id",
    "schema_version",
    "journal_mode",
    "encoding",
    "data_version",
];

/// The first thing the authorizer refused, for the error message.
type Refusal = Arc<Mutex<Option<String>>>;

fn authorize(ctx: &AuthContext<'_>) -> Result<(), String> {
    match ctx.action {
        AuthAction::Select
        | AuthAction::Read { .. }
        | AuthAction::Function { .. }
        | AuthAction::Recursive => Ok(()),
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            if READ_PRAGMAS.contains(&name.as_str())
                || (pragma_value.is_none() && READ_SETTINGS.contains(&name.as_str()))
            {
                Ok(())
            } else {
                Err(format!("PRAGMA {pragma_name}"))
            }
        }
        AuthAction::Insert { table_name } => Err(format!("INSERT into {table_name}")),
        AuthAction::Update { table_name, .. } => Err(format!("UPDATE of {table_name}")),
        AuthAction::Delete { table_name } => Err(format!("DELETE from {table_name}")),
        AuthAction::Attach { .. } => Err("ATTACH".into()),
        AuthAction::Detach { .. } => Err("DETACH".into()),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Err("a transaction statement".into())
        }
        other => Err(format!("{other:?}")),
    }
}

fn install(conn: &Connection) -> Result<Refusal, CatalogError> {
    let refused: Refusal = Arc::default();
    let seen = refused.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| match authorize(&ctx) {
        Ok(()) => Authorization::Allow,
        Err(what) => {
            seen.lock().expect("not poisoned").get_or_insert(what);
            Authorization::Deny
        }
    }))?;
    Ok(refused)
}

fn uninstall(conn: &Connection) {
    // Removing the hook cannot fail on a connection we own.
    let _ = conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
}

/// Compiles `sql` as one read-only statement. `what` names the user's input
/// in error messages ("--where", "the query").
pub fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    what: &str,
) -> Result<rusqlite::Statement<'c>, CatalogError> {
    let refused = install(conn)?;
    let result = conn.prepare(sql);
    uninstall(conn);
    let refusal = refused.lock().expect("not poisoned").take();
    match (result, refusal) {
        (Err(rusqlite::Error::MultipleStatement), _) => Err(CatalogError::BadSql {
            what: what.to_owned(),
            reason: "it holds more than one statement".into(),
        }),
        (_, Some(denied)) => Err(CatalogError::Denied {
            what: what.to_owned(),
            denied,
        }),
        (Ok(stmt), None) => {
            if !stmt.readonly() {
                return Err(CatalogError::Denied {
                    what: what.to_owned(),
                    denied: "a statement that writes".into(),
                });
            }
            Ok(stmt)
        }
        (Err(e), None) => Err(CatalogError::BadSql {
            what: what.to_owned(),
            reason: sqlite_message(&e),
        }),
    }
}

/// Checks a `--where` expression on its own (against `key_history`'s
/// columns) before it is placed into a query: one expression, no
/// statement separators, nothing that writes.
pub fn check_where(conn: &Connection, expr: &str) -> Result<(), CatalogError> {
    let what = "--where";
    if expr.trim().is_empty() {
        return Err(CatalogError::BadSql {
            what: what.into(),
            reason: "it is empty".into(),
        });
    }
    if expr.contains(';') && !is_quoted_only(expr) {
        return Err(CatalogError::BadSql {
            what: what.into(),
            reason: "an expression cannot contain ';' outside quotes".into(),
        });
    }
    let sql = format!("SELECT 1 FROM key_history h WHERE {}", parenthesised(expr));
    prepare(conn, &sql, what).map(drop)
}

/// `(\nEXPR\n)`: the newlines keep a `--` comment in EXPR from hiding
/// what follows it.
pub(crate) fn parenthesised(expr: &str) -> String {
    format!("(\n{expr}\n)")
}

/// Whether every `;` in `s` is inside a '…' or "…" literal.
fn is_quoted_only(s: &str) -> bool {
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ';') => return false,
            _ => {}
        }
    }
    true
}

/// Runs a read-only query whose result is small (a report's figure): its
/// column names and every row.
pub fn rows(
    conn: &Connection,
    sql: &str,
    what: &str,
) -> Result<(Vec<String>, Vec<Vec<rusqlite::types::Value>>), CatalogError> {
    let mut stmt = prepare(conn, sql, what)?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let width = names.len();
    let rows = stmt
        .query_map([], |r| {
            (0..width)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| run_error(what, &e))?;
    Ok((names, rows))
}

/// `text` as a SQL string literal: in quotes, its quotes doubled.
pub fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A SQL value as text for people (blobs in hex).
pub fn display(v: rusqlite::types::Value) -> String {
    use rusqlite::types::Value;
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => t,
        Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// An error while a person's SQL runs (a bad function argument, say).
pub fn run_error(what: &str, e: &rusqlite::Error) -> CatalogError {
    CatalogError::BadSql {
        what: what.to_owned(),
        reason: sqlite_message(e),
    }
}

/// SQLite's own message, without rusqlite's wrapping.
pub fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_literal_stays_one_literal() {
        let c = conn();
        let name = "it's'); DROP TABLE t; --";
        let sql = format!("SELECT {} AS name, count(*) AS n FROM t", quoted(name));
        let (names, got) = rows(&c, &sql, "the report").unwrap();
        assert_eq!(names, ["name", "n"]);
        assert_eq!(got[0][0], rusqlite::types::Value::Text(name.into()));
        assert!(rows(&c, "DELETE FROM t", "the report").is_err());
    }

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a); INSERT INTO t VALUES (1); CREATE VIEW key_history AS SELECT a AS key FROM t;")
            .unwrap();
        c
    }

    #[test]
    fn reads_are_allowed() {
        let c = conn();
        let mut s = prepare(&c, "SELECT count(*) FROM t, pragma_table_info('t')", "q").unwrap();
        let n: i64 = s.query_row([], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        assert!(prepare(&c, "WITH x AS (SELECT 1) SELECT * FROM x", "q").is_ok());
    }

    #[test]
    fn writes_attach_and_pragmas_are_denied_and_change_nothing() {
        let c = conn();
        for sql in [
            "INSERT INTO t VALUES (2)",
            "DELETE FROM t",
            "UPDATE t SET a = 3",
            "DROP TABLE t",
            "CREATE TABLE u (b)",
            "ATTACH DATABASE ':memory:' AS x",
            "PRAGMA journal_mode = DELETE",
            "PRAGMA wal_checkpoint",
            "BEGIN",
        ] {
            let err = prepare(&c, sql, "q")
                .err()
                .unwrap_or_else(|| panic!("{sql} was allowed"));
            assert!(matches!(err, CatalogError::Denied { .. }), "{sql}: {err}");
        }
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        // The hook is gone afterwards: our own writes still work.
        c.execute("INSERT INTO t VALUES (2)", []).unwrap();
    }

    #[test]
    fn where_expressions_are_one_expression() {
        let c = conn();
        assert!(check_where(&c, "key LIKE 'a;b%'").is_ok());
        assert!(check_where(&c, "1); DELETE FROM t; --").is_err());
        assert!(check_where(&c, "key IN (SELECT a FROM t)").is_ok());
        assert!(check_where(&c, "").is_err());
        assert!(check_where(&c, "nonsense column").is_err());
        assert!(check_where(&c, "1 -- comment").is_ok());
    }
}
