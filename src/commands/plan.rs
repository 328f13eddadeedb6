//! `s3rewind plan …`.

use catalog::Catalog;
use model::time::{parse_duration, parse_time};
use plan::{ActionKind, PlanRequest, Rule};

use crate::cli::{GlobalArgs, PlanCommand, RestoreMode};
use crate::output::{self, bytes, print_table, shown, thousands};
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, command: PlanCommand) -> Result<u8, CliError> {
    let catalog = Catalog::open(&global.catalog).await?;
    // Making or dropping a plan changes the catalog; reading plans does not.
    let _lock = match &command {
        PlanCommand::List(_) | PlanCommand::Show { .. } => None,
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
            let into = a
                .into
                .as_deref()
                .map(|url| {
                    model::Destination::parse(url).map_err(|why| {
                        CliError::Usage(format!(
                            "--into {url:?} is not an S3 location: {why}\n  hint: write s3://BUCKET or s3://BUCKET/PREFIX"
                        ))
                    })
                })
                .transpose()?;
            let rule = Rule::Restore {
                to,
                rollback: a.mode == RestoreMode::Rollback,
                keep_new_keys: a.keep_new_keys,
                into,
            };
            create(
                global,
                &catalog,
                PlanRequest {
                    name: a.name.name.as_deref(),
                    rule,
                    where_expr: a.filter.where_expr.as_deref(),
                    allow_before_data: a.allow_before_data,
                    copy_same_content: a.copy_same_content,
                },
            )
        }
        PlanCommand::Undelete(a) => {
            let (since, until) = super::time_window(a.since.as_deref(), a.until.as_deref())?;
            create(
                global,
                &catalog,
                PlanRequest {
                    name: a.name.name.as_deref(),
                    rule: Rule::Undelete { since, until },
                    where_expr: a.filter.where_expr.as_deref(),
                    allow_before_data: false,
                    copy_same_content: false,
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
                global,
                &catalog,
                PlanRequest {
                    name: a.name.name.as_deref(),
                    rule,
                    where_expr: a.filter.where_expr.as_deref(),
                    allow_before_data: false,
                    copy_same_content: false,
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
                global,
                &catalog,
                PlanRequest {
                    name: Some(&a.name),
                    rule: Rule::Sql { query },
                    where_expr: None,
                    allow_before_data: false,
                    copy_same_content: false,
                },
            )
        }
        PlanCommand::Undo { plan, name } => create(
            global,
            &catalog,
            PlanRequest {
                name: name.name.as_deref(),
                rule: Rule::Undo { of: plan },
                where_expr: None,
                allow_before_data: false,
                copy_same_content: false,
            },
        ),
        PlanCommand::Resolve {
            plan,
            actions,
            ours,
            not_ours: _,
        } => {
            let info = plan::find_plan(&catalog, &plan)?;
            let resolution = match ours {
                true => catalog::Resolution::Ours,
                false => catalog::Resolution::NotOurs,
            };
            let mut catalog = catalog;
            for id in actions {
                let status = catalog.resolve(info.id, id, resolution)?;
                println!("plan {} action {id}: {status}", shown(&plan));
            }
            Ok(exit::OK)
        }
        PlanCommand::List(json) => list(&catalog, json.json),
        PlanCommand::Show { name, json } => show(&catalog, &name, json.json),
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

/// A warning when the rule looks at a time after the inventory report
/// the catalog's entries came from: what happened since is not in them,
/// but under the prefixes listed again.
fn freshness_warning(global: &GlobalArgs, catalog: &Catalog, rule: &Rule) -> Result<(), CliError> {
    let time = match rule {
        Rule::Restore { to, .. } => *to,
        Rule::Undelete { until, .. } => until.unwrap_or_else(model::time::now),
        Rule::Expire { as_of, .. } => *as_of,
        _ => return Ok(()),
    };
    let sources = catalog.sources()?;
    let rescan = match catalog.scan_record()? {
        Some(scan) => super::scan_command(global, &scan.location, "--rescan PREFIX"),
        None => "s3rewind scan s3://BUCKET --rescan PREFIX".into(),
    };
    let listed: Vec<String> = sources
        .iter()
        .filter(|s| s.kind == "listing")
        .map(|s| format!("\"{}\"", shown(&s.prefix)))
        .collect();
    for s in sources.iter().filter(|s| s.kind == "inventory") {
        let stale = parse_time(&s.as_of).is_ok_and(|at| at < time);
        if stale {
            eprintln!(
                "warning: the catalog's entries come from the inventory report of {}, before the rule's time {}: writes and deletes since are not in them{}\n  hint: `{}` lists the prefixes the incident touched (one --rescan each), then make the plan again",
                s.as_of,
                model::time::format_time(time),
                if listed.is_empty() {
                    String::new()
                } else {
                    format!(" (except under the prefixes listed since: {})", listed.join(", "))
                },
                crate::output::shown_lines(&rescan)
            );
        }
    }
    Ok(())
}

fn create(
    global: &GlobalArgs,
    catalog: &Catalog,
    request: PlanRequest<'_>,
) -> Result<u8, CliError> {
    freshness_warning(global, catalog, &request.rule)?;
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
    if created.already > 0 {
        println!("{}", already_line(&report));
    }
    if created.unrecoverable > 0 {
        println!(
            "{} deleted keys have no version left to bring back, so they are not planned; for example:",
            thousands(created.unrecoverable)
        );
        for key in &created.unrecoverable_sample {
            println!("  {}", shown(key));
        }
    }
    if let (Some(expr), 0, Rule::Restore { .. } | Rule::Undelete { .. }) =
        (request.where_expr, created.selected_keys, &request.rule)
    {
        let filter = catalog::TimelineFilter {
            where_expr: Some(expr),
            since: None,
            until: None,
        };
        if let Some((_, _, older)) = catalog.time_span(&filter)? {
            println!(
                "note: --where matched no key's newest entry, but {} older entries: this rule judges each key by its newest entry, which after an incident is often the bad version or a delete marker\n  hint: to choose keys by what they held before, name them with a condition on the key (e.g. key LIKE 'img/%'), or write the plan as SQL (`s3rewind plan sql`)",
                thousands(older)
            );
        }
    }
    if created.irreversible > 0 {
        let undone = match &request.rule {
            Rule::Undo { of } => plan::find_plan(catalog, of).ok(),
            _ => None,
        };
        match undone.filter(|p| p.rule == "undo") {
            // An undo deletes copies another plan made: this redo cannot
            // make them again, and says the keys stay as the undo left them.
            Some(p) => println!(
                "{} versions plan {} deleted were copies another plan made: they cannot come back, so this redo is partial — those keys stay as plan {} left them; to redo that plan whole, make it again (same rule, a new --name)",
                thousands(created.irreversible),
                shown(&p.name),
                shown(&p.name)
            ),
            None => println!(
                "{} versions the plan deleted for good cannot come back: they are not in this plan",
                thousands(created.irreversible)
            ),
        }
    }
    println!(
        "review it: `s3rewind plan show {0}`, or SQL on the view plan_review (WHERE plan = '{0}')",
        shown(&created.name)
    );
    Ok(exit::OK)
}

/// A plan's progress in words: not applied, partly applied, applied (with failures).
pub fn state(p: &catalog::plans::PlanInfo) -> &'static str {
    let s = &p.status;
    if p.undone_by.is_some() {
        "undone"
    } else if s.pending + s.in_flight + s.restoring + s.uncertain == 0 && s.total() > 0 {
        if s.failed > 0 {
            "applied with failures"
        } else {
            "applied"
        }
    } else if s.total() > s.pending {
        "partly applied"
    } else {
        "not applied"
    }
}

/// A plan in `plan list --json`, `status --json` and `plan show --json`.
pub fn plan_json(p: &catalog::plans::PlanInfo) -> serde_json::Value {
    let s = &p.status;
    serde_json::json!({
        "name": p.name,
        "rule": p.rule,
        "parameters": p.parameters,
        "created_at": p.created_at,
        "actions": p.actions,
        "done": s.done,
        "failed": s.failed,
        "skipped": s.skipped,
        "drifted": s.drifted,
        "restoring": s.restoring,
        "uncertain": s.uncertain,
        "pending": s.pending + s.in_flight,
        "undone_by": p.undone_by,
        "state": state(p),
    })
}

fn list(catalog: &Catalog, json: bool) -> Result<u8, CliError> {
    let plans = catalog.plans()?;
    if json {
        let plans: Vec<_> = plans.iter().map(plan_json).collect();
        println!("{:#}", serde_json::json!({ "plans": plans }));
        return Ok(exit::OK);
    }
    if plans.is_empty() {
        println!("no plans yet: `s3rewind plan restore --to TIME` makes one");
        return Ok(exit::OK);
    }
    let headers = [
        "name",
        "rule",
        "created",
        "actions",
        "done",
        "failed",
        "skipped",
        "drifted",
        "pending",
        "uncertain",
        "state",
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
                thousands(p.status.drifted),
                thousands(p.status.pending + p.status.in_flight),
                thousands(p.status.uncertain),
                state(p).to_owned(),
            ]
        })
        .collect();
    print_table(&headers, &rows);
    Ok(exit::OK)
}

