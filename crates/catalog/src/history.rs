//! Every key's entries in listing order, one key at a time: what the plan
//! rules decide on. The catalog is read in its stored order (`entries` is
//! clustered by key and position), so this streams in bounded memory
//! however big the catalog is.

use crate::{user_sql, Catalog, CatalogError, Result};

/// One entry of a key, as a rule sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// The ETag's 16 bytes when it is a single-part one (32 hex digits).
    pub etag_md5: Option<[u8; 16]>,
    /// Whether the `--where` expression holds for this entry (true without one).
    pub selected: bool,
}

/// One key and its entries, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHistory<'a> {
    pub key_id: i64,
    pub key: &'a str,
    pub entries: &'a [HistoryRow],
}

impl Catalog {
    /// Calls `f` with every key's history, in key id order. `where_expr` (a
    /// person's SQL expression over `key_history`'s columns, compiled
    /// read-only) sets each entry's `selected`.
    pub fn for_each_key_history<E: From<CatalogError>>(
        &self,
        where_expr: Option<&str>,
        mut f: impl FnMut(KeyHistory<'_>) -> std::result::Result<(), E>,
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
        let mut raw = stmt.raw_query();
        // One key's rows at a time, in buffers reused from key to key: a
        // catalog of billions of versions is read without an allocation a row.
        let (mut key_id, mut key, mut rows, mut used) = (0, String::new(), Vec::new(), 0);
        let mut rows_of_key = |key_id: i64, key: &str, rows: &[HistoryRow]| match rows.is_empty() {
            true => Ok(()),
            false => f(KeyHistory {
                key_id,
                key,
                entries: rows,
            }),
        };
        while let Some(r) = rows_of(&mut raw)? {
            let id: i64 = r.get(at.key_id).map_err(CatalogError::from)?;
            if id != key_id || used == 0 {
                rows_of_key(key_id, &key, &rows[..used])?;
                key_id = id;
                key.clear();
                key.push_str(
                    r.get_ref(at.key)
                        .and_then(|v| Ok(v.as_str()?))
                        .map_err(CatalogError::from)?,
                );
                used = 0;
            }
            if used == rows.len() {
                rows.push(HistoryRow::default());
            }
            at.read_into(r, &mut rows[used])
                .map_err(CatalogError::from)?;
            used += 1;
        }
        rows_of_key(key_id, &key, &rows[..used])
    }
}

fn rows_of<'s>(rows: &'s mut rusqlite::Rows<'_>) -> Result<Option<&'s rusqlite::Row<'s>>> {
    rows.next().map_err(|e| user_sql::run_error("--where", &e))
}

/// Every entry still there (`key_history`'s rows, read from `entry_history`
/// for `etag_md5`) in stored order; `selected` is spliced in between: the
/// `--where` expression, checked against `key_history` to be one read-only
/// expression.
const HISTORY_HEAD: &str = "SELECT h.key_id AS key_id, h.key AS key, h.seq AS seq, \
     h.version_id AS version_id, h.is_marker AS is_marker, h.last_modified_unix AS mtime, \
     h.size AS size, h.storage_class AS storage_class, h.etag_md5 AS etag_md5, ";
const HISTORY_TAIL: &str =
    " AS selected FROM entry_history h WHERE h.removed_rev IS NULL ORDER BY h.key_id, h.seq";

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
    etag_md5: usize,
    selected: usize,
}

impl Columns {
    /// Reads a row into `into`, reusing its strings.
    fn read_into(&self, r: &rusqlite::Row<'_>, into: &mut HistoryRow) -> rusqlite::Result<()> {
        into.seq = r.get(self.seq)?;
        into.version_id.clear();
        into.version_id
            .push_str(r.get_ref(self.version_id)?.as_str()?);
        into.is_marker = r.get(self.is_marker)?;
        into.mtime = r.get(self.mtime)?;
        into.size = r.get(self.size)?;
        match r.get_ref(self.storage_class)?.as_str_or_null()? {
            Some(class) => {
                let slot = into.storage_class.get_or_insert_with(String::new);
                slot.clear();
                slot.push_str(class);
            }
            None => into.storage_class = None,
        }
        into.etag_md5 = r
            .get_ref(self.etag_md5)?
            .as_blob_or_null()?
            .and_then(|b| b.try_into().ok());
        into.selected = r.get(self.selected)?;
        Ok(())
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
            etag_md5: at("etag_md5")?,
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
                    k.key.to_owned(),
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
