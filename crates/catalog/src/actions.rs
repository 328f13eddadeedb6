//! Plans' actions as apply sees them: claimed a block at a time, finished
//! with an outcome, through one thread that groups the commits of
//! concurrent workers.
//!
//! A claim is committed before its reply goes out, so an action is marked
//! in flight before any call for it is made; outcomes are recorded as they
//! come (a worker does not wait for their commit), so progress in the
//! catalog moves with the work.

use std::collections::HashMap;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use model::ActionKind;
use rusqlite::params;
use tokio::sync::{mpsc, oneshot};

use crate::{CatalogError, Result};

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
    /// Copies: what the key must hold for the copy to land, as the scan
    /// saw it — the newest version's ETag, or `*` where the newest entry
    /// was a delete marker (no current object). `None`: send it
    /// unconditionally, as the plan also removes entries of the key (they
    /// may go first and change what is current).
    pub copy_condition: Option<String>,
    /// How many entries the key had when scanned (copies and new markers:
    /// to size the listing that checks them).
    pub key_entries: Option<i64>,
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
    /// Refused by S3 because the key is not as the scan saw it (a
    /// conditional copy's 412); what the key holds now.
    Drifted {
        found: String,
    },
    /// A copy whose source is being restored from an archive: a later
    /// apply makes it. Where the restore stands.
    Restoring {
        note: String,
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
    Record {
        plan_id: i64,
        outcomes: Vec<(i64, Outcome)>,
    },
    Known {
        plan_id: i64,
        key_ids: Vec<i64>,
        reply: oneshot::Sender<Result<KnownVersions>>,
    },
}

impl Request {
    fn is_record(&self) -> bool {
        matches!(self, Request::Record { .. })
    }
}

/// Per key id, every version id a plan names or produced on the key: a key
/// whose newest entry is one of these was changed by nobody but the plan.
pub type KnownVersions = HashMap<i64, Vec<String>>;

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

    /// Records outcomes. Returns at once: they are committed with whatever
    /// else is queued, and all of them before [`ActionStoreThread::finish`]
    /// returns.
    pub async fn record(&self, plan_id: i64, outcomes: Vec<(i64, Outcome)>) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Request::Record { plan_id, outcomes })
            .await
            .map_err(gone)
    }

    /// The versions the plan knows on each of `key_ids` (see
    /// [`KnownVersions`]), in one pass over the plan's key index.
    pub async fn known_versions(&self, plan_id: i64, key_ids: Vec<i64>) -> Result<KnownVersions> {
        self.ask(|reply| Request::Known {
            plan_id,
            key_ids,
            reply,
        })
        .await
    }
}

/// Outcomes alone are committed at most this often: a commit writes the
/// changed pages to the WAL, and thousands of copies a second each in a
/// commit of its own would cost more than the copies. Progress still moves
/// ten times a second; a claim or a question is answered at once.
const RECORD_EVERY: Duration = Duration::from_millis(100);

