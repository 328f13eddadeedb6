//! Every key's entries in listing order, one key at a time: what the plan
//! rules decide on. The catalog is read in its stored order (`entries` is
//! clustered by key and position), so this streams in bounded memory
//! however big the catalog is.

use crate::{user_sql, Catalog, CatalogError, Result};

/// One entry of a key, as a rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// Position among the key's entries, newest first (0 = the newest).
    pub seq: i64,
    pub version_id: String,
    pub is_marker: bool,
    /// LastModified, Unix seconds.
    pub mtime: i64,
    /// Bytes; `None` for delete markers.
    pub size: Option<i64>,
    /// `STANDARD`, `GLACIER`, …; `None` for delete markers.
    pub storage_class: Option<String>,
    /// Whether the `--where` expression holds for this entry (true without one).
    pub selected: bool,
}

/// One key and its entries, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyHistory {
    pub key_id: i64,
    pub key: String,
    pub entries: Vec<HistoryRow>,
}

impl Catalog {
    /// Calls `f` with every key's history, in key id order. `where_expr` (a
    /// person's SQL expression over `key_history`'s columns, compiled
    /// read-only) sets each entry's `selected`.
    pub fn for_each_key_history<E: From<CatalogError>>(
        &self,
        where_expr: Option<&str>,
        mut f: impl FnMut(&KeyHistory) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let selected = match where_expr {
            Some(expr) => {
                user_sql::check_where(&self.conn, expr)?;
                format!(
                    "CASE WHEN {} THEN 1 ELSE 0 END",
                    user_sql::parenthesised(expr)
                )
            }
            None => "1".to_owned(),
        };
        let sql = format!("{HISTORY_HEAD}{selected}{HISTORY_TAIL}");
        let mut stmt = user_sql::prepare(&self.conn, &sql, "--where")?;
        let at = Columns::of(&stmt)?;
        let mut rows = stmt.raw_query();
        let mut key = KeyHistory::default();
        while let Some(r) = rows
            .next()
            .map_err(|e| user_sql::run_error("--where", &e))?
        {
            let key_id: i64 = r.get(at.key_id).map_err(CatalogError::from)?;
            if key_id != key.key_id || key.entries.is_empty() {
                if !key.entries.is_empty() {
                    f(&key)?;
                }
                key.key_id = key_id;
                key.key = r.get(at.key).map_err(CatalogError::from)?;
                key.entries.clear();
            }
            key.entries.push(at.read(r).map_err(CatalogError::from)?);
        }
        if !key.entries.is_empty() {
            f(&key)?;
        }
        Ok(())
    }
}

/// Every entry in stored order; `selected` is spliced in between: the
/// `--where` expression, checked to be one read-only expression.
const HISTORY_HEAD: &str = "SELECT h.key_id AS key_id, h.key AS key, h.seq AS seq, \
     h.version_id AS version_id, h.is_marker AS is_marker, h.last_modified_unix AS mtime, \
     h.size AS size, h.storage_class AS storage_class, ";
const HISTORY_TAIL: &str = " AS selected FROM key_history h ORDER BY h.key_id, h.seq";

/// Where each column of the history query is, found once by name.
struct Columns {
    key_id: usize,
    key: usize,
    seq: usize,
    version_id: usize,
    is_marker: usize,
    mtime: usize,
    size: usize,
    storage_class: usize,
    selected: usize,
}

impl Columns {
    fn read(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryRow> {
        Ok(HistoryRow {
            seq: r.get(self.seq)?,
            version_id: r.get(self.version_id)?,
            is_marker: r.get(self.is_marker)?,
            mtime: r.get(self.mtime)?,
            size: r.get(self.size)?,
            storage_class: r.get(self.storage_class)?,
            selected: r.get(self.selected)?,
        })
    }

    fn of(stmt: &rusqlite::Statement<'_>) -> Result<Columns> {
        let at = |name: &str| stmt.column_index(name);
        Ok(Columns {
            key_id: at("key_id")?,
            key: at("key")?,
            seq: at("seq")?,
            version_id: at("version_id")?,
            is_marker: at("is_marker")?,
            mtime: at("mtime")?,
            size: at("size")?,
            storage_class: at("storage_class")?,
            selected: at("selected")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{catalog_with, entry};

    #[test]
    fn histories_come_one_key_at_a_time_newest_first_with_the_where_per_entry() {
        let (_dir, catalog) = catalog_with(vec![
            entry("a", "a2", true, 20),
            entry("a", "a1", false, 10),
            entry("b", "b1", false, 30),
        ]);
        let mut seen = Vec::new();
        catalog
            .for_each_key_history::<crate::CatalogError>(Some("last_modified_unix >= 20"), |k| {
                seen.push((
                    k.key.clone(),
                    k.entries
                        .iter()
                        .map(|e| (e.version_id.clone(), e.is_marker, e.selected))
                        .collect::<Vec<_>>(),
                ));
                Ok(())
            })
            .unwrap();
        assert_eq!(
            seen,
            vec![
                (
                    "a".to_owned(),
                    vec![("a2".into(), true, true), ("a1".into(), false, false)]
                ),
                ("b".to_owned(), vec![("b1".into(), false, true)]),
            ]
        );
        // A where that writes, or is not one expression, is refused.
        let err = catalog
            .for_each_key_history::<crate::CatalogError>(Some("1); DELETE FROM keys; --"), |_| {
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(err, crate::CatalogError::BadSql { .. }), "{err}");
    }
}
