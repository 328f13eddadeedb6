//! `plan`: exact action sets from catalogs built without a network, and one
//! end-to-end run on a real S3 server.

mod common;

use common::fixture::{actions, build, expect, m, v, E};
use common::*;

const T: &str = "2024-05-01T12:00:00Z";

/// Every row of docs/design.md's point-in-time table, and the corner cases.
fn incident() -> Vec<(&'static str, Vec<E>)> {
    vec![
        // version V at T, latest is V: nothing.
        ("same", vec![v("s1", "2024-05-01T10:00:00Z")]),
        // version V at T, only delete markers newer: remove them (stacked).
        (
            "hidden",
            vec![
                m("h-m2", "2024-05-01T13:00:00Z"),
                m("h-m1", "2024-05-01T12:30:00Z"),
                v("h1", "2024-05-01T10:00:00Z"),
            ],
        ),
        // version V at T, data versions newer: copy V.
        (
            "overwritten",
            vec![
                v("o2", "2024-05-01T13:00:00Z"),
                v("o1", "2024-05-01T10:00:00Z"),
            ],
        ),
        // ...also when a delete marker sits on top of the newer data.
        (
            "overwritten-then-deleted",
            vec![
                m("od-m", "2024-05-01T14:00:00Z"),
                v("od2", "2024-05-01T13:00:00Z"),
                v("od1", "2024-05-01T10:00:00Z"),
            ],
        ),
        // absent at T, live now: add a delete marker.
        ("created-after", vec![v("c1", "2024-05-01T13:00:00Z")]),
        // deleted at T, live now: add a delete marker.
        (
            "deleted-then-recreated",
            vec![
                v("dr2", "2024-05-01T13:00:00Z"),
                m("dr-m", "2024-05-01T11:00:00Z"),
                v("dr1", "2024-05-01T10:00:00Z"),
            ],
        ),
        // absent at T, deleted now: nothing.
        (
            "created-then-deleted",
            vec![
                m("cd-m", "2024-05-01T14:00:00Z"),
                v("cd1", "2024-05-01T13:00:00Z"),
            ],
        ),
        // deleted before T and never re-created: nothing.
        (
            "deleted-before",
            vec![
                m("db-m", "2024-05-01T11:00:00Z"),
                v("db1", "2024-05-01T10:00:00Z"),
            ],
        ),
        // only delete markers: nothing.
        (
            "markers-only",
            vec![
                m("mo-2", "2024-05-01T13:00:00Z"),
                m("mo-1", "2024-05-01T09:00:00Z"),
            ],
        ),
        // Three entries in T's second: the listing order decides which was
        // current at T (t3), not the timestamp.
        (
            "same-second",
            vec![
                v("ss-after", "2024-05-01T12:30:00Z"),
                v("ss3", T),
                v("ss2", T),
                v("ss1", T),
            ],
        ),
        // A `null` version (written before versioning) is current at T.
        (
            "null-version",
            vec![
                v("nv2", "2024-05-01T13:00:00Z"),
                v("null", "2024-04-01T00:00:00Z"),
            ],
        ),
        // A key under another prefix, for --where.
        (
            "other/overwritten",
            vec![
                v("x2", "2024-05-01T13:00:00Z"),
                v("x1", "2024-05-01T10:00:00Z"),
            ],
        ),
    ]
}

fn restore_expected() -> Vec<(String, String, String)> {
    expect(&[
        ("delete_marker", "hidden", "h-m2"),
        ("delete_marker", "hidden", "h-m1"),
        ("copy_version", "overwritten", "o1"),
        ("copy_version", "overwritten-then-deleted", "od1"),
        ("add_delete_marker", "created-after", ""),
        ("add_delete_marker", "deleted-then-recreated", ""),
        ("copy_version", "same-second", "ss3"),
        ("copy_version", "null-version", "null"),
        ("copy_version", "other/overwritten", "x1"),
    ])
}

fn plan_ok(catalog: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    s3rewind_ok(catalog, &all)
}

