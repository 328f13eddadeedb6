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

// ---- Who is calling and what they may do ----------------------------------

/// A server whose `--credentials` file holds `principals` (JSON), and a
/// client of its `--access-key` root user.
async fn start_with(principals: &str) -> (s3sim::Server, aws_sdk_s3::Client) {
    static FILES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "s3sim-conformance-{}-{}.json",
        std::process::id(),
        FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&path, principals).unwrap();
    let file = s3sim::auth::CredentialsFile::read(path.to_str().unwrap()).unwrap();
    std::fs::remove_file(&path).unwrap();
    start(Config {
        principals: file.0,
        ..Config::default()
    })
    .await
}

/// A principal of account 111122223333 that may do `allow`.
fn principal(key: &str, arn_name: &str, allow: &[&str]) -> String {
    format!(
        r#"{{"access_key":"{key}","secret_key":"{key}-secret","account_id":"111122223333",
            "arn":"arn:aws:iam::111122223333:{arn_name}","allow":{}}}"#,
        serde_json::to_string(allow).unwrap()
    )
}

fn as_principal(server: &s3sim::Server, key: &str) -> aws_sdk_s3::Client {
    client(server, key, &format!("{key}-secret"))
}

/// The HTTP status and S3 error code of a failed call.
fn refusal<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (u16, String) {
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e)
        .unwrap_or("")
        .to_owned();
    (status, code)
}

// IAM actions per operation: "Required permissions for Amazon S3 API
// operations" (S3 user guide) and the Permissions section of each operation
// in the API reference (GetObject: "If you include a versionId … you must
// have the s3:GetObjectVersion permission … s3:GetObject permission is not
// required"). An unknown access key: 403 InvalidAccessKeyId ("The AWS Access
// Key Id you provided does not exist in our records").
#[tokio::test]
async fn each_principal_signs_with_its_own_secret_and_may_do_what_it_is_allowed() {
    let creds = format!(
        "[{},{},{}]",
        principal(
            "reader",
            "user/reader",
            &["s3:GetObject", "s3:ListBucketVersions"]
        ),
        principal("writer", "role/writer", &["s3:PutObject"]),
        principal("deleter", "user/deleter", &["s3:DeleteObject"]),
    );
    let (server, root) = start_with(&creds).await;
    versioned_bucket(&root, "bkt").await;
    let v1 = put(&root, "bkt", "k", "one").await;
    put(&root, "bkt", "k", "two").await;
    let reader = as_principal(&server, "reader");
    let writer = as_principal(&server, "writer");
    let deleter = as_principal(&server, "deleter");

    let stranger = client(&server, "nobody", "whatever");
    let e = stranger.list_buckets().send().await.unwrap_err();
    assert_eq!(refusal(e), (403, "InvalidAccessKeyId".into()));
    let forger = client(&server, "reader", "s3sim-secret");
    let e = forger.list_buckets().send().await.unwrap_err();
    assert_eq!(refusal(e), (403, "SignatureDoesNotMatch".into()));

    // The current version: s3:GetObject; a version by id: s3:GetObjectVersion.
    reader
        .get_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    reader
        .head_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    let e = reader
        .get_object()
        .bucket("bkt")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    let e = reader
        .head_object()
        .bucket("bkt")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e).0, 403);
    // ListObjectVersions (s3sim's own route) needs s3:ListBucketVersions,
    // ListObjectsV2 s3:ListBucket, lifecycle s3:GetLifecycleConfiguration.
    let page = reader
        .list_object_versions()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    assert_eq!(page.versions().len(), 2);
    let e = writer
        .list_object_versions()
        .bucket("bkt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    let e = reader
        .list_objects_v2()
        .bucket("bkt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    let e = reader
        .get_bucket_lifecycle_configuration()
        .bucket("bkt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    let e = reader
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    let (status, code) = refusal(e);
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));

    // A copy reads its source: the writer may not.
    writer
        .put_object()
        .bucket("bkt")
        .key("w")
        .body(ByteStream::from_static(b"w"))
        .send()
        .await
        .unwrap();
    let e = writer
        .copy_object()
        .bucket("bkt")
        .key("copy")
        .copy_source("bkt/k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    let e = writer
        .delete_object()
        .bucket("bkt")
        .key("w")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));

    // s3:DeleteObject makes markers, but a version needs s3:DeleteObjectVersion:
    // in DeleteObjects that key alone is refused.
    deleter
        .delete_object()
        .bucket("bkt")
        .key("w")
        .send()
        .await
        .unwrap();
    let e = deleter
        .delete_object()
        .bucket("bkt")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    let out = deleter
        .delete_objects()
        .bucket("bkt")
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("k")
                        .version_id(&v1)
                        .build()
                        .unwrap(),
                )
                .objects(ObjectIdentifier::builder().key("k").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.errors().len(), 1);
    assert_eq!(out.errors()[0].code(), Some("AccessDenied"));
    assert_eq!(out.errors()[0].version_id(), Some(v1.as_str()));
    assert_eq!(out.deleted().len(), 1);
    assert_eq!(out.deleted()[0].delete_marker(), Some(true));
    // The refused version is still there.
    root.head_object()
        .bucket("bkt")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn every_version_and_marker_records_who_made_it_and_from_where() {
    let creds = format!(
        "[{}]",
        principal(
            "job",
            "role/nightly-job",
            &["s3:PutObject", "s3:DeleteObject"]
        ),
    );
    let (server, root) = start_with(&creds).await;
    versioned_bucket(&root, "bkt").await;
    put(&root, "bkt", "k", "by root").await;
    let job = as_principal(&server, "job");
    job.put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from_static(b"by the job"))
        .send()
        .await
        .unwrap();
    job.delete_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    let bucket = server.sim.store.bucket("bkt").unwrap();
    let page = server
        .sim
        .store
        .list_versions(&bucket, "", None, None, None, 10)
        .unwrap();
    let writers: Vec<(bool, String, String, String)> = page
        .entries
        .iter()
        .map(|l| {
            let w = l.entry.writer.as_deref().expect("a writer");
            (
                l.entry.is_marker(),
                w.principal.arn.clone(),
                w.principal.account_id.clone(),
                w.address.unwrap().to_string(),
            )
        })
        .collect();
    let job_arn = "arn:aws:iam::111122223333:role/nightly-job".to_owned();
    assert_eq!(
        writers,
        [
            (
                true,
                job_arn.clone(),
                "111122223333".into(),
                "127.0.0.1".into()
            ),
            (false, job_arn, "111122223333".into(), "127.0.0.1".into()),
            (
                false,
                "arn:aws:iam::123456789012:root".into(),
                "123456789012".into(),
                "127.0.0.1".into()
            ),
        ]
    );
    server.stop().await;
}

