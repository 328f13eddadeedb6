//! What changed the catalog's picture of the bucket after the scan: apply
//! runs, and keys listed again. Each moves `scans.revision` on; entries
//! carry the revision that added or removed them (migration 0011), and a
//! plan the revision it was made at, so a plan knows when the keys it acts
//! on changed under it.

use rusqlite::{params, OptionalExtension};

use crate::{Catalog, CatalogError, Result};

/// What moved the catalog on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// An apply run of a plan: what it made and removed.
    Apply,
    /// Keys listed again (`scan --keys-of`).
    Rescan,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Apply => "apply",
            ChangeKind::Rescan => "rescan",
        }
    }
}

/// One change since a plan was made that it did not make itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub revision: i64,
    /// `apply` or `rescan`.
    pub kind: String,
    /// The plan applied, or whose keys were listed.
    pub plan: Option<String>,
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// How far the catalog moved under a plan since it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Staleness {
    /// The plan's keys (with actions still to do, or all of them) whose
    /// entries another change added or removed.
    pub keys: u64,
    /// Those changes, oldest first.
    pub changes: Vec<Change>,
}

impl Staleness {
    pub fn is_stale(&self) -> bool {
        self.keys > 0
    }
}

impl Catalog {
    /// Moves the catalog to a new revision for a change of `kind` (by or
    /// for plan `plan_id`) and returns it: entries the change adds or
    /// removes carry it.
    pub fn begin_change(&mut self, kind: ChangeKind, plan_id: Option<i64>) -> Result<i64> {
        let tx = self.conn.transaction()?;
        let revision: i64 = tx
            .query_row(
                "UPDATE scans SET revision = revision + 1,
                        rescanned_at = CASE WHEN ?1 = 'rescan' THEN ?2 ELSE rescanned_at END
                 WHERE id = (SELECT max(id) FROM scans) RETURNING revision",
                params![kind.as_str(), model::time::now_text()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| CatalogError::Refused("the catalog holds no scan".into()))?;
        tx.execute(
            "INSERT INTO changes (revision, kind, plan_id, at) VALUES (?1, ?2, ?3, ?4)",
            params![revision, kind.as_str(), plan_id, model::time::now_text()],
        )?;
        tx.commit()?;
        Ok(revision)
    }

    /// Which of plan `plan_id`'s keys changed since it was made, by
    /// anything but its own apply runs. `remaining_only`: only keys it
    /// still has actions to do on.
    pub fn staleness(&self, plan_id: i64, remaining_only: bool) -> Result<Staleness> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.revision, c.kind, p.name, c.at FROM changes c
             LEFT JOIN plans p ON p.id = c.plan_id
             WHERE c.revision > (SELECT scan_revision FROM plans WHERE id = ?1)
               AND NOT (c.kind = 'apply' AND c.plan_id IS ?1)
             ORDER BY c.revision",
        )?;
        let changes: Vec<Change> = stmt
            .query_map([plan_id], |r| {
                Ok(Change {
                    revision: r.get(0)?,
                    kind: r.get(1)?,
                    plan: r.get(2)?,
                    at: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        if changes.is_empty() {
            return Ok(Staleness::default());
        }
        let revisions = crate::json_ids(&changes.iter().map(|c| c.revision).collect::<Vec<_>>());
        let keys: i64 = self.conn.query_row(
            // A key the plan found already as at T (migration 0013) is
            // judged too: changed since, it may need the copy it was spared.
            "SELECT count(*) FROM (
                 SELECT a.key_id AS key_id FROM actions a INDEXED BY actions_by_key
                 WHERE a.plan_id = ?1
                   AND (NOT ?2 OR a.status IN ('pending', 'in_flight', 'restoring', 'uncertain', 'failed'))
                 UNION SELECT r.key_id FROM already r WHERE r.plan_id = ?1) k
             WHERE EXISTS (SELECT 1 FROM entries e WHERE e.key_id = k.key_id
                           AND (e.added_rev IN (SELECT value FROM json_each(?3))
                                OR e.removed_rev IN (SELECT value FROM json_each(?3))))",
            params![plan_id, remaining_only, revisions],
            |r| r.get(0),
        )?;
        Ok(Staleness {
            keys: keys as u64,
            changes: if keys > 0 { changes } else { Vec::new() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{catalog_with, entry, plan_with};
    use model::ActionKind;

    #[test]
    fn a_plan_goes_stale_when_its_keys_change_under_it_and_not_by_its_own_apply() {
        let (_dir, mut catalog) = catalog_with(vec![
            entry("a", "a1", false, 10),
            entry("b", "b1", false, 10),
        ]);
        let p = plan_with(
            &catalog,
            &[(ActionKind::AddDeleteMarker, "a", 1, None, Some("a1"))],
        );
        assert!(!catalog.staleness(p, false).unwrap().is_stale());
        // Its own apply run does not make it stale.
        let own = catalog.begin_change(ChangeKind::Apply, Some(p)).unwrap();
        catalog
            .conn()
            .execute(
                "INSERT INTO entries (key_id, seq, version_id, is_marker, is_latest, mtime, added_rev)
                 VALUES (1, -1, 'm', 1, 1, 20, ?1)",
                [own],
            )
            .unwrap();
        assert!(!catalog.staleness(p, false).unwrap().is_stale());
        // Keys listed again: key b changed (not the plan's), then key a.
        let rescan = catalog.begin_change(ChangeKind::Rescan, None).unwrap();
        catalog
            .conn()
            .execute(
                "UPDATE entries SET removed_rev = ?1 WHERE key_id = 2",
                [rescan],
            )
            .unwrap();
        assert!(!catalog.staleness(p, false).unwrap().is_stale());
        catalog
            .conn()
            .execute(
                "UPDATE entries SET removed_rev = ?1 WHERE key_id = 1 AND version_id = 'a1'",
                [rescan],
            )
            .unwrap();
        let stale = catalog.staleness(p, false).unwrap();
        assert_eq!(stale.keys, 1);
        assert_eq!(stale.changes.len(), 1);
        assert_eq!(stale.changes[0].kind, "rescan");
        assert_eq!(catalog.scan_record().unwrap().unwrap().revision, rescan);
    }
}
