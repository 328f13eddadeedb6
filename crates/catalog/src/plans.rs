//! Plans and their actions: made (from rows a rule computed), listed,
//! reported, exported and dropped. Apply's side of the same rows — claiming
//! and finishing them — is in [`actions`](crate::actions).

use model::ActionKind;
use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};

use crate::{user_sql, Catalog, CatalogError, Result};

/// A plan about to be made.
#[derive(Debug, Clone)]
pub struct NewPlan<'a> {
    pub name: &'a str,
    /// `restore`, `undelete`, `expire` or `sql`.
    pub rule: &'a str,
    /// The rule's parameters, as JSON.
    pub parameters: &'a str,
    /// The scan it is made from.
    pub scan_id: i64,
}

/// One planned action, as a rule made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction<'a> {
    pub kind: ActionKind,
    pub key: &'a str,
    pub key_id: i64,
    /// The version or marker acted on; `None` for add_delete_marker.
    pub version_id: Option<&'a str>,
    /// Its position among the key's entries.
    pub seq: Option<i64>,
    pub size: Option<i64>,
    pub storage_class: Option<&'a str>,
    /// The reason, for people.
    pub why: String,
    /// The key's newest entry when scanned.
    pub expected_latest: Option<&'a str>,
}

/// A key a restore finds already holding the content of the version it
/// would copy back (the `already` table, migration 0013): no action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyKey<'a> {
    pub key: &'a str,
    pub key_id: i64,
    /// The version to restore.
    pub version_id: &'a str,
    /// The key's newest version, which holds its content.
    pub newest_version_id: &'a str,
    pub known_by: model::content::KnownBy,
    pub why: String,
}

/// Inserts a plan's actions, numbering them 1, 2, 3, … (apply hands out
/// blocks of ids by range), and the keys it leaves alone as already done.
pub struct PlanWriter<'c> {
    insert: rusqlite::CachedStatement<'c>,
    insert_already: rusqlite::CachedStatement<'c>,
    plan_id: i64,
    actions: i64,
}

impl PlanWriter<'_> {
    pub fn push(&mut self, a: &NewAction<'_>) -> Result<()> {
        self.actions += 1;
        self.insert.execute(params![
            self.plan_id,
            self.actions,
            a.kind.as_str(),
            a.key,
            a.key_id,
            a.version_id,
            a.seq,
            a.size,
            a.storage_class,
            a.why,
            a.expected_latest,
        ])?;
        Ok(())
    }

    pub fn push_already(&mut self, a: &AlreadyKey<'_>) -> Result<()> {
        self.insert_already.execute(params![
            self.plan_id,
            a.key_id,
            a.key,
            a.version_id,
            a.newest_version_id,
            a.known_by.as_str(),
            a.why,
        ])?;
        Ok(())
    }

    /// Actions pushed so far.
    pub fn count(&self) -> u64 {
        self.actions as u64
    }
}

/// What the catalog holds twice in one plan: a version acted on twice, or
/// a key given two new versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duplicate {
    Version {
        action_id: i64,
        key: String,
        version_id: String,
    },
    NewVersions {
        action_id: i64,
        key: String,
    },
}

/// Action counts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub pending: u64,
    pub in_flight: u64,
    pub done: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Copies S3 refused because the key changed after the scan (412).
    pub drifted: u64,
    /// Copies waiting for their source's restore from an archive.
    pub restoring: u64,
    /// Writes whose outcome could not be decided: a version that may be
    /// theirs, for a person to settle (`plan resolve`).
    pub uncertain: u64,
}

impl StatusCounts {
    pub fn total(&self) -> u64 {
        self.pending
            + self.in_flight
            + self.done
            + self.failed
            + self.skipped
            + self.drifted
            + self.restoring
            + self.uncertain
    }

    /// Actions apply would still execute.
    pub fn remaining(&self, retry_failed: bool) -> u64 {
        self.pending
            + self.in_flight
            + self.restoring
            + self.uncertain
            + if retry_failed { self.failed } else { 0 }
    }
}

