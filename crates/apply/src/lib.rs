//! `apply`: executes a reviewed plan against S3 — strided blocks of action
//! ids, deletes batched into DeleteObjects, copies and new delete markers in
//! parallel — recording every action's outcome so that a killed run, rerun,
//! finishes the plan without doing anything twice.
//!
//! Worker i of N takes blocks i, i+N, i+2N, … of `block_size` ids (ids are
//! dense, so no COUNT or OFFSET is needed). A block is claimed (its actions
//! marked in flight, committed) before any call goes out, and completed
//! with each action's outcome afterwards. On a rerun, an action still in
//! flight was perhaps executed: a delete is simply sent again (deleting what
//! is gone counts as done), while a copy or a new delete marker is first
//! checked against the key's newest entry.

mod limits;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use catalog::actions::ActionStoreThread;
use catalog::{ActionKind, ActionRow, ActionStore, CatalogError, Outcome};
use futures::stream::{self, StreamExt, TryStreamExt};
use s3io::pricing::DELETE_BATCH;
use s3io::retry::{backoff, retrying, should_retry};
use s3io::{CopyRequest, DeleteTarget, ListedEntry, S3Error, S3};

pub use limits::{AdaptiveLimit, RateLimit};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{0}\n  the run stopped; what was done is recorded: fix the cause and run apply again to resume")]
    S3(S3Error),
    #[error("interrupted; what was done is recorded: run the same apply again to resume")]
    Interrupted,
}

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Workers, and the most requests in flight.
    pub concurrency: usize,
    /// Action ids per block.
    pub block_size: i64,
    /// Most requests started per second.
    pub max_rps: Option<f64>,
    /// Check each key's newest entry before acting; skip keys changed since the scan.
    pub verify: bool,
    /// Try failed actions again.
    pub retry_failed: bool,
    /// Copies of sources larger than this go multipart.
    pub multipart_threshold: u64,
    /// Part size for multipart copies; `None`: S3-sized parts (512 MiB or more).
    pub part_size: Option<u64>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            concurrency: 64,
            block_size: 1000,
            max_rps: None,
            verify: false,
            retry_failed: false,
            multipart_threshold: s3io::pricing::SINGLE_COPY_LIMIT,
            part_size: None,
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
}

/// Live counters, for progress display.
#[derive(Debug, Default)]
pub struct ApplyProgress {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub skipped: AtomicU64,
    pub limit: AtomicU64,
}

