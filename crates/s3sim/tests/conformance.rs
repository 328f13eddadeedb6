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

// What follows: how S3 writes (ETags, checksums, conditions, uploads in
// progress, and answers that come late, slowly or as a 200 `<Error>`).
// The facts each test holds s3sim to are cited in the module that
// imitates them (`conditions`, `checksum`, `encryption`, `late`).

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use md5::{Digest, Md5};
use std::time::{Duration, Instant};

type Sdk<E> = aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>;

fn status<E>(e: &Sdk<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

fn unquoted(etag: Option<&str>) -> String {
    etag.unwrap().trim_matches('"').to_owned()
}

/// A client that sends no checksum of its own (so that S3's default
/// applies), with `attempt` as its attempt timeout if given.
fn bare_client(server: &s3sim::Server, attempt: Option<Duration>) -> aws_sdk_s3::Client {
    let mut conf = aws_sdk_s3::Config::builder()
        .credentials_provider(Credentials::new(
            "s3sim",
            "s3sim-secret",
            None,
            None,
            "test",
        ))
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", server.addr))
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
    if let Some(t) = attempt {
        conf = conf.timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(t)
                .build(),
        );
    }
    aws_sdk_s3::Client::from_conf(conf.build())
}

/// A body of `len` bytes that is not all alike.
fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Uploads `parts` as one multipart object; returns (upload id, part ETags).
async fn upload_parts(
    c: &aws_sdk_s3::Client,
    b: &str,
    k: &str,
    parts: &[Vec<u8>],
    algorithm: Option<ChecksumAlgorithm>,
) -> (String, Vec<CompletedPart>) {
    let up = c
        .create_multipart_upload()
        .bucket(b)
        .key(k)
        .set_checksum_algorithm(algorithm)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let mut done = Vec::new();
    for (n, body) in parts.iter().enumerate() {
        let part = c
            .upload_part()
            .bucket(b)
            .key(k)
            .upload_id(&id)
            .part_number(n as i32 + 1)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        done.push(
            CompletedPart::builder()
                .part_number(n as i32 + 1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        );
    }
    (id, done)
}

fn completed(parts: &[CompletedPart]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(parts.to_vec()))
        .build()
}

async fn multipart(c: &aws_sdk_s3::Client, b: &str, k: &str, parts: &[Vec<u8>]) -> String {
    let (id, done) = upload_parts(c, b, k, parts, None).await;
    c.complete_multipart_upload()
        .bucket(b)
        .key(k)
        .upload_id(&id)
        .multipart_upload(completed(&done))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned()
}

async fn version_count(c: &aws_sdk_s3::Client, b: &str) -> usize {
    let page = c.list_object_versions().bucket(b).send().await.unwrap();
    page.versions().len() + page.delete_markers().len()
}

async fn etag_of(c: &aws_sdk_s3::Client, b: &str, k: &str, v: Option<&str>) -> String {
    unquoted(
        c.head_object()
            .bucket(b)
            .key(k)
            .set_version_id(v.map(str::to_owned))
            .send()
            .await
            .unwrap()
            .e_tag(),
    )
}

async fn copy(c: &aws_sdk_s3::Client, b: &str, from: &str, v: &str, to: &str) -> String {
    c.copy_object()
        .bucket(b)
        .key(to)
        .copy_source(format!("{b}/{from}?versionId={v}"))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned()
}

const MIB5: usize = 5 * 1024 * 1024;

