//! The steps around a restore, as docs/runbook.md tells them, on s3sim:
//! the guard that compares exactly, the catalog that follows apply, plans
//! that went stale, a stopped apply taken back at once.

mod common;

use common::*;

/// Versions of `keys` under a delete marker: each key deleted, its one
/// version noncurrent.
fn deleted_keys(b: &mut Bucket, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            b.put(k, format!("data of {k}").as_bytes());
            b.delete(k)
        })
        .collect()
}

#[test]
fn verify_refuses_a_delete_when_a_marker_above_it_was_removed_since_the_scan() {
    let mut b = Bucket::new("rb-marker", true);
    let markers = deleted_keys(&mut b, &["k1", "k2"]);
    b.put("k3", b"stays");
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url()]);
    wait_for_second_after(unix_now().as_secs());
    s3rewind_ok(
        &c,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "1s",
            "--as-of",
            "2030-01-01T00:00:00Z",
            "--name",
            "ex",
        ],
    );
    let planned: i64 = catalog_scalar(&c, "SELECT count(*) FROM actions");
    assert_eq!(planned, 2);
    // Someone undeletes both keys: their versions are current again.
    for (k, m) in ["k1", "k2"].iter().zip(&markers) {
        b.delete_version(k, m);
    }
    let out = s3rewind_ok(&c, &["apply", "ex", "--yes", "--verify"]);
    assert!(out.contains("0 done") && out.contains("2 drifted"), "{out}");
    for k in ["k1", "k2"] {
        assert_eq!(b.get(k), Some(format!("data of {k}").into_bytes()), "{k}");
    }
    let found: String = catalog_scalar(
        &c,
        "SELECT error FROM plan_review WHERE plan = 'ex' AND key = 'k1'",
    );
    assert!(
        found.contains("changed after the scan") && found.contains(&markers[0]),
        "{found}"
    );
}

/// An incident on `keys` keys: each written twice before T, then
/// overwritten (even) or deleted (odd) after.
fn incident(b: &mut Bucket, keys: usize) -> String {
    for i in 0..keys {
        b.put(&format!("img/{i:03}"), format!("{i} v1").as_bytes());
        b.put(&format!("img/{i:03}"), format!("{i} v2").as_bytes());
    }
    let t = mark_t();
    for i in 0..keys {
        let key = format!("img/{i:03}");
        match i % 2 {
            0 => {
                b.put(&key, b"bad");
            }
            _ => {
                b.delete(&key);
            }
        }
    }
    t
}

#[test]
fn a_plan_made_after_an_apply_sees_what_it_did_and_one_made_before_is_stale() {
    let mut b = Bucket::new("rb-follow", true);
    let t = incident(&mut b, 10);
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url()]);
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "incident"]);
    // Made before the restore is applied, from the same catalog.
    wait_for_second_after(unix_now().as_secs());
    s3rewind_ok(
        &c,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "1s",
            "--as-of",
            "2030-01-01T00:00:00Z",
            "--name",
            "early",
        ],
    );
    s3rewind_ok(&c, &["apply", "incident", "--yes"]);
    // The early cleanup would delete the versions the restore undeleted.
    let err = s3rewind_err(&c, &["apply", "early", "--yes"]);
    assert!(
        err.contains("stale") && err.contains("incident") && err.contains("nothing was changed"),
        "{err}"
    );
    let shown = s3rewind_ok(&c, &["plan", "show", "early"]);
    assert!(shown.contains("stale"), "{shown}");
    // Runbook step 6, made now: it sees the bucket as the restore left it
    // and deletes only what the restore put out of sight.
    wait_for_second_after(unix_now().as_secs());
    s3rewind_ok(
        &c,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "1s",
            "--as-of",
            "2030-01-01T00:00:00Z",
            "--name",
            "cleanup",
        ],
    );
    s3rewind_ok(&c, &["apply", "cleanup", "--yes"]);
    for i in 0..10 {
        assert_eq!(
            b.get(&format!("img/{i:03}")),
            Some(format!("{i} v2").into_bytes()),
            "img/{i:03}"
        );
    }
    let verified = s3rewind_ok(&c, &["verify", "incident"]);
    assert!(verified.contains("10 of 10 keys"), "{verified}");
}

