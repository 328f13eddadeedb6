//! The S3 operations, on top of the s3s protocol layer (routing, SigV4,
//! XML), translated to the in-memory store.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use futures::TryStreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use md5::{Digest, Md5};

use crate::access::requester_of;
use crate::auth::Requester;
use crate::checksum::{fill_checksum, Algorithm};
use crate::conditions::{conflict, refuse_delete_condition, Precondition};
use crate::late::{respond, Deferred, Timing};
use crate::settings::{LockHeaderError, LockRequest, Restore, Retention};
use crate::store::{
    Bucket as Keys, Content, Entry, ObjectMeta, StoreError, Stored, VersionId, Versioning,
};
use crate::{checksum, encryption, ssec, Op, Sim};

pub(crate) fn map_err(e: StoreError) -> S3Error {
    match e {
        StoreError::NoSuchBucket => s3_error!(NoSuchBucket, "The specified bucket does not exist"),
        StoreError::BucketExists => s3_error!(BucketAlreadyOwnedByYou),
        StoreError::NoSuchKey => s3_error!(NoSuchKey, "The specified key does not exist."),
        StoreError::NoSuchVersion => {
            s3_error!(NoSuchVersion, "The specified version does not exist.")
        }
        StoreError::InvalidVersionId => s3_error!(InvalidArgument, "Invalid version id specified"),
        StoreError::MethodNotAllowed => {
            s3_error!(
                MethodNotAllowed,
                "The specified method is not allowed against this resource."
            )
        }
        StoreError::NoSuchUpload => s3_error!(NoSuchUpload),
        StoreError::InvalidPart(m) => S3Error::with_message(S3ErrorCode::InvalidPart, m),
        StoreError::EntityTooSmall => {
            s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size."
            )
        }
        StoreError::InvalidObjectState => {
            s3_error!(
                InvalidObjectState,
                "The operation is not valid for the object's storage class"
            )
        }
        StoreError::InvalidArgument(m) => S3Error::with_message(S3ErrorCode::InvalidArgument, m),
        StoreError::PreconditionFailed => s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        ),
    }
}

fn version(v: Option<&str>) -> S3Result<Option<VersionId>> {
    v.map(|s| VersionId::decode(s).ok_or_else(|| map_err(StoreError::InvalidVersionId)))
        .transpose()
}

fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_secs(ms.max(0) as u64 / 1000))
}

fn etag(content: &Content) -> ETag {
    ETag::Strong(content.etag())
}

async fn collect(body: Option<StreamingBlob>) -> S3Result<Bytes> {
    let Some(body) = body else {
        return Ok(Bytes::new());
    };
    let chunks: Vec<Bytes> = body
        .try_collect()
        .await
        .map_err(|e| S3Error::with_message(S3ErrorCode::IncompleteBody, e.to_string()))?;
    Ok(chunks.concat().into())
}

