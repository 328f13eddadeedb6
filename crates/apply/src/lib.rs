//! `apply`: executes a reviewed plan against S3 — strided blocks of action
//! ids, deletes batched into DeleteObjects, copies and new delete markers in
//! parallel — recording every action's outcome so that a killed run, rerun,
//! finishes the plan without doing anything twice.
//!
//! Worker i of N takes blocks i, i+N, i+2N, … of `block_size` ids (ids are
//! dense, so no COUNT or OFFSET is needed). A block is claimed (its actions
//! marked in flight, committed) before any call goes out; outcomes are
//! recorded as they come. On a rerun, an action still in flight was perhaps
//! executed: a delete is simply sent again (deleting what is gone counts as
//! done), while copies and new delete markers are first checked against
//! their keys' newest entries — one listing for many adjacent keys, and one
//! catalog query per block for what the plan knows of them — so a resumed
//! run goes about as fast as a fresh one however much was in flight.
//!
//! How hard it pushes (concurrency, throttling, retries) is s3io's call
//! policy; nothing here repeats a call.
//!
//! [`verify`] checks afterwards that the bucket is where the plan meant it
//! to be.

pub mod verify;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use catalog::actions::{ActionStoreThread, KnownVersions};
use catalog::{ActionRow, ActionStore, CatalogError, Outcome};
use futures::stream::{self, StreamExt, TryStreamExt};
use model::limits::DELETE_BATCH;
use model::{ActionKind, Entry};
use s3io::{Condition, CopyRequest, DeleteTarget, ErrorKind, S3Error, Seen, Write, Written, S3};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{0}\n  the run stopped; what was done is recorded: fix the cause and run apply again to resume")]
    S3(S3Error),
    #[error("interrupted; what was done is recorded: run the same apply again to resume")]
    Interrupted,
    /// A listing for `verify` failed after its retries.
    #[error("{0}\n  verify stopped (it changes nothing): fix the cause and run it again")]
    Verify(S3Error),
}

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Workers (each with a block of actions); requests in flight are the
    /// S3 client's concurrency.
    pub workers: usize,
    /// Action ids per block.
    pub block_size: i64,
    /// Check each key's newest entry before acting; skip keys changed since the scan.
    pub verify: bool,
    /// Try failed actions again.
    pub retry_failed: bool,
    /// Copies of sources larger than this go multipart.
    pub multipart_threshold: u64,
    /// Part size for multipart copies; `None`: S3-sized parts (512 MiB or more).
    pub part_size: Option<u64>,
    /// A version the plan copies (key, version id), to find out once
    /// whether the endpoint honours conditional copies; `None`: copies go
    /// unconditionally (no copies, or conditions turned off).
    pub condition_probe: Option<(String, String)>,
    /// How archived sources are restored before their copy: the retrieval
    /// tier (`Standard`, `Bulk`, `Expedited`) and the days the restored
    /// copy stays readable.
    pub archive_tier: String,
    pub archive_days: i32,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            workers: 64,
            block_size: 1000,
            verify: false,
            retry_failed: false,
            multipart_threshold: model::limits::SINGLE_COPY_LIMIT,
            part_size: None,
            condition_probe: None,
            archive_tier: "Standard".into(),
            archive_days: 7,
        }
    }
}

/// The plan to apply.
#[derive(Debug, Clone)]
pub struct ApplyTarget {
    pub plan_id: i64,
    /// The highest action id (the plan's action count).
    pub last_id: i64,
    pub bucket: String,
    /// Where the plan's actions land (`plan restore --into`, and its
    /// undo), with the scanned location's base that the destination's
    /// prefix replaces; `None`: on the scanned keys themselves.
    pub into: Option<(model::Destination, String)>,
}

impl ApplyTarget {
    /// The bucket the plan's actions land in.
    pub fn bucket(&self) -> &str {
        self.into.as_ref().map_or(&self.bucket, |(d, _)| &d.bucket)
    }

