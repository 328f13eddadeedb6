//! A bucket's configuration, one version's lock and archive state, and the
//! restore of an archived version: what `check` reads and `apply` needs
//! before it copies from an archive or deletes under Object Lock.

use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, Tier};
use model::bucket::{
    BucketSettings, LifecycleRule, ObjectLock, ReplicationRule, Restore, RuleFilter, Setting,
    VersionLock, VersionState,
};

use crate::pacer::{partition_of, Retry};
use crate::{S3Error, S3};

/// S3's codes for "this bucket has no such configuration".
const NOT_CONFIGURED: &[&str] = &[
    "NoSuchLifecycleConfiguration",
    "ObjectLockConfigurationNotFoundError",
    "ReplicationConfigurationNotFoundError",
    "ServerSideEncryptionConfigurationNotFoundError",
    "OwnershipControlsNotFoundError",
    "NoSuchBucketPolicy",
];

/// How a RestoreObject went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreStarted {
    /// Asked for now.
    Requested,
    /// One was already under way.
    AlreadyOngoing,
    /// The version is restored already (a copy can go ahead).
    AlreadyDone,
}

impl S3 {
    /// The bucket's configuration, each part read on its own: a part that
    /// cannot be read (AccessDenied, say) says why, the others still count.
    /// A bucket that is missing or unreachable fails the whole.
    pub async fn bucket_settings(&self, bucket: &str) -> Result<BucketSettings, S3Error> {
        let (versioning, mfa_delete) = match self.versioning_status(bucket).await {
            Ok((status, mfa)) => (Ok(status), Ok(mfa)),
            Err(e) if e.stops_the_run() || e.is_retryable() => return Err(e),
            // AccessDenied, say: the other parts may still be readable.
            Err(e) => (Err(e.code_and_message()), Err(e.code_and_message())),
        };
        let (lifecycle, object_lock, replication, encryption, requester_pays, ownership, policy) = tokio::join!(
            self.lifecycle(bucket),
            self.object_lock(bucket),
            self.replication(bucket),
            self.encryption(bucket),
            self.requester_pays(bucket),
            self.ownership(bucket),
            self.policy(bucket),
        );
        Ok(BucketSettings {
            versioning,
            mfa_delete,
            lifecycle: setting(lifecycle)?,
            object_lock: setting(object_lock)?,
            replication: setting(replication)?,
            encryption: setting(encryption)?,
            requester_pays: setting(requester_pays)?,
            ownership: setting(ownership)?,
            policy: setting(policy)?,
        })
    }

    async fn lifecycle(&self, bucket: &str) -> Result<Option<Vec<LifecycleRule>>, S3Error> {
        let out = self
            .setting(|| async {
                self.sdk()
                    .get_bucket_lifecycle_configuration()
                    .bucket(bucket)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetBucketLifecycleConfiguration", bucket, e))
            })
            .await;
        let out = match out? {
            None => return Ok(Some(Vec::new())),
            Some(out) => out,
        };
        let rules = out
            .rules()
            .iter()
            .map(|r| {
                let filter = r.filter();
                let and = filter.and_then(|f| f.and());
                let nve = r.noncurrent_version_expiration();
                let expiration = r.expiration();
                LifecycleRule {
                    id: r.id().unwrap_or_default().to_owned(),
                    enabled: r.status().as_str() == "Enabled",
                    filter: RuleFilter {
                        #[allow(deprecated)]
                        prefix: filter
                            .and_then(|f| f.prefix())
                            .or_else(|| and.and_then(|a| a.prefix()))
                            .or(r.prefix())
                            .unwrap_or_default()
                            .to_owned(),
                        tags: filter.is_some_and(|f| f.tag().is_some())
                            || and.is_some_and(|a| !a.tags().is_empty()),
                        size_greater_than: filter
                            .and_then(|f| f.object_size_greater_than())
                            .or_else(|| and.and_then(|a| a.object_size_greater_than())),
                        size_less_than: filter
                            .and_then(|f| f.object_size_less_than())
                            .or_else(|| and.and_then(|a| a.object_size_less_than())),
                    },
                    noncurrent_days: nve.and_then(|n| n.noncurrent_days()),
                    newer_noncurrent_versions: nve.and_then(|n| n.newer_noncurrent_versions()),
                    expiration_days: expiration.and_then(|e| e.days()),
                    expiration_date: expiration.and_then(|e| e.date()).map(|d| d.secs()),
                    noncurrent_transition: r
                        .noncurrent_version_transitions()
                        .iter()
                        .filter_map(|t| {
                            let class = t.storage_class()?.as_str();
                            model::bucket::is_archive_class(class)
                                .then(|| (t.noncurrent_days().unwrap_or(0), class.to_owned()))
                        })
                        .min(),
                }
            })
            .collect();
        Ok(Some(rules))
    }

