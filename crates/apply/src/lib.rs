//! `apply`: executes a reviewed plan against S3 — strided blocks of action
//! ids, deletes batched into DeleteObjects, copies and new delete markers in
//! parallel — recording every action's outcome, and what it changed in the
//! bucket, so that a killed run, rerun, finishes the plan without doing
//! anything twice, and a plan made afterwards sees the bucket as apply
//! left it.
//!
//! Worker i of N takes blocks i, i+N, i+2N, … of `block_size` ids (ids are
//! dense, so no COUNT or OFFSET is needed). A block is claimed (its actions
//! marked in flight, committed) before any call goes out; outcomes are
//! recorded as they come. Every write carries the strongest guard S3 takes
//! for it ([`Guards`]): a copy the condition the catalog knows the key by
//! (If-Match its newest ETag, If-None-Match where it has no current
//! object), on the copy or on the multipart completion; a new delete
//! marker If-Match the newest ETag. Where the endpoint does not honour a
//! kind of condition, or a write has none to give, the key is listed first
//! and compared exactly with what the catalog expects on top. A removal on
//! a key the plan also writes goes after that write.
//!
//! On a rerun, an action still in flight was perhaps executed: a delete is
//! simply sent again (deleting what is gone counts as done), while copies
//! and new delete markers are first judged from their keys' entries
//! (`judge`): attributed only on proof, else `uncertain`. A stopped run
//! (Ctrl-C) sends nothing more: the calls in flight finish and are
//! recorded, the rest of its claims go back to pending; `--settle` finds
//! out what became of the actions in flight without starting anything new.
//!
//! How hard it pushes (concurrency, throttling, retries) is s3io's call
//! policy; nothing here repeats a call.
//!
//! # Layout
//!
//! - this file: the run — workers, blocks, deletes, writes, archived sources.
//! - `judge`: the guard, and whether a call whose answer was lost happened.
//! - [`preflight`]: everything decided before the confirmation question.
//! - [`verify`]: afterwards, whether the bucket is where the plan meant it.

mod judge;
pub mod preflight;
pub mod verify;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use catalog::actions::ActionStoreThread;
use catalog::{
    ActionRow, ActionStore, CatalogError, Claim, Expectations, Expected, Follow, Outcome,
};
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt, TryStreamExt};
use model::limits::DELETE_BATCH;
use model::{ActionKind, Entry};
use s3io::{
    Condition, CopyRequest, DeleteTarget, ErrorKind, Journal, Look, S3Error, Seen, Write, Written,
    S3,
};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{0}\n  the run stopped; what was done is recorded: fix the cause and run apply again to resume")]
    S3(S3Error),
    #[error("stopped: the calls in flight finished and are recorded, the rest is pending again; run the same apply to go on, or `plan undo` to take back what was done")]
    Interrupted,
    /// A listing for `verify` failed after its retries.
    #[error("{0}\n  verify stopped (it changes nothing): fix the cause and run it again")]
    Verify(S3Error),
}

/// How a kind of write is guarded against changes made after the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// Each write carries its condition (If-Match / If-None-Match): no
    /// extra request.
    Conditions,
    /// The endpoint does not honour (or it is not known whether it
    /// honours) the condition: each key is listed first, as `--verify`
    /// does; why.
    Listing(String),
    /// Nothing of this kind to write.
    None,
}

impl Guard {
    /// The name in `--json` and the summary.
    pub fn as_str(&self) -> &'static str {
        match self {
            Guard::Conditions => "conditions",
            Guard::Listing(_) => "listing",
            Guard::None => "none",
        }
    }
}

/// The guard of each kind of write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guards {
    pub copies: Guard,
    pub markers: Guard,
}