async fn lock_bucket(c: &aws_sdk_s3::Client, name: &str) {
    c.create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
}

fn in_a_day() -> aws_sdk_s3::primitives::DateTime {
    aws_sdk_s3::primitives::DateTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 86_400,
    )
}

// HeadObject (API reference): x-amz-object-lock-mode and -retain-until-date
// are returned only with s3:GetObjectRetention, x-amz-object-lock-legal-hold
// only with s3:GetObjectLegalHold, and the legal hold "is not returned if the
// specified version of this object has never had a legal hold applied".
// GetObjectLegalHold of a version never held: 404
// NoSuchObjectLockConfiguration; on a bucket without Object Lock: 400
// InvalidRequest (both as AWS answered S3Mock's verified tests, 2025).
#[tokio::test]
async fn object_lock_headers_are_shown_only_to_callers_allowed_to_read_them() {
    use aws_sdk_s3::types::{ObjectLockLegalHoldStatus, ObjectLockMode};
    let creds = format!(
        "[{},{}]",
        principal("plain", "user/plain", &["s3:GetObject"]),
        principal(
            "auditor",
            "user/auditor",
            &["s3:GetObject", "s3:GetObjectRetention"]
        ),
    );
    let (server, root) = start_with(&creds).await;
    lock_bucket(&root, "locked").await;
    root.put_object()
        .bucket("locked")
        .key("held")
        .body(ByteStream::from_static(b"x"))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(in_a_day())
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap();
    put(&root, "locked", "free", "y").await;

    let head = |c: aws_sdk_s3::Client, key: &'static str| async move {
        c.head_object()
            .bucket("locked")
            .key(key)
            .send()
            .await
            .unwrap()
    };
    let all = head(root.clone(), "held").await;
    assert_eq!(all.object_lock_mode(), Some(&ObjectLockMode::Governance));
    assert!(all.object_lock_retain_until_date().is_some());
    assert_eq!(
        all.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    let plain = head(as_principal(&server, "plain"), "held").await;
    assert_eq!(plain.object_lock_mode(), None);
    assert_eq!(plain.object_lock_retain_until_date(), None);
    assert_eq!(plain.object_lock_legal_hold_status(), None);
    let auditor = head(as_principal(&server, "auditor"), "held").await;
    assert_eq!(
        auditor.object_lock_mode(),
        Some(&ObjectLockMode::Governance)
    );
    assert_eq!(auditor.object_lock_legal_hold_status(), None);
    let got = as_principal(&server, "plain")
        .get_object()
        .bucket("locked")
        .key("held")
        .send()
        .await
        .unwrap();
    assert_eq!(got.object_lock_mode(), None);
    let got = root
        .get_object()
        .bucket("locked")
        .key("held")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );

    // Never held: no header even for root, and no configuration; once a
    // hold was set and taken off, OFF.
    assert_eq!(
        head(root.clone(), "free")
            .await
            .object_lock_legal_hold_status(),
        None
    );
    let e = root
        .get_object_legal_hold()
        .bucket("locked")
        .key("free")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (404, "NoSuchObjectLockConfiguration".into()));
    for status in [
        ObjectLockLegalHoldStatus::On,
        ObjectLockLegalHoldStatus::Off,
    ] {
        root.put_object_legal_hold()
            .bucket("locked")
            .key("free")
            .legal_hold(
                aws_sdk_s3::types::ObjectLockLegalHold::builder()
                    .status(status)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        head(root.clone(), "free")
            .await
            .object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::Off)
    );

    // The lock APIs need their own permissions.
    let e = as_principal(&server, "plain")
        .get_object_retention()
        .bucket("locked")
        .key("held")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    let e = as_principal(&server, "auditor")
        .get_object_legal_hold()
        .bucket("locked")
        .key("held")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    as_principal(&server, "auditor")
        .get_object_retention()
        .bucket("locked")
        .key("held")
        .send()
        .await
        .unwrap();
    // No Object Lock on the bucket: 400.
    versioned_bucket(&root, "plain").await;
    put(&root, "plain", "k", "x").await;
    let e = root
        .get_object_retention()
        .bucket("plain")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (400, "InvalidRequest".into()));
    server.stop().await;
}

