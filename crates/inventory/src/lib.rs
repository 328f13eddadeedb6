//! `scan`: lists every object version and delete marker under an S3 location
//! into the catalog, one ListObjectVersions chain per prefix, many prefixes at
//! a time, resuming from each prefix's committed cursor after any interruption.
//!
//! # Layout
//!
//! - `prefixes`: the prefixes a scan lists, read from a file, merged, checked for overlap.
//! - this file: [`scan`], one task per prefix feeding the catalog's writer.

mod prefixes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalog::{Catalog, CatalogError, CursorState, ScanPage, WriterStats};
use futures::stream::{self, StreamExt};
use model::{Entry, Location};
use rand::seq::SliceRandom;
use s3io::{ListPage, ListRequest, S3Error, S3};
use tokio::sync::mpsc;

pub use prefixes::{merge_prefixes, read_prefixes_file, PrefixError};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    #[error(
        "this catalog holds a scan of {catalog}, not {requested}\n  hint: use another --catalog, or `scan --fresh` to replace it"
    )]
    OtherLocation {
        catalog: Box<Location>,
        requested: Box<Location>,
    },
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Prefixes whose listing failed while the others went on.
    #[error("{}", prefix_failures(.0))]
    Prefixes(Vec<(String, S3Error)>),
    #[error("interrupted; what was listed is saved: run the same scan again to resume")]
    Interrupted,
}

fn prefix_failures(failed: &[(String, S3Error)]) -> String {
    let mut text = format!(
        "the listing of {} prefix{} stopped; every other prefix was listed and saved:",
        failed.len(),
        if failed.len() == 1 { "" } else { "es" }
    );
    for (prefix, e) in failed {
        text.push_str(&format!("\n  prefix {prefix:?}: {e}"));
    }
    text.push_str("\n  hint: once the cause is fixed, run the same scan again: it resumes these prefixes where they stopped");
    text
}

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Prefixes listed at once.
    pub concurrency: usize,
    /// MaxKeys per ListObjectVersions request (S3 caps it at 1000).
    pub page_size: i32,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            concurrency: 32,
            page_size: 1000,
        }
    }
}

/// Live counters of a running scan, for progress display.
#[derive(Debug, Default)]
pub struct ScanProgress {
    pub prefixes_total: AtomicU64,
    /// Prefixes being listed right now.
    pub listing: AtomicU64,
    /// Rows and prefixes already in the catalog when this run started.
    pub rows_before: AtomicU64,
    pub delete_markers_before: AtomicU64,
    pub prefixes_done_before: AtomicU64,
    /// Every page is in; the catalog is being compacted.
    pub compacting: std::sync::atomic::AtomicBool,
    writer: std::sync::OnceLock<Arc<WriterStats>>,
}

impl ScanProgress {
    /// (rows, delete markers, prefixes done) committed so far, this run and before.
    pub fn committed(&self) -> (u64, u64, u64) {
        let (rows, markers, done) = self.writer.get().map_or((0, 0, 0), |w| {
            (
                w.rows.load(Ordering::Relaxed),
                w.delete_markers.load(Ordering::Relaxed),
                w.prefixes_done.load(Ordering::Relaxed),
            )
        });
        (
            rows + self.rows_before.load(Ordering::Relaxed),
            markers + self.delete_markers_before.load(Ordering::Relaxed),
            done + self.prefixes_done_before.load(Ordering::Relaxed),
        )
    }

    /// Rows committed by this run only.
    pub fn rows_this_run(&self) -> u64 {
        self.writer
            .get()
            .map_or(0, |w| w.rows.load(Ordering::Relaxed))
    }

    pub fn pages_this_run(&self) -> u64 {
        self.writer
            .get()
            .map_or(0, |w| w.pages.load(Ordering::Relaxed))
    }
}

/// What a finished (or interrupted) run did.
#[derive(Debug, Clone)]
pub struct ScanSummary {
    pub rows: u64,
    pub delete_markers: u64,
    pub pages: u64,
    pub requests: u64,
    pub retries: u64,
    pub elapsed: Duration,
    /// Every prefix of the catalog is done.
    pub finished: bool,
    /// How long packing the finished catalog took (part of `elapsed`).
    pub compaction: Option<Duration>,
}

/// Refuses to mix two locations in one catalog.
pub fn check_location(catalog: &Catalog, requested: &Location) -> Result<(), ScanError> {
    match catalog.scan_record()? {
        Some(record) if record.location != *requested => Err(ScanError::OtherLocation {
            catalog: Box::new(record.location),
            requested: Box::new(requested.clone()),
        }),
        _ => Ok(()),
    }
}

