//! What a bucket is configured with and what one version carries besides
//! its bytes, as far as a plan cares: read by `s3io`, judged by `check`.

/// One part of a bucket's configuration as read: its value, or why it
/// could not be read (`Code: message`, e.g. AccessDenied).
pub type Setting<T> = Result<T, String>;

/// A bucket's configuration.
#[derive(Debug, Clone)]
pub struct BucketSettings {
    pub versioning: Setting<crate::Versioning>,
    pub mfa_delete: Setting<bool>,
    /// Rules, enabled or not.
    pub lifecycle: Setting<Vec<LifecycleRule>>,
    /// `None`: Object Lock is off.
    pub object_lock: Setting<Option<ObjectLock>>,
    pub replication: Setting<Vec<ReplicationRule>>,
    /// The default encryption: `AES256`, `aws:kms` or `aws:kms:dsse`, and
    /// the KMS key when one is named.
    pub encryption: Setting<(String, Option<String>)>,
    pub requester_pays: Setting<bool>,
    /// `BucketOwnerEnforced`, `BucketOwnerPreferred`, `ObjectWriter`;
    /// `None`: not configured.
    pub ownership: Setting<Option<String>>,
    /// The bucket policy document, as S3 gives it back.
    pub policy: Setting<String>,
}

/// The part of a rule's filter s3rewind can judge from the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleFilter {
    pub prefix: String,
    /// The rule also filters on object tags, which the catalog does not
    /// hold: it applies to some of the keys under its prefix, at most.
    pub tags: bool,
    pub size_greater_than: Option<i64>,
    pub size_less_than: Option<i64>,
}

impl RuleFilter {
    /// Whether a version of `key` of `size` bytes may fall under the rule.
    pub fn may_match(&self, key: &str, size: Option<i64>) -> bool {
        let size = size.unwrap_or(0);
        key.starts_with(&self.prefix)
            && self.size_greater_than.is_none_or(|g| size > g)
            && self.size_less_than.is_none_or(|l| size < l)
    }
}

/// A lifecycle rule: what it expires or moves, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    pub filter: RuleFilter,
    /// Noncurrent versions expire this many days after becoming noncurrent...
    pub noncurrent_days: Option<i32>,
    /// ... except the newest this many noncurrent versions of a key.
    pub newer_noncurrent_versions: Option<i32>,
    /// Current versions expire (get a delete marker) this many days after
    /// they were written, or on this date (Unix seconds).
    pub expiration_days: Option<i32>,
    pub expiration_date: Option<i64>,
    /// Noncurrent versions move to an archive class this many days after
    /// becoming noncurrent (the smallest such rule's days, and its class).
    pub noncurrent_transition: Option<(i32, String)>,
}

/// Object Lock on a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectLock {
    /// New versions get this retention: (`GOVERNANCE`/`COMPLIANCE`, days).
    pub default_retention: Option<(String, i64)>,
}

/// A replication rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicationRule {
    pub id: String,
    pub enabled: bool,
    pub filter: RuleFilter,
    /// Delete markers added to the source are replicated too.
    pub delete_markers: bool,
    /// `arn:aws:s3:::bucket` as configured.
    pub destination: String,
}

/// Where a restore from an archive stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    NotRequested,
    Ongoing,
    Done,
}

/// What HeadObject says about one version besides its size and ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionState {
    /// `None`: STANDARD.
    pub storage_class: Option<String>,
    /// Intelligent-Tiering's archive tier (`ARCHIVE_ACCESS`,
    /// `DEEP_ARCHIVE_ACCESS`), if the version sits in one.
    pub archive_status: Option<String>,
    pub restore: Restore,
    pub kms_key_id: Option<String>,
    /// Its full-object checksum as `ALGORITHM:value` (HeadObject with
    /// checksum mode; listings never carry it), when S3 keeps one.
    pub checksum: Option<String>,
    /// Encrypted with a key the customer holds (SSE-C): nothing can read
    /// or copy it without that key.
    pub customer_key: bool,
}

impl VersionState {
    /// Its bytes are in an archive: a copy is refused until it is restored.
    pub fn archived(&self) -> bool {
        let archive_class = is_archive_class(self.storage_class.as_deref().unwrap_or("STANDARD"));
        (archive_class || self.archive_status.is_some()) && self.restore != Restore::Done
    }
}

/// A version's Object Lock state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionLock {
    /// Retention mode and until when (Unix seconds).
    pub retention: Option<(String, i64)>,
    pub legal_hold: bool,
}

impl VersionLock {
    /// Why a delete of this version would be refused at `now` (Unix
    /// seconds), if it would.
    pub fn locked(&self, now: i64) -> Option<String> {
        if self.legal_hold {
            return Some("legal hold".into());
        }
        match &self.retention {
            Some((mode, until)) if *until > now => Some(format!(
                "{mode} retention until {}",
                crate::time::format_time(*until)
            )),
            _ => None,
        }
    }
}

/// Storage classes whose versions must be restored before a copy.
pub fn is_archive_class(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}
