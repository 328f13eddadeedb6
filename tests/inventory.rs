//! `scan --inventory`: a catalog built from an S3 Inventory report — in
//! CSV, ORC and Parquet, written by s3sim from a bucket's own contents in
//! AWS's layout — equals a scan of the same bucket row for row; bad
//! reports are refused and leave nothing half-written; a killed ingest
//! resumes; prefixes listed again since the report replace its rows.
//! (Reports are written from s3sim's store, so these run on s3sim.)

mod common;

use std::path::{Path, PathBuf};

use aws_sdk_s3::types::BucketVersioningStatus;
use common::*;
use md5::Digest;
use s3inventory::Format;

fn at(server: &Server, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--endpoint-url".to_owned(), server.endpoint.clone()];
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

/// Every entry with every column a plan reads, in listing order.
fn rows(catalog: &Path) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(catalog).expect("open catalog");
    let mut stmt = conn
        .prepare(
            "SELECT key, seq, version_id, is_marker, is_latest, last_modified, \
                    coalesce(size, ''), coalesce(etag, ''), coalesce(storage_class, '') \
             FROM key_history ORDER BY key, seq",
        )
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    other => format!("{other:?}"),
                })
            })
            .collect::<Result<Vec<String>, _>>()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Keys that need every kind of care, `null` versions, stacked markers.
fn awkward_bucket(server: &Server) -> Bucket {
    let mut b = Bucket::on(server, &unique_bucket("inv"), false);
    // Written before versioning: the `null` version.
    b.put("null/before versioning", b"n");
    b.set_versioning(BucketVersioningStatus::Enabled);
    for key in [
        "a key with spaces",
        "plus+sign",
        "100% sure",
        "unicodé/日本語/ключ",
        "control\u{1}char\ttab\nnewline",
        "null/before versioning",
    ] {
        b.put(key, key.as_bytes());
        b.put(key, b"second");
    }
    b.put("stacked", b"x");
    b.delete("stacked");
    b.delete("stacked");
    b.delete("markers only");
    b.put("deep/a/b/c", b"1");
    b
}

fn report(server: &Server, bucket: &str, dir: &Path, format: Format, files: usize) -> PathBuf {
    let rows = s3sim::report::rows_of(&server.sim().store, bucket).unwrap();
    let created = unix_now().as_millis() as i64;
    s3inventory::write_report(dir, bucket, format, &rows, files, created).unwrap()
}

#[test]
fn a_catalog_from_a_report_equals_a_scan_of_the_bucket_in_every_format() {
    let server = start_server(ServerKind::S3sim, &[]);
    let b = awkward_bucket(&server);
    let w = Workdir::new();
    let scanned = w.path("scanned.db");
    s3rewind_ok(&scanned, &strs(&at(&server, &["scan", &b.url()])));
    let expected = rows(&scanned);
    assert!(expected.len() > 15, "{expected:?}");
    for format in [Format::Csv, Format::Orc, Format::Parquet] {
        let dir = tempfile::tempdir().unwrap();
        let manifest = report(&server, &b.name, dir.path(), format, 3);
        let catalog = w.path(&format!("{format:?}.db"));
        let out = s3rewind_ok(
            &catalog,
            &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
        );
        assert!(out.contains("from 3 files"), "{out}");
        assert_eq!(rows(&catalog), expected, "{format:?}");
        // Done is done: a second run reads nothing.
        let again = s3rewind_ok(
            &catalog,
            &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
        );
        assert!(again.contains("already complete"), "{again}");
    }
}

#[test]
fn only_rows_under_the_base_and_prefixes_are_kept() {
    let server = start_server(ServerKind::S3sim, &[]);
    let b = awkward_bucket(&server);
    let dir = tempfile::tempdir().unwrap();
    let manifest = report(&server, &b.name, dir.path(), Format::Parquet, 2);
    let w = Workdir::new();
    let scanned = w.path("scanned.db");
    let url = format!("{}/null/", b.url());
    s3rewind_ok(&scanned, &strs(&at(&server, &["scan", &url])));
    let catalog = w.catalog();
    s3rewind_ok(
        &catalog,
        &["scan", &url, "--inventory", manifest.to_str().unwrap()],
    );
    assert_eq!(rows(&catalog), rows(&scanned));
    assert_eq!(rows(&catalog).len(), 3);
}

