//! `scan --inventory MANIFEST`: the catalog built from an S3 Inventory
//! report instead of a listing — local, or downloaded from its destination
//! bucket — its files read in parallel and written a file at a time, so a
//! killed ingest resumes at the first unfinished file.
//!
//! What a report cannot say is not guessed. It gives LastModifiedDate to the
//! second and no order within a second, so the keys whose versions tie are
//! listed again with ListObjectVersions once the files are in (a few
//! requests, counted in the summary) and the ingest ends only when they
//! are; a report without LastModifiedDate is refused, and one without Size
//! or ETag unless the person allows it (`--allow-missing`), which the
//! catalog then records.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use catalog::Catalog;
use model::Location;
use s3inventory::{DataFile, InventoryError, Manifest, Rows};

pub use s3inventory::Field;
use s3io::S3;

use crate::ScanError;

/// Where the report is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportAt {
    /// A local `manifest.json`; the data files are found under a directory
    /// above it, laid out as in the destination bucket.
    Local(PathBuf),
    /// `s3://bucket/key/manifest.json`.
    S3 { bucket: String, key: String },
}

impl ReportAt {
    pub fn parse(text: &str) -> ReportAt {
        match model::Destination::parse(text) {
            Ok(d) if text.starts_with("s3://") => ReportAt::S3 {
                bucket: d.bucket,
                key: d.prefix,
            },
            _ => ReportAt::Local(PathBuf::from(text)),
        }
    }
}

impl std::fmt::Display for ReportAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportAt::Local(p) => write!(f, "{}", p.display()),
            ReportAt::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// Live counters, for progress.
#[derive(Debug, Default)]
pub struct IngestProgress {
    pub files_done: AtomicU64,
    pub files: AtomicU64,
    pub rows: AtomicU64,
}

/// What an ingest did.
#[derive(Debug, Clone)]
pub struct IngestSummary {
    pub manifest: String,
    /// The report's creation time (Unix seconds).
    pub created: i64,
    pub files: u64,
    /// Files read by this run (the others were read by an earlier one).
    pub files_read: u64,
    /// Rows this run read, and kept (under the base and prefixes).
    pub rows_read: u64,
    pub versions: i64,
    pub delete_markers: i64,
    /// The report was out of key order: its rows were staged and sorted
    /// (and the catalog compacted after).
    pub sorted: bool,
    /// Keys whose versions tied on time in the report, listed again for
    /// S3's order, and the requests that took (this run).
    pub tied_keys: u64,
    pub tie_requests: u64,
    /// Fields the report lacked, allowed by `--allow-missing`.
    pub missing: Vec<Field>,
    pub elapsed: Duration,
    pub compaction: Duration,
}

/// A report's manifest, fetched if it is in S3, parsed and checked
/// against the location (its source bucket is `location.bucket`) and
/// against what plans need: a field it lacks must be in `allow_missing`.
pub async fn manifest_of(
    s3: &S3,
    at: &ReportAt,
    location: &Location,
    work: &Path,
    allow_missing: &[Field],
) -> Result<Manifest, ScanError> {
    let path = match at {
        ReportAt::Local(p) => p.clone(),
        ReportAt::S3 { bucket, key } => {
            let local = work.join("manifest.json");
            s3.download(bucket, key, &local).await?;
            local
        }
    };
    let shown = at.to_string();
    let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
    let manifest = Manifest::parse(&bytes, &shown)?;
    if manifest.source_bucket != location.bucket {
        return Err(InventoryError::OtherBucket {
            path: shown,
            found: manifest.source_bucket,
            expected: location.bucket.clone(),
        }
        .into());
    }
    if let Some(field) = manifest
        .missing()
        .into_iter()
        .find(|f| !allow_missing.contains(f))
    {
        return Err(InventoryError::MissingField { path: shown, field }.into());
    }
    Ok(manifest)
}

fn io_error(path: &Path, e: std::io::Error) -> ScanError {
    InventoryError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
    .into()
}

