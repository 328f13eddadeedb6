//! Plans in the catalog: creating, listing, showing, dropping.

use std::time::{Duration, Instant};

use catalog::Catalog;
use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};

use crate::rules::{rule_sql, Rule, RuleQuery, UNRECOVERABLE};
use crate::{readonly, sqlrule, PlanError};
pub use catalog::ActionKind;

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    /// `None`: `<rule>-<n>`, the first free n.
    pub name: Option<&'a str>,
    pub rule: Rule,
    /// A SQL expression over `key_history`'s columns (restore, undelete:
    /// evaluated on each key's newest entry; expire: on each candidate).
    pub where_expr: Option<&'a str>,
}

/// A plan just made.
#[derive(Debug, Clone)]
pub struct Created {
    pub name: String,
    pub actions: u64,
    /// Undelete: keys deleted in the window with no version to bring back.
    pub unrecoverable: u64,
    pub unrecoverable_sample: Vec<String>,
    pub elapsed: Duration,
}

/// Keys listed by name in the unrecoverable report.
const SAMPLE: usize = 10;

/// Computes a plan and stores it with its actions, in one transaction: on
/// any error the catalog is left as it was.
pub fn create_plan(catalog: &mut Catalog, request: &PlanRequest<'_>) -> Result<Created, PlanError> {
    let started = Instant::now();
    let conn = catalog.conn_mut();
    let scan_id = finished_scan(conn)?;
    let name = match request.name {
        Some(n) => {
            check_name(n)?;
            if plan_id(conn, n)?.is_some() {
                return Err(PlanError::NameTaken(n.to_owned()));
            }
            n.to_owned()
        }
        None => free_name(conn, request.rule.name())?,
    };
    if let Some(expr) = request.where_expr {
        readonly::check_where(conn, expr)?;
    }

    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO plans (name, rule, parameters, created_at, scan_id, actions) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
        params![
            name,
            request.rule.name(),
            request.rule.parameters(request.where_expr).to_string(),
            catalog::now_rfc3339(),
            scan_id
        ],
    )?;
    let plan_id = tx.last_insert_rowid();
    let mut created = Created {
        name,
        actions: 0,
        unrecoverable: 0,
        unrecoverable_sample: Vec::new(),
        elapsed: Duration::ZERO,
    };
    {
        let RuleQuery { sql, bindings } = match &request.rule {
            Rule::Sql { query } => sqlrule::wrapped_query(&tx, query)?,
            rule => rule_sql(rule, request.where_expr),
        };
        let what = if matches!(request.rule, Rule::Sql { .. }) {
            "the query"
        } else {
            "--where"
        };
        let mut select = readonly::prepare(&tx, &sql, what)?;
        for (name, value) in &bindings {
            if let Some(i) = select.parameter_index(name)? {
                select.raw_bind_parameter(i, value)?;
            }
        }
        let mut insert = tx.prepare(
            "INSERT INTO actions (plan_id, id, kind, key, key_id, version_id, seq, size, storage_class, why, expected_latest) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let checked = matches!(request.rule, Rule::Sql { .. });
        let mut rows = select.raw_query();
        let mut row_number = 0u64;
        while let Some(row) = rows.next().map_err(|e| PlanError::BadSql {
            what: what.to_owned(),
            reason: readonly::sqlite_message(&e),
        })? {
            row_number += 1;
            let kind: Option<String> = row.get(0)?;
            let key: Option<String> = row.get(1)?;
            if kind.as_deref() == Some(UNRECOVERABLE) {
                created.unrecoverable += 1;
                if created.unrecoverable_sample.len() < SAMPLE {
                    created.unrecoverable_sample.extend(key);
                }
                continue;
            }
            if checked {
                sqlrule::check_row(row, row_number)?;
            }
            created.actions += 1;
            insert.execute(params![
                plan_id,
                created.actions as i64,
                kind,
                key,
                row.get::<_, Value>(2)?,
                row.get::<_, Value>(3)?,
                row.get::<_, Value>(4)?,
                row.get::<_, Value>(5)?,
                row.get::<_, Value>(6)?,
                row.get::<_, Value>(7)?,
                row.get::<_, Value>(8)?,
            ])?;
        }
    }
    if matches!(request.rule, Rule::Sql { .. }) {
        sqlrule::check_duplicates(&tx, plan_id)?;
    }
    tx.execute(
        "UPDATE plans SET actions = ?2 WHERE id = ?1",
        params![plan_id, created.actions as i64],
    )?;
    tx.commit()?;
    created.elapsed = started.elapsed();
    Ok(created)
}

