//! The limit on requests in flight adapts (issue 28): higher on a longer
//! round trip, no higher when more only queue, and a prefix kept under
//! S3's per-prefix write ceiling (s3sim `--prefix-write-rps`). Each test
//! runs the real binary against an s3sim of its own; what the limit
//! settled on is read from `apply --json`.

mod common;

use std::sync::Mutex;

use common::*;

/// One test at a time: what a limit settles on depends on the CPU, and a
/// second test's s3sim and s3rewind would take half of it.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Seeds `keys` keys × 2 versions over `prefixes` prefixes with `extra`
/// s3sim flags, copies every noncurrent version back on top with default
/// flags, and returns `apply --json`'s run object.
fn copy_back_all(keys: u32, prefixes: u32, extra: &[&str]) -> serde_json::Value {
    let (keys, prefixes) = (keys.to_string(), prefixes.to_string());
    let mut args = vec![
        "--seed-bucket",
        "limit",
        "--seed-keys",
        &keys,
        "--seed-versions",
        "2",
        "--seed-markers",
        "0",
        "--seed-prefixes",
        &prefixes,
    ];
    args.extend_from_slice(extra);
    let server = start_server(ServerKind::S3sim, &args);
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_at_ok(&server, &c, &["scan", "s3://limit"]);
    s3rewind_at_ok(
        &server,
        &c,
        &[
            "plan",
            "sql",
            "--name",
            "copies",
            "--query",
            "SELECT 'copy_version', key, version_id FROM objects WHERE is_latest = 0",
        ],
    );
    let out = s3rewind_at_ok(&server, &c, &["apply", "copies", "--yes", "--json"]);
    let out: serde_json::Value = serde_json::from_str(&out).expect("apply --json");
    let run = out["run"].clone();
    assert_eq!(run["done"], keys.parse::<u64>().unwrap(), "{run:#}");
    run
}

fn limit_of(run: &serde_json::Value) -> (u64, String) {
    let c = &run["concurrency"];
    (
        c["limit"].as_u64().expect("concurrency.limit"),
        c["bound"].as_str().expect("concurrency.bound").to_owned(),
    )
}

#[test]
fn the_limit_settles_higher_on_a_longer_round_trip_and_stops_where_more_only_queue() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (near, near_bound) = limit_of(&copy_back_all(2000, 16, &["--latency-ms", "20"]));
    let (far, far_bound) = limit_of(&copy_back_all(3000, 16, &["--latency-ms", "200"]));
    // By Little's law the same rate takes ten times as many in flight at
    // ten times the round trip; this machine's CPU (and s3sim's) bound
    // the rate either way.
    assert!(
        2 * far >= 3 * near && far > 64,
        "200 ms: {far} ({far_bound}); 20 ms: {near} ({near_bound})"
    );
    // With no latency at all, more in flight only queue on the CPUs: the
    // limit stops far below the upper bound (1,024).
    let (none, none_bound) = limit_of(&copy_back_all(2000, 16, &[]));
    assert!(none <= 256, "0 ms: {none} ({none_bound})");
    assert!(
        ["latency", "cpu"].contains(&none_bound.as_str()),
        "{none_bound}"
    );
}

#[test]
fn a_prefix_is_kept_near_s3s_per_prefix_write_ceiling() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Two prefixes of 1,000 copies each, 200 writes a second a prefix: at
    // least 4 s at the ceiling (a second's worth passes as a burst).
    let run = copy_back_all(
        2000,
        2,
        &["--latency-ms", "20", "--prefix-write-rps", "200"],
    );
    let (requests, throttled) = (
        run["requests"].as_u64().unwrap(),
        run["throttled"].as_u64().unwrap(),
    );
    let seconds = run["seconds"].as_f64().unwrap();
    assert!(throttled > 0, "the ceiling was met: {run:#}");
    // Every copy done, at half the ceiling at least (400 a second for both
    // prefixes), the windows holding the prefixes there: at most one and a
    // half 503s a copy (a window that did not adapt retries each copy many
    // times over while the burst it sent is refused).
    let rate = 2000.0 / seconds;
    assert!(rate >= 200.0, "{rate:.0} copies a second");
    assert!(
        throttled <= 3000,
        "{throttled} of {requests} requests throttled"
    );
}
