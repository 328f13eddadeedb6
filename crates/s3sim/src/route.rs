//! ListObjectVersions, answered with our own XML (see `xml`).

use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use s3s::route::S3Route;
use s3s::{s3_error, Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::s3impl::{form_decode, url_form_pairs};
use crate::store::{StoreError, VersionId};
use crate::xml::{list_versions_result, ListParams};
use crate::{Op, Sim};

/// Matches `GET /bucket?versions…` (path-style).
pub struct ListVersionsRoute(pub Sim);

#[async_trait::async_trait]
impl S3Route for ListVersionsRoute {
    fn is_match(
        &self,
        method: &Method,
        uri: &Uri,
        _: &HeaderMap,
        _: &mut http::Extensions,
    ) -> bool {
        let path = uri.path().trim_start_matches('/');
        method == Method::GET
            && !path.is_empty()
            && !path.trim_end_matches('/').contains('/')
            && uri.query().is_some_and(|q| {
                q.split('&')
                    .any(|p| p == "versions" || p.starts_with("versions="))
            })
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        self.0.admit_route("ListObjectVersions", req)
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let sim = &self.0;
        sim.count(Op::ListObjectVersions);
        let bucket_name = form_decode(req.uri.path().trim_matches('/'));
        let params = url_form_pairs(req.uri.query().unwrap_or(""));
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let bucket = sim.store.bucket(&bucket_name).map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::NoSuchBucket,
                "The specified bucket does not exist",
            )
        })?;
        let max_keys = match get("max-keys") {
            None => 1000,
            Some(m) => m
                .parse::<i64>()
                .ok()
                .filter(|m| *m >= 0)
                .ok_or_else(|| {
                    s3_error!(
                        InvalidArgument,
                        "Provided max-keys not an integer or within integer range"
                    )
                })?
                .min(1000) as usize,
        };
        let url_encoded = match get("encoding-type") {
            None => false,
            Some("url") => true,
            Some(_) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "Invalid Encoding Method specified in Request"
                ))
            }
        };
        let prefix = get("prefix").unwrap_or("");
        let delimiter = get("delimiter").filter(|d| !d.is_empty());
        let key_marker = get("key-marker").unwrap_or("");
        let version_id_marker = get("version-id-marker").unwrap_or("");
        let marker = match version_id_marker {
            "" => None,
            v => Some(
                VersionId::decode(v)
                    .ok_or_else(|| s3_error!(InvalidArgument, "Invalid version id specified"))?,
            ),
        };
        let page = sim
            .store
            .list_versions(
                &bucket,
                prefix,
                delimiter,
                Some(key_marker),
                marker,
                max_keys,
            )
            .map_err(|e| match e {
                StoreError::InvalidArgument(m) => {
                    S3Error::with_message(S3ErrorCode::InvalidArgument, m)
                }
                _ => s3_error!(InternalError),
            })?;
        let xml = list_versions_result(
            &ListParams {
                bucket: &bucket_name,
                prefix,
                delimiter,
                key_marker,
                version_id_marker,
                max_keys,
                url_encoded,
                dialect: sim.config.list_dialect,
            },
            &page,
        );
        let mut response = S3Response::new(Body::from(xml));
        response.status = Some(StatusCode::OK);
        response.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        Ok(response)
    }
}
