//! The calls that change a bucket: batched deletes, and the writes that
//! make a new version — copies (single and multipart) and new delete
//! markers — each made at most once, each guarded by the strongest
//! condition S3 takes for it, and claimed as made only on proof.
//!
//! What S3 documents and this relies on:
//!
//! - CopyObject and CompleteMultipartUpload take `If-Match` /
//!   `If-None-Match: *`, judged against the key's current object when the
//!   write completes: 412 when it does not hold, 404 NoSuchKey to an
//!   If-Match on a key with no current object; 409
//!   ConditionalRequestConflict when another write raced it, after which a
//!   multipart upload must be made again (API reference, CopyObject and
//!   CompleteMultipartUpload). UploadPartCopy takes none.
//! - DeleteObject (no version id) takes `If-Match` on general-purpose
//!   buckets since 2025-09: 412 when the current ETag differs, 404 NoSuchKey
//!   when the key has no current version; it needs s3:GetObject besides
//!   s3:DeleteObject (user guide, "How to perform conditional deletes"). A
//!   delete of a given version takes no condition.
//! - A 200 OK can carry an `<Error>` for CopyObject, UploadPartCopy and
//!   CompleteMultipartUpload (see `error`), and a client cut off before the
//!   answer does not know whether S3 went on with the copy: "when you
//!   disconnect … Amazon S3 might cancel the copy" (API reference,
//!   CopyObject). So a write that failed that way is looked at before it
//!   is sent again, and a completion, which can only ever make one version
//!   of one upload, is sent again while its upload is still in progress.

use std::collections::HashMap;

use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, StorageClass,
};
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use model::{encode_key, Attribution, Entry};

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
    /// What the key must hold for the copy to land, on the copy or on the
    /// multipart completion (`None`: unconditional).
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

impl Condition<'_> {
    fn if_match(self) -> Option<String> {
        match self {
            Condition::IfMatch(tag) => Some(format!("\"{tag}\"")),
            Condition::IfNoneMatch => None,
        }
    }

    fn if_none_match(self) -> Option<String> {
        (self == Condition::IfNoneMatch).then(|| "*".to_owned())
    }
}

/// A write that makes a new version of a key.
#[derive(Debug, Clone)]
pub enum Write<'a> {
    Copy(CopyRequest<'a>),
    /// A DeleteObject without a version id: a new delete marker on top of
    /// the key, only if its current object has this ETag (`None`:
    /// unconditional).
    AddMarker {
        bucket: &'a str,
        key: &'a str,
        if_match: Option<&'a str>,
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

    /// Made by one request that carries no condition: if its answer is
    /// lost, it may still land later, and nothing would stop a second
    /// attempt from landing beside it. (A conditional second attempt and
    /// a late first one cannot both land; a multipart upload that is no
    /// longer in progress makes nothing more.)
    fn unguarded(&self) -> bool {
        match self {
            Write::Copy(c) => c.condition.is_none() && c.size <= c.multipart_threshold,
            Write::AddMarker { if_match, .. } => if_match.is_none(),
        }
    }
}

/// The version a write made, and how it is known to be the write's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub version_id: Option<String>,
    /// Its ETag, when S3 said.
    pub etag: Option<String>,
    pub matched_by: Attribution,
}

/// What the key shows after a failure that may hide a success.
#[derive(Debug, Clone, Copy)]
pub struct Look<'e> {
    /// Its entries now, newest first.
    pub entries: &'e [Entry],
    /// A multipart copy whose completion's answer was lost: the ETag that
    /// completion gives. Its upload is no longer in progress, so nothing
    /// of it can land any more.
    pub upload_etag: Option<&'e str>,
}

/// What a look at the key means for a write (the caller's judgement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The write happened: this is its version.
    Written(Landed),
    /// It did not: send it again.
    NotWritten,
    /// Someone else changed the key meanwhile: stop, and what it holds.
    Changed(String),
    /// It cannot be told: the version that may be the write's, and why.
    Unknown {
        candidate: Option<String>,
        why: String,
    },
}

