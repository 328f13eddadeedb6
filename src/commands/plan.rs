//! `s3rewind plan …`.

use catalog::Catalog;
use model::time::{format_time, parse_duration, parse_time};
use plan::{ActionKind, PlanRequest, Rule};

use crate::cli::{GlobalArgs, PlanCommand, RestoreMode};
use crate::output::{self, bytes, print_table, shown, thousands};
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, command: PlanCommand) -> Result<u8, CliError> {
    let catalog = Catalog::open(&global.catalog).await?;
    // Making or dropping a plan changes the catalog; reading plans does not.
    let _lock = match &command {
        PlanCommand::List | PlanCommand::Show { .. } => None,
        _ => Some(catalog::WorkLock::take(&global.catalog, "plan")?),
    };
    match command {
        PlanCommand::Restore(a) => {
            let to = parse_time(&a.to)?;
            if to > model::time::now() {
                eprintln!(
                    "note: {} is in the future: every key is already as it will be then",
                    a.to
                );
            }
            let rule = Rule::Restore {
                to,
                rollback: a.mode == RestoreMode::Rollback,
                keep_new_keys: a.keep_new_keys,
            };
            create(
                &catalog,
                PlanRequest {
                    name: a.name.name.as_deref(),
                    rule,
                    where_expr: a.filter.where_expr.as_deref(),
                    allow_before_data: a.allow_before_data,
                },
            )
        }
        PlanCommand::Undelete(a) => {
            let time = |t: &String| parse_time(t);
            let since = a.since.as_ref().map(time).transpose()?;
            let until = a.until.as_ref().map(time).transpose()?;
            if let (Some(s), Some(u)) = (since, until) {
                if s > u {
                    return Err(CliError::Usage(format!(
                        "--since {} is after --until {}: the window is empty",
                        format_time(s),
                        format_time(u)
                    )));
                }
            }
            create(
                &catalog,
                PlanRequest {
                    name: a.name.name.as_deref(),
                    rule: Rule::Undelete { since, until },
                    where_expr: a.filter.where_expr.as_deref(),
                    allow_before_data: false,
                },
            )
        }
        PlanCommand::Expire(a) => {
            let rule = Rule::Expire {
                older_than: parse_duration(&a.noncurrent_older_than)?,
                keep_newest: i64::from(a.keep_newest),
                expired_markers: a.expired_markers,
                as_of: match &a.as_of {
                    Some(t) => parse_time(t)?,
                    None => model::time::now(),
                },
            };
            create(
                &catalog,
                PlanRequest {
                    name: a.name.name.as_deref(),
                    rule,
                    where_expr: a.filter.where_expr.as_deref(),
                    allow_before_data: false,
                },
            )
        }
        PlanCommand::Sql(a) => {
            let query = match (&a.query, &a.file) {
                (Some(q), _) => q.clone(),
                (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| {
                    CliError::Usage(format!("cannot read the query file {}: {e}", f.display()))
                })?,
                (None, None) => unreachable!("clap requires one"),
            };
            create(
                &catalog,
                PlanRequest {
                    name: Some(&a.name),
                    rule: Rule::Sql { query },
                    where_expr: None,
                    allow_before_data: false,
                },
            )
        }
        PlanCommand::List => list(&catalog),
        PlanCommand::Show { name } => show(&catalog, &name),
        PlanCommand::Drop { name, yes } => {
            let info = plan::find_plan(&catalog, &name)?;
            let touched = info.status.total() - info.status.pending;
            if touched > 0 {
                let question = format!(
                    "plan {} was partly applied ({touched} of {} actions); dropping it loses that record. Drop it?",
                    shown(&name),
                    info.actions
                );
                if !output::confirm(&question, yes)? {
                    eprintln!("nothing changed");
                    return Ok(exit::ERROR);
                }
            }
            let mut catalog = catalog;
            catalog.drop_plan(info.id)?;
            println!(
                "dropped plan {} ({} actions)",
                shown(&name),
                thousands(info.actions)
            );
            Ok(exit::OK)
        }
    }
}

