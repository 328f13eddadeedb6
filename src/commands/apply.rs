//! `s3rewind apply`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use apply::preflight::{self, PreflightOptions};
use apply::{ApplyOptions, ApplyProgress};
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
        adaptive: true,
    };
    let s3 = S3::connect(&super::client_options(global, pace)).await;
    let name = shown(&info.name);
    let into = plan::destination_of(info);
    let json = args.json.json;
    let remaining = match args.settle {
        true => info.status.in_flight + info.status.uncertain,
        false => info.status.remaining(args.retry_failed),
    };
    if remaining == 0 {
        if json {
            println!("{:#}", summary_json(&catalog, &report, None, None)?);
        } else {
            println!("apply plan {name}: nothing left to do");
        }
        return Ok(exit_code(info.status.failed));
    }
    let options = PreflightOptions {
        accept: args.accept.clone(),
        reapply: args.reapply,
        retry_failed: args.retry_failed,
        settle: args.settle,
    };
    let checked = preflight::preflight(&s3, &catalog, info, into.as_ref(), &options).await;
    if args.dry_run {
        // What would be done is shown even where the preflight cannot run
        // or refuses: then the run says why after it, and fails.
        if !json {
            println!("apply plan {name} (dry run)");
            super::plan::print_report(&report, false);
            if let Ok(Ok(pre)) = &checked {
                print_preflight(pre);
            }
        }
        dry_run(
            &catalog,
            &report,
            checked.as_ref().ok().and_then(|c| c.as_ref().ok()),
            &args,
        )?;
        return match checked {
            Ok(Ok(_)) => Ok(exit::OK),
            Ok(Err(refusal)) => Err(CliError::Refused(refusal)),
            Err(e) => Err(e.into()),
        };
    }
    let pre = match checked? {
        Ok(pre) => pre,
        Err(refusal) => {
            if json {
                let mut out = super::plan::show_json(&catalog, &report)?;
                out["refused"] = refusal.to_string().into();
                println!("{out:#}");
            }
            return Err(CliError::Refused(refusal));
        }
    };
    let place = shown_owned(&pre.scan.location.to_string());
    if !json {
        println!("apply plan {name} to {place}");
        super::plan::print_report(&report, false);
        print_preflight(&pre);
        if args.settle && args.yes {
            // Said even when --yes skips the question: settling sends
            // nothing new, and the operator should see that it did not.
            println!("{}", shown(&pre.question));
        }
    }
    if !output::confirm(&shown(&pre.question), args.yes)? {
        eprintln!("nothing changed");
        return Ok(exit::ERROR);
    }
    let begun = preflight::begin(&mut catalog, info, &pre)?;
    let locked = pre.report.as_ref().map_or(0, |r| r.locked.len());
    if locked > 0 && !json {
        println!(
            "{} locked versions are recorded as skipped (Object Lock keeps them)",
            thousands(locked as u64)
        );
    }

    let options = ApplyOptions {
        // Blocks in the works at once: enough to keep the limit fed (a
        // block offers up to --block-size writes), few enough that a kill
        // leaves few claims to settle.
        workers: usize::from(args.concurrency).min(64),
        block_size: i64::from(args.block_size),
        verify: args.verify,
        retry_failed: args.retry_failed,
        multipart_threshold: args.multipart_threshold,
        part_size: args.part_size,
        archive_tier: args.archive_tier.clone(),
        archive_days: args.archive_days,
    };
    let progress = Arc::new(ApplyProgress::default());
    let progress_of = progress.clone();
    let paced = s3.clone();
    let started = Instant::now();
    let ticker = Progress::start("apply", move || {
        let shown = &progress_of;
        let limit = paced.pacer().limit();
        let finished = shown.finished();
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = finished as f64 / secs;
        let left = remaining.saturating_sub(finished);
        Reading {
            done: finished,
            total: remaining,
            message: format!(
                "{}/s · {} done, {} failed, {} drifted, {} uncertain · {} in flight at most ({}){} · ETA {}",
                thousands(rate as u64),
                thousands(shown.done.load(Ordering::Relaxed)),
                thousands(shown.failed.load(Ordering::Relaxed)),
                thousands(shown.drifted.load(Ordering::Relaxed)),
                thousands(shown.uncertain.load(Ordering::Relaxed)),
                limit.limit,
                limit.bound.as_str(),
                match paced.pacer().narrowest_window() {
                    w if w < limit.limit => format!(", a throttled prefix {w}"),
                    _ => String::new(),
                },
                if rate > 0.0 {
                    format!("{:.0}s", left as f64 / rate)
                } else {
                    "-".into()
                }
            ),
        }
    });
    let result = apply::apply(&s3, catalog.path(), &begun, &options, &progress, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    ticker.finish().await;
    let summary = match result {
        Ok(summary) => summary,
        Err(apply::ApplyError::Interrupted) => {
            eprintln!(
                "stopped: {} actions done, {} not sent (pending again)",
                thousands(progress.done.load(Ordering::Relaxed)),
                thousands(progress.released.load(Ordering::Relaxed)),
            );
            return Err(apply::ApplyError::Interrupted.into());
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        let out = summary_json(&catalog, &report, Some(&summary), Some(&pre))?;
        let failed = out["plan"]["failed"].as_u64().unwrap_or(0);
        println!("{out:#}");
        return Ok(exit_code(failed));
    }
    let keys_of = super::scan_command(
        global,
        &pre.scan.location,
        &format!("--keys-of {}", output::shell_word(&info.name)),
    );
    print_summary(&catalog, &info.name, &summary, &keys_of)
}

/// What the preflight found that a person should see before the question.
fn print_preflight(pre: &preflight::Preflight) {
    if let Some(report) = &pre.report {
        for f in report.checks.iter().filter(|f| f.level != check::Level::Ok) {
            super::check::print_finding(f);
        }
    }
    for (what, guard) in [
        ("copies", &pre.guards.copies),
        ("new delete markers", &pre.guards.markers),
    ] {
        match guard {
            apply::Guard::Conditions => println!(
                "guard: {what} are sent on the condition the catalog knows their key by (If-Match / If-None-Match: no extra request)"
            ),
            apply::Guard::Listing(why) => println!("guard: {}", shown(why)),
            apply::Guard::None => {}
        }
    }
    for note in &pre.notes {
        println!("note: {}", shown(note));
    }
}

fn dry_run(
    catalog: &Catalog,
    report: &plan::PlanReport,
    pre: Option<&preflight::Preflight>,
    args: &ApplyArgs,
) -> Result<u8, CliError> {
    let info = &report.info;
    if args.json.json {
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
        let mut out = super::plan::show_json(catalog, report)?;
        out["dry_run"] = true.into();
        if let Some(pre) = pre {
            out["guards"] = guards_json(&pre.guards);
        }
        out["remaining"] = actions.into();
        println!("{out:#}");
        return Ok(exit::OK);
    }
    println!(
        "dry run: these {} actions would be executed (nothing is changed):",
        thousands(info.status.remaining(args.retry_failed))
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
    Ok(exit::OK)
}

fn print_summary(
    catalog: &Catalog,
    name: &str,
    summary: &apply::ApplySummary,
    keys_of: &str,
) -> Result<u8, CliError> {
    let name = shown(name);
    let finished = summary.done
        + summary.failed
        + summary.skipped
        + summary.drifted
        + summary.restoring
        + summary.uncertain;
    let (settled, bound) = summary.limit.settled;
    println!(
        "applied plan {name}: {} done, {} failed, {} skipped, {} drifted, {} uncertain, {} restoring in {:.1} s ({} actions/s); {} requests, {} retried, {} throttled; {} in flight at most ({}: {})",
        thousands(summary.done),
        thousands(summary.failed),
        thousands(summary.skipped),
        thousands(summary.drifted),
        thousands(summary.uncertain),
        thousands(summary.restoring),
        summary.elapsed.as_secs_f64(),
        output::rate(finished, summary.elapsed),
        thousands(summary.requests),
        thousands(summary.retries),
        thousands(summary.throttled),
        thousands(settled as u64),
        bound.as_str(),
        bound_words(bound, summary.limit.max),
    );
    if summary.drifted > 0 {
        println!(
            "drifted: {} actions were left alone because their key changed after the scan (see them: s3rewind sql \"SELECT key, expected_latest, error FROM plan_review WHERE plan = '{name}' AND status = 'drifted'\")\n  \
             to plan them again: `{}` lists the plan's keys again, then make a new plan (same rule, a new --name); this plan stays verifiable and undoable",
            thousands(summary.drifted),
            output::shown_lines(keys_of)
        );
    }
    if summary.uncertain > 0 {
        println!(
            "uncertain: {} writes lost their answer and the key shows a version that may or may not be theirs; a rerun looks again and never sends them twice\n  \
             see them: s3rewind sql \"SELECT id, key, candidate_version_id, error FROM plan_review WHERE plan = '{name}' AND status = 'uncertain'\"\n  \
             settle each: s3rewind plan resolve {name} ID --ours (or --not-ours); docs/runbook.md says how to decide",
            thousands(summary.uncertain)
        );
    }
    let failures = catalog.failures_by_code(catalog.plan_id(name.as_ref())?.unwrap_or(0))?;
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
/// when the plan is from another scan, or the client points at another
/// endpoint than the scan did.
pub(super) async fn connect_for(
    global: &GlobalArgs,
    catalog: &Catalog,
    info: &catalog::plans::PlanInfo,
    pace: s3io::Pace,
) -> Result<(catalog::ScanRecord, S3), CliError> {
    let s3 = S3::connect(&super::client_options(global, pace)).await;
    let scan = preflight::fits(&s3, catalog, info)?.map_err(CliError::Refused)?;
    Ok((scan, s3))
}

fn guards_json(guards: &apply::Guards) -> serde_json::Value {
    let one = |g: &apply::Guard| match g {
        apply::Guard::Listing(why) => serde_json::json!({ "guard": g.as_str(), "why": why }),
        g => serde_json::json!({ "guard": g.as_str() }),
    };
    serde_json::json!({ "copies": one(&guards.copies), "markers": one(&guards.markers) })
}

/// `apply --json`: this run's counts (`run`, absent when nothing was left
/// to do) and the plan's standing after it.
fn summary_json(
    catalog: &Catalog,
    report: &plan::PlanReport,
    run: Option<&apply::ApplySummary>,
    pre: Option<&preflight::Preflight>,
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
            "uncertain": s.uncertain,
            "guard": s.guards.copies.as_str(),
            "guards": guards_json(&s.guards),
            "seconds": s.elapsed.as_secs_f64(),
            "requests": s.requests,
            "retries": s.retries,
            "throttled": s.throttled,
            "concurrency": limit_json(&s.limit),
        })),
        "notes": pre.map(|p| p.notes.clone()).unwrap_or_default(),
        "failures_by_code": failures,
    }))
}

/// Why the limit on requests in flight is where it is, in words.
pub fn bound_words(bound: s3io::limit::Bound, max: usize) -> String {
    use s3io::limit::Bound;
    match bound {
        Bound::Growing => "still growing: the round trip stayed near its floor".into(),
        Bound::Cap => format!("--concurrency {max} reached"),
        Bound::Latency => "more in flight only made S3's answers slower".into(),
        Bound::Cpu => "more in flight only queued on this machine's busy CPU".into(),
        Bound::Errors => "S3 answered with errors".into(),
        Bound::Demand => "fewer requests were waiting".into(),
        Bound::Fixed => "fixed".into(),
    }
}

/// The limit on requests in flight for `--json`: where it settled, why,
/// the upper bound, and the round-trip floor it was judged by.
pub fn limit_json(r: &s3io::limit::Reading) -> serde_json::Value {
    serde_json::json!({
        "limit": r.settled.0,
        "bound": r.settled.1.as_str(),
        "max": r.max,
        "floor_ms": r.floor.map(|f| f.as_secs_f64() * 1000.0),
    })
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
