//! Keys listed again after the scan (`scan --keys-of`): their entries
//! brought up to date with what S3 lists now, the ranges' counts kept
//! true. Nothing is deleted: an entry no longer listed is marked gone and
//! a new one added under the listing's revision (see `changes`), so plans
//! made before still read their keys as they were, and only the plans
//! whose keys really changed go stale.
//!
//! The keys of an inventory report whose entries tie on time are listed
//! again too, before its ingest ends ([`Catalog::settle_ties`]).

use model::{Entry, EntryRef};
use rusqlite::params;

use crate::insert::{bind_entry, bind_entry_columns, Insert, ENTRY_INSERT};
use crate::{Catalog, CatalogError, RangeState, Result};

/// The range of `ranges` (prefixes relative to `base`) that `key` is in.
fn range_of<'r>(ranges: &'r [RangeState], base: &str, key: &str) -> Option<&'r RangeState> {
    ranges.iter().find(|r| {
        key.strip_prefix(base)
            .is_some_and(|rel| rel.starts_with(r.prefix.as_str()))
            && r.after.as_deref().is_none_or(|a| key > a)
            && r.upto.as_deref().is_none_or(|u| key <= u)
    })
}

/// An entry still there, as the catalog holds it.
struct Held {
    seq: i64,
    version_id: String,
    mtime: i64,
    etag: Option<String>,
}

impl Held {
    /// Whether the listed entry `e` is this one. A `null` version id is
    /// reused when versioning is Suspended: the same id, another object.
    fn is(&self, e: &Entry) -> bool {
        self.version_id == e.version_id
            && (e.version_id != "null" || (self.mtime == e.mtime && self.etag == e.etag))
    }
}

