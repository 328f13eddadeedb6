//! The S3 client: configuration, counters, and the calls s3rewind makes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_s3::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_s3::primitives::SdkBody;
use aws_sdk_s3::types::EncodingType;
use aws_smithy_runtime_api::box_error::BoxError;
use bytes::Bytes;

use crate::error::ErrorKind;
use crate::{parse_list_versions, ListPage, S3Error, Versioning};

/// How to reach S3; `None` means "whatever the AWS environment says".
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// Requests sent (every attempt, retries included) and calls made.
#[derive(Debug, Default)]
pub struct Counters {
    attempts: AtomicU64,
    calls: AtomicU64,
    throttled: AtomicU64,
}

impl Counters {
    /// HTTP requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Requests that were retries of an earlier attempt.
    pub fn retries(&self) -> u64 {
        self.requests()
            .saturating_sub(self.calls.load(Ordering::Relaxed))
    }

    /// Responses that said "slow down" (HTTP 503), retried or not.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
}

/// Counts every attempt the SDK makes, so retries show in summaries.
#[derive(Debug)]
struct CountAttempts(Arc<Counters>);

impl Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "s3rewind.CountAttempts"
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context
            .response()
            .is_some_and(|r| r.status().as_u16() == 503)
        {
            self.0.throttled.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Takes the body of a successful response for our own parser and hands
/// the SDK a stand-in document, so a page is parsed once (by us, keeping
/// S3's order), not twice. See `listing`.
#[derive(Debug, Clone)]
struct TakeBody {
    taken: Arc<Mutex<Option<Bytes>>>,
    /// What the SDK's deserializer gets instead (an empty document of the
    /// root element it expects).
    stand_in: &'static [u8],
}

impl TakeBody {
    fn new(stand_in: &'static [u8]) -> TakeBody {
        TakeBody {
            taken: Arc::default(),
            stand_in,
        }
    }

    fn take(&self) -> Option<Bytes> {
        self.taken.lock().expect("not poisoned").take()
    }
}

impl Intercept for TakeBody {
    fn name(&self) -> &'static str {
        "s3rewind.TakeBody"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        if response.status().is_success() {
            let inner = std::mem::replace(response.body_mut(), SdkBody::taken());
            // Sized once from Content-Length: a growing buffer would hold up to
            // twice a page, times every page in flight.
            let size = http_body::Body::size_hint(&inner).lower() as usize;
            *response.body_mut() = SdkBody::from_body_1_x(Tee {
                inner,
                buffer: bytes::BytesMut::with_capacity(size),
                sink: self.taken.clone(),
                stand_in: Some(self.stand_in),
            });
        }
        Ok(())
    }
}

/// Reads the real body into `sink`, then yields the stand-in.
struct Tee {
    inner: SdkBody,
    buffer: bytes::BytesMut,
    sink: Arc<Mutex<Option<Bytes>>>,
    stand_in: Option<&'static [u8]>,
}

impl http_body::Body for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        use std::task::Poll;
        loop {
            let Some(stand_in) = self.stand_in else {
                return Poll::Ready(None);
            };
            match std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    let body = std::mem::take(&mut self.buffer).freeze();
                    *self.sink.lock().expect("not poisoned") = Some(body);
                    self.stand_in = None;
                    return Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
                        stand_in,
                    )))));
                }
            }
        }
    }
}

/// An S3 client as s3rewind uses it.
#[derive(Clone)]
pub struct S3 {
    client: aws_sdk_s3::Client,
    endpoint: Option<String>,
    region: String,
    counters: Arc<Counters>,
}

/// Attempts the SDK makes per call (its own retry, with backoff and jitter).
/// Callers add their own retry loop on top for throttling storms.
const SDK_ATTEMPTS: u32 = 10;

