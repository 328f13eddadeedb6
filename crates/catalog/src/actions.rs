//! Plans' actions as apply sees them: claimed a block at a time, completed
//! with an outcome, through one writer thread that groups the commits of
//! concurrent workers.

use std::path::Path;
use std::thread::JoinHandle;

use rusqlite::params;
use tokio::sync::{mpsc, oneshot};

use crate::{CatalogError, Result};

/// The four things a plan can ask of S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Permanently delete an object version.
    DeleteVersion,
    /// Remove a delete marker (undeletes when it is the newest).
    DeleteMarker,
    /// Copy an old version over the key (it becomes the newest).
    CopyVersion,
    /// Plain DeleteObject: hides the key behind a new delete marker.
    AddDeleteMarker,
}

impl ActionKind {
    pub const ALL: [ActionKind; 4] = [
        ActionKind::DeleteVersion,
        ActionKind::DeleteMarker,
        ActionKind::CopyVersion,
        ActionKind::AddDeleteMarker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::DeleteVersion => "delete_version",
            ActionKind::DeleteMarker => "delete_marker",
            ActionKind::CopyVersion => "copy_version",
            ActionKind::AddDeleteMarker => "add_delete_marker",
        }
    }

    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the action names an existing version or marker.
    pub fn needs_version(self) -> bool {
        self != ActionKind::AddDeleteMarker
    }
}

/// One action, claimed for execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRow {
    pub id: i64,
    pub kind: ActionKind,
    pub key: String,
    pub key_id: i64,
    pub version_id: Option<String>,
    pub size: Option<i64>,
    pub storage_class: Option<String>,
    /// The key's newest version id at scan time.
    pub expected_latest: Option<String>,
    /// The acted-on version's ETag (copies: to recognise our own copy on resume).
    pub source_etag: Option<String>,
    /// It was claimed by an earlier run that did not record an outcome: the
    /// call may or may not have reached S3.
    pub was_in_flight: bool,
}

/// What became of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done {
        result_version_id: Option<String>,
    },
    /// S3's error code and message.
    Failed {
        error: String,
    },
    /// Not attempted, and why.
    Skipped {
        reason: String,
    },
}

enum Request {
    Claim {
        plan_id: i64,
        first: i64,
        last: i64,
        retry_failed: bool,
        reply: oneshot::Sender<Result<Vec<ActionRow>>>,
    },
    Complete {
        plan_id: i64,
        outcomes: Vec<(i64, Outcome)>,
        reply: oneshot::Sender<Result<()>>,
    },
    Known {
        plan_id: i64,
        key_id: i64,
        reply: oneshot::Sender<Result<Vec<String>>>,
    },
}

/// Handle to the actions thread; cheap to clone.
#[derive(Clone)]
pub struct ActionStore {
    tx: mpsc::Sender<Request>,
}

/// Owns the thread; [`ActionStoreThread::finish`] waits for it.
pub struct ActionStoreThread {
    handle: JoinHandle<Result<()>>,
}

impl ActionStoreThread {
    pub fn finish(self) -> Result<()> {
        self.handle
            .join()
            .map_err(|_| CatalogError::WriterGone("the actions thread panicked".into()))?
    }
}

fn gone<T>(_: T) -> CatalogError {
    CatalogError::WriterGone("the actions thread stopped".into())
}

impl ActionStore {
    /// Starts the thread on its own connection to the catalog at `path`. It
    /// stops when every clone of the returned store is dropped.
    pub fn spawn(path: &Path) -> Result<(ActionStore, ActionStoreThread)> {
        // Claims and completions revisit the same pages: keep them cached.
        let mut conn = crate::connect_bulk(path, 65_536)?;
        let (tx, rx) = mpsc::channel(256);
        let handle = std::thread::Builder::new()
            .name("catalog-actions".into())
            .spawn(move || run(&mut conn, rx))
            .map_err(|e| CatalogError::WriterGone(e.to_string()))?;
        Ok((ActionStore { tx }, ActionStoreThread { handle }))
    }

