//! s3sim against a real S3 client (the AWS SDK, and s3rewind's own listing
//! parser), on the points where it must behave like AWS and unlike moto.

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, Delete, EncodingType, ObjectIdentifier, VersioningConfiguration,
};
use s3sim::{Config, Faults, Sim};

async fn start(config: Config) -> (s3sim::Server, aws_sdk_s3::Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Sim::new(config.clone());
    let server = s3sim::serve(sim, listener).unwrap();
    let client = client(&server, &config.access_key, &config.secret_key);
    (server, client)
}

fn client(server: &s3sim::Server, key: &str, secret: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", server.addr))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn versioned_bucket(c: &aws_sdk_s3::Client, name: &str) {
    c.create_bucket().bucket(name).send().await.unwrap();
    c.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

async fn put(c: &aws_sdk_s3::Client, b: &str, k: &str, body: &str) -> String {
    c.put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn listing_interleaves_markers_encodes_keys_and_honours_markers() {
    let (server, c) = start(Config::default()).await;
    versioned_bucket(&c, "bkt").await;
    let v1 = put(&c, "bkt", "a key\nwith newline", "1").await;
    let m = c
        .delete_object()
        .bucket("bkt")
        .key("a key\nwith newline")
        .send()
        .await
        .unwrap();
    let v2 = put(&c, "bkt", "a key\nwith newline", "2").await;
    put(&c, "bkt", "z", "z").await;

    // The document itself interleaves versions and markers per key, and
    // s3rewind's parser reads it back in that order, keys decoded.
    let bucket = server.sim.store.bucket("bkt").unwrap();
    let page = server
        .sim
        .store
        .list_versions(&bucket, "", None, None, None, 1000)
        .unwrap();
    let xml = s3sim::xml::list_versions_result(
        &s3sim::xml::ListParams {
            bucket: "bkt",
            prefix: "",
            delimiter: None,
            key_marker: "",
            version_id_marker: "",
            max_keys: 1000,
            url_encoded: true,
            dialect: s3sim::xml::Dialect::Aws,
        },
        &page,
    );
    let v = xml.find("<Version>").unwrap();
    let d = xml.find("<DeleteMarker>").unwrap();
    assert!(v < d && xml[d..].contains("<Version>"), "{xml}");
    let parsed = s3io::parse_list_versions(xml.as_bytes(), "b").unwrap();
    let order: Vec<(&str, &str)> = parsed
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.version_id.as_str()))
        .collect();
    assert_eq!(
        order[..3],
        [
            ("a key\nwith newline", v2.as_str()),
            ("a key\nwith newline", m.version_id().unwrap()),
            ("a key\nwith newline", v1.as_str())
        ]
    );

    let page = c
        .list_object_versions()
        .bucket("bkt")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(page.encoding_type(), Some(&EncodingType::Url));
    let keys: Vec<&str> = page.versions().iter().map(|v| v.key().unwrap()).collect();
    assert_eq!(keys, ["a+key%0Awith+newline", "a+key%0Awith+newline", "z"]);
    let ids: Vec<&str> = page
        .versions()
        .iter()
        .map(|v| v.version_id().unwrap())
        .collect();
    assert_eq!(ids, [v2.as_str(), v1.as_str(), ids[2]]);
    assert_eq!(page.delete_markers()[0].version_id(), m.version_id());

    // A key marker alone skips every version of that key.
    let page = c
        .list_object_versions()
        .bucket("bkt")
        .key_marker("a key\nwith newline")
        .send()
        .await
        .unwrap();
    assert_eq!(page.versions().len(), 1);
    assert!(page.delete_markers().is_empty());
    // With a version id marker, it continues inside the key.
    let page = c
        .list_object_versions()
        .bucket("bkt")
        .key_marker("a key\nwith newline")
        .version_id_marker(&v2)
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.delete_markers().len(), 1);
    assert!(page.versions().is_empty());
    assert_eq!(page.is_truncated(), Some(true));
    assert_eq!(page.next_version_id_marker(), m.version_id());
    server.stop().await;
}

