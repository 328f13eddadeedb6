//! Plans' actions as apply sees them: claimed a block at a time, finished
//! with an outcome, through one thread that groups the commits of
//! concurrent workers.
//!
//! A claim is committed before its reply goes out, so an action is marked
//! in flight before any call for it is made; outcomes are recorded as they
//! come (a worker does not wait for their commit), so progress in the
//! catalog moves with the work. What a done action changed in the bucket
//! goes into `entries` in the same transaction as its outcome, under the
//! apply run's revision (migration 0011): the catalog follows apply.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use model::{ActionKind, Attribution};
use rusqlite::{params, OptionalExtension};
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
    /// The key's newest version id when the plan was made.
    pub expected_latest: Option<String>,
    /// The acted-on version's ETag (copies: to recognise our own copy on resume).
    pub source_etag: Option<String>,
    /// Copies and new delete markers: what the key must hold for the write
    /// to land, as the catalog knows the key now — the ETag of its newest
    /// version (`If-Match`), or `*` where it has no current object (copies
    /// only: `If-None-Match: *`). `None`: no condition can say it (a delete
    /// marker on top of a key a marker is added to, a report without ETags):
    /// the key is looked at first instead.
    pub condition: Option<String>,
    /// How many entries the key has (copies and new markers: to size the
    /// listing that checks them).
    pub key_entries: Option<i64>,
    /// A removal on a key the plan also writes: it goes after the write
    /// (which is guarded by what the scan saw on top of the key).
    pub after_writes: bool,
    /// It was claimed by an earlier run that did not record an outcome: the
    /// call may or may not have reached S3.
    pub was_in_flight: bool,
    /// An earlier run could not decide its outcome: the version that may be
    /// its own (`None`: nothing was found, but a call may still land). It
    /// is examined again, never sent again.
    pub uncertain: Option<Option<String>>,
    /// A multipart copy's upload recorded before its completion was sent:
    /// (upload id, the ETag the completion gives).
    pub upload: Option<(String, String)>,
    /// The acted-on entry's place among its key's entries (lower: newer).
    pub seq: Option<i64>,
}

/// What became of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done {
        result_version_id: Option<String>,
        /// How the result is known to be the action's (`None`: removals,
        /// which have no result).
        matched_by: Option<Attribution>,
        /// The new version's ETag, when S3 gave it (what the catalog then
        /// records for it; else the copied version's).
        etag: Option<String>,
    },
    /// S3's error code and message.
    Failed { error: String },
    /// Not attempted, and why.
    Skipped { reason: String },
    /// The key is not as the plan expects it (S3 refused a conditional
    /// write, or a look found another entry on top): what it holds now.
    Drifted { found: String },
    /// A copy whose source is being restored from an archive: a later
    /// apply makes it. Where the restore stands.
    Restoring { note: String },
    /// The call's outcome cannot be decided from what S3 shows: the
    /// version that may be the action's, and why it is not known.
    Uncertain {
        candidate: Option<String>,
        why: String,
    },
    /// Claimed but never sent (the run was stopped first): pending again.
    Released,
}

impl Outcome {
    /// A removal's outcome, or a write S3 answered with its version.
    pub fn done(result_version_id: Option<String>, etag: Option<String>) -> Outcome {
        Outcome::Done {
            matched_by: result_version_id.as_ref().map(|_| Attribution::Response),
            result_version_id,
            etag,
        }
    }

    /// The `actions.status` it records.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Done { .. } => "done",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Drifted { .. } => "drifted",
            Outcome::Restoring { .. } => "restoring",
            Outcome::Uncertain { .. } => "uncertain",
            Outcome::Released => "pending",
        }
    }
}

/// Which actions a claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Everything unfinished (failed ones too with `retry_failed`); with
    /// `mixed` (a plan that may write a key and remove entries of it),
    /// `after_writes` is worked out per removal.
    Run { retry_failed: bool, mixed: bool },
    /// Only what an earlier run left in flight or uncertain: to settle it
    /// without starting anything new (`apply --settle`).
    Settle,
}

enum Request {
    Claim {
        plan_id: i64,
        first: i64,
        last: i64,
        claim: Claim,
        reply: oneshot::Sender<Result<Vec<ActionRow>>>,
    },
    Record {
        plan_id: i64,
        outcomes: Vec<(i64, Outcome)>,
    },
    Expect {
        plan_id: i64,
        key_ids: Vec<i64>,
        reply: oneshot::Sender<Result<Expectations>>,
    },
    Upload {
        plan_id: i64,
        id: i64,
        upload_id: String,
        etag: String,
        reply: oneshot::Sender<Result<()>>,
    },
}

