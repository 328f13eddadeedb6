//! What a careful operator and a hostile server found: replies that are not
//! what S3 sends, keys that attack the terminal or a spreadsheet, catalog
//! files others could read or overwrite, a compaction cut short, and the
//! small refusals (a wrong date, an empty prefixes file, a zero rate, no
//! credentials, a catalog from elsewhere). Each test failed before its fix.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use common::hostile::{self, listing, param, version_xml};
use common::*;

/// Scans s3://b on `server` into `catalog`; returns (success, stdout + stderr).
fn scan_at(endpoint: &str, catalog: &std::path::Path) -> (bool, String) {
    let out = s3rewind_command(catalog)
        .args(["scan", "s3://bkt", "--endpoint-url", endpoint])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn rows(catalog: &std::path::Path) -> i64 {
    catalog_scalar(catalog, "SELECT count(*) FROM entries")
}

#[test]
fn a_reply_that_is_not_a_listing_is_an_error_not_an_empty_bucket() {
    for (body, needle) in [
        (
            "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>",
            "AccessDenied",
        ),
        (
            "<!DOCTYPE html><html><body>Service unavailable, try later</body></html>",
            "ListObjectVersions failed",
        ),
        ("", "ListObjectVersions failed"),
        (
            "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
            "not a ListVersionsResult",
        ),
    ] {
        let server = hostile::start(move |_| (200, body.to_owned()));
        let w = Workdir::new();
        let (ok, out) = scan_at(&server.endpoint, &w.catalog());
        assert!(!ok, "{body:?} was taken for a listing:\n{out}");
        assert!(
            out.contains(needle),
            "{body:?}: expected {needle:?} in\n{out}"
        );
        assert!(!out.contains("scanned s3://"), "{out}");
        let done: i64 = catalog_scalar(&w.catalog(), "SELECT count(*) FROM cursors WHERE done = 1");
        assert_eq!(done, 0, "{body:?}: the prefix was marked done");
        let finished: Option<String> =
            catalog_scalar(&w.catalog(), "SELECT finished_at FROM scans");
        assert!(finished.is_none());
    }
}

#[test]
fn a_listing_whose_marker_does_not_advance_stops_instead_of_looping() {
    // Page 1 is fine; every later page is empty and says "continue at b"
    // again. (A page with entries whose marker is not its last key is
    // refused as it is parsed, before this check.)
    let requests = Arc::new(AtomicU32::new(0));
    let seen = requests.clone();
    let server = hostile::start(move |query| {
        seen.fetch_add(1, Ordering::Relaxed);
        match param(query, "key-marker") {
            None => (200, listing(&[("a", "1"), ("b", "1")], Some(("b", "1")))),
            Some(_) => (200, listing(&[], Some(("b", "1")))),
        }
    });
    let w = Workdir::new();
    let (ok, out) = scan_at(&server.endpoint, &w.catalog());
    assert!(!ok, "{out}");
    assert!(
        out.contains("lists nothing") && out.contains("run the same scan again"),
        "{out}"
    );
    assert!(requests.load(Ordering::Relaxed) < 20, "it kept asking");
    // An empty page that jumps forward: what lies between is unseen, so
    // it is refused too, never followed.
    let server = hostile::start(move |query| match param(query, "key-marker") {
        None => (200, listing(&[("a", "1")], Some(("a", "1")))),
        Some(_) => (200, listing(&[], Some(("z", "1")))),
    });
    let jumped = Workdir::new();
    let (ok, out) = scan_at(&server.endpoint, &jumped.catalog());
    assert!(!ok && out.contains("could skip keys"), "{out}");
    // What came before the bad page is kept, once; nothing of the bad page.
    let keys: String = catalog_scalar(&w.catalog(), "SELECT group_concat(key) FROM keys");
    assert!(keys == "a" || keys == "a,b", "{keys}");
    // An empty NextKeyMarker on a truncated page: the same.
    let server = hostile::start(|_| (200, listing(&[("a", "1")], Some(("", "")))));
    let w = Workdir::new();
    let (ok, out) = scan_at(&server.endpoint, &w.catalog());
    assert!(!ok && out.contains("without a NextKeyMarker"), "{out}");
}

#[test]
fn entries_that_are_not_entries_are_refused_and_nothing_of_their_page_is_kept() {
    let page = |entries: String| {
        format!(
            "<ListVersionsResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>{entries}</ListVersionsResult>"
        )
    };
    for (entries, needle) in [
        (version_xml("", "1", "3", true), "without a key"),
        (version_xml("a", "1", "-3", true), "negative size"),
        (
            version_xml("a", "1", "3", true) + &version_xml("a", "1", "3", false),
            "listed twice",
        ),
        (version_xml("a%00b", "1", "3", true), "NUL"),
    ] {
        let body = page(entries);
        let server = hostile::start(move |_| (200, body.clone()));
        let w = Workdir::new();
        let (ok, out) = scan_at(&server.endpoint, &w.catalog());
        assert!(!ok && out.contains(needle), "expected {needle:?}:\n{out}");
        assert_eq!(rows(&w.catalog()), 0, "{needle}");
    }
}

#[test]
fn a_prefix_that_fails_stops_alone_and_the_others_are_listed() {
    let server = hostile::start(|query| match param(query, "prefix").as_deref() {
        Some("bad/") => (200, "<html>nope</html>".to_owned()),
        Some(p) => (200, listing(&[(&format!("{p}x"), "1")], None)),
        None => (500, String::new()),
    });
    let w = Workdir::new();
    let err = s3rewind_err(
        &w.catalog(),
        &[
            "scan",
            "s3://bkt",
            "--endpoint-url",
            &server.endpoint,
            "--prefix",
            "good/",
            "--prefix",
            "bad/",
            "--prefix",
            "fine/",
        ],
    );
    assert!(
        err.contains("prefix \"bad/\"") && err.contains("1 prefix stopped"),
        "{err}"
    );
    let done: String = catalog_scalar(
        &w.catalog(),
        "SELECT group_concat(prefix) FROM (SELECT prefix FROM cursors WHERE done = 1 ORDER BY prefix)",
    );
    assert_eq!(done, "fine/,good/");
}

#[test]
fn export_never_writes_over_the_catalog_and_defuses_formulas() {
    let w = Workdir::new();
    common::fixture::build(
        &w.catalog(),
        &[(
            "=HYPERLINK(\"http://evil\",\"x\")",
            vec![
                common::fixture::v("v2", "2024-05-01T13:00:00Z"),
                common::fixture::v("v1", "2024-05-01T10:00:00Z"),
            ],
        )],
    );
    s3rewind_ok(
        &w.catalog(),
        &[
            "plan",
            "restore",
            "--to",
            "2024-05-01T12:00:00Z",
            "--name",
            "r",
        ],
    );
    let before = snapshot(&w.catalog());
    let catalog = w.catalog();
    let wal = sibling(&catalog, "-wal");
    let dotted = w.dir.path().join(".").join("catalog.db");
    for out in [&catalog, &wal, &dotted] {
        let err = s3rewind_err(
            &catalog,
            &[
                "export",
                "r",
                "--format",
                "csv",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(err.contains("belongs to the catalog"), "{err}");
    }
    assert_eq!(snapshot(&catalog), before);
    assert!(rows(&catalog) > 0);

    let csv = s3rewind_ok(&catalog, &["export", "r", "--format", "csv"]);
    assert!(csv.contains("\"'=HYPERLINK("), "{csv}");
    let raw = s3rewind_ok(&catalog, &["export", "r", "--format", "csv", "--raw"]);
    assert!(
        raw.contains("\"=HYPERLINK(") && !raw.contains("'="),
        "{raw}"
    );
}

#[test]
fn keys_reach_the_terminal_escaped_and_machine_output_exact() {
    let hostile_key = "x\x1b[2J\x1b[1;1Happroved\nline\u{202e}gpj";
    let w = Workdir::new();
    common::fixture::build(
        &w.catalog(),
        &[(
            hostile_key,
            vec![
                common::fixture::v("v2", "2024-05-01T13:00:00Z"),
                common::fixture::v("v1", "2024-05-01T10:00:00Z"),
            ],
        )],
    );
    let c = w.catalog();
    s3rewind_ok(
        &c,
        &[
            "plan",
            "restore",
            "--to",
            "2024-05-01T12:00:00Z",
            "--name",
            "r",
        ],
    );
    let escaped = "x\\x1b[2J\\x1b[1;1Happroved\\nline\\u{202e}gpj";
    for args in [
        vec!["plan", "show", "r"],
        vec![
            "apply",
            "r",
            "--dry-run",
            "--endpoint-url",
            "http://fixture.invalid",
        ],
        vec!["sql", "SELECT key FROM objects"],
    ] {
        let out = s3rewind(&c, &args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}'),
            "{args:?}: {text:?}"
        );
        assert!(text.contains(escaped), "{args:?}: {text}");
    }
    // JSON and CSV keep the bytes.
    let json = s3rewind_ok(&c, &["sql", "--json", "SELECT key FROM objects LIMIT 1"]);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[0]["key"], hostile_key);
    let csv = s3rewind_ok(&c, &["sql", "--csv", "SELECT key FROM objects LIMIT 1"]);
    assert!(csv.contains(hostile_key));
}

#[cfg(unix)]
#[test]
fn catalogs_and_every_file_beside_them_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let mut b = Bucket::new("private", true);
    b.put("k", b"1");
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url()]);
    // A process that holds the catalog open keeps -wal and -shm around.
    let held = rusqlite::Connection::open(&c).unwrap();
    held.query_row("SELECT count(*) FROM keys", [], |r| r.get::<_, i64>(0))
        .unwrap();
    for file in [
        c.clone(),
        sibling(&c, "-wal"),
        sibling(&c, "-shm"),
        sibling(&c, ".lock"),
    ] {
        if file.exists() {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    assert_eq!(mode(&c), 0o600);
    drop(held);
    // A catalog made readable by others gets a note in status.
    std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o644)).unwrap();
    let status = s3rewind_ok(&c, &["status"]);
    assert!(status.contains("other users may read"), "{status}");
}

