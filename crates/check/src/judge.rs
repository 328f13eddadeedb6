//! The judgements: a bucket's settings and what the plan needs, in; one
//! [`Finding`] per hazard, out. No I/O, so each rule is tested alone.

use std::collections::HashMap;

use catalog::NeededVersion;
use model::bucket::{BucketSettings, LifecycleRule};
use model::time::format_time;
use model::{ActionKind, Versioning};

use crate::{Finding, Level};

const DAY: i64 = 86_400;
/// A needed version a rule expires within this long may be gone before
/// the plan has run: the plan is blocked.
pub const EXPIRES_SOON: i64 = 2 * DAY;
/// Within this long: a warning to apply soon.
pub const EXPIRES_LATER: i64 = 30 * DAY;

/// What the plan's remaining actions are, as far as the checks care.
#[derive(Debug, Clone, Default)]
pub struct PlanShape {
    pub kinds: HashMap<ActionKind, u64>,
    /// Its copies land in another bucket (`plan restore --into`).
    pub elsewhere: bool,
}

impl PlanShape {
    pub fn count(&self, kind: ActionKind) -> u64 {
        self.kinds.get(&kind).copied().unwrap_or(0)
    }

    /// Copies and new markers written over the scanned keys.
    pub fn writes_here(&self) -> u64 {
        match self.elsewhere {
            true => 0,
            false => self.count(ActionKind::CopyVersion) + self.count(ActionKind::AddDeleteMarker),
        }
    }

    pub fn deletes(&self) -> u64 {
        self.count(ActionKind::DeleteVersion) + self.count(ActionKind::DeleteMarker)
    }
}

fn unreadable(check: &'static str, what: &str, why: &str, permission: &str) -> Finding {
    // A server that does not know the request may answer with anything:
    // its first words say enough.
    let why = match why.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &why[..cut]),
        None => why.to_owned(),
    };
    Finding::new(
        check,
        Level::Warn,
        0,
        format!("could not read the bucket's {what} ({why}): not checked"),
    )
    .not_checked()
    .fix(format!(
        "grant {permission} to these credentials, or check it in the console"
    ))
}

pub fn versioning(
    bucket: &str,
    settings: &BucketSettings,
    plan: Option<&PlanShape>,
    scanned: Option<&str>,
) -> Finding {
    let now = match &settings.versioning {
        Ok(v) => *v,
        Err(why) => return unreadable("versioning", "versioning", why, "s3:GetBucketVersioning"),
    };
    let enable = format!(
        "aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"
    );
    let changed = scanned
        .filter(|s| *s != now.as_str())
        .map(|s| format!(" (it was {s} when the catalog was scanned)"))
        .unwrap_or_default();
    let writes = plan.map_or(0, PlanShape::writes_here);
    match now {
        Versioning::Enabled if changed.is_empty() => {
            Finding::new("versioning", Level::Ok, 0, "versioning is Enabled")
        }
        Versioning::Enabled => Finding::new(
            "versioning",
            Level::Warn,
            0,
            format!("versioning is Enabled{changed}: entries written while it was not are `null` versions"),
        ),
        Versioning::Suspended if plan.is_none() || writes > 0 => Finding::new(
            "versioning",
            Level::Block,
            writes,
            format!("versioning is Suspended{changed}: every copy or new delete marker replaces the key's `null` version instead of stacking a new one"),
        )
        .fix(enable),
        Versioning::Suspended => Finding::new(
            "versioning",
            Level::Warn,
            0,
            format!("versioning is Suspended{changed}: the plan writes nothing, but new writes by others destroy `null` versions"),
        )
        .fix(enable),
        Versioning::Never => Finding::new(
            "versioning",
            Level::Block,
            writes,
            format!("versioning was never enabled{changed}: there are no old versions to rewind to, and writes overwrite"),
        )
        .fix(enable),
    }
}

pub fn mfa_delete(bucket: &str, settings: &BucketSettings, plan: Option<&PlanShape>) -> Finding {
    let on = match &settings.mfa_delete {
        Ok(on) => *on,
        Err(why) => {
            return unreadable(
                "mfa-delete",
                "MFA Delete setting",
                why,
                "s3:GetBucketVersioning",
            )
        }
    };
    let fix = format!(
        "only the root user can turn it off: aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled,MFADelete=Disabled --mfa 'SERIAL CODE'"
    );
    match (on, plan.map(PlanShape::deletes)) {
        (false, _) => Finding::new("mfa-delete", Level::Ok, 0, "MFA Delete is off"),
        (true, Some(0)) => Finding::new(
            "mfa-delete",
            Level::Ok,
            0,
            "MFA Delete is on; the plan deletes nothing",
        ),
        (true, Some(n)) => Finding::new(
            "mfa-delete",
            Level::Block,
            n,
            "MFA Delete is on: every DeleteObjects request that names versions is refused whole (AccessDenied), so none of the plan's deletes can happen",
        )
        .fix(fix),
        (true, None) => Finding::new(
            "mfa-delete",
            Level::Warn,
            0,
            "MFA Delete is on: a plan that deletes versions or markers cannot run",
        )
        .fix(fix),
    }
}

