//! Keys listed again after the scan (`scan --keys-of`): their entries
//! replaced by what S3 lists now, the ranges' counts kept true, and the
//! scan's revision moved on, so that plans made before (which refer to
//! entries by position) are made again rather than applied. The keys of an
//! inventory report whose entries tie on time are listed again the same
//! way before its ingest ends.

use model::{Entry, EntryRef};
use rusqlite::params;

use crate::insert::{bind_entry, Insert, ENTRY_INSERT};
use crate::{Catalog, CatalogError, Result};

impl Catalog {
    /// Replaces the entries of each key (key id, key, its entries now,
    /// newest first), in one transaction; returns the new revision.
    pub fn replace_entries(&mut self, keys: &[(i64, String, Vec<Entry>)]) -> Result<i64> {
        let scan = self
            .scan_record()?
            .ok_or_else(|| CatalogError::WriterGone("no scan to list keys of again".into()))?;
        let ranges = self.ranges()?;
        let tx = self.conn.transaction()?;
        replace(&tx, &scan.location.base_prefix, &ranges, keys)?;
        tx.execute(
            "UPDATE scans SET revision = revision + 1, rescanned_at = ?2 WHERE id = ?1",
            params![scan.id, model::time::now_text()],
        )?;
        tx.commit()?;
        Ok(scan.revision + 1)
    }

    /// Replaces the entries of keys of an inventory report whose entries
    /// tied on time by what a listing of them gave (as for
    /// [`Catalog::replace_entries`]), and takes them off the keys waiting
    /// for it, in one transaction. No plan can refer to them yet: the
    /// ingest is not finished.
    pub fn settle_ties(&mut self, keys: &[(i64, String, Vec<Entry>)]) -> Result<()> {
        let scan = self
            .scan_record()?
            .ok_or_else(|| CatalogError::WriterGone("no scan to list keys of again".into()))?;
        let ranges = self.ranges()?;
        let tx = self.conn.transaction()?;
        replace(&tx, &scan.location.base_prefix, &ranges, keys)?;
        {
            let mut settled = tx.prepare("DELETE FROM inventory_ties WHERE key_id = ?1")?;
            for (key_id, _, _) in keys {
                settled.execute([key_id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Replaces each key's entries, keeping the counts of the range it is in
/// (of the scan's `ranges`, relative to `base`) true.
fn replace(
    tx: &rusqlite::Transaction<'_>,
    base: &str,
    ranges: &[crate::RangeState],
    keys: &[(i64, String, Vec<Entry>)],
) -> Result<()> {
    let mut old = tx.prepare_cached(
        "SELECT count(*), coalesce(sum(is_marker), 0) FROM entries WHERE key_id = ?1",
    )?;
    let mut delete = tx.prepare_cached("DELETE FROM entries WHERE key_id = ?1")?;
    let mut insert = Insert::prepare(tx, ENTRY_INSERT, 10)?;
    let mut count = tx.prepare_cached(
        "UPDATE ranges SET rows = rows + ?2, delete_markers = delete_markers + ?3 WHERE id = ?1",
    )?;
    for (key_id, key, entries) in keys {
        let (rows, markers): (i64, i64) =
            old.query_row([key_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        delete.execute([key_id])?;
        let listed: Vec<(i64, EntryRef<'_>)> =
            (0..).zip(entries.iter().map(Entry::borrowed)).collect();
        insert.run(&listed, |b, at, (seq, e)| {
            bind_entry(b, at, *key_id, *seq, e)
        })?;
        // The range the key belongs to keeps its counts true.
        let in_range = ranges.iter().find(|r| {
            key.strip_prefix(base)
                .is_some_and(|rel| rel.starts_with(r.prefix.as_str()))
                && r.after.as_deref().is_none_or(|a| key.as_str() > a)
                && r.upto.as_deref().is_none_or(|u| key.as_str() <= u)
        });
        if let Some(r) = in_range {
            let now_markers = entries.iter().filter(|e| e.is_marker).count() as i64;
            count.execute(params![
                r.id,
                entries.len() as i64 - rows,
                now_markers - markers
            ])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::{catalog_with, entry};

    #[test]
    fn a_keys_entries_are_replaced_counted_and_the_revision_moves_on() {
        let (_dir, mut catalog) = catalog_with(vec![
            entry("a", "a1", false, 10),
            entry("b", "b2", true, 20),
            entry("b", "b1", false, 10),
        ]);
        let before = catalog.scan_totals().unwrap();
        let now = vec![
            entry("b", "b4", false, 40),
            entry("b", "b3", false, 30),
            entry("b", "b2", true, 20),
            entry("b", "b1", false, 10),
        ];
        assert_eq!(catalog.replace_entries(&[(2, "b".into(), now)]).unwrap(), 1);
        let after = catalog.scan_totals().unwrap();
        assert_eq!(after.rows, before.rows + 2);
        assert_eq!(after.delete_markers, before.delete_markers);
        let newest: String = catalog
            .conn()
            .query_row(
                "SELECT version_id FROM entries WHERE key_id = 2 AND seq = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(newest, "b4");
        let scan = catalog.scan_record().unwrap().unwrap();
        assert_eq!(scan.revision, 1);
        assert!(scan.rescanned_at.is_some());
    }
}