impl Default for Guards {
    fn default() -> Self {
        Guards {
            copies: Guard::None,
            markers: Guard::None,
        }
    }
}

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Workers (each with a block of actions); requests in flight are the
    /// S3 client's concurrency.
    pub workers: usize,
    /// Action ids per block.
    pub block_size: i64,
    /// Check each key's newest entry before acting; leave keys changed
    /// since the scan (`drifted`).
    pub verify: bool,
    /// Try failed actions again.
    pub retry_failed: bool,
    /// Copies of sources larger than this go multipart.
    pub multipart_threshold: u64,
    /// Part size for multipart copies; `None`: S3-sized parts (512 MiB or more).
    pub part_size: Option<u64>,
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
    /// The catalog revision this run records what it changes under
    /// (`Catalog::begin_change`).
    pub revision: i64,
}

impl ApplyTarget {
    /// What applying (or verifying) plan `info`, made from `scan`, acts on;
    /// `revision`: the catalog revision a run records what it changes under.
    pub fn of(info: &catalog::plans::PlanInfo, scan: &catalog::ScanRecord, revision: i64) -> Self {
        ApplyTarget {
            plan_id: info.id,
            last_id: info.actions as i64,
            bucket: scan.location.bucket.clone(),
            into: plan::destination_of(info).map(|d| (d, scan.location.base_prefix.clone())),
            revision,
        }
    }

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
    pub uncertain: AtomicU64,
    /// Claimed, but not sent: the run was stopped.
    pub released: AtomicU64,
}

impl ApplyProgress {
    pub fn finished(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.skipped.load(Ordering::Relaxed)
            + self.drifted.load(Ordering::Relaxed)
            + self.restoring.load(Ordering::Relaxed)
            + self.uncertain.load(Ordering::Relaxed)
    }
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
    /// Writes whose outcome could not be decided (`plan resolve`).
    pub uncertain: u64,
    /// Claimed and not sent: the run was stopped.
    pub released: u64,
    pub guards: Guards,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub elapsed: Duration,
    /// The limit on requests in flight, and what held it (where it settled).
    pub limit: s3io::limit::Reading,
}

struct Context<'a> {
    s3: &'a S3,
    store: ActionStore,
    target: &'a ApplyTarget,
    /// What the preflight decided: guards, and how keys are taken.
    run: &'a preflight::Begun,
    options: &'a ApplyOptions,
    progress: &'a ApplyProgress,
    /// Set once the run is asked to stop: nothing more is sent.
    stopping: AtomicBool,
}

impl Context<'_> {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Whether a write of this row is looked at before it is sent: asked
    /// for (`--verify`), its kind's condition not honoured, or no
    /// condition to give.
    fn looks_first(&self, row: &ActionRow) -> bool {
        let guard = match row.kind {
            ActionKind::CopyVersion => &self.run.guards.copies,
            ActionKind::AddDeleteMarker => &self.run.guards.markers,
            // Elsewhere, the catalog does not know the destination's entries.
            _ => return self.options.verify && self.target.into.is_none(),
        };
        self.options.verify || *guard != Guard::Conditions || self.condition(row).is_none()
    }

    /// The condition a write is sent with, when its kind's are honoured.
    fn condition<'r>(&self, row: &'r ActionRow) -> Option<Condition<'r>> {
        match row.kind {
            ActionKind::CopyVersion if self.run.guards.copies == Guard::Conditions => {
                // Elsewhere, the copy lands only where nothing is.
                match (self.target.into.is_some(), row.condition.as_deref()) {
                    (true, _) | (false, Some("*")) => Some(Condition::IfNoneMatch),
                    (false, Some(tag)) => Some(Condition::IfMatch(tag)),
                    (false, None) => None,
                }
            }
            ActionKind::AddDeleteMarker if self.run.guards.markers == Guard::Conditions => {
                match row.condition.as_deref() {
                    Some("*") | None => None,
                    Some(tag) => Some(Condition::IfMatch(tag)),
                }
            }
            _ => None,
        }
    }

    /// What the plan expects on top of a key (see [`Expected`]). Where it
    /// acts elsewhere, the destination was not scanned: no entry.
    fn expected(&self, expectations: &Expectations, key_id: i64) -> Expected {
        match self.target.into {
            Some(_) => Expected {
                ids: Vec::new(),
                none_ok: true,
            },
            None => expectations.get(&key_id).cloned().unwrap_or_default(),
        }
    }
}

