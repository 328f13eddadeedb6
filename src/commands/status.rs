//! `s3rewind status`.

use catalog::Catalog;

use crate::cli::GlobalArgs;
use crate::output::{bytes, shown, thousands};
use crate::{exit, CliError};

/// Unfinished ranges listed one by one before the rest are only counted.
const SHOWN_RANGES: usize = 20;

pub async fn run(global: &GlobalArgs, json: bool) -> Result<u8, CliError> {
    let catalog = Catalog::open(&global.catalog).await?;
    let size = catalog::companions(&global.catalog)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum::<u64>();
    if json {
        println!("{:#}", as_json(&catalog, global, size)?);
        return Ok(exit::OK);
    }
    println!(
        "catalog     {} ({})",
        shown(&global.catalog.display().to_string()),
        bytes(size)
    );
    if catalog::readable_by_others(&global.catalog) {
        println!(
            "            note: other users may read this catalog, which lists every key of the bucket; \
             `chmod 600 {}*` makes it private (s3rewind creates catalogs private)",
            shown(&global.catalog.display().to_string())
        );
    }
    let Some(scan) = catalog.scan_record()? else {
        println!("scan        none yet: run `s3rewind scan s3://BUCKET`");
        return Ok(exit::OK);
    };
    let totals = catalog.scan_totals()?;
    println!(
        "location    {}{}",
        shown(&scan.location.to_string()),
        scan.shard
            .as_deref()
            .map(|s| format!(" (part {s})"))
            .unwrap_or_default()
    );
    println!("versioning  {}", scan.versioning);
    if let Some(at) = &scan.rescanned_at {
        println!(
            "rescanned   keys of a plan listed again at {at} (revision {}): plans made before must be made again",
            scan.revision
        );
    }
    match &scan.finished_at {
        Some(at) => println!(
            "scan        complete: started {}, finished {at} ({} run{}){}",
            scan.started_at,
            scan.runs,
            if scan.runs == 1 { "" } else { "s" },
            match scan.compacted_at {
                Some(_) => "",
                None => "; not compacted yet: the next `scan` packs it",
            }
        ),
        None => {
            // A report's ingest resumes with its manifest, a listing without.
            let (progress, resume) = match catalog.report_files()? {
                Some((done, all)) => (
                    format!(
                        "from an inventory report: {} of {} data files in",
                        thousands(done as u64),
                        thousands(all as u64)
                    ),
                    " --inventory MANIFEST",
                ),
                None => (
                    format!(
                        "{} of {} key ranges done",
                        thousands(totals.ranges_done as u64),
                        thousands(totals.ranges as u64)
                    ),
                    "",
                ),
            };
            println!(
                "scan        UNFINISHED: started {}, {progress}; run the same `s3rewind scan s3://{}/{}{resume}` to resume",
                scan.started_at,
                scan.location.bucket,
                shown(&scan.location.base_prefix)
            );
        }
    }
    println!(
        "entries     {} versions, {} delete markers, {} keys ({} pages listed)",
        thousands(totals.versions() as u64),
        thousands(totals.delete_markers as u64),
        thousands(totals.keys as u64),
        thousands(totals.pages as u64)
    );
    for source in catalog.sources()? {
        let prefix = match source.prefix.as_str() {
            "" => "everything".to_owned(),
            p => format!("prefix \"{}\"", shown(p)),
        };
        match source.kind.as_str() {
            "inventory" => println!(
                "source      {prefix}: the inventory report of {} ({}); changes after it are not in the catalog unless listed since",
                source.as_of,
                shown(source.manifest.as_deref().unwrap_or("?"))
            ),
            _ => println!("source      {prefix}: listed again at {}", source.as_of),
        }
    }
    if let Some(gaps) = super::report_gaps(&catalog)? {
        println!("missing     {}", shown(&gaps.summary));
        for lost in &gaps.details {
            println!("            {}", shown(lost));
        }
    }
    let ranges = catalog.ranges()?;
    let started = ranges.iter().filter(|r| !r.done && r.pages > 0).count();
    let waiting = ranges.iter().filter(|r| !r.done && r.pages == 0).count();
    println!(
        "ranges      {} key ranges over {} prefixes: {} done, {} started, {} waiting",
        thousands(totals.ranges as u64),
        thousands(totals.prefixes as u64),
        thousands(totals.ranges_done as u64),
        thousands(started as u64),
        thousands(waiting as u64)
    );
    let unfinished: Vec<_> = ranges.iter().filter(|r| !r.done).collect();
    if !unfinished.is_empty() {
        println!("unfinished ranges:");
        for r in unfinished.iter().take(SHOWN_RANGES) {
            let bound = |k: &Option<String>| match k {
                Some(k) => format!("\"{}\"", shown(k)),
                None => "…".into(),
            };
            println!(
                "  prefix \"{}\" keys {} to {}: {} pages, {} rows so far{}",
                shown(&r.prefix),
                bound(&r.after),
                bound(&r.upto),
                r.pages,
                r.rows,
                r.next_key_marker
                    .as_deref()
                    .map(|k| format!(", next after key \"{}\"", shown(k)))
                    .unwrap_or_default()
            );
        }
        if unfinished.len() > SHOWN_RANGES {
            println!("  … and {} more", unfinished.len() - SHOWN_RANGES);
        }
    }
    let plans = catalog.plans()?;
    if plans.is_empty() {
        println!("plans       none yet: `s3rewind plan restore --to TIME` makes one");
    } else {
        println!("plans:");
        for p in &plans {
            let s = &p.status;
            let state = super::plan::state(p);
            println!(
                "  {:<20} {:<9} {:>10} actions: {} done, {} failed, {} skipped, {} drifted, {} restoring, {} pending ({state})",
                shown(&p.name),
                p.rule,
                thousands(p.actions),
                thousands(s.done),
                thousands(s.failed),
                thousands(s.skipped),
                thousands(s.drifted),
                thousands(s.restoring),
                thousands(s.pending + s.in_flight)
            );
        }
    }
    Ok(exit::OK)
}