/// What became of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Done(Landed),
    /// Not done: the key changed under it (see [`Seen::Changed`]).
    Changed(String),
    /// Not known (see [`Seen::Unknown`]).
    Unknown {
        candidate: Option<String>,
        why: String,
    },
}

/// What a write made once needs from its caller.
pub trait Journal: Sync {
    /// What the key shows means for the write (see [`Seen`]); an error
    /// only for one that stops the run.
    fn judge<'s>(&'s self, look: Look<'s>) -> BoxFuture<'s, Result<Seen, S3Error>>;

    /// Records a multipart copy's upload and the ETag its completion will
    /// give, durably, before the completion is sent: a completion whose
    /// answer is lost is then recognised, even after a kill.
    fn record_upload<'s>(
        &'s self,
        upload_id: &'s str,
        etag: Option<&'s str>,
    ) -> BoxFuture<'s, Result<(), String>>;
}

/// Whether the endpoint honours a kind of conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// It refused a condition that could not hold, as S3 does.
    Honoured,
    /// It made the write anyway.
    Ignored,
    /// A bucket policy refuses these writes (AWS's 501 NotImplemented to a
    /// copy where a policy enforces conditional writes); why.
    Refused(String),
    /// The probe could not tell; why.
    Unknown(String),
}

/// A failed attempt of a write.
enum Failure {
    Error(S3Error),
    /// A multipart completion whose answer was lost, its upload no longer
    /// in progress: the ETag the completion gives.
    Completion(S3Error, Option<String>),
}

impl From<S3Error> for Failure {
    fn from(e: S3Error) -> Failure {
        Failure::Error(e)
    }
}

/// Attempts at a multipart copy when S3 answers a completion 409 (another
/// write raced it: the upload is made again).
const CONFLICT_ATTEMPTS: u32 = 3;

impl S3 {
    /// Removes up to 1,000 versions or markers in one DeleteObjects (Quiet)
    /// request. Returns, per target in order, `None` if it is gone (deleted
    /// now, or already absent) or the error S3 reported for that key. Keys
    /// S3 asked to retry (SlowDown or InternalError inside the 200 answer)
    /// are sent again, with the call policy's budget; keys an XML 1.0
    /// document cannot carry go one DeleteObject each.
    pub async fn delete_versions(
        &self,
        bucket: &str,
        targets: &[DeleteTarget],
    ) -> Result<Vec<Option<S3Error>>, S3Error> {
        let mut outcome: Vec<Option<S3Error>> = vec![None; targets.len()];
        let (mut pending, alone): (Vec<usize>, Vec<usize>) =
            (0..targets.len()).partition(|&i| model::xml_safe(&targets[i].key));
        for i in alone {
            outcome[i] = self.delete_version(bucket, &targets[i]).await?;
        }
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

    /// One version removed by a DeleteObject of its own.
    async fn delete_version(
        &self,
        bucket: &str,
        target: &DeleteTarget,
    ) -> Result<Option<S3Error>, S3Error> {
        let sent = self
            .pacer
            .call(partition_of(&target.key), Retry::Idempotent, || async {
                self.sdk()
                    .delete_object()
                    .bucket(bucket)
                    .key(&target.key)
                    .version_id(&target.version_id)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("DeleteObject", bucket, e))
            })
            .await;
        match sent {
            Ok(_) => Ok(None),
            // Deleting what is already gone leaves it gone: done.
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) if e.stops_the_run() => Err(e),
            Err(e) => Ok(Some(e)),
        }
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
            let named = (
                e.key().unwrap_or_default(),
                e.version_id().unwrap_or_default(),
            );
            // An error about a key not asked for says nothing of the keys
            // that were: what the request did is not known, and deleting
            // again is harmless.
            if !targets
                .iter()
                .any(|t| (t.key.as_str(), t.version_id.as_str()) == named)
            {
                return Err(S3Error {
                    kind: ErrorKind::Transient,
                    operation: "DeleteObjects",
                    code: None,
                    detail: format!(
                        "the reply reports an error ({}) for a key and version that were not asked for: the outcome of the batch is not known",
                        err.code_and_message()
                    ),
                    advice: None,
                });
            }
            errors.insert(named, err);
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

