//! `split` end to end: the real binary cuts buckets of different shapes on
//! s3sim, each part is scanned into a catalog of its own (`scan --shard`),
//! and the parts together hold exactly what one scan of the whole location
//! holds — and about as many entries each.

mod common;

use std::ops::Bound;

use common::*;
use s3sim::store::{splitmix64, Content};
use serde_json::Value;

/// `keys` (each with its number of versions) written straight into the
/// store of s3sim `server`, in a new versioned bucket.
fn fill(server: &Server, bucket: &str, keys: impl IntoIterator<Item = (String, u32)>) {
    Bucket::on(server, bucket, true);
    let sim = server.sim();
    let b = sim.store.bucket(bucket).expect("the bucket was just made");
    for (key, versions) in keys {
        for v in 0..versions {
            let content = Content::Synthetic {
                size: 10,
                seed: u64::from(v),
            };
            sim.store.put(&b, &key, content, None);
        }
    }
}

/// `split URL --parts N --json --out FILE`: the JSON it printed, and the
/// bounds file.
fn split(server: &Server, w: &Workdir, url: &str, parts: usize) -> (Value, std::path::PathBuf) {
    let bounds = w.path(&format!("bounds-{parts}.txt"));
    let out = s3rewind_ok(
        &w.catalog(),
        &[
            "split",
            url,
            "--parts",
            &parts.to_string(),
            "--json",
            "--out",
            bounds.to_str().unwrap(),
            "--endpoint-url",
            &server.endpoint,
        ],
    );
    let json = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    (json, bounds)
}

/// Splits `url` into `parts` and scans each part into a catalog of its own;
/// asserts that the parts, one after the other, hold exactly the entries a
/// scan of the whole location holds, in the same order. Returns each
/// part's entries.
fn split_and_scan(server: &Server, url: &str, parts: usize) -> Vec<usize> {
    let w = Workdir::new();
    let (json, bounds) = split(server, &w, url, parts);
    assert_eq!(
        json["parts"].as_array().map(Vec::len),
        Some(parts),
        "{json}"
    );
    let whole = w.path("whole.db");
    s3rewind_ok(&whole, &["scan", url, "--endpoint-url", &server.endpoint]);
    let (mut union, mut sizes) = (Vec::new(), Vec::new());
    for i in 0..parts {
        let part = w.path(&format!("part-{i}.db"));
        s3rewind_ok(
            &part,
            &[
                "scan",
                url,
                "--shard",
                &format!("{i}/{parts}"),
                "--bounds",
                bounds.to_str().unwrap(),
                "--endpoint-url",
                &server.endpoint,
            ],
        );
        let entries = catalog_entries(&part);
        sizes.push(entries.len());
        union.extend(entries);
    }
    let whole = catalog_entries(&whole);
    assert!(!whole.is_empty());
    assert!(
        union == whole,
        "{url} in {parts} parts: the parts hold {} entries, the whole {} (parts {sizes:?})",
        union.len(),
        whole.len()
    );
    sizes
}

/// Every part holds between half and one and a half times its even share.
#[track_caller]
fn assert_balanced(what: &str, sizes: &[usize]) {
    let even = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    let ratio = |size: usize| size as f64 / even;
    let (least, most) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    eprintln!(
        "{what}: parts hold {:.2} to {:.2} × total/N",
        ratio(*least),
        ratio(*most)
    );
    for (i, &size) in sizes.iter().enumerate() {
        let ratio = size as f64 / even;
        assert!(
            (0.5..=1.5).contains(&ratio),
            "{what}: part {i} holds {size} entries, {ratio:.2} × total/N (parts: {sizes:?})"
        );
    }
}

#[test]
fn a_bucket_under_one_prefix_is_cut_between_its_keys() {
    // Keys p000/obj-0000000000-….jpg to p000/obj-0000029999-….jpg.
    let server = start_server(
        ServerKind::S3sim,
        &[
            "--seed-bucket",
            "seeded",
            "--seed-keys",
            "30000",
            "--seed-versions",
            "2",
            "--seed-prefixes",
            "1",
        ],
    );
    for (url, parts) in [
        ("s3://seeded", 4),
        ("s3://seeded", 8),
        ("s3://seeded/p000/", 4),
    ] {
        let sizes = split_and_scan(&server, url, parts);
        assert_balanced(&format!("{url} in {parts}"), &sizes);
    }
}