    /// Sends a request and waits for its answer (after its commit).
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T>>) -> Request,
    ) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(request(reply)).await.map_err(gone)?;
        rx.await.map_err(gone)?
    }

    /// Marks the unfinished actions with ids in `first..=last` in flight (one
    /// more attempt each) and returns them. `retry_failed` includes failed ones.
    pub async fn claim(
        &self,
        plan_id: i64,
        first: i64,
        last: i64,
        retry_failed: bool,
    ) -> Result<Vec<ActionRow>> {
        self.ask(|reply| Request::Claim {
            plan_id,
            first,
            last,
            retry_failed,
            reply,
        })
        .await
    }

    /// Records outcomes; returns once they are committed.
    pub async fn complete(&self, plan_id: i64, outcomes: Vec<(i64, Outcome)>) -> Result<()> {
        self.ask(|reply| Request::Complete {
            plan_id,
            outcomes,
            reply,
        })
        .await
    }

    /// Every version id this plan names or produced on a key: a key whose
    /// newest entry is one of these was changed by nobody but this plan.
    pub async fn known_versions(&self, plan_id: i64, key_id: i64) -> Result<Vec<String>> {
        self.ask(|reply| Request::Known {
            plan_id,
            key_id,
            reply,
        })
        .await
    }
}

fn run(conn: &mut rusqlite::Connection, mut rx: mpsc::Receiver<Request>) -> Result<()> {
    while let Some(first) = rx.blocking_recv() {
        // Group whatever else is queued into the same transaction.
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let tx = conn.transaction()?;
        let mut replies = Vec::with_capacity(batch.len());
        let mut failure = None;
        for request in batch {
            let reply = match failure {
                Some(_) => Reply::empty(request),
                None => serve(&tx, request).unwrap_or_else(|(e, reply)| {
                    failure = Some(e);
                    reply
                }),
            };
            replies.push(reply);
        }
        let outcome = match failure {
            Some(e) => Err(e),
            None => tx.commit().map_err(CatalogError::from),
        };
        // Replies go out after the commit: a claim must be durable before
        // its calls are made.
        for reply in replies {
            reply.send(outcome.as_ref().err());
        }
        outcome?;
    }
    Ok(())
}

/// A request's answer, held until its transaction commits.
enum Reply {
    Rows(oneshot::Sender<Result<Vec<ActionRow>>>, Vec<ActionRow>),
    Done(oneshot::Sender<Result<()>>),
    Versions(oneshot::Sender<Result<Vec<String>>>, Vec<String>),
}

impl Reply {
    /// The reply of a request that was not served (its batch failed).
    fn empty(request: Request) -> Reply {
        match request {
            Request::Claim { reply, .. } => Reply::Rows(reply, Vec::new()),
            Request::Complete { reply, .. } => Reply::Done(reply),
            Request::Known { reply, .. } => Reply::Versions(reply, Vec::new()),
        }
    }

    fn send(self, error: Option<&CatalogError>) {
        let err = |e: &CatalogError| CatalogError::WriterGone(e.to_string());
        // A receiver that gave up (its worker stopped) needs no answer.
        let _ = match self {
            Reply::Rows(tx, rows) => tx.send(error.map_or(Ok(rows), |e| Err(err(e)))).is_ok(),
            Reply::Done(tx) => tx.send(error.map_or(Ok(()), |e| Err(err(e)))).is_ok(),
            Reply::Versions(tx, v) => tx.send(error.map_or(Ok(v), |e| Err(err(e)))).is_ok(),
        };
    }
}

/// Runs one request inside the open transaction.
fn serve(
    conn: &rusqlite::Connection,
    request: Request,
) -> std::result::Result<Reply, (CatalogError, Reply)> {
    match request {
        Request::Claim {
            plan_id,
            first,
            last,
            retry_failed,
            reply,
        } => match claim(conn, plan_id, first, last, retry_failed) {
            Ok(rows) => Ok(Reply::Rows(reply, rows)),
            Err(e) => Err((e, Reply::Rows(reply, Vec::new()))),
        },
        Request::Complete {
            plan_id,
            outcomes,
            reply,
        } => match complete(conn, plan_id, &outcomes) {
            Ok(()) => Ok(Reply::Done(reply)),
            Err(e) => Err((e, Reply::Done(reply))),
        },
        Request::Known {
            plan_id,
            key_id,
            reply,
        } => match known(conn, plan_id, key_id) {
            Ok(v) => Ok(Reply::Versions(reply, v)),
            Err(e) => Err((e, Reply::Versions(reply, Vec::new()))),
        },
    }
}

