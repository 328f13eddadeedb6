//! What a plan's remaining actions need from the bucket, for `check`: the
//! versions a restore or undelete relies on (with when they became
//! noncurrent, for lifecycle rules), the copies' sources by storage class,
//! the actions of a kind a page at a time, and the writes under a prefix.
//! "Remaining" counts failed actions too: a retry runs them.

use std::collections::HashMap;

use model::ActionKind;
use rusqlite::{params, OptionalExtension};

use crate::{Catalog, CatalogError, Result};

const REMAINING: &str = "status IN ('pending', 'in_flight', 'restoring', 'failed', 'uncertain')";

/// A version a plan relies on being there when it runs: a copy's source,
/// or the version an undelete brings back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeededVersion {
    pub key: String,
    pub size: Option<i64>,
    /// When it was written (Unix seconds).
    pub mtime: i64,
    /// When the entry above it was written: it has been noncurrent since
    /// (Unix seconds).
    pub noncurrent_since: i64,
    /// Noncurrent object versions of the key newer than it.
    pub newer_noncurrent: i64,
    /// It becomes current again when the plan removes the entries above
    /// it (markers, newer versions).
    pub made_current: bool,
}

/// One remaining action, as far as a per-object check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRef {
    pub id: i64,
    pub key: String,
    pub version_id: String,
    pub size: Option<i64>,
}