#[test]
fn a_bucket_of_hashed_keys_is_cut_between_its_keys() {
    // Keys of 16 hexadecimal digits: digits and letters, with the
    // characters between 9 and a unused at every position.
    let server = start_server(ServerKind::S3sim, &[]);
    fill(
        &server,
        "hashed",
        (0..20_000u64).map(|i| {
            let h = splitmix64(i);
            // One to three versions, whatever the key.
            (format!("{h:016x}"), 1 + (splitmix64(h) % 3) as u32)
        }),
    );
    for parts in [4, 16] {
        let sizes = split_and_scan(&server, "s3://hashed", parts);
        assert_balanced(&format!("hashed keys in {parts}"), &sizes);
    }
}

#[test]
fn keys_under_a_long_common_prefix_are_cut_between_them() {
    // 23,456 keys: the last of their ten-thousands holds fewer than the others.
    let server = start_server(ServerKind::S3sim, &[]);
    fill(
        &server,
        "backups",
        (0..23_456u64).map(|i| {
            let h = splitmix64(i) as u32;
            (
                format!("backups/2024/11/30/db-primary-eu-west-1/chunk-{i:06}-{h:08x}.bin"),
                2,
            )
        }),
    );
    for (url, parts) in [("s3://backups", 4), ("s3://backups/backups/2024/", 7)] {
        let sizes = split_and_scan(&server, url, parts);
        assert_balanced(&format!("{url} in {parts}"), &sizes);
    }
}

/// 90 % of the keys under one sub-prefix: a split sees that it holds more
/// keys than its neighbours only if it explores it, which it does among
/// ten sub-prefixes (the parts are balanced) but not among a hundred
/// (docs/scale.md shows these figures: run with `--nocapture`). Either way
/// the parts cover the bucket exactly.
#[test]
fn a_skewed_bucket_is_covered_exactly() {
    let server = start_server(ServerKind::S3sim, &[]);
    for (bucket, regions, dense) in [("skewed-10", 10, 4), ("skewed-100", 100, 37)] {
        let others: Vec<u64> = (0..regions).filter(|&r| r != dense).collect();
        let keys = (0..27_000u64)
            .map(|i| (format!("data/region-{dense:02}/obj-{i:06}"), 2))
            .chain((0..3_000u64).map(|i| {
                let region = others[i as usize % others.len()];
                (format!("data/region-{region:02}/obj-{i:06}"), 2)
            }));
        fill(&server, bucket, keys);
        for parts in [4, 8] {
            let sizes = split_and_scan(&server, &format!("s3://{bucket}"), parts);
            let even = sizes.iter().sum::<usize>() as f64 / parts as f64;
            let ratios: Vec<String> = sizes
                .iter()
                .map(|&s| format!("{:.2}", s as f64 / even))
                .collect();
            eprintln!(
                "90 % under 1 of {regions} sub-prefixes, {parts} parts: entries {sizes:?}, × total/N [{}]",
                ratios.join(", ")
            );
            if regions == 10 {
                assert_balanced(&format!("{bucket} in {parts}"), &sizes);
            }
        }
    }
}

/// Entries of each part of `bucket` on `server`, counted in s3sim's store
/// from the cuts: part i holds the keys after cut i - 1 up to cut i.
fn entries_per_part(server: &Server, bucket: &str, cuts: &[String]) -> Vec<usize> {
    let sim = server.sim();
    let b = sim.store.bucket(bucket).expect("bucket");
    let keys = b.keys.read().unwrap();
    let count = |after: Bound<&String>, upto: Bound<&String>| -> usize {
        keys.range::<String, _>((after, upto))
            .map(|(_, entries)| entries.len())
            .sum()
    };
    let mut sizes = Vec::new();
    let mut after = Bound::Unbounded;
    for cut in cuts {
        sizes.push(count(after, Bound::Included(cut)));
        after = Bound::Excluded(cut);
    }
    sizes.push(count(after, Bound::Unbounded));
    sizes
}