#[tokio::test]
async fn copies_get_the_etags_s3_gives_them() {
    let (server, c) = start(Config::default()).await;
    versioned_bucket(&c, "bkt").await;

    // A single-request copy of a multipart-uploaded object: the MD5 of
    // its bytes, not the source's `<md5>-2`.
    let parts = [bytes_of(MIB5, 1), bytes_of(100, 2)];
    let v = multipart(&c, "bkt", "mp", &parts).await;
    let source = etag_of(&c, "bkt", "mp", Some(&v)).await;
    assert!(source.ends_with("-2"), "{source}");
    let copied = copy(&c, "bkt", "mp", &v, "mp-copy").await;
    assert_eq!(
        etag_of(&c, "bkt", "mp-copy", Some(&copied)).await,
        md5_hex(&parts.concat())
    );

    // SSE-S3 single-part: the copy's ETag is the source's (the same MD5).
    let v = put(&c, "bkt", "plain", "plain bytes").await;
    let copied = copy(&c, "bkt", "plain", &v, "plain-copy").await;
    assert_eq!(
        etag_of(&c, "bkt", "plain", Some(&v)).await,
        md5_hex(b"plain bytes")
    );
    assert_eq!(
        etag_of(&c, "bkt", "plain-copy", Some(&copied)).await,
        md5_hex(b"plain bytes")
    );

    // SSE-KMS: not an MD5, and not the same twice for the same bytes.
    let kms_put = || {
        c.put_object()
            .bucket("bkt")
            .key("kms")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .body(ByteStream::from_static(b"secret"))
            .send()
    };
    let (a, b) = (kms_put().await.unwrap(), kms_put().await.unwrap());
    let (a, b) = (unquoted(a.e_tag()), unquoted(b.e_tag()));
    assert_ne!(a, md5_hex(b"secret"));
    assert_ne!(a, b);
    assert_eq!(a.len(), 32);
    // Its copy, into a bucket whose default is SSE-S3 and without
    // encryption headers, is SSE-S3: an MD5 again.
    let kms_version = c
        .list_object_versions()
        .bucket("bkt")
        .prefix("kms")
        .send()
        .await
        .unwrap()
        .versions()[0]
        .version_id()
        .unwrap()
        .to_owned();
    let copied = copy(&c, "bkt", "kms", &kms_version, "kms-copy").await;
    let head = c
        .head_object()
        .bucket("bkt")
        .key("kms-copy")
        .version_id(&copied)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert_eq!(unquoted(head.e_tag()), md5_hex(b"secret"));
    // A copy asking for SSE-KMS is not an MD5.
    let out = c
        .copy_object()
        .bucket("bkt")
        .key("kms-copy")
        .copy_source(format!("bkt/plain?versionId={v}"))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .send()
        .await
        .unwrap();
    assert_ne!(
        unquoted(out.copy_object_result().unwrap().e_tag()),
        md5_hex(b"plain bytes")
    );

    // A bucket whose default encryption is SSE-KMS: puts, copies and
    // multipart uploads alike get ETags that are not MD5s.
    versioned_bucket(&c, "kmsbkt").await;
    c.put_bucket_encryption()
        .bucket("kmsbkt")
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .kms_master_key_id("my-key")
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let v = put(&c, "kmsbkt", "k", "same bytes").await;
    let tag = etag_of(&c, "kmsbkt", "k", Some(&v)).await;
    assert_ne!(tag, md5_hex(b"same bytes"));
    let copied = copy(&c, "kmsbkt", "k", &v, "k2").await;
    let copy_tag = etag_of(&c, "kmsbkt", "k2", Some(&copied)).await;
    assert_ne!(copy_tag, md5_hex(b"same bytes"));
    assert_ne!(copy_tag, tag);
    let head = c
        .head_object()
        .bucket("kmsbkt")
        .key("k2")
        .send()
        .await
        .unwrap();
    assert_eq!(head.ssekms_key_id(), Some("my-key"));
    // Multipart under SSE-KMS: the parts' ETags are not MD5s, and the
    // object's is still the MD5 of the part ETags, `-<parts>`.
    let (id, done) = upload_parts(&c, "kmsbkt", "mp", &parts, None).await;
    assert_ne!(unquoted(done[1].e_tag()), md5_hex(&parts[1]));
    let out = c
        .complete_multipart_upload()
        .bucket("kmsbkt")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(completed(&done))
        .send()
        .await
        .unwrap();
    let mut digests = Md5::new();
    for p in &done {
        digests.update(hex::decode(unquoted(p.e_tag())).unwrap());
    }
    assert_eq!(
        unquoted(out.e_tag()),
        format!("{}-2", hex::encode(digests.finalize()))
    );

    // A seeded object's ETag stands for its MD5: its copy keeps it.
    s3sim::seed::seed(
        &server.sim.store,
        &s3sim::seed::SeedSpec {
            bucket: "seeded".into(),
            keys: 1,
            versions: 1,
            marker_ratio: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let listed = c
        .list_object_versions()
        .bucket("seeded")
        .send()
        .await
        .unwrap();
    let seeded = &listed.versions()[0];
    let copied = c
        .copy_object()
        .bucket("seeded")
        .key("copy")
        .copy_source(format!(
            "seeded/{}?versionId={}",
            seeded.key().unwrap(),
            seeded.version_id().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unquoted(copied.copy_object_result().unwrap().e_tag()),
        unquoted(seeded.e_tag())
    );
    server.stop().await;
}

#[tokio::test]
async fn checksums_are_kept_and_copied_as_s3_does() {
    let (server, sdk) = start(Config::default()).await;
    let c = bare_client(&server, None);
    versioned_bucket(&c, "bkt").await;
    let head = |k: &'static str, v: String| {
        c.head_object()
            .bucket("bkt")
            .key(k)
            .version_id(v)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
    };

    // Written without a checksum: S3 adds a CRC64NVME of the whole object.
    let body = bytes_of(70_000, 3);
    let v = c
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    let h = head("k", v.clone()).await.unwrap();
    let crc = h.checksum_crc64_nvme().unwrap().to_owned();
    assert_eq!(h.checksum_type(), Some(&ChecksumType::FullObject));
    // Only asked for: a plain HEAD has none.
    let plain = c.head_object().bucket("bkt").key("k").send().await.unwrap();
    assert_eq!(plain.checksum_crc64_nvme(), None);
    // The SDK checks a whole GET's body against it, with its own CRC64NVME.
    let got = c
        .get_object()
        .bucket("bkt")
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc64_nvme(), Some(crc.as_str()));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().to_vec(),
        body
    );

    // A multipart upload without an algorithm: CRC64NVME, FULL_OBJECT,
    // the same value as a single PUT of the same bytes.
    let parts = [body[..40_000].to_vec(), body[40_000..].to_vec()];
    let parts = [
        [parts[0].clone(), vec![0u8; MIB5 - parts[0].len()]].concat(),
        parts[1].clone(),
    ];
    let whole = parts.concat();
    let single = c
        .put_object()
        .bucket("bkt")
        .key("whole")
        .body(ByteStream::from(whole.clone()))
        .send()
        .await
        .unwrap();
    let mv = multipart(&c, "bkt", "mp", &parts).await;
    let h = head("mp", mv).await.unwrap();
    assert_eq!(h.checksum_type(), Some(&ChecksumType::FullObject));
    assert_eq!(h.checksum_crc64_nvme(), single.checksum_crc64_nvme());

    // A copy keeps a full-object checksum.
    let cv = copy(&c, "bkt", "k", &v, "k-copy").await;
    assert_eq!(
        head("k-copy", cv).await.unwrap().checksum_crc64_nvme(),
        Some(crc.as_str())
    );

    // SHA-256 multipart: COMPOSITE, `<base64>-2`; a single-request copy
    // of it is a direct checksum of the whole object (FULL_OBJECT).
    let (id, done) = upload_parts(&c, "bkt", "sha", &parts, Some(ChecksumAlgorithm::Sha256)).await;
    let sv = c
        .complete_multipart_upload()
        .bucket("bkt")
        .key("sha")
        .upload_id(&id)
        .multipart_upload(completed(&done))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    let h = head("sha", sv.clone()).await.unwrap();
    assert_eq!(h.checksum_type(), Some(&ChecksumType::Composite));
    assert!(h.checksum_sha256().unwrap().ends_with("-2"));
    let cv = copy(&c, "bkt", "sha", &sv, "sha-copy").await;
    let h = head("sha-copy", cv).await.unwrap();
    assert_eq!(h.checksum_type(), Some(&ChecksumType::FullObject));
    // (The SDK computes and sends the SHA-256 it names.)
    let sha = sdk
        .put_object()
        .bucket("bkt")
        .key("sha-whole")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(whole.clone()))
        .send()
        .await
        .unwrap();
    assert!(sha.checksum_sha256().is_some());
    assert_eq!(h.checksum_sha256(), sha.checksum_sha256());
    // An algorithm named without its value: refused.
    let e = c
        .put_object()
        .bucket("bkt")
        .key("unsent")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(whole))
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), e.code()), (Some(400), Some("InvalidRequest")));

    // A checksum sent that does not match the bytes: 400 BadDigest.
    let e = c
        .put_object()
        .bucket("bkt")
        .key("bad")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), e.code()), (Some(400), Some("BadDigest")));
    // A combination S3 refuses.
    let e = c
        .create_multipart_upload()
        .bucket("bkt")
        .key("nope")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), e.code()), (Some(400), Some("InvalidRequest")));
    server.stop().await;
}

