//! S3 errors, classified by what the caller should do about them.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// What an error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 503 SlowDown and friends: back off and try again, never give up.
    Throttled,
    /// 500s, timeouts, resets, truncated bodies: try again a bounded number of times.
    Transient,
    /// The named object or version does not exist.
    NotFound,
    /// Retrying cannot help (permissions, missing bucket, bad credentials, bad request).
    Fatal,
    /// A conditional write refused: the key is not as the condition said
    /// (412 PreconditionFailed).
    ConditionFailed,
    /// A reply that is not what S3 sends (a listing whose markers do not
    /// advance, an entry without a key, …): the work it was for stops, and
    /// nothing of that reply is used.
    Invalid,
}

/// An S3 call that failed, with a message a person can act on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed: {detail}{}", advice.as_deref().map(|a| format!("\n  hint: {a}")).unwrap_or_default())]
pub struct S3Error {
    pub kind: ErrorKind,
    pub operation: &'static str,
    /// S3's error code (`AccessDenied`, `SlowDown`, …) when it sent one.
    pub code: Option<String>,
    pub detail: String,
    pub advice: Option<String>,
}

impl S3Error {
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throttled | ErrorKind::Transient)
    }

    /// Whether the call may have taken effect although it failed: a 500, a
    /// timeout, a connection lost before the answer arrived. (503 SlowDown
    /// means S3 refused the request.) Calls that are not idempotent must
    /// look before they retry.
    pub fn may_have_succeeded(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// Errors after which no other call can succeed either (credentials,
    /// bucket, region): a run stops instead of failing every action.
    pub fn stops_the_run(&self) -> bool {
        const RUN_WIDE: &[&str] = &[
            "NoSuchBucket",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "TokenRefreshRequired",
            "PermanentRedirect",
            "AuthorizationHeaderMalformed",
            "AllAccessDisabled",
            "AccountProblem",
        ];
        match &self.code {
            Some(code) => RUN_WIDE.contains(&code.as_str()),
            None => self.kind == ErrorKind::Fatal,
        }
    }

    /// `Code: message`, as recorded on a failed action.
    pub fn code_and_message(&self) -> String {
        match &self.code {
            Some(code) if self.detail.starts_with(code.as_str()) => self.detail.clone(),
            Some(code) => format!("{code}: {}", self.detail),
            None if self.kind == ErrorKind::Invalid => format!("InvalidReply: {}", self.detail),
            None => format!("ClientError: {}", self.detail),
        }
    }

    /// A response we could not read: worth retrying (it may be cut short).
    pub(crate) fn malformed(operation: &'static str, detail: String) -> S3Error {
        S3Error {
            kind: ErrorKind::Transient,
            operation,
            code: None,
            detail: format!("unreadable response: {detail}"),
            advice: None,
        }
    }

    /// A response we could read, but which is not what S3 sends.
    pub(crate) fn invalid(operation: &'static str, detail: String) -> S3Error {
        S3Error {
            kind: ErrorKind::Invalid,
            operation,
            code: None,
            detail: format!("the server's reply is not a valid answer: {detail}"),
            advice: Some(
                "the endpoint may not be S3 (check --endpoint-url), or something between altered the reply; nothing of it was stored"
                    .into(),
            ),
        }
    }

    #[cfg(test)]
    pub(crate) fn for_test(kind: ErrorKind) -> S3Error {
        S3Error {
            kind,
            operation: "Test",
            code: None,
            detail: format!("{kind:?}"),
            advice: None,
        }
    }

    /// Classifies an S3 error code (or HTTP status, when there is no code).
    pub fn from_code(
        operation: &'static str,
        code: &str,
        status: Option<u16>,
        message: &str,
        bucket: &str,
    ) -> S3Error {
        let (kind, advice) = classify(code, status, bucket);
        let detail = match (code.is_empty(), message.is_empty()) {
            (false, false) => format!("{code}: {message}"),
            (false, true) => code.to_owned(),
            _ => format!("HTTP {}", status.map_or("error".into(), |s| s.to_string())),
        };
        S3Error {
            kind,
            operation,
            code: (!code.is_empty()).then(|| code.to_owned()),
            detail,
            advice,
        }
    }

    pub(crate) fn from_sdk<E>(
        operation: &'static str,
        bucket: &str,
        err: SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match &err {
            // An `<Error>` inside a 200: S3 documents it for CopyObject,
            // UploadPartCopy and CompleteMultipartUpload, for an error that
            // happened while the copy ran (API reference, CopyObject). Its
            // code says what it is; whatever it is, the write's outcome is
            // looked at before it is sent again.
            SdkError::ServiceError(service)
                if service.raw().status().is_success() && service.err().code().is_some() =>
            {
                let code = service.err().code().unwrap_or_default();
                let message = service.err().message().unwrap_or_default();
                let mut e = S3Error::from_code(operation, code, Some(200), message, bucket);
                e.detail = format!("{} (inside a 200 OK)", e.detail);
                if e.is_retryable() {
                    e.kind = ErrorKind::Transient;
                }
                e
            }
            // A success status whose body the SDK could not read as the
            // operation's answer (a server that does not know the request
            // and answers something else): not what S3 sends.
            SdkError::ServiceError(service) if service.raw().status().is_success() => {
                S3Error::invalid(operation, chain(&err))
            }
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code().unwrap_or_default().to_owned();
                let message = service.err().message().unwrap_or_default().to_owned();
                // HEAD responses carry no body, hence no code: name the status.
                let code = if code.is_empty() {
                    status_code_name(status).to_owned()
                } else {
                    code
                };
                let mut e = S3Error::from_code(operation, &code, Some(status), &message, bucket);
                if e.code.is_none() {
                    e.detail = format!("{} ({})", e.detail, chain(&err));
                }
                if let Some(region) = service.raw().headers().get("x-amz-bucket-region") {
                    if status == 301
                        || code == "PermanentRedirect"
                        || code == "AuthorizationHeaderMalformed"
                    {
                        e.advice = Some(format!(
                            "bucket {bucket} is in region {region}: pass --region {region}"
                        ));
                    }
                }
                e
            }
            SdkError::TimeoutError(_) => S3Error {
                kind: ErrorKind::Transient,
                operation,
                code: None,
                detail: "timed out".into(),
                advice: None,
            },
            SdkError::ResponseError(_) => S3Error {
                kind: ErrorKind::Transient,
                operation,
                code: None,
                detail: format!("unreadable response: {}", chain(&err)),
                advice: None,
            },
            SdkError::DispatchFailure(d) => {
                let detail = chain(&err);
                if detail.contains("credentials") {
                    // The SDK's own text lists every provider it tried, over
                    // several lines: the gist is enough.
                    S3Error {
                        kind: ErrorKind::Fatal,
                        operation,
                        code: None,
                        detail: "no AWS credentials were found".into(),
                        advice: Some(
                            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE / --profile with a profile that has credentials"
                                .into(),
                        ),
                    }
                } else if d.is_user() {
                    S3Error {
                        kind: ErrorKind::Fatal,
                        operation,
                        code: None,
                        detail,
                        advice: Some("check --endpoint-url, --region and --profile".into()),
                    }
                } else {
                    // Connection refused, reset, closed early, timed out: the
                    // network, not the request.
                    S3Error {
                        kind: ErrorKind::Transient,
                        operation,
                        code: None,
                        detail: format!("could not reach S3: {detail}"),
                        advice: Some(
                            "check --endpoint-url / AWS_ENDPOINT_URL and the network".into(),
                        ),
                    }
                }
            }
            _ => S3Error {
                kind: ErrorKind::Fatal,
                operation,
                code: None,
                detail: chain(&err),
                advice: Some("check --endpoint-url, --region and --profile".into()),
            },
        }
    }
}