#[test]
fn a_stopped_apply_sends_nothing_more_and_can_be_taken_back_at_once() {
    let server = start_server(ServerKind::S3sim, &["--latency-ms", "5"]);
    let mut b = Bucket::on(&server, &unique_bucket("rb-stop"), true);
    let t = incident(&mut b, 300);
    let w = Workdir::new();
    let c = w.catalog();
    let endpoint = ["--endpoint-url", server.endpoint.as_str()];
    let url = b.url();
    let mut scan = vec!["scan", url.as_str()];
    scan.extend(endpoint);
    s3rewind_ok(&c, &scan);
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "wrong"]);
    let mut apply = vec!["apply", "wrong", "--yes", "--concurrency", "2"];
    apply.extend(endpoint);
    let mut child = spawn_s3rewind(&c, &apply);
    wait_until(
        "some actions done",
        std::time::Duration::from_secs(60),
        || catalog_count(&c, "SELECT count(*) FROM actions WHERE status = 'done'") >= 20,
    );
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupted.success());
    let status = child.wait().expect("apply ends");
    assert_eq!(status.code(), Some(130), "{}", stderr_of(&mut child));
    // What it claimed and did not send is pending again; nothing is in flight.
    let in_flight: i64 = catalog_scalar(
        &c,
        "SELECT count(*) FROM actions WHERE status = 'in_flight'",
    );
    assert_eq!(in_flight, 0);
    let done: i64 = catalog_scalar(&c, "SELECT count(*) FROM actions WHERE status = 'done'");
    let pending: i64 = catalog_scalar(&c, "SELECT count(*) FROM actions WHERE status = 'pending'");
    assert!(done > 0 && pending > 0, "{done} done, {pending} pending");
    let shown = s3rewind_ok(&c, &["status"]);
    assert!(shown.contains("partly applied"), "{shown}");
    // The wrong plan is taken back at once.
    s3rewind_ok(&c, &["plan", "undo", "wrong", "--name", "back"]);
    let mut undo = vec!["apply", "back", "--yes"];
    undo.extend(endpoint);
    s3rewind_ok(&c, &undo);
    for i in 0..300 {
        let want = match i % 2 {
            0 => Some(b"bad".to_vec()),
            _ => None,
        };
        assert_eq!(b.get(&format!("img/{i:03}")), want, "img/{i:03}");
    }
}

#[test]
fn a_killed_apply_is_settled_without_sending_anything_new() {
    let server = start_server(ServerKind::S3sim, &["--latency-ms", "5"]);
    let mut b = Bucket::on(&server, &unique_bucket("rb-settle"), true);
    let t = incident(&mut b, 200);
    let w = Workdir::new();
    let c = w.catalog();
    let endpoint = ["--endpoint-url", server.endpoint.as_str()];
    let url = b.url();
    let mut scan = vec!["scan", url.as_str()];
    scan.extend(endpoint);
    s3rewind_ok(&c, &scan);
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "wrong"]);
    let mut apply = vec!["apply", "wrong", "--yes", "--concurrency", "4"];
    apply.extend(endpoint);
    kill_at(
        &c,
        &apply,
        "SELECT count(*) FROM actions WHERE status = 'done'",
        30,
    );
    let in_flight: i64 = catalog_scalar(
        &c,
        "SELECT count(*) FROM actions WHERE status = 'in_flight'",
    );
    assert!(in_flight > 0);
    let err = s3rewind_err(&c, &["plan", "undo", "wrong"]);
    assert!(err.contains("--settle"), "{err}");
    let copies_before = server.served(s3sim::Op::CopyObject);
    let markers_before = server.served(s3sim::Op::DeleteObject);
    let mut settle = vec!["apply", "wrong", "--yes", "--settle"];
    settle.extend(endpoint);
    let out = s3rewind_ok(&c, &settle);
    assert!(out.contains("nothing new is sent"), "{out}");
    assert_eq!(server.served(s3sim::Op::CopyObject), copies_before);
    assert_eq!(server.served(s3sim::Op::DeleteObject), markers_before);
    let in_flight: i64 = catalog_scalar(
        &c,
        "SELECT count(*) FROM actions WHERE status = 'in_flight'",
    );
    assert_eq!(in_flight, 0);
    s3rewind_ok(&c, &["plan", "undo", "wrong", "--name", "back"]);
    let mut undo = vec!["apply", "back", "--yes"];
    undo.extend(endpoint);
    s3rewind_ok(&c, &undo);

    // Undone: every view says so, and the rest of the plan is not applied
    // over its own undo unless asked for.
    for shown in [
        s3rewind_ok(&c, &["plan", "list"]),
        s3rewind_ok(&c, &["plan", "show", "wrong"]),
        s3rewind_ok(&c, &["status"]),
    ] {
        assert!(shown.contains("undone"), "{shown}");
    }
    let html = w.path("report.html");
    s3rewind_ok(
        &c,
        &[
            "report",
            "wrong",
            "--out",
            html.to_str().expect("utf-8 path"),
        ],
    );
    let page = std::fs::read_to_string(&html).expect("report written");
    assert!(page.contains("Undone by plan <code>back</code>"));
    let listing = b.listing();
    let mut again = vec!["apply", "wrong", "--yes"];
    again.extend(endpoint);
    let err = s3rewind_err(&c, &again);
    assert!(
        err.contains("undone by plan back") && err.contains("--reapply"),
        "{err}"
    );
    assert_eq!(b.listing(), listing, "nothing was sent");
}