// PutObject, CopyObject and CreateMultipartUpload take the Object Lock
// headers (API reference), only on a bucket with Object Lock (400
// InvalidRequest "Bucket is missing Object Lock Configuration"), with mode
// and date together and the date in the future (400 InvalidArgument), and
// need s3:PutObjectRetention / s3:PutObjectLegalHold.
#[tokio::test]
async fn writes_lock_what_their_headers_ask_for() {
    use aws_sdk_s3::types::{
        CompletedMultipartUpload, CompletedPart, DefaultRetention, ObjectLockConfiguration,
        ObjectLockEnabled, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetentionMode,
        ObjectLockRule,
    };
    let creds = format!(
        "[{}]",
        principal("writer", "user/writer", &["s3:PutObject"])
    );
    let (server, root) = start_with(&creds).await;
    versioned_bucket(&root, "plain").await;
    let e = root
        .put_object()
        .bucket("plain")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (400, "InvalidRequest".into()));

    lock_bucket(&root, "locked").await;
    let e = root
        .put_object()
        .bucket("locked")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .object_lock_mode(ObjectLockMode::Compliance)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (400, "InvalidArgument".into()));
    let e = root
        .put_object()
        .bucket("locked")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(1_000_000))
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (400, "InvalidArgument".into()));
    let e = as_principal(&server, "writer")
        .put_object()
        .bucket("locked")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));

    // A copy takes the retention its headers give (not the source's).
    let source = put(&root, "locked", "src", "source").await;
    let copy = root
        .copy_object()
        .bucket("locked")
        .key("copy")
        .copy_source(format!("locked/src?versionId={source}"))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(in_a_day())
        .send()
        .await
        .unwrap();
    let retention = root
        .get_object_retention()
        .bucket("locked")
        .key("copy")
        .version_id(copy.version_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        retention.retention().unwrap().mode(),
        Some(&ObjectLockRetentionMode::Governance)
    );

    // A multipart upload's hold lands on the version its completion makes.
    let up = root
        .create_multipart_upload()
        .bucket("locked")
        .key("mpu")
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap();
    let part = root
        .upload_part()
        .bucket("locked")
        .key("mpu")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();
    let done = root
        .complete_multipart_upload()
        .bucket("locked")
        .key("mpu")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let e = root
        .delete_object()
        .bucket("locked")
        .key("mpu")
        .version_id(done.version_id().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));

    // Without headers, the bucket's default retention applies (to completed
    // multipart uploads too).
    root.put_object_lock_configuration()
        .bucket("locked")
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let up = root
        .create_multipart_upload()
        .bucket("locked")
        .key("defaulted")
        .send()
        .await
        .unwrap();
    let part = root
        .upload_part()
        .bucket("locked")
        .key("defaulted")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();
    root.complete_multipart_upload()
        .bucket("locked")
        .key("defaulted")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let head = root
        .head_object()
        .bucket("locked")
        .key("defaulted")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    server.stop().await;
}

