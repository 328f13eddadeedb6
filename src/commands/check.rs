//! `s3rewind check`, and the same checks as apply's first step.

use catalog::Catalog;
use check::{Finding, Level, PlanRef, Report};
use s3io::S3;

use crate::cli::{CheckArgs, GlobalArgs};
use crate::output::{shown, thousands};
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, args: CheckArgs) -> Result<u8, CliError> {
    let pace = s3io::Pace {
        concurrency: usize::from(args.concurrency),
        max_rps: None,
        adaptive: true,
    };
    let given = args
        .bucket
        .as_deref()
        .map(super::scan::parse_s3_url)
        .transpose()?;
    let catalog = match (&args.plan, &given) {
        (None, Some(_)) => None,
        _ => Some(Catalog::open(&global.catalog).await?),
    };
    // Whether the plan's keys changed after it was made (another plan
    // applied on them, or listed again): apply refuses it then.
    let mut stale = catalog::Staleness::default();
    let (bucket, s3, plan, scanned) = match (&catalog, &args.plan) {
        (Some(catalog), Some(name)) => {
            let info = plan::find_plan(catalog, name)?;
            let (scan, s3) = super::apply::connect_for(global, catalog, &info, pace).await?;
            if let Some((b, _)) = &given {
                if *b != scan.location.bucket {
                    return Err(CliError::Usage(format!(
                        "plan {} belongs to bucket {}, not {}\n  hint: leave the bucket out: check --plan NAME checks the plan's own bucket",
                        shown(name),
                        shown(&scan.location.bucket),
                        shown(b)
                    )));
                }
            }
            let plan = PlanRef {
                id: info.id,
                name: info.name.clone(),
                into: plan::destination_of(&info),
            };
            stale = catalog.staleness(info.id, false)?;
            (scan.location.bucket, s3, Some(plan), Some(scan.versioning))
        }
        (Some(catalog), None) => {
            let scan = catalog.scan_record()?.ok_or(plan::PlanError::NoScan)?;
            let s3 = S3::connect(&super::client_options(global, pace)).await;
            (scan.location.bucket, s3, None, Some(scan.versioning))
        }
        (None, _) => {
            let (bucket, _) = given.expect("a bucket when there is no catalog");
            let s3 = S3::connect(&super::client_options(global, pace)).await;
            (bucket, s3, None, None)
        }
    };
    let judged = match (&catalog, &plan) {
        (Some(c), Some(p)) => Some((c, p)),
        _ => None,
    };
    let mut report = check::check(&s3, &bucket, judged, scanned.as_deref())
        .await
        .map_err(check_error)?;
    if let Some(catalog) = &catalog {
        report.checks.extend(super::report_gaps(catalog)?);
    }
    print(&report, plan.is_some().then_some(&stale), args.json.json);
    Ok(exit_code(&report))
}

pub(super) fn check_error(e: check::CheckError) -> CliError {
    match e {
        check::CheckError::Catalog(e) => CliError::Catalog(e),
        check::CheckError::S3(e) => CliError::S3(e),
    }
}

fn exit_code(report: &Report) -> u8 {
    if report.checks.iter().any(|f| f.level == Level::Block) {
        exit::BLOCKED
    } else {
        exit::OK
    }
}

/// `stale`: the plan's staleness, when a plan is checked.
fn print(report: &Report, stale: Option<&catalog::Staleness>, json: bool) {
    if json {
        let mut out = serde_json::to_value(report).unwrap_or_default();
        out["stale"] = stale.map_or(serde_json::Value::Null, super::plan::stale_json);
        out["blocked"] = report.checks.iter().any(|f| f.level == Level::Block).into();
        out["not_checked"] = report
            .not_checked()
            .iter()
            .map(|f| f.check)
            .collect::<Vec<_>>()
            .into();
        println!("{out:#}");
        return;
    }
    println!(
        "check s3://{}{}",
        shown(&report.bucket),
        report
            .plan
            .as_deref()
            .map(|p| format!(" for plan {}", shown(p)))
            .unwrap_or_default()
    );
    if let Some(words) = stale.and_then(super::plan::stale_words) {
        println!(
            "stale: the plan was made from an older catalog: {}",
            shown(&words)
        );
    }
    for f in &report.checks {
        print_finding(f);
    }
    let unknown: Vec<&str> = report.not_checked().iter().map(|f| f.check).collect();
    if !unknown.is_empty() {
        println!(
            "not checked: {} (each says why above; grant what its fix names and check again)",
            unknown.join(", ")
        );
    }
    let blocks: Vec<&str> = report
        .checks
        .iter()
        .filter(|f| f.level == Level::Block)
        .map(|f| f.check)
        .collect();
    if !blocks.is_empty() {
        println!(
            "blocked by: {}. apply refuses the plan until they are fixed, or until `--accept {}` says to go ahead anyway",
            blocks.join(", "),
            blocks.join(" --accept ")
        );
    }
}

/// One check as a line, with its fix and details under it.
pub(super) fn print_finding(f: &Finding) {
    let count = match f.count {
        0 => String::new(),
        n => format!(" [{}]", thousands(n)),
    };
    println!(
        "  {:<5}  {:<14} {}{count}",
        f.level.as_str(),
        f.check,
        shown(&f.summary)
    );
    for d in &f.details {
        println!("{:23}- {}", "", shown(d));
    }
    if let (Some(fix), true) = (&f.fix, f.level != Level::Ok) {
        println!("{:23}fix: {}", "", shown(fix));
    }
}
