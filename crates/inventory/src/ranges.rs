//! Listing a scan's key ranges, `concurrency` at a time, and cutting them
//! so that no request slot stays idle while a range has work left.
//!
//! Each range is one ListObjectVersions chain from its cursor to its end.
//! When a slot is free and nothing waits, the range with the most work left
//! (by its share of the key space and how far its listing got) is cut: the
//! part beyond where its listing is goes to new ranges, at keys spread
//! between its position and its end ([`keyspace`]); an open-ended range is
//! bounded first ([`bounds`]). A lone range nobody has listed yet is first
//! cut at its hierarchy's first level. The cut itself is the catalog
//! writer's to commit (it knows what the range has written, see
//! `catalog::WriterHandle::split`); the range's listing learns its new end
//! and stops there.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use catalog::{Cut, RangeState, ScanPage, WriterHandle};
use futures::stream::{FuturesUnordered, StreamExt};
use model::Entry;
use rand::seq::SliceRandom;
use s3io::{ListPage, ListRequest, S3};

use crate::bounds::Probe;
use crate::{keyspace, ScanError, ScanOptions, ScanProgress};

/// A range is not cut when less than this many pages of work seem left.
const MIN_PAGES_TO_CUT: f64 = 8.0;
/// Parts a range is cut into at once, at most.
const MAX_PARTS: usize = 64;
/// How often idle slots look for a range to cut.
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_millis(50);

/// One range of this run, as its listing and the cutter see it.
#[derive(Debug)]
pub(crate) struct Track {
    id: i64,
    /// The full listing prefix.
    prefix: String,
    after: Option<String>,
    /// Where its listing starts: (key marker, version id marker).
    start: (Option<String>, Option<String>),
    upto: Mutex<Option<String>>,
    /// Above every key of an open-ended range, once probed.
    bound: Mutex<Option<String>>,
    /// The first key this run listed of it, and the last: its progress is
    /// measured from the one (keys may start far from the range's bound).
    first: Mutex<Option<String>>,
    at: Mutex<Option<String>>,
    share: Mutex<f64>,
    rows: AtomicU64,
    /// Made by a cut of this run (an empty one cost a request for nothing).
    cut: bool,
    listing: AtomicBool,
    done: AtomicBool,
    /// A cut of it found nothing to cut: it is not tried again.
    uncuttable: AtomicBool,
}

fn lock<T: Clone>(m: &Mutex<T>) -> T {
    m.lock().expect("not poisoned").clone()
}

impl Track {
    fn new(range: &RangeState, base: &str, cut: bool) -> Track {
        Track {
            id: range.id,
            prefix: format!("{base}{}", range.prefix),
            after: range.after.clone(),
            start: range.resume_at(),
            upto: Mutex::new(range.upto.clone()),
            bound: Mutex::new(None),
            first: Mutex::new(range.next_key_marker.clone()),
            at: Mutex::new(range.next_key_marker.clone()),
            share: Mutex::new(range.share),
            rows: AtomicU64::new(0),
            cut,
            listing: AtomicBool::new(false),
            done: AtomicBool::new(range.done),
            uncuttable: AtomicBool::new(false),
        }
    }

    /// Where its keys start: after `after`, or at the first key listed,
    /// or at the prefix.
    fn low(&self) -> String {
        self.after
            .clone()
            .or_else(|| lock(&self.first))
            .unwrap_or_else(|| self.prefix.clone())
    }

    /// The end to measure against: its own, or the probed bound.
    fn high(&self) -> Option<String> {
        lock(&self.upto).or_else(|| lock(&self.bound))
    }

    /// How much of its key space its listing has covered, 0 to 1.
    pub(crate) fn covered(&self) -> f64 {
        if self.done.load(Ordering::Relaxed) {
            return 1.0;
        }
        match (self.high(), lock(&self.at)) {
            (Some(high), Some(at)) => keyspace::position(&self.low(), &high, &at),
            _ => 0.0,
        }
    }

    pub(crate) fn share(&self) -> f64 {
        *self.share.lock().expect("not poisoned")
    }

    /// Entries to ask for next: a page, or about what is left before the
    /// range's end where that is less (by its listing's density so far).
    fn next_page_size(&self, page_size: i32) -> i32 {
        let covered = self.covered();
        let rows = self.rows.load(Ordering::Relaxed) as f64;
        if lock(&self.upto).is_none() || covered < 0.05 || rows < 1.0 {
            return page_size;
        }
        let left = rows / covered * (1.0 - covered);
        let page = f64::from(page_size);
        (left * 1.25 + 20.0).clamp(page.min(50.0), page) as i32
    }

    /// Being listed right now.
    pub(crate) fn listing(&self) -> bool {
        self.listing.load(Ordering::Relaxed)
    }
}

/// What a finished piece of work says.
enum Event {
    Listed(i64, Result<(), ScanError>),
    Cut(i64, Result<Vec<RangeState>, ScanError>),
}

type Work<'a> = Pin<Box<dyn Future<Output = Event> + 'a>>;