async fn set_policy(c: &aws_sdk_s3::Client, bucket: &str, policy: &str) {
    c.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .unwrap();
}

// "Enforce conditional writes on Amazon S3 buckets" (S3 user guide), example
// 2 with the Deny of writes without If-Match / If-None-Match. The page: with
// such a policy "CopyObject requests without an If-None-Match or If-Match
// HTTP header fail with a 403 Access Denied error. CopyObject requests made
// with those HTTP headers fail with a 501 Not Implemented response", and the
// s3:ObjectCreationOperation key exempts CreateMultipartUpload, UploadPart and
// UploadPartCopy, so a multipart copy whose Complete carries the header works.
#[tokio::test]
async fn bucket_policies_are_kept_as_sent_and_enforce_conditional_writes() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let creds = format!(
        "[{}]",
        principal("reader", "user/reader", &["s3:GetObject"])
    );
    let (server, root) = start_with(&creds).await;
    versioned_bucket(&root, "bkt").await;
    let source = put(&root, "bkt", "src", "source").await;
    let e = root
        .get_bucket_policy()
        .bucket("bkt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (404, "NoSuchBucketPolicy".into()));
    let e = root
        .put_bucket_policy()
        .bucket("bkt")
        .policy("{not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (400, "MalformedPolicy".into()));

    let policy = r#"{
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "BlockNonConditionalObjectCreation", "Effect": "Deny",
         "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bkt/*",
         "Condition": {"Null": {"s3:if-none-match": "true"},
                       "Bool": {"s3:ObjectCreationOperation": "true"}}},
        {"Sid": "NotAPattern", "Effect": "Deny", "Principal": "*",
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}
    ]
}"#;
    set_policy(&root, "bkt", policy).await;
    let got = root.get_bucket_policy().bucket("bkt").send().await.unwrap();
    assert_eq!(got.policy(), Some(policy), "stored as sent");
    let e = as_principal(&server, "reader")
        .get_bucket_policy()
        .bucket("bkt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    // The unconditional Deny is no documented pattern: no effect.
    root.get_object()
        .bucket("bkt")
        .key("src")
        .send()
        .await
        .unwrap();

    let e = root
        .put_object()
        .bucket("bkt")
        .key("new")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    root.put_object()
        .bucket("bkt")
        .key("new")
        .if_none_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let copy = || {
        root.copy_object()
            .bucket("bkt")
            .key("copy")
            .copy_source(format!("bkt/src?versionId={source}"))
    };
    let e = copy().send().await.unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    let e = copy().if_none_match("*").send().await.unwrap_err();
    assert_eq!(refusal(e).0, 501);

    // A multipart copy: the parts are exempt, the completion is conditional.
    let up = root
        .create_multipart_upload()
        .bucket("bkt")
        .key("copy")
        .send()
        .await
        .unwrap();
    let part = root
        .upload_part_copy()
        .bucket("bkt")
        .key("copy")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .copy_source(format!("bkt/src?versionId={source}"))
        .send()
        .await
        .unwrap();
    let complete = || {
        root.complete_multipart_upload()
            .bucket("bkt")
            .key("copy")
            .upload_id(up.upload_id().unwrap())
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(
                        CompletedPart::builder()
                            .part_number(1)
                            .e_tag(part.copy_part_result().unwrap().e_tag().unwrap())
                            .build(),
                    )
                    .build(),
            )
    };
    let e = complete().send().await.unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    complete().if_none_match("*").send().await.unwrap();

    // Without the policy, plain writes again.
    root.delete_bucket_policy()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    put(&root, "bkt", "after", "x").await;
    server.stop().await;
}

