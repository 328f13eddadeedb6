//! `scan` end to end: the real binary against a real S3 server, asserting the
//! exact catalog contents.

mod common;

use aws_sdk_s3::types::BucketVersioningStatus;
use common::*;

fn scan_ok(catalog: &std::path::Path, url: &str, extra: &[&str]) -> String {
    let mut args = vec!["scan", url];
    args.extend_from_slice(extra);
    s3rewind_ok(catalog, &args)
}

/// A finished scan leaves an intact catalog in WAL mode, and nothing of its
/// compaction behind.
#[track_caller]
fn assert_catalog_sound(catalog: &std::path::Path) {
    let mode: String = catalog_scalar(catalog, "PRAGMA journal_mode");
    assert_eq!(mode, "wal");
    let check: String = catalog_scalar(catalog, "PRAGMA integrity_check");
    assert_eq!(check, "ok");
    for leftover in [".packing", ".packed"] {
        assert!(!sibling(catalog, leftover).exists(), "{leftover} left");
    }
}

/// A scan of an older s3rewind cut down inside its compaction, after the
/// packed copy became the catalog (`<catalog>.packed` synced) but before it
/// was renamed over the old file and its WAL: the next command finishes the
/// swap, and never lets SQLite read the old WAL into the packed file.
#[test]
fn compaction_cut_after_its_commit_point_is_finished_by_the_next_command() {
    let mut b = Bucket::new("cutpack", true);
    for i in 0..20 {
        b.put(&format!("k/{i:02}"), b"1");
        b.put(&format!("k/{i:02}"), b"2");
    }
    let expected = b.expected();
    let w = Workdir::new();
    let catalog = w.catalog();
    scan_ok(&catalog, &b.url(), &["--page-size", "7"]);
    std::fs::copy(&catalog, sibling(&catalog, ".packed")).unwrap();
    // The old file and its WAL, as the compaction left them: the WAL holds
    // changes the packed copy must win over (here, every entry deleted).
    let old = rusqlite::Connection::open(&catalog).unwrap();
    old.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .unwrap();
    old.execute("DELETE FROM entries", []).unwrap();
    drop(old);
    assert!(sibling(&catalog, "-wal").exists());

    let status = s3rewind_ok(&catalog, &["status"]);
    assert!(status.contains("complete"), "{status}");
    assert_catalog_sound(&catalog);
    assert_eq!(catalog_entries(&catalog), expected);
}

