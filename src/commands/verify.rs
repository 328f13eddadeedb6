//! `s3rewind verify`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use catalog::Catalog;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::output::{shown, thousands, Progress, Reading};
use crate::{exit, CliError};

/// Mismatches printed one by one before the rest are only counted.
const SHOWN: usize = 50;

pub async fn run(global: &GlobalArgs, args: VerifyArgs) -> Result<u8, CliError> {
    let catalog = Catalog::open(&global.catalog).await?;
    let info = plan::find_plan(&catalog, &args.name)?;
    let name = shown(&info.name).into_owned();
    let s = &info.status;
    // A plan of no action (a restore that found every key already as at
    // T) needs no apply to be verified.
    if s.done + s.failed + s.skipped == 0 && info.actions > 0 {
        return Err(CliError::Usage(format!(
            "plan {name} has not been applied ({} actions pending): there is nothing to verify yet\n  hint: `s3rewind apply {}` first",
            thousands(info.actions),
            crate::output::shell_word(&info.name)
        )));
    }
    let pace = s3io::Pace {
        concurrency: usize::from(args.concurrency),
        max_rps: None,
        adaptive: true,
    };
    let (scan, s3) = super::apply::connect_for(global, &catalog, &info, pace).await?;
    let shown_plan = plan::show_plan(&catalog, &args.name)?;
    let keys = shown_plan.keys + shown_plan.already_keys();
    let checked = Arc::new(AtomicU64::new(0));
    let shown_checked = checked.clone();
    let ticker = Progress::start("verify", move || Reading {
        done: shown_checked.load(Ordering::Relaxed),
        total: keys,
        message: "keys checked".into(),
    });
    let target = apply::ApplyTarget::of(&info, &scan, scan.revision);
    let result = apply::verify::verify(&s3, &catalog, &target, |n| {
        checked.store(n, Ordering::Relaxed)
    })
    .await;
    ticker.finish().await;
    let verified = result?;
    let code = match verified.mismatches.is_empty() {
        true => exit::OK,
        false => exit::ERROR,
    };
    if args.json.json {
        let mismatches: Vec<_> = verified
            .mismatches
            .iter()
            .map(|m| serde_json::json!({ "key": m.key, "expected": m.expected, "found": m.found }))
            .collect();
        println!(
            "{:#}",
            serde_json::json!({
                "plan": info.name,
                "keys": verified.keys,
                "matching": verified.matching,
                "mismatching": verified.mismatches.len(),
                "mismatches": mismatches,
                "requests": s3.counters().requests(),
            })
        );
        return Ok(code);
    }
    let place = match plan::destination_of(&info) {
        Some(d) => format!("{d} (restored into from {})", scan.location),
        None => scan.location.to_string(),
    };
    println!(
        "verified plan {name} on {}: {} of {} keys as the plan meant ({} requests)",
        shown(&place),
        thousands(verified.matching),
        thousands(verified.keys),
        thousands(s3.counters().requests())
    );
    if !verified.mismatches.is_empty() {
        println!(
            "{} keys are not as the plan meant:",
            thousands(verified.mismatches.len() as u64)
        );
        for m in verified.mismatches.iter().take(SHOWN) {
            println!(
                "  {}: expected {}, found {}",
                shown(&m.key),
                shown(&m.expected),
                shown(&m.found)
            );
        }
        if verified.mismatches.len() > SHOWN {
            println!(
                "  … and {} more (--json lists them all)",
                verified.mismatches.len() - SHOWN
            );
        }
        if s.failed + s.skipped + s.pending + s.in_flight + s.restoring > 0 {
            println!(
                "  the plan has {} failed, {} skipped and {} unfinished actions: `s3rewind status` and plan_review say which",
                thousands(s.failed),
                thousands(s.skipped),
                thousands(s.pending + s.in_flight + s.restoring)
            );
        }
    }
    if s.uncertain > 0 {
        println!(
            "  {} actions are uncertain (a write whose answer was lost, and a version that may or may not be its own): `s3rewind plan resolve {name} ID --ours|--not-ours` settles each (docs/runbook.md)",
            thousands(s.uncertain)
        );
    }
    Ok(code)
}