#[test]
fn a_delete_of_null_waits_for_versioning_to_be_enabled() {
    let mut b = Bucket::new("rb-null", false);
    b.put("n", b"written before versioning");
    b.set_versioning(aws_sdk_s3::types::BucketVersioningStatus::Enabled);
    b.put("n", b"the current version");
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url()]);
    s3rewind_ok(
        &c,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "1s",
            "--as-of",
            "2030-01-01T00:00:00Z",
            "--name",
            "ex",
        ],
    );
    let planned: String = catalog_scalar(&c, "SELECT version_id FROM actions");
    assert_eq!(planned, "null");
    // Suspended: a write replaces the `null` version, which is current now.
    b.set_versioning(aws_sdk_s3::types::BucketVersioningStatus::Suspended);
    b.put("n", b"written while suspended");
    let err = s3rewind_err(&c, &["apply", "ex", "--yes"]);
    assert!(
        err.contains("`null`")
            && err.contains("Suspended")
            && err.contains("put-bucket-versioning"),
        "{err}"
    );
    assert_eq!(b.get("n"), Some(b"written while suspended".to_vec()));
    let status: String = catalog_scalar(&c, "SELECT status FROM actions");
    assert_eq!(status, "pending");
}

/// docs/runbook.md, step by step as written, on an incident in s3sim: a
/// bad job overwrites and deletes, someone writes a key after the scan,
/// and at the end the bucket is as at T, with nothing else changed.
#[test]
fn the_runbook_followed_as_written_ends_with_the_bucket_as_at_t() {
    let mut b = Bucket::new("rb-walk", true);
    let mut at_t = std::collections::BTreeMap::new();
    for i in 0..20 {
        let key = format!("hotels/{i:03}.jpg");
        b.put(&key, format!("{i} v1").as_bytes());
        at_t.insert(key, Some(format!("{i} v1").into_bytes()));
    }
    b.put("other/keep.txt", b"kept");
    at_t.insert("other/keep.txt".into(), Some(b"kept".to_vec()));
    // The job's start, as its logs say.
    let t = mark_t();
    for i in 0..20 {
        let key = format!("hotels/{i:03}.jpg");
        match i % 2 {
            0 => {
                b.put(&key, b"bad");
            }
            _ => {
                b.delete(&key);
            }
        }
    }
    b.put("hotels/junk.tmp", b"junk");
    at_t.insert("hotels/junk.tmp".into(), None);
    let w = Workdir::new();
    let c = w.catalog();
    // 0. check
    s3rewind_ok(&c, &["check", &b.url()]);
    // 1. scan
    s3rewind_ok(&c, &["scan", &b.url(), "--concurrency", "64"]);
    // 2. the moment: the timeline shows the job's second; its logs say
    // when it started (too few entries here for a burst to stand out).
    let timeline = s3rewind_ok(&c, &["timeline", "--by", "second"]);
    assert!(timeline.contains("10      10"), "{timeline}");
    let to = t;
    // 3. plan; 4. review
    s3rewind_ok(&c, &["plan", "restore", "--to", &to, "--name", "incident"]);
    s3rewind_ok(&c, &["plan", "show", "incident"]);
    let html = w.path("incident.html");
    s3rewind_ok(
        &c,
        &[
            "report",
            "incident",
            "--out",
            html.to_str().expect("utf-8 path"),
        ],
    );
    s3rewind_ok(&c, &["check", "--plan", "incident"]);
    // Someone writes a key after the scan.
    b.put("hotels/000.jpg", b"written after the scan");
    at_t.insert(
        "hotels/000.jpg".into(),
        Some(b"written after the scan".to_vec()),
    );
    // 5. apply
    s3rewind_ok(&c, &["apply", "incident", "--dry-run"]);
    let out = s3rewind_ok(&c, &["apply", "incident", "--verify", "--yes"]);
    assert!(out.contains("1 drifted"), "{out}");
    // 6. check: the drifted key is listed again and planned again.
    let verified = s3rewind(&c, &["verify", "incident"]);
    assert_eq!(verified.status.code(), Some(1));
    s3rewind_ok(&c, &["scan", &b.url(), "--keys-of", "incident"]);
    // A new plan sees the keys as they are now: the drifted key needs its
    // copy, the keys the restore already put back need nothing (here the
    // owners keep the newer write, so it is reviewed and dropped).
    s3rewind_ok(
        &c,
        &["plan", "restore", "--to", &to, "--name", "incident-2"],
    );
    let planned: String = catalog_scalar(
        &c,
        "SELECT group_concat(action || ' ' || key || ' ' || coalesce(matched_by, ''), ', ')
         FROM (SELECT * FROM plan_review WHERE plan = 'incident-2' AND action <> 'already' ORDER BY key)",
    );
    assert_eq!(planned, "copy_version hotels/000.jpg ");
    let already: i64 = catalog_scalar(
        &c,
        "SELECT count(*) FROM plan_review WHERE plan = 'incident-2' AND action = 'already' AND matched_by = 'journal'",
    );
    assert_eq!(
        already, 9,
        "the other overwritten keys, copied back by incident"
    );
    s3rewind_ok(&c, &["plan", "drop", "incident-2", "--yes"]);
    // The applied plan stays verifiable and undoable after the re-listing.
    s3rewind_ok(&c, &["plan", "undo", "incident", "--name", "maybe-later"]);
    s3rewind_ok(&c, &["plan", "drop", "maybe-later", "--yes"]);
    // Once everyone agrees: the overwritten data goes, made now.
    wait_for_second_after(unix_now().as_secs());
    s3rewind_ok(
        &c,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "1s",
            "--name",
            "cleanup",
        ],
    );
    s3rewind_ok(&c, &["apply", "cleanup", "--yes"]);
    for (key, content) in &at_t {
        assert_eq!(&b.get(key), content, "{key}");
    }
    let live: std::collections::BTreeSet<String> = b
        .listing()
        .into_iter()
        .filter(|e| e.3 && !e.2)
        .map(|e| e.0)
        .collect();
    let want: std::collections::BTreeSet<String> = at_t
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(live, want);
    // Nothing noncurrent is left but what the cleanup could not judge yet.
    let status = s3rewind_ok(&c, &["status"]);
    assert!(status.contains("incident"), "{status}");
}

