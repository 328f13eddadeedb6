//! What a bucket is configured with besides versioning, and what each
//! version carries besides its bytes: Object Lock retention and legal
//! hold, and the state of a restore from an archive.
//!
//! Configurations are stored and given back, never executed: a lifecycle
//! rule expires nothing, replication copies nothing. What they change in
//! the answers to other requests is what AWS changes: a locked version is
//! not deleted, MFA Delete refuses versioned deletes, an archived version
//! is not copied until restored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use s3s::dto::{
    BucketLifecycleConfiguration, ObjectLockConfiguration, OwnershipControls,
    ReplicationConfiguration, ServerSideEncryptionConfiguration,
};

use crate::store::{now_ms, VersionId};

/// One bucket's configuration.
#[derive(Debug, Clone, Default)]
pub struct BucketSettings {
    pub lifecycle: Option<BucketLifecycleConfiguration>,
    pub object_lock: Option<ObjectLockConfiguration>,
    pub replication: Option<ReplicationConfiguration>,
    pub encryption: Option<ServerSideEncryptionConfiguration>,
    pub ownership: Option<OwnershipControls>,
    pub requester_pays: bool,
    pub mfa_delete: bool,
    /// Set through [`Settings::set_policy`].
    pub policy: Option<Arc<crate::policy::BucketPolicy>>,
}

/// An Object Lock retention on one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: String,
    /// Unix milliseconds.
    pub until_ms: i64,
}

/// What one version carries besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct VersionState {
    pub retention: Option<Retention>,
    /// `None`: never set (HeadObject then shows no legal-hold header, and
    /// GetObjectLegalHold answers NoSuchObjectLockConfiguration).
    pub legal_hold: Option<bool>,
    /// An INTELLIGENT_TIERING version moved to its Archive Access tier (as
    /// after 90 days unread, with archiving configured): see
    /// [`Settings::archive_tiered`].
    pub archive_access: bool,
    /// A restore from an archive was asked for; it is done at this time
    /// (Unix milliseconds).
    pub restored_at_ms: Option<i64>,
}

/// Where a version's restore stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    NotRequested,
    Ongoing,
    Done,
}

impl VersionState {
    pub fn restore(&self) -> Restore {
        match self.restored_at_ms {
            None => Restore::NotRequested,
            Some(at) if at > now_ms() => Restore::Ongoing,
            Some(_) => Restore::Done,
        }
    }

    /// Why a delete of this version is refused, if it is: a legal hold, a
    /// retention in the future (GOVERNANCE yields to a bypass).
    pub fn delete_refused(&self, bypass_governance: bool) -> bool {
        let retained = self.retention.as_ref().is_some_and(|r| {
            r.until_ms > now_ms() && !(r.mode == "GOVERNANCE" && bypass_governance)
        });
        self.legal_hold == Some(true) || retained
    }
}

/// bucket → key → version → state: looked up by `&str`, without
/// allocating (every GET, HEAD, copy and deleted key asks).
type VersionStates = HashMap<String, HashMap<String, HashMap<VersionId, VersionState>>>;

/// Every bucket's configuration and every version's state.
#[derive(Debug, Default)]
pub struct Settings {
    buckets: Mutex<HashMap<String, BucketSettings>>,
    versions: Mutex<VersionStates>,
    /// Some bucket has (or had) a policy: until then no request needs a
    /// look at one.
    policies: AtomicBool,
    /// upload id → the Object Lock its CreateMultipartUpload asked for,
    /// given to the version its completion makes.
    upload_locks: Mutex<HashMap<String, LockRequest>>,
}

impl Settings {
    /// Reads a bucket's configuration (the default where none was set).
    pub fn with_bucket<T>(&self, bucket: &str, read: impl FnOnce(&BucketSettings) -> T) -> T {
        let buckets = self.buckets.lock().expect("not poisoned");
        match buckets.get(bucket) {
            Some(b) => read(b),
            None => read(&BucketSettings::default()),
        }
    }

    pub fn update_bucket(&self, bucket: &str, change: impl FnOnce(&mut BucketSettings)) {
        let mut buckets = self.buckets.lock().expect("not poisoned");
        change(buckets.entry(bucket.to_owned()).or_default());
    }

    /// Sets (or with `None` removes) a bucket's policy.
    pub fn set_policy(&self, bucket: &str, policy: Option<Arc<crate::policy::BucketPolicy>>) {
        if policy.is_some() {
            self.policies.store(true, Ordering::Release);
        }
        self.update_bucket(bucket, |b| b.policy = policy);
    }

    /// Keeps the Object Lock an upload asked for until it completes.
    pub fn stage_upload_lock(&self, upload_id: &str, lock: LockRequest) {
        if lock != LockRequest::default() {
            let mut locks = self.upload_locks.lock().expect("not poisoned");
            locks.insert(upload_id.to_owned(), lock);
        }
    }

    /// The Object Lock an upload asked for (when it completes or is
    /// aborted).
    pub fn take_upload_lock(&self, upload_id: &str) -> LockRequest {
        let mut locks = self.upload_locks.lock().expect("not poisoned");
        locks.remove(upload_id).unwrap_or_default()
    }