/// Where a local report's data file is: under the first directory above
/// the manifest that holds the file's key.
fn local_file(manifest: &Path, file: &DataFile) -> Result<PathBuf, ScanError> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    dir.ancestors()
        .map(|a| a.join(&file.key))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            InventoryError::Io {
                path: file.key.clone(),
                reason: format!(
                    "a data file of the report is missing: looked for it under every directory above {}\n  hint: copy the report's whole directory from the destination bucket, keeping its layout",
                    dir.display()
                ),
            }
            .into()
        })
}

/// What an ingest reads, and where it puts what it downloads.
#[derive(Debug, Clone, Copy)]
pub struct ReportScan<'a> {
    /// The catalog's location; only rows under its base and `prefixes`
    /// (relative to it) are kept.
    pub location: &'a Location,
    pub prefixes: &'a [String],
    pub at: &'a ReportAt,
    pub manifest: &'a Manifest,
    /// A private directory for downloaded files.
    pub work: &'a Path,
}

/// Builds the catalog's entries from the report.
pub async fn ingest(
    s3: &S3,
    catalog: &mut Catalog,
    scan: ReportScan<'_>,
    progress: &IngestProgress,
) -> Result<IngestSummary, ScanError> {
    let ReportScan {
        location,
        prefixes,
        at,
        manifest,
        work,
    } = scan;
    let started = Instant::now();
    let files: Vec<(String, String)> = manifest
        .files
        .iter()
        .map(|f| (f.key.clone(), f.md5.clone()))
        .collect();
    let start = catalog.begin_inventory(&files)?;
    // A report lists versions: the bucket is versioned (or was).
    catalog.begin_scan(location, None, "Enabled", prefixes, None)?;
    progress.files.store(files.len() as u64, Ordering::Relaxed);
    let todo: Vec<usize> = (0..files.len()).filter(|i| !start.done[*i]).collect();
    progress
        .files_done
        .store((files.len() - todo.len()) as u64, Ordering::Relaxed);
    let mut paths = local_paths(s3, at, manifest, work, &todo).await?;

    let wanted: Vec<String> = prefixes
        .iter()
        .map(|p| format!("{}{p}", location.base_prefix))
        .collect();
    let keep = |key: &str| wanted.iter().any(|p| key.starts_with(p.as_str()));
    let (files_read, rows_read) = match read_files(catalog, scan, &paths, &keep, progress)? {
        Some(rows) => (todo.len(), rows),
        None => {
            tracing::info!(
                "the report is out of key order: every file is read again, staged and sorted"
            );
            let others: Vec<usize> = (0..files.len()).filter(|i| start.done[*i]).collect();
            paths.extend(local_paths(s3, at, manifest, work, &others).await?);
            paths.sort();
            progress.files_done.store(0, Ordering::Relaxed);
            progress.rows.store(0, Ordering::Relaxed);
            let rows = read_files(catalog, scan, &paths, &keep, progress)?
                .expect("staged rows are taken in any order");
            (files.len(), rows)
        }
    };
    tracing::info!(
        rows = rows_read,
        seconds = started.elapsed().as_secs_f64(),
        "report files read into the catalog"
    );
    if let ReportAt::S3 { .. } = at {
        for (_, p) in &paths {
            let _ = std::fs::remove_file(p);
        }
    }
    let sorted = catalog.settle_inventory(&location.base_prefix, prefixes)?;
    let (tied_keys, tie_requests) = list_ties(s3, catalog, &location.bucket).await?;
    let as_of = model::time::format_time(manifest.created_ms.div_euclid(1000));
    let missing = manifest.missing();
    let names: Vec<&str> = missing.iter().map(|f| f.name()).collect();
    let settled = catalog.close_inventory(prefixes, &at.to_string(), &as_of, &names)?;
    catalog.finish_scan()?;
    let compacting = Instant::now();
    if sorted {
        catalog.compact()?;
    } else {
        catalog.mark_compacted()?;
    }
    Ok(IngestSummary {
        manifest: at.to_string(),
        created: manifest.created_ms.div_euclid(1000),
        files: files.len() as u64,
        files_read: files_read as u64,
        rows_read,
        versions: settled.versions,
        delete_markers: settled.delete_markers,
        sorted,
        tied_keys,
        tie_requests,
        missing,
        elapsed: started.elapsed(),
        compaction: compacting.elapsed(),
    })
}

