//! Making a plan: from a request to a stored, numbered set of actions.

use std::time::{Duration, Instant};

use catalog::plans::{Duplicate, NewPlan, PlanWriter};
use catalog::Catalog;

use crate::rules::Rule;
use crate::{user, PlanError};

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    /// `None`: `<rule>-<n>`, the first free n.
    pub name: Option<&'a str>,
    pub rule: Rule,
    /// A SQL expression over `key_history`'s columns (restore, undelete:
    /// evaluated on each key's newest entry; expire: on each candidate).
    pub where_expr: Option<&'a str>,
    /// Restore to a time before the oldest entry (every key hidden) on purpose.
    pub allow_before_data: bool,
    /// Restore: copy back even where the key already holds the content.
    pub copy_same_content: bool,
}

/// A plan just made.
#[derive(Debug, Clone)]
pub struct Created {
    pub name: String,
    pub actions: u64,
    /// Undelete: keys deleted in the window with no version to bring back.
    pub unrecoverable: u64,
    pub unrecoverable_sample: Vec<String>,
    /// Undo: versions the undone plan deleted for good.
    pub irreversible: u64,
    /// Restore: keys whose newest version already holds the content of
    /// the version of T (no copy planned; the `already` table).
    pub already: u64,
    /// Built-in rules with `--where`: keys whose newest entry it selected
    /// (restore and undelete judge a key by it).
    pub selected_keys: u64,
    pub elapsed: Duration,
}

/// Keys listed by name in the unrecoverable report.
const SAMPLE: usize = 10;

/// Computes a plan and stores it with its actions, in one transaction: on
/// any error the catalog is left as it was.
pub fn create_plan(catalog: &Catalog, request: &PlanRequest<'_>) -> Result<Created, PlanError> {
    let started = Instant::now();
    let scan_id = finished_scan(catalog)?;
    if let (Rule::Restore { into: Some(d), .. }, Some(scan)) =
        (&request.rule, catalog.scan_record()?)
    {
        crate::check_destination(catalog, &scan, d)?;
    }
    let name = choose_name(catalog, request)?;
    check_time(catalog, request)?;
    let mut parameters = request.rule.parameters(request.where_expr);
    if request.copy_same_content {
        parameters["copy_same_content"] = serde_json::json!(true);
    }
    // The undo of a plan that acted elsewhere acts there too.
    let elsewhere = match &request.rule {
        Rule::Undo { of } => crate::find_plan(catalog, of)
            .ok()
            .and_then(|p| crate::destination_of(&p)),
        _ => None,
    };
    if let Some(d) = &elsewhere {
        parameters["into"] = serde_json::json!(d.to_string());
    }
    let parameters = parameters.to_string();
    let plan = NewPlan {
        name: &name,
        rule: request.rule.name(),
        parameters: &parameters,
        scan_id,
    };
    let mut created = Created {
        name: name.clone(),
        actions: 0,
        unrecoverable: 0,
        unrecoverable_sample: Vec::new(),
        irreversible: 0,
        already: 0,
        selected_keys: 0,
        elapsed: Duration::ZERO,
    };
    let undone = match &request.rule {
        Rule::Undo { of } => Some(undoable(catalog, of, scan_id)?),
        _ => None,
    };
    created.actions = catalog.insert_plan(&plan, |writer| match &request.rule {
        Rule::Sql { query } => fill_from_query(catalog, query, writer),
        Rule::Undo { of } => {
            let id = undone.expect("checked above");
            fill_from_undo(catalog, id, of, elsewhere.is_some(), writer, &mut created)
        }
        _ => fill_from_rule(catalog, request, writer, &mut created),
    })?;
    created.elapsed = started.elapsed();
    Ok(created)
}

/// The scan the plan is made from: it must be finished, or keys would be missed.
fn finished_scan(catalog: &Catalog) -> Result<i64, PlanError> {
    let scan = catalog.scan_record()?.ok_or(PlanError::NoScan)?;
    if scan.finished_at.is_none() {
        let totals = catalog.scan_totals()?;
        return Err(PlanError::ScanUnfinished {
            done: totals.prefixes_done,
            total: totals.prefixes,
        });
    }
    Ok(scan.id)
}

fn choose_name(catalog: &Catalog, request: &PlanRequest<'_>) -> Result<String, PlanError> {
    if let Some(name) = request.name {
        check_name(name)?;
        if catalog.plan_id(name)?.is_some() {
            return Err(PlanError::NameTaken(name.to_owned()));
        }
        return Ok(name.to_owned());
    }
    let rule = request.rule.name();
    for n in 1.. {
        let name = format!("{rule}-{n}");
        if catalog.plan_id(&name)?.is_none() {
            return Ok(name);
        }
    }
    unreachable!("some name is free")
}