fn parse_tags(header: Option<&str>) -> Vec<(String, String)> {
    header
        .map(|h| {
            url_form_pairs(h)
                .into_iter()
                .filter(|(k, _)| !k.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `a=b&c=d`, form-decoded.
pub(crate) fn url_form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

pub(crate) fn form_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An upload's metadata from the request fields of the same names.
macro_rules! meta_from {
    ($i:ident, $tagging:expr, $class:expr) => {
        ObjectMeta {
            content_type: $i.content_type,
            cache_control: $i.cache_control,
            content_disposition: $i.content_disposition,
            content_encoding: $i.content_encoding,
            content_language: $i.content_language,
            metadata: $i.metadata.unwrap_or_default().into_iter().collect(),
            tags: parse_tags($tagging),
            storage_class: $class
                .map(|s: &StorageClass| s.as_str().to_owned())
                .filter(|s| s != "STANDARD"),
            kms_key_id: $i.ssekms_key_id,
            sse_customer_key_md5: None,
        }
    };
}

/// The Object Lock a write's headers ask for, refused as S3 refuses it.
macro_rules! lock_from {
    ($sim:expr, $i:ident) => {
        LockRequest::from_headers(
            $sim.settings.locking(&$i.bucket),
            $i.object_lock_mode.as_ref().map(|m| m.as_str()),
            $i.object_lock_retain_until_date.as_ref().map(unix_ms),
            $i.object_lock_legal_hold_status
                .as_ref()
                .map(|h| h.as_str()),
        )
        .map_err(|e| match e {
            LockHeaderError::NoObjectLock => s3_error!(
                InvalidRequest,
                "Bucket is missing Object Lock Configuration"
            ),
            LockHeaderError::Invalid(m) => S3Error::with_message(S3ErrorCode::InvalidArgument, m),
        })
    };
}

/// Reads the source of a copy: an object version that is not archived,
/// whose customer key (SSE-C), if it has one, the copy presents.
fn copy_source(
    sim: &Sim,
    source: &CopySource,
    customer_key: Option<&str>,
) -> S3Result<(Entry, Option<VersionId>)> {
    let CopySource::Bucket {
        bucket,
        key,
        version_id,
    } = source
    else {
        return Err(s3_error!(
            NotImplemented,
            "access point copy sources are not supported"
        ));
    };
    let name = bucket;
    let bucket = sim.store.bucket(name).map_err(map_err)?;
    let vid = version(version_id.as_deref())?;
    let entry = sim.store.get(&bucket, key, vid).map_err(|e| match e {
        // Copying a delete marker by id is a bad request on AWS.
        StoreError::MethodNotAllowed => s3_error!(InvalidRequest, "The source of a copy request may not specifically refer to a delete marker by version id."),
        e => map_err(e),
    })?;
    let content = entry.content.as_ref().expect("get returns objects");
    ssec::readable(customer_key_of(content), customer_key)?;
    readable(sim, content)?;
    if archived(sim, name, key, &entry) {
        return Err(map_err(StoreError::InvalidObjectState));
    }
    Ok((entry, vid))
}

/// Whether a version's bytes sit in an archive, with no restore done.
fn archived(sim: &Sim, bucket: &str, key: &str, entry: &Entry) -> bool {
    in_archive(sim, bucket, key, entry)
        && sim
            .settings
            .version(bucket, key, entry.version_id)
            .restore()
            != Restore::Done
}

/// Whether a version lives in an archive (restored or not): what
/// RestoreObject accepts.
fn in_archive(sim: &Sim, bucket: &str, key: &str, entry: &Entry) -> bool {
    match entry.content.as_ref().and_then(Content::storage_class) {
        Some(c) if model::bucket::is_archive_class(c) => true,
        Some("INTELLIGENT_TIERING") => {
            sim.settings
                .version(bucket, key, entry.version_id)
                .archive_access
        }
        _ => false,
    }
}

/// Whether a part presents the customer key its upload was started with.
fn part_encryption(
    bucket: &crate::store::Bucket,
    upload_id: &str,
    customer_key: Option<&str>,
) -> S3Result<()> {
    let uploads = bucket.uploads.lock().expect("not poisoned");
    match uploads.get(upload_id) {
        Some(u) => ssec::part_key(u.meta.sse_customer_key_md5.as_deref(), customer_key),
        // The part's own request answers NoSuchUpload.
        None => Ok(()),
    }
}

/// The MD5 of the customer key an SSE-C version was written with.
fn customer_key_of(content: &Content) -> Option<&str> {
    content
        .meta()
        .and_then(|m| m.sse_customer_key_md5.as_deref())
}

/// Refuses to decrypt with a KMS key this identity may not use.
fn readable(sim: &Sim, content: &Content) -> S3Result<()> {
    match content.meta().and_then(|m| m.kms_key_id.as_ref()) {
        Some(k) if sim.config.denied_kms_keys.contains(k) => Err(s3_error!(
            AccessDenied,
            "User is not authorized to perform: kms:Decrypt on the resource associated with this ciphertext because no identity-based policy allows the kms:Decrypt action"
        )),
        _ => Ok(()),
    }
}

/// The entry GET and HEAD read: 404 with the delete-marker headers when the
/// key's newest entry is a marker, as AWS answers.
fn read(sim: &Sim, bucket: &str, key: &str, version_id: Option<&str>) -> S3Result<Entry> {
    let bucket = sim.store.bucket(bucket).map_err(map_err)?;
    let vid = version(version_id)?;
    sim.store
        .get(&bucket, key, vid)
        .map_err(|e| not_found_headers(sim, &bucket, key, e))
}

/// A GET or HEAD output with the headers both carry, plus `extra` fields.
macro_rules! object_output {
    ($ty:ident, $entry:expr, $content:expr, { $($field:ident: $value:expr),* $(,)? }) => {{
        let meta = $content.meta().cloned().unwrap_or_default();
        $ty {
            e_tag: Some(etag($content)),
            last_modified: Some(timestamp($entry.mtime_ms)),
            version_id: (!$entry.version_id.is_null()).then(|| $entry.version_id.encode()),
            content_type: meta.content_type,
            cache_control: meta.cache_control,
            content_disposition: meta.content_disposition,
            content_encoding: meta.content_encoding,
            content_language: meta.content_language,
            metadata: (!meta.metadata.is_empty()).then(|| meta.metadata.into_iter().collect()),
            storage_class: meta.storage_class.map(StorageClass::from),
            // SSE-C objects name their algorithm in the customer headers.
            server_side_encryption: meta.sse_customer_key_md5.is_none().then(|| {
                ServerSideEncryption::from(
                    if meta.kms_key_id.is_some() { "aws:kms" } else { "AES256" }.to_owned(),
                )
            }),
            sse_customer_algorithm: meta.sse_customer_key_md5.as_ref().map(|_| "AES256".to_owned()),
            sse_customer_key_md5: meta.sse_customer_key_md5,
            ssekms_key_id: meta.kms_key_id,
            $($field: $value,)*
            ..Default::default()
        }
    }};
}

fn not_found_headers(
    sim: &Sim,
    bucket: &crate::store::Bucket,
    key: &str,
    err: StoreError,
) -> S3Error {
    let mut e = map_err(err.clone());
    if err == StoreError::NoSuchKey {
        if let Some(newest) = sim.store.newest(bucket, key).filter(Entry::is_marker) {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "x-amz-delete-marker",
                http::HeaderValue::from_static("true"),
            );
            if let Ok(v) = http::HeaderValue::from_str(&newest.version_id.encode()) {
                headers.insert("x-amz-version-id", v);
            }
            e.set_headers(headers);
        }
    }
    e
}

const LOCKED: &str = "Access Denied because object protected by object lock.";

fn no_lock_configuration() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchObjectLockConfiguration,
        "The specified object does not have a ObjectLock configuration",
    )
}

/// The Object Lock headers of a HEAD or GET answer.
type LockHeaders = (
    Option<ObjectLockMode>,
    Option<Timestamp>,
    Option<ObjectLockLegalHoldStatus>,
);

fn mfa_required() -> S3Error {
    s3_error!(
        AccessDenied,
        "Mfa Authentication must be used for this request"
    )
}

/// An RFC 7231 date, as in `x-amz-restore`.
fn http_date(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut out = Vec::new();
    let _ = Timestamp::from(t).format(TimestampFormat::HttpDate, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn unix_ms(t: &Timestamp) -> i64 {
    let t = time::OffsetDateTime::from(t.clone());
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A configuration that is not there: 404 with S3's code for it.
fn not_configured(code: S3ErrorCode, what: &str) -> S3Error {
    S3Error::with_message(code, format!("The {what} does not exist"))
}

impl Sim {
    /// A version protected by a legal hold or a retention in the future.
    fn locked(
        &self,
        name: &str,
        bucket: &crate::store::Bucket,
        key: &str,
        id: VersionId,
        bypass_governance: bool,
    ) -> bool {
        let state = self.settings.version(name, key, id);
        state.delete_refused(bypass_governance)
            && self
                .store
                .get(bucket, key, Some(id))
                .is_ok_and(|e| !e.is_marker())
    }

    /// A DeleteObject of one version, refused as AWS refuses it.
    fn may_delete_version(
        &self,
        name: &str,
        bucket: &crate::store::Bucket,
        key: &str,
        id: VersionId,
        bypass_governance: bool,
    ) -> S3Result<()> {
        if self.settings.with_bucket(name, |b| b.mfa_delete) {
            return Err(mfa_required());
        }
        if self.locked(name, bucket, key, id, bypass_governance) {
            return Err(s3_error!(AccessDenied, "{LOCKED}"));
        }
        Ok(())
    }

    /// The version a per-version request names (the newest without an id).
    fn version_of(&self, bucket: &str, key: &str, id: Option<&str>) -> S3Result<VersionId> {
        Ok(read(self, bucket, key, id)?.version_id)
    }

    /// The per-version Object Lock requests need the bucket's Object Lock
    /// (400 otherwise, as on AWS).
    fn lock_enabled(&self, bucket: &str) -> S3Result<()> {
        if self.settings.locking(bucket) {
            return Ok(());
        }
        Err(s3_error!(
            InvalidRequest,
            "Bucket is missing Object Lock Configuration"
        ))
    }

    /// What a HEAD or GET shows of a version's Object Lock: the retention
    /// only to a caller allowed `s3:GetObjectRetention`, the legal hold
    /// only to one allowed `s3:GetObjectLegalHold`, and only if a hold was
    /// ever set on the version (HeadObject API reference).
    fn lock_headers(
        &self,
        requester: Option<&crate::auth::Requester>,
        bucket: &str,
        key: &str,
        state: &crate::settings::VersionState,
    ) -> LockHeaders {
        let retention = state
            .retention
            .as_ref()
            .filter(|_| self.may(requester, "s3:GetObjectRetention", bucket, key));
        let hold = state
            .legal_hold
            .filter(|_| self.may(requester, "s3:GetObjectLegalHold", bucket, key));
        (
            retention.map(|r| ObjectLockMode::from(r.mode.clone())),
            retention.map(|r| timestamp(r.until_ms)),
            hold.map(|on| {
                ObjectLockLegalHoldStatus::from_static(if on {
                    ObjectLockLegalHoldStatus::ON
                } else {
                    ObjectLockLegalHoldStatus::OFF
                })
            }),
        )
    }

    fn configured<T>(
        &self,
        bucket: &str,
        get: impl FnOnce(&crate::settings::BucketSettings) -> Option<T>,
    ) -> S3Result<Option<T>> {
        self.count(Op::BucketConfiguration);
        self.store.bucket(bucket).map_err(map_err)?;
        Ok(self.settings.with_bucket(bucket, get))
    }

    fn configure(
        &self,
        bucket: &str,
        change: impl FnOnce(&mut crate::settings::BucketSettings),
    ) -> S3Result<()> {
        self.count(Op::BucketConfiguration);
        self.store.bucket(bucket).map_err(map_err)?;
        self.settings.update_bucket(bucket, change);
        Ok(())
    }

    /// A write's condition (`If-Match` / `If-None-Match`), unless this
    /// server ignores them; an injected race refuses it (409).
    fn write_condition(&self, headers: &http::HeaderMap) -> S3Result<Option<Precondition>> {
        if self.config.ignore_conditions {
            return Ok(None);
        }
        let condition = Precondition::of_write(headers);
        if condition.is_some() && self.fault_conflict() {
            return Err(conflict());
        }
        Ok(condition)
    }

    /// A new entry on `key` if its condition holds: made now, or as
    /// `timing` says (a late entry records the same writer and Object
    /// Lock as one made now). Returns the id to answer with.
    fn new_entry(
        &self,
        name: &str,
        bucket: Arc<Keys>,
        key: &str,
        entry: NewEntry,
        timing: Option<Timing>,
    ) -> S3Result<(Option<VersionId>, Option<Deferred>)> {
        let marker = entry.content.is_none();
        let Some(timing) = timing else {
            return Ok((entry.make(self, name, &bucket, key, None)?, None));
        };
        let sim = self.clone();
        let (name, key_) = (name.to_owned(), key.to_owned());
        let b = bucket.clone();
        let (id, deferred) = self.defer(
            timing,
            move |reserved| {
                entry.make(&sim, &name, &b, &key_, Some(reserved))?;
                Ok(())
            },
            |reserved| self.store.id_to_be(&bucket, reserved, marker),
        );
        Ok((id, Some(deferred)))
    }
}

/// A new entry a request asks for: an object, or a delete marker
/// (`content: None`).
struct NewEntry {
    content: Option<Content>,
    /// What the key's current object must be when the entry is made.
    condition: Option<Precondition>,
    /// The Object Lock the request's headers ask for (objects only).
    lock: LockRequest,
    /// Who asked (see [`Entry::writer`]).
    writer: Option<Arc<Requester>>,
}

impl NewEntry {
    /// An entry with no condition, no Object Lock headers.
    fn plain(content: Option<Content>, writer: Option<Arc<Requester>>) -> NewEntry {
        NewEntry {
            content,
            condition: None,
            lock: LockRequest::default(),
            writer,
        }
    }

    /// Makes it, if its condition holds now; `reserved` as in
    /// [`crate::Store::write`].
    fn make(
        self,
        sim: &Sim,
        name: &str,
        bucket: &Keys,
        key: &str,
        reserved: Option<VersionId>,
    ) -> S3Result<Option<VersionId>> {
        let marker = self.content.is_none();
        let id = sim
            .store
            .write(
                bucket,
                key,
                self.content,
                self.condition.as_ref(),
                reserved,
                self.writer,
            )
            .map_err(map_err)?;
        if let (Some(id), false) = (id, marker) {
            sim.settings.lock_new_version(name, key, id, &self.lock);
        }
        Ok(id)
    }
}

/// The algorithm a request asks its object's checksum to be kept with.
fn asked_algorithm(a: Option<&ChecksumAlgorithm>) -> S3Result<Option<Algorithm>> {
    a.map(|a| Algorithm::parse(a.as_str())).transpose()
}

/// `x-amz-checksum-mode: ENABLED`: HeadObject and GetObject return the
/// version's checksum only when asked.
fn checksum_enabled(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
}

fn reported(id: Option<VersionId>) -> Option<String> {
    id.filter(|id| !id.is_null()).map(|id| id.encode())
}

#[async_trait::async_trait]
impl s3s::S3 for Sim {
    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let config = self
            .configured(&req.input.bucket, |b| b.lifecycle.clone())?
            .ok_or_else(|| {
                not_configured(
                    S3ErrorCode::NoSuchLifecycleConfiguration,
                    "lifecycle configuration",
                )
            })?;
        Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
            rules: Some(config.rules),
            ..Default::default()
        }))
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        let config = req.input.lifecycle_configuration;
        self.configure(&req.input.bucket, |b| b.lifecycle = config)?;
        Ok(S3Response::new(Default::default()))
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        self.configure(&req.input.bucket, |b| b.lifecycle = None)?;
        Ok(S3Response::new(Default::default()))
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        let config = self
            .configured(&req.input.bucket, |b| b.object_lock.clone())?
            .ok_or_else(|| {
                not_configured(
                    S3ErrorCode::ObjectLockConfigurationNotFoundError,
                    "Object Lock configuration",
                )
            })?;
        Ok(S3Response::new(GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(config),
        }))
    }

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        let bucket = self.store.bucket(&req.input.bucket).map_err(map_err)?;
        if *bucket.versioning.lock().expect("not poisoned") != Versioning::Enabled {
            return Err(s3_error!(
                InvalidBucketState,
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
            ));
        }
        let config = req.input.object_lock_configuration;
        self.configure(&req.input.bucket, |b| b.object_lock = config)?;
        Ok(S3Response::new(Default::default()))
    }

    async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        self.count(Op::ObjectLock);
        let i = req.input;
        self.lock_enabled(&i.bucket)?;
        let id = self.version_of(&i.bucket, &i.key, i.version_id.as_deref())?;
        let retention = self
            .settings
            .version(&i.bucket, &i.key, id)
            .retention
            .ok_or_else(no_lock_configuration)?;
        Ok(S3Response::new(GetObjectRetentionOutput {
            retention: Some(ObjectLockRetention {
                mode: Some(ObjectLockRetentionMode::from(retention.mode)),
                retain_until_date: Some(timestamp(retention.until_ms)),
            }),
        }))
    }

    async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        self.count(Op::ObjectLock);
        let i = req.input;
        self.lock_enabled(&i.bucket)?;
        let id = self.version_of(&i.bucket, &i.key, i.version_id.as_deref())?;
        let retention = i.retention.and_then(|r| {
            Some(Retention {
                mode: r.mode?.as_str().to_owned(),
                until_ms: unix_ms(r.retain_until_date.as_ref()?),
            })
        });
        let current = self.settings.version(&i.bucket, &i.key, id);
        let shortened = match (&current.retention, &retention) {
            (Some(old), new) => {
                old.until_ms > crate::store::now_ms()
                    && new.as_ref().is_none_or(|n| n.until_ms < old.until_ms)
            }
            (None, _) => false,
        };
        let bypass = i.bypass_governance_retention == Some(true);
        if shortened
            && !(bypass
                && current
                    .retention
                    .as_ref()
                    .is_some_and(|r| r.mode == "GOVERNANCE"))
        {
            return Err(s3_error!(AccessDenied, "{LOCKED}"));
        }
        self.settings
            .update_version(&i.bucket, &i.key, id, |v| v.retention = retention);
        Ok(S3Response::new(Default::default()))
    }

    async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        self.count(Op::ObjectLock);
        let i = req.input;
        self.lock_enabled(&i.bucket)?;
        let id = self.version_of(&i.bucket, &i.key, i.version_id.as_deref())?;
        // A hold never set is no configuration at all (404), as AWS answers.
        let on = self
            .settings
            .version(&i.bucket, &i.key, id)
            .legal_hold
            .ok_or_else(no_lock_configuration)?;
        Ok(S3Response::new(GetObjectLegalHoldOutput {
            legal_hold: Some(ObjectLockLegalHold {
                status: Some(ObjectLockLegalHoldStatus::from_static(if on {
                    ObjectLockLegalHoldStatus::ON
                } else {
                    ObjectLockLegalHoldStatus::OFF
                })),
            }),
        }))
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        self.count(Op::ObjectLock);
        let i = req.input;
        self.lock_enabled(&i.bucket)?;
        let id = self.version_of(&i.bucket, &i.key, i.version_id.as_deref())?;
        let on = i
            .legal_hold
            .and_then(|h| h.status)
            .is_some_and(|s| s.as_str() == ObjectLockLegalHoldStatus::ON);
        self.settings
            .update_version(&i.bucket, &i.key, id, |v| v.legal_hold = Some(on));
        Ok(S3Response::new(Default::default()))
    }

    async fn restore_object(
        &self,
        req: S3Request<RestoreObjectInput>,
    ) -> S3Result<S3Response<RestoreObjectOutput>> {
        self.count(Op::RestoreObject);
        let i = req.input;
        let entry = read(self, &i.bucket, &i.key, i.version_id.as_deref())?;
        if !in_archive(self, &i.bucket, &i.key, &entry) {
            return Err(s3_error!(
                InvalidObjectState,
                "Restore is not allowed for the object's current storage class"
            ));
        }
        let state = self.settings.version(&i.bucket, &i.key, entry.version_id);
        if state.restore() == Restore::Ongoing {
            return Err(s3_error!(
                RestoreAlreadyInProgress,
                "Object restore is already in progress"
            ));
        }
        if state.restore() == Restore::NotRequested {
            let ready = crate::store::now_ms() + self.config.restore_delay.as_millis() as i64;
            self.settings
                .update_version(&i.bucket, &i.key, entry.version_id, |v| {
                    v.restored_at_ms = Some(ready)
                });
        }
        Ok(S3Response::new(RestoreObjectOutput::default()))
    }

    async fn get_bucket_replication(
        &self,
        req: S3Request<GetBucketReplicationInput>,
    ) -> S3Result<S3Response<GetBucketReplicationOutput>> {
        let config = self
            .configured(&req.input.bucket, |b| b.replication.clone())?
            .ok_or_else(|| {
                not_configured(
                    S3ErrorCode::ReplicationConfigurationNotFoundError,
                    "replication configuration",
                )
            })?;
        Ok(S3Response::new(GetBucketReplicationOutput {
            replication_configuration: Some(config),
        }))
    }

    async fn put_bucket_replication(
        &self,
        req: S3Request<PutBucketReplicationInput>,
    ) -> S3Result<S3Response<PutBucketReplicationOutput>> {
        let config = req.input.replication_configuration;
        self.configure(&req.input.bucket, |b| b.replication = Some(config))?;
        Ok(S3Response::new(Default::default()))
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        // Every bucket encrypts with SSE-S3 unless told otherwise (AWS, 2023).
        let config = self
            .configured(&req.input.bucket, |b| b.encryption.clone())?
            .unwrap_or_else(|| ServerSideEncryptionConfiguration {
                rules: vec![ServerSideEncryptionRule {
                    apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                        sse_algorithm: ServerSideEncryption::from_static(
                            ServerSideEncryption::AES256,
                        ),
                        kms_master_key_id: None,
                    }),
                    bucket_key_enabled: Some(false),
                }],
            });
        Ok(S3Response::new(GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(config),
        }))
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let config = req.input.server_side_encryption_configuration;
        self.configure(&req.input.bucket, |b| b.encryption = Some(config))?;
        Ok(S3Response::new(Default::default()))
    }

    async fn get_bucket_request_payment(
        &self,
        req: S3Request<GetBucketRequestPaymentInput>,
    ) -> S3Result<S3Response<GetBucketRequestPaymentOutput>> {
        let requester = self
            .configured(&req.input.bucket, |b| Some(b.requester_pays))?
            .unwrap_or(false);
        Ok(S3Response::new(GetBucketRequestPaymentOutput {
            payer: Some(Payer::from_static(if requester {
                Payer::REQUESTER
            } else {
                Payer::BUCKET_OWNER
            })),
        }))
    }

    async fn put_bucket_request_payment(
        &self,
        req: S3Request<PutBucketRequestPaymentInput>,
    ) -> S3Result<S3Response<PutBucketRequestPaymentOutput>> {
        let requester = req.input.request_payment_configuration.payer.as_str() == Payer::REQUESTER;
        self.configure(&req.input.bucket, |b| b.requester_pays = requester)?;
        Ok(S3Response::new(Default::default()))
    }

    async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        let config = self
            .configured(&req.input.bucket, |b| b.ownership.clone())?
            .ok_or_else(|| {
                not_configured(
                    S3ErrorCode::OwnershipControlsNotFoundError,
                    "bucket ownership controls",
                )
            })?;
        Ok(S3Response::new(GetBucketOwnershipControlsOutput {
            ownership_controls: Some(config),
        }))
    }

    async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        let config = req.input.ownership_controls;
        self.configure(&req.input.bucket, |b| b.ownership = Some(config))?;
        Ok(S3Response::new(Default::default()))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.count(Op::CreateBucket);
        let bucket = self
            .store
            .create_bucket(&req.input.bucket)
            .map_err(map_err)?;
        // A bucket made with Object Lock is versioned from the start.
        if req.input.object_lock_enabled_for_bucket == Some(true) {
            *bucket.versioning.lock().expect("not poisoned") = Versioning::Enabled;
            self.settings.update_bucket(&req.input.bucket, |b| {
                b.object_lock = Some(ObjectLockConfiguration {
                    object_lock_enabled: Some(ObjectLockEnabled::from_static(
                        ObjectLockEnabled::ENABLED,
                    )),
                    rule: None,
                })
            });
        }
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.count(Op::HeadBucket);
        self.store.bucket(&req.input.bucket).map_err(map_err)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.count(Op::ListBuckets);
        let buckets = self
            .store
            .bucket_names()
            .into_iter()
            .map(|(name, created)| Bucket {
                name: Some(name),
                creation_date: Some(Timestamp::from(created)),
                bucket_region: None,
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        }))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        self.count(Op::PutBucketVersioning);
        let bucket = self.store.bucket(&req.input.bucket).map_err(map_err)?;
        let config = &req.input.versioning_configuration;
        let status = config.status.as_ref().map(|s| s.as_str().to_owned());
        let versioning = match status.as_deref() {
            Some("Enabled") => Versioning::Enabled,
            Some("Suspended") if self.settings.locking(&req.input.bucket) => {
                return Err(s3_error!(
                    InvalidBucketState,
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed."
                ))
            }
            Some("Suspended") => Versioning::Suspended,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "Status must be Enabled or Suspended"
                ))
            }
        };
        // AWS wants the root account's MFA device for this; s3sim takes the flag.
        if let Some(mfa) = &config.mfa_delete {
            let on = mfa.as_str() == MFADelete::ENABLED;
            self.settings
                .update_bucket(&req.input.bucket, |b| b.mfa_delete = on);
        }
        *bucket.versioning.lock().expect("not poisoned") = versioning;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.count(Op::GetBucketVersioning);
        let bucket = self.store.bucket(&req.input.bucket).map_err(map_err)?;
        let status = match *bucket.versioning.lock().expect("not poisoned") {
            Versioning::Never => None,
            Versioning::Enabled => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::ENABLED,
            )),
            Versioning::Suspended => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::SUSPENDED,
            )),
        };
        let mfa = self
            .settings
            .with_bucket(&req.input.bucket, |b| b.mfa_delete);
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            mfa_delete: mfa.then(|| MFADeleteStatus::from_static(MFADeleteStatus::ENABLED)),
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.count(Op::PutObject);
        if !self.write_allowed(&req.input.bucket, &req.input.key) {
            return Err(s3_error!(SlowDown, "Please reduce your request rate."));
        }
        let condition = self.write_condition(&req.headers)?;
        let writer = requester_of(&req);
        let i = req.input;
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let lock = lock_from!(self, i)?;
        let customer_key = ssec::presented(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let body = collect(i.body).await?;
        // A trailer (aws-chunked) is there once the body is read.
        let trailers = req.trailing_headers.and_then(|t| t.take());
        let sent = checksum::sent(&req.headers, trailers.as_ref());
        // Read raw: s3s takes another header for this input's field.
        let sdk_algorithm = req
            .headers
            .get("x-amz-sdk-checksum-algorithm")
            .and_then(|v| v.to_str().ok());
        let checksum = checksum::for_upload(sent, sdk_algorithm, &body)?;
        let mut meta = meta_from!(i, i.tagging.as_deref(), i.storage_class.as_ref());
        let etag = match &customer_key {
            // SSE-C: the customer's key, not S3's nor KMS's.
            Some(k) => {
                meta.kms_key_id = None;
                meta.sse_customer_key_md5 = Some(k.clone());
                ssec::etag(k, &body)
            }
            None => {
                meta.kms_key_id = encryption::kms_key(
                    self,
                    &i.bucket,
                    i.server_side_encryption.as_ref(),
                    meta.kms_key_id.as_deref(),
                );
                encryption::single_request_etag(self, meta.kms_key_id.is_some(), || {
                    hex::encode(Md5::digest(&body))
                })
            }
        };
        let content = Content::Stored(Arc::new(Stored {
            body,
            etag: etag.clone(),
            meta,
            checksum: checksum.clone(),
        }));
        let (id, deferred) = self.new_entry(
            &i.bucket,
            bucket,
            &i.key,
            NewEntry {
                content: Some(content),
                condition,
                lock,
                writer,
            },
            self.timing(false),
        )?;
        let mut out = PutObjectOutput {
            e_tag: Some(ETag::Strong(etag)),
            version_id: reported(id),
            sse_customer_algorithm: customer_key.as_ref().map(|_| "AES256".to_owned()),
            sse_customer_key_md5: customer_key,
            ..Default::default()
        };
        fill_checksum!(out, &checksum);
        Ok(respond(out, deferred))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.count(Op::GetObject);
        let requester = requester_of(&req);
        let i = req.input;
        let entry = read(self, &i.bucket, &i.key, i.version_id.as_deref())?;
        let content = entry.content.as_ref().expect("an object");
        let customer_key = ssec::presented(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        ssec::readable(customer_key_of(content), customer_key.as_deref())?;
        readable(self, content)?;
        if archived(self, &i.bucket, &i.key, &entry) {
            return Err(map_err(StoreError::InvalidObjectState));
        }
        let size = content.size();
        let (range, content_range) = match &i.range {
            Some(r) => {
                let r = r.check(size).map_err(|_| {
                    s3_error!(InvalidRange, "The requested range is not satisfiable")
                })?;
                let header = format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1));
                (r, Some(header))
            }
            None => (0..size, None),
        };
        let len = range.end - range.start;
        let bytes = content.bytes(range);
        let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
        let tags = content.meta().map_or(0, |m| m.tags.len());
        let whole = content_range.is_none();
        let state = self.settings.version(&i.bucket, &i.key, entry.version_id);
        let (mode, until, hold) =
            self.lock_headers(requester.as_deref(), &i.bucket, &i.key, &state);
        let mut out = object_output!(GetObjectOutput, entry, content, {
            body: Some(StreamingBlob::wrap(stream)),
            content_length: Some(len as i64),
            content_range: content_range,
            tag_count: (tags > 0).then_some(tags as i32),
            object_lock_mode: mode,
            object_lock_retain_until_date: until,
            object_lock_legal_hold_status: hold,
        });
        // A ranged GET has no checksum of its bytes to give.
        if whole && checksum_enabled(i.checksum_mode.as_ref()) {
            fill_checksum!(out, &content.checksum());
        }
        Ok(S3Response::new(out))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.count(Op::HeadObject);
        let requester = requester_of(&req);
        let i = req.input;
        let entry = read(self, &i.bucket, &i.key, i.version_id.as_deref())?;
        let content = entry.content.as_ref().expect("an object");
        let customer_key = ssec::presented(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        ssec::readable(customer_key_of(content), customer_key.as_deref())?;
        let state = self.settings.version(&i.bucket, &i.key, entry.version_id);
        let restore = match state.restore() {
            Restore::NotRequested => None,
            Restore::Ongoing => Some("ongoing-request=\"true\"".to_owned()),
            Restore::Done => Some(format!(
                "ongoing-request=\"false\", expiry-date=\"{}\"",
                http_date(state.restored_at_ms.unwrap_or(0) + 86_400_000)
            )),
        };
        let archive_status = (content.storage_class() == Some("INTELLIGENT_TIERING")
            && archived(self, &i.bucket, &i.key, &entry))
        .then(|| ArchiveStatus::from_static(ArchiveStatus::ARCHIVE_ACCESS));
        let (mode, until, hold) =
            self.lock_headers(requester.as_deref(), &i.bucket, &i.key, &state);
        let mut out = object_output!(HeadObjectOutput, entry, content, {
            content_length: Some(content.size() as i64),
            restore: restore,
            archive_status: archive_status,
            object_lock_mode: mode,
            object_lock_retain_until_date: until,
            object_lock_legal_hold_status: hold,
        });
        if checksum_enabled(i.checksum_mode.as_ref()) {
            fill_checksum!(out, &content.checksum());
        }
        Ok(S3Response::new(out))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.count(Op::DeleteObject);
        if !self.write_allowed(&req.input.bucket, &req.input.key) {
            return Err(s3_error!(SlowDown, "Please reduce your request rate."));
        }
        let writer = requester_of(&req);
        let i = req.input;
        let ignore = self.config.ignore_conditions;
        if !ignore {
            refuse_delete_condition(
                i.version_id.is_some(),
                i.if_match.is_some(),
                i.if_match_size.is_some() || i.if_match_last_modified_time.is_some(),
            )?;
        }
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        match version(i.version_id.as_deref())? {
            Some(vid) => {
                let bypass = i.bypass_governance_retention == Some(true);
                self.may_delete_version(&i.bucket, &bucket, &i.key, vid, bypass)?;
                let was_marker = self
                    .store
                    .delete_version(&bucket, &i.key, vid)
                    .map_err(map_err)?;
                Ok(S3Response::new(DeleteObjectOutput {
                    delete_marker: was_marker.then_some(true),
                    version_id: Some(vid.encode()),
                    ..Default::default()
                }))
            }
            None => {
                let condition = if ignore {
                    None
                } else {
                    Precondition::of_delete(i.if_match.as_ref())
                };
                if condition.is_some() && self.fault_conflict() {
                    return Err(conflict());
                }
                let (marker, deferred) = self.new_entry(
                    &i.bucket,
                    bucket,
                    &i.key,
                    NewEntry {
                        condition,
                        ..NewEntry::plain(None, writer)
                    },
                    self.timing(false),
                )?;
                Ok(respond(
                    DeleteObjectOutput {
                        delete_marker: marker.map(|_| true),
                        version_id: marker.map(|v| v.encode()),
                        ..Default::default()
                    },
                    deferred,
                ))
            }
        }
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.count(Op::DeleteObjects);
        let writer = requester_of(&req);
        let i = req.input;
        // Too many keys, or a key XML 1.0 cannot carry (see `xml::carries`).
        if i.delete.objects.len() > 1000
            || i.delete
                .objects
                .iter()
                .any(|o| !crate::xml::carries(&o.key))
        {
            return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"));
        }
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let quiet = i.delete.quiet.unwrap_or(false);
        let versioned = i.delete.objects.iter().any(|o| o.version_id.is_some());
        if versioned && self.settings.with_bucket(&i.bucket, |b| b.mfa_delete) {
            return Err(mfa_required());
        }
        let bypass = i.bypass_governance_retention == Some(true);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        // Injected: an error about a key the request did not name.
        let unmatched = match i.delete.objects.first() {
            Some(first) if self.fault_delete_unmatched() => Some(Error {
                code: Some("InternalError".to_owned()),
                key: Some(format!("{}/s3sim-not-asked-for", first.key)),
                message: Some("We encountered an internal error. Please try again.".to_owned()),
                version_id: first.version_id.clone(),
            }),
            _ => None,
        };
        for object in i.delete.objects {
            let fail = |code: &str, message: &str| Error {
                code: Some(code.to_owned()),
                key: Some(object.key.clone()),
                message: Some(message.to_owned()),
                version_id: object.version_id.clone(),
            };
            // Each key is authorized on its own, as S3 does.
            if let Err(e) = self.may_delete(
                writer.as_deref(),
                &i.bucket,
                &object.key,
                object.version_id.is_some(),
                object.e_tag.as_ref().map(|e| e.value()),
            ) {
                errors.push(fail("AccessDenied", e.message().unwrap_or("Access Denied")));
                continue;
            }
            // Injected: S3 sometimes answers 200 with per-key SlowDown errors.
            if self.fault_delete_slowdown() || !self.write_allowed(&i.bucket, &object.key) {
                errors.push(fail("SlowDown", "Please reduce your request rate."));
                continue;
            }
            match object.version_id.as_deref() {
                // No condition guards the delete of one version (see
                // `conditions`): refused, as DeleteObject refuses it.
                Some(_) if object.e_tag.is_some() && !self.config.ignore_conditions => {
                    errors.push(fail(
                        "NotImplemented",
                        "A header you provided implies functionality that is not implemented",
                    ))
                }
                Some(v) => match VersionId::decode(v) {
                    None => errors.push(fail("InvalidArgument", "Invalid version id specified")),
                    Some(vid) if self.locked(&i.bucket, &bucket, &object.key, vid, bypass) => {
                        errors.push(fail("AccessDenied", LOCKED))
                    }
                    Some(vid) => match self.store.delete_version(&bucket, &object.key, vid) {
                        Ok(was_marker) => deleted.push(DeletedObject {
                            key: Some(object.key.clone()),
                            version_id: Some(v.to_owned()),
                            delete_marker: was_marker.then_some(true),
                            delete_marker_version_id: was_marker.then(|| v.to_owned()),
                        }),
                        Err(_) => errors.push(fail(
                            "NoSuchVersion",
                            "The specified version does not exist.",
                        )),
                    },
                },
                None => {
                    let condition = if self.config.ignore_conditions {
                        None
                    } else {
                        Precondition::of_entry(object.e_tag.as_ref())
                    };
                    match self.store.write(
                        &bucket,
                        &object.key,
                        None,
                        condition.as_ref(),
                        None,
                        writer.clone(),
                    ) {
                        Ok(marker) => deleted.push(DeletedObject {
                            key: Some(object.key.clone()),
                            version_id: None,
                            delete_marker: marker.map(|_| true),
                            delete_marker_version_id: marker.map(|m| m.encode()),
                        }),
                        Err(StoreError::NoSuchKey) => {
                            errors.push(fail("NoSuchKey", "The specified key does not exist."))
                        }
                        Err(_) => errors.push(fail(
                            "PreconditionFailed",
                            "At least one of the pre-conditions you specified did not hold",
                        )),
                    }
                }
            }
        }
        errors.extend(unmatched);
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: (!quiet).then_some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.count(Op::CopyObject);
        if !self.write_allowed(&req.input.bucket, &req.input.key) {
            return Err(s3_error!(SlowDown, "Please reduce your request rate."));
        }
        // Conditional copies (AWS, 2025) are not in s3s's input: the
        // headers are read raw.
        let condition = self.write_condition(&req.headers)?;
        let writer = requester_of(&req);
        let i = req.input;
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let lock = lock_from!(self, i)?;
        let source_key = ssec::presented(
            i.copy_source_sse_customer_algorithm.as_deref(),
            i.copy_source_sse_customer_key.as_deref(),
            i.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        let customer_key = ssec::presented(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let (source, source_vid) = copy_source(self, &i.copy_source, source_key.as_deref())?;
        let src = source.content.expect("an object");
        let replace_meta = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == "REPLACE");
        let replace_tags = i
            .tagging_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == "REPLACE");
        let old = src.meta().cloned().unwrap_or_default();
        let storage_class = i
            .storage_class
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .filter(|s| s != "STANDARD");
        // The copy's encryption is the request's or the bucket's, not the
        // source's (see `encryption`); SSE-C only with the copy's own
        // customer key (`ssec`).
        let kms = match customer_key {
            Some(_) => None,
            None => encryption::kms_key(
                self,
                &i.bucket,
                i.server_side_encryption.as_ref(),
                i.ssekms_key_id.as_deref(),
            ),
        };
        let asked = asked_algorithm(i.checksum_algorithm.as_ref())?;
        let unchanged = !replace_meta
            && !replace_tags
            && storage_class.is_none()
            && old.storage_class.is_none()
            && kms.is_none()
            && customer_key.is_none()
            && asked.is_none();
        // An SSE-C source's ETag is no MD5: it is never shared.
        let content = match src.etag_is_md5() {
            // Nothing changes but the version, the ETag is the MD5 the
            // source has: share the bytes.
            true if unchanged => src.clone(),
            has_md5 => {
                let meta = if replace_meta {
                    meta_from!(i, None, None::<&StorageClass>)
                } else {
                    old.clone()
                };
                let meta = ObjectMeta {
                    tags: if replace_tags {
                        parse_tags(i.tagging.as_deref())
                    } else {
                        old.tags.clone()
                    },
                    storage_class,
                    kms_key_id: kms,
                    // Encrypted again with the copy's own customer key, or
                    // by S3 (SSE-C is not copied from the source).
                    sse_customer_key_md5: customer_key.clone(),
                    ..meta
                };
                let body = src.bytes(0..src.size());
                // A multipart, SSE-KMS or SSE-C source's ETag is not the
                // MD5 of its bytes: a single-request SSE-S3 copy's is.
                let etag = match &customer_key {
                    Some(k) => ssec::etag(k, &body),
                    None => {
                        encryption::single_request_etag(self, meta.kms_key_id.is_some(), || {
                            if has_md5 {
                                src.etag()
                            } else {
                                hex::encode(Md5::digest(&body))
                            }
                        })
                    }
                };
                let checksum = src.checksum().for_copy(asked, || body.clone());
                Content::Stored(Arc::new(Stored {
                    body,
                    etag,
                    meta,
                    checksum,
                }))
            }
        };
        let mut result = CopyObjectResult {
            e_tag: Some(etag(&content)),
            last_modified: Some(timestamp(crate::store::now_ms())),
            ..Default::default()
        };
        if let Some(c) = content.known_checksum() {
            fill_checksum!(result, c);
        }
        let (id, deferred) = self.new_entry(
            &i.bucket,
            bucket,
            &i.key,
            NewEntry {
                content: Some(content),
                condition,
                lock,
                writer,
            },
            self.timing(true),
        )?;
        Ok(respond(
            CopyObjectOutput {
                copy_object_result: Some(result),
                copy_source_version_id: source_vid.map(|v| v.encode()),
                version_id: reported(id),
                sse_customer_algorithm: customer_key.as_ref().map(|_| "AES256".to_owned()),
                sse_customer_key_md5: customer_key,
                ..Default::default()
            },
            deferred,
        ))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.count(Op::CreateMultipartUpload);
        let i = req.input;
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let lock = lock_from!(self, i)?;
        let customer_key = ssec::presented(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let checksum = checksum::UploadChecksum::new(
            i.checksum_algorithm.as_ref().map(ChecksumAlgorithm::as_str),
            i.checksum_type.as_ref().map(ChecksumType::as_str),
        )?;
        let mut meta = meta_from!(i, i.tagging.as_deref(), i.storage_class.as_ref());
        meta.kms_key_id = match customer_key {
            Some(_) => None,
            None => encryption::kms_key(
                self,
                &i.bucket,
                i.server_side_encryption.as_ref(),
                meta.kms_key_id.as_deref(),
            ),
        };
        meta.sse_customer_key_md5 = customer_key.clone();
        let upload_id = self.store.create_upload(&bucket, &i.key, meta, checksum);
        self.settings.stage_upload_lock(&upload_id, lock);
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(upload_id),
            checksum_algorithm: i.checksum_algorithm,
            checksum_type: i.checksum_type,
            sse_customer_algorithm: customer_key.as_ref().map(|_| "AES256".to_owned()),
            sse_customer_key_md5: customer_key,
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.count(Op::UploadPart);
        let i = req.input;
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let customer_key = ssec::presented(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        part_encryption(&bucket, &i.upload_id, customer_key.as_deref())?;
        let body = collect(i.body).await?;
        let tag = self
            .store
            .upload_part(&bucket, &i.upload_id, i.part_number, body)
            .map_err(map_err)?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(tag)),
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.count(Op::UploadPartCopy);
        let i = req.input;
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let customer_key = ssec::presented(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        part_encryption(&bucket, &i.upload_id, customer_key.as_deref())?;
        let source_key = ssec::presented(
            i.copy_source_sse_customer_algorithm.as_deref(),
            i.copy_source_sse_customer_key.as_deref(),
            i.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        let (source, source_vid) = copy_source(self, &i.copy_source, source_key.as_deref())?;
        let src = source.content.expect("an object");
        let size = src.size();
        let range = match i.copy_source_range.as_deref() {
            None => 0..size,
            Some(r) => {
                let (first, last) = r
                    .strip_prefix("bytes=")
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                    .ok_or_else(|| s3_error!(InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last"))?;
                if first > last || last >= size {
                    return Err(s3_error!(
                        InvalidRange,
                        "The requested range is not satisfiable"
                    ));
                }
                first..last + 1
            }
        };
        let tag = self
            .store
            .upload_part(&bucket, &i.upload_id, i.part_number, src.bytes(range))
            .map_err(map_err)?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(tag)),
                last_modified: Some(timestamp(crate::store::now_ms())),
                ..Default::default()
            }),
            copy_source_version_id: source_vid.map(|v| v.encode()),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.count(Op::CompleteMultipartUpload);
        if !self.write_allowed(&req.input.bucket, &req.input.key) {
            return Err(s3_error!(SlowDown, "Please reduce your request rate."));
        }
        let condition = if self.config.ignore_conditions {
            None
        } else {
            Precondition::of_write(&req.headers)
        };
        let writer = requester_of(&req);
        let i = req.input;
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let parts: Vec<(i32, Option<String>)> = i
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                (
                    p.part_number.unwrap_or(0),
                    p.e_tag.map(|e| e.value().to_owned()),
                )
            })
            .collect();
        let tag = self
            .store
            .check_parts(&bucket, &i.upload_id, &parts)
            .map_err(map_err)?;
        if condition.is_some() && self.fault_conflict() {
            // The upload cannot be completed again (see `conditions`).
            let _ = self.store.abort_upload(&bucket, &i.upload_id);
            self.settings.take_upload_lock(&i.upload_id);
            return Err(conflict());
        }
        let key = self
            .store
            .upload_key(&bucket, &i.upload_id)
            .ok_or_else(|| map_err(StoreError::NoSuchUpload))?;
        let out = |id, checksum: Option<&checksum::Checksum>| {
            let mut out = CompleteMultipartUploadOutput {
                bucket: Some(i.bucket.clone()),
                key: Some(key.clone()),
                e_tag: Some(ETag::Strong(tag.clone())),
                version_id: reported(id),
                ..Default::default()
            };
            if let Some(c) = checksum {
                fill_checksum!(out, c);
            }
            out
        };
        let Some(timing) = self.timing(true) else {
            let (key, id, content) = self
                .store
                .complete_upload(
                    &bucket,
                    &i.upload_id,
                    &parts,
                    condition.as_ref(),
                    None,
                    writer,
                )
                .map_err(map_err)?;
            // The Object Lock its CreateMultipartUpload asked for.
            let lock = self.settings.take_upload_lock(&i.upload_id);
            self.settings.lock_new_version(&i.bucket, &key, id, &lock);
            return Ok(S3Response::new(out(Some(id), content.known_checksum())));
        };
        let sim = self.clone();
        let (name, upload_id, b) = (i.bucket.clone(), i.upload_id.clone(), bucket.clone());
        let (id, deferred) = self.defer(
            timing,
            move |reserved| {
                let (key, id, _) = sim
                    .store
                    .complete_upload(
                        &b,
                        &upload_id,
                        &parts,
                        condition.as_ref(),
                        Some(reserved),
                        writer,
                    )
                    .map_err(map_err)?;
                let lock = sim.settings.take_upload_lock(&upload_id);
                sim.settings.lock_new_version(&name, &key, id, &lock);
                Ok(())
            },
            |reserved| self.store.id_to_be(&bucket, reserved, false),
        );
        Ok(respond(out(id, None), Some(deferred)))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.count(Op::AbortMultipartUpload);
        let bucket = self.store.bucket(&req.input.bucket).map_err(map_err)?;
        self.store
            .abort_upload(&bucket, &req.input.upload_id)
            .map_err(map_err)?;
        self.settings.take_upload_lock(&req.input.upload_id);
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.count(Op::ListMultipartUploads);
        let i = req.input;
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let max_uploads = match i.max_uploads {
            None => 1000,
            Some(m) if m >= 1 => m.min(1000) as usize,
            Some(_) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "Argument max-uploads must be an integer between 1 and 1000"
                ))
            }
        };
        let enc = crate::xml::listed_as(i.encoding_type.as_ref());
        let prefix = i.prefix.clone().unwrap_or_default();
        let page = self.store.list_uploads(
            &bucket,
            &prefix,
            i.delimiter.as_deref(),
            i.key_marker.as_deref(),
            i.upload_id_marker.as_deref(),
            max_uploads,
        );
        let uploads = page
            .uploads
            .iter()
            .map(|(key, id, initiated, class)| MultipartUpload {
                key: Some(enc(key)),
                upload_id: Some(id.clone()),
                initiated: Some(timestamp(*initiated)),
                storage_class: Some(StorageClass::from(
                    class.clone().unwrap_or_else(|| "STANDARD".to_owned()),
                )),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: Some(enc(&prefix)),
            delimiter: i.delimiter.as_deref().map(enc),
            key_marker: Some(i.key_marker.as_deref().map(enc).unwrap_or_default()),
            upload_id_marker: Some(i.upload_id_marker.unwrap_or_default()),
            next_key_marker: page.next_key_marker.as_deref().map(enc),
            next_upload_id_marker: page.next_upload_id_marker,
            max_uploads: Some(max_uploads as i32),
            is_truncated: Some(page.is_truncated),
            uploads: Some(uploads),
            common_prefixes: Some(
                page.common_prefixes
                    .iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(p)),
                    })
                    .collect(),
            ),
            encoding_type: i.encoding_type,
            request_charged: None,
        }))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        self.count(Op::GetObjectTagging);
        let i = req.input;
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let vid = version(i.version_id.as_deref())?;
        let entry = self.store.get(&bucket, &i.key, vid).map_err(map_err)?;
        let tags = entry
            .content
            .as_ref()
            .and_then(|c| c.meta().map(|m| m.tags.clone()))
            .unwrap_or_default();
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: tags
                .into_iter()
                .map(|(k, v)| Tag {
                    key: Some(k),
                    value: Some(v),
                })
                .collect(),
            version_id: (!entry.version_id.is_null()).then(|| entry.version_id.encode()),
        }))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        self.count(Op::PutObjectTagging);
        let i = req.input;
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let vid = version(i.version_id.as_deref())?;
        let tags = i
            .tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        let id = self
            .store
            .set_tags(&bucket, &i.key, vid, tags)
            .map_err(map_err)?;
        Ok(S3Response::new(PutObjectTaggingOutput {
            version_id: (!id.is_null()).then(|| id.encode()),
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.count(Op::ListObjectsV2);
        let i = req.input;
        let bucket = self.store.bucket(&i.bucket).map_err(map_err)?;
        let enc = crate::xml::listed_as(i.encoding_type.as_ref());
        let max_keys = i.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let prefix = i.prefix.clone().unwrap_or_default();
        // Our continuation token is the last key, hex-encoded.
        let after = match i.continuation_token.as_deref() {
            Some(t) => Some(
                hex::decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        s3_error!(
                            InvalidArgument,
                            "The continuation token provided is incorrect"
                        )
                    })?,
            ),
            None => i.start_after.clone(),
        };
        let page = self.store.list_objects(
            &bucket,
            &prefix,
            i.delimiter.as_deref(),
            after.as_deref(),
            max_keys,
        );
        let contents: Vec<Object> = page
            .objects
            .iter()
            .map(|(key, e)| {
                let c = e.content.as_ref().expect("objects only");
                Object {
                    key: Some(enc(key)),
                    e_tag: Some(etag(c)),
                    last_modified: Some(timestamp(e.mtime_ms)),
                    size: Some(c.size() as i64),
                    storage_class: Some(ObjectStorageClass::from(
                        c.storage_class().unwrap_or("STANDARD").to_owned(),
                    )),
                    ..Default::default()
                }
            })
            .collect();
        let key_count = (contents.len() + page.common_prefixes.len()) as i32;
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(enc(&prefix)),
            max_keys: Some(max_keys as i32),
            key_count: Some(key_count),
            continuation_token: i.continuation_token,
            is_truncated: Some(page.is_truncated),
            next_continuation_token: page.next_after.map(|k| hex::encode(k.as_bytes())),
            contents: Some(contents),
            common_prefixes: Some(
                page.common_prefixes
                    .iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(p)),
                    })
                    .collect(),
            ),
            delimiter: i.delimiter.as_deref().map(enc),
            encoding_type: i.encoding_type,
            start_after: i.start_after.as_deref().map(enc),
            request_charged: None,
        }))
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let i = req.input;
        let policy = crate::policy::BucketPolicy::parse(&i.policy)
            .map_err(|m| S3Error::with_message(S3ErrorCode::MalformedPolicy, m))?;
        self.configure(&i.bucket, |_| ())?;
        self.settings.set_policy(&i.bucket, Some(Arc::new(policy)));
        Ok(S3Response::new(Default::default()))
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let policy = self
            .configured(&req.input.bucket, |b| b.policy.clone())?
            .ok_or_else(|| not_configured(S3ErrorCode::NoSuchBucketPolicy, "bucket policy"))?;
        Ok(S3Response::new(GetBucketPolicyOutput {
            policy: Some(policy.document.clone()),
        }))
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        self.configure(&req.input.bucket, |_| ())?;
        self.settings.set_policy(&req.input.bucket, None);
        Ok(S3Response::new(Default::default()))
    }
}
