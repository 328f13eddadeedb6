//! The catalog file end to end: a file holding SQL s3rewind did not put
//! there is refused before any of it runs, whatever the command; and a
//! compaction killed at any step of its swap leaves a catalog that plain
//! SQLite (as `sqlite3` reads it for a review) reads whole.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use common::*;
use rusqlite::OpenFlags;

const KEYS: usize = 6;

/// A scanned bucket whose every key was overwritten after T, and a catalog
/// holding a restore plan `r` to T: one copy per key.
fn planned(tag: &str) -> (Bucket, Workdir) {
    let mut b = Bucket::new(tag, true);
    for i in 0..KEYS {
        b.put(&format!("k/{i}"), b"good");
    }
    let t = mark_t();
    for i in 0..KEYS {
        b.put(&format!("k/{i}"), b"bad");
    }
    let w = Workdir::new();
    s3rewind_ok(&w.catalog(), &["scan", &b.url()]);
    s3rewind_ok(
        &w.catalog(),
        &["plan", "restore", "--to", &t, "--name", "r"],
    );
    let copies: i64 = catalog_scalar(
        &w.catalog(),
        "SELECT count(*) FROM actions WHERE kind = 'copy_version'",
    );
    assert_eq!(copies, KEYS as i64);
    (b, w)
}