    async fn object_lock(&self, bucket: &str) -> Result<Option<Option<ObjectLock>>, S3Error> {
        let out = self
            .setting(|| async {
                self.sdk()
                    .get_object_lock_configuration()
                    .bucket(bucket)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetObjectLockConfiguration", bucket, e))
            })
            .await;
        let Some(out) = out? else {
            return Ok(Some(None));
        };
        let config = out.object_lock_configuration();
        let enabled = config
            .and_then(|c| c.object_lock_enabled())
            .is_some_and(|e| e.as_str() == "Enabled");
        let default_retention = config
            .and_then(|c| c.rule())
            .and_then(|r| r.default_retention())
            .and_then(|d| {
                let days =
                    i64::from(d.days().unwrap_or(0)) + 365 * i64::from(d.years().unwrap_or(0));
                Some((d.mode()?.as_str().to_owned(), days))
            });
        Ok(Some(enabled.then_some(ObjectLock { default_retention })))
    }

    async fn replication(&self, bucket: &str) -> Result<Option<Vec<ReplicationRule>>, S3Error> {
        let out = self
            .setting(|| async {
                self.sdk()
                    .get_bucket_replication()
                    .bucket(bucket)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetBucketReplication", bucket, e))
            })
            .await;
        let Some(out) = out? else {
            return Ok(Some(Vec::new()));
        };
        let rules = out
            .replication_configuration()
            .map(|c| c.rules())
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let filter = r.filter();
                let and = filter.and_then(|f| f.and());
                ReplicationRule {
                    id: r.id().unwrap_or_default().to_owned(),
                    enabled: r.status().as_str() == "Enabled",
                    filter: RuleFilter {
                        #[allow(deprecated)]
                        prefix: filter
                            .and_then(|f| f.prefix())
                            .or_else(|| and.and_then(|a| a.prefix()))
                            .or(r.prefix())
                            .unwrap_or_default()
                            .to_owned(),
                        tags: filter.is_some_and(|f| f.tag().is_some())
                            || and.is_some_and(|a| !a.tags().is_empty()),
                        ..RuleFilter::default()
                    },
                    delete_markers: r
                        .delete_marker_replication()
                        .and_then(|d| d.status())
                        .is_some_and(|s| s.as_str() == "Enabled"),
                    destination: r
                        .destination()
                        .map(|d| d.bucket().to_owned())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(Some(rules))
    }

    async fn encryption(&self, bucket: &str) -> Result<Option<(String, Option<String>)>, S3Error> {
        let out = self
            .setting(|| async {
                self.sdk()
                    .get_bucket_encryption()
                    .bucket(bucket)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetBucketEncryption", bucket, e))
            })
            .await;
        let Some(out) = out? else {
            return Ok(Some(("AES256".into(), None)));
        };
        let default = out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        Ok(Some(match default {
            Some(d) => (
                d.sse_algorithm().as_str().to_owned(),
                d.kms_master_key_id().map(str::to_owned),
            ),
            None => ("AES256".into(), None),
        }))
    }

    async fn requester_pays(&self, bucket: &str) -> Result<Option<bool>, S3Error> {
        let out = self
            .setting(|| async {
                self.sdk()
                    .get_bucket_request_payment()
                    .bucket(bucket)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetBucketRequestPayment", bucket, e))
            })
            .await;
        Ok(out?.map(|o| o.payer().is_some_and(|p| p.as_str() == "Requester")))
    }

    async fn ownership(&self, bucket: &str) -> Result<Option<Option<String>>, S3Error> {
        let out = self
            .setting(|| async {
                self.sdk()
                    .get_bucket_ownership_controls()
                    .bucket(bucket)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetBucketOwnershipControls", bucket, e))
            })
            .await;
        Ok(Some(out?.and_then(|o| {
            o.ownership_controls()
                .and_then(|c| c.rules().first())
                .map(|r| r.object_ownership().as_str().to_owned())
        })))
    }

    async fn policy(&self, bucket: &str) -> Result<Option<String>, S3Error> {
        let out = self
            .setting(|| async {
                self.sdk()
                    .get_bucket_policy()
                    .bucket(bucket)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetBucketPolicy", bucket, e))
            })
            .await;
        Ok(out?.map(|o| o.policy().unwrap_or_default().to_owned()))
    }

    /// HeadObject of one version: its storage class, archive and restore
    /// state, KMS key and full-object checksum (its lock: [`S3::version_lock`]).
    /// A version encrypted with a customer-provided key (SSE-C) cannot be
    /// read, not even its headers, without that key: S3 answers the HEAD
    /// 400 (no body, so no code), and a one-byte GET then says
    /// InvalidRequest ("The object was stored using a form of Server Side
    /// Encryption"; S3 user guide, "Using server-side encryption with
    /// customer-provided keys"): such a version is `customer_key`, and
    /// nothing else of it is known.
    pub async fn version_state(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<VersionState, S3Error> {
        let out = match self.head_version(bucket, key, version_id).await {
            Ok(out) => out,
            Err(e) if e.code.as_deref() == Some("BadRequest") => {
                return match self.can_read(bucket, key, version_id, 1).await {
                    Err(g) if g.code.as_deref() == Some("InvalidRequest") => Ok(VersionState {
                        storage_class: None,
                        archive_status: None,
                        restore: Restore::NotRequested,
                        kms_key_id: None,
                        checksum: None,
                        customer_key: true,
                    }),
                    _ => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        // A full-object checksum only: a composite one (of parts) differs
        // between two copies of the same bytes made with other part sizes.
        let full = out
            .checksum_type()
            .is_none_or(|t| t.as_str() == "FULL_OBJECT");
        let checksum = [
            ("CRC64NVME", out.checksum_crc64_nvme()),
            ("CRC32", out.checksum_crc32()),
            ("CRC32C", out.checksum_crc32_c()),
            ("SHA256", out.checksum_sha256()),
            ("SHA1", out.checksum_sha1()),
        ]
        .into_iter()
        .find_map(|(algorithm, value)| Some(format!("{algorithm}:{}", value?)))
        .filter(|_| full);
        Ok(VersionState {
            checksum,
            customer_key: out.sse_customer_algorithm().is_some(),
            storage_class: out
                .storage_class()
                .map(|c| c.as_str().to_owned())
                .filter(|c| c != "STANDARD"),
            archive_status: out.archive_status().map(|a| a.as_str().to_owned()),
            restore: match out.restore() {
                None => Restore::NotRequested,
                Some(r) if r.contains("ongoing-request=\"true\"") => Restore::Ongoing,
                Some(_) => Restore::Done,
            },
            kms_key_id: out.ssekms_key_id().map(str::to_owned),
        })
    }

    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<aws_sdk_s3::operation::head_object::HeadObjectOutput, S3Error> {
        self.pacer
            .call(partition_of(key), Retry::Idempotent, || async {
                self.sdk()
                    .head_object()
                    .bucket(bucket)
                    .key(key)
                    .version_id(version_id)
                    .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("HeadObject", bucket, e))
            })
            .await
    }

    /// A version's retention and legal hold as the lock APIs give them
    /// (GetObjectRetention, GetObjectLegalHold): HeadObject returns the
    /// lock headers only to callers allowed s3:GetObjectRetention and
    /// s3:GetObjectLegalHold, and says nothing when they are not, so an
    /// absent header proves nothing. `NoSuchObjectLockConfiguration` is
    /// S3's answer for a version with no retention (or never a hold): not
    /// locked. An AccessDenied is returned as the error it is: the caller
    /// cannot know.
    pub async fn version_lock(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<VersionLock, S3Error> {
        let none = |e: &S3Error| e.code.as_deref() == Some("NoSuchObjectLockConfiguration");
        let retention = self
            .pacer
            .call(partition_of(key), Retry::Idempotent, || async {
                self.sdk()
                    .get_object_retention()
                    .bucket(bucket)
                    .key(key)
                    .version_id(version_id)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetObjectRetention", bucket, e))
            })
            .await;
        let retention = match retention {
            Ok(out) => out
                .retention()
                .and_then(|r| Some((r.mode()?.as_str().to_owned(), r.retain_until_date()?.secs()))),
            Err(e) if none(&e) => None,
            Err(e) => return Err(e),
        };
        let hold = self
            .pacer
            .call(partition_of(key), Retry::Idempotent, || async {
                self.sdk()
                    .get_object_legal_hold()
                    .bucket(bucket)
                    .key(key)
                    .version_id(version_id)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetObjectLegalHold", bucket, e))
            })
            .await;
        let legal_hold = match hold {
            Ok(out) => out
                .legal_hold()
                .and_then(|h| h.status())
                .is_some_and(|s| s.as_str() == "ON"),
            Err(e) if none(&e) => false,
            Err(e) => return Err(e),
        };
        Ok(VersionLock {
            retention,
            legal_hold,
        })
    }

    /// Reads the first byte of a version (all of it when it is empty):
    /// proves the caller may decrypt it (kms:Decrypt for SSE-KMS), which a
    /// HeadObject does not.
    pub async fn can_read(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        size: u64,
    ) -> Result<(), S3Error> {
        self.pacer
            .call(partition_of(key), Retry::Idempotent, || async {
                let mut get = self
                    .sdk()
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .version_id(version_id);
                if size > 0 {
                    get = get.range("bytes=0-0");
                }
                let out = get
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetObject", bucket, e))?;
                out.body
                    .collect()
                    .await
                    .map_err(|e| S3Error::malformed("GetObject", e.to_string()))?;
                Ok(())
            })
            .await
    }

    /// Asks S3 to restore an archived version of storage class `class`
    /// for `days` days at `tier` (`Standard`, `Bulk`, `Expedited`).
    /// Intelligent-Tiering's archive tiers take no days (S3 refuses them):
    /// a restore moves the version back to its frequent tier.
    pub async fn restore_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        class: Option<&str>,
        days: i32,
        tier: &str,
    ) -> Result<RestoreStarted, S3Error> {
        let days = (class != Some("INTELLIGENT_TIERING")).then_some(days);
        let request = RestoreRequest::builder()
            .set_days(days)
            .glacier_job_parameters(
                GlacierJobParameters::builder()
                    .tier(Tier::from(tier))
                    .build()
                    .expect("tier is set"),
            )
            .build();
        let result = self
            .pacer
            .call(partition_of(key), Retry::Idempotent, || async {
                self.sdk()
                    .restore_object()
                    .bucket(bucket)
                    .key(key)
                    .version_id(version_id)
                    .restore_request(request.clone())
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("RestoreObject", bucket, e))
            })
            .await;
        match result {
            Ok(_) => Ok(RestoreStarted::Requested),
            Err(e) if e.code.as_deref() == Some("RestoreAlreadyInProgress") => {
                Ok(RestoreStarted::AlreadyOngoing)
            }
            // Not (or no longer) in an archive: nothing to wait for.
            Err(e) if e.code.as_deref() == Some("InvalidObjectState") => {
                match self.version_state(bucket, key, version_id).await {
                    Ok(state) if !state.archived() => Ok(RestoreStarted::AlreadyDone),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}

impl S3 {
    /// One request for a part of a bucket's configuration, with few
    /// retries (a refusal will not change); `None` for S3's "not
    /// configured" answer.
    async fn setting<T, F, Fut>(&self, request: F) -> Result<Option<T>, S3Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, S3Error>>,
    {
        absent_if_not_configured(self.pacer.call("", Retry::Few, request).await)
    }
}

/// `None` for S3's "not configured" answer; other errors as they are.
fn absent_if_not_configured<T>(result: Result<T, S3Error>) -> Result<Option<T>, S3Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e)
            if e.code
                .as_deref()
                .is_some_and(|c| NOT_CONFIGURED.contains(&c)) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A part of the configuration: its value, or why it could not be read.
/// Errors that say nothing can be read (bucket, credentials, network)
/// stop the whole.
fn setting<T>(result: Result<Option<T>, S3Error>) -> Result<Setting<T>, S3Error> {
    match result {
        Ok(Some(v)) => Ok(Ok(v)),
        Ok(None) => Ok(Err("not configured".into())),
        // Wrong credentials, no bucket, no network: nothing can be read.
        Err(e) if e.stops_the_run() || e.is_retryable() => Err(e),
        // Refused, or answered with something that is not this setting
        // (a server that does not know it): this part is not known.
        Err(e) => Ok(Err(e.code_and_message())),
    }
}
