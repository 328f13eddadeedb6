//! Which encryption a new object gets, and so what kind of ETag.
//!
//! S3 encrypts every new object (API reference, PutObject and CopyObject,
//! `x-amz-server-side-encryption`): with what the request asks for, else
//! with the bucket's default encryption, SSE-S3 unless configured
//! otherwise. A copy does not inherit its source's encryption: "if you
//! don't specify encryption information in your copy request, the
//! encryption setting of the target object is set to the default
//! encryption configuration of the destination bucket".
//!
//! The ETag follows (API reference, `Object`, ETag): an object created by
//! PutObject, or by CopyObject, and encrypted with SSE-S3 has the MD5 of
//! its bytes as its ETag; one encrypted with SSE-KMS (or DSSE-KMS) has an
//! ETag that is not an MD5 (here: 32 hex digits drawn for each write); a
//! multipart upload's is the MD5 of its parts' ETags, `-<parts>` (its
//! parts', under SSE-KMS, are not MD5s either).

use s3s::dto::ServerSideEncryption;

use crate::Sim;

/// The key id recorded for SSE-KMS without a key named: S3's AWS managed
/// key for S3.
pub const AWS_MANAGED_KEY: &str = "aws/s3";

/// The KMS key a new object in `bucket` is encrypted with (`None`:
/// SSE-S3), from the request's `x-amz-server-side-encryption` and
/// `x-amz-server-side-encryption-aws-kms-key-id`, else the bucket's default.
pub fn kms_key(
    sim: &Sim,
    bucket: &str,
    asked: Option<&ServerSideEncryption>,
    key_id: Option<&str>,
) -> Option<String> {
    let named = || key_id.unwrap_or(AWS_MANAGED_KEY).to_owned();
    match asked.map(ServerSideEncryption::as_str) {
        Some(ServerSideEncryption::AES256) => None,
        Some(_) => Some(named()),
        // A key id alone names the key the request wants.
        None if key_id.is_some() => Some(named()),
        None => sim.settings.with_bucket(bucket, |b| {
            let default = b
                .encryption
                .as_ref()?
                .rules
                .first()?
                .apply_server_side_encryption_by_default
                .as_ref()?;
            (default.sse_algorithm.as_str() != ServerSideEncryption::AES256).then(|| {
                default
                    .kms_master_key_id
                    .clone()
                    .unwrap_or_else(|| AWS_MANAGED_KEY.to_owned())
            })
        }),
    }
}

/// The ETag of an object written in one request: the MD5 of its bytes
/// (computed only if asked: `md5`), or, under SSE-KMS, one that is not.
pub fn single_request_etag(sim: &Sim, kms: bool, md5: impl FnOnce() -> String) -> String {
    if kms {
        hex::encode(sim.store.random_tag())
    } else {
        md5()
    }
}