/// Applies the plan's unfinished actions, as the preflight and its
/// [`preflight::begin`] decided (`run`: there is no other way to get one,
/// so no caller skips the checks). `shutdown` resolving stops the
/// run: nothing more is sent, the calls in flight finish and are recorded,
/// and what was claimed but not sent is pending again.
pub async fn apply(
    s3: &S3,
    catalog_path: &std::path::Path,
    run: &preflight::Begun,
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
    let target = &run.target;
    let follow = Follow {
        revision: target.into.is_none().then_some(target.revision),
    };
    let (store, thread) = ActionStore::spawn(catalog_path, follow)?;
    let workers = options.workers.max(1);
    let cx = Context {
        s3,
        store,
        target,
        run,
        options,
        progress,
        stopping: AtomicBool::new(false),
    };
    let outcome = {
        let run = async {
            let deferred: Vec<Vec<ActionRow>> = futures::future::try_join_all(
                (0..workers as i64).map(|w| worker(&cx, w, workers as i64)),
            )
            .await?;
            // The removals that follow a write on their key, once every write is done.
            let deferred: Vec<ActionRow> = deferred.into_iter().flatten().collect();
            if !deferred.is_empty() {
                execute_checked(&cx, deferred, true).await?;
            }
            Ok::<_, ApplyError>(())
        };
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => r,
            _ = shutdown => {
                cx.stopping.store(true, Ordering::Relaxed);
                run.await.and(Err(ApplyError::Interrupted))
            }
        }
    };
    drop(cx);
    finish(thread).await?;
    outcome?;
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Ok(ApplySummary {
        done: count(&progress.done),
        failed: count(&progress.failed),
        skipped: count(&progress.skipped),
        drifted: count(&progress.drifted),
        restoring: count(&progress.restoring),
        uncertain: count(&progress.uncertain),
        released: count(&progress.released),
        guards: run.guards.clone(),
        requests: counters.requests() - requests,
        retries: counters.retries() - retries,
        throttled: counters.throttled() - throttled,
        elapsed: started.elapsed(),
        limit: s3.pacer().limit(),
    })
}

async fn finish(thread: ActionStoreThread) -> Result<(), ApplyError> {
    tokio::task::spawn_blocking(move || thread.finish())
        .await
        .map_err(|e| CatalogError::WriterGone(e.to_string()))??;
    Ok(())
}

