//! What a caller may do: every request is authorized by the IAM actions S3
//! requires for it ("Required permissions for Amazon S3 API operations", S3
//! user guide; the Permissions section of each operation in the API
//! reference), against the principal's allowed actions and the bucket's
//! policy ([`crate::policy`]). A refusal is 403 AccessDenied with the
//! message S3 gives ("Troubleshoot access denied (403 Forbidden) errors",
//! S3 user guide).
//!
//! The mapping, where it is not the operation's own name:
//!
//! - GetObject, HeadObject: `s3:GetObject`, or `s3:GetObjectVersion` with a
//!   `versionId` (then `s3:GetObject` is not needed).
//! - DeleteObject: `s3:DeleteObject`, or `s3:DeleteObjectVersion` with a
//!   `versionId`; an `If-Match` with an ETag also needs `s3:GetObject` ("How
//!   to perform conditional deletes": `If-Match: *` needs only the delete
//!   permission); `x-amz-bypass-governance-retention` needs
//!   `s3:BypassGovernanceRetention`.
//! - DeleteObjects: the same per key (an `ETag` element is its condition),
//!   each refusal an `<Error>` of that key in the 200 answer.
//! - CopyObject, UploadPartCopy: read on the source (`s3:GetObject`, or
//!   `s3:GetObjectVersion` for a source version), `s3:PutObject` on the
//!   destination.
//! - CreateMultipartUpload, UploadPart, CompleteMultipartUpload:
//!   `s3:PutObject`; PutObject or CompleteMultipartUpload with `If-Match`
//!   also needs `s3:GetObject` (the conditional-writes page grants it "because
//!   conditional put if-match ETag"). Object Lock headers on a write need
//!   `s3:PutObjectRetention` (mode, retain-until date) and
//!   `s3:PutObjectLegalHold`.
//! - ListObjectVersions: `s3:ListBucketVersions`; ListObjectsV2 and
//!   HeadBucket: `s3:ListBucket`; ListBuckets: `s3:ListAllMyBuckets`.
//! - Lifecycle: `s3:GetLifecycleConfiguration`, `s3:PutLifecycleConfiguration`
//!   (also for DeleteBucketLifecycle); Object Lock configuration:
//!   `s3:GetBucketObjectLockConfiguration` / `s3:PutBucketObjectLockConfiguration`;
//!   replication and encryption: `s3:Get/PutReplicationConfiguration`,
//!   `s3:Get/PutEncryptionConfiguration`; tagging with a `versionId`:
//!   `s3:Get/PutObjectVersionTagging`.
//!
//! The `--access-key` principal is allowed everything: while no bucket has
//! a policy, its requests are authorized by one comparison.

use std::sync::Arc;

use http::HeaderMap;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::Credentials;
use s3s::dto::CopySource;
use s3s::path::S3Path;
use s3s::{s3_error, S3Error, S3Request, S3Result};

use crate::auth::{ClientAddr, Principal, Requester};
use crate::policy::{Ask, ConditionKeys, Effect};
use crate::s3impl::url_form_pairs;
use crate::Sim;

/// One permission a request needs: an action on a bucket or an object.
#[derive(Debug)]
struct Need {
    action: &'static str,
    bucket: Option<String>,
    key: Option<String>,
    keys: ConditionKeys,
}

impl Need {
    fn on(action: &'static str, bucket: Option<&str>, key: Option<&str>) -> Need {
        Need {
            action,
            bucket: bucket.map(str::to_owned),
            key: key.map(str::to_owned),
            keys: ConditionKeys::default(),
        }
    }

    fn with(mut self, keys: ConditionKeys) -> Need {
        self.keys = keys;
        self
    }
}

