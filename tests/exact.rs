//! Exact writes under S3's real semantics (issue 26), one test per case,
//! each on an s3sim of its own: nothing is attributed to a plan unless it
//! is provably the plan's, every write carries the strongest guard S3
//! offers for it, and the happy path pays nothing for either.
//!
//! What S3 does that these rely on (and s3sim imitates):
//!
//! - CopyObject and CompleteMultipartUpload take `If-Match` /
//!   `If-None-Match: *` and judge them when the write completes: 412, or
//!   404 to an `If-Match` on a key with no current object (API reference,
//!   CopyObject, CompleteMultipartUpload).
//! - DeleteObject without a version id takes `If-Match` on general
//!   purpose buckets since 2025-09: 412 when the current ETag differs, 404
//!   when the key has no current version (user guide, "How to perform
//!   conditional deletes"). A version's delete takes no condition.
//! - A single-request copy of an object uploaded in parts gets a new (MD5)
//!   ETag; SSE-KMS objects have ETags that are no MD5; the full-object
//!   checksum is copied (API reference, Object and CopyObject).
//! - A client that gives up before the answer does not know whether the
//!   copy happened ("Amazon S3 might cancel the copy"; API reference,
//!   CopyObject); a 200 OK may carry an `<Error>` for CopyObject,
//!   UploadPartCopy and CompleteMultipartUpload.
//!
//! (s3sim only: moto cannot misbehave on purpose, and ignores conditions
//! on copies.)

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use s3sim::Op;

fn spawn(server: &Server, catalog: &Path, args: &[&str]) -> Child {
    s3rewind_command(catalog)
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn s3rewind")
}

/// Runs s3rewind and kills it (SIGKILL) as soon as `reached` holds; fails
/// if the command ends on its own before.
#[track_caller]
fn kill_when(
    server: &Server,
    catalog: &Path,
    args: &[&str],
    what: &str,
    reached: impl Fn() -> bool,
) {
    let mut child = spawn(server, catalog, args);
    let mut ended = false;
    wait_until(what, Duration::from_secs(120), || {
        if let Ok(Some(_)) = child.try_wait() {
            ended = true;
            return true;
        }
        reached()
    });
    assert!(
        !ended,
        "s3rewind {args:?} ended before {what}: {}",
        stderr_of(&mut child)
    );
    child.kill().expect("kill -9");
    child.wait().expect("reap the child");
}

/// What the catalog records of plan `plan`'s one action on `key` (of
/// `kind`, if given).
#[derive(Debug)]
struct Recorded {
    id: i64,
    status: String,
    result: Option<String>,
    candidate: Option<String>,
    matched_by: Option<String>,
    error: Option<String>,
}

fn recorded(catalog: &Path, plan: &str, key: &str, kind: &str) -> Recorded {
    let conn = rusqlite::Connection::open(catalog).expect("open catalog");
    conn.query_row(
        "SELECT id, status, result_version_id, candidate_version_id, matched_by, error
         FROM plan_review WHERE plan = ?1 AND key = ?2 AND action = ?3",
        [plan, key, kind],
        |r| {
            Ok(Recorded {
                id: r.get(0)?,
                status: r.get(1)?,
                result: r.get(2)?,
                candidate: r.get(3)?,
                matched_by: r.get(4)?,
                error: r.get(5)?,
            })
        },
    )
    .unwrap_or_else(|e| panic!("{plan} {kind} {key}: {e}"))
}

/// Every status of plan `plan`'s actions, counted: `status:n` joined by spaces.
fn statuses(catalog: &Path, plan: &str) -> String {
    catalog_scalar(
        catalog,
        &format!(
            "SELECT group_concat(s, ' ') FROM (SELECT status || ':' || count(*) AS s
             FROM plan_review WHERE plan = '{plan}' GROUP BY status ORDER BY status)"
        ),
    )
}

/// A key's entries in the bucket, newest first: (version id, is marker, ETag).
fn entries(b: &Bucket, key: &str) -> Vec<(String, bool, Option<String>)> {
    runtime().block_on(async {
        let page = b
            .client
            .list_object_versions()
            .bucket(&b.name)
            .prefix(key)
            .send()
            .await
            .expect("list versions");
        let mut out: Vec<(i64, String, bool, Option<String>)> = Vec::new();
        for v in page.versions().iter().filter(|v| v.key() == Some(key)) {
            out.push((
                v.last_modified().map_or(0, |t| t.as_nanos() as i64),
                v.version_id().unwrap_or_default().to_owned(),
                false,
                v.e_tag().map(|e| e.trim_matches('"').to_owned()),
            ));
        }
        for m in page
            .delete_markers()
            .iter()
            .filter(|m| m.key() == Some(key))
        {
            out.push((
                m.last_modified().map_or(0, |t| t.as_nanos() as i64),
                m.version_id().unwrap_or_default().to_owned(),
                true,
                None,
            ));
        }
        // Newest first, as S3 lists a key (ties keep the listing's order).
        out.sort_by_key(|e| std::cmp::Reverse(e.0));
        out.into_iter().map(|(_, v, m, e)| (v, m, e)).collect()
    })
}

