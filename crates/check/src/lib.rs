//! `check`: what in a bucket's configuration would hurt a plan, found
//! before anything is changed — lifecycle rules that expire the versions a
//! restore needs, versioning Suspended, MFA Delete, Object Lock retention
//! and legal holds, sources in an archive, KMS keys the credentials cannot
//! use, replication, Requester Pays, ownership.
//!
//! The cheap part reads the bucket's configuration (a request per
//! setting) and the catalog; the per-object part asks S3 only about the
//! plan's own objects, and only where the configuration makes it matter:
//! retention and legal holds of the versions it deletes when Object Lock
//! is on, the archive tier of its Intelligent-Tiering sources, and one
//! read per KMS key found among a sample of its copy sources.
//!
//! # Layout
//!
//! - [`judge`]: settings and facts in, [`Finding`]s out; no I/O.
//! - this file: [`check`], which gathers the facts and calls the judges.

pub mod judge;

use catalog::Catalog;
use futures::stream::{self, StreamExt};
use model::ActionKind;
use s3io::{S3Error, S3};

pub use judge::{Locked, PlanShape};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    /// apply refuses the plan unless `--accept` names the check.
    Block,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Block => "block",
        }
    }
}

/// The checks that can block a plan: what `apply --accept` takes.
pub const RISKS: &[&str] = &[
    "versioning",
    "mfa-delete",
    "lifecycle",
    "object-lock",
    "kms",
    "policy",
    "sse-c",
];

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Its name (`lifecycle`, `object-lock`, …), as `--accept` takes it.
    pub check: &'static str,
    pub level: Level,
    /// How many of the plan's actions it affects.
    pub count: u64,
    pub summary: String,
    /// The command or console setting that removes the hazard.
    pub fix: Option<String>,
    /// Which rules, keys or keys ids, when there are some to name.
    pub details: Vec<String>,
    /// The check could not be made (a setting or state could not be read).
    pub not_checked: bool,
}

impl Finding {
    pub fn new(
        check: &'static str,
        level: Level,
        count: u64,
        summary: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            level,
            count,
            summary: summary.into(),
            fix: None,
            details: Vec::new(),
            not_checked: false,
        }
    }

    /// Marks it as a check that could not be made.
    pub fn not_checked(self) -> Finding {
        Finding {
            not_checked: true,
            ..self
        }
    }

    pub fn fix(self, fix: impl Into<String>) -> Finding {
        Finding {
            fix: Some(fix.into()),
            ..self
        }
    }
}

/// Everything `check` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub bucket: String,
    pub plan: Option<String>,
    pub checks: Vec<Finding>,
    /// The versions the plan deletes that Object Lock keeps.
    pub locked: Vec<Locked>,
    /// HeadObject and GetObject requests the per-object checks made.
    pub requests: u64,
}

impl Report {
    /// The checks that could not be made.
    pub fn not_checked(&self) -> Vec<&Finding> {
        self.checks.iter().filter(|f| f.not_checked).collect()
    }

    /// The blocking findings `accepted` does not name.
    pub fn blocking<'r>(&'r self, accepted: &[String]) -> Vec<&'r Finding> {
        self.checks
            .iter()
            .filter(|f| f.level == Level::Block && !accepted.iter().any(|a| a == f.check))
            .collect()
    }
}

/// The plan `check` judges.
#[derive(Debug, Clone)]
pub struct PlanRef {
    pub id: i64,
    pub name: String,
    /// Where its copies land when not on the scanned keys (`--into`, and
    /// the undo of such a plan, whose deletes land there).
    pub into: Option<model::Destination>,
}

/// Copy sources sampled for their KMS keys.
const KMS_SAMPLES: usize = 32;
/// Actions read from the catalog at a time for per-object checks.
const PAGE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error("{0}\n  check stopped (it changes nothing): fix the cause and run it again")]
    S3(#[from] S3Error),
}

