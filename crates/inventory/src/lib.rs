//! `scan`: lists every object version and delete marker under an S3 location
//! into the catalog — as key ranges listed at the same time, cut further
//! wherever a request slot would otherwise stay idle — resuming from each
//! range's committed cursor after any interruption; and [`split`], which
//! cuts a location into parts for scanning on many machines.
//!
//! # Layout
//!
//! - `prefixes`: the prefixes a scan lists, read from a file, merged, checked for overlap.
//! - `ranges`: the ranges listed `--concurrency` at a time, and cut.
//! - `bounds`: where a bucket's keys are, with few requests (one-entry listings, hierarchy, bounds).
//! - `keyspace`: keys read as numbers, to cut ranges in proportion.
//! - `split`: a location cut into parts of about as many keys, from an estimate of its keys.
//! - [`report`]: the catalog built from an S3 Inventory report (`--inventory`),
//!   its keys whose versions tie on time listed for S3's order.
//! - [`rescan`]: a plan's keys listed again into a finished scan (`--keys-of`).
//! - this file: [`scan`], and what a run reports.

mod bounds;
mod keyspace;
mod prefixes;
mod ranges;
pub mod report;
pub mod rescan;
mod split;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalog::{Bounds, Catalog, CatalogError, WriterStats};
use model::Location;
use s3io::{S3Error, S3};

pub use prefixes::{merge_prefixes, read_prefixes_file, PrefixError};
pub use split::{split, Split};

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
    #[error(
        "this catalog holds part {catalog} of the location, not part {requested}\n  hint: each part of a split location scans into a catalog of its own (--catalog)"
    )]
    OtherShard { catalog: String, requested: String },
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Prefixes whose listing failed while the others went on.
    #[error("{}", prefix_failures(.0))]
    Prefixes(Vec<(String, S3Error)>),
    #[error("interrupted; what was listed is saved: run the same scan again to resume")]
    Interrupted,
    /// Listing the keys of a report whose versions tie on time failed:
    /// the ingest waits for them (`report::ingest`).
    #[error("{keys} keys of the inventory report have versions written in the same second, whose order only a listing can tell, and listing them failed: {source}\n  hint: run the same scan again once S3 answers (the endpoint, credentials, s3:ListBucketVersions on the bucket): the report's files are in, only these keys are listed")]
    Ties { keys: u64, source: S3Error },
    /// An inventory report that cannot be read (`scan --inventory`).
    #[error("{0}\n  nothing of the unfinished files was kept: fix the cause and run the same scan again to resume")]
    Inventory(#[from] s3inventory::InventoryError),
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
    /// ListObjectVersions requests in flight: key ranges listed at once.
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
    /// Ranges in the catalog, and those done, when this run started.
    pub ranges_before: AtomicU64,
    pub ranges_done_before: AtomicU64,
    /// Rows already in the catalog when this run started.
    pub rows_before: AtomicU64,
    pub delete_markers_before: AtomicU64,
    /// Requests spent finding where to cut ranges (and on cuts that found
    /// nothing).
    pub cut_requests: AtomicU64,
    /// Every page is in; the catalog is being compacted.
    pub compacting: std::sync::atomic::AtomicBool,
    writer: std::sync::OnceLock<Arc<WriterStats>>,
    tracks: Mutex<Vec<Arc<ranges::Track>>>,
}

/// Where a scan stands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Standing {
    /// Rows and delete markers committed, this run and before.
    pub rows: u64,
    pub delete_markers: u64,
    pub ranges: u64,
    pub ranges_done: u64,
    /// Ranges being listed right now.
    pub ranges_listing: u64,
    /// Estimated share of the key space listed, 0 to 1.
    pub covered: f64,
}

impl ScanProgress {
    fn follow(&self, tracks: impl IntoIterator<Item = Arc<ranges::Track>>) {
        self.tracks.lock().expect("not poisoned").extend(tracks);
    }