/// The prefixes a run will cover: the catalog's cursors plus `requested`
/// (relative to the base). With neither, the whole base. Checks overlaps.
pub fn plan_prefixes(
    catalog: Option<&Catalog>,
    requested: &[String],
) -> Result<Vec<String>, ScanError> {
    let stored: Vec<String> = match catalog {
        Some(c) => c.cursors()?.into_iter().map(|c| c.prefix).collect(),
        None => Vec::new(),
    };
    if stored.is_empty() && requested.is_empty() {
        return Ok(vec![String::new()]);
    }
    Ok(merge_prefixes(&stored, requested)?)
}

/// What one run scans.
#[derive(Debug, Clone)]
pub struct ScanTarget {
    pub location: Location,
    /// As GetBucketVersioning said (recorded in the catalog).
    pub versioning: String,
    /// From [`plan_prefixes`].
    pub prefixes: Vec<String>,
}

/// Runs (or resumes) a scan. `shutdown` resolving stops the run, keeping
/// what was committed.
pub async fn scan(
    s3: &S3,
    catalog: &mut Catalog,
    target: &ScanTarget,
    options: &ScanOptions,
    progress: &ScanProgress,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<ScanSummary, ScanError> {
    let started = Instant::now();
    let requests_before = s3.counters().requests();
    let retries_before = s3.counters().retries();
    let location = &target.location;
    catalog.begin_scan(
        location,
        Some(s3.region()),
        &target.versioning,
        &target.prefixes,
    )?;
    let cursors = catalog.cursors()?;
    let totals = catalog.scan_totals()?;
    progress
        .prefixes_total
        .store(totals.prefixes as u64, Ordering::Relaxed);
    progress
        .rows_before
        .store(totals.rows as u64, Ordering::Relaxed);
    progress
        .delete_markers_before
        .store(totals.delete_markers as u64, Ordering::Relaxed);
    progress
        .prefixes_done_before
        .store(totals.prefixes_done as u64, Ordering::Relaxed);

    let mut pending: Vec<CursorState> = cursors.into_iter().filter(|c| !c.done).collect();
    // Shuffled so that neighbouring (often equally hot) prefixes of S3's
    // partitions are not all hit at once.
    pending.shuffle(&mut rand::rng());

    let concurrency = options.concurrency.max(1);
    // Enough queued pages to keep the writer busy, few enough to keep
    // memory flat however many prefixes are in flight.
    let writer = catalog::ScanWriter::spawn(catalog.path(), concurrency.clamp(2, 16))?;
    let _ = progress.writer.set(writer.stats());
    let sender = writer.sender();
    let listing = list_all(s3, location, pending, options, &sender, progress);
    let outcome = tokio::select! {
        r = listing => r,
        _ = shutdown => Err(ScanError::Interrupted),
    };
    drop(sender);
    // Commit whatever the listing tasks handed over, even after an error.
    let written = tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(|e| CatalogError::WriterGone(e.to_string()))?;
    match (outcome, written) {
        (Err(ScanError::Catalog(CatalogError::WriterGone(_))), Err(e)) => return Err(e.into()),
        (Err(e), _) => return Err(e),
        (Ok(()), Err(e)) => return Err(e.into()),
        (Ok(()), Ok(())) => {}
    }
    let finished = catalog.finish_scan()?;
    let mut compaction = None;
    if finished {
        progress.compacting.store(true, Ordering::Relaxed);
        let started = Instant::now();
        catalog.compact()?;
        compaction = Some(started.elapsed());
    }
    let (_, markers, _) = progress.committed();
    Ok(ScanSummary {
        rows: progress.rows_this_run(),
        delete_markers: markers - progress.delete_markers_before.load(Ordering::Relaxed),
        pages: progress.pages_this_run(),
        requests: s3.counters().requests() - requests_before,
        retries: s3.counters().retries() - retries_before,
        elapsed: started.elapsed(),
        finished,
        compaction,
    })
}

/// Lists every pending prefix, `concurrency` at a time. A prefix whose
/// listing fails stops alone; an error no other call could escape (the
/// bucket, the credentials, the catalog) stops them all.
async fn list_all(
    s3: &S3,
    location: &Location,
    pending: Vec<CursorState>,
    options: &ScanOptions,
    sender: &mpsc::Sender<ScanPage>,
    progress: &ScanProgress,
) -> Result<(), ScanError> {
    let mut listings = stream::iter(pending.into_iter().map(|cursor| async move {
        let prefix = cursor.prefix.clone();
        let result = list_prefix(
            s3,
            location,
            cursor,
            options.page_size,
            sender.clone(),
            progress,
        )
        .await;
        (prefix, result)
    }))
    .buffer_unordered(options.concurrency.max(1));
    let mut failed = Vec::new();
    while let Some((prefix, result)) = listings.next().await {
        match result {
            Ok(()) => {}
            Err(ScanError::S3(e)) if !e.stops_the_run() => failed.push((prefix, e)),
            Err(e) => return Err(e),
        }
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(ScanError::Prefixes(failed)),
    }
}

/// A key's entries held back from one page to be written with the next
/// page's, at most this many (a key with more versions is written in parts).
const MAX_CARRIED: usize = 10_000;

/// Counts a prefix as being listed for as long as it lives (also when the
/// listing is cancelled).
struct Listing<'a>(&'a AtomicU64);

