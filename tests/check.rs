//! `check` and apply's first step: each hazard of the bucket's own
//! configuration made to happen, and `check` and `apply` seen to respond —
//! lifecycle rules expiring what a restore needs, versioning Suspended,
//! Object Lock, MFA Delete, archived sources, KMS keys, replication.
//! Lifecycle, Object Lock and versioning run on the suite's server (moto
//! too); the rest needs what only s3sim does.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketVersioningStatus, ExpirationStatus, LifecycleRule,
    LifecycleRuleFilter, MfaDeleteStatus, NoncurrentVersionExpiration, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockRetention, ObjectLockRetentionMode, StorageClass,
    VersioningConfiguration,
};
use common::*;
use serde_json::Value;

/// `--endpoint-url` of a server of the test's own (the suite's is in the
/// environment already).
fn at(server: &Server, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--endpoint-url".to_owned(), server.endpoint.clone()];
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

fn run_json(catalog: &std::path::Path, args: &[&str]) -> (Option<i32>, Value) {
    let out = s3rewind(catalog, args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "s3rewind {args:?}: not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

/// The finding of one check in `check --json` output.
fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} in {report:#}"))
}

/// A plan's actions counted by status.
fn statuses(catalog: &std::path::Path, plan: &str) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(catalog).unwrap();
    let mut stmt = conn
        .prepare("SELECT status, count(*) FROM plan_review WHERE plan = ?1 GROUP BY status ORDER BY status")
        .unwrap();
    stmt.query_map([plan], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Keys with two versions each: the first before T, the second after.
/// Returns T.
fn overwritten(b: &mut Bucket, keys: &[&str]) -> String {
    for k in keys {
        b.put(k, format!("{k} before").as_bytes());
    }
    let t = mark_t();
    for k in keys {
        b.put(k, format!("{k} after").as_bytes());
    }
    t
}

fn put_lifecycle(b: &Bucket, id: &str, prefix: &str, noncurrent_days: i32) {
    let rule = LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
        .noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(noncurrent_days)
                .build(),
        )
        .build()
        .unwrap();
    runtime().block_on(async {
        b.client
            .put_bucket_lifecycle_configuration()
            .bucket(&b.name)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("put lifecycle");
    });
}

#[test]
fn a_lifecycle_rule_about_to_expire_what_a_restore_needs_blocks_apply_until_accepted() {
    let mut b = Bucket::new("lifecycle", true);
    let t = overwritten(&mut b, &["img/a.jpg", "img/b.jpg", "doc/c.txt"]);
    // Versions replaced a moment ago, expired one day after: due at the
    // next midnight but one at the latest.
    put_lifecycle(&b, "expire-img", "img/", 1);
    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &["scan", &b.url()]);
    s3rewind_ok(&cat, &["plan", "restore", "--to", &t, "--name", "r"]);

    let out = s3rewind(&cat, &["check", "--plan", "r"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(text.contains("block  lifecycle"), "{text}");
    assert!(text.contains("\"expire-img\""), "{text}");
    let (code, report) = run_json(&cat, &["check", "--plan", "r", "--json"]);
    assert_eq!(code, Some(4));
    assert_eq!(report["blocked"], true);
    let lifecycle = finding(&report, "lifecycle");
    assert_eq!(lifecycle["level"], "block");
    // the two img/ versions; doc/ is outside the rule
    assert_eq!(lifecycle["count"], 2);
    assert_eq!(finding(&report, "versioning")["level"], "ok");

    let before = b.listing();
    let err = s3rewind_err(&cat, &["apply", "r", "--yes"]);
    assert!(err.contains("blocked by lifecycle"), "{err}");
    assert!(err.contains("--accept lifecycle"), "{err}");
    assert_eq!(b.listing(), before, "a refused apply changed the bucket");
    assert_eq!(statuses(&cat, "r"), vec![("pending".into(), 3)]);

    s3rewind_ok(&cat, &["apply", "r", "--yes", "--accept", "lifecycle"]);
    assert_eq!(statuses(&cat, "r"), vec![("done".into(), 3)]);
    assert_eq!(
        b.get("img/a.jpg").as_deref(),
        Some(&b"img/a.jpg before"[..])
    );
}

/// An enabled rule expiring current versions under `prefix` from `date`.
fn put_expiration_date(b: &Bucket, prefix: &str, date: &str) {
    let rule = LifecycleRule::builder()
        .id("expire-current")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
        .expiration(
            aws_sdk_s3::types::LifecycleExpiration::builder()
                .date(
                    aws_sdk_s3::primitives::DateTime::from_str(
                        date,
                        aws_sdk_s3::primitives::DateTimeFormat::DateTime,
                    )
                    .expect("a date"),
                )
                .build(),
        )
        .build()
        .unwrap();
    runtime().block_on(async {
        b.client
            .put_bucket_lifecycle_configuration()
            .bucket(&b.name)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("put lifecycle");
    });
}

#[test]
fn a_rule_expiring_current_versions_blocks_a_rollback_as_it_blocks_copies() {
    let mut b = Bucket::new("lc-current", true);
    let t = overwritten(&mut b, &["img/a.jpg", "img/b.jpg", "doc/c.txt"]);
    // A date in the past: every current version under img/ is due at the
    // rule's next run, so whatever a plan makes current there goes again.
    put_expiration_date(&b, "img/", "2020-01-01T00:00:00Z");
    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &["scan", &b.url()]);
    s3rewind_ok(&cat, &["plan", "restore", "--to", &t, "--name", "copies"]);
    s3rewind_ok(
        &cat,
        &[
            "plan", "restore", "--to", &t, "--mode", "rollback", "--name", "rollback",
        ],
    );
    for plan in ["copies", "rollback"] {
        let (code, report) = run_json(&cat, &["check", "--plan", plan, "--json"]);
        assert_eq!(code, Some(4), "{plan}: {report}");
        let lifecycle = finding(&report, "lifecycle");
        assert_eq!(lifecycle["level"], "block", "{plan}: {lifecycle}");
        assert_eq!(lifecycle["count"], 2, "{plan}: {lifecycle}");
        assert!(
            lifecycle["summary"]
                .as_str()
                .is_some_and(|s| s.contains("makes current again")),
            "{plan}: {lifecycle}"
        );
        let before = b.listing();
        let err = s3rewind_err(&cat, &["apply", plan, "--yes"]);
        assert!(err.contains("blocked by lifecycle"), "{plan}: {err}");
        assert_eq!(b.listing(), before, "{plan}");
    }
}

#[test]
fn suspended_versioning_blocks_a_plan_that_writes_and_nothing_is_changed() {
    let mut b = Bucket::new("suspended", true);
    let t = overwritten(&mut b, &["k1", "k2"]);
    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &["scan", &b.url()]);
    s3rewind_ok(&cat, &["plan", "restore", "--to", &t, "--name", "r"]);
    b.set_versioning(BucketVersioningStatus::Suspended);

    let (code, report) = run_json(&cat, &["check", "--plan", "r", "--json"]);
    assert_eq!(code, Some(4));
    let v = finding(&report, "versioning");
    assert_eq!(v["level"], "block");
    assert_eq!(v["count"], 2);
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("it was Enabled when the catalog was scanned"),
        "{v}"
    );
    assert!(v["fix"].as_str().unwrap().contains("Status=Enabled"), "{v}");
    // moto answers GetBucketRequestPayment with a bucket listing: that
    // part is "not checked", never taken for "off".
    let payer = finding(&report, "requester-pays");
    match b.kind {
        ServerKind::Moto => {
            assert_eq!(payer["level"], "warn", "{payer}");
            let summary = payer["summary"].as_str().unwrap();
            assert!(summary.contains("not a valid answer"), "{summary}");
        }
        ServerKind::S3sim => assert_eq!(payer["level"], "ok", "{payer}"),
    }

    let before = b.listing();
    let out = s3rewind(&cat, &["apply", "r", "--yes"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("blocked by versioning"));
    assert_eq!(b.listing(), before);
    assert_eq!(statuses(&cat, "r"), vec![("pending".into(), 2)]);
}

/// A bucket made with Object Lock on.
fn locked_bucket(server: &Server, tag: &str) -> Bucket {
    let name = unique_bucket(tag);
    let client = client_for(server);
    runtime().block_on(async {
        client
            .create_bucket()
            .bucket(&name)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .expect("create a bucket with Object Lock");
    });
    Bucket::on(server, &name, true)
}

#[test]
fn object_lock_lists_the_versions_it_keeps_and_markers_are_removed_anyway() {
    let mut b = locked_bucket(server(), "locked");
    let held = b.put("a", b"a1");
    let retained = b.put("a", b"a2");
    let free = b.put("a", b"a3");
    b.put("a", b"a4");
    b.put("gone", b"g1");
    b.delete("gone");
    let until = aws_sdk_s3::primitives::DateTime::from_secs(unix_now().as_secs() as i64 + 86_400);
    runtime().block_on(async {
        b.client
            .put_object_legal_hold()
            .bucket(&b.name)
            .key("a")
            .version_id(&held)
            .legal_hold(
                ObjectLockLegalHold::builder()
                    .status(ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await
            .expect("legal hold");
        b.client
            .put_object_retention()
            .bucket(&b.name)
            .key("a")
            .version_id(&retained)
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Compliance)
                    .retain_until_date(until)
                    .build(),
            )
            .send()
            .await
            .expect("retention");
    });
    // Versions replaced this very second are noncurrent for 0 s: judge a
    // minute on.
    let later = model::time::format_time(unix_now().as_secs() as i64 + 60);
    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &["scan", &b.url()]);
    s3rewind_ok(
        &cat,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "0s",
            "--as-of",
            &later,
            "--name",
            "x",
            "--where",
            "key = 'a'",
        ],
    );
    s3rewind_ok(&cat, &["plan", "undelete", "--name", "u"]);

    let (code, report) = run_json(&cat, &["check", "--plan", "x", "--json"]);
    assert_eq!(code, Some(4), "{report:#}");
    let lock = finding(&report, "object-lock");
    assert_eq!(lock["level"], "block");
    assert_eq!(lock["count"], 2);
    let locked: Vec<(&str, &str)> = report["locked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["version_id"].as_str().unwrap(),
                l["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(locked.len(), 2, "{report:#}");
    assert!(
        locked.contains(&(held.as_str(), "locked: legal hold")),
        "{locked:?}"
    );
    assert!(
        locked
            .iter()
            .any(|(v, r)| *v == retained && r.starts_with("locked: COMPLIANCE retention until")),
        "{locked:?}"
    );

    let err = s3rewind_err(&cat, &["apply", "x", "--yes"]);
    assert!(err.contains("blocked by object-lock"), "{err}");
    let out = s3rewind_ok(&cat, &["apply", "x", "--yes", "--accept", "object-lock"]);
    assert!(
        out.contains("2 locked versions are recorded as skipped"),
        "{out}"
    );
    assert_eq!(
        statuses(&cat, "x"),
        vec![("done".into(), 1), ("skipped".into(), 2)]
    );
    let versions: Vec<String> = b
        .listing()
        .into_iter()
        .filter(|e| e.0 == "a")
        .map(|e| e.1)
        .collect();
    assert!(versions.contains(&held) && versions.contains(&retained));
    assert!(
        !versions.contains(&free),
        "the free version was not deleted"
    );

    // Delete markers are not locked: the undelete plan is not blocked.
    let (code, report) = run_json(&cat, &["check", "--plan", "u", "--json"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(finding(&report, "object-lock")["level"], "ok");
    s3rewind_ok(&cat, &["apply", "u", "--yes"]);
    assert_eq!(b.get("gone").as_deref(), Some(&b"g1"[..]));
}

#[test]
fn mfa_delete_blocks_a_plan_that_deletes() {
    let server = start_server(ServerKind::S3sim, &[]);
    let mut b = Bucket::on(&server, &unique_bucket("mfa"), true);
    b.put("k", b"1");
    b.put("k", b"2");
    runtime().block_on(async {
        b.client
            .put_bucket_versioning()
            .bucket(&b.name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .mfa_delete(aws_sdk_s3::types::MfaDelete::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let v = b
            .client
            .get_bucket_versioning()
            .bucket(&b.name)
            .send()
            .await
            .unwrap();
        assert_eq!(v.mfa_delete(), Some(&MfaDeleteStatus::Enabled));
    });
    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &strs(&at(&server, &["scan", &b.url()])));
    s3rewind_ok(
        &cat,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "0s",
            "--as-of",
            &model::time::format_time(unix_now().as_secs() as i64 + 60),
            "--name",
            "x",
        ],
    );
    let (code, report) = run_json(
        &cat,
        &strs(&at(&server, &["check", "--plan", "x", "--json"])),
    );
    assert_eq!(code, Some(4));
    assert_eq!(finding(&report, "mfa-delete")["level"], "block");
    let err = s3rewind_err(&cat, &strs(&at(&server, &["apply", "x", "--yes"])));
    assert!(err.contains("blocked by mfa-delete"), "{err}");
    // Accepted, the deletes go out and fail as AWS fails them.
    let out = s3rewind(
        &cat,
        &strs(&at(
            &server,
            &["apply", "x", "--yes", "--accept", "mfa-delete"],
        )),
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(statuses(&cat, "x"), vec![("failed".into(), 1)]);
    assert_eq!(b.listing().len(), 2);
}

#[test]
fn archived_sources_are_restored_first_and_copied_by_a_later_apply() {
    let server = start_server(ServerKind::S3sim, &["--restore-delay-ms", "1500"]);
    let mut b = Bucket::on(&server, &unique_bucket("archive"), true);
    let put_class = |b: &Bucket, key: &str, body: &[u8], class: StorageClass| {
        runtime().block_on(async {
            b.client
                .put_object()
                .bucket(&b.name)
                .key(key)
                .body(ByteStream::from(body.to_vec()))
                .storage_class(class)
                .send()
                .await
                .unwrap();
        })
    };
    put_class(&b, "cold", b"cold before", StorageClass::Glacier);
    put_class(
        &b,
        "tiered",
        b"tiered before",
        StorageClass::IntelligentTiering,
    );
    // Unread long enough, it moves to the Archive Access tier.
    let tiered = b.listing().into_iter().find(|e| e.0 == "tiered").unwrap().1;
    server.sim().settings.archive_tiered(
        &b.name,
        "tiered",
        s3sim::store::VersionId::decode(&tiered).unwrap(),
    );
    b.put("warm", b"warm before");
    let t = mark_t();
    for k in ["cold", "tiered", "warm"] {
        b.put(k, b"after");
    }
    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &strs(&at(&server, &["scan", &b.url()])));
    s3rewind_ok(&cat, &["plan", "restore", "--to", &t, "--name", "r"]);

    // The catalog alone knows the GLACIER one.
    let show = s3rewind_ok(&cat, &["plan", "show", "r"]);
    assert!(show.contains("warn   archived"), "{show}");
    assert!(show.contains("1 GLACIER"), "{show}");
    // The bucket tells the Intelligent-Tiering one too.
    let (code, report) = run_json(
        &cat,
        &strs(&at(&server, &["check", "--plan", "r", "--json"])),
    );
    assert_eq!(code, Some(0), "{report:#}");
    let archived = finding(&report, "archived");
    assert_eq!(
        (archived["level"].as_str(), archived["count"].as_u64()),
        (Some("warn"), Some(2))
    );

    let out = s3rewind_ok(&cat, &strs(&at(&server, &["apply", "r", "--yes"])));
    assert!(out.contains("2 restoring"), "{out}");
    assert_eq!(server.served(s3sim::Op::RestoreObject), 2);
    assert_eq!(b.get("warm").as_deref(), Some(&b"warm before"[..]));
    assert_eq!(b.get("cold").as_deref(), Some(&b"after"[..]));
    let status = s3rewind_ok(&cat, &["status"]);
    assert!(status.contains("2 restoring"), "{status}");

    // Asked again while the restores run: they stay waiting, and no
    // second restore is asked for the GLACIER one (its HEAD says ongoing).
    s3rewind_ok(&cat, &strs(&at(&server, &["apply", "r", "--yes"])));
    assert_eq!(
        statuses(&cat, "r"),
        vec![("done".into(), 1), ("restoring".into(), 2)]
    );
    assert_eq!(server.served(s3sim::Op::RestoreObject), 3);

    let versions = b.listing();
    let old = versions.iter().find(|e| e.0 == "cold" && !e.3).unwrap();
    wait_until(
        "the restores to finish",
        std::time::Duration::from_secs(30),
        || {
            runtime().block_on(async {
                let head = b.client.head_object().bucket(&b.name).key("cold");
                let out = head.version_id(&old.1).send().await.unwrap();
                out.restore()
                    .is_some_and(|r| r.contains("ongoing-request=\"false\""))
            })
        },
    );
    s3rewind_ok(&cat, &strs(&at(&server, &["apply", "r", "--yes"])));
    assert_eq!(statuses(&cat, "r"), vec![("done".into(), 3)]);
    assert_eq!(b.get("cold").as_deref(), Some(&b"cold before"[..]));
    assert_eq!(b.get("tiered").as_deref(), Some(&b"tiered before"[..]));
    // Brought back readable, not into the archive again.
    let class = runtime().block_on(async {
        b.client
            .head_object()
            .bucket(&b.name)
            .key("cold")
            .send()
            .await
            .unwrap()
            .storage_class()
            .cloned()
    });
    assert_eq!(class, None);
    let verify = s3rewind_ok(&cat, &strs(&at(&server, &["verify", "r"])));
    assert!(verify.contains("3 of 3 keys as the plan meant"), "{verify}");
}

#[test]
fn a_kms_key_the_credentials_cannot_use_blocks_the_copies_it_encrypts() {
    let server = start_server(ServerKind::S3sim, &["--deny-kms-key", "key-denied"]);
    let mut b = Bucket::on(&server, &unique_bucket("kms"), true);
    let put_kms = |b: &Bucket, key: &str, kms: &str| {
        runtime().block_on(async {
            b.client
                .put_object()
                .bucket(&b.name)
                .key(key)
                .body(ByteStream::from_static(b"secret"))
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms)
                .send()
                .await
                .unwrap();
        })
    };
    put_kms(&b, "open", "key-allowed");
    // One key, three copies it would make fail.
    for closed in ["closed", "closed-2", "closed-3"] {
        put_kms(&b, closed, "key-denied");
    }
    let t = mark_t();
    for key in ["open", "closed", "closed-2", "closed-3"] {
        b.put(key, b"after");
    }
    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &strs(&at(&server, &["scan", &b.url()])));
    s3rewind_ok(&cat, &["plan", "restore", "--to", &t, "--name", "both"]);
    s3rewind_ok(
        &cat,
        &[
            "plan",
            "restore",
            "--to",
            &t,
            "--name",
            "open",
            "--where",
            "key = 'open'",
        ],
    );

    let (code, report) = run_json(
        &cat,
        &strs(&at(&server, &["check", "--plan", "both", "--json"])),
    );
    assert_eq!(code, Some(4));
    let kms = finding(&report, "kms");
    assert_eq!(kms["level"], "block");
    // The copies it affects, not the keys found.
    assert_eq!(kms["count"], 3, "{kms}");
    assert!(
        kms["details"][0]
            .as_str()
            .unwrap()
            .starts_with("key-denied: AccessDenied"),
        "{kms}"
    );
    let err = s3rewind_err(&cat, &strs(&at(&server, &["apply", "both", "--yes"])));
    assert!(err.contains("blocked by kms"), "{err}");

    let (code, report) = run_json(
        &cat,
        &strs(&at(&server, &["check", "--plan", "open", "--json"])),
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(finding(&report, "kms")["level"], "ok");
}

#[test]
fn replication_and_requester_pays_are_warnings_and_check_needs_no_catalog() {
    let server = start_server(ServerKind::S3sim, &[]);
    let mut b = Bucket::on(&server, &unique_bucket("repl"), true);
    let t = overwritten(&mut b, &["logs/1", "logs/2", "img/3"]);
    runtime().block_on(async {
        use aws_sdk_s3::types::*;
        let rule = ReplicationRule::builder()
            .id("to-dr")
            .status(ReplicationRuleStatus::Enabled)
            .priority(1)
            .filter(ReplicationRuleFilter::builder().prefix("logs/").build())
            .delete_marker_replication(
                DeleteMarkerReplication::builder()
                    .status(DeleteMarkerReplicationStatus::Disabled)
                    .build(),
            )
            .destination(
                Destination::builder()
                    .bucket("arn:aws:s3:::dr")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        b.client
            .put_bucket_replication()
            .bucket(&b.name)
            .replication_configuration(
                ReplicationConfiguration::builder()
                    .role("arn:aws:iam::1:role/r")
                    .rules(rule)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        b.client
            .put_bucket_request_payment()
            .bucket(&b.name)
            .request_payment_configuration(
                RequestPaymentConfiguration::builder()
                    .payer(Payer::Requester)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    });
    // No catalog at all: the bucket's settings only.
    let none = Workdir::new();
    let (code, report) = run_json(
        &none.catalog(),
        &strs(&at(&server, &["check", &b.url(), "--json"])),
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert!(!none.catalog().exists(), "check made a catalog");
    assert_eq!(finding(&report, "replication")["count"], 0);
    assert_eq!(finding(&report, "requester-pays")["level"], "warn");

    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &strs(&at(&server, &["scan", &b.url()])));
    s3rewind_ok(&cat, &["plan", "restore", "--to", &t, "--name", "r"]);
    let text = s3rewind_ok(&cat, &strs(&at(&server, &["check", "--plan", "r"])));
    assert!(text.contains("warn   replication"), "{text}");
    assert!(text.contains("to arn:aws:s3:::dr: 2 copies"), "{text}");
    let (_, report) = run_json(
        &cat,
        &strs(&at(&server, &["check", "--plan", "r", "--json"])),
    );
    assert_eq!(finding(&report, "replication")["count"], 2);
    assert_eq!(report["blocked"], false);
}

#[test]
fn check_refuses_what_it_cannot_judge_with_a_clear_error() {
    let server = start_server(ServerKind::S3sim, &[]);
    let w = Workdir::new();
    let err = s3rewind_err(
        &w.catalog(),
        &strs(&at(&server, &["check", "s3://no-such-bucket"])),
    );
    assert!(err.contains("NoSuchBucket"), "{err}");
    let err = s3rewind_err(&w.catalog(), &["check", "--plan", "nope"]);
    assert!(err.contains("no catalog"), "{err}");
    let err = s3rewind_err(&w.catalog(), &["check", "not-a-url"]);
    assert!(err.contains("is not an S3 location"), "{err}");
    let out = s3rewind(&w.catalog(), &["apply", "x", "--accept", "everything"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("object-lock"));
}

/// An s3sim whose `operator` principal may list, read, write and delete,
/// but not read retention or legal holds.
fn server_with_an_operator(w: &Workdir) -> Server {
    let file = w.path("principals.json");
    let allow = [
        "s3:List*",
        "s3:GetBucket*",
        "s3:GetLifecycleConfiguration",
        "s3:GetReplicationConfiguration",
        "s3:GetEncryptionConfiguration",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
    ];
    std::fs::write(
        &file,
        format!(
            r#"[{{"access_key":"operator","secret_key":"operator-secret","account_id":"123456789012",
                 "arn":"arn:aws:iam::123456789012:user/operator","allow":{}}}]"#,
            serde_json::to_string(&allow).unwrap()
        ),
    )
    .unwrap();
    start_server(
        ServerKind::S3sim,
        &["--credentials", file.to_str().expect("utf-8 path")],
    )
}

fn hold(b: &Bucket, key: &str, version: &str) {
    runtime().block_on(async {
        b.client
            .put_object_legal_hold()
            .bucket(&b.name)
            .key(key)
            .version_id(version)
            .legal_hold(
                ObjectLockLegalHold::builder()
                    .status(ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await
            .expect("legal hold");
    });
}

#[test]
fn a_rollback_under_object_lock_keeps_a_key_whole_whoever_reads_the_locks() {
    let w = Workdir::new();
    let server = server_with_an_operator(&w);
    let mut b = locked_bucket(&server, "lock-unit");
    let kept = b.put("k", b"k at T");
    b.put("other", b"other at T");
    let t = mark_t();
    let below = b.put("k", b"k bad 1");
    let top = b.put("k", b"k bad 2");
    b.put("other", b"other bad");
    let cat = w.catalog();
    let endpoint = ["--endpoint-url", server.endpoint.as_str()];
    fn with<'a>(args: &[&'a str], endpoint: [&'a str; 2]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(endpoint);
        all
    }
    let as_operator = |args: &[&str]| {
        s3rewind_command(&cat)
            .env("AWS_ACCESS_KEY_ID", "operator")
            .env("AWS_SECRET_ACCESS_KEY", "operator-secret")
            .args(with(args, endpoint))
            .output()
            .expect("run s3rewind")
    };
    s3rewind_ok(&cat, &with(&["scan", &b.url()], endpoint));
    s3rewind_ok(
        &cat,
        &[
            "plan", "restore", "--to", &t, "--mode", "rollback", "--name", "r",
        ],
    );
    // Placed after the plan was reviewed: the top bad version is held.
    hold(&b, "k", &top);

    // Credentials that may not read locks: HeadObject would show none, so
    // "none locked" would be a guess. Blocked, saying why.
    let out = as_operator(&["check", "--plan", "r", "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let report: Value = serde_json::from_slice(&out.stdout).expect("check --json");
    let lock = finding(&report, "object-lock");
    assert_eq!(lock["level"], "block", "{lock}");
    assert!(
        lock["summary"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{lock}"
    );
    let before = b.listing();
    let out = as_operator(&["apply", "r", "--yes"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(b.listing(), before);

    // Accepted anyway: S3 refuses the held version's delete, and the
    // version below it on the key stays too.
    let out = as_operator(&["apply", "r", "--yes", "--accept", "object-lock"]);
    assert!(!out.status.success());
    let status_of = |version: &str| -> (String, Option<String>) {
        let db = rusqlite::Connection::open(&cat).unwrap();
        db.query_row(
            "SELECT status, error FROM actions WHERE version_id = ?1",
            [version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!(status_of(&top).0, "failed");
    let (status, why) = status_of(&below);
    assert_eq!(status, "failed");
    assert!(why.unwrap_or_default().contains("not reverted"));
    // A rerun sends nothing below the refused version; --retry-failed
    // takes the key up again from its top, and stops there again.
    for run in [
        &["apply", "r", "--yes", "--accept", "object-lock"][..],
        &[
            "apply",
            "r",
            "--yes",
            "--accept",
            "object-lock",
            "--retry-failed",
        ][..],
    ] {
        as_operator(run);
        assert_eq!(status_of(&top).0, "failed");
        assert_eq!(status_of(&below).0, "failed");
    }
    let versions_of_k: std::collections::BTreeSet<String> = b
        .listing()
        .into_iter()
        .filter(|e| e.0 == "k")
        .map(|e| e.1)
        .collect();
    assert_eq!(
        versions_of_k,
        [top.clone(), below.clone(), kept.clone()].into()
    );
    assert_eq!(b.get("other"), Some(b"other at T".to_vec()));
}

#[test]
fn a_lock_found_by_the_preflight_keeps_the_versions_below_it_too() {
    let mut b = locked_bucket(server(), "lock-below");
    let kept = b.put("k", b"k at T");
    b.put("other", b"other at T");
    let t = mark_t();
    let below = b.put("k", b"k bad 1");
    let top = b.put("k", b"k bad 2");
    b.put("other", b"other bad");
    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &["scan", &b.url()]);
    s3rewind_ok(
        &cat,
        &[
            "plan", "restore", "--to", &t, "--mode", "rollback", "--name", "r",
        ],
    );
    hold(&b, "k", &top);
    s3rewind_ok(&cat, &["apply", "r", "--yes", "--accept", "object-lock"]);
    let statuses: Vec<(String, String)> = {
        let db = rusqlite::Connection::open(&cat).unwrap();
        let mut stmt = db
            .prepare("SELECT version_id, status FROM actions WHERE key = 'k' ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        statuses,
        vec![
            (top.clone(), "skipped".into()),
            (below.clone(), "skipped".into())
        ]
    );
    let versions_of_k: std::collections::BTreeSet<String> = b
        .listing()
        .into_iter()
        .filter(|e| e.0 == "k")
        .map(|e| e.1)
        .collect();
    assert_eq!(versions_of_k, [top, below, kept].into());
    assert_eq!(b.get("other"), Some(b"other at T".to_vec()));
}

#[test]
fn a_policy_enforcing_conditional_writes_blocks_copies_and_says_what_check_cannot_see() {
    let mut b = Bucket::new("policy", true);
    let t = overwritten(&mut b, &["k1", "k2"]);
    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &["scan", &b.url()]);
    s3rewind_ok(&cat, &["plan", "restore", "--to", &t, "--name", "r"]);
    let (code, report) = run_json(&cat, &["check", "--plan", "r", "--json"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(finding(&report, "policy")["level"], "ok");
    // The S3 user guide's "Enforce conditional writes" example.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"OnlyConditionalPuts","Effect":"Deny",
             "Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::{}/*",
             "Condition":{{"Null":{{"s3:if-none-match":"true"}}}}}}]}}"#,
        b.name
    );
    runtime().block_on(async {
        b.client
            .put_bucket_policy()
            .bucket(&b.name)
            .policy(policy)
            .send()
            .await
            .expect("put policy");
    });
    let (code, report) = run_json(&cat, &["check", "--plan", "r", "--json"]);
    assert_eq!(code, Some(4), "{report:#}");
    let found = finding(&report, "policy");
    assert_eq!(found["level"], "block", "{found}");
    assert_eq!(found["count"], 2, "{found}");
    let said = found.to_string();
    assert!(
        said.contains("OnlyConditionalPuts") && said.contains("SCPs are not visible"),
        "{said}"
    );
    let before = b.listing();
    let err = s3rewind_err(&cat, &["apply", "r", "--yes"]);
    assert!(err.contains("blocked by policy"), "{err}");
    assert_eq!(b.listing(), before);
}

/// Every finding of one check in `check --json` output.
fn findings<'a>(report: &'a Value, check: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

#[test]
fn the_bucket_restore_into_copies_into_is_judged_too() {
    let mut src = Bucket::new("into-src", true);
    let t = overwritten(&mut src, &["img/a.jpg", "img/b.jpg"]);
    let dst = Bucket::new("into-dst", true);
    let w = Workdir::new();
    let cat = w.catalog();
    s3rewind_ok(&cat, &["scan", &src.url()]);
    let into = format!("s3://{}/restored/", dst.name);
    s3rewind_ok(
        &cat,
        &[
            "plan", "restore", "--to", &t, "--name", "r", "--into", &into,
        ],
    );
    let (code, report) = run_json(&cat, &["check", "--plan", "r", "--json"]);
    assert_eq!(code, Some(0), "{report:#}");
    // The destination expires what lands under restored/ at once: the
    // copies would be gone by the rule's next run.
    put_expiration_date(&dst, "restored/", "2020-01-01T00:00:00Z");
    let (code, report) = run_json(&cat, &["check", "--plan", "r", "--json"]);
    assert_eq!(code, Some(4), "{report:#}");
    let there: Vec<&Value> = findings(&report, "lifecycle")
        .into_iter()
        .filter(|f| f["summary"].as_str().is_some_and(|s| s.contains(&into)))
        .collect();
    assert_eq!(there.len(), 1, "{report:#}");
    assert_eq!(there[0]["level"], "block", "{}", there[0]);
    assert_eq!(there[0]["count"], 2, "{}", there[0]);
    let before = dst.listing();
    let err = s3rewind_err(&cat, &["apply", "r", "--yes"]);
    assert!(err.contains("blocked by lifecycle"), "{err}");
    assert_eq!(dst.listing(), before);
}
