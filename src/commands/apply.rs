//! `s3rewind apply`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use apply::{ApplyOptions, ApplyProgress, ApplyTarget};
use catalog::Catalog;
use s3io::S3;

use crate::cli::{ApplyArgs, GlobalArgs};
use crate::output::{self, shown, thousands, Progress, Reading};
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, args: ApplyArgs) -> Result<u8, CliError> {
    let mut catalog = Catalog::open(&global.catalog).await?;
    let _lock = catalog::WorkLock::take(&global.catalog, "apply")?;
    let report = plan::show_plan(&catalog, &args.name)?;
    let info = &report.info;
    let pace = s3io::Pace {
        concurrency: usize::from(args.concurrency),
        max_rps: args.max_rps,
    };
    let (scan, s3) = connect_for(global, &catalog, info, pace).await?;
    let name = shown(&info.name);
    let location = &scan.location;
    let place = shown_owned(&location.to_string());

    let json = args.json.json;
    if !json {
        println!("apply plan {name} to {place}");
        super::plan::print_report(&report, false);
    }
    let remaining = info.status.remaining(args.retry_failed);
    if remaining == 0 {
        if json {
            println!("{:#}", summary_json(&catalog, &report, None)?);
        } else {
            println!("nothing left to do");
        }
        return Ok(exit_code(info.status.failed));
    }

    if args.dry_run && json {
        let mut actions = Vec::new();
        catalog.for_each_remaining(
            info.id,
            args.retry_failed,
            |id, kind, key, version, size| {
                actions.push(serde_json::json!({
                    "id": id, "action": kind, "key": key, "version_id": version, "size": size,
                }));
            },
        )?;
        let mut out = super::plan::report_json(&report);
        out["dry_run"] = true.into();
        out["remaining"] = actions.into();
        println!("{out:#}");
        return Ok(exit::OK);
    }
    if args.dry_run {
        println!(
            "dry run: these {} actions would be executed (nothing is called):",
            thousands(remaining)
        );
        catalog.for_each_remaining(
            info.id,
            args.retry_failed,
            |id, kind, key, version, size| {
                println!(
                    "{id:>10}  {kind:<17}  {}{}{}",
                    shown(key),
                    version
                        .map(|v| format!("  version {}", shown(v)))
                        .unwrap_or_default(),
                    size.filter(|_| kind == "copy_version")
                        .map(|s| format!("  ({s} bytes)"))
                        .unwrap_or_default()
                );
            },
        )?;
        return Ok(exit::OK);
    }

    let into = plan::destination_of(info);
    let checked = check::check(
        &s3,
        &location.bucket,
        Some((
            &catalog,
            &check::PlanRef {
                id: info.id,
                name: info.name.clone(),
                elsewhere: into.is_some(),
            },
        )),
        Some(&scan.versioning),
    )
    .await
    .map_err(super::check::check_error)?;
    if !json {
        for f in checked
            .checks
            .iter()
            .filter(|f| f.level != check::Level::Ok)
        {
            super::check::print_finding(f);
        }
    }
    let blocking = checked.blocking(&args.accept);
    if !blocking.is_empty() {
        let names: Vec<&str> = blocking.iter().map(|f| f.check).collect();
        return Err(CliError::Blocked(format!(
            "plan {name} is blocked by {}: {}\n  nothing was changed\n  hint: fix it (see `s3rewind check --plan {name}`), or pass --accept {} to go ahead anyway",
            names.join(", "),
            shown(&blocking[0].summary),
            names.join(" --accept ")
        )));
    }
    let question = match &into {
        None => format!(
            "execute {} actions of plan {name} on {place}?",
            thousands(remaining),
        ),
        Some(d) => format!(
            "execute {} actions of plan {name}, from {place} into {}?",
            thousands(remaining),
            shown(&d.to_string())
        ),
    };
    if !output::confirm(&question, args.yes)? {
        eprintln!("nothing changed");
        return Ok(exit::ERROR);
    }
    // Accepted: what Object Lock keeps is listed as skipped, not failed.
    if !checked.locked.is_empty() {
        let skipped: Vec<(i64, String)> = checked
            .locked
            .iter()
            .map(|l| (l.id, l.reason.clone()))
            .collect();
        catalog.skip_actions(info.id, &skipped)?;
        if !json {
            println!(
                "{} locked versions are recorded as skipped (Object Lock keeps them)",
                thousands(skipped.len() as u64)
            );
        }
    }

    let options = ApplyOptions {
        workers: usize::from(args.concurrency),
        block_size: i64::from(args.block_size),
        verify: args.verify,
        retry_failed: args.retry_failed,
        multipart_threshold: args.multipart_threshold,
        part_size: args.part_size,
        // Elsewhere, copies go unconditionally: the destination was not scanned.
        condition_probe: match into {
            None => catalog.copy_to_make(info.id)?,
            Some(_) => None,
        },
        archive_tier: args.archive_tier.clone(),
        archive_days: args.archive_days,
    };
    let target = target_of(info, &scan);
    let progress = Arc::new(ApplyProgress::default());
    let progress_of = progress.clone();
    let paced = s3.clone();
    let started = Instant::now();
    let ticker = Progress::start("apply", move || {
        let shown = &progress_of;
        let finished = shown.finished();
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = finished as f64 / secs;
        let left = remaining.saturating_sub(finished);
        Reading {
            done: finished,
            total: remaining,
            message: format!(
                "{}/s · {} done, {} failed, {} skipped, {} drifted · {} in flight at most · ETA {}",
                thousands(rate as u64),
                thousands(shown.done.load(Ordering::Relaxed)),
                thousands(shown.failed.load(Ordering::Relaxed)),
                thousands(shown.skipped.load(Ordering::Relaxed)),
                thousands(shown.drifted.load(Ordering::Relaxed)),
                paced.pacer().narrowest_window(),
                if rate > 0.0 {
                    format!("{:.0}s", left as f64 / rate)
                } else {
                    "-".into()
                }
            ),
        }
    });
    let result = apply::apply(&s3, catalog.path(), &target, &options, &progress, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    ticker.finish().await;
    let summary = result?;
    if json {
        let out = summary_json(&catalog, &report, Some(&summary))?;
        let failed = out["plan"]["failed"].as_u64().unwrap_or(0);
        println!("{out:#}");
        return Ok(exit_code(failed));
    }
    let finished =
        summary.done + summary.failed + summary.skipped + summary.drifted + summary.restoring;
    println!(
        "applied plan {name}: {} done, {} failed, {} skipped, {} drifted, {} restoring in {:.1} s ({} actions/s); {} requests, {} retried, {} throttled",
        thousands(summary.done),
        thousands(summary.failed),
        thousands(summary.skipped),
        thousands(summary.drifted),
        thousands(summary.restoring),
        summary.elapsed.as_secs_f64(),
        output::rate(finished, summary.elapsed),
        thousands(summary.requests),
        thousands(summary.retries),
        thousands(summary.throttled),
    );
    match summary.guard {
        apply::Guard::Conditions => println!(
            "copies were sent with the condition the scan saw (If-Match / If-None-Match: no extra request)"
        ),
        apply::Guard::Listing => println!(
            "this endpoint ignores conditional copies: each key was listed before acting on it instead (as --verify does)"
        ),
        apply::Guard::None => {}
    }
    if summary.drifted > 0 {
        println!(
            "drifted: {} copies were refused because their key changed after the scan (see them: s3rewind sql \"SELECT key, expected_latest, error FROM plan_review WHERE plan = '{name}' AND status = 'drifted'\"); `s3rewind scan` again and make a new plan for them",
            thousands(summary.drifted)
        );
    }
    let failures = catalog.failures_by_code(info.id)?;
    let failed: u64 = failures.iter().map(|(_, n)| n).sum();
    if failed > 0 {
        println!("completed with failures; failed actions by S3 error code:");
        for (code, n) in &failures {
            println!("  {:<24} {}", shown(code), thousands(*n));
        }
        println!(
            "  see them: s3rewind sql \"SELECT key, version_id, error FROM plan_review WHERE plan = '{name}' AND status = 'failed'\"\n  \
             after fixing the cause: s3rewind apply {name} --retry-failed",
        );
    }
    if summary.restoring > 0 {
        println!(
            "restoring: {} copies wait for their source's restore from an archive; run `s3rewind apply {name}` again later (it copies those restored and leaves the rest waiting)",
            thousands(summary.restoring)
        );
    }
    if summary.skipped > 0 {
        println!(
            "skipped actions: s3rewind sql \"SELECT key, error FROM plan_review WHERE plan = '{name}' AND status = 'skipped'\"",
        );
    }
    Ok(exit_code(failed))
}

/// The scan a plan was made from and a client for its location: refused
/// when the plan is older than the catalog's scan, or the client points
/// at another endpoint than the scan did.
pub(super) async fn connect_for(
    global: &GlobalArgs,
    catalog: &Catalog,
    info: &catalog::plans::PlanInfo,
    pace: s3io::Pace,
) -> Result<(catalog::ScanRecord, S3), CliError> {
    let scan = catalog.scan_record()?.ok_or(plan::PlanError::NoScan)?;
    let name = shown(&info.name);
    if info.scan_id != scan.id {
        return Err(CliError::Usage(format!(
            "plan {name} was made from an earlier scan of this catalog; its versions may be gone\n  hint: make the plan again",
        )));
    }
    if info.scan_revision != scan.revision {
        return Err(CliError::Usage(format!(
            "plan {name} was made before keys were listed again (`scan --keys-of`, {}): its actions refer to entries that were replaced\n  hint: make the plan again",
            scan.rescanned_at.as_deref().unwrap_or("?")
        )));
    }
    let s3 = S3::connect(&super::client_options(global, pace)).await;
    if s3.endpoint() != scan.location.endpoint.as_deref() {
        return Err(CliError::Usage(format!(
            "plan {name} belongs to {}, but this run points at {}\n  hint: pass the same --endpoint-url (or AWS_ENDPOINT_URL) the scan used",
            shown(&scan.location.to_string()),
            s3.endpoint().unwrap_or("AWS")
        )));
    }
    Ok((scan, s3))
}

/// What applying (or verifying) `info` acts on.
pub(super) fn target_of(
    info: &catalog::plans::PlanInfo,
    scan: &catalog::ScanRecord,
) -> ApplyTarget {
    ApplyTarget {
        plan_id: info.id,
        last_id: info.actions as i64,
        bucket: scan.location.bucket.clone(),
        into: plan::destination_of(info).map(|d| (d, scan.location.base_prefix.clone())),
    }
}

/// `apply --json`: this run's counts (`run`, absent when nothing was left
/// to do) and the plan's standing after it.
fn summary_json(
    catalog: &Catalog,
    report: &plan::PlanReport,
    run: Option<&apply::ApplySummary>,
) -> Result<serde_json::Value, CliError> {
    let after = plan::find_plan(catalog, &report.info.name)?;
    let failures: serde_json::Map<String, serde_json::Value> = catalog
        .failures_by_code(after.id)?
        .into_iter()
        .map(|(code, n)| (code, n.into()))
        .collect();
    Ok(serde_json::json!({
        "plan": super::plan::plan_json(&after),
        "run": run.map(|s| serde_json::json!({
            "done": s.done,
            "failed": s.failed,
            "skipped": s.skipped,
            "drifted": s.drifted,
            "restoring": s.restoring,
            "guard": match s.guard {
                apply::Guard::Conditions => "conditions",
                apply::Guard::Listing => "listing",
                apply::Guard::None => "none",
            },
            "seconds": s.elapsed.as_secs_f64(),
            "requests": s.requests,
            "retries": s.retries,
            "throttled": s.throttled,
        })),
        "failures_by_code": failures,
    }))
}

fn shown_owned(text: &str) -> String {
    shown(text).into_owned()
}

fn exit_code(failed: u64) -> u8 {
    if failed > 0 {
        exit::COMPLETED_WITH_FAILURES
    } else {
        exit::OK
    }
}