#[test]
fn a_compaction_killed_before_its_commit_point_is_cleared_and_redone() {
    let mut b = Bucket::new("killcompact", true);
    for i in 0..20 {
        b.put(&format!("k{i}"), b"x");
    }
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url()]);
    // What a kill inside VACUUM INTO leaves: a partial copy, its journal,
    // and a finished scan not yet packed.
    {
        let conn = rusqlite::Connection::open(&c).unwrap();
        conn.execute("UPDATE scans SET compacted_at = NULL", [])
            .unwrap();
    }
    std::fs::write(sibling(&c, ".packing"), b"partial").unwrap();
    std::fs::write(sibling(&c, ".packing-journal"), b"journal").unwrap();
    let out = s3rewind(&c, &["scan", &b.url()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("compacted the catalog"));
    for leftover in [".packing", ".packing-journal"] {
        assert!(!sibling(&c, leftover).exists(), "{leftover} left behind");
    }
    let compacted: Option<String> = catalog_scalar(&c, "SELECT compacted_at FROM scans");
    assert!(compacted.is_some());
    assert_eq!(rows(&c), 20);
    // --fresh takes every companion file with it.
    std::fs::write(sibling(&c, ".packing-journal"), b"journal").unwrap();
    s3rewind_ok(&c, &["scan", &b.url(), "--fresh", "--yes"]);
    assert!(!sibling(&c, ".packing-journal").exists());
}