impl Catalog {
    /// Brings the entries of each key (key id, key, its entries now, newest
    /// first) up to date under `revision` (from [`Catalog::begin_change`]),
    /// in one transaction.
    pub fn replace_entries(
        &mut self,
        revision: i64,
        keys: &[(i64, String, Vec<Entry>)],
    ) -> Result<()> {
        let scan = self
            .scan_record()?
            .ok_or_else(|| CatalogError::WriterGone("no scan to list keys of again".into()))?;
        let base = scan.location.base_prefix;
        let ranges = self.ranges()?;
        let tx = self.conn.transaction()?;
        {
            let mut held = tx.prepare_cached(
                "SELECT seq, version_id, last_modified_unix, etag FROM key_history
                 WHERE key_id = ?1 ORDER BY seq",
            )?;
            let mut lowest =
                tx.prepare_cached("SELECT coalesce(min(seq), 0) FROM entries WHERE key_id = ?1")?;
            let mut gone = tx.prepare_cached(
                "UPDATE entries SET removed_rev = ?3, is_latest = 0
                 WHERE key_id = ?1 AND seq = ?2",
            )?;
            let mut latest = tx.prepare_cached(
                "UPDATE entries SET is_latest = (seq = (SELECT min(e.seq) FROM entries e
                                                        WHERE e.key_id = ?1 AND e.removed_rev IS NULL))
                 WHERE key_id = ?1 AND removed_rev IS NULL",
            )?;
            let mut insert = Insert::prepare(
                &tx,
                "INSERT OR FAIL INTO entries (key_id, seq, version_id, is_marker, is_latest, \
                 mtime, size, etag, etag_parts, storage_class, added_rev) VALUES ",
                11,
            )?;
            let mut count = tx.prepare_cached(
                "UPDATE ranges SET rows = rows + ?2, delete_markers = delete_markers + ?3 WHERE id = ?1",
            )?;
            for (key_id, key, entries) in keys {
                let before: Vec<Held> = held
                    .query_map([key_id], |r| {
                        Ok(Held {
                            seq: r.get(0)?,
                            version_id: r.get(1)?,
                            mtime: r.get::<_, i64>(2)?,
                            etag: r.get(3)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let markers_before = tx.query_row(
                    "SELECT count(*) FROM key_history WHERE key_id = ?1 AND is_marker = 1",
                    [key_id],
                    |r| r.get::<_, i64>(0),
                )?;
                // S3 only ever adds entries on top: the listing is the new
                // ones, then the ones still there in the order the catalog
                // has them. Anything else (the catalog missed an entry)
                // replaces every entry of the key.
                let first_kept = entries
                    .iter()
                    .position(|e| before.iter().any(|h| h.is(e)))
                    .unwrap_or(entries.len());
                let kept: Vec<&Held> = before
                    .iter()
                    .filter(|h| entries.iter().any(|e| h.is(e)))
                    .collect();
                let in_order = entries[first_kept..].len() == kept.len()
                    && entries[first_kept..]
                        .iter()
                        .zip(&kept)
                        .all(|(e, h)| h.is(e));
                let (new, removed): (&[Entry], Vec<&Held>) = match in_order {
                    true => (
                        &entries[..first_kept],
                        before
                            .iter()
                            .filter(|h| !kept.iter().any(|k| k.seq == h.seq))
                            .collect(),
                    ),
                    false => (&entries[..], before.iter().collect()),
                };
                for h in &removed {
                    gone.execute(params![key_id, h.seq, revision])?;
                }
                if !new.is_empty() {
                    let top: i64 = lowest.query_row([key_id], |r| r.get(0))?;
                    let first = top - new.len() as i64;
                    let listed: Vec<(i64, EntryRef<'_>)> =
                        (first..).zip(new.iter().map(Entry::borrowed)).collect();
                    insert.run(&listed, |b, at, (seq, e)| {
                        b.int(at, *key_id)?;
                        b.int(at + 1, *seq)?;
                        bind_entry_columns(b, at + 2, e, e.mtime)?;
                        b.int(at + 10, revision)
                    })?;
                }
                latest.execute([key_id])?;
                // The range the key belongs to keeps its counts true.
                if let Some(r) = range_of(&ranges, &base, key) {
                    let now_markers = entries.iter().filter(|e| e.is_marker).count() as i64;
                    count.execute(params![
                        r.id,
                        entries.len() as i64 - before.len() as i64,
                        now_markers - markers_before
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Puts what a listing gave in place of the entries of keys of an
    /// inventory report whose entries tied on time (key id, key, its
    /// entries, newest first), and takes them off the keys waiting for it,
    /// in one transaction. Unlike [`Catalog::replace_entries`], nothing is
    /// kept as gone and no revision is made: the report's order was a
    /// guess, never the bucket's state, and no plan exists yet to refer to
    /// it (the ingest is not finished).
    pub fn settle_ties(&mut self, keys: &[(i64, String, Vec<Entry>)]) -> Result<()> {
        let scan = self
            .scan_record()?
            .ok_or_else(|| CatalogError::WriterGone("no scan to list keys of again".into()))?;
        let base = scan.location.base_prefix;
        let ranges = self.ranges()?;
        let tx = self.conn.transaction()?;
        {
            let mut old = tx.prepare_cached(
                "SELECT count(*), coalesce(sum(is_marker), 0) FROM entries WHERE key_id = ?1",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM entries WHERE key_id = ?1")?;
            let mut insert = Insert::prepare(&tx, ENTRY_INSERT, 10)?;
            let mut count = tx.prepare_cached(
                "UPDATE ranges SET rows = rows + ?2, delete_markers = delete_markers + ?3 WHERE id = ?1",
            )?;
            let mut settled = tx.prepare_cached("DELETE FROM inventory_ties WHERE key_id = ?1")?;
            for (key_id, key, entries) in keys {
                let (rows, markers): (i64, i64) =
                    old.query_row([key_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                delete.execute([key_id])?;
                let listed: Vec<(i64, EntryRef<'_>)> =
                    (0..).zip(entries.iter().map(Entry::borrowed)).collect();
                insert.run(&listed, |b, at, (seq, e)| {
                    bind_entry(b, at, *key_id, *seq, e)
                })?;
                if let Some(r) = range_of(&ranges, &base, key) {
                    let now_markers = entries.iter().filter(|e| e.is_marker).count() as i64;
                    count.execute(params![
                        r.id,
                        entries.len() as i64 - rows,
                        now_markers - markers
                    ])?;
                }
                settled.execute([key_id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{catalog_with, entry};
    use crate::ChangeKind;

    fn live(catalog: &crate::Catalog, key_id: i64) -> Vec<(i64, String, bool)> {
        catalog
            .conn()
            .prepare(
                "SELECT seq, version_id, is_latest FROM key_history WHERE key_id = ?1 ORDER BY seq",
            )
            .unwrap()
            .query_map([key_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_reports_tied_key_takes_the_listings_order_with_nothing_kept_as_gone() {
        let latest = |mut e: model::Entry| {
            e.is_latest = true;
            e
        };
        // b1 and b2 tie on time; the report happened to give b1 first.
        let (_dir, mut catalog) = catalog_with(vec![
            latest(entry("b", "b3", false, 30)),
            entry("b", "b1", false, 10),
            entry("b", "b2", false, 10),
        ]);
        catalog
            .conn()
            .execute("INSERT INTO inventory_ties (key_id) VALUES (1)", [])
            .unwrap();
        let before = catalog.scan_totals().unwrap();
        let listed = vec![
            latest(entry("b", "b3", false, 30)),
            entry("b", "b2", false, 10),
            entry("b", "b1", false, 10),
        ];
        catalog.settle_ties(&[(1, "b".into(), listed)]).unwrap();
        assert_eq!(
            live(&catalog, 1),
            [
                (0, "b3".into(), true),
                (1, "b2".into(), false),
                (2, "b1".into(), false)
            ]
        );
        let (all, waiting): (i64, i64) = catalog
            .conn()
            .query_row(
                "SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM inventory_ties)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((all, waiting), (3, 0));
        assert_eq!(catalog.scan_totals().unwrap(), before);
        assert_eq!(catalog.scan_record().unwrap().unwrap().revision, 0);
    }

    #[test]
    fn new_entries_are_added_on_top_and_gone_ones_kept_as_gone_under_the_listings_revision() {
        let (_dir, mut catalog) = catalog_with(vec![
            entry("a", "a1", false, 10),
            entry("b", "b2", true, 20),
            entry("b", "b1", false, 10),
        ]);
        let before = catalog.scan_totals().unwrap();
        let revision = catalog.begin_change(ChangeKind::Rescan, None).unwrap();
        assert_eq!(revision, 1);
        // b2 (the marker) was removed, two versions written on top.
        let now = vec![
            entry("b", "b4", false, 40),
            entry("b", "b3", false, 30),
            entry("b", "b1", false, 10),
        ];
        catalog
            .replace_entries(revision, &[(2, "b".into(), now)])
            .unwrap();
        assert_eq!(
            live(&catalog, 2),
            [
                (-2, "b4".into(), true),
                (-1, "b3".into(), false),
                (1, "b1".into(), false)
            ]
        );
        // The kept entry keeps its place; the gone one is still known.
        let gone: (i64, Option<i64>) = catalog
            .conn()
            .query_row(
                "SELECT seq, removed_rev FROM entries WHERE key_id = 2 AND version_id = 'b2'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(gone, (0, Some(revision)));
        let after = catalog.scan_totals().unwrap();
        assert_eq!(after.rows, before.rows + 1);
        assert_eq!(after.delete_markers, before.delete_markers - 1);
        let scan = catalog.scan_record().unwrap().unwrap();
        assert_eq!(scan.revision, 1);
        assert!(scan.rescanned_at.is_some());
    }

    #[test]
    fn a_listing_out_of_the_catalogs_order_replaces_every_entry_of_the_key() {
        let (_dir, mut catalog) = catalog_with(vec![
            entry("a", "a2", false, 20),
            entry("a", "a1", false, 10),
        ]);
        let revision = catalog.begin_change(ChangeKind::Rescan, None).unwrap();
        // a0 was missed by the scan: older than what the catalog has.
        let now = vec![
            entry("a", "a2", false, 20),
            entry("a", "a1", false, 10),
            entry("a", "a0", false, 5),
        ];
        catalog
            .replace_entries(revision, &[(1, "a".into(), now)])
            .unwrap();
        let ids: Vec<String> = live(&catalog, 1).into_iter().map(|e| e.1).collect();
        assert_eq!(ids, ["a2", "a1", "a0"]);
        let gone: i64 = catalog
            .conn()
            .query_row(
                "SELECT count(*) FROM entries WHERE key_id = 1 AND removed_rev IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(gone, 2);
    }
}
