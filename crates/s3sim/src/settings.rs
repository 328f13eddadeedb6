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
use std::sync::Mutex;

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
    pub legal_hold: bool,
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
        self.legal_hold || retained
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

    /// A new version gets the bucket's default retention, if it has one.
    pub fn lock_new_version(&self, bucket: &str, key: &str, id: VersionId) {
        let default = self.with_bucket(bucket, |b| {
            b.object_lock
                .as_ref()
                .and_then(|c| c.rule.as_ref())
                .and_then(|r| r.default_retention.clone())
        });
        let Some(default) = default else {
            return;
        };
        let days =
            i64::from(default.days.unwrap_or(0)) + 365 * i64::from(default.years.unwrap_or(0));
        let mode = default.mode.map(|m| m.as_str().to_owned());
        if let (Some(mode), true) = (mode, days > 0) {
            self.update_version(bucket, key, id, |v| {
                v.retention = Some(Retention {
                    mode,
                    until_ms: now_ms() + days * 86_400_000,
                })
            });
        }
    }
}