/// The request of an operation, as far as authorizing it goes.
struct Request<'a> {
    op: &'a str,
    bucket: Option<&'a str>,
    key: Option<&'a str>,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn has(&self, name: &str) -> bool {
        self.headers.contains_key(name)
    }

    fn versioned(&self) -> bool {
        self.query.is_some_and(|q| {
            url_form_pairs(q)
                .iter()
                .any(|(k, v)| k == "versionId" && !v.is_empty())
        })
    }

    /// The permissions S3 requires for it (see the module's list).
    fn needs(&self) -> Vec<Need> {
        let (b, k) = (self.bucket, self.key);
        let on = |action| Need::on(action, b, k);
        let read = |versioned: bool| {
            on(if versioned {
                "s3:GetObjectVersion"
            } else {
                "s3:GetObject"
            })
        };
        let write_keys = |creation| ConditionKeys {
            if_match: self.has("if-match"),
            if_none_match: self.has("if-none-match"),
            object_creation: Some(creation),
        };
        let part_keys = ConditionKeys {
            object_creation: Some(false),
            ..ConditionKeys::default()
        };
        let mut needs = match self.op {
            "GetObject" | "HeadObject" => vec![read(self.versioned())],
            "PutObject" | "CompleteMultipartUpload" => {
                vec![on("s3:PutObject").with(write_keys(true))]
            }
            "CopyObject" => vec![on("s3:PutObject").with(write_keys(true))],
            "CreateMultipartUpload" | "UploadPart" | "UploadPartCopy" => {
                vec![on("s3:PutObject").with(part_keys)]
            }
            "AbortMultipartUpload" => vec![on("s3:AbortMultipartUpload")],
            "DeleteObject" => {
                let keys = ConditionKeys {
                    if_match: self.has("if-match"),
                    ..ConditionKeys::default()
                };
                let action = if self.versioned() {
                    "s3:DeleteObjectVersion"
                } else {
                    "s3:DeleteObject"
                };
                vec![on(action).with(keys)]
            }
            // Each key is authorized where it is deleted.
            "DeleteObjects" => Vec::new(),
            "GetObjectTagging" if self.versioned() => vec![on("s3:GetObjectVersionTagging")],
            "GetObjectTagging" => vec![on("s3:GetObjectTagging")],
            "PutObjectTagging" if self.versioned() => vec![on("s3:PutObjectVersionTagging")],
            "PutObjectTagging" => vec![on("s3:PutObjectTagging")],
            "GetObjectRetention" => vec![on("s3:GetObjectRetention")],
            "PutObjectRetention" => vec![on("s3:PutObjectRetention")],
            "GetObjectLegalHold" => vec![on("s3:GetObjectLegalHold")],
            "PutObjectLegalHold" => vec![on("s3:PutObjectLegalHold")],
            "RestoreObject" => vec![on("s3:RestoreObject")],
            "ListObjectVersions" => vec![on("s3:ListBucketVersions")],
            "ListObjects" | "ListObjectsV2" | "HeadBucket" => vec![on("s3:ListBucket")],
            "ListBuckets" => vec![on("s3:ListAllMyBuckets")],
            "CreateBucket" => {
                let mut v = vec![on("s3:CreateBucket")];
                if self.header("x-amz-bucket-object-lock-enabled") == Some("true") {
                    v.push(on("s3:PutBucketObjectLockConfiguration"));
                    v.push(on("s3:PutBucketVersioning"));
                }
                v
            }
            "PutBucketVersioning" => vec![on("s3:PutBucketVersioning")],
            "GetBucketVersioning" => vec![on("s3:GetBucketVersioning")],
            "GetBucketLifecycleConfiguration" => vec![on("s3:GetLifecycleConfiguration")],
            "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => {
                vec![on("s3:PutLifecycleConfiguration")]
            }
            "GetObjectLockConfiguration" => vec![on("s3:GetBucketObjectLockConfiguration")],
            "PutObjectLockConfiguration" => vec![on("s3:PutBucketObjectLockConfiguration")],
            "GetBucketReplication" => vec![on("s3:GetReplicationConfiguration")],
            "PutBucketReplication" => vec![on("s3:PutReplicationConfiguration")],
            "GetBucketEncryption" => vec![on("s3:GetEncryptionConfiguration")],
            "PutBucketEncryption" => vec![on("s3:PutEncryptionConfiguration")],
            "GetBucketRequestPayment" => vec![on("s3:GetBucketRequestPayment")],
            "PutBucketRequestPayment" => vec![on("s3:PutBucketRequestPayment")],
            "GetBucketOwnershipControls" => vec![on("s3:GetBucketOwnershipControls")],
            "PutBucketOwnershipControls" => vec![on("s3:PutBucketOwnershipControls")],
            "GetBucketPolicy" => vec![on("s3:GetBucketPolicy")],
            "PutBucketPolicy" => vec![on("s3:PutBucketPolicy")],
            "DeleteBucketPolicy" => vec![on("s3:DeleteBucketPolicy")],
            // Operations s3sim does not implement answer NotImplemented.
            _ => Vec::new(),
        };
        if matches!(self.op, "CopyObject" | "UploadPartCopy") {
            if let Some(CopySource::Bucket {
                bucket,
                key,
                version_id,
            }) = self
                .header("x-amz-copy-source")
                .and_then(|h| CopySource::parse(h).ok())
            {
                let action = if version_id.is_some() {
                    "s3:GetObjectVersion"
                } else {
                    "s3:GetObject"
                };
                needs.push(Need::on(action, Some(&bucket), Some(&key)));
            }
        }
        let conditional_read = self.header("if-match").is_some_and(|m| m.trim() != "*");
        if conditional_read
            && matches!(
                self.op,
                "PutObject" | "CompleteMultipartUpload" | "DeleteObject"
            )
        {
            needs.push(on("s3:GetObject"));
        }
        if matches!(
            self.op,
            "PutObject" | "CopyObject" | "CreateMultipartUpload"
        ) {
            if self.has("x-amz-object-lock-mode") || self.has("x-amz-object-lock-retain-until-date")
            {
                needs.push(on("s3:PutObjectRetention"));
            }
            if self.has("x-amz-object-lock-legal-hold") {
                needs.push(on("s3:PutObjectLegalHold"));
            }
        }
        if self
            .header("x-amz-bypass-governance-retention")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            needs.push(on("s3:BypassGovernanceRetention"));
        }
        needs
    }
}

