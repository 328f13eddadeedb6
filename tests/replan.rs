//! A restore planned twice does nothing twice (issue 32): a key whose
//! newest version already holds the content of the version of T gets no
//! copy, whether the catalog was listed again (`scan --keys-of`) or made
//! afresh, and `verify` accepts the same identities (docs/design.md,
//! "Already as at T").

mod common;

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use common::*;

/// Plan `plan`'s rows in plan_review, counted by action (`action:n`, sorted).
fn by_action(catalog: &Path, plan: &str) -> String {
    catalog_scalar(
        catalog,
        &format!(
            "SELECT coalesce(group_concat(s, ' '), '') FROM (SELECT action || ':' || count(*) AS s
             FROM plan_review WHERE plan = '{plan}' GROUP BY action ORDER BY action)"
        ),
    )
}

/// How plan `plan`'s already-done keys were known, counted (`by:n`, sorted).
fn known_by(catalog: &Path, plan: &str) -> String {
    catalog_scalar(
        catalog,
        &format!(
            "SELECT coalesce(group_concat(s, ' '), '') FROM (SELECT matched_by || ':' || count(*) AS s
             FROM plan_review WHERE plan = '{plan}' AND action = 'already'
             GROUP BY matched_by ORDER BY matched_by)"
        ),
    )
}

/// The catalog's entries of the keys plan `plan` copies onto, for a failure's message.
fn histories(catalog: &Path, plan: &str) -> String {
    catalog_scalar(
        catalog,
        &format!(
            "SELECT coalesce(group_concat(h.key || ' ' || h.version_id || ' ' || h.kind || ' ' || h.last_modified || ' ' || coalesce(h.etag, '-'), char(10)), '')
             FROM key_history h WHERE h.key IN (SELECT key FROM plan_review WHERE plan = '{plan}' AND action = 'copy_version')"
        ),
    )
}

/// Keys `k0`…`k4` overwritten after T, `gone` deleted after T, `new`
/// created after T. Returns T.
fn incident(b: &mut Bucket) -> String {
    for i in 0..5 {
        b.put(&format!("k{i}"), format!("good-{i}").as_bytes());
    }
    b.put("gone", b"was here");
    let t = mark_t();
    for i in 0..5 {
        b.put(&format!("k{i}"), format!("bad {i}, longer").as_bytes());
    }
    b.delete("gone");
    b.put("new", b"junk");
    t
}