    /// Where the scan stands now.
    pub fn standing(&self) -> Standing {
        let (rows, markers, done) = self.writer.get().map_or((0, 0, 0), |w| {
            (
                w.rows.load(Ordering::Relaxed),
                w.delete_markers.load(Ordering::Relaxed),
                w.ranges_done.load(Ordering::Relaxed),
            )
        });
        let tracks = self.tracks.lock().expect("not poisoned");
        let ranges_done_before = self.ranges_done_before.load(Ordering::Relaxed);
        let before = self.ranges_before.load(Ordering::Relaxed);
        let new = tracks.len() as u64;
        // Ranges done before this run count as covered; this run's tracks
        // say how far theirs got.
        let (mut covered, mut share) = (0.0, 0.0);
        for t in tracks.iter() {
            covered += t.share() * t.covered();
            share += t.share();
        }
        let listing = tracks.iter().filter(|t| t.listing()).count() as u64;
        let total_share = share + ranges_done_before as f64 / before.max(1) as f64;
        Standing {
            rows: rows + self.rows_before.load(Ordering::Relaxed),
            delete_markers: markers + self.delete_markers_before.load(Ordering::Relaxed),
            ranges: ranges_done_before + new,
            ranges_done: ranges_done_before + done,
            ranges_listing: listing,
            covered: match total_share > 0.0 {
                true => ((covered + total_share - share) / total_share).clamp(0.0, 1.0),
                false => 0.0,
            },
        }
    }

    /// Rows a whole share of the key space seems to hold, from this run's
    /// listing so far; `None` before it has covered enough to tell.
    fn rows_per_share(&self) -> Option<f64> {
        let tracks = self.tracks.lock().expect("not poisoned");
        let covered: f64 = tracks.iter().map(|t| t.share() * t.covered()).sum();
        let rows = self.rows_this_run() as f64;
        (covered > 0.001 && rows > 0.0).then(|| rows / covered)
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
    /// Key ranges listed by this run, and requests it spent finding where to cut.
    pub ranges: u64,
    pub cut_requests: u64,
}

/// Refuses to mix two locations, or two parts of one, in one catalog.
pub fn check_location(
    catalog: &Catalog,
    requested: &Location,
    shard: Option<&str>,
) -> Result<(), ScanError> {
    match catalog.scan_record()? {
        Some(record) if record.location != *requested => Err(ScanError::OtherLocation {
            catalog: Box::new(record.location),
            requested: Box::new(requested.clone()),
        }),
        Some(record) if record.shard.as_deref() != shard => Err(ScanError::OtherShard {
            catalog: record.shard.unwrap_or_else(|| "all of it".into()),
            requested: shard.unwrap_or("all of it").to_owned(),
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
        Some(c) => c.prefixes()?,
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
    /// One part of the location (`I/N`), and its bounds.
    pub shard: Option<(String, Bounds)>,
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
        target.shard.as_ref().map(|(s, b)| (s.as_str(), b)),
    )?;
    let ranges = catalog.ranges()?;
    let totals = catalog.scan_totals()?;
    let store = |a: &AtomicU64, v: i64| a.store(v as u64, Ordering::Relaxed);
    store(&progress.ranges_before, totals.ranges);
    store(&progress.ranges_done_before, totals.ranges_done);
    store(&progress.rows_before, totals.rows);
    store(&progress.delete_markers_before, totals.delete_markers);

    let concurrency = options.concurrency.max(1);
    // Enough queued pages to keep the writer busy, few enough to keep
    // memory flat however many ranges are in flight.
    let writer = catalog::ScanWriter::spawn(catalog.path(), concurrency.clamp(2, 16))?;
    let _ = progress.writer.set(writer.stats());
    let handle = writer.handle();
    let listing = ranges::list_ranges(
        s3,
        &location.bucket,
        &location.base_prefix,
        ranges,
        options,
        &handle,
        progress,
    );
    let outcome = tokio::select! {
        r = listing => r,
        _ = shutdown => Err(ScanError::Interrupted),
    };
    drop(handle);
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
    let standing = progress.standing();
    Ok(ScanSummary {
        rows: progress.rows_this_run(),
        delete_markers: standing.delete_markers
            - progress.delete_markers_before.load(Ordering::Relaxed),
        pages: progress.pages_this_run(),
        requests: s3.counters().requests() - requests_before,
        retries: s3.counters().retries() - retries_before,
        elapsed: started.elapsed(),
        finished,
        compaction,
        ranges: progress.tracks.lock().expect("not poisoned").len() as u64,
        cut_requests: progress.cut_requests.load(Ordering::Relaxed),
    })
}