/// Lists every unfinished range, cutting where slots would stay idle. A
/// range whose listing fails stops alone; an error no other call could
/// escape (the bucket, the credentials, the catalog) stops them all.
pub(crate) async fn list_ranges(
    s3: &S3,
    bucket: &str,
    base: &str,
    ranges: Vec<RangeState>,
    options: &ScanOptions,
    writer: &WriterHandle,
    progress: &ScanProgress,
) -> Result<(), ScanError> {
    let concurrency = options.concurrency.max(1);
    let probe = Probe {
        s3,
        bucket,
        spent: &progress.cut_requests,
    };
    let mut waiting: VecDeque<Arc<Track>> = {
        let mut fresh: Vec<Arc<Track>> = ranges
            .iter()
            .filter(|r| !r.done)
            .map(|r| Arc::new(Track::new(r, base, false)))
            .collect();
        // Neighbouring (often equally hot) prefixes of S3's partitions are
        // not all hit at once.
        fresh.shuffle(&mut rand::rng());
        fresh.into()
    };
    let mut tracks: HashMap<i64, Arc<Track>> = waiting.iter().map(|t| (t.id, t.clone())).collect();
    progress.follow(tracks.values().cloned());
    if waiting.len() == 1 && concurrency > 1 && ranges.iter().all(|r| r.pages == 0) {
        let made = cut_at_hierarchy(&probe, &waiting[0], writer).await?;
        for range in made {
            let track = Arc::new(Track::new(&range, base, true));
            tracks.insert(track.id, track.clone());
            progress.follow([track.clone()]);
            waiting.push_back(track);
        }
    }

    let mut work: FuturesUnordered<Work<'_>> = FuturesUnordered::new();
    let (mut listing, mut cutting) = (0usize, false);
    let mut failed = Vec::new();
    loop {
        while listing < concurrency {
            let Some(track) = waiting.pop_front() else {
                break;
            };
            listing += 1;
            let page_size = options.page_size;
            work.push(Box::pin(async move {
                track.listing.store(true, Ordering::Relaxed);
                let result = list_range(s3, bucket, &track, page_size, writer).await;
                track.listing.store(false, Ordering::Relaxed);
                track.done.store(result.is_ok(), Ordering::Relaxed);
                Event::Listed(track.id, result)
            }));
        }
        // Cuts wait for a few idle slots to cut for at once: each cut adds a
        // page that ends short, and may find nothing where it cut.
        let idle = concurrency - listing;
        if !cutting && idle >= (concurrency / 8).max(1) {
            if let Some((track, parts)) = choose_cut(&tracks, idle + 1, options, progress) {
                cutting = true;
                let probe = &probe;
                work.push(Box::pin(async move {
                    let result = cut(probe, &track, parts, writer).await;
                    Event::Cut(track.id, result)
                }));
            }
        }
        // With a slot idle, look again soon: a range's listing may have
        // gone far enough to show where to cut it.
        let event =
            match concurrency - listing >= (concurrency / 8).max(1) && !cutting && !work.is_empty()
            {
                true => tokio::select! {
                    event = work.next() => event,
                    _ = tokio::time::sleep(LOOK_AGAIN) => continue,
                },
                false => work.next().await,
            };
        let Some(event) = event else {
            break;
        };
        match event {
            Event::Listed(id, result) => {
                listing -= 1;
                let track = &tracks[&id];
                if track.cut && track.rows.load(Ordering::Relaxed) == 0 {
                    // A cut that found nothing: its request was spent on cutting.
                    progress.cut_requests.fetch_add(1, Ordering::Relaxed);
                }
                match result {
                    Ok(()) => {}
                    Err(ScanError::S3(e)) if !e.stops_the_run() => {
                        failed.push((track.prefix[base.len()..].to_owned(), e))
                    }
                    Err(e) => return Err(e),
                }
            }
            Event::Cut(from, result) => {
                cutting = false;
                if !matches!(&result, Ok(made) if !made.is_empty()) {
                    tracks[&from].uncuttable.store(true, Ordering::Relaxed);
                }
                match result {
                    Ok(made) => {
                        let bound = lock(&tracks[&from].bound);
                        for range in made {
                            let track = Arc::new(Track::new(&range, base, true));
                            *track.bound.lock().expect("not poisoned") = bound.clone();
                            tracks.insert(track.id, track.clone());
                            progress.follow([track.clone()]);
                            waiting.push_back(track);
                        }
                    }
                    // Cutting is an optimisation: the range lists on uncut.
                    Err(ScanError::S3(e)) if !e.stops_the_run() => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(ScanError::Prefixes(failed)),
    }
}

/// The listing range with the most work left, and how many parts to cut it
/// into (one for each idle slot, one it keeps); `None` if none is worth it.
fn choose_cut(
    tracks: &HashMap<i64, Arc<Track>>,
    parts: usize,
    options: &ScanOptions,
    progress: &ScanProgress,
) -> Option<(Arc<Track>, usize)> {
    let (track, left) = tracks
        .values()
        .filter(|t| {
            !t.done.load(Ordering::Relaxed)
                && !t.uncuttable.load(Ordering::Relaxed)
                && lock(&t.at).is_some()
        })
        .map(|t| (t, t.share() * (1.0 - t.covered())))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    if let Some(per_share) = progress.rows_per_share() {
        if left * per_share < MIN_PAGES_TO_CUT * f64::from(options.page_size) {
            return None;
        }
    }
    Some((track.clone(), parts.clamp(2, MAX_PARTS)))
}

/// Cuts the part of `track` beyond where its listing is into `parts`.
async fn cut(
    probe: &Probe<'_>,
    track: &Track,
    parts: usize,
    writer: &WriterHandle,
) -> Result<Vec<RangeState>, ScanError> {
    let low = lock(&track.at).unwrap_or_else(|| track.low());
    let high = match track.high() {
        Some(high) => high,
        None => match probe.bound_after(&track.prefix, &low).await? {
            Some(bound) => {
                *track.bound.lock().expect("not poisoned") = Some(bound.clone());
                bound
            }
            None => return Ok(Vec::new()),
        },
    };
    let points = keyspace::cut_points(&low, &high, parts);
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let share = track.share();
    let left = share * (1.0 - track.covered());
    let each = left / (points.len() + 1) as f64;
    let cuts = points
        .into_iter()
        .map(|at| Cut { at, share: each })
        .collect::<Vec<_>>();
    let kept = share - each * cuts.len() as f64;
    let made = writer.split(track.id, cuts, kept).await?;
    if let Some(first) = made.first() {
        *track.upto.lock().expect("not poisoned") = first.after.clone();
        *track.share.lock().expect("not poisoned") = kept;
    }
    Ok(made)
}

/// Cuts a range nobody has listed yet at its hierarchy's first level.
async fn cut_at_hierarchy(
    probe: &Probe<'_>,
    track: &Track,
    writer: &WriterHandle,
) -> Result<Vec<RangeState>, ScanError> {
    let points = probe.hierarchy_cuts(&track.prefix).await?;
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let each = track.share() / (points.len() + 1) as f64;
    let cuts = points
        .into_iter()
        .map(|at| Cut { at, share: each })
        .collect();
    let made = writer.split(track.id, cuts, each).await?;
    if let Some(first) = made.first() {
        *track.upto.lock().expect("not poisoned") = first.after.clone();
        *track.share.lock().expect("not poisoned") = each;
    }
    Ok(made)
}

/// One range's chain of pages into the catalog, up to its end.
async fn list_range(
    s3: &S3,
    bucket: &str,
    track: &Track,
    page_size: i32,
    writer: &WriterHandle,
) -> Result<(), ScanError> {
    let start = ListRequest {
        prefix: track.prefix.clone(),
        key_marker: track.start.0.clone(),
        version_id_marker: track.start.1.clone(),
        delimiter: None,
    };
    let mut pager = s3.pager(bucket, start, page_size);
    let mut held = HeldBack::default();
    while let Some(mut page) = pager.next_page().await? {
        let upto = lock(&track.upto);
        if let Some(upto) = &upto {
            if let Some(past) = page
                .entries
                .iter()
                .position(|e| e.key.as_str() > upto.as_str())
            {
                page.entries.truncate(past);
                page.is_truncated = false;
            }
        }
        if let Some(first) = page.entries.first() {
            track
                .first
                .lock()
                .expect("not poisoned")
                .get_or_insert_with(|| first.key.clone());
        }
        if let Some(last) = page.entries.last() {
            *track.at.lock().expect("not poisoned") = Some(last.key.clone());
        }
        track
            .rows
            .fetch_add(page.entries.len() as u64, Ordering::Relaxed);
        let done = !page.is_truncated;
        writer.page(held.scan_page(track.id, page)).await?;
        if done {
            break;
        }
        pager.set_page_size(track.next_page_size(page_size));
    }
    Ok(())
}

/// A key's entries held back from one page to be written with the next
/// page's, at most this many (a key with more versions is written in parts).
const MAX_CARRIED: usize = 10_000;

/// The last key of a page may continue on the next one. Its entries wait
/// for the rest, so that every key's entries are appended to the catalog
/// together (an entry added to a key written earlier would land in the
/// middle of the b-tree and leave half-empty pages behind). The cursor
/// committed meanwhile points before the waiting key, so a resumed scan
/// lists it again.
#[derive(Default)]
struct HeldBack(Vec<Entry>);

impl HeldBack {
    /// The catalog's page for a listing page of range `range_id`.
    fn scan_page(&mut self, range_id: i64, page: ListPage) -> ScanPage {
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
            range_id,
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
            common_prefixes: Vec::new(),
        }
    }

    #[test]
    fn a_key_that_may_continue_waits_for_the_next_page() {
        let mut held = HeldBack::default();
        let first = held.scan_page(1, page(&[("a", "1"), ("b", "2"), ("b", "1")], true));
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
        let second = held.scan_page(1, page(&[("b", "0"), ("c", "1")], false));
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
            held.scan_page(1, page(&[("a", "2"), ("a", "1")], true))
                .entries
                .len(),
            2
        );
    }
}