fn run(conn: &mut rusqlite::Connection, mut rx: mpsc::Receiver<Request>) -> Result<()> {
    // Only to wait for a request with a deadline on this plain thread.
    let clock = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| CatalogError::WriterGone(e.to_string()))?;
    let mut last_commit = Instant::now();
    while let Some(first) = rx.blocking_recv() {
        // Group whatever else is queued into the same transaction.
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        while batch.iter().all(Request::is_record) {
            let left = RECORD_EVERY.saturating_sub(last_commit.elapsed());
            if left.is_zero() {
                break;
            }
            match clock.block_on(async { tokio::time::timeout(left, rx.recv()).await }) {
                Ok(Some(r)) => batch.push(r),
                _ => break,
            }
        }
        let tx = conn.transaction()?;
        let mut replies = Vec::with_capacity(batch.len());
        let mut failure = None;
        for request in batch {
            let reply = match failure {
                Some(_) => Reply::empty(request),
                None => {
                    let (reply, served) = serve(&tx, request);
                    failure = served.err();
                    reply
                }
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
        last_commit = Instant::now();
    }
    Ok(())
}

/// A request's answer, held until its transaction commits.
enum Reply {
    Rows(oneshot::Sender<Result<Vec<ActionRow>>>, Vec<ActionRow>),
    Recorded,
    Versions(oneshot::Sender<Result<KnownVersions>>, KnownVersions),
}

impl Reply {
    /// The reply of a request that was not served (its batch failed).
    fn empty(request: Request) -> Reply {
        match request {
            Request::Claim { reply, .. } => Reply::Rows(reply, Vec::new()),
            Request::Record { .. } => Reply::Recorded,
            Request::Known { reply, .. } => Reply::Versions(reply, KnownVersions::new()),
        }
    }

    fn send(self, error: Option<&CatalogError>) {
        let err = |e: &CatalogError| CatalogError::WriterGone(e.to_string());
        // A receiver that gave up (its worker stopped) needs no answer.
        let _ = match self {
            Reply::Rows(tx, rows) => tx.send(error.map_or(Ok(rows), |e| Err(err(e)))).is_ok(),
            Reply::Recorded => true,
            Reply::Versions(tx, v) => tx.send(error.map_or(Ok(v), |e| Err(err(e)))).is_ok(),
        };
    }
}

/// Runs one request inside the open transaction: its reply (empty if it
/// failed), and whether it failed.
fn serve(conn: &rusqlite::Connection, request: Request) -> (Reply, Result<()>) {
    match request {
        Request::Claim {
            plan_id,
            first,
            last,
            retry_failed,
            reply,
        } => match claim(conn, plan_id, first, last, retry_failed) {
            Ok(rows) => (Reply::Rows(reply, rows), Ok(())),
            Err(e) => (Reply::Rows(reply, Vec::new()), Err(e)),
        },
        Request::Record { plan_id, outcomes } => {
            (Reply::Recorded, complete(conn, plan_id, &outcomes))
        }
        Request::Known {
            plan_id,
            key_ids,
            reply,
        } => match known(conn, plan_id, &key_ids) {
            Ok(v) => (Reply::Versions(reply, v), Ok(())),
            Err(e) => (Reply::Versions(reply, KnownVersions::new()), Err(e)),
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
                a.status = 'in_flight',
                CASE WHEN a.kind IN ('copy_version', 'add_delete_marker') THEN
                    (SELECT max(e.seq) + 1 FROM entries e WHERE e.key_id = a.key_id)
                END,
                CASE WHEN a.kind = 'copy_version' AND NOT EXISTS (
                        SELECT 1 FROM actions b INDEXED BY actions_by_key
                        WHERE b.plan_id = a.plan_id AND b.key_id = a.key_id
                          AND b.kind IN ('delete_version', 'delete_marker')) THEN
                    (SELECT CASE WHEN h.is_marker THEN '*' ELSE h.etag END
                     FROM key_history h WHERE h.key_id = a.key_id AND h.seq = 0)
                END
         FROM actions a
         WHERE a.plan_id = ?1 AND a.id BETWEEN ?2 AND ?3
           AND (a.status IN ('pending', 'in_flight', 'restoring') OR (?4 AND a.status = 'failed'))
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
                key_entries: r.get(10)?,
                copy_condition: r.get(11)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    if !rows.is_empty() {
        conn.prepare_cached(
            "UPDATE actions SET status = 'in_flight', attempts = attempts + 1
             WHERE plan_id = ?1 AND id BETWEEN ?2 AND ?3
               AND (status IN ('pending', 'in_flight', 'restoring') OR (?4 AND status = 'failed'))",
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
    let now = model::time::now_text();
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
            Outcome::Drifted { found } => ("drifted", Some(found.as_str()), None),
            Outcome::Restoring { note } => ("restoring", Some(note.as_str()), None),
        };
        update.execute(params![plan_id, id, status, error, result, now])?;
    }
    plain.sort_unstable();
    for run in plain.chunk_by(|a, b| b - a == 1) {
        done_run.execute(params![plan_id, run[0], run[run.len() - 1], now])?;
    }
    Ok(())
}

fn known(conn: &rusqlite::Connection, plan_id: i64, key_ids: &[i64]) -> Result<KnownVersions> {
    // Named index: without statistics SQLite takes the primary key's
    // plan_id prefix for as selective, and reads the whole plan per key.
    let mut stmt = conn.prepare_cached(
        "SELECT key_id, version_id, result_version_id, expected_latest
         FROM actions INDEXED BY actions_by_key
         WHERE plan_id = ?1 AND key_id IN (SELECT value FROM json_each(?2))",
    )?;
    let ids = crate::json_ids(key_ids);
    let mut rows = stmt.query(params![plan_id, ids])?;
    let mut known = KnownVersions::new();
    while let Some(r) = rows.next()? {
        let versions = known.entry(r.get(0)?).or_default();
        for i in 1..=3 {
            if let Some(v) = r.get::<_, Option<String>>(i)? {
                if !versions.contains(&v) {
                    versions.push(v);
                }
            }
        }
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{catalog_with, entry, plan_with};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn every_action_is_claimed_until_it_has_an_outcome_and_then_never_again() {
        let (_dir, catalog) = catalog_with(vec![
            entry("a", "a3", false, 30),
            entry("a", "a2", true, 20),
            entry("a", "a1", false, 10),
            entry("b", "b1", false, 10),
        ]);
        plan_with(
            &catalog,
            &[
                (ActionKind::CopyVersion, "a", 1, Some("a1"), Some("a3")),
                (ActionKind::DeleteMarker, "a", 1, Some("a2"), Some("a3")),
                (ActionKind::AddDeleteMarker, "b", 2, None, Some("b1")),
            ],
        );
        let path = catalog.path().to_owned();
        runtime().block_on(async {
            let (store, thread) = ActionStore::spawn(&path).unwrap();
            let first = store.claim(1, 1, 3, false).await.unwrap();
            assert_eq!(first.len(), 3);
            assert!(first.iter().all(|r| !r.was_in_flight));
            assert_eq!(first[0].key_entries, Some(3));
            assert_eq!(first[1].key_entries, None);
            // Claimed again (a run killed before any outcome): in flight.
            let again = store.claim(1, 1, 3, false).await.unwrap();
            assert!(again.iter().all(|r| r.was_in_flight));
            store
                .record(
                    1,
                    vec![
                        (
                            1,
                            Outcome::Done {
                                result_version_id: Some("a4".into()),
                            },
                        ),
                        (
                            2,
                            Outcome::Done {
                                result_version_id: None,
                            },
                        ),
                        (
                            3,
                            Outcome::Failed {
                                error: "AccessDenied: no".into(),
                            },
                        ),
                    ],
                )
                .await
                .unwrap();
            let known = store.known_versions(1, vec![1, 2]).await.unwrap();
            let mut a = known[&1].clone();
            a.sort();
            assert_eq!(a, ["a1", "a2", "a3", "a4"]);
            assert_eq!(known[&2], ["b1"]);
            assert!(store.claim(1, 1, 3, false).await.unwrap().is_empty());
            // Failed ones come back only when asked for.
            assert_eq!(store.claim(1, 1, 3, true).await.unwrap().len(), 1);
            drop(store);
            tokio::task::spawn_blocking(move || thread.finish())
                .await
                .unwrap()
                .unwrap();
        });
        let attempts: Vec<(String, i64)> = catalog
            .conn()
            .prepare("SELECT status, attempts FROM actions ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(
            attempts,
            [
                ("done".into(), 2),
                ("done".into(), 2),
                ("in_flight".into(), 3)
            ]
        );
    }
}
