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
        let ingest = at(
            &server,
            &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
        );
        let out = s3rewind_ok(&catalog, &strs(&ingest));
        assert!(out.contains("from 3 files"), "{out}");
        assert_eq!(rows(&catalog), expected, "{format:?}");
        // Done is done: a second run reads nothing.
        let again = s3rewind_ok(&catalog, &strs(&ingest));
        assert!(again.contains("already complete"), "{again}");
    }
}

#[test]
fn a_report_out_of_order_gives_the_same_catalog() {
    let server = start_server(ServerKind::S3sim, &[]);
    let b = awkward_bucket(&server);
    let w = Workdir::new();
    let scanned = w.path("scanned.db");
    s3rewind_ok(&scanned, &strs(&at(&server, &["scan", &b.url()])));
    let listed = s3sim::report::rows_of(&server.sim().store, &b.name).unwrap();
    let key_runs = |rows: &[s3inventory::Row]| -> Vec<Vec<s3inventory::Row>> {
        rows.chunk_by(|a, b| a.entry.key == b.entry.key)
            .map(<[_]>::to_vec)
            .collect()
    };
    // Keys in order, each key's versions oldest first: still one pass.
    // (Versions of the same second are listed again for S3's order: no
    // report can tell it.)
    let mut turned = 0;
    let oldest_first: Vec<_> = key_runs(&listed)
        .into_iter()
        .flat_map(|mut run| {
            if run.len() > 1 {
                run.reverse();
                turned += 1;
            }
            run
        })
        .collect();
    assert!(turned > 3, "{turned} keys turned");
    // In order but for the last two keys: found out of order at the last
    // file, after the others were written.
    let mut runs = key_runs(&listed);
    let n = runs.len();
    runs.swap(n - 2, n - 1);
    let last_swapped: Vec<_> = runs.into_iter().flatten().collect();
    let reversed: Vec<_> = listed.iter().rev().cloned().collect();
    for (name, report_rows, sorted) in [
        ("oldest first", oldest_first, false),
        ("last two keys swapped", last_swapped, true),
        ("reversed", reversed, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let created = unix_now().as_millis() as i64;
        let manifest =
            s3inventory::write_report(dir.path(), &b.name, Format::Csv, &report_rows, 3, created)
                .unwrap();
        let catalog = w.path(&format!("{name}.db"));
        let out = s3rewind_ok(
            &catalog,
            &strs(&at(
                &server,
                &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
            )),
        );
        assert_eq!(out.contains("out of key order"), sorted, "{name}: {out}");
        assert_eq!(rows(&catalog), rows(&scanned), "{name}");
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
        &strs(&at(
            &server,
            &["scan", &url, "--inventory", manifest.to_str().unwrap()],
        )),
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
    let ingest = at(
        &server,
        &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
    );
    let err = s3rewind_err(&catalog, &strs(&ingest));
    assert!(err.contains("its MD5 is"), "{err}");
    // The first file is in, whole; nothing of the second.
    assert_eq!(
        catalog_count(
            &catalog,
            "SELECT count(*) FROM inventory_files WHERE done = 1"
        ),
        1
    );
    let first_file = catalog_count(&catalog, "SELECT rows FROM inventory_files WHERE id = 0");
    let written = catalog_count(
        &catalog,
        "SELECT (SELECT count(*) FROM entries) + (SELECT count(*) FROM inventory_rows)",
    );
    assert_eq!(written, first_file);
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
    // A catalog made by listing is not mixed with a report.
    let listed = fresh("listed.db");
    s3rewind_ok(&listed, &strs(&at(&server, &["scan", &b.url()])));
    let before = rows(&listed);
    let err = s3rewind_err(
        &listed,
        &strs(&at(
            &server,
            &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
        )),
    );
    assert!(err.contains("already holds a listing"), "{err}");
    assert_eq!(rows(&listed), before);
    // Put back, the damaged catalog's scan finishes from where it was.
    std::fs::write(&second, &good).unwrap();
    s3rewind_ok(&catalog, &strs(&ingest));
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
    let status = s3rewind_ok(&catalog, &["status"]);
    assert!(
        status.contains(&format!("{done} of 24 data files in")),
        "{status}"
    );
    // A listing is not mixed into the half-built catalog.
    let err = s3rewind_err(&catalog, &["scan", "s3://seeded"]);
    assert!(
        err.contains("being built from an inventory report"),
        "{err}"
    );
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

/// Every file under `dir`, uploaded to `bucket` at its path below `dir`.
fn upload_dir(b: &Bucket, dir: &Path) {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out)
            } else {
                out.push(p)
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    for f in files {
        let key = f.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
        let body = std::fs::read(&f).unwrap();
        runtime().block_on(async {
            b.client
                .put_object()
                .bucket(&b.name)
                .key(&key)
                .body(aws_sdk_s3::primitives::ByteStream::from(body))
                .send()
                .await
                .unwrap();
        });
    }
}

#[test]
fn a_report_in_its_destination_bucket_is_read_from_there() {
    let server = start_server(ServerKind::S3sim, &[]);
    let b = awkward_bucket(&server);
    let dir = tempfile::tempdir().unwrap();
    let manifest = report(&server, &b.name, dir.path(), Format::Orc, 2);
    let destination = Bucket::on(&server, "inventory-destination", false);
    upload_dir(&destination, dir.path());
    let key = manifest.strip_prefix(dir.path()).unwrap().to_str().unwrap();
    let w = Workdir::new();
    let catalog = w.catalog();
    let url = format!("s3://inventory-destination/{key}");
    s3rewind_ok(
        &catalog,
        &strs(&at(&server, &["scan", &b.url(), "--inventory", &url])),
    );
    let scanned = w.path("scanned.db");
    s3rewind_ok(&scanned, &strs(&at(&server, &["scan", &b.url()])));
    assert_eq!(rows(&catalog), rows(&scanned));
    // The downloads were removed.
    assert!(!PathBuf::from(format!("{}.inventory", catalog.display())).exists());
}

#[test]
fn prefixes_listed_again_replace_the_reports_rows_and_status_says_where_each_came_from() {
    let server = start_server(ServerKind::S3sim, &[]);
    let mut b = Bucket::on(&server, &unique_bucket("fresh"), true);
    for k in ["a/1", "a/2", "b/1"] {
        b.put(k, b"before the report");
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = report(&server, &b.name, dir.path(), Format::Parquet, 1);
    let w = Workdir::new();
    let catalog = w.catalog();
    // The endpoint is recorded, as for a listing: later scans go there.
    s3rewind_ok(
        &catalog,
        &strs(&at(
            &server,
            &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
        )),
    );
    // After the report: the incident, under a/ and b/.
    let made = unix_now().as_secs();
    wait_for_second_after(made);
    b.put("a/1", b"after");
    b.delete("a/2");
    b.put("a/3", b"new");
    b.put("b/1", b"after");
    let t = model::time::format_time(unix_now().as_secs() as i64);

    let out = s3rewind(
        &catalog,
        &["plan", "restore", "--to", &t, "--name", "early"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("come from the inventory report of"), "{err}");
    // The hint names the scanned location and endpoint, not s3://BUCKET.
    assert!(
        err.contains(&format!(
            "scan s3://{}/ --endpoint-url {} --rescan PREFIX",
            b.name, server.endpoint
        )),
        "{err}"
    );

    s3rewind_ok(
        &catalog,
        &strs(&at(&server, &["scan", &b.url(), "--rescan", "a/"])),
    );
    let scanned = w.path("scanned.db");
    s3rewind_ok(&scanned, &strs(&at(&server, &["scan", &b.url()])));
    let under = |rows: Vec<Vec<String>>, p: &str| -> Vec<Vec<String>> {
        rows.into_iter().filter(|r| r[0].starts_with(p)).collect()
    };
    assert_eq!(under(rows(&catalog), "a/"), under(rows(&scanned), "a/"));
    assert_eq!(under(rows(&catalog), "a/").len(), 5);
    // b/ is still as the report saw it.
    assert_eq!(under(rows(&catalog), "b/").len(), 1);
    assert_eq!(under(rows(&scanned), "b/").len(), 2);

    let status = s3rewind_ok(&catalog, &["status"]);
    assert!(
        status.contains("source      everything: the inventory report of"),
        "{status}"
    );
    assert!(
        status.contains("source      prefix \"a/\": listed again at"),
        "{status}"
    );
    assert!(status.contains("5 versions, 1 delete markers"), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&s3rewind_ok(&catalog, &["status", "--json"])).unwrap();
    let kinds: Vec<&str> = json["scan"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["inventory", "listing"]);
    // The plan made before saw none of the incident and has nothing to
    // do; made again, it sees what the listing found under a/.
    let early: i64 = catalog_scalar(&catalog, "SELECT actions FROM plans WHERE name = 'early'");
    assert_eq!(early, 0);
    // To just before the incident: what the listing found under a/ is
    // taken back; b/ is still as the report saw it (nothing to do).
    let before = model::time::format_time(made as i64);
    s3rewind_ok(
        &catalog,
        &["plan", "restore", "--to", &before, "--name", "again"],
    );
    let again: Vec<String> = {
        let db = rusqlite::Connection::open(&catalog).unwrap();
        let mut stmt = db
            .prepare("SELECT DISTINCT key FROM actions WHERE plan_id = (SELECT id FROM plans WHERE name = 'again') ORDER BY key")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(again, ["a/1", "a/2", "a/3"]);
    // Listing under b/ too leaves the warning with nothing to say of them.
    s3rewind_ok(
        &catalog,
        &strs(&at(&server, &["scan", &b.url(), "--rescan", "b/"])),
    );
    assert_eq!(rows(&catalog), rows(&scanned));
}

/// `scan ARGS --inventory MANIFEST --endpoint-url SERVER --json`: the summary.
fn ingest_json(
    catalog: &Path,
    server_endpoint: &str,
    url: &str,
    manifest: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "scan",
        url,
        "--inventory",
        manifest.to_str().unwrap(),
        "--endpoint-url",
        server_endpoint,
        "--json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&s3rewind_ok(catalog, &args)).unwrap()
}

/// Keys of `rows` (a report's, listing order) with two noncurrent entries
/// of one second: what no report can order.
fn tied_keys(rows: &[s3inventory::Row]) -> usize {
    rows.chunk_by(|a, b| a.entry.key == b.entry.key)
        .filter(|run| {
            run.windows(2).any(|w| {
                !w[0].entry.is_latest
                    && !w[1].entry.is_latest
                    && w[0].entry.mtime == w[1].entry.mtime
            })
        })
        .count()
}

/// Ten keys of four versions each, written within one second (their
/// times set in s3sim's store, 100 ms apart in the order they were
/// written, so that nothing depends on how fast the PUTs run), and three
/// keys a second later: a report's rows, each key oldest first (AWS
/// documents no order within a report), and where it is.
fn same_second_bucket(server: &Server, dir: &Path) -> (Bucket, PathBuf) {
    let mut b = Bucket::on(server, &unique_bucket("ties"), true);
    for k in 0..10 {
        for v in 0..4 {
            b.put(&format!("tied/{k}"), format!("{v}").as_bytes());
        }
    }
    for k in 0..3 {
        b.put(&format!("plain/{k}"), b"1");
    }
    let second = (unix_now().as_secs() as i64 - 60) * 1000;
    {
        let store = &server.sim().store;
        let bucket = store.bucket(&b.name).unwrap();
        let mut keys = bucket.keys.write().unwrap();
        for (key, entries) in keys.iter_mut() {
            let at = match key.starts_with("tied/") {
                true => second,
                false => second + 1000,
            };
            for (ms, e) in (at..).step_by(100).zip(entries.iter_mut()) {
                e.mtime_ms = ms;
            }
        }
    }
    let listed = s3sim::report::rows_of(&server.sim().store, &b.name).unwrap();
    assert_eq!(tied_keys(&listed), 10);
    let oldest_first: Vec<_> = listed
        .chunk_by(|a, b| a.entry.key == b.entry.key)
        .flat_map(|run| run.iter().rev().cloned())
        .collect();
    let created = unix_now().as_millis() as i64;
    let manifest =
        s3inventory::write_report(dir, &b.name, Format::Csv, &oldest_first, 2, created).unwrap();
    (b, manifest)
}

/// A report gives times to the second: the versions of a key written in
/// one second are in no order it can tell. Those keys are listed again,
/// and the catalog holds S3's order — `plan expire --keep-newest 1` keeps
/// the version S3 says is newest, not the one the report happened to
/// give first.
#[test]
fn versions_of_one_second_take_s3s_order_from_a_listing_of_their_keys() {
    let server = start_server(ServerKind::S3sim, &[]);
    let dir = tempfile::tempdir().unwrap();
    let (b, manifest) = same_second_bucket(&server, dir.path());
    let w = Workdir::new();
    let catalog = w.catalog();
    let summary = ingest_json(&catalog, &server.endpoint, &b.url(), &manifest, &[]);
    assert_eq!(summary["tied_keys"], 10, "{summary}");
    assert!(summary["tie_requests"].as_u64().unwrap() >= 1, "{summary}");
    let scanned = w.path("scanned.db");
    s3rewind_ok(&scanned, &strs(&at(&server, &["scan", &b.url()])));
    assert_eq!(rows(&catalog), rows(&scanned));
    let expire = |catalog: &Path| -> Vec<(String, String)> {
        s3rewind_ok(
            catalog,
            &[
                "plan",
                "expire",
                "--noncurrent-older-than",
                "0s",
                "--keep-newest",
                "1",
                "--name",
                "e",
            ],
        );
        let conn = rusqlite::Connection::open(catalog).unwrap();
        let mut stmt = conn
            .prepare("SELECT key, version_id FROM actions ORDER BY 1, 2")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let planned = expire(&catalog);
    assert_eq!(planned.len(), 20, "{planned:?}");
    assert_eq!(planned, expire(&scanned));
}

/// Without S3 to list the tied keys, the ingest stops with the reason and
/// is not complete; once S3 answers, the same command finishes it.
#[test]
fn an_ingest_whose_ties_cannot_be_listed_fails_loudly_and_resumes() {
    let server = start_server(ServerKind::S3sim, &[]);
    let dir = tempfile::tempdir().unwrap();
    let (b, manifest) = same_second_bucket(&server, dir.path());
    let (sim, addr, endpoint) = (server.sim(), server_addr(&server), server.endpoint.clone());
    drop(server);
    let w = Workdir::new();
    let catalog = w.catalog();
    let args = [
        "scan",
        &b.url(),
        "--inventory",
        manifest.to_str().unwrap(),
        "--endpoint-url",
        &endpoint,
    ];
    let err = s3rewind_err(&catalog, &args);
    assert!(
        err.contains("10 keys of the inventory report have versions written in the same second"),
        "{err}"
    );
    let status = s3rewind_ok(&catalog, &["status"]);
    assert!(status.contains("UNFINISHED"), "{status}");
    let err = s3rewind_err(&catalog, &["scan", &b.url(), "--endpoint-url", &endpoint]);
    assert!(
        err.contains("being built from an inventory report"),
        "{err}"
    );
    // S3 is back, at the same address.
    let listener = runtime()
        .block_on(tokio::net::TcpListener::bind(addr))
        .unwrap();
    let again = runtime()
        .block_on(async { s3sim::serve(sim, listener) })
        .unwrap();
    let out = s3rewind_ok(&catalog, &args);
    assert!(
        out.contains("10 keys had versions written in the same second"),
        "{out}"
    );
    let scanned = w.path("scanned.db");
    s3rewind_ok(&scanned, &["scan", &b.url(), "--endpoint-url", &endpoint]);
    assert_eq!(rows(&catalog), rows(&scanned));
    runtime().block_on(again.stop());
}

fn server_addr(server: &Server) -> std::net::SocketAddr {
    server
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

/// A row that appears twice in a report would be two entries of one
/// version: refused, as a listing that repeats one is, whether the report
/// is in key order or not.
#[test]
fn a_report_that_lists_a_version_twice_is_refused() {
    let server = start_server(ServerKind::S3sim, &[]);
    let b = awkward_bucket(&server);
    let listed = s3sim::report::rows_of(&server.sim().store, &b.name).unwrap();
    let n = listed.len();
    let twice = n / 2;
    let mut next_to = listed.clone();
    next_to.insert(twice, listed[twice].clone());
    let mut far_apart = listed.clone();
    far_apart.push(listed[1].clone());
    for (name, report_rows) in [("next to it", next_to), ("far apart", far_apart)] {
        let dir = tempfile::tempdir().unwrap();
        let created = unix_now().as_millis() as i64;
        let manifest = s3inventory::write_report(
            dir.path(),
            &b.name,
            Format::Parquet,
            &report_rows,
            2,
            created,
        )
        .unwrap();
        let w = Workdir::new();
        let err = s3rewind_err(
            &w.catalog(),
            &strs(&at(
                &server,
                &["scan", &b.url(), "--inventory", manifest.to_str().unwrap()],
            )),
        );
        assert!(
            err.contains("lists version") && err.contains("twice"),
            "{name}: {err}"
        );
        let finished = catalog_count(
            &w.catalog(),
            "SELECT count(*) FROM scans WHERE finished_at IS NOT NULL",
        );
        assert_eq!(finished, 0, "{name}");
    }
}

/// A report without LastModifiedDate is refused (every entry would date
/// from 1970); without Size or ETag, refused unless `--allow-missing`
/// says otherwise, and then status, plan show, check and the report say
/// what is lost.
#[test]
fn a_report_without_the_fields_plans_rely_on_is_refused_or_allowed_and_said() {
    use s3inventory::Field;
    let server = start_server(ServerKind::S3sim, &[]);
    let b = awkward_bucket(&server);
    let listed = s3sim::report::rows_of(&server.sim().store, &b.name).unwrap();
    let created = unix_now().as_millis() as i64;
    let w = Workdir::new();

    let dir = tempfile::tempdir().unwrap();
    let whole =
        s3inventory::write_report(dir.path(), &b.name, Format::Csv, &listed, 1, created).unwrap();
    let text = std::fs::read_to_string(&whole).unwrap();
    let timeless = whole.with_file_name("timeless.json");
    std::fs::write(&timeless, text.replace("LastModifiedDate, ", "")).unwrap();
    let err = s3rewind_err(
        &w.path("timeless.db"),
        &["scan", &b.url(), "--inventory", timeless.to_str().unwrap()],
    );
    assert!(err.contains("has no LastModifiedDate field"), "{err}");
    assert!(!w.path("timeless.db").exists());

    let dir = tempfile::tempdir().unwrap();
    let without = [Field::Size, Field::ETag];
    let bare = s3inventory::write_report_without(
        dir.path(),
        &b.name,
        Format::Parquet,
        &listed,
        1,
        created,
        &without,
    )
    .unwrap();
    let catalog = w.catalog();
    let url = b.url();
    let ingest = |extra: &[&str]| {
        let mut args = vec!["scan", &url, "--inventory", bare.to_str().unwrap()];
        args.extend_from_slice(extra);
        at(&server, &args)
    };
    let err = s3rewind_err(&catalog, &strs(&ingest(&[])));
    assert!(
        err.contains("has no Size field") && err.contains("--allow-missing size"),
        "{err}"
    );
    let err = s3rewind_err(&catalog, &strs(&ingest(&["--allow-missing", "size"])));
    assert!(
        err.contains("has no ETag field") && err.contains("--allow-missing etag"),
        "{err}"
    );
    assert!(!catalog.exists());
    let out = s3rewind_ok(
        &catalog,
        &strs(&ingest(&[
            "--allow-missing",
            "size",
            "--allow-missing",
            "etag",
        ])),
    );
    assert!(out.contains("the report has no ETag field"), "{out}");
    // (Keys whose versions tie on time were listed again, with both.)
    let bare_rows: i64 = catalog_scalar(
        &catalog,
        "SELECT count(*) FROM objects WHERE size IS NULL AND etag IS NULL",
    );
    assert!(bare_rows > 10, "{bare_rows}");

    let status = s3rewind_ok(&catalog, &["status"]);
    assert!(
        status.contains("missing") && status.contains("lack Size and ETag"),
        "{status}"
    );
    assert!(status.contains("If-Match"), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&s3rewind_ok(&catalog, &["status", "--json"])).unwrap();
    assert_eq!(
        json["scan"]["sources"][0]["missing"],
        serde_json::json!(["Size", "ETag"])
    );
    s3rewind_ok(
        &catalog,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "0s",
            "--name",
            "r",
        ],
    );
    let show = s3rewind_ok(&catalog, &["plan", "show", "r"]);
    assert!(
        show.contains("report-fields") && show.contains("5 GiB"),
        "{show}"
    );
    let check = s3rewind_ok(&catalog, &strs(&at(&server, &["check", "--plan", "r"])));
    assert!(check.contains("report-fields"), "{check}");
    let html = w.path("r.html");
    s3rewind_ok(&catalog, &["report", "r", "--out", html.to_str().unwrap()]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("data-figure=\"report-fields\""), "{page}");
    // Listed again, a prefix lacks nothing.
    s3rewind_ok(
        &catalog,
        &strs(&at(&server, &["scan", &b.url(), "--rescan", ""])),
    );
    let status = s3rewind_ok(&catalog, &["status"]);
    assert!(!status.contains("lack Size"), "{status}");
}