#[test]
fn restore_follows_the_point_in_time_table() {
    let w = Workdir::new();
    build(&w.catalog(), &incident());
    let out = plan_ok(&w.catalog(), &["restore", "--to", T]);
    assert!(out.contains("plan restore-1: 9 actions"), "{out}");
    assert_eq!(actions(&w.catalog(), "restore-1"), restore_expected());

    // The same instant written with an offset is the same plan.
    plan_ok(
        &w.catalog(),
        &[
            "restore",
            "--to",
            "2024-05-01T14:00:00+02:00",
            "--name",
            "offset",
        ],
    );
    assert_eq!(actions(&w.catalog(), "offset"), restore_expected());

    // Ids are dense 1..n, and every action says why.
    let (n, max, whys): (i64, i64, i64) = {
        let c = rusqlite::Connection::open(w.catalog()).unwrap();
        c.query_row(
            "SELECT count(*), max(actions.id), count(why) FROM actions JOIN plans p ON p.id = plan_id WHERE p.name = 'restore-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    assert_eq!((n, max, whys), (9, 9, 9));
    // A copy carries the size and the key's newest version at scan time.
    let (size, latest): (i64, String) = {
        let c = rusqlite::Connection::open(w.catalog()).unwrap();
        c.query_row(
            "SELECT size, expected_latest FROM actions WHERE kind = 'copy_version' AND key = 'overwritten-then-deleted'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!((size, latest.as_str()), (100, "od-m"));
}

#[test]
fn restore_options_where_keep_new_keys_and_rollback() {
    let w = Workdir::new();
    build(&w.catalog(), &incident());

    plan_ok(
        &w.catalog(),
        &["restore", "--to", T, "--name", "keep", "--keep-new-keys"],
    );
    let want: Vec<_> = restore_expected()
        .into_iter()
        .filter(|a| a.0 != "add_delete_marker")
        .collect();
    assert_eq!(actions(&w.catalog(), "keep"), want);

    plan_ok(
        &w.catalog(),
        &[
            "restore",
            "--to",
            T,
            "--name",
            "other",
            "--where",
            "key LIKE 'other/%'",
        ],
    );
    assert_eq!(
        actions(&w.catalog(), "other"),
        expect(&[("copy_version", "other/overwritten", "x1")])
    );
    // --where sees the newest entry's columns: keys whose newest entry is a delete marker.
    plan_ok(
        &w.catalog(),
        &[
            "restore",
            "--to",
            T,
            "--name",
            "deleted-now",
            "--where",
            "kind = 'delete_marker'",
        ],
    );
    assert_eq!(
        actions(&w.catalog(), "deleted-now"),
        expect(&[
            ("delete_marker", "hidden", "h-m2"),
            ("delete_marker", "hidden", "h-m1"),
            ("copy_version", "overwritten-then-deleted", "od1"),
        ])
    );

    plan_ok(
        &w.catalog(),
        &["restore", "--to", T, "--name", "rb", "--mode", "rollback"],
    );
    assert_eq!(
        actions(&w.catalog(), "rb"),
        expect(&[
            ("delete_marker", "hidden", "h-m2"),
            ("delete_marker", "hidden", "h-m1"),
            ("delete_version", "overwritten", "o2"),
            ("delete_marker", "overwritten-then-deleted", "od-m"),
            ("delete_version", "overwritten-then-deleted", "od2"),
            ("delete_version", "created-after", "c1"),
            ("delete_version", "deleted-then-recreated", "dr2"),
            ("delete_marker", "created-then-deleted", "cd-m"),
            ("delete_version", "created-then-deleted", "cd1"),
            ("delete_marker", "markers-only", "mo-2"),
            ("delete_version", "same-second", "ss-after"),
            ("delete_version", "null-version", "nv2"),
            ("delete_version", "other/overwritten", "x2"),
        ])
    );
    plan_ok(
        &w.catalog(),
        &[
            "restore",
            "--to",
            T,
            "--name",
            "rb-keep",
            "--mode",
            "rollback",
            "--keep-new-keys",
        ],
    );
    let rb_keep = actions(&w.catalog(), "rb-keep");
    assert!(!rb_keep
        .iter()
        .any(|a| a.1 == "created-after" || a.1 == "deleted-then-recreated"));
    assert_eq!(rb_keep.len(), 11);
}

#[test]
fn restore_before_the_first_version_and_in_the_future() {
    let w = Workdir::new();
    build(&w.catalog(), &incident());
    // Before any data: refused (it hides every key), unless asked for.
    let err = s3rewind_err(
        &w.catalog(),
        &["plan", "restore", "--to", "2020-01-01", "--name", "before"],
    );
    assert!(
        err.contains("before the oldest entry") && err.contains("--allow-before-data"),
        "{err}"
    );
    plan_ok(
        &w.catalog(),
        &[
            "restore",
            "--to",
            "2020-01-01",
            "--name",
            "before",
            "--allow-before-data",
        ],
    );
    // Every key live now gets a delete marker; deleted ones are left alone.
    assert_eq!(
        actions(&w.catalog(), "before"),
        expect(&[
            ("add_delete_marker", "same", ""),
            ("add_delete_marker", "overwritten", ""),
            ("add_delete_marker", "created-after", ""),
            ("add_delete_marker", "deleted-then-recreated", ""),
            ("add_delete_marker", "same-second", ""),
            ("add_delete_marker", "null-version", ""),
            ("add_delete_marker", "other/overwritten", ""),
        ])
    );
    let out = s3rewind(
        &w.catalog(),
        &["plan", "restore", "--to", "2999-01-01", "--name", "future"],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("future"));
    assert!(actions(&w.catalog(), "future").is_empty());
}

#[test]
fn undelete_removes_markers_above_the_newest_version() {
    let w = Workdir::new();
    build(&w.catalog(), &incident());
    let out = plan_ok(&w.catalog(), &["undelete"]);
    assert!(
        out.contains("1 deleted keys have no version left") && out.contains("markers-only"),
        "{out}"
    );
    assert_eq!(
        actions(&w.catalog(), "undelete-1"),
        expect(&[
            ("delete_marker", "hidden", "h-m2"),
            ("delete_marker", "hidden", "h-m1"),
            ("delete_marker", "overwritten-then-deleted", "od-m"),
            ("delete_marker", "created-then-deleted", "cd-m"),
            ("delete_marker", "deleted-before", "db-m"),
        ])
    );
    // The window is on the newest marker's time.
    plan_ok(
        &w.catalog(),
        &[
            "undelete",
            "--since",
            "2024-05-01T13:30:00Z",
            "--name",
            "late",
        ],
    );
    assert_eq!(
        actions(&w.catalog(), "late"),
        expect(&[
            ("delete_marker", "overwritten-then-deleted", "od-m"),
            ("delete_marker", "created-then-deleted", "cd-m"),
        ])
    );
    plan_ok(
        &w.catalog(),
        &[
            "undelete",
            "--until",
            "2024-05-01T12:00:00",
            "--name",
            "early",
        ],
    );
    assert_eq!(
        actions(&w.catalog(), "early"),
        expect(&[("delete_marker", "deleted-before", "db-m")])
    );
    plan_ok(
        &w.catalog(),
        &["undelete", "--where", "key LIKE 'hid%'", "--name", "where"],
    );
    assert_eq!(
        actions(&w.catalog(), "where"),
        expect(&[
            ("delete_marker", "hidden", "h-m2"),
            ("delete_marker", "hidden", "h-m1")
        ])
    );
}

#[test]
fn expire_counts_noncurrent_time_from_the_next_newer_entry() {
    let w = Workdir::new();
    build(
        &w.catalog(),
        &[
            // noncurrent since 06-01 (v3), 04-01 (v2), 02-01 (v1)
            (
                "photo",
                vec![
                    v("p4", "2024-06-01T00:00:00Z"),
                    v("p3", "2024-04-01T00:00:00Z"),
                    v("p2", "2024-02-01T00:00:00Z"),
                    v("p1", "2024-01-01T00:00:00Z"),
                ],
            ),
            // deleted 05-01: every version is noncurrent
            (
                "gone",
                vec![
                    m("g-m", "2024-05-01T00:00:00Z"),
                    v("g1", "2024-01-01T00:00:00Z"),
                ],
            ),
            ("single", vec![v("s1", "2023-01-01T00:00:00Z")]),
            (
                "big/file",
                vec![
                    v("b2", "2024-06-01T00:00:00Z"),
                    E {
                        size: 5_000_000,
                        ..v("b1", "2024-01-01T00:00:00Z")
                    },
                ],
            ),
        ],
    );
    let as_of = ["--as-of", "2024-07-01"];
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec!["expire", "--name", name];
        args.extend_from_slice(&as_of);
        args.extend_from_slice(extra);
        plan_ok(&w.catalog(), &args);
        actions(&w.catalog(), name)
    };
    // Older than 45 days on 07-01 = noncurrent since before 05-17.
    assert_eq!(
        run("e45", &["--noncurrent-older-than", "45d"]),
        expect(&[
            ("delete_version", "photo", "p2"),
            ("delete_version", "photo", "p1"),
            ("delete_version", "gone", "g1"),
        ])
    );
    assert_eq!(
        run(
            "e45-keep2",
            &["--noncurrent-older-than", "45d", "--keep-newest", "2"]
        ),
        expect(&[("delete_version", "photo", "p1")])
    );
    assert_eq!(
        run(
            "e1",
            &["--noncurrent-older-than", "1d", "--expired-markers"]
        ),
        expect(&[
            ("delete_version", "photo", "p3"),
            ("delete_version", "photo", "p2"),
            ("delete_version", "photo", "p1"),
            ("delete_version", "gone", "g1"),
            ("delete_marker", "gone", "g-m"),
            ("delete_version", "big/file", "b1"),
        ])
    );
    assert_eq!(
        run(
            "big",
            &["--noncurrent-older-than", "1d", "--where", "size > 1000000"]
        ),
        expect(&[("delete_version", "big/file", "b1")])
    );
    let out = plan_ok(&w.catalog(), &["show", "e1"]);
    assert!(out.contains("6 on 3 keys"), "{out}");
}

#[test]
fn plan_sql_checks_every_row() {
    let w = Workdir::new();
    build(&w.catalog(), &incident());
    plan_ok(
        &w.catalog(),
        &[
            "sql", "--name", "mine", "--query",
            "SELECT 'delete_version', key, version_id, 'old copy' FROM objects WHERE key = 'overwritten' AND NOT is_latest
             UNION ALL SELECT 'add_delete_marker', 'same', NULL, NULL;",
        ],
    );
    assert_eq!(
        actions(&w.catalog(), "mine"),
        expect(&[
            ("delete_version", "overwritten", "o1"),
            ("add_delete_marker", "same", "")
        ])
    );
    let why: String = catalog_scalar(
        &w.catalog(),
        "SELECT why FROM actions WHERE kind = 'delete_version' AND key = 'overwritten'",
    );
    assert_eq!(why, "old copy");
    std::fs::write(w.path("q.sql"), "WITH x AS (SELECT key, version_id FROM delete_markers WHERE key = 'hidden')\nSELECT 'delete_marker', key, version_id FROM x").unwrap();
    plan_ok(
        &w.catalog(),
        &[
            "sql",
            "--name",
            "from-file",
            "--file",
            w.path("q.sql").to_str().unwrap(),
        ],
    );
    assert_eq!(actions(&w.catalog(), "from-file").len(), 2);

    let before = snapshot(&w.catalog());
    for (query, needle) in [
        ("SELECT 'explode', 'same', 's1'", "unknown action"),
        ("SELECT 'delete_version', 'no-such-key', 'x'", "not in the catalog"),
        ("SELECT 'delete_version', 'same', 'no-such-version'", "not in the catalog"),
        ("SELECT 'delete_version', 'hidden', 'h-m1'", "delete marker"),
        ("SELECT 'delete_marker', 'same', 's1'", "not a delete marker"),
        ("SELECT 'delete_version', 'same', 's1' UNION ALL SELECT 'delete_version', 'same', 's1'", "twice"),
        ("SELECT 'copy_version', 'overwritten', 'o1' UNION ALL SELECT 'add_delete_marker', 'overwritten', NULL", "more than one"),
        ("SELECT 'add_delete_marker', 'same', 's1'", "no version_id"),
        ("SELECT 'delete_version', key FROM objects", "columns"),
        ("SELEC nonsense", "not valid SQL"),
        ("DELETE FROM entries", "may only read"),
        ("SELECT 1; DROP TABLE keys", "may only read"),
        ("SELECT 'delete_version', 'same', 's1'; SELECT 2", "more than one statement"),
    ] {
        let err = s3rewind_err(&w.catalog(), &["plan", "sql", "--name", "bad", "--query", query]);
        assert!(err.contains(needle), "{query}: expected {needle:?} in {err}");
    }
    assert_eq!(
        snapshot(&w.catalog()),
        before,
        "a refused plan changed the catalog"
    );
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let w = Workdir::new();
    build(&w.catalog(), &incident());
    plan_ok(&w.catalog(), &["restore", "--to", T, "--name", "taken"]);
    let before = snapshot(&w.catalog());
    for (args, needle) in [
        (
            vec!["plan", "restore", "--to", T, "--name", "taken"],
            "exists already",
        ),
        (
            vec!["plan", "restore", "--to", "yesterday"],
            "is not a time",
        ),
        (
            vec!["plan", "restore", "--to", "2024-05-01 12:00"],
            "is not a time",
        ),
        (
            vec!["plan", "expire", "--noncurrent-older-than", "30"],
            "is not a duration",
        ),
        (
            vec!["plan", "expire", "--noncurrent-older-than", "1y"],
            "is not a duration",
        ),
        (
            vec![
                "plan",
                "undelete",
                "--since",
                "2024-06-01",
                "--until",
                "2024-05-01",
            ],
            "window is empty",
        ),
        (
            vec!["plan", "restore", "--to", T, "--where", "key LIKE"],
            "not valid SQL",
        ),
        (
            vec![
                "plan",
                "restore",
                "--to",
                T,
                "--where",
                "no_such_column = 1",
            ],
            "not valid SQL",
        ),
        (
            vec![
                "plan",
                "restore",
                "--to",
                T,
                "--where",
                "1); DELETE FROM entries; --",
            ],
            "--where",
        ),
        (vec!["plan", "show", "nope"], "no plan named"),
        (vec!["plan", "drop", "nope"], "no plan named"),
        (vec!["export", "nope", "--format", "csv"], "no plan named"),
        (vec!["sql", "DELETE FROM keys"], "may only read"),
        (vec!["sql", "UPDATE entries SET size = 0"], "may only read"),
        (
            vec!["sql", "ATTACH DATABASE '/tmp/x.db' AS x"],
            "may only read",
        ),
        (vec!["sql", "PRAGMA journal_mode = DELETE"], "may only read"),
        (vec!["sql", "SELECT 1; DELETE FROM keys"], "may only read"),
        (vec!["sql", "SELECT 1; SELECT 2"], "more than one statement"),
    ] {
        let err = s3rewind_err(&w.catalog(), &args);
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in:\n{err}"
        );
    }
    assert_eq!(
        snapshot(&w.catalog()),
        before,
        "refused input changed the catalog"
    );
    let n: i64 = catalog_scalar(&w.catalog(), "SELECT count(*) FROM plans");
    assert_eq!(n, 1);
    // A plan needs a finished scan.
    let err = s3rewind_err(&w.path("none.db"), &["plan", "undelete"]);
    assert!(err.contains("no catalog"), "{err}");
}

#[test]
fn review_list_show_sql_export_and_drop() {
    let w = Workdir::new();
    build(&w.catalog(), &incident());
    plan_ok(&w.catalog(), &["restore", "--to", T, "--name", "r"]);

    let list = plan_ok(&w.catalog(), &["list"]);
    assert!(
        list.contains("r ") && list.contains("restore") && list.contains('9'),
        "{list}"
    );

    let show = plan_ok(&w.catalog(), &["show", "r"]);
    for needle in [
        "copy_version",
        "5",
        "500 B to copy",
        "delete_marker",
        "add_delete_marker",
        "COPY/PUT",
        "$",
        "9 on 8 keys",
    ] {
        assert!(show.contains(needle), "{needle:?} missing in:\n{show}");
    }

    let csv = s3rewind_ok(
        &w.catalog(),
        &[
            "sql",
            "--csv",
            "SELECT action, count(*) AS n FROM plan_review WHERE plan = 'r' GROUP BY 1 ORDER BY 1",
        ],
    );
    assert_eq!(
        csv,
        "action,n\nadd_delete_marker,2\ncopy_version,5\ndelete_marker,2\n"
    );
    let json = s3rewind_ok(
        &w.catalog(),
        &[
            "sql",
            "--json",
            "SELECT key, seq, kind FROM key_history WHERE key = 'hidden' ORDER BY seq",
        ],
    );
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(parsed[2]["kind"], "version");
    assert_eq!(parsed.as_array().unwrap().len(), 3);

    let out = w.path("r.csv");
    s3rewind_ok(
        &w.catalog(),
        &[
            "export",
            "r",
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("id,kind,key,version_id,size,storage_class,why,expected_latest,status")
    );
    assert_eq!(text.lines().count(), 10);
    let batch = s3rewind_ok(&w.catalog(), &["export", "r", "--format", "s3-batch"]);
    let mut lines: Vec<&str> = batch.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "fixture,null-version,null",
            "fixture,other/overwritten,x1",
            "fixture,overwritten,o1",
            "fixture,overwritten-then-deleted,od1",
            "fixture,same-second,ss3",
        ]
    );

    s3rewind_ok(&w.catalog(), &["plan", "drop", "r"]);
    let n: i64 = catalog_scalar(&w.catalog(), "SELECT count(*) FROM actions");
    assert_eq!(n, 0);
}

#[test]
fn batch_manifest_keys_are_url_encoded() {
    let w = Workdir::new();
    build(
        &w.catalog(),
        &[(
            "a b/c+d%é",
            vec![
                v("k2", "2024-05-01T13:00:00Z"),
                v("k1", "2024-05-01T10:00:00Z"),
            ],
        )],
    );
    plan_ok(&w.catalog(), &["restore", "--to", T, "--name", "r"]);
    let batch = s3rewind_ok(&w.catalog(), &["export", "r", "--format", "s3-batch"]);
    assert_eq!(batch, "fixture,a%20b/c%2Bd%25%C3%A9,k1\n");
}

/// scan → plan restore → sql, on a real S3 server.
#[test]
fn restore_plan_from_a_real_scan() {
    let mut b = Bucket::new("planned", true);
    b.put("keep.txt", b"same");
    let old = b.put("overwrite.txt", b"good");
    b.put("delete.txt", b"good");
    let t = {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        wait_for_second_after(now);
        now
    };
    b.put("overwrite.txt", b"bad");
    let marker = b.delete("delete.txt");
    b.put("new.txt", b"new");
    let w = Workdir::new();
    s3rewind_ok(&w.catalog(), &["scan", &b.url()]);
    let to = model::time::format_time(t as i64);
    plan_ok(
        &w.catalog(),
        &["restore", "--to", &to, "--name", "incident"],
    );
    let csv = s3rewind_ok(
        &w.catalog(),
        &["sql", "--csv", "SELECT action, key, coalesce(version_id, '') FROM plan_review WHERE plan = 'incident' ORDER BY key"],
    );
    assert_eq!(
        csv,
        format!(
            "action,key,\"coalesce(version_id, '')\"\ndelete_marker,delete.txt,{marker}\nadd_delete_marker,new.txt,\ncopy_version,overwrite.txt,{old}\n"
        )
    );
}

/// Every SQL block of docs/review.md runs as written on a catalog shaped
/// like the demo's (a plan called `incident`).
#[test]
fn review_queries_in_the_docs_run_as_written() {
    let mut b = Bucket::new("review", true);
    for i in 0..3 {
        b.put(&format!("hotels/{i:04}.jpg"), b"v1");
        b.put(&format!("hotels/{i:04}.jpg"), b"v2");
        b.put(&format!("cities/{i:04}.jpg"), b"c");
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    wait_for_second_after(t);
    b.put("hotels/0000.jpg", b"overwritten by mistake");
    b.delete("cities/0001.jpg");
    b.put("hotels/new.jpg", b"new");
    let w = Workdir::new();
    s3rewind_ok(&w.catalog(), &["scan", &b.url()]);
    plan_ok(
        &w.catalog(),
        &[
            "restore",
            "--to",
            &model::time::format_time(t as i64),
            "--name",
            "incident",
        ],
    );

    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/review.md")).unwrap();
    let queries: Vec<&str> = doc
        .split("```sql\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap())
        .collect();
    assert!(
        queries.len() >= 5,
        "docs/review.md has {} queries",
        queries.len()
    );
    let mut outputs = Vec::new();
    for q in &queries {
        outputs.push(s3rewind_ok(&w.catalog(), &["sql", "--csv", q]));
    }
    assert_eq!(
        outputs[0],
        "action,actions,bytes\nadd_delete_marker,1,\ncopy_version,1,2\ndelete_marker,1,\n"
    );
    assert_eq!(outputs[1], "keys\n2\n");
    assert!(
        outputs[2].lines().count() == 4 && outputs[2].contains("copy_version"),
        "{}",
        outputs[2]
    );
}