fn finished_scan(conn: &rusqlite::Connection) -> Result<i64, PlanError> {
    let scan: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT id, finished_at FROM scans ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match scan {
        None => Err(PlanError::NoScan),
        Some((id, Some(_))) => Ok(id),
        Some((_, None)) => {
            let (done, total) = conn.query_row(
                "SELECT coalesce(sum(done), 0), count(*) FROM cursors",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Err(PlanError::ScanUnfinished { done, total })
        }
    }
}

fn check_name(name: &str) -> Result<(), PlanError> {
    if name.trim().is_empty() {
        return Err(PlanError::BadName(name.to_owned(), "it is empty"));
    }
    if name.len() > 200 {
        return Err(PlanError::BadName(
            name.to_owned(),
            "it is longer than 200 bytes",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(PlanError::BadName(
            name.to_owned(),
            "it holds control characters",
        ));
    }
    Ok(())
}

fn plan_id(conn: &rusqlite::Connection, name: &str) -> Result<Option<i64>, PlanError> {
    Ok(conn
        .query_row("SELECT id FROM plans WHERE name = ?1", [name], |r| r.get(0))
        .optional()?)
}

fn free_name(conn: &rusqlite::Connection, rule: &str) -> Result<String, PlanError> {
    for n in 1.. {
        let name = format!("{rule}-{n}");
        if plan_id(conn, &name)?.is_none() {
            return Ok(name);
        }
    }
    unreachable!("some name is free")
}

/// Action counts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub pending: u64,
    pub in_flight: u64,
    pub done: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl StatusCounts {
    pub fn total(&self) -> u64 {
        self.pending + self.in_flight + self.done + self.failed + self.skipped
    }
}

/// One `plans` row with its progress.
#[derive(Debug, Clone)]
pub struct PlanInfo {
    pub id: i64,
    pub name: String,
    pub rule: String,
    pub parameters: String,
    pub created_at: String,
    pub scan_id: i64,
    pub actions: u64,
    pub status: StatusCounts,
}

pub fn find_plan(catalog: &Catalog, name: &str) -> Result<PlanInfo, PlanError> {
    list_plans(catalog)?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| PlanError::NoSuchPlan(name.to_owned()))
}

pub fn list_plans(catalog: &Catalog) -> Result<Vec<PlanInfo>, PlanError> {
    let conn = catalog.conn();
    let mut stmt = conn.prepare(
        "SELECT p.id, p.name, p.rule, p.parameters, p.created_at, p.scan_id, p.actions,
                coalesce(sum(a.status = 'pending'), 0), coalesce(sum(a.status = 'in_flight'), 0),
                coalesce(sum(a.status = 'done'), 0), coalesce(sum(a.status = 'failed'), 0),
                coalesce(sum(a.status = 'skipped'), 0)
         FROM plans p LEFT JOIN actions a ON a.plan_id = p.id
         GROUP BY p.id ORDER BY p.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(PlanInfo {
            id: r.get(0)?,
            name: r.get(1)?,
            rule: r.get(2)?,
            parameters: r.get(3)?,
            created_at: r.get(4)?,
            scan_id: r.get(5)?,
            actions: r.get::<_, i64>(6)? as u64,
            status: StatusCounts {
                pending: r.get::<_, i64>(7)? as u64,
                in_flight: r.get::<_, i64>(8)? as u64,
                done: r.get::<_, i64>(9)? as u64,
                failed: r.get::<_, i64>(10)? as u64,
                skipped: r.get::<_, i64>(11)? as u64,
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Actions of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCount {
    pub kind: ActionKind,
    pub actions: u64,
    pub bytes: u64,
    /// Sizes of the copies (multipart copies cost more requests).
    pub sizes: Vec<u64>,
}

/// What `plan show` prints.
#[derive(Debug, Clone)]
pub struct PlanReport {
    pub info: PlanInfo,
    pub kinds: Vec<KindCount>,
    pub keys: u64,
    /// Requests and dollars at S3 list prices.
    pub estimate: s3io::pricing::Estimate,
    pub sample: Vec<Vec<(String, String)>>,
}

/// Sample rows shown by `plan show`.
const SHOWN: usize = 10;

pub fn show_plan(catalog: &Catalog, name: &str) -> Result<PlanReport, PlanError> {
    let info = find_plan(catalog, name)?;
    let conn = catalog.conn();
    let mut kinds = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT kind, count(*), coalesce(sum(size), 0) FROM actions WHERE plan_id = ?1 GROUP BY kind",
        )?;
        let mut rows = stmt.query([info.id])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(0)?;
            if let Some(kind) = ActionKind::parse(&kind) {
                kinds.push(KindCount {
                    kind,
                    actions: r.get::<_, i64>(1)? as u64,
                    bytes: r.get::<_, i64>(2)? as u64,
                    sizes: Vec::new(),
                });
            }
        }
    }
    kinds.sort_by_key(|k| ActionKind::ALL.iter().position(|a| *a == k.kind));
    if let Some(copies) = kinds.iter_mut().find(|k| k.kind == ActionKind::CopyVersion) {
        // Only the big ones matter for the request count; keep the list short.
        let mut stmt = conn.prepare(
            "SELECT size FROM actions WHERE plan_id = ?1 AND kind = 'copy_version' AND size > ?2",
        )?;
        copies.sizes = stmt
            .query_map(
                params![info.id, s3io::pricing::SINGLE_COPY_LIMIT as i64],
                |r| r.get::<_, i64>(0).map(|s| s as u64),
            )?
            .collect::<Result<_, _>>()?;
    }
    let keys: i64 = conn.query_row(
        "SELECT count(*) FROM (SELECT DISTINCT key_id FROM actions WHERE plan_id = ?1)",
        [info.id],
        |r| r.get(0),
    )?;
    let mut sample = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT id, action, key, version_id, version_last_modified, size, why, status
             FROM plan_review WHERE plan = ?1 ORDER BY id LIMIT ?2",
        )?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = stmt.query(params![name, SHOWN as i64])?;
        while let Some(r) = rows.next()? {
            let mut cells = Vec::new();
            for (i, n) in names.iter().enumerate() {
                cells.push((n.clone(), display(r.get::<_, Value>(i)?)));
            }
            sample.push(cells);
        }
    }
    let count = |k: ActionKind| kinds.iter().find(|c| c.kind == k).map_or(0, |c| c.actions);
    let large = kinds
        .iter()
        .find(|c| c.kind == ActionKind::CopyVersion)
        .map_or(&[][..], |c| &c.sizes[..]);
    let estimate = s3io::pricing::estimate(
        count(ActionKind::DeleteVersion) + count(ActionKind::DeleteMarker),
        count(ActionKind::AddDeleteMarker),
        count(ActionKind::CopyVersion),
        large,
    );
    Ok(PlanReport {
        info,
        kinds,
        keys: keys as u64,
        estimate,
        sample,
    })
}

/// A SQL value as text for people (blobs in hex).
pub fn display(v: Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => t,
        Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// Deletes a plan and its actions.
pub fn drop_plan(catalog: &mut Catalog, name: &str) -> Result<(), PlanError> {
    let info = find_plan(catalog, name)?;
    let tx = catalog.conn_mut().transaction()?;
    tx.execute("DELETE FROM actions WHERE plan_id = ?1", [info.id])?;
    tx.execute("DELETE FROM plans WHERE id = ?1", [info.id])?;
    tx.commit()?;
    Ok(())
}