#[test]
fn a_thousand_parts_of_a_million_keys_cost_a_few_hundred_listings() {
    let server = start_server(
        ServerKind::S3sim,
        &[
            "--seed-bucket",
            "big",
            "--seed-keys",
            "1000000",
            "--seed-versions",
            "1",
            "--seed-prefixes",
            "1",
        ],
    );
    let w = Workdir::new();
    let before = server.served(s3sim::Op::ListObjectVersions);
    let (json, bounds) = split(&server, &w, "s3://big", 1000);
    let listed = server.served(s3sim::Op::ListObjectVersions) - before;
    // The requests it reports are the listings it made.
    assert_eq!(json["requests"].as_u64(), Some(listed), "{json}");
    eprintln!("a million keys in 1000 parts: {listed} listings");
    assert!(listed <= 300, "{listed} listings");
    let cuts: Vec<String> = json["bounds"]
        .as_array()
        .expect("bounds")
        .iter()
        .map(|k| k.as_str().expect("a key").to_owned())
        .collect();
    // The file holds the same keys, URL-encoded.
    let file = std::fs::read_to_string(&bounds).unwrap();
    let decoded: Vec<String> = file
        .lines()
        .map(|l| s3io::decode_url_component(l).unwrap().into_owned())
        .collect();
    assert_eq!(decoded, cuts);
    let sizes = entries_per_part(&server, "big", &cuts);
    assert_eq!(sizes.iter().sum::<usize>(), 1_000_000);
    assert_balanced("a million keys in 1000", &sizes);
    // Each part's estimated share is printed with it, and they add up.
    let shares: f64 = json["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["share"].as_f64().expect("a share"))
        .sum();
    assert!((shares - 1.0).abs() < 1e-6, "{shares}");
}

#[test]
fn verbose_split_prints_each_part_and_the_requests_spent() {
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
    let w = Workdir::new();
    let out = s3rewind_command(&w.catalog())
        .args(["-v", "split", "s3://seeded", "--parts", "3"])
        .args(["--endpoint-url", &server.endpoint])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The keys alone on standard output, for a bounds file.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for part in ["part 0", "part 1", "part 2"] {
        assert!(stderr.contains(part), "{stderr}");
    }
    assert!(stderr.contains(" requests"), "{stderr}");
    assert!(stderr.contains('%'), "{stderr}");
}

#[test]
fn help_says_parts_count_from_zero_and_what_split_cannot_balance() {
    let w = Workdir::new();
    let scan = s3rewind_ok(&w.catalog(), &["scan", "--help"]);
    // From the flag to the next one.
    let shard = scan
        .split("--shard <I/N>")
        .nth(1)
        .expect("scan --help describes --shard");
    let shard = shard.split("\n      --").next().unwrap();
    assert!(shard.contains("from 0"), "{shard}");
    assert!(shard.contains("JOB_COMPLETION_INDEX"), "{shard}");
    let split = s3rewind_ok(&w.catalog(), &["split", "--help"]);
    for what in ["one key", "versions", "uniform"] {
        assert!(
            split.contains(what),
            "split --help lacks {what:?}:\n{split}"
        );
    }
}

#[test]
fn keys_printed_for_a_person_are_escaped() {
    let server = start_server(ServerKind::S3sim, &[]);
    fill(
        &server,
        "strangers",
        (0..200).map(|i| (format!("in\x1b[2Jbox/{i:03}\u{202e}"), 1)),
    );
    let w = Workdir::new();
    let out = s3rewind_command(&w.catalog())
        .args(["-v", "split", "s3://strangers", "--parts", "4"])
        .args(["--out", w.path("bounds.txt").to_str().unwrap()])
        .args(["--endpoint-url", &server.endpoint])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\u{202e}'),
        "{stderr:?}"
    );
    assert!(stderr.contains(r"in\x1b[2Jbox/"), "{stderr}");
    // The file keeps them exact (URL-encoded).
    let file = std::fs::read_to_string(w.path("bounds.txt")).unwrap();
    assert_eq!(file.lines().count(), 3, "{file}");
    for line in file.lines() {
        let key = s3io::decode_url_component(line).unwrap();
        assert!(key.starts_with("in\x1b[2Jbox/"), "{key:?}");
    }
}

#[test]
fn too_few_keys_for_the_parts_is_an_error() {
    let server = start_server(ServerKind::S3sim, &[]);
    fill(
        &server,
        "three",
        ["a/1", "b/2", "c/3"].map(|k| (k.to_owned(), 2)),
    );
    Bucket::on(&server, "empty", true);
    let w = Workdir::new();
    for (url, parts) in [
        ("s3://three", "8"),
        ("s3://empty", "2"),
        ("s3://three/d/", "2"),
    ] {
        let err = s3rewind_err(
            &w.catalog(),
            &[
                "split",
                url,
                "--parts",
                parts,
                "--endpoint-url",
                &server.endpoint,
            ],
        );
        assert!(
            err.contains("too few keys") && err.contains("fewer --parts"),
            "{err}"
        );
    }
    // As many parts as keys is fine.
    let (json, _) = split(&server, &w, "s3://three", 3);
    assert_eq!(json["bounds"].as_array().map(Vec::len), Some(2), "{json}");
}
