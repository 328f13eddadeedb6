//! Conditional writes and deletes: what a request's `If-Match` /
//! `If-None-Match` require of the key's current object, and how S3
//! answers when they do not hold. One judgement for every kind of write,
//! made under the same lock as the write itself (for a write made late,
//! when it is made: S3 judges a conditional write when it completes).
//!
//! What S3 does, from its documentation and from measurements others
//! published:
//!
//! - PutObject, CopyObject and CompleteMultipartUpload take `If-Match`
//!   and `If-None-Match: *` (user guide, "Add preconditions to S3
//!   operations with conditional requests"): 412 PreconditionFailed when
//!   the current object is not what they say; `If-Match` on a key with no
//!   current object (never written, or a delete marker on top) is 404
//!   NoSuchKey. A write racing another one may get 409
//!   ConditionalRequestConflict instead (`--fault-conflict`); after a 409
//!   a multipart upload cannot be completed again: "re-initiate the
//!   multipart upload with CreateMultipartUpload and re-upload each part"
//!   (API reference, CompleteMultipartUpload).
//! - DeleteObject without a version id takes `If-Match: "ETAG"` or
//!   `If-Match: *` (user guide, "How to perform conditional deletes",
//!   general purpose buckets since 2025-09-16). It is judged against the
//!   current version only: 412 when its ETag differs, 404 NoSuchKey when
//!   the key has no current version, for `*` as for an ETag (measured on
//!   AWS: localstack/localstack#13894, ministackorg/ministack#1475; the
//!   guide's "412" for a delete marker under `*` does not hold). With a
//!   version id, `If-Match` is refused whole: 501 NotImplemented
//!   (localstack#13894), as are the directory-bucket-only
//!   `x-amz-if-match-size` / `x-amz-if-match-last-modified-time`
//!   (ministack#1501). The guide also says a conditional delete may get
//!   409 when a DELETE or PUT of the key succeeds first.
//! - DeleteObjects takes an `<ETag>` per `<Object>`: the same judgement
//!   per key, a miss reported as that key's `<Error>` (PreconditionFailed;
//!   NoSuchKey with no current version: the guide says "Not Found" for the
//!   DeleteObjects form) inside the 200, the other keys unaffected.

use s3s::dto::{ETag, ETagCondition};
use s3s::{s3_error, S3Error, S3Result};

use crate::store::{Content, StoreError};

/// What a conditional write requires of the key's current object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `If-Match`: the current object has this ETag (quotes ignored), or
    /// is any object at all (`*`).
    IfMatch(String),
    /// `If-None-Match: *`: there is no current object.
    IfNoneMatch,
}

impl Precondition {
    /// A write's condition, from its `If-Match` / `If-None-Match` headers
    /// (read raw: s3s has them on some operations' inputs, not on all).
    pub fn of_write(headers: &http::HeaderMap) -> Option<Precondition> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match (header("if-match"), header("if-none-match")) {
            (Some(tag), _) => Some(Precondition::IfMatch(tag.to_owned())),
            (None, Some(_)) => Some(Precondition::IfNoneMatch),
            (None, None) => None,
        }
    }

    /// A delete's condition, from `If-Match` (the header, or the `<ETag>`
    /// of a DeleteObjects entry).
    pub fn of_delete(if_match: Option<&ETagCondition>) -> Option<Precondition> {
        if_match.map(|c| match c {
            ETagCondition::Any => Precondition::IfMatch("*".into()),
            ETagCondition::ETag(tag) => Precondition::IfMatch(tag.value().to_owned()),
        })
    }

    /// The `<ETag>` of a DeleteObjects entry (`*` included), as a
    /// condition.
    pub fn of_entry(tag: Option<&ETag>) -> Option<Precondition> {
        tag.map(|t| Precondition::IfMatch(t.value().to_owned()))
    }

    /// Whether the condition holds for the key's current object (`None`:
    /// none, or a delete marker on top). Call under the key's write lock.
    pub fn judge(&self, current: Option<&Content>) -> Result<(), StoreError> {
        match (self, current) {
            (Precondition::IfNoneMatch, Some(_)) => Err(StoreError::PreconditionFailed),
            (Precondition::IfNoneMatch, None) => Ok(()),
            (Precondition::IfMatch(_), None) => Err(StoreError::NoSuchKey),
            (Precondition::IfMatch(tag), Some(c)) => {
                let tag = tag.trim().trim_start_matches("W/").trim_matches('"');
                if tag == "*" || c.etag() == tag {
                    Ok(())
                } else {
                    Err(StoreError::PreconditionFailed)
                }
            }
        }
    }
}

/// 409: another write to the key raced this conditional one.
pub fn conflict() -> S3Error {
    s3_error!(
        ConditionalRequestConflict,
        "A conflicting operation occurred. If using PutObject you can retry the request. If using multipart upload you should initiate another CreateMultipartUpload request and re-upload each part."
    )
}

/// 501 for a DeleteObject condition S3 does not implement on general
/// purpose buckets: `If-Match` with a version id, or a size or time
/// condition.
pub fn refuse_delete_condition(
    versioned: bool,
    if_match: bool,
    size_or_time: bool,
) -> S3Result<()> {
    if (versioned && if_match) || size_or_time {
        return Err(s3_error!(
            NotImplemented,
            "A header you provided implies functionality that is not implemented"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectMeta;

    fn object(body: &str) -> Content {
        Content::stored(bytes::Bytes::from(body.to_owned()), ObjectMeta::default())
    }

    #[test]
    fn judged_as_aws_judges_them() {
        let one = object("one");
        let tag = one.etag();
        let m = |t: &str| Precondition::IfMatch(t.to_owned());
        assert_eq!(m(&format!("\"{tag}\"")).judge(Some(&one)), Ok(()));
        assert_eq!(m(&tag).judge(Some(&one)), Ok(()));
        assert_eq!(m("*").judge(Some(&one)), Ok(()));
        assert_eq!(
            m("\"0123\"").judge(Some(&one)),
            Err(StoreError::PreconditionFailed)
        );
        // No current object: 404 for an ETag and for `*` alike.
        assert_eq!(m(&tag).judge(None), Err(StoreError::NoSuchKey));
        assert_eq!(m("*").judge(None), Err(StoreError::NoSuchKey));
        assert_eq!(
            Precondition::IfNoneMatch.judge(Some(&one)),
            Err(StoreError::PreconditionFailed)
        );
        assert_eq!(Precondition::IfNoneMatch.judge(None), Ok(()));
    }

    #[test]
    fn versioned_conditional_deletes_are_not_implemented() {
        assert!(refuse_delete_condition(true, true, false).is_err());
        assert!(refuse_delete_condition(false, false, true).is_err());
        assert!(refuse_delete_condition(true, false, false).is_ok());
        assert!(refuse_delete_condition(false, true, false).is_ok());
    }
}