    /// The bucket and key an action on scanned key `key` acts on.
    pub fn place<'k>(&'k self, key: &'k str) -> (&'k str, std::borrow::Cow<'k, str>) {
        let placed = match &self.into {
            None => std::borrow::Cow::Borrowed(key),
            Some((d, base)) => std::borrow::Cow::Owned(d.key_for(base, key)),
        };
        (self.bucket(), placed)
    }
}

/// Live counters, for progress display.
#[derive(Debug, Default)]
pub struct ApplyProgress {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub skipped: AtomicU64,
    pub drifted: AtomicU64,
    pub restoring: AtomicU64,
}

impl ApplyProgress {
    pub fn finished(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.skipped.load(Ordering::Relaxed)
            + self.drifted.load(Ordering::Relaxed)
            + self.restoring.load(Ordering::Relaxed)
    }
}

/// How copies were guarded against writes made after the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Each copy carried the condition the scan saw (If-Match /
    /// If-None-Match): no extra request.
    Conditions,
    /// The endpoint ignores conditional copies: each key was listed first
    /// (as `--verify` does).
    Listing,
    /// Copies went unconditionally (none to make, or not asked for).
    None,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct ApplySummary {
    pub done: u64,
    pub failed: u64,
    pub skipped: u64,
    pub drifted: u64,
    /// Copies left waiting for their source's restore from an archive.
    pub restoring: u64,
    pub guard: Guard,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub elapsed: Duration,
}

struct Context<'a> {
    s3: &'a S3,
    store: ActionStore,
    target: &'a ApplyTarget,
    options: &'a ApplyOptions,
    progress: &'a ApplyProgress,
    /// Copies carry conditions.
    conditional: bool,
    /// Keys are listed before acting on them (`--verify`, or the fallback
    /// for an endpoint that ignores conditions).
    verify: bool,
}