#[tokio::test]
async fn uploads_in_progress_are_listed_until_they_end() {
    let (server, c) = start(Config::default()).await;
    versioned_bucket(&c, "bkt").await;
    let create = |k: &'static str| {
        let c = c.clone();
        async move {
            c.create_multipart_upload()
                .bucket("bkt")
                .key(k)
                .send()
                .await
                .unwrap()
                .upload_id()
                .unwrap()
                .to_owned()
        }
    };
    let a = create("a").await;
    let b1 = create("b").await;
    let b2 = create("b").await;
    let cx = create("c/x").await;
    let listed =
        |out: &aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput| {
            out.uploads()
                .iter()
                .map(|u| {
                    (
                        u.key().unwrap().to_owned(),
                        u.upload_id().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        };
    let pair = |k: &str, id: &str| (k.to_owned(), id.to_owned());
    let all = [
        pair("a", &a),
        pair("b", &b1),
        pair("b", &b2),
        pair("c/x", &cx),
    ];

    let out = c
        .list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    assert_eq!(listed(&out), all);
    assert_eq!(out.is_truncated(), Some(false));

    // Paged two at a time, by key marker and upload id marker.
    let mut seen = Vec::new();
    let (mut km, mut um) = (None::<String>, None::<String>);
    loop {
        let out = c
            .list_multipart_uploads()
            .bucket("bkt")
            .max_uploads(2)
            .set_key_marker(km.clone())
            .set_upload_id_marker(um.clone())
            .send()
            .await
            .unwrap();
        seen.extend(listed(&out));
        if out.is_truncated() != Some(true) {
            break;
        }
        km = out.next_key_marker().map(str::to_owned);
        um = out.next_upload_id_marker().map(str::to_owned);
    }
    assert_eq!(seen, all);
    // With an upload id marker: that key's later uploads, then the rest.
    let out = c
        .list_multipart_uploads()
        .bucket("bkt")
        .key_marker("b")
        .upload_id_marker(&b1)
        .send()
        .await
        .unwrap();
    assert_eq!(listed(&out), [pair("b", &b2), pair("c/x", &cx)]);
    // A key marker alone skips every upload of that key.
    let out = c
        .list_multipart_uploads()
        .bucket("bkt")
        .key_marker("b")
        .send()
        .await
        .unwrap();
    assert_eq!(listed(&out), [pair("c/x", &cx)]);
    let out = c
        .list_multipart_uploads()
        .bucket("bkt")
        .prefix("b")
        .send()
        .await
        .unwrap();
    assert_eq!(listed(&out), [pair("b", &b1), pair("b", &b2)]);
    let out = c
        .list_multipart_uploads()
        .bucket("bkt")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(out.uploads().len(), 3);
    assert_eq!(out.common_prefixes()[0].prefix(), Some("c/"));

    // Aborted or completed: no longer in progress.
    c.abort_multipart_upload()
        .bucket("bkt")
        .key("b")
        .upload_id(&b1)
        .send()
        .await
        .unwrap();
    let part = c
        .upload_part()
        .bucket("bkt")
        .key("a")
        .upload_id(&a)
        .part_number(1)
        .body(ByteStream::from_static(b"a"))
        .send()
        .await
        .unwrap();
    c.complete_multipart_upload()
        .bucket("bkt")
        .key("a")
        .upload_id(&a)
        .multipart_upload(completed(&[CompletedPart::builder()
            .part_number(1)
            .e_tag(part.e_tag().unwrap())
            .build()]))
        .send()
        .await
        .unwrap();
    let out = c
        .list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    assert_eq!(listed(&out), [pair("b", &b2), pair("c/x", &cx)]);
    assert_eq!(server.sim.counters.get(s3sim::Op::ListMultipartUploads), 8);
    server.stop().await;
}

#[tokio::test]
async fn conditional_completions_are_judged_when_they_complete() {
    let (server, c) = start(Config::default()).await;
    versioned_bucket(&c, "bkt").await;
    put(&c, "bkt", "k", "one").await;
    let current = etag_of(&c, "bkt", "k", None).await;
    let (id, done) = upload_parts(&c, "bkt", "k", &[b"new".to_vec()], None).await;
    let complete = || {
        c.complete_multipart_upload()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .multipart_upload(completed(&done))
    };
    // The current object is not the one named: 412, the upload stays.
    let e = complete().if_match("\"0123\"").send().await.unwrap_err();
    assert_eq!(
        (status(&e), e.code()),
        (Some(412), Some("PreconditionFailed"))
    );
    let e = complete().if_none_match("*").send().await.unwrap_err();
    assert_eq!(status(&e), Some(412));
    assert_eq!(version_count(&c, "bkt").await, 1);
    // It is: completed.
    complete()
        .if_match(format!("\"{current}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(version_count(&c, "bkt").await, 2);

    // If-Match on a key with no current object: 404 NoSuchKey.
    c.delete_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    let (id, done) = upload_parts(&c, "bkt", "k", &[b"x".to_vec()], None).await;
    let e = c
        .complete_multipart_upload()
        .bucket("bkt")
        .key("k")
        .upload_id(&id)
        .multipart_upload(completed(&done))
        .if_match(format!("\"{current}\""))
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), e.code()), (Some(404), Some("NoSuchKey")));
    server.stop().await;

    // A race: 409, and the upload is gone (re-initiate, re-upload).
    let (server, c) = start(Config {
        faults: Faults {
            conflict: 1.0,
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    versioned_bucket(&c, "bkt").await;
    let (id, done) = upload_parts(&c, "bkt", "k", &[b"x".to_vec()], None).await;
    let complete = || {
        c.complete_multipart_upload()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .multipart_upload(completed(&done))
    };
    let e = complete().if_none_match("*").send().await.unwrap_err();
    assert_eq!(
        (status(&e), e.code()),
        (Some(409), Some("ConditionalRequestConflict"))
    );
    let e = complete().send().await.unwrap_err();
    assert_eq!((status(&e), e.code()), (Some(404), Some("NoSuchUpload")));
    let out = c
        .list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    assert!(out.uploads().is_empty());
    assert_eq!(version_count(&c, "bkt").await, 0);
    server.stop().await;
}

#[tokio::test]
async fn conditional_deletes_are_judged_as_aws_judges_them() {
    let (server, c) = start(Config::default()).await;
    versioned_bucket(&c, "bkt").await;
    let v = put(&c, "bkt", "k", "one").await;
    let tag = etag_of(&c, "bkt", "k", None).await;
    let delete = || c.delete_object().bucket("bkt").key("k");

    // Another ETag: 412, no marker.
    let e = delete().if_match("\"0123\"").send().await.unwrap_err();
    assert_eq!(
        (status(&e), e.code()),
        (Some(412), Some("PreconditionFailed"))
    );
    assert_eq!(version_count(&c, "bkt").await, 1);
    // With a version id: 501, nothing removed.
    let e = delete()
        .version_id(&v)
        .if_match(format!("\"{tag}\""))
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), e.code()), (Some(501), Some("NotImplemented")));
    // A size condition is for directory buckets: 501.
    let e = delete().if_match_size(3).send().await.unwrap_err();
    assert_eq!(status(&e), Some(501));
    assert_eq!(version_count(&c, "bkt").await, 1);
    // The current ETag: the marker is written.
    let out = delete()
        .if_match(format!("\"{tag}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(out.delete_marker(), Some(true));
    // A marker on top: no current version, 404, for an ETag and for `*`.
    for condition in [format!("\"{tag}\""), "*".to_owned()] {
        let e = delete().if_match(condition).send().await.unwrap_err();
        assert_eq!((status(&e), e.code()), (Some(404), Some("NoSuchKey")));
    }
    let e = c
        .delete_object()
        .bucket("bkt")
        .key("never")
        .if_match("*")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(404));
    assert_eq!(version_count(&c, "bkt").await, 2);
    // `*` on an object that is there.
    put(&c, "bkt", "k", "two").await;
    delete().if_match("*").send().await.unwrap();
    assert_eq!(version_count(&c, "bkt").await, 4);

    // DeleteObjects: the same judgement per key, misses as per-key errors.
    let right = put(&c, "bkt", "right", "r").await;
    put(&c, "bkt", "wrong", "w").await;
    put(&c, "bkt", "plain", "p").await;
    let right_tag = etag_of(&c, "bkt", "right", Some(&right)).await;
    let entry = |k: &str, tag: Option<&str>, v: Option<&str>| {
        ObjectIdentifier::builder()
            .key(k)
            .set_e_tag(tag.map(str::to_owned))
            .set_version_id(v.map(str::to_owned))
            .build()
            .unwrap()
    };
    let before = version_count(&c, "bkt").await;
    let out = c
        .delete_objects()
        .bucket("bkt")
        .delete(
            Delete::builder()
                .objects(entry("right", Some(&format!("\"{right_tag}\"")), None))
                .objects(entry("wrong", Some("\"0123\""), None))
                .objects(entry("k", Some("*"), None))
                .objects(entry("plain", None, None))
                .objects(entry("right", Some(&right_tag), Some(&right)))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let errors: Vec<(&str, &str)> = out
        .errors()
        .iter()
        .map(|e| (e.key().unwrap(), e.code().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            ("wrong", "PreconditionFailed"),
            ("k", "NoSuchKey"),
            ("right", "NotImplemented")
        ]
    );
    let deleted: Vec<&str> = out.deleted().iter().map(|d| d.key().unwrap()).collect();
    assert_eq!(deleted, ["right", "plain"]);
    assert_eq!(version_count(&c, "bkt").await, before + 2);
    server.stop().await;

    // A server that ignores conditions, for the client's probe.
    let (server, c) = start(Config {
        ignore_conditions: true,
        ..Config::default()
    })
    .await;
    versioned_bucket(&c, "bkt").await;
    put(&c, "bkt", "k", "one").await;
    c.delete_object()
        .bucket("bkt")
        .key("k")
        .if_match("\"0123\"")
        .send()
        .await
        .unwrap();
    assert_eq!(version_count(&c, "bkt").await, 2);
    server.stop().await;
}

#[tokio::test]
async fn copies_and_completions_may_answer_200_with_an_error() {
    let (server, c) = start(Config {
        faults: Faults {
            copy_200_error: 1.0,
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    versioned_bucket(&c, "bkt").await;
    let v = put(&c, "bkt", "k", "one").await;
    let e = c
        .copy_object()
        .bucket("bkt")
        .key("copy")
        .copy_source(format!("bkt/k?versionId={v}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), e.code()), (Some(200), Some("InternalError")));
    let (id, _) = upload_parts(&c, "bkt", "mp", &[], None).await;
    let e = c
        .upload_part_copy()
        .bucket("bkt")
        .key("mp")
        .upload_id(&id)
        .part_number(1)
        .copy_source(format!("bkt/k?versionId={v}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), e.code()), (Some(200), Some("InternalError")));
    let e = c
        .complete_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(completed(&[CompletedPart::builder()
            .part_number(1)
            .e_tag("x")
            .build()]))
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), e.code()), (Some(200), Some("InternalError")));
    // Nothing was written; the upload is still in progress.
    assert_eq!(version_count(&c, "bkt").await, 1);
    let out = c
        .list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    assert_eq!(out.uploads().len(), 1);
    assert_eq!(server.sim.counters.get(s3sim::Op::InjectedCopy200Error), 3);
    server.stop().await;
}

/// Keeps the raw body of the response it sees.
#[derive(Debug, Clone, Default)]
struct RawBody(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl aws_sdk_s3::config::Intercept for RawBody {
    fn name(&self) -> &'static str {
        "RawBody"
    }

    fn read_after_deserialization(
        &self,
        ctx: &aws_sdk_s3::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        if let Some(bytes) = ctx.response().body().bytes() {
            *self.0.lock().unwrap() = bytes.to_vec();
        }
        Ok(())
    }
}

/// Waits (bounded) until `bucket` holds `n` entries.
async fn until_count(c: &aws_sdk_s3::Client, b: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while version_count(c, b).await != n {
        assert!(Instant::now() < deadline, "{b} never held {n} entries");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn late_commits_land_after_the_client_gave_up() {
    let late = Config {
        faults: Faults {
            late_commit: 1.0,
            late_commit_delay: Duration::from_millis(300),
            ..Faults::default()
        },
        ..Config::default()
    };
    let (server, c) = start(late.clone()).await;
    versioned_bucket(&c, "bkt").await;
    let bucket = server.sim.store.bucket("bkt").unwrap();

    // No answer; the version appears later.
    let asked = Instant::now();
    let e = c
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap_err();
    assert!(e.raw_response().is_none(), "no answer: {e:?}");
    assert_eq!(version_count(&c, "bkt").await, 0);
    until_count(&c, "bkt", 1).await;
    assert!(asked.elapsed() >= Duration::from_millis(300));

    // A marker, late.
    c.delete_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap_err();
    until_count(&c, "bkt", 2).await;

    // Conditions are judged when the write is made: a copy that asked for
    // no current object, overtaken by a write, is not made.
    let v = server.sim.store.put(
        &bucket,
        "src",
        s3sim::store::Content::stored("s".into(), Default::default()),
        None,
    );
    c.copy_object()
        .bucket("bkt")
        .key("dst")
        .copy_source(format!("bkt/src?versionId={}", v.encode()))
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    server.sim.store.put(
        &bucket,
        "dst",
        s3sim::store::Content::stored("other".into(), Default::default()),
        None,
    );
    // The same copy unconditioned, made late too, shows when the first
    // would have been made.
    c.copy_object()
        .bucket("bkt")
        .key("dst2")
        .copy_source(format!("bkt/src?versionId={}", v.encode()))
        .send()
        .await
        .unwrap_err();
    until_count(&c, "bkt", 5).await;
    let dst = c
        .list_object_versions()
        .bucket("bkt")
        .prefix("dst")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = dst.versions().iter().map(|v| v.key().unwrap()).collect();
    assert_eq!(keys, ["dst", "dst2"], "the conditional copy was not made");

    // A completion, late: the upload is in progress until it is made.
    let (id, done) = upload_parts(&c, "bkt", "mp", &[b"x".to_vec()], None).await;
    c.complete_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(completed(&done))
        .send()
        .await
        .unwrap_err();
    let out = c
        .list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    assert_eq!(out.uploads().len(), 1);
    until_count(&c, "bkt", 6).await;
    let out = c
        .list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    assert!(out.uploads().is_empty());
    assert_eq!(server.sim.counters.get(s3sim::Op::InjectedLateCommit), 5);
    server.stop().await;

    // Which writes are made late follows the seed.
    let pattern = |seed: u64| {
        let config = Config {
            seed,
            faults: Faults {
                late_commit: 0.5,
                late_commit_delay: Duration::ZERO,
                ..Faults::default()
            },
            ..Config::default()
        };
        async move {
            let (server, c) = start(config).await;
            c.create_bucket().bucket("bkt").send().await.unwrap();
            let mut answered = Vec::new();
            for i in 0..16 {
                let r = c
                    .put_object()
                    .bucket("bkt")
                    .key(format!("k{i}"))
                    .body(ByteStream::from_static(b"x"))
                    .send()
                    .await;
                answered.push(r.is_ok());
            }
            server.stop().await;
            answered
        }
    };
    let first = pattern(7).await;
    assert_eq!(first, pattern(7).await);
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
}

#[tokio::test]
async fn slow_writes_answer_200_then_whitespace_and_the_sdk_parses_them() {
    let delay = Duration::from_millis(600);
    let (server, c) = start(Config {
        copy_delay: delay,
        ..Config::default()
    })
    .await;
    versioned_bucket(&c, "bkt").await;
    let v = put(&c, "bkt", "k", "one").await;

    let started = Instant::now();
    let raw = RawBody::default();
    let out = c
        .copy_object()
        .bucket("bkt")
        .key("copy")
        .copy_source(format!("bkt/k?versionId={v}"))
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= delay);
    // What travelled: the declaration, whitespace while the copy worked,
    // then the result.
    let body = String::from_utf8(raw.0.lock().unwrap().clone()).unwrap();
    let (declaration, rest) = body.split_once("?>\n").unwrap();
    assert!(declaration.starts_with("<?xml"), "{body}");
    let spaces = rest.len() - rest.trim_start().len();
    assert!(spaces >= 2, "{body:?}");
    assert!(rest.trim_start().starts_with("<CopyObjectResult"), "{body}");
    let listed = c
        .list_object_versions()
        .bucket("bkt")
        .prefix("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.versions()[0].version_id(), out.version_id());
    assert_eq!(
        unquoted(out.copy_object_result().unwrap().e_tag()),
        md5_hex(b"one")
    );

    // A condition that stops holding while the copy works: the 200 ends
    // in an `<Error>`, which the SDK turns into an error.
    let cc = c.clone();
    let source = format!("bkt/k?versionId={v}");
    let racing = tokio::spawn(async move {
        cc.copy_object()
            .bucket("bkt")
            .key("raced")
            .copy_source(source)
            .if_none_match("*")
            .send()
            .await
    });
    // Made at once, while the copy still works (it takes `delay`).
    let bucket = server.sim.store.bucket("bkt").unwrap();
    server.sim.store.put(
        &bucket,
        "raced",
        s3sim::store::Content::stored("x".into(), Default::default()),
        None,
    );
    let e = racing.await.unwrap().unwrap_err();
    assert_eq!(
        (status(&e), e.code()),
        (Some(200), Some("PreconditionFailed"))
    );

    // A completion, slow: parsed, with the version it made.
    let (id, done) = upload_parts(&c, "bkt", "mp", &[b"x".to_vec()], None).await;
    let out = c
        .complete_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(completed(&done))
        .send()
        .await
        .unwrap();
    let listed = c
        .list_object_versions()
        .bucket("bkt")
        .prefix("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.versions()[0].version_id(), out.version_id());

    // A client that gives up before the answer: the copy is made anyway.
    let impatient = bare_client(&server, Some(Duration::from_millis(150)));
    let before = version_count(&c, "bkt").await;
    let e = impatient
        .copy_object()
        .bucket("bkt")
        .key("cut")
        .copy_source(format!("bkt/k?versionId={v}"))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(e, aws_sdk_s3::error::SdkError::TimeoutError(_)),
        "{e:?}"
    );
    until_count(&c, "bkt", before + 1).await;
    server.stop().await;
}

// ---- Who is calling and what they may do ----------------------------------

/// A server whose `--credentials` file holds `principals` (JSON), and a
/// client of its `--access-key` root user.
async fn start_with(principals: &str) -> (s3sim::Server, aws_sdk_s3::Client) {
    start_as(principals, Config::default()).await
}

/// [`start_with`], the server otherwise configured by `config`.
async fn start_as(principals: &str, config: Config) -> (s3sim::Server, aws_sdk_s3::Client) {
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
        ..config
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

/// Each entry's writer, newest first, as (is a marker, principal ARN).
fn writers_of(server: &s3sim::Server, b: &str, prefix: &str) -> Vec<(bool, String)> {
    let bucket = server.sim.store.bucket(b).unwrap();
    let page = server
        .sim
        .store
        .list_versions(&bucket, prefix, None, None, None, 100)
        .unwrap();
    page.entries
        .iter()
        .map(|l| {
            let w = l.entry.writer.as_deref().expect("a writer");
            (l.entry.is_marker(), w.principal.arn.clone())
        })
        .collect()
}

// The writes of issue 26 record their writer too: conditional deletes
// (DeleteObject with If-Match, DeleteObjects with an ETag), conditional
// copies and completions, and a write made late (`--fault-late-commit`),
// which records the requester of the request it was asked by, not nobody.
#[tokio::test]
async fn conditional_and_late_writes_record_who_asked_for_them() {
    let creds = format!(
        "[{}]",
        principal(
            "job",
            "role/nightly-job",
            &[
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:GetObject",
                "s3:GetObjectVersion"
            ]
        ),
    );
    let job_arn = "arn:aws:iam::111122223333:role/nightly-job".to_owned();

    let (server, root) = start_with(&creds).await;
    versioned_bucket(&root, "bkt").await;
    let job = as_principal(&server, "job");
    let v = put(&root, "bkt", "src", "source").await;
    let tag = etag_of(&root, "bkt", "src", Some(&v)).await;
    job.copy_object()
        .bucket("bkt")
        .key("copied")
        .copy_source(format!("bkt/src?versionId={v}"))
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    let (id, done) = upload_parts(&job, "bkt", "mp", &[b"x".to_vec()], None).await;
    job.complete_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .upload_id(&id)
        .if_none_match("*")
        .multipart_upload(completed(&done))
        .send()
        .await
        .unwrap();
    job.delete_object()
        .bucket("bkt")
        .key("src")
        .if_match(format!("\"{tag}\""))
        .send()
        .await
        .unwrap();
    let tag = etag_of(&root, "bkt", "copied", None).await;
    let out = job
        .delete_objects()
        .bucket("bkt")
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("copied")
                        .e_tag(format!("\"{tag}\""))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    let root_arn = "arn:aws:iam::123456789012:root".to_owned();
    assert_eq!(
        writers_of(&server, "bkt", "copied"),
        [(true, job_arn.clone()), (false, job_arn.clone())]
    );
    assert_eq!(writers_of(&server, "bkt", "mp"), [(false, job_arn.clone())]);
    assert_eq!(
        writers_of(&server, "bkt", "src"),
        [(true, job_arn.clone()), (false, root_arn)]
    );
    server.stop().await;

    // Made late: the entry appears after the client gave up, its writer
    // the one who asked.
    let late = Config {
        faults: Faults {
            late_commit: 1.0,
            late_commit_delay: Duration::from_millis(100),
            ..Faults::default()
        },
        ..Config::default()
    };
    let (server, root) = start_as(&creds, late).await;
    versioned_bucket(&root, "bkt").await;
    let job = as_principal(&server, "job");
    job.put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from_static(b"late"))
        .send()
        .await
        .unwrap_err();
    until_count(&root, "bkt", 1).await;
    job.delete_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap_err();
    until_count(&root, "bkt", 2).await;
    assert_eq!(
        writers_of(&server, "bkt", "k"),
        [(true, job_arn.clone()), (false, job_arn)]
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