#[test]
fn what_s3rewind_suggests_or_says_of_a_plan_is_safe_to_act_on() {
    let mut b = Bucket::new("rb-say", true);
    let t = incident(&mut b, 4);
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url()]);
    // --where judged by the newest entry, which is the small bad version
    // or a marker: nothing planned, and it says why.
    let out = s3rewind_ok(
        &c,
        &[
            "plan", "restore", "--to", &t, "--where", "size > 3", "--name", "big",
        ],
    );
    assert!(
        out.contains("matched no key's newest entry") && out.contains("older entries"),
        "{out}"
    );
    // Undo of an undo: a partial redo, and said so.
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "r"]);
    s3rewind_ok(&c, &["apply", "r", "--yes"]);
    s3rewind_ok(&c, &["plan", "undo", "r", "--name", "back"]);
    s3rewind_ok(&c, &["apply", "back", "--yes"]);
    let out = s3rewind_ok(&c, &["plan", "undo", "back", "--name", "redo"]);
    assert!(
        out.contains("redo is partial") && out.contains("make it again"),
        "{out}"
    );
}

/// A cleanup made before a restore is applied over the same keys: every
/// place a plan is reviewed — `plan show`, `check` (text and JSON) and the
/// HTML report — says it is stale and names the plan applied since.
#[test]
fn check_and_the_report_say_a_plan_is_stale_and_name_the_plan_applied_since() {
    let mut b = Bucket::new("rb-stale-say", true);
    let t = incident(&mut b, 4);
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url()]);
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "incident"]);
    wait_for_second_after(unix_now().as_secs());
    s3rewind_ok(
        &c,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "1s",
            "--as-of",
            "2030-01-01T00:00:00Z",
            "--name",
            "early",
        ],
    );
    // Before the restore is applied, nothing is stale.
    let json = |args: &[&str]| -> serde_json::Value {
        let out = s3rewind(&c, args);
        assert!(matches!(out.status.code(), Some(0 | 4)), "{out:?}");
        serde_json::from_slice(&out.stdout).expect("one JSON object")
    };
    let checked = json(&["check", "--plan", "early", "--json"]);
    assert!(checked["stale"].is_null(), "{checked:#}");
    s3rewind_ok(&c, &["apply", "incident", "--yes"]);

    let text =
        String::from_utf8_lossy(&s3rewind(&c, &["check", "--plan", "early"]).stdout).into_owned();
    assert!(
        text.contains("stale") && text.contains("plan incident applied at"),
        "{text}"
    );
    let checked = json(&["check", "--plan", "early", "--json"]);
    let stale = &checked["stale"];
    assert!(stale["keys"].as_u64().unwrap_or(0) > 0, "{checked:#}");
    assert_eq!(stale["changes"][0]["kind"], "apply", "{checked:#}");
    assert_eq!(stale["changes"][0]["plan"], "incident", "{checked:#}");
    // The plan applied is not stale by its own apply.
    let own = json(&["check", "--plan", "incident", "--json"]);
    assert!(own["stale"].is_null(), "{own:#}");
    // Without --plan there is no plan to be stale.
    let bucket = json(&["check", "--json"]);
    assert!(bucket["stale"].is_null(), "{bucket:#}");

    let html = w.path("early.html");
    s3rewind_ok(
        &c,
        &[
            "report",
            "early",
            "--out",
            html.to_str().expect("utf-8 path"),
        ],
    );
    let page = std::fs::read_to_string(&html).expect("report written");
    let at = page
        .find("data-figure=\"stale\"")
        .unwrap_or_else(|| panic!("no stale figure: {page}"));
    let item = &page[at..at + page[at..].find("</li>").expect("its end")];
    assert!(
        item.contains("plan incident applied at") && item.contains("apply refuses it"),
        "{item}"
    );
    let html = w.path("incident.html");
    s3rewind_ok(
        &c,
        &[
            "report",
            "incident",
            "--out",
            html.to_str().expect("utf-8 path"),
        ],
    );
    let page = std::fs::read_to_string(&html).expect("report written");
    assert!(!page.contains("data-figure=\"stale\""));
}

