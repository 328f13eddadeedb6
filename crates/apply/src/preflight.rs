//! Everything decided before apply asks "execute …?": a caller of this
//! library cannot skip it. The plan must still fit the catalog (made from
//! its scan, its keys unchanged by anything but itself since, not undone
//! unless asked), the endpoint must be the scan's, `check`'s findings must
//! not block it (or be accepted), version `null` is deleted only while
//! versioning is Enabled, and each kind of write gets the strongest guard
//! the endpoint honours, found by probing it. The caller prints what this
//! returns, asks the question, and calls [`begin`] on "yes".

use catalog::plans::PlanInfo;
use catalog::{Catalog, ChangeKind, ScanRecord};
use model::ActionKind;
use s3io::{Support, S3};

use crate::{ApplyError, Guard, Guards};

/// What the caller asked for besides the plan.
#[derive(Debug, Clone, Default)]
pub struct PreflightOptions {
    /// Blocking findings of `check` to go ahead with anyway.
    pub accept: Vec<String>,
    /// Apply a plan that was undone (its undo applied) all the same.
    pub reapply: bool,
    pub retry_failed: bool,
    /// Only settle what is in flight: nothing new is sent, so no check.
    pub settle: bool,
}

/// Why apply will not run the plan, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("plan {plan} was made from an earlier scan of this catalog; its versions may be gone\n  hint: make the plan again")]
    OtherScan { plan: String },
    #[error("plan {plan} belongs to {location}, but this run points at {endpoint}\n  hint: pass the same --endpoint-url (or AWS_ENDPOINT_URL) the scan used")]
    OtherEndpoint {
        plan: String,
        location: String,
        endpoint: String,
    },
    #[error("plan {plan} is stale: {keys} of its keys changed after it was made ({changes}), and its actions were computed from what they held before\n  nothing was changed\n  hint: make the plan again from what the catalog holds now (same command, a new --name); `s3rewind plan show {plan}` says what changed")]
    Stale {
        plan: String,
        keys: u64,
        changes: String,
    },
    #[error("plan {plan} was undone by plan {undo} (applied): applying it again would redo what was taken back\n  nothing was changed\n  hint: if that is what you want, pass --reapply")]
    Undone { plan: String, undo: String },
    #[error("plan {plan} deletes {deletes} `null` version(s), but versioning is {versioning}: while it is not Enabled, every write replaces a key's `null` version, so a delete of `null` may delete what someone wrote after the scan (S3 takes no condition on a version's delete)\n  nothing was changed\n  hint: enable versioning again (aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled), or plan copies instead of deletes")]
    NullDeletes {
        plan: String,
        deletes: u64,
        versioning: String,
        bucket: String,
    },
    #[error("plan {plan} is blocked by {names}: {summary}\n  nothing was changed\n  hint: fix it (see `s3rewind check --plan {plan}`), or pass --accept {accept} to go ahead anyway")]
    Blocked {
        plan: String,
        names: String,
        summary: String,
        accept: String,
    },
    #[error("plan {plan}: {why}\n  nothing was changed")]
    Destination { plan: String, why: String },
    #[error("plan {plan}'s copies cannot be made: {why}\n  nothing was changed\n  hint: make an exception for s3rewind's role in the bucket policy, or make the copies multipart (--multipart-threshold 0) where the policy allows UploadPartCopy")]
    CopiesRefused { plan: String, why: String },
}

/// What was found before the question.
#[derive(Debug)]
pub struct Preflight {
    /// The scan the plan was made from.
    pub scan: ScanRecord,
    /// `check`'s findings (none when settling).
    pub report: Option<check::Report>,
    /// The guard each kind of write will get.
    pub guards: Guards,
    /// The actions left to do.
    pub remaining: u64,
    /// The question to ask before anything is sent.
    pub question: String,
    /// What a person should know before saying yes.
    pub notes: Vec<String>,
    /// Whether only in-flight actions are settled.
    settle: bool,
}

/// A run the preflight allowed and [`begin`] started: what the run acts
/// on and how. Only [`begin`] makes one, so [`crate::apply`] cannot be
/// called without the checks.
#[derive(Debug)]
pub struct Begun {
    pub(crate) target: crate::ApplyTarget,
    pub(crate) guards: Guards,
    /// Only find out what became of the actions in flight; send nothing.
    pub(crate) settle: bool,
    /// The plan may write a key and remove entries of it (`plan sql`).
    pub(crate) mixed: bool,
    /// A key's removals are a unit ([`whole_keys`]).
    pub(crate) whole_keys: bool,
}

impl Begun {
    pub fn target(&self) -> &crate::ApplyTarget {
        &self.target
    }
}