fn show(catalog: &Catalog, name: &str, json: bool) -> Result<u8, CliError> {
    let report = plan::show_plan(catalog, name)?;
    match json {
        true => println!("{:#}", show_json(catalog, &report)?),
        false => {
            let hazards = hazards(catalog, &report)?;
            print_report(&report, true);
            if !hazards.is_empty() {
                println!(
                    "hazards the catalog shows (`s3rewind check --plan {}` checks the bucket too):",
                    shown(name)
                );
                for f in &hazards {
                    super::check::print_finding(f);
                }
            }
        }
    }
    Ok(exit::OK)
}

/// What the catalog alone shows of a plan's hazards (`plan show`, and
/// `apply --json` on a plan it refuses).
pub fn hazards(
    catalog: &Catalog,
    report: &plan::PlanReport,
) -> Result<Vec<check::Finding>, CliError> {
    let scan = catalog.scan_record()?.ok_or(plan::PlanError::NoScan)?;
    let mut hazards = check::catalog_hazards(catalog, report.info.id, &scan.versioning)?;
    hazards.extend(super::report_gaps(catalog)?);
    Ok(hazards)
}

/// `plan show --json`'s object, which `apply --json` prints too when it
/// refuses a plan or only shows what it would do.
pub fn show_json(
    catalog: &Catalog,
    report: &plan::PlanReport,
) -> Result<serde_json::Value, CliError> {
    let mut out = report_json(report);
    out["hazards"] = serde_json::to_value(hazards(catalog, report)?).unwrap_or_default();
    Ok(out)
}

