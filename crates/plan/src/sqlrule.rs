//! `plan sql`: a person's SELECT of (action, key, version_id[, why]),
//! joined to the catalog and checked row by row.

use rusqlite::types::Value;

use crate::rules::RuleQuery;
use crate::{readonly, ActionKind, PlanError};

/// The user's query inside the SELECT that resolves each row against the
/// catalog. Output columns: those of every rule (see `rules`), then
/// `is_marker` of the named entry.
pub fn wrapped_query(conn: &rusqlite::Connection, query: &str) -> Result<RuleQuery, PlanError> {
    let query = query.trim().trim_end_matches(';').trim_end();
    let columns = readonly::prepare(conn, query, "the query")?.column_count();
    let names = match columns {
        3 => "action, key, version_id",
        4 => "action, key, version_id, why",
        n => {
            return Err(PlanError::BadSql {
                what: "the query".into(),
                reason: format!(
                    "it returns {n} columns; return (action, key, version_id) or (action, key, version_id, why)"
                ),
            })
        }
    };
    let why = if columns == 4 {
        "coalesce(u.why, 'chosen by plan sql')"
    } else {
        "'chosen by plan sql'"
    };
    let sql = format!(
        "WITH u({names}) AS (\n{query}\n)
SELECT u.action, u.key, k.id, u.version_id, e.seq, e.size,
       CASE WHEN e.is_marker = 0 THEN coalesce(e.storage_class, 'STANDARD') END,
       {why},
       (SELECT l.version_id FROM entries l WHERE l.key_id = k.id AND l.seq = 0),
       e.is_marker
FROM u
LEFT JOIN keys k ON k.key = u.key
LEFT JOIN entries e ON e.key_id = k.id AND e.version_id = u.version_id"
    );
    Ok(RuleQuery {
        sql,
        bindings: Vec::new(),
    })
}

/// Refuses a row that does not name a real action on a real entry.
pub fn check_row(row: &rusqlite::Row<'_>, n: u64) -> Result<(), PlanError> {
    let bad = |reason: String| PlanError::BadRow { row: n, reason };
    let text = |i: usize| -> Result<Option<String>, PlanError> {
        Ok(match row.get::<_, Value>(i)? {
            Value::Null => None,
            Value::Text(t) => Some(t),
            other => Some(crate::store::display(other)),
        })
    };
    let action = text(0)?.unwrap_or_default();
    let kind = ActionKind::parse(&action).ok_or_else(|| {
        bad(format!(
            "unknown action {action:?} (expected delete_version, delete_marker, copy_version or add_delete_marker)"
        ))
    })?;
    let Some(key) = text(1)? else {
        return Err(bad("the key is NULL".into()));
    };
    if row.get::<_, Option<i64>>(2)?.is_none() {
        return Err(bad(format!("key {key:?} is not in the catalog")));
    }
    let version = text(3)?;
    let is_marker: Option<bool> = row.get(9)?;
    match (kind.needs_version(), version, is_marker) {
        (false, None, _) => Ok(()),
        (false, Some(v), _) => Err(bad(format!(
            "add_delete_marker takes no version_id (got {v:?} for key {key:?}); return NULL"
        ))),
        (true, None, _) => Err(bad(format!(
            "{} needs a version_id (key {key:?})",
            kind.as_str()
        ))),
        (true, Some(v), None) => Err(bad(format!(
            "version {v:?} of key {key:?} is not in the catalog"
        ))),
        (true, Some(v), Some(true)) if kind != ActionKind::DeleteMarker => Err(bad(format!(
            "{v:?} of key {key:?} is a delete marker: only delete_marker applies to it"
        ))),
        (true, Some(v), Some(false)) if kind == ActionKind::DeleteMarker => Err(bad(format!(
            "{v:?} of key {key:?} is an object version, not a delete marker: use delete_version"
        ))),
        _ => Ok(()),
    }
}

/// Nothing planned twice: one action per version, and at most one copy or
/// new delete marker per key.
pub fn check_duplicates(conn: &rusqlite::Connection, plan_id: i64) -> Result<(), PlanError> {
    let twice: Option<(i64, String, String)> = conn
        .query_row(
            "SELECT max(id), key, version_id FROM actions WHERE plan_id = ?1 AND version_id IS NOT NULL
             GROUP BY key_id, version_id HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
            [plan_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map(Some)
        .or_else(none_if_no_rows)?;
    if let Some((row, key, version)) = twice {
        return Err(PlanError::BadRow {
            row: row as u64,
            reason: format!("version {version:?} of key {key:?} is planned twice"),
        });
    }
    let twice: Option<(i64, String)> = conn
        .query_row(
            "SELECT max(id), key FROM actions WHERE plan_id = ?1 AND kind IN ('copy_version', 'add_delete_marker')
             GROUP BY key_id HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
            [plan_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map(Some)
        .or_else(none_if_no_rows)?;
    if let Some((row, key)) = twice {
        return Err(PlanError::BadRow {
            row: row as u64,
            reason: format!("key {key:?} gets more than one copy_version / add_delete_marker"),
        });
    }
    Ok(())
}

fn none_if_no_rows<T>(e: rusqlite::Error) -> Result<Option<T>, rusqlite::Error> {
    match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(None),
        e => Err(e),
    }
}