/// A lifecycle rule's effect on the versions a plan needs.
#[derive(Debug, Clone, Default)]
struct RuleTally {
    /// Needed versions it expires within [`EXPIRES_SOON`] / [`EXPIRES_LATER`].
    soon: u64,
    later: u64,
    earliest: Option<i64>,
    /// Versions the plan makes current again that are older than its
    /// expiration of current versions: deleted again (a new marker) at its
    /// next run.
    redeleted: u64,
    /// Copy sources it moves to an archive class within [`EXPIRES_SOON`]
    /// (or that are due): a copy of one needs a restore first.
    archived: u64,
}

/// Counts, per enabled rule, what it does to the versions a plan needs.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    now: i64,
    rules: Vec<LifecycleRule>,
    tallies: Vec<RuleTally>,
}

/// When S3 acts on something `days` after `since`: rounded up to the next
/// midnight UTC, as lifecycle does.
fn lifecycle_day(since: i64, days: i32) -> i64 {
    let t = since + i64::from(days) * DAY;
    (t + DAY - 1).div_euclid(DAY) * DAY
}

impl Lifecycle {
    pub fn new(settings: &BucketSettings, now: i64) -> Lifecycle {
        let rules: Vec<LifecycleRule> = match &settings.lifecycle {
            Ok(rules) => rules.iter().filter(|r| r.enabled).cloned().collect(),
            Err(_) => Vec::new(),
        };
        Lifecycle {
            now,
            tallies: vec![RuleTally::default(); rules.len()],
            rules,
        }
    }

    pub fn add(&mut self, v: &NeededVersion) {
        for (rule, tally) in self.rules.iter().zip(&mut self.tallies) {
            if !rule.filter.may_match(&v.key, v.size) {
                continue;
            }
            if let Some(days) = rule.noncurrent_days {
                let kept = rule
                    .newer_noncurrent_versions
                    .is_some_and(|n| v.newer_noncurrent < i64::from(n));
                let at = lifecycle_day(v.noncurrent_since, days);
                if !kept && at <= self.now + EXPIRES_LATER {
                    if at <= self.now + EXPIRES_SOON {
                        tally.soon += 1;
                    } else {
                        tally.later += 1;
                    }
                    tally.earliest = Some(tally.earliest.map_or(at, |e| e.min(at)));
                }
            }
            if let (Some((days, _)), false) = (&rule.noncurrent_transition, v.made_current) {
                if lifecycle_day(v.noncurrent_since, *days) <= self.now + EXPIRES_SOON {
                    tally.archived += 1;
                }
            }
            // What the plan makes current: this version itself, or (for a
            // copy source) the copy, written now.
            let written = if v.made_current { v.mtime } else { self.now };
            let expires_current = rule
                .expiration_days
                .map(|d| lifecycle_day(written, d))
                .or(rule.expiration_date);
            if expires_current.is_some_and(|at| at <= self.now + DAY) {
                tally.redeleted += 1;
            }
        }
    }

    pub fn finding(
        &self,
        bucket: &str,
        settings: &BucketSettings,
        plan: Option<&PlanShape>,
    ) -> Finding {
        if let Err(why) = &settings.lifecycle {
            if why != "not configured" {
                return unreadable(
                    "lifecycle",
                    "lifecycle rules",
                    why,
                    "s3:GetLifecycleConfiguration",
                );
            }
        }
        if self.rules.is_empty() {
            return Finding::new("lifecycle", Level::Ok, 0, "no enabled lifecycle rules");
        }
        let disable = format!(
            "suspend the rule while you work (console: Management > Lifecycle rules > Disable; or aws s3api get-bucket-lifecycle-configuration --bucket {bucket}, set \"Status\": \"Disabled\", put-bucket-lifecycle-configuration), then apply"
        );
        let mut details = Vec::new();
        let (mut soon, mut later, mut redeleted, mut archived) = (0, 0, 0, 0);
        for (rule, tally) in self.rules.iter().zip(&self.tallies) {
            let id = if rule.id.is_empty() {
                "(no id)"
            } else {
                &rule.id
            };
            let scope = match (&rule.filter.prefix[..], rule.filter.tags) {
                ("", false) => "every key".to_owned(),
                ("", true) => "keys with its tags".to_owned(),
                (p, false) => format!("keys under {p:?}"),
                (p, true) => format!("keys under {p:?} with its tags"),
            };
            if let Some(earliest) = tally.earliest {
                details.push(format!(
                    "rule {id:?} ({scope}: noncurrent versions expire {} days after they were replaced) expires {} needed versions by {}, {} within 2 days; the first on {}",
                    rule.noncurrent_days.unwrap_or(0),
                    tally.soon + tally.later,
                    format_time(self.now + EXPIRES_LATER),
                    tally.soon,
                    format_time(earliest),
                ));
            }
            if tally.redeleted > 0 {
                details.push(format!(
                    "rule {id:?} ({scope}) expires current versions {}: {} keys the plan makes current again (copied back, undeleted, rolled back or fallen back to) are past it and get a new delete marker at its next run",
                    match (rule.expiration_days, rule.expiration_date) {
                        (Some(d), _) => format!("{d} days after they were written"),
                        (None, Some(at)) => format!("from {}", format_time(at)),
                        _ => String::new(),
                    },
                    tally.redeleted
                ));
            }
            if tally.archived > 0 {
                if let Some((days, class)) = &rule.noncurrent_transition {
                    details.push(format!(
                        "rule {id:?} ({scope}) moves noncurrent versions to {class} {days} days after they were replaced: {} versions the plan copies are there within 2 days (or due)",
                        tally.archived
                    ));
                }
            }
            if plan.is_none() && rule.noncurrent_days.is_some() {
                details.push(format!(
                    "rule {id:?} ({scope}) expires noncurrent versions {} days after they were replaced{}",
                    rule.noncurrent_days.unwrap_or(0),
                    rule.newer_noncurrent_versions
                        .map(|n| format!(", keeping the newest {n}"))
                        .unwrap_or_default()
                ));
            }
            soon += tally.soon;
            later += tally.later;
            redeleted += tally.redeleted;
            archived += tally.archived;
        }
        let finding = if soon + redeleted > 0 {
            // Either way the plan's result does not hold: what it needs is
            // gone before apply reaches it, or what it makes current is
            // deleted again at the rule's next run.
            let mut said = Vec::new();
            if soon > 0 {
                said.push(format!("{soon} versions the plan needs are expired by a lifecycle rule within 2 days (or already due): they may be gone before apply reaches them"));
            }
            if redeleted > 0 {
                said.push(format!("{redeleted} keys the plan makes current again (copied back, undeleted, rolled back or fallen back to) are past a rule's expiration of current versions: its next run deletes them again (a new delete marker), so those keys would not stay as the plan leaves them"));
            }
            Finding::new("lifecycle", Level::Block, soon + redeleted, said.join("; ")).fix(disable)
        } else if later + archived > 0 {
            let mut said = Vec::new();
            if later > 0 {
                said.push(format!("{later} needed versions expire within 30 days"));
            }
            if archived > 0 {
                said.push(format!("{archived} versions the plan copies move to an archive class within 2 days (or are due): a copy of an archived version waits for its restore (hours; apply asks for it)"));
            }
            Finding::new(
                "lifecycle",
                Level::Warn,
                later + archived,
                format!("lifecycle rules touch the plan: {}", said.join("; ")),
            )
            .fix(format!("apply soon, or {disable}"))
        } else if plan.is_none() && self.rules.iter().any(|r| r.noncurrent_days.is_some()) {
            Finding::new(
                "lifecycle",
                Level::Warn,
                0,
                "lifecycle rules expire noncurrent versions: versions a restore needs may be going (check --plan NAME tells which)",
            )
            .fix(disable)
        } else {
            Finding::new(
                "lifecycle",
                Level::Ok,
                0,
                format!(
                    "{} enabled lifecycle rules; none touches what the plan needs",
                    self.rules.len()
                ),
            )
        };
        Finding { details, ..finding }
    }
}