fn create(catalog: &Catalog, request: PlanRequest<'_>) -> Result<u8, CliError> {
    let created = plan::create_plan(catalog, &request)?;
    let report = plan::show_plan(catalog, &created.name)?;
    let kinds: Vec<String> = report
        .kinds
        .iter()
        .map(|k| format!("{} {}", thousands(k.actions), k.kind.as_str()))
        .collect();
    println!(
        "plan {}: {} actions{} on {} keys, made in {:.1} s",
        shown(&created.name),
        thousands(created.actions),
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        },
        thousands(report.keys),
        created.elapsed.as_secs_f64()
    );
    if created.unrecoverable > 0 {
        println!(
            "{} deleted keys have no version left to bring back, so they are not planned; for example:",
            thousands(created.unrecoverable)
        );
        for key in &created.unrecoverable_sample {
            println!("  {}", shown(key));
        }
    }
    println!(
        "review it: `s3rewind plan show {0}`, or SQL on the view plan_review (WHERE plan = '{0}')",
        shown(&created.name)
    );
    Ok(exit::OK)
}

fn list(catalog: &Catalog) -> Result<u8, CliError> {
    let plans = catalog.plans()?;
    if plans.is_empty() {
        println!("no plans yet: `s3rewind plan restore --to TIME` makes one");
        return Ok(exit::OK);
    }
    let headers = [
        "name", "rule", "created", "actions", "done", "failed", "skipped", "pending",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = plans
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.rule.clone(),
                p.created_at.clone(),
                thousands(p.actions),
                thousands(p.status.done),
                thousands(p.status.failed),
                thousands(p.status.skipped),
                thousands(p.status.pending + p.status.in_flight),
            ]
        })
        .collect();
    print_table(&headers, &rows);
    Ok(exit::OK)
}

fn show(catalog: &Catalog, name: &str) -> Result<u8, CliError> {
    print_report(&plan::show_plan(catalog, name)?, true);
    Ok(exit::OK)
}

/// What `plan show` and `apply` print about a plan; `sample` adds its first actions.
pub fn print_report(report: &plan::PlanReport, sample: bool) {
    let info = &report.info;
    println!("plan        {}", shown(&info.name));
    println!("rule        {} {}", info.rule, info.parameters);
    println!("created     {}", info.created_at);
    println!(
        "actions     {} on {} keys",
        thousands(info.actions),
        thousands(report.keys)
    );
    for k in &report.kinds {
        let extra = match k.kind {
            ActionKind::CopyVersion => format!(" ({} to copy)", bytes(k.bytes)),
            ActionKind::DeleteVersion => format!(" ({} freed)", bytes(k.bytes)),
            _ => String::new(),
        };
        println!(
            "  {:<18} {:>12}{extra}",
            k.kind.as_str(),
            thousands(k.actions)
        );
    }
    let s = &info.status;
    println!(
        "progress    {} done, {} failed, {} skipped, {} pending",
        thousands(s.done),
        thousands(s.failed),
        thousands(s.skipped),
        thousands(s.pending + s.in_flight)
    );
    let e = &report.estimate;
    println!(
        "cost        {} COPY/PUT requests + {} DELETE requests (free) ≈ ${:.4} at S3 list prices",
        thousands(e.write_requests),
        thousands(e.delete_requests),
        e.dollars
    );
    if sample && !report.sample.is_empty() {
        println!("first actions:");
        let headers: Vec<String> = report.sample[0].iter().map(|(n, _)| n.clone()).collect();
        let rows: Vec<Vec<String>> = report
            .sample
            .iter()
            .map(|r| r.iter().map(|(_, v)| v.clone()).collect())
            .collect();
        print_table(&headers, &rows);
    }
}