/// Runs a command line s3rewind printed, as a shell would, with only the
/// credentials in the environment: no catalog, no endpoint but what the
/// line names.
fn run_as_printed(line: &str) -> std::process::Output {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_s3rewind"));
    let path = format!(
        "{}:{}",
        bin.parent().expect("the binary's directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .env_clear()
        .env("PATH", path)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sh")
}

/// The command between the first pair of backquotes after `after`.
fn quoted_command<'a>(text: &'a str, after: &str) -> &'a str {
    let from = text
        .find(after)
        .unwrap_or_else(|| panic!("{after:?}: {text}"))
        + after.len();
    let rest = &text[from..];
    let start = rest.find('`').expect("a command in backquotes") + 1;
    let end = start + rest[start..].find('`').expect("its end");
    &rest[start..end]
}

#[test]
fn apply_s_drift_advice_names_a_command_that_runs_as_printed() {
    let server = start_server(ServerKind::S3sim, &[]);
    let mut b = Bucket::on(&server, &unique_bucket("rb-advice"), true);
    let t = incident(&mut b, 4);
    let w = Workdir::new();
    // A catalog of its own path, a base and a plan name a shell would split.
    let c = w.path("my catalog.db");
    let endpoint = ["--endpoint-url", server.endpoint.as_str()];
    let url = format!("{}/img/", b.url());
    let mut scan = vec!["scan", url.as_str()];
    scan.extend(endpoint);
    s3rewind_ok(&c, &scan);
    s3rewind_ok(
        &c,
        &["plan", "restore", "--to", &t, "--name", "big incident"],
    );
    b.put("img/000", b"written after the scan");
    let mut apply = vec!["apply", "big incident", "--yes"];
    apply.extend(endpoint);
    let out = s3rewind_ok(&c, &apply);
    assert!(out.contains("1 drifted"), "{out}");
    let line = quoted_command(&out, "to plan them again:");
    assert!(line.contains("--keys-of 'big incident'"), "{line}");
    let revision: i64 = catalog_scalar(&c, "SELECT revision FROM scans");
    let ran = run_as_printed(line);
    assert!(
        ran.status.success(),
        "{line}: {}\n{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    // It listed the plan's keys again into this catalog.
    let after: i64 = catalog_scalar(&c, "SELECT revision FROM scans");
    assert!(after > revision, "{revision} -> {after}");
    let newest: i64 = catalog_scalar(
        &c,
        "SELECT size FROM key_history WHERE key = 'img/000' ORDER BY seq LIMIT 1",
    );
    assert_eq!(
        newest, 22,
        "the write after the scan is the key's newest entry now"
    );
    // verify's hint to apply an unapplied plan runs as printed too.
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "it's new"]);
    let err = s3rewind_err(&c, &["verify", "it's new"]);
    let hint = quoted_command(&err, "hint:");
    assert_eq!(hint, r"s3rewind apply 'it'\''s new'", "{err}");
}