/// Everything decided before the question (see the module documentation).
/// `into`: where the plan's copies land, when not on the scanned keys.
pub async fn preflight(
    s3: &S3,
    catalog: &Catalog,
    info: &PlanInfo,
    into: Option<&model::Destination>,
    options: &PreflightOptions,
) -> Result<Result<Preflight, Refusal>, ApplyError> {
    let scan = match fits(s3, catalog, info)? {
        Ok(scan) => scan,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let plan = info.name.clone();
    let remaining = info.status.remaining(options.retry_failed);
    let place = match into {
        None => scan.location.to_string(),
        Some(d) => format!("from {} into {d}", scan.location),
    };
    if options.settle {
        return Ok(Ok(Preflight {
            question: format!(
                "find out what became of the {} actions plan {plan} left in flight or uncertain on {place} (nothing new is sent)?",
                info.status.in_flight + info.status.uncertain
            ),
            scan,
            report: None,
            guards: Guards::default(),
            remaining,
            notes: Vec::new(),
            settle: true,
        }));
    }
    if let Some(d) = into {
        match plan::check_destination(catalog, &scan, d) {
            Ok(()) => {}
            Err(plan::PlanError::Catalog(e)) => return Err(e.into()),
            Err(e) => {
                return Ok(Err(Refusal::Destination {
                    plan,
                    why: e.to_string(),
                }))
            }
        }
    }
    let stale = catalog.staleness(info.id, true)?;
    if stale.is_stale() {
        let changes: Vec<String> = stale
            .changes
            .iter()
            .map(|c| match (c.kind.as_str(), &c.plan) {
                ("apply", Some(p)) => format!("plan {p} applied at {}", c.at),
                (_, Some(p)) => format!("plan {p}'s keys listed again at {}", c.at),
                (kind, None) => format!("{kind} at {}", c.at),
            })
            .collect();
        return Ok(Err(Refusal::Stale {
            plan,
            keys: stale.keys,
            changes: changes.join("; "),
        }));
    }
    if let (Some(undo), false) = (catalog.undone_by(&info.name)?, options.reapply) {
        return Ok(Err(Refusal::Undone { plan, undo }));
    }
    let kinds = catalog.remaining_by_kind(info.id)?;
    let count = |k: ActionKind| kinds.get(&k).copied().unwrap_or(0);
    let report = check::check(
        s3,
        &scan.location.bucket,
        Some((
            catalog,
            &check::PlanRef {
                id: info.id,
                name: info.name.clone(),
                into: into.cloned(),
            },
        )),
        Some(&scan.versioning),
    )
    .await
    .map_err(|e| match e {
        check::CheckError::Catalog(e) => ApplyError::Catalog(e),
        check::CheckError::S3(e) => ApplyError::S3(e),
    })?;
    let null_deletes = catalog.remaining_null_deletes(info.id)?;
    // Where the deletes land: the undo of an `--into` plan deletes in the
    // destination, whose unversioned copies are `null` too.
    let deletes_in = into.map_or(scan.location.bucket.as_str(), |d| d.bucket.as_str());
    if null_deletes > 0 {
        let versioning = s3
            .bucket_versioning(deletes_in)
            .await
            .map_err(ApplyError::S3)?;
        if versioning != model::Versioning::Enabled {
            return Ok(Err(Refusal::NullDeletes {
                plan,
                deletes: null_deletes,
                versioning: versioning.as_str().to_owned(),
                bucket: deletes_in.to_owned(),
            }));
        }
    }
    let blocking = report.blocking(&options.accept);
    if !blocking.is_empty() {
        let names: Vec<&str> = blocking.iter().map(|f| f.check).collect();
        return Ok(Err(Refusal::Blocked {
            plan,
            names: names.join(", "),
            summary: blocking[0].summary.clone(),
            accept: names.join(" --accept "),
        }));
    }
    // The guards, found by probing what the plan will write.
    let target_bucket = into.map_or(scan.location.bucket.as_str(), |d| d.bucket.as_str());
    let copies = count(ActionKind::CopyVersion);
    let markers = count(ActionKind::AddDeleteMarker);
    let source = match copies {
        0 => None,
        _ => catalog.copy_to_make(info.id)?,
    };
    let (copy_support, marker_support) = s3
        .probe_conditions(
            target_bucket,
            source
                .as_ref()
                .map(|(k, v)| (scan.location.bucket.as_str(), k.as_str(), v.as_str())),
            markers > 0,
        )
        .await
        .map_err(ApplyError::S3)?;
    let guards = Guards {
        copies: match copy_support {
            None => Guard::None,
            Some(Support::Refused(why)) => {
                return Ok(Err(Refusal::CopiesRefused { plan, why }));
            }
            Some(s) => guard_of(s, "copies"),
        },
        markers: match marker_support {
            None => Guard::None,
            Some(s) => guard_of(s, "new delete markers"),
        },
    };
    let mut notes = Vec::new();
    if let (Some(d), true) = (into, copies > 0) {
        notes.extend(destination_notes(s3, d, copies).await?);
    }
    Ok(Ok(Preflight {
        question: format!("execute {remaining} actions of plan {plan} on {place}?"),
        scan,
        report: Some(report),
        guards,
        remaining,
        notes,
        settle: false,
    }))
}

/// The scan plan `info` was made from, if the plan and this client fit it:
/// the catalog's scan, at the endpoint the scan listed (`verify` and
/// `check --plan` need no more).
pub fn fits(
    s3: &S3,
    catalog: &Catalog,
    info: &PlanInfo,
) -> Result<Result<ScanRecord, Refusal>, ApplyError> {
    let scan = catalog
        .scan_record()?
        .ok_or_else(|| catalog::CatalogError::Refused("the catalog holds no scan".into()))?;
    let plan = info.name.clone();
    if info.scan_id != scan.id {
        return Ok(Err(Refusal::OtherScan { plan }));
    }
    if s3.endpoint() != scan.location.endpoint.as_deref() {
        return Ok(Err(Refusal::OtherEndpoint {
            plan,
            location: scan.location.to_string(),
            endpoint: s3.endpoint().unwrap_or("AWS").to_owned(),
        }));
    }
    Ok(Ok(scan))
}

/// What a person should know of the bucket `--into` copies land in: it is
/// another place, with its own versioning, Object Lock and replication.
async fn destination_notes(
    s3: &S3,
    d: &model::Destination,
    copies: u64,
) -> Result<Vec<String>, ApplyError> {
    let settings = s3
        .bucket_settings(&d.bucket)
        .await
        .map_err(ApplyError::S3)?;
    let mut notes = Vec::new();
    match &settings.versioning {
        Ok(model::Versioning::Enabled) => {}
        Ok(v) => notes.push(format!(
            "the destination bucket {} is not versioned ({}): its {copies} copies get no version id, so `plan undo` cannot take them back",
            d.bucket,
            v.as_str()
        )),
        Err(why) => notes.push(format!(
            "the destination bucket {}'s versioning could not be read ({why}): if it is not Enabled, `plan undo` cannot take the copies back",
            d.bucket
        )),
    }
    if let Ok(Some(lock)) = &settings.object_lock {
        if let Some((mode, days)) = &lock.default_retention {
            notes.push(format!(
                "the destination bucket {} gives new versions {mode} retention for {days} days: the {copies} copies cannot be deleted (nor undone) before then",
                d.bucket
            ));
        }
    }
    if let Ok(rules) = &settings.replication {
        let covering: Vec<&str> = rules
            .iter()
            .filter(|r| {
                r.enabled
                    && (d.prefix.starts_with(&r.filter.prefix)
                        || r.filter.prefix.starts_with(&d.prefix))
            })
            .map(|r| r.id.as_str())
            .collect();
        if !covering.is_empty() {
            notes.push(format!(
                "replication rules of the destination bucket {} ({}) copy the restored keys on to their destinations too",
                d.bucket,
                covering.join(", ")
            ));
        }
    }
    Ok(notes)
}

fn guard_of(support: Support, what: &str) -> Guard {
    match support {
        Support::Honoured => Guard::Conditions,
        Support::Ignored => Guard::Listing(format!(
            "this endpoint ignores conditions on {what}: each key is listed before acting on it instead (as --verify does)"
        )),
        Support::Refused(why) | Support::Unknown(why) => Guard::Listing(format!(
            "whether this endpoint honours conditions on {what} is not known ({why}): each key is listed before acting on it instead"
        )),
    }
}

/// Whether plan `info`'s removals of a key are a unit (see
/// [`crate::ApplyOptions::whole_keys`]): all but `expire`'s, which remove
/// noncurrent versions only.
pub fn whole_keys(info: &PlanInfo) -> bool {
    info.rule != "expire"
}

/// On "yes": records the versions Object Lock keeps as skipped (with the
/// lock that keeps them: accepted), and moves the catalog to the run's
/// revision (what the run changes is recorded under it).
pub fn begin(
    catalog: &mut Catalog,
    info: &PlanInfo,
    preflight: &Preflight,
) -> Result<Begun, ApplyError> {
    if let Some(report) = &preflight.report {
        let locked: Vec<(i64, String)> = report
            .locked
            .iter()
            .map(|l| (l.id, l.reason.clone()))
            .collect();
        if !locked.is_empty() {
            catalog.skip_actions(info.id, &locked, whole_keys(info))?;
        }
    }
    let revision = catalog.begin_change(ChangeKind::Apply, Some(info.id))?;
    Ok(Begun {
        target: crate::ApplyTarget::of(info, &preflight.scan, revision),
        guards: preflight.guards.clone(),
        settle: preflight.settle,
        mixed: info.rule == "sql",
        whole_keys: whole_keys(info),
    })
}