/// A version the plan deletes that Object Lock keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Locked {
    pub id: i64,
    pub key: String,
    pub version_id: String,
    pub reason: String,
}

pub fn object_lock(
    bucket: &str,
    settings: &BucketSettings,
    plan: Option<&PlanShape>,
    locked: &[Locked],
    checked: u64,
    unchecked: Option<&str>,
) -> Finding {
    let lock = match &settings.object_lock {
        Ok(lock) => lock,
        Err(why) if why == "not configured" => {
            return Finding::new("object-lock", Level::Ok, 0, "Object Lock is off")
        }
        Err(why) => {
            let unread = unreadable(
                "object-lock",
                "Object Lock configuration",
                why,
                "s3:GetBucketObjectLockConfiguration",
            );
            // Unknown is not "off": a plan that deletes versions may meet
            // locks nobody could look at.
            return match plan {
                Some(p) if p.count(ActionKind::DeleteVersion) > 0 => Finding {
                    level: Level::Block,
                    count: p.count(ActionKind::DeleteVersion),
                    fix: Some(format!(
                        "allow s3:GetBucketObjectLockConfiguration on {bucket} to these credentials and check again, or apply --accept object-lock: a delete S3 refuses is recorded as failed and the versions below it on its key are left"
                    )),
                    ..unread
                },
                _ => unread,
            };
        }
    };
    let Some(lock) = lock else {
        return Finding::new("object-lock", Level::Ok, 0, "Object Lock is off");
    };
    let mut details: Vec<String> = locked
        .iter()
        .take(10)
        .map(|l| format!("{} version {}: {}", l.key, l.version_id, l.reason))
        .collect();
    if locked.len() > 10 {
        details.push(format!(
            "… and {} more (check --json lists them all)",
            locked.len() - 10
        ));
    }
    let retention_note = lock.default_retention.as_ref().map(|(mode, days)| {
        format!("new versions get {mode} retention for {days} days: the plan's copies cannot be deleted (nor undone) before then")
    });
    let finding = match plan {
        None => Finding::new(
            "object-lock",
            Level::Warn,
            0,
            "Object Lock is on: deletes of versions under retention or legal hold are refused (delete markers can always be removed)",
        )
        .fix("check --plan NAME lists which versions a plan cannot delete"),
        Some(p) if unchecked.is_some() && p.count(ActionKind::DeleteVersion) > 0 => Finding::new(
            "object-lock",
            Level::Block,
            p.count(ActionKind::DeleteVersion),
            format!(
                "the retention and legal hold of the versions the plan deletes could not be read ({}), so whether S3 will refuse their deletes is not known",
                unchecked.unwrap_or_default()
            ),
        )
        .not_checked()
        .fix(format!(
            "allow s3:GetObjectRetention and s3:GetObjectLegalHold on {bucket} to the credentials in use, then check again; or apply --accept object-lock: a delete S3 refuses is recorded as failed and the versions below it on its key are left (that key is not reverted)"
        )),
        Some(_) if !locked.is_empty() => Finding::new(
            "object-lock",
            Level::Block,
            locked.len() as u64,
            format!(
                "{} of the {checked} versions the plan deletes are locked (retention or legal hold): S3 refuses to delete them (delete markers are not locked and are removed as planned)",
                locked.len()
            ),
        )
        .fix(format!(
            "apply --accept object-lock records them as skipped (with the reason) and deletes the rest; or lift the legal holds / wait out the retention (aws s3api put-object-legal-hold --bucket {bucket} --key KEY --version-id ID --legal-hold Status=OFF)"
        )),
        Some(p) if retention_note.is_some() && p.writes_here() > 0 => Finding::new(
            "object-lock",
            Level::Warn,
            p.writes_here(),
            retention_note.clone().unwrap_or_default(),
        ),
        Some(_) => Finding::new(
            "object-lock",
            Level::Ok,
            0,
            format!("Object Lock is on; none of the {checked} versions the plan deletes is locked"),
        ),
    };
    Finding { details, ..finding }
}