/// Why a request is refused: the principal, the action, the resource,
/// and whether a policy said no or nothing said yes.
fn denied(principal: &Principal, action: &str, resource: &str, explicit: bool) -> S3Error {
    let why = if explicit {
        "with an explicit deny in a resource-based policy".to_owned()
    } else {
        format!("because no identity-based policy allows the {action} action")
    };
    s3_error!(
        AccessDenied,
        "User: {} is not authorized to perform: {action} on resource: \"{resource}\" {why}",
        principal.arn
    )
}

impl Sim {
    /// Whether `principal` may do `need`.
    fn permit(&self, principal: &Principal, need: &Need) -> S3Result<()> {
        // The account's root user can always manage the bucket policy
        // (PutBucketPolicy API reference: "even if the policy explicitly
        // denies the root user").
        if principal.is_root() && need.action.ends_with("BucketPolicy") {
            return Ok(());
        }
        let resource = match (&need.bucket, &need.key) {
            (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
            (Some(b), None) => format!("arn:aws:s3:::{b}"),
            _ => "*".to_owned(),
        };
        let policy = need
            .bucket
            .as_deref()
            .and_then(|b| self.settings.with_bucket(b, |s| s.policy.clone()));
        let verdict = policy.and_then(|p| {
            p.decide(&Ask {
                principal,
                action: need.action,
                resource: &resource,
                keys: need.keys,
            })
        });
        match verdict {
            Some(Effect::Deny) => Err(denied(principal, need.action, &resource, true)),
            Some(Effect::Allow) => Ok(()),
            None if principal.allows(need.action) => Ok(()),
            None => Err(denied(principal, need.action, &resource, false)),
        }
    }

    /// No bucket policy can refuse this principal anything, nor does it
    /// lack a permission.
    fn unrestricted(&self, principal: &Principal) -> bool {
        principal.allows_everything() && !self.settings.has_policies()
    }

    fn authorize(&self, requester: &Requester, request: &Request) -> S3Result<()> {
        let principal = &requester.principal;
        if self.unrestricted(principal) {
            return Ok(());
        }
        for need in request.needs() {
            let conditional = need.keys.if_match || need.keys.if_none_match;
            if request.op == "CopyObject" && need.action == "s3:PutObject" && conditional {
                // A policy that enforces conditional writes refuses every
                // CopyObject: 403 without the headers, 501 with them
                // ("Enforce conditional writes", S3 user guide).
                let unconditional =
                    Need::on(need.action, need.bucket.as_deref(), need.key.as_deref()).with(
                        ConditionKeys {
                            object_creation: Some(true),
                            ..ConditionKeys::default()
                        },
                    );
                if self.permit(principal, &unconditional).is_err()
                    && self.permit(principal, &need).is_ok()
                {
                    return Err(s3_error!(
                        NotImplemented,
                        "A header you provided implies functionality that is not implemented"
                    ));
                }
            }
            self.permit(principal, &need)?;
        }
        Ok(())
    }

    /// The requester of a signed request.
    fn requester(
        &self,
        credentials: Option<&Credentials>,
        address: Option<ClientAddr>,
    ) -> S3Result<Arc<Requester>> {
        let Some(credentials) = credentials else {
            return Err(s3_error!(AccessDenied, "Anonymous access is not allowed"));
        };
        let pair = self
            .keys
            .get(&credentials.access_key)
            .ok_or_else(|| s3_error!(InvalidAccessKeyId))?;
        Ok(Arc::new(Requester {
            principal: pair.principal.clone(),
            address: address.map(|a| a.0),
        }))
    }

    /// Authorizes ListObjectVersions, which s3sim routes itself, and
    /// leaves its [`Requester`] in its extensions.
    pub(crate) fn admit_route(&self, op: &str, req: &mut S3Request<s3s::Body>) -> S3Result<()> {
        let address = req.extensions.get::<ClientAddr>().copied();
        let requester = self.requester(req.credentials.as_ref(), address)?;
        let verdict = if self.unrestricted(&requester.principal) {
            Ok(())
        } else {
            let path = req.uri.path().trim_start_matches('/');
            let bucket = crate::s3impl::form_decode(path.trim_end_matches('/'));
            self.authorize(
                &requester,
                &Request {
                    op,
                    bucket: Some(&bucket),
                    key: None,
                    query: req.uri.query(),
                    headers: &req.headers,
                },
            )
        };
        req.extensions.insert(requester);
        verdict
    }

    /// Whether the requester may do `action` on an object: what a HEAD or
    /// GET shows of Object Lock depends on it.
    pub(crate) fn may(
        &self,
        requester: Option<&Requester>,
        action: &'static str,
        bucket: &str,
        key: &str,
    ) -> bool {
        requester.is_some_and(|r| {
            self.unrestricted(&r.principal)
                || self
                    .permit(&r.principal, &Need::on(action, Some(bucket), Some(key)))
                    .is_ok()
        })
    }

    /// Authorizes one key of a DeleteObjects request: its refusal is that
    /// key's `<Error>`, the other keys go on.
    pub(crate) fn may_delete(
        &self,
        requester: Option<&Requester>,
        bucket: &str,
        key: &str,
        versioned: bool,
        etag: Option<&str>,
    ) -> S3Result<()> {
        let Some(requester) = requester else {
            return Err(s3_error!(AccessDenied, "Anonymous access is not allowed"));
        };
        if self.unrestricted(&requester.principal) {
            return Ok(());
        }
        let action = if versioned {
            "s3:DeleteObjectVersion"
        } else {
            "s3:DeleteObject"
        };
        let keys = ConditionKeys {
            if_match: etag.is_some(),
            ..ConditionKeys::default()
        };
        self.permit(
            &requester.principal,
            &Need::on(action, Some(bucket), Some(key)).with(keys),
        )?;
        if etag.is_some_and(|e| e.trim() != "*") {
            self.permit(
                &requester.principal,
                &Need::on("s3:GetObject", Some(bucket), Some(key)),
            )?;
        }
        Ok(())
    }
}

/// The requester an operation runs for (left by the access check).
pub(crate) fn requester_of<T>(req: &S3Request<T>) -> Option<Arc<Requester>> {
    req.extensions.get::<Arc<Requester>>().cloned()
}

#[async_trait::async_trait]
impl S3Access for Sim {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let address = cx.extensions_mut().get::<ClientAddr>().copied();
        let requester = self.requester(cx.credentials(), address)?;
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(&**bucket), None),
            S3Path::Object { bucket, key } => (Some(&**bucket), Some(&**key)),
        };
        let verdict = self.authorize(
            &requester,
            &Request {
                op: cx.s3_op().name(),
                bucket,
                key,
                query: cx.uri().query(),
                headers: cx.headers(),
            },
        );
        cx.extensions_mut().insert(requester);
        verdict
    }
}