impl ApplyProgress {
    pub fn finished(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.skipped.load(Ordering::Relaxed)
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct ApplySummary {
    pub done: u64,
    pub failed: u64,
    pub skipped: u64,
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
    limit: AdaptiveLimit,
    rate: Option<RateLimit>,
    progress: &'a ApplyProgress,
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
    let (requests, retries, throttled) = (
        s3.counters().requests(),
        s3.counters().retries(),
        s3.counters().throttled(),
    );
    let (store, thread) = ActionStore::spawn(catalog_path)?;
    let workers = options.concurrency.max(1);
    let cx = Context {
        s3,
        store,
        target,
        options,
        limit: AdaptiveLimit::new(workers),
        rate: options.max_rps.map(RateLimit::new),
        progress,
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
        requests: s3.counters().requests() - requests,
        retries: s3.counters().retries() - retries,
        throttled: s3.counters().throttled() - throttled,
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
            let outcomes = execute_block(cx, rows).await?;
            for (_, o) in &outcomes {
                let counter = match o {
                    Outcome::Done { .. } => &cx.progress.done,
                    Outcome::Failed { .. } => &cx.progress.failed,
                    Outcome::Skipped { .. } => &cx.progress.skipped,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            cx.store.complete(cx.target.plan_id, outcomes).await?;
        }
        block += workers;
    }
}

/// One attempt of an S3 call: waits for a slot (the adaptive cap, then the
/// rate ceiling), makes the call, and feeds the cap what it saw.
///
/// The call is built, on the heap, only once it has a slot: every worker
/// queues a block's worth of calls for the cap, and an SDK call's future is
/// kilobytes, so building them up front held hundreds of MiB at
/// `--concurrency 256`.
async fn attempt<T, Fut>(cx: &Context<'_>, call: impl FnOnce() -> Fut) -> T
where
    Fut: std::future::Future<Output = T>,
{
    let _permit = cx.limit.acquire().await;
    if let Some(rate) = &cx.rate {
        rate.wait().await;
    }
    let result = Box::pin(call()).await;
    cx.limit.observe(cx.s3.counters().throttled());
    cx.progress
        .limit
        .store(cx.limit.limit() as u64, Ordering::Relaxed);
    result
}

/// One S3 call with our retries (see `s3io::retry`).
async fn call<T, F, Fut>(cx: &Context<'_>, f: F) -> Result<T, S3Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, S3Error>>,
{
    retrying(|| attempt(cx, &f), |_| {}).await
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

async fn execute_block(
    cx: &Context<'_>,
    rows: Vec<ActionRow>,
) -> Result<Vec<(i64, Outcome)>, ApplyError> {
    let mut outcomes: Vec<(i64, Outcome)> = Vec::with_capacity(rows.len());
    let decided = check_keys(cx, &rows).await?;
    let mut deletes = Vec::new();
    let mut singles = Vec::new();
    for row in rows {
        if let Some(o) = decided.get(&row.id) {
            outcomes.push((row.id, o.clone()));
            continue;
        }
        match row.kind {
            ActionKind::DeleteVersion | ActionKind::DeleteMarker => deletes.push(row),
            ActionKind::CopyVersion | ActionKind::AddDeleteMarker => singles.push(row),
        }
    }
    for chunk in deletes.chunks(DELETE_BATCH as usize) {
        outcomes.extend(delete_batch(cx, chunk).await?);
    }
    let done: Vec<(i64, Outcome)> = stream::iter(singles)
        .map(|row| async move { Ok::<_, ApplyError>((row.id, write_once(cx, &row).await?)) })
        .buffer_unordered(cx.options.concurrency.max(1))
        .try_collect()
        .await?;
    outcomes.extend(done);
    Ok(outcomes)
}

/// A copy or a new delete marker, executed at most once: when a call fails
/// in a way that may hide a success (a 500, a lost connection), the key is
/// looked at before the call is tried again.
async fn write_once(cx: &Context<'_>, row: &ActionRow) -> Result<Outcome, ApplyError> {
    let size = row.size.unwrap_or(0).max(0) as u64;
    let request = CopyRequest {
        bucket: &cx.target.bucket,
        key: &row.key,
        version_id: row.version_id.as_deref().unwrap_or("null"),
        size,
        storage_class: row.storage_class.as_deref().filter(|c| *c != "STANDARD"),
        multipart_threshold: cx.options.multipart_threshold,
        part_size: cx
            .options
            .part_size
            .unwrap_or_else(|| s3io::pricing::part_size(size)),
        part_concurrency: 8,
    };
    let mut attempts = 0;
    loop {
        let result = match row.kind {
            ActionKind::CopyVersion => attempt(cx, || cx.s3.copy_version(&request)).await,
            _ => attempt(cx, || cx.s3.add_delete_marker(&cx.target.bucket, &row.key)).await,
        };
        match result {
            Ok(version) => {
                return Ok(Outcome::Done {
                    result_version_id: version,
                })
            }
            Err(e) if e.may_have_succeeded() => {
                let assume_sent = ActionRow {
                    was_in_flight: true,
                    ..row.clone()
                };
                if let Some(outcome) = look_at_key(cx, &[&assume_sent]).await?.pop() {
                    return Ok(outcome.1);
                }
                if !should_retry(&e, attempts) {
                    return outcome_of(e);
                }
            }
            Err(e) if should_retry(&e, attempts) => {}
            Err(e) => return outcome_of(e),
        }
        attempts += 1;
        tokio::time::sleep(backoff(attempts)).await;
    }
}

/// One DeleteObjects request (and retries of the keys S3 asked to retry).
async fn delete_batch(
    cx: &Context<'_>,
    rows: &[ActionRow],
) -> Result<Vec<(i64, Outcome)>, ApplyError> {
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut pending: Vec<&ActionRow> = rows.iter().collect();
    let mut attempts = 0;
    while !pending.is_empty() {
        let targets: Vec<DeleteTarget> = pending
            .iter()
            .map(|r| DeleteTarget {
                key: r.key.clone(),
                version_id: r.version_id.clone().unwrap_or_else(|| "null".into()),
            })
            .collect();
        let per_key = match call(cx, || cx.s3.delete_versions(&cx.target.bucket, &targets)).await {
            Ok(per_key) => per_key,
            Err(e) => {
                let outcome = outcome_of(e)?;
                outcomes.extend(pending.iter().map(|r| (r.id, outcome.clone())));
                return Ok(outcomes);
            }
        };
        let mut retry = Vec::new();
        for (row, error) in pending.into_iter().zip(per_key) {
            match error {
                None => outcomes.push((
                    row.id,
                    Outcome::Done {
                        result_version_id: None,
                    },
                )),
                // SlowDown or InternalError for single keys inside a 200 body.
                Some(e) if should_retry(&e, attempts) => retry.push((row, e)),
                Some(e) => outcomes.push((row.id, outcome_of(e)?)),
            }
        }
        if retry
            .iter()
            .any(|(_, e)| e.kind == s3io::ErrorKind::Throttled)
        {
            cx.limit.cut();
        }
        pending = retry.into_iter().map(|(row, _)| row).collect();
        if !pending.is_empty() {
            attempts += 1;
            tokio::time::sleep(backoff(attempts)).await;
        }
    }
    Ok(outcomes)
}

/// Decides the actions that must not simply be executed: with `--verify`,
/// those of keys someone else changed since the scan; after an interrupted
/// run, copies and new delete markers that may already have happened.
async fn check_keys(
    cx: &Context<'_>,
    rows: &[ActionRow],
) -> Result<HashMap<i64, Outcome>, ApplyError> {
    let mut by_key: HashMap<i64, Vec<&ActionRow>> = HashMap::new();
    for row in rows {
        let resumed_write = row.was_in_flight
            && matches!(
                row.kind,
                ActionKind::CopyVersion | ActionKind::AddDeleteMarker
            );
        if cx.options.verify || resumed_write {
            by_key.entry(row.key_id).or_default().push(row);
        }
    }
    let decisions: Vec<Vec<(i64, Outcome)>> = stream::iter(by_key.into_values())
        .map(|key_rows| async move { look_at_key(cx, &key_rows).await })
        .buffer_unordered(cx.options.concurrency.max(1))
        .try_collect()
        .await?;
    Ok(decisions.into_iter().flatten().collect())
}

/// Reads one key's newest entry and decides its rows (see [`decide`]).
async fn look_at_key(
    cx: &Context<'_>,
    key_rows: &[&ActionRow],
) -> Result<Vec<(i64, Outcome)>, ApplyError> {
    let key = &key_rows[0].key;
    let newest = match call(cx, || cx.s3.newest_entry(&cx.target.bucket, key)).await {
        Ok(n) => n,
        Err(e) => {
            let o = outcome_of(e)?;
            return Ok(key_rows.iter().map(|r| (r.id, o.clone())).collect());
        }
    };
    let known = cx
        .store
        .known_versions(cx.target.plan_id, key_rows[0].key_id)
        .await?;
    Ok(key_rows
        .iter()
        .filter_map(|row| decide(cx, row, newest.as_ref(), &known).map(|o| (row.id, o)))
        .collect())
}

/// `None`: go ahead. Otherwise the action's outcome without a call.
fn decide(
    cx: &Context<'_>,
    row: &ActionRow,
    newest: Option<&ListedEntry>,
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
        let gone = newest.is_none()
            && matches!(
                row.kind,
                ActionKind::CopyVersion | ActionKind::AddDeleteMarker
            );
        return gone.then(|| Outcome::Skipped {
            reason: "the key has no versions any more".into(),
        });
    }
    (cx.options.verify || row.was_in_flight).then(|| Outcome::Skipped {
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