#[test]
fn scan_records_every_version_and_delete_marker_in_listing_order() {
    // Objects written before versioning get the version id `null`.
    let mut b = Bucket::new("history", false);
    b.put("pre/versioning.txt", b"old");
    b.put("pre/replaced.txt", b"1");
    b.put("pre/replaced.txt", b"2");
    b.set_versioning(BucketVersioningStatus::Enabled);
    b.put("pre/versioning.txt", b"new");
    for i in 0..7 {
        b.put("many/versions.bin", format!("v{i}").as_bytes());
    }
    b.put("deleted/once.txt", b"x");
    b.delete("deleted/once.txt");
    b.put("deleted/stacked.txt", b"x");
    b.delete("deleted/stacked.txt");
    b.delete("deleted/stacked.txt");
    b.delete("deleted/stacked.txt");
    b.put("deleted/then-recreated.txt", b"a");
    b.delete("deleted/then-recreated.txt");
    b.put("deleted/then-recreated.txt", b"b");
    // Keys with nothing but delete markers: pages of markers only.
    for i in 0..5 {
        b.markers_only(&format!("markers-only/{i}"), 1 + i % 2);
    }
    let expected = b.expected();

    for page_size in ["1000", "2", "3"] {
        let w = Workdir::new();
        let out = scan_ok(&w.catalog(), &b.url(), &["--page-size", page_size]);
        assert!(out.contains("scanned"), "{out}");
        assert_eq!(
            catalog_entries(&w.catalog()),
            expected,
            "page size {page_size}"
        );
        // Counters agree with the rows.
        let rows: i64 = catalog_scalar(&w.catalog(), "SELECT sum(rows) FROM cursors");
        let markers: i64 = catalog_scalar(&w.catalog(), "SELECT sum(delete_markers) FROM cursors");
        assert_eq!(rows as usize, expected.len());
        assert_eq!(markers as usize, expected.iter().filter(|e| e.2).count());
        let done: i64 = catalog_scalar(
            &w.catalog(),
            "SELECT count(*) FROM scans WHERE finished_at IS NOT NULL",
        );
        assert_eq!(done, 1);
        assert_catalog_sound(&w.catalog());
    }
    // Both `null` entries survived, each once.
    let w = Workdir::new();
    scan_ok(&w.catalog(), &b.url(), &["--page-size", "2"]);
    let nulls: i64 = catalog_scalar(
        &w.catalog(),
        "SELECT count(*) FROM objects WHERE version_id = 'null'",
    );
    assert_eq!(nulls, 2);
    // The key split across pages kept one key id and dense positions.
    let (ids, max_seq): (i64, i64) = {
        let conn = rusqlite::Connection::open(w.catalog()).unwrap();
        conn.query_row(
            "SELECT count(DISTINCT key_id), max(seq) FROM objects WHERE key = 'many/versions.bin'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!((ids, max_seq), (1, 6));
}

#[test]
fn scan_keeps_keys_with_characters_that_need_encoding() {
    let mut b = Bucket::new("awkward", true);
    let keys = [
        "with space.txt",
        "plus+sign",
        "percent%20literal",
        "amp&and?question",
        "double//slash",
        "unicode/café/日本語/😀",
        "  leading and trailing  ",
        "tab\there",
        "quote\"apos'lt<gt>",
        "equals=semi;colon,comma",
    ];
    for key in keys {
        b.put(key, key.as_bytes());
    }
    // XML 1.0 cannot carry these at all: only EncodingType=url gets them
    // through. moto cannot store them, so only servers that can are asked.
    let control = ["new\nline", "bell\u{7}and\u{1}soh", "cr\rlf"];
    if b.kind == ServerKind::S3sim {
        for key in control {
            b.put(key, b"x");
        }
    }
    b.delete("plus+sign");
    let w = Workdir::new();
    scan_ok(&w.catalog(), &b.url(), &["--page-size", "3"]);
    assert_eq!(catalog_entries(&w.catalog()), b.expected());
    // Timestamps are comparable as text and as numbers.
    let consistent: i64 = catalog_scalar(
        &w.catalog(),
        "SELECT count(*) FROM objects WHERE last_modified = strftime('%Y-%m-%dT%H:%M:%SZ', last_modified_unix, 'unixepoch')",
    );
    let control_keys = if b.kind == ServerKind::S3sim {
        control.len()
    } else {
        0
    };
    assert_eq!(consistent as usize, keys.len() + control_keys);
}

#[test]
fn parallel_prefixes_give_the_same_catalog_as_one_whole_bucket_scan() {
    let mut b = Bucket::new("parallel", true);
    for p in ["alpha", "beta", "gamma", "delta", "eps"] {
        for k in 0..6 {
            let key = format!("{p}/{k:02}.jpg");
            b.put(&key, b"1");
            if k % 2 == 0 {
                b.put(&key, b"2");
            }
            if k % 3 == 0 {
                b.delete(&key);
            }
        }
    }
    b.put("zz-top-level", b"x");

    let whole = Workdir::new();
    scan_ok(&whole.catalog(), &b.url(), &["--page-size", "4"]);
    let split = Workdir::new();
    std::fs::write(
        split.path("prefixes.txt"),
        "# the photo prefixes\nbeta/\n\ngamma/\n  delta/  \nbeta/\n",
    )
    .unwrap();
    let prefixes_file = split.path("prefixes.txt");
    scan_ok(
        &split.catalog(),
        &b.url(),
        &[
            "--prefix",
            "alpha/",
            "--prefix",
            "eps/",
            "--prefix",
            "zz",
            "--prefixes",
            prefixes_file.to_str().unwrap(),
            "--concurrency",
            "3",
            "--page-size",
            "4",
        ],
    );
    let cursors: i64 = catalog_scalar(
        &split.catalog(),
        "SELECT count(*) FROM cursors WHERE done = 1",
    );
    assert_eq!(cursors, 6);
    assert_eq!(
        catalog_entries(&split.catalog()),
        catalog_entries(&whole.catalog())
    );
    assert_eq!(catalog_entries(&whole.catalog()), b.expected());

    // A base prefix: keys keep their full names; prefixes are relative to it.
    let based = Workdir::new();
    scan_ok(
        &based.catalog(),
        &format!("{}/gamma/", b.url()),
        &["--prefix", "0", "--page-size", "2"],
    );
    let want: Vec<Entry> = b
        .expected()
        .into_iter()
        .filter(|e| e.0.starts_with("gamma/0"))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(catalog_entries(&based.catalog()), want);
}

#[test]
fn a_killed_scan_resumes_to_the_same_catalog_at_every_kill_point() {
    // Slow enough that the scan can be killed before it ends.
    let mut own = None;
    let srv = slow_server(&mut own);
    let mut b = Bucket::on(srv, &unique_bucket("resume"), true);
    for p in 0..4 {
        for k in 0..30 {
            let key = format!("p{p}/k{k:03}");
            b.put(&key, b"a");
            if k % 4 == 0 {
                b.put(&key, b"b");
            }
            if k % 5 == 0 {
                b.delete(&key);
            }
        }
    }
    let expected = b.expected();
    let args = [
        "scan",
        &b.url(),
        "--endpoint-url",
        &srv.endpoint,
        "--page-size",
        "1",
        "--concurrency",
        "2",
        "--prefix",
        "p0/",
        "--prefix",
        "p1/",
        "--prefix",
        "p2/",
        "--prefix",
        "p3/",
    ];
    let w = Workdir::new();
    let catalog = w.catalog();
    const PAGES: &str = "SELECT coalesce(sum(pages), 0) FROM cursors";
    // Each run is killed a few pages after it started committing, at a
    // different depth each time: before, inside and after the first pages.
    for more in [1, 3, 6] {
        kill_at(
            &catalog,
            &args,
            PAGES,
            catalog_count(&catalog, PAGES) + more,
        );
        let status = s3rewind_ok(&catalog, &["status"]);
        assert!(status.contains("UNFINISHED"), "{status}");
        // No row twice, however the scan was cut.
        let dupes: i64 = catalog_scalar(
            &catalog,
            "SELECT count(*) FROM (SELECT key, version_id FROM objects GROUP BY 1, 2 HAVING count(*) > 1)",
        );
        assert_eq!(dupes, 0);
    }
    // Someone reads the catalog while the last run finishes: the compaction
    // must not move the file from under them (it packs in place instead).
    let reader = rusqlite::Connection::open(&catalog).unwrap();
    let before: i64 = reader
        .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
        .unwrap();
    let out = s3rewind_ok(&catalog, &args);
    assert!(
        out.contains("scanned") && out.contains("compacted"),
        "{out}"
    );
    let after: i64 = reader
        .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
        .unwrap();
    assert!(after > before && after as usize == expected.len());
    drop(reader);
    assert_catalog_sound(&catalog);
    assert_eq!(catalog_entries(&catalog), expected);
    let runs: i64 = catalog_scalar(&catalog, "SELECT runs FROM scans");
    assert_eq!(runs, 4);
    // A finished scan is not redone.
    let again = s3rewind_ok(&catalog, &args);
    assert!(again.contains("already complete"), "{again}");
    let status = s3rewind_ok(&catalog, &["status"]);
    assert!(
        status.contains("complete") && !status.contains("UNFINISHED"),
        "{status}"
    );
}

#[test]
fn bad_input_fails_with_a_clear_message_and_leaves_the_catalog_alone() {
    let mut b = Bucket::new("badinput", true);
    b.put("a/1", b"1");
    let other = Bucket::new("otherbucket", true);
    let w = Workdir::new();
    let catalog = w.catalog();

    // Nothing exists yet: failures must not create a catalog.
    for (args, needle) in [
        (vec!["scan", "my-bucket"], "s3://"),
        (vec!["scan", "s3://"], "bucket name is missing"),
        (vec!["scan", "s3://no such bucket"], "bucket name"),
        (vec!["scan", "s3://does-not-exist-anywhere"], "NoSuchBucket"),
        (
            vec!["scan", &b.url(), "--prefix", "a/", "--prefix", "a/b"],
            "overlap",
        ),
        (
            vec!["scan", &b.url(), "--prefixes", "/nonexistent/prefixes.txt"],
            "/nonexistent/prefixes.txt",
        ),
        (vec!["scan", &b.url(), "--page-size", "0"], "page-size"),
    ] {
        let err = s3rewind_err(&catalog, &args);
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in:\n{err}"
        );
        assert!(!catalog.exists(), "{args:?} created the catalog");
    }

    // An unwritable catalog path.
    let err = s3rewind_err(&w.path("no/such/dir/catalog.db"), &["scan", &b.url()]);
    assert!(
        err.contains("no/such/dir/catalog.db") && err.contains("--catalog"),
        "{err}"
    );

    // A catalog of another bucket is refused, untouched.
    s3rewind_ok(&catalog, &["scan", &b.url(), "--prefix", "a/"]);
    let before = snapshot(&catalog);
    let err = s3rewind_err(&catalog, &["scan", &other.url()]);
    assert!(err.contains(&other.name) && err.contains(&b.name), "{err}");
    let err = s3rewind_err(&catalog, &["scan", &format!("{}/base/", b.url())]);
    assert!(err.contains("base/"), "{err}");
    // A prefix overlapping one the catalog already holds.
    let err = s3rewind_err(&catalog, &["scan", &b.url(), "--prefix", "a/x"]);
    assert!(
        err.contains("overlap") && err.contains("already in the catalog"),
        "{err}"
    );
    // --fresh without a terminal and without --yes refuses.
    let err = s3rewind_err(&catalog, &["scan", &b.url(), "--fresh"]);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(
        snapshot(&catalog),
        before,
        "a refused command changed the catalog"
    );

    // --fresh --yes replaces it.
    s3rewind_ok(&catalog, &["scan", &other.url(), "--fresh", "--yes"]);
    let bucket: String = catalog_scalar(&catalog, "SELECT bucket FROM scans");
    assert_eq!(bucket, other.name);

    // Commands that need a catalog say how to make one.
    let err = s3rewind_err(&w.path("missing.db"), &["status"]);
    assert!(err.contains("no catalog") && err.contains("scan"), "{err}");
}

#[test]
fn an_unversioned_bucket_is_scanned_with_a_warning() {
    let mut b = Bucket::new("unversioned", false);
    b.put("x", b"1");
    b.put("x", b"2");
    b.put("y", b"1");
    let w = Workdir::new();
    let out = s3rewind(&w.catalog(), &["scan", &b.url()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("versioning has never been enabled"), "{err}");
    assert_eq!(catalog_entries(&w.catalog()), b.expected());
    let versioning: String = catalog_scalar(&w.catalog(), "SELECT versioning FROM scans");
    assert_eq!(versioning, "Never enabled");
}

#[test]
fn new_prefixes_are_added_to_a_finished_scan() {
    let mut b = Bucket::new("addprefix", true);
    b.put("a/1", b"1");
    b.put("b/1", b"1");
    let w = Workdir::new();
    scan_ok(&w.catalog(), &b.url(), &["--prefix", "a/"]);
    assert_eq!(catalog_entries(&w.catalog()).len(), 1);
    let out = scan_ok(&w.catalog(), &b.url(), &["--prefix", "b/"]);
    assert!(out.contains("scanned"), "{out}");
    assert_eq!(catalog_entries(&w.catalog()), b.expected());
}

/// While a scan works on a catalog, another scan, an apply or a new plan
/// is turned away with the name of the command in the way, and changes
/// nothing; reading commands still work. Once it is done, they run.
#[test]
fn a_catalog_in_use_turns_away_other_writing_commands() {
    let mut own = None;
    let srv = slow_server(&mut own);
    let mut b = Bucket::on(srv, &unique_bucket("inuse"), true);
    for k in 0..200 {
        b.put(&format!("k{k:03}"), b"a");
    }
    let expected = b.expected();
    let w = Workdir::new();
    let catalog = w.catalog();
    let url = b.url();
    let endpoint = ["--endpoint-url", srv.endpoint.as_str()];
    let scan = [
        &["scan", url.as_str(), "--page-size", "1"][..],
        &endpoint[..],
    ]
    .concat();
    // One page a request: 200 requests to the first scan's end.
    let mut first = spawn_s3rewind(&catalog, &scan);
    const PAGES: &str = "SELECT coalesce(sum(pages), 0) FROM cursors";
    wait_until(
        "the first scan's first page",
        std::time::Duration::from_secs(60),
        || catalog_count(&catalog, PAGES) >= 1,
    );
    let apply = [&["apply", "u", "--yes"][..], &endpoint[..]].concat();
    for other in [
        &scan[..],
        &["plan", "undelete", "--name", "u"][..],
        &apply[..],
    ] {
        let err = s3rewind_err(&catalog, other);
        assert!(
            err.contains("is in use by `s3rewind scan` (pid ") && err.contains("wait for it"),
            "{other:?}: {err}"
        );
    }
    let status = s3rewind_ok(&catalog, &["status"]);
    assert!(status.contains("UNFINISHED"), "{status}");
    // Still running: the commands above met the scan, not a finished catalog.
    assert!(first.try_wait().expect("the first scan").is_none());
    let plans: i64 = catalog_scalar(&catalog, "SELECT count(*) FROM plans");
    assert_eq!(plans, 0);
    let out = first.wait_with_output().expect("the first scan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(catalog_entries(&catalog), expected);
    let plan = s3rewind_ok(&catalog, &["plan", "undelete", "--name", "u"]);
    assert!(plan.contains("plan u"), "{plan}");
}

/// A scan cut into key ranges by itself (no prefix list) against a serial
/// one (`--concurrency 1` never cuts): the same catalog, entry for entry.
#[track_caller]
fn assert_cut_scan_is_serial(server: &Server, bucket: &str, page_size: &str) -> String {
    let (cut, serial) = (Workdir::new(), Workdir::new());
    let url = format!("s3://{bucket}");
    let args = |extra: &[&str]| -> Vec<String> {
        [
            "scan",
            &url,
            "--endpoint-url",
            &server.endpoint,
            "--page-size",
            page_size,
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    };
    let out = s3rewind_ok(&cut.catalog(), &strs(&args(&["--concurrency", "16"])));
    s3rewind_ok(&serial.catalog(), &strs(&args(&["--concurrency", "1"])));
    assert_eq!(
        catalog_entries(&cut.catalog()),
        catalog_entries(&serial.catalog()),
        "{bucket}: {out}"
    );
    let check: String = catalog_scalar(&cut.catalog(), "PRAGMA integrity_check");
    assert_eq!(check, "ok");
    out
}

/// The number in `... N key ranges listed` of a scan's summary.
fn ranges_listed(out: &str) -> u64 {
    out.split(" key ranges listed")
        .next()
        .and_then(|s| s.rsplit('\n').next())
        .and_then(|n| n.replace(',', "").trim().parse().ok())
        .unwrap_or_else(|| panic!("no range count in {out}"))
}

#[test]
fn keys_of_any_shape_are_cut_into_ranges_without_loss_or_repeat() {
    // Keys that are prefixes of others, unicode, control characters, a key
    // with many versions, a key with delete markers only, and an empty
    // bucket, written through the S3 API (moto too).
    let mut b = Bucket::new("shapes", true);
    let mut keys: Vec<String> = Vec::new();
    for i in 0..40 {
        keys.push(format!("a{i:03}"));
        keys.push(format!("a{i:03}/x"));
    }
    for k in [
        "ab",
        "ab/c",
        "ab/c/d",
        "café/ü ber",
        "日本/語",
        "tab\there",
        "~z",
        "z+plus %20",
    ] {
        keys.push(k.to_owned());
    }
    // moto's web server answers 404 to a path holding a newline.
    if server().kind != ServerKind::Moto {
        keys.push("new\nline".to_owned());
    }
    for k in &keys {
        b.put(k, b"1");
    }
    for _ in 0..300 {
        b.put("many", b"v");
    }
    b.delete("a001");
    b.markers_only("ab/markers", 2);
    let out = assert_cut_scan_is_serial(server(), &b.name, "7");
    assert!(ranges_listed(&out) > 1, "{out}");
    let w = Workdir::new();
    scan_ok(&w.catalog(), &b.url(), &["--page-size", "7"]);
    assert_eq!(catalog_entries(&w.catalog()), b.expected());

    let empty = Bucket::new("shapes-empty", true);
    let out = assert_cut_scan_is_serial(server(), &empty.name, "7");
    assert!(out.contains(" 0 versions and 0 delete markers"), "{out}");
}

#[test]
fn seeded_shapes_hot_prefixes_and_empty_buckets_scan_as_serial_scans() {
    for (shape, prefixes, keys, versions) in [
        ("flat", "1", "3000", "2"),
        ("deep", "4", "2000", "2"),
        ("unicode", "2", "2000", "2"),
        ("control", "2", "2000", "2"),
    ] {
        let server = start_server(
            ServerKind::S3sim,
            &[
                "--seed-bucket",
                "seeded",
                "--seed-keys",
                keys,
                "--seed-versions",
                versions,
                "--seed-prefixes",
                prefixes,
                "--seed-shape",
                shape,
                "--seed-markers",
                "0.3",
            ],
        );
        let out = assert_cut_scan_is_serial(&server, "seeded", "37");
        assert!(ranges_listed(&out) >= 4, "{shape}: {out}");
    }
    // One key with 5,000 versions, seven entries a page.
    let server = start_server(
        ServerKind::S3sim,
        &[
            "--seed-bucket",
            "seeded",
            "--seed-keys",
            "1",
            "--seed-versions",
            "5000",
            "--seed-prefixes",
            "1",
        ],
    );
    assert_cut_scan_is_serial(&server, "seeded", "7");
    // 99 % of the keys under one prefix, a few under others.
    let server = start_server(
        ServerKind::S3sim,
        &[
            "--seed-bucket",
            "seeded",
            "--seed-keys",
            "3000",
            "--seed-prefixes",
            "1",
        ],
    );
    let mut b = Bucket::on(&server, "seeded", true);
    for k in ["a/1", "b/2", "q/3", "z/4", "zz"] {
        b.put(k, b"x");
    }
    assert_cut_scan_is_serial(&server, "seeded", "50");
    // An empty bucket.
    let empty = Bucket::on(&server, "empty", true);
    let out = assert_cut_scan_is_serial(&server, &empty.name, "50");
    assert!(out.contains(" 0 versions and 0 delete markers"), "{out}");
}

#[test]
fn a_location_split_in_four_parts_ends_as_one_catalog_would_have_it() {
    // Two servers holding the very same bucket.
    let until = "1780000000";
    let flags = [
        "--seed-bucket",
        "seeded",
        "--seed-keys",
        "1500",
        "--seed-versions",
        "3",
        "--seed-prefixes",
        "3",
        "--seed-markers",
        "0.3",
        "--seed-until",
        until,
    ];
    let (one, four) = (
        start_server(ServerKind::S3sim, &flags),
        start_server(ServerKind::S3sim, &flags),
    );
    let t = model::time::format_time(1_780_000_000 - 20 * 86_400);
    let restore = |catalog: &std::path::Path, server: &Server, extra: &[&str]| {
        let mut scan = vec!["scan", "s3://seeded", "--endpoint-url", &server.endpoint];
        scan.extend_from_slice(extra);
        s3rewind_ok(catalog, &scan);
        s3rewind_ok(catalog, &["plan", "restore", "--to", &t, "--name", "r"]);
        s3rewind_ok(
            catalog,
            &["apply", "r", "--yes", "--endpoint-url", &server.endpoint],
        );
    };
    let whole = Workdir::new();
    restore(&whole.catalog(), &one, &[]);

    let w = Workdir::new();
    let bounds = w.path("bounds.txt");
    let out = s3rewind_ok(
        &w.catalog(),
        &[
            "split",
            "s3://seeded",
            "--parts",
            "4",
            "--endpoint-url",
            &four.endpoint,
            "--out",
            bounds.to_str().unwrap(),
        ],
    );
    assert!(!w.catalog().exists(), "split made a catalog: {out}");
    assert_eq!(std::fs::read_to_string(&bounds).unwrap().lines().count(), 3);
    let mut listed = 0;
    for i in 0..4 {
        let part = w.path(&format!("part-{i}.db"));
        let shard = format!("{i}/4");
        restore(
            &part,
            &four,
            &["--shard", &shard, "--bounds", bounds.to_str().unwrap()],
        );
        listed += catalog_entries(&part).len();
        let status = s3rewind_ok(&part, &["status"]);
        assert!(status.contains(&format!("(part {shard})")), "{status}");
        // The part is its own: another part's scan is refused.
        let other = format!("{}/4", (i + 1) % 4);
        let err = s3rewind_err(
            &part,
            &[
                "scan",
                "s3://seeded",
                "--shard",
                &other,
                "--bounds",
                bounds.to_str().unwrap(),
                "--endpoint-url",
                &four.endpoint,
            ],
        );
        assert!(err.contains("part"), "{err}");
    }
    assert_eq!(
        listed,
        catalog_entries(&whole.catalog()).len(),
        "the parts overlap or miss keys"
    );

    // Each key now: deleted, or its current content — the same on both.
    let now = |server: &Server| {
        let c = Workdir::new();
        s3rewind_ok(
            &c.catalog(),
            &["scan", "s3://seeded", "--endpoint-url", &server.endpoint],
        );
        state_at(&c.catalog(), i64::MAX)
            .into_iter()
            .map(|(k, v)| (k, v.map(|(_, etag)| etag)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(now(&four), now(&one));
    // Bad bounds are refused before anything is made.
    std::fs::write(w.path("short.txt"), "a\n").unwrap();
    let err = s3rewind_err(
        &w.path("x.db"),
        &[
            "scan",
            "s3://seeded",
            "--shard",
            "1/4",
            "--bounds",
            w.path("short.txt").to_str().unwrap(),
        ],
    );
    assert!(err.contains("4 parts need 3"), "{err}");
    let err = s3rewind_err(
        &w.path("x.db"),
        &["scan", "s3://seeded", "--shard", "4/4", "--bounds", "b"],
    );
    assert!(err.contains("does not exist"), "{err}");
}

// S3-compatible servers lay a listing out in their own ways (s3sim's
// `--list-dialect`): each must give the same catalog, or fail loudly.

const DIALECTS: [&str; 3] = ["aws", "minio", "ceph"];

fn dialect_server(dialect: &str) -> Server {
    start_server(ServerKind::S3sim, &["--list-dialect", dialect])
}

/// `s3rewind ARGS --endpoint-url SERVER`.
fn on(server: &Server, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["--endpoint-url".to_owned(), server.endpoint.clone()]);
    all
}

/// The catalog's entries are `expected`, their count compared first (a
/// listing that lost keys is told by its count, not a screen of rows).
#[track_caller]
fn assert_entries(catalog: &std::path::Path, expected: &[Entry], what: &str) {
    let found = catalog_entries(catalog);
    assert_eq!(
        found.len(),
        expected.len(),
        "{what}: entries in the catalog"
    );
    assert_eq!(found, expected, "{what}");
}

/// Keys each server encodes its own way, under prefixes of their own
/// kind: spaces, `%XX` that is and is not an escape, `+`, `&` and the
/// other reserved characters, non-ASCII, control characters.
const AWKWARD_KEYS: &[&str] = &[
    "sp ace/a b",
    "sp ace/a  b ",
    "pct/%41%42",
    "pct/%41%42 1",
    "pct/%2541",
    "pct/100%",
    "pct/%zz",
    "plus/+",
    "plus/a+b",
    "plus/a b",
    "amp/a&b",
    "amp/a&amp;b<c>\"d'",
    "res/=;,?#@[]^`{}\\|~*!$()",
    "uni/café",
    "uni/日本語/ключ",
    "uni/😀",
    "uni/\u{10FFFF}",
    "ctl/new\nline",
    "ctl/tab\there",
    "ctl/bell\u{7}and\u{1}",
    "ctl/cr\r",
];

fn awkward_bucket_on(server: &Server) -> Bucket {
    let mut b = Bucket::on(server, &unique_bucket("dialect"), true);
    for (i, key) in AWKWARD_KEYS.iter().enumerate() {
        b.put(key, b"1");
        if i % 2 == 0 {
            b.put(key, b"2");
        }
        if i % 3 == 0 {
            b.delete(key);
        }
    }
    b
}

/// Each dialect, each page size: the catalog holds exactly what the bucket
/// does. (Older Ceph's raw NextKeyMarker, decoded, jumped past the keys
/// after a `%XX` one; MinIO's EncodingType after the entries left the
/// overlapped pager continuing from a still-encoded marker.)
#[test]
fn every_dialect_scans_awkward_keys_exactly_at_every_page_size() {
    for dialect in DIALECTS {
        let server = dialect_server(dialect);
        let b = awkward_bucket_on(&server);
        let expected = b.expected();
        for page_size in ["1", "2", "3", "7", "1000"] {
            let w = Workdir::new();
            let args = on(&server, &["scan", &b.url(), "--page-size", page_size]);
            s3rewind_ok(&w.catalog(), &strs(&args));
            assert_entries(
                &w.catalog(),
                &expected,
                &format!("{dialect}, page size {page_size}"),
            );
        }
    }
}

/// The issue's case: 3,000 keys with spaces under one prefix, default
/// options, on a server that writes EncodingType after the entries.
#[test]
fn a_minio_listing_of_keys_with_spaces_is_whole_with_default_options() {
    let server = dialect_server("minio");
    let mut b = Bucket::on(&server, &unique_bucket("albums"), true);
    for n in 0..3_000 {
        b.put(&format!("albums/summer {}/IMG {n:05}.jpg", n % 7), b"x");
    }
    let w = Workdir::new();
    s3rewind_ok(&w.catalog(), &strs(&on(&server, &["scan", &b.url()])));
    assert_entries(&w.catalog(), &b.expected(), "minio");
}

/// `--rescan` lists its prefixes with the same pager: each dialect
/// replaces exactly the prefix's keys.
#[test]
fn every_dialect_lists_prefixes_again_exactly() {
    for dialect in DIALECTS {
        let server = dialect_server(dialect);
        let mut b = awkward_bucket_on(&server);
        let w = Workdir::new();
        let scan = on(&server, &["scan", &b.url(), "--page-size", "2"]);
        s3rewind_ok(&w.catalog(), &strs(&scan));
        // Changes under two prefixes, then those listed again.
        for key in ["pct/%41%42", "pct/%41 new", "sp ace/a b", "sp ace/new one"] {
            b.put(key, b"after");
        }
        b.delete("pct/100%");
        let args = on(
            &server,
            &[
                "scan",
                &b.url(),
                "--rescan",
                "pct/",
                "--rescan",
                "sp ace/",
                "--page-size",
                "2",
            ],
        );
        s3rewind_ok(&w.catalog(), &strs(&args));
        assert_entries(&w.catalog(), &b.expected(), dialect);
    }
}

/// apply (`--verify` reads each key's newest entry first) and verify
/// (every entry of each key) list keys themselves: a key of more versions
/// than a page, whose name needs encoding, is read whole in each dialect.
#[test]
fn every_dialect_restores_and_verifies_awkward_keys() {
    for dialect in DIALECTS {
        let server = dialect_server(dialect);
        let mut b = awkward_bucket_on(&server);
        for i in 0..1_100 {
            b.put("pct/%41 many", format!("{i}").as_bytes());
        }
        let t = mark_t();
        for key in AWKWARD_KEYS {
            b.put(key, b"the incident");
        }
        b.put("pct/%41 many", b"the incident");
        let w = Workdir::new();
        let catalog = w.catalog();
        s3rewind_ok(&catalog, &strs(&on(&server, &["scan", &b.url()])));
        s3rewind_ok(&catalog, &["plan", "restore", "--to", &t, "--name", "r"]);
        s3rewind_ok(
            &catalog,
            &strs(&on(&server, &["apply", "r", "--yes", "--verify"])),
        );
        let undone: i64 = catalog_scalar(
            &catalog,
            "SELECT count(*) FROM actions WHERE status != 'done'",
        );
        assert_eq!(undone, 0, "{dialect}");
        let verified = s3rewind_ok(&catalog, &strs(&on(&server, &["verify", "r", "--json"])));
        let json: serde_json::Value = serde_json::from_str(&verified).unwrap();
        assert_eq!(json["mismatching"], 0, "{dialect}: {verified}");
        let now = w.path("now.db");
        s3rewind_ok(&now, &strs(&on(&server, &["scan", &b.url()])));
        let t = model::time::parse_time(&t).unwrap();
        assert_restored_exactly(&catalog, t, &now);
    }
}

/// `--rescan P` replaces every key under P, those whose next character is
/// the last one Unicode has (U+10FFFF) too: one gone since stays gone, one
/// changed since is replaced, not added to.
#[test]
fn a_prefix_listed_again_replaces_keys_that_go_on_with_the_last_character() {
    let mut b = Bucket::new("maxchar", true);
    let gone = b.put("p/\u{10FFFF}gone", b"1");
    b.put("p/\u{10FFFF}changed", b"1");
    b.put("p/\u{10FFFF}", b"1");
    b.put("p/plain", b"1");
    b.put("q/\u{10FFFF}", b"1");
    let w = Workdir::new();
    s3rewind_ok(&w.catalog(), &["scan", &b.url(), "--page-size", "2"]);
    b.delete_version("p/\u{10FFFF}gone", &gone);
    b.put("p/\u{10FFFF}changed", b"2");
    b.put("p/\u{10FFFF}", b"2");
    s3rewind_ok(&w.catalog(), &["scan", &b.url(), "--rescan", "p/"]);
    assert_entries(&w.catalog(), &b.expected(), "after --rescan p/");
}
