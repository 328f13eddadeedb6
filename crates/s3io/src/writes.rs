//! The calls that change a bucket: batched deletes, copies (single and
//! multipart), new delete markers; and the one read apply needs, the newest
//! entry of a key.

use std::collections::HashMap;

use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, StorageClass,
};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::ErrorKind;
use crate::{encode_key, ListedEntry, S3Error, S3};

/// One version or delete marker to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTarget {
    pub key: String,
    pub version_id: String,
}

/// One copy of an old version over its key.
#[derive(Debug, Clone)]
pub struct CopyRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version_id: &'a str,
    pub size: u64,
    /// The source's storage class, kept on the copy (`None`: STANDARD).
    pub storage_class: Option<&'a str>,
    /// Sources larger than this go multipart (S3's limit is 5 GiB).
    pub multipart_threshold: u64,
    pub part_size: u64,
    /// Parts copied at the same time.
    pub part_concurrency: usize,
}

/// One attempt only: for calls that must not be repeated blindly (a second
/// CopyObject is a second version). The caller checks and retries.
fn single_attempt() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default()
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
}

impl S3 {
    /// DeleteObjects (Quiet) for up to 1,000 targets. Returns, per target in
    /// order, `None` if it is gone (deleted now, or already absent) or the
    /// error S3 reported for that key — including `SlowDown` inside an HTTP
    /// 200 body, which the caller retries.
    pub async fn delete_versions(
        &self,
        bucket: &str,
        targets: &[DeleteTarget],
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

    /// A plain DeleteObject: puts a delete marker on top of the key. Returns
    /// the marker's version id.
    pub async fn add_delete_marker(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<String>, S3Error> {
        let out = self
            .sdk()
            .delete_object()
            .bucket(bucket)
            .key(key)
            .customize()
            .config_override(single_attempt())
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("DeleteObject", bucket, e))?;
        Ok(out.version_id().map(str::to_owned))
    }

    /// Copies `version_id` of `key` onto `key`, keeping metadata, tags and
    /// storage class; returns the new version's id. Multipart above the
    /// threshold, aborted if any part fails. The call that creates the
    /// version is not retried here (see [`S3Error::may_have_succeeded`]).
    pub async fn copy_version(&self, req: &CopyRequest<'_>) -> Result<Option<String>, S3Error> {
        let source = copy_source(req.bucket, req.key, req.version_id);
        if req.size > req.multipart_threshold {
            return self.copy_multipart(req, &source).await;
        }
        let out = self
            .sdk()
            .copy_object()
            .bucket(req.bucket)
            .key(req.key)
            .copy_source(&source)
            .set_storage_class(req.storage_class.map(StorageClass::from))
            .customize()
            .config_override(single_attempt())
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("CopyObject", req.bucket, e))?;
        Ok(out.version_id().map(str::to_owned))
    }

    async fn copy_multipart(
        &self,
        req: &CopyRequest<'_>,
        source: &str,
    ) -> Result<Option<String>, S3Error> {
        let bucket = req.bucket;
        // CreateMultipartUpload does not copy metadata or tags: read them.
        let head = self
            .sdk()
            .head_object()
            .bucket(bucket)
            .key(req.key)
            .version_id(req.version_id)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("HeadObject", bucket, e))?;
        let tags = self
            .sdk()
            .get_object_tagging()
            .bucket(bucket)
            .key(req.key)
            .version_id(req.version_id)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("GetObjectTagging", bucket, e))?;
        let tagging: Vec<String> = tags
            .tag_set()
            .iter()
            .map(|t| format!("{}={}", encode_key(t.key()), encode_key(t.value())))
            .collect();
        let created = self
            .sdk()
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
            .map_err(|e| S3Error::from_sdk("CreateMultipartUpload", bucket, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = self.copy_parts(req, source, &upload_id).await;
        if result.is_err() {
            // Best effort: an abandoned upload only costs storage until a
            // lifecycle rule (AbortIncompleteMultipartUpload) removes it.
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
        source: &str,
        upload_id: &str,
    ) -> Result<Option<String>, S3Error> {
        let bucket = req.bucket;
        let part_size = req.part_size.max(1);
        let ranges: Vec<(i32, u64, u64)> = (0..req.size.div_ceil(part_size))
            .map(|i| {
                let start = i * part_size;
                ((i + 1) as i32, start, (start + part_size).min(req.size) - 1)
            })
            .collect();
        let mut parts: Vec<CompletedPart> = stream::iter(ranges)
            .map(|(number, first, last)| async move {
                let out = self
                    .sdk()
                    .upload_part_copy()
                    .bucket(bucket)
                    .key(req.key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .copy_source(source)
                    .copy_source_range(format!("bytes={first}-{last}"))
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("UploadPartCopy", bucket, e))?;
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
        let done = self
            .sdk()
            .complete_multipart_upload()
            .bucket(bucket)
            .key(req.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .customize()
            .config_override(single_attempt())
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("CompleteMultipartUpload", bucket, e))?;
        Ok(done.version_id().map(str::to_owned))
    }

    /// The newest version or delete marker of exactly `key`, or `None` if the
    /// key has no entries. (A listing of prefix `key` starts with the key
    /// itself: every other key under that prefix sorts after it.)
    pub async fn newest_entry(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ListedEntry>, S3Error> {
        let page = self
            .list_versions_raw(bucket, key, None, None, 1)
            .await?
            .parse()?;
        Ok(page.entries.into_iter().next().filter(|e| e.key == key))
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