pub fn archived(by_class: &[(String, u64, u64)], intelligent_tiering_archived: u64) -> Finding {
    let mut count = intelligent_tiering_archived;
    let mut parts = Vec::new();
    for (class, copies, bytes) in by_class {
        if model::bucket::is_archive_class(class) {
            count += copies;
            parts.push(format!("{copies} {class} ({bytes} bytes)"));
        }
    }
    if intelligent_tiering_archived > 0 {
        parts.push(format!(
            "{intelligent_tiering_archived} INTELLIGENT_TIERING in an archive tier"
        ));
    }
    if count == 0 {
        return Finding::new("archived", Level::Ok, 0, "no copy reads from an archive");
    }
    Finding::new(
        "archived",
        Level::Warn,
        count,
        format!(
            "{count} copies read versions in an archive ({}): S3 refuses to copy them until they are restored",
            parts.join(", ")
        ),
    )
    .fix("apply asks S3 to restore them (RestoreObject; --archive-tier Bulk|Standard|Expedited, --archive-days N), marks them `restoring` and copies the rest meanwhile; run apply again once restored (Standard: 3-5 h from GLACIER, 12 h from DEEP_ARCHIVE)")
}

/// The KMS keys found among a sample of copy sources.
#[derive(Debug, Clone, Default)]
pub struct KmsSample {
    /// Each key, with whether a version it encrypts could be read.
    pub keys: Vec<(String, Result<(), String>)>,
    pub sampled: u64,
    /// How many sampled sources each key encrypts.
    pub sources_of: HashMap<String, u64>,
    /// Why some sampled sources could not be asked about, if so.
    pub unread: Option<String>,
}

pub fn kms(settings: &BucketSettings, plan: Option<&PlanShape>, sample: &KmsSample) -> Finding {
    let (keys, sampled) = (&sample.keys, sample.sampled);
    let default = match &settings.encryption {
        Ok((algorithm, Some(key))) if algorithm.starts_with("aws:kms") => {
            format!("; new copies are encrypted with the bucket's KMS key {key} (kms:GenerateDataKey needed)")
        }
        _ => String::new(),
    };
    let denied: Vec<&(String, Result<(), String>)> =
        keys.iter().filter(|(_, r)| r.is_err()).collect();
    if let Some((key, Err(why))) = denied.first() {
        return Finding {
            details: denied
                .iter()
                .map(|(k, r)| format!("{k}: {}", r.as_ref().err().map_or("", String::as_str)))
                .collect(),
            ..{
                // A sample: the copies it affects are counted among the
                // sampled sources, and scaled to the plan's copies.
                let hit: u64 = denied
                    .iter()
                    .map(|(k, _)| sample.sources_of.get(k).copied().unwrap_or(1))
                    .sum();
                let copies = plan.map_or(0, |p| p.count(ActionKind::CopyVersion));
                let estimate = match sampled {
                    0 => hit,
                    n => (hit * copies).div_ceil(n).max(hit),
                };
                Finding::new(
                    "kms",
                    Level::Block,
                    estimate,
                    format!("{} of the KMS keys the copies' sources are encrypted with cannot be used by these credentials (first: {key}: {why}): {hit} of {sampled} sampled sources use them, so about {estimate} of the plan's {copies} copies would fail", denied.len()),
                )
            }
            .fix("grant kms:Decrypt on the key (key policy or IAM), or run with credentials that have it")
        };
    }
    if let Some(why) = &sample.unread {
        return Finding::new(
            "kms",
            Level::Warn,
            0,
            format!("some of the {sampled} sampled copy sources could not be asked about (HeadObject: {why}): their KMS keys are not checked"),
        );
    }
    match plan {
        Some(p) if p.count(ActionKind::CopyVersion) > 0 && keys.is_empty() => Finding::new(
            "kms",
            Level::Ok,
            0,
            format!("none of {sampled} sampled copy sources is encrypted with a KMS key{default}"),
        ),
        Some(p) if p.count(ActionKind::CopyVersion) > 0 => Finding::new(
            "kms",
            Level::Ok,
            0,
            format!(
                "{} KMS keys among {sampled} sampled copy sources, each readable{default}",
                keys.len()
            ),
        ),
        _ => Finding::new("kms", Level::Ok, 0, format!("no copies to check{default}")),
    }
}