/// Tied keys listed and replaced at a time.
const TIES_AT_ONCE: usize = 10_000;

/// Lists again the keys whose entries tie on time in the report (two
/// noncurrent entries of one second: the report does not say which came
/// first) and puts S3's order in place of the report's; returns how many
/// keys, and the requests that took. A key changed since the report is
/// then as S3 lists it now, like a prefix listed again.
async fn list_ties(s3: &S3, catalog: &mut Catalog, bucket: &str) -> Result<(u64, u64), ScanError> {
    let tied = catalog.tied_keys()?;
    let requests = s3.counters().requests();
    for slice in tied.chunks(TIES_AT_ONCE) {
        let keys: Vec<(i64, &str)> = slice.iter().map(|(id, k)| (*id, k.as_str())).collect();
        let listed = s3
            .entries_of(bucket, &keys)
            .await
            .map_err(|source| ScanError::Ties {
                keys: tied.len() as u64,
                source,
            })?;
        let replaced: Vec<(i64, String, Vec<model::Entry>)> = slice
            .iter()
            .zip(listed)
            .map(|((id, key), entries)| (*id, key.clone(), entries))
            .collect();
        catalog.settle_ties(&replaced)?;
    }
    Ok((tied.len() as u64, s3.counters().requests() - requests))
}

/// Local paths of the data files `which` (places in the manifest),
/// downloaded first when the report is in S3.
async fn local_paths(
    s3: &S3,
    at: &ReportAt,
    manifest: &Manifest,
    work: &Path,
    which: &[usize],
) -> Result<Vec<(usize, PathBuf)>, ScanError> {
    let mut paths = Vec::with_capacity(which.len());
    for &i in which {
        let file = &manifest.files[i];
        let path = match at {
            ReportAt::Local(m) => local_file(m, file)?,
            ReportAt::S3 { .. } => {
                let local = work.join(format!("file-{i:06}"));
                s3.download(&manifest.destination_bucket, &file.key, &local)
                    .await?;
                local
            }
        };
        paths.push((i, path));
    }
    Ok(paths)
}

enum Message {
    Rows(i64, Rows),
    Done(i64, u64),
    Failed(InventoryError),
}