/// Worker `index`'s blocks; returns the removals it deferred until every
/// write is done.
async fn worker(cx: &Context<'_>, index: i64, workers: i64) -> Result<Vec<ActionRow>, ApplyError> {
    let size = cx.options.block_size.max(1);
    let claim = match cx.run.settle {
        true => Claim::Settle,
        false => Claim::Run {
            retry_failed: cx.options.retry_failed,
            mixed: cx.run.mixed,
        },
    };
    let mut deferred = Vec::new();
    let mut block = index;
    loop {
        let first = block * size + 1;
        if first > cx.target.last_id || cx.stopping() {
            return Ok(deferred);
        }
        let rows = cx
            .store
            .claim(cx.target.plan_id, first, first + size - 1, claim)
            .await?;
        let (later, now): (Vec<ActionRow>, Vec<ActionRow>) = rows
            .into_iter()
            .partition(|r| r.after_writes && !cx.run.settle);
        deferred.extend(later);
        if !now.is_empty() {
            execute_checked(cx, now, false).await?;
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
                Outcome::Uncertain { .. } => &self.progress.uncertain,
                Outcome::Released => &self.progress.released,
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

/// Judges what must be judged before anything is sent (see [`check_keys`]),
/// then sends the rest: removals in DeleteObjects batches, writes one by
/// one. `all_looked`: every key is looked at first (deferred removals).
async fn execute_checked(
    cx: &Context<'_>,
    rows: Vec<ActionRow>,
    all_looked: bool,
) -> Result<(), ApplyError> {
    let checked = check_keys(cx, &rows, all_looked).await?;
    let mut decided = Vec::new();
    let mut deletes = Vec::new();
    let mut writes = Vec::new();
    for row in rows {
        if let Some(o) = checked.decisions.get(&row.id) {
            decided.push((row.id, o.clone()));
        } else if cx.run.settle || cx.stopping() {
            // Nothing new is sent.
            decided.push((row.id, Outcome::Released));
        } else if row.kind.is_removal() {
            deletes.push(row);
        } else {
            writes.push(row);
        }
    }
    cx.record(decided).await?;
    delete_in_rounds(cx, deletes).await?;
    let expectations = &checked.expectations;
    stream::iter(writes)
        .map(|row| async move {
            let outcome = match cx.stopping() {
                true => Outcome::Released,
                false => write_once(cx, &row, &cx.expected(expectations, row.key_id)).await?,
            };
            cx.record(vec![(row.id, outcome)]).await
        })
        .buffer_unordered(cx.s3.pacer().concurrency())
        .try_collect::<()>()
        .await
}

/// One action's part of a write made once: how the key's entries are
/// judged, and where its multipart upload is recorded.
struct RowJournal<'c, 'a> {
    cx: &'c Context<'a>,
    row: &'c ActionRow,
    expected: &'c Expected,
}

impl Journal for RowJournal<'_, '_> {
    fn judge<'s>(&'s self, look: Look<'s>) -> BoxFuture<'s, Result<Seen, S3Error>> {
        Box::pin(judge::judge_write(
            self.cx,
            self.row,
            self.expected,
            look.entries,
            look.upload_etag,
        ))
    }

    fn record_upload<'s>(
        &'s self,
        upload_id: &'s str,
        etag: Option<&'s str>,
    ) -> BoxFuture<'s, Result<(), String>> {
        Box::pin(async move {
            self.cx
                .store
                .record_upload(
                    self.cx.target.plan_id,
                    self.row.id,
                    upload_id.to_owned(),
                    etag.unwrap_or_default().to_owned(),
                )
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// A copy or a new delete marker, made once (see `s3io::S3::write_once`).
async fn write_once(
    cx: &Context<'_>,
    row: &ActionRow,
    expected: &Expected,
) -> Result<Outcome, ApplyError> {
    let size = row.size.unwrap_or(0).max(0) as u64;
    if row.kind == ActionKind::CopyVersion
        && model::bucket::is_archive_class(row.storage_class.as_deref().unwrap_or("STANDARD"))
    {
        // Boxed, as the restore below: rare, and their state would make
        // every write's future (moved as it is queued) four times bigger.
        if let Some(waiting) = Box::pin(restore_first(cx, row)).await? {
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
            condition: cx.condition(row),
        }),
        _ => Write::AddMarker {
            bucket,
            key: &key,
            if_match: match cx.condition(row) {
                Some(Condition::IfMatch(tag)) => Some(tag),
                _ => None,
            },
        },
    };
    let journal = RowJournal { cx, row, expected };
    match cx.s3.write_once(&write, &journal).await {
        Ok(Written::Done(landed)) => Ok(Outcome::Done {
            result_version_id: landed.version_id,
            matched_by: Some(landed.matched_by),
            etag: landed.etag,
        }),
        Ok(Written::Changed(found)) => Ok(Outcome::Drifted { found }),
        Ok(Written::Unknown { candidate, why }) => Ok(Outcome::Uncertain { candidate, why }),
        Err(e) if e.kind == ErrorKind::ConditionFailed => refused(cx, row, expected).await,
        // Archived although the scan did not say so (an Intelligent-Tiering
        // archive tier, or a transition since): restore it first.
        Err(e) if e.code.as_deref() == Some("InvalidObjectState") => {
            match Box::pin(restore(cx, row)).await? {
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

/// A write S3 refused as the key changed after the scan: what it holds now.
async fn refused(
    cx: &Context<'_>,
    row: &ActionRow,
    expected: &Expected,
) -> Result<Outcome, ApplyError> {
    let (bucket, key) = cx.target.place(&row.key);
    match cx.s3.newest_entry(bucket, &key).await {
        Ok(newest) => Ok(judge::drifted(newest.as_ref(), expected)),
        Err(e) if e.stops_the_run() => Err(ApplyError::S3(e)),
        Err(e) => Ok(Outcome::Drifted {
            found: format!(
                "S3 refused the write's condition: the key changed after the scan (what it holds now is not known: {})",
                e.code_and_message()
            ),
        }),
    }
}

/// One DeleteObjects request for up to 1,000 actions.
/// Removals, a key at a time as a unit: each round sends the newest
/// remaining removal of every key (batched up to 1,000 keys a request),
/// and a key whose removal S3 refuses (a legal hold or a retention placed
/// after `check`, a denied permission) is not taken further down: removing
/// what lies below would leave the key neither as it was nor as planned,
/// with versions gone for good.
async fn delete_in_rounds(cx: &Context<'_>, deletes: Vec<ActionRow>) -> Result<(), ApplyError> {
    let mut by_key: Vec<std::collections::VecDeque<ActionRow>> = Vec::new();
    let mut place: HashMap<i64, usize> = HashMap::new();
    for row in deletes {
        let at = *place.entry(row.key_id).or_insert_with(|| {
            by_key.push(Default::default());
            by_key.len() - 1
        });
        by_key[at].push_back(row);
    }
    for queue in &mut by_key {
        queue
            .make_contiguous()
            .sort_by_key(|r| (r.seq.unwrap_or(i64::MAX), r.id));
    }
    loop {
        let round: Vec<(usize, ActionRow)> = by_key
            .iter_mut()
            .enumerate()
            .filter_map(|(at, q)| q.pop_front().map(|r| (at, r)))
            .collect();
        if round.is_empty() {
            return Ok(());
        }
        let rows: Vec<ActionRow> = round.iter().map(|(_, r)| r.clone()).collect();
        for (chunk, places) in rows
            .chunks(DELETE_BATCH as usize)
            .zip(round.chunks(DELETE_BATCH as usize))
        {
            let mut outcomes = match cx.stopping() {
                true => chunk.iter().map(|r| (r.id, Outcome::Released)).collect(),
                false => delete_batch(cx, chunk).await?,
            };
            // The removals below a refused one are recorded with it, in one
            // commit: a rerun must never find them still in flight and send
            // them. Failed, not skipped: `--retry-failed` takes the key up
            // again from its top, in the same order.
            let mut below = Vec::new();
            for ((at, row), (_, outcome)) in places.iter().zip(&outcomes) {
                if cx.run.whole_keys && matches!(outcome, Outcome::Failed { .. }) {
                    let version = row.version_id.clone().unwrap_or_default();
                    below.extend(by_key[*at].drain(..).map(|r| {
                        let error = format!(
                            "NotSent: the version above ({version}) was refused, so the key is left as it is from there down (not reverted); --retry-failed takes it up again from the top"
                        );
                        (r.id, Outcome::Failed { error })
                    }));
                }
            }
            outcomes.extend(below);
            cx.record(outcomes).await?;
        }
    }
}

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
                    None => Outcome::done(None, None),
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
    /// What the plan expects on top of the block's keys.
    expectations: Expectations,
}

/// Decides the actions that must not simply be executed: writes that a
/// stopped or killed run left in flight or uncertain (judged from their
/// keys' entries: did they happen?), and the actions whose key is looked
/// at first (`--verify`, a write whose condition is not honoured or
/// cannot be given, a removal deferred after a write): left `drifted` when
/// the key is not as expected. With `--settle`, removals in flight too:
/// done if their version is gone.
async fn check_keys(
    cx: &Context<'_>,
    rows: &[ActionRow],
    all_looked: bool,
) -> Result<Checked, ApplyError> {
    let resumed = |r: &ActionRow| {
        (r.was_in_flight || r.uncertain.is_some()) && (!r.kind.is_removal() || cx.run.settle)
    };
    let looked = |r: &ActionRow| !resumed(r) && (all_looked || cx.looks_first(r));
    let mut key_ids: Vec<i64> = rows
        .iter()
        .filter(|r| !r.kind.is_removal() || looked(r) || resumed(r))
        .map(|r| r.key_id)
        .collect();
    key_ids.sort_unstable();
    key_ids.dedup();
    let expectations = match key_ids.is_empty() {
        true => Expectations::new(),
        false => cx.store.expectations(cx.target.plan_id, key_ids).await?,
    };
    let mut decisions = HashMap::new();

    // Looked at before sending: the newest entry, compared exactly.
    let mut keys: Vec<(&str, i64, i64)> = rows
        .iter()
        .filter(|r| looked(r))
        .map(|r| (r.key.as_str(), r.key_id, r.key_entries.unwrap_or(1)))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut newest: HashMap<i64, Result<Option<Entry>, S3Error>> = HashMap::new();
    for (run, found) in newest_of_runs(cx, &keys).await? {
        for ((_, key_id, _), n) in run.iter().zip(found) {
            newest.insert(*key_id, n);
        }
    }
    for row in rows.iter().filter(|r| looked(r)) {
        let expected = cx.expected(&expectations, row.key_id);
        let outcome = match &newest[&row.key_id] {
            Ok(n) => judge::guard(n.as_ref(), &expected),
            Err(e) => Some(outcome_of(e.clone())?),
        };
        if let Some(o) = outcome {
            decisions.insert(row.id, o);
        }
    }

    // Perhaps done: every entry of the key, judged.
    let resumed_rows: Vec<&ActionRow> = rows.iter().filter(|r| resumed(r)).collect();
    for row in &resumed_rows {
        if let Some((upload_id, _)) = &row.upload {
            // A completion still possible is made impossible first.
            let (bucket, key) = cx.target.place(&row.key);
            let aborted = async {
                if cx.s3.upload_in_progress(bucket, &key, upload_id).await? {
                    cx.s3.abort_upload(bucket, &key, upload_id).await?;
                }
                Ok::<_, S3Error>(())
            };
            if let Err(e) = aborted.await {
                decisions.insert(row.id, outcome_of(e)?);
            }
        }
    }
    let mut placed: Vec<(i64, std::borrow::Cow<'_, str>)> = resumed_rows
        .iter()
        .filter(|r| !decisions.contains_key(&r.id))
        .map(|r| (r.key_id, cx.target.place(&r.key).1))
        .collect();
    placed.sort_by(|a, b| a.1.cmp(&b.1));
    placed.dedup();
    let names: Vec<(i64, &str)> = placed.iter().map(|(id, k)| (*id, k.as_ref())).collect();
    let listed = match names.is_empty() {
        true => Vec::new(),
        false => match cx.s3.entries_of(cx.target.bucket(), &names).await {
            Ok(l) => l,
            Err(e) => {
                let outcome = outcome_of(e)?;
                for row in &resumed_rows {
                    decisions.entry(row.id).or_insert_with(|| outcome.clone());
                }
                Vec::new()
            }
        },
    };
    let entries: HashMap<i64, Vec<Entry>> = names.iter().map(|k| k.0).zip(listed).collect();
    for row in resumed_rows {
        let (Some(now), false) = (entries.get(&row.key_id), decisions.contains_key(&row.id)) else {
            continue;
        };
        let outcome = match row.kind.is_removal() {
            // Settling a removal: done if its version is gone.
            true => match now
                .iter()
                .any(|e| Some(&e.version_id) == row.version_id.as_ref())
            {
                true => Some(Outcome::Released),
                false => Some(Outcome::done(None, None)),
            },
            false => {
                let expected = cx.expected(&expectations, row.key_id);
                let seen = judge::judge_write(cx, row, &expected, now, None)
                    .await
                    .map_err(ApplyError::S3)?;
                judge::outcome_of_seen(row, seen)
            }
        };
        if let Some(o) = outcome {
            decisions.insert(row.id, o);
        }
    }
    Ok(Checked {
        decisions,
        expectations,
    })
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
