//! The calls that change a bucket: batched deletes, and the writes that
//! make a new version — copies (single and multipart) and new delete
//! markers — each made at most once.

use std::collections::HashMap;

use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, StorageClass,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use model::{encode_key, Entry};

use crate::error::ErrorKind;
use crate::pacer::{partition_of, Retry};
use crate::{S3Error, S3};

/// One version or delete marker to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTarget {
    pub key: String,
    pub version_id: String,
}

/// One copy of an old version: over its key, or elsewhere.
#[derive(Debug, Clone)]
pub struct CopyRequest<'a> {
    /// Where the copy lands.
    pub bucket: &'a str,
    pub key: &'a str,
    /// What is copied: a version of `source_key` in `source_bucket`.
    pub source_bucket: &'a str,
    pub source_key: &'a str,
    pub version_id: &'a str,
    pub size: u64,
    /// The source's storage class, kept on the copy (`None`: STANDARD).
    pub storage_class: Option<&'a str>,
    /// Sources larger than this go multipart (S3's limit is 5 GiB).
    pub multipart_threshold: u64,
    pub part_size: u64,
    /// Parts copied at the same time.
    pub part_concurrency: usize,
    /// What the key must hold for the copy to land (single-request copies;
    /// `None`: unconditional).
    pub condition: Option<Condition<'a>>,
}

/// A conditional write's requirement on the key's current object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition<'a> {
    /// The current object has this ETag (`If-Match`).
    IfMatch(&'a str),
    /// There is no current object (`If-None-Match: *`).
    IfNoneMatch,
}

/// A write that makes a new version of a key.
#[derive(Debug, Clone)]
pub enum Write<'a> {
    Copy(CopyRequest<'a>),
    /// A plain DeleteObject: a new delete marker on top of the key.
    AddMarker {
        bucket: &'a str,
        key: &'a str,
    },
}

impl Write<'_> {
    fn bucket(&self) -> &str {
        match self {
            Write::Copy(c) => c.bucket,
            Write::AddMarker { bucket, .. } => bucket,
        }
    }

    fn key(&self) -> &str {
        match self {
            Write::Copy(c) => c.key,
            Write::AddMarker { key, .. } => key,
        }
    }
}

/// What the key's newest entry says about a write that failed in a way
/// that may hide a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The write happened: this is its version.
    Written(Option<String>),
    /// It did not: try again.
    NotWritten,
    /// Someone else changed the key meanwhile: stop, and why.
    Changed(String),
}

/// What became of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Done; the new version's id.
    Done(Option<String>),
    /// Not done, because the key changed under it (see [`Seen::Changed`]).
    Abandoned(String),
}

impl S3 {
    /// Removes up to 1,000 versions or markers in one DeleteObjects (Quiet)
    /// request. Returns, per target in order, `None` if it is gone (deleted
    /// now, or already absent) or the error S3 reported for that key. Keys
    /// S3 asked to retry (SlowDown or InternalError inside the 200 answer)
    /// are sent again, with the call policy's budget.
    pub async fn delete_versions(
        &self,
        bucket: &str,
        targets: &[DeleteTarget],
    ) -> Result<Vec<Option<S3Error>>, S3Error> {
        let mut outcome: Vec<Option<S3Error>> = vec![None; targets.len()];
        let mut pending: Vec<usize> = (0..targets.len()).collect();
        let partition = targets.first().map_or("", |t| partition_of(&t.key));
        let mut retries = 0;
        while !pending.is_empty() {
            let batch: Vec<&DeleteTarget> = pending.iter().map(|&i| &targets[i]).collect();
            let errors = self
                .pacer
                .call(partition, Retry::Idempotent, || {
                    self.delete_objects_once(bucket, &batch)
                })
                .await?;
            let mut again = Vec::new();
            let mut delay = None;
            for (i, error) in pending.into_iter().zip(errors) {
                match error {
                    Some(e) if e.is_retryable() => {
                        if e.kind == ErrorKind::Throttled {
                            self.pacer.throttled_inside(partition);
                        }
                        match self.pacer.retry_delay(&e, retries) {
                            Some(d) => {
                                delay = delay.max(Some(d));
                                again.push(i);
                            }
                            None => outcome[i] = Some(e),
                        }
                    }
                    other => outcome[i] = other,
                }
            }
            if let Some(d) = delay {
                retries += 1;
                tokio::time::sleep(d).await;
            }
            pending = again;
        }
        Ok(outcome)
    }