#[test]
fn small_refusals_name_the_problem_and_change_nothing() {
    let w = Workdir::new();
    let c = w.catalog();
    // An empty prefixes file is not "the whole bucket".
    std::fs::write(w.path("prefixes.txt"), "# nothing yet\n\n").unwrap();
    let err = s3rewind_err(
        &c,
        &[
            "scan",
            "s3://some-bucket",
            "--prefixes",
            w.path("prefixes.txt").to_str().unwrap(),
        ],
    );
    assert!(err.contains("lists no prefix"), "{err}");
    // A rate that lets nothing through.
    for rate in ["0", "NaN", "-5", "inf"] {
        let err = s3rewind_err(&c, &["apply", "x", &format!("--max-rps={rate}")]);
        assert!(err.contains("positive number"), "{rate}: {err}");
    }
    assert!(!c.exists());
    assert!(!sibling(&c, ".lock").exists());

    // No credentials: one short message, not the SDK's list of providers.
    let mut b = Bucket::new("nocreds", true);
    b.put("k", b"1");
    let out = s3rewind_command(&c)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", w.dir.path())
        .args(["scan", &b.url()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no AWS credentials") && err.contains("AWS_PROFILE"),
        "{err}"
    );
    assert!(err.lines().count() <= 3, "{err}");
    // A command that failed before making a catalog leaves no lock behind.
    assert!(!c.exists() && !sibling(&c, ".lock").exists());

    // A catalog of a newer s3rewind, a damaged one, another program's.
    s3rewind_ok(&c, &["scan", &b.url()]);
    {
        let conn = rusqlite::Connection::open(&c).unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'future', 1, x'00', 0)",
            [],
        )
        .unwrap();
    }
    let err = s3rewind_err(&c, &["status"]);
    assert!(
        err.contains("newer s3rewind") && err.contains("99"),
        "{err}"
    );
    let damaged = w.path("damaged.db");
    std::fs::write(&damaged, vec![b'x'; 8192]).unwrap();
    let err = s3rewind_err(&damaged, &["status"]);
    assert!(
        err.contains("not an s3rewind catalog") && !err.contains("writ"),
        "{err}"
    );
    let foreign = w.path("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute("CREATE TABLE notes (t TEXT)", [])
        .unwrap();
    let before = snapshot(&foreign);
    let err = s3rewind_err(&foreign, &["status"]);
    assert!(err.contains("another program"), "{err}");
    assert_eq!(snapshot(&foreign), before);
}