impl Catalog {
    /// Calls `f` for each version the plan's remaining actions rely on that
    /// is noncurrent now: the sources of its copies, and the version each
    /// key is left with on top when the plan only removes entries (a
    /// rollback, an undelete, an undo falling back): that version becomes
    /// current again, so current-version expiration applies to it.
    pub fn for_each_needed_version(
        &self,
        plan_id: i64,
        mut f: impl FnMut(NeededVersion),
    ) -> Result<()> {
        // `live`: the entries S3 holds now as far as the catalog knows
        // (apply's own writes included); the newest has the lowest seq.
        let sql = format!(
            "WITH live AS (SELECT * FROM entries WHERE removed_rev IS NULL),
             plan_keys AS (
                 SELECT key_id,
                        max(kind IN ('copy_version', 'add_delete_marker')) AS writes
                 FROM actions
                 WHERE plan_id = ?1 AND {REMAINING}
                 GROUP BY key_id
             ),
             left_on_top(key_id, seq) AS (
                 SELECT p.key_id,
                        (SELECT min(e.seq) FROM live e
                         WHERE e.key_id = p.key_id AND NOT EXISTS (
                             SELECT 1 FROM actions r INDEXED BY actions_by_key
                             WHERE r.plan_id = ?1 AND r.key_id = p.key_id
                               AND r.kind IN ('delete_version', 'delete_marker')
                               AND r.{REMAINING} AND r.version_id = e.version_id))
                 FROM plan_keys p WHERE NOT p.writes
             ),
             needed(key_id, seq, made_current) AS (
                 SELECT key_id, seq, 0 FROM actions
                 WHERE plan_id = ?1 AND kind = 'copy_version' AND {REMAINING}
                 UNION
                 SELECT key_id, seq, 1 FROM left_on_top WHERE seq IS NOT NULL
             )
             SELECT k.key, e.size, e.mtime,
                    (SELECT p.mtime FROM live p
                     WHERE p.key_id = n.key_id AND p.seq < n.seq ORDER BY p.seq DESC LIMIT 1),
                    (SELECT count(*) FROM live c
                     WHERE c.key_id = n.key_id AND c.is_marker = 0 AND c.seq < n.seq
                       AND c.seq > (SELECT min(t.seq) FROM live t WHERE t.key_id = n.key_id)),
                    n.made_current
             FROM needed n
             JOIN live e ON e.key_id = n.key_id AND e.seq = n.seq
             JOIN keys k ON k.id = n.key_id
             WHERE e.is_marker = 0
               AND n.seq > (SELECT min(t.seq) FROM live t WHERE t.key_id = n.key_id)"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([plan_id])?;
        while let Some(r) = rows.next()? {
            f(NeededVersion {
                key: r.get(0)?,
                size: r.get(1)?,
                mtime: r.get(2)?,
                noncurrent_since: r.get(3)?,
                newer_noncurrent: r.get(4)?,
                made_current: r.get(5)?,
            });
        }
        Ok(())
    }

    /// Remaining actions per kind.
    pub fn remaining_by_kind(&self, plan_id: i64) -> Result<HashMap<ActionKind, u64>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT kind, count(*) FROM actions WHERE plan_id = ?1 AND {REMAINING} GROUP BY kind"
        ))?;
        let mut rows = stmt.query([plan_id])?;
        let mut out = HashMap::new();
        while let Some(r) = rows.next()? {
            let kind: String = r.get(0)?;
            let kind = ActionKind::parse(&kind)
                .ok_or_else(|| CatalogError::WriterGone(format!("unknown action kind {kind}")))?;
            out.insert(kind, r.get::<_, i64>(1)? as u64);
        }
        Ok(out)
    }

    /// Remaining copies by their source's storage class: (class, copies, bytes).
    pub fn copy_sources_by_class(&self, plan_id: i64) -> Result<Vec<(String, u64, u64)>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT coalesce(storage_class, 'STANDARD'), count(*), coalesce(sum(size), 0)
             FROM actions WHERE plan_id = ?1 AND kind = 'copy_version' AND {REMAINING}
             GROUP BY 1 ORDER BY 2 DESC"
        ))?;
        let rows = stmt.query_map([plan_id], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` remaining actions of `kind` with ids after `after`
    /// (and of storage class `class`, if given), in id order: a page.
    pub fn remaining_actions(
        &self,
        plan_id: i64,
        kind: ActionKind,
        class: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ActionRef>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, key, coalesce(version_id, 'null'), size FROM actions
             WHERE plan_id = ?1 AND kind = ?2 AND {REMAINING} AND id > ?3
               AND (?4 IS NULL OR storage_class = ?4)
             ORDER BY id LIMIT ?5"
        ))?;
        let rows = stmt.query_map(
            params![plan_id, kind.as_str(), after, class, limit as i64],
            |r| {
                Ok(ActionRef {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    version_id: r.get(2)?,
                    size: r.get(3)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// About `n` remaining copies spread evenly over the plan.
    pub fn copy_samples(&self, plan_id: i64, n: usize) -> Result<Vec<ActionRef>> {
        let mut stmt = self.conn.prepare(&format!(
            "WITH c AS (SELECT id, key, coalesce(version_id, 'null') AS v, size,
                               row_number() OVER (ORDER BY id) AS i, count(*) OVER () AS total
                        FROM actions WHERE plan_id = ?1 AND kind = 'copy_version' AND {REMAINING})
             SELECT id, key, v, size FROM c
             WHERE (i - 1) % max(1, total / ?2) = 0 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![plan_id, n as i64], |r| {
            Ok(ActionRef {
                id: r.get(0)?,
                key: r.get(1)?,
                version_id: r.get(2)?,
                size: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Remaining copies and new delete markers on keys under `prefix`.
    pub fn writes_under(&self, plan_id: i64, prefix: &str) -> Result<(u64, u64)> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT coalesce(sum(kind = 'copy_version'), 0), coalesce(sum(kind = 'add_delete_marker'), 0)
             FROM actions WHERE plan_id = ?1 AND {REMAINING}
               AND kind IN ('copy_version', 'add_delete_marker')
               AND substr(key, 1, length(?2)) = ?2"
        ))?;
        Ok(stmt.query_row(params![plan_id, prefix], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?)
    }

    /// Marks actions skipped before they run, each with its reason (a
    /// locked version a person accepted not to delete). One transaction.
    /// Remaining deletes of version `null`: S3 takes no condition on a
    /// version's delete, and while versioning is not Enabled every write
    /// replaces a key's `null` version.
    pub fn remaining_null_deletes(&self, plan_id: i64) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            &format!(
                "SELECT count(*) FROM actions WHERE plan_id = ?1 AND {REMAINING}
                   AND kind IN ('delete_version', 'delete_marker') AND version_id = 'null'"
            ),
            [plan_id],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Records actions as skipped, with why (versions Object Lock keeps),
    /// and with them the removals below each on its key.
    pub fn skip_actions(&mut self, plan_id: i64, skipped: &[(i64, String)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut update = tx.prepare(
                "UPDATE actions SET status = 'skipped', error = ?3, applied_at = ?4
                 WHERE plan_id = ?1 AND id = ?2",
            )?;
            // A key is a unit: what lies below a version that stays is not
            // removed either (the key could reach neither T nor its state
            // before, and those versions would be gone for good).
            let mut below = tx.prepare(&format!(
                "UPDATE actions SET status = 'skipped', error = ?3, applied_at = ?4
                 WHERE plan_id = ?1 AND {REMAINING}
                   AND kind IN ('delete_version', 'delete_marker')
                   AND (key_id, seq) IN (
                       SELECT b.key_id, b.seq FROM actions s
                       JOIN actions b INDEXED BY actions_by_key
                         ON b.plan_id = s.plan_id AND b.key_id = s.key_id AND b.seq > s.seq
                       WHERE s.plan_id = ?1 AND s.id = ?2)"
            ))?;
            let now = model::time::now_text();
            for (id, reason) in skipped {
                update.execute(params![plan_id, id, reason, now])?;
                let version: Option<String> = tx
                    .query_row(
                        "SELECT version_id FROM actions WHERE plan_id = ?1 AND id = ?2",
                        params![plan_id, id],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten();
                let why = format!(
                    "the version above ({}) stays ({reason}), so the key is left as it is from there down (not reverted)",
                    version.unwrap_or_default()
                );
                below.execute(params![plan_id, id, why, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{catalog_with, entry};

    #[test]
    fn needed_versions_know_when_they_became_noncurrent() {
        // a: v3 (newest) over v2 over v1; b: a marker over w
        let (_dir, mut catalog) = catalog_with(vec![
            entry("a", "v3", false, 300),
            entry("a", "v2", false, 200),
            entry("a", "v1", false, 100),
            entry("b", "m", true, 50),
            entry("b", "w", false, 10),
            // c: rolled back, its newest version deleted
            entry("c", "c2", false, 400),
            entry("c", "c1", false, 150),
        ]);
        catalog
            .conn
            .execute_batch(
                "INSERT INTO plans (id, name, rule, parameters, created_at, scan_id, actions)
                     VALUES (1, 'p', 'sql', '{}', '2024-01-01T00:00:00Z', 1, 3);
                 INSERT INTO actions (plan_id, id, kind, key, key_id, version_id, seq, size, why)
                     VALUES (1, 1, 'copy_version', 'a', 1, 'v1', 2, 10, ''),
                            (1, 2, 'delete_marker', 'b', 2, 'm', 0, NULL, ''),
                            (1, 3, 'delete_version', 'a', 1, 'v3', 0, 10, ''),
                            (1, 4, 'delete_version', 'c', 3, 'c2', 0, 10, '');",
            )
            .unwrap();
        let mut needed = Vec::new();
        catalog
            .for_each_needed_version(1, |n| needed.push(n))
            .unwrap();
        needed.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(
            needed,
            vec![
                NeededVersion {
                    key: "a".into(),
                    size: Some(10),
                    mtime: 100,
                    noncurrent_since: 200,
                    newer_noncurrent: 1,
                    made_current: false,
                },
                NeededVersion {
                    key: "b".into(),
                    size: Some(10),
                    mtime: 10,
                    noncurrent_since: 50,
                    newer_noncurrent: 0,
                    made_current: true,
                },
                NeededVersion {
                    key: "c".into(),
                    size: Some(10),
                    mtime: 150,
                    noncurrent_since: 400,
                    newer_noncurrent: 0,
                    made_current: true,
                },
            ]
        );
        let deletes = catalog
            .remaining_actions(1, ActionKind::DeleteVersion, None, 0, 10)
            .unwrap();
        let deleted: Vec<&str> = deletes.iter().map(|d| d.version_id.as_str()).collect();
        assert_eq!(deleted, ["v3", "c2"]);
        assert_eq!(catalog.writes_under(1, "a").unwrap(), (1, 0));
        assert_eq!(catalog.writes_under(1, "b").unwrap(), (0, 0));
        catalog
            .skip_actions(1, &[(3, "locked".into()), (4, "locked".into())])
            .unwrap();
        assert!(catalog
            .remaining_actions(1, ActionKind::DeleteVersion, None, 0, 10)
            .unwrap()
            .is_empty());
    }
}
