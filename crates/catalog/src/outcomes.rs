//! A plan's keys with what the scan saw of them and what the plan does to
//! them (and, once applied, what apply recorded): what `verify` checks the
//! bucket against, and what `plan undo` inverts. Read a slice of keys at a time, in key id order, so a
//! plan of any size is checked in bounded memory.

use model::ActionKind;
use rusqlite::params;

use crate::{Catalog, Result};

/// An entry of a key as scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEntry {
    pub version_id: String,
    pub is_marker: bool,
    pub size: Option<i64>,
    /// As S3 writes it (hex MD5, or `<md5>-<parts>`), without quotes.
    pub etag: Option<String>,
}

/// One action of the plan on the key, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAction {
    pub id: i64,
    pub kind: ActionKind,
    /// The version or marker acted on; `None` for add_delete_marker.
    pub version_id: Option<String>,
    /// pending, in_flight, done, failed or skipped.
    pub status: String,
    /// The version id S3 gave a copy or a new delete marker.
    pub result_version_id: Option<String>,
    /// The key's newest entry when the plan was made.
    pub expected_latest: Option<String>,
}

/// A key the plan acts on, or one a restore found already as at T (no
/// actions: it must still show what it showed when the plan was made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedKey {
    pub key_id: i64,
    pub key: String,
    /// As scanned, newest first.
    pub history: Vec<SeenEntry>,
    /// The plan's actions on it, in id order.
    pub actions: Vec<KeyAction>,
}

/// What a key's newest entry should be once the plan is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Top {
    /// No entry, or a delete marker: the key reads as deleted.
    Deleted,
    /// A version: with this id when known (a scanned version, or a copy
    /// whose result apply recorded), else with this content.
    Version {
        version_id: Option<String>,
        etag: Option<String>,
        size: Option<i64>,
    },
}

/// What the bucket must show for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intended {
    pub top: Top,
    /// The id of the newest entry, when known (a scanned entry, or one
    /// apply made and recorded).
    pub newest_id: Option<String>,
    /// Versions and markers the plan removes.
    pub gone: Vec<String>,
}

impl PlannedKey {
    /// The state the plan means the key to reach: its actions applied,
    /// in id order, to what the scan saw — whatever became of them.
    pub fn intended(&self) -> Intended {
        self.intended_from(true)
    }

    /// The same where the plan acts elsewhere (`--into`): its actions
    /// applied to a key with no entries (the scanned history only tells
    /// what a copy copies).
    pub fn intended_elsewhere(&self) -> Intended {
        self.intended_from(false)
    }

    fn intended_from(&self, scanned: bool) -> Intended {
        // (version id if known, is marker, etag, size), newest first.
        type Slot = (Option<String>, bool, Option<String>, Option<i64>);
        let mut entries: Vec<Slot> = self
            .history
            .iter()
            .filter(|_| scanned)
            .map(|e| {
                (
                    Some(e.version_id.clone()),
                    e.is_marker,
                    e.etag.clone(),
                    e.size,
                )
            })
            .collect();
        let mut gone = Vec::new();
        for a in &self.actions {
            match a.kind {
                ActionKind::DeleteVersion | ActionKind::DeleteMarker => {
                    if let Some(v) = &a.version_id {
                        entries.retain(|e| e.0.as_deref() != Some(v.as_str()));
                        gone.push(v.clone());
                    }
                }
                ActionKind::CopyVersion => {
                    let source = self
                        .history
                        .iter()
                        .find(|e| Some(&e.version_id) == a.version_id.as_ref());
                    entries.insert(
                        0,
                        (
                            a.result_version_id.clone(),
                            false,
                            source.and_then(|s| s.etag.clone()),
                            source.and_then(|s| s.size),
                        ),
                    );
                }
                ActionKind::AddDeleteMarker => {
                    entries.insert(0, (a.result_version_id.clone(), true, None, None));
                }
            }
        }
        let newest_id = entries.first().and_then(|e| e.0.clone());
        let top = match entries.into_iter().next() {
            None | Some((_, true, _, _)) => Top::Deleted,
            Some((version_id, false, etag, size)) => Top::Version {
                version_id,
                etag,
                size,
            },
        };
        Intended {
            top,
            newest_id,
            gone,
        }
    }
}