/// Reads the bucket's configuration and, with a plan, judges the plan's
/// remaining actions against it. `scanned_versioning` is the versioning
/// the catalog's scan saw.
pub async fn check(
    s3: &S3,
    bucket: &str,
    plan: Option<(&Catalog, &PlanRef)>,
    scanned_versioning: Option<&str>,
) -> Result<Report, CheckError> {
    let settings = s3.bucket_settings(bucket).await?;
    let now = model::time::now();
    let start = s3.counters().requests();
    let shape = match plan {
        Some((catalog, p)) => Some(PlanShape {
            kinds: catalog.remaining_by_kind(p.id)?,
            elsewhere: p.into.is_some(),
        }),
        None => None,
    };
    let shape = shape.as_ref();

    let mut lifecycle = judge::Lifecycle::new(&settings, now);
    let mut by_class = Vec::new();
    let mut replicated = Vec::new();
    if let Some((catalog, p)) = plan {
        catalog.for_each_needed_version(p.id, |v| lifecycle.add(&v))?;
        by_class = catalog.copy_sources_by_class(p.id)?;
        if let (Ok(rules), None) = (&settings.replication, &p.into) {
            for rule in rules.iter().filter(|r| r.enabled) {
                let (copies, markers) = catalog.writes_under(p.id, &rule.filter.prefix)?;
                replicated.push((
                    rule.destination.clone(),
                    copies,
                    markers,
                    rule.delete_markers,
                ));
            }
        }
    }

    // The deletes of a plan that acts elsewhere (the undo of an `--into`)
    // land in the destination: its own Object Lock is judged there.
    let (locked, deletes_checked, unchecked) = match (plan, &settings.object_lock) {
        (Some((catalog, p)), Ok(Some(_))) if p.into.is_none() => {
            locked_versions(s3, catalog, bucket, p.id, now).await?
        }
        _ => (Vec::new(), 0, None),
    };
    let tiering_archived = match plan {
        Some((catalog, p)) => tiering_archived(s3, catalog, bucket, p.id).await?,
        None => 0,
    };
    let (kms, customer_keys) = match plan {
        Some((catalog, p)) => kms_keys(s3, catalog, bucket, p.id).await?,
        None => Default::default(),
    };

    let checks = vec![
        judge::versioning(bucket, &settings, shape, scanned_versioning),
        judge::mfa_delete(bucket, &settings, shape),
        lifecycle.finding(bucket, &settings, shape),
        judge::object_lock(
            bucket,
            &settings,
            shape,
            &locked,
            deletes_checked,
            unchecked.as_deref(),
        ),
        judge::archived(&by_class, tiering_archived),
        judge::kms(&settings, shape, &kms),
        judge::customer_keys(shape, kms.sampled, &customer_keys),
        judge::replication(&settings, &replicated),
        judge::encryption(&settings),
        judge::requester_pays(bucket, &settings),
        judge::ownership(&settings),
        judge::policy(bucket, &settings, shape),
    ];
    let mut checks = checks;
    if let (Some((_, PlanRef { into: Some(d), .. })), Some(shape)) = (plan, shape) {
        let there = s3.bucket_settings(&d.bucket).await?;
        checks.extend(judge::destination(d, &there, shape, now));
    }
    Ok(Report {
        bucket: bucket.to_owned(),
        plan: plan.map(|(_, p)| p.name.clone()),
        checks,
        locked,
        requests: s3.counters().requests() - start,
    })
}

/// The hazards the catalog alone shows, for `plan show`: copies from an
/// archive, and versioning that was not Enabled at scan time.
pub fn catalog_hazards(
    catalog: &Catalog,
    plan_id: i64,
    scanned_versioning: &str,
) -> Result<Vec<Finding>, catalog::CatalogError> {
    let mut out = Vec::new();
    let archived = judge::archived(&catalog.copy_sources_by_class(plan_id)?, 0);
    if archived.level != Level::Ok {
        out.push(archived);
    }
    if scanned_versioning != "Enabled" {
        out.push(Finding::new(
            "versioning",
            Level::Warn,
            0,
            format!("versioning was {scanned_versioning} when the catalog was scanned: `s3rewind check --plan NAME` says what it is now"),
        ));
    }
    Ok(out)
}