impl S3 {
    /// Builds a client from the options and the standard AWS environment
    /// (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_PROFILE, the
    /// credential chain). A custom endpoint gets path-style addressing.
    pub async fn connect(options: &ClientOptions) -> S3 {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        let sdk_config = loader.load().await;
        let endpoint = options
            .endpoint_url
            .clone()
            .or_else(|| env_nonempty("AWS_ENDPOINT_URL_S3"))
            .or_else(|| sdk_config.endpoint_url().map(str::to_owned));
        // Without a region the SDK cannot sign; us-east-1 is what S3 itself assumes.
        let region = sdk_config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let counters = Arc::new(Counters::default());
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk_config)
            .region(Region::new(region.clone()))
            .retry_config(RetryConfig::adaptive().with_max_attempts(SDK_ATTEMPTS))
            // The default retry quota stops retrying after a burst of errors;
            // a throttling storm must slow us down, not stop us.
            .retry_partition(
                RetryPartition::custom("s3rewind")
                    .token_bucket(TokenBucket::unlimited())
                    .build(),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .read_timeout(Duration::from_secs(60))
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .build(),
            )
            .interceptor(CountAttempts(counters.clone()));
        if let Some(endpoint) = &endpoint {
            builder = builder.endpoint_url(endpoint).force_path_style(true);
        }
        S3 {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            endpoint,
            region,
            counters,
        }
    }

    /// The custom endpoint in use, `None` for AWS.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The SDK client, for the other crates' calls that live in this crate.
    pub(crate) fn sdk(&self) -> &aws_sdk_s3::Client {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        &self.client
    }

    /// Checks that the bucket is reachable and says whether it is versioned.
    /// Fails fast (few retries): it is the first call of every command.
    pub async fn bucket_versioning(&self, bucket: &str) -> Result<Versioning, S3Error> {
        let body = TakeBody::new(b"<VersioningConfiguration/>");
        let result = self
            .sdk()
            .get_bucket_versioning()
            .bucket(bucket)
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default()
                    .retry_config(RetryConfig::standard().with_max_attempts(3)),
            )
            .interceptor(body.clone())
            .send()
            .await;
        // Read the status ourselves: some servers (moto) name the root
        // element differently, which the SDK would refuse.
        let status = match (result, body.take()) {
            (Ok(_), Some(xml)) => crate::xml::element_text(&xml, "Status"),
            (Ok(out), None) => out.status().map(|s| s.as_str().to_owned()),
            (Err(e), _) => return Err(S3Error::from_sdk("GetBucketVersioning", bucket, e)),
        };
        Ok(match status.as_deref() {
            Some("Enabled") => Versioning::Enabled,
            Some("Suspended") => Versioning::Suspended,
            _ => Versioning::Never,
        })
    }

    /// One ListObjectVersions page (`EncodingType=url`), not yet parsed: a
    /// scan reads its paging fields first, asks for the next page, and
    /// parses this one meanwhile. `parse()` gives it decoded, in listing
    /// order. No key marker starts at the prefix's beginning.
    pub async fn list_versions_raw(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        version_id_marker: Option<&str>,
        max_keys: i32,
    ) -> Result<RawListPage, S3Error> {
        let body = TakeBody::new(b"<ListVersionsResult/>");
        let mut request = self
            .sdk()
            .list_object_versions()
            .bucket(bucket)
            .encoding_type(EncodingType::Url)
            .max_keys(max_keys);
        if !prefix.is_empty() {
            request = request.prefix(prefix);
        }
        if let Some(marker) = key_marker {
            request = request.key_marker(marker);
            if let Some(version) = version_id_marker {
                request = request.version_id_marker(version);
            }
        }
        request
            .customize()
            .interceptor(body.clone())
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("ListObjectVersions", bucket, e))?;
        let bytes = body.take().ok_or_else(|| S3Error {
            kind: ErrorKind::Transient,
            operation: "ListObjectVersions",
            code: None,
            detail: "the response body was not available".into(),
            advice: None,
        })?;
        Ok(RawListPage(bytes))
    }
}

/// A ListVersionsResult document as received.
#[derive(Debug, Clone)]
pub struct RawListPage(Bytes);

impl RawListPage {
    /// The paging fields (IsTruncated, the next markers) without the entries,
    /// if the document gives them before its first entry.
    pub fn header(&self) -> Option<ListPage> {
        crate::listing::parse_list_header(&self.0)
    }

    pub fn parse(&self) -> Result<ListPage, S3Error> {
        parse_list_versions(&self.0)
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