#[test]
fn a_bad_report_is_refused_with_a_clear_error_and_nothing_half_written() {
    let server = start_server(ServerKind::S3sim, &[]);
    let b = awkward_bucket(&server);
    let w = Workdir::new();
    let fresh = |name: &str| w.path(name);

    // Another bucket's report.
    let dir = tempfile::tempdir().unwrap();
    let manifest = report(&server, &b.name, dir.path(), Format::Csv, 2);
    let err = s3rewind_err(
        &fresh("other.db"),
        &[
            "scan",
            "s3://someone-else",
            "--inventory",
            manifest.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains(&format!("is of bucket {}, not someone-else", b.name)),
        "{err}"
    );
    assert!(!fresh("other.db").exists());

    // An unknown format, and a report of current versions only.
    let text = std::fs::read_to_string(&manifest).unwrap();
    let edited = |from: &str, to: &str, name: &str| {
        let path = manifest.with_file_name(name);
        std::fs::write(&path, text.replace(from, to)).unwrap();
        path
    };
    let avro = edited("\"CSV\"", "\"Avro\"", "avro.json");
    let err = s3rewind_err(
        &fresh("avro.db"),
        &["scan", &b.url(), "--inventory", avro.to_str().unwrap()],
    );
    assert!(err.contains("Avro"), "{err}");
    let current = edited("VersionId, IsLatest, IsDeleteMarker, ", "", "current.json");
    let err = s3rewind_err(
        &fresh("current.db"),
        &["scan", &b.url(), "--inventory", current.to_str().unwrap()],
    );
    assert!(err.contains("IncludedObjectVersions=All"), "{err}");

    // A damaged data file: refused by its MD5; the catalog holds nothing.
    let manifest_json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let second = dir
        .path()
        .join(manifest_json["files"][1]["key"].as_str().unwrap());
    let good = std::fs::read(&second).unwrap();
    std::fs::write(&second, &good[..good.len() / 2]).unwrap();
    let catalog = fresh("damaged.db");
    let err = s3rewind_err(
        &catalog,
        &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
    );
    assert!(err.contains("its MD5 is"), "{err}");
    assert_eq!(catalog_count(&catalog, "SELECT count(*) FROM entries"), 0);
    assert_eq!(
        catalog_count(
            &catalog,
            "SELECT count(*) FROM scans WHERE finished_at IS NOT NULL"
        ),
        0
    );
    // Truncated, with a manifest that agrees: the gzip stream says so.
    let md5 = format!("{:x}", md5::Md5::digest(&good[..good.len() / 2]));
    let agreeing = edited(
        manifest_json["files"][1]["MD5checksum"].as_str().unwrap(),
        &md5,
        "agreeing.json",
    );
    let err = s3rewind_err(
        &fresh("truncated.db"),
        &["scan", &b.url(), "--inventory", agreeing.to_str().unwrap()],
    );
    assert!(err.contains("row"), "{err}");
    // Missing.
    std::fs::remove_file(&second).unwrap();
    let err = s3rewind_err(
        &fresh("missing.db"),
        &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
    );
    assert!(
        err.contains("a data file of the report is missing"),
        "{err}"
    );
    // Put back, the damaged catalog's scan finishes from where it was.
    std::fs::write(&second, &good).unwrap();
    s3rewind_ok(
        &catalog,
        &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
    );
    let scanned = fresh("scanned.db");
    s3rewind_ok(&scanned, &strs(&at(&server, &["scan", &b.url()])));
    assert_eq!(rows(&catalog), rows(&scanned));
}

#[test]
fn a_killed_ingest_resumes_at_the_first_unfinished_file() {
    let server = seeded_server(40_000, 3, 0.2, 11, &[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = report(&server, "seeded", dir.path(), Format::Csv, 24);
    let w = Workdir::new();
    let catalog = w.catalog();
    let args = [
        "scan",
        "s3://seeded",
        "--inventory",
        manifest.to_str().unwrap(),
    ];
    kill_at(
        &catalog,
        &args,
        "SELECT count(*) FROM inventory_files WHERE done = 1",
        3,
    );
    let done = catalog_count(
        &catalog,
        "SELECT count(*) FROM inventory_files WHERE done = 1",
    );
    assert!(done < 24, "the kill came too late: {done} files done");
    let out = s3rewind_ok(&catalog, &args);
    let read_now: u64 = out
        .split(" read now")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no file count in {out}"));
    assert!(read_now <= 24 - done as u64, "{out}");
    let scanned = w.path("scanned.db");
    s3rewind_ok(&scanned, &strs(&seeded_scan_args(&server, "1000")));
    assert_eq!(catalog_entries(&catalog), catalog_entries(&scanned));
}