/// Applies the plan's unfinished actions. `shutdown` resolving stops the
/// run after the calls in flight; what finished is recorded.
pub async fn apply(
    s3: &S3,
    catalog_path: &std::path::Path,
    target: &ApplyTarget,
    options: &ApplyOptions,
    progress: &ApplyProgress,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<ApplySummary, ApplyError> {
    let started = Instant::now();
    let counters = s3.counters();
    let (requests, retries, throttled) = (
        counters.requests(),
        counters.retries(),
        counters.throttled(),
    );
    let guard = match &options.condition_probe {
        None => Guard::None,
        Some((key, version)) => {
            match s3
                .honours_copy_conditions(&target.bucket, key, version)
                .await
            {
                Ok(true) => Guard::Conditions,
                Ok(false) => Guard::Listing,
                Err(e) if e.stops_the_run() => return Err(ApplyError::S3(e)),
                // Not known (the source is gone, say): list, to be safe.
                Err(_) => Guard::Listing,
            }
        }
    };
    let (store, thread) = ActionStore::spawn(catalog_path)?;
    let workers = options.workers.max(1);
    let cx = Context {
        s3,
        store,
        target,
        options,
        progress,
        conditional: guard == Guard::Conditions,
        verify: options.verify || guard == Guard::Listing,
    };
    let run =
        futures::future::try_join_all((0..workers as i64).map(|w| worker(&cx, w, workers as i64)));
    let outcome = tokio::select! {
        r = run => r.map(drop),
        _ = shutdown => Err(ApplyError::Interrupted),
    };
    drop(cx);
    finish(thread).await?;
    outcome?;
    Ok(ApplySummary {
        done: progress.done.load(Ordering::Relaxed),
        failed: progress.failed.load(Ordering::Relaxed),
        skipped: progress.skipped.load(Ordering::Relaxed),
        drifted: progress.drifted.load(Ordering::Relaxed),
        restoring: progress.restoring.load(Ordering::Relaxed),
        guard,
        requests: counters.requests() - requests,
        retries: counters.retries() - retries,
        throttled: counters.throttled() - throttled,
        elapsed: started.elapsed(),
    })
}

async fn finish(thread: ActionStoreThread) -> Result<(), ApplyError> {
    tokio::task::spawn_blocking(move || thread.finish())
        .await
        .map_err(|e| CatalogError::WriterGone(e.to_string()))??;
    Ok(())
}

async fn worker(cx: &Context<'_>, index: i64, workers: i64) -> Result<(), ApplyError> {
    let size = cx.options.block_size.max(1);
    let mut block = index;
    loop {
        let first = block * size + 1;
        if first > cx.target.last_id {
            return Ok(());
        }
        let rows = cx
            .store
            .claim(
                cx.target.plan_id,
                first,
                first + size - 1,
                cx.options.retry_failed,
            )
            .await?;
        if !rows.is_empty() {
            execute_block(cx, rows).await?;
        }
        block += workers;
    }
}

impl Context<'_> {
    /// Counts and records outcomes (their commit is not waited for).
    async fn record(&self, outcomes: Vec<(i64, Outcome)>) -> Result<(), ApplyError> {
        for (_, o) in &outcomes {
            let counter = match o {
                Outcome::Done { .. } => &self.progress.done,
                Outcome::Failed { .. } => &self.progress.failed,
                Outcome::Skipped { .. } => &self.progress.skipped,
                Outcome::Drifted { .. } => &self.progress.drifted,
                Outcome::Restoring { .. } => &self.progress.restoring,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.store.record(self.target.plan_id, outcomes).await?;
        Ok(())
    }
}

fn failed(e: &S3Error) -> Outcome {
    Outcome::Failed {
        error: e.code_and_message(),
    }
}

/// Turns a call's error into the action's outcome, or stops the run.
fn outcome_of(e: S3Error) -> Result<Outcome, ApplyError> {
    if e.stops_the_run() {
        Err(ApplyError::S3(e))
    } else {
        Ok(failed(&e))
    }
}

async fn execute_block(cx: &Context<'_>, rows: Vec<ActionRow>) -> Result<(), ApplyError> {
    let checked = check_keys(cx, &rows).await?;
    let mut decided = Vec::new();
    let mut deletes = Vec::new();
    let mut writes = Vec::new();
    for row in rows {
        if let Some(o) = checked.decisions.get(&row.id) {
            decided.push((row.id, o.clone()));
        } else if row.kind.is_removal() {
            deletes.push(row);
        } else {
            writes.push(row);
        }
    }
    cx.record(decided).await?;
    for chunk in deletes.chunks(DELETE_BATCH as usize) {
        let outcomes = delete_batch(cx, chunk).await?;
        cx.record(outcomes).await?;
    }
    let known = &checked.known;
    stream::iter(writes)
        .map(|row| async move {
            let outcome = write_once(cx, &row, known.get(&row.key_id)).await?;
            cx.record(vec![(row.id, outcome)]).await
        })
        .buffer_unordered(cx.s3.pacer().concurrency())
        .try_collect::<()>()
        .await
}

/// A copy or a new delete marker, made at most once (see `s3io::S3::write_once`).
async fn write_once(
    cx: &Context<'_>,
    row: &ActionRow,
    known: Option<&Vec<String>>,
) -> Result<Outcome, ApplyError> {
    let size = row.size.unwrap_or(0).max(0) as u64;
    if row.kind == ActionKind::CopyVersion
        && model::bucket::is_archive_class(row.storage_class.as_deref().unwrap_or("STANDARD"))
    {
        if let Some(waiting) = restore_first(cx, row).await? {
            return Ok(waiting);
        }
    }
    let (bucket, key) = cx.target.place(&row.key);
    let write = match row.kind {
        ActionKind::CopyVersion => Write::Copy(CopyRequest {
            bucket,
            key: &key,
            source_bucket: &cx.target.bucket,
            source_key: &row.key,
            version_id: row.version_id.as_deref().unwrap_or("null"),
            size,
            // A version brought back from an archive lands readable.
            storage_class: row
                .storage_class
                .as_deref()
                .filter(|c| *c != "STANDARD" && !model::bucket::is_archive_class(c)),
            multipart_threshold: cx.options.multipart_threshold,
            part_size: cx
                .options
                .part_size
                .unwrap_or_else(|| model::limits::part_size(size)),
            part_concurrency: 8,
            condition: match row.copy_condition.as_deref() {
                _ if !cx.conditional => None,
                Some("*") => Some(Condition::IfNoneMatch),
                Some(tag) => Some(Condition::IfMatch(tag)),
                None => None,
            },
        }),
        _ => Write::AddMarker { bucket, key: &key },
    };
    let no_versions = Vec::new();
    let known = known.unwrap_or(&no_versions);
    let sent = ActionRow {
        was_in_flight: true,
        ..row.clone()
    };
    let check = |newest: Option<&Entry>| match decide(cx, &sent, newest, known) {
        None => Seen::NotWritten,
        Some(Outcome::Done { result_version_id }) => Seen::Written(result_version_id),
        Some(
            Outcome::Skipped { reason }
            | Outcome::Failed { error: reason }
            | Outcome::Drifted { found: reason }
            | Outcome::Restoring { note: reason },
        ) => Seen::Changed(reason),
    };
    match cx.s3.write_once(&write, check).await {
        Ok(Written::Done(version)) => Ok(Outcome::Done {
            result_version_id: version,
        }),
        Ok(Written::Abandoned(reason)) => Ok(Outcome::Skipped { reason }),
        Err(e) if e.kind == ErrorKind::ConditionFailed => drifted(cx, row).await,
        // Archived although the scan did not say so (an Intelligent-Tiering
        // archive tier, or a transition since): restore it first.
        Err(e) if e.code.as_deref() == Some("InvalidObjectState") => {
            match restore(cx, row).await? {
                Some(waiting) => Ok(waiting),
                None => outcome_of(e),
            }
        }
        Err(e) => outcome_of(e),
    }
}

/// A copy whose source is in an archive class: `None` when the source is
/// restored (the copy goes ahead), else the copy waits (`restoring`) for
/// the restore this asks for or one already under way.
async fn restore_first(cx: &Context<'_>, row: &ActionRow) -> Result<Option<Outcome>, ApplyError> {
    let version = row.version_id.as_deref().unwrap_or("null");
    match cx
        .s3
        .version_state(&cx.target.bucket, &row.key, version)
        .await
    {
        Ok(state) if !state.archived() => Ok(None),
        Ok(state) if state.restore == model::bucket::Restore::Ongoing => {
            Ok(Some(Outcome::Restoring {
                note: "waiting for the source's restore from the archive (requested earlier)"
                    .into(),
            }))
        }
        Ok(_) => restore(cx, row).await,
        // A missing source and the like: the copy says what is wrong.
        Err(e) if e.stops_the_run() => Err(ApplyError::S3(e)),
        Err(_) => Ok(None),
    }
}

/// Asks S3 to restore the copy's source: `None` when there is nothing
/// to wait for (it is restored, or not archived after all).
async fn restore(cx: &Context<'_>, row: &ActionRow) -> Result<Option<Outcome>, ApplyError> {
    let version = row.version_id.as_deref().unwrap_or("null");
    let (days, tier) = (cx.options.archive_days, &cx.options.archive_tier);
    let started = cx
        .s3
        .restore_version(
            &cx.target.bucket,
            &row.key,
            version,
            row.storage_class.as_deref(),
            days,
            tier,
        )
        .await;
    let note = match started {
        Ok(s3io::RestoreStarted::AlreadyDone) => return Ok(None),
        Ok(s3io::RestoreStarted::Requested) => format!(
            "the source is in the archive: restore requested ({tier}); run apply again once it is done"
        ),
        Ok(s3io::RestoreStarted::AlreadyOngoing) => {
            "waiting for the source's restore from the archive (already under way)".into()
        }
        Err(e) => return outcome_of(e).map(Some),
    };
    Ok(Some(Outcome::Restoring { note }))
}

/// The newest entry where an action on scanned key `key` lands.
async fn newest_placed(cx: &Context<'_>, key: &str) -> Result<Option<Entry>, S3Error> {
    let (bucket, key) = cx.target.place(key);
    cx.s3.newest_entry(bucket, &key).await
}

/// A copy S3 refused as the key changed after the scan: what it holds now.
async fn drifted(cx: &Context<'_>, row: &ActionRow) -> Result<Outcome, ApplyError> {
    let now = match newest_placed(cx, &row.key).await {
        Ok(None) => "no entry".to_owned(),
        Ok(Some(e)) if e.is_marker => format!("delete marker {}", e.version_id),
        Ok(Some(e)) => format!(
            "version {} ({} bytes, ETag {})",
            e.version_id,
            e.size.unwrap_or(0),
            e.etag.as_deref().unwrap_or("?")
        ),
        Err(e) if e.stops_the_run() => return Err(ApplyError::S3(e)),
        Err(e) => format!("not known ({})", e.code_and_message()),
    };
    Ok(Outcome::Drifted {
        found: format!(
            "the key changed after the scan: its newest entry is now {now}, the scan saw {}",
            row.expected_latest.as_deref().unwrap_or("nothing")
        ),
    })
}

/// One DeleteObjects request for up to 1,000 actions.
async fn delete_batch(
    cx: &Context<'_>,
    rows: &[ActionRow],
) -> Result<Vec<(i64, Outcome)>, ApplyError> {
    let targets: Vec<DeleteTarget> = rows
        .iter()
        .map(|r| DeleteTarget {
            key: cx.target.place(&r.key).1.into_owned(),
            version_id: r.version_id.clone().unwrap_or_else(|| "null".into()),
        })
        .collect();
    match cx.s3.delete_versions(cx.target.bucket(), &targets).await {
        Ok(per_key) => rows
            .iter()
            .zip(per_key)
            .map(|(row, error)| {
                let outcome = match error {
                    None => Outcome::Done {
                        result_version_id: None,
                    },
                    Some(e) => outcome_of(e)?,
                };
                Ok((row.id, outcome))
            })
            .collect(),
        Err(e) => {
            let outcome = outcome_of(e)?;
            Ok(rows.iter().map(|r| (r.id, outcome.clone())).collect())
        }
    }
}

/// What the keys of a block say before anything is sent.
struct Checked {
    /// Actions decided without a call.
    decisions: HashMap<i64, Outcome>,
    /// What the plan knows of the block's keys (see [`KnownVersions`]).
    known: KnownVersions,
}

/// Decides the actions that must not simply be executed: with `--verify`,
/// those of keys someone else changed since the scan; after an interrupted
/// run, copies and new delete markers that may already have happened.
async fn check_keys(cx: &Context<'_>, rows: &[ActionRow]) -> Result<Checked, ApplyError> {
    let mut by_key: HashMap<i64, Vec<&ActionRow>> = HashMap::new();
    for row in rows {
        let resumed_write = row.was_in_flight && !row.kind.is_removal();
        if cx.verify || resumed_write {
            by_key.entry(row.key_id).or_default().push(row);
        }
    }
    // Writes need it too, to judge a failed attempt.
    let mut key_ids: Vec<i64> = rows
        .iter()
        .filter(|r| !r.kind.is_removal())
        .map(|r| r.key_id)
        .chain(by_key.keys().copied())
        .collect();
    key_ids.sort_unstable();
    key_ids.dedup();
    let known = match key_ids.is_empty() {
        true => KnownVersions::new(),
        false => cx.store.known_versions(cx.target.plan_id, key_ids).await?,
    };
    let mut decisions = HashMap::new();
    let mut keys: Vec<(&str, i64, i64)> = by_key
        .values()
        .map(|rows| {
            (
                rows[0].key.as_str(),
                rows[0].key_id,
                rows[0].key_entries.unwrap_or(1),
            )
        })
        .collect();
    keys.sort_unstable();
    for (run, newest) in newest_of_runs(cx, &keys).await? {
        for ((_, key_id, _), newest) in run.iter().zip(newest) {
            let key_known = known.get(key_id).map_or(&[][..], Vec::as_slice);
            for row in &by_key[key_id] {
                let outcome = match &newest {
                    Ok(n) => decide(cx, row, n.as_ref(), key_known),
                    Err(e) => Some(outcome_of(e.clone())?),
                };
                if let Some(o) = outcome {
                    decisions.insert(row.id, o);
                }
            }
        }
    }
    Ok(Checked { decisions, known })
}

type Probed<'k> = (
    &'k [(&'k str, i64, i64)],
    Vec<Result<Option<Entry>, S3Error>>,
);

