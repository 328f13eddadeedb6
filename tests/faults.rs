//! A throttling storm never loses data: scan and apply against s3sim
//! answering with 503 SlowDown, 500s, SlowDown inside 200 DeleteObjects
//! bodies, connection resets, slow bodies and 409s to conditional copies. (moto cannot misbehave on
//! purpose, so these run on s3sim whatever S3REWIND_TEST_SERVER says.)

mod common;

use common::*;

/// 400 keys × 3 entries over 4 prefixes, identical for identical flags.
fn seeded(faults: &[&str]) -> Server {
    seeded_server(400, 3, 0.3, 7, faults)
}

fn scan(server: &Server, catalog: &std::path::Path) -> String {
    s3rewind_ok(catalog, &strs(&seeded_scan_args(server, "50")))
}

#[test]
fn a_scan_through_a_throttling_storm_equals_a_calm_one() {
    let calm = seeded(&[]);
    let storm = seeded(&[
        "--fault-slowdown",
        "0.1",
        "--fault-500",
        "0.05",
        "--fault-reset",
        "0.05",
        "--fault-slow-body",
        "0.05",
        "--slow-body-ms",
        "5",
    ]);
    let (a, b) = (Workdir::new(), Workdir::new());
    scan(&calm, &a.catalog());
    let out = scan(&storm, &b.catalog());
    let retried: u64 = out
        .split(" requests, ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no retry count in {out}"));
    assert!(retried > 0, "the storm caused no retry: {out}");
    let calm_rows = catalog_entries(&a.catalog());
    assert_eq!(calm_rows.len(), 1200);
    assert_eq!(catalog_entries(&b.catalog()), calm_rows);
}

#[test]
fn apply_through_a_throttling_storm_finishes_the_plan_exactly() {
    let storm = seeded(&[
        "--fault-slowdown",
        "0.05",
        "--fault-delete-slowdown",
        "0.2",
        "--fault-reset",
        "0.02",
        // Conditional copies raced by another write: 409, retried.
        "--fault-conflict",
        "0.2",
    ]);
    let w = Workdir::new();
    let catalog = w.catalog();
    scan(&storm, &catalog);
    // The middle of the seeded histories: every kind of action.
    let t = plan_restore_within(&catalog, 0.5);
    let kinds: String = catalog_scalar(&catalog, "SELECT group_concat(DISTINCT kind) FROM actions");
    for kind in ["copy_version", "delete_marker", "add_delete_marker"] {
        assert!(kinds.contains(kind), "the plan has no {kind}: {kinds}");
    }
    let out = s3rewind_ok(
        &catalog,
        &[
            "apply",
            "r",
            "--yes",
            "--endpoint-url",
            &storm.endpoint,
            "--block-size",
            "20",
        ],
    );
    assert!(out.contains(" 0 failed, 0 skipped, 0 drifted"), "{out}");
    assert!(storm.served(s3sim::Op::InjectedConflict) > 0);

    // Read back with a fresh scan: few requests, so little waiting on the storm.
    let check = Workdir::new();
    scan(&storm, &check.catalog());
    assert_restored_exactly(&catalog, t, &check.catalog());
}