/// Copy sources encrypted with a key the customer holds (SSE-C), found
/// among the `sampled` ones (`found`: "key (version V)"): S3 copies such
/// a version only when the request presents that key again, which
/// s3rewind never holds, so each of those copies would fail.
pub fn customer_keys(plan: Option<&PlanShape>, sampled: u64, found: &[String]) -> Finding {
    if let Some(first) = found.first() {
        return Finding {
            details: found.to_vec(),
            ..Finding::new(
                "sse-c",
                Level::Block,
                found.len() as u64,
                format!("{} of {sampled} sampled copy sources are encrypted with a customer-provided key (SSE-C; first: {first}): S3 copies them only with that key, which s3rewind does not have, so those copies would fail (other copies of the plan may be SSE-C too: only a sample was asked)", found.len()),
            )
            .fix("exclude the SSE-C keys from the plan (plan restore --where …, or plan sql), and restore them with the key (aws s3api copy-object --copy-source-sse-customer-key …); or pass --accept sse-c to let those copies fail")
        };
    }
    match plan {
        Some(p) if p.count(ActionKind::CopyVersion) > 0 => Finding::new(
            "sse-c",
            Level::Ok,
            0,
            format!("none of {sampled} sampled copy sources is encrypted with a customer-provided key (SSE-C)"),
        ),
        _ => Finding::new("sse-c", Level::Ok, 0, "no copies to check"),
    }
}

pub fn replication(settings: &BucketSettings, writes: &[(String, u64, u64, bool)]) -> Finding {
    match &settings.replication {
        Err(why) if why == "not configured" => {
            Finding::new("replication", Level::Ok, 0, "no replication")
        }
        Err(why) => unreadable(
            "replication",
            "replication configuration",
            why,
            "s3:GetReplicationConfiguration",
        ),
        Ok(rules) if rules.iter().all(|r| !r.enabled) => {
            Finding::new("replication", Level::Ok, 0, "no enabled replication rules")
        }
        Ok(_) => {
            let carried: u64 = writes
                .iter()
                .map(|(_, copies, markers, with_markers)| {
                    copies + if *with_markers { *markers } else { 0 }
                })
                .sum();
            let details = writes
                .iter()
                .filter(|w| w.1 + w.2 > 0)
                .map(|(to, copies, markers, with_markers)| {
                    format!(
                        "to {to}: {copies} copies{}",
                        if *with_markers {
                            format!(" and {markers} new delete markers")
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            let level = if carried > 0 { Level::Warn } else { Level::Ok };
            Finding {
                details,
                ..Finding::new(
                    "replication",
                    level,
                    carried,
                    format!("replication is on: {carried} of the plan's writes are replicated too (each copy is carried again: its bytes, requests and time; version deletes are not replicated)"),
                )
                .fix("expected when the replica must follow; otherwise pause the rule while you work")
            }
        }
    }
}

pub fn encryption(settings: &BucketSettings) -> Finding {
    match &settings.encryption {
        Ok((algorithm, key)) => Finding::new(
            "encryption",
            Level::Ok,
            0,
            format!(
                "default encryption {algorithm}{}",
                key.as_ref()
                    .map(|k| format!(" with key {k}"))
                    .unwrap_or_default()
            ),
        ),
        Err(why) => unreadable(
            "encryption",
            "default encryption",
            why,
            "s3:GetEncryptionConfiguration",
        ),
    }
}

pub fn requester_pays(bucket: &str, settings: &BucketSettings) -> Finding {
    match &settings.requester_pays {
        Ok(false) => Finding::new("requester-pays", Level::Ok, 0, "Requester Pays is off"),
        Ok(true) => Finding::new(
            "requester-pays",
            Level::Warn,
            0,
            "Requester Pays is on: requests from an account other than the bucket owner's are refused (403) unless they accept the charges, which s3rewind's do not",
        )
        .fix(format!("run with the owner's credentials, or turn it off: aws s3api put-bucket-request-payment --bucket {bucket} --request-payment-configuration Payer=BucketOwner")),
        Err(why) => unreadable("requester-pays", "Requester Pays setting", why, "s3:GetBucketRequestPayment"),
    }
}

pub fn ownership(settings: &BucketSettings) -> Finding {
    match &settings.ownership {
        Ok(Some(o)) if o == "ObjectWriter" => Finding::new(
            "ownership",
            Level::Warn,
            0,
            "object ownership is ObjectWriter: copies made by another account stay that account's, and their ACLs are not copied",
        )
        .fix("set Object Ownership to BucketOwnerEnforced, or run with the bucket owner's credentials"),
        Ok(Some(o)) => Finding::new("ownership", Level::Ok, 0, format!("object ownership is {o}")),
        Ok(None) => Finding::new("ownership", Level::Ok, 0, "no ownership controls (ACLs apply)"),
        Err(why) => unreadable("ownership", "ownership controls", why, "s3:GetBucketOwnershipControls"),
    }
}

/// What a bucket policy enforces of the S3 user guide's "Enforce
/// conditional writes" and "Enforce conditional deletes" patterns: the
/// statements (by Sid, or position) on `s3:PutObject` that test
/// `Null` of `s3:if-none-match` / `s3:if-match`, and those on
/// `s3:DeleteObject` that test `Null` of `s3:if-match`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PolicyEnforces {
    pub conditional_writes: Vec<String>,
    pub conditional_deletes: Vec<String>,
}

/// Reads a policy document for [`PolicyEnforces`]; `Err` if it is not JSON.
pub fn policy_enforces(document: &str) -> Result<PolicyEnforces, String> {
    let doc: serde_json::Value =
        serde_json::from_str(document).map_err(|e| format!("not a JSON policy: {e}"))?;
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(all) => all.clone(),
        one @ serde_json::Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    let as_list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.to_ascii_lowercase()],
            serde_json::Value::Array(all) => all
                .iter()
                .filter_map(|a| a.as_str().map(str::to_ascii_lowercase))
                .collect(),
            _ => Vec::new(),
        }
    };
    // IAM wildcards in an action name: `*` any run, `?` one character.
    fn matches(pattern: &[u8], name: &[u8]) -> bool {
        match (pattern.first(), name.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                matches(&pattern[1..], name) || (!name.is_empty() && matches(pattern, &name[1..]))
            }
            (Some(b'?'), Some(_)) => matches(&pattern[1..], &name[1..]),
            (Some(p), Some(n)) if p == n => matches(&pattern[1..], &name[1..]),
            _ => false,
        }
    }
    let mut out = PolicyEnforces::default();
    for (i, st) in statements.iter().enumerate() {
        let name = st["Sid"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("statement {}", i + 1));
        let actions = as_list(&st["Action"]);
        let covers = |action: &str| {
            actions
                .iter()
                .any(|a| matches(a.as_bytes(), action.as_bytes()))
        };
        let tested: Vec<String> = st["Condition"]
            .as_object()
            .into_iter()
            .flat_map(|c| c.iter())
            .filter(|(op, _)| op.eq_ignore_ascii_case("Null"))
            .filter_map(|(_, keys)| keys.as_object())
            .flat_map(|keys| keys.keys().map(|k| k.to_ascii_lowercase()))
            .collect();
        let tests = |key: &str| tested.iter().any(|k| k == key);
        if covers("s3:putobject") && (tests("s3:if-none-match") || tests("s3:if-match")) {
            out.conditional_writes.push(name.clone());
        }
        if covers("s3:deleteobject") && tests("s3:if-match") {
            out.conditional_deletes.push(name);
        }
    }
    Ok(out)
}