/// The newest entries of `keys` ((key, key id, entries when scanned),
/// sorted by key), read in runs of keys that were near each other when
/// scanned (key ids are handed out in listing order), one listing for a run.
async fn newest_of_runs<'k>(
    cx: &Context<'_>,
    keys: &'k [(&'k str, i64, i64)],
) -> Result<Vec<Probed<'k>>, ApplyError> {
    let runs = s3io::probe::key_runs(keys, |k| k.1, 1000);
    let bucket = cx.target.bucket();
    stream::iter(runs)
        .map(|run| async move {
            let placed: Vec<_> = run.iter().map(|k| cx.target.place(k.0).1).collect();
            let names: Vec<&str> = placed.iter().map(|k| k.as_ref()).collect();
            // What each key had when scanned, one more if the interrupted
            // run's write landed, and the keys passed over between it and
            // the key before (guessed to be like it).
            let entries: Vec<u64> = run
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let between = match i {
                        0 => 0,
                        i => (k.1 - run[i - 1].1 - 1).max(0),
                    };
                    k.2.max(1) as u64 * (1 + between as u64) + 1
                })
                .collect();
            let newest = match cx.s3.newest_entries(bucket, &names, &entries).await {
                Ok(n) => n.into_iter().map(Ok).collect(),
                Err(e) if e.stops_the_run() => return Err(ApplyError::S3(e)),
                Err(e) => vec![Err(e); run.len()],
            };
            Ok((run, newest))
        })
        .buffer_unordered(16)
        .try_collect()
        .await
}