/// The columns of `actions` an export writes, in order.
pub const EXPORT_COLUMNS: [&str; 13] = [
    "id",
    "kind",
    "key",
    "version_id",
    "size",
    "storage_class",
    "why",
    "expected_latest",
    "status",
    "attempts",
    "error",
    "result_version_id",
    "applied_at",
];

/// One `plans` row with its progress.
#[derive(Debug, Clone)]
pub struct PlanInfo {
    pub id: i64,
    pub name: String,
    pub rule: String,
    pub parameters: String,
    pub created_at: String,
    pub scan_id: i64,
    /// The scan's revision when the plan was made (see `ScanRecord::revision`).
    pub scan_revision: i64,
    pub actions: u64,
    pub status: StatusCounts,
    /// The undo plan that took it back (applied), if one did.
    pub undone_by: Option<String>,
}

/// Actions of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCount {
    pub kind: ActionKind,
    pub actions: u64,
    pub bytes: u64,
}

/// What `plan show` reports, as the catalog knows it.
#[derive(Debug, Clone)]
pub struct PlanFigures {
    pub kinds: Vec<KindCount>,
    /// Distinct keys acted on.
    pub keys: u64,
    /// Sizes of the copies larger than S3 copies at once (they cost more requests).
    pub large_copy_sizes: Vec<u64>,
    /// The first actions, as (column, value) of `plan_review`.
    pub sample: Vec<Vec<(String, String)>>,
    /// Keys left alone as already holding the content to restore, by how
    /// that was known.
    pub already: Vec<(model::content::KnownBy, u64)>,
}

/// One row of a person's `plan sql` query, resolved against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub action: Option<String>,
    pub key: Option<String>,
    /// `None`: no such key in the catalog.
    pub key_id: Option<i64>,
    pub version_id: Option<String>,
    /// Of the named entry; `None`: no such version of the key.
    pub seq: Option<i64>,
    pub is_marker: Option<bool>,
    pub size: Option<i64>,
    pub storage_class: Option<String>,
    pub why: String,
    pub expected_latest: Option<String>,
}

