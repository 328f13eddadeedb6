//! The SDK's endpoint resolver, run once per bucket instead of twice per
//! request.
//!
//! S3's endpoint rules are a decision graph over the request's parameters
//! (bucket, region, FIPS, path style, …) that builds the URL and the signing
//! properties with string work at every step; the SDK runs them for each
//! request, and once more to choose the auth scheme. Its own cache keeps one
//! entry and compares every parameter, the object key and the copy source
//! among them, so no two copies share it. The rules never read the key, the
//! prefix or the copy source (they are declared for other SDKs' uses): what
//! they give depends on the rest only, so that is what this cache compares.

use std::sync::Mutex;

use aws_sdk_s3::config::endpoint::{
    DefaultResolver, Endpoint, EndpointFuture, Params, ResolveEndpoint,
};

/// Endpoints kept at most: a run talks to one or two buckets.
const KEPT: usize = 16;

/// [`DefaultResolver`] behind a cache keyed by what its rules read.
#[derive(Debug, Default)]
pub(crate) struct CachedResolver {
    rules: DefaultResolver,
    resolved: Mutex<Vec<(Params, Endpoint)>>,
}

impl CachedResolver {
    fn cached(&self, params: &Params) -> Option<Endpoint> {
        let resolved = self.resolved.lock().expect("not poisoned");
        resolved
            .iter()
            .find(|(p, _)| same_place(p, params))
            .map(|(_, e)| e.clone())
    }
}

impl ResolveEndpoint for CachedResolver {
    fn resolve_endpoint<'a>(&'a self, params: &'a Params) -> EndpointFuture<'a> {
        if let Some(endpoint) = self.cached(params) {
            return EndpointFuture::ready(Ok(endpoint));
        }
        EndpointFuture::new(async move {
            let endpoint = self.rules.resolve_endpoint(params).await?;
            let mut resolved = self.resolved.lock().expect("not poisoned");
            if resolved.len() < KEPT {
                resolved.push((params.clone(), endpoint.clone()));
            }
            Ok(endpoint)
        })
    }
}

/// Whether the rules give the same endpoint for `a` and `b`: every
/// parameter but the key, the prefix and the copy source is the same.
fn same_place(a: &Params, b: &Params) -> bool {
    a.bucket() == b.bucket()
        && a.region() == b.region()
        && a.use_fips() == b.use_fips()
        && a.use_dual_stack() == b.use_dual_stack()
        && a.endpoint() == b.endpoint()
        && a.force_path_style() == b.force_path_style()
        && a.accelerate() == b.accelerate()
        && a.use_global_endpoint() == b.use_global_endpoint()
        && a.use_object_lambda_endpoint() == b.use_object_lambda_endpoint()
        && a.disable_access_points() == b.disable_access_points()
        && a.disable_multi_region_access_points() == b.disable_multi_region_access_points()
        && a.use_arn_region() == b.use_arn_region()
        && a.use_s3_express_control_endpoint() == b.use_s3_express_control_endpoint()
        && a.disable_s3_express_session_auth() == b.disable_s3_express_session_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameters `same_place` compares, and those it leaves out. A
    /// new SDK that adds one fails here: look whether the rules read it.
    #[test]
    fn every_parameter_is_compared_or_known_to_be_unread() {
        let debug = format!("{:?}", Params::builder().build().unwrap());
        let inner = &debug[debug.find('{').unwrap() + 1..debug.rfind('}').unwrap()];
        let mut fields: Vec<&str> = inner
            .split(", ")
            .map(|f| f.split(':').next().unwrap().trim())
            .collect();
        fields.sort_unstable();
        let mut known = vec![
            "bucket",
            "region",
            "use_fips",
            "use_dual_stack",
            "endpoint",
            "force_path_style",
            "accelerate",
            "use_global_endpoint",
            "use_object_lambda_endpoint",
            "disable_access_points",
            "disable_multi_region_access_points",
            "use_arn_region",
            "use_s3_express_control_endpoint",
            "disable_s3_express_session_auth",
            // Not read by the rules:
            "key",
            "prefix",
            "copy_source",
        ];
        known.sort_unstable();
        assert_eq!(fields, known);
    }

    fn params(endpoint: Option<&str>, bucket: &str, key: &str, source: Option<&str>) -> Params {
        Params::builder()
            .bucket(bucket)
            .region("eu-west-1")
            .set_endpoint(endpoint.map(str::to_owned))
            .force_path_style(endpoint.is_some())
            .key(key)
            .set_copy_source(source.map(str::to_owned))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn the_endpoint_depends_on_the_bucket_not_the_key() {
        let rules = DefaultResolver::new();
        let cached = CachedResolver::default();
        for endpoint in [None, Some("http://127.0.0.1:9000")] {
            for bucket in ["photos", "logs.example", "b--x-s3"] {
                for (key, source) in [
                    ("a", None),
                    ("p007/é ?x=1", Some("photos/k?versionId=v1")),
                    ("", Some("other/k")),
                ] {
                    let p = params(endpoint, bucket, key, source);
                    let direct = rules.resolve_endpoint(&p).await;
                    let through = cached.resolve_endpoint(&p).await;
                    match (direct, through) {
                        (Ok(d), Ok(t)) => {
                            assert_eq!(d, t, "{p:?}");
                            assert_eq!(Some(&d), cached.cached(&p).as_ref(), "{p:?} is cached");
                        }
                        (Err(d), Err(t)) => assert_eq!(d.to_string(), t.to_string()),
                        (d, t) => panic!("{p:?}: {d:?} against {t:?}"),
                    }
                }
            }
        }
    }
}