/// `None`: go ahead. Otherwise the action's outcome without a call.
fn decide(
    cx: &Context<'_>,
    row: &ActionRow,
    newest: Option<&Entry>,
    known: &[String],
) -> Option<Outcome> {
    let untouched = newest.is_none_or(|n| known.contains(&n.version_id));
    if row.was_in_flight && !untouched {
        let n = newest.expect("untouched when absent");
        // The interrupted run's call may have gone through: recognise its result.
        let ours = match row.kind {
            ActionKind::CopyVersion => {
                !n.is_marker
                    && n.size == row.size
                    && (n.etag == row.source_etag
                        || row.size.unwrap_or(0) as u64 > cx.options.multipart_threshold)
            }
            ActionKind::AddDeleteMarker => n.is_marker,
            _ => false,
        };
        if ours {
            return Some(Outcome::Done {
                result_version_id: Some(n.version_id.clone()),
            });
        }
    }
    if untouched {
        // Elsewhere (`--into`), a key not there yet is the normal case.
        let gone = newest.is_none() && !row.kind.is_removal() && cx.target.into.is_none();
        return gone.then(|| Outcome::Skipped {
            reason: "the key has no versions any more".into(),
        });
    }
    (cx.verify || row.was_in_flight).then(|| Outcome::Skipped {
        reason: format!(
            "changed after the scan: its newest entry is now {} {}, the scan saw {}",
            if newest.is_some_and(|n| n.is_marker) {
                "delete marker"
            } else {
                "version"
            },
            newest.map_or("?", |n| n.version_id.as_str()),
            row.expected_latest.as_deref().unwrap_or("nothing")
        ),
    })
}