/// `status --json` (fields: docs/json.md).
fn as_json(
    catalog: &Catalog,
    global: &GlobalArgs,
    size: u64,
) -> Result<serde_json::Value, CliError> {
    let scan = match catalog.scan_record()? {
        None => serde_json::Value::Null,
        Some(scan) => {
            let totals = catalog.scan_totals()?;
            let ranges = catalog.ranges()?;
            let started = ranges.iter().filter(|r| !r.done && r.pages > 0).count();
            let waiting = ranges.iter().filter(|r| !r.done && r.pages == 0).count();
            let sources: Vec<_> = catalog
                .sources()?
                .into_iter()
                .map(|s| {
                    serde_json::json!({
                        "prefix": s.prefix, "kind": s.kind, "as_of": s.as_of, "manifest": s.manifest,
                        "missing": s.missing,
                    })
                })
                .collect();
            serde_json::json!({
                "sources": sources,
                "location": scan.location.url(),
                "bucket": scan.location.bucket,
                "base_prefix": scan.location.base_prefix,
                "endpoint": scan.location.endpoint,
                "shard": scan.shard,
                "versioning": scan.versioning,
                "started_at": scan.started_at,
                "finished_at": scan.finished_at,
                "complete": scan.finished_at.is_some(),
                "compacted_at": scan.compacted_at,
                "runs": scan.runs,
                "revision": scan.revision,
                "rescanned_at": scan.rescanned_at,
                "versions": totals.versions(),
                "delete_markers": totals.delete_markers,
                "keys": totals.keys,
                "pages": totals.pages,
                "prefixes": totals.prefixes,
                "ranges": {
                    "total": totals.ranges,
                    "done": totals.ranges_done,
                    "started": started,
                    "waiting": waiting,
                },
            })
        }
    };
    let plans: Vec<_> = catalog
        .plans()?
        .iter()
        .map(super::plan::plan_json)
        .collect();
    Ok(serde_json::json!({
        "catalog": {
            "path": global.catalog.display().to_string(),
            "bytes": size,
            "readable_by_others": catalog::readable_by_others(&global.catalog),
        },
        "scan": scan,
        "plans": plans,
    }))
}
