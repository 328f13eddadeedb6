//! The S3 client: configuration, and the requests behind the calls of the
//! other modules (one attempt each: the pacer repeats them).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_s3::primitives::SdkBody;
use aws_sdk_s3::types::EncodingType;
use aws_smithy_runtime_api::box_error::BoxError;
use bytes::Bytes;
use model::Versioning;

use crate::error::ErrorKind;
use crate::listing::{parse_list_header, parse_list_versions, ListPage, ListRequest};
use crate::pacer::{Counters, Pace, Pacer, Retry};
use crate::S3Error;

/// How to reach S3 (`None` means "whatever the AWS environment says"), and
/// how hard to push it.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub pace: Pace,
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

/// An S3 client as s3rewind uses it: every call goes through its [`Pacer`].
#[derive(Clone)]
pub struct S3 {
    client: aws_sdk_s3::Client,
    /// The same, for the calls that copy bytes inside S3 (CopyObject,
    /// UploadPartCopy, CompleteMultipartUpload): without a limit on an
    /// attempt's length, as S3 keeps such a connection alive with
    /// whitespace while it works, and a client that gives up may leave the
    /// copy's outcome unknown. The limit between bytes stays.
    copy_client: aws_sdk_s3::Client,
    endpoint: Option<String>,
    region: String,
    pub(crate) pacer: Arc<Pacer>,
}

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
        let timeouts = || {
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
        };
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk_config)
            .region(Region::new(region.clone()))
            // One attempt per request: the pacer owns every retry.
            .retry_config(RetryConfig::disabled())
            .endpoint_resolver(crate::endpoint::CachedResolver::default())
            .timeout_config(
                timeouts()
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .build(),
            );
        if let Some(endpoint) = &endpoint {
            builder = builder.endpoint_url(endpoint).force_path_style(true);
        }
        // Built from the same builder: the two share one connection pool.
        let copy_client = aws_sdk_s3::Client::from_conf(
            builder
                .clone()
                .timeout_config(timeouts().disable_operation_attempt_timeout().build())
                .build(),
        );
        S3 {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            copy_client,
            endpoint,
            region,
            pacer: Arc::new(Pacer::new(options.pace)),
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
        self.pacer.counters()
    }

    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// The SDK client, for the requests of this crate's other modules.
    pub(crate) fn sdk(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The SDK client for copies inside S3 (see the field).
    pub(crate) fn copy_sdk(&self) -> &aws_sdk_s3::Client {
        &self.copy_client
    }

    /// Checks that the bucket is reachable and says whether it is versioned.
    /// Fails fast when nothing answers (few retries): it is the first call
    /// of every command, and a wrong endpoint is best reported at once.
    pub async fn bucket_versioning(&self, bucket: &str) -> Result<Versioning, S3Error> {
        Ok(self.versioning_status(bucket).await?.0)
    }

    /// The bucket's versioning, and whether MFA Delete is on.
    pub(crate) async fn versioning_status(
        &self,
        bucket: &str,
    ) -> Result<(Versioning, bool), S3Error> {
        let (status, mfa) = self
            .pacer
            .call("", Retry::Few, || async {
                let body = TakeBody::new(b"<VersioningConfiguration/>");
                let result = self
                    .sdk()
                    .get_bucket_versioning()
                    .bucket(bucket)
                    .customize()
                    .interceptor(body.clone())
                    .send()
                    .await;
                // Read the status ourselves: some servers (moto) name the root
                // element differently, which the SDK would refuse.
                match (result, body.take()) {
                    (Ok(_), Some(xml)) => Ok((
                        crate::xml::element_text(&xml, "Status"),
                        crate::xml::element_text(&xml, "MfaDelete"),
                    )),
                    (Ok(out), None) => Ok((
                        out.status().map(|s| s.as_str().to_owned()),
                        out.mfa_delete().map(|s| s.as_str().to_owned()),
                    )),
                    (Err(e), _) => Err(S3Error::from_sdk("GetBucketVersioning", bucket, e)),
                }
            })
            .await?;
        let versioning = match status.as_deref() {
            Some("Enabled") => Versioning::Enabled,
            Some("Suspended") => Versioning::Suspended,
            _ => Versioning::Never,
        };
        Ok((versioning, mfa.as_deref() == Some("Enabled")))
    }

    /// One ListObjectVersions request (`EncodingType=url`), one attempt, its
    /// page not yet parsed: a scan reads its paging fields first, asks for
    /// the next page, and parses this one meanwhile.
    pub(crate) async fn list_once(
        &self,
        bucket: &str,
        request: &ListRequest,
        max_keys: i32,
    ) -> Result<RawListPage, S3Error> {
        let body = TakeBody::new(b"<ListVersionsResult/>");
        let mut call = self
            .sdk()
            .list_object_versions()
            .bucket(bucket)
            .encoding_type(EncodingType::Url)
            .max_keys(max_keys);
        if !request.prefix.is_empty() {
            call = call.prefix(&request.prefix);
        }
        if let Some(delimiter) = &request.delimiter {
            call = call.delimiter(delimiter);
        }
        if let Some(marker) = &request.key_marker {
            call = call.key_marker(marker);
            if let Some(version) = &request.version_id_marker {
                call = call.version_id_marker(version);
            }
        }
        call.customize()
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
        Ok(RawListPage {
            bytes,
            bucket: bucket.to_owned(),
        })
    }

    /// One ListObjectVersions page, parsed and checked against its request,
    /// with the call policy's retries (a page cut short is fetched again).
    pub(crate) async fn list_page(
        &self,
        bucket: &str,
        request: &ListRequest,
        max_keys: i32,
    ) -> Result<ListPage, S3Error> {
        self.pacer
            .call(&request.prefix, Retry::Idempotent, || async {
                self.list_once(bucket, request, max_keys).await?.parse()
            })
            .await
    }
}

/// A ListVersionsResult document as received.
#[derive(Debug, Clone)]
pub(crate) struct RawListPage {
    bytes: Bytes,
    bucket: String,
}

impl RawListPage {
    /// The paging fields (IsTruncated, the next markers) without the entries,
    /// if the document gives them before its first entry.
    pub(crate) fn header(&self) -> Option<ListPage> {
        parse_list_header(&self.bytes)
    }

    pub(crate) fn parse(&self) -> Result<ListPage, S3Error> {
        parse_list_versions(&self.bytes, &self.bucket)
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