/// `apply --json` on a plan it refuses prints `plan show`'s object with
/// `refused` and `hazards`, and exits as without --json.
#[test]
fn apply_json_on_a_refused_plan_says_why_in_json() {
    let mut b = Bucket::new("rb-refused-json", true);
    let t = incident(&mut b, 4);
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url()]);
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "incident"]);
    wait_for_second_after(unix_now().as_secs());
    s3rewind_ok(
        &c,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "1s",
            "--as-of",
            "2030-01-01T00:00:00Z",
            "--name",
            "early",
        ],
    );
    let refused = |name: &str, code: i32| -> serde_json::Value {
        let out = s3rewind(&c, &["apply", name, "--yes", "--json"]);
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    // Blocked by check (versioning Suspended under a plan that writes): exit 4.
    let listing = b.listing();
    b.set_versioning(aws_sdk_s3::types::BucketVersioningStatus::Suspended);
    let out = refused("incident", 4);
    assert_eq!(out["name"], "incident");
    let why = out["refused"].as_str().unwrap_or_default();
    assert!(why.contains("blocked by versioning"), "{out:#}");
    assert!(out["hazards"].is_array(), "{out:#}");
    assert_eq!(b.listing(), listing, "nothing was sent");
    b.set_versioning(aws_sdk_s3::types::BucketVersioningStatus::Enabled);
    s3rewind_ok(&c, &["apply", "incident", "--yes"]);
    // Stale: exit 1.
    let out = refused("early", 1);
    assert_eq!(out["name"], "early");
    assert!(
        out["refused"]
            .as_str()
            .unwrap_or_default()
            .contains("stale"),
        "{out:#}"
    );
    assert!(out["hazards"].is_array(), "{out:#}");
    assert_eq!(out["stale"]["changes"][0]["plan"], "incident", "{out:#}");
}