/// Each remaining version delete, asked for its retention and legal hold
/// (GetObjectRetention and GetObjectLegalHold, in parallel): those S3
/// would refuse to delete, how many were asked about, and why the rest
/// could not be (the first AccessDenied ends the asking: the same
/// credentials would be refused for every version).
async fn locked_versions(
    s3: &S3,
    catalog: &Catalog,
    bucket: &str,
    plan_id: i64,
    now: i64,
) -> Result<(Vec<Locked>, u64, Option<String>), CheckError> {
    let mut locked = Vec::new();
    let mut checked = 0;
    let mut after = 0;
    loop {
        let page =
            catalog.remaining_actions(plan_id, ActionKind::DeleteVersion, None, after, PAGE)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        checked += page.len() as u64;
        let states: Vec<_> = stream::iter(&page)
            .map(|a| async move { (a, s3.version_lock(bucket, &a.key, &a.version_id).await) })
            .buffer_unordered(s3.pacer().concurrency())
            .collect()
            .await;
        for (a, state) in states {
            match state {
                Ok(state) => {
                    if let Some(reason) = state.locked(now) {
                        locked.push(Locked {
                            id: a.id,
                            key: a.key.clone(),
                            version_id: a.version_id.clone(),
                            reason: format!("locked: {reason}"),
                        });
                    }
                }
                // Already gone: its delete will count as done.
                Err(e) if e.kind == s3io::ErrorKind::NotFound => {}
                Err(e) if e.code.as_deref() == Some("AccessDenied") => {
                    locked.sort_by_key(|l| l.id);
                    return Ok((locked, checked, Some(e.code_and_message())));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    locked.sort_by_key(|l| l.id);
    Ok((locked, checked, None))
}

/// How many Intelligent-Tiering copy sources sit in an archive tier.
async fn tiering_archived(
    s3: &S3,
    catalog: &Catalog,
    bucket: &str,
    plan_id: i64,
) -> Result<u64, CheckError> {
    let mut archived = 0;
    let mut after = 0;
    loop {
        let page = catalog.remaining_actions(
            plan_id,
            ActionKind::CopyVersion,
            Some("INTELLIGENT_TIERING"),
            after,
            PAGE,
        )?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        let states: Vec<_> = stream::iter(&page)
            .map(|a| s3.version_state(bucket, &a.key, &a.version_id))
            .buffer_unordered(s3.pacer().concurrency())
            .collect()
            .await;
        for state in states {
            match state {
                Ok(s) if s.archived() => archived += 1,
                Ok(_) => {}
                Err(e) if e.kind == s3io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(archived)
}

/// The KMS keys of a sample of copy sources, each with whether one of its
/// versions can be read; and the sampled sources encrypted with a key the
/// customer holds (SSE-C).
async fn kms_keys(
    s3: &S3,
    catalog: &Catalog,
    bucket: &str,
    plan_id: i64,
) -> Result<(judge::KmsSample, Vec<String>), CheckError> {
    let sample = catalog.copy_samples(plan_id, KMS_SAMPLES)?;
    let states: Vec<_> = stream::iter(&sample)
        .map(|a| async move { (a, s3.version_state(bucket, &a.key, &a.version_id).await) })
        .buffer_unordered(s3.pacer().concurrency())
        .collect()
        .await;
    let mut first_of_key: Vec<(String, &catalog::ActionRef, bool)> = Vec::new();
    let mut sources_of: std::collections::HashMap<String, u64> = Default::default();
    let mut unread = None;
    let mut customer_keys = Vec::new();
    for (a, state) in states {
        let state = match state {
            Ok(s) => s,
            Err(e) if e.kind == s3io::ErrorKind::NotFound => continue,
            Err(e) if e.stops_the_run() => return Err(e.into()),
            Err(e) => {
                unread.get_or_insert_with(|| e.code_and_message());
                continue;
            }
        };
        if state.customer_key {
            customer_keys.push(format!("{} (version {})", a.key, a.version_id));
            continue;
        }
        let archived = state.archived();
        if let Some(key) = state.kms_key_id {
            *sources_of.entry(key.clone()).or_default() += 1;
            if !first_of_key.iter().any(|(k, _, _)| *k == key) {
                first_of_key.push((key, a, archived));
            }
        }
    }
    let mut keys = Vec::new();
    for (key, a, archived) in first_of_key {
        // An archived version cannot be read before its restore; its key
        // is judged when the copy is made.
        if archived {
            continue;
        }
        let read = s3
            .can_read(
                bucket,
                &a.key,
                &a.version_id,
                a.size.unwrap_or(0).max(0) as u64,
            )
            .await;
        let verdict = match read {
            Ok(()) => Ok(()),
            Err(e) if e.stops_the_run() => return Err(e.into()),
            Err(e) => Err(e.code_and_message()),
        };
        keys.push((key, verdict));
    }
    Ok((
        judge::KmsSample {
            sources_of,
            keys,
            sampled: sample.len() as u64,
            unread,
        },
        customer_keys,
    ))
}