/// The plan, its actions by kind, keys, cost and sample.
fn report_json(report: &plan::PlanReport) -> serde_json::Value {
    let mut plan = plan_json(&report.info);
    let kinds: serde_json::Map<String, serde_json::Value> = report
        .kinds
        .iter()
        .map(|k| {
            (
                k.kind.as_str().to_owned(),
                serde_json::json!({ "actions": k.actions, "bytes": k.bytes }),
            )
        })
        .collect();
    let sample: Vec<serde_json::Map<String, serde_json::Value>> = report
        .sample
        .iter()
        .map(|row| {
            row.iter()
                .map(|(column, value)| (column.clone(), value.clone().into()))
                .collect()
        })
        .collect();
    let e = &report.estimate;
    plan["keys"] = report.keys.into();
    plan["kinds"] = kinds.into();
    plan["cost"] = serde_json::json!({
        "write_requests": e.write_requests,
        "delete_requests": e.delete_requests,
        "dollars": e.dollars,
    });
    plan["sample"] = sample.into();
    plan["into"] = report.into.as_ref().map(|(d, _)| d.to_string()).into();
    plan["already"] = serde_json::json!({
        "keys": report.already_keys(),
        "by": report.already.iter()
            .map(|(by, n)| (by.as_str().to_owned(), serde_json::json!(n)))
            .collect::<serde_json::Map<_, _>>(),
    });
    plan["stale"] = stale_json(&report.stale);
    plan
}