/// Whether the bucket policy refuses requests apply will send. Identity
/// policies, permission boundaries and SCPs are not visible to `check`.
pub fn policy(bucket: &str, settings: &BucketSettings, plan: Option<&PlanShape>) -> Finding {
    const UNSEEN: &str = "identity policies, permission boundaries and SCPs are not visible to check: a request they refuse fails at apply";
    let document = match &settings.policy {
        Err(why) if why == "not configured" => {
            let mut f = Finding::new("policy", Level::Ok, 0, "no bucket policy");
            f.details.push(UNSEEN.into());
            return f;
        }
        Err(why) => return unreadable("policy", "bucket policy", why, "s3:GetBucketPolicy"),
        Ok(document) => document,
    };
    let enforces = match policy_enforces(document) {
        Ok(e) => e,
        Err(why) => return unreadable("policy", "bucket policy", &why, "s3:GetBucketPolicy"),
    };
    let copies = plan.map_or(0, |p| match p.elsewhere {
        true => 0,
        false => p.count(ActionKind::CopyVersion),
    });
    let markers = plan.map_or(0, |p| match p.elsewhere {
        true => 0,
        false => p.count(ActionKind::AddDeleteMarker),
    });
    let mut f = if !enforces.conditional_writes.is_empty() && (copies > 0 || plan.is_none()) {
        Finding::new(
            "policy",
            if plan.is_some() { Level::Block } else { Level::Warn },
            copies,
            format!(
                "the bucket policy enforces conditional writes ({}): S3 refuses CopyObject under it (403 without the conditional headers, 501 NotImplemented with them), so copies fail",
                enforces.conditional_writes.join(", ")
            ),
        )
        .fix(format!(
            "exempt the credentials s3rewind uses from those statements of {bucket}'s policy; or, where the policy exempts multipart parts (s3:ObjectCreationOperation), apply --multipart-threshold 0 --accept policy: each copy's CompleteMultipartUpload carries the condition"
        ))
    } else if !enforces.conditional_deletes.is_empty() && (markers > 0 || plan.is_none()) {
        Finding::new(
            "policy",
            Level::Warn,
            markers,
            format!(
                "the bucket policy enforces conditional deletes ({}): apply sends each new delete marker with If-Match; a marker it can give no condition (a key whose newest entry is a delete marker already) is refused and recorded as failed",
                enforces.conditional_deletes.join(", ")
            ),
        )
    } else {
        Finding::new(
            "policy",
            Level::Ok,
            0,
            "the bucket policy refuses none of the plan's requests by the documented conditional-write and conditional-delete patterns (version deletes, s3:DeleteObjectVersion, take no condition and are not affected)",
        )
    };
    f.details.push(UNSEEN.into());
    f
}