// "Enforce conditional deletes on Amazon S3 buckets" (S3 user guide), and
// "How to perform conditional deletes": "To perform conditional deletes with
// the If-Match header with the ETag value, you must have the s3:DeleteObject
// and s3:GetObject permissions"; with If-Match: * only s3:DeleteObject.
#[tokio::test]
async fn conditional_deletes_are_enforced_and_need_read_permission() {
    let creds = format!(
        "[{},{}]",
        principal("deleter", "user/deleter", &["s3:DeleteObject"]),
        principal("alice", "user/Alice", &[]),
    );
    let (server, root) = start_with(&creds).await;
    versioned_bucket(&root, "bkt").await;
    for k in ["a", "b", "c", "d"] {
        put(&root, "bkt", k, k).await;
    }
    let etag = |k: &'static str| {
        let root = root.clone();
        async move {
            root.head_object()
                .bucket("bkt")
                .key(k)
                .send()
                .await
                .unwrap()
                .e_tag()
                .unwrap()
                .to_owned()
        }
    };
    // Without a policy: an ETag condition also needs s3:GetObject.
    let deleter = as_principal(&server, "deleter");
    let e = deleter
        .delete_object()
        .bucket("bkt")
        .key("a")
        .if_match(etag("a").await)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    deleter
        .delete_object()
        .bucket("bkt")
        .key("a")
        .if_match("*")
        .send()
        .await
        .unwrap();

    // The brief's Deny form: every delete without If-Match is refused, root's too.
    set_policy(
        &root,
        "bkt",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"RequireIfMatch","Effect":"Deny",
            "Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::bkt/*",
            "Condition":{"Null":{"s3:if-match":"true"}}}]}"#,
    )
    .await;
    let e = root
        .delete_object()
        .bucket("bkt")
        .key("b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    root.delete_object()
        .bucket("bkt")
        .key("b")
        .if_match(etag("b").await)
        .send()
        .await
        .unwrap();
    let out = root
        .delete_objects()
        .bucket("bkt")
        .delete(
            Delete::builder()
                .objects(ObjectIdentifier::builder().key("c").build().unwrap())
                .objects(
                    ObjectIdentifier::builder()
                        .key("d")
                        .e_tag(etag("d").await)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.errors().len(), 1);
    assert_eq!(out.errors()[0].key(), Some("c"));
    assert_eq!(out.errors()[0].code(), Some("AccessDenied"));
    assert_eq!(out.deleted().len(), 1);
    assert_eq!(out.deleted()[0].key(), Some("d"));

    // The page's example 1 (Allow form): Alice, allowed nothing of her own,
    // may delete only with If-Match and an ETag.
    put(&root, "bkt", "e", "e").await;
    set_policy(
        &root,
        "bkt",
        r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"AllowConditionalDeletes","Effect":"Allow",
             "Principal":{"AWS":"arn:aws:iam::111122223333:user/Alice"},
             "Action":"s3:DeleteObject","Resource":"arn:aws:s3:::bkt/*",
             "Condition":{"Null":{"s3:if-match":"false"}}},
            {"Sid":"AllowGetObjectBecauseConditionalDeleteIfMatchETag","Effect":"Allow",
             "Principal":{"AWS":"arn:aws:iam::111122223333:user/Alice"},
             "Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}]}"#,
    )
    .await;
    let alice = as_principal(&server, "alice");
    let e = alice
        .delete_object()
        .bucket("bkt")
        .key("e")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    alice
        .delete_object()
        .bucket("bkt")
        .key("e")
        .if_match(etag("e").await)
        .send()
        .await
        .unwrap();
    // Another principal gets nothing from Alice's grants.
    let e = deleter
        .delete_object()
        .bucket("bkt")
        .key("c")
        .if_match("\"x\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    server.stop().await;
}

// SSE-C (S3 user guide, "Using server-side encryption with customer-provided
// keys"): a read without the key is 400 InvalidRequest ("The object was
// stored using a form of Server Side Encryption…"), with another key 403, and
// the copy of such a source needs the x-amz-copy-source-server-side-
// encryption-customer-* headers. Listings show nothing of it.
#[tokio::test]
async fn customer_encrypted_versions_need_their_key_to_be_read_or_copied() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    use md5::Digest;
    let key_of = |b: u8| {
        let k = [b; 32];
        (
            aws_smithy_types::base64::encode(k),
            aws_smithy_types::base64::encode(md5::Md5::digest(k)),
        )
    };
    let (key, key_md5) = key_of(1);
    let (other, other_md5) = key_of(2);
    let (server, c) = start(Config::default()).await;
    versioned_bucket(&c, "bkt").await;
    let body = b"secret bytes";
    let written = c
        .put_object()
        .bucket("bkt")
        .key("enc")
        .body(ByteStream::from_static(body))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .unwrap();
    assert_eq!(written.sse_customer_key_md5(), Some(key_md5.as_str()));
    assert_ne!(
        written.e_tag().unwrap().trim_matches('"'),
        hex::encode(md5::Md5::digest(body)),
        "an SSE-C ETag is no MD5 of the bytes"
    );
    put(&c, "bkt", "plain", "p").await;

    // A HEAD tells a client that the source needs a key it does not have.
    let e = c
        .head_object()
        .bucket("bkt")
        .key("enc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e).0, 400);
    let e = c
        .get_object()
        .bucket("bkt")
        .key("enc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (400, "InvalidRequest".into()));
    let e = c
        .get_object()
        .bucket("bkt")
        .key("enc")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&other)
        .sse_customer_key_md5(&other_md5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (403, "AccessDenied".into()));
    let head = c
        .head_object()
        .bucket("bkt")
        .key("enc")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .unwrap();
    assert_eq!(head.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(head.server_side_encryption(), None);
    let e = c
        .get_object()
        .bucket("bkt")
        .key("plain")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (400, "InvalidRequest".into()));

    // Copies: refused without the source's key, made with it (as SSE-S3).
    let e = c
        .copy_object()
        .bucket("bkt")
        .key("copy")
        .copy_source("bkt/enc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (400, "InvalidRequest".into()));
    c.copy_object()
        .bucket("bkt")
        .key("copy")
        .copy_source("bkt/enc")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&key)
        .copy_source_sse_customer_key_md5(&key_md5)
        .send()
        .await
        .unwrap();
    let copied = c
        .get_object()
        .bucket("bkt")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(
        copied.body.collect().await.unwrap().into_bytes().as_ref(),
        body
    );
    let up = c
        .create_multipart_upload()
        .bucket("bkt")
        .key("mpu")
        .send()
        .await
        .unwrap();
    let e = c
        .upload_part_copy()
        .bucket("bkt")
        .key("mpu")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .copy_source("bkt/enc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(e), (400, "InvalidRequest".into()));
    let part = c
        .upload_part_copy()
        .bucket("bkt")
        .key("mpu")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .copy_source("bkt/enc")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&key)
        .copy_source_sse_customer_key_md5(&key_md5)
        .send()
        .await
        .unwrap();
    c.complete_multipart_upload()
        .bucket("bkt")
        .key("mpu")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.copy_part_result().unwrap().e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    // A listing shows the version like any other.
    let page = c
        .list_object_versions()
        .bucket("bkt")
        .prefix("enc")
        .send()
        .await
        .unwrap();
    assert_eq!(page.versions().len(), 1);
    assert_eq!(page.versions()[0].size(), Some(body.len() as i64));
    server.stop().await;
}