/// A plan's staleness for `--json` (`plan show`, `check`): `null`, or its
/// changed keys and the changes.
pub fn stale_json(stale: &catalog::Staleness) -> serde_json::Value {
    match stale.is_stale() {
        false => serde_json::Value::Null,
        true => serde_json::json!({
            "keys": stale.keys,
            "changes": stale.changes.iter().map(|c| serde_json::json!({
                "revision": c.revision, "kind": c.kind, "plan": c.plan, "at": c.at,
            })).collect::<Vec<_>>(),
        }),
    }
}

/// A stale plan in words (`plan show`, `check`, the report): how many of
/// its keys changed after it was made, and by what — the plans applied on
/// them, or their keys listed again. `None` when it is not stale. Plan
/// names are as given: escape the text for where it is shown.
pub fn stale_words(stale: &catalog::Staleness) -> Option<String> {
    if !stale.is_stale() {
        return None;
    }
    let changes: Vec<String> = stale
        .changes
        .iter()
        .map(|c| match &c.plan {
            Some(p) if c.kind == "apply" => format!("plan {p} applied at {}", c.at),
            Some(p) => format!("plan {p}'s keys listed again at {}", c.at),
            None => format!("{} at {}", c.kind, c.at),
        })
        .collect();
    Some(format!(
        "{} of its keys changed after it was made ({}): apply refuses it; make it again",
        thousands(stale.keys),
        changes.join("; ")
    ))
}

/// The keys a restore left alone as already holding the content of T.
fn already_line(report: &plan::PlanReport) -> String {
    let by: Vec<String> = report
        .already
        .iter()
        .map(|(by, n)| match by {
            model::content::KnownBy::Journal => format!("{} by apply's journal", thousands(*n)),
            model::content::KnownBy::Etag => {
                format!("{} by the same size and single-part ETag", thousands(*n))
            }
        })
        .collect();
    format!(
        "already     {} keys already as at T: their newest version holds the content to restore ({}), so no copy is planned (plan_review lists them as action 'already'); an ETag says nothing of metadata, tags or ACL: to bring those back too, make the plan again with --copy-same-content",
        thousands(report.already_keys()),
        by.join(", ")
    )
}

/// What `plan show` and `apply` print about a plan; `sample` adds its first actions.
pub fn print_report(report: &plan::PlanReport, sample: bool) {
    let info = &report.info;
    println!("plan        {}", shown(&info.name));
    println!("rule        {} {}", info.rule, shown(&info.parameters));
    println!("created     {}", info.created_at);
    if let Some((d, _)) = &report.into {
        println!(
            "into        {}: its copies land there, not on the scanned keys (the sample's lands_at column shows where)",
            shown(&d.to_string())
        );
    }
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
    if report.already_keys() > 0 {
        println!("{}", already_line(report));
    }
    let s = &info.status;
    println!(
        "progress    {} done, {} failed, {} skipped, {} drifted, {} uncertain, {} restoring, {} pending",
        thousands(s.done),
        thousands(s.failed),
        thousands(s.skipped),
        thousands(s.drifted),
        thousands(s.uncertain),
        thousands(s.restoring),
        thousands(s.pending + s.in_flight)
    );
    if let Some(undo) = &info.undone_by {
        println!(
            "undone      by plan {} (applied): apply refuses this plan again unless --reapply",
            shown(undo)
        );
    }
    if let Some(words) = stale_words(&report.stale) {
        println!("stale       {}", shown(&words));
    }
    if let Some(k) = report
        .kinds
        .iter()
        .find(|k| k.kind == ActionKind::DeleteVersion)
    {
        println!(
            "irreversible {} versions are deleted for good: `plan undo` cannot bring them back",
            thousands(k.actions)
        );
    }
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
