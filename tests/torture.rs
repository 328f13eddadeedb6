//! Kill it anywhere, run it again: nothing lost, nothing twice — at a size
//! where a path that is quadratic in the plan would show, with s3sim
//! throttling, failing and dropping connections all the while.
//! (s3sim only: moto cannot misbehave on purpose.)

mod common;

use common::*;
use rand::{Rng, SeedableRng};

/// `keys` keys × 3 entries over 4 prefixes, a quarter of them delete markers.
fn seeded(keys: u32, extra: &[&str]) -> Server {
    seeded_server(keys, 3, 0.25, 11, extra)
}

const STORM: [&str; 8] = [
    "--fault-slowdown",
    "0.05",
    "--fault-500",
    "0.05",
    "--fault-reset",
    "0.02",
    "--latency-ms",
    "1",
];

/// Kill points, ascending, in `range`, from a seed printed for reruns.
fn kill_points(rng: &mut rand::rngs::StdRng, n: usize, range: std::ops::Range<i64>) -> Vec<i64> {
    let mut points: Vec<i64> = (0..n).map(|_| rng.random_range(range.clone())).collect();
    points.sort_unstable();
    points.dedup();
    points
}

#[test]
fn scan_and_apply_killed_at_random_points_in_a_storm_end_exactly_right() {
    let seed: u64 = std::env::var("S3REWIND_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("torture seed {seed} (S3REWIND_TORTURE_SEED={seed} repeats these kill points)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = std::time::Instant::now();
    let phase = |what: &str| eprintln!("{:>6.1} s  {what}", started.elapsed().as_secs_f64());
    let storm = seeded(24_000, &STORM);
    let calm = seeded(24_000, &[]);

    // Scan, killed three times.
    let w = Workdir::new();
    let catalog = w.catalog();
    // Small pages: many commits to be killed between.
    let args = seeded_scan_args(&storm, "100");
    let args = strs(&args);
    const ROWS: &str = "SELECT count(*) FROM entries";
    for point in kill_points(&mut rng, 3, 2_000..64_000) {
        kill_at(&catalog, &args, ROWS, point);
        let check: String = catalog_scalar(&catalog, "PRAGMA integrity_check");
        assert_eq!(check, "ok");
    }
    s3rewind_ok(&catalog, &args);
    phase("scanned, killed three times");
    let reference = Workdir::new();
    s3rewind_ok(
        &reference.catalog(),
        &strs(&seeded_scan_args(&calm, "1000")),
    );
    let expected = catalog_entries(&reference.catalog());
    assert_eq!(expected.len(), 72_000);
    assert!(
        catalog_entries(&catalog) == expected,
        "the killed scan's catalog differs from a calm one"
    );

    // A plan big enough for a quadratic path to show.
    let t = plan_restore_within(&catalog, 0.4);
    let total: i64 = catalog_scalar(&catalog, "SELECT count(*) FROM actions");
    assert!(total >= 20_000, "only {total} actions");
    phase(&format!("planned {total} actions"));

    // Apply, killed three times: the default claim has the whole plan in
    // flight after the first kill.
    let apply = ["apply", "r", "--yes", "--endpoint-url", &storm.endpoint];
    const DONE: &str = "SELECT count(*) FROM actions WHERE status = 'done'";
    for point in kill_points(&mut rng, 3, total / 20..total * 4 / 5) {
        kill_at(&catalog, &apply, DONE, point);
    }
    let out = s3rewind_ok(&catalog, &apply);
    phase("applied, killed three times");
    assert!(out.contains(" 0 failed, 0 skipped"), "{out}");
    // A new delete marker whose answer a kill lost cannot be told from
    // another writer's (a marker has no content): it is left `uncertain`
    // with its candidate, for a person to settle. Nobody else writes
    // here, so each is ours: said so, as the runbook says to.
    let left: Vec<(i64, String, Option<String>)> = {
        let db = rusqlite::Connection::open(&catalog).unwrap();
        let mut stmt = db
            .prepare(
                "SELECT id, kind || ' ' || status, candidate_version_id FROM actions
                 WHERE status != 'done' ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    for (id, what, candidate) in &left {
        assert_eq!(what, "add_delete_marker uncertain", "action {id}");
        assert!(candidate.is_some(), "action {id} has no candidate");
    }
    if !left.is_empty() {
        assert!(out.contains(&format!("{} uncertain", left.len())), "{out}");
        let ids: Vec<String> = left.iter().map(|(id, _, _)| id.to_string()).collect();
        let mut resolve = vec!["plan", "resolve", "r"];
        resolve.extend(ids.iter().map(String::as_str));
        resolve.push("--ours");
        s3rewind_ok(&catalog, &resolve);
    }
    let not_done: i64 = catalog_scalar(
        &catalog,
        "SELECT count(*) FROM actions WHERE status != 'done'",
    );
    assert_eq!(not_done, 0);

    let now = Workdir::new();
    s3rewind_ok(&now.catalog(), &strs(&seeded_scan_args(&storm, "1000")));
    assert_restored_exactly(&catalog, t, &now.catalog());
    phase("checked");
}

#[test]
fn a_resumed_apply_with_the_whole_plan_in_flight_reads_keys_in_shared_pages() {
    let server = seeded(3000, &[]);
    let w = Workdir::new();
    let catalog = w.catalog();
    let args = seeded_scan_args(&server, "1000");
    let args = strs(&args);
    s3rewind_ok(&catalog, &args);
    let t = plan_restore_within(&catalog, 0.5);
    // What a kill right after the claims leaves: every action in flight.
    rusqlite::Connection::open(&catalog)
        .unwrap()
        .execute("UPDATE actions SET status = 'in_flight', attempts = 1", [])
        .unwrap();
    let writes: i64 = catalog_scalar(
        &catalog,
        "SELECT count(*) FROM actions WHERE kind IN ('copy_version', 'add_delete_marker')",
    );
    assert!(writes > 1000, "{writes}");
    let lists = server.served(s3sim::Op::ListObjectVersions);
    let out = s3rewind_ok(
        &catalog,
        &["apply", "r", "--yes", "--endpoint-url", &server.endpoint],
    );
    assert!(out.contains(" 0 failed, 0 skipped"), "{out}");
    let checks = server.served(s3sim::Op::ListObjectVersions) - lists;
    // One listing per key would be `writes`; adjacent keys share pages.
    assert!(
        checks * 20 < writes as u64,
        "{checks} listings for {writes} keys"
    );
    let now = Workdir::new();
    s3rewind_ok(&now.catalog(), &args);
    assert_restored_exactly(&catalog, t, &now.catalog());
}

#[test]
fn progress_is_recorded_as_actions_finish_not_a_block_at_a_time() {
    let mut own = None;
    let server = slow_server(&mut own);
    let mut b = Bucket::on(server, &unique_bucket("progress"), true);
    for i in 0..150 {
        b.put(&format!("k{i:03}"), b"old");
    }
    let t = model::time::format_time(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    wait_for_second_after(t_secs(&t));
    for i in 0..150 {
        b.put(&format!("k{i:03}"), b"new");
    }
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url(), "--endpoint-url", &server.endpoint]);
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "r"]);
    // One block of 150 copies, two at a time at 20 ms each: seconds of work.
    let apply = [
        "apply",
        "r",
        "--yes",
        "--endpoint-url",
        &server.endpoint,
        "--concurrency",
        "2",
    ];
    kill_at(
        &c,
        &apply,
        "SELECT count(*) FROM actions WHERE status = 'done'",
        10,
    );
    s3rewind_ok(&c, &apply);
    let done: i64 = catalog_scalar(&c, "SELECT count(*) FROM actions WHERE status = 'done'");
    assert_eq!(done, 150);
}