    async fn delete_objects_once(
        &self,
        bucket: &str,
        targets: &[&DeleteTarget],
    ) -> Result<Vec<Option<S3Error>>, S3Error> {
        let objects = targets
            .iter()
            .map(|t| {
                ObjectIdentifier::builder()
                    .key(&t.key)
                    .version_id(&t.version_id)
                    .build()
                    .expect("key is set")
            })
            .collect();
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .expect("objects are set");
        let out = self
            .sdk()
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("DeleteObjects", bucket, e))?;
        let mut errors: HashMap<(&str, &str), S3Error> = HashMap::new();
        for e in out.errors() {
            let err = S3Error::from_code(
                "DeleteObjects",
                e.code().unwrap_or("InternalError"),
                None,
                e.message().unwrap_or_default(),
                bucket,
            );
            errors.insert(
                (
                    e.key().unwrap_or_default(),
                    e.version_id().unwrap_or_default(),
                ),
                err,
            );
        }
        Ok(targets
            .iter()
            .map(|t| {
                errors
                    .remove(&(t.key.as_str(), t.version_id.as_str()))
                    // Deleting what is already gone leaves it gone: done.
                    .filter(|e| e.kind != ErrorKind::NotFound)
            })
            .collect())
    }

    /// Makes `write` happen at most once. When an attempt fails in a way
    /// that may hide a success (a 500, a lost connection), the key's newest
    /// entry is read and `check` says what it means before anything is
    /// sent again.
    pub async fn write_once(
        &self,
        write: &Write<'_>,
        check: impl Fn(Option<&Entry>) -> Seen,
    ) -> Result<Written, S3Error> {
        let mut retries = 0;
        loop {
            let error = match self.write_attempt(write).await {
                Ok(version) => return Ok(Written::Done(version)),
                Err(e) if e.may_have_succeeded() => e,
                Err(e) => return Err(e),
            };
            let newest = self.newest_entry(write.bucket(), write.key()).await?;
            match check(newest.as_ref()) {
                Seen::Written(version) => return Ok(Written::Done(version)),
                Seen::Changed(why) => return Ok(Written::Abandoned(why)),
                Seen::NotWritten => match self.pacer.retry_delay(&error, retries) {
                    Some(delay) => {
                        retries += 1;
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(error),
                },
            }
        }
    }

    async fn write_attempt(&self, write: &Write<'_>) -> Result<Option<String>, S3Error> {
        let partition = partition_of(write.key());
        match write {
            Write::AddMarker { bucket, key } => {
                self.pacer
                    .call(partition, Retry::Once, || async {
                        let out = self
                            .sdk()
                            .delete_object()
                            .bucket(*bucket)
                            .key(*key)
                            .send()
                            .await
                            .map_err(|e| S3Error::from_sdk("DeleteObject", bucket, e))?;
                        Ok(out.version_id().map(str::to_owned))
                    })
                    .await
            }
            Write::Copy(req) if req.size > req.multipart_threshold => {
                self.copy_multipart(req).await
            }
            Write::Copy(req) => self.copy_once(req).await,
        }
    }

    /// One CopyObject, not repeated blindly. A condition that does not
    /// hold is `ConditionFailed`, whichever way S3 says it: 412, or 404 to
    /// an If-Match on a key with no current object (told apart from a
    /// missing source by one listing of the key).
    async fn copy_once(&self, req: &CopyRequest<'_>) -> Result<Option<String>, S3Error> {
        let source = copy_source(req.source_bucket, req.source_key, req.version_id);
        let result = self
            .pacer
            .call(partition_of(req.key), Retry::Once, || async {
                let out = self
                    .sdk()
                    .copy_object()
                    .bucket(req.bucket)
                    .key(req.key)
                    .copy_source(&source)
                    .set_storage_class(req.storage_class.map(StorageClass::from))
                    .set_if_match(match req.condition {
                        Some(Condition::IfMatch(tag)) => Some(format!("\"{tag}\"")),
                        _ => None,
                    })
                    .set_if_none_match(
                        (req.condition == Some(Condition::IfNoneMatch)).then(|| "*".into()),
                    )
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("CopyObject", req.bucket, e))?;
                Ok(out.version_id().map(str::to_owned))
            })
            .await;
        match result {
            Err(mut e)
                if e.kind == ErrorKind::NotFound
                    && matches!(req.condition, Some(Condition::IfMatch(_))) =>
            {
                let newest = self.newest_entry(req.bucket, req.key).await?;
                if newest.is_none_or(|n| n.is_marker) {
                    e.kind = ErrorKind::ConditionFailed;
                }
                Err(e)
            }
            other => other,
        }
    }

    /// Whether the endpoint honours conditions on CopyObject. A copy of
    /// `key`'s version `version_id` onto a scratch key under
    /// `.s3rewind-probe/`, required to match an ETag no object has: AWS
    /// refuses it (412, or 404 as the key does not exist) and writes
    /// nothing; a server that ignores the condition makes the copy, which
    /// is deleted at once by its version id. One request, and one more
    /// after a 404 or where the copy was made.
    pub async fn honours_copy_conditions(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<bool, S3Error> {
        let scratch = format!(".s3rewind-probe/{:016x}", rand::random::<u64>());
        let probe = CopyRequest {
            bucket,
            key: &scratch,
            source_bucket: bucket,
            source_key: key,
            version_id,
            size: 0,
            storage_class: None,
            multipart_threshold: u64::MAX,
            part_size: 0,
            part_concurrency: 1,
            condition: Some(Condition::IfMatch("00000000000000000000000000000000")),
        };
        match self.copy_once(&probe).await {
            Err(e) if e.kind == ErrorKind::ConditionFailed => Ok(true),
            Err(e) => Err(e),
            Ok(made) => {
                let target = DeleteTarget {
                    key: scratch.clone(),
                    version_id: made.unwrap_or_else(|| "null".into()),
                };
                if let Some(e) = self
                    .delete_versions(bucket, &[target])
                    .await?
                    .pop()
                    .flatten()
                {
                    return Err(e);
                }
                Ok(false)
            }
        }
    }

    /// A copy above the single-copy limit: the source's metadata and tags
    /// read, an upload created, the parts copied, the upload completed (the
    /// one step that makes the version, sent once); aborted if any fails.
    async fn copy_multipart(&self, req: &CopyRequest<'_>) -> Result<Option<String>, S3Error> {
        let (bucket, partition) = (req.bucket, partition_of(req.key));
        let (source_bucket, source_partition) = (req.source_bucket, partition_of(req.source_key));
        let head = self
            .pacer
            .call(source_partition, Retry::Idempotent, || async {
                self.sdk()
                    .head_object()
                    .bucket(source_bucket)
                    .key(req.source_key)
                    .version_id(req.version_id)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("HeadObject", source_bucket, e))
            })
            .await?;
        let tags = self
            .pacer
            .call(source_partition, Retry::Idempotent, || async {
                self.sdk()
                    .get_object_tagging()
                    .bucket(source_bucket)
                    .key(req.source_key)
                    .version_id(req.version_id)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("GetObjectTagging", source_bucket, e))
            })
            .await?;
        let tagging: Vec<String> = tags
            .tag_set()
            .iter()
            .map(|t| format!("{}={}", encode_key(t.key()), encode_key(t.value())))
            .collect();
        // A repeated create only leaves an empty upload behind, which the
        // bucket's AbortIncompleteMultipartUpload rule (or nobody) minds.
        let created = self
            .pacer
            .call(partition, Retry::Idempotent, || async {
                self.sdk()
                    .create_multipart_upload()
                    .bucket(bucket)
                    .key(req.key)
                    .set_storage_class(req.storage_class.map(StorageClass::from))
                    .set_metadata(head.metadata().cloned())
                    .set_content_type(head.content_type().map(str::to_owned))
                    .set_cache_control(head.cache_control().map(str::to_owned))
                    .set_content_disposition(head.content_disposition().map(str::to_owned))
                    .set_content_encoding(head.content_encoding().map(str::to_owned))
                    .set_content_language(head.content_language().map(str::to_owned))
                    .set_tagging((!tagging.is_empty()).then(|| tagging.join("&")))
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("CreateMultipartUpload", bucket, e))
            })
            .await?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = self.copy_parts(req, &upload_id).await;
        if result.is_err() {
            // Best effort, once: an abandoned upload only costs storage.
            let _ = self
                .sdk()
                .abort_multipart_upload()
                .bucket(bucket)
                .key(req.key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn copy_parts(
        &self,
        req: &CopyRequest<'_>,
        upload_id: &str,
    ) -> Result<Option<String>, S3Error> {
        let (bucket, partition) = (req.bucket, partition_of(req.key));
        let source = copy_source(req.source_bucket, req.source_key, req.version_id);
        let part_size = req.part_size.max(1);
        let ranges: Vec<(i32, u64, u64)> = (0..req.size.div_ceil(part_size))
            .map(|i| {
                let start = i * part_size;
                ((i + 1) as i32, start, (start + part_size).min(req.size) - 1)
            })
            .collect();
        let source = &source;
        let mut parts: Vec<CompletedPart> = stream::iter(ranges)
            .map(|(number, first, last)| async move {
                let out = self
                    .pacer
                    .call(partition, Retry::Idempotent, || async {
                        self.sdk()
                            .upload_part_copy()
                            .bucket(bucket)
                            .key(req.key)
                            .upload_id(upload_id)
                            .part_number(number)
                            .copy_source(source)
                            .copy_source_range(format!("bytes={first}-{last}"))
                            .send()
                            .await
                            .map_err(|e| S3Error::from_sdk("UploadPartCopy", bucket, e))
                    })
                    .await?;
                let etag = out
                    .copy_part_result()
                    .and_then(|r| r.e_tag())
                    .map(str::to_owned);
                Ok::<_, S3Error>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(etag)
                        .build(),
                )
            })
            .buffer_unordered(req.part_concurrency.max(1))
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number());
        let parts = &parts;
        self.pacer
            .call(partition, Retry::Once, || async {
                let done = self
                    .sdk()
                    .complete_multipart_upload()
                    .bucket(bucket)
                    .key(req.key)
                    .upload_id(upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts.clone()))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("CompleteMultipartUpload", bucket, e))?;
                Ok(done.version_id().map(str::to_owned))
            })
            .await
    }
}

/// `bucket/key?versionId=V`, URL-encoded as `x-amz-copy-source` wants.
fn copy_source(bucket: &str, key: &str, version_id: &str) -> String {
    format!(
        "{bucket}/{}?versionId={}",
        encode_key(key),
        encode_key(version_id)
    )
}