#[test]
fn a_restore_planned_again_after_keys_of_or_from_a_fresh_scan_does_nothing_twice() {
    let mut b = Bucket::new("replan", true);
    let t = incident(&mut b);
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url()]);
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "r"]);
    assert_eq!(
        by_action(&c, "r"),
        "add_delete_marker:1 copy_version:5 delete_marker:1"
    );
    let applied = s3rewind_ok(&c, &["apply", "r", "--yes"]);
    assert_eq!(
        catalog_scalar::<i64>(&c, "SELECT count(*) FROM plan_review WHERE plan = 'r' AND status <> 'done'"),
        0,
        "{applied}\n{}",
        catalog_scalar::<String>(&c, "SELECT group_concat(key || ': ' || status || ' ' || coalesce(error, ''), char(10)) FROM plan_review WHERE plan = 'r'")
    );
    let versions_after_r = b.listing().len();

    // The runbook's drift step: the plan's keys listed again, a new plan.
    s3rewind_ok(&c, &["scan", &b.url(), "--keys-of", "r"]);
    let made = s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "r2"]);
    assert!(
        made.contains("5 keys already as at T"),
        "{made}\n{}",
        histories(&c, "r2")
    );
    assert_eq!(by_action(&c, "r2"), "already:5");
    assert_eq!(known_by(&c, "r2"), "journal:5");
    let shown = s3rewind_ok(&c, &["plan", "show", "r2", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["actions"], 0, "{shown:#}");
    assert_eq!(shown["already"]["keys"], 5, "{shown:#}");
    assert_eq!(shown["already"]["by"]["journal"], 5, "{shown:#}");
    s3rewind_ok(&c, &["apply", "r2", "--yes"]);
    assert_eq!(b.listing().len(), versions_after_r, "r2 wrote nothing");
    let verified = s3rewind_ok(&c, &["verify", "r2"]);
    assert!(verified.contains("5 of 5 keys"), "{verified}");
    let report = w.path("r2.html");
    s3rewind_ok(&c, &["report", "r2", "--out", report.to_str().unwrap()]);
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(
        page.contains("<span data-figure=\"already-keys\">5</span>"),
        "the report counts them"
    );

    // Another writer puts other bytes of the same size on k0, writes the
    // content of T again on k1, and on k2 in another storage class: k0 and
    // k2 need a copy (an ETag says nothing of the class).
    b.put("k0", b"evil-0");
    b.put("k1", b"good-1");
    runtime().block_on(async {
        b.client
            .put_object()
            .bucket(&b.name)
            .key("k2")
            .storage_class(aws_sdk_s3::types::StorageClass::StandardIa)
            .body(ByteStream::from_static(b"good-2"))
            .send()
            .await
            .expect("put k2")
    });
    s3rewind_ok(&c, &["scan", &b.url(), "--keys-of", "r"]);
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "r3"]);
    assert_eq!(by_action(&c, "r3"), "already:3 copy_version:2");
    assert_eq!(known_by(&c, "r3"), "etag:1 journal:2");
    assert_eq!(
        catalog_scalar::<String>(
            &c,
            "SELECT group_concat(key, ' ') FROM (SELECT key FROM plan_review
             WHERE plan = 'r3' AND action = 'copy_version' ORDER BY key)"
        ),
        "k0 k2"
    );
    // r2 said those keys were already as at T: it is stale now.
    let shown = s3rewind_ok(&c, &["plan", "show", "r2", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["stale"]["keys"], 3, "{shown:#}");
    // Asked to, a restore copies even what holds the content already.
    s3rewind_ok(
        &c,
        &[
            "plan",
            "restore",
            "--to",
            &t,
            "--name",
            "all",
            "--copy-same-content",
        ],
    );
    assert_eq!(by_action(&c, "all"), "copy_version:5");

    // From a fresh scan into a new catalog, the journal is gone: the
    // copies are known by their size and MD5 ETag.
    let fresh = w.path("fresh.db");
    s3rewind_ok(&fresh, &["scan", &b.url()]);
    s3rewind_ok(&fresh, &["plan", "restore", "--to", &t, "--name", "f"]);
    assert_eq!(by_action(&fresh, "f"), "already:3 copy_version:2");
    assert_eq!(known_by(&fresh, "f"), "etag:3");
    s3rewind_ok(&fresh, &["apply", "f", "--yes"]);
    for i in 0..5 {
        assert_eq!(
            b.get(&format!("k{i}")),
            Some(format!("good-{i}").into_bytes()),
            "k{i}"
        );
    }
    let verified = s3rewind_ok(&fresh, &["verify", "f"]);
    assert!(verified.contains("5 of 5 keys"), "{verified}");
}

/// A part of `n` bytes, differing by `seed`.
fn bytes_of(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

#[test]
fn multipart_and_kms_copies_are_known_through_the_journal_only() {
    // s3sim: moto neither makes SSE-KMS ETags nor keeps a copy's apart.
    let server = start_server(ServerKind::S3sim, &[]);
    let mut b = Bucket::on(&server, &unique_bucket("replan-mp"), true);
    let parts = [bytes_of(4, 5 * 1024 * 1024), bytes_of(5, 1000)];
    b.put_parts("mp", &parts);
    b.put_kms("kms", &bytes_of(6, 2000));
    let t = mark_t();
    b.put("mp", b"bad");
    b.put("kms", b"bad");
    let w = Workdir::new();
    let c = w.catalog();
    let run = |catalog: &Path, args: &[&str]| s3rewind_at_ok(&server, catalog, args);
    run(&c, &["scan", &b.url()]);
    run(&c, &["plan", "restore", "--to", &t, "--name", "r"]);
    run(&c, &["apply", "r", "--yes"]);
    // Neither copy has its source's ETag: a multipart source's `-2`, an
    // SSE-KMS one's drawn anew.
    let etags: i64 = catalog_scalar(
        &c,
        "SELECT count(DISTINCT h.etag) FROM plan_review r JOIN entry_history h
         ON h.key = r.key AND h.version_id IN (r.version_id, r.result_version_id)
         WHERE r.plan = 'r'",
    );
    assert_eq!(etags, 4, "each copy's ETag differs from its source's");

    run(&c, &["scan", &b.url(), "--keys-of", "r"]);
    run(&c, &["plan", "restore", "--to", &t, "--name", "r2"]);
    assert_eq!(by_action(&c, "r2"), "already:2");
    assert_eq!(known_by(&c, "r2"), "journal:2");
    let verified = run(&c, &["verify", "r2"]);
    assert!(verified.contains("2 of 2 keys"), "{verified}");

    // Without the journal nothing tells these copies from other bytes of
    // the same size: a fresh catalog copies again (safe, not free).
    let fresh = w.path("fresh.db");
    run(&fresh, &["scan", &b.url()]);
    run(&fresh, &["plan", "restore", "--to", &t, "--name", "f"]);
    assert_eq!(by_action(&fresh, "f"), "copy_version:2");
}