fn claim(
    conn: &rusqlite::Connection,
    plan_id: i64,
    first: i64,
    last: i64,
    retry_failed: bool,
) -> Result<Vec<ActionRow>> {
    let mut select = conn.prepare_cached(
        "SELECT a.id, a.kind, a.key, a.key_id, a.version_id, a.size, a.storage_class, a.expected_latest,
                -- only copies need it; a scalar subquery, as a LEFT JOIN on
                -- the view would materialise the whole view
                CASE WHEN a.kind = 'copy_version' THEN
                    (SELECT h.etag FROM key_history h WHERE h.key_id = a.key_id AND h.seq = a.seq)
                END,
                a.status = 'in_flight'
         FROM actions a
         WHERE a.plan_id = ?1 AND a.id BETWEEN ?2 AND ?3
           AND (a.status IN ('pending', 'in_flight') OR (?4 AND a.status = 'failed'))
         ORDER BY a.id",
    )?;
    let rows: Vec<ActionRow> = select
        .query_map(params![plan_id, first, last, retry_failed], |r| {
            let kind: String = r.get(1)?;
            Ok(ActionRow {
                id: r.get(0)?,
                kind: ActionKind::parse(&kind).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        1,
                        rusqlite::types::Type::Text,
                        kind.into(),
                    )
                })?,
                key: r.get(2)?,
                key_id: r.get(3)?,
                version_id: r.get(4)?,
                size: r.get(5)?,
                storage_class: r.get(6)?,
                expected_latest: r.get(7)?,
                source_etag: r.get(8)?,
                was_in_flight: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    if !rows.is_empty() {
        conn.prepare_cached(
            "UPDATE actions SET status = 'in_flight', attempts = attempts + 1
             WHERE plan_id = ?1 AND id BETWEEN ?2 AND ?3
               AND (status IN ('pending', 'in_flight') OR (?4 AND status = 'failed'))",
        )?
        .execute(params![plan_id, first, last, retry_failed])?;
    }
    Ok(rows)
}

fn complete(conn: &rusqlite::Connection, plan_id: i64, outcomes: &[(i64, Outcome)]) -> Result<()> {
    let mut update = conn.prepare_cached(
        "UPDATE actions SET status = ?3, error = ?4, result_version_id = coalesce(?5, result_version_id),
                applied_at = ?6
         WHERE plan_id = ?1 AND id = ?2",
    )?;
    // Most outcomes are a plain "done" (every delete): one statement per run
    // of consecutive ids instead of one per action.
    let mut done_run = conn.prepare_cached(
        "UPDATE actions SET status = 'done', error = NULL, applied_at = ?4
         WHERE plan_id = ?1 AND id BETWEEN ?2 AND ?3",
    )?;
    let now = crate::now_rfc3339();
    let mut plain: Vec<i64> = Vec::new();
    for (id, outcome) in outcomes {
        let (status, error, result) = match outcome {
            Outcome::Done {
                result_version_id: None,
            } => {
                plain.push(*id);
                continue;
            }
            Outcome::Done { result_version_id } => ("done", None, result_version_id.as_deref()),
            Outcome::Failed { error } => ("failed", Some(error.as_str()), None),
            Outcome::Skipped { reason } => ("skipped", Some(reason.as_str()), None),
        };
        update.execute(params![plan_id, id, status, error, result, now])?;
    }
    plain.sort_unstable();
    for run in plain.chunk_by(|a, b| b - a == 1) {
        done_run.execute(params![plan_id, run[0], run[run.len() - 1], now])?;
    }
    Ok(())
}

fn known(conn: &rusqlite::Connection, plan_id: i64, key_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT version_id FROM actions WHERE plan_id = ?1 AND key_id = ?2 AND version_id IS NOT NULL
         UNION SELECT result_version_id FROM actions WHERE plan_id = ?1 AND key_id = ?2 AND result_version_id IS NOT NULL
         UNION SELECT expected_latest FROM actions WHERE plan_id = ?1 AND key_id = ?2 AND expected_latest IS NOT NULL",
    )?;
    let rows = stmt.query_map(params![plan_id, key_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Failed actions of a plan counted by S3 error code (the text before the
/// first ':' of `error`).
pub fn failures_by_code(conn: &rusqlite::Connection, plan_id: i64) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT CASE WHEN instr(error, ':') > 0 THEN substr(error, 1, instr(error, ':') - 1) ELSE coalesce(error, '?') END AS code,
                count(*)
         FROM actions WHERE plan_id = ?1 AND status = 'failed' GROUP BY code ORDER BY 2 DESC",
    )?;
    let rows = stmt.query_map([plan_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Calls `f` with each action apply would still execute, in id order:
/// (id, kind, key, version id, size).
pub fn for_each_remaining(
    conn: &rusqlite::Connection,
    plan_id: i64,
    retry_failed: bool,
    mut f: impl FnMut(i64, &str, &str, Option<&str>, Option<i64>),
) -> Result<u64> {
    let mut stmt = conn.prepare(
        "SELECT id, kind, key, version_id, size FROM actions
         WHERE plan_id = ?1 AND (status IN ('pending', 'in_flight') OR (?2 AND status = 'failed'))
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