    /// Whether any bucket may have a policy.
    pub fn has_policies(&self) -> bool {
        self.policies.load(Ordering::Acquire)
    }

    pub fn version(&self, bucket: &str, key: &str, id: VersionId) -> VersionState {
        let versions = self.versions.lock().expect("not poisoned");
        versions
            .get(bucket)
            .and_then(|keys| keys.get(key))
            .and_then(|ids| ids.get(&id))
            .cloned()
            .unwrap_or_default()
    }

    pub fn update_version(
        &self,
        bucket: &str,
        key: &str,
        id: VersionId,
        change: impl FnOnce(&mut VersionState),
    ) {
        let mut versions = self.versions.lock().expect("not poisoned");
        change(
            versions
                .entry(bucket.to_owned())
                .or_default()
                .entry(key.to_owned())
                .or_default()
                .entry(id)
                .or_default(),
        );
    }

    /// Moves an INTELLIGENT_TIERING version to its Archive Access tier, as
    /// time would: reads and copies are refused until it is restored.
    pub fn archive_tiered(&self, bucket: &str, key: &str, id: VersionId) {
        self.update_version(bucket, key, id, |v| v.archive_access = true);
    }

    /// The bucket's Object Lock is on.
    pub fn locking(&self, bucket: &str) -> bool {
        self.with_bucket(bucket, |b| {
            b.object_lock.as_ref().is_some_and(|c| {
                c.object_lock_enabled
                    .as_ref()
                    .is_some_and(|e| e.as_str() == s3s::dto::ObjectLockEnabled::ENABLED)
            })
        })
    }

    /// A new version's Object Lock: what the write asked for (its
    /// `x-amz-object-lock-*` headers), else the bucket's default retention,
    /// if it has one. A legal hold is asked for on its own.
    pub fn lock_new_version(&self, bucket: &str, key: &str, id: VersionId, asked: &LockRequest) {
        let retention = asked
            .retention
            .clone()
            .or_else(|| self.default_retention(bucket));
        if retention.is_none() && asked.legal_hold.is_none() {
            return;
        }
        self.update_version(bucket, key, id, |v| {
            v.retention = retention;
            v.legal_hold = asked.legal_hold;
        });
    }

    fn default_retention(&self, bucket: &str) -> Option<Retention> {
        let default = self.with_bucket(bucket, |b| {
            b.object_lock
                .as_ref()
                .and_then(|c| c.rule.as_ref())
                .and_then(|r| r.default_retention.clone())
        })?;
        let days =
            i64::from(default.days.unwrap_or(0)) + 365 * i64::from(default.years.unwrap_or(0));
        let mode = default.mode.map(|m| m.as_str().to_owned())?;
        (days > 0).then(|| Retention {
            mode,
            until_ms: now_ms() + days * 86_400_000,
        })
    }
}

/// The Object Lock a write asks for with its `x-amz-object-lock-mode`,
/// `-retain-until-date` and `-legal-hold` headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockRequest {
    pub retention: Option<Retention>,
    pub legal_hold: Option<bool>,
}

impl LockRequest {
    /// Checks the headers as S3 does: only on a bucket with Object Lock
    /// (400 InvalidRequest "Bucket is missing Object Lock Configuration"),
    /// mode and date together, the date in the future, the hold `ON` or
    /// `OFF` (400 InvalidArgument otherwise). Each message is S3's.
    pub fn from_headers(
        locking: bool,
        mode: Option<&str>,
        until_ms: Option<i64>,
        legal_hold: Option<&str>,
    ) -> Result<LockRequest, LockHeaderError> {
        if mode.is_none() && until_ms.is_none() && legal_hold.is_none() {
            return Ok(LockRequest::default());
        }
        if !locking {
            return Err(LockHeaderError::NoObjectLock);
        }
        let retention = match (mode, until_ms) {
            (None, None) => None,
            (Some(mode), Some(until_ms)) => {
                if mode != "GOVERNANCE" && mode != "COMPLIANCE" {
                    return Err(LockHeaderError::Invalid("Unknown wormMode directive.".into()));
                }
                if until_ms <= now_ms() {
                    return Err(LockHeaderError::Invalid(
                        "The retain until date must be in the future!".into(),
                    ));
                }
                Some(Retention {
                    mode: mode.to_owned(),
                    until_ms,
                })
            }
            _ => {
                return Err(LockHeaderError::Invalid(
                    "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
                        .into(),
                ))
            }
        };
        let legal_hold = match legal_hold {
            None => None,
            Some("ON") => Some(true),
            Some("OFF") => Some(false),
            Some(_) => {
                return Err(LockHeaderError::Invalid(
                    "Legal Hold must be either of 'ON' or 'OFF'".into(),
                ))
            }
        };
        Ok(LockRequest {
            retention,
            legal_hold,
        })
    }
}

/// Why a write's Object Lock headers are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockHeaderError {
    /// The bucket has no Object Lock (400 InvalidRequest).
    NoObjectLock,
    /// A header is wrong (400 InvalidArgument), S3's message.
    Invalid(String),
}