fn status_code_name(status: u16) -> &'static str {
    match status {
        301 => "PermanentRedirect",
        400 => "BadRequest",
        403 => "AccessDenied",
        404 => "NotFound",
        500 => "InternalError",
        503 => "SlowDown",
        _ => "",
    }
}

fn classify(code: &str, status: Option<u16>, bucket: &str) -> (ErrorKind, Option<String>) {
    let fatal = |advice: String| (ErrorKind::Fatal, Some(advice));
    match code {
        "SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequests"
        | "RequestThrottled" | "ServiceUnavailable" => (ErrorKind::Throttled, None),
        "InternalError" | "RequestTimeout" | "RequestTimeTooSkewed" | "OperationAborted"
        // 409 to a conditional write that raced another: AWS says retry.
        | "ConditionalRequestConflict" => (ErrorKind::Transient, None),
        "PreconditionFailed" => (ErrorKind::ConditionFailed, None),
        "NoSuchKey" | "NoSuchVersion" | "NotFound" if status != Some(301) => (ErrorKind::NotFound, None),
        "NoSuchBucket" => fatal(format!("bucket {bucket} does not exist here: check the name, --endpoint-url and --region")),
        "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => fatal(format!(
            "the credentials in use may not do this on bucket {bucket}: check the IAM policy, bucket policy and --profile"
        )),
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" => fatal(
            "the AWS credentials were refused: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --profile".into(),
        ),
        "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => {
            fatal(format!("bucket {bucket} is in another region: pass --region"))
        }
        "InvalidBucketName" => fatal(format!("{bucket:?} is not a valid bucket name")),
        // AWS's answer to a conditional copy where a bucket policy enforces
        // conditional writes, and to a condition on a version's delete.
        "NotImplemented" => fatal(format!(
            "bucket {bucket} refuses this request as sent: a bucket policy may enforce conditional writes (`s3rewind check` reads it)"
        )),
        _ => match status {
            Some(503) => (ErrorKind::Throttled, None),
            Some(s) if s >= 500 => (ErrorKind::Transient, None),
            _ => (ErrorKind::Fatal, None),
        },
    }
}

/// An error and its sources, as one line of their messages.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
