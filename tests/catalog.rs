//! The catalog file end to end: a file holding SQL s3rewind did not put
//! there is refused before any of it runs, whatever the command.

mod common;

use std::path::Path;

use common::*;

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