/// What the bucket a plan's copies land in (`--into`) does to them: its
/// policy may refuse the copies, its lifecycle may expire them, its Object
/// Lock may keep the undo's deletes from taking them back. Each finding's
/// check is the one `--accept` takes for it here too.
pub fn destination(
    d: &model::Destination,
    settings: &BucketSettings,
    plan: &PlanShape,
    now: i64,
) -> Vec<Finding> {
    let there = |mut f: Finding| {
        f.summary = format!("destination {d}: {}", f.summary);
        f
    };
    let copies = plan.count(ActionKind::CopyVersion);
    let deletes = plan.deletes();
    let landing = PlanShape {
        kinds: plan.kinds.clone(),
        elsewhere: false,
    };
    let mut out = Vec::new();
    if copies > 0 {
        out.push(there(policy(&d.bucket, settings, Some(&landing))));
        out.push(there(destination_lifecycle(d, settings, copies, now)));
    }
    if deletes > 0 {
        if let Ok(Some(_)) = &settings.object_lock {
            out.push(there(Finding::new(
                "object-lock",
                Level::Warn,
                deletes,
                "Object Lock is on there: a copy it keeps (retention, legal hold) cannot be deleted, and its delete is recorded as failed (nothing else is deleted instead)",
            )));
        }
    }
    out
}