/// Changes a catalog as someone with `sqlite3` could.
fn alter(catalog: &Path, sql: &str) {
    rusqlite::Connection::open(catalog)
        .expect("open catalog")
        .execute_batch(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Runs `args`, which must fail naming each of `named` and leave the file's
/// bytes as they were.
#[track_caller]
fn refused(catalog: &Path, args: &[&str], named: &[&str]) {
    let before = snapshot(catalog);
    let err = s3rewind_err(catalog, args);
    assert!(
        err.contains("is not a catalog s3rewind made") && err.contains("hint:"),
        "{args:?}: {err}"
    );
    for name in named {
        assert!(err.contains(name), "{args:?} does not name {name}: {err}");
    }
    assert_eq!(snapshot(catalog), before, "{args:?} changed the file");
}

#[test]
fn a_trigger_stored_in_a_catalog_never_fires_every_command_refuses_the_file() {
    let (b, w) = planned("trigger");
    let c = w.catalog();
    // Fires on apply's own claim of a block, after the review and the "yes".
    alter(
        &c,
        "CREATE TRIGGER copies_into_deletes AFTER UPDATE OF status ON actions BEGIN \
           UPDATE actions SET kind = 'delete_version' \
           WHERE plan_id = NEW.plan_id AND kind = 'copy_version'; \
         END",
    );
    let listing = b.listing();
    for args in [
        &["status"][..],
        &["apply", "r", "--yes"],
        &["plan", "show", "r"],
        &["sql", "SELECT count(*) FROM plan_review"],
    ] {
        refused(
            &c,
            args,
            &[
                "trigger `copies_into_deletes`",
                "DROP TRIGGER \"copies_into_deletes\";",
            ],
        );
    }
    assert_eq!(b.listing(), listing, "S3 was touched");
    // Dropped as the hint says, the catalog is s3rewind's again, and the
    // plan applies as it was reviewed: copies, no version deleted.
    alter(&c, "DROP TRIGGER copies_into_deletes");
    let out = s3rewind_ok(&c, &["apply", "r", "--yes"]);
    assert!(out.contains("0 failed"), "{out}");
    for i in 0..KEYS {
        assert_eq!(b.get(&format!("k/{i}")).as_deref(), Some(&b"good"[..]));
    }
    assert_eq!(b.listing().len(), listing.len() + KEYS);
}

#[test]
fn views_tables_indexes_and_defaults_not_as_s3rewind_makes_them_are_refused_by_name() {
    let (_b, w) = planned("schema");
    let original = w.path("original.db");
    std::fs::copy(w.catalog(), &original).unwrap();
    let cases: &[(&str, &[&str])] = &[
        // The review would show no deletes.
        (
            "DROP VIEW plan_review; \
             CREATE VIEW plan_review AS SELECT p.name AS plan, a.* FROM actions a \
             JOIN plans p ON p.id = a.plan_id WHERE a.kind != 'delete_version'",
            &["view `plan_review` defined otherwise"],
        ),
        (
            "DROP VIEW key_history; \
             CREATE VIEW key_history AS SELECT k.key, e.* FROM entries e JOIN keys k ON k.id = e.key_id \
             WHERE e.is_marker = 0",
            &["view `key_history` defined otherwise"],
        ),
        // A table swapped for a view of the same name.
        (
            "ALTER TABLE plans RENAME TO plans_kept; \
             CREATE VIEW plans AS SELECT * FROM plans_kept",
            &[
                "`plans` as a view, where s3rewind makes a table",
                "table `plans_kept`, which s3rewind never makes",
            ],
        ),
        // An index on an expression runs it for every row written.
        (
            "CREATE INDEX keys_folded ON keys (lower(key))",
            &["index `keys_folded`", "DROP INDEX \"keys_folded\";"],
        ),
        // A default changed in place (what a hand-edited file can do).
        (
            "PRAGMA writable_schema = ON; \
             UPDATE sqlite_master SET sql = replace(sql, 'DEFAULT ''pending''', 'DEFAULT ''done''') \
             WHERE name = 'actions'; \
             PRAGMA writable_schema = OFF;",
            &["table `actions` defined otherwise"],
        ),
    ];
    for (change, named) in cases {
        let c = w.path("catalog.db");
        std::fs::copy(&original, &c).unwrap();
        alter(&c, change);
        refused(&c, &["status"], named);
        refused(&c, &["apply", "r", "--yes"], named);
    }
    // The untouched copy opens.
    let c = w.path("catalog.db");
    std::fs::copy(&original, &c).unwrap();
    let status = s3rewind_ok(&c, &["status"]);
    assert!(status.contains("complete"), "{status}");
}

/// Every entry of the catalog as a read-only connection sees it, without
/// s3rewind's repairs first: what `sqlite3 catalog.db` would show.
fn read_only_entries(catalog: &Path) -> Vec<Entry> {
    let conn = rusqlite::Connection::open_with_flags(catalog, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open read-only");
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .expect("quick_check");
    assert_eq!(check, "ok");
    let mut stmt = conn
        .prepare("SELECT key, version_id, is_marker, is_latest FROM key_history ORDER BY key, seq")
        .expect("query catalog");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// A scan killed (SIGKILL, at a point inside the compaction named by
/// `S3REWIND_CRASH_AT`) at each step of the swap of the packed copy for the
/// catalog: a plain read-only SQLite connection, opened right after and
/// before any s3rewind command, sees every entry; the next scan clears or
/// finishes what the kill left, and leaves a packed catalog in WAL mode.
#[test]
fn a_compaction_killed_at_any_step_leaves_a_catalog_plain_sqlite_reads_whole() {
    let mut b = Bucket::new("swapkill", true);
    for i in 0..400 {
        b.put(&format!("k/{i:03}"), b"1");
        if i % 3 == 0 {
            b.put(&format!("k/{i:03}"), b"2");
        }
        if i % 7 == 0 {
            b.delete(&format!("k/{i:03}"));
        }
    }
    let expected = b.expected();
    let wal_len = |c: &Path| std::fs::metadata(sibling(c, "-wal")).map_or(0, |m| m.len());
    for step in ["copied", "closed", "renamed"] {
        let w = Workdir::new();
        let c = w.catalog();
        let out = s3rewind_command(&c)
            .env("S3REWIND_CRASH_AT", step)
            .args(["scan", &b.url()])
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{step}: not killed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // What each step left: the catalog's rows still in its WAL, the
        // old file whole without one, or the packed copy in its place.
        let (wal, packing) = (wal_len(&c), sibling(&c, ".packing").exists());
        match step {
            "copied" => assert!(wal > 0 && packing, "{step}: WAL {wal} bytes"),
            "closed" => assert!(wal == 0 && packing, "{step}: WAL {wal} bytes"),
            _ => assert!(wal == 0 && !packing, "{step}: WAL {wal} bytes"),
        }
        let seen = read_only_entries(&c);
        assert_eq!(seen.len(), expected.len(), "killed at {step}");
        assert_eq!(seen, expected, "killed at {step}");
        // Marked compacted in the copy only.
        let compacted: Option<String> =
            rusqlite::Connection::open_with_flags(&c, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|conn| conn.query_row("SELECT compacted_at FROM scans", [], |r| r.get(0)))
                .unwrap();
        assert_eq!(compacted.is_some(), step == "renamed", "killed at {step}");
        // The next scan finishes what the kill cut short.
        let out = s3rewind(&c, &["scan", &b.url()]);
        assert!(out.status.success(), "{step}: {out:?}");
        let compacted: Option<String> = catalog_scalar(&c, "SELECT compacted_at FROM scans");
        assert!(compacted.is_some(), "{step}: not compacted");
        for leftover in [".packing", ".packing-wal", ".packing-journal", ".packed"] {
            assert!(!sibling(&c, leftover).exists(), "{step}: {leftover} left");
        }
        let mode: String = catalog_scalar(&c, "PRAGMA journal_mode");
        assert_eq!(mode, "wal", "{step}");
        assert_eq!(read_only_entries(&c), expected, "after the kill at {step}");
    }
}