/// Case 1 with a removed *version*: the plan deletes `k`'s noncurrent
/// version, someone removes the version above it (so it is current
/// again); `--verify` sees the newest entry is not the one the scan saw.
#[test]
fn verify_refuses_a_delete_when_the_version_above_it_was_removed_since_the_scan() {
    let mut b = Bucket::new("rb-version", true);
    b.put("k", b"old, kept by someone");
    let top = b.put("k", b"newer");
    b.put("other", b"stays");
    let w = Workdir::new();
    let c = w.catalog();
    s3rewind_ok(&c, &["scan", &b.url()]);
    wait_for_second_after(unix_now().as_secs());
    s3rewind_ok(
        &c,
        &[
            "plan",
            "expire",
            "--noncurrent-older-than",
            "1s",
            "--as-of",
            "2030-01-01T00:00:00Z",
            "--name",
            "ex",
        ],
    );
    let planned: String = catalog_scalar(&c, "SELECT group_concat(kind) FROM actions");
    assert_eq!(planned, "delete_version");
    // The newer version is removed: the old one is the key's only data now.
    b.delete_version("k", &top);
    let out = s3rewind_ok(&c, &["apply", "ex", "--yes", "--verify"]);
    assert!(out.contains("0 done") && out.contains("1 drifted"), "{out}");
    assert_eq!(b.get("k"), Some(b"old, kept by someone".to_vec()));
    let found: String = catalog_scalar(
        &c,
        "SELECT error FROM plan_review WHERE plan = 'ex' AND key = 'k'",
    );
    assert!(
        found.contains("changed after the scan") && found.contains(&top),
        "{found}"
    );
}

/// Case 1 on an endpoint that ignores conditions: the listing guard
/// compares the key's newest entry exactly, so a delete marker removed
/// since the scan (a bad version on top again) leaves the key alone.
#[test]
fn the_listing_guard_leaves_a_key_alone_whose_marker_was_removed_since_the_scan() {
    let server = start_server(ServerKind::S3sim, &["--ignore-conditions"]);
    let mut b = Bucket::on(&server, &unique_bucket("rb-listing"), true);
    b.put("k", b"k at T");
    b.put("j", b"j at T");
    let t = mark_t();
    b.put("k", b"k bad");
    let marker = b.delete("k");
    b.put("j", b"j bad");
    let w = Workdir::new();
    let c = w.catalog();
    let endpoint = ["--endpoint-url", server.endpoint.as_str()];
    let url = b.url();
    let mut scan = vec!["scan", url.as_str()];
    scan.extend(endpoint);
    s3rewind_ok(&c, &scan);
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "r"]);
    // Someone removes the marker: the bad version is on top again, a
    // version the scan knew, but not the entry it saw on top.
    b.delete_version("k", &marker);
    let mut apply = vec!["apply", "r", "--yes"];
    apply.extend(endpoint);
    let out = s3rewind_ok(&c, &apply);
    assert!(
        out.contains("guard: this endpoint ignores conditions on copies"),
        "{out}"
    );
    let drifted: i64 = catalog_scalar(
        &c,
        "SELECT count(DISTINCT key) FROM plan_review WHERE plan = 'r' AND status = 'drifted'",
    );
    assert_eq!(drifted, 1, "{out}");
    assert_eq!(b.get("k"), Some(b"k bad".to_vec()), "left alone");
    assert_eq!(b.get("j"), Some(b"j at T".to_vec()), "restored");
    let keys_copied: i64 = catalog_scalar(
        &c,
        "SELECT count(*) FROM plan_review WHERE plan = 'r' AND status = 'done' AND action = 'copy_version'",
    );
    assert_eq!(keys_copied, 1);
    let error: String = catalog_scalar(
        &c,
        "SELECT error FROM plan_review WHERE plan = 'r' AND key = 'k' AND status = 'drifted' LIMIT 1",
    );
    assert!(error.contains("changed after the scan"), "{error}");
}