/// The multipart uploads in progress in a bucket.
fn uploads(b: &Bucket) -> usize {
    runtime().block_on(async {
        b.client
            .list_multipart_uploads()
            .bucket(&b.name)
            .send()
            .await
            .expect("list uploads")
            .uploads()
            .len()
    })
}

/// `n` bytes that differ from `other_n` bytes of another `seed`.
fn bytes_of(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

/// A scan of `b` into `catalog`, and plan `r`: a restore to `t`.
fn scan_and_restore(server: &Server, catalog: &Path, b: &Bucket, t: &str) {
    s3rewind_at_ok(server, catalog, &["scan", &b.url()]);
    s3rewind_at_ok(
        server,
        catalog,
        &["plan", "restore", "--to", t, "--name", "r"],
    );
}

/// Requests of every kind `server` served while `f` ran.
fn served_by(server: &Server, f: impl FnOnce()) -> Vec<(Op, u64)> {
    let before: Vec<u64> = Op::ALL.iter().map(|op| server.served(*op)).collect();
    f();
    Op::ALL
        .iter()
        .zip(before)
        .map(|(op, b)| (*op, server.served(*op) - b))
        .collect()
}

fn count(served: &[(Op, u64)], op: Op) -> u64 {
    served.iter().find(|(o, _)| *o == op).map_or(0, |(_, n)| *n)
}

// 1. A resumed multipart copy is recognised by the upload it recorded,
//    never by size alone.

/// `big`: a version of 4,000 bytes before T, a short one written by
/// mistake after it. Returns T.
fn big_incident(b: &mut Bucket) -> String {
    b.put("big", &bytes_of(1, 4000));
    let t = mark_t();
    b.put("big", b"truncated by mistake");
    t
}

#[test]
fn a_killed_multipart_copy_is_never_recognised_by_size_alone() {
    // 150 ms a request: the kill lands between the upload's creation and
    // its completion (two round trips later).
    let server = start_server(ServerKind::S3sim, &["--latency-ms", "150"]);
    let mut b = Bucket::on(&server, &unique_bucket("mp-kill"), true);
    // `small`: the plan's other copy, so that it has something to undo.
    b.put("small", b"small at T");
    let t = big_incident(&mut b);
    b.put("small", b"small bad");
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    let apply = [
        "apply",
        "r",
        "--yes",
        "--multipart-threshold",
        "0",
        "--concurrency",
        "1",
    ];
    kill_when(&server, &c, &apply, "the upload to be created", || {
        server.served(Op::CreateMultipartUpload) >= 1
    });
    assert_eq!(server.served(Op::CompleteMultipartUpload), 0);
    // Another writer, after the kill: a version of the very same size.
    let theirs = b.put("big", &bytes_of(2, 4000));
    let out = s3rewind_at_ok(&server, &c, &apply);
    let copy = recorded(&c, "r", "big", "copy_version");
    assert!(
        copy.status == "drifted" || copy.status == "uncertain",
        "{copy:?}\n{out}"
    );
    assert_eq!(copy.result, None, "{copy:?}");
    assert_eq!(recorded(&c, "r", "small", "copy_version").status, "done");
    // Undo takes back the other copy and leaves the writer's version on top.
    s3rewind_at_ok(&server, &c, &["plan", "undo", "r", "--name", "back"]);
    let planned: String = catalog_scalar(
        &c,
        "SELECT group_concat(key || ' ' || action) FROM plan_review WHERE plan = 'back'",
    );
    assert_eq!(planned, "small delete_version");
    s3rewind_at_ok(&server, &c, &["apply", "back", "--yes"]);
    assert_eq!(b.get("small"), Some(b"small bad".to_vec()));
    assert_eq!(b.get("big"), Some(bytes_of(2, 4000)));
    assert_eq!(entries(&b, "big")[0].0, theirs);
}

#[test]
fn a_multipart_copy_that_landed_after_the_kill_is_recognised_by_its_recorded_upload() {
    // Completions take 400 ms (whitespace meanwhile): the kill lands while
    // one works, and it lands all the same.
    let server = start_server(ServerKind::S3sim, &["--copy-delay-ms", "400"]);
    let mut b = Bucket::on(&server, &unique_bucket("mp-landed"), true);
    let t = big_incident(&mut b);
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    let apply = ["apply", "r", "--yes", "--multipart-threshold", "0"];
    kill_when(&server, &c, &apply, "the completion to be sent", || {
        server.served(Op::CompleteMultipartUpload) >= 1
    });
    let (upload, upload_etag): (String, String) = {
        let conn = rusqlite::Connection::open(&c).unwrap();
        conn.query_row(
            "SELECT upload_id, upload_etag FROM actions WHERE kind = 'copy_version'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the upload was recorded before its completion")
    };
    assert!(
        !upload.is_empty() && upload_etag.ends_with("-1"),
        "{upload_etag}"
    );
    wait_until("the completion to land", Duration::from_secs(30), || {
        entries(&b, "big").len() == 3
    });
    let ours = entries(&b, "big")[0].clone();
    assert_eq!(ours.2.as_deref(), Some(upload_etag.as_str()));
    // Another writer, after it: the same size as the copy.
    let theirs = b.put("big", &bytes_of(2, 4000));
    s3rewind_at_ok(&server, &c, &apply);
    let copy = recorded(&c, "r", "big", "copy_version");
    assert_eq!(copy.status, "done", "{copy:?}");
    assert_eq!(copy.result.as_deref(), Some(ours.0.as_str()), "{copy:?}");
    assert_eq!(copy.matched_by.as_deref(), Some("upload"), "{copy:?}");
    // Undo deletes the copy, not the other writer's version.
    s3rewind_at_ok(&server, &c, &["plan", "undo", "r", "--name", "back"]);
    s3rewind_at_ok(&server, &c, &["apply", "back", "--yes"]);
    let now = entries(&b, "big");
    assert_eq!(now[0].0, theirs);
    assert!(!now.iter().any(|e| e.0 == ours.0), "{now:?}");
    assert_eq!(b.get("big"), Some(bytes_of(2, 4000)));
}

// 2. Multipart copies carry the condition.

#[test]
fn a_multipart_copy_onto_a_key_written_since_the_scan_is_drifted() {
    let server = start_server(ServerKind::S3sim, &[]);
    let mut b = Bucket::on(&server, &unique_bucket("mp-cond"), true);
    let t = big_incident(&mut b);
    b.put("other", &bytes_of(3, 3000));
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    let theirs = b.put("big", b"written after the scan");
    let out = s3rewind_at_ok(
        &server,
        &c,
        &["apply", "r", "--yes", "--multipart-threshold", "0"],
    );
    assert!(out.contains("1 drifted"), "{out}");
    let copy = recorded(&c, "r", "big", "copy_version");
    assert_eq!(copy.status, "drifted", "{copy:?}");
    assert!(
        copy.error.as_deref().unwrap_or("").contains(&theirs),
        "{copy:?}"
    );
    // The completion was sent and refused; the upload is gone.
    assert!(server.served(Op::CompleteMultipartUpload) >= 1);
    assert_eq!(entries(&b, "big")[0].0, theirs);
    assert_eq!(b.get("big"), Some(b"written after the scan".to_vec()));
    assert_eq!(uploads(&b), 0);
}

// 3. A new delete marker in flight never takes another writer's as its own.

#[test]
fn a_marker_in_flight_at_a_kill_never_takes_another_writers_marker_as_its_own() {
    let server = start_server(ServerKind::S3sim, &["--latency-ms", "200"]);
    let mut b = Bucket::on(&server, &unique_bucket("marker-kill"), true);
    b.put("old", b"before T");
    let t = mark_t();
    b.put("new", b"should not exist");
    b.put("old", b"overwritten after T");
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    let apply = ["apply", "r", "--yes"];
    kill_when(&server, &c, &apply, "the marker to be in flight", || {
        catalog_count(
            &c,
            "SELECT count(*) FROM actions WHERE status = 'in_flight'",
        ) >= 1
    });
    // Another writer deletes the key on purpose.
    let theirs = b.delete("new");
    let out = s3rewind_at_ok(&server, &c, &apply);
    let marker = recorded(&c, "r", "new", "add_delete_marker");
    assert_eq!(marker.status, "uncertain", "{marker:?}\n{out}");
    assert_eq!(marker.result, None);
    let candidate = marker.candidate.clone().expect("a candidate");
    assert!(
        entries(&b, "new").iter().any(|e| e.0 == candidate && e.1),
        "{candidate}"
    );
    // A rerun looks again and sends nothing onto the key.
    let before = entries(&b, "new");
    s3rewind_at_ok(&server, &c, &apply);
    assert_eq!(entries(&b, "new"), before);
    assert_eq!(
        recorded(&c, "r", "new", "add_delete_marker").status,
        "uncertain"
    );
    // The key is hidden, as the plan meant; verify says what is unsettled.
    let out = s3rewind_at_ok(&server, &c, &["verify", "r"]);
    assert!(
        out.contains("2 of 2 keys as the plan meant") && out.contains("1 actions are uncertain"),
        "{out}"
    );
    // Undo never removes it: the key stays deleted, their marker stays.
    assert_eq!(recorded(&c, "r", "old", "copy_version").status, "done");
    s3rewind_at_ok(&server, &c, &["plan", "undo", "r", "--name", "back"]);
    let planned: String = catalog_scalar(
        &c,
        "SELECT group_concat(key || ' ' || action) FROM plan_review WHERE plan = 'back'",
    );
    assert_eq!(planned, "old delete_version");
    s3rewind_at_ok(&server, &c, &["apply", "back", "--yes"]);
    assert_eq!(b.get("old"), Some(b"overwritten after T".to_vec()));
    assert_eq!(b.get("new"), None);
    assert!(entries(&b, "new").iter().any(|e| e.0 == theirs));
    // A person settles it (here: not ours).
    s3rewind_at_ok(
        &server,
        &c,
        &["plan", "resolve", "r", &marker.id.to_string(), "--not-ours"],
    );
    let settled = recorded(&c, "r", "new", "add_delete_marker");
    assert_eq!(settled.status, "drifted");
    assert_eq!(settled.matched_by.as_deref(), Some("person"));
}

// 4. The probe.

#[test]
fn where_conditions_are_ignored_the_guard_is_the_listing_and_said_before_the_question() {
    let server = start_server(ServerKind::S3sim, &["--ignore-conditions"]);
    let mut b = Bucket::on(&server, &unique_bucket("probe"), true);
    b.put("a", b"a at T");
    b.put("b", b"b at T");
    let t = mark_t();
    b.put("a", b"a bad");
    b.put("b", b"b bad");
    b.put("new", b"should not exist");
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    // Before the question (no terminal, no --yes: refused after it).
    let out = s3rewind_at(&server, &c, &["apply", "r"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for what in ["copies", "new delete markers"] {
        assert!(
            text.contains(&format!(
                "guard: this endpoint ignores conditions on {what}"
            )),
            "{text}"
        );
    }
    let dry = s3rewind_at_ok(&server, &c, &["apply", "r", "--dry-run"]);
    assert!(dry.contains("ignores conditions on copies"), "{dry}");
    let json: serde_json::Value = serde_json::from_str(&s3rewind_at_ok(
        &server,
        &c,
        &["apply", "r", "--dry-run", "--json"],
    ))
    .unwrap();
    assert_eq!(json["guards"]["copies"]["guard"], "listing", "{json:#}");
    assert_eq!(json["guards"]["markers"]["guard"], "listing", "{json:#}");
    // The listing guards: a key written since is left alone.
    b.put("a", b"a written after the scan");
    let json: serde_json::Value = serde_json::from_str(&s3rewind_at_ok(
        &server,
        &c,
        &["apply", "r", "--yes", "--json"],
    ))
    .unwrap();
    assert_eq!(json["run"]["guards"]["copies"]["guard"], "listing");
    assert_eq!(json["run"]["drifted"], 1, "{json:#}");
    assert_eq!(b.get("a"), Some(b"a written after the scan".to_vec()));
    assert_eq!(b.get("b"), Some(b"b at T".to_vec()));
    assert_eq!(b.get("new"), None);
    assert!(!b
        .listing()
        .iter()
        .any(|e| e.0.starts_with(".s3rewind-probe/")));
}

#[test]
fn a_probe_whose_source_is_gone_does_not_count_as_honoured() {
    let server = start_server(ServerKind::S3sim, &["--ignore-conditions"]);
    let mut b = Bucket::on(&server, &unique_bucket("probe-gone"), true);
    let a_at_t = b.put("a", b"a at T");
    b.put("b", b"b at T");
    let t = mark_t();
    b.put("a", b"a bad");
    b.put("b", b"b bad");
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    // The version the probe copies (the plan's first copy's) is gone.
    b.delete_version("a", &a_at_t);
    b.put("b", b"b written after the scan");
    let out = s3rewind_at(&server, &c, &["apply", "r", "--yes"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("guard: whether this endpoint honours conditions on copies is not known"),
        "{text}"
    );
    // The copy of the version that is gone fails (exit 3).
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert_eq!(recorded(&c, "r", "a", "copy_version").status, "failed");
    // Listed first: the key written since is left alone.
    assert_eq!(recorded(&c, "r", "b", "copy_version").status, "drifted");
    assert_eq!(b.get("b"), Some(b"b written after the scan".to_vec()));
}

// 5. A plan that copies onto a key and removes entries of it.

#[test]
fn a_plan_that_copies_onto_a_key_and_removes_entries_of_it_copies_first_guarded() {
    let server = start_server(ServerKind::S3sim, &[]);
    for verify in [false, true] {
        let mut b = Bucket::on(&server, &unique_bucket("mixed"), true);
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for key in ["k1", "k2"] {
            good.push(b.put(key, format!("{key} good").as_bytes()));
            bad.push(b.put(key, format!("{key} bad 1").as_bytes()));
            bad.push(b.put(key, format!("{key} bad 2").as_bytes()));
        }
        let w = Workdir::new();
        let c = w.catalog();
        s3rewind_at_ok(&server, &c, &["scan", &b.url()]);
        let list = |v: &[String]| {
            v.iter()
                .map(|v| format!("'{v}'"))
                .collect::<Vec<_>>()
                .join(",")
        };
        // The removals first in the plan, the copies last.
        let query = format!(
            "SELECT 'delete_version', key, version_id FROM objects WHERE version_id IN ({}) \
             UNION ALL SELECT 'copy_version', key, version_id FROM objects WHERE version_id IN ({})",
            list(&bad),
            list(&good)
        );
        s3rewind_at_ok(
            &server,
            &c,
            &["plan", "sql", "--name", "mixed", "--query", &query],
        );
        // Another writer writes k2 after the scan.
        let theirs = b.put("k2", b"k2 written after the scan");
        let mut apply = vec!["apply", "mixed", "--yes"];
        if verify {
            apply.push("--verify");
        }
        let out = s3rewind_at_ok(&server, &c, &apply);
        let skipped: i64 = catalog_scalar(
            &c,
            "SELECT count(*) FROM plan_review WHERE plan = 'mixed' AND status = 'skipped'",
        );
        assert_eq!(skipped, 0, "--verify {verify}: {out}");
        // k1: copied, then its bad versions removed.
        let k1: Vec<String> = entries(&b, "k1").into_iter().map(|e| e.0).collect();
        let copy = recorded(&c, "mixed", "k1", "copy_version");
        assert_eq!(copy.status, "done", "--verify {verify}: {copy:?}");
        assert_eq!(k1, [copy.result.clone().unwrap(), good[0].clone()]);
        assert_eq!(b.get("k1"), Some(b"k1 good".to_vec()));
        // k2: the copy was refused by its condition, and nothing of the
        // key was removed under the other writer's version.
        let copy = recorded(&c, "mixed", "k2", "copy_version");
        assert_eq!(copy.status, "drifted", "--verify {verify}: {copy:?}");
        assert_eq!(
            statuses(&c, "mixed"),
            "done:3 drifted:3",
            "--verify {verify}"
        );
        let k2: Vec<String> = entries(&b, "k2").into_iter().map(|e| e.0).collect();
        assert_eq!(
            k2,
            [theirs, bad[3].clone(), bad[2].clone(), good[1].clone()]
        );
    }
}

// 6. Conditional new delete markers.

#[test]
fn a_new_key_written_again_after_the_scan_is_not_hidden_by_restores_marker() {
    let server = start_server(ServerKind::S3sim, &[]);
    let mut b = Bucket::on(&server, &unique_bucket("new-marker"), true);
    b.put("old", b"before T");
    let t = mark_t();
    b.put("new/1", b"should not exist");
    b.put("new/2", b"should not exist either");
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    let theirs = b.put("new/1", b"written again after the scan");
    let out = s3rewind_at_ok(&server, &c, &["apply", "r", "--yes"]);
    assert!(
        out.contains("new delete markers are sent on the condition"),
        "{out}"
    );
    let marker = recorded(&c, "r", "new/1", "add_delete_marker");
    assert_eq!(marker.status, "drifted", "{marker:?}");
    assert!(
        marker.error.as_deref().unwrap_or("").contains(&theirs),
        "{marker:?}"
    );
    assert_eq!(
        b.get("new/1"),
        Some(b"written again after the scan".to_vec())
    );
    assert_eq!(
        recorded(&c, "r", "new/2", "add_delete_marker").status,
        "done"
    );
    assert_eq!(b.get("new/2"), None);
}

// 7. A copy whose ETag differs from its source's, its answer lost.

#[test]
fn a_lost_copy_of_a_multipart_or_kms_source_is_recognised_by_checksum_and_size() {
    // The dice of seed 31 at 0.5: the four writes of the set-up and the
    // probe are answered, the two copies are not (they are made at once,
    // 50 ms before the look that follows reads the key).
    let server = start_server(
        ServerKind::S3sim,
        &[
            "--latency-ms",
            "50",
            "--fault-late-commit",
            "0.5",
            "--late-commit-ms",
            "0",
            "--seed",
            "31",
        ],
    );
    let mut b = Bucket::on(&server, &unique_bucket("lost-etag"), true);
    let parts = [bytes_of(4, 5 * 1024 * 1024), bytes_of(5, 1000)];
    b.put_parts("mp", &parts);
    b.put_kms("kms", &bytes_of(6, 2000));
    let t = mark_t();
    b.put("mp", b"bad");
    b.put("kms", b"bad");
    assert_eq!(server.served(Op::InjectedLateCommit), 0);
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    let out = s3rewind_at_ok(&server, &c, &["apply", "r", "--yes", "--concurrency", "1"]);
    assert_eq!(server.served(Op::InjectedLateCommit), 2, "{out}");
    for key in ["mp", "kms"] {
        let copy = recorded(&c, "r", key, "copy_version");
        let now = entries(&b, key);
        assert_eq!(now.len(), 3, "{key}: one copy: {now:?}");
        assert_eq!(copy.status, "done", "{key}: {copy:?}");
        assert_eq!(copy.matched_by.as_deref(), Some("checksum"), "{key}");
        assert_eq!(copy.result.as_deref(), Some(now[0].0.as_str()), "{key}");
    }
    let whole: Vec<u8> = parts.concat();
    assert_eq!(b.get("mp"), Some(whole));
    assert_eq!(b.get("kms"), Some(bytes_of(6, 2000)));
}

// 8. A copy made late.

#[test]
fn a_copy_made_after_its_answer_was_lost_is_made_once_and_a_412_on_its_retry_is_judged() {
    // 100 ms a request; the dice of seed 28 at 0.5: the two writes of the
    // set-up and the probe are answered, the copy's first attempt is not,
    // and it is made 150 ms later: after the look that finds nothing, and
    // before the second attempt, which S3 refuses (412: the key changed).
    let server = start_server(
        ServerKind::S3sim,
        &[
            "--latency-ms",
            "100",
            "--fault-late-commit",
            "0.5",
            "--late-commit-ms",
            "150",
            "--seed",
            "28",
        ],
    );
    let mut b = Bucket::on(&server, &unique_bucket("late"), true);
    let good = b.put("k", b"good");
    let t = mark_t();
    b.put("k", b"bad");
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    let served = served_by(&server, || {
        let out = s3rewind_at_ok(&server, &c, &["apply", "r", "--yes"]);
        assert!(out.contains("1 done"), "{out}");
    });
    assert_eq!(count(&served, Op::InjectedLateCommit), 1);
    // The probe, the attempt whose answer was lost, the refused one.
    assert_eq!(count(&served, Op::CopyObject), 3, "{served:?}");
    let copy = recorded(&c, "r", "k", "copy_version");
    let now = entries(&b, "k");
    assert_eq!(now.len(), 3, "made once: {now:?}");
    assert_eq!(copy.status, "done", "{copy:?}");
    assert_eq!(copy.matched_by.as_deref(), Some("etag"), "{copy:?}");
    assert_eq!(copy.result.as_deref(), Some(now[0].0.as_str()));
    assert_eq!(b.get("k"), Some(b"good".to_vec()));
    assert_ne!(copy.result.as_deref(), Some(good.as_str()));
}

#[test]
fn an_unguarded_copy_whose_answer_was_lost_is_not_sent_again_blindly() {
    // As above, on a server that ignores conditions: the copy goes
    // without one (the key is listed first), so a second attempt could
    // land beside the first, which is made 150 ms after its answer was
    // lost, after the look that finds nothing.
    let server = start_server(
        ServerKind::S3sim,
        &[
            "--latency-ms",
            "100",
            "--fault-late-commit",
            "0.5",
            "--late-commit-ms",
            "150",
            "--seed",
            "28",
            "--ignore-conditions",
        ],
    );
    let mut b = Bucket::on(&server, &unique_bucket("late-unguarded"), true);
    b.put("k", b"good");
    let t = mark_t();
    b.put("k", b"bad");
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    let out = s3rewind_at_ok(&server, &c, &["apply", "r", "--yes"]);
    assert!(out.contains("ignores conditions on copies"), "{out}");
    assert_eq!(server.served(Op::InjectedLateCommit), 1);
    let copy = recorded(&c, "r", "k", "copy_version");
    assert_eq!(copy.status, "uncertain", "{copy:?}\n{out}");
    assert_eq!(copy.candidate, None, "{copy:?}");
    // It lands; the next run recognises it, and sends nothing.
    wait_until("the late copy to land", Duration::from_secs(30), || {
        entries(&b, "k").len() == 3
    });
    let copies = server.served(Op::CopyObject);
    s3rewind_at_ok(&server, &c, &["apply", "r", "--yes"]);
    // (the probe's copy only)
    assert_eq!(server.served(Op::CopyObject), copies + 1);
    let copy = recorded(&c, "r", "k", "copy_version");
    let now = entries(&b, "k");
    assert_eq!(now.len(), 3, "made once: {now:?}");
    assert_eq!(copy.status, "done", "{copy:?}");
    assert_eq!(copy.matched_by.as_deref(), Some("etag"));
    assert_eq!(copy.result.as_deref(), Some(now[0].0.as_str()));
}

// 9. `200 OK` with an `<Error>`.

#[test]
fn copies_answered_200_with_an_error_are_retried_after_a_look_and_the_restore_is_exact() {
    let server = seeded_server(300, 3, 0.3, 5, &["--fault-copy-200-error", "0.3"]);
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_at_ok(&server, &c, &strs(&seeded_scan_args(&server, "1000")));
    let t = plan_restore_within(&c, 0.5);
    let out = s3rewind_at_ok(&server, &c, &["apply", "r", "--yes", "--block-size", "50"]);
    assert!(
        out.contains(" 0 failed, 0 skipped, 0 drifted, 0 uncertain"),
        "{out}"
    );
    assert!(server.served(Op::InjectedCopy200Error) > 0);
    let now = Workdir::new();
    s3rewind_at_ok(
        &server,
        &now.catalog(),
        &strs(&seeded_scan_args(&server, "1000")),
    );
    assert_restored_exactly(&c, t, &now.catalog());
}

// 10. DeleteObjects: errors about keys not asked for; keys XML cannot carry.

#[test]
fn a_delete_batch_whose_answer_names_a_key_not_asked_for_is_not_counted_done() {
    for (p, seed) in [("1", "1"), ("0.5", "3")] {
        let server = start_server(
            ServerKind::S3sim,
            &["--fault-delete-unmatched", p, "--seed", seed],
        );
        let mut b = Bucket::on(&server, &unique_bucket("unmatched"), true);
        for i in 0..20 {
            let key = format!("k{i:02}");
            b.put(&key, b"data");
            b.delete(&key);
        }
        let since = "2000-01-01T00:00:00Z";
        let w = Workdir::new();
        let c = w.catalog();
        s3rewind_at_ok(&server, &c, &["scan", &b.url()]);
        s3rewind_at_ok(
            &server,
            &c,
            &["plan", "undelete", "--since", since, "--name", "u"],
        );
        let out = s3rewind_at(&server, &c, &["apply", "u", "--yes"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(server.served(Op::InjectedDeleteUnmatched) > 0, "{text}");
        // Sent again rather than trusted.
        assert!(server.served(Op::DeleteObjects) > 1, "{text}");
        match p {
            // Never a clean answer: not known, so not done.
            "1" => {
                assert_eq!(out.status.code(), Some(3), "{text}");
                assert_eq!(statuses(&c, "u"), "failed:20");
                let error: String =
                    catalog_scalar(&c, "SELECT error FROM plan_review WHERE plan = 'u' LIMIT 1");
                assert!(error.contains("not asked for"), "{error}");
            }
            _ => {
                assert!(out.status.success(), "{text}");
                assert_eq!(statuses(&c, "u"), "done:20");
                for i in 0..20 {
                    assert_eq!(b.get(&format!("k{i:02}")), Some(b"data".to_vec()));
                }
            }
        }
    }
}

#[test]
fn a_key_xml_cannot_carry_is_deleted_by_a_delete_object_of_its_own() {
    let server = start_server(ServerKind::S3sim, &[]);
    let mut b = Bucket::on(&server, &unique_bucket("xml"), true);
    let keys = ["plain", "ctl/\u{1}key"];
    for key in keys {
        b.put(key, b"data");
        b.delete(key);
    }
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_at_ok(&server, &c, &["scan", &b.url()]);
    s3rewind_at_ok(
        &server,
        &c,
        &[
            "plan",
            "undelete",
            "--since",
            "2000-01-01T00:00:00Z",
            "--name",
            "u",
        ],
    );
    let served = served_by(&server, || {
        s3rewind_at_ok(&server, &c, &["apply", "u", "--yes"]);
    });
    assert_eq!(statuses(&c, "u"), "done:2");
    assert_eq!(count(&served, Op::DeleteObjects), 1, "{served:?}");
    assert_eq!(count(&served, Op::DeleteObject), 1, "{served:?}");
    for key in keys {
        assert_eq!(b.get(key), Some(b"data".to_vec()), "{key:?}");
    }
}

// SSE-C sources.

#[test]
fn a_copy_source_encrypted_with_a_customer_key_is_refused_at_check_time() {
    let server = start_server(ServerKind::S3sim, &[]);
    let mut b = Bucket::on(&server, &unique_bucket("sse-c"), true);
    let secret = [7u8; 32];
    runtime().block_on(async {
        use md5::Digest;
        b.client
            .put_object()
            .bucket(&b.name)
            .key("enc")
            .body(ByteStream::from_static(b"secret at T"))
            .sse_customer_algorithm("AES256")
            .sse_customer_key(aws_smithy_types::base64::encode(secret))
            .sse_customer_key_md5(aws_smithy_types::base64::encode(md5::Md5::digest(secret)))
            .send()
            .await
            .unwrap();
    });
    b.put("plain", b"plain at T");
    let t = mark_t();
    b.put("enc", b"overwritten");
    b.put("plain", b"overwritten");
    let w = Workdir::new();
    let c = w.catalog();
    scan_and_restore(&server, &c, &b, &t);
    let out = s3rewind_at(&server, &c, &["check", "--plan", "r"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("sse-c") && text.contains("customer-provided key") && text.contains("enc"),
        "{text}"
    );
    // apply refuses it before anything is sent.
    let listing = b.listing();
    let out = s3rewind_at(&server, &c, &["apply", "r", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("sse-c") && err.contains("--accept sse-c"),
        "{err}"
    );
    assert_eq!(b.listing(), listing);
    // Accepted: that copy fails, the others are made.
    let out = s3rewind_at(&server, &c, &["apply", "r", "--yes", "--accept", "sse-c"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(recorded(&c, "r", "enc", "copy_version").status, "failed");
    assert_eq!(recorded(&c, "r", "plain", "copy_version").status, "done");
    assert_eq!(b.get("plain"), Some(b"plain at T".to_vec()));
}

// 11. The happy path sends no extra request per action.

/// `n` keys × 3 kinds of action: `c/` keys overwritten after T (a copy
/// each), `d/` keys deleted after T (a marker removed each), `n/` keys
/// made after T (a new marker each). Returns T.
fn plain_incident(b: &mut Bucket, n: usize) -> String {
    for i in 0..n {
        b.put(&format!("c/{i:03}"), b"c at T");
        b.put(&format!("d/{i:03}"), b"d at T");
    }
    let t = mark_t();
    for i in 0..n {
        b.put(&format!("c/{i:03}"), b"c bad");
        b.delete(&format!("d/{i:03}"));
        b.put(&format!("n/{i:03}"), b"n bad");
    }
    t
}

#[test]
fn a_plain_restore_sends_one_request_per_write_and_one_delete_batch() {
    let server = start_server(ServerKind::S3sim, &[]);
    let mut fixed = Vec::new();
    for n in [40u64, 80] {
        let mut b = Bucket::on(&server, &unique_bucket("count"), true);
        let t = plain_incident(&mut b, n as usize);
        let w = Workdir::new();
        let c = w.catalog();
        scan_and_restore(&server, &c, &b, &t);
        let served = served_by(&server, || {
            let out = s3rewind_at_ok(&server, &c, &["apply", "r", "--yes"]);
            assert!(out.contains(&format!("{} done", 3 * n)), "{out}");
        });
        let get = |op| count(&served, op);
        // One CopyObject per copy, one DeleteObject per new marker, each
        // besides the probe of its kind; the removals in one batch.
        assert_eq!(get(Op::CopyObject), n + 1, "{served:?}");
        assert_eq!(get(Op::DeleteObject), n + 1, "{served:?}");
        assert_eq!(get(Op::DeleteObjects), 1, "{served:?}");
        // `check`'s sample of 32 copy sources (their KMS keys), and the
        // copy probe's source (S3 answers its If-Match 404: the scratch
        // key has no object; told from a missing source by one HEAD).
        assert_eq!(get(Op::HeadObject), 33, "{served:?}");
        for op in [
            Op::ListObjectVersions,
            Op::ListMultipartUploads,
            Op::GetObject,
            Op::PutObject,
            Op::CreateMultipartUpload,
            Op::UploadPartCopy,
            Op::CompleteMultipartUpload,
            Op::AbortMultipartUpload,
        ] {
            assert_eq!(get(op), 0, "{}: {served:?}", op.name());
        }
        // Everything else is per run: the bucket's configuration.
        let rest = get(Op::Requests)
            - get(Op::CopyObject)
            - get(Op::DeleteObject)
            - get(Op::DeleteObjects)
            - get(Op::HeadObject);
        fixed.push(rest);
        let restored = Workdir::new();
        s3rewind_at_ok(&server, &restored.catalog(), &["scan", &b.url()]);
        assert_restored_exactly(
            &c,
            model::time::parse_time(&t).unwrap(),
            &restored.catalog(),
        );
    }
    assert_eq!(fixed[0], fixed[1], "requests per run");
    assert!(fixed[0] < 20, "{} requests per run", fixed[0]);
}