fn check_name(name: &str) -> Result<(), PlanError> {
    let refuse = |why| Err(PlanError::BadName(name.to_owned(), why));
    if name.trim().is_empty() {
        return refuse("it is empty");
    }
    if name.len() > 200 {
        return refuse("it is longer than 200 bytes");
    }
    if name.chars().any(char::is_control) {
        return refuse("it holds control characters");
    }
    Ok(())
}

/// A restore to before the oldest entry hides every key: refused unless
/// asked for, as it is far more often a wrong date than a wish.
fn check_time(catalog: &Catalog, request: &PlanRequest<'_>) -> Result<(), PlanError> {
    let Rule::Restore { to, .. } = request.rule else {
        return Ok(());
    };
    match catalog.time_span(&catalog::TimelineFilter::default())? {
        Some((oldest, _, _)) if to < oldest && !request.allow_before_data => {
            Err(PlanError::BeforeAnyData {
                to: model::time::format_time(to),
                oldest: model::time::format_time(oldest),
            })
        }
        _ => Ok(()),
    }
}

/// A built-in rule, key by key.
fn fill_from_rule(
    catalog: &Catalog,
    request: &PlanRequest<'_>,
    writer: &mut PlanWriter<'_>,
    created: &mut Created,
) -> Result<(), PlanError> {
    let (rule, where_expr) = (&request.rule, request.where_expr);
    // A copy back onto the key itself needs none where the key already
    // holds the content; apply's journal is read only if it has copies.
    let copies_back = match rule {
        Rule::Restore {
            to,
            rollback: false,
            into: None,
            ..
        } if !request.copy_same_content => Some(*to),
        _ => None,
    };
    let journal = copies_back.is_some() && catalog.has_copies_made()?;
    catalog.for_each_key_history(where_expr, |key| {
        if key.entries.first().is_some_and(|e| e.selected) {
            created.selected_keys += 1;
        }
        let decided = rule.decide(key);
        if decided.unrecoverable {
            created.unrecoverable += 1;
            if created.unrecoverable_sample.len() < SAMPLE {
                created.unrecoverable_sample.push(key.key.to_owned());
            }
        }
        for action in &decided.actions {
            if let Some(to) = copies_back {
                if let Some(already) = crate::already::holds(catalog, journal, key, action, to)? {
                    writer.push_already(&already)?;
                    created.already += 1;
                    continue;
                }
            }
            writer.push(action)?;
        }
        Ok::<_, PlanError>(())
    })
}

/// The id of plan `of`, if it can be undone: applied, from this scan,
/// with nothing left in flight.
fn undoable(catalog: &Catalog, of: &str, scan_id: i64) -> Result<i64, PlanError> {
    let info = crate::find_plan(catalog, of)?;
    let s = &info.status;
    // Keys listed again since do not matter: undo reads the plan's keys
    // as they were when it was made, and acts by version id.
    if info.scan_id != scan_id {
        return Err(PlanError::OtherScan(of.to_owned()));
    }
    if s.in_flight > 0 {
        return Err(PlanError::UndoInFlight {
            name: of.to_owned(),
            in_flight: s.in_flight,
        });
    }
    if s.done == 0 {
        return Err(PlanError::NeverApplied(of.to_owned()));
    }
    Ok(info.id)
}

/// Plan `of`'s done actions inverted, a slice of keys at a time.
fn fill_from_undo(
    catalog: &Catalog,
    plan_id: i64,
    of: &str,
    elsewhere: bool,
    writer: &mut PlanWriter<'_>,
    created: &mut Created,
) -> Result<(), PlanError> {
    let mut after = 0;
    loop {
        let keys = catalog.planned_keys(plan_id, after, 1000)?;
        let Some(last) = keys.last() else {
            return Ok(());
        };
        after = last.key_id;
        for key in &keys {
            let undo = crate::undo::undo_key(key, of, elsewhere);
            created.irreversible += undo.irreversible.len() as u64;
            for action in &undo.actions {
                writer.push(action)?;
            }
        }
    }
}

/// A person's query, row by row; one bad row and no plan is made.
fn fill_from_query(
    catalog: &Catalog,
    query: &str,
    writer: &mut PlanWriter<'_>,
) -> Result<(), PlanError> {
    // Rows are matched to keys by name. Inside the plan's transaction, so
    // that a refused plan leaves the catalog as it was.
    catalog.index_keys()?;
    let mut n = 0;
    catalog.for_each_user_row(query, |row| {
        n += 1;
        writer.push(&user::action(&row, n)?)?;
        Ok::<_, PlanError>(())
    })?;
    match catalog.first_duplicate(writer)? {
        None => Ok(()),
        Some(Duplicate::Version {
            action_id,
            key,
            version_id,
        }) => Err(PlanError::BadRow {
            row: action_id as u64,
            reason: format!("version {version_id:?} of key {key:?} is planned twice"),
        }),
        Some(Duplicate::NewVersions { action_id, key }) => Err(PlanError::BadRow {
            row: action_id as u64,
            reason: format!("key {key:?} gets more than one copy_version / add_delete_marker"),
        }),
    }
}