impl Request {
    fn is_record(&self) -> bool {
        matches!(self, Request::Record { .. })
    }
}

/// What a key's newest entry may be without anyone but the plan having
/// changed it, as the catalog (which follows apply) knows the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// The newest entry the catalog knows; each entry under it that the
    /// plan removes, and the first it keeps (the plan's removals may have
    /// landed); and the versions the plan's writes made.
    pub ids: Vec<String>,
    /// The key may have no entry at all (every entry is one the plan removes).
    pub none_ok: bool,
}

impl Expected {
    pub fn allows(&self, newest: Option<&str>) -> bool {
        match newest {
            None => self.none_ok,
            Some(id) => self.ids.iter().any(|v| v == id),
        }
    }
}

/// Per key id, what its newest entry may be (see [`Expected`]).
pub type Expectations = HashMap<i64, Expected>;

/// Where apply records what its done actions changed: the revision of
/// this run, or `None` where the plan acts on keys the catalog does not
/// hold (`plan restore --into`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follow {
    pub revision: Option<i64>,
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
    pub fn spawn(path: &Path, follow: Follow) -> Result<(ActionStore, ActionStoreThread)> {
        // Claims and completions revisit the same pages: keep them cached.
        let mut conn = crate::connect_bulk(path, 65_536)?;
        let (tx, rx) = mpsc::channel(256);
        let handle = std::thread::Builder::new()
            .name("catalog-actions".into())
            .spawn(move || run(&mut conn, rx, follow))
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

    /// Marks the unfinished actions of the block `first..=last` in flight
    /// (one more attempt each) and returns them (see [`Claim`]). A key is
    /// never split between blocks: its actions belong to the block of its
    /// first action, however far they reach, so that one worker orders
    /// them (a key's removals go newest first and stop at a refusal).
    pub async fn claim(
        &self,
        plan_id: i64,
        first: i64,
        last: i64,
        claim: Claim,
    ) -> Result<Vec<ActionRow>> {
        self.ask(|reply| Request::Claim {
            plan_id,
            first,
            last,
            claim,
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

    /// What each of `key_ids`' newest entry may be (see [`Expected`]), as
    /// the catalog knows it once everything recorded so far is committed.
    pub async fn expectations(&self, plan_id: i64, key_ids: Vec<i64>) -> Result<Expectations> {
        self.ask(|reply| Request::Expect {
            plan_id,
            key_ids,
            reply,
        })
        .await
    }

    /// Records a multipart copy's upload, committed before this returns: the
    /// completion is sent only once the catalog can recognise it.
    pub async fn record_upload(
        &self,
        plan_id: i64,
        id: i64,
        upload_id: String,
        etag: String,
    ) -> Result<()> {
        self.ask(|reply| Request::Upload {
            plan_id,
            id,
            upload_id,
            etag,
            reply,
        })
        .await
    }
}

/// What a person said of an uncertain action (`plan resolve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The candidate version is the action's own: done.
    Ours,
    /// It is not: the key changed after the scan (drifted); without a
    /// candidate, the call did not land: pending, to be sent again.
    NotOurs,
}

impl crate::Catalog {
    /// Settles uncertain action `id` of plan `plan_id` as a person decided,
    /// recorded as theirs (`matched_by = 'person'`); what it made goes into
    /// the entries under a new revision, as apply's own results do. Returns
    /// the status it now has.
    pub fn resolve(
        &mut self,
        plan_id: i64,
        id: i64,
        resolution: Resolution,
    ) -> Result<&'static str> {
        let found: Option<(String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT status, candidate_version_id FROM actions WHERE plan_id = ?1 AND id = ?2",
                params![plan_id, id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((status, candidate)) = found else {
            return Err(CatalogError::Refused(format!(
                "the plan has no action {id}
  hint: s3rewind sql \"SELECT id, key, candidate_version_id FROM plan_review WHERE status = 'uncertain'\" lists the uncertain ones"
            )));
        };
        if status != "uncertain" {
            return Err(CatalogError::Refused(format!(
                "action {id} is {status}, not uncertain: only an uncertain action is settled by a person"
            )));
        }
        let outcome = match (resolution, candidate) {
            (Resolution::Ours, Some(candidate)) => Outcome::Done {
                result_version_id: Some(candidate),
                matched_by: Some(Attribution::Person),
                etag: None,
            },
            (Resolution::Ours, None) => {
                return Err(CatalogError::Refused(format!(
                    "action {id} has no candidate version: nothing was found that could be its own
  hint: `--not-ours` sends it again on the next apply"
                )))
            }
            (Resolution::NotOurs, Some(candidate)) => Outcome::Drifted {
                found: format!(
                    "resolved by a person: version {candidate} is not this action's; the key changed after the scan"
                ),
            },
            (Resolution::NotOurs, None) => Outcome::Released,
        };
        let revision = self.begin_change(crate::ChangeKind::Apply, Some(plan_id))?;
        let tx = self.conn.transaction()?;
        if outcome == Outcome::Released {
            tx.execute(
                "UPDATE actions SET status = 'pending', error = NULL WHERE plan_id = ?1 AND id = ?2",
                params![plan_id, id],
            )?;
        } else {
            complete(
                &tx,
                plan_id,
                &[(id, outcome.clone())],
                Follow {
                    revision: Some(revision),
                },
            )?;
        }
        if outcome != Outcome::Released {
            tx.execute(
                "UPDATE actions SET matched_by = 'person' WHERE plan_id = ?1 AND id = ?2",
                params![plan_id, id],
            )?;
        }
        tx.commit()?;
        Ok(outcome.status())
    }
}

/// Outcomes alone are committed at most this often: a commit writes the
/// changed pages to the WAL, and thousands of copies a second each in a
/// commit of its own would cost more than the copies. Progress still moves
/// ten times a second; a claim or a question is answered at once.
const RECORD_EVERY: Duration = Duration::from_millis(100);

fn run(
    conn: &mut rusqlite::Connection,
    mut rx: mpsc::Receiver<Request>,
    follow: Follow,
) -> Result<()> {
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
        // Outcomes alone wait a little for more to share their commit.
        while batch.iter().all(Request::is_record) && batch.len() < 256 {
            let left = RECORD_EVERY.saturating_sub(last_commit.elapsed());
            if left.is_zero() {
                break;
            }
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(left.min(Duration::from_millis(5)))
                }
            }
        }
        let tx = conn.transaction()?;
        let mut replies = Vec::with_capacity(batch.len());
        let mut failure = None;
        for request in batch {
            let reply = match failure {
                Some(_) => Reply::empty(request),
                None => {
                    let (reply, served) = serve(&tx, request, follow);
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
    Expected(oneshot::Sender<Result<Expectations>>, Expectations),
    Unit(oneshot::Sender<Result<()>>),
}

impl Reply {
    /// The reply of a request that was not served (its batch failed).
    fn empty(request: Request) -> Reply {
        match request {
            Request::Claim { reply, .. } => Reply::Rows(reply, Vec::new()),
            Request::Record { .. } => Reply::Recorded,
            Request::Expect { reply, .. } => Reply::Expected(reply, Expectations::new()),
            Request::Upload { reply, .. } => Reply::Unit(reply),
        }
    }

    fn send(self, error: Option<&CatalogError>) {
        let err = |e: &CatalogError| CatalogError::WriterGone(e.to_string());
        // A receiver that gave up (its worker stopped) needs no answer.
        let _ = match self {
            Reply::Rows(tx, rows) => tx.send(error.map_or(Ok(rows), |e| Err(err(e)))).is_ok(),
            Reply::Recorded => true,
            Reply::Expected(tx, v) => tx.send(error.map_or(Ok(v), |e| Err(err(e)))).is_ok(),
            Reply::Unit(tx) => tx.send(error.map_or(Ok(()), |e| Err(err(e)))).is_ok(),
        };
    }
}

/// Runs one request inside the open transaction: its reply (empty if it
/// failed), and whether it failed.
fn serve(conn: &rusqlite::Connection, request: Request, follow: Follow) -> (Reply, Result<()>) {
    match request {
        Request::Claim {
            plan_id,
            first,
            last,
            claim: which,
            reply,
        } => match claim(conn, plan_id, first, last, which) {
            Ok(rows) => (Reply::Rows(reply, rows), Ok(())),
            Err(e) => (Reply::Rows(reply, Vec::new()), Err(e)),
        },
        Request::Record { plan_id, outcomes } => {
            (Reply::Recorded, complete(conn, plan_id, &outcomes, follow))
        }
        Request::Expect {
            plan_id,
            key_ids,
            reply,
        } => match expected(conn, plan_id, &key_ids) {
            Ok(v) => (Reply::Expected(reply, v), Ok(())),
            Err(e) => (Reply::Expected(reply, Expectations::new()), Err(e)),
        },
        Request::Upload {
            plan_id,
            id,
            upload_id,
            etag,
            reply,
        } => {
            let done = conn
                .prepare_cached(
                    "UPDATE actions SET upload_id = ?3, upload_etag = ?4 WHERE plan_id = ?1 AND id = ?2",
                )
                .and_then(|mut s| s.execute(params![plan_id, id, upload_id, etag]))
                .map(drop)
                .map_err(CatalogError::from);
            (Reply::Unit(reply), done)
        }
    }
}

/// The statuses a claim takes, beside failed ones when retried.
const CLAIMABLE: &str = "('pending', 'in_flight', 'restoring', 'uncertain')";

fn claim(
    conn: &rusqlite::Connection,
    plan_id: i64,
    first: i64,
    last: i64,
    which: Claim,
) -> Result<Vec<ActionRow>> {
    let (retry_failed, mixed, settle) = match which {
        Claim::Run {
            retry_failed,
            mixed,
        } => (retry_failed, mixed, false),
        Claim::Settle => (false, false, true),
    };
    let mut select = conn.prepare_cached(&format!(
        "SELECT a.id, a.kind, a.key, a.key_id, a.version_id, a.size, a.storage_class, a.expected_latest,
                -- only copies need it; a scalar subquery, as a LEFT JOIN on
                -- the view would materialise the whole view
                CASE WHEN a.kind = 'copy_version' THEN
                    (SELECT h.etag FROM entry_history h
                     WHERE h.key_id = a.key_id AND h.version_id = a.version_id ORDER BY h.seq LIMIT 1)
                END,
                a.status,
                CASE WHEN a.kind IN ('copy_version', 'add_delete_marker') THEN
                    (SELECT count(*) FROM entries e WHERE e.key_id = a.key_id AND e.removed_rev IS NULL)
                END,
                CASE WHEN a.kind IN ('copy_version', 'add_delete_marker') THEN
                    (SELECT CASE WHEN h.is_marker = 1 THEN
                                CASE WHEN a.kind = 'copy_version' THEN '*' END
                            ELSE h.etag END
                     FROM key_history h WHERE h.key_id = a.key_id ORDER BY h.seq LIMIT 1)
                END,
                ?5 AND a.kind IN ('delete_version', 'delete_marker') AND EXISTS (
                    SELECT 1 FROM actions b INDEXED BY actions_by_key
                    WHERE b.plan_id = a.plan_id AND b.key_id = a.key_id
                      AND b.kind IN ('copy_version', 'add_delete_marker')),
                a.candidate_version_id, a.upload_id, a.upload_etag
                , a.seq
         FROM actions a
         WHERE a.plan_id = ?1
           AND a.id IN (
               SELECT id FROM actions WHERE plan_id = ?1 AND id BETWEEN ?2 AND ?3
               UNION ALL
               SELECT b.id FROM actions b INDEXED BY actions_by_key
               WHERE b.plan_id = ?1 AND b.id > ?3 AND b.key_id IN (
                   SELECT key_id FROM actions WHERE plan_id = ?1 AND id BETWEEN ?2 AND ?3))
           AND NOT EXISTS (
               SELECT 1 FROM actions o INDEXED BY actions_by_key
               WHERE o.plan_id = ?1 AND o.key_id = a.key_id AND o.id < ?2)
           AND CASE WHEN ?6 THEN a.status IN ('in_flight', 'uncertain')
                    ELSE a.status IN {CLAIMABLE} OR (?4 AND a.status = 'failed') END
         ORDER BY a.id"
    ))?;
    let rows: Vec<ActionRow> = select
        .query_map(
            params![plan_id, first, last, retry_failed, mixed, settle],
            |r| {
                let kind: String = r.get(1)?;
                let kind = ActionKind::parse(&kind).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        1,
                        rusqlite::types::Type::Text,
                        kind.into(),
                    )
                })?;
                let status: String = r.get(9)?;
                let key_entries: Option<i64> = r.get(10)?;
                let condition: Option<String> = r.get(11)?;
                // A copy onto a key with no entry left: no current object.
                let condition = match (kind, key_entries) {
                    (ActionKind::CopyVersion, Some(0)) => Some("*".to_owned()),
                    _ => condition,
                };
                let upload = match (r.get::<_, Option<String>>(14)?, r.get(15)?) {
                    (Some(id), Some(etag)) => Some((id, etag)),
                    _ => None,
                };
                Ok(ActionRow {
                    id: r.get(0)?,
                    kind,
                    key: r.get(2)?,
                    key_id: r.get(3)?,
                    version_id: r.get(4)?,
                    size: r.get(5)?,
                    storage_class: r.get(6)?,
                    expected_latest: r.get(7)?,
                    source_etag: r.get(8)?,
                    was_in_flight: status == "in_flight",
                    uncertain: (status == "uncertain").then(|| r.get(13)).transpose()?,
                    key_entries,
                    condition,
                    after_writes: r.get(12)?,
                    upload,
                    seq: r.get(16)?,
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    // Uncertain ones are examined, never sent: they keep their status.
    // Runs of consecutive ids: one or two for a plan made key by key.
    let mut update = conn.prepare_cached(&format!(
        "UPDATE actions SET status = 'in_flight', attempts = attempts + 1
         WHERE plan_id = ?1 AND id BETWEEN ?2 AND ?3
           AND CASE WHEN ?5 THEN status = 'in_flight'
                    ELSE status IN {CLAIMABLE} AND status != 'uncertain' OR (?4 AND status = 'failed') END"
    ))?;
    let mut i = 0;
    while i < rows.len() {
        let mut j = i;
        while j + 1 < rows.len() && rows[j + 1].id == rows[j].id + 1 {
            j += 1;
        }
        update.execute(params![
            plan_id,
            rows[i].id,
            rows[j].id,
            retry_failed,
            settle
        ])?;
        i = j + 1;
    }
    Ok(rows)
}

fn complete(
    conn: &rusqlite::Connection,
    plan_id: i64,
    outcomes: &[(i64, Outcome)],
    follow: Follow,
) -> Result<()> {
    let mut update = conn.prepare_cached(
        "UPDATE actions SET status = ?3, error = ?4, result_version_id = coalesce(?5, result_version_id),
                matched_by = coalesce(?6, matched_by), candidate_version_id = ?7, applied_at = ?8
         WHERE plan_id = ?1 AND id = ?2",
    )?;
    // Most outcomes are a plain "done" (every delete): one statement per run
    // of consecutive ids instead of one per action.
    let mut done_run = conn.prepare_cached(
        "UPDATE actions SET status = 'done', error = NULL, candidate_version_id = NULL, applied_at = ?4
         WHERE plan_id = ?1 AND id BETWEEN ?2 AND ?3",
    )?;
    let mut release = conn.prepare_cached(
        "UPDATE actions SET status = 'pending', attempts = max(attempts - 1, 0)
         WHERE plan_id = ?1 AND id = ?2 AND status = 'in_flight'",
    )?;
    let now = model::time::now_text();
    let mut plain: Vec<i64> = Vec::new();
    let mut entries = follow
        .revision
        .map(|revision| EntryLog::new(conn, plan_id, revision));
    for (id, outcome) in outcomes {
        if let (Outcome::Done { .. }, Some(log)) = (outcome, entries.as_mut()) {
            log.done(*id, outcome)?;
        }
        let (error, result, matched, candidate) = match outcome {
            Outcome::Released => {
                release.execute(params![plan_id, id])?;
                continue;
            }
            Outcome::Done {
                result_version_id: None,
                ..
            } => {
                plain.push(*id);
                continue;
            }
            Outcome::Done {
                result_version_id,
                matched_by,
                ..
            } => (
                None,
                result_version_id.as_deref(),
                matched_by.map(Attribution::as_str),
                None,
            ),
            Outcome::Failed { error } => (Some(error.as_str()), None, None, None),
            Outcome::Skipped { reason } => (Some(reason.as_str()), None, None, None),
            Outcome::Drifted { found } => (Some(found.as_str()), None, None, None),
            Outcome::Restoring { note } => (Some(note.as_str()), None, None, None),
            Outcome::Uncertain { candidate, why } => {
                (Some(why.as_str()), None, None, candidate.as_deref())
            }
        };
        update.execute(params![
            plan_id,
            id,
            outcome.status(),
            error,
            result,
            matched,
            candidate,
            now
        ])?;
    }
    if let Some(log) = entries {
        log.finish()?;
    }
    plain.sort_unstable();
    for run in plain.chunk_by(|a, b| b - a == 1) {
        done_run.execute(params![plan_id, run[0], run[run.len() - 1], now])?;
    }
    Ok(())
}

/// What done actions changed in the bucket, written into `entries` under
/// the apply run's revision: a copy or a new delete marker becomes the
/// key's newest entry, a removed one is marked gone; `is_latest` follows.
struct EntryLog<'c> {
    conn: &'c rusqlite::Connection,
    plan_id: i64,
    revision: i64,
    /// Keys whose newest entry may have changed.
    touched: HashSet<i64>,
}

impl<'c> EntryLog<'c> {
    fn new(conn: &'c rusqlite::Connection, plan_id: i64, revision: i64) -> EntryLog<'c> {
        EntryLog {
            conn,
            plan_id,
            revision,
            touched: HashSet::new(),
        }
    }

    fn done(&mut self, id: i64, outcome: &Outcome) -> Result<()> {
        let Outcome::Done {
            result_version_id,
            etag,
            ..
        } = outcome
        else {
            return Ok(());
        };
        let action = self
            .conn
            .prepare_cached(
                "SELECT kind, key_id, version_id, size, storage_class FROM actions
                 WHERE plan_id = ?1 AND id = ?2",
            )?
            .query_row(params![self.plan_id, id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .optional()?;
        let Some((kind, key_id, version_id, size, class)) = action else {
            return Ok(());
        };
        let kind = ActionKind::parse(&kind)
            .ok_or_else(|| CatalogError::WriterGone(format!("unknown action kind {kind}")))?;
        match (kind, result_version_id, version_id) {
            (ActionKind::DeleteVersion | ActionKind::DeleteMarker, _, Some(version)) => {
                self.conn
                    .prepare_cached(
                        "UPDATE entries SET removed_rev = ?3, is_latest = 0
                         WHERE key_id = ?1 AND version_id = ?2 AND removed_rev IS NULL",
                    )?
                    .execute(params![key_id, version, self.revision])?;
            }
            (ActionKind::CopyVersion, Some(made), source) => {
                // The copy has the source's content: its ETag when S3 did
                // not say (a single-part, unencrypted copy keeps it).
                let etag = match etag {
                    Some(e) => Some(e.clone()),
                    None => source_etag(self.conn, key_id, source.as_deref())?,
                };
                let class = class.filter(|c| !model::bucket::is_archive_class(c));
                self.add(key_id, made, false, size, etag.as_deref(), class.as_deref())?;
            }
            (ActionKind::AddDeleteMarker, Some(made), _) => {
                self.add(key_id, made, true, None, None, None)?;
            }
            _ => return Ok(()),
        }
        self.touched.insert(key_id);
        Ok(())
    }

    fn add(
        &self,
        key_id: i64,
        version: &str,
        marker: bool,
        size: Option<i64>,
        etag: Option<&str>,
        class: Option<&str>,
    ) -> Result<()> {
        let parsed = etag.map(model::Etag::parse);
        let stored: Option<rusqlite::types::Value> = parsed.map(|e| match e.md5 {
            Some(md5) => rusqlite::types::Value::Blob(md5.to_vec()),
            None => rusqlite::types::Value::Text(e.text.to_owned()),
        });
        self.conn
            .prepare_cached(
                "INSERT INTO entries (key_id, seq, version_id, is_marker, is_latest, mtime, size,
                                      etag, etag_parts, storage_class, added_rev)
                 SELECT ?1, coalesce((SELECT min(seq) FROM entries WHERE key_id = ?1), 0) - 1,
                        ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9
                 WHERE NOT EXISTS (SELECT 1 FROM entries
                                   WHERE key_id = ?1 AND version_id = ?2 AND removed_rev IS NULL)",
            )?
            .execute(params![
                key_id,
                version,
                marker,
                model::time::now(),
                size,
                stored,
                parsed.and_then(|e| e.parts),
                class,
                self.revision
            ])?;
        Ok(())
    }

    /// `is_latest` set on each touched key's newest entry that is still there.
    fn finish(self) -> Result<()> {
        let mut latest = self.conn.prepare_cached(
            "UPDATE entries SET is_latest = (seq = (SELECT min(e.seq) FROM entries e
                                                    WHERE e.key_id = ?1 AND e.removed_rev IS NULL))
             WHERE key_id = ?1 AND removed_rev IS NULL",
        )?;
        for key_id in self.touched {
            latest.execute([key_id])?;
        }
        Ok(())
    }
}

/// The ETag of a key's entry `version`, as text.
fn source_etag(
    conn: &rusqlite::Connection,
    key_id: i64,
    version: Option<&str>,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT etag FROM entry_history WHERE key_id = ?1 AND version_id = ?2 ORDER BY seq LIMIT 1",
        )?
        .query_row(params![key_id, version], |r| r.get(0))
        .optional()?
        .flatten())
}

/// What each key's newest entry may be (see [`Expected`]): its entries
/// still there, newest first, walked down past those the plan removes;
/// and the versions the plan's writes made.
fn expected(conn: &rusqlite::Connection, plan_id: i64, key_ids: &[i64]) -> Result<Expectations> {
    let ids = crate::json_ids(key_ids);
    let mut removes: HashMap<i64, Vec<String>> = HashMap::new();
    let mut out = Expectations::new();
    // Named index: without statistics SQLite takes the primary key's
    // plan_id prefix for as selective, and reads the whole plan per key.
    let mut stmt = conn.prepare_cached(
        "SELECT key_id, kind, version_id, result_version_id
         FROM actions INDEXED BY actions_by_key
         WHERE plan_id = ?1 AND key_id IN (SELECT value FROM json_each(?2))",
    )?;
    let mut rows = stmt.query(params![plan_id, ids])?;
    while let Some(r) = rows.next()? {
        let key_id: i64 = r.get(0)?;
        let kind: String = r.get(1)?;
        let removal = ActionKind::parse(&kind).is_some_and(ActionKind::is_removal);
        match (
            removal,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
        ) {
            (true, Some(v), _) => removes.entry(key_id).or_default().push(v),
            (false, _, Some(made)) => out.entry(key_id).or_default().ids.push(made),
            _ => {}
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT key_id, version_id FROM entries
         WHERE key_id IN (SELECT value FROM json_each(?1)) AND removed_rev IS NULL
         ORDER BY key_id, seq",
    )?;
    let mut rows = stmt.query(params![ids])?;
    // Keys whose walk has reached an entry the plan keeps.
    let mut settled: HashSet<i64> = HashSet::new();
    while let Some(r) = rows.next()? {
        let key_id: i64 = r.get(0)?;
        if settled.contains(&key_id) {
            continue;
        }
        let version: String = r.get(1)?;
        let removed = removes.get(&key_id).is_some_and(|r| r.contains(&version));
        if !removed {
            settled.insert(key_id);
        }
        out.entry(key_id).or_default().ids.push(version);
    }
    for &key_id in key_ids {
        let e = out.entry(key_id).or_default();
        e.none_ok = !settled.contains(&key_id);
    }
    Ok(out)
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

    const RUN: Claim = Claim::Run {
        retry_failed: false,
        mixed: true,
    };

    async fn finish(store: ActionStore, thread: ActionStoreThread) {
        drop(store);
        tokio::task::spawn_blocking(move || thread.finish())
            .await
            .unwrap()
            .unwrap();
    }

    fn rows(catalog: &crate::Catalog, sql: &str) -> Vec<(String, i64)> {
        catalog
            .conn()
            .prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
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
            let (store, thread) = ActionStore::spawn(&path, Follow { revision: None }).unwrap();
            let first = store.claim(1, 1, 3, RUN).await.unwrap();
            assert_eq!(first.len(), 3);
            assert!(first.iter().all(|r| !r.was_in_flight));
            assert_eq!(first[0].key_entries, Some(3));
            assert_eq!(first[1].key_entries, None);
            // Copies and new markers are guarded by the key's newest version.
            assert_eq!(
                first[0].condition.as_deref(),
                Some("d41d8cd98f00b204e9800998ecf8427e")
            );
            // The marker removal goes after the copy of its key.
            assert!(first[1].after_writes && !first[0].after_writes);
            // Claimed again (a run killed before any outcome): in flight.
            let again = store.claim(1, 1, 3, RUN).await.unwrap();
            assert!(again.iter().all(|r| r.was_in_flight));
            store
                .record(
                    1,
                    vec![
                        (1, Outcome::done(Some("a4".into()), None)),
                        (2, Outcome::done(None, None)),
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
            assert!(store.claim(1, 1, 3, RUN).await.unwrap().is_empty());
            // Failed ones come back only when asked for.
            let retried = Claim::Run {
                retry_failed: true,
                mixed: true,
            };
            assert_eq!(store.claim(1, 1, 3, retried).await.unwrap().len(), 1);
            finish(store, thread).await;
        });
        assert_eq!(
            rows(&catalog, "SELECT status, attempts FROM actions ORDER BY id"),
            [
                ("done".into(), 2),
                ("done".into(), 2),
                ("in_flight".into(), 3)
            ]
        );
        let matched: Option<String> = catalog
            .conn()
            .query_row("SELECT matched_by FROM actions WHERE id = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(matched.as_deref(), Some("response"));
    }

    #[test]
    fn what_done_actions_changed_goes_into_the_entries_under_the_runs_revision() {
        let (_dir, catalog) = catalog_with(vec![
            entry("a", "a3", false, 30),
            entry("a", "a2", true, 20),
            entry("a", "a1", false, 10),
            entry("b", "b2", true, 20),
            entry("b", "b1", false, 10),
        ]);
        plan_with(
            &catalog,
            &[
                (ActionKind::CopyVersion, "a", 1, Some("a1"), Some("a3")),
                (ActionKind::DeleteMarker, "b", 2, Some("b2"), Some("b2")),
            ],
        );
        let path = catalog.path().to_owned();
        runtime().block_on(async {
            let follow = Follow { revision: Some(5) };
            let (store, thread) = ActionStore::spawn(&path, follow).unwrap();
            store.claim(1, 1, 2, RUN).await.unwrap();
            let expect = store.expectations(1, vec![1, 2]).await.unwrap();
            assert_eq!(expect[&1].ids, ["a3"]);
            // The marker b2 may be gone already: b1 under it is expected too.
            assert_eq!(expect[&2].ids, ["b2", "b1"]);
            assert!(!expect[&2].none_ok);
            store
                .record(
                    1,
                    vec![
                        (1, Outcome::done(Some("a4".into()), None)),
                        (2, Outcome::done(None, None)),
                    ],
                )
                .await
                .unwrap();
            let expect = store.expectations(1, vec![1, 2]).await.unwrap();
            assert!(expect[&1].allows(Some("a4")) && !expect[&1].allows(Some("a3")));
            assert_eq!(expect[&2].ids, ["b1"]);
            finish(store, thread).await;
        });
        assert_eq!(
            rows(
                &catalog,
                "SELECT version_id, is_latest FROM key_history WHERE key_id = 1 ORDER BY seq"
            ),
            [
                ("a4".into(), 1),
                ("a3".into(), 0),
                ("a2".into(), 0),
                ("a1".into(), 0)
            ]
        );
        assert_eq!(
            rows(
                &catalog,
                "SELECT version_id, is_latest FROM key_history WHERE key_id = 2 ORDER BY seq"
            ),
            [("b1".into(), 1)]
        );
        // The copy has its source's content; the removed marker is known, as gone.
        let copied: (String, i64) = catalog
            .conn()
            .query_row(
                "SELECT etag, added_rev FROM entry_history WHERE version_id = 'a4'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(copied, ("d41d8cd98f00b204e9800998ecf8427e".into(), 5));
        let gone: i64 = catalog
            .conn()
            .query_row(
                "SELECT removed_rev FROM entries WHERE version_id = 'b2'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(gone, 5);
    }

    #[test]
    fn uncertain_actions_are_examined_again_but_never_claimed_to_be_sent_and_settling_takes_only_those_in_flight(
    ) {
        let (_dir, catalog) = catalog_with(vec![
            entry("a", "a1", false, 10),
            entry("b", "b1", false, 10),
            entry("c", "c1", false, 10),
        ]);
        plan_with(
            &catalog,
            &[
                (ActionKind::AddDeleteMarker, "a", 1, None, Some("a1")),
                (ActionKind::AddDeleteMarker, "b", 2, None, Some("b1")),
                (ActionKind::AddDeleteMarker, "c", 3, None, Some("c1")),
            ],
        );
        let path = catalog.path().to_owned();
        runtime().block_on(async {
            let (store, thread) = ActionStore::spawn(&path, Follow { revision: None }).unwrap();
            store.claim(1, 1, 2, RUN).await.unwrap();
            store
                .record(
                    1,
                    vec![
                        (
                            1,
                            Outcome::Uncertain {
                                candidate: Some("m".into()),
                                why: "a marker appeared".into(),
                            },
                        ),
                        (2, Outcome::Released),
                    ],
                )
                .await
                .unwrap();
            // Settling: only what is in flight or uncertain (none in flight now).
            let settle = store.claim(1, 1, 3, Claim::Settle).await.unwrap();
            assert_eq!(settle.len(), 1);
            assert_eq!(settle[0].uncertain, Some(Some("m".into())));
            let all = store.claim(1, 1, 3, RUN).await.unwrap();
            assert_eq!(all.len(), 3);
            finish(store, thread).await;
        });
        assert_eq!(
            rows(&catalog, "SELECT status, attempts FROM actions ORDER BY id"),
            [
                ("uncertain".into(), 1),
                ("in_flight".into(), 1),
                ("in_flight".into(), 1)
            ]
        );
    }
}