impl Catalog {
    /// Up to `limit` of the plan's keys whose key id is above `after`, in
    /// key id order (the scan's listing order).
    pub fn planned_keys(&self, plan_id: i64, after: i64, limit: usize) -> Result<Vec<PlannedKey>> {
        // Its keys with actions, and those a restore found already as at
        // T (migration 0013): verify checks those too.
        let mut ids = self.conn.prepare_cached(
            "SELECT key_id FROM actions INDEXED BY actions_by_key \
             WHERE plan_id = ?1 AND key_id > ?2 \
             UNION SELECT key_id FROM already WHERE plan_id = ?1 AND key_id > ?2 \
             ORDER BY key_id LIMIT ?3",
        )?;
        let key_ids: Vec<i64> = ids
            .query_map(params![plan_id, after, limit as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let (Some(&first), Some(&last)) = (key_ids.first(), key_ids.last()) else {
            return Ok(Vec::new());
        };
        let list = crate::json_ids(&key_ids);
        let mut keys: Vec<PlannedKey> = Vec::with_capacity(key_ids.len());
        // The keys as the catalog knew them when the plan was made: what
        // apply and later listings changed since is left out (migration 0011).
        let mut history = self.conn.prepare_cached(
            "SELECT key_id, key, version_id, is_marker, size, etag FROM entry_history \
             WHERE key_id IN (SELECT value FROM json_each(?1)) \
               AND coalesce(added_rev, 0) <= ?2 AND coalesce(removed_rev, ?2 + 1) > ?2 \
             ORDER BY key_id, seq",
        )?;
        let revision: i64 = self.conn.query_row(
            "SELECT scan_revision FROM plans WHERE id = ?1",
            [plan_id],
            |r| r.get(0),
        )?;
        let mut rows = history.query(params![list, revision])?;
        while let Some(r) = rows.next()? {
            let key_id: i64 = r.get(0)?;
            if keys.last().is_none_or(|k| k.key_id != key_id) {
                keys.push(PlannedKey {
                    key_id,
                    key: r.get(1)?,
                    history: Vec::new(),
                    actions: Vec::new(),
                });
            }
            let key = keys.last_mut().expect("pushed");
            key.history.push(SeenEntry {
                version_id: r.get(2)?,
                is_marker: r.get(3)?,
                size: r.get(4)?,
                etag: r.get(5)?,
            });
        }
        let mut actions = self.conn.prepare_cached(
            "SELECT key_id, id, kind, version_id, status, result_version_id, expected_latest \
             FROM actions INDEXED BY actions_by_key \
             WHERE plan_id = ?1 AND key_id BETWEEN ?2 AND ?3 ORDER BY key_id, id",
        )?;
        let mut rows = actions.query(params![plan_id, first, last])?;
        let mut at = 0;
        while let Some(r) = rows.next()? {
            let key_id: i64 = r.get(0)?;
            while at < keys.len() && keys[at].key_id < key_id {
                at += 1;
            }
            let Some(key) = keys.get_mut(at).filter(|k| k.key_id == key_id) else {
                continue;
            };
            let kind: String = r.get(2)?;
            key.actions.push(KeyAction {
                id: r.get(1)?,
                kind: ActionKind::parse(&kind).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        2,
                        rusqlite::types::Type::Text,
                        kind.clone().into(),
                    )
                })?,
                version_id: r.get(3)?,
                status: r.get(4)?,
                result_version_id: r.get(5)?,
                expected_latest: r.get(6)?,
            });
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{catalog_with, entry, plan_with};

    #[test]
    fn a_plans_keys_come_with_their_history_and_actions_a_slice_at_a_time() {
        let (_dir, catalog) = catalog_with(vec![
            entry("a", "a2", true, 20),
            entry("a", "a1", false, 10),
            entry("b", "b1", false, 10),
            entry("c", "c1", false, 10),
        ]);
        let plan_id = plan_with(
            &catalog,
            &[
                (ActionKind::DeleteMarker, "a", 1, Some("a2"), None),
                (ActionKind::AddDeleteMarker, "c", 3, None, None),
            ],
        );
        let keys = catalog.planned_keys(plan_id, 0, 1).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key, "a");
        assert_eq!(keys[0].history.len(), 2);
        assert!(keys[0].history[0].is_marker);
        assert_eq!(keys[0].actions[0].kind, ActionKind::DeleteMarker);
        let rest = catalog.planned_keys(plan_id, keys[0].key_id, 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!((rest[0].key.as_str(), rest[0].actions.len()), ("c", 1));
        assert_eq!(
            rest[0].history[0].etag.as_deref(),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert!(catalog
            .planned_keys(plan_id, rest[0].key_id, 10)
            .unwrap()
            .is_empty());
    }
}