/// Enabled lifecycle rules of the destination that expire current versions
/// under the prefix the copies land in: the restored copies get a delete
/// marker that many days after they are written (Block at a day or less,
/// or a date passed; else Warn).
fn destination_lifecycle(
    d: &model::Destination,
    settings: &BucketSettings,
    copies: u64,
    now: i64,
) -> Finding {
    let rules = match &settings.lifecycle {
        Ok(rules) => rules,
        Err(why) if why == "not configured" => {
            return Finding::new("lifecycle", Level::Ok, 0, "no enabled lifecycle rules")
        }
        Err(why) => {
            return unreadable(
                "lifecycle",
                "lifecycle rules",
                why,
                "s3:GetLifecycleConfiguration",
            )
        }
    };
    let covering: Vec<&model::bucket::LifecycleRule> = rules
        .iter()
        .filter(|r| {
            r.enabled
                && (r.expiration_days.is_some() || r.expiration_date.is_some())
                && (d.prefix.starts_with(&r.filter.prefix)
                    || r.filter.prefix.starts_with(&d.prefix))
        })
        .collect();
    if covering.is_empty() {
        return Finding::new(
            "lifecycle",
            Level::Ok,
            0,
            "no enabled rule expires current versions where the copies land",
        );
    }
    let at_once = covering.iter().any(|r| {
        r.expiration_days.is_some_and(|days| days <= 1)
            || r.expiration_date.is_some_and(|at| at <= now + DAY)
    });
    let mut f = Finding::new(
        "lifecycle",
        if at_once { Level::Block } else { Level::Warn },
        copies,
        format!(
            "lifecycle rules expire current versions where the copies land: the {copies} restored copies get a delete marker {}",
            if at_once {
                "within a day"
            } else {
                "when the rule's days have passed"
            }
        ),
    )
    .fix(format!(
        "restore into a prefix no expiration rule covers, or suspend the rule in {} while the copies are needed",
        d.bucket
    ));
    f.details = covering
        .iter()
        .map(|r| {
            format!(
                "rule {}: prefix {:?}, {}",
                if r.id.is_empty() { "(no id)" } else { &r.id },
                r.filter.prefix,
                match (r.expiration_days, r.expiration_date) {
                    (Some(days), _) => format!("current versions expire after {days} days"),
                    (None, Some(at)) => format!(
                        "current versions expire on {}",
                        model::time::format_time(at)
                    ),
                    _ => String::new(),
                }
            )
        })
        .collect();
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::bucket::{ObjectLock, RuleFilter};

    fn settings() -> BucketSettings {
        BucketSettings {
            versioning: Ok(Versioning::Enabled),
            mfa_delete: Ok(false),
            lifecycle: Ok(Vec::new()),
            object_lock: Ok(None),
            replication: Err("not configured".into()),
            encryption: Ok(("AES256".into(), None)),
            requester_pays: Ok(false),
            ownership: Ok(None),
            policy: Err("not configured".into()),
        }
    }

    fn needed(key: &str, noncurrent_since: i64, newer: i64) -> NeededVersion {
        NeededVersion {
            key: key.into(),
            size: Some(10),
            mtime: noncurrent_since - DAY,
            noncurrent_since,
            newer_noncurrent: newer,
            made_current: false,
        }
    }

    #[test]
    fn lifecycle_day_rounds_up_to_midnight() {
        assert_eq!(lifecycle_day(0, 1), DAY);
        assert_eq!(lifecycle_day(1, 1), 2 * DAY);
        assert_eq!(lifecycle_day(DAY - 1, 0), DAY);
    }

    #[test]
    fn a_noncurrent_rule_blocks_what_it_expires_within_two_days() {
        let now = 1000 * DAY;
        let mut s = settings();
        s.lifecycle = Ok(vec![LifecycleRule {
            id: "old".into(),
            enabled: true,
            filter: RuleFilter {
                prefix: "logs/".into(),
                ..RuleFilter::default()
            },
            noncurrent_days: Some(30),
            newer_noncurrent_versions: Some(1),
            ..LifecycleRule::default()
        }]);
        let mut l = Lifecycle::new(&s, now);
        // replaced 29.5 days ago: due tomorrow at midnight
        l.add(&needed("logs/a", now - 29 * DAY - DAY / 2, 1));
        // the newest noncurrent version is kept by NewerNoncurrentVersions
        l.add(&needed("logs/b", now - 29 * DAY - DAY / 2, 0));
        // another prefix
        l.add(&needed("data/c", now - 40 * DAY, 3));
        // replaced 10 days ago: in 20 days
        l.add(&needed("logs/d", now - 10 * DAY, 2));
        let plan = PlanShape::default();
        let f = l.finding("b", &s, Some(&plan));
        assert_eq!(f.level, Level::Block);
        assert_eq!(f.count, 1);
        assert!(f.details[0].contains("\"old\""), "{:?}", f.details);
        assert!(
            f.details[0].contains("expires 2 needed versions"),
            "{:?}",
            f.details
        );
        assert!(
            f.details[0].contains(&format_time(now + DAY)),
            "{:?}",
            f.details
        );
    }

    #[test]
    fn copy_sources_a_rule_archives_within_two_days_are_a_warning() {
        let now = 1000 * DAY;
        let mut s = settings();
        s.lifecycle = Ok(vec![LifecycleRule {
            id: "cold".into(),
            enabled: true,
            noncurrent_transition: Some((30, "GLACIER".into())),
            ..LifecycleRule::default()
        }]);
        let mut l = Lifecycle::new(&s, now);
        // Replaced 29.5 days ago: archived tomorrow; 10 days ago: not yet.
        l.add(&needed("a", now - 29 * DAY - DAY / 2, 0));
        l.add(&needed("b", now - 10 * DAY, 0));
        // Made current by the plan: never archived as noncurrent.
        l.add(&NeededVersion {
            made_current: true,
            ..needed("c", now - 40 * DAY, 0)
        });
        let f = l.finding("b", &s, Some(&PlanShape::default()));
        assert_eq!((f.level, f.count), (Level::Warn, 1), "{f:?}");
        assert!(f.summary.contains("archive class"), "{}", f.summary);
        assert!(f.details[0].contains("GLACIER"), "{:?}", f.details);
    }

    #[test]
    fn locked_versions_block_and_markers_never_do() {
        let mut s = settings();
        s.object_lock = Ok(Some(ObjectLock::default()));
        let plan = PlanShape::default();
        let ok = object_lock("b", &s, Some(&plan), &[], 5, None);
        assert_eq!(ok.level, Level::Ok);
        let locked = [Locked {
            id: 3,
            key: "k".into(),
            version_id: "v".into(),
            reason: "legal hold".into(),
        }];
        let f = object_lock("b", &s, Some(&plan), &locked, 5, None);
        assert_eq!((f.level, f.count), (Level::Block, 1));
        assert!(f.details[0].contains("legal hold"));
    }

    #[test]
    fn suspended_versioning_blocks_a_plan_that_writes() {
        let mut s = settings();
        s.versioning = Ok(Versioning::Suspended);
        let mut plan = PlanShape::default();
        plan.kinds.insert(ActionKind::CopyVersion, 4);
        let f = versioning("b", &s, Some(&plan), Some("Enabled"));
        assert_eq!((f.level, f.count), (Level::Block, 4));
        assert!(f
            .summary
            .contains("was Enabled when the catalog was scanned"));
        plan.elsewhere = true;
        assert_eq!(versioning("b", &s, Some(&plan), None).level, Level::Warn);
    }

    #[test]
    fn mfa_delete_blocks_deletes_only() {
        let mut s = settings();
        s.mfa_delete = Ok(true);
        let mut plan = PlanShape::default();
        plan.kinds.insert(ActionKind::CopyVersion, 4);
        assert_eq!(mfa_delete("b", &s, Some(&plan)).level, Level::Ok);
        plan.kinds.insert(ActionKind::DeleteMarker, 2);
        assert_eq!(mfa_delete("b", &s, Some(&plan)).level, Level::Block);
    }

    #[test]
    fn policy_statements_of_the_documented_patterns_are_found() {
        let doc = r#"{"Statement":[
            {"Sid":"W","Effect":"Deny","Principal":"*","Action":["s3:Put*"],
             "Condition":{"Null":{"s3:if-match":"true"}}},
            {"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject",
             "Condition":{"Null":{"S3:If-Match":"true"}}},
            {"Sid":"Other","Effect":"Deny","Principal":"*","Action":"s3:GetObject",
             "Condition":{"Null":{"s3:if-match":"true"}}}]}"#;
        let found = policy_enforces(doc).unwrap();
        assert_eq!(found.conditional_writes, ["W"]);
        assert_eq!(found.conditional_deletes, ["statement 2"]);
        assert!(policy_enforces("<Error/>").is_err());
        let mut s = settings();
        s.policy = Ok(doc.into());
        let plan = PlanShape {
            kinds: [(ActionKind::CopyVersion, 3)].into(),
            elsewhere: false,
        };
        assert_eq!(policy("b", &s, Some(&plan)).level, Level::Block);
        let elsewhere = PlanShape {
            elsewhere: true,
            ..plan
        };
        assert_eq!(policy("b", &s, Some(&elsewhere)).level, Level::Ok);
        s.policy = Err("AccessDenied: no".into());
        let unread = policy("b", &s, None);
        assert!(unread.not_checked && unread.level == Level::Warn);
    }
}