impl Catalog {
    /// Makes a plan in one transaction: `fill` pushes its actions (it may
    /// read the catalog meanwhile). On any error nothing is kept.
    pub fn insert_plan<E: From<CatalogError>>(
        &self,
        plan: &NewPlan<'_>,
        fill: impl FnOnce(&mut PlanWriter<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<u64, E> {
        // `fill` reads through this same connection while the transaction
        // is open, hence a transaction that does not borrow it mutably.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(CatalogError::from)?;
        tx.execute(
            "INSERT INTO plans (name, rule, parameters, created_at, scan_id, actions, scan_revision) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, (SELECT revision FROM scans WHERE id = ?5))",
            params![
                plan.name,
                plan.rule,
                plan.parameters,
                model::time::now_text(),
                plan.scan_id
            ],
        )
        .map_err(CatalogError::from)?;
        let mut writer = PlanWriter {
            insert: tx
                .prepare_cached(
                    "INSERT INTO actions (plan_id, id, kind, key, key_id, version_id, seq, size, \
                     storage_class, why, expected_latest) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(CatalogError::from)?,
            insert_already: tx
                .prepare_cached(
                    "INSERT INTO already (plan_id, key_id, key, version_id, newest_version_id, \
                     known_by, why) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(CatalogError::from)?,
            plan_id: tx.last_insert_rowid(),
            actions: 0,
        };
        fill(&mut writer)?;
        let (plan_id, count) = (writer.plan_id, writer.actions);
        drop(writer);
        tx.execute(
            "UPDATE plans SET actions = ?2 WHERE id = ?1",
            params![plan_id, count],
        )
        .map_err(CatalogError::from)?;
        tx.commit().map_err(CatalogError::from)?;
        Ok(count as u64)
    }

    /// The first action (by id) that repeats an earlier one of the plan
    /// being written: one version acted on twice, or two new versions for
    /// one key (a copy and a new marker, say). For plans from a person's SQL.
    pub fn first_duplicate(&self, writer: &PlanWriter<'_>) -> Result<Option<Duplicate>> {
        let version = self
            .conn
            .query_row(
                "SELECT max(id), key, version_id FROM actions INDEXED BY actions_by_key \
                 WHERE plan_id = ?1 AND version_id IS NOT NULL \
                 GROUP BY key_id, version_id HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
                [writer.plan_id],
                |r| {
                    Ok(Duplicate::Version {
                        action_id: r.get(0)?,
                        key: r.get(1)?,
                        version_id: r.get(2)?,
                    })
                },
            )
            .optional()?;
        if version.is_some() {
            return Ok(version);
        }
        Ok(self
            .conn
            .query_row(
                "SELECT max(id), key FROM actions INDEXED BY actions_by_key \
                 WHERE plan_id = ?1 AND kind IN ('copy_version', 'add_delete_marker') \
                 GROUP BY key_id HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
                [writer.plan_id],
                |r| {
                    Ok(Duplicate::NewVersions {
                        action_id: r.get(0)?,
                        key: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// Runs a person's `plan sql` query (read-only) and resolves each row
    /// against the catalog: the key's id, the named entry, the key's newest
    /// entry. `f` sees the rows in the query's order.
    pub fn for_each_user_row<E: From<CatalogError>>(
        &self,
        query: &str,
        mut f: impl FnMut(UserRow) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        const WHAT: &str = "the query";
        let query = query.trim().trim_end_matches(';').trim_end();
        let columns = user_sql::prepare(&self.conn, query, WHAT)?.column_count();
        let (names, why) = match columns {
            3 => ("action, key, version_id", "'chosen by plan sql'"),
            4 => (
                "action, key, version_id, why",
                "coalesce(u.why, 'chosen by plan sql')",
            ),
            n => {
                return Err(CatalogError::BadSql {
                    what: WHAT.into(),
                    reason: format!(
                        "it returns {n} columns; return (action, key, version_id) or (action, key, version_id, why)"
                    ),
                }
                .into())
            }
        };
        // The person's query, as a CTE of the query that resolves its rows
        // (compiled read-only like the query itself).
        let sql = format!(
            "WITH u({names}) AS (\n{query}\n)\n{}",
            include_str!("sql/resolve_user_rows.sql").replace("{why}", why)
        );
        let mut stmt = user_sql::prepare(&self.conn, &sql, WHAT)?;
        let mut rows = stmt.raw_query();
        while let Some(r) = rows.next().map_err(|e| user_sql::run_error(WHAT, &e))? {
            f(read_user_row(r).map_err(CatalogError::from)?)?;
        }
        Ok(())
    }

    /// A version the plan still has to copy (key, version id), if any,
    /// preferably not in an archive class: what the condition probe copies.
    pub fn copy_to_make(&self, plan_id: i64) -> Result<Option<(String, String)>> {
        Ok(self
            .conn
            .query_row(
                // One S3 can copy now, if there is one: an archived source
                // would only say it is archived.
                "SELECT key, version_id FROM actions WHERE plan_id = ?1 AND kind = 'copy_version' \
                 AND status IN ('pending', 'in_flight', 'failed', 'restoring', 'uncertain') AND version_id IS NOT NULL \
                 ORDER BY coalesce(storage_class, 'STANDARD') IN ('GLACIER', 'DEEP_ARCHIVE', 'INTELLIGENT_TIERING') LIMIT 1",
                [plan_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The undo plan that took plan `name` back (has done actions), if any.
    pub fn undone_by(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT u.name FROM plans u
                 WHERE u.rule = 'undo' AND json_extract(u.parameters, '$.of') = ?1
                   AND EXISTS (SELECT 1 FROM actions a WHERE a.plan_id = u.id AND a.status = 'done')
                 ORDER BY u.id LIMIT 1",
                [name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The id of the plan named `name`.
    pub fn plan_id(&self, name: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT id FROM plans WHERE name = ?1", [name], |r| r.get(0))
            .optional()?)
    }

    /// Every plan with its progress, oldest first.
    pub fn plans(&self) -> Result<Vec<PlanInfo>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.id, p.name, p.rule, p.parameters, p.created_at, p.scan_id, p.actions, p.scan_revision,
                    coalesce(sum(a.status = 'pending'), 0), coalesce(sum(a.status = 'in_flight'), 0),
                    coalesce(sum(a.status = 'done'), 0), coalesce(sum(a.status = 'failed'), 0),
                    coalesce(sum(a.status = 'skipped'), 0), coalesce(sum(a.status = 'drifted'), 0),
                    coalesce(sum(a.status = 'restoring'), 0), coalesce(sum(a.status = 'uncertain'), 0),
                    (SELECT u.name FROM plans u
                     WHERE u.rule = 'undo' AND json_extract(u.parameters, '$.of') = p.name
                       AND EXISTS (SELECT 1 FROM actions d WHERE d.plan_id = u.id AND d.status = 'done')
                     ORDER BY u.id LIMIT 1)
             FROM plans p LEFT JOIN actions a ON a.plan_id = p.id
             GROUP BY p.id ORDER BY p.id",
        )?;
        let count = |r: &rusqlite::Row<'_>, i: usize| r.get::<_, i64>(i).map(|n| n as u64);
        let rows = stmt.query_map([], |r| {
            Ok(PlanInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                rule: r.get(2)?,
                parameters: r.get(3)?,
                created_at: r.get(4)?,
                scan_id: r.get(5)?,
                actions: count(r, 6)?,
                scan_revision: r.get(7)?,
                status: StatusCounts {
                    pending: count(r, 8)?,
                    in_flight: count(r, 9)?,
                    done: count(r, 10)?,
                    failed: count(r, 11)?,
                    skipped: count(r, 12)?,
                    drifted: count(r, 13)?,
                    restoring: count(r, 14)?,
                    uncertain: count(r, 15)?,
                },
                undone_by: r.get(16)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts, keys and a sample of a plan's actions.
    pub fn plan_figures(&self, plan_id: i64, sample_rows: usize) -> Result<PlanFigures> {
        let mut kinds = Vec::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT kind, count(*), coalesce(sum(size), 0) FROM actions WHERE plan_id = ?1 GROUP BY kind",
            )?;
            let mut rows = stmt.query([plan_id])?;
            while let Some(r) = rows.next()? {
                let kind: String = r.get(0)?;
                if let Some(kind) = ActionKind::parse(&kind) {
                    kinds.push(KindCount {
                        kind,
                        actions: r.get::<_, i64>(1)? as u64,
                        bytes: r.get::<_, i64>(2)? as u64,
                    });
                }
            }
        }
        kinds.sort_by_key(|k| ActionKind::ALL.iter().position(|a| *a == k.kind));
        let large_copy_sizes = self
            .conn
            .prepare(
                "SELECT size FROM actions WHERE plan_id = ?1 AND kind = 'copy_version' AND size > ?2",
            )?
            .query_map(
                params![plan_id, model::limits::SINGLE_COPY_LIMIT as i64],
                |r| r.get::<_, i64>(0).map(|s| s as u64),
            )?
            .collect::<Result<_, _>>()?;
        let keys: i64 = self.conn.query_row(
            "SELECT count(*) FROM (SELECT DISTINCT key_id FROM actions INDEXED BY actions_by_key WHERE plan_id = ?1)",
            [plan_id],
            |r| r.get(0),
        )?;
        let already = self
            .conn
            .prepare("SELECT known_by, count(*) FROM already WHERE plan_id = ?1 GROUP BY 1 ORDER BY 1 DESC")?
            .query_map([plan_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
            .filter_map(|r| match r {
                Ok((by, n)) => model::content::KnownBy::parse(&by).map(|by| Ok((by, n))),
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()?;
        let mut sample = Vec::new();
        let mut stmt = self.conn.prepare(
            "SELECT id, action, key, version_id, version_last_modified, size, why, status
             FROM plan_review WHERE plan = (SELECT name FROM plans WHERE id = ?1) AND id IS NOT NULL
             ORDER BY id LIMIT ?2",
        )?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = stmt.query(params![plan_id, sample_rows as i64])?;
        while let Some(r) = rows.next()? {
            let mut cells = Vec::with_capacity(names.len());
            for (i, n) in names.iter().enumerate() {
                cells.push((n.clone(), user_sql::display(r.get::<_, Value>(i)?)));
            }
            sample.push(cells);
        }
        Ok(PlanFigures {
            kinds,
            keys: keys as u64,
            large_copy_sizes,
            sample,
            already,
        })
    }

    /// Deletes a plan and its actions.
    pub fn drop_plan(&mut self, plan_id: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM actions WHERE plan_id = ?1", [plan_id])?;
        tx.execute("DELETE FROM already WHERE plan_id = ?1", [plan_id])?;
        tx.execute("DELETE FROM plans WHERE id = ?1", [plan_id])?;
        tx.commit()?;
        Ok(())
    }

    /// Every column of a plan's actions but the internal ids
    /// ([`EXPORT_COLUMNS`]), row by row in id order.
    pub fn for_each_action_row<E: From<CatalogError>>(
        &self,
        plan_id: i64,
        mut f: impl FnMut(Vec<Value>) -> std::result::Result<(), E>,
    ) -> std::result::Result<u64, E> {
        let sql = format!(
            "SELECT {} FROM actions WHERE plan_id = ?1 ORDER BY id",
            EXPORT_COLUMNS.join(", ")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(CatalogError::from)?;
        let mut rows = stmt.query([plan_id]).map_err(CatalogError::from)?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(CatalogError::from)? {
            let values = (0..EXPORT_COLUMNS.len())
                .map(|i| r.get::<_, Value>(i))
                .collect::<Result<_, _>>()
                .map_err(CatalogError::from)?;
            f(values)?;
            n += 1;
        }
        Ok(n)
    }

    /// (key, version id) of each copy_version action, in id order.
    pub fn for_each_copy<E: From<CatalogError>>(
        &self,
        plan_id: i64,
        mut f: impl FnMut(&str, &str) -> std::result::Result<(), E>,
    ) -> std::result::Result<u64, E> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT key, version_id FROM actions WHERE plan_id = ?1 AND kind = 'copy_version' ORDER BY id",
            )
            .map_err(CatalogError::from)?;
        let mut rows = stmt.query([plan_id]).map_err(CatalogError::from)?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(CatalogError::from)? {
            let key: String = r.get(0).map_err(CatalogError::from)?;
            let version: String = r.get(1).map_err(CatalogError::from)?;
            f(&key, &version)?;
            n += 1;
        }
        Ok(n)
    }

    /// Calls `f` with each action apply would still execute, in id order:
    /// (id, kind, key, version id, size).
    pub fn for_each_remaining(
        &self,
        plan_id: i64,
        retry_failed: bool,
        mut f: impl FnMut(i64, &str, &str, Option<&str>, Option<i64>),
    ) -> Result<u64> {
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, key, version_id, size FROM actions
             WHERE plan_id = ?1 AND (status IN ('pending', 'in_flight', 'restoring', 'uncertain') OR (?2 AND status = 'failed'))
             ORDER BY id",
        )?;
        let mut rows = stmt.query(params![plan_id, retry_failed])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(1)?;
            let key: String = r.get(2)?;
            let version: Option<String> = r.get(3)?;
            f(r.get(0)?, &kind, &key, version.as_deref(), r.get(4)?);
            n += 1;
        }
        Ok(n)
    }

    /// Failed actions of a plan counted by S3 error code (the text before
    /// the first ':' of `error`), most frequent first.
    pub fn failures_by_code(&self, plan_id: i64) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT CASE WHEN instr(error, ':') > 0 THEN substr(error, 1, instr(error, ':') - 1) ELSE coalesce(error, '?') END AS code,
                    count(*)
             FROM actions WHERE plan_id = ?1 AND status = 'failed' GROUP BY code ORDER BY 2 DESC",
        )?;
        let rows = stmt.query_map([plan_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn read_user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    // The query's own columns may hold any type: shown as text.
    let text = |name: &str| -> rusqlite::Result<Option<String>> {
        Ok(match r.get::<_, Value>(name)? {
            Value::Null => None,
            Value::Text(t) => Some(t),
            other => Some(user_sql::display(other)),
        })
    };
    Ok(UserRow {
        action: text("action")?,
        key: text("key")?,
        key_id: r.get("key_id")?,
        version_id: text("version_id")?,
        seq: r.get("seq")?,
        is_marker: r.get("is_marker")?,
        size: r.get("size")?,
        storage_class: r.get("storage_class")?,
        why: text("why")?.unwrap_or_default(),
        expected_latest: r.get("expected_latest")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{catalog_with, entry};

    fn plan<'a>(name: &'a str) -> NewPlan<'a> {
        NewPlan {
            name,
            rule: "sql",
            parameters: "{}",
            scan_id: 1,
        }
    }

    fn copy(key: &str, key_id: i64, version: &'static str) -> NewAction<'static> {
        NewAction {
            kind: ActionKind::CopyVersion,
            key: Box::leak(key.to_owned().into_boxed_str()),
            key_id,
            version_id: Some(version),
            seq: Some(1),
            size: Some(10),
            storage_class: Some("STANDARD"),
            why: "test".into(),
            expected_latest: None,
        }
    }

    #[test]
    fn a_plan_is_made_whole_or_not_at_all_and_dropped_with_its_actions() {
        let (_dir, mut catalog) = catalog_with(vec![
            entry("a", "a2", false, 20),
            entry("a", "a1", false, 10),
        ]);
        let n = catalog
            .insert_plan::<CatalogError>(&plan("p"), |w| {
                w.push(&copy("a", 1, "a1"))?;
                assert_eq!(w.count(), 1);
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 1);
        let failed = catalog.insert_plan(&plan("q"), |w| {
            w.push(&copy("a", 1, "a1"))?;
            Err(CatalogError::WriterGone("stop".into()))
        });
        assert!(failed.is_err());
        let plans = catalog.plans().unwrap();
        assert_eq!(plans.len(), 1);
        assert_eq!((plans[0].actions, plans[0].status.pending), (1, 1));
        let figures = catalog.plan_figures(plans[0].id, 5).unwrap();
        assert_eq!(figures.keys, 1);
        assert_eq!(
            figures.sample[0][1],
            ("action".into(), "copy_version".into())
        );
        catalog.drop_plan(plans[0].id).unwrap();
        assert!(catalog.plans().unwrap().is_empty());
        let left: i64 = catalog
            .conn()
            .query_row("SELECT count(*) FROM actions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn duplicates_are_found_while_the_plan_is_written() {
        let (_dir, catalog) = catalog_with(vec![
            entry("a", "a2", false, 20),
            entry("a", "a1", false, 10),
        ]);
        catalog
            .insert_plan::<CatalogError>(&plan("p"), |w| {
                w.push(&copy("a", 1, "a1"))?;
                assert_eq!(catalog.first_duplicate(w)?, None);
                w.push(&copy("a", 1, "a2"))?;
                assert_eq!(
                    catalog.first_duplicate(w)?,
                    Some(Duplicate::NewVersions {
                        action_id: 2,
                        key: "a".into()
                    })
                );
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn user_rows_are_resolved_against_the_catalog() {
        let (_dir, catalog) = catalog_with(vec![
            entry("a", "a2", true, 20),
            entry("a", "a1", false, 10),
        ]);
        catalog.index_keys().unwrap();
        let mut rows = Vec::new();
        catalog
            .for_each_user_row::<CatalogError>(
                "SELECT 'delete_version', key, version_id FROM objects UNION ALL SELECT 'x', 'nope', 'v'",
                |r| {
                    rows.push(r);
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].key_id,
                rows[0].seq,
                rows[0].is_marker,
                rows[0].expected_latest.as_deref()
            ),
            (Some(1), Some(1), Some(false), Some("a2"))
        );
        assert_eq!((rows[1].key_id, rows[1].seq), (None, None));
        let err = catalog
            .for_each_user_row::<CatalogError>("DELETE FROM keys", |_| Ok(()))
            .unwrap_err();
        assert!(matches!(err, CatalogError::Denied { .. }), "{err}");
    }
}
