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
            "SELECT EXISTS (SELECT 1 FROM actions WHERE kind = 'copy_version' AND status = 'done')",
            [],
            |r| r.get(0),
        )?)
    }

    /// The done copies made onto these keys. A plan with `--into` copied
    /// onto other keys (maybe in another bucket): its copies are left out.
    pub fn copies_made(&self, key_ids: &[i64]) -> Result<Copies> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.key_id, a.version_id, a.result_version_id
             FROM plans p JOIN actions a INDEXED BY actions_by_key ON a.plan_id = p.id
             WHERE json_extract(p.parameters, '$.into') IS NULL
               AND a.key_id IN (SELECT value FROM json_each(?1))
               AND a.kind = 'copy_version' AND a.status = 'done'
               AND a.version_id IS NOT NULL AND a.result_version_id IS NOT NULL",
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
    }
}