impl<'a> Listing<'a> {
    fn enter(counter: &'a AtomicU64) -> Listing<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Listing(counter)
    }
}

impl Drop for Listing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn list_prefix(
    s3: &S3,
    location: &Location,
    cursor: CursorState,
    page_size: i32,
    sender: mpsc::Sender<ScanPage>,
    progress: &ScanProgress,
) -> Result<(), ScanError> {
    let _listing = Listing::enter(&progress.listing);
    let start = ListRequest {
        prefix: format!("{}{}", location.base_prefix, cursor.prefix),
        key_marker: cursor.next_key_marker,
        version_id_marker: cursor.next_version_id_marker,
    };
    let mut pager = s3.pager(&location.bucket, start, page_size);
    let mut held = HeldBack::default();
    while let Some(page) = pager.next_page().await? {
        sender
            .send(held.scan_page(&cursor.prefix, page))
            .await
            .map_err(|_| CatalogError::WriterGone("it stopped accepting pages".into()))?;
    }
    Ok(())
}

/// The last key of a page may continue on the next one. Its entries wait
/// for the rest, so that every key's entries are appended to the catalog
/// together (an entry added to a key written earlier would land in the
/// middle of the b-tree and leave half-empty pages behind). The cursor
/// committed meanwhile points before the waiting key, so a resumed scan
/// lists it again.
#[derive(Default)]
struct HeldBack(Vec<Entry>);

impl HeldBack {
    /// The catalog's page for a listing page of `prefix`.
    fn scan_page(&mut self, prefix: &str, page: ListPage) -> ScanPage {
        let done = !page.is_truncated;
        let mut entries = page.entries;
        if !self.0.is_empty() {
            self.0.append(&mut entries);
            entries = std::mem::take(&mut self.0);
        }
        let (mut next_key, mut next_version) = (page.next_key_marker, page.next_version_id_marker);
        if !done {
            let first_of_last = entries
                .last()
                .and_then(|last| entries.iter().rposition(|e| e.key != last.key))
                .map_or(0, |i| i + 1);
            if first_of_last > 0 && entries.len() - first_of_last <= MAX_CARRIED {
                self.0 = entries.split_off(first_of_last);
                let written = entries.last().expect("first_of_last > 0");
                next_key = Some(written.key.clone());
                next_version = Some(written.version_id.clone());
            }
        }
        ScanPage {
            prefix: prefix.to_owned(),
            entries,
            next_key_marker: next_key,
            next_version_id_marker: next_version,
            done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, version: &str) -> Entry {
        Entry {
            key: key.into(),
            version_id: version.into(),
            is_marker: false,
            is_latest: false,
            mtime: 0,
            size: Some(1),
            etag: None,
            storage_class: None,
        }
    }

    fn page(entries: &[(&str, &str)], truncated: bool) -> ListPage {
        ListPage {
            entries: entries.iter().map(|(k, v)| entry(k, v)).collect(),
            is_truncated: truncated,
            next_key_marker: truncated.then(|| entries.last().unwrap().0.to_owned()),
            next_version_id_marker: truncated.then(|| entries.last().unwrap().1.to_owned()),
            url_encoded: true,
        }
    }

    #[test]
    fn a_key_that_may_continue_waits_for_the_next_page() {
        let mut held = HeldBack::default();
        let first = held.scan_page("p/", page(&[("a", "1"), ("b", "2"), ("b", "1")], true));
        let keys: Vec<_> = first.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a"]);
        // The cursor points after what was written, so a resume lists b again.
        assert_eq!(
            (
                first.next_key_marker.as_deref(),
                first.next_version_id_marker.as_deref()
            ),
            (Some("a"), Some("1"))
        );
        let second = held.scan_page("p/", page(&[("b", "0"), ("c", "1")], false));
        let rows: Vec<_> = second
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.version_id.as_str()))
            .collect();
        assert_eq!(rows, [("b", "2"), ("b", "1"), ("b", "0"), ("c", "1")]);
        assert!(second.done);
        // A page of one key only cannot wait: written in parts.
        let mut held = HeldBack::default();
        assert_eq!(
            held.scan_page("", page(&[("a", "2"), ("a", "1")], true))
                .entries
                .len(),
            2
        );
    }
}
