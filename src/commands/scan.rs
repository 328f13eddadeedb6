//! `s3rewind scan`.

use std::sync::Arc;

use catalog::Catalog;
use inventory::{ScanOptions, ScanProgress};
use model::{Location, Versioning};
use s3io::S3;

use crate::cli::{GlobalArgs, ScanArgs};
use crate::output::{self, shown, thousands, Progress, Reading};
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, args: ScanArgs) -> Result<u8, CliError> {
    // Everything that can be checked offline is checked before S3 is called
    // or the catalog is touched, so bad input leaves the catalog as it was.
    let (bucket, base_prefix) = parse_s3_url(&args.url)?;
    let mut requested = args.prefixes.clone();
    if let Some(file) = &args.prefixes_file {
        requested.extend(inventory::read_prefixes_file(file)?);
    }
    inventory::merge_prefixes(&[], &requested)?;
    let mut rescan = args.rescan.clone();
    if let Some(file) = &args.rescan_file {
        rescan.extend(inventory::read_prefixes_file(file)?);
    }
    let shard = match (&args.shard, &args.bounds) {
        (Some(shard), Some(file)) => Some(read_shard(shard, file)?),
        _ => None,
    };

    let pace = s3io::Pace {
        concurrency: usize::from(args.concurrency),
        max_rps: None,
        adaptive: false,
    };
    let s3 = S3::connect(&super::client_options(global, pace)).await;
    let location = Location {
        bucket,
        base_prefix,
        endpoint: s3.endpoint().map(str::to_owned),
    };
    let path = &global.catalog;
    let _lock = catalog::WorkLock::take(path, "scan")?;
    let mut existing = if path.exists() && !args.fresh {
        let catalog = Catalog::open(path).await?;
        inventory::check_location(&catalog, &location, shard.as_ref().map(|s| s.0.as_str()))?;
        Some(catalog)
    } else {
        None
    };
    if let Some(plan_name) = &args.keys_of {
        let Some(mut catalog) = existing else {
            return Err(catalog::CatalogError::NotFound(path.clone()).into());
        };
        return keys_of(&s3, &mut catalog, &location, plan_name, args.json.json).await;
    }
    let prefixes = inventory::plan_prefixes(existing.as_ref(), &requested)?;
    let from_report = args
        .inventory
        .as_deref()
        .map(inventory::report::ReportAt::parse);
    if !rescan.is_empty() && from_report.is_none() {
        let Some(mut catalog) = existing else {
            return Err(catalog::CatalogError::NotFound(path.clone()).into());
        };
        return list_again(&s3, &mut catalog, &location, &rescan, &args).await;
    }
    if let Some(catalog) = &mut existing {
        let totals = catalog.scan_totals()?;
        let new = prefixes.len() as i64 - totals.prefixes;
        let complete = totals.ranges > 0 && totals.ranges == totals.ranges_done && new == 0;
        if complete && from_report.is_some() && catalog.sources()?.is_empty() {
            return Err(catalog::CatalogError::Refused(
                "this catalog already holds a listing of the bucket: a report's rows would mix with it\n  hint: `scan --fresh --inventory MANIFEST` builds the catalog from the report instead, or `scan --rescan PREFIX` lists parts of it again".into(),
            )
            .into());
        }
        if !complete && from_report.is_none() {
            if let Some((done, all)) = catalog.report_files()? {
                return Err(catalog::CatalogError::Refused(format!(
                    "this catalog is being built from an inventory report ({done} of {all} data files in): a listing would mix with it\n  hint: run the same `scan {} --inventory MANIFEST` again to finish it, or start over with `--fresh`",
                    shown(&args.url)
                ))
                .into());
            }
        }
        if complete && !rescan.is_empty() {
            return list_again(&s3, catalog, &location, &rescan, &args).await;
        }
        if complete {
            let record = catalog.scan_record()?;
            if record.is_some_and(|r| r.finished_at.is_some() && r.compacted_at.is_none()) {
                // A kill cut the last run's compaction short.
                let started = std::time::Instant::now();
                catalog.compact()?;
                eprintln!(
                    "compacted the catalog in {:.1} s (the run that finished the scan was stopped while compacting it)",
                    started.elapsed().as_secs_f64()
                );
            }
            if args.json.json {
                println!(
                    "{:#}",
                    serde_json::json!({
                            "location": location.url(),
                    "endpoint": location.endpoint,
                            "finished": true,
                            "already_complete": true,
                            "versions": totals.versions(),
                            "delete_markers": totals.delete_markers,
                        })
                );
                return Ok(exit::OK);
            }
            println!(
                "the scan of {} is already complete ({} versions, {} delete markers); nothing to do\n  \
                 hint: `s3rewind scan {} --fresh` scans again from scratch",
                shown(&location.to_string()),
                thousands(totals.versions() as u64),
                thousands(totals.delete_markers as u64),
                shown(&args.url)
            );
            return Ok(exit::OK);
        }
    }
    drop(existing);
    if let Some(at) = from_report {
        let code = ingest_report(&s3, global, &args, &location, &prefixes, &at).await?;
        if rescan.is_empty() || code != exit::OK {
            return Ok(code);
        }
        let mut catalog = Catalog::open(path).await?;
        return list_again(&s3, &mut catalog, &location, &rescan, &args).await;
    }

    let versioning = s3.bucket_versioning(&location.bucket).await?;
    if versioning == Versioning::Never {
        eprintln!(
            "warning: versioning has never been enabled on bucket {}: every object has one version \
             (id null) and nothing can be rewound; scanning anyway",
            location.bucket
        );
    }
    let from = format!("scans {} from scratch", shown(&location.to_string()));
    if !fresh_start(path, &args, &from)? {
        return Ok(exit::ERROR);
    }

    let mut catalog = Catalog::open_or_create(path).await?;
    let options = ScanOptions {
        concurrency: usize::from(args.concurrency),
        page_size: args.page_size,
    };
    let progress = Arc::new(ScanProgress::default());
    let progress_of = progress.clone();
    let started = std::time::Instant::now();
    let counted = s3.clone();
    let ticker = Progress::start("scan", move || reading(&progress_of, &counted, started));
    let result = inventory::scan(
        &s3,
        &mut catalog,
        &inventory::ScanTarget {
            location: location.clone(),
            versioning: versioning.as_str().to_owned(),
            prefixes,
            shard,
        },
        &options,
        &progress,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await;
    ticker.finish().await;
    let summary = result?;
    let versions = summary.rows - summary.delete_markers;
    if args.json.json {
        println!(
            "{:#}",
            serde_json::json!({
                "location": location.url(),
                "endpoint": location.endpoint,
                "finished": summary.finished,
                "already_complete": false,
                "versions": versions,
                "delete_markers": summary.delete_markers,
                "seconds": summary.elapsed.as_secs_f64(),
                "pages": summary.pages,
                "requests": summary.requests,
                "retries": summary.retries,
                "ranges": summary.ranges,
                "cut_requests": summary.cut_requests,
                "compaction_seconds": summary.compaction.map(|d| d.as_secs_f64()),
            })
        );
        return Ok(exit::OK);
    }
    println!(
        "{} {}: {} versions and {} delete markers in {:.1} s ({} rows/s); {} pages, {} requests, {} retried{}",
        if summary.finished { "scanned" } else { "partly scanned" },
        shown(&location.to_string()),
        thousands(versions),
        thousands(summary.delete_markers),
        summary.elapsed.as_secs_f64(),
        output::rate(summary.rows, summary.elapsed),
        thousands(summary.pages),
        thousands(summary.requests),
        thousands(summary.retries),
        summary.compaction.map_or(String::new(), |d| format!(
            "; catalog compacted in {:.1} s",
            d.as_secs_f64()
        )),
    );
    println!(
        "{} key ranges listed; {} requests spent finding where to cut them",
        thousands(summary.ranges),
        thousands(summary.cut_requests)
    );
    if !summary.finished {
        println!("some ranges are unfinished: run the same command to resume (`s3rewind status` lists them)");
    }
    Ok(exit::OK)
}

/// With `--fresh`, asks before deleting the catalog (`then` says what
/// follows) and deletes it; false: the person said no, nothing changed.
fn fresh_start(path: &std::path::Path, args: &ScanArgs, then: &str) -> Result<bool, CliError> {
    if !(args.fresh && path.exists()) {
        return Ok(true);
    }
    let question = format!(
        "--fresh deletes the catalog {} (its scan, plans and apply history) and {then}. Continue?",
        shown(&path.display().to_string()),
    );
    if !output::confirm(&question, args.yes)? {
        eprintln!("nothing changed");
        return Ok(false);
    }
    catalog::remove(path)?;
    Ok(true)
}

/// `scan --inventory MANIFEST`: the catalog built from the report.
async fn ingest_report(
    s3: &S3,
    global: &GlobalArgs,
    args: &ScanArgs,
    location: &Location,
    prefixes: &[String],
    at: &inventory::report::ReportAt,
) -> Result<u8, CliError> {
    let path = &global.catalog;
    let work = catalog::work_dir(path)?;
    // Checked before the catalog is touched: a bad report changes nothing.
    let allowed: Vec<inventory::report::Field> = args
        .allow_missing
        .iter()
        .filter_map(|f| inventory::report::Field::parse(f))
        .collect();
    let manifest = inventory::report::manifest_of(s3, at, location, &work, &allowed).await?;
    let from = format!("builds it again from {}", shown(&at.to_string()));
    if !fresh_start(path, args, &from)? {
        return Ok(exit::ERROR);
    }
    let mut catalog = Catalog::open_or_create(path).await?;
    let progress = Arc::new(inventory::report::IngestProgress::default());
    let shown_progress = progress.clone();
    let ticker = Progress::start("scan", move || {
        use std::sync::atomic::Ordering::Relaxed;
        Reading {
            done: shown_progress.files_done.load(Relaxed),
            total: shown_progress.files.load(Relaxed).max(1),
            message: format!(
                "report files · {} rows read",
                thousands(shown_progress.rows.load(Relaxed))
            ),
        }
    });
    let scan = inventory::report::ReportScan {
        location,
        prefixes,
        at,
        manifest: &manifest,
        work: &work,
    };
    let result = inventory::report::ingest(s3, &mut catalog, scan, &progress).await;
    ticker.finish().await;
    let _ = std::fs::remove_dir_all(&work);
    let summary = result?;
    let rate = output::rate(summary.rows_read, summary.elapsed);
    if args.json.json {
        println!(
            "{:#}",
            serde_json::json!({
                "location": location.url(),
                "endpoint": location.endpoint,
                "finished": true,
                "already_complete": false,
                "inventory": summary.manifest,
                "report_created": model::time::format_time(summary.created),
                "files": summary.files,
                "files_read": summary.files_read,
                "rows_read": summary.rows_read,
                "versions": summary.versions,
                "delete_markers": summary.delete_markers,
                "seconds": summary.elapsed.as_secs_f64(),
                "compaction_seconds": summary.compaction.as_secs_f64(),
                "sorted": summary.sorted,
                "tied_keys": summary.tied_keys,
                "tie_requests": summary.tie_requests,
                "missing_fields": summary.missing.iter().map(|f| f.name()).collect::<Vec<_>>(),
            })
        );
        return Ok(exit::OK);
    }
    let sorted = if summary.sorted {
        format!(
            "; the report was out of key order: its rows were sorted, and the catalog compacted in {:.1} s",
            summary.compaction.as_secs_f64()
        )
    } else {
        String::new()
    };
    println!(
        "built the catalog of {} from the inventory report {} (made {}): {} versions and {} delete markers from {} files ({} read now, {} rows, {} rows/s) in {:.1} s{sorted}",
        shown(&location.to_string()),
        shown(&summary.manifest),
        model::time::format_time(summary.created),
        thousands(summary.versions as u64),
        thousands(summary.delete_markers as u64),
        thousands(summary.files),
        thousands(summary.files_read),
        thousands(summary.rows_read),
        rate,
        summary.elapsed.as_secs_f64(),
    );
    if summary.tied_keys > 0 {
        println!(
            "{} keys had versions written in the same second, which a report does not order: listed again for S3's order ({} requests)",
            thousands(summary.tied_keys),
            thousands(summary.tie_requests)
        );
    }
    for field in &summary.missing {
        println!(
            "warning: the report has no {} field (--allow-missing): {}",
            field.name(),
            field.what_is_lost()
        );
    }
    println!(
        "changes made after {} are not in it: `s3rewind scan {} --rescan PREFIX` lists the prefixes the incident touched again",
        model::time::format_time(summary.created),
        shown(&args.url)
    );
    Ok(exit::OK)
}

/// `scan --rescan PREFIX`: prefixes listed again into the finished scan.
async fn list_again(
    s3: &S3,
    catalog: &mut Catalog,
    location: &Location,
    prefixes: &[String],
    args: &ScanArgs,
) -> Result<u8, CliError> {
    let record = catalog.scan_record()?.ok_or(plan::PlanError::NoScan)?;
    if record.finished_at.is_none() {
        return Err(CliError::Usage(format!(
            "the scan of {} is unfinished: finish it (run the same scan again) before listing prefixes again",
            shown(&location.to_string())
        )));
    }
    let listed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let shown_listed = listed.clone();
    let ticker = Progress::start("scan", move || Reading {
        done: shown_listed.load(std::sync::atomic::Ordering::Relaxed),
        total: 0,
        message: "entries listed again".into(),
    });
    let result = inventory::report::rescan_prefixes(
        s3,
        catalog,
        location,
        prefixes,
        args.page_size,
        &listed,
    )
    .await;
    ticker.finish().await;
    let found = result?;
    if args.json.json {
        println!(
            "{:#}",
            serde_json::json!({
                "location": location.url(),
                "endpoint": location.endpoint,
                "rescanned": prefixes,
                "versions": found.versions,
                "delete_markers": found.delete_markers,
                "requests": found.requests,
                "seconds": found.elapsed.as_secs_f64(),
            })
        );
        return Ok(exit::OK);
    }
    println!(
        "listed {} prefixes of {} again: {} versions and {} delete markers now, in {:.1} s ({} requests)",
        thousands(found.prefixes),
        shown(&location.to_string()),
        thousands(found.versions as u64),
        thousands(found.delete_markers as u64),
        found.elapsed.as_secs_f64(),
        thousands(found.requests)
    );
    println!("plans made before refer to entries that were replaced: make them again");
    Ok(exit::OK)
}

/// `scan --keys-of PLAN`: the plan's keys listed again into the finished scan.
async fn keys_of(
    s3: &S3,
    catalog: &mut Catalog,
    location: &Location,
    plan_name: &str,
    json: bool,
) -> Result<u8, CliError> {
    let record = catalog.scan_record()?.ok_or(plan::PlanError::NoScan)?;
    if record.finished_at.is_none() {
        return Err(CliError::Usage(format!(
            "the scan of {} is unfinished: finish it (run the same scan again) before listing a plan's keys again",
            shown(&location.to_string())
        )));
    }
    let info = plan::find_plan(catalog, plan_name)?;
    let keys = plan::show_plan(catalog, plan_name)?.keys;
    let started = std::time::Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let shown_done = done.clone();
    let ticker = Progress::start("scan", move || Reading {
        done: shown_done.load(std::sync::atomic::Ordering::Relaxed),
        total: keys,
        message: "keys listed again".into(),
    });
    let result = inventory::rescan::rescan_keys(s3, catalog, info.id, &location.bucket, |n| {
        done.store(n, std::sync::atomic::Ordering::Relaxed)
    })
    .await;
    ticker.finish().await;
    let found = result?;
    let requests = s3.counters().requests();
    if json {
        println!(
            "{:#}",
            serde_json::json!({
                "location": location.url(),
                "endpoint": location.endpoint,
                "keys_of": info.name,
                "keys": found.keys,
                "versions": found.versions,
                "delete_markers": found.delete_markers,
                "requests": requests,
                "seconds": started.elapsed().as_secs_f64(),
            })
        );
        return Ok(exit::OK);
    }
    println!(
        "listed the {} keys of plan {} again: {} versions and {} delete markers now, in {:.1} s ({} requests)",
        thousands(found.keys),
        shown(&info.name),
        thousands(found.versions),
        thousands(found.delete_markers),
        started.elapsed().as_secs_f64(),
        thousands(requests)
    );
    println!("plans made before refer to entries that were replaced: make them again (e.g. `s3rewind plan restore …`)");
    Ok(exit::OK)
}

fn reading(progress: &ScanProgress, s3: &S3, started: std::time::Instant) -> Reading {
    use std::sync::atomic::Ordering::Relaxed;
    let now = progress.standing();
    // The bar counts thousandths of the key space.
    let (done, total) = ((now.covered * 1000.0) as u64, 1000);
    if progress.compacting.load(Relaxed) {
        return Reading {
            done: total,
            total,
            message: "‰ of the key space · all listed; compacting the catalog".into(),
        };
    }
    let elapsed = started.elapsed();
    let eta = match now.covered {
        c if c > 0.001 && c < 1.0 => {
            format!(" · ETA {:.0}s", elapsed.as_secs_f64() * (1.0 - c) / c)
        }
        _ => String::new(),
    };
    let retries = s3.counters().retries();
    Reading {
        done,
        total,
        message: format!(
            "‰ of the key space · {} versions/s · {} versions, {} delete markers · ranges {} done, {} listing, {} waiting{}{eta}",
            output::rate(progress.rows_this_run(), elapsed),
            thousands(now.rows - now.delete_markers),
            thousands(now.delete_markers),
            thousands(now.ranges_done),
            thousands(now.ranges_listing),
            thousands(now.ranges.saturating_sub(now.ranges_done + now.ranges_listing)),
            if retries > 0 {
                format!(" · {} requests retried", thousands(retries))
            } else {
                String::new()
            },
        ),
    }
}

/// `--shard I/N` and the `--bounds` file: the part's name and its bounds.
fn read_shard(shard: &str, file: &std::path::Path) -> Result<(String, catalog::Bounds), CliError> {
    let bad = |why: String| CliError::Usage(format!("--shard {shard}: {why}"));
    let (i, n) = shard
        .split_once('/')
        .and_then(|(i, n)| {
            Some((
                i.trim().parse::<usize>().ok()?,
                n.trim().parse::<usize>().ok()?,
            ))
        })
        .ok_or_else(|| bad("write I/N, the part (from 0) and how many, e.g. 0/8".into()))?;
    if n < 2 || i >= n {
        return Err(bad(format!(
            "part {i} of {n} does not exist (parts are 0 to N - 1, N at least 2)"
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|e| {
        CliError::Usage(format!(
            "cannot read the bounds file {}: {e}",
            file.display()
        ))
    })?;
    let keys = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            s3io::decode_url_component(l)
                .map(|k| k.into_owned())
                .ok_or_else(|| {
                    bad(format!(
                        "{l:?} in {} is not a URL-encoded key",
                        file.display()
                    ))
                })
        })
        .collect::<Result<Vec<String>, CliError>>()?;
    if keys.len() != n - 1 {
        return Err(bad(format!(
            "{} holds {} keys, but {n} parts need {} (is it the `split --parts {n}` output?)",
            file.display(),
            keys.len(),
            n - 1
        )));
    }
    if keys.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad(format!(
            "the keys in {} are not in ascending order",
            file.display()
        )));
    }
    let bounds = catalog::Bounds {
        after: i.checked_sub(1).map(|j| keys[j].clone()),
        upto: keys.get(i).cloned(),
    };
    Ok((format!("{i}/{n}"), bounds))
}

/// `s3://bucket[/base]` → (bucket, base).
pub(super) fn parse_s3_url(url: &str) -> Result<(String, String), CliError> {
    model::Destination::parse(url)
        .map(|d| (d.bucket, d.prefix))
        .map_err(|why| {
            CliError::Usage(format!(
                "{url:?} is not an S3 location: {why}\n  hint: write s3://BUCKET or s3://BUCKET/PREFIX"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::parse_s3_url;

    #[test]
    fn parses_bucket_and_base() {
        assert_eq!(parse_s3_url("s3://bkt").unwrap(), ("bkt".into(), "".into()));
        assert_eq!(
            parse_s3_url("s3://bkt/").unwrap(),
            ("bkt".into(), "".into())
        );
        assert_eq!(
            parse_s3_url("s3://bkt/img/a b").unwrap(),
            ("bkt".into(), "img/a b".into())
        );
        for bad in [
            "bkt",
            "s3:/bkt",
            "s3://",
            "s3:///x",
            "s3://b",
            "s3://bad bucket/x",
            "http://bkt",
        ] {
            assert!(parse_s3_url(bad).is_err(), "{bad}");
        }
    }
}
