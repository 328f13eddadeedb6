//! `scan`: lists every object version and delete marker under an S3 location
//! into the catalog, one ListObjectVersions stream per prefix, many prefixes at
//! a time, resuming from each prefix's committed cursor after any interruption.

mod prefixes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalog::{Catalog, CatalogError, CursorState, EntryRow, Location, ScanPage, WriterStats};
use futures::stream::{self, StreamExt, TryStreamExt};
use rand::seq::SliceRandom;
use s3io::{ListedEntry, S3Error, S3};
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
    #[error("the server sent a truncated page of prefix {prefix:?} without a NextKeyMarker; cannot continue")]
    NoMarker { prefix: String },
    #[error("interrupted; what was listed is saved: run the same scan again to resume")]
    Interrupted,
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
    /// Page requests retried by our own loop (after the SDK's retries).
    pub page_retries: AtomicU64,
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
    let listing = stream::iter(pending.into_iter().map(|cursor| {
        list_prefix(
            s3,
            location,
            cursor,
            options.page_size,
            sender.clone(),
            progress,
        )
    }))
    .buffer_unordered(concurrency)
    .try_collect::<()>();
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

/// Prefixes in flight at or under which a prefix fetches its next page
/// while parsing the current one.
const OVERLAP_BELOW: u64 = 8;

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
    let full_prefix = format!("{}{}", location.base_prefix, cursor.prefix);
    let fetch = |key: Option<String>, version: Option<String>| {
        let (bucket, prefix) = (&location.bucket, &full_prefix);
        async move {
            fetch_page(
                s3,
                bucket,
                prefix,
                key.as_deref(),
                version.as_deref(),
                page_size,
                progress,
            )
            .await
        }
    };
    // The last key of a page may continue on the next one. Its entries wait
    // for the rest, so that every key's entries are appended to the catalog
    // together (an entry added to a key written earlier would land in the
    // middle of the b-tree and leave half-empty pages behind). The cursor
    // committed meanwhile points before the waiting key, so a resumed scan
    // lists it again.
    let mut carried: Vec<EntryRow> = Vec::new();
    let mut markers = (cursor.next_key_marker, cursor.next_version_id_marker);
    let mut raw = fetch(markers.0.clone(), markers.1.clone()).await?;
    // A page that fails to parse (cut short on the way) is fetched again.
    let parse_or_refetch = |raw: s3io::RawListPage, markers: (Option<String>, Option<String>)| async move {
        let mut raw = raw;
        let mut attempts = 0;
        loop {
            match raw.parse() {
                Ok(page) => return Ok::<_, ScanError>(page),
                Err(e) if s3io::retry::should_retry(&e, attempts) => {
                    attempts += 1;
                    progress.page_retries.fetch_add(1, Ordering::Relaxed);
                    raw = fetch(markers.0.clone(), markers.1.clone()).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    loop {
        // With few prefixes left in flight, ask for the next page as soon as
        // this one's markers are known, and parse this one (on a blocking
        // thread) while it travels. With many, they overlap each other
        // already, and a second page per prefix would only cost memory.
        let overlap = progress.listing.load(Ordering::Relaxed) <= OVERLAP_BELOW;
        let overlapped = match overlap.then(|| raw.header()).flatten() {
            Some(header) if header.is_truncated => {
                let next_at = next_markers(&header, &full_prefix)?;
                // Parsed on another thread, so that this task keeps
                // receiving the next page meanwhile.
                let parse = {
                    let raw = raw.clone();
                    tokio::task::spawn_blocking(move || raw.parse())
                };
                let (next, parsed) =
                    tokio::join!(fetch(next_at.0.clone(), next_at.1.clone()), parse);
                match parsed {
                    Ok(Ok(page)) => {
                        markers = next_at;
                        Some((page, Some(next)))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let (page, next) = match overlapped {
            Some(both) => both,
            None => {
                // Parsed here (fetched again if it arrived cut short): its
                // end decides where the next page starts.
                let page = parse_or_refetch(raw, markers.clone()).await?;
                let next = match page.is_truncated {
                    true => {
                        markers = next_markers(&page, &full_prefix)?;
                        Some(fetch(markers.0.clone(), markers.1.clone()).await)
                    }
                    false => None,
                };
                (page, next)
            }
        };
        let done = !page.is_truncated;
        // Converted in place (the two row types have the same layout), so a
        // page's rows are never held twice.
        let mut entries: Vec<EntryRow> = page.entries.into_iter().map(into_row).collect();
        if !carried.is_empty() {
            carried.append(&mut entries);
            entries = std::mem::take(&mut carried);
        }
        let (mut next_key, mut next_version) = (page.next_key_marker, page.next_version_id_marker);
        if !done {
            let first_of_last = entries
                .last()
                .and_then(|last| entries.iter().rposition(|e| e.key != last.key))
                .map_or(0, |i| i + 1);
            if first_of_last > 0 && entries.len() - first_of_last <= MAX_CARRIED {
                carried = entries.split_off(first_of_last);
                let written = entries.last().expect("first_of_last > 0");
                next_key = Some(written.key.clone());
                next_version = Some(written.version_id.clone());
            }
        }
        let scan_page = ScanPage {
            prefix: cursor.prefix.clone(),
            entries,
            next_key_marker: next_key,
            next_version_id_marker: next_version,
            done,
        };
        sender
            .send(scan_page)
            .await
            .map_err(|_| CatalogError::WriterGone("it stopped accepting pages".into()))?;
        match next {
            None => return Ok(()),
            Some(next) => raw = next?,
        }
    }
}

/// Where the page after `page` starts.
fn next_markers(
    page: &s3io::ListPage,
    prefix: &str,
) -> Result<(Option<String>, Option<String>), ScanError> {
    match &page.next_key_marker {
        Some(key) => Ok((Some(key.clone()), page.next_version_id_marker.clone())),
        None => Err(ScanError::NoMarker {
            prefix: prefix.to_owned(),
        }),
    }
}

async fn fetch_page(
    s3: &S3,
    bucket: &str,
    prefix: &str,
    key_marker: Option<&str>,
    version_id_marker: Option<&str>,
    page_size: i32,
    progress: &ScanProgress,
) -> Result<s3io::RawListPage, S3Error> {
    s3io::retry::retrying(
        || s3.list_versions_raw(bucket, prefix, key_marker, version_id_marker, page_size),
        |_| {
            progress.page_retries.fetch_add(1, Ordering::Relaxed);
        },
    )
    .await
}

fn into_row(e: ListedEntry) -> EntryRow {
    EntryRow {
        key: e.key,
        version_id: e.version_id,
        is_marker: e.is_marker,
        is_latest: e.is_latest,
        mtime: e.mtime,
        size: e.size,
        etag: e.etag,
        storage_class: e.storage_class,
    }
}
