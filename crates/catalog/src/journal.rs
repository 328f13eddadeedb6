//! Apply's journal read back: which versions of a key hold the same bytes
//! because a done copy made one from the other (see `model::content`).

use std::collections::HashMap;

use crate::{Catalog, Result};

/// Per key id, the `(source, result)` version ids of its done copies.
pub type Copies = HashMap<i64, Vec<(String, String)>>;

impl Catalog {
    /// Whether any plan has a done copy (if not, no key needs looking up).
    pub fn has_copies_made(&self) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM actions WHERE kind = 'copy_version' AND status = 'done'
                            AND result_version_id IS NOT NULL)",
            [],
            |r| r.get(0),
        )?)
    }

    /// The done copies made onto these keys that prove what they made. Left
    /// out: a plan with `--into` (it copied onto other keys, maybe in another
    /// bucket); a copy from or to version `null` (while versioning is
    /// Suspended a later PUT replaces the `null` version and keeps its id,
    /// S3 user guide, "Adding objects to versioning-suspended buckets"); a
    /// copy a person said was the plan's (`plan resolve --ours`: a
    /// judgement, not a proof).
    pub fn copies_made(&self, key_ids: &[i64]) -> Result<Copies> {
        // Plans first, then each plan's actions by (plan_id, key_id): a
        // few index seeks a key, whatever the number of actions.
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.key_id, a.version_id, a.result_version_id
             FROM plans p CROSS JOIN actions a INDEXED BY actions_by_key
             WHERE a.plan_id = p.id
               AND json_extract(p.parameters, '$.into') IS NULL
               AND a.key_id IN (SELECT value FROM json_each(?1))
               AND a.kind = 'copy_version' AND a.status = 'done'
               AND a.version_id <> 'null' AND a.result_version_id <> 'null'
               AND coalesce(a.matched_by, '') <> 'person'",
        )?;
        let mut copies = Copies::new();
        let mut rows = stmt.query([crate::json_ids(key_ids)])?;
        while let Some(r) = rows.next()? {
            copies
                .entry(r.get(0)?)
                .or_default()
                .push((r.get(1)?, r.get(2)?));
        }
        Ok(copies)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{catalog_with, entry, plan_with};
    use model::ActionKind;

    #[test]
    fn only_done_copies_with_a_result_are_the_journal() {
        let (_dir, catalog) = catalog_with(vec![
            entry("a", "a2", false, 20),
            entry("a", "a1", false, 10),
            entry("b", "b2", false, 20),
            entry("b", "b1", false, 10),
        ]);
        let plan = plan_with(
            &catalog,
            &[
                (ActionKind::CopyVersion, "a", 1, Some("a1"), None),
                (ActionKind::CopyVersion, "b", 2, Some("b1"), None),
            ],
        );
        catalog
            .conn
            .execute(
                "UPDATE actions SET status = 'done', result_version_id = 'a3' WHERE plan_id = ?1 AND id = 1",
                [plan],
            )
            .unwrap();
        catalog
            .conn
            .execute(
                "UPDATE actions SET status = 'failed', result_version_id = 'b3' WHERE plan_id = ?1 AND id = 2",
                [plan],
            )
            .unwrap();
        let copies = catalog.copies_made(&[1, 2]).unwrap();
        assert_eq!(
            copies.get(&1),
            Some(&vec![("a1".to_owned(), "a3".to_owned())])
        );
        assert_eq!(copies.get(&2), None);
        // A person's word, or a `null` version (replaced in place while
        // versioning is Suspended), proves nothing.
        for change in [
            "UPDATE actions SET matched_by = 'person' WHERE plan_id = ?1 AND id = 1",
            "UPDATE actions SET matched_by = NULL, result_version_id = 'null' WHERE plan_id = ?1 AND id = 1",
        ] {
            catalog.conn.execute(change, [plan]).unwrap();
            assert_eq!(catalog.copies_made(&[1, 2]).unwrap().get(&1), None, "{change}");
        }
    }
}