/// Reads the files on threads of their own (as many as there are cores,
/// at most), a bounded number of batches ahead, and hands their rows to
/// the catalog on this one in manifest order: memory stays flat, and a
/// report whose files are in key order goes in in key order. Returns the
/// rows read, or `None` when they were out of key order (the catalog then
/// stages them: call again).
fn read_files(
    catalog: &mut Catalog,
    scan: ReportScan<'_>,
    paths: &[(usize, PathBuf)],
    keep: &(dyn Fn(&str) -> bool + Sync),
    progress: &IngestProgress,
) -> Result<Option<u64>, ScanError> {
    let manifest = scan.manifest;
    let readers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(paths.len())
        .max(1);
    let next = AtomicU64::new(0);
    let (senders, receivers): (Vec<_>, Vec<_>) = paths
        .iter()
        .map(|_| mpsc::sync_channel::<Message>(4))
        .unzip();
    std::thread::scope(|scope| {
        for _ in 0..readers {
            let (next, senders) = (&next, &senders);
            let reader = std::thread::Builder::new().name("report-reader".into());
            let spawned = reader.spawn_scoped(scope, move || {
                yield_to_the_writer();
                read_in_turn(next, paths, senders, manifest, keep);
            });
            spawned.map_err(|e| InventoryError::Io {
                path: "a thread to read the report".into(),
                reason: e.to_string(),
            })?;
        }
        // Dropped on an error: what the unfinished file wrote is rolled
        // back, and the readers stop as their channels close.
        let mut into = catalog.report_rows(&scan.location.base_prefix, scan.prefixes)?;
        let mut read = 0u64;
        for rx in receivers {
            for message in rx.iter() {
                let in_order = match message {
                    Message::Rows(file, rows) => {
                        into.push(file, &rows.entries().collect::<Vec<_>>())?
                    }
                    Message::Done(file, n) => {
                        into.file_done(file, n)?;
                        read += n;
                        progress.rows.fetch_add(n, Ordering::Relaxed);
                        progress.files_done.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Message::Failed(e) => return Err(e.into()),
                };
                if !in_order {
                    into.sort_instead()?;
                    return Ok(None);
                }
            }
        }
        if !into.finish()? {
            into.sort_instead()?;
            return Ok(None);
        }
        Ok(Some(read))
    })
}

/// A reader thread: takes the next file of `paths` not yet taken (`next`)
/// and sends its rows, then whether it was read whole, on the file's own
/// channel; until none is left or the catalog writer stops.
fn read_in_turn(
    next: &AtomicU64,
    paths: &[(usize, PathBuf)],
    senders: &[mpsc::SyncSender<Message>],
    manifest: &Manifest,
    keep: &(dyn Fn(&str) -> bool + Sync),
) {
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed) as usize;
        let Some((i, path)) = paths.get(n) else {
            return;
        };
        let tx = &senders[n];
        let file = &manifest.files[*i];
        // A decoder that panics on a hostile file must fail the ingest:
        // unwinding here would leave the file's channel open, and the
        // writer waiting on it for ever.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s3inventory::read_file(path, manifest, file, |mut rows| {
                rows.retain_keys(keep);
                tx.send(Message::Rows(*i as i64, rows))
                    .map_err(|_| InventoryError::Io {
                        path: path.display().to_string(),
                        reason: "the catalog writer stopped".into(),
                    })
            })
        }))
        .unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(InventoryError::Data {
                path: path.display().to_string(),
                row: 0,
                reason: format!("its decoder failed: {why}"),
            })
        });
        let message = match read {
            Ok(n) => Message::Done(*i as i64, n),
            Err(e) => Message::Failed(e),
        };
        if tx.send(message).is_err() {
            return;
        }
    }
}

/// Lowers the calling thread's priority (nice 10). The catalog's one
/// writer bounds an ingest; the readers need about half a core between
/// them, but decoding a file's first batches and hashing it wakes them
/// all at once, and on a machine with few cores the writer then waited for
/// a core. (On Linux a thread has a nice value of its own.)
fn yield_to_the_writer() {
    #[cfg(target_os = "linux")]
    // SAFETY: changes only this thread's own scheduling priority.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// What listing prefixes again did.
#[derive(Debug, Clone, Default)]
pub struct RescanSummary {
    pub prefixes: u64,
    pub versions: i64,
    pub delete_markers: i64,
    pub requests: u64,
    pub elapsed: Duration,
}

/// Lists each of `prefixes` (relative to the location's base) with
/// ListObjectVersions and replaces the entries of the keys under it, one
/// prefix per transaction: entries newer than a report come from S3
/// itself. `listed` counts the entries listed so far.
pub async fn rescan_prefixes(
    s3: &S3,
    catalog: &mut Catalog,
    location: &Location,
    prefixes: &[String],
    page_size: i32,
    listed: &AtomicU64,
) -> Result<RescanSummary, ScanError> {
    let started = Instant::now();
    let requests = s3.counters().requests();
    let mut summary = RescanSummary::default();
    for prefix in prefixes {
        let full = format!("{}{prefix}", location.base_prefix);
        let mut pager = s3.pager(
            &location.bucket,
            s3io::ListRequest {
                prefix: full,
                ..s3io::ListRequest::default()
            },
            page_size,
        );
        let mut listing = catalog.list_prefix_again(&location.base_prefix, prefix)?;
        while let Some(page) = pager.next_page().await? {
            listing.push(&page.entries)?;
            listed.fetch_add(page.entries.len() as u64, Ordering::Relaxed);
        }
        summary.versions += listing.rows - listing.markers;
        summary.delete_markers += listing.markers;
        listing.finish()?;
        summary.prefixes += 1;
    }
    summary.requests = s3.counters().requests() - requests;
    summary.elapsed = started.elapsed();
    Ok(summary)
}