    /// Every entry of one key, newest first.
    pub async fn key_entries(&self, bucket: &str, key: &str) -> Result<Vec<Entry>, S3Error> {
        Ok(self
            .entries_of(bucket, &[(0, key)])
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// Makes `write` happen at most once. When an attempt fails in a way
    /// that may hide a success (a 500, a lost connection, an `<Error>` in a
    /// 200), the key is looked at and `journal` judges what it shows
    /// before anything is sent again. An attempt whose answer was lost
    /// may still land after the look (S3 "might cancel the copy", or not),
    /// so only a write whose condition stops a second landing is sent
    /// again; and the refusal of that condition is judged too, since what
    /// the key now holds may be the first attempt, landed late.
    pub async fn write_once(
        &self,
        write: &Write<'_>,
        journal: &dyn Journal,
    ) -> Result<Written, S3Error> {
        let mut retries = 0;
        let mut unknown_before = false;
        loop {
            let (error, upload_etag) = match self.write_attempt(write, journal).await {
                Ok(landed) => return Ok(Written::Done(landed)),
                Err(Failure::Error(e)) if e.may_have_succeeded() => (e, None),
                Err(Failure::Error(e))
                    if unknown_before && e.kind == ErrorKind::ConditionFailed =>
                {
                    (e, None)
                }
                Err(Failure::Error(e)) => return Err(e),
                Err(Failure::Completion(e, etag)) => (e, etag),
            };
            let entries = self.key_entries(write.bucket(), write.key()).await?;
            let look = Look {
                entries: &entries,
                upload_etag: upload_etag.as_deref(),
            };
            match journal.judge(look).await? {
                Seen::Written(landed) => return Ok(Written::Done(landed)),
                Seen::Changed(why) => return Ok(Written::Changed(why)),
                Seen::Unknown { candidate, why } => return Ok(Written::Unknown { candidate, why }),
                // Refused, and nothing of the earlier attempt shows: the
                // key changed some other way (the caller says how).
                Seen::NotWritten if error.kind == ErrorKind::ConditionFailed => return Err(error),
                Seen::NotWritten if write.unguarded() => {
                    return Ok(Written::Unknown {
                        candidate: None,
                        why: format!(
                            "the call's answer was lost ({}) and the key shows nothing of it yet, but it may still land: sent without a condition, it is not sent again, as a second one could land beside it",
                            error.code_and_message()
                        ),
                    })
                }
                Seen::NotWritten => match self.pacer.retry_delay(&error, retries) {
                    Some(delay) => {
                        retries += 1;
                        unknown_before = true;
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(error),
                },
            }
        }
    }

    async fn write_attempt(
        &self,
        write: &Write<'_>,
        journal: &dyn Journal,
    ) -> Result<Landed, Failure> {
        match write {
            Write::AddMarker {
                bucket,
                key,
                if_match,
            } => Ok(self.add_marker(bucket, key, *if_match).await?),
            // Boxed: its state (parts in flight, their answers) is ten
            // times a single copy's, and every write's future, moved as it
            // is made and queued, would otherwise be that big.
            Write::Copy(req) if req.size > req.multipart_threshold => {
                Box::pin(self.copy_multipart(req, journal)).await
            }
            Write::Copy(req) => Ok(self.copy_once(req).await?),
        }
    }

    /// One DeleteObject without a version id, not repeated blindly. A
    /// condition that does not hold is `ConditionFailed`, whichever way S3
    /// says it (412, or 404 as the key has no current version).
    async fn add_marker(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Landed, S3Error> {
        let sent = self
            .pacer
            .call(partition_of(key), Retry::Once, || async {
                self.sdk()
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .set_if_match(if_match.map(|t| format!("\"{t}\"")))
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("DeleteObject", bucket, e))
            })
            .await;
        match sent {
            Ok(out) => Ok(Landed {
                version_id: out.version_id().map(str::to_owned),
                etag: None,
                matched_by: Attribution::Response,
            }),
            Err(mut e) if e.kind == ErrorKind::NotFound && if_match.is_some() => {
                e.kind = ErrorKind::ConditionFailed;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// One CopyObject, not repeated blindly. A condition that does not
    /// hold is `ConditionFailed`, whichever way S3 says it: 412, or 404 to
    /// an If-Match on a key with no current object (told apart from a
    /// missing source by one listing of the key).
    async fn copy_once(&self, req: &CopyRequest<'_>) -> Result<Landed, S3Error> {
        let source = copy_source(req.source_bucket, req.source_key, req.version_id);
        let result = self
            .pacer
            .call(partition_of(req.key), Retry::Once, || async {
                let out = self
                    .copy_sdk()
                    .copy_object()
                    .bucket(req.bucket)
                    .key(req.key)
                    .copy_source(&source)
                    .set_storage_class(req.storage_class.map(StorageClass::from))
                    .set_if_match(req.condition.and_then(Condition::if_match))
                    .set_if_none_match(req.condition.and_then(Condition::if_none_match))
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("CopyObject", req.bucket, e))?;
                Ok(Landed {
                    version_id: out.version_id().map(str::to_owned),
                    etag: out
                        .copy_object_result()
                        .and_then(|r| r.e_tag())
                        .map(unquoted),
                    matched_by: Attribution::Response,
                })
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

    /// Whether the endpoint honours conditions on CopyObject into `bucket`
    /// (when `source`, a version the plan copies, is given) and on
    /// DeleteObject (when `deletes`). Each probe writes to a scratch key
    /// under `.s3rewind-probe/` with an If-Match no object can satisfy:
    /// S3 refuses it and writes nothing; a server that ignores conditions
    /// makes the copy or the marker, which is removed at once by its
    /// version id. A 404 to the copy is S3's refusal only if the source
    /// exists (one HeadObject says). A transient error (a 500, a lost
    /// answer) is no answer: the scratch key is looked at (whatever is on
    /// it is the probe's) and the probe sent again, with the call policy's
    /// budget. Anything else: not known.
    pub async fn probe_conditions(
        &self,
        bucket: &str,
        source: Option<(&str, &str, &str)>,
        deletes: bool,
    ) -> Result<(Option<Support>, Option<Support>), S3Error> {
        const NONE_MATCHES: &str = "\"00000000000000000000000000000000\"";
        let scratch = format!(".s3rewind-probe/{:016x}", rand::random::<u64>());
        let copies = match source {
            None => None,
            Some((source_bucket, key, version)) => {
                let source = copy_source(source_bucket, key, version);
                let made = self
                    .probe(bucket, &scratch, || async {
                        self.copy_sdk()
                            .copy_object()
                            .bucket(bucket)
                            .key(&scratch)
                            .copy_source(&source)
                            .if_match(NONE_MATCHES)
                            .send()
                            .await
                            .map(|out| out.version_id().map(str::to_owned))
                            .map_err(|e| S3Error::from_sdk("CopyObject", bucket, e))
                    })
                    .await?;
                Some(match made {
                    Ok(version) => {
                        self.remove_probe(bucket, &scratch, version.as_deref())
                            .await?;
                        Support::Ignored
                    }
                    Err(e) => match self.probe_refusal(&e, "CopyObject")? {
                        Some(support) => support,
                        // 404: the scratch key has no current object — or
                        // the source is gone.
                        None => match self.version_state(source_bucket, key, version).await {
                            Ok(_) => Support::Honoured,
                            Err(e) if e.stops_the_run() => return Err(e),
                            Err(e) => Support::Unknown(format!(
                                "the probe's copy was answered {}, and its source cannot be read ({})",
                                "404",
                                e.code_and_message()
                            )),
                        },
                    },
                })
            }
        };
        let deletes = match deletes {
            false => None,
            true => {
                let made = self
                    .probe(bucket, &scratch, || async {
                        self.sdk()
                            .delete_object()
                            .bucket(bucket)
                            .key(&scratch)
                            .if_match(NONE_MATCHES)
                            .send()
                            .await
                            .map(|out| out.version_id().map(str::to_owned))
                            .map_err(|e| S3Error::from_sdk("DeleteObject", bucket, e))
                    })
                    .await?;
                Some(match made {
                    Ok(version) => {
                        self.remove_probe(bucket, &scratch, version.as_deref())
                            .await?;
                        Support::Ignored
                    }
                    // No current version: S3 judged the condition.
                    Err(e) => self
                        .probe_refusal(&e, "DeleteObject")?
                        .unwrap_or(Support::Honoured),
                })
            }
        };
        Ok((copies, deletes))
    }

    /// One probe write onto `scratch`, made at most once: `Ok` with the
    /// version id of what it made (the endpoint ignored its condition), or
    /// the error it was answered with. After a transient error the scratch
    /// key is looked at: an entry there is the probe's (made, its answer
    /// lost); none, it is sent again while the budget lasts. The outer
    /// error: a look that failed.
    async fn probe<F, Fut>(
        &self,
        bucket: &str,
        scratch: &str,
        send: F,
    ) -> Result<Result<Option<String>, S3Error>, S3Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>, S3Error>>,
    {
        let mut retries = 0;
        loop {
            let error = match self
                .pacer
                .call(partition_of(scratch), Retry::Once, &send)
                .await
            {
                Err(e) if e.may_have_succeeded() => e,
                other => return Ok(other),
            };
            if let Some(made) = self.key_entries(bucket, scratch).await?.first() {
                return Ok(Ok(Some(made.version_id.clone())));
            }
            match self.pacer.retry_delay(&error, retries) {
                Some(delay) => {
                    retries += 1;
                    tokio::time::sleep(delay).await;
                }
                None => return Ok(Err(error)),
            }
        }
    }

    /// What a probe's error says: `None` for a 404 (to be told apart by
    /// the caller); an error that stops every call stops the probe too.
    fn probe_refusal(&self, e: &S3Error, operation: &str) -> Result<Option<Support>, S3Error> {
        if e.stops_the_run() {
            return Err(e.clone());
        }
        Ok(match (e.kind, e.code.as_deref()) {
            (ErrorKind::ConditionFailed, _) => Some(Support::Honoured),
            (ErrorKind::NotFound, _) => None,
            (_, Some("NotImplemented")) => Some(Support::Refused(format!(
                "{operation} with a condition was answered 501 NotImplemented: a bucket policy that enforces conditional writes refuses it ({})",
                e.code_and_message()
            ))),
            (_, Some("AccessDenied")) if operation == "DeleteObject" => Some(Support::Unknown(format!(
                "the probe was refused ({}): a conditional delete needs s3:GetObject besides s3:DeleteObject",
                e.code_and_message()
            ))),
            _ => Some(Support::Unknown(format!(
                "the probe's {operation} was answered {}",
                e.code_and_message()
            ))),
        })
    }

    /// Removes what a probe made on a server that ignored its condition.
    async fn remove_probe(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(), S3Error> {
        let target = DeleteTarget {
            key: key.to_owned(),
            version_id: version_id.unwrap_or("null").to_owned(),
        };
        match self
            .delete_versions(bucket, &[target])
            .await?
            .pop()
            .flatten()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A copy above the single-copy limit: the source's metadata and tags
    /// read, an upload created, the parts copied, the upload recorded, and
    /// completed on the copy's condition (the one step that makes the
    /// version). A completion S3 refuses as another write raced it (409)
    /// makes the upload again; one whose answer is lost is sent again while
    /// the upload is in progress (it can make one version at most), and
    /// otherwise comes back to be judged from the key.
    async fn copy_multipart(
        &self,
        req: &CopyRequest<'_>,
        journal: &dyn Journal,
    ) -> Result<Landed, Failure> {
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
        let mut conflicts = 0;
        loop {
            match self.upload_copy(req, journal, &head, &tagging).await {
                Err(Failure::Error(e))
                    if e.code.as_deref() == Some("ConditionalRequestConflict")
                        && conflicts + 1 < CONFLICT_ATTEMPTS =>
                {
                    conflicts += 1;
                }
                other => return other,
            }
        }
    }

    /// One multipart upload of a copy, from creation to completion;
    /// aborted unless completed (or its completion's fate is unknown).
    async fn upload_copy(
        &self,
        req: &CopyRequest<'_>,
        journal: &dyn Journal,
        head: &aws_sdk_s3::operation::head_object::HeadObjectOutput,
        tagging: &[String],
    ) -> Result<Landed, Failure> {
        let (bucket, partition) = (req.bucket, partition_of(req.key));
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
        let result = async {
            let parts = self.copy_parts(req, &upload_id).await?;
            let etag = multipart_etag(&parts);
            journal
                .record_upload(&upload_id, etag.as_deref())
                .await
                .map_err(|why| S3Error {
                    kind: ErrorKind::Fatal,
                    operation: "CompleteMultipartUpload",
                    code: None,
                    detail: format!(
                        "the upload could not be recorded before its completion: {why}"
                    ),
                    advice: None,
                })?;
            self.complete(req, &upload_id, parts, etag).await
        }
        .await;
        let abort = match &result {
            Ok(_) | Err(Failure::Completion(..)) => false,
            // A refused completion leaves the upload to abort; a lost
            // answer while it is in progress was handled by `complete`.
            Err(Failure::Error(_)) => true,
        };
        if abort {
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
    ) -> Result<Vec<CompletedPart>, S3Error> {
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
                        self.copy_sdk()
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
        Ok(parts)
    }

    /// CompleteMultipartUpload on the copy's condition. A refusal of the
    /// condition is `ConditionFailed`; a lost answer is sent again while
    /// the upload is still in progress, and once it is not, comes back as
    /// [`Failure::Completion`] to be judged from the key.
    async fn complete(
        &self,
        req: &CopyRequest<'_>,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        etag: Option<String>,
    ) -> Result<Landed, Failure> {
        let (bucket, partition) = (req.bucket, partition_of(req.key));
        let parts = &parts;
        let mut retries = 0;
        loop {
            let sent = self
                .pacer
                .call(partition, Retry::Once, || async {
                    let done = self
                        .copy_sdk()
                        .complete_multipart_upload()
                        .bucket(bucket)
                        .key(req.key)
                        .upload_id(upload_id)
                        .set_if_match(req.condition.and_then(Condition::if_match))
                        .set_if_none_match(req.condition.and_then(Condition::if_none_match))
                        .multipart_upload(
                            CompletedMultipartUpload::builder()
                                .set_parts(Some(parts.clone()))
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(|e| S3Error::from_sdk("CompleteMultipartUpload", bucket, e))?;
                    Ok(Landed {
                        version_id: done.version_id().map(str::to_owned),
                        etag: done.e_tag().map(unquoted),
                        matched_by: Attribution::Response,
                    })
                })
                .await;
            let error = match sent {
                Ok(landed) => return Ok(landed),
                Err(mut e)
                    if e.code.as_deref() == Some("NoSuchKey")
                        && matches!(req.condition, Some(Condition::IfMatch(_))) =>
                {
                    e.kind = ErrorKind::ConditionFailed;
                    return Err(e.into());
                }
                Err(e) if e.may_have_succeeded() || e.code.as_deref() == Some("NoSuchUpload") => e,
                Err(e) => return Err(e.into()),
            };
            if !self.upload_in_progress(bucket, req.key, upload_id).await? {
                return Err(Failure::Completion(error, etag));
            }
            match self.pacer.retry_delay(&error, retries) {
                Some(delay) => {
                    retries += 1;
                    tokio::time::sleep(delay).await;
                }
                None => return Err(error.into()),
            }
        }
    }

    /// Whether upload `upload_id` of `key` is still in progress
    /// (ListMultipartUploads of the key).
    pub async fn upload_in_progress(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<bool, S3Error> {
        let mut markers: Option<(String, String)> = None;
        loop {
            let out = self
                .pacer
                .call(partition_of(key), Retry::Idempotent, || async {
                    let mut list = self
                        .sdk()
                        .list_multipart_uploads()
                        .bucket(bucket)
                        .prefix(key);
                    if let Some((k, u)) = &markers {
                        list = list.key_marker(k).upload_id_marker(u);
                    }
                    list.send()
                        .await
                        .map_err(|e| S3Error::from_sdk("ListMultipartUploads", bucket, e))
                })
                .await?;
            if out
                .uploads()
                .iter()
                .any(|u| u.key() == Some(key) && u.upload_id() == Some(upload_id))
            {
                return Ok(true);
            }
            let next = out
                .next_key_marker()
                .zip(out.next_upload_id_marker())
                .map(|(k, u)| (k.to_owned(), u.to_owned()));
            match (out.is_truncated() == Some(true), next) {
                (true, Some(next)) if markers.as_ref() != Some(&next) => markers = Some(next),
                _ => return Ok(false),
            }
        }
    }

    /// Aborts a multipart upload: nothing of it can land afterwards.
    /// Already gone counts as done.
    pub async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), S3Error> {
        let sent = self
            .pacer
            .call(partition_of(key), Retry::Idempotent, || async {
                self.sdk()
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk("AbortMultipartUpload", bucket, e))
            })
            .await;
        match sent {
            Err(e)
                if e.kind != ErrorKind::NotFound && e.code.as_deref() != Some("NoSuchUpload") =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }
}

/// The ETag a multipart upload of these parts completes with: the MD5 of
/// their MD5s, and their count (`None` when a part's ETag is not an MD5,
/// as with SSE-KMS).
pub fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    let mut digests = Md5::new();
    for part in parts {
        let md5 = model::Etag::parse(&unquoted(part.e_tag()?)).md5?;
        digests.update(md5);
    }
    Some(format!("{}-{}", hex_of(&digests.finalize()), parts.len()))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unquoted(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

/// `bucket/key?versionId=V`, URL-encoded as `x-amz-copy-source` wants.
fn copy_source(bucket: &str, key: &str, version_id: &str) -> String {
    format!(
        "{bucket}/{}?versionId={}",
        encode_key(key),
        encode_key(version_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_etag_is_the_md5_of_its_parts_md5s() {
        let part = |n: i32, etag: &str| CompletedPart::builder().part_number(n).e_tag(etag).build();
        let a = hex_of(&Md5::digest(b"a"));
        let b = hex_of(&Md5::digest(b"b"));
        let mut both = Md5::digest(b"a").to_vec();
        both.extend_from_slice(&Md5::digest(b"b"));
        assert_eq!(
            multipart_etag(&[part(1, &format!("\"{a}\"")), part(2, &b)]),
            Some(format!("{}-2", hex_of(&Md5::digest(&both))))
        );
        assert_eq!(multipart_etag(&[part(1, "not-an-md5")]), None);
    }
}