fn t_secs(t: &str) -> u64 {
    model::time::parse_time(t).unwrap() as u64
}

#[test]
fn a_scan_killed_while_it_cuts_ranges_resumes_to_the_same_catalog() {
    let seed: u64 = rand::random();
    eprintln!("kill points from seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let server = start_server(
        ServerKind::S3sim,
        &[
            "--seed-bucket",
            "seeded",
            "--seed-keys",
            "12000",
            "--seed-versions",
            "2",
            "--seed-prefixes",
            "1",
            "--seed-markers",
            "0.2",
            "--latency-ms",
            "2",
            "--fault-slowdown",
            "0.03",
            "--fault-reset",
            "0.01",
        ],
    );
    let scan = |concurrency: &str| -> Vec<String> {
        [
            "scan",
            "s3://seeded",
            "--endpoint-url",
            &server.endpoint,
            "--page-size",
            "40",
            "--concurrency",
            concurrency,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let w = Workdir::new();
    let args = scan("16");
    let args = strs(&args);
    // Right after the first cut is committed, then at random rows.
    kill_at(&w.catalog(), &args, "SELECT count(*) FROM ranges", 2);
    for point in kill_points(&mut rng, 3, 1_000..20_000) {
        kill_at(&w.catalog(), &args, "SELECT count(*) FROM entries", point);
        let check: String = catalog_scalar(&w.catalog(), "PRAGMA integrity_check");
        assert_eq!(check, "ok");
    }
    let out = s3rewind_ok(&w.catalog(), &args);
    let serial = Workdir::new();
    s3rewind_ok(&serial.catalog(), &strs(&scan("1")));
    let expected = catalog_entries(&serial.catalog());
    assert_eq!(expected.len(), 24_000);
    assert!(
        catalog_entries(&w.catalog()) == expected,
        "the killed scan's catalog differs from a serial one: {out}"
    );
    let ranges: i64 = catalog_scalar(&w.catalog(), "SELECT count(*) FROM ranges");
    assert!(ranges >= 8, "{ranges} ranges");
}