#[tokio::test]
async fn missing_versions_are_errors_and_bad_signatures_are_refused() {
    let (server, c) = start(Config::default()).await;
    versioned_bucket(&c, "bkt").await;
    let v = put(&c, "bkt", "k", "1").await;
    let out = c
        .delete_objects()
        .bucket("bkt")
        .delete(
            Delete::builder()
                .quiet(true)
                .objects(
                    ObjectIdentifier::builder()
                        .key("k")
                        .version_id(&v)
                        .build()
                        .unwrap(),
                )
                .objects(
                    ObjectIdentifier::builder()
                        .key("k")
                        .version_id(&v)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // The second delete of the same version: it is gone, and S3 says so.
    assert_eq!(out.errors().len(), 1);
    assert_eq!(out.errors()[0].code(), Some("NoSuchVersion"));
    assert!(out.deleted().is_empty(), "quiet mode lists only errors");

    let err = c
        .get_object()
        .bucket("bkt")
        .key("k")
        .version_id(&v)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
        Some("NoSuchVersion")
    );

    let wrong = client(&server, "s3sim", "not-the-secret");
    let err = wrong.list_buckets().send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
    server.stop().await;
}

#[tokio::test]
async fn faults_are_injected_and_counted() {
    let config = Config {
        faults: Faults {
            slow_down: 1.0,
            ..Faults::default()
        },
        ..Config::default()
    };
    let (server, c) = start(config).await;
    let err = c.list_buckets().send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
        Some("SlowDown")
    );
    assert_eq!(server.sim.counters.get(s3sim::Op::InjectedSlowDown), 1);
    server.stop().await;

    let config = Config {
        faults: Faults {
            delete_slow_down: 1.0,
            ..Faults::default()
        },
        ..Config::default()
    };
    let (server, c) = start(config).await;
    versioned_bucket(&c, "bkt").await;
    let v = put(&c, "bkt", "k", "1").await;
    let out = c
        .delete_objects()
        .bucket("bkt")
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("k")
                        .version_id(&v)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.errors()[0].code(),
        Some("SlowDown"),
        "SlowDown inside a 200 body"
    );
    let report = server.sim.counters.report();
    assert!(
        report.contains("DeleteObjects 1") && report.contains("InjectedDeleteSlowDown 1"),
        "{report}"
    );
    server.stop().await;
}

#[tokio::test]
async fn conditional_copies_are_refused_as_aws_refuses_them() {
    let (_server, c) = start(Config::default()).await;
    versioned_bucket(&c, "bkt").await;
    let v1 = put(&c, "bkt", "k", "one").await;
    put(&c, "bkt", "k", "two").await;
    let etag_of_two = c
        .head_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    let copy = || {
        c.copy_object()
            .bucket("bkt")
            .key("k")
            .copy_source(format!("bkt/k?versionId={v1}"))
    };
    let status = |e: aws_sdk_s3::error::SdkError<_, aws_sdk_s3::config::http::HttpResponse>| {
        e.raw_response().map(|r| r.status().as_u16())
    };
    // The current object is not what the condition says: 412, nothing written.
    let e = copy().if_match("\"0123\"").send().await.unwrap_err();
    assert_eq!(status(e), Some(412));
    let e = copy().if_none_match("*").send().await.unwrap_err();
    assert_eq!(status(e), Some(412));
    // It is: the copy lands.
    copy().if_match(&etag_of_two).send().await.unwrap();
    // If-Match on a key with no current object: 404, as AWS answers.
    c.delete_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    let e = copy().if_match(&etag_of_two).send().await.unwrap_err();
    assert_eq!(status(e), Some(404));
    copy().if_none_match("*").send().await.unwrap();

    // A server that ignores conditions, for the clients that must notice.
    let (_server, c) = start(Config {
        ignore_conditions: true,
        ..Config::default()
    })
    .await;
    versioned_bucket(&c, "bkt").await;
    let v1 = put(&c, "bkt", "k", "one").await;
    c.copy_object()
        .bucket("bkt")
        .key("k")
        .copy_source(format!("bkt/k?versionId={v1}"))
        .if_match("\"0123\"")
        .send()
        .await
        .unwrap();
}
